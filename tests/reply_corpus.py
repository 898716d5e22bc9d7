"""The corpus of replies as each mail client writes them, one file per language in
tests/fixtures/replies/corpus/: each case a line "=== NAME: what it is", the mail as it
arrives, a line "=== kept", and exactly the text that must remain. One file per language
keeps a language's clients side by side and each reply next to its kept text."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

CORPUS = Path(__file__).parent / "fixtures" / "replies" / "corpus"
_CASE = "=== "
_KEPT = "=== kept"


@dataclass(frozen=True)
class Reply:
    language: str
    name: str
    text: str
    kept: str

    @property
    def id(self) -> str:
        return f"{self.language}-{self.name}"


def replies() -> list[Reply]:
    cases = []
    for path in sorted(CORPUS.glob("*.txt")):
        cases += _read(path.stem, path.read_text(encoding="utf-8"))
    return cases


def _read(language: str, content: str) -> list[Reply]:
    cases: list[Reply] = []
    name, text, kept, part = "", list[str](), list[str](), None
    for line in [*content.split("\n"), f"{_CASE}end: -"]:
        if line == _KEPT:
            part = kept
        elif line.startswith(_CASE):
            if name:
                cases.append(Reply(language, name, "\n".join(text), "\n".join(kept).rstrip()))
            name, text, kept = line[len(_CASE) :].split(":", 1)[0], [], []
            part = text
        elif part is not None:
            part.append(line)
    return cases


def score(results: list[tuple[Reply, bool]]) -> str:
    """ "replies read right: N of M, by language: de 12/12, …" """
    right = sum(ok for _, ok in results)
    by_language: dict[str, list[bool]] = {}
    for reply, ok in results:
        by_language.setdefault(reply.language, []).append(ok)
    languages = ", ".join(f"{lang} {sum(oks)}/{len(oks)}" for lang, oks in by_language.items())
    return f"replies read right: {right} of {len(results)}, by language: {languages}"
