"""Deterministic corpus of realistic support mail (German and English) for the benchmarks."""

from __future__ import annotations

import random
import struct
import zlib
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime
from html import escape

SUPPORT = "support@example.com"
NEW, REPLY = "new", "reply"

_ORG_FIRST = [
    "Müller",
    "Schäfer",
    "Becker",
    "Nordwind",
    "Alpen",
    "Rhein",
    "Harbor",
    "Summit",
    "Weißenfels",
    "Bergmann",
    "Lindqvist",
    "Oakridge",
    "Grünwald",
    "Falkner",
    "Blackstone",
    "Köhler",
    "Seeblick",
    "Riverside",
    "Sonnenhof",
    "Tannheim",
]
_ORG_SECOND = [
    "Maschinenbau",
    "Logistik",
    "Consulting",
    "Systems",
    "Medical",
    "Bau",
    "Elektrotechnik",
    "Software",
    "Holdings",
    "Steuerberatung",
    "Druckerei",
    "Analytics",
    "Kliniken",
    "Foods",
]
_TLD_DE = [".de", ".de", ".de", ".at", ".ch"]
_TLD_EN = [".com", ".co.uk", ".io", ".net", ".eu"]
_FIRST = [
    "Jürgen",
    "Sören",
    "Zoë",
    "Anna",
    "Björn",
    "Chloé",
    "Dörte",
    "Emma",
    "Frank",
    "Gülşen",
    "Hannah",
    "Ingo",
    "Jörg",
    "Katrin",
    "Lukas",
    "Mareike",
    "Nils",
    "Özlem",
    "Paul",
    "René",
    "Sabine",
    "Thomas",
    "Ute",
    "Volker",
    "William",
    "Olivia",
    "James",
    "Sophie",
    "Liam",
]
_LAST = [
    "Weiß",
    "Groß",
    "Müller",
    "Schröder",
    "Krämer",
    "Meißner",
    "Fuchs",
    "Hoffmann",
    "Öztürk",
    "Bäcker",
    "Lehmann",
    "Smith",
    "Johnson",
    "O'Brien",
    "Walker",
    "Clarke",
    "Dubois",
    "Nowak",
]
_ASCII = str.maketrans(
    {
        "ä": "ae",
        "ö": "oe",
        "ü": "ue",
        "ß": "ss",
        "é": "e",
        "ë": "e",
        "ş": "s",
        "'": "",
        "ğ": "g",
        "ç": "c",
    }
)


@dataclass(frozen=True)
class Contact:
    name: str
    email: str
    org: str
    language: str  # de | en


@dataclass(frozen=True)
class Sample:
    """One generated message and what the pipeline is expected to make of it."""

    raw: bytes
    kind: str  # NEW or REPLY
    number: int  # the ticket it opens (NEW) or answers (REPLY)
    subject: str
    sender: str
    html_only: bool = False  # a reply sent as HTML alone, its quote in the client's markup


@dataclass
class _Request:
    number: int
    contact: Contact
    subject: str
    message_id: str
    text: str
    date: datetime


def ascii_fold(text: str) -> str:
    return text.lower().translate(_ASCII).replace(" ", "")


# Organisations and contacts ----------------------------------------------------------------


def _organisation(rng: random.Random, index: int) -> tuple[str, str, str]:
    first, second = rng.choice(_ORG_FIRST), rng.choice(_ORG_SECOND)
    language = "de" if rng.random() < 0.65 else "en"
    tld = rng.choice(_TLD_DE if language == "de" else _TLD_EN)
    domain = f"{ascii_fold(first)}-{ascii_fold(second)}{index}{tld}"
    suffix = "GmbH" if language == "de" else "Ltd"
    return f"{first} {second} {suffix}", domain, language


def make_contacts(rng: random.Random, organisations: int = 50) -> list[Contact]:
    """About 50 organisations with two to six contacts each; a few write the other language."""
    contacts: list[Contact] = []
    for index in range(organisations):
        org, domain, language = _organisation(rng, index)
        for _ in range(rng.randint(2, 6)):
            first, last = rng.choice(_FIRST), rng.choice(_LAST)
            local = f"{ascii_fold(first)}.{ascii_fold(last)}"
            if any(c.email == f"{local}@{domain}" for c in contacts):
                continue
            own = language if rng.random() < 0.9 else ("en" if language == "de" else "de")
            contacts.append(Contact(f"{first} {last}", f"{local}@{domain}", org, own))
    return contacts


# Text -------------------------------------------------------------------------------------

_TOPICS = {
    "de": [
        ("Drucker im 2. OG druckt nicht mehr", "der Drucker im zweiten Obergeschoss"),
        ("Störung: VPN-Verbindung bricht ständig ab", "die VPN-Verbindung aus dem Homeoffice"),
        ("Rechnung März – Rückfrage zur Position 4", "unsere Rechnung für März"),
        ("Zugang gesperrt nach Passwortänderung", "der Zugang zum Kundenportal"),
        ("Lizenzverlängerung für 25 Arbeitsplätze", "die Lizenzverlängerung"),
        ("Datensicherung schlägt seit Montag fehl", "die nächtliche Datensicherung"),
        ("E-Mails kommen verzögert an", "der Empfang externer E-Mails"),
        ("Größenänderung der Postfächer", "die Postfachgröße der Buchhaltung"),
        ("Schnittstelle zur Warenwirtschaft liefert Fehler 500", "die Schnittstelle zur WaWi"),
        ("Neuer Mitarbeiter – Einrichtung Arbeitsplatz", "die Einrichtung eines Arbeitsplatzes"),
    ],
    "en": [
        ("Printer on 2nd floor not printing", "the printer on the second floor"),
        ("VPN keeps dropping", "the VPN connection from home"),
        ("Question about invoice INV-2026-0342", "our latest invoice"),
        ("Account locked after password reset", "access to the customer portal"),
        ("License renewal for 25 seats", "the license renewal"),
        ("Backup job failing since Monday", "the nightly backup"),
        ("Emails arriving with a delay", "inbound email delivery"),
        ("Mailbox quota increase for accounting", "the mailbox quota"),
        ("ERP interface returns HTTP 500", "the ERP interface"),
        ("Onboarding: new workstation needed", "setting up a new workstation"),
    ],
}

_DETAILS = {
    "de": [
        "Seit heute früh funktioniert {thing} nicht mehr wie gewohnt.",
        "Wir haben das Gerät bereits neu gestartet, leider ohne Erfolg.",
        "Betroffen sind ungefähr zwölf Kolleginnen und Kollegen in der Abteilung Einkauf.",
        "Die Fehlermeldung lautet „Zeitüberschreitung beim Verbindungsaufbau“.",
        "Könnten Sie sich das bitte möglichst bald ansehen? Es ist für uns dringend.",
        "Gestern Nachmittag hat noch alles einwandfrei funktioniert.",
        "Im Anhang finden Sie gegebenenfalls einen Screenshot der Meldung.",
        "Für Rückfragen erreichen Sie mich unter der unten genannten Durchwahl.",
        "Wir haben keine Änderungen an der Konfiguration vorgenommen, soweit ich weiß.",
        "Bitte prüfen Sie auch, ob das Problem mit dem Update vom Wochenende zusammenhängt.",
        "Die Außenstelle in Göttingen meldet übrigens ähnliche Schwierigkeiten.",
        "Ein Rückruf wäre schön, gerne zwischen 9 und 12 Uhr.",
    ],
    "en": [
        "Since this morning {thing} no longer works as expected.",
        "We have already restarted the device, unfortunately without success.",
        "About twelve colleagues in the purchasing department are affected.",
        'The error message reads "Connection timed out while establishing session".',
        "Could you please have a look at this as soon as possible? It is urgent for us.",
        "Everything was still working fine yesterday afternoon.",
        "Please find a screenshot of the message attached where applicable.",
        "For questions you can reach me on the extension below.",
        "As far as I know we have not changed anything in the configuration.",
        "Please also check whether this is related to the update over the weekend.",
        "Our branch office in Manchester reports similar difficulties, by the way.",
        "A call back would be appreciated, ideally between 9 am and noon.",
    ],
}

_FOLLOW = {
    "de": [
        "kurze Ergänzung zu meiner Anfrage: das Problem tritt inzwischen auch bei weiteren "
        "Kollegen auf.",
        "vielen Dank für die schnelle Rückmeldung. Leider besteht das Problem weiterhin.",
        "anbei wie besprochen die weiteren Unterlagen. Gibt es schon einen Zwischenstand?",
        "nach dem Neustart läuft es wieder, bitte lassen Sie das Ticket aber noch offen.",
    ],
    "en": [
        "a quick addition to my request: the problem now affects more colleagues as well.",
        "thanks for the quick reply. Unfortunately the issue still persists.",
        "as discussed, please find further documents attached. Is there an update yet?",
        "it works again after a restart, but please keep the ticket open for now.",
    ],
}

_GREETING = {
    "de": ("Guten Tag", "Hallo zusammen", "Sehr geehrte Damen und Herren"),
    "en": ("Hello", "Hi team", "Dear Support Team"),
}
_CLOSING = {
    "de": ("Mit freundlichen Grüßen", "Viele Grüße", "Beste Grüße"),
    "en": ("Kind regards", "Best regards", "Many thanks"),
}
_DISCLAIMER = {
    "de": (
        "Diese E-Mail enthält vertrauliche und/oder rechtlich geschützte Informationen. Wenn "
        "Sie nicht der richtige Adressat sind oder diese E-Mail irrtümlich erhalten haben, "
        "informieren Sie bitte sofort den Absender und vernichten Sie diese Mail. Das "
        "unerlaubte Kopieren sowie die unbefugte Weitergabe dieser Mail ist nicht gestattet."
    ),
    "en": (
        "This e-mail may contain confidential and/or privileged information. If you are not "
        "the intended recipient (or have received this e-mail in error) please notify the "
        "sender immediately and destroy this e-mail. Any unauthorised copying, disclosure or "
        "distribution of the material in this e-mail is strictly forbidden."
    ),
}
_STREETS = ("Hauptstraße", "Bahnhofstraße", "Königsallee", "Mühlenweg", "High Street")
_CITIES = ("37073 Göttingen", "80331 München", "50667 Köln", "1010 Wien", "8001 Zürich")
_LOG_EVENTS = (
    "Verbindung zu srv-fs01 abgelehnt (0x80070005)",
    "job 'Nacht-Sicherung' failed: access denied",
    "TLS handshake timeout after 30000 ms (peer=vpn.gateway.local:443)",
    "Spooler: Auftrag 4711 abgebrochen – Papierstau Fach 2",
    "HTTP 500 POST /api/v2/orders (Größe 18432 bytes) upstream=erp-01",
    "authentication failure for user 'Jörg.Weiß' from 10.20.4.17",
)


def _signature(rng: random.Random, contact: Contact) -> str:
    lines = [
        "-- ",
        contact.name,
        rng.choice(("Einkauf", "IT-Koordination", "Buchhaltung", "Operations", "Office")),
        contact.org,
        f"{rng.choice(_STREETS)} {rng.randint(1, 140)}",
        rng.choice(_CITIES),
        f"Tel. +49 {rng.randint(30, 999)} {rng.randint(100000, 9999999)}-{rng.randint(10, 99)}",
        f"Fax +49 {rng.randint(30, 999)} {rng.randint(100000, 9999999)}-99",
        f"https://www.{contact.email.partition('@')[2]}",
        "",
        "Geschäftsführer: Dr. Hans-Jürgen Weißkopf · Amtsgericht Göttingen HRB 12345",
        "",
        _DISCLAIMER[contact.language],
    ]
    return "\n".join(lines)


def _log_excerpt(rng: random.Random, start: datetime) -> str:
    lines, moment = [], start
    for _ in range(rng.randint(30, 160)):
        moment += timedelta(milliseconds=rng.randint(5, 90_000))
        level = rng.choice(("INFO", "INFO", "WARN", "ERROR"))
        lines.append(
            f"{moment:%Y-%m-%d %H:%M:%S},{rng.randint(0, 999):03d} {level:<5} "
            f"[worker-{rng.randint(1, 8)}] {rng.choice(_LOG_EVENTS)}"
        )
    return "\n".join(lines)


def _request_text(rng: random.Random, contact: Contact, thing: str, date: datetime) -> str:
    lang = contact.language
    details = rng.sample(_DETAILS[lang], rng.randint(3, 8))
    body = " ".join(d.format(thing=thing) for d in details)
    parts = [f"{rng.choice(_GREETING[lang])},", body]
    if rng.random() < 0.4:
        parts.append(
            ("Auszug aus dem Protokoll:" if lang == "de" else "Log excerpt:")
            + "\n"
            + _log_excerpt(rng, date - timedelta(hours=2))
        )
    parts += [rng.choice(_CLOSING[lang]), _signature(rng, contact)]
    return "\n\n".join(parts) + "\n"


def _quote(text: str, limit: int = 12_000) -> str:
    lines = text[:limit].splitlines()
    return "\n".join(f"> {line}" if line else ">" for line in lines)


def _reply_text(rng: random.Random, contact: Contact, request: _Request, forward: bool) -> str:
    lang = contact.language
    opening = f"{rng.choice(_GREETING[lang])},\n\n{rng.choice(_FOLLOW[lang])}"
    own = f"{opening}\n\n{rng.choice(_CLOSING[lang])}\n{contact.name}\n"
    when = format_datetime(request.date)
    if forward:
        head = (
            "-------- Ursprüngliche Nachricht --------"
            if lang == "de"
            else "-------- Original Message --------"
        )
        head += f"\nVon: {contact.name} <{contact.email}>\nDatum: {when}\n"
        return f"{own}\n{head}Betreff: {request.subject}\n\n{request.text}"
    said = (
        f"Am {when} schrieb {contact.name}:"
        if lang == "de"
        else (f"On {when}, {contact.name} wrote:")
    )
    return f"{own}\n{said}\n{_quote(request.text)}\n"


# HTML and attachments -----------------------------------------------------------------------

_HTML_HEAD = """<html><head>
<meta http-equiv="Content-Type" content="text/html; charset=utf-8">
<meta name="Generator" content="Microsoft Word 15 (filtered medium)">
<style><!--
@font-face {font-family:"Cambria Math"; panose-1:2 4 5 3 5 4 6 3 2 4;}
@font-face {font-family:Calibri; panose-1:2 15 5 2 2 2 4 3 2 4;}
p.MsoNormal, li.MsoNormal, div.MsoNormal {margin:0cm; font-size:11.0pt;
  font-family:"Calibri",sans-serif; mso-fareast-language:EN-US;}
a:link, span.MsoHyperlink {mso-style-priority:99; color:#0563C1; text-decoration:underline;}
span.EmailStyle17 {mso-style-type:personal-compose; font-family:"Calibri",sans-serif;
  color:windowtext;}
.MsoChpDefault {mso-style-type:export-only; font-family:"Calibri",sans-serif;}
@page WordSection1 {size:612.0pt 792.0pt; margin:70.85pt 70.85pt 2.0cm 70.85pt;}
div.WordSection1 {page:WordSection1;}
--></style></head>
<body lang="DE" link="#0563C1" vlink="#954F72" style="word-wrap:break-word">
<div class="WordSection1">
"""


def _html_paragraph(block: str) -> str:
    if block.startswith(">"):
        inner = "<br>\n".join(escape(line.lstrip("> ")) for line in block.splitlines())
        return (
            '<blockquote style="border:none;border-left:solid #B5C4DF 1.5pt;'
            f'padding:0cm 0cm 0cm 4.0pt"><p class="MsoNormal">{inner}</p></blockquote>\n'
        )
    inner = "<br>\n".join(escape(line) for line in block.splitlines())
    return (
        '<p class="MsoNormal"><span style="font-size:11.0pt;font-family:&quot;Calibri'
        f'&quot;,sans-serif;mso-fareast-language:DE">{inner}<o:p></o:p></span></p>\n'
        '<p class="MsoNormal"><o:p>&nbsp;</o:p></p>\n'
    )


def to_html(text: str, logo_cid: str | None = None) -> str:
    """The HTML alternative a desktop client would send for this text, with the signature's
    logo referenced by Content-ID when there is one."""
    blocks = [b for b in text.split("\n\n") if b.strip()]
    logo = (
        f'<p class="MsoNormal"><img width="180" height="48" src="cid:{logo_cid}" alt="Logo"></p>\n'
        if logo_cid
        else ""
    )
    paragraphs = "".join(_html_paragraph(b) for b in blocks)
    return f"{_HTML_HEAD}{paragraphs}{logo}</div>\n</body></html>\n"


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def fake_png(rng: random.Random, size: int) -> bytes:
    header = struct.pack(">IIBBBBB", rng.randint(200, 1920), rng.randint(100, 1080), 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", header)
        + _png_chunk(b"IDAT", rng.randbytes(size))
        + _png_chunk(b"IEND", b"")
    )


def fake_pdf(rng: random.Random, size: int) -> bytes:
    head = (
        b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<< /Type /Catalog /Pages 2 0 R >>\nendobj\n"
        b"2 0 obj\n<< /Type /Pages /Kids [3 0 R] /Count 1 >>\nendobj\n"
        b"3 0 obj\n<< /Type /Page /Parent 2 0 R /Contents 4 0 R >>\nendobj\n"
    )
    stream = rng.randbytes(size)
    body = b"4 0 obj\n<< /Length %d /Filter /FlateDecode >>\nstream\n" % len(stream)
    return head + body + stream + b"\nendstream\nendobj\ntrailer\n<< /Root 1 0 R >>\n%%EOF\n"


_PDF_NAMES = (
    "Rechnung_2026-03.pdf",
    "Übersicht Störungen Q3.pdf",
    "Lieferschein Nr. 4711.pdf",
    "error-report.pdf",
    "Angebot Größenänderung.pdf",
    "invoice_INV-2026-0342.pdf",
)
_PNG_NAMES = (
    "screenshot.png",
    "Fehlermeldung.png",
    "Bildschirmfoto 2026-11-02 um 10.15.png",
    "Drucker_Display_Ärger.png",
    "vpn-error.png",
    "Zoë's desktop.png",
)


def attachment(rng: random.Random) -> tuple[bytes, str, str, str]:
    """(payload, maintype, subtype, filename): a PDF- or PNG-like binary of 5 to 60 KB."""
    size = rng.randint(5_000, 60_000)
    if rng.random() < 0.5:
        return fake_pdf(rng, size), "application", "pdf", rng.choice(_PDF_NAMES)
    return fake_png(rng, size), "image", "png", rng.choice(_PNG_NAMES)


# Messages -----------------------------------------------------------------------------------

_MAILERS = (
    "Microsoft Outlook 16.0",
    "Mozilla Thunderbird 128.4.0",
    "Apple Mail (2.3774)",
    "Roundcube Webmail/1.6.9",
)


def _message_id(rng: random.Random, contact: Contact, date: datetime) -> str:
    host = "mail." + contact.email.partition("@")[2]
    return f"<{date:%Y%m%d%H%M%S}.{rng.getrandbits(48):012x}@{host}>"


def reply_html(rng: random.Random, contact: Contact, request: _Request, text: str) -> str:
    """The reply as Outlook or Gmail sends it without a text part: the writer's paragraphs,
    then the original under the client's header block or quote."""
    own = text.split("\n\n" + ("Am " if contact.language == "de" else "On "))[0]
    original = "".join(_html_paragraph(b) for b in request.text.split("\n\n") if b.strip())
    sender, when = escape(f"{contact.name} <{contact.email}>"), format_datetime(request.date)
    if rng.random() < 0.5:
        labels = ("Von", "Gesendet", "An", "Betreff") if contact.language == "de" else None
        von, sent, to, about = labels or ("From", "Sent", "To", "Subject")
        header = (
            '<div><div style="border:none;border-top:solid #E1E1E1 1.0pt;padding:3.0pt 0cm '
            f'0cm 0cm"><p class="MsoNormal"><b>{von}:</b> {sender}<br><b>{sent}:</b> {when}'
            f"<br><b>{to}:</b> Support<br><b>{about}:</b> {escape(request.subject)}</p></div>"
            "</div>\n"
        )
        mine = "".join(_html_paragraph(b) for b in own.split("\n\n") if b.strip())
        return f"{_HTML_HEAD}{mine}{header}{original}</div>\n</body></html>\n"
    mine = "".join(
        f"<div>{escape(b).replace(chr(10), '<br>')}</div><div><br></div>" for b in own.split("\n\n")
    )
    de = contact.language == "de"
    said = f"Am {when} schrieb {sender}:" if de else f"On {when}, {sender} wrote:"
    return (
        f'<div dir="ltr">{mine}</div><br><div class="gmail_quote"><div dir="ltr" '
        f'class="gmail_attr">{said}<br></div><blockquote class="gmail_quote" '
        'style="margin:0px 0px 0px 0.8ex;border-left:1px solid rgb(204,204,204);'
        f'padding-left:1ex">{original}</blockquote></div>\n'
    )


def _set_boundaries(rng: random.Random, msg: EmailMessage) -> None:
    # The stdlib draws boundaries from the global random module; ours come from the seed.
    for part in msg.walk():
        if part.is_multipart():
            part.set_boundary(f"----=_Part_{rng.getrandbits(64):016x}")


def _add_html(rng: random.Random, msg: EmailMessage, text: str) -> None:
    """An HTML alternative; most carry the company logo inline, as Outlook sends it."""
    if rng.random() < 0.3:
        msg.add_alternative(to_html(text), subtype="html")
        return
    cid = f"image001.png@01DB{rng.getrandbits(32):08X}.{rng.getrandbits(32):08X}"
    msg.add_alternative(to_html(text, cid), subtype="html")
    html_part = msg.get_payload()[1]
    logo = fake_png(rng, rng.randint(4_000, 12_000))
    html_part.add_related(
        logo,
        maintype="image",
        subtype="png",
        cid=f"<{cid}>",
        filename="image001.png",
        disposition="inline",
    )


def build_message(
    rng: random.Random,
    contact: Contact,
    subject: str,
    text: str,
    date: datetime,
    message_id: str,
    refs: tuple[str, ...] = (),
    html_only: str | None = None,
) -> bytes:
    msg = EmailMessage(policy=SMTP)
    msg["From"] = Address(contact.name, addr_spec=contact.email)
    msg["To"] = Address("Support", addr_spec=SUPPORT)
    msg["Subject"] = subject
    msg["Date"] = format_datetime(date)
    msg["Message-ID"] = message_id
    if refs:
        msg["In-Reply-To"] = refs[-1]
        msg["References"] = " ".join(refs)
    msg["X-Mailer"] = rng.choice(_MAILERS)
    msg["Content-Language"] = "de-DE" if contact.language == "de" else "en-GB"
    if html_only is not None:
        msg.set_content(html_only, subtype="html")
    else:
        msg.set_content(text)
    if html_only is None and rng.random() < 0.30:
        _add_html(rng, msg, text)
    if rng.random() < 0.25:
        payload, maintype, subtype, filename = attachment(rng)
        msg.add_attachment(payload, maintype=maintype, subtype=subtype, filename=filename)
    _set_boundaries(rng, msg)
    return msg.as_bytes()


def _new_request(
    rng: random.Random, contacts: list[Contact], number: int, date: datetime
) -> tuple[_Request, Sample]:
    contact = rng.choice(contacts)
    subject, thing = rng.choice(_TOPICS[contact.language])
    if rng.random() < 0.3:
        subject += rng.choice((" (Standort Köln)", " – dringend", " - urgent", " / Filiale Süd"))
    text = _request_text(rng, contact, thing, date)
    message_id = _message_id(rng, contact, date)
    raw = build_message(rng, contact, subject, text, date, message_id)
    request = _Request(number, contact, subject, message_id, text, date)
    return request, Sample(raw, NEW, number, subject, contact.email)


def _reply(rng: random.Random, request: _Request, date: datetime) -> Sample:
    contact = request.contact
    forward = rng.random() < 0.15
    prefix = "WG: " if forward else ("AW: " if contact.language == "de" else "Re: ")
    subject = f"{prefix}[CID-{request.number}] {request.subject}"
    text = _reply_text(rng, contact, request, forward)
    message_id = _message_id(rng, contact, date)
    # Webmail and phone clients send replies as HTML alone; the quote is then only told
    # apart by its markup.
    html = None if forward or rng.random() >= 0.3 else reply_html(rng, contact, request, text)
    refs = (request.message_id,)
    raw = build_message(rng, contact, subject, text, date, message_id, refs, html)
    request.message_id, request.text, request.date = message_id, text, date
    return Sample(raw, REPLY, request.number, subject, contact.email, html is not None)


def generate_samples(n: int, seed: int = 1, first_number: int = 1000) -> list[Sample]:
    """n messages, about 60 % new requests and 40 % tagged replies to earlier ones."""
    rng = random.Random(seed)
    contacts = make_contacts(rng)
    date = datetime(2026, 11, 2, 8, 0, tzinfo=timezone(timedelta(hours=1)))
    requests: list[_Request] = []
    samples: list[Sample] = []
    for _ in range(n):
        date += timedelta(seconds=rng.randint(20, 600))
        if requests and rng.random() < 0.4:
            samples.append(_reply(rng, rng.choice(requests[-150:]), date))
            continue
        request, sample = _new_request(rng, contacts, first_number + len(requests), date)
        requests.append(request)
        samples.append(sample)
    return samples


def generate(n: int, seed: int = 1, first_number: int = 1000) -> list[bytes]:
    """The raw bytes of generate_samples(n, seed, first_number)."""
    return [s.raw for s in generate_samples(n, seed, first_number)]
