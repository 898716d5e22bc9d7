"""The command line as an operator and outside scripts use it: real processes, real files."""

from __future__ import annotations

import io
import json
import sqlite3
import subprocess
import sys
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass
from pathlib import Path

import pytest

from mailgate.cli import run_cli
from tests.mails import make_mail

REPO = Path(__file__).resolve().parents[1]


def write_config(tmp_path: Path, extra: str = "") -> Path:
    path = tmp_path / "mailgate.toml"
    path.write_text(
        f'[database]\nurl = "sqlite:///{tmp_path}/mg.db"\n'
        f'[paths]\ndata_dir = "{tmp_path}/data"\n'
        '[smtp]\naddresses = ["support@example.com"]\n'
        f'[outbound]\ntransport = "file"\ndirectory = "{tmp_path}/sent"\n'
        'from = "Support <support@example.com>"\n' + extra,
        encoding="utf-8",
    )
    return path


@dataclass(frozen=True)
class Result:
    returncode: int
    stdout: str
    stderr: str


def mailgate(*args: str, config: Path | None = None) -> Result:
    """The command in this process (fast); `mailgate_process` runs the real console script."""
    argv = ["-c", str(config), *args] if config else list(args)
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        status = run_cli(argv)
    return Result(status, out.getvalue(), err.getvalue())


def mailgate_process(*args: str, config: Path, stdin: bytes) -> Result:
    done = subprocess.run(
        [sys.executable, "-m", "mailgate", "-c", str(config), *args],
        input=stdin,
        capture_output=True,
        cwd=REPO,
        timeout=60,
    )
    return Result(done.returncode, done.stdout.decode(), done.stderr.decode())


@pytest.fixture
def cfg(tmp_path: Path) -> Path:
    return write_config(tmp_path)


def test_unknown_key_names_key_and_file(tmp_path: Path) -> None:
    path = write_config(tmp_path)
    path.write_text(path.read_text().replace("[smtp]", "[smtp]\nlisten_port = 25"))
    result = mailgate("config", "check", config=path)
    assert result.returncode == 78
    assert f"{path}: smtp.listen_port: unknown key" in result.stderr
    assert "Traceback" not in result.stderr


def test_wrong_type_and_missing_file(tmp_path: Path) -> None:
    path = write_config(tmp_path, '[tickets]\nstart = "many"\n')
    result = mailgate("tickets", "list", config=path)
    assert result.returncode == 78 and "tickets.start: expected int, got str" in result.stderr
    missing = mailgate("tickets", "list", config=tmp_path / "nope.toml")
    assert missing.returncode == 78 and "nope.toml: configuration file not found" in missing.stderr


def test_config_check_accepts_example_file(tmp_path: Path) -> None:
    example = (REPO / "mailgate.toml.example").read_text(encoding="utf-8")
    path = tmp_path / "example.toml"
    # Both spellings of the data directory, so the check migrates a database of its own.
    example = example.replace("sqlite:///var", f"sqlite:///{tmp_path}/var")
    path.write_text(example.replace("./var", str(tmp_path / "var")), encoding="utf-8")
    (tmp_path / "var").mkdir()
    result = mailgate("config", "check", config=path)
    assert result.returncode == 0, result.stderr
    assert "configuration ok" in result.stdout


def test_ingest_files_and_stdin_then_list_and_show(cfg: Path, tmp_path: Path) -> None:
    first = tmp_path / "first.eml"
    first.write_bytes(make_mail(subject="Drucker druckt nicht", body="Hallo, bitte helfen."))
    result = mailgate("ingest", str(first), config=cfg)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"{first}: ticket CID-1000"
    reply = make_mail(subject="AW: [CID-1000] Drucker druckt nicht", body="Noch da.")
    result = mailgate_process("ingest", "-", config=cfg, stdin=reply)
    assert result.stdout.strip() == "-: reply CID-1000"

    listed = json.loads(mailgate("tickets", "list", "--format", "json", config=cfg).stdout)
    assert [
        (t["cid"], t["number"], t["status"], t["requester"], t["customer"]) for t in listed
    ] == [("CID-1000", 1000, "open", "alice@acme.example", "alice@acme.example")]
    for key in (
        "subject",
        "priority",
        "type",
        "category",
        "assignee",
        "created_at",
        "updated_at",
        "last_action",
    ):
        assert key in listed[0]
    shown = json.loads(
        mailgate("tickets", "show", "CID-1000", "--format", "json", config=cfg).stdout
    )
    assert [a["text"].strip() for a in shown["articles"]] == ["Hallo, bitte helfen.", "Noch da."]
    assert shown["articles"][0]["from"] == "alice@acme.example"
    assert shown["events"][0]["action"] == "created"

    table = mailgate("tickets", "list", config=cfg)
    assert "CID-1000" in table.stdout and "Drucker druckt nicht" in table.stdout
    sent = list((tmp_path / "sent").glob("*.eml"))
    assert len(sent) == 1, "ingest delivers the acknowledgement through the file transport"
    outbox = json.loads(mailgate("outbox", "list", "--format", "json", config=cfg).stdout)
    assert [(o["status"], o["template"], o["to"]) for o in outbox] == [
        ("sent", "acknowledgement", ["alice@acme.example"])
    ]


def test_ingest_many_files_batch_by_batch_in_order(cfg: Path, tmp_path: Path) -> None:
    """More files than one batch: each next batch is parsed in a second process meanwhile,
    yet a reply finds the ticket an earlier batch opened, and every file is answered."""
    names: list[str] = []
    expected: list[str] = []
    for n in range(60):  # 60 requests, each answered 60 files later: three batches of 50
        path = tmp_path / f"new-{n:02d}.eml"
        sender = f"Kunde {n} <kunde{n}@firma{n}.example>"
        path.write_bytes(make_mail(subject=f"Anfrage {n}", body=f"Frage {n}", sender=sender))
        names.append(str(path))
        expected.append(f"{path}: ticket CID-{1000 + n}")
    for n in range(60):
        path = tmp_path / f"reply-{n:02d}.eml"
        subject, sender = f"AW: [CID-{1000 + n}] Anfrage {n}", f"kunde{n}@firma{n}.example"
        path.write_bytes(make_mail(subject=subject, body="Noch offen.", sender=sender))
        names.append(str(path))
        expected.append(f"{path}: reply CID-{1000 + n}")
    nosender = tmp_path / "nosender.eml"
    nosender.write_bytes(b"To: support@example.com\r\nSubject: anonymous\r\n\r\nhello\r\n")
    again = tmp_path / "again.eml"
    again.write_bytes(Path(names[3]).read_bytes())
    names[70:70] = [str(nosender), str(again), str(tmp_path / "missing.eml")]
    expected[70:70] = [
        f"{nosender}: quarantined: no usable sender address in From",
        f"{again}: duplicate of stored message 4 (done)",
    ]

    result = mailgate("ingest", "--no-deliver", *names, config=cfg)

    assert result.returncode == 66, "a file that cannot be read is an error"
    assert "missing.eml: cannot read" in result.stderr
    assert result.stdout.splitlines() == expected


def test_quarantine_list_show_and_retry(cfg: Path, tmp_path: Path) -> None:
    bad = tmp_path / "nosender.eml"
    bad.write_bytes(b"To: support@example.com\r\nSubject: anonymous\r\n\r\nhello\r\n")
    assert (
        "quarantined: no usable sender address" in mailgate("ingest", str(bad), config=cfg).stdout
    )
    rows = json.loads(mailgate("quarantine", "list", "--format", "json", config=cfg).stdout)
    assert len(rows) == 1
    assert set(rows[0]) == {"id", "reason", "received_at", "size", "from", "subject"}
    assert rows[0]["subject"] == "anonymous"
    shown = mailgate("quarantine", "show", str(rows[0]["id"]), config=cfg)
    assert "no usable sender address" in shown.stdout and "Subject: anonymous" in shown.stdout
    retried = mailgate("quarantine", "retry", str(rows[0]["id"]), config=cfg)
    assert "quarantined" in retried.stdout  # still no sender: the same answer, nothing lost


def test_ingest_exits_75_while_database_is_locked(tmp_path: Path) -> None:
    cfg = write_config(tmp_path, "")
    cfg.write_text(cfg.read_text().replace("[database]", "[database]\nbusy_timeout = 0.2"))
    assert mailgate("db", "upgrade", config=cfg).returncode == 0
    lock = sqlite3.connect(tmp_path / "mg.db", isolation_level=None)
    lock.execute("BEGIN EXCLUSIVE")
    try:
        result = mailgate_process("ingest", "-", config=cfg, stdin=make_mail())
    finally:
        lock.execute("ROLLBACK")
        lock.close()
    assert result.returncode == 75, result.stderr
    assert "try again later" in result.stderr and "Traceback" not in result.stderr
    assert mailgate_process("ingest", "-", config=cfg, stdin=make_mail()).returncode == 0


def test_agents_and_customer_import(cfg: Path, tmp_path: Path) -> None:
    assert (
        mailgate("agents", "add", "Alice@Example.com", "--name", "Alice", config=cfg).returncode
        == 0
    )
    duplicate = mailgate("agents", "add", "alice@example.com", "--name", "A", config=cfg)
    assert duplicate.returncode == 65 and "exists already" in duplicate.stderr
    agents = json.loads(mailgate("agents", "list", "--format", "json", config=cfg).stdout)
    assert [a["email"] for a in agents] == ["alice@example.com"]

    csv_file = tmp_path / "crm.csv"
    csv_file.write_text(
        "organisation;contact name;email;domain;responsible agent;language\n"
        "Müller GmbH;Hans Müller;hans@mueller.example;mueller.example;alice@example.com;de\n"
        "Müller GmbH;Eva;eva@mueller.example;;;\n"
        "Broken AG;Nobody;not-an-address;;;\n",
        encoding="utf-8",
    )
    result = mailgate("customers", "import", str(csv_file), config=cfg)
    assert result.returncode == 65
    assert "contacts: 2 created, 0 already there" in result.stdout
    assert "line 4: 'not-an-address' is not an e-mail address" in result.stderr
    mail = tmp_path / "m.eml"
    mail.write_bytes(make_mail(sender="new.person@mueller.example"))
    mailgate("ingest", str(mail), config=cfg)
    listed = json.loads(mailgate("tickets", "list", "--format", "json", config=cfg).stdout)
    assert listed[0]["customer"] == "Müller GmbH"


@pytest.mark.parametrize(
    ("name", "content", "problem"),
    [
        (
            "de/closed.txt.j2",
            "{% block subject %}x{% endblock %}\n{% block body %}{{ x | nope }}{% endblock %}\n",
            ":2: No filter named 'nope'.",
        ),
        (
            "en/command_error.txt.j2",
            "{% block subject %}x{% endblock %}\n",
            ": no {% block body %}",
        ),
        ("en/staff_answer.html.j2", "<p>{% for x in y %}</p>\n", ":1: Unexpected end of template"),
    ],
)
def test_config_check_refuses_any_broken_template(
    tmp_path: Path, name: str, content: str, problem: str
) -> None:
    path = write_config(tmp_path)
    with_templates = f'[paths]\ntemplates = "{tmp_path}/templates"\n'
    path.write_text(path.read_text().replace("[paths]\n", with_templates), encoding="utf-8")
    template = tmp_path / "templates" / name
    template.parent.mkdir(parents=True)
    template.write_text(content, encoding="utf-8")
    result = mailgate("config", "check", config=path)
    assert result.returncode == 78
    assert f"mailgate: template error: {template}{problem}" in result.stderr
