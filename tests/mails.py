"""Builders for test messages: plain bytes as a mail client would send them."""

from __future__ import annotations

import uuid
from email.message import EmailMessage
from email.policy import SMTP


def new_message_id(domain: str = "customer.example") -> str:
    return f"{uuid.uuid4().hex}@{domain}"


def make_mail(
    subject: str = "Printer broken",
    body: str = "Our printer does not print.\n",
    sender: str = "Alice Kunde <alice@acme.example>",
    to: str = "support@example.com",
    message_id: str | None = None,
    in_reply_to: str | None = None,
    references: tuple[str, ...] = (),
    headers: dict[str, str] | None = None,
    attachments: tuple[tuple[str, str, bytes], ...] = (),
    html: str | None = None,
) -> bytes:
    msg = EmailMessage(policy=SMTP)
    msg["From"] = sender
    msg["To"] = to
    msg["Subject"] = subject
    msg["Date"] = "Mon, 02 Nov 2026 10:00:00 +0100"
    msg["Message-ID"] = f"<{message_id or new_message_id()}>"
    if in_reply_to:
        msg["In-Reply-To"] = f"<{in_reply_to}>"
    if references:
        msg["References"] = " ".join(f"<{r}>" for r in references)
    msg.set_content(body)  # before the extra headers: it drops any Content-* header
    if html is not None:
        msg.add_alternative(html, subtype="html")
    for name, value in (headers or {}).items():
        msg[name] = value
    for filename, content_type, payload in attachments:
        maintype, subtype = content_type.split("/")
        msg.add_attachment(payload, maintype=maintype, subtype=subtype, filename=filename)
    return msg.as_bytes()
