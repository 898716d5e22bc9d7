"""The web desk's words in German and English: a page speaks its reader's language (an
agent's `language`, else [tickets] default_language), English for any other."""

from __future__ import annotations

WORDS: dict[str, dict[str, str]] = {
    "desk": {"en": "Support desk", "de": "Support-Desk"},
    "sign_in": {"en": "Sign in", "de": "Anmelden"},
    "sign_out": {"en": "Sign out", "de": "Abmelden"},
    "your_address": {"en": "Your mail address", "de": "Ihre Mail-Adresse"},
    "send_link": {"en": "Mail me a sign-in link", "de": "Anmeldelink zusenden"},
    "link_sent": {
        "en": "If this is a staff address, a sign-in link is on its way to it. It works once, "
        "for {minutes} minutes.",
        "de": "Ist dies eine Adresse des Teams, ist ein Anmeldelink dorthin unterwegs. Er gilt "
        "einmal, {minutes} Minuten lang.",
    },
    "confirm_sign_in": {
        "en": "Press the button to sign in to the support desk in this browser.",
        "de": "Drücken Sie die Schaltfläche, um sich in diesem Browser am Support-Desk anzumelden.",
    },
    "link_refused": {
        "en": "This sign-in link does not work: {why}. Ask for a new one.",
        "de": "Dieser Anmeldelink funktioniert nicht: {why}. Fordern Sie einen neuen an.",
    },
    "why_unknown": {"en": "it is not known", "de": "er ist unbekannt"},
    "why_used": {"en": "it was used already", "de": "er wurde schon benutzt"},
    "why_expired": {"en": "it has expired", "de": "er ist abgelaufen"},
    "why_revoked": {"en": "it was revoked", "de": "er wurde widerrufen"},
    "why_inactive": {"en": "the account is not active", "de": "das Konto ist nicht aktiv"},
    "too_many": {
        "en": "Too many attempts with links that do not work. Try again in a few minutes.",
        "de": "Zu viele Versuche mit ungültigen Links. Versuchen Sie es in einigen Minuten wieder.",
    },
    "refused_form": {
        "en": "This form was not sent from this desk's page, or the page is too old. Reload "
        "the page and try again.",
        "de": "Dieses Formular kam nicht von einer Seite dieses Desks, oder die Seite ist zu "
        "alt. Laden Sie die Seite neu und versuchen Sie es noch einmal.",
    },
    "not_found": {"en": "Not found.", "de": "Nicht gefunden."},
    "bad_request": {
        "en": "This request is not one the desk's pages send. Reload the page and try again.",
        "de": "Diese Anfrage kommt so von keiner Seite des Desks. Laden Sie die Seite neu und "
        "versuchen Sie es noch einmal.",
    },
    "unavailable": {
        "en": "The desk's database is busy or unreachable. Try again in a moment.",
        "de": "Die Datenbank des Desks ist belegt oder nicht erreichbar. Versuchen Sie es "
        "gleich noch einmal.",
    },
    "failed": {
        "en": "Something went wrong on the desk's side; it is logged. Try again, or use mail.",
        "de": "Auf Seiten des Desks ist etwas schiefgegangen; es ist protokolliert. Versuchen "
        "Sie es noch einmal, oder schreiben Sie eine Mail.",
    },
    "sessions": {"en": "Signed-in browsers", "de": "Angemeldete Browser"},
    "revoke": {"en": "Sign out there", "de": "Dort abmelden"},
    "this_browser": {"en": "this browser", "de": "dieser Browser"},
    "signed_in_since": {"en": "signed in", "de": "angemeldet"},
    "last_used": {"en": "last used", "de": "zuletzt benutzt"},
    "search": {"en": "Search", "de": "Suchen"},
    "no_tickets": {"en": "No tickets.", "de": "Keine Tickets."},
    "newer": {"en": "← newer", "de": "← neuere"},
    "older": {"en": "older →", "de": "ältere →"},
    "q_unassigned": {"en": "Unassigned", "de": "Nicht zugewiesen"},
    "q_mine": {"en": "Mine", "de": "Meine"},
    "q_open": {"en": "Open", "de": "Offen"},
    "q_waiting": {"en": "Waiting for customer", "de": "Wartet auf Kunden"},
    "q_hold_due": {"en": "Hold due", "de": "Wiedervorlage fällig"},
    "q_hold": {"en": "On hold", "de": "Zurückgestellt"},
    "q_delivered": {"en": "Delivered", "de": "Ausgeliefert"},
    "q_closed": {"en": "Closed", "de": "Geschlossen"},
    "col_ticket": {"en": "Ticket", "de": "Ticket"},
    "col_customer": {"en": "Customer", "de": "Kunde"},
    "col_subject": {"en": "Subject", "de": "Betreff"},
    "col_assignee": {"en": "Assignee", "de": "Bearbeiter"},
    "col_status": {"en": "Status", "de": "Status"},
    "col_priority": {"en": "Prio", "de": "Prio"},
    "col_last_action": {"en": "Last action", "de": "Letzte Aktion"},
    "by_customer": {"en": "customer", "de": "Kunde"},
    "by_staff": {"en": "staff", "de": "Team"},
    "waiting_since": {"en": "Waiting since", "de": "Wartet seit"},
    "hours_left": {"en": "Hours left", "de": "Stunden übrig"},
    "their_other_tickets": {
        "en": "The requester's other tickets",
        "de": "Weitere Tickets des Anfragenden",
    },
    "first_response_due": {"en": "first response overdue", "de": "Erstreaktion überfällig"},
    "requester": {"en": "Requester", "de": "Anfragender"},
    "references": {"en": "References", "de": "Referenzen"},
    "history": {"en": "Mails", "de": "Mails"},
    "events": {"en": "Events", "de": "Ereignisse"},
    "attachments": {"en": "Attachments", "de": "Anhänge"},
    "html_version": {"en": "The mail as HTML", "de": "Die Mail als HTML"},
    "dir_customer": {"en": "customer", "de": "Kunde"},
    "dir_staff": {"en": "staff", "de": "Team"},
    "dir_internal": {"en": "internal note", "de": "interne Notiz"},
    "dir_system": {"en": "system", "de": "System"},
    "time_booked": {"en": "Time booked", "de": "Gebuchte Zeit"},
    "hold_until": {"en": "On hold until", "de": "Zurückgestellt bis"},
    "write": {"en": "Answer or note", "de": "Antwort oder Notiz"},
    "customers": {"en": "Customers", "de": "Kunden"},
    "kind_company": {"en": "Companies", "de": "Firmen"},
    "kind_personal": {"en": "Single senders", "de": "Einzelne Absender"},
    "kind_pool": {"en": "Pool", "de": "Sammelstelle"},
    "kind_all": {"en": "All", "de": "Alle"},
    "kind": {"en": "Kind", "de": "Art"},
    "organisation": {"en": "Organisation", "de": "Organisation"},
    "domains": {"en": "Domains", "de": "Domains"},
    "contacts": {"en": "Contacts", "de": "Kontakte"},
    "name": {"en": "Name", "de": "Name"},
    "language": {"en": "Language", "de": "Sprache"},
    "open_tickets": {"en": "Open tickets", "de": "Offene Tickets"},
    "responsible": {"en": "Responsible agent", "de": "Zuständig"},
    "support_hours_short": {
        "en": "Support hours used / bought",
        "de": "Support-Stunden verbraucht / gekauft",
    },
    "left": {"en": "left", "de": "übrig"},
    "their_tickets": {"en": "Their tickets", "de": "Ihre Tickets"},
    "failing": {"en": "mail bounces", "de": "Mail kommt zurück"},
    "opted_out": {"en": "no optional mail", "de": "keine optionalen Mails"},
    "no_customers": {"en": "None.", "de": "Keine."},
    "stats": {"en": "Statistics", "de": "Statistik"},
    "stats_window": {
        "en": "The last seven days, {first} to {last} ({zone}).",
        "de": "Die letzten sieben Tage, {first} bis {last} ({zone}).",
    },
    "opened_per_day": {"en": "Tickets opened per day", "de": "Neue Tickets pro Tag"},
    "unresolved_per_day": {
        "en": "Unresolved at the end of each day",
        "de": "Am Ende jedes Tages ungelöst",
    },
    "by_category_status": {
        "en": "Tickets by category and status",
        "de": "Tickets nach Kategorie und Status",
    },
    "times": {"en": "Response and resolution", "de": "Reaktion und Lösung"},
    "first_response": {"en": "First response", "de": "Erste Antwort"},
    "resolution": {"en": "Resolution", "de": "Lösung"},
    "targets_missed": {"en": "Targets missed", "de": "Ziele verfehlt"},
    "times_hint": {
        "en": "Median / 90th percentile (h:mm) of the window's tickets, with their number.",
        "de": "Median / 90. Perzentil (h:mm) der Tickets des Zeitraums, mit ihrer Anzahl.",
    },
    "quarantine": {"en": "Quarantine", "de": "Quarantäne"},
    "quarantine_empty": {"en": "Nothing in quarantine.", "de": "Nichts in Quarantäne."},
    "received": {"en": "Received", "de": "Empfangen"},
    "from": {"en": "From", "de": "Von"},
    "why": {"en": "Why", "de": "Grund"},
    "retry": {"en": "Process again", "de": "Erneut verarbeiten"},
    "release": {"en": "Release as a new ticket", "de": "Als neues Ticket freigeben"},
    "release_for": {
        "en": "For this sender (empty: the message's own)",
        "de": "Für diesen Absender (leer: den der Nachricht)",
    },
    "as_customer": {
        "en": "answer it like any new request (acknowledgement, staff told)",
        "de": "wie jede neue Anfrage beantworten (Eingangsbestätigung, Team informiert)",
    },
    "drop": {"en": "Drop", "de": "Verwerfen"},
    "drop_reason": {"en": "Why drop it", "de": "Warum verwerfen"},
    "my_requests": {"en": "My requests", "de": "Meine Anfragen"},
    "new_request": {"en": "New request", "de": "Neue Anfrage"},
    "no_requests": {"en": "No requests yet.", "de": "Noch keine Anfragen."},
    "support_hours_used": {
        "en": "Billable support time so far (h:mm): {used}.",
        "de": "Bisher abrechenbare Support-Zeit (h:mm): {used}.",
    },
    "support_hours": {
        "en": "Support hours (h:mm): {bought} bought, {used} used, {left} left.",
        "de": "Support-Stunden (h:mm): {bought} gekauft, {used} verbraucht, {left} übrig.",
    },
    "by_you": {"en": "you", "de": "Sie"},
    "by_support": {"en": "support", "de": "Support"},
    "support": {"en": "Support", "de": "Support"},
    "reply": {"en": "Reply", "de": "Antworten"},
    "order_number": {"en": "Order number (if any)", "de": "Bestellnummer (falls vorhanden)"},
    "delivered_question": {
        "en": "We consider this request solved. Is it?",
        "de": "Wir betrachten diese Anfrage als erledigt. Ist sie das?",
    },
    "solved_button": {"en": "Solved, close it", "de": "Erledigt, bitte schließen"},
    "not_solved_button": {"en": "Not solved yet", "de": "Noch nicht gelöst"},
    # What the buttons write, as the customer would by mail (a confirmation word first; a
    # negation keeps the second from confirming): [tickets] confirm_words decides.
    "said_solved": {"en": "Solved, thank you.", "de": "Erledigt, danke."},
    "said_not_solved": {"en": "Not solved yet.", "de": "Noch nicht gelöst."},
    "subject_and_text": {
        "en": "A request needs a subject and a text.",
        "de": "Eine Anfrage braucht einen Betreff und einen Text.",
    },
    "request_queued": {
        "en": "Your request is stored; its number comes by mail.",
        "de": "Ihre Anfrage ist gespeichert; ihre Nummer kommt per Mail.",
    },
    "status_open": {"en": "open", "de": "offen"},
    "status_working": {"en": "in progress", "de": "in Bearbeitung"},
    "status_hold": {"en": "on hold", "de": "zurückgestellt"},
    "status_delivered": {
        "en": "solved, awaiting your confirmation",
        "de": "erledigt, wartet auf Ihre Bestätigung",
    },
    "status_closed": {"en": "closed", "de": "geschlossen"},
    "kind_answer": {"en": "Answer to the customer", "de": "Antwort an den Kunden"},
    "kind_note": {"en": "Internal note", "de": "Interne Notiz"},
    "text": {"en": "Text", "de": "Text"},
    "keep": {"en": "(unchanged)", "de": "(unverändert)"},
    "nobody": {"en": "(nobody)", "de": "(niemand)"},
    "minutes": {"en": "Time spent (e.g. 30m, 1h15m)", "de": "Zeitaufwand (z. B. 30m, 1h15m)"},
    "billable": {"en": "billable", "de": "abrechenbar"},
    "free": {"en": "free", "de": "kostenlos"},
    "type": {"en": "Type", "de": "Typ"},
    "category": {"en": "Category", "de": "Kategorie"},
    "cc": {"en": "Add (agent or customer)", "de": "Hinzufügen (Team oder Kunde)"},
    "files": {"en": "Files", "de": "Dateien"},
    "send": {"en": "Send", "de": "Senden"},
    "send_anyway": {"en": "Send anyway", "de": "Trotzdem senden"},
    "commands_refused": {
        "en": "Not everything you asked for was done: the desk has mailed you what was wrong, "
        "as for a mailed command. The rest of your mail stands.",
        "de": "Nicht alles Gewünschte wurde ausgeführt: Der Desk hat Ihnen gemailt, was falsch "
        "war, wie bei einem gemailten Befehl. Der Rest Ihrer Mail gilt.",
    },
    "nothing_to_send": {
        "en": "Nothing to send: write a text, attach a file or change something.",
        "de": "Nichts zu senden: Schreiben Sie einen Text, hängen Sie eine Datei an oder ändern "
        "Sie etwas.",
    },
    "written_meanwhile": {
        "en": "{who} wrote on this ticket since you opened it (below). Your text is not sent "
        "yet: read it, then send again.",
        "de": "{who} hat seit dem Öffnen dieser Seite auf das Ticket geschrieben (unten). Ihr "
        "Text ist noch nicht gesendet: Lesen Sie es, dann senden Sie noch einmal.",
    },
    "not_taken": {
        "en": "Your mail was not taken: {reason}",
        "de": "Ihre Mail wurde nicht angenommen: {reason}",
    },
    "too_large": {
        "en": "Too large: a form with its files may have at most {limit} bytes.",
        "de": "Zu groß: Ein Formular darf mit seinen Dateien höchstens {limit} Bytes haben.",
    },
}


def language(chosen: str | None) -> str:
    return "de" if (chosen or "").lower().startswith("de") else "en"


def say(key: str, lang: str, **values: object) -> str:
    """The words of `key` in `lang`, with `{name}`s filled in."""
    text = WORDS[key].get(lang) or WORDS[key]["en"]
    return text.format(**values) if values else text
