"""A ticket's history on the web desk in its reader's language.

Events are stored in English, as the command line, exports and JSON give them. The page
names each kind of event in the reader's words, and says again in them what mailgate wrote
in a known form: a status change, a hold date, which way a mail went, a yes or no. What an
event quotes (an address, a bounce's words, an agent's note) stays as stored, and so does
an event of a kind this module does not know."""

from __future__ import annotations

import re

from mailgate.outbound.render import written_day
from mailgate.outbound.sheet_words import translated
from mailgate.web.words import say

LABELS: dict[str, dict[str, str]] = {
    "created": {"en": "opened", "de": "eröffnet", "fr": "ouvert"},
    "article": {"en": "mail", "de": "Mail", "fr": "e-mail"},
    "status": {"en": "status", "de": "Status", "fr": "statut"},
    "hold": {"en": "on hold", "de": "zurückgestellt", "fr": "en attente"},
    "priority": {"en": "priority", "de": "Priorität", "fr": "priorité"},
    "type": {"en": "type", "de": "Typ", "fr": "type"},
    "category": {"en": "category", "de": "Kategorie", "fr": "catégorie"},
    "assigned": {"en": "assigned", "de": "zugewiesen", "fr": "attribué"},
    "agent": {"en": "further agent", "de": "weitere/r Bearbeiter/in", "fr": "autre agent"},
    "cc": {"en": "further person", "de": "weitere Person", "fr": "autre personne"},
    "customer": {"en": "customer", "de": "Kunde", "fr": "client"},
    "billable": {"en": "billable", "de": "berechnet", "fr": "facturable"},
    "time": {"en": "time booked", "de": "Zeit gebucht", "fr": "temps saisi"},
    "reminder": {"en": "reminder", "de": "Erinnerung", "fr": "rappel"},
    "sla_breach": {
        "en": "first response overdue",
        "de": "Reaktionszeit überschritten",
        "fr": "délai de première réponse dépassé",
    },
    "mail_not_sent": {
        "en": "mail not sent",
        "de": "Mail nicht gesendet",
        "fr": "e-mail non envoyé",
    },
    "mail_suppressed": {
        "en": "mail held back",
        "de": "Mail zurückgehalten",
        "fr": "e-mail retenu",
    },
    "address_failing": {
        "en": "address failing",
        "de": "Adresse nicht zustellbar",
        "fr": "adresse en échec",
    },
    "address_cleared": {
        "en": "address works again",
        "de": "Adresse wieder zustellbar",
        "fr": "adresse de nouveau valide",
    },
}

# Stored words of the details, in the reader's.
_WORDS: dict[str, dict[str, str]] = {
    "customer": {"en": "from the customer", "de": "vom Kunden", "fr": "du client"},
    "staff": {"en": "from staff", "de": "vom Team", "fr": "de l'équipe"},
    "internal": {"en": "internal note", "de": "interne Notiz", "fr": "note interne"},
    "system": {"en": "from mailgate", "de": "von mailgate", "fr": "de mailgate"},
    "yes": {"en": "yes", "de": "ja", "fr": "oui"},
    "no": {"en": "no", "de": "nein", "fr": "non"},
    "none": {"en": "none", "de": "keine", "fr": "aucun"},
    "customer replied": {
        "en": "the customer replied",
        "de": "Kunde hat geantwortet",
        "fr": "le client a répondu",
    },
    "customer confirmed": {
        "en": "the customer confirmed",
        "de": "Kunde hat bestätigt",
        "fr": "le client a confirmé",
    },
    "hold_reminder to staff": {
        "en": "resubmission due, to staff",
        "de": "Wiedervorlage fällig, an das Team",
        "fr": "date de reprise atteinte, à l'équipe",
    },
    "confirmation_reminder to customer": {
        "en": "asked the customer again to confirm",
        "de": "Kunde erneut um Bestätigung gebeten",
        "fr": "nouvelle demande de confirmation au client",
    },
}
_FROM = {"en": "from {who}", "de": "von {who}", "fr": "de {who}"}
_UNTIL = {"en": "until {day}", "de": "bis {day}", "fr": "jusqu'au {day}"}
_ADDED = {"en": "added {who}", "de": "{who} hinzugefügt", "fr": "ajout de {who}"}
_DUE = {"en": "due {when}", "de": "fällig am {when}", "fr": "attendue le {when}"}
_UNCONFIRMED = {
    "en": "not confirmed within {days} days",
    "de": "nicht binnen {days} Tagen bestätigt",
    "fr": "non confirmé sous {days} jours",
}

_CHANGE = re.compile(r"(?P<old>\S+) -> (?P<new>\S+)(?: \((?P<why>.*)\))?")
_CHANGED = ("status", "priority", "type", "category", "billable")


def event_in_words(action: str, detail: str, lang: str) -> str:
    """`action` and `detail` of a stored event as the reader reads them, e.g.
    "Status: offen → zurückgestellt"."""
    label = LABELS.get(action, {}).get(lang, action)  # each kind has all the pages' languages
    return f"{label}{say('colon', lang)} {_detail(action, detail, lang)}".rstrip()


def _detail(action: str, detail: str, lang: str) -> str:
    if action in ("article", "reminder"):
        return _word(detail, lang)
    if action in ("cc", "agent") and (who := _added(detail)):
        return _ADDED[lang].format(who=who)
    if action == "sla_breach" and detail.startswith("first response was due "):
        when = detail.removeprefix("first response was due ")
        return _DUE[lang].format(when=written_day(when, lang))
    if action == "created" and detail.startswith("from "):
        return _FROM[lang].format(who=detail.removeprefix("from "))
    if action == "hold" and detail.startswith("until "):
        return _UNTIL[lang].format(day=written_day(detail.removeprefix("until "), lang))
    change = _CHANGE.fullmatch(detail) if action in _CHANGED else None
    if change is None:
        return detail

    def value(stored: str) -> str:  # a status in the words of the mails to staff
        return translated(lang, stored) if action == "status" else _word(stored, lang)

    old, new = (value(v) for v in change.group("old", "new"))
    why = change.group("why")
    return f"{old} → {new}" + (f" ({_reason(why, lang)})" if why else "")


def _word(stored: str, lang: str) -> str:
    return _WORDS.get(stored, {}).get(lang) or stored


def _added(detail: str) -> str:
    """Who an agent or a further person added is, "" when the detail is no such note."""
    if detail.startswith("added "):
        return detail.removeprefix("added ")
    return detail.removesuffix(" added") if detail.endswith(" added") else ""


def _reason(why: str, lang: str) -> str:
    unconfirmed = re.fullmatch(r"not confirmed within (\d+) days", why)
    if unconfirmed:
        return _UNCONFIRMED[lang].format(days=unconfirmed.group(1))
    return _word(why, lang)
