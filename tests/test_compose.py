"""compose: what comes out parses back as sent; no header value can smuggle in another header."""

from __future__ import annotations

import dataclasses
import re
from datetime import UTC, datetime
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import default

import pytest

from mailgate.outbound.compose import (
    MAX_REFERENCES,
    InvalidAddress,
    Outgoing,
    address_domain,
    clean_header,
    compose,
    make_message_id,
    parse_address,
)
from mailgate.reading.marks import is_our_message_id, ticket_number_from_message_id

NOW = datetime(2026, 11, 2, 9, 30, tzinfo=UTC)
BASE = Outgoing(
    from_addr="Support <support@example.com>",
    to=("alice@kunde.example",),
    subject="[CID-1042] Drucker kaputt",
    text="Guten Tag,\nwir kümmern uns darum.\n",
    message_id="<mailgate.1042.0123456789abcdef@example.com>",
)


def build(**changes: object) -> EmailMessage:
    raw = compose(dataclasses.replace(BASE, **changes), NOW)  # type: ignore[arg-type]
    parsed = message_from_bytes(raw, policy=default)
    assert isinstance(parsed, EmailMessage)
    return parsed


def content(part: EmailMessage) -> str:
    """A text part's content with the wire's CRLF turned back into the renderer's LF."""
    return str(part.get_content()).replace("\r\n", "\n")


def header_names(raw: bytes) -> list[str]:
    head = raw.split(b"\r\n\r\n", 1)[0].decode("ascii")
    return [line.split(":", 1)[0].lower() for line in head.split("\r\n") if line[:1] not in " \t"]


def test_plain_message_headers_and_body() -> None:
    raw = compose(BASE, NOW)
    msg = message_from_bytes(raw, policy=default)
    assert str(msg["From"]) == "Support <support@example.com>"
    assert str(msg["To"]) == "alice@kunde.example"
    assert str(msg["Subject"]) == "[CID-1042] Drucker kaputt"
    assert str(msg["Message-ID"]) == "<mailgate.1042.0123456789abcdef@example.com>"
    assert str(msg["Date"]) == "Mon, 02 Nov 2026 09:30:00 +0000"
    assert msg["MIME-Version"] == "1.0"
    assert msg.get_content_type() == "text/plain"
    assert msg.get_content_charset() == "utf-8"
    assert content(msg) == "Guten Tag,\nwir kümmern uns darum.\n"
    for absent in ("cc", "reply-to", "in-reply-to", "references", "auto-submitted", "precedence"):
        assert absent not in header_names(raw)


def test_wire_format_is_crlf_and_seven_bit() -> None:
    raw = compose(dataclasses.replace(BASE, html="<p>Grüße</p>"), NOW)
    assert b"\n" not in raw.replace(b"\r\n", b"")
    assert raw.isascii()
    assert max(len(line) for line in raw.split(b"\r\n")) <= 998


def test_multipart_alternative_with_html() -> None:
    msg = build(html="<p>Grüße aus <b>Köln</b></p>")
    assert msg.get_content_type() == "multipart/alternative"
    parts = list(msg.iter_parts())
    assert [p.get_content_type() for p in parts] == ["text/plain", "text/html"]
    assert content(parts[1]) == "<p>Grüße aus <b>Köln</b></p>\n"
    assert all("MIME-Version" not in p for p in parts)  # only the top level says it


def test_attachments_make_multipart_mixed() -> None:
    msg = build(
        html="<p>x</p>",
        attachments=(
            (
                "Übersicht.xlsx",
                "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                b"PK\x03\x04data",
            ),
            ("../../etc/passwd", "not a type", b"\x00\x01"),
        ),
    )
    assert msg.get_content_type() == "multipart/mixed"
    body, first, second = msg.iter_parts()
    assert body.get_content_type() == "multipart/alternative"
    assert first.get_filename() == "Übersicht.xlsx"
    assert first.get_content() == b"PK\x03\x04data"
    assert second.get_content_type() == "application/octet-stream"
    assert "/" not in (second.get_filename() or "/")


def test_a_forwarded_mail_goes_as_a_file_not_as_a_base64_message_part() -> None:
    forwarded = "Subject: Alte Mail\r\n\r\nGrüße\r\n".encode()
    msg = build(attachments=(("Alte Mail.eml", "message/rfc822", forwarded),))
    _, attachment = msg.iter_parts()
    assert attachment.get_content_type() == "application/octet-stream"
    assert attachment.get_filename() == "Alte Mail.eml"
    assert attachment.get_content() == forwarded


def test_inline_images_go_beside_the_html_that_shows_them() -> None:
    image = ("shot.png", "image/png", b"\x89PNG", "shot-1@laptop")
    msg = build(html='<img src="cid:shot-1@laptop">', inline=(image,))
    assert msg.get_content_type() == "multipart/related"
    body, shown = msg.iter_parts()
    assert body.get_content_type() == "multipart/alternative"
    assert shown["Content-ID"] == "<shot-1@laptop>"
    assert shown.get_content_disposition() == "inline"
    assert shown.get_content() == b"\x89PNG"
    # Without HTML to show it in, the image is a plain attachment.
    msg = build(inline=(image,), attachments=(("a.txt", "text/plain", b"a"),))
    assert msg.get_content_type() == "multipart/mixed"
    names = [(p.get_filename(), p.get_content_disposition()) for p in msg.iter_attachments()]
    assert names == [("a.txt", "attachment"), ("shot.png", "attachment")]


def test_text_with_attachment_keeps_text_first() -> None:
    msg = build(attachments=(("list.csv", "text/csv", b"a;b\n"),))
    body, attachment = msg.iter_parts()
    assert body.get_content_type() == "text/plain"
    assert attachment.get_content_disposition() == "attachment"


def test_crlf_in_subject_cannot_add_a_header() -> None:
    raw = compose(dataclasses.replace(BASE, subject="Hi\r\nBcc: evil@x"), NOW)
    msg = message_from_bytes(raw, policy=default)
    assert msg.get_all("Subject") == ["Hi Bcc: evil@x"]
    assert msg.get_all("Bcc") is None
    assert header_names(raw).count("subject") == 1 and "bcc" not in header_names(raw)


@pytest.mark.parametrize("evil", ["\n", "\r", "\x00", "\x0b", "\x85", "\u2028"])
def test_every_line_break_and_control_character_is_neutralised(evil: str) -> None:
    raw = compose(
        dataclasses.replace(
            BASE,
            subject=f"a{evil}Bcc: x@evil.example",
            extra_headers=(("X-Ticket", f"1042{evil}Bcc: y@evil.example"),),
        ),
        NOW,
    )
    assert "bcc" not in header_names(raw)
    msg = message_from_bytes(raw, policy=default)
    assert str(msg["X-Ticket"]) == "1042 Bcc: y@evil.example"


def test_injection_through_addresses_is_refused() -> None:
    with pytest.raises(InvalidAddress):
        compose(dataclasses.replace(BASE, to=("alice@kunde.example\r\nBcc: evil@x",)), NOW)
    with pytest.raises(InvalidAddress):
        compose(dataclasses.replace(BASE, reply_to="a@b.example, c@d.example"), NOW)


def test_injection_through_message_ids_is_dropped() -> None:
    raw = compose(
        dataclasses.replace(
            BASE, in_reply_to="<a@b>\r\nBcc: evil@x", references=("<ok@x.example>\nBcc: evil@x",)
        ),
        NOW,
    )
    assert "bcc" not in header_names(raw)
    msg = message_from_bytes(raw, policy=default)
    assert msg["In-Reply-To"] is None  # "<a@b> Bcc: evil@x" is no msg-id
    assert str(msg["References"]) == "<ok@x.example>"


def test_display_name_with_umlauts_round_trips() -> None:
    raw = compose(
        dataclasses.replace(
            BASE,
            from_addr="Jürgen Müller <support@example.com>",
            to=('"Müller, Anna" <anna@kunde.example>', "bob@kunde.example"),
            cc=("Zoë Ünal <zoe@kunde.example>",),
        ),
        NOW,
    )
    assert raw.isascii()
    msg = message_from_bytes(raw, policy=default)
    (sender,) = msg["From"].addresses
    assert (sender.display_name, sender.addr_spec) == ("Jürgen Müller", "support@example.com")
    assert [a.display_name for a in msg["To"].addresses] == ["Müller, Anna", ""]
    assert [a.addr_spec for a in msg["To"].addresses] == ["anna@kunde.example", "bob@kunde.example"]
    assert msg["Cc"].addresses[0].display_name == "Zoë Ünal"


def test_non_ascii_subject_is_encoded_and_decodes_back() -> None:
    subject = "[CID-1042] Ärger mit dem Drucker – bitte"
    raw = compose(dataclasses.replace(BASE, subject=subject), NOW)
    assert b"=?utf-8?" in raw.split(b"\r\n\r\n")[0]
    msg = message_from_bytes(raw, policy=default)
    assert str(msg["Subject"]) == subject


@pytest.mark.parametrize(
    "subject",
    [
        "Ä" * 200,  # two bytes a character
        ("Störung 🚨🖨️ " * 12).strip(),  # four-byte characters and a joiner
        "打印机坏了，请尽快帮忙。" * 10,  # three bytes a character
        "x" * 950 + " ünd",  # a word longer than any line
    ],
)
def test_long_encoded_subjects_fold_between_characters(subject: str) -> None:
    raw = compose(dataclasses.replace(BASE, subject=subject), NOW)
    head = raw.split(b"\r\n\r\n")[0].decode("ascii")
    block = head[head.index("Subject:") :]
    subject_lines = []
    for line in block.split("\r\n"):
        if subject_lines and not line.startswith(" "):
            break
        subject_lines.append(line)
    assert all(len(line) <= 78 for line in subject_lines), subject_lines
    words = " ".join(subject_lines).split()[1:]
    assert all(len(word) <= 75 and word.startswith("=?utf-8?b?") for word in words)
    msg = message_from_bytes(raw, policy=default)
    assert str(msg["Subject"]) == subject


def test_threading_headers() -> None:
    msg = build(
        in_reply_to="<orig@kunde.example>",
        references=("<root@kunde.example>", "orig@kunde.example"),
    )
    assert str(msg["In-Reply-To"]) == "<orig@kunde.example>"
    assert str(msg["References"]) == "<root@kunde.example> <orig@kunde.example>"


def test_long_message_ids_are_not_mangled() -> None:
    # Outlook ids run past 78 columns; the stdlib folder would RFC 2047-encode them.
    long_id = f"<{'A' * 100}@EURPRD01.PROD.OUTLOOK.COM>"
    raw = compose(dataclasses.replace(BASE, in_reply_to=long_id, references=(long_id,)), NOW)
    assert b"=?" not in raw.split(b"\r\n\r\n")[0]
    msg = message_from_bytes(raw, policy=default)
    assert str(msg["In-Reply-To"]) == long_id
    assert str(msg["References"]) == long_id


def test_references_are_capped_keeping_the_root() -> None:
    ids = tuple(f"<m{i}@x.example>" for i in range(50))
    raw = compose(dataclasses.replace(BASE, references=(*ids, ids[3])), NOW)
    head = raw.split(b"\r\n\r\n")[0]
    assert all(len(line) <= 78 for line in head.split(b"\r\n"))
    kept = str(message_from_bytes(raw, policy=default)["References"]).split()
    assert len(kept) == MAX_REFERENCES
    assert kept[0] == "<m0@x.example>"
    assert kept[1:] == list(ids[-(MAX_REFERENCES - 1) :])


def test_auto_submitted_headers() -> None:
    raw = compose(
        dataclasses.replace(
            BASE, auto_submitted="auto-replied", reply_to="Support <support@example.com>"
        ),
        NOW,
    )
    msg = message_from_bytes(raw, policy=default)
    assert msg["Auto-Submitted"] == "auto-replied"
    assert msg["X-Auto-Response-Suppress"] == "All"
    assert str(msg["Reply-To"]) == "Support <support@example.com>"
    assert "precedence" not in header_names(raw)  # RFC 3834 advises against it


@pytest.mark.parametrize(
    "change",
    [
        {"auto_submitted": "yes please"},
        {"extra_headers": (("Bcc", "x@y.example"),)},
        {"extra_headers": (("Subject", "second"),)},
        {"extra_headers": (("X-Bad Name", "v"),)},
        {"message_id": "no id here"},
        {"to": ()},
        {"from_addr": "not an address"},
    ],
)
def test_refused_values(change: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        compose(dataclasses.replace(BASE, **change), NOW)  # type: ignore[arg-type]


def test_naive_time_is_refused() -> None:
    with pytest.raises(ValueError, match="aware"):
        compose(BASE, datetime(2026, 11, 2, 9, 30))


KEY = bytes(range(32))


def test_make_message_id_shape_and_round_trip() -> None:
    mid = make_message_id(1042, "Example.COM", KEY)
    assert re.fullmatch(r"<mailgate\.1042\.[0-9a-f]{16}\.[0-9a-f]{16}@example\.com>", mid)
    assert make_message_id(1042, "example.com", KEY) != mid
    assert ticket_number_from_message_id(mid, "example.com", KEY) == 1042
    assert ticket_number_from_message_id(mid.strip("<>"), "EXAMPLE.com", KEY) == 1042


def test_a_message_id_of_our_shape_needs_our_key() -> None:
    mid = make_message_id(1042, "example.com", KEY)
    assert is_our_message_id(mid, "example.com", KEY)
    assert not is_our_message_id(mid, "example.com", bytes(32))
    assert ticket_number_from_message_id(mid, "example.com", bytes(32)) is None
    # Another ticket's number in our id breaks the mark.
    assert (
        ticket_number_from_message_id(mid.replace(".1042.", ".1043."), "example.com", KEY) is None
    )


def test_message_id_without_ticket() -> None:
    mid = make_message_id(None, "example.com", KEY)
    assert mid.startswith("<mailgate.0.")
    assert ticket_number_from_message_id(mid, "example.com", KEY) is None


@pytest.mark.parametrize(
    "message_id",
    [
        "<mailgate.1042.0123456789abcdef@other.example>",  # someone else's domain
        "<mailgate.1042.0123456789abcdef@example.com.evil.example>",
        "<1042.0123456789abcdef@example.com>",
        "<mailgate.x.0123456789abcdef@example.com>",
        "<mailgate.1042.0123456789abcdef@example.com>",  # the old shape, which anyone can write
        "<mailgate.1042.0123456789abcdef.0123456789abcdef@example.com>",  # no valid mark
        "",
    ],
)
def test_foreign_message_ids_carry_no_ticket(message_id: str) -> None:
    assert ticket_number_from_message_id(message_id, "example.com", KEY) is None


def test_make_message_id_refuses_a_bad_domain() -> None:
    with pytest.raises(ValueError):
        make_message_id(1, "exa mple.com>", KEY)


@pytest.mark.parametrize(
    ("value", "expected"),
    [("a\r\nb", "a b"), ("  a \t b  ", "a b"), ("a\x00b\x7fc\x9bd", "a b c d"), ("Grüße", "Grüße")],
)
def test_clean_header(value: str, expected: str) -> None:
    assert clean_header(value) == expected


def test_parse_address_converts_international_domains() -> None:
    assert parse_address("Zoë <zoe@bücher.example>").addr_spec == "zoe@xn--bcher-kva.example"


def test_address_domain() -> None:
    assert address_domain("Support <Support@Example.COM>") == "example.com"
    assert address_domain("nobody") == ""


def test_no_header_line_passes_998_octets() -> None:
    raw = compose(
        dataclasses.replace(
            BASE,
            subject="[CID-1042] " + "x" * 2000,
            to=(f"{'Ö' * 400} <long@kunde.example>", f"{'N' * 1200} <n@kunde.example>"),
        ),
        NOW,
    )
    head = raw.split(b"\r\n\r\n", 1)[0]
    assert max(map(len, head.split(b"\r\n"))) <= 998
    msg = message_from_bytes(raw, policy=default)
    assert str(msg["Subject"]) == "[CID-1042] " + "x" * 2000
    assert [a.addr_spec for a in msg["To"].addresses] == ["long@kunde.example", "n@kunde.example"]
