"""Details a customer gives in a new request: `Priority: A`, `Type: bug`, reference numbers."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

# Field names in English and German; values as customers write them.
_FIELD = re.compile(r"^\s*(priority|priorität|prioritaet|prio|type|typ|art)\s*:\s*(\S+)\s*$", re.I)
_PRIORITIES = {
    "a": "A",
    "high": "A",
    "hoch": "A",
    "urgent": "A",
    "dringend": "A",
    "b": "B",
    "medium": "B",
    "normal": "B",
    "mittel": "B",
    "c": "C",
    "low": "C",
    "niedrig": "C",
    "gering": "C",
}
_TYPES = {
    "bug": "bug",
    "fehler": "bug",
    "error": "bug",
    "enhancement": "enhancement",
    "verbesserung": "enhancement",
    "erweiterung": "enhancement",
    "suggestion": "suggestion",
    "vorschlag": "suggestion",
    "idee": "suggestion",
    "help": "help",
    "hilfe": "help",
    "frage": "help",
    "question": "help",
}
HEAD_LINES = 5  # only the first lines count: further down it is prose, or a quote


@dataclass(frozen=True)
class Details:
    priority: str | None = None
    type: str | None = None
    references: tuple[str, ...] = ()


@lru_cache(maxsize=32)
def _compiled(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


def find_details(text: str, reference_patterns: list[str]) -> Details:
    """Priority and type from the first non-empty lines; references anywhere in the text."""
    priority = kind = None
    lines = [line for line in text.splitlines() if line.strip()][:HEAD_LINES]
    for line in lines:
        match = _FIELD.match(line)
        if not match:
            continue
        name, value = match.group(1).lower(), match.group(2).lower().rstrip(".,;")
        if name.startswith("pri"):
            priority = priority or _PRIORITIES.get(value)
        else:
            kind = kind or _TYPES.get(value)
    return Details(priority, kind, find_references(text, reference_patterns))


def find_references(text: str, patterns: list[str]) -> tuple[str, ...]:
    found: dict[str, None] = {}
    for pattern in patterns:
        for match in _compiled(pattern).finditer(text):
            value = match.group(1) if match.groups() else match.group(0)
            if value:
                found[value.strip()[:100]] = None
    return tuple(found)
