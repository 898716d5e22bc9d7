"""The web desk's words in German, English and French: a page speaks its reader's language
(an agent's `language`, else [tickets] default_language), English for any other."""

from __future__ import annotations

WORDS: dict[str, dict[str, str]] = {
    # After a label: French sets a no-break space before the colon ("Statut : ouvert").
    "colon": {"en": ":", "de": ":", "fr": "\u00a0:"},
    "desk": {"en": "Support desk", "de": "Support-Desk", "fr": "Centre d'assistance"},
    "sign_in": {"en": "Sign in", "de": "Anmelden", "fr": "Se connecter"},
    "sign_out": {"en": "Sign out", "de": "Abmelden", "fr": "Se déconnecter"},
    "your_address": {
        "en": "Your mail address",
        "de": "Ihre Mail-Adresse",
        "fr": "Votre adresse e-mail",
    },
    "send_link": {
        "en": "Mail me a sign-in link",
        "de": "Anmeldelink zusenden",
        "fr": "Recevoir un lien de connexion par e-mail",
    },
    "link_sent": {
        # Customers sign in here too: the answer is the same for any address (it tells no one
        # who is known), and names no kind of address a customer would think leaves them out.
        "en": "If we know this address, a sign-in link is on its way to it. It works once, "
        "for {minutes} minutes.",
        "de": "Ist uns diese Adresse bekannt, ist ein Anmeldelink dorthin unterwegs. Er gilt "
        "einmal, {minutes} Minuten lang.",
        "fr": "Si nous connaissons cette adresse, un lien de connexion vient d'y être envoyé. "
        "Il n'est valable qu'une fois, pendant {minutes} minutes.",
    },
    "confirm_sign_in": {
        "en": "Press the button to sign in to the support desk in this browser.",
        "de": "Drücken Sie die Schaltfläche, um sich in diesem Browser am Support-Desk anzumelden.",
        "fr": "Cliquez sur le bouton pour vous connecter au centre d'assistance dans ce "
        "navigateur.",
    },
    "link_refused": {
        "en": "This sign-in link does not work: {why}. Ask for a new one.",
        "de": "Dieser Anmeldelink funktioniert nicht: {why}. Fordern Sie einen neuen an.",
        "fr": "Ce lien de connexion ne fonctionne pas : {why}. Veuillez en demander un nouveau.",
    },
    "why_unknown": {"en": "it is not known", "de": "er ist unbekannt", "fr": "il est inconnu"},
    "why_used": {
        "en": "it was used already",
        "de": "er wurde schon benutzt",
        "fr": "il a déjà été utilisé",
    },
    "why_expired": {"en": "it has expired", "de": "er ist abgelaufen", "fr": "il a expiré"},
    "why_revoked": {"en": "it was revoked", "de": "er wurde widerrufen", "fr": "il a été révoqué"},
    "why_inactive": {
        "en": "the account is not active",
        "de": "das Konto ist nicht aktiv",
        "fr": "le compte n'est pas actif",
    },
    "too_many": {
        "en": "Too many attempts with links that do not work. Try again in a few minutes.",
        "de": "Zu viele Versuche mit ungültigen Links. Versuchen Sie es in einigen Minuten wieder.",
        "fr": "Trop de tentatives avec des liens non valides. Veuillez réessayer dans quelques "
        "minutes.",
    },
    "refused_form": {
        "en": "This form was not sent from this desk's page, or the page is too old. Reload "
        "the page and try again.",
        "de": "Dieses Formular kam nicht von einer Seite dieses Desks, oder die Seite ist zu "
        "alt. Laden Sie die Seite neu und versuchen Sie es noch einmal.",
        "fr": "Ce formulaire ne provient pas d'une page de ce centre d'assistance, ou la page est "
        "trop ancienne. Rechargez la page et réessayez.",
    },
    "not_found": {"en": "Not found.", "de": "Nicht gefunden.", "fr": "Introuvable."},
    "bad_request": {
        "en": "This request is not one the desk's pages send. Reload the page and try again.",
        "de": "Diese Anfrage kommt so von keiner Seite des Desks. Laden Sie die Seite neu und "
        "versuchen Sie es noch einmal.",
        "fr": "Cette requête ne provient d'aucune page du centre d'assistance. Rechargez la "
        "page et réessayez.",
    },
    "unavailable": {
        "en": "The desk's database is busy or unreachable. Try again in a moment.",
        "de": "Die Datenbank des Desks ist belegt oder nicht erreichbar. Versuchen Sie es "
        "gleich noch einmal.",
        "fr": "La base de données du centre d'assistance est occupée ou injoignable. Veuillez "
        "réessayer dans un instant.",
    },
    "failed": {
        "en": "Something went wrong on the desk's side; it is logged. Try again, or use mail.",
        "de": "Auf Seiten des Desks ist etwas schiefgegangen; es ist protokolliert. Versuchen "
        "Sie es noch einmal, oder schreiben Sie eine Mail.",
        "fr": "Une erreur s'est produite de notre côté ; elle a été consignée. Veuillez réessayer, "
        "ou écrivez-nous par e-mail.",
    },
    "sessions": {
        "en": "Signed-in browsers",
        "de": "Angemeldete Browser",
        "fr": "Navigateurs connectés",
    },
    "revoke": {"en": "Sign out there", "de": "Dort abmelden", "fr": "Déconnecter ce navigateur"},
    "this_browser": {"en": "this browser", "de": "dieser Browser", "fr": "ce navigateur"},
    "signed_in_since": {"en": "signed in", "de": "angemeldet", "fr": "connecté le"},
    "last_used": {"en": "last used", "de": "zuletzt benutzt", "fr": "dernière utilisation le"},
    "search": {"en": "Search", "de": "Suchen", "fr": "Rechercher"},
    "no_tickets": {"en": "No tickets.", "de": "Keine Tickets.", "fr": "Aucun ticket."},
    "newer": {"en": "← newer", "de": "← neuere", "fr": "← plus récents"},
    "older": {"en": "older →", "de": "ältere →", "fr": "plus anciens →"},
    "q_unassigned": {"en": "Unassigned", "de": "Nicht zugewiesen", "fr": "Non attribués"},
    "q_mine": {"en": "Mine", "de": "Meine", "fr": "Les miens"},
    "q_open": {"en": "Open", "de": "Offen", "fr": "Ouverts"},
    "q_waiting": {
        "en": "Waiting for customer",
        "de": "Wartet auf Kunden",
        "fr": "En attente du client",
    },
    "q_hold_due": {"en": "Hold due", "de": "Wiedervorlage fällig", "fr": "À reprendre"},
    "q_hold": {"en": "On hold", "de": "Zurückgestellt", "fr": "En attente"},
    "q_delivered": {"en": "Delivered", "de": "Ausgeliefert", "fr": "Résolus"},
    "q_closed": {"en": "Closed", "de": "Geschlossen", "fr": "Fermés"},
    "col_ticket": {"en": "Ticket", "de": "Ticket", "fr": "Ticket"},
    "col_customer": {"en": "Customer", "de": "Kunde", "fr": "Client"},
    "col_subject": {"en": "Subject", "de": "Betreff", "fr": "Objet"},
    "col_assignee": {"en": "Assignee", "de": "Bearbeiter", "fr": "Attribué à"},
    "col_status": {"en": "Status", "de": "Status", "fr": "Statut"},
    "col_priority": {"en": "Prio", "de": "Prio", "fr": "Priorité"},
    "col_last_action": {"en": "Last action", "de": "Letzte Aktion", "fr": "Dernière action"},
    "by_customer": {"en": "customer", "de": "Kunde", "fr": "client"},
    "by_staff": {"en": "staff", "de": "Team", "fr": "équipe"},
    "waiting_since": {"en": "Waiting since", "de": "Wartet seit", "fr": "En attente depuis"},
    "hours_left": {"en": "Hours left", "de": "Stunden übrig", "fr": "Heures restantes"},
    "their_other_tickets": {
        "en": "The requester's other tickets",
        "de": "Weitere Tickets des Anfragenden",
        "fr": "Autres tickets du demandeur",
    },
    "first_response_due": {
        "en": "first response overdue",
        "de": "Erstreaktion überfällig",
        "fr": "première réponse en retard",
    },
    "requester": {"en": "Requester", "de": "Anfragender", "fr": "Demandeur"},
    "references": {"en": "References", "de": "Referenzen", "fr": "Références"},
    "history": {"en": "Mails", "de": "Mails", "fr": "E-mails"},
    "events": {"en": "Events", "de": "Ereignisse", "fr": "Événements"},
    "attachments": {"en": "Attachments", "de": "Anhänge", "fr": "Pièces jointes"},
    "html_version": {"en": "The mail as HTML", "de": "Die Mail als HTML", "fr": "L'e-mail en HTML"},
    "dir_customer": {"en": "customer", "de": "Kunde", "fr": "client"},
    "dir_staff": {"en": "staff", "de": "Team", "fr": "équipe"},
    "dir_internal": {"en": "internal note", "de": "interne Notiz", "fr": "note interne"},
    "dir_system": {"en": "system", "de": "System", "fr": "système"},
    "time_booked": {"en": "Time booked", "de": "Gebuchte Zeit", "fr": "Temps saisi"},
    "hold_until": {"en": "On hold until", "de": "Zurückgestellt bis", "fr": "En attente jusqu'au"},
    "write": {"en": "Answer or note", "de": "Antwort oder Notiz", "fr": "Réponse ou note"},
    "customers": {"en": "Customers", "de": "Kunden", "fr": "Clients"},
    "kind_company": {"en": "Companies", "de": "Firmen", "fr": "Entreprises"},
    "kind_personal": {
        "en": "Single senders",
        "de": "Einzelne Absender",
        "fr": "Expéditeurs individuels",
    },
    "kind_pool": {"en": "Pool", "de": "Sammelstelle", "fr": "Regroupement"},
    "kind_all": {"en": "All", "de": "Alle", "fr": "Tous"},
    "kind": {"en": "Kind", "de": "Art", "fr": "Type"},
    "organisation": {"en": "Organisation", "de": "Organisation", "fr": "Organisation"},
    "domains": {"en": "Domains", "de": "Domains", "fr": "Domaines"},
    "contacts": {"en": "Contacts", "de": "Kontakte", "fr": "Contacts"},
    "name": {"en": "Name", "de": "Name", "fr": "Nom"},
    "language": {"en": "Language", "de": "Sprache", "fr": "Langue"},
    "open_tickets": {"en": "Open tickets", "de": "Offene Tickets", "fr": "Tickets ouverts"},
    "responsible": {"en": "Responsible agent", "de": "Zuständig", "fr": "Agent responsable"},
    "support_hours_short": {
        "en": "Support hours used / bought",
        "de": "Support-Stunden verbraucht / gekauft",
        "fr": "Heures de support consommées / achetées",
    },
    "left": {"en": "left", "de": "übrig", "fr": "restantes"},
    "their_tickets": {"en": "Their tickets", "de": "Ihre Tickets", "fr": "Leurs tickets"},
    "failing": {"en": "mail bounces", "de": "Mail kommt zurück", "fr": "e-mails rejetés"},
    "opted_out": {
        "en": "no optional mail",
        "de": "keine optionalen Mails",
        "fr": "aucun e-mail facultatif",
    },
    "no_customers": {"en": "None.", "de": "Keine.", "fr": "Aucun."},
    "stats": {"en": "Statistics", "de": "Statistik", "fr": "Statistiques"},
    "stats_window": {
        "en": "The last seven days, {first} to {last} ({zone}).",
        "de": "Die letzten sieben Tage, {first} bis {last} ({zone}).",
        "fr": "Les sept derniers jours, du {first} au {last} ({zone}).",
    },
    "opened_per_day": {
        "en": "Tickets opened per day",
        "de": "Neue Tickets pro Tag",
        "fr": "Nouveaux tickets par jour",
    },
    "unresolved_per_day": {
        "en": "Unresolved at the end of each day",
        "de": "Am Ende jedes Tages ungelöst",
        "fr": "Non résolus à la fin de chaque jour",
    },
    "by_category_status": {
        "en": "Tickets by category and status",
        "de": "Tickets nach Kategorie und Status",
        "fr": "Tickets par catégorie et statut",
    },
    "times": {
        "en": "Response and resolution",
        "de": "Reaktion und Lösung",
        "fr": "Réponse et résolution",
    },
    "first_response": {"en": "First response", "de": "Erste Antwort", "fr": "Première réponse"},
    "resolution": {"en": "Resolution", "de": "Lösung", "fr": "Résolution"},
    "targets_missed": {"en": "Targets missed", "de": "Ziele verfehlt", "fr": "Objectifs manqués"},
    "times_hint": {
        "en": "Median / 90th percentile (h:mm) of the window's tickets, with their number.",
        "de": "Median / 90. Perzentil (h:mm) der Tickets des Zeitraums, mit ihrer Anzahl.",
        "fr": "Médiane / 90e centile (h:mm) des tickets de la période, avec leur nombre.",
    },
    "quarantine": {"en": "Quarantine", "de": "Quarantäne", "fr": "Quarantaine"},
    "quarantine_empty": {
        "en": "Nothing in quarantine.",
        "de": "Nichts in Quarantäne.",
        "fr": "Rien en quarantaine.",
    },
    "received": {"en": "Received", "de": "Empfangen", "fr": "Reçu"},
    "from": {"en": "From", "de": "Von", "fr": "De"},
    "why": {"en": "Why", "de": "Grund", "fr": "Motif"},
    "retry": {"en": "Process again", "de": "Erneut verarbeiten", "fr": "Traiter à nouveau"},
    "release": {
        "en": "Release as a new ticket",
        "de": "Als neues Ticket freigeben",
        "fr": "Libérer comme nouveau ticket",
    },
    "release_for": {
        "en": "For this sender (empty: the message's own)",
        "de": "Für diesen Absender (leer: den der Nachricht)",
        "fr": "Pour cet expéditeur (vide : celui du message)",
    },
    "as_customer": {
        "en": "answer it like any new request (acknowledgement, staff told)",
        "de": "wie jede neue Anfrage beantworten (Eingangsbestätigung, Team informiert)",
        "fr": "y répondre comme à toute nouvelle demande (accusé de réception, équipe informée)",
    },
    "drop": {"en": "Drop", "de": "Verwerfen", "fr": "Rejeter"},
    "drop_reason": {"en": "Why drop it", "de": "Warum verwerfen", "fr": "Motif du rejet"},
    "my_requests": {"en": "My requests", "de": "Meine Anfragen", "fr": "Mes demandes"},
    "new_request": {"en": "New request", "de": "Neue Anfrage", "fr": "Nouvelle demande"},
    "no_requests": {
        "en": "No requests yet.",
        "de": "Noch keine Anfragen.",
        "fr": "Aucune demande pour l'instant.",
    },
    "support_hours_used": {
        "en": "Billable support time so far (h:mm): {used}.",
        "de": "Bisher abrechenbare Support-Zeit (h:mm): {used}.",
        "fr": "Temps de support facturable à ce jour (h:mm) : {used}.",
    },
    "support_hours": {
        "en": "Support hours (h:mm): {bought} bought, {used} used, {left} left.",
        "de": "Support-Stunden (h:mm): {bought} gekauft, {used} verbraucht, {left} übrig.",
        "fr": "Heures de support (h:mm) : {bought} achetées, {used} consommées, {left} restantes.",
    },
    "by_you": {"en": "you", "de": "Sie", "fr": "vous"},
    "by_support": {"en": "support", "de": "Support", "fr": "support"},
    "support": {"en": "Support", "de": "Support", "fr": "Support"},
    "reply": {"en": "Reply", "de": "Antworten", "fr": "Répondre"},
    "order_number": {
        "en": "Order number (if any)",
        "de": "Bestellnummer (falls vorhanden)",
        "fr": "Numéro de commande (le cas échéant)",
    },
    "delivered_question": {
        "en": "We consider this request solved. Is it?",
        "de": "Wir betrachten diese Anfrage als erledigt. Ist sie das?",
        "fr": "Nous considérons cette demande comme résolue. Est-ce bien le cas ?",
    },
    "solved_button": {
        "en": "Solved, close it",
        "de": "Erledigt, bitte schließen",
        "fr": "Résolu, fermer la demande",
    },
    "not_solved_button": {
        "en": "Not solved yet",
        "de": "Noch nicht gelöst",
        "fr": "Pas encore résolu",
    },
    # What the buttons write, as the customer would by mail (a confirmation word first; a
    # negation keeps the second from confirming): [tickets] confirm_words decides.
    "said_solved": {"en": "Solved, thank you.", "de": "Erledigt, danke.", "fr": "Résolu, merci."},
    "said_not_solved": {
        "en": "Not solved yet.",
        "de": "Noch nicht gelöst.",
        "fr": "Pas encore résolu.",
    },
    "subject_and_text": {
        "en": "A request needs a subject and a text.",
        "de": "Eine Anfrage braucht einen Betreff und einen Text.",
        "fr": "Une demande doit comporter un objet et un texte.",
    },
    "request_queued": {
        "en": "Your request is stored; its number comes by mail.",
        "de": "Ihre Anfrage ist gespeichert; ihre Nummer kommt per Mail.",
        "fr": "Votre demande est enregistrée ; son numéro vous parviendra par e-mail.",
    },
    "status_open": {"en": "open", "de": "offen", "fr": "ouvert"},
    "status_working": {"en": "in progress", "de": "in Bearbeitung", "fr": "en cours"},
    "status_hold": {"en": "on hold", "de": "zurückgestellt", "fr": "en attente"},
    "status_delivered": {
        "en": "solved, awaiting your confirmation",
        "de": "erledigt, wartet auf Ihre Bestätigung",
        "fr": "résolu, en attente de votre confirmation",
    },
    "status_closed": {"en": "closed", "de": "geschlossen", "fr": "fermé"},
    "kind_answer": {
        "en": "Answer to the customer",
        "de": "Antwort an den Kunden",
        "fr": "Réponse au client",
    },
    "kind_note": {"en": "Internal note", "de": "Interne Notiz", "fr": "Note interne"},
    "text": {"en": "Text", "de": "Text", "fr": "Texte"},
    "keep": {"en": "(unchanged)", "de": "(unverändert)", "fr": "(inchangé)"},
    "nobody": {"en": "(nobody)", "de": "(niemand)", "fr": "(personne)"},
    "minutes": {
        "en": "Time spent (e.g. 30m, 1h15m)",
        "de": "Zeitaufwand (z. B. 30m, 1h15m)",
        "fr": "Temps passé (p. ex. 30m, 1h15m)",
    },
    "billable": {"en": "billable", "de": "abrechenbar", "fr": "facturable"},
    "free": {"en": "free", "de": "kostenlos", "fr": "non facturé"},
    "type": {"en": "Type", "de": "Typ", "fr": "Type"},
    "category": {"en": "Category", "de": "Kategorie", "fr": "Catégorie"},
    "cc": {
        "en": "Add (agent or customer)",
        "de": "Hinzufügen (Team oder Kunde)",
        "fr": "Ajouter (agent ou client)",
    },
    "files": {"en": "Files", "de": "Dateien", "fr": "Fichiers"},
    "send": {"en": "Send", "de": "Senden", "fr": "Envoyer"},
    "send_anyway": {"en": "Send anyway", "de": "Trotzdem senden", "fr": "Envoyer quand même"},
    "commands_refused": {
        "en": "Not everything you asked for was done: the desk has mailed you what was wrong, "
        "as for a mailed command. The rest of your mail stands.",
        "de": "Nicht alles Gewünschte wurde ausgeführt: Der Desk hat Ihnen gemailt, was falsch "
        "war, wie bei einem gemailten Befehl. Der Rest Ihrer Mail gilt.",
        "fr": "Une partie de ce que vous avez demandé n'a pas été effectuée : le centre "
        "d'assistance vous a indiqué par e-mail ce qui n'allait pas, comme pour une commande "
        "envoyée par e-mail. Le reste de votre e-mail est pris en compte.",
    },
    "nothing_to_send": {
        "en": "Nothing to send: write a text, attach a file or change something.",
        "de": "Nichts zu senden: Schreiben Sie einen Text, hängen Sie eine Datei an oder ändern "
        "Sie etwas.",
        "fr": "Rien à envoyer : écrivez un texte, joignez un fichier ou modifiez quelque chose.",
    },
    "written_meanwhile": {
        "en": "{who} wrote on this ticket since you opened it (below). Your text is not sent "
        "yet: read it, then send again.",
        "de": "{who} hat seit dem Öffnen dieser Seite auf das Ticket geschrieben (unten). Ihr "
        "Text ist noch nicht gesendet: Lesen Sie es, dann senden Sie noch einmal.",
        "fr": "{who} a écrit sur ce ticket depuis que vous l'avez ouvert (ci-dessous). Votre texte "
        "n'est pas encore envoyé : lisez ce message, puis envoyez à nouveau.",
    },
    "not_taken": {
        "en": "Your mail was not taken: {reason}",
        "de": "Ihre Mail wurde nicht angenommen: {reason}",
        "fr": "Votre e-mail n'a pas été accepté : {reason}",
    },
    "too_large": {
        "en": "Too large: a form with its files may have at most {limit} bytes.",
        "de": "Zu groß: Ein Formular darf mit seinen Dateien höchstens {limit} Bytes haben.",
        "fr": "Trop volumineux : un formulaire, fichiers compris, ne peut pas dépasser {limit} "
        "octets.",
    },
}


LANGUAGES: tuple[str, ...] = ("en", "de", "fr")  # the pages' languages; every key of WORDS has each
_ACCEPTED_MAX = 20  # entries of an Accept-Language read; a browser sends a handful


def language(chosen: str | None) -> str:
    """The page language for a chosen one ("de-AT" is German); English for any other."""
    primary = (chosen or "").lower()[:2]
    return primary if primary in LANGUAGES else "en"


def browser_language(accept_language: str) -> str | None:
    """The page language a browser's Accept-Language asks for first of those the pages
    speak ("fr-CH, fr;q=0.9, en;q=0.8" is French); None when it names none of them."""
    wanted: list[tuple[float, int, str]] = []
    for position, item in enumerate(accept_language.split(",")[:_ACCEPTED_MAX]):
        tag, _, params = item.strip().partition(";")
        quality = params.strip().removeprefix("q=").strip() if params else "1"
        try:
            weight = float(quality)
        except ValueError:
            continue  # a malformed entry says nothing
        primary = tag.strip().lower()[:2]
        if weight > 0 and primary in LANGUAGES:
            wanted.append((-weight, position, primary))
    return min(wanted)[2] if wanted else None


def say(key: str, lang: str, **values: object) -> str:
    """The words of `key` in `lang`, with `{name}`s filled in."""
    text = WORDS[key].get(lang) or WORDS[key]["en"]
    return text.format(**values) if values else text
