"""Tests of the stdlib grapheme-cluster splitter used by ``smooth_text(chunking="grapheme")``."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rxstream.operators._graphemes import graphemes, is_wide


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", []),
        ("abc", ["a", "b", "c"]),
        ("a\r\nb", ["a", "\r\n", "b"]),
        ("\n\r", ["\n", "\r"]),
        ("e\u0301\u0302x", ["e\u0301\u0302", "x"]),  # stacked combining marks
        ("\u0301a", ["\u0301", "a"]),  # a lone mark is a cluster of its own
        ("👍🏽!", ["👍🏽", "!"]),  # skin tone modifier
        ("1\ufe0f\u20e3", ["1\ufe0f\u20e3"]),  # keycap
        ("👨\u200d👩\u200d👧\u200d👦x", ["👨\u200d👩\u200d👧\u200d👦", "x"]),  # family ZWJ sequence
        ("🏳\ufe0f\u200d🌈", ["🏳\ufe0f\u200d🌈"]),  # rainbow flag (VS16 before the ZWJ)
        ("a\u200d👍", ["a\u200d", "👍"]),  # ZWJ after a letter does not join (GB11 needs a pictograph)
        ("🇫🇷🇩🇪🇺", ["🇫🇷", "🇩🇪", "🇺"]),  # regional indicators pair up
        (
            "🏴\U000e0067\U000e0062\U000e0073\U000e0063\U000e0074\U000e007f",
            ["🏴\U000e0067\U000e0062\U000e0073\U000e0063\U000e0074\U000e007f"],
        ),
        ("\u1100\u1161\u11a8\uac00", ["\u1100\u1161\u11a8", "\uac00"]),  # Hangul jamo L V T, then LV
        ("\uac00\u11a8", ["\uac00\u11a8"]),  # LV + T
        ("กำ", ["กำ"]),  # Thai SARA AM is a spacing mark
        ("क्षि", ["क्", "षि"]),  # no GB9c (Unicode 15.1 conjuncts): split after the virama
        ("\u0600\u0661", ["\u0600\u0661"]),  # prepended concatenation mark
        ("a\tb", ["a", "\t", "b"]),
        ("漢字", ["漢", "字"]),
        ("ｶﾞ", ["ｶﾞ"]),  # halfwidth katakana + voiced mark
    ],
)
def test_known_clusters(text: str, expected: list[str]) -> None:
    assert graphemes(text) == expected


def test_is_wide() -> None:
    assert is_wide("漢") and is_wide("가") and is_wide("。") and is_wide("\uff21")
    assert not is_wide("a") and not is_wide("👍") and not is_wide("é")


_alphabet = st.sampled_from(
    [
        "a",
        " ",
        "\r",
        "\n",
        "\u0301",
        "\u200d",
        "\ufe0f",
        "👍",
        "🏽",
        "🇫",
        "\u1100",
        "\u1161",
        "\u11a8",
        "漢",
        "\t",
    ]
)


@given(st.lists(_alphabet, max_size=20).map("".join), st.integers(0, 20))
def test_property_join_and_prefix_stability(text: str, cut: int) -> None:
    clusters = graphemes(text)
    assert "".join(clusters) == text
    assert all(clusters)
    full = set()
    offset = 0
    for cluster in clusters:
        offset += len(cluster)
        full.add(offset)
    # boundaries found in a prefix, except at its end, are boundaries of the whole text
    offset = 0
    for cluster in graphemes(text[:cut])[:-1]:
        offset += len(cluster)
        assert offset in full
