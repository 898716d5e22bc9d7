"""Files that travel with mail: every staff notification carries the attachments of the mail
it tells about, however many arrive at once; a staff answer carries its files to the customer
within the relay's limit, and never an internal comment's."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from email.message import EmailMessage
from pathlib import Path

import pytest

from mailgate.config import StaffConfig
from mailgate.outbound.answers import images_named
from mailgate.outbound.enclosures import Enclosure
from tests.daemon_harness import SUPPORT, connect, daemon_config, running
from tests.helpers import parsed, poll
from tests.mails import make_mail
from tests.staff_desk import (
    AGENT,
    CUSTOMER,
    PNG,
    TEAM,
    Desk,
    answer_to_customer,
    files_of,
    staff_answer,
    with_inline_image,
    write_config,
)

REPO = Path(__file__).resolve().parents[1]


def request_with_file(n: int) -> tuple[bytes, str, bytes]:
    """A customer's new request with a log file of its own content."""
    payload = f"log of printer {n}\n".encode() * (200 + n)
    name = f"printer-{n}.log"
    raw = make_mail(
        subject=f"Printer {n} broken",
        sender=f"Kunde {n} <kunde{n}@firma{n}.example>",
        attachments=((name, "text/plain", payload),),
    )
    return raw, name, payload


def notifications(sent: Path) -> list[EmailMessage]:
    found = [parsed(p.read_bytes()) for p in sorted(sent.glob("*.eml"))]
    return [m for m in found if m["To"] == TEAM]  # type: ignore[misc]


def assert_each_carries_its_file(sent: Path, expected: dict[str, tuple[str, bytes]]) -> None:
    by_subject = {str(m["Subject"]): m for m in notifications(sent)}
    for subject_part, (name, payload) in expected.items():
        [msg] = [m for s, m in by_subject.items() if subject_part in s]
        assert files_of(msg) == {name: payload}, subject_part
        text = msg.get_body(("plain",)).get_content()  # type: ignore[union-attr]
        assert "too large" not in text and "could not" not in text


def test_ten_mails_with_files_ingested_at_once_each_notify_with_their_file(
    tmp_path: Path,
) -> None:
    config = write_config(tmp_path)
    expected: dict[str, tuple[str, bytes]] = {}
    inbox = tmp_path / "in"
    inbox.mkdir()
    # More than one batch, so that the second process parses ahead while the first stores.
    for n in range(60):
        if n % 6 == 0:
            raw, name, payload = request_with_file(n)
            expected[f"Printer {n} broken"] = (name, payload)
        else:
            raw = make_mail(subject=f"Question {n}", sender=f"K {n} <k{n}@f{n}.example>")
        (inbox / f"{n:03}.eml").write_bytes(raw)
    assert len(expected) == 10
    done = subprocess.run(
        [sys.executable, "-m", "mailgate", "-c", str(config), "ingest"]
        + [str(p) for p in sorted(inbox.iterdir())],
        capture_output=True,
        cwd=REPO,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert b"blob_unreadable" not in done.stderr
    assert_each_carries_its_file(tmp_path / "sent", expected)


def test_thirty_mails_with_files_by_smtp_each_notify_with_their_file(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
) -> None:
    config = daemon_config(tmp_path)
    config = dataclasses.replace(config, staff=StaffConfig(team_address=TEAM))
    mails = [request_with_file(n) for n in range(30)]
    expected = {f"Printer {n} broken": (name, data) for n, (_, name, data) in enumerate(mails)}
    with running(config) as mg:

        def send(raw: bytes) -> None:
            with connect(mg.address) as client:
                client.sendmail("kunde@firma.example", [SUPPORT], raw)

        with ThreadPoolExecutor(max_workers=10) as pool:
            list(pool.map(send, [raw for raw, _, _ in mails]))
        sent = tmp_path / "sent"
        poll(lambda: len(notifications(sent)) == 30, timeout=60, what="thirty notifications")
    assert_each_carries_its_file(sent, expected)
    assert "blob_unreadable" not in caplog.text + capfd.readouterr().err


# --- the files of a staff answer, as the customer receives them ------------------------------


@pytest.fixture
def desk(tmp_path: Path) -> Desk:
    desk = Desk(tmp_path)
    assert "CID-1000" in desk.ingest(make_mail(sender=f"Alice <{CUSTOMER}>"))
    return desk


def test_a_staff_answer_carries_its_files_and_inline_images_to_the_customer(desk: Desk) -> None:
    pdf = b"%PDF-1.7\n" + bytes(range(256)) * 40
    answer = staff_answer(
        "Hallo Alice, anbei die neue Version.",
        '<p>Hallo Alice, anbei die neue Version.</p><p><img src="cid:shot-1@laptop"></p>',
        files=(("handbuch-v2.pdf", "application/pdf", pdf),),
    )
    assert "reply CID-1000" in desk.ingest(with_inline_image(answer, "shot-1@laptop", PNG))
    mail = answer_to_customer(desk)
    assert files_of(mail) == {"handbuch-v2.pdf": pdf}
    html = mail.get_body(("html",))
    assert html is not None and html.get_content_type() == "text/html"
    assert 'src="cid:shot-1@laptop"' in html.get_content()
    related = next(p for p in mail.walk() if p.get_content_type() == "multipart/related")
    [image] = [p for p in related.iter_parts() if p.get_content_type() == "image/png"]
    assert image["Content-ID"] == "<shot-1@laptop>"
    assert image.get_content_disposition() == "inline"
    assert image.get_payload(decode=True) == PNG
    text = mail.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert "Hallo Alice, anbei die neue Version." in text and "nicht" not in text.lower()


def test_outlooks_image_marks_name_the_image_the_customer_gets(desk: Desk) -> None:
    # Outlook's plain text keeps "[cid:...]" where each inline image stood: the screenshot
    # goes with the answer, the signature's logo was never part of it.
    text = (
        "Hallo Alice, so sieht die Anzeige aus:\n\n[cid:image002.png@01DB5C2A.4F1E3A90]\n\n"
        "Viele Grüße\nJana\n\n[cid:image001.png@01DB5C2A.4F1E3A90]\n"
    )
    html = '<p>Hallo Alice</p><p><img src="cid:image002.png@01DB5C2A.4F1E3A90"></p>'
    answer = with_inline_image(staff_answer(text, html), "image002.png@01DB5C2A.4F1E3A90", PNG)
    assert "reply CID-1000" in desk.ingest(answer)
    mail = answer_to_customer(desk)
    plain = mail.get_body(("plain",)).get_content().replace("\r\n", "\n")  # type: ignore[union-attr]
    assert "so sieht die Anzeige aus:\n\n[screenshot.png]\n\nViele Grüße\nJana\n" in plain
    assert "cid:" not in plain
    assert "Your support team" not in plain  # still signed: the logo's mark was the last line
    html_part = mail.get_body(("html",)).get_content()  # type: ignore[union-attr]
    assert "[screenshot.png]" in html_part and "[cid:" not in html_part
    assert 'src="cid:image002.png@01DB5C2A.4F1E3A90"' in html_part


def test_an_image_mark_within_a_line_keeps_the_words_apart() -> None:
    shot = Enclosure("shot.png", "image/png", PNG, "shot@laptop")
    text = "See [cid:shot@laptop] here, not [cid:logo@laptop] there."
    assert images_named(text, [shot]) == "See [shot.png] here, not there."


def test_files_the_relay_would_refuse_stay_behind_and_the_agent_is_told(tmp_path: Path) -> None:
    desk = Desk(tmp_path)
    text = desk.config.read_text().replace(
        'from = "Support', 'max_message_size = 200000\nfrom = "Support', 1
    )
    desk.config.write_text(text)
    assert "CID-1000" in desk.ingest(make_mail(sender=f"Alice <{CUSTOMER}>"))
    small, big = b"s" * 20_000, bytes(range(256)) * 600  # big: 150 kB, 205 kB as base64
    files = (("big-trace.bin", "application/octet-stream", big), ("notes.txt", "text/plain", small))
    desk.ingest(staff_answer("Here is the fix.", files=files))

    raw, mail = next((r, m) for r, m in desk.sent() if m["Auto-Submitted"] is None)
    assert len(raw) <= 200_000
    assert files_of(mail) == {"notes.txt": small}
    text = mail.get_body(("plain",)).get_content().replace("\r\n", "\n")  # type: ignore[union-attr]
    assert "Not attached to this email:\n  - big-trace.bin (153.6 kB, too large for email)" in text
    assert "200" not in text and "relay" not in text.lower() and AGENT not in raw.decode()

    [told] = [m for m in desk.sent_to(AGENT) if "Dateien nicht" in str(m["Subject"])]
    assert told["Subject"] == "[CID-1000] Dateien nicht an den Kunden gesendet: Printer broken"
    note = told.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert "big-trace.bin (153,6 kB): die Mail wäre größer geworden als die 200,0 kB" in note
    assert "notes.txt" not in note
    assert "big-trace.bin" in told.get_body(("html",)).get_content()  # type: ignore[union-attr]


def test_an_internal_comments_files_never_reach_the_customer(desk: Desk) -> None:
    secret = b"internal price list"
    desk.ingest(
        staff_answer(
            "#internal\nCustomer is on the old tariff.", files=(("prices.csv", "text/csv", secret),)
        )
    )
    assert desk.sent_to(CUSTOMER) and all(  # the acknowledgement, nothing after it
        m["Auto-Submitted"] is not None for m in desk.sent_to(CUSTOMER)
    )
    answer = staff_answer("Please restart the printer.")
    del answer["Message-ID"]
    answer["Message-ID"] = "<answer-2@laptop.example>"
    desk.ingest(answer)
    mail = answer_to_customer(desk)
    assert files_of(mail) == {}
    assert all(secret not in raw for raw, m in desk.sent() if CUSTOMER in str(m["To"]))


def test_the_customers_own_image_quoted_in_an_answer_is_not_sent_back(tmp_path: Path) -> None:
    desk = Desk(tmp_path)
    request = staff_answer("It shows this.", '<p>It shows this.</p><img src="cid:err@acme">')
    for header, value in (("From", f"Alice <{CUSTOMER}>"), ("Subject", "Printer broken")):
        request.replace_header(header, value)
    request.replace_header("Message-ID", "<request@acme.example>")
    assert "CID-1000" in desk.ingest(with_inline_image(request, "err@acme", PNG))
    # The agent's client quotes the customer's mail with its image, and adds one of its own.
    quoted = '<p>Fixed.</p><blockquote><img src="cid:err-copy@laptop"></blockquote>'
    answer = with_inline_image(staff_answer("Fixed.", quoted), "err-copy@laptop", PNG)
    desk.ingest(answer)
    mail = answer_to_customer(desk)
    assert not [p for p in mail.walk() if p.get_content_maintype() == "image"]
