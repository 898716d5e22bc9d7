"""Outgoing mail text from Jinja2 templates: language, operator overrides, subject, bodies."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import jinja2

from mailgate.config.confirm_words import spoken
from mailgate.outbound.sheet_words import translated
from mailgate.reading.phrases import say

TEXT_SUFFIX = ".txt.j2"
HTML_SUFFIX = ".html.j2"
# Template names come from code, languages from contact data (CSV imports, agents): both end
# up in file paths, so only plain names get that far.
_NAME = re.compile(r"[a-z0-9][a-z0-9_.-]*\Z")
_LANGUAGE = re.compile(r"[a-z]{2,8}(?:-[a-z0-9]{1,8})*\Z")
# A day as the context gives it ("2026-12-18", or with the time "2026-12-18 14:05"), and how
# a language writes it instead; ISO for the others (English readers differ on day and month).
_ISO_DAY = re.compile(r"(?<!\d)(\d{4})-(\d{2})-(\d{2})(?=\s|\Z)")
_DAY_ORDER = {"de": r"\3.\2.\1", "fr": r"\3/\2/\1"}
# Sizes as jinja2's filesizeformat writes them ("26.2 MB"), with the decimal comma of German
# and French, and French units ("26,2 Mo": octets).
_DECIMAL_COMMA = frozenset({"de", "fr"})
_FRENCH_UNITS = {"Bytes": "octets", "Byte": "octet", "kB": "ko", "KiB": "Kio"}
_SIZE = re.compile(r"\A(\d+)(?:\.(\d+))? (\S+)\Z")


# A mail whose context has this (a customer's sign-in link, outbound.customer_links) gets
# the paragraph of the template of that name under its text; base.html.j2 shows it in HTML.
LINK_PARAGRAPH = "portal_link"


class TemplateError(Exception):
    """A template exists but cannot be rendered (syntax error, undefined variable, no block)."""


class TemplateMissing(TemplateError):
    """No template of that name in any of the languages tried."""

    def __init__(self, name: str, languages: tuple[str, ...]) -> None:
        super().__init__(f"template {name!r} not found for language(s) {', '.join(languages)}")
        self.name = name
        self.languages = languages


@dataclass(frozen=True)
class Rendered:
    subject: str
    text: str
    html: str | None


def builtin_template_dir() -> Path:
    """The shipped templates: inside the package when installed, at the repository top otherwise."""
    package = Path(__file__).resolve().parents[1]
    packaged = package / "templates"
    if packaged.is_dir():
        return packaged
    return package.parent / "templates"


def normalise_language(language: str | None) -> str | None:
    """`de_DE` and `DE-de` both mean `de-de`; anything that is not a language tag means None."""
    if not language:
        return None
    tag = language.strip().lower().replace("_", "-")
    return tag if _LANGUAGE.match(tag) else None


def written_day(value: object, language: str) -> str:
    """An ISO day (and time) in the order a language writes days; anything else as it is."""
    text = "" if value is None else str(value)
    order = _DAY_ORDER.get(language.split("-")[0])
    return _ISO_DAY.sub(order, text, count=1) if order else text


def written_size(value: object, language: str, binary: bool = False) -> str:
    """jinja2's filesizeformat in the decimal mark and units of a language."""
    text = jinja2.filters.do_filesizeformat(value, binary)  # type: ignore[arg-type]
    primary = language.split("-")[0]
    found = _SIZE.match(text)
    if found is None or primary not in _DECIMAL_COMMA:
        return text
    whole, fraction, unit = found.groups()
    if primary == "fr":
        unit = _FRENCH_UNITS.get(unit) or unit.replace("B", "o")
    return f"{whole},{fraction} {unit}" if fraction else f"{whole} {unit}"


def one_line(text: str) -> str:
    """Any run of whitespace, line breaks included, becomes one space."""
    return " ".join(text.split())


class Renderer:
    """Finds and renders `<dir>/<language>/<name>.txt.j2` (and `.html.j2`) templates.

    Templates are cached until `reload()`, so a running daemon reads the disk only after SIGHUP.
    """

    def __init__(self, builtin_dir: Path, override_dir: Path | None, default_language: str) -> None:
        default = normalise_language(default_language)
        if default is None:
            raise ValueError(f"not a language: {default_language!r}")
        self.builtin_dir = Path(builtin_dir)
        self.override_dir = Path(override_dir) if override_dir else None
        self.default_language = default
        self._envs: dict[tuple[str, bool], jinja2.Environment] = {}
        self._chosen: dict[tuple[str, str | None], str] = {}

    @property
    def languages(self) -> tuple[str, ...]:
        """Languages with a template directory, shipped or the operator's."""
        found = {
            d.name
            for root in self._roots()
            if root.is_dir()
            for d in root.iterdir()
            if d.is_dir() and normalise_language(d.name) == d.name
        }
        return tuple(sorted(found))

    def reload(self) -> None:
        self._envs = {}
        self._chosen = {}

    def preload(self) -> None:
        """Every template of every language compiled now, the operator's and the shipped
        ones: a broken file is refused before any mail needs it, and what was compiled stays
        in memory, so a file broken on disk later changes nothing until the next reload.
        TemplateError names the file and line."""
        for language in self.languages:
            for suffix, html in ((TEXT_SUFFIX, False), (HTML_SUFFIX, True)):
                env = self._env(language, html)
                for name in self._file_names(language, suffix):
                    _compiled(env, name, needs_blocks=not html)

    def check(self, language: str) -> None:
        """What `mailgate config check` asks of the templates: every one compiled (preload),
        and the acknowledgement rendered in `language` for a sample ticket."""
        self.preload()
        self.render("acknowledgement", language, _sample_context())

    def _file_names(self, language: str, suffix: str) -> list[str]:
        found = {
            path.name
            for root in self._roots()
            if (root / language).is_dir()
            for path in (root / language).iterdir()
            if path.name.endswith(suffix) and path.is_file()
        }
        return sorted(found)

    def render(self, name: str, language: str | None, context: Mapping[str, object]) -> Rendered:
        if not _NAME.match(name):
            raise ValueError(f"not a template name: {name!r}")
        chosen = self._choose_language(name, language)
        try:
            return self._render_in(name, chosen, context)
        except jinja2.TemplateNotFound as exc:  # e.g. an html template's missing base
            raise TemplateMissing(str(exc.name), (chosen,)) from exc
        except jinja2.TemplateError as exc:
            raise TemplateError(f"template {name!r} ({chosen}): {exc}") from exc

    def _roots(self) -> list[Path]:
        # The operator's directory first: their file of the same name wins.
        return [self.override_dir, self.builtin_dir] if self.override_dir else [self.builtin_dir]

    def _candidates(self, language: str | None) -> list[str]:
        """The language asked for, its primary tag (`de` for `de-at`), then the default."""
        tag = normalise_language(language)
        wanted = [tag, tag.split("-")[0]] if tag else []
        return list(dict.fromkeys([*wanted, self.default_language]))

    def _choose_language(self, name: str, language: str | None) -> str:
        """The first candidate language with the text template; html follows that choice, so a
        mail is never German in one part and English in the other."""
        key = (name, language)
        if key not in self._chosen:
            candidates = self._candidates(language)
            for lang in candidates:
                if any((root / lang / f"{name}{TEXT_SUFFIX}").is_file() for root in self._roots()):
                    self._chosen[key] = lang
                    break
            else:
                raise TemplateMissing(f"{name}{TEXT_SUFFIX}", tuple(candidates))
        return self._chosen[key]

    def _env(self, language: str, html: bool) -> jinja2.Environment:
        key = (language, html)
        env = self._envs.get(key)
        if env is None:
            env = jinja2.Environment(
                loader=jinja2.FileSystemLoader([str(r / language) for r in self._roots()]),
                autoescape=html,
                undefined=jinja2.StrictUndefined,
                keep_trailing_newline=True,
                # Statement lines ({% if %}) leave no blank lines behind in plain text.
                trim_blocks=True,
                lstrip_blocks=True,
                auto_reload=False,  # reload() is the one way to pick up edits
            )
            # Messages for staff (phrases.Phrase) in the language of the template.
            env.filters["say"] = lambda text: say(text, language)
            # Confirm words a reader of the template's language knows (of the dozens set).
            env.filters["spoken"] = lambda words: spoken(words, language)
            # A stored status in the words the language's mails use ("erledigt", "résolu").
            env.filters["status"] = lambda value: translated(language, value)
            # Days in the order the reader writes them ("18.12.2026", "18/12/2026").
            env.filters["day"] = lambda value: written_day(value, language)
            # Sizes with the reader's decimal mark and units ("1,5 Mo"), in every template.
            env.filters["filesizeformat"] = lambda value, binary=False: written_size(
                value, language, binary
            )
            self._envs[key] = env
        return env

    def _render_in(self, name: str, language: str, context: Mapping[str, object]) -> Rendered:
        text_template = self._env(language, html=False).get_template(f"{name}{TEXT_SUFFIX}")
        subject = one_line(_render_block(text_template, "subject", context))
        text = _render_block(text_template, "body", context).strip("\n").rstrip() + "\n"
        if context.get(LINK_PARAGRAPH):
            text += "\n" + self._link_paragraph(language, context)
        html = self._render_html(name, language, {**context, "mail_subject": subject})
        return Rendered(subject=subject, text=text, html=html)

    def _link_paragraph(self, language: str, context: Mapping[str, object]) -> str:
        """The customer's sign-in link under the mail's text (portal_link.txt.j2)."""
        chosen = self._choose_language(LINK_PARAGRAPH, language)
        part = self._env(chosen, html=False).get_template(f"{LINK_PARAGRAPH}{TEXT_SUFFIX}")
        return _render_block(part, "body", context).strip("\n").rstrip() + "\n"

    def _render_html(self, name: str, language: str, context: Mapping[str, object]) -> str | None:
        html_name = f"{name}{HTML_SUFFIX}"
        try:
            template = self._env(language, html=True).get_template(html_name)
        except jinja2.TemplateNotFound as exc:
            if exc.name != html_name:
                raise
            return None  # the html part is optional; the mail goes out as text only
        return template.render(context)


def _sample_context() -> dict[str, object]:
    return {
        "ticket": {"cid": "CID-1", "number": 1, "subject": "test", "status": "open"},
        "contact": {"name": "Test", "email": "test@example.com"},
        "support_address": "support@example.com",
        "reply_hint": "[CID-1]",
        "org_name": None,
    }


def _render_block(template: jinja2.Template, block: str, context: Mapping[str, object]) -> str:
    """One block of a template on its own: the subject and the body live in the same file."""
    render = template.blocks.get(block)
    if render is None:
        raise TemplateError(f"template {template.name!r} has no {{% block {block} %}}")
    return "".join(render(template.new_context(dict(context))))


def _compiled(env: jinja2.Environment, name: str, needs_blocks: bool) -> jinja2.Template:
    """The template compiled (and cached in `env`); TemplateError with its file and line."""
    try:
        template = env.get_template(name)
    except jinja2.TemplateSyntaxError as exc:
        raise TemplateError(f"{exc.filename or name}:{exc.lineno}: {exc.message}") from exc
    except jinja2.TemplateError as exc:
        raise TemplateError(f"{name}: {exc}") from exc
    missing = [b for b in ("subject", "body") if needs_blocks and b not in template.blocks]
    if missing:
        where = template.filename or name
        raise TemplateError(f"{where}: no {{% block {missing[0]} %}}: a mail needs it")
    return template
