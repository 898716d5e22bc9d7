"""Staff `#commands` on the first lines of an agent's mail: parsed and checked, no database."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from email.utils import getaddresses

from mailgate.reading.addresses import valid_address
from mailgate.reading.phrases import Phrase
from mailgate.store.models import STATUSES, TYPES

MAX_MINUTES = 24 * 60
# Checks one command's arguments and returns them normalised, or raises CommandError.
Validator = Callable[[list[str]], tuple[str, ...]]


@dataclass(frozen=True)
class Command:
    """One valid command: canonical English name, normalised arguments, the text as typed."""

    name: str
    args: tuple[str, ...]
    source: str


@dataclass(frozen=True)
class Parsed:
    commands: tuple[Command, ...]
    errors: tuple[str, ...]
    body: str
    # A command line named no command we know: what the agent meant cannot be told (a
    # mistyped `#internal` means the text must not reach the customer).
    unknown: bool = False


class CommandError(ValueError):
    """Why one command's arguments are wrong, worded for the agent."""


class UnknownCommand(CommandError):
    """A `#word` that names no command."""


# A command starts with `#` and a letter; `#1` or `# heading` is text, not a command.
_COMMAND_START = re.compile(r"(?:^|(?<=\s))#(?=[^\W\d_])")
_LINE_START = re.compile(r"\s*#[^\W\d_]")

_STATUS_WORDS = {
    **{s: s for s in STATUSES},
    "offen": "open",
    "in-arbeit": "working",
    "inarbeit": "working",
    "bearbeitung": "working",
    "in-bearbeitung": "working",
    "warten": "hold",
    "wartend": "hold",
    "zurückgestellt": "hold",
    "geliefert": "delivered",
    "erledigt": "delivered",
    "geschlossen": "closed",
    # French, as the French mails name the statuses (and "livré" as well as "résolu").
    "ouvert": "open",
    "en-cours": "working",
    "encours": "working",
    "en-attente": "hold",
    "attente": "hold",
    "résolu": "delivered",
    "resolu": "delivered",
    "livré": "delivered",
    "livre": "delivered",
    "fermé": "closed",
    "ferme": "closed",
}
_PRIORITY_WORDS = {
    "a": "A",
    "b": "B",
    "c": "C",
    "high": "A",
    "medium": "B",
    "low": "C",
    "hoch": "A",
    "mittel": "B",
    "niedrig": "C",
    "haute": "A",
    "moyenne": "B",
    "basse": "C",
}
_TYPE_WORDS = {
    **{t: t for t in TYPES},
    "fehler": "bug",
    "verbesserung": "enhancement",
    "vorschlag": "suggestion",
    "hilfe": "help",
    "bogue": "bug",
    "amélioration": "enhancement",
    "amelioration": "enhancement",
    "aide": "help",
}
_BILLABLE_WORDS = {
    "billable": "billable",
    "berechnet": "billable",
    "abrechenbar": "billable",
    "free": "free",
    "frei": "free",
    "kostenlos": "free",
    "facturable": "billable",
    "gratuit": "free",
}
_YES_NO = {"yes": "yes", "ja": "yes", "oui": "yes", "no": "no", "nein": "no", "non": "no"}

_ALIASES = {
    "status": "status",
    "hold": "hold",
    "deliver": "deliver",
    "liefern": "deliver",
    "erledigt": "deliver",
    "close": "close",
    "schließen": "close",
    "schliessen": "close",
    "reopen": "reopen",
    "wiedereröffnen": "reopen",
    "wiedereroeffnen": "reopen",
    "priority": "priority",
    "priorität": "priority",
    "prioritaet": "priority",
    "prio": "priority",
    "type": "type",
    "typ": "type",
    "category": "category",
    "kategorie": "category",
    "assign": "assign",
    "zuweisen": "assign",
    "cc": "cc",
    "time": "time",
    "zeit": "time",
    "billable": "billable",
    "internal": "internal",
    "intern": "internal",
    "customer": "customer",
    "kunde": "customer",
    # French
    "statut": "status",
    "attente": "hold",
    "livrer": "deliver",
    "résolu": "deliver",
    "resolu": "deliver",
    "fermer": "close",
    "rouvrir": "reopen",
    "priorité": "priority",
    "priorite": "priority",
    "catégorie": "category",
    "categorie": "category",
    "assigner": "assign",
    "temps": "time",
    "facturable": "billable",
    "interne": "internal",
    "client": "customer",
}


def _one_of(
    words: dict[str, str], what: str, choices: str
) -> Callable[[list[str]], tuple[str, ...]]:
    """A validator for one word out of a table, e.g. a status or a priority; `what` is the
    key of its phrase (a_status…)."""

    def check(args: list[str]) -> tuple[str, ...]:
        # "in arbeit" typed as two words means the same as "in-arbeit".
        word = "-".join(args).lower()
        if not word:
            raise CommandError(Phrase("needs", what=Phrase(what), choices=choices))
        if word not in words:
            value = " ".join(args)
            raise CommandError(
                Phrase("not_one_of", value=value, what=Phrase(what), choices=choices)
            )
        return (words[word],)

    return check


def _no_args(args: list[str]) -> tuple[str, ...]:
    if args:
        raise CommandError(Phrase("no_arguments", args=" ".join(args)))
    return ()


def _text(what: str) -> Validator:
    def check(args: list[str]) -> tuple[str, ...]:
        if not args:
            raise CommandError(Phrase("needs_text", what=Phrase(what)))
        return (" ".join(args),)

    return check


def _address(args: list[str]) -> tuple[str, ...]:
    """One address, bare or as mail clients paste it with a name (`Martin Horak <m@x>`,
    `"Horak, Martin" <m@x>`): the address, then the name when there is one."""
    text = " ".join(args).strip().rstrip(",;")
    if not text:
        raise CommandError(Phrase("needs_address"))
    found = getaddresses([text])
    address = valid_address(found[0][1]) if len(found) == 1 else None
    if address is None or (len(args) > 1 and "<" not in text):
        raise CommandError(Phrase("not_one_address", text=text))
    name = " ".join(found[0][0].split())
    return (address, name) if name else (address,)


def parse_date(text: str) -> date:
    """YYYY-MM-DD or DD.MM.YYYY, as German agents write dates; ValueError otherwise."""
    iso = re.fullmatch(r"(\d{4})-(\d{1,2})-(\d{1,2})", text)
    german = re.fullmatch(r"(\d{1,2})\.(\d{1,2})\.(\d{4})", text)
    if iso:
        year, month, day = iso.groups()
    elif german:
        day, month, year = german.groups()
    else:
        raise ValueError(text)
    return date(int(year), int(month), int(day))


def _hold(args: list[str]) -> tuple[str, ...]:
    if len(args) != 1:
        raise CommandError(Phrase("needs_date"))
    try:
        return (parse_date(args[0]).isoformat(),)
    except ValueError:
        raise CommandError(Phrase("not_a_date", text=args[0])) from None


# Hours with optional minutes (1h30, 1h 30m, 1.5h), h:mm (1:30), or minutes with their unit
# (90m). A bare number is no duration: "#time 2" may mean two hours as well as two minutes.
_DURATION = re.compile(
    r"(?:(?P<hours>\d+(?:[.,]\d+)?)\s*(?:h|std)(?:\s*(?P<hmin>\d+)\s*(?:m|min)?)?"
    r"|(?P<clock_h>\d+):(?P<clock_m>\d\d)"
    r"|(?P<minutes>\d+)\s*(?:m|min))(?=\s|$)",
    re.IGNORECASE,
)
# The one wording of what a duration may look like: #time, `tickets time` and contingents.
DURATION_FORMS = "90m, 1h30, 1:30, 1.5h; -30m corrects"


def duration_problem(text: str) -> Phrase:
    """Why `text` is not a duration, with the forms that are, worded for agents and operators."""
    bare = text.strip().lstrip("+-")
    if bare.isdigit():
        return Phrase("no_unit", text=text, bare=bare, forms=DURATION_FORMS)
    return Phrase("not_a_duration", text=text, forms=DURATION_FORMS)


def parse_duration(text: str) -> tuple[int, str]:
    """Minutes at the start of `text` and what follows; ValueError if there is no duration."""
    match = _DURATION.match(text.strip())
    if not match:
        raise ValueError(text)
    parts = match.groupdict()
    if parts["hours"] is not None:
        extra = int(parts["hmin"] or 0)
        if extra >= 60:
            raise ValueError(text)
        minutes = round(float(parts["hours"].replace(",", ".")) * 60) + extra
    elif parts["clock_h"] is not None:
        if int(parts["clock_m"]) >= 60:
            raise ValueError(text)
        minutes = int(parts["clock_h"]) * 60 + int(parts["clock_m"])
    else:
        minutes = int(parts["minutes"])
    return minutes, text.strip()[match.end() :].strip()


def parse_signed_duration(text: str) -> tuple[int, str]:
    """parse_duration with an optional sign: -30m is a correction of time booked before."""
    stripped = text.strip()
    sign = -1 if stripped.startswith("-") else 1
    minutes, rest = parse_duration(stripped[1:] if stripped[:1] in "+-" else stripped)
    return sign * minutes, rest


def _time(args: list[str]) -> tuple[str, ...]:
    if not args:
        raise CommandError(Phrase("needs_duration"))
    try:
        minutes, rest = parse_signed_duration(" ".join(args))
    except ValueError:
        raise CommandError(duration_problem(args[0])) from None
    if not 0 < abs(minutes) <= MAX_MINUTES:
        raise CommandError(Phrase("minutes_range", minutes=abs(minutes)))
    word, _, note = rest.partition(" ")
    # No default: guessing wrong would bill a customer, or lose the billing, silently.
    if word.lower() not in _BILLABLE_WORDS:
        raise CommandError(Phrase("billable_or_free"))
    kind = _BILLABLE_WORDS[word.lower()]
    if minutes < 0 and not note.strip():
        # A correction changes what was billed: the report shows it with its reason.
        raise CommandError(Phrase("correction_note", amount=args[0], word=word))
    return (str(minutes), kind, note.strip()) if note.strip() else (str(minutes), kind)


_STATUS_CHOICES = ", ".join(STATUSES)
_VALIDATORS: dict[str, Validator] = {
    "status": _one_of(_STATUS_WORDS, "a_status", _STATUS_CHOICES),
    "hold": _hold,
    "deliver": _no_args,
    "close": _no_args,
    "reopen": _no_args,
    "priority": _one_of(_PRIORITY_WORDS, "a_priority", "A, B, C"),
    "type": _one_of(_TYPE_WORDS, "a_type", ", ".join(TYPES)),
    "category": _text("a_category"),
    "assign": _text("an_agent"),
    "cc": _address,
    "time": _time,
    "billable": _one_of(_YES_NO, "yes_or_no", "yes, no"),
    "internal": _no_args,
    "customer": _address,
}


def _parse_one(source: str) -> Command:
    """One `#name args…` segment; CommandError names the command as the agent typed it."""
    word, *args = source.split()
    typed = word[1:].rstrip(":").lower()
    name = _ALIASES.get(typed)
    if name is None:
        unknown = Phrase("unknown_command", known=", ".join(_VALIDATORS))
        raise UnknownCommand(Phrase("command", command=f"#{typed}", reason=unknown))
    try:
        held = _hold_words(args) if name == "status" else 0
        if held and len(args) > held:
            # "#status hold 2026-12-20" says what "#hold 2026-12-20" does: read it so.
            return Command("hold", _hold(args[held:]), source)
        return Command(name, _VALIDATORS[name](args), source)
    except CommandError as exc:
        raise CommandError(Phrase("command", command=f"#{typed}", reason=exc.args[0])) from None


def _hold_words(args: list[str]) -> int:
    """How many of the words name the hold status ("hold", "en attente"), 0 if none."""
    for count in (1, 2):
        if _STATUS_WORDS.get("-".join(args[:count]).lower()) == "hold":
            return count
    return 0


def _split_line(line: str) -> list[str]:
    starts = [m.start() for m in _COMMAND_START.finditer(line)]
    ends = [*starts[1:], len(line)]
    return [line[start:end].strip() for start, end in zip(starts, ends, strict=True)]


# Words a salutation starts with, for a greeting line without its comma ("Hallo Tom").
_GREETINGS = re.compile(
    r"(?:hallo|hello|hi|hey|dear|liebe|lieber|sehr geehrte[rs]?|guten (?:tag|morgen|abend)"
    r"|good (?:morning|afternoon|evening)|moin|servus|grüß gott|gruezi|grüezi)(?:\W|$)",
    re.IGNORECASE,
)
GREETING_MAX_CHARS = 60


def is_greeting(line: str) -> bool:
    """A salutation line: short, and ending with a comma or starting with a greeting word."""
    text = line.strip()
    if not text or len(text) > GREETING_MAX_CHARS or text.startswith("#"):
        return False
    return text.endswith(",") or (
        bool(_GREETINGS.match(text)) and not text.endswith((".", "?", ":"))
    )


def parse_commands(text: str) -> Parsed:
    """The commands on the lines before the answer's text starts, the errors, and the text
    without them. Greeting lines and blank lines may come before and between command lines
    (agents write `Hallo Tom,` first); the first line of other text ends the block."""
    lines = text.splitlines(keepends=True)
    kept: list[str] = []  # greetings and blank lines: they stay in the text
    commands: list[Command] = []
    errors: list[str] = []
    index, found, unknown = 0, False, False
    while index < len(lines):
        line = lines[index]
        if _LINE_START.match(line):
            found = True
            for segment in _split_line(line):
                try:
                    commands.append(_parse_one(segment))
                except CommandError as exc:
                    errors.append(exc.args[0])  # a phrase: the agent reads it in their language
                    unknown = unknown or isinstance(exc, UnknownCommand)
        elif line.strip() and not is_greeting(line):
            break
        else:
            kept.append(line)
        index += 1
    # A line of valid commands after the text is text, as the rule says, but hardly meant
    # as such (`#close` under the answer): the agent is told it was not applied.
    late = [Phrase("command_late", command=line.strip()) for line in lines[index:] if _valid(line)]
    if not found:
        return Parsed((), tuple(late), text)
    rest = "".join(lines[index:])
    # A greeting with nothing after it is no answer: the customer gets no mail saying "Hi,".
    body = _head(kept) + rest if rest.strip() else ""
    return Parsed(tuple(commands), tuple(errors + late), body, unknown)


def _valid(line: str) -> bool:
    """The line is nothing but commands, each of them valid."""
    if not _LINE_START.match(line):
        return False
    try:
        for segment in _split_line(line):
            _parse_one(segment)
    except CommandError:
        return False
    return True


def _head(kept: list[str]) -> str:
    """The greeting lines left when the command lines are taken out: no blank line before
    them, and one at most between them and the text."""
    head: list[str] = []
    for line in kept:
        blank = not line.strip()
        if blank and (not head or not head[-1].strip()):
            continue
        head.append(line)
    return "".join(head)
