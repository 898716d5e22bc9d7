"""parse(): specific corpus messages checked in detail, and synthetic edge cases built as bytes."""

from __future__ import annotations

import base64
import binascii
import random
import struct
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mailgate.reading.mime import charsets
from mailgate.reading.mime.charsets import decode_bytes
from mailgate.reading.mime.filenames import safe_filename
from mailgate.reading.mime.headers import decode_header
from mailgate.reading.parse import ParsedMail, parse
from tests.conftest import CORPUS


def corpus(name: str) -> ParsedMail:
    return parse((CORPUS / name).read_bytes())


def mail(*header_lines: str, body: bytes = b"body\r\n") -> bytes:
    """A message from header lines (str, UTF-8 encoded) and a raw body."""
    head = "\r\n".join(header_lines).encode("utf-8")
    return head + b"\r\n\r\n" + body


def multipart(subtype: str, *parts: bytes) -> bytes:
    boundary = b"=-=-=boundary=-=-="
    body = b"".join(b"--" + boundary + b"\r\n" + p + b"\r\n" for p in parts)
    body += b"--" + boundary + b"--\r\n"
    return mail(
        "From: Alice <alice@example.com>",
        "To: support@example.org",
        "Subject: test",
        "Message-ID: <m1@example.com>",
        "Date: Tue, 03 Nov 2026 10:00:00 +0100",
        "MIME-Version: 1.0",
        f'Content-Type: multipart/{subtype}; boundary="{boundary.decode()}"',
        body=body,
    )


def part(*header_lines: str, body: bytes) -> bytes:
    return "\r\n".join(header_lines).encode("utf-8") + b"\r\n\r\n" + body


def attachment(filename_params: str, data: bytes = b"%PDF-1.4\n") -> bytes:
    return part(
        "Content-Type: application/pdf",
        "Content-Transfer-Encoding: base64",
        f"Content-Disposition: attachment; {filename_params}",
        body=base64.encodebytes(data),
    )


TEXT_PART = part("Content-Type: text/plain; charset=utf-8", body=b"See attached.")


# --- corpus: encoded words, charsets, names ---------------------------------------------------


def test_corpus_iso_2022_jp_body_and_utf8_subject() -> None:
    parsed = corpus("multi_charset/japanese_iso_2022.eml")
    assert parsed.subject == "まみむめも"
    assert parsed.text == "すみません。"
    assert parsed.to == ("raasdnil@gmail.com",)
    assert parsed.from_name == "Mikel Lindsaar"


def test_corpus_folded_iso_2022_jp_subject_after_mbox_line() -> None:
    parsed = corpus("rfc2822/example14.eml")  # starts with an mbox "From " line
    assert parsed.subject == "Re: TEST テストテスト"
    assert parsed.message_id == "0CC5E11ED2C1D@example.com"
    assert parsed.in_reply_to == ("rid_5582199198@msgid.example.com",)
    assert parsed.text == "Hello"


def test_corpus_shift_jis_body() -> None:
    parsed = corpus("multi_charset/japanese_shift_jis.eml")
    assert parsed.text.startswith("あいうえお\n\nこのメールはテスト用のメールです。")
    assert parsed.text.endswith("今後ともよろしくお願い申し上げます！")
    assert not any(d.startswith("charset-fallback") for d in parsed.defects)


def test_corpus_ks_c_5601_body_decodes_as_cp949() -> None:
    assert corpus("multi_charset/ks_c_5601-1987.eml").text == "스티해"


def test_corpus_euc_kr_encoded_word_subject() -> None:
    parsed = corpus("plain_emails/raw_email.eml")
    assert parsed.subject == "NOTE: 한국말로 하는 것"
    assert parsed.text.startswith("대부분의 마찬가지로")


def test_corpus_partially_encoded_subject_keeps_literal_text() -> None:
    parsed = corpus("plain_emails/raw_email_with_partially_quoted_subject.eml")
    assert parsed.subject == 'Re: Test: "漢字" mid "漢字" tail'


def test_corpus_latin1_subject_and_rfc2231_filename() -> None:
    parsed = corpus("attachment_emails/attachment_with_quoted_filename.eml")
    assert parsed.subject == "Eelanalüüsi päring"
    assert [p.filename for p in parsed.parts] == ["Eelanalüüsi päring.jpg"]
    assert parsed.parts[0].content_type == "image/jpeg"
    assert parsed.parts[0].payload.startswith(b"\xff\xd8")  # really base64-decoded JPEG


def test_corpus_raw_8bit_utf8_filename() -> None:
    parsed = corpus("attachment_emails/attachment_nonascii_filename.eml")
    assert [p.filename for p in parsed.parts] == ["ciële.txt"]
    assert parsed.parts[0].payload == b"Hi there.\r\n"
    assert parsed.text == "This is the first part."


def test_corpus_japanese_attachment_names() -> None:
    short = corpus("multi_charset/japanese_attachment.eml")
    assert [p.filename for p in short.parts] == ["てすと.txt"]
    long = corpus("multi_charset/japanese_attachment_long_name.eml")
    assert long.subject == "まみむめも" * 10
    # RFC 2231 continuations (filename*0*=, filename*1*=) joined before decoding.
    assert [p.filename for p in long.parts] == ["かきくけこ" * 5 + ".txt"]


def test_corpus_base64_encoded_word_as_unquoted_filename() -> None:
    parsed = corpus("attachment_emails/attachment_with_base64_encoded_name.eml")
    assert [p.filename for p in parsed.parts] == ["This is a test.pdf"]
    assert parsed.in_reply_to == ("F6E2D0B4-CC35-4A91-BA4C-C7C712B10C13@mac.com",)


def test_corpus_rfc6532_raw_utf8_headers() -> None:
    parsed = corpus("rfc6532/utf8_headers.eml")
    assert parsed.subject == "Säying Hello"
    assert (parsed.from_addr, parsed.from_name) == ("jdöe@mächine.example", "Jöhn Doe")
    assert parsed.to == ("märy@exämple.net",)


def test_corpus_undeclared_cp1252_subject_falls_back() -> None:
    parsed = corpus("error_emails/invalid_subject_characters.eml")
    assert (
        parsed.subject == "Formação FrenetikPolis: Mega Campanha Final Verão | Cursos de Setembro"
    )
    assert parsed.from_name == "Formação Frenetikpolis"  # quoted encoded word, decoded anyway
    assert "header-charset-fallback:cp1252" in parsed.defects


def test_corpus_broken_base64_encoded_word() -> None:
    parsed = corpus("error_emails/bad_encoded_subject.eml")
    assert parsed.subject == "TEST"
    assert "bad-encoded-word" in parsed.defects


def test_corpus_encoded_display_name() -> None:
    parsed = corpus("error_emails/header_fields_with_empty_values.eml")
    assert (parsed.from_addr, parsed.from_name) == ("jorn@prikkprikkprikk.no", "Jørn Støylen")


# --- corpus: structure -------------------------------------------------------------------------


def test_corpus_bounce_with_message_rfc822() -> None:
    parsed = corpus("multipart_report_emails/multi_address_bounce1.eml")
    assert parsed.report_type == "delivery-status"
    assert parsed.report_original_ids == ("118707422.15521266992174819.JavaMail.root@lvmail01",)
    assert parsed.report_failed_recipients == (
        "bbbbvhvbbvkjbhfbvbvjhb@gmail.com",
        "bscdbcjhasbcjhbdscbhbsdhcbj@gmail.com",
        "egyfefsdvsfvvhjsd@gmail.com",
        "kfhejkfbsjkjsbhds@gmail.com",
        "qfvhgsvhgsduiohncdhcvhsdfvsfygusd@gmail.com",
    )
    assert parsed.headers["auto-submitted"] == "auto-replied"
    assert parsed.text.startswith("This is the mail system at host lvmail01.LL.com.")
    assert [p.content_type for p in parsed.parts] == ["message/delivery-status", "message/rfc822"]
    assert parsed.parts[1].filename == "Test of bounce email.eml"


def test_corpus_bounce_with_rfc822_headers_only() -> None:
    parsed = corpus("multipart_report_emails/report_530.eml")
    assert parsed.report_type == "delivery-status"
    assert parsed.report_original_ids == ("200712232303.lBNN3jDq002941@mail12.rrrr.com.au",)
    assert parsed.report_failed_recipients == ("edwin@zzzzzzz.com",)


def test_corpus_delay_warning_has_no_failed_recipients() -> None:
    parsed = corpus("multipart_report_emails/report_422.eml")
    assert parsed.report_type == "delivery-status"
    assert parsed.report_original_ids == (
        "15655788.13.1200472642578.JavaMail.Administrator@mail.ttttt.com.au",
    )
    assert parsed.report_failed_recipients == ()  # Action: delayed


def test_corpus_bounce_with_bracketed_final_recipient() -> None:
    parsed = corpus("multipart_report_emails/multipart_report_multiple_status.eml")
    assert parsed.report_failed_recipients == ("u@ci.com",)  # "RFC822; <u@ci.com>"
    assert parsed.report_original_ids == ("4c2a146147ac8_61ff157c4ec1652df@s.h.c.mail",)
    assert parsed.delivered_to == ("notification+promo@blah.com",)  # both headers, deduplicated


def test_corpus_message_without_body() -> None:
    parsed = corpus("error_emails/missing_body.eml")
    assert parsed.text == ""
    assert parsed.parts == ()
    assert parsed.html is None
    assert "broken-multipart" in parsed.defects


def test_corpus_two_addresses_in_from() -> None:
    parsed = corpus("plain_emails/raw_email_multiple_from.eml")
    assert (parsed.from_addr, parsed.from_name) == ("", "")  # neither is taken for the sender
    assert parsed.delivered_to == ("tim@powerupdev.com",)
    assert {"address-recovered:from", "multiple-from-addresses", "ambiguous-from"} <= set(
        parsed.defects
    )


@pytest.mark.parametrize(
    "name",
    [
        "error_emails/bad_date_header.eml",
        "error_emails/bad_date_header2.eml",
        "plain_emails/raw_email_with_bad_date.eml",
    ],
)
def test_corpus_broken_dates(name: str) -> None:
    parsed = corpus(name)
    assert parsed.date is None
    assert "bad-date" in parsed.defects


def test_corpus_date_keeps_its_offset() -> None:
    parsed = corpus("multipart_report_emails/report_530.eml")
    assert parsed.date == datetime(2007, 12, 24, 10, 3, 53, tzinfo=timezone(timedelta(hours=11)))
    assert parsed.date.utcoffset() == timedelta(hours=11)


def test_corpus_implausible_date_is_kept_but_flagged() -> None:
    parsed = corpus("plain_emails/raw_email_bad_time.eml")
    assert parsed.date is not None and parsed.date.year == 3609
    assert "date:weekday-mismatch" in parsed.defects


def test_corpus_inline_image_by_content_id() -> None:
    parsed = corpus("attachment_emails/attachment_content_location.eml")
    (image,) = parsed.parts
    assert (image.filename, image.content_id, image.inline) == ("Photo25.jpg", "qbFGyPQAS8", True)


def test_corpus_attached_message_keeps_its_bytes() -> None:
    parsed = corpus("attachment_emails/attachment_message_rfc822.eml")
    (message,) = parsed.parts
    assert (message.filename, message.content_type) == ("ForwardedMessage.eml", "message/rfc822")
    inner = parse(message.payload)
    assert inner.from_addr == "xxxx@xxxx.com"
    assert inner.parts[0].filename == "broken.pdf"


def test_corpus_mangled_header_block_is_repaired() -> None:
    parsed = corpus("plain_emails/raw_email_incorrect_header.eml")
    assert parsed.subject == "Stop adware/spyware once and for all."
    assert parsed.from_addr == "xxx@xxx.xxx"
    assert "headers-repaired" in parsed.defects


def test_corpus_message_ids_lose_their_brackets() -> None:
    parsed = corpus("rfc2822/example07.eml")
    assert parsed.message_id == "abcd.1234@local.machine.tld"
    assert parsed.in_reply_to == ("3456@example.net",)
    assert parsed.references == ("1234@local.machine.example", "3456@example.net")


def test_corpus_enriched_alternative_is_not_an_attachment() -> None:
    parsed = corpus("mime_emails/raw_email11.eml")
    assert parsed.text == "XXXXX Xxxxx"
    assert parsed.parts == ()


# --- synthetic: charsets ------------------------------------------------------------------------

RUSSIAN = "Здравствуйте! Пожалуйста, помогите мне с заказом номер 12345. Спасибо."


def test_koi8r_body_without_charset_is_detected() -> None:
    parsed = parse(mail("From: ivan@example.ru", "Subject: zakaz", body=RUSSIAN.encode("koi8_r")))
    assert parsed.text == RUSSIAN
    assert "charset-fallback:koi8-r" in parsed.defects


def test_cp1252_body_declared_us_ascii() -> None:
    body = "Hallo,\r\n\r\nviele Grüße aus München\r\nHans".encode("cp1252")
    raw = mail("From: hans@example.de", "Content-Type: text/plain; charset=us-ascii", body=body)
    parsed = parse(raw)
    assert parsed.text == "Hallo,\n\nviele Grüße aus München\nHans"
    assert "Grüße" in parsed.text and "\ufffd" not in parsed.text


def test_shift_jis_body_declared_us_ascii() -> None:
    body = "お問い合わせありがとうございます。".encode("shift_jis")
    raw = mail("From: a@example.jp", 'Content-Type: text/plain; charset="us-ascii"', body=body)
    assert parse(raw).text == "お問い合わせありがとうございます。"


def test_utf8_labelled_latin1_is_read_as_utf8() -> None:
    raw = mail("Content-Type: text/plain; charset=iso-8859-1", body="Grüße".encode())
    parsed = parse(raw)
    assert parsed.text == "Grüße"
    assert "charset-fallback:utf-8" in parsed.defects


def test_raw_8bit_utf8_subject() -> None:
    raw = mail("From: x@example.com", "Subject: Grüße aus Köln – 東京", "To: y@example.com")
    assert parse(raw).subject == "Grüße aus Köln – 東京"


def test_raw_8bit_subject_uses_body_charset_as_hint() -> None:
    head = b"Subject: " + "Привет мир".encode("koi8_r") + b"\r\n"
    head += b"Content-Type: text/plain; charset=koi8-r\r\n\r\n"
    parsed = parse(head + "Тест".encode("koi8_r"))
    assert (parsed.subject, parsed.text) == ("Привет мир", "Тест")


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("=?ISO-2022-JP?B?GyRCJDMkcyRLJEEkTxsoQg==?=", "こんにちは"),
        ("=?shift_jis?B?g2WDWINn?=", "テスト"),
        ("=?UTF-8?Q?Gr=C3=BC=C3=9Fe?= =?UTF-8?Q?_aus_K=C3=B6ln?=", "Grüße aus Köln"),
        ("=?UTF-8?B?R3LD?= =?UTF-8?B?vMOfZQ==?=", "Grüße"),  # character split across words
        ("=?iso-8859-2?Q?Za=BF=F3=B3=E6?=", "Zażółć"),
        ("=?x-unknown?Q?Gr=FC=DFe?=", "Grüße"),
        ("=?ks_c_5601-1987?B?vcW/68ij?=", "신용호"),
        ("Re: [ticket #7]\r\n\t=?utf-8?q?caf=C3=A9?=   now", "Re: [ticket #7] café now"),
    ],
)
def test_encoded_word_subjects(header: str, expected: str) -> None:
    assert parse(mail(f"Subject: {header}")).subject == expected


def test_iso_2022_jp_body_and_subject() -> None:
    body = "お世話になっております。".encode("iso2022_jp")
    raw = mail(
        "Subject: =?ISO-2022-JP?B?" + base64.b64encode("件名".encode("iso2022_jp")).decode() + "?=",
        "Content-Type: text/plain; charset=ISO-2022-JP",
        body=body,
    )
    parsed = parse(raw)
    assert (parsed.subject, parsed.text) == ("件名", "お世話になっております。")


def test_raw_iso_2022_jp_subject_without_encoded_words() -> None:
    raw = b"Subject: " + "件名のテスト".encode("iso2022_jp") + b"\r\n\r\nbody"
    assert parse(raw).subject == "件名のテスト"


def test_decode_bytes_never_gives_replacement_characters() -> None:
    for data in (bytes(range(256)), bytes(range(255, -1, -1)) * 3, b"\xc3\x28\xa0\xa1"):
        assert "\ufffd" not in decode_bytes(data).text


def test_decode_bytes_ends_with_latin1(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(charsets, "_detect", lambda data: None)
    # 0x81 is undefined in cp1252, so only latin-1 is left.
    result = decode_bytes(b"caf\xe9 \x81")
    assert (result.text, result.charset, result.fallback) == ("caf\xe9 \x81", "latin-1", True)


def test_decode_header_folds_to_one_line() -> None:
    assert decode_header(b"a\r\n\tb \t c\r\n d")[0] == "a b c d"


# --- synthetic: addresses, ids, dates, headers ---------------------------------------------------


def test_two_from_headers_name_no_sender() -> None:
    raw = mail("From: First <first@example.com>", "From: second@example.com", "Subject: x")
    parsed = parse(raw)
    assert (parsed.from_addr, parsed.from_name) == ("", "")
    assert {"multiple-from-headers", "ambiguous-from"} <= set(parsed.defects)


def test_addresses_are_bare_and_lower_case() -> None:
    raw = mail(
        'From: "Müller, Hans" <Hans.Mueller@Example.DE>',
        "To: A <A@x.example>, b@Y.example",
        "Cc: undisclosed-recipients:;",
        "Reply-To: <Replies@Example.DE>",
        "Delivered-To: Support@example.org",
        "X-Original-To: help@example.org",
    )
    parsed = parse(raw)
    assert (parsed.from_addr, parsed.from_name) == ("hans.mueller@example.de", "Müller, Hans")
    assert parsed.to == ("a@x.example", "b@y.example")
    assert parsed.cc == ()
    assert parsed.reply_to == ("replies@example.de",)
    assert parsed.delivered_to == ("support@example.org", "help@example.org")


def test_unparseable_from_gives_empty_address() -> None:
    parsed = parse(mail("From: Nobody Here", "Subject: x"))
    assert parsed.from_addr == ""
    assert "address:from:invalid-or-ambiguous-address" in parsed.defects


def test_message_ids_without_brackets_in_order() -> None:
    raw = mail(
        "Message-ID: <abc@example.com>",
        "In-Reply-To: <p2@example.com> (from mail of Tuesday)",
        "References: <p0@example.com>\r\n <p1@example.com>\r\n\t<p2@example.com>",
    )
    parsed = parse(raw)
    assert parsed.message_id == "abc@example.com"
    assert parsed.in_reply_to == ("p2@example.com",)
    assert parsed.references == ("p0@example.com", "p1@example.com", "p2@example.com")


def test_missing_ids_and_date_are_noted() -> None:
    parsed = parse(mail("Subject: x"))
    assert parsed.message_id is None and parsed.date is None
    assert {"no-message-id", "no-date", "no-from"} <= set(parsed.defects)


def test_date_without_zone_becomes_utc() -> None:
    parsed = parse(mail("Date: Tue, 03 Nov 2026 10:00:00 -0000"))
    assert parsed.date == datetime(2026, 11, 3, 10, 0, tzinfo=UTC)
    assert "date-zone-unknown" in parsed.defects


def test_headers_dict_has_screening_headers_decoded_and_unfolded() -> None:
    raw = mail(
        "Return-Path: <bounce@lists.example.com>",
        "Authentication-Results: mx.example.org;\r\n\tspf=pass smtp.mailfrom=example.com",
        "Auto-Submitted: auto-generated",
        "Precedence: bulk",
        "List-Id: Example list <list.example.com>",
        "List-Unsubscribe: <mailto:leave@example.com>",
        "X-Auto-Response-Suppress: All",
        "Subject: =?utf-8?q?first?=",
        "Subject: second",
    )
    headers = parse(raw).headers
    assert headers["return-path"] == "<bounce@lists.example.com>"
    assert headers["authentication-results"] == (
        "mx.example.org; spf=pass smtp.mailfrom=example.com"
    )
    assert headers["auto-submitted"] == "auto-generated"
    assert headers["precedence"] == "bulk"
    assert headers["list-id"] == "Example list <list.example.com>"
    assert headers["list-unsubscribe"] == "<mailto:leave@example.com>"
    assert headers["x-auto-response-suppress"] == "All"
    assert headers["subject"] == "first"


# --- synthetic: bodies ---------------------------------------------------------------------------

HTML = (
    b"<html><head><title>Newsletter</title><style>p {color: red}</style>"
    b"<script>alert('x')</script></head><body><h1>Hello</h1><p>Dear <b>customer</b>,"
    b' see <a href="https://example.com/x">our site</a>.</p><img src="cid:logo" alt="Logo">'
    b"<ul><li>one</li><li>two</li></ul></body></html>"
)
LOGO = part(
    "Content-Type: image/png",
    "Content-Transfer-Encoding: base64",
    "Content-ID: <logo>",
    body=base64.encodebytes(b"\x89PNG\r\n\x1a\nfake"),
)


def test_html_only_mail() -> None:
    html_part = part("Content-Type: text/html; charset=utf-8", body=HTML)
    parsed = parse(multipart("related", html_part, LOGO))
    assert parsed.text == (
        "Hello\n\nDear customer, see our site <https://example.com/x>.\n\n- one\n- two"
    )
    assert parsed.html is not None
    assert "<script" not in parsed.html and "alert" not in parsed.html
    assert '<img src="cid:logo"' in parsed.html
    (logo,) = parsed.parts
    assert (logo.content_id, logo.inline, logo.content_type) == ("logo", True, "image/png")
    assert logo.payload.startswith(b"\x89PNG")


def test_alternative_takes_plain_text_and_html() -> None:
    plain = part("Content-Type: text/plain; charset=utf-8", body=b"Plain words.")
    html_part = part("Content-Type: text/html; charset=utf-8", body=b"<p>Rich words.</p>")
    parsed = parse(multipart("alternative", plain, html_part))
    assert parsed.text == "Plain words."
    assert parsed.html == "<p>Rich words.</p>"
    assert parsed.parts == ()


def test_inline_text_parts_are_joined_and_named_text_is_an_attachment() -> None:
    first = part("Content-Type: text/plain", body=b"First part.")
    second = part("Content-Type: text/plain", "Content-Disposition: inline", body=b"Second.")
    log = part(
        "Content-Type: text/plain; name=log.txt",
        "Content-Disposition: inline; filename=log.txt",
        body=b"a log",
    )
    parsed = parse(multipart("mixed", first, log, second))
    assert parsed.text == "First part.\n\nSecond."
    assert [(p.filename, p.payload) for p in parsed.parts] == [("log.txt", b"a log")]


def test_uuencoded_body_becomes_an_attachment() -> None:
    data = bytes(range(256)) * 2
    lines = b"".join(binascii.b2a_uu(data[i : i + 45]) for i in range(0, len(data), 45))
    body = b"Here is the file:\r\n\r\nbegin 644 data.bin\r\n" + lines + b"`\r\nend\r\n\r\nBye"
    parsed = parse(mail("From: old@example.com", body=body))
    assert [(p.filename, p.payload) for p in parsed.parts] == [("data.bin", data)]
    assert parsed.parts[0].content_type == "application/octet-stream"
    assert "begin 644" not in parsed.text
    assert parsed.text.startswith("Here is the file:") and parsed.text.endswith("Bye")


def test_prose_that_looks_like_uuencode_stays_text() -> None:
    body = b"begin 644 the meeting\r\nwe talked about plans\r\nend\r\n"
    parsed = parse(mail(body=body))
    assert parsed.parts == ()
    assert "we talked about plans" in parsed.text


def test_attached_message_named_after_its_subject() -> None:
    inner = b"From: bob@example.com\r\nSubject: Quarterly report\r\n\r\nNumbers inside.\r\n"
    parsed = parse(multipart("mixed", TEXT_PART, part("Content-Type: message/rfc822", body=inner)))
    (message,) = parsed.parts
    assert (message.filename, message.content_type) == ("Quarterly report.eml", "message/rfc822")
    assert parse(message.payload).text == "Numbers inside."


def test_delivery_status_without_action_counts_every_recipient() -> None:
    status = part(
        "Content-Type: message/delivery-status",
        body=b"Reporting-MTA: dns; mx.example.net\r\n\r\n"
        b"Final-Recipient: rfc822; Gone@Example.NET\r\nStatus: 5.1.1\r\n",
    )
    headers = part(
        "Content-Type: text/rfc822-headers", body=b"Message-ID: <orig-1@example.com>\r\n"
    )
    raw = multipart('report; report-type="delivery-status"', TEXT_PART, status, headers)
    parsed = parse(raw)
    assert parsed.report_type == "delivery-status"
    assert parsed.report_failed_recipients == ("gone@example.net",)
    assert parsed.report_original_ids == ("orig-1@example.com",)


def test_calendar_alternative_is_kept_as_a_file() -> None:
    plain = part("Content-Type: text/plain", body=b"Invitation")
    invite = part("Content-Type: text/calendar; method=REQUEST", body=b"BEGIN:VCALENDAR")
    parsed = parse(multipart("alternative", plain, invite))
    assert parsed.text == "Invitation"
    assert [(p.filename, p.content_type) for p in parsed.parts] == [
        ("attachment-1.ics", "text/calendar")
    ]


def test_transfer_encoded_attached_message() -> None:
    inner = b"From: bob@example.com\r\nSubject: Encoded inner\r\n\r\nInner body.\r\n"
    attached = part(
        "Content-Type: message/rfc822",
        "Content-Transfer-Encoding: base64",
        body=base64.encodebytes(inner),
    )
    (message,) = parse(multipart("mixed", TEXT_PART, attached)).parts
    assert (message.filename, message.payload) == ("Encoded inner.eml", inner)


def test_read_receipt_names_the_original_message() -> None:
    receipt = part(
        "Content-Type: message/disposition-notification",
        body=b"Reporting-UA: mua.example.com\r\nOriginal-Message-ID: <sent-1@example.org>\r\n"
        b"Disposition: manual-action/MDN-sent-manually; displayed\r\n",
    )
    raw = multipart("report; report-type=disposition-notification", TEXT_PART, receipt)
    parsed = parse(raw)
    assert parsed.report_type == "disposition-notification"
    assert parsed.report_original_ids == ("sent-1@example.org",)
    assert parsed.report_failed_recipients == ()


# --- synthetic: attachment names -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ('filename="../../etc/passwd"', "passwd"),
        ('filename="..\\\\..\\\\windows\\\\system.ini"', "system.ini"),
        ("filename*=utf-8''evil%07na%0Ame%1B.pdf", "evilname.pdf"),
        ('filename="CON.txt"', "_CON.txt"),
        ('filename="lpt1"', "_lpt1"),
        ("filename*=UTF-8''%C3%9Cberweisung.pdf", "Überweisung.pdf"),
        ('filename="=?UTF-8?B?w5xiZXJ3ZWlzdW5nLnBkZg==?="', "Überweisung.pdf"),
        ("filename*0*=UTF-8''%E8%AB%8B%E6%B1%82; filename*1*=%E6%9B%B8.pdf", "請求書.pdf"),
        ('filename=".htaccess"', "htaccess"),
        ('filename="..."', "attachment-1.pdf"),
        ("size=3", "attachment-1.pdf"),
    ],
)
def test_attachment_names_are_decoded_and_safe(params: str, expected: str) -> None:
    parsed = parse(multipart("mixed", TEXT_PART, attachment(params)))
    assert [p.filename for p in parsed.parts] == [expected]
    assert parsed.parts[0].payload == b"%PDF-1.4\n"


def test_long_attachment_name_is_capped_keeping_its_extension() -> None:
    name = safe_filename("x" * 500 + ".docx", "application/octet-stream", 1)
    assert len(name) == 200 and name.endswith(".docx")


# --- synthetic: TNEF -----------------------------------------------------------------------------


def _tnef_attribute(level: int, name: int, kind: int, data: bytes) -> bytes:
    checksum = sum(data) & 0xFFFF
    return struct.pack("<BHHI", level, name, kind, len(data)) + data + struct.pack("<H", checksum)


def _tnef(body: bytes, files: list[tuple[bytes, bytes]]) -> bytes:
    """A minimal TNEF stream (MS-OXTNEF): version, OEM code page, body, then per file its
    rendering, title and data attributes."""
    blob = struct.pack("<IH", 0x223E9F78, 1)
    blob += _tnef_attribute(1, 0x9006, 0x0008, struct.pack("<I", 0x00010000))
    blob += _tnef_attribute(1, 0x9007, 0x0006, struct.pack("<II", 1252, 0))
    blob += _tnef_attribute(1, 0x800C, 0x0002, body + b"\x00")
    for title, data in files:
        blob += _tnef_attribute(2, 0x9002, 0x0006, bytes(14))
        blob += _tnef_attribute(2, 0x8010, 0x0001, title + b"\x00")
        blob += _tnef_attribute(2, 0x800F, 0x0006, data)
    return blob


def _winmail(data: bytes) -> bytes:
    return part(
        'Content-Type: application/ms-tnef; name="winmail.dat"',
        "Content-Transfer-Encoding: base64",
        'Content-Disposition: attachment; filename="winmail.dat"',
        body=base64.encodebytes(data),
    )


def test_tnef_winmail_dat_is_unpacked() -> None:
    blob = _tnef(
        b"Hello from Outlook", [(b"report.txt", b"numbers\n"), (b"\xdcbersicht.pdf", b"%P")]
    )
    parsed = parse(multipart("mixed", _winmail(blob)))
    assert parsed.text == "Hello from Outlook"
    assert [(p.filename, p.payload) for p in parsed.parts] == [
        ("report.txt", b"numbers\n"),
        ("Übersicht.pdf", b"%P"),  # cp1252 title, decoded with the TNEF code page
    ]
    assert parsed.parts[0].content_type == "text/plain"


def test_tnef_body_does_not_replace_real_text() -> None:
    blob = _tnef(b"Outlook body", [(b"a.txt", b"a")])
    parsed = parse(multipart("mixed", TEXT_PART, _winmail(blob)))
    assert parsed.text == "See attached."
    assert [p.filename for p in parsed.parts] == ["a.txt"]


def test_broken_winmail_dat_is_kept_with_a_defect() -> None:
    parsed = parse(multipart("mixed", TEXT_PART, _winmail(b"\x78\x9f\x3e\x22garbage")))
    assert [p.filename for p in parsed.parts] == ["winmail.dat"]
    assert "tnef-failed" in parsed.defects


# --- synthetic: hostile and broken input ---------------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"\x00" * 64,
        b"Subject: a\x00b\r\nFrom: x@example.com\x00\r\n\r\nbody\x00text",
        b"\r\n\r\n\r\n",
        b"no headers at all, just words",
        b"Content-Type: multipart/mixed\r\n\r\nno boundary parameter",
        b"Content-Type: multipart/mixed; boundary=x\r\n\r\n--x\r\nContent-Type: message/rfc822",
        b"Content-Transfer-Encoding: base64\r\n\r\n!!!not base64!!!=",
        b"Content-Type: text/plain; charset=base64\r\n\r\nYWJj",
        b"Content-Type: text/plain; charset=utf-16\r\n\r\n\xff\xfe\x00\xd8",
        b"Date: Mon, 99 Foo 99999 99:99:99 +9999\r\nSubject: =?utf-8?B?====?=\r\n\r\nx",
        b"From: =?utf-8?q?=?= <\r\n\r\n",
        b"Subject: =?\xee\xff?B?YQ==?=\r\nContent-Type: text/plain\r\n\r\n\xe9",
        b"Content-Type: image/png; charset*=utf-8''x\r\nContent-Transfer-Encoding: base64\r\n"
        b"\r\n\xff\xfeYWJj",
    ],
)
def test_broken_input_never_raises(raw: bytes) -> None:
    parsed = parse(raw)
    assert isinstance(parsed, ParsedMail)
    stage_failures = ("parse-failed", "headers-failed", "body-failed")
    assert not any(d.startswith(stage_failures) for d in parsed.defects)
    assert "\x00" not in parsed.text + parsed.subject
    parsed.text.encode("utf-8")


def test_nul_bytes_are_dropped_from_text_and_headers() -> None:
    parsed = parse(b"Subject: a\x00b\r\nFrom: x@example.com\r\n\r\nbody\x00text")
    assert parsed.subject == "a b"
    assert parsed.text == "bodytext"
    assert "nul-bytes-removed" in parsed.defects


def test_empty_input() -> None:
    parsed = parse(b"")
    assert (parsed.subject, parsed.text, parsed.from_addr, parsed.parts) == ("", "", "", ())


def test_very_deep_nesting_does_not_raise() -> None:
    depth = 3000
    head = b"".join(
        b"Content-Type: multipart/mixed; boundary=b%d\r\n\r\n--b%d\r\n" % (i, i)
        for i in range(depth)
    )
    parsed = parse(b"Subject: deep\r\n" + head + b"Content-Type: text/plain\r\n\r\ninnermost")
    assert parsed.subject == "deep"  # headers survive even when the MIME tree is given up


def test_corrupted_corpus_messages_never_raise() -> None:
    rng = random.Random(20261103)
    samples = sorted(CORPUS.glob("*/*.eml"))[::7]
    for path in samples:
        data = bytearray(path.read_bytes())
        for _ in range(20):
            damaged = bytearray(data)
            for _ in range(rng.randint(1, 30)):
                damaged[rng.randrange(len(damaged))] = rng.randrange(256)
            cut = rng.randrange(len(damaged))
            assert isinstance(parse(bytes(damaged[:cut])), ParsedMail)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=2000))
def test_arbitrary_bytes_never_raise(raw: bytes) -> None:
    parsed = parse(raw)
    assert isinstance(parsed.subject, str) and isinstance(parsed.text, str)


@settings(max_examples=150, deadline=None)
@given(
    st.lists(
        st.sampled_from(
            [
                b"Subject: =?utf-8?B?w",
                b"From: <a@b>",
                b"Content-Type: multipart/mixed; boundary=z",
                b"Content-Type: text/html; charset=x-unknown",
                b"Content-Transfer-Encoding: quoted-printable",
                b"--z",
                b"--z--",
                b"\xff\xfe\x1b$B",
                b"begin 644 a",
                b"M86)C",
                b"end",
                b"",
                b"Content-Disposition: attachment; filename*=utf-8''%ZZ",
            ]
        ),
        max_size=30,
    )
)
def test_mime_shaped_noise_never_raises(lines: list[bytes]) -> None:
    assert isinstance(parse(b"\r\n".join(lines)), ParsedMail)


def test_an_address_with_a_control_character_is_no_address() -> None:
    parsed = parse(mail("From: a@example.com", "To: x\x1bc@example.com, b@example.com"))
    assert parsed.to == ("b@example.com",)
