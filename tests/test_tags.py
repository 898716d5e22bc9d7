"""The subject tag: found after any prefix and in any case, written exactly once."""

from __future__ import annotations

import pytest

from mailgate.reading import tags

PREFIXES = [
    "",
    "Re: ",
    "RE: ",
    "re: ",
    "AW: ",
    "Aw: ",
    "WG: ",
    "SV: ",
    "Fwd: ",
    "FW: ",
    "Fw: ",
    "TR: ",
    "Antw: ",
    "Re: AW: WG: ",
    "Re[2]: ",
    "RE:RE: ",
    "Réf: ",
]
TAGS = ["[CID-1042]", "[cid-1042]", "[Cid-1042]", "[ CID-1042 ]", "[CID - 1042]"]


@pytest.mark.parametrize("prefix", PREFIXES)
@pytest.mark.parametrize("tag", TAGS)
def test_tag_found_after_any_prefix(prefix: str, tag: str) -> None:
    assert tags.find_number(f"{prefix}{tag} Drucker druckt nicht", "CID") == 1042


def test_tag_found_anywhere_in_subject() -> None:
    assert tags.find_number("Drucker druckt nicht [CID-7] (dringend)", "CID") == 7


@pytest.mark.parametrize(
    "subject", ["CID-1042", "[CID-]", "[CIDX-12]", "[XCID12]", "", "[CID-abc]"]
)
def test_no_tag(subject: str) -> None:
    assert tags.find_number(subject, "CID") is None


def test_other_prefix_is_configurable() -> None:
    assert tags.find_number("Re: [HELP-55] x", "HELP") == 55
    assert tags.find_number("Re: [CID-55] x", "HELP") is None


def test_tagged_subject_has_exactly_one_tag() -> None:
    assert tags.tagged_subject("Re: AW: [CID-9] [cid-9] Drucker", "CID", 9) == "[CID-9] Drucker"
    assert tags.tagged_subject("", "CID", 9) == "[CID-9]"
