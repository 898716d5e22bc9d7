"""The console the command line prints on: text from mail is shown, never obeyed."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from rich.console import Console
from rich.segment import Segment

# C0 controls but line feed and tab, DEL, and the C1 controls (0x9b is a one-byte CSI):
# an escape sequence in a mail would otherwise move the cursor, retitle the window or
# make a hyperlink in the operator's terminal.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def visible(text: str) -> str:
    """Control characters as the symbols that stand for them (ESC as ␛), so they are seen."""
    return _CONTROL.sub(_symbol, text)


def _symbol(match: re.Match[str]) -> str:
    code = ord(match.group())
    if code < 0x20:
        return chr(0x2400 + code)  # the Control Pictures block: ␀ … ␟
    return "\N{SYMBOL FOR DELETE}" if code == 0x7F else "\N{REPLACEMENT CHARACTER}"


class _PlainConsole(Console):
    def _render_buffer(self, buffer: Iterable[Segment]) -> str:
        # Segments rich makes to steer the terminal are marked `control`; every other one is
        # text, and whatever table or line a mail's text is in, it passes here.
        return super()._render_buffer(
            segment if segment.control else Segment(visible(segment.text), segment.style)
            for segment in buffer
        )


def plain_console(**options: Any) -> Console:
    """A console that prints every string as text: subjects, names, file names and reasons
    come from mail, and "[/x]" must not crash a listing nor "[link=…]" or an escape
    sequence make a link in it. No markup, no emoji codes, control characters shown."""
    return _PlainConsole(markup=False, emoji=False, highlight=False, **options)
