"""What the SMTP and LMTP intake answers: its own replies, the extensions EHLO offers, and
the enhanced status code (RFC 3463) every reply after EHLO carries."""

from __future__ import annotations

import re

SHUTTING_DOWN = "421 4.3.2 shutting down"
TRY_LATER = "451 4.3.0 cannot store message now, try again later"
TOO_LARGE = "552 5.3.4 message too large"
TOO_MANY_RECIPIENTS = "452 4.5.3 too many recipients"
LINE_TOO_LONG = "500 5.5.2 Line too long (RFC 5321 4.5.3.1.6)"
SENDER_OK = "250 2.1.0 OK"
RECIPIENT_OK = "250 2.1.5 OK"
NOT_UTF8 = "553 5.1.7 address is not valid UTF-8"

# Added to what aiosmtpd offers itself (SIZE, 8BITMIME, SMTPUTF8, STARTTLS). PIPELINING:
# commands are read from a buffer and answered in order, so a client may send a group of
# them at once (RFC 2920). ENHANCEDSTATUSCODES: see with_enhanced_code.
EXTENSIONS = ("250-PIPELINING", "250-ENHANCEDSTATUSCODES")

_HAS_CODE = re.compile(r"\d{3}[ -][245]\.\d{1,3}\.\d{1,3}(?: |\Z)")
_REPLY = re.compile(r"(?P<code>[245]\d\d)(?P<sep>[ -])(?P<text>.*)\Z", re.DOTALL)
# For aiosmtpd's own replies, which carry no enhanced code (RFC 3463 section 3.5 and 3.6).
_BY_CODE = {
    "500": "5.5.2",  # syntax error, command not recognised, line too long
    "501": "5.5.4",  # bad arguments
    "502": "5.5.1",  # command not implemented
    "503": "5.5.1",  # bad sequence of commands
    "504": "5.5.4",  # parameter not implemented
    "530": "5.7.0",  # STARTTLS (or authentication) first
    "535": "5.7.8",  # authentication failed
    "552": "5.3.4",  # too large
    "554": "5.7.0",  # refused for lack of security
    "555": "5.5.4",  # MAIL/RCPT parameters not recognised
}


def with_enhanced_code(reply: str) -> str:
    """The reply with an enhanced status code after its basic one, unless it has one or is
    not a 2xx, 4xx or 5xx reply (354 and 334 carry none)."""
    match = _REPLY.match(reply)
    if match is None or _HAS_CODE.match(reply):
        return reply
    code = match["code"]
    enhanced = _BY_CODE.get(code, f"{code[0]}.0.0")
    return f"{code}{match['sep']}{enhanced} {match['text']}"
