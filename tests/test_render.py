"""The renderer: shipped templates in each language, overrides, fallback, strictness, escaping."""

from __future__ import annotations

from pathlib import Path

import pytest

from mailgate.config.confirm_words import spoken
from mailgate.outbound.render import (
    Renderer,
    TemplateError,
    TemplateMissing,
    builtin_template_dir,
    normalise_language,
    written_day,
)


def context(subject: str = "Drucker kaputt", name: str = "Jürgen Müller") -> dict[str, object]:
    return {
        "ticket": {"cid": "CID-1042", "number": 1042, "subject": subject, "status": "open"},
        "contact": {"name": name, "email": "juergen@kunde.example"},
        "support_address": "support@example.com",
        "reply_hint": "[CID-1042]",
        "org_name": "Kunde & Söhne GmbH",
    }


@pytest.fixture
def renderer() -> Renderer:
    return Renderer(builtin_template_dir(), None, "en")


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def test_builtin_templates_are_found() -> None:
    assert (builtin_template_dir() / "en" / "acknowledgement.txt.j2").is_file()


@pytest.mark.parametrize(
    ("language", "greeting"), [("en", "Hello"), ("de", "Guten Tag"), ("fr", "Bonjour")]
)
def test_acknowledgement_renders_in_each_language(
    renderer: Renderer, language: str, greeting: str
) -> None:
    rendered = renderer.render("acknowledgement", language, context())
    assert rendered.subject == "[CID-1042] Drucker kaputt"
    assert rendered.text.startswith(f"{greeting} Jürgen Müller,\n")
    assert "CID-1042" in rendered.text and "[CID-1042]" in rendered.text
    assert "support@example.com" in rendered.text
    assert "{{" not in rendered.text and "{%" not in rendered.text
    assert rendered.text.endswith("\n") and not rendered.text.endswith("\n\n")
    assert rendered.html is not None
    assert "<strong>CID-1042</strong>" in rendered.html
    assert f'<html lang="{language}">' in rendered.html
    assert "Kunde &amp; Söhne GmbH" in rendered.html  # escaped in html ...
    assert "Kunde & Söhne GmbH" in rendered.text  # ... and verbatim in text


SHIPPED = sorted(d.name for d in builtin_template_dir().iterdir() if d.is_dir())


def test_french_is_shipped() -> None:
    assert SHIPPED == ["de", "en", "fr"]


@pytest.mark.parametrize("language", SHIPPED)
def test_each_shipped_language_has_every_template_and_all_compile(language: str) -> None:
    """A language that lacked one would send that mail in the default language, so it is
    half-translated; preload() compiles each file as `mailgate config check` does."""
    names = sorted(p.name for p in (builtin_template_dir() / language).iterdir())
    assert names == sorted(p.name for p in (builtin_template_dir() / "en").iterdir())
    Renderer(builtin_template_dir(), None, language).preload()


def test_german_text_is_german(renderer: Renderer) -> None:
    text = renderer.render("acknowledgement", "de", context()).text
    assert "Mit freundlichen Grüßen" in text and "Betreff" in text


def test_empty_contact_name_gives_plain_greeting(renderer: Renderer) -> None:
    rendered = renderer.render("acknowledgement", "en", context(name=""))
    assert rendered.text.startswith("Hello,\n")


def test_no_organisation_leaves_no_empty_line(renderer: Renderer) -> None:
    ctx = {**context(), "org_name": None}
    text = renderer.render("acknowledgement", "en", ctx).text
    assert "Customer:" not in text
    assert "\n\n\n" not in text


def test_unknown_language_falls_back_to_default(renderer: Renderer) -> None:
    fallback = renderer.render("acknowledgement", "it", context())
    assert fallback == renderer.render("acknowledgement", "en", context())


@pytest.mark.parametrize("language", ["de-AT", "de_DE", "DE"])
def test_language_variants_use_the_primary_language(renderer: Renderer, language: str) -> None:
    assert renderer.render("acknowledgement", language, context()).text.startswith("Guten Tag")


@pytest.mark.parametrize("language", [None, "", "../en", "de/../../etc"])
def test_missing_or_odd_language_uses_default(renderer: Renderer, language: str | None) -> None:
    assert renderer.render("acknowledgement", language, context()).text.startswith("Hello")


def test_override_directory_wins(tmp_path: Path) -> None:
    write(
        tmp_path / "de" / "acknowledgement.txt.j2",
        "{% block subject %}Eingang {{ ticket.cid }}{% endblock %}"
        "{% block body %}Eigener Text für {{ contact.name }}{% endblock %}",
    )
    renderer = Renderer(builtin_template_dir(), tmp_path, "en")
    rendered = renderer.render("acknowledgement", "de", context())
    assert rendered.subject == "Eingang CID-1042"
    assert rendered.text == "Eigener Text für Jürgen Müller\n"
    # The shipped German html is still used: the operator replaced only the text.
    assert rendered.html is not None and "Guten Tag" in rendered.html
    # Other languages are untouched.
    assert renderer.render("acknowledgement", "en", context()).subject.startswith("[CID-1042]")


def test_override_of_the_html_base_applies_to_shipped_templates(tmp_path: Path) -> None:
    write(tmp_path / "en" / "base.html.j2", "<main>{% block content %}{% endblock %}</main>")
    html = (
        Renderer(builtin_template_dir(), tmp_path, "en")
        .render("acknowledgement", "en", context())
        .html
    )
    assert html is not None and html.startswith("<main>") and "CID-1042" in html


def test_override_can_add_a_language(tmp_path: Path) -> None:
    write(
        tmp_path / "it" / "acknowledgement.txt.j2",
        "{% block subject %}[{{ ticket.cid }}] Ricevuto{% endblock %}"
        "{% block body %}Buongiorno{% endblock %}",
    )
    renderer = Renderer(builtin_template_dir(), tmp_path, "en")
    rendered = renderer.render("acknowledgement", "it", context())
    assert rendered.subject == "[CID-1042] Ricevuto"
    # No Italian html: text only, rather than an English html part beside Italian text.
    assert rendered.html is None
    assert renderer.languages == ("de", "en", "fr", "it")


def test_reload_picks_up_edited_templates(tmp_path: Path) -> None:
    template = write(
        tmp_path / "en" / "note.txt.j2",
        "{% block subject %}one{% endblock %}{% block body %}1{% endblock %}",
    )
    renderer = Renderer(tmp_path, None, "en")
    assert renderer.render("note", "en", {}).subject == "one"
    template.write_text("{% block subject %}two{% endblock %}{% block body %}2{% endblock %}")
    assert renderer.render("note", "en", {}).subject == "one"  # cached until told
    renderer.reload()
    assert renderer.render("note", "en", {}).subject == "two"


def test_missing_template_names_template_and_languages(renderer: Renderer) -> None:
    with pytest.raises(TemplateMissing) as info:
        renderer.render("no-such-template", "de", {})
    assert info.value.name == "no-such-template.txt.j2"
    assert info.value.languages == ("de", "en")
    assert "no-such-template.txt.j2" in str(info.value) and "de, en" in str(info.value)


def test_missing_variable_raises(renderer: Renderer) -> None:
    ctx = context()
    del ctx["reply_hint"]
    with pytest.raises(TemplateError, match="reply_hint"):
        renderer.render("acknowledgement", "en", ctx)


def test_missing_attribute_raises(renderer: Renderer) -> None:
    ctx = {**context(), "ticket": {"number": 1042, "subject": "x", "status": "open"}}
    with pytest.raises(TemplateError, match="cid"):
        renderer.render("acknowledgement", "en", ctx)


def test_template_without_body_block_is_an_error(tmp_path: Path) -> None:
    write(tmp_path / "en" / "bad.txt.j2", "{% block subject %}s{% endblock %}text")
    with pytest.raises(TemplateError, match="block body"):
        Renderer(tmp_path, None, "en").render("bad", "en", {})


def test_syntax_error_is_a_template_error(tmp_path: Path) -> None:
    write(tmp_path / "en" / "bad.txt.j2", "{% block subject %}{{ oops {% endblock %}")
    with pytest.raises(TemplateError, match="bad"):
        Renderer(tmp_path, None, "en").render("bad", "en", {})


def test_html_escapes_markup_but_text_keeps_it(renderer: Renderer) -> None:
    ctx = context(subject="<script>alert(1)</script>")
    rendered = renderer.render("acknowledgement", "en", ctx)
    assert rendered.html is not None
    assert "<script>" not in rendered.html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in rendered.html
    assert rendered.subject == "[CID-1042] <script>alert(1)</script>"


def test_subject_is_one_line(renderer: Renderer) -> None:
    rendered = renderer.render("acknowledgement", "en", context(subject=" Hi\r\n  there\tyou\n"))
    assert rendered.subject == "[CID-1042] Hi there you"


@pytest.mark.parametrize(
    ("value", "expected"),
    [("de", "de"), ("DE_de", "de-de"), (" en ", "en"), ("", None), (None, None), ("../x", None)],
)
def test_normalise_language(value: str | None, expected: str | None) -> None:
    assert normalise_language(value) == expected


def test_bad_template_name_is_refused(renderer: Renderer) -> None:
    with pytest.raises(ValueError, match="template name"):
        renderer.render("../secrets", "en", {})


@pytest.mark.parametrize(
    ("value", "language", "written"),
    [
        ("2026-12-18", "de", "18.12.2026"),
        ("2026-12-18 14:05", "fr", "18/12/2026 14:05"),
        ("2026-12-18", "de-AT", "18.12.2026"),
        ("2026-12-18", "en", "2026-12-18"),
        ("", "de", ""),
        (None, "fr", ""),
        ("CID-12026-12-18", "de", "CID-12026-12-18"),
    ],
)
def test_the_day_filter_writes_an_iso_day_as_the_language_does(
    value: str | None, language: str, written: str
) -> None:
    assert written_day(value, language) == written


@pytest.mark.parametrize(
    ("language", "sizes"),
    [
        ("en", ["1 Byte", "999 Bytes", "1.5 kB", "30.0 MB", "25.0 MiB"]),
        ("de", ["1 Byte", "999 Bytes", "1,5 kB", "30,0 MB", "25,0 MiB"]),
        ("fr", ["1 octet", "999 octets", "1,5 ko", "30,0 Mo", "25,0 Mio"]),
    ],
)
def test_sizes_in_a_template_take_its_languages_decimal_mark_and_units(
    tmp_path: Path, language: str, sizes: list[str]
) -> None:
    """filesizeformat, the filter every shipped mail uses for sizes, and an operator's own."""
    (tmp_path / language).mkdir()
    (tmp_path / language / "sizes.txt.j2").write_text(
        "{% block subject %}s{% endblock %}{% block body %}"
        "{{ [1, 999, 1500, 30000000]|map('filesizeformat')|join('|') }}"
        "|{{ 26214400|filesizeformat(true) }}{% endblock %}"
    )
    rendered = Renderer(builtin_template_dir(), tmp_path, language).render("sizes", language, {})
    assert rendered.text.strip().split("|") == sizes


@pytest.mark.parametrize("language", ["en", "de", "fr"])
def test_the_delivered_mail_wraps_a_long_list_of_confirm_words(language: str) -> None:
    """However many confirm words are set, the text mail keeps to lines a mail reader shows
    whole (the template's own lines go to 80), each word the reader knows still there."""
    words = ["ok", "okay", "confirm", "confirmed", "bestätigt", "passt", "erledigt",
             "alles klar", "geht wieder", "es geht wieder", "läuft wieder", "c'est parfait",
             "all good", "parfait", "ça marche", "c'est bon", "tout est ok"]  # fmt: skip
    context = {
        "ticket": {"cid": "CID-1042", "number": 1042, "subject": "Printer", "status": "delivered",
                   "priority": "B"},
        "old_status": "working", "new_status": "delivered", "old_priority": None,
        "confirm_words": words, "billable": False, "billable_time": None,
        "support_address": "support@example.com", "reply_hint": "[CID-1042]",
    }  # fmt: skip
    renderer = Renderer(builtin_template_dir(), None, language)
    text = renderer.render("delivered", language, context).text
    assert max(len(line) for line in text.splitlines()) <= 80, text
    flat = " ".join(text.split())
    known = spoken(words, language)
    assert len(known) >= 4 and all(word in flat for word in known), (known, flat)
