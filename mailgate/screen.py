"""Loop, bounce and automatic-mail predicates: what a mail is before who sent it matters."""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable
from dataclasses import dataclass

from mailgate.mime.report import (
    exchange_failed_recipients,
    is_qmail_bounce,
    qmail_failed_recipients,
)
from mailgate.parse import ParsedMail

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


def is_own_mail(mail: ParsedMail, own_addresses: frozenset[str], own_domain: str) -> str | None:
    if mail.from_addr and mail.from_addr in own_addresses:
        return f"sent from our own address {mail.from_addr}"
    if (
        own_domain
        and (mail.message_id or "").lower().startswith("mailgate.")
        and ((mail.message_id or "").lower().endswith("@" + own_domain))
    ):
        return "carries our own Message-ID"
    # X-Loop (procmail, RT, OTRS) names the system that sent the mail on; ours means a loop.
    x_loop = mail.headers.get("x-loop", "").lower()
    if x_loop and (own := next((a for a in sorted(own_addresses) if a in x_loop), None)):
        return f"X-Loop names our own address {own}"
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


def is_bounce(mail: ParsedMail) -> bool:
    if mail.report_type == "delivery-status":
        return True
    if is_exchange_ndr(mail) or is_qmail_bounce(mail.text):
        return True
    return from_daemon(mail) and bool(mail.report_original_ids or mail.report_failed_recipients)


def failed_recipients(mail: ParsedMail) -> tuple[str, ...]:
    """The addresses a bounce names as failed: from the RFC 3464 report, else from the text
    of a qmail bounce or an Exchange NDR."""
    if mail.report_failed_recipients:
        return mail.report_failed_recipients
    if is_qmail_bounce(mail.text):
        return tuple(qmail_failed_recipients(mail.text))
    if is_exchange_ndr(mail):
        return tuple(exchange_failed_recipients(mail.text))
    return ()


def auto_submitted(mail: ParsedMail) -> str | None:
    value = mail.headers.get("auto-submitted", "").strip().lower()
    if value and not value.startswith("no"):
        return f"Auto-Submitted: {value}"
    return None


def bulk_precedence(mail: ParsedMail) -> str | None:
    value = mail.headers.get("precedence", "").strip().lower()
    return f"Precedence: {value}" if value in ("bulk", "junk", "list") else None


def mailing_list(mail: ParsedMail) -> str | None:
    for name in ("list-id", "list-unsubscribe"):
        if name in mail.headers:
            return f"mailing list ({name})"
    return None


def suppresses_auto_response(mail: ParsedMail) -> str | None:
    return "X-Auto-Response-Suppress" if "x-auto-response-suppress" in mail.headers else None


def no_reply_sender(mail: ParsedMail) -> str | None:
    if not mail.from_addr:
        return "no sender address"
    if _NO_REPLY_SENDER.match(mail.from_addr):
        return f"automatic sender {mail.from_addr}"
    return None


# In order; the first that answers names the reason. The loop-and-abuse issue extends this list.
AUTOMATIC_MAIL_RULES: tuple[Callable[[ParsedMail], str | None], ...] = (
    auto_submitted,
    bulk_precedence,
    mailing_list,
    suppresses_auto_response,
    no_reply_sender,
)


def screen(mail: ParsedMail, own_addresses: frozenset[str], own_domain: str) -> Screening:
    own = is_own_mail(mail, own_addresses, own_domain)
    automatic = next((r for r in (rule(mail) for rule in AUTOMATIC_MAIL_RULES) if r), None)
    return Screening(own=own, bounce=is_bounce(mail), automatic=automatic)
