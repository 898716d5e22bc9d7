"""The per-language table of reply marks (languages.toml), read once, and the line
normalisation every entry of it is compared after."""

from __future__ import annotations

import functools
import re
import tomllib
from dataclasses import dataclass
from importlib import resources

# Every space a client may put in a date or before a French colon: no-break (U+00A0),
# narrow no-break (U+202F, Gmail's and Apple's before "AM" and in Russian dates), thin,
# figure and ideographic spaces, tabs.
_SPACES = re.compile(r"[\s\u00a0\u2007\u2009\u202f\u3000]+")
_LEADING_MARKS = ">* \t\u00a0\u202f"
# Outlook's mobile apps follow their signature with a link ("…for iOS<https://aka.ms/…>").
_LINK = re.compile(r"<(?:https?:|mailto:)[^<>\s]*>")
_WORD = re.compile(r"[^\W\d_]+|@")


def normalise(line: str) -> str:
    """The line as the table is written: without quote marks and bold asterisks in front,
    one plain space for any run of spaces, no space before a colon, lower case."""
    text = lower(_SPACES.sub(" ", line.lstrip(_LEADING_MARKS)).strip())
    return text.replace(" :", ":")


def lower(text: str) -> str:
    # Turkish capital "İ" lowers to "i" and a combining dot: "İleti" is written "ileti".
    return text.lower().replace("i\u0307", "i")


def without_links(text: str) -> str:
    return _SPACES.sub(" ", _LINK.sub(" ", text)).strip()


@dataclass(frozen=True)
class Form:
    """One entry of the table: literal parts with any text ("*") between them. Matched by
    plain string search, left to right: no backtracking, linear in the line."""

    text: str
    parts: tuple[str, ...]

    @classmethod
    def of(cls, text: str) -> Form:
        return cls(text, tuple(_split(text)))

    @property
    def leading_word(self) -> bool:
        """Whether the form starts with a word ("On … wrote:") rather than any text."""
        return bool(self.parts[0])

    @property
    def anchor(self) -> str:
        """Its first word, or "*" and its last word when it starts with any text."""
        if self.parts[0]:
            return self.parts[0].split(" ", 1)[0]
        return "*" + self.parts[-1].rsplit(" ", 1)[-1]

    @property
    def key(self) -> str:
        """The form's longest word: a line without it cannot match the form."""
        return max(_WORD.findall(" ".join(self.parts)), key=len, default="")

    def matches(self, text: str) -> bool:
        first, last = self.parts[0], self.parts[-1]
        if len(self.parts) == 1:
            return text == first
        if len(text) < len(first) + len(last):
            return False
        if not (text.startswith(first) and text.endswith(last)):
            return False
        position, end = len(first), len(text) - len(last)
        for part in self.parts[1:-1]:
            found = text.find(part, position, end)
            if found < 0:
                return False
            position = found + len(part)
        return True


def _split(text: str) -> list[str]:
    """The literal parts of a form, spaces kept: "on * wrote:" is "on ", " wrote:"."""
    text = _SPACES.sub(" ", lower(text))
    return [part.replace(" :", ":") for part in text.split("*")]


@dataclass(frozen=True)
class Table:
    attributions: tuple[Form, ...]
    senders: frozenset[str]  # header-block field names that name the sender
    fields: frozenset[str]  # every header-block field name, senders included
    separators: frozenset[str]
    forwards: frozenset[str]
    intros: Index
    signatures: Index
    languages: tuple[str, ...]
    # The attribution forms by the words they hold, and one search for all those words.
    by_key: dict[str, tuple[Form, ...]]
    keys: re.Pattern[str]

    def attributions_in(self, text: str) -> set[Form]:
        """The attribution forms whose word the text holds (the only ones worth trying)."""
        found: set[Form] = set()
        for key in self.keys.findall(text):
            found.update(self.by_key[key])
        return found

    def is_signature(self, line: str) -> bool:
        text = normalise(without_links(line))
        return bool(text) and self.signatures.matches(text)


@dataclass(frozen=True)
class Index:
    """Forms by their anchor word: a line is compared only with the forms that start with
    its first word or end with its last (a phone's signature among a hundred)."""

    forms: dict[str, tuple[Form, ...]]

    @classmethod
    def of(cls, forms: tuple[Form, ...]) -> Index:
        by_anchor: dict[str, list[Form]] = {}
        for form in forms:
            by_anchor.setdefault(form.anchor, []).append(form)
        return cls({anchor: tuple(group) for anchor, group in by_anchor.items()})

    def matches(self, text: str) -> bool:
        first, last = text.split(" ", 1)[0], text.rsplit(" ", 1)[-1]
        candidates = self.forms.get(first, ()) + self.forms.get("*" + last, ())
        return any(form.matches(text) for form in candidates)


@functools.cache
def table() -> Table:
    data = tomllib.loads(resources.files(__package__).joinpath("languages.toml").read_text())
    entries = data.values()

    def forms(name: str) -> tuple[Form, ...]:
        return tuple(Form.of(text) for entry in entries for text in entry.get(name, ()))

    def words(name: str) -> frozenset[str]:
        return frozenset(normalise(text) for entry in entries for text in entry.get(name, ()))

    attributions = forms("attribution")
    keys = sorted({form.key for form in attributions}, key=len, reverse=True)
    # A word inside a longer one is found as the longer one: its forms go there too.
    by_key = {key: tuple(form for form in attributions if form.key in key) for key in keys}
    return Table(
        attributions=attributions,
        senders=words("from"),
        fields=words("from") | words("fields"),
        separators=words("separator"),
        forwards=words("forward"),
        intros=Index.of(forms("intro")),
        signatures=Index.of(forms("signature")),
        languages=tuple(name for name in data if name != "any"),
        by_key=by_key,
        keys=re.compile("|".join(re.escape(key) for key in keys)),
    )
