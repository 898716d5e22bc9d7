"""HTML bodies: sanitising for display (nh3) and flattening to readable plain text."""

from __future__ import annotations

import html as entities
import re
from collections.abc import Iterator

import nh3

# "cid" keeps inline images (<img src="cid:...">) pointing at their MIME parts.
_URL_SCHEMES = frozenset({"cid", "http", "https", "mailto"})
_SKIP = frozenset({"script", "style", "title", "template", "head"})
_BLOCK = frozenset(
    {
        "p", "div", "tr", "table", "ul", "ol", "dl", "dd", "dt", "blockquote", "pre", "hr",
        "section", "article", "header", "footer", "h1", "h2", "h3", "h4", "h5", "h6",
        "address", "center", "form", "fieldset", "body", "html",
    }
)  # fmt: skip
_CELL = frozenset({"td", "th"})
_LINK_SCHEMES = ("http://", "https://", "mailto:")

# The tokens below never look past the next "<": each character is scanned a bounded number
# of times, whatever the sender wrote. Python's HTMLParser rescans to the end of the input for
# every tag left open ("<b" at the end of each line), which grows with the square of the size.
_TAG = re.compile(r"""<(/?)([a-zA-Z][^\s/<>]*)((?:"[^"<]*"|'[^'<]*'|[^<>"'])*)>""")
_ATTR = re.compile(r"""([^\s=/<>"']+)(?:\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s>]*)))?""")
_DECLARATION = re.compile(r"<[!?][^<>]*>")
_RAW_TEXT = frozenset({"script", "style"})  # their content is not markup


def _attrs(text: str) -> list[tuple[str, str | None]]:
    found = []
    for match in _ATTR.finditer(text):
        value = next((v for v in match.groups()[1:] if v is not None), None)
        found.append((match[1].lower(), None if value is None else entities.unescape(value)))
    return found


Token = tuple[str, str, list[tuple[str, str | None]]]


def tokens(html: str) -> Iterator[Token]:
    """("data", text, []), ("start"|"end"|"startend", tag, attributes), in order."""
    pos, end = 0, len(html)
    while pos < end:
        lt = html.find("<", pos)
        if lt < 0:
            yield "data", entities.unescape(html[pos:]), []
            return
        if lt > pos:
            yield "data", entities.unescape(html[pos:lt]), []
        pos = _markup(html, lt)
        if pos < 0:  # not markup: the "<" is text
            yield "data", "<", []
            pos = lt + 1
            continue
        tag = _TAG.match(html, lt)
        if tag is None:
            continue  # a comment or declaration, skipped
        name, attrs = tag[2].lower(), _attrs(tag[3])
        if tag[1]:
            yield "end", name, []
        elif tag[3].rstrip().endswith("/"):
            yield "startend", name, attrs
        else:
            yield "start", name, attrs
            if name in _RAW_TEXT:  # skip to its end tag; an unclosed one hides the rest
                close = re.compile(rf"</{name}\s*>", re.IGNORECASE).search(html, pos)
                pos = end if close is None else close.start()


def _markup(html: str, lt: int) -> int:
    """Where the markup that starts at `lt` ends, or -1 when it is text."""
    if html.startswith("<!--", lt):
        close = html.find("-->", lt + 4)
        return len(html) if close < 0 else close + 3  # unclosed: a comment to the end
    found = _TAG.match(html, lt) or _DECLARATION.match(html, lt)
    return -1 if found is None else found.end()


def sanitize_html(html: str) -> str:
    """nh3's default allow-list, with cid: images allowed and <title> text dropped."""
    return nh3.clean(
        html, url_schemes=set(_URL_SCHEMES), clean_content_tags={"script", "style", "title"}
    )


class TextExtractor:
    """Collects visible text; block elements become line breaks, links keep their URL."""

    def __init__(self) -> None:
        self.out: list[str] = []
        self._skip = 0
        self._pre = 0
        self._href: str | None = None
        self._link_text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "body":
            self._skip = 0  # an unclosed <head> must not swallow the whole mail
        if tag in _SKIP:
            self._skip += 1
        elif tag == "br":
            self.out.append("\n")
        elif tag == "li":
            self.out.append("\n- ")
        elif tag in _CELL:
            self.out.append(" ")
        elif tag == "a":
            href = dict(attrs).get("href") or ""
            self._href = href if href.startswith(_LINK_SCHEMES) else None
            self._link_text = []
        elif tag in _BLOCK:
            self._pre += tag == "pre"
            self.out.append("\n\n")

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "br":
            self.out.append("\n")
        elif tag == "hr":
            self.out.append("\n\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIP:
            self._skip = max(0, self._skip - 1)
        elif tag == "a" and self._href:
            label = "".join(self._link_text).strip()
            target = self._href.removeprefix("mailto:")
            if target not in label:  # don't repeat a URL that is already the link text
                self.out.append(f" <{target}>")
            self._href = None
        elif tag in _BLOCK:
            self._pre = max(0, self._pre - (tag == "pre"))
            self.out.append("\n\n")

    def feed(self, token: Token) -> None:
        kind, value, attrs = token
        if kind == "data":
            self.handle_data(value)
        elif kind == "start":
            self.handle_starttag(value, attrs)
        elif kind == "end":
            self.handle_endtag(value)
        else:
            self.handle_startendtag(value, attrs)

    def text(self) -> str:
        return joined(self.out)

    def handle_data(self, data: str) -> None:
        if self._skip:
            return
        text = data if self._pre else re.sub(r"\s+", " ", data)
        if self._href is not None:
            self._link_text.append(text)
        self.out.append(text)


def joined(pieces: list[str]) -> str:
    """Collected text pieces as text: blank runs shortened."""
    text = "".join(pieces).replace("\xa0", " ")
    text = re.sub(r"[ \t]*\n[ \t]*", "\n", text)  # spaces around line breaks
    text = re.sub(r"[ \t]{2,}", " ", text)
    return re.sub(r"\n{3,}", "\n\n", text).strip()


def html_to_text(html: str) -> str:
    """Readable plain text from HTML, without markup."""
    parser = TextExtractor()
    for token in tokens(html):
        parser.feed(token)
    return parser.text()
