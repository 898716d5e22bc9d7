"""The words of the spreadsheets customers receive, in their language (German, English, French)."""

from __future__ import annotations

from collections.abc import Mapping

# The status and "who acted" words are those of the shipped ticket_list and status_changed
# templates, so that a list mail's table and its attachment say the same.
WORDS: Mapping[str, Mapping[str, str]] = {
    "en": {
        "cid": "Ticket",
        "subject": "Subject",
        "status": "Status",
        "priority": "Priority",
        "last_action_by": "Last action by",
        "last_action_at": "Last action ({zone})",
        "agent": "Agent",
        "billable_h": "Billable (h)",
        "free_h": "Free (h)",
        "total_h": "Total (h)",
        "billable_hmm": "Billable (h:mm)",
        "free_hmm": "Free (h:mm)",
        "total_hmm": "Total (h:mm)",
        "title": "Support time {organisation}, {month}",
        "total": "Total",
        "bought": "Support hours bought",
        "used": "Billable time used up to the end of {month}",
        "left": "Support hours left",
        "none_booked": "no time booked",
        "open": "open",
        "working": "in progress",
        "hold": "on hold",
        "delivered": "resolved",
        "closed": "closed",
        "customer": "you",
        "staff": "support",
    },
    "de": {
        "cid": "Ticket",
        "subject": "Betreff",
        "status": "Status",
        "priority": "Priorität",
        "last_action_by": "Letzte Aktion von",
        "last_action_at": "Letzte Aktion ({zone})",
        "agent": "Bearbeiter/in",
        "billable_h": "Berechnet (h)",
        "free_h": "Frei (h)",
        "total_h": "Gesamt (h)",
        "billable_hmm": "Berechnet (h:mm)",
        "free_hmm": "Frei (h:mm)",
        "total_hmm": "Gesamt (h:mm)",
        "title": "Supportzeit {organisation}, {month}",
        "total": "Gesamt",
        "bought": "Gekaufte Supportstunden",
        "used": "Berechnete Zeit bis Ende {month}",
        "left": "Verbleibende Supportstunden",
        "none_booked": "keine Zeit gebucht",
        "open": "offen",
        "working": "in Bearbeitung",
        "hold": "zurückgestellt",
        "delivered": "erledigt",
        "closed": "geschlossen",
        "customer": "Sie",
        "staff": "Support",
    },
    "fr": {
        "cid": "Ticket",
        "subject": "Objet",
        "status": "Statut",
        "priority": "Priorité",
        "last_action_by": "Dernière action par",
        "last_action_at": "Dernière action ({zone})",
        "agent": "Agent",
        "billable_h": "Facturable (h)",
        "free_h": "Non facturé (h)",
        "total_h": "Total (h)",
        "billable_hmm": "Facturable (h:mm)",
        "free_hmm": "Non facturé (h:mm)",
        "total_hmm": "Total (h:mm)",
        "title": "Temps de support {organisation}, {month}",
        "total": "Total",
        "bought": "Heures de support achetées",
        "used": "Temps facturable consommé jusqu'à fin {month}",
        "left": "Heures de support restantes",
        "none_booked": "aucun temps saisi",
        "open": "ouvert",
        "working": "en cours",
        "hold": "en attente",
        "delivered": "résolu",
        "closed": "fermé",
        "customer": "vous",
        "staff": "support",
    },
}
FALLBACK = "en"


def words(language: str | None) -> Mapping[str, str]:
    """The words of a language; a language without them (an operator's own templates in
    Italian, say) gets English rather than a mix."""
    return WORDS.get((language or "").lower()[:2], WORDS[FALLBACK])


def translated(language: str | None, word: str | None) -> str:
    """A stored value (a status, "customer") in words; unknown values as they are."""
    if word is None:
        return ""
    return words(language).get(word, word)
