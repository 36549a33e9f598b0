"""Names as the pages show them: without the invisible controls that reorder or hide text."""

from __future__ import annotations

import unicodedata

# Bidirectional embeddings, overrides, isolates and marks: a file name holding U+202E would
# render reversed ("photo\u202egnp.exe" reads as "photoexe.png").
_BIDI_CONTROLS = frozenset(
    "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
)
ELLIPSIS = "…"


def display_name(name: str) -> str:
    """``name`` with bidirectional controls and other invisible format or control characters
    removed, so that it reads in the order it is stored."""
    return "".join(
        ch
        for ch in name
        if ch not in _BIDI_CONTROLS and unicodedata.category(ch) not in ("Cc", "Cf")
    )


def short_name(name: str, limit: int = 32) -> str:
    """A display name of at most ``limit`` characters, cut in the middle so that the start and
    the extension stay visible."""
    shown = display_name(name)
    if len(shown) <= limit:
        return shown
    keep = max(limit - 1, 2)
    head = (keep + 1) // 2
    return shown[:head] + ELLIPSIS + shown[len(shown) - (keep - head) :]
