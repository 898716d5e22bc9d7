"""Every real-world mail of the shared corpus through `mailgate ingest`: one outcome each."""

from __future__ import annotations

import io
import json
import re
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import Session, create_engine, select

from mailgate.cli import run_cli
from mailgate.store.models import RECEIVED, Intake, Outbox
from tests.conftest import CORPUS

OUTCOME = re.compile(
    r"^(ticket CID-\d+|ticket CID-\d+ \(unverified sender\)|reply CID-\d+"
    r"|ignored: .+|quarantined: .+"
    r"|duplicate of stored message \d+ \(.+\))$"
)
# Reasons the pipeline gives on purpose; anything else would be an exception's text.
EXPECTED_QUARANTINE = {
    "no usable sender address in From",
    "ambiguous sender in From: it names no single clean address",
}


def cli(*args: str) -> tuple[int, str]:
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        status = run_cli(list(args))
    return status, out.getvalue()


@pytest.fixture(scope="module")
def corpus_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The whole corpus ingested once into one SQLite database."""
    work = tmp_path_factory.mktemp("corpus")
    config = work / "mailgate.toml"
    config.write_text(
        f'[database]\nurl = "sqlite:///{work}/mg.db"\n[paths]\ndata_dir = "{work}/data"\n'
        f'[outbound]\ndirectory = "{work}/sent"\nfrom = "Support <support@example.com>"\n',
        encoding="utf-8",
    )
    files = sorted(CORPUS.rglob("*.eml"))
    status, output = cli("-c", str(config), "ingest", *map(str, files))
    outcomes = {}
    for line in output.splitlines():
        name, _, outcome = line.partition(": ")
        outcomes[str(Path(name).relative_to(CORPUS))] = outcome
    return {
        "status": status,
        "files": files,
        "outcomes": outcomes,
        "config": config,
        "db": f"sqlite:///{work}/mg.db",
    }


def show(run: dict[str, Any], name: str) -> dict[str, Any]:
    cid = run["outcomes"][name].split()[-1]
    status, output = cli("-c", str(run["config"]), "tickets", "show", cid, "--format", "json")
    assert status == 0
    return json.loads(output)


def test_every_message_has_exactly_one_outcome(corpus_run: dict[str, Any]) -> None:
    assert corpus_run["status"] == 0
    names = {str(f.relative_to(CORPUS)) for f in corpus_run["files"]}
    assert set(corpus_run["outcomes"]) == names
    for name, outcome in corpus_run["outcomes"].items():
        assert OUTCOME.match(outcome), f"{name}: {outcome}"
    engine = create_engine(corpus_run["db"])
    with Session(engine) as session:
        stored = list(session.exec(select(Intake)))
    engine.dispose()
    assert len(stored) == len({f.read_bytes() for f in corpus_run["files"]})
    assert [s.id for s in stored if s.status == RECEIVED] == []
    reasons = {s.reason for s in stored if s.status == "quarantined"}
    assert reasons <= EXPECTED_QUARANTINE, "a quarantine came from an exception"


def test_bounces_make_no_ticket_and_no_acknowledgement(corpus_run: dict[str, Any]) -> None:
    bounces = [n for n in corpus_run["outcomes"] if n.startswith("multipart_report_emails/")]
    assert len(bounces) == 5
    for name in bounces:
        assert "bounce about no ticket of ours" in corpus_run["outcomes"][name]
    engine = create_engine(corpus_run["db"])
    with Session(engine) as session:
        recipients = {o.to_addrs for o in session.exec(select(Outbox))}
    engine.dispose()
    assert not any("mailer-daemon" in r.lower() or "postmaster" in r.lower() for r in recipients)


@pytest.mark.parametrize(
    ("name", "subject", "text_start"),
    [
        ("multi_charset/japanese.eml", "まみむめも", "かきくえこ"),
        ("multi_charset/japanese_iso_2022.eml", "まみむめも", "すみません。"),
        ("multi_charset/japanese_shift_jis.eml", "test", "あいうえお"),
        ("multi_charset/ks_c_5601-1987.eml", "test", "스티해"),
        ("rfc6532/utf8_headers.eml", "Säying Hello", "body"),
        (
            "attachment_emails/attachment_pdf_non_ascii.eml",
            "Another PDF with 🎉 Unicode chars in it 🍿",
            "Just attaching another PDF",
        ),
        ("error_emails/missing_body.eml", "REDACTED", ""),
    ],
)
def test_decoded_subjects_and_bodies(
    corpus_run: dict[str, Any], name: str, subject: str, text_start: str
) -> None:
    ticket = show(corpus_run, name)
    assert ticket["subject"] == subject
    assert ticket["articles"][0]["text"].startswith(text_start)
    if not text_start:
        assert ticket["articles"][0]["text"] == ""


@pytest.mark.parametrize(
    ("name", "files"),
    [
        ("multi_charset/japanese_attachment.eml", [("てすと.txt", "text/plain")]),
        ("attachment_emails/attachment_nonascii_filename.eml", [("ciële.txt", "text/plain")]),
        (
            "attachment_emails/attachment_with_encoded_name.eml",
            [("01 Quien Te DijŠat. Pitbull.mp3", "application/octet-stream")],
        ),
        (
            "mime_emails/raw_email_with_nested_attachment.eml",
            [("truncated.png", "image/png"), ("smime.p7s", "application/pkcs7-signature")],
        ),
    ],
)
def test_attachment_names_are_kept(
    corpus_run: dict[str, Any], name: str, files: list[tuple[str, str]]
) -> None:
    attachments = show(corpus_run, name)["articles"][0]["attachments"]
    assert [(a["filename"], a["content_type"]) for a in attachments] == files
    assert all(len(a["sha256"]) == 64 for a in attachments)


def test_html_only_mail_gets_text_and_sanitised_html(corpus_run: dict[str, Any]) -> None:
    article = show(corpus_run, "error_emails/content_transfer_encoding_text-html.eml")["articles"][
        0
    ]
    assert article["text"].startswith("Hello,\n\nYou have qualified")
    assert "<a " not in article["text"] and "<br" not in article["text"].lower()
    assert article["html"] and "<script" not in article["html"].lower()


def test_message_without_sender_is_quarantined_with_reason(corpus_run: dict[str, Any]) -> None:
    assert corpus_run["outcomes"]["error_emails/bad_encoded_subject.eml"] == (
        "quarantined: no usable sender address in From"
    )


def test_a_utf8_address_makes_a_ticket_and_is_answered(corpus_run: dict[str, Any]) -> None:
    ticket = show(corpus_run, "rfc6532/utf8_headers.eml")
    assert ticket["requester"] == "jdöe@mächine.example"
    assert [e["action"] for e in ticket["events"]] == ["created"]
    # The answer is written in UTF-8 (RFC 6532), the domain in its ASCII form.
    sent = Path(corpus_run["config"]).parent / "sent"
    answers = [f for f in sent.glob("*.eml") if ticket["cid"] in f.read_text("utf-8")]
    assert answers
    domain = "mächine.example".encode("idna").decode("ascii")
    assert f"To: jdöe@{domain}\r\n" in answers[0].read_bytes().decode("utf-8")


def test_lf_only_copy_of_a_message_is_a_duplicate(corpus_run: dict[str, Any]) -> None:
    assert corpus_run["outcomes"]["attachment_emails/attachment_pdf_lf.eml"].startswith(
        "ignored: duplicate of stored message"
    )
