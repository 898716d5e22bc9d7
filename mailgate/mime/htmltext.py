"""HTML bodies: sanitising for display (nh3) and flattening to readable plain text."""

from __future__ import annotations

import re
from html.parser import HTMLParser

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


def sanitize_html(html: str) -> str:
    """nh3's default allow-list, with cid: images allowed and <title> text dropped."""
    return nh3.clean(
        html, url_schemes=set(_URL_SCHEMES), clean_content_tags={"script", "style", "title"}
    )


class _TextExtractor(HTMLParser):
    """Collects visible text; block elements become line breaks, links keep their URL."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
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

    def handle_data(self, data: str) -> None:
        if self._skip:
            return
        text = data if self._pre else re.sub(r"\s+", " ", data)
        if self._href is not None:
            self._link_text.append(text)
        self.out.append(text)


def html_to_text(html: str) -> str:
    """Readable plain text from HTML, without markup."""
    parser = _TextExtractor()
    try:
        parser.feed(html)
        parser.close()
    except Exception:  # HTMLParser is lenient, but a text view must never cost the mail
        return re.sub(r"<[^>]*>", " ", html).strip()
    text = "".join(parser.out).replace("\xa0", " ")
    text = re.sub(r"[ \t]*\n[ \t]*", "\n", text)  # spaces around line breaks
    text = re.sub(r"[ \t]{2,}", " ", text)
    return re.sub(r"\n{3,}", "\n\n", text).strip()
