"""Loop, bounce and automatic-mail predicates: what a mail is before who sent it matters."""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable
from dataclasses import dataclass

from mailgate.reading.header_fields import AMBIGUOUS_FROM
from mailgate.reading.marks import is_our_message_id
from mailgate.reading.mime.report import (
    exchange_failed_recipients,
    is_qmail_bounce,
    qmail_failed_recipients,
    qmail_original_ids,
    returned_message_ids,
    text_addresses,
)
from mailgate.reading.parse import ParsedMail

_NO_REPLY_SENDER = re.compile(
    r"^(mailer-daemon|postmaster|no[-_.]?reply|do[-_.]?not[-_.]?reply|bounces?|"
    r"auto[-_.]?reply|autoresponder)([+\-._].*)?@",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Screening:
    """The verdict on a mail: whether it is ours, a bounce, or automatic (never answered)."""

    own: str | None = None  # why it is our own mail (a loop), else None
    bounce: bool = False
    automatic: str | None = None  # why no automatic mail may answer it, else None


def is_own_mail(
    mail: ParsedMail, own_addresses: frozenset[str], own_domain: str, key: bytes
) -> str | None:
    """Our own mail come back: by the keyed mark in its Message-ID, which nobody else can
    make. A Message-ID that only looks like ours, or an X-Loop naming our address, is what
    anyone can write and proves nothing. Mail whose From is our own address is ours or a
    forgery of us, never a customer's request: ignored either way."""
    if mail.from_addr and mail.from_addr in own_addresses:
        return f"sent from our own address {mail.from_addr}"
    if own_domain and is_our_message_id(mail.message_id or "", own_domain, key):
        return "carries our own Message-ID"
    return None


def from_daemon(mail: ParsedMail) -> bool:
    """Sent by a mail system (mailer-daemon, postmaster), not by a person."""
    return bool(_NO_REPLY_SENDER.match(mail.from_addr)) and (
        mail.from_addr.lower().startswith(("mailer-daemon", "postmaster"))
    )


def is_exchange_ndr(mail: ParsedMail) -> bool:
    """Exchange/Outlook often send NDRs without multipart/report: known by header or subject."""
    if "x-ms-exchange-message-is-ndr" in mail.headers:
        return True
    subject = mail.subject.strip().lower()
    return from_daemon(mail) and subject.startswith(("undeliverable:", "unzustellbar:"))


def ignored_sender(mail: ParsedMail, patterns: list[str]) -> str | None:
    """The configured pattern the sender matches, if any."""
    return next((p for p in patterns if fnmatch.fnmatchcase(mail.from_addr, p.lower())), None)


def is_mailer_daemon(mail: ParsedMail) -> bool:
    """MAILER-DAEMON writes nothing but reports on mail; a postmaster may be a person."""
    return mail.from_addr.lower().startswith("mailer-daemon")


def declares_delivery_report(mail: ParsedMail) -> bool:
    """The Content-Type header says delivery report, whether or not its parts can be read
    (a cut boundary, a truncated message)."""
    content_type = mail.headers.get("content-type", "").lower()
    return "multipart/report" in content_type and "delivery-status" in content_type


# Subjects of delivery failure notices (Postfix, Exim, Sendmail, Exchange, Gmail, GMX).
_FAILURE_SUBJECT = re.compile(
    r"^\s*(undeliver|undelivered mail|returned mail|mail delivery failed|delivery failure|"
    r"delivery status notification|failure notice|non[- ]?deliver|unzustellbar|"
    r"nicht zustellbar|unzustellbare|zustellung fehlgeschlagen|fehlgeschlagene zustellung)",
    re.IGNORECASE,
)
# Warnings that a mail is still being tried: nobody is failing yet.
_DELAY_SUBJECT = re.compile(
    r"^\s*(warning|delayed|delivery delayed|zustellung verzögert|verzögert)|\(delay\)|"
    r"still being retried",
    re.IGNORECASE,
)


def is_delay_warning(mail: ParsedMail) -> bool:
    return bool(_DELAY_SUBJECT.search(mail.subject)) and not mail.report_failed_recipients


def is_bounce(mail: ParsedMail) -> bool:
    """A report on mail we sent. Never needs a readable MIME structure: a report whose parts
    are lost is known by its Content-Type header, its sender and its subject."""
    if mail.report_type == "delivery-status" or declares_delivery_report(mail):
        return True
    if is_exchange_ndr(mail) or is_qmail_bounce(mail.text) or is_mailer_daemon(mail):
        return True
    if not from_daemon(mail):
        return False
    said_so = bool(auto_submitted(mail) or _FAILURE_SUBJECT.match(mail.subject))
    return said_so or bool(mail.report_original_ids or mail.report_failed_recipients)


def failed_recipients(mail: ParsedMail) -> tuple[str, ...]:
    """The addresses a bounce names as failed: from the RFC 3464 report, else from the text
    of a qmail bounce or an Exchange NDR, else every address its report text names (the
    caller keeps only those our mail went to)."""
    if mail.report_failed_recipients or mail.report_type == "delivery-status":
        # A report that could be read names every failure: none is a delay or a success.
        return mail.report_failed_recipients
    if is_delay_warning(mail):
        return ()
    named: list[str] = []
    if is_qmail_bounce(mail.text):
        named = qmail_failed_recipients(mail.text)
    elif is_exchange_ndr(mail):
        named = exchange_failed_recipients(mail.text)
    return tuple(named or text_addresses(mail.text))


def auto_submitted(mail: ParsedMail) -> str | None:
    value = mail.headers.get("auto-submitted", "").strip().lower()
    if value and not value.startswith("no"):
        return f"Auto-Submitted: {value}"
    return None


def bulk_precedence(mail: ParsedMail) -> str | None:
    """Precedence (RFC 2076), or X-Precedence where a system would not set the original."""
    for name in ("precedence", "x-precedence"):
        value = mail.headers.get(name, "").strip().lower()
        if value in ("bulk", "junk", "list", "auto_reply"):
            return f"{mail_header_name(name)}: {value}"
    return None


def mail_header_name(name: str) -> str:
    return "-".join(word.capitalize() for word in name.split("-"))


# Headers that auto-responders, vacation scripts, mail rules and cron put on their mail
# instead of (or besides) Auto-Submitted: their presence is enough, unless they say no.
# X-Loop of another system (procmail, RT, OTRS) marks mail a machine passed on; one naming
# our own address is not another system's, and mailgate writes none: anyone could forge it
# (x_loop_of_another_system). Feedback-ID is not here:
# bulk senders set it, and so do relays (Amazon SES) for every mail a person writes.
AUTO_REPLY_HEADERS = (
    "x-autoreply",
    "x-autorespond",
    "x-autoresponder",
    "x-auto-reply",
    "x-mail-autoreply",
    "x-autogenerated",
    "x-fc-machinegenerated",
    "x-cron-env",
    "x-ms-exchange-inbox-rules-loop",
)
_SAYS_NO = ("no", "false", "0")


def auto_reply_header(mail: ParsedMail) -> str | None:
    for name in AUTO_REPLY_HEADERS:
        value = mail.headers.get(name)
        if value is not None and value.strip().lower() not in _SAYS_NO:
            return f"{mail_header_name(name)}: {value.strip()[:100]}"
    return None


# Subject prefixes that auto-responders write and people do not: enough on their own.
_MACHINE_SUBJECT = re.compile(
    r"^\s*(automatic reply|automatische antwort|out of office autoreply|auto-?reply|"
    r"auto reply|réponse automatique|respuesta automática|risposta automatica|"
    r"automatisch antwoord)\s*:",
    re.IGNORECASE,
)
# Prefixes a person may also start a new request with ("Out of Office: cannot set it up"):
# automatic only on a mail that answers another, where a person's client writes Re:/AW:.
# "Auto:" is not among them: it is the German word for a car.
_REPLY_ONLY_SUBJECT = re.compile(r"^\s*(out of office|abwesenheitsnotiz)\s*:", re.IGNORECASE)


def auto_reply_subject(mail: ParsedMail) -> str | None:
    subject = mail.subject or mail.headers.get("subject", "")
    if _MACHINE_SUBJECT.match(subject):
        return f"auto-reply subject {subject.split(':', 1)[0].strip()!r}"
    answers = bool(mail.in_reply_to or mail.references) or "in-reply-to" in mail.headers
    if answers and _REPLY_ONLY_SUBJECT.match(subject):
        return f"auto-reply subject {subject.split(':', 1)[0].strip()!r} on a reply"
    return None


def mailing_list(mail: ParsedMail) -> str | None:
    for name in ("list-id", "list-unsubscribe"):
        if name in mail.headers:
            return f"mailing list ({name})"
    return None


def suppresses_auto_response(mail: ParsedMail) -> str | None:
    return "X-Auto-Response-Suppress" if "x-auto-response-suppress" in mail.headers else None


def no_reply_sender(mail: ParsedMail) -> str | None:
    if not mail.from_addr:
        # An ambiguous From named addresses, only not one for sure: no sign of a machine.
        # Its ticket (mailgate.unverified) is news to staff; nobody it names is answered.
        return None if AMBIGUOUS_FROM in mail.defects else "no sender address"
    if _NO_REPLY_SENDER.match(mail.from_addr):
        return f"automatic sender {mail.from_addr}"
    return None


# In order; the first that answers names the reason. The loop-and-abuse issue extends this list.
AUTOMATIC_MAIL_RULES: tuple[Callable[[ParsedMail], str | None], ...] = (
    auto_submitted,
    bulk_precedence,
    mailing_list,
    suppresses_auto_response,
    auto_reply_header,
    no_reply_sender,
    auto_reply_subject,
)


def x_loop_of_another_system(mail: ParsedMail, own_addresses: frozenset[str]) -> str | None:
    """X-Loop naming another system; one naming ours is a forgery (we write none)."""
    value = mail.headers.get("x-loop")
    if value is None or value.strip().lower() in _SAYS_NO:
        return None
    if any(address in value.lower() for address in own_addresses):
        return None
    return f"X-Loop: {value.strip()[:100]}"


def screen(
    mail: ParsedMail, own_addresses: frozenset[str], own_domain: str, key: bytes
) -> Screening:
    own = is_own_mail(mail, own_addresses, own_domain, key)
    automatic = next((r for r in (rule(mail) for rule in AUTOMATIC_MAIL_RULES) if r), None)
    automatic = automatic or x_loop_of_another_system(mail, own_addresses)
    return Screening(own=own, bounce=is_bounce(mail), automatic=automatic)


def referenced_ids(mail: ParsedMail) -> list[str]:
    """The Message-IDs a mail refers to: answered, referenced, and those a report or a
    bounce's text quotes of the returned mail. Threading and bounce proof both read them."""
    ids = [*mail.in_reply_to, *reversed(mail.references), *mail.report_original_ids]
    ids += qmail_original_ids(mail.text)
    if from_daemon(mail) or declares_delivery_report(mail):
        # A text bounce, or a report whose parts are lost, quotes the returned mail's headers.
        ids += returned_message_ids(mail.text)
    return list(dict.fromkeys(i for i in ids if i))
