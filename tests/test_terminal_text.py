"""Everything a mail brings is printed as text, never as terminal markup: every listing
command, run as the console script on a terminal, against a desk whose subjects, names,
file names, notes and reasons are markup."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from rich.text import Text

from tests.mails import make_mail
from tests.test_cli import REPO, mailgate, write_config

CLOSE_UNOPENED = "[/x]"
LINK = "[link=https://evil.example]Your invoice[/link]"
STYLE = "[bold red]x :smile:"
HOSTILE = (CLOSE_UNOPENED, LINK, STYLE)
HYPERLINK = "\x1b]8;"  # OSC 8: how a terminal is told "this text is a link"
# The same link written into the mail as escape sequences, and a C1 CSI that clears the screen.
RAW_LINK = f"{HYPERLINK};https://evil.example\x1b\\click here{HYPERLINK};\x1b\\ \x9b2J"


def on_terminal(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """The console script as a person runs it: stdout a colour terminal, 200 columns."""
    env = {**os.environ, "FORCE_COLOR": "1", "TERM": "xterm-256color", "COLUMNS": "200"}
    env.pop("NO_COLOR", None)
    return subprocess.run(
        [sys.executable, "-m", "mailgate", "-c", str(config), *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=env,
        timeout=120,
    )


def plain(output: str) -> str:
    """What the person reads: colours and styles dropped, text kept."""
    return Text.from_ansi(output).plain


def ingest(tmp_path: Path, config: Path, name: str, raw: bytes) -> str:
    path = tmp_path / f"{name}.eml"
    path.write_bytes(raw)
    result = mailgate("ingest", str(path), config=config)
    assert result.returncode == 0, result.stderr
    return result.stdout.split()[-1]


@pytest.fixture(scope="module")
def desk(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three customers whose names, subjects and files are markup; an agent whose name is;
    time booked with such notes; a quarantined mail with such a subject."""
    tmp_path = tmp_path_factory.mktemp("markup")
    config = write_config(tmp_path, '[security]\nagent_verification = "none"\n')
    agent = mailgate("agents", "add", "anna@example.com", "--name", STYLE, config=config)
    assert agent.returncode == 0, agent.stderr
    for n, text in enumerate(HOSTILE):
        org = f"{text} {n}"
        claim = ("customers", "claim", org, f"customer{n}.example")
        assert mailgate(*claim, config=config).returncode == 0
        raw = make_mail(
            sender=f'"{text}" <c{n}@customer{n}.example>',
            subject=text,
            body=f"{text}\n{RAW_LINK}\n",
            attachments=((f"{text}.pdf", "application/pdf", b"%PDF-1.4\n"),),
        )
        cid = ingest(tmp_path, config, f"c{n}", raw)
        answer = make_mail(
            sender="anna@example.com",
            subject=f"Re: [{cid}] x",
            body=f"#category {text}\n#time 1h billable {text}\n\nDone.\n",
        )
        ingest(tmp_path, config, f"a{n}", answer)
        bought = ("customers", "contingent", org, "+10h", "--note", text)
        assert mailgate(*bought, config=config).returncode == 0
    nobody = f"To: support@example.com\r\nSubject: {LINK} {CLOSE_UNOPENED}\r\n\r\nhi\r\n"
    assert ingest(tmp_path, config, "q", nobody.encode()) == "From"  # quarantined
    return config


COMMANDS = [
    ("tickets", "list"),
    ("tickets", "show", "CID-1000"),
    ("tickets", "show", "CID-1001"),
    ("tickets", "show", "CID-1002"),
    ("tickets", "time", "CID-1000"),
    ("outbox", "list"),
    ("quarantine", "list"),
    ("quarantine", "show", "7"),
    ("customers", "list"),
    ("customers", "show", f"{LINK} 1"),
    ("customers", "contingent", f"{LINK} 1"),
    ("stats",),
    ("report", "time"),
    ("agents", "list"),
    ("jobs", "list"),
]


@pytest.mark.parametrize("command", COMMANDS, ids=[" ".join(c) for c in COMMANDS])
def test_mail_text_is_printed_as_written(desk: Path, command: tuple[str, ...]) -> None:
    done = on_terminal(desk, *command)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr and "MarkupError" not in done.stderr
    assert HYPERLINK not in done.stdout and "\x9b" not in done.stdout
    assert "\x1b[" in done.stdout or command == ("jobs", "list")  # a terminal, with colours
    shown = plain(done.stdout)
    if command == ("jobs", "list"):
        return  # no text of a mail in it: run for its exit and the missing link
    # Wrapped cells may split a value; a row's value, read back without the frame, is whole.
    unframed = "".join(ch for ch in shown if ch not in "│┃┆║ \n")
    hostile = [t for t in HOSTILE if t.replace(" ", "") in unframed]
    assert hostile, shown
    if command[:2] == ("tickets", "show"):  # the escape sequences shown, not obeyed
        assert "␛]8;;https://evil.example␛\\click here␛]8;;␛\\ \ufffd2J" in shown
