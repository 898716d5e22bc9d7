"""The web desk's pages: Jinja2 templates of this package, escaped throughout (everything a
mail brings, subject, names, file names, is text on a page, never markup)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import jinja2
from starlette.responses import HTMLResponse

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
    """The page `name`.html in `lang`; `t(key, **values)` in it gives the words."""

    def t(key: str, **values: object) -> str:
        return say(key, lang, **values)

    html = _ENV.get_template(f"{name}.html").render({**context, "lang": lang, "t": t})
    return HTMLResponse(html, status_code=status_code)
