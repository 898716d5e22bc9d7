"""The web desk's pages: Jinja2 templates of this package, escaped throughout (everything a
mail brings, subject, names, file names, is text on a page, never markup)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from urllib.parse import quote

import jinja2
from starlette.responses import HTMLResponse, Response

from mailgate.desk.notes import in_words
from mailgate.web.event_words import event_in_words
from mailgate.web.words import say

_ENV = jinja2.Environment(
    loader=jinja2.FileSystemLoader(Path(__file__).parent / "templates"),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


def page(
    name: str, lang: str, context: Mapping[str, object], status_code: int = 200
) -> HTMLResponse:
    """The page `name`.html in `lang`; `t(key, **values)` in it gives the words, `note(text)`
    an article's note in them, `event(action, detail)` a history entry."""

    def t(key: str, **values: object) -> str:
        return say(key, lang, **values)

    def note(stored: str) -> str:  # an article's note, stored in English
        return in_words(stored, lang)

    def event(action: str, detail: str) -> str:  # stored in English, as the commands show it
        return event_in_words(action, detail, lang)

    values = {**context, "lang": lang, "t": t, "note": note, "event": event}
    html = _ENV.get_template(f"{name}.html").render(values)
    return HTMLResponse(html, status_code=status_code)


def download(data: bytes, filename: str) -> Response:
    """A file as a download, never shown in the desk's own origin (an HTML or SVG file could
    run script there otherwise); nosniff is among every response's headers."""
    name = quote(filename, safe="")
    headers = {"Content-Disposition": f"attachment; filename*=UTF-8''{name}"}
    return Response(data, media_type="application/octet-stream", headers=headers)
