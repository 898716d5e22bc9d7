"""A desk driven as its users drive it, for tests of what staff send: mail in by `mailgate
ingest`, mail out read from the .eml files the file transport writes."""

from __future__ import annotations

import io
from contextlib import redirect_stderr, redirect_stdout
from email.message import EmailMessage
from pathlib import Path

from mailgate.cli import run_cli
from tests.daemon_harness import SUPPORT
from tests.helpers import parsed

TEAM = "team@example.com"
AGENT = "jana.schmidt@example.com"
CUSTOMER = "alice@acme.example"
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4


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


def files_of(msg: EmailMessage) -> dict[str, bytes]:
    return {str(p.get_filename()): p.get_payload(decode=True) for p in msg.iter_attachments()}


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


def answer_to_customer(desk: Desk) -> EmailMessage:
    [answer] = [m for m in desk.sent_to(CUSTOMER) if m["Auto-Submitted"] is None]
    return answer
