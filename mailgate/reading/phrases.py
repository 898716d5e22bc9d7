"""What mailgate tells staff about their commands, in English, German and French: keyed phrases."""

from __future__ import annotations

from typing import Any

# English is the text a phrase is as a string (logs, the command line, tests); the other
# languages are looked up when a mail to an agent is written in theirs.
ENGLISH: dict[str, str] = {
    "command": "{command}: {reason}",
    "unknown_command": "unknown command (known: {known})",
    "command_late": "{command}: after the text, so not applied and left in it as text (commands "
    "go before the text)",
    "needs": "needs {what} ({choices})",
    "not_one_of": '"{value}" is not {what} ({choices})',
    "a_status": "a status",
    "a_priority": "a priority",
    "a_type": "a type",
    "yes_or_no": "yes or no",
    "needs_text": "needs {what}",
    "a_category": "a category",
    "an_agent": "an agent's address or name",
    "no_arguments": 'takes no arguments, got "{args}"',
    "needs_address": "needs one e-mail address",
    "not_one_address": '"{text}" is not one e-mail address (e.g. alice@example.com or '
    "Alice Smith <alice@example.com>)",
    "needs_date": "needs one date (YYYY-MM-DD or DD.MM.YYYY)",
    "not_a_date": '"{text}" is not a date (YYYY-MM-DD or DD.MM.YYYY)',
    "needs_duration": "needs a duration and billable or free, e.g. #time 1h30 billable",
    "no_unit": '"{text}" has no unit ({bare}m or {bare}h?): write it like {forms}',
    "not_a_duration": '"{text}" is not a duration: write it like {forms}',
    "minutes_range": "{minutes} minutes is not between 1 minute and 24 hours",
    "billable_or_free": 'say "billable" or "free" after the duration',
    "correction_note": "a correction needs a note saying why, e.g. #time {amount} {word} "
    "booked twice",
    "correction_too_big": "a correction of {amount} is more than the {booked} {kind} time "
    "booked by {who} on this ticket",
    "billable": "billable",
    "free": "free",
    "no_known_agent": "no known agent",
    "status_unknown": '"{new}" is not a status ({choices})',
    "no_transition": "cannot go from {old} to {new} ({hint})",
    "reopen_first": "reopen it first",
    "working_first": "set it to working first",
    "in_the_past": "{day} is in the past",
    "customer_is_set": "this ticket is already {current}'s: #customer names the customer of a "
    "new mail or of an unverified sender's ticket (a contact changes company with `mailgate "
    "customers move`)",
    "no_agent_address": "no active agent has the address {address}",
    "several_agents": '"{wanted}" matches several agents ({names}); use the address',
    "no_agent_name": 'no active agent is called "{wanted}"',
    "not_verified": "your mail was not verified ({reason})",
    "customer_missing": "to open a ticket for a customer, put #customer ADDRESS at the top "
    "of the mail",
    # An article's note, part by part (desk/notes.py).
    "stranger_note": "unverified sender: not part of this ticket{rest}",
    "forged_note": "sender not verified: {rest}",
    "ambiguous_from_note": "unverified sender: From names no single clean address: {rest}",
    "unverified_agent_note": "unverified agent mail: {rest}",
    "automatic_reply_note": "automatic reply",
    "unverified_report_note": "unverified delivery report",
    "failure_report_note": "delivery failure report",
    "held_note": "not sent: a command was not understood",
}

GERMAN: dict[str, str] = {
    "command": "{command}: {reason}",
    "unknown_command": "unbekannter Befehl (bekannt: {known})",
    "command_late": "{command}: steht nach dem Text, wurde daher nicht ausgeführt und blieb als "
    "Text darin (Befehle gehören vor den Text)",
    "needs": "braucht {what} ({choices})",
    "not_one_of": '"{value}" passt nicht, erwartet wird {what} ({choices})',
    "a_status": "ein Status",
    "a_priority": "eine Priorität",
    "a_type": "ein Typ",
    "yes_or_no": "ja oder nein",
    "needs_text": "braucht {what}",
    "a_category": "eine Kategorie",
    "an_agent": "die Adresse oder den Namen einer Kollegin oder eines Kollegen",
    "no_arguments": 'erwartet keine Angaben, erhalten: "{args}"',
    "needs_address": "braucht eine E-Mail-Adresse",
    "not_one_address": '"{text}" ist nicht genau eine E-Mail-Adresse (z. B. '
    "alice@example.com oder Alice Smith <alice@example.com>)",
    "needs_date": "braucht ein Datum (JJJJ-MM-TT oder TT.MM.JJJJ)",
    "not_a_date": '"{text}" ist kein Datum (JJJJ-MM-TT oder TT.MM.JJJJ)',
    "needs_duration": "braucht eine Dauer und berechnet oder frei, z. B. #zeit 1h30 berechnet",
    "no_unit": '"{text}" hat keine Einheit ({bare}m oder {bare}h?): schreiben Sie z. B. '
    "90m, 1h30, 1:30, 1.5h; -30m korrigiert",
    "not_a_duration": '"{text}" ist keine Dauer: schreiben Sie z. B. 90m, 1h30, 1:30, 1.5h; '
    "-30m korrigiert",
    "minutes_range": "{minutes} Minuten liegen nicht zwischen 1 Minute und 24 Stunden",
    "billable_or_free": 'schreiben Sie "berechnet" oder "frei" hinter die Dauer',
    "correction_note": "eine Korrektur braucht eine Notiz mit dem Grund, z. B. "
    "#zeit {amount} {word} doppelt gebucht",
    "correction_too_big": "eine Korrektur um {amount} ist mehr als die {booked} {kind}e "
    "Zeit, die {who} auf diesem Ticket gebucht hat",
    "billable": "berechnet",
    "free": "frei",
    "no_known_agent": "niemand Bekanntes",
    "status_unknown": '"{new}" ist kein Status ({choices})',
    "no_transition": "von {old} geht es nicht zu {new} ({hint})",
    "reopen_first": "zuerst wiedereröffnen",
    "working_first": "zuerst auf working setzen",
    "in_the_past": "{day} liegt in der Vergangenheit",
    "customer_is_set": "dieses Ticket gehört schon {current}: #customer nennt den Kunden einer "
    "neuen Mail oder des Tickets eines unbestätigten Absenders (einen Kontakt in eine andere "
    "Firma verschieben: `mailgate customers move`)",
    "no_agent_address": "keine aktive Kollegin und kein aktiver Kollege hat die Adresse {address}",
    "several_agents": '"{wanted}" passt auf mehrere ({names}); bitte die Adresse angeben',
    "no_agent_name": 'niemand Aktives im Team heißt "{wanted}"',
    "not_verified": "Ihre Mail wurde nicht als Ihre bestätigt ({reason})",
    "customer_missing": "um ein Ticket für einen Kunden zu eröffnen, schreiben Sie "
    "#kunde ADRESSE oben in die Mail",
    "stranger_note": "Absender nicht bestätigt: gehört nicht zu diesem Ticket{rest}",
    "forged_note": "Absender nicht verifiziert: {rest}",
    "ambiguous_from_note": "Absender nicht bestätigt: das From nennt keine eindeutige Adresse: "
    "{rest}",
    "unverified_agent_note": "Mitarbeiter-Mail nicht bestätigt: {rest}",
    "automatic_reply_note": "automatische Antwort",
    "unverified_report_note": "unbestätigte Zustellmeldung",
    "failure_report_note": "Unzustellbarkeitsmeldung",
    "held_note": "nicht gesendet: ein Befehl wurde nicht verstanden",
}

# As German, the French names the commands by their French aliases (#temps 1h30 facturable);
# the English ones work as well.
FRENCH: dict[str, str] = {
    "command": "{command} : {reason}",
    "unknown_command": "commande inconnue (connues : {known})",
    "command_late": "{command} : placée après le texte, donc non appliquée et laissée dans le "
    "texte (les commandes se placent avant le texte)",
    "needs": "attend {what} ({choices})",
    "not_one_of": "« {value} » ne convient pas, il faut {what} ({choices})",
    "a_status": "un statut",
    "a_priority": "une priorité",
    "a_type": "un type",
    "yes_or_no": "oui ou non",
    "needs_text": "attend {what}",
    "a_category": "une catégorie",
    "an_agent": "l'adresse ou le nom d'un membre de l'équipe",
    "no_arguments": "n'attend aucun argument, reçu : « {args} »",
    "needs_address": "attend une adresse e-mail",
    "not_one_address": "« {text} » n'est pas une adresse e-mail unique (par ex. "
    "alice@example.com ou Alice Smith <alice@example.com>)",
    "needs_date": "attend une date (AAAA-MM-JJ ou JJ.MM.AAAA)",
    "not_a_date": "« {text} » n'est pas une date (AAAA-MM-JJ ou JJ.MM.AAAA)",
    "needs_duration": "attend une durée puis facturable ou gratuit, par ex. #temps 1h30 facturable",
    "no_unit": "« {text} » n'a pas d'unité ({bare}m ou {bare}h ?) : écrivez par ex. "
    "90m, 1h30, 1:30, 1.5h ; -30m corrige",
    "not_a_duration": "« {text} » n'est pas une durée : écrivez par ex. 90m, 1h30, 1:30, 1.5h ; "
    "-30m corrige",
    "minutes_range": "{minutes} minutes, ce n'est pas entre 1 minute et 24 heures",
    "billable_or_free": "écrivez « facturable » ou « gratuit » après la durée",
    "correction_note": "une correction demande une note qui en donne la raison, par ex. "
    "#temps {amount} {word} saisi deux fois",
    "correction_too_big": "une correction de {amount} dépasse les {booked} de temps {kind} "
    "saisis sur ce ticket par {who}",
    "billable": "facturable",
    "free": "non facturé",
    "no_known_agent": "un agent inconnu",
    "status_unknown": "« {new} » n'est pas un statut ({choices})",
    "no_transition": "impossible de passer de {old} à {new} ({hint})",
    "reopen_first": "rouvrez-le d'abord",
    "working_first": "passez-le d'abord en cours",
    "in_the_past": "le {day} est passé",
    "customer_is_set": "ce ticket appartient déjà à {current} : #client désigne le client "
    "d'un nouvel e-mail ou du ticket d'un expéditeur non vérifié (pour rattacher un contact "
    "à une autre entreprise : `mailgate customers move`)",
    "no_agent_address": "aucun membre actif de l'équipe n'a l'adresse {address}",
    "several_agents": "« {wanted} » correspond à plusieurs membres de l'équipe ({names}) ; "
    "indiquez l'adresse",
    "no_agent_name": "aucun membre actif de l'équipe ne s'appelle « {wanted} »",
    "not_verified": "votre e-mail n'a pas pu être vérifié comme venant de vous ({reason})",
    "customer_missing": "pour ouvrir un ticket pour un client, écrivez #client ADRESSE en "
    "tête de l'e-mail",
    "stranger_note": "expéditeur non vérifié : ne fait pas partie de ce ticket{rest}",
    "forged_note": "expéditeur non vérifié : {rest}",
    "ambiguous_from_note": "expéditeur non vérifié : le From ne nomme aucune adresse unique : "
    "{rest}",
    "unverified_agent_note": "e-mail d'équipe non vérifié : {rest}",
    "automatic_reply_note": "réponse automatique",
    "unverified_report_note": "rapport de distribution non vérifié",
    "failure_report_note": "rapport de non-distribution",
    "held_note": "non envoyé : une commande n'a pas été comprise",
}

CATALOGUES: dict[str, dict[str, str]] = {"en": ENGLISH, "de": GERMAN, "fr": FRENCH}


class Phrase(str):
    """A message for staff: its English text as a string, and its key and values, so that a
    mail to an agent can say it in the agent's language."""

    key: str
    params: dict[str, Any]

    def __new__(cls, key: str, **params: Any) -> Phrase:
        self = super().__new__(cls, ENGLISH[key].format(**params))
        self.key, self.params = key, params
        return self

    def __reduce__(self) -> tuple[Any, ...]:
        # Pickled as key and values (to and from worker processes), not as its English text.
        return (_phrase, (self.key, self.params))


def _phrase(key: str, params: dict[str, Any]) -> Phrase:
    return Phrase(key, **params)


def say(text: str, language: str | None) -> str:
    """`text` in `language` (`de`, `de-at`…) when it is a phrase with a wording there; as
    it is otherwise."""
    if not isinstance(text, Phrase):
        return str(text)
    primary = (language or "en").lower().replace("_", "-").split("-")[0]
    wording = CATALOGUES.get(primary, ENGLISH).get(text.key, ENGLISH[text.key])
    values = {name: say(value, language) for name, value in text.params.items()}
    return wording.format(**values)
