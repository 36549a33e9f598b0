"""Names as pages show them: bidirectional controls neutralised, long names cut in the middle."""

from __future__ import annotations

from dashboard.services.text import ELLIPSIS, display_name, short_name


def test_a_right_to_left_override_cannot_reverse_a_name() -> None:
    spoofed = "invoice\u202egnp.exe"
    assert display_name(spoofed) == "invoicegnp.exe"
    for control in "\u200e\u200f\u202a\u202b\u202c\u202d\u2066\u2067\u2068\u2069\u061c\x00\t":
        assert display_name(f"a{control}b") == "ab"
    assert display_name("Zelle 7 – ünter.png") == "Zelle 7 – ünter.png"  # ordinary text kept


def test_long_names_keep_their_start_and_extension() -> None:
    name = "line-4_camera-2_" + "x" * 80 + "_cell-0193.png"
    shown = short_name(name, 32)
    assert len(shown) == 32 and ELLIPSIS in shown
    assert shown.startswith("line-4_camera-2") and shown.endswith("0193.png")
    assert short_name("cell.png", 32) == "cell.png"
    assert short_name("\u202e" + "y" * 40, 10) == "yyyyy" + ELLIPSIS + "yyyy"
