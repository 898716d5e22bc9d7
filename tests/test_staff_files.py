"""Files that travel with mail to staff: every notification carries the attachments of the
mail it tells about, however many mails arrive at once."""

from __future__ import annotations

import dataclasses
import io
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from contextlib import redirect_stderr, redirect_stdout
from email.message import EmailMessage
from pathlib import Path

import pytest

from mailgate.cli import run_cli
from mailgate.config import StaffConfig
from tests.daemon_harness import SUPPORT, connect, daemon_config, running
from tests.helpers import parsed, poll
from tests.mails import make_mail

REPO = Path(__file__).resolve().parents[1]
TEAM = "team@example.com"


def write_config(tmp_path: Path) -> Path:
    path = tmp_path / "mailgate.toml"
    path.write_text(
        f'[database]\nurl = "sqlite:///{tmp_path}/mg.db"\n'
        f'[paths]\ndata_dir = "{tmp_path}/data"\n'
        f'[smtp]\naddresses = ["{SUPPORT}"]\n'
        f'[outbound]\ntransport = "file"\ndirectory = "{tmp_path}/sent"\n'
        f'from = "Support <{SUPPORT}>"\n'
        f'[staff]\nteam_address = "{TEAM}"\n',
        encoding="utf-8",
    )
    return path


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


def files_of(msg: EmailMessage) -> dict[str, bytes]:
    return {str(p.get_filename()): p.get_payload(decode=True) for p in msg.iter_attachments()}


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

AGENT = "jana.schmidt@example.com"
CUSTOMER = "alice@acme.example"
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4


class Desk:
    """A desk run through the command line: mail in by `mailgate ingest`, out as .eml files."""

    def __init__(self, tmp_path: Path, extra: str = "") -> None:
        self.tmp_path = tmp_path
        self.config = write_config(tmp_path)
        text = self.config.read_text().replace(f'team_address = "{TEAM}"\n', "")
        self.config.write_text(text + '[security]\nagent_verification = "none"\n' + extra)
        self.count = 0
        assert self.cli("agents", "add", AGENT, "--name", "Jana Schmidt", "--language", "de")

    def cli(self, *args: str) -> str:
        out, err = io.StringIO(), io.StringIO()
        with redirect_stdout(out), redirect_stderr(err):
            status = run_cli(["-c", str(self.config), *args])
        assert status == 0, err.getvalue()
        return out.getvalue() or "ok"

    def ingest(self, raw: bytes | EmailMessage) -> str:
        self.count += 1
        path = self.tmp_path / f"in-{self.count}.eml"
        path.write_bytes(raw if isinstance(raw, bytes) else raw.as_bytes())
        return self.cli("ingest", str(path))

    def sent(self) -> list[tuple[bytes, EmailMessage]]:
        files = sorted((self.tmp_path / "sent").glob("*.eml"))
        return [(p.read_bytes(), parsed(p.read_bytes())) for p in files]

    def sent_to(self, address: str) -> list[EmailMessage]:
        return [m for _, m in self.sent() if address in str(m["To"])]


def staff_answer(
    text: str, html: str | None = None, files: tuple[tuple[str, str, bytes], ...] = ()
) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = f"Jana Schmidt <{AGENT}>"
    msg["To"] = SUPPORT
    msg["Subject"] = "AW: [CID-1000] Printer broken"
    msg["Message-ID"] = "<answer-1@laptop.example>"
    msg.set_content(text)
    if html is not None:
        msg.add_alternative(html, subtype="html")
    for name, ctype, data in files:
        maintype, subtype = ctype.split("/")
        msg.add_attachment(data, maintype=maintype, subtype=subtype, filename=name)
    return msg


def with_inline_image(msg: EmailMessage, cid: str, data: bytes) -> EmailMessage:
    html = msg.get_body(("html",))
    assert isinstance(html, EmailMessage)
    html.add_related(
        data, "image", "png", cid=f"<{cid}>", filename="screenshot.png", disposition="inline"
    )
    return msg


@pytest.fixture
def desk(tmp_path: Path) -> Desk:
    desk = Desk(tmp_path)
    assert "CID-1000" in desk.ingest(make_mail(sender=f"Alice <{CUSTOMER}>"))
    return desk


def answer_to_customer(desk: Desk) -> EmailMessage:
    [answer] = [m for m in desk.sent_to(CUSTOMER) if m["Auto-Submitted"] is None]
    return answer


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
    text = mail.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert "big-trace.bin (153.6 kB)" in text
    assert "200" not in text and "relay" not in text.lower() and AGENT not in raw.decode()

    [told] = [m for m in desk.sent_to(AGENT) if "Dateien nicht" in str(m["Subject"])]
    assert told["Subject"] == "[CID-1000] Dateien nicht an den Kunden gesendet: Printer broken"
    note = told.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert "big-trace.bin (153.6 kB): die Mail wäre größer geworden als die 200.0 kB" in note
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
