"""HTML-only replies: the writer's part, told from the quoted history by the markup the mail
clients put around it (Gmail, Outlook, Apple Mail, Thunderbird, Yahoo, Proton, GMX, Zimbra).

Read in the same pass that flattens the whole mail (htmltext's tokens, which never rescan):
the text pieces of the whole are copied to a second list as they come, and what turns out to
be quoted is taken back out of it. Each piece is taken back at most once and the look back
for an attribution line is bounded, so the pass stays linear in the input, whatever the
nesting.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass

from mailgate.reading.mime.htmltext import TextExtractor, Token, html_to_text, joined, tokens

# Without one of these the mail has no quote markup we know: the second list is skipped.
# (Plain substring tests: a regular expression of alternatives tried at every position of
# the HTML cost more than the rest of the reading.)
_MARKERS = ("blockquote", "gmail_", "divrplyfwdmsg", "appendonsend", "stopspelling", "border-top",
            "moz-cite-prefix", "yahoo_quoted", "protonmail_quote", "quote", "zwchr",
            "outlookmessageheader", "olk_src_body", "ms-outlook-mobile")  # fmt: skip
_VOID = frozenset(
    {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "param",
     "source", "track", "wbr"}
)  # fmt: skip
# Where the history begins and runs to the end of the mail (Outlook, Zimbra): an id or class
# containing one of these.
_HISTORY_STARTS = ("divrplyfwdmsg", "appendonsend", "stopspelling", "zwchr", "outlookmessageheader",
                   "olk_src_body_section")  # fmt: skip
# Elements that are quote or attribution, whole: by class, id or name.
_QUOTE_PARTS = ("gmail_attr", "moz-cite-prefix", "yahoo_quoted", "protonmail_quote",
                "ms-outlook-mobile-signature")  # fmt: skip
_QUOTE_NAMES = frozenset({"quote", "quoted-content"})  # GMX, Web.de
# Outlook's header block: a top border, then the sender's field, in the writer's language.
_BORDER_TOP = re.compile(r"border-top\s*:\s*(?:solid|[\d.]+(?:pt|px)\s+solid)", re.IGNORECASE)
_FIELD = re.compile(
    r"\s*(?:From|Von|De|Da|Van|Fra|Från|Frá|Od|От|Kimden|Gönderen|Lähettäjä|Feladó|Από|Saatja"
    r"|Nuo|No|Šalje|Odesílatel|Remitente|Absender|Expéditeur|Mittente|Afzender|Avsändare"
    r"|Nadawca|Отправитель|Sent|Gesendet|Envoyé|Inviato|Enviado|Verzonden|Skickat|Sendt"
    r"|Wysłano|Отправлено|Date|Datum|Fecha|Lähetetty|Gönderildi)\s*:",
    re.IGNORECASE,
)
# A forwarded original is what the customer wants read: a quote that opens like this stays.
_FORWARDED = re.compile(
    r"forward|weitergeleitet|transf[ée]r|inoltrat|reenviad|encaminhad|doorgestuurd"
    r"|vidarebefordra|videresend|przekazan|пересыл|välitetty|iletilen|továbbított|přeposlan",
    re.IGNORECASE,
)
_WHEN = re.compile(r"\b\d{1,2}:\d{2}\b|\b(?:19|20)\d{2}\b")
_ATTRIBUTION_CHARS = 400  # "On Mon, 5 Dec 2026 at 10:12, Alice <alice@…> wrote:"
_HEADER_BLOCK_CHARS = 1500  # From/Sent/To/Cc/Subject lines
_LOOK_BACK = 40  # text pieces searched back for an attribution
_BLANK_PIECES = 8  # line breaks between an attribution and its quote
_FIRST_PIECES = 30  # text pieces read from the start of a quote for a forward's marker


@dataclass(frozen=True)
class HtmlReading:
    text: str  # the whole mail as text
    written: str | None = None  # the writer's part; None when the markup shows no quote
    forwarded: str = ""  # a forwarded original the writer sent along, from its marker on


def read_html(html: str) -> HtmlReading:
    """The HTML as text, and the writer's part of it when the markup shows a quoted history."""
    lowered = html.lower()
    if not any(marker in lowered for marker in _MARKERS):
        return HtmlReading(html_to_text(html), None)
    whole, cutter = TextExtractor(), _Cutter()
    stream, pieces = tokens(html), whole.out
    for token in stream:
        before = len(pieces)
        whole.feed(token)
        cutter.feed(token, pieces, before)
        if cutter.done:  # the rest is history: only the whole text goes on
            break
    for token in stream:
        whole.feed(token)
    written, forwarded = cutter.written()
    return HtmlReading(whole.text(), written, forwarded)


@dataclass
class _Frame:
    # quote (a quoted mail), part (an attribution, a quoted header, a client's signature),
    # maybe (a plain blockquote), header (a border block: Outlook's header of the quote?)
    kind: str
    mark: int  # where in the text it starts


class _Cutter:
    def __init__(self) -> None:
        self.out: list[str] = []  # the text pieces kept
        self.names: list[str] = []  # open elements, outermost first
        self.open: Counter[str] = Counter()
        self.frames: dict[int, _Frame] = {}  # by the element's place in `names`
        self.header: _Frame | None = None  # a border block whose first text is not read yet
        self.found = False  # some quote was taken out
        self.forward_at: int | None = None  # where a forwarded original starts in the text
        self.done = False  # the history has begun: nothing after is the writer's
        # Where the text stood after the last look back that found no attribution, or after
        # an attribution taken out: no second look from there.
        self.looked: tuple[int, str | None] = (-1, None)

    def written(self) -> tuple[str | None, str]:
        """The writer's text and the forwarded original after it; (None, "") when the
        markup showed neither a quote nor a forward, or left nothing of the writer's."""
        while self.names and not self.done:
            self._pop()
        out, at = self.out, self.forward_at
        if at is not None and at < len(out):
            return joined(out[:at]), joined(out[at:])
        text = joined(out)
        return (text, "") if self.found and text.strip() else (None, "")

    def feed(self, token: Token, pieces: list[str], new: int) -> None:
        """Read a token; `pieces[new:]` are the text pieces it added to the whole."""
        if self.done:
            return
        kind, name, attrs = token
        if kind == "data":
            self.out.extend(pieces[new:])
            if self.header is not None and name.strip():
                self._header_text(name)
            return
        if kind == "end":
            self.out.extend(pieces[new:])
            if self.open[name]:
                while self._pop() != name:
                    pass
            return
        frame = None
        if attrs or name == "blockquote":  # most tags have no attributes: no look at them
            marks = " ".join(v.lower() for k, v in attrs if k in ("id", "class") and v)
            if marks and any(m in marks for m in _HISTORY_STARTS):
                self._history_begins(len(self.out))
                return
            frame = self._frame(name, attrs, marks)
        self.out.extend(pieces[new:])
        if kind == "startend" or name in _VOID:
            return
        if frame is not None:
            self.frames[len(self.names)] = frame
            if frame.kind == "header":
                self.header = frame
        self.names.append(name)
        self.open[name] += 1

    def _frame(self, name: str, attrs: list[tuple[str, str | None]], marks: str) -> _Frame | None:
        values = dict(attrs)
        if name == "blockquote":
            cite = (values.get("type") or "").lower() == "cite"
            if cite or "gmail_quote" in marks or "protonmail_quote" in marks:
                return _Frame("quote", len(self.out))
            return _Frame("maybe", len(self.out))
        quote_part = bool(marks) and any(m in marks for m in _QUOTE_PARTS)
        if quote_part or values.get("name") in _QUOTE_NAMES:
            return _Frame("part", len(self.out))
        if name == "div" and _BORDER_TOP.search(values.get("style") or ""):
            return _Frame("header", len(self.out))
        return None

    def _pop(self) -> str:
        name = self.names.pop()
        self.open[name] -= 1
        frame = self.frames.pop(len(self.names), None)
        if frame is not None:
            self._close(frame)
        return name

    def _close(self, frame: _Frame) -> None:
        if frame is self.header:
            self.header = None
        if frame.kind == "header":
            return
        first = "".join(self.out[frame.mark : frame.mark + _FIRST_PIECES]).strip()
        if frame.kind != "maybe" and _FORWARDED.search(first[:200]):
            # Kept whole and not read for quotes: a later quote may still be cut.
            self.forward_at = frame.mark if self.forward_at is None else self.forward_at
            return
        if frame.kind == "maybe" and not _FIELD.match(first):
            # A plain blockquote is the writer's own citation unless a header block of the
            # quoted mail stands right above it (GMX).
            start = self._attribution(headers_only=True)
            if start is None:
                return
            del self.out[frame.mark :]
            del self.out[start:]
        else:
            del self.out[frame.mark :]
            # An attribution of its own (Gmail's, Thunderbird's) was a part taken out before.
            start = None if frame.kind == "part" else self._attribution(headers_only=False)
            if start is not None:
                del self.out[start:]
        self.found = True
        self.looked = self._where()
        self._forward_kept()

    def _forward_kept(self) -> None:
        """A forward inside a part taken out went with it."""
        if self.forward_at is not None and self.forward_at >= len(self.out):
            self.forward_at = None

    def _where(self) -> tuple[int, str | None]:
        out = self.out
        return len(out), out[-1] if out else None

    def _attribution(self, headers_only: bool) -> int | None:
        """Where the attribution line ("On … wrote:") or quoted header block that stands
        right above a quote starts in the text, or None when there is none."""
        out = self.out
        where = self._where()
        if where[0] == self.looked[0] and where[1] is self.looked[1]:
            return None
        self.looked = where
        seen, start = False, None
        for i in range(len(out) - 1, max(-1, len(out) - 1 - _LOOK_BACK), -1):
            piece = out[i]
            if piece.strip():
                seen = True
            elif seen and "\n\n" in piece:
                start = i + 1
                break
            elif not seen and len(out) - i > _BLANK_PIECES:
                return None  # no text right above the quote
        else:
            start = 0 if len(out) <= _LOOK_BACK else None
        if start is None or not seen:
            return None
        block = "".join(out[start:]).strip()
        if _FIELD.match(block) and len(block) <= _HEADER_BLOCK_CHARS:
            return start
        return start if not headers_only and _said(block) else None

    def _header_text(self, text: str) -> None:
        """The first text in a border block: a sender field makes it Outlook's header of
        the quoted mail."""
        frame, self.header = self.header, None
        if frame is not None and _FIELD.match(text):
            self._history_begins(frame.mark)

    def _history_begins(self, mark: int) -> None:
        del self.out[mark:]
        self.found = self.done = True
        self._forward_kept()


def _said(block: str) -> bool:
    """An attribution line: short, ends in a colon, names a time, a year or an address."""
    if len(block) > _ATTRIBUTION_CHARS or not block.endswith(":"):
        return False
    return "@" in block or bool(_WHEN.search(block))
