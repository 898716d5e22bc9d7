"""What an article's note says, in each reader's language.

A note is stored in English, its parts joined by "; " ("automatic reply", "sender not
verified: dmarc=fail for example.com", ...): the command line, exports and logs show it as
it is. Mail to staff and the web desk show it in their reader's language, part by part
through the phrases (reading/phrases.py); a part they have no words for stays as stored.
"""

from __future__ import annotations

from mailgate.desk import unverified
from mailgate.reading.phrases import Phrase, say
from mailgate.reading.verify import NOT_VERIFIED

AUTOMATIC_REPLY = "automatic reply"
UNVERIFIED_REPORT = "unverified delivery report"
FAILURE_REPORT = "delivery failure report"
UNVERIFIED_AGENT = "unverified agent mail: "  # then why: the agent check's own words
HELD = "not sent: a command was not understood"  # an agent's text kept from the customer

# Why staff should doubt that a mail is from whom it says: the note's start, its phrase.
WARNINGS = (
    (unverified.STRANGER, "stranger_note"),
    (unverified.NOTE, "ambiguous_from_note"),
    (f"{NOT_VERIFIED}: ", "forged_note"),
)
_STARTS = (*WARNINGS, (UNVERIFIED_AGENT, "unverified_agent_note"))
_WHOLE = {
    AUTOMATIC_REPLY: "automatic_reply_note",
    UNVERIFIED_REPORT: "unverified_report_note",
    FAILURE_REPORT: "failure_report_note",
    HELD: "held_note",
}


def warning(note: str) -> str:
    """Why staff should doubt the mail (a phrase, the rest of the note after it), "" when
    nothing in the note says so: our MTA marked it forged (verify.verify_customer), its From
    names nobody, or its sender is not part of the ticket (mailgate.unverified)."""
    for start, key in WARNINGS:
        if note.startswith(start):
            return Phrase(key, rest=note.removeprefix(start))
    return ""


def in_words(note: str, language: str | None) -> str:
    """The note in `language`, part by part."""
    return "; ".join(say(_phrased(part), language) for part in note.split("; "))


def _phrased(part: str) -> str:
    if part in _WHOLE:
        return Phrase(_WHOLE[part])
    for start, key in _STARTS:
        if part.startswith(start):
            return Phrase(key, rest=part.removeprefix(start))
    return part
