"""One desk's week, played as its people would: customers of one public mail provider and of
one company, a shop's CSV import, two agents answering from Outlook and Thunderbird with
attachments, comments, commands, a hold, a delivery, a confirmation, a bounce and an
out-of-office. Every mail that went out is read as its recipient would read it."""

from __future__ import annotations

import io
import json
import re
from datetime import date, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import openpyxl
from sqlmodel import select

from mailgate.config import load
from mailgate.store.models import QUEUED, RECEIVED, Intake, Outbox
from tests.daemon_harness import DaemonThread, Received, Sink, connect, relay, running
from tests.helpers import free_port, poll
from tests.mails import make_mail
from tests.test_cli import mailgate

__all__ = ["relay"]  # a fixture, used by name

SUPPORT = "support@example.com"
COMMENT = "support-comment@example.com"
JANA, TOM = "jana@example.com", "tom@example.com"
PAULA, FREMDER, PETRA = "paula@posteo.de", "fremder@posteo.de", "petra@posteo.de"
KLAUS, INGE = "klaus@mueller-bau.example", "inge@mueller-bau.example"
JOHN, MARY, GERD = "john@gmail.com", "mary@gmail.com", "gerd@gmail.com"
TRUSTED = "mx.example.com; dkim=pass header.d=example.com"

# The shop's export as German Excel writes it: Windows-1252, semicolons, German headings.
SHOP_CSV = (
    "Firma;Ansprechpartner;E-Mail;Domäne;Sprache\r\n"
    "Müller Bau GmbH;Klaus Müller;klaus@mueller-bau.example;mueller-bau.example;de\r\n"
    ";Paula Schmidt;paula@posteo.de;;de\r\n"
    ";Petra Fremd;petra@posteo.de;;de\r\n"
    "Gmail Freunde;Gerd Gmail;gerd@gmail.com;gmail.com;de\r\n"
).encode("cp1252")


def write_config(tmp_path: Path, relay_port: int) -> Path:
    path = tmp_path / "mailgate.toml"
    path.write_text(
        f'[database]\nurl = "sqlite:///{tmp_path}/mailgate.db"\n'
        f'[paths]\ndata_dir = "{tmp_path}/data"\n'
        f'[smtp]\nlisten = "127.0.0.1:{free_port()}"\naddresses = ["{SUPPORT}"]\n'
        f'comment_address = "{COMMENT}"\n'
        f'[outbound]\ntransport = "smtp"\nhost = "127.0.0.1"\nport = {relay_port}\n'
        f'from = "Support <{SUPPORT}>"\n'
        '[security]\nagent_verification = "authentication-results"\n'
        'trusted_authserv_id = "mx.example.com"\n'
        f'[staff]\ndefault_agent = "{JANA}"\n'
        '[tickets]\ntimezone = "Europe/Berlin"\ndefault_language = "en"\n',
        encoding="utf-8",
    )
    return path


class Desk:
    """The running daemon, the relay's sink and the command line, as the week uses them."""

    def __init__(self, mg: DaemonThread, sink: Sink, config: Path) -> None:
        self.mg, self.sink, self.config = mg, sink, config

    def send(self, raw: bytes, sender: str, to: str = SUPPORT) -> None:
        with connect(self.mg.address) as client:
            client.sendmail(sender, [to], raw)
        self.settle()

    def settle(self) -> None:
        """Wait until every stored message has its outcome and every mail it caused went out."""

        def done() -> bool:
            with self.mg.ctx.store.session() as session:
                waiting = session.exec(select(Intake).where(Intake.status == RECEIVED)).all()
                queued = session.exec(select(Outbox).where(Outbox.status == QUEUED)).all()
                return not waiting and not queued

        poll(done, timeout=20, what="every message processed and every mail sent")

    def cli(self, *args: str) -> Any:
        return mailgate(*args, config=self.config)

    def ticket(self, cid: str) -> dict[str, Any]:
        result = self.cli("tickets", "show", cid, "--format", "json")
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout)

    def count(self) -> int:
        return len(json.loads(self.cli("tickets", "list", "--format", "json").stdout))

    def mails_to(self, address: str) -> list[Received]:
        return self.sink.to(address)


def customer(name: str, address: str, subject: str, body: str, **kw: Any) -> bytes:
    return make_mail(subject=subject, body=body, sender=f"{name} <{address}>", **kw)


def agent(name: str, address: str, subject: str, body: str, **kw: Any) -> bytes:
    headers = {"Authentication-Results": TRUSTED, **kw.pop("headers", {})}
    return make_mail(
        subject=subject, body=body, sender=f"{name} <{address}>", headers=headers, **kw
    )


def texts(received: Received) -> str:
    """Everything a person can read in a mail: headers, and every text part decoded."""
    message: EmailMessage = received.message
    parts = [str(message[h]) for h in ("From", "Reply-To", "Subject", "To", "Cc") if message[h]]
    for part in message.walk():
        if part.get_content_maintype() == "text":
            parts.append(part.get_content())
    return "\n".join(parts)


def attachment_names(received: Received) -> list[str]:
    return [p.get_filename() or "" for p in received.message.iter_attachments()]


def sheet_cells(received: Received) -> str:
    """The cells of the .xlsx a ticket list carries, as one text."""
    for part in received.message.iter_attachments():
        if (part.get_filename() or "").endswith(".xlsx"):
            book = openpyxl.load_workbook(io.BytesIO(part.get_content()))
            return "\n".join(
                str(cell)
                for sheet in book
                for row in sheet.iter_rows(values_only=True)
                for cell in row
                if cell is not None
            )
    return ""


def test_a_desks_week(tmp_path: Path, relay: tuple[Sink, int]) -> None:
    sink, port = relay
    config_path = write_config(tmp_path, port)
    with running(load(config_path)) as mg:
        desk = Desk(mg, sink, config_path)
        for address, name, language in ((JANA, "Jana Berg", "de"), (TOM, "Tom Weber", "en")):
            added = desk.cli("agents", "add", address, "--name", name, "--language", language)
            assert added.returncode == 0, added.stderr
        csv_file = tmp_path / "shop.csv"
        csv_file.write_bytes(SHOP_CSV)
        imported = desk.cli("customers", "import", str(csv_file))
        # The shop's row that lets "Gmail Freunde" claim gmail.com is refused, and says so.
        assert imported.returncode != 0
        assert "gmail.com" in imported.stdout + imported.stderr

        play_the_week(desk)
        audit_every_mail(desk)


def play_the_week(desk: Desk) -> None:
    # Monday: Paula (posteo.de, imported without a company) asks about her order.
    desk.send(
        customer(
            "Paula Schmidt", PAULA, "Bestellung 12345 fehlt", "Hallo, meine Bestellung fehlt.\n"
        ),
        PAULA,
    )
    paula = desk.ticket("CID-1000")
    assert paula["requester"] == PAULA
    (ack,) = desk.mails_to(PAULA)
    assert "[CID-1000]" in str(ack.message["Subject"])

    # A stranger of the same provider asks for "his" list: he learns nothing of Paula.
    desk.send(customer("Fremder", FREMDER, "list", "\n"), FREMDER)
    (answer,) = desk.mails_to(FREMDER)
    assert "CID-1000" not in texts(answer) + sheet_cells(answer)
    assert "Bestellung" not in texts(answer) + sheet_cells(answer)
    assert desk.count() == 1, "a list request opened a ticket"
    # ... and his reply under her tag changes nothing of hers and reaches nobody.
    desk.send(
        customer("Fremder", FREMDER, "Re: [CID-1000] Bestellung 12345 fehlt", "Ich auch!\n"),
        FREMDER,
    )
    assert len(desk.mails_to(FREMDER)) == 1 and len(desk.mails_to(PAULA)) == 1
    paula = desk.ticket("CID-1000")
    assert paula["status"] == "open"
    assert paula["articles"][-1]["direction"] == "internal"
    # Petra, imported from the same provider, sees none of Paula's tickets either.
    desk.send(customer("Petra Fremd", PETRA, "Meine Tickets", "\n"), PETRA)
    (petras,) = desk.mails_to(PETRA)
    assert "CID-1000" not in texts(petras) + sheet_cells(petras)

    # Klaus of Müller Bau (the company's domain claimed by the import) sends a photo.
    desk.send(
        customer(
            "Klaus Müller",
            KLAUS,
            "Bagger springt nicht an",
            "Siehe Foto.\n",
            attachments=(("fehler.jpg", "image/jpeg", b"\xff\xd8\xff" + b"j" * 3000),),
        ),
        KLAUS,
    )
    klaus = desk.ticket("CID-1001")
    assert klaus["customer"] == "Müller Bau GmbH"
    note = [m for m in desk.mails_to(JANA) if "[CID-1001]" in str(m.message["Subject"])]
    assert note and "fehler.jpg" in attachment_names(note[0])
    # His colleague Inge asks for the list: she sees his ticket, not Paula's.
    desk.send(customer("Inge Bau", INGE, "Meine Tickets", "\n"), INGE)
    (inges,) = desk.mails_to(INGE)
    assert "CID-1001" in texts(inges)
    assert "CID-1000" not in texts(inges) + sheet_cells(inges)

    # Two gmail.com customers: strangers, whatever the shop's import wanted.
    desk.send(customer("John Doe", JOHN, "Printer broken", "It prints nothing.\n"), JOHN)
    desk.send(customer("Mary Roe", MARY, "Invoice missing", "Where is my invoice?\n"), MARY)
    for cid in ("CID-1002", "CID-1003"):
        assert desk.ticket(cid)["customer"] != "Gmail Freunde"
    desk.send(customer("Mary Roe", MARY, "list", "\n"), MARY)
    marys_list = desk.mails_to(MARY)[-1]
    assert "CID-1003" in texts(marys_list)
    assert "CID-1002" not in texts(marys_list) + sheet_cells(marys_list)

    # Jana answers Paula from Outlook: a file attached, her signature without "-- ".
    desk.send(
        agent(
            "Jana Berg",
            JANA,
            "AW: [CID-1000] Bestellung 12345 fehlt",
            "Hallo Frau Schmidt,\n\nanbei die Anleitung zum Nachbestellen.\n\n"
            "Mit freundlichen Grüßen\nJana Berg\nKundenservice\nTel. +49 30 1234567\n"
            f"{JANA}\n\n"
            "Von: Paula Schmidt <paula@posteo.de>\nGesendet: Montag, 7. Dezember 2026 09:00\n"
            "An: support@example.com\nBetreff: Bestellung 12345 fehlt\n\n"
            "Hallo, meine Bestellung fehlt.\n",
            headers={"X-Mailer": "Microsoft Outlook 16.0"},
            html=(
                "<html><body><p>Hallo Frau Schmidt,</p><p>anbei die Anleitung zum "
                "Nachbestellen.</p><p>Mit freundlichen Grüßen<br>Jana Berg<br>Kundenservice"
                f'<br>Tel. +49 30 1234567<br><a href="mailto:{JANA}">{JANA}</a></p>'
                "<div><b>Von:</b> Paula Schmidt &lt;paula@posteo.de&gt;<br><b>Gesendet:</b> "
                "Montag, 7. Dezember 2026 09:00</div><p>Hallo, meine Bestellung fehlt.</p>"
                "</body></html>"
            ),
            attachments=(("anleitung.pdf", "application/pdf", b"%PDF-1.4 " + b"p" * 5000),),
        ),
        JANA,
    )
    answer = desk.mails_to(PAULA)[-1]
    assert "Nachbestellen" in texts(answer)
    assert attachment_names(answer) == ["anleitung.pdf"]
    assert desk.ticket("CID-1000")["status"] == "open"

    # Jana notes something for Tom under a greeting: internal, Paula gets nothing.
    before = len(desk.mails_to(PAULA))
    desk.send(
        agent(
            "Jana Berg",
            JANA,
            "AW: [CID-1000] Bestellung 12345 fehlt",
            "Hallo Tom,\n#internal\nDie Kundin ist Stammkundin, bitte bevorzugt.\n",
        ),
        JANA,
    )
    desk.send(
        agent("Jana Berg", JANA, "[CID-1001] Notiz", "Ersatzteil bestellt.\n", to=COMMENT),
        JANA,
        to=COMMENT,
    )
    assert len(desk.mails_to(PAULA)) == before
    assert [a["direction"] for a in desk.ticket("CID-1000")["articles"]][-1] == "internal"

    # Klaus's ticket goes on hold until the part comes; his out-of-office changes nothing.
    until = date.today() + timedelta(days=14)
    klaus_before = len(desk.mails_to(KLAUS))
    desk.send(
        agent(
            "Jana Berg",
            JANA,
            "AW: [CID-1001] Bagger springt nicht an",
            f"#hold {until.isoformat()}\n\nDas Ersatzteil ist bestellt.\n",
        ),
        JANA,
    )
    held = desk.mails_to(KLAUS)[klaus_before:]
    day = f"{until.day}. {GERMAN_MONTHS[until.month - 1]} {until.year}"
    assert held and any(day in texts(m) for m in held), "the hold mail names the date"
    klaus = desk.ticket("CID-1001")
    assert klaus["status"] == "hold"
    count = len(desk.mails_to(KLAUS))
    desk.send(
        customer(
            "Klaus Müller",
            KLAUS,
            "Abwesend: AW: [CID-1001] Bagger springt nicht an",
            "Ich bin bis Montag nicht im Büro.\n",
            headers={"X-Autoreply": "yes"},
        ),
        KLAUS,
    )
    assert len(desk.mails_to(KLAUS)) == count, "an out-of-office was answered"
    desk.send(
        customer("Klaus Müller", KLAUS, "AW: [CID-1001] Bagger springt nicht an", "Danke!\n"),
        KLAUS,
    )
    assert desk.ticket("CID-1001")["status"] == "hold"

    # Tom (Thunderbird) raises John's priority and answers with a log file.
    before = len(desk.mails_to(JOHN))
    desk.send(
        agent(
            "Tom Weber",
            TOM,
            "Re: [CID-1002] Printer broken",
            "#priority A\n\nHi John,\nplease run the attached script.\n\nTom\n\n"
            "On 07.12.26 10:00, John Doe wrote:\n> It prints nothing.\n",
            headers={"User-Agent": "Mozilla Thunderbird"},
            attachments=(("fix.txt", "text/plain", b"lpstat -t\n"),),
        ),
        TOM,
    )
    mails = desk.mails_to(JOHN)[before:]
    assert any("fix.txt" in attachment_names(m) for m in mails)
    assert desk.ticket("CID-1002")["priority"] == "A"
    # Delivered, confirmed in a few words: closed, and a comment afterwards keeps it closed.
    desk.send(agent("Tom Weber", TOM, "Re: [CID-1002] Printer broken", "#deliver\n\nDone.\n"), TOM)
    assert desk.ticket("CID-1002")["status"] == "delivered"
    desk.send(customer("John Doe", JOHN, "Re: [CID-1002] Printer broken", "OK thanks!\n"), JOHN)
    assert desk.ticket("CID-1002")["status"] == "closed"
    closed_count = len(desk.mails_to(JOHN))
    desk.send(
        agent("Tom Weber", TOM, "[CID-1002] note", "Customer happy.\n", to=COMMENT), TOM, to=COMMENT
    )
    john = desk.ticket("CID-1002")
    assert john["status"] == "closed"
    assert len(desk.mails_to(JOHN)) == closed_count
    # A week later it breaks again: his reply reopens the ticket, and he is told.
    desk.send(
        customer("John Doe", JOHN, "Re: [CID-1002] Printer broken", "It broke again.\n"), JOHN
    )
    assert desk.ticket("CID-1002")["status"] in ("open", "working")
    reopened = desk.mails_to(JOHN)[closed_count:]
    assert len(reopened) == 1 and "[CID-1002]" in str(reopened[0].message["Subject"])

    # Mary's answer bounces; Tom's next answer cannot reach her, and Tom is told.
    desk.send(agent("Tom Weber", TOM, "Re: [CID-1003] Invoice missing", "Sent again.\n"), TOM)
    bounced = desk.mails_to(MARY)[-1]
    desk.send(delivery_report(bounced, MARY), "", to=bounced.mail_from)
    assert desk.ticket("CID-1003")["articles"][-1]["direction"] == "system"
    toms = len(desk.mails_to(TOM))
    desk.send(agent("Tom Weber", TOM, "Re: [CID-1003] Invoice missing", "Any news?\n"), TOM)
    told = desk.mails_to(TOM)[toms:]
    assert any(MARY in texts(m) for m in told), "Tom is not told his answer cannot go out"
    # Her next mail proves the address works again: she gets her acknowledgement.
    marys = len(desk.mails_to(MARY))
    desk.send(customer("Mary Roe", MARY, "New invoice question", "Hello?\n"), MARY)
    assert len(desk.mails_to(MARY)) == marys + 1


def delivery_report(original: Received, recipient: str) -> bytes:
    """An RFC 3464 report from the recipient's provider about a mail we sent."""
    message_id = str(original.message["Message-ID"])
    return (
        "From: Mail Delivery System <MAILER-DAEMON@mx.gmail.example>\r\n"
        f"To: <{original.mail_from}>\r\n"
        "Subject: Undelivered Mail Returned to Sender\r\n"
        "Auto-Submitted: auto-replied\r\n"
        "MIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="b1"\r\n'
        "\r\n--b1\r\nContent-Type: text/plain\r\n\r\nThe mail could not be delivered.\r\n"
        "\r\n--b1\r\nContent-Type: message/delivery-status\r\n\r\n"
        "Reporting-MTA: dns; mx.gmail.example\r\n\r\n"
        f"Final-Recipient: rfc822; {recipient}\r\nAction: failed\r\nStatus: 5.1.1\r\n"
        "\r\n--b1\r\nContent-Type: text/rfc822-headers\r\n\r\n"
        f"Message-ID: {message_id}\r\nTo: {recipient}\r\n"
        f"Subject: {original.message['Subject']}\r\n"
        "\r\n--b1--\r\n"
    ).encode()


GERMAN_MONTHS = (
    "Januar", "Februar", "März", "April", "Mai", "Juni",
    "Juli", "August", "September", "Oktober", "November", "Dezember",
)  # fmt: skip

# Who may read which ticket's mail: each customer only their own organisation's tickets.
ALLOWED = {
    PAULA: {"CID-1000"},
    FREMDER: set(),
    PETRA: set(),
    KLAUS: {"CID-1001"},
    INGE: {"CID-1001"},
    JOHN: {"CID-1002"},
    MARY: {"CID-1003", "CID-1004"},
    GERD: set(),
}


def audit_every_mail(desk: Desk) -> None:
    """Read every mail that went out as its recipient would."""
    agents = (JANA, TOM)
    for received in list(desk.sink.messages):
        body = texts(received) + sheet_cells(received)
        for rcpt in received.rcpt_tos:
            if rcpt in agents:
                continue
            assert rcpt in ALLOWED, f"mail to someone who never wrote: {rcpt}"
            seen = set(re.findall(r"CID-\d+", body))
            assert seen <= ALLOWED[rcpt], f"{rcpt} saw {seen - ALLOWED[rcpt]}"
            for address in agents:
                assert address not in body, f"{rcpt} saw the agent address {address}"
            assert SUPPORT in str(received.message["From"])
            assert str(received.message["Auto-Submitted"] or "no") in (
                "no",
                "auto-replied",
                "auto-generated",
            )
