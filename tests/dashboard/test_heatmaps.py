"""Heatmap colouring, overlays, and originals of every pixel mode converted for display."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from dashboard.services.heatmaps import (
    PictureError,
    colourise,
    decode_heatmap,
    heatmap_picture,
    jet_lut,
    load_display_image,
    overlay,
    to_display_rgb,
)


def _png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def _heat(values: np.ndarray) -> bytes:
    return _png(Image.fromarray(values.astype(np.uint8), mode="L"))


def test_lut_runs_from_blue_to_red_like_jet() -> None:
    lut = jet_lut()
    assert lut.shape == (256, 3) and lut.dtype == np.uint8
    assert lut[0].tolist() == [0, 0, 128]  # dark blue
    assert lut[255].tolist() == [128, 0, 0]  # dark red
    middle = lut[128]
    assert middle[1] == 255 and middle[0] < 255 and middle[2] < 255  # green-ish, no extremes
    red = lut[:, 0].astype(int)
    assert red[192:].max() == 255 and red[:64].max() == 0


def test_colourise_maps_each_value_through_the_lut() -> None:
    heat = np.array([[0, 255], [128, 64]], dtype=np.uint8)
    rgb = np.asarray(colourise(heat))
    assert rgb.shape == (2, 2, 3)
    np.testing.assert_array_equal(rgb[0, 0], jet_lut()[0])
    np.testing.assert_array_equal(rgb[1, 0], jet_lut()[128])


def test_decode_heatmap_reads_the_stored_png_and_refuses_garbage() -> None:
    values = np.arange(12, dtype=np.uint8).reshape(3, 4) * 20
    np.testing.assert_array_equal(decode_heatmap(_heat(values)), values)
    with pytest.raises(PictureError, match="not a readable PNG"):
        decode_heatmap(b"not a png")


def test_overlay_opacity_blends_between_original_and_heatmap() -> None:
    original = Image.new("RGB", (4, 3), (200, 100, 50))
    heat = _heat(np.full((3, 4), 255))
    assert np.array_equal(np.asarray(overlay(original, heat, 0.0)), np.asarray(original))
    full = np.asarray(overlay(original, heat, 1.0))
    assert (full == jet_lut()[255]).all()
    half = np.asarray(overlay(original, heat, 0.5)).astype(int)
    expected = (np.array([200, 100, 50]) + jet_lut()[255]) / 2
    assert np.abs(half[0, 0] - expected).max() <= 1


def test_overlay_resizes_a_heatmap_of_another_size() -> None:
    original = Image.new("RGB", (40, 30), (0, 0, 0))
    heat = np.zeros((6, 8), dtype=np.uint8)
    heat[:, 4:] = 255  # right half hot
    result = np.asarray(overlay(original, _heat(heat), 1.0))
    assert result.shape == (30, 40, 3)
    assert result[15, 35, 0] > 100 and result[15, 2, 2] > 100  # red right, blue left
    assert heatmap_picture(_heat(heat), (40, 30)).size == (40, 30)


def test_sixteen_bit_is_scaled_from_full_range() -> None:
    values = np.array([[0, 65535], [257 * 100, 257 * 200]], dtype=np.uint16)
    rgb = np.asarray(to_display_rgb(Image.fromarray(values)))
    assert rgb[..., 0].tolist() == [[0, 255], [100, 200]]
    assert (rgb[..., 0] == rgb[..., 2]).all()


def test_dark_twelve_bit_data_is_stretched_for_display() -> None:
    values = np.array([[0, 4095], [1000, 2000]], dtype=np.uint16)
    rgb = np.asarray(to_display_rgb(Image.fromarray(values)))
    assert rgb[0, 0, 0] == 0 and rgb[0, 1, 0] == 255


def test_float_cmyk_palette_and_alpha_modes_become_rgb() -> None:
    floats = Image.fromarray(np.full((2, 2), 257.0 * 50, dtype=np.float32), mode="F")
    assert np.asarray(to_display_rgb(floats))[0, 0].tolist() == [50, 50, 50]
    cmyk = Image.new("CMYK", (2, 2), (0, 255, 255, 0))  # pure red in CMYK
    assert np.asarray(to_display_rgb(cmyk))[0, 0].tolist() == [255, 0, 0]
    palette = Image.new("P", (2, 2), 1)
    palette.putpalette([0, 0, 0, 10, 200, 30] + [0] * 762)
    assert np.asarray(to_display_rgb(palette))[0, 0].tolist() == [10, 200, 30]
    rgba = Image.new("RGBA", (2, 2), (200, 100, 0, 128))
    shown = np.asarray(to_display_rgb(rgba))[0, 0]
    assert abs(int(shown[0]) - 100) <= 1 and abs(int(shown[1]) - 50) <= 1  # on black
    for picture in (floats, cmyk, palette, rgba, Image.new("1", (2, 2)), Image.new("L", (2, 2))):
        assert to_display_rgb(picture).mode == "RGB"


def test_exif_orientation_is_applied(tmp_path: Path) -> None:
    picture = Image.new("RGB", (6, 2), (10, 20, 30))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise for display
    path = tmp_path / "rotated.jpg"
    picture.save(path, exif=exif.tobytes())
    assert load_display_image(path).size == (2, 6)


def test_load_display_image_shrinks_large_pictures(tmp_path: Path) -> None:
    path = tmp_path / "large.png"
    Image.new("RGB", (2000, 1000), (1, 2, 3)).save(path)
    shown = load_display_image(path, max_side=500)
    assert shown.size == (500, 250) and shown.mode == "RGB"


def test_missing_and_corrupt_files_give_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(PictureError, match="missing from the data directory"):
        load_display_image(tmp_path / "gone.png")
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 20)
    with pytest.raises(PictureError, match="cannot be read"):
        load_display_image(broken)
