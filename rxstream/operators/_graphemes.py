r"""Extended grapheme clusters (user-perceived characters) with the standard library only.

A compact implementation of the UAX #29 grapheme-cluster boundary rules GB3-GB13, with
character properties derived from `unicodedata` plus a few tables. It keeps together:
CR LF; a base with its combining marks, variation selectors and spacing marks (``e`` +
U+0301, ``1`` + U+FE0F + U+20E3); emoji with skin-tone modifiers and ZWJ sequences (family,
rainbow flag); regional-indicator pairs (flags); tag sequences (subdivision flags); Hangul
jamo syllables; prepended concatenation marks.

Known simplifications (documented, deliberate): ``Extended_Pictographic`` is approximated by
code-point ranges; the Unicode 15.1 Indic conjunct rule (GB9c) is not applied, so a
Devanagari conjunct may be split after its virama. The ``regex`` module's ``\X`` is the
reference when it is available; this module exists because it is not a dependency.
"""

from __future__ import annotations

import unicodedata
from functools import lru_cache

__all__ = ["graphemes", "is_wide"]

# Grapheme_Cluster_Break property values (the subset the rules need).
_OTHER, _CR, _LF, _CONTROL, _EXTEND, _ZWJ, _RI, _PREPEND, _SPACING = range(9)
_L, _V, _T, _LV, _LVT, _PICT = range(9, 15)

_PREPEND_CHARS = frozenset([*range(0x0600, 0x0606), 0x06DD, 0x070F, 0x0890, 0x0891, 0x08E2, 0x110BD, 0x110CD])
# Letters (category Lo/Lm) that are SpacingMark or Extend for grapheme purposes.
_SPACING_LETTERS = frozenset([0x0E33, 0x0EB3])
_EXTEND_LETTERS = frozenset([0xFF9E, 0xFF9F])

_PICT_RANGES = (
    (0x00A9, 0x00A9),
    (0x00AE, 0x00AE),
    (0x203C, 0x203C),
    (0x2049, 0x2049),
    (0x2122, 0x2122),
    (0x2139, 0x2139),
    (0x2194, 0x2199),
    (0x21A9, 0x21AA),
    (0x231A, 0x231B),
    (0x2328, 0x2328),
    (0x2388, 0x2388),
    (0x23CF, 0x23CF),
    (0x23E9, 0x23F3),
    (0x23F8, 0x23FA),
    (0x24C2, 0x24C2),
    (0x25AA, 0x25AB),
    (0x25B6, 0x25B6),
    (0x25C0, 0x25C0),
    (0x25FB, 0x25FE),
    (0x2600, 0x27BF),
    (0x2934, 0x2935),
    (0x2B05, 0x2B07),
    (0x2B1B, 0x2B1C),
    (0x2B50, 0x2B50),
    (0x2B55, 0x2B55),
    (0x3030, 0x3030),
    (0x303D, 0x303D),
    (0x3297, 0x3297),
    (0x3299, 0x3299),
    (0x1F000, 0x1F0FF),
    (0x1F10D, 0x1F10F),
    (0x1F12F, 0x1F12F),
    (0x1F16C, 0x1F171),
    (0x1F17E, 0x1F17F),
    (0x1F18E, 0x1F18E),
    (0x1F191, 0x1F19A),
    (0x1F1AD, 0x1F1E5),
    (0x1F201, 0x1F20F),
    (0x1F21A, 0x1F21A),
    (0x1F22F, 0x1F22F),
    (0x1F232, 0x1F23A),
    (0x1F23C, 0x1F23F),
    (0x1F249, 0x1F3FA),
    (0x1F400, 0x1F53D),
    (0x1F546, 0x1F64F),
    (0x1F680, 0x1F6FF),
    (0x1F774, 0x1F77F),
    (0x1F7D5, 0x1F7FF),
    (0x1F80C, 0x1F80F),
    (0x1F848, 0x1F84F),
    (0x1F85A, 0x1F85F),
    (0x1F888, 0x1F88F),
    (0x1F8AE, 0x1F8FF),
    (0x1F90C, 0x1F93A),
    (0x1F93C, 0x1F945),
    (0x1F947, 0x1FAFF),
    (0x1FC00, 0x1FFFD),
)


def _is_pict(cp: int) -> bool:
    return any(lo <= cp <= hi for lo, hi in _PICT_RANGES)


@lru_cache(maxsize=8192)
def _prop(ch: str) -> int:
    cp = ord(ch)
    if cp < 0x7F:  # fast path: ASCII
        if ch == "\r":
            return _CR
        if ch == "\n":
            return _LF
        return _CONTROL if cp < 0x20 else _OTHER
    if cp == 0x200D:
        return _ZWJ
    if 0x1F1E6 <= cp <= 0x1F1FF:
        return _RI
    if 0x1F3FB <= cp <= 0x1F3FF or 0xE0020 <= cp <= 0xE007F or cp == 0x200C:
        return _EXTEND  # emoji modifiers, tag characters, ZWNJ
    if cp in _PREPEND_CHARS:
        return _PREPEND
    if 0xAC00 <= cp <= 0xD7A3:
        return _LV if (cp - 0xAC00) % 28 == 0 else _LVT
    if 0x1100 <= cp <= 0x115F or 0xA960 <= cp <= 0xA97C:
        return _L
    if 0x1160 <= cp <= 0x11A7 or 0xD7B0 <= cp <= 0xD7C6:
        return _V
    if 0x11A8 <= cp <= 0x11FF or 0xD7CB <= cp <= 0xD7FB:
        return _T
    if cp in _SPACING_LETTERS:
        return _SPACING
    if cp in _EXTEND_LETTERS:
        return _EXTEND
    category = unicodedata.category(ch)
    if category in ("Mn", "Me"):
        return _EXTEND
    if category == "Mc":
        return _SPACING
    if category in ("Cc", "Zl", "Zp", "Cf"):
        return _CONTROL
    if _is_pict(cp):
        return _PICT
    return _OTHER


_HANGUL_NO_BREAK = {
    _L: (_L, _V, _LV, _LVT),
    _LV: (_V, _T),
    _V: (_V, _T),
    _LVT: (_T,),
    _T: (_T,),
}


def graphemes(text: str) -> list[str]:
    r"""Split ``text`` into extended grapheme clusters.

    ``"".join(graphemes(text)) == text`` always holds; a boundary between two clusters never
    moves when more text is appended later, except that the **last** cluster may still grow.

    Example:
        >>> [len(cluster) for cluster in graphemes("e\u0301👍🏽🇫🇷!")]  # code points per cluster
        [2, 2, 2, 1]
    """
    if text.isascii() and "\r\n" not in text:
        return list(text)  # fast path: every ASCII character but CR LF is a cluster
    clusters: list[str] = []
    start = 0
    prev = -1
    ri_run = 0  # regional indicators immediately before the current position
    pict_extend = False  # the current cluster so far matches ExtPict Extend*
    pict_zwj = False  # ... ExtPict Extend* ZWJ (GB11 applies to a following pictograph)
    for i, ch in enumerate(text):
        prop = _prop(ch)
        if i and _breaks(prev, prop, ri_run, pict_zwj):
            clusters.append(text[start:i])
            start = i
        # state for the next position
        ri_run = ri_run + 1 if prop == _RI else 0
        if prop == _PICT:
            pict_extend, pict_zwj = True, False
        elif prop == _EXTEND:
            pict_zwj = False
        elif prop == _ZWJ:
            pict_zwj, pict_extend = pict_extend, False
        else:
            pict_extend = pict_zwj = False
        prev = prop
    if start < len(text):
        clusters.append(text[start:])
    return clusters


def _breaks(prev: int, cur: int, ri_run: int, pict_zwj: bool) -> bool:
    if prev == _CR and cur == _LF:  # GB3
        return False
    if prev in (_CONTROL, _CR, _LF) or cur in (_CONTROL, _CR, _LF):  # GB4, GB5
        return True
    if cur in _HANGUL_NO_BREAK.get(prev, ()):  # GB6-GB8
        return False
    if cur in (_EXTEND, _ZWJ, _SPACING):  # GB9, GB9a
        return False
    if prev == _PREPEND:  # GB9b
        return False
    if prev == _ZWJ and cur == _PICT and pict_zwj:  # GB11
        return False
    return not (prev == _RI and cur == _RI and ri_run % 2 == 1)  # GB12, GB13


def is_wide(cluster: str) -> bool:
    """True when a cluster is an East Asian wide/fullwidth character (CJK, kana, Hangul...).

    Such characters are written without spaces between words, so word chunking treats each
    one as a word of its own. Emoji are not counted as wide here.
    """
    ch = cluster[0]
    if ch < "\u1100":  # no wide character below the Hangul jamo block
        return False
    return unicodedata.east_asian_width(ch) in ("W", "F") and _prop(ch) != _PICT
