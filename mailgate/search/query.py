"""Staff's search text read into a typed Query, or a QueryError naming the bad part (pure)."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import date

from mailgate.store.models import STATUSES

MAX_LENGTH = 1000  # characters: a query longer than this is a paste gone wrong
MAX_TERMS = 24  # each term is one look-up in the index
# Characters of an article's text indexed: a pasted log of megabytes would make an index
# entry larger than PostgreSQL takes (a tsvector is at most 1 MB), and what staff look for
# is near the top.
MAX_INDEXED = 100_000
FIELDS = ("from", "to", "org", "ref", "file")
PART_FIELDS = (None, "ref", "file")  # where `*part` looks: short texts (see search_parts)
MIN_PART = 3  # characters: the indexes look parts up by their runs of three
_KEYS = (*FIELDS, "cid", "is", "assignee", "after", "before")
_WORD = re.compile(r"[^\W_]+")  # letters and digits: what both databases' tokenizers keep
_CID = re.compile(r"\[?cid-(\d{1,9})\]?", re.IGNORECASE)
# Letters the Unicode decomposition leaves alone, folded as PostgreSQL's unaccent folds them.
_SPECIAL = str.maketrans({"ø": "o", "ł": "l", "đ": "d", "æ": "ae", "œ": "oe", "þ": "th"})
_UMLAUTS = str.maketrans({"ä": "ae", "ö": "oe", "ü": "ue"})
_DIGRAPH = re.compile(r"(?<=[a-z])(ae|oe|ue)")


class QueryError(ValueError):
    """A query that cannot be searched for; the message names the part that is wrong."""


@dataclass(frozen=True)
class Term:
    """Words that must appear together (one word, or a phrase), in one field or any."""

    words: tuple[str, ...]  # lower case, as typed (diacritics kept: variants() folds)
    field: str | None = None  # one of FIELDS, or None: anywhere
    prefix: bool = False  # the last word may go on (`rechnung*`)
    quoted: bool = False  # typed as "a phrase": its words in this order, next to each other
    # `*schein`: these characters anywhere in a subject, file name or reference (words[0],
    # as typed but in lower case: `*AB-74` finds AB-742081)
    part: bool = False

    def variants(self) -> tuple[str, ...]:
        """The term's words joined by spaces, in each spelling that should meet it:
        diacritics dropped (`müller` -> `muller`), German transliteration both ways
        (`müller` <-> `mueller`) and `ß` <-> `ss`. Case and other diacritics are folded
        by the index itself."""
        text = " ".join(self.words)
        found = [strip_marks(text), strip_marks(text.translate(_UMLAUTS))]
        plain = found[0]
        found.append(_DIGRAPH.sub(lambda m: m.group(1)[0], plain))
        found += [v.replace("ß", "ss") for v in found] + [v.replace("ss", "ß") for v in found]
        return tuple(v for v in dict.fromkeys(found) if v.strip())


@dataclass(frozen=True)
class Query:
    text: str
    terms: tuple[Term, ...] = ()  # all must match
    excluded: tuple[Term, ...] = ()  # none may match
    cid: int | None = None
    statuses: tuple[str, ...] = ()
    assignee: str | None = None  # an agent's address or name, "none" for unassigned
    after: date | None = None  # active on or after this day
    before: date | None = None  # opened before this day

    @property
    def has_text(self) -> bool:
        return bool(self.terms)


def strip_marks(text: str) -> str:
    """Lower case without diacritics; `ß` stays (SQLite's tokenizer keeps it too)."""
    decomposed = unicodedata.normalize("NFKD", text.lower().translate(_SPECIAL))
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def parse(text: str) -> Query:
    """Read a query: words (all must match), "a phrase", prefix*, -excluded, key:value."""
    text = text.replace("\x00", " ")
    if len(text) > MAX_LENGTH:
        raise QueryError(f"the query is {len(text)} characters long; at most {MAX_LENGTH}")
    parts: dict[str, list] = {"terms": [], "excluded": [], "statuses": []}
    values: dict[str, object] = {}
    for raw in _split(text):
        _read(raw, parts, values)
    if len(parts["terms"]) + len(parts["excluded"]) > MAX_TERMS:
        raise QueryError(f"too many words to search for; at most {MAX_TERMS}")
    query = Query(
        text=text.strip(),
        terms=tuple(parts["terms"]),
        excluded=tuple(parts["excluded"]),
        statuses=tuple(dict.fromkeys(parts["statuses"])),
        **values,  # type: ignore[arg-type]
    )
    wanted = (query.terms, query.cid is not None, query.statuses, query.assignee)
    if not any((*wanted, query.after, query.before)):
        raise QueryError(f"nothing to search for in {text.strip()[:60]!r}")
    after, before = query.after, query.before
    if after and before and before <= after:
        raise QueryError(f"before:{before} is not after after:{after}")
    return query


def _split(text: str) -> list[str]:
    """Split at spaces outside double quotes; an unclosed quote is refused."""
    if text.count('"') % 2:
        start = text.rfind('"')
        raise QueryError(f"a quote is not closed: {text[start : start + 40]!r}")
    return re.findall(r'(?:[^\s"]+|"[^"]*")+', text)


def _read(raw: str, parts: dict[str, list], values: dict[str, object]) -> None:
    negative = raw.startswith("-") and len(raw) > 1
    body = raw[1:] if negative else raw
    key, sep, value = body.partition(":")
    key = key.lower()
    if sep and key in _KEYS and not key.startswith('"'):
        if not value.strip('"').strip():
            raise QueryError(f"{key}: needs a value, as in {key}:{_EXAMPLES[key]}")
        if key in FIELDS:
            term = _term(value, key)
            if term:
                parts["excluded" if negative else "terms"].append(term)
            return
        if negative:
            raise QueryError(f"{raw}: only words and {', '.join(FIELDS)}: can be excluded")
        _filter(key, value.strip('"'), parts, values)
        return
    cid = _CID.fullmatch(body)
    if cid and not negative:
        values["cid"] = int(cid.group(1))
        return
    term = _term(body, None)
    if term:
        parts["excluded" if negative else "terms"].append(term)


_EXAMPLES = {
    "from": "alice@example.org",
    "to": "support@example.com",
    "org": "ACME",
    "ref": "RE-2026-001",
    "file": "invoice.pdf",
    "cid": "1042",
    "is": "open",
    "assignee": "bob@example.com",
    "after": "2026-03-01",
    "before": "2026-04-01",
}


def _term(value: str, field_name: str | None) -> Term | None:
    """A word, "a phrase", prefix* or *part; None when it holds no letters or digits (`^`,
    `:`)."""
    if value.startswith("*") and len(value.strip("*")) > 0:
        return _part(value, field_name)
    prefix = value.endswith("*")
    words = tuple(w.lower() for w in _WORD.findall(value))
    if not words:
        if "*" in value:
            raise QueryError("a * goes at the end of a word, as in rechnung*")
        return None
    return Term(words=words, field=field_name, prefix=prefix, quoted=value.startswith('"'))


def _part(value: str, field_name: str | None) -> Term:
    fragment = value.strip("*").lower()
    where = f"{field_name}:" if field_name else ""
    if field_name not in PART_FIELDS:
        raise QueryError(
            f"{where}{value}: a part of a word is looked for in subjects, file: and ref: only"
        )
    if len(fragment) < MIN_PART or "*" in fragment or '"' in fragment:
        raise QueryError(
            f"{where}{value}: a part of a word is at least {MIN_PART} characters after the *, "
            "as in *schein or ref:*2081"
        )
    return Term(words=(fragment,), field=field_name, part=True)


def _filter(key: str, value: str, parts: dict[str, list], values: dict[str, object]) -> None:
    if key == "cid":
        found = re.fullmatch(r"(?:cid-)?(\d{1,9})", value, re.IGNORECASE)
        if not found:
            raise QueryError(f"cid:{value} is not a ticket number, as in cid:1042")
        values["cid"] = int(found.group(1))
    elif key == "is":
        for status in value.lower().split(","):
            if status not in STATUSES:
                raise QueryError(f"is:{status} is not one of {', '.join(STATUSES)}")
            parts["statuses"].append(status)
    elif key == "assignee":
        values["assignee"] = value.strip().lower()
    else:
        if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
            raise QueryError(f"{key}:{value} is not a date (YYYY-MM-DD)")
        try:
            values[key] = date.fromisoformat(value)
        except ValueError:
            raise QueryError(f"{key}:{value} is not a date (YYYY-MM-DD)") from None
