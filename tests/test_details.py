"""Customer-given details: priority and type lines, reference numbers."""

from __future__ import annotations

import pytest

from mailgate.config import ConfigError, parse_config
from mailgate.reading.details import find_details

ORDER = r"(?i)\b(?:order|bestellung)\s*(?:no\.?|nr\.?|#)?\s*(\d{5,})"


@pytest.mark.parametrize(
    ("text", "priority", "kind"),
    [
        ("Priority: A\nType: bug\n\nIt crashes.", "A", "bug"),
        ("Priorität: hoch\nTyp: Fehler\nDer Drucker…", "A", "bug"),
        ("\n\nprio: c\n", "C", None),
        ("Type: Vorschlag\nKönnten Sie…", None, "suggestion"),
        ("Priority: whenever\n", None, None),
        ("Hello,\n\nline\nline\nline\nline\nPriority: A", None, None),  # too far down
        ("The priority: for us is speed", None, None),
    ],
)
def test_priority_and_type_on_first_lines(
    text: str, priority: str | None, kind: str | None
) -> None:
    details = find_details(text, [])
    assert (details.priority, details.type) == (priority, kind)


def test_reference_numbers_by_configured_pattern() -> None:
    text = "Bestellung Nr. 123456 kam nicht an, order #654321 auch nicht. Order 12 zählt nicht."
    assert find_details(text, [ORDER]).references == ("123456", "654321")


def test_bad_pattern_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match=r"tickets.reference_patterns\[0\]: not a regular"):
        parse_config('[tickets]\nreference_patterns = ["(unclosed"]\n', "f.toml")
