"""load_image / probe_image: every pixel mode, every input kind, every way a file can be bad."""

from __future__ import annotations

import io
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageFile, PngImagePlugin

from engine.data.images import DEFAULT_MAX_PIXELS, ImageInfo, load_image, probe_image
from engine.errors import ImageLoadError
from tests.fixtures.bad_images import huge_png_bytes
from tests.fixtures.synthetic import textured_image


def pixel(image: Image.Image, xy: tuple[int, int] = (0, 0)) -> tuple[int, ...]:
    value = image.getpixel(xy)
    assert isinstance(value, tuple)
    return value


def assert_rgb(image: Image.Image, size: tuple[int, int] = (4, 4)) -> None:
    assert image.mode == "RGB"
    assert image.size == size


def png_bytes(image: Image.Image, **params: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", **params)
    return buffer.getvalue()


# --- pixel modes ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("mode", "value", "expected"),
    [
        ("1", 1, (255, 255, 255)),
        ("L", 100, (100, 100, 100)),
        ("RGB", (10, 20, 30), (10, 20, 30)),
        ("RGBX", (10, 20, 30, 0), (10, 20, 30)),
        ("CMYK", (0, 0, 0, 0), (255, 255, 255)),
        ("CMYK", (0, 255, 255, 0), (255, 0, 0)),
        ("YCbCr", (128, 128, 128), (128, 128, 128)),
        ("HSV", (0, 255, 255), (255, 0, 0)),
        ("HSV", (85, 255, 255), (0, 255, 0)),
    ],
)
def test_eight_bit_modes_become_rgb(mode: str, value: object, expected: tuple[int, ...]) -> None:
    image = load_image(Image.new(mode, (4, 4), value))  # type: ignore[arg-type]
    assert_rgb(image)
    assert pixel(image) == expected


def test_lab_becomes_the_matching_srgb_gray() -> None:
    image = load_image(Image.new("LAB", (4, 4), (128, 128, 128)))  # L* = 50, a* = b* = 0
    red, green, blue = pixel(image)
    assert red == green == blue
    assert 110 <= red <= 125  # sRGB of L* 50 is 119


@pytest.mark.parametrize(
    ("mode", "value", "expected"),
    [
        ("RGBA", (200, 100, 50, 255), (200, 100, 50)),
        ("RGBA", (200, 100, 50, 0), (0, 0, 0)),
        ("RGBA", (200, 100, 50, 128), (100, 50, 25)),
        ("LA", (200, 128), (100, 100, 100)),
        ("LA", (200, 0), (0, 0, 0)),
    ],
)
def test_alpha_is_composited_onto_black(
    mode: str, value: tuple[int, ...], expected: tuple[int, ...]
) -> None:
    image = load_image(Image.new(mode, (4, 4), value))
    assert_rgb(image)
    assert pixel(image) == pytest.approx(expected, abs=1)


def palette_image(mode: str = "P") -> Image.Image:
    """Index 0 red, 1 green; left half index 0, right half index 1."""
    indices = np.zeros((4, 4), dtype=np.uint8)
    indices[:, 2:] = 1
    image = Image.fromarray(indices).convert("L").convert("P")
    image.putpalette([255, 0, 0, 0, 255, 0] + [0, 0, 0] * 254)
    image.frombytes(indices.tobytes())
    return image if mode == "P" else image.convert("PA")


def test_palette_without_transparency_keeps_its_colours() -> None:
    image = load_image(png_bytes(palette_image()))
    assert pixel(image, (0, 0)) == (255, 0, 0)
    assert pixel(image, (3, 0)) == (0, 255, 0)


def test_palette_with_a_transparent_index_turns_it_black() -> None:
    image = load_image(png_bytes(palette_image(), transparency=0))
    assert pixel(image, (0, 0)) == (0, 0, 0)
    assert pixel(image, (3, 0)) == (0, 255, 0)


def test_palette_with_alpha_is_composited() -> None:
    source = palette_image("PA")
    alpha = Image.new("L", (4, 4), 255)
    alpha.paste(0, (0, 0, 2, 4))
    source.putalpha(alpha)
    assert source.mode == "PA"
    image = load_image(source)
    assert pixel(image, (0, 0)) == (0, 0, 0)
    assert pixel(image, (3, 0)) == (0, 255, 0)


def test_grayscale_transparency_key_is_composited() -> None:
    data = png_bytes(Image.new("L", (4, 4), 77), transparency=77)
    assert pixel(load_image(data)) == (0, 0, 0)


@pytest.mark.parametrize("mode", ["I;16", "I;16B", "I;16L"])
def test_sixteen_bit_maps_full_scale_to_full_scale(mode: str) -> None:
    values = np.array([[0, 257 * 100, 65535, 1000]], dtype=np.uint16)
    source = Image.new(mode, (4, 1))
    source.putdata(values.ravel().tolist())
    image = load_image(source)
    assert_rgb(image, (4, 1))
    assert [pixel(image, (x, 0))[0] for x in range(4)] == [0, 100, 255, 4]


def test_sixteen_bit_is_never_stretched_per_image(tmp_path: Path) -> None:
    dim = np.full((8, 8), 2570, dtype=np.uint16)  # a dark 16-bit image
    dim[0, 0] = 5140
    path = tmp_path / "dim16.png"
    Image.fromarray(dim).save(path)
    assert Image.open(path).mode.startswith("I")
    image = load_image(path)
    assert pixel(image, (1, 1)) == (10, 10, 10)  # not stretched to 0
    assert pixel(image, (0, 0)) == (20, 20, 20)  # not stretched to 255


def test_thirty_two_bit_integer_uses_full_scale_and_clips() -> None:
    source = Image.new("I", (4, 1))
    source.putdata([257 * 50, -5, 70_000, 65535])
    image = load_image(source)
    assert [pixel(image, (x, 0))[0] for x in range(4)] == [50, 0, 255, 255]


def test_float_uses_the_same_full_scale_and_clips(tmp_path: Path) -> None:
    source = Image.new("F", (4, 1))
    source.putdata([257.0 * 50, -5.0, 1e6, 0.9])
    path = tmp_path / "float.tif"
    source.save(path)
    image = load_image(path)
    assert [pixel(image, (x, 0))[0] for x in range(4)] == [50, 0, 255, 0]


@pytest.mark.parametrize(
    ("mode", "fmt", "suffix"),
    [
        ("L", "PNG", ".png"),
        ("LA", "PNG", ".png"),
        ("RGBA", "PNG", ".png"),
        ("P", "GIF", ".gif"),
        ("CMYK", "JPEG", ".jpg"),
        ("CMYK", "TIFF", ".tif"),
        ("I", "TIFF", ".tif"),
        ("1", "BMP", ".bmp"),
        ("RGB", "WEBP", ".webp"),
    ],
)
def test_files_in_many_formats_decode_to_rgb(
    tmp_path: Path, mode: str, fmt: str, suffix: str
) -> None:
    path = tmp_path / f"image{suffix}"
    textured_image(32).convert(mode).save(path, format=fmt)
    image = load_image(path)
    assert_rgb(image, (32, 32))


def test_exif_orientation_is_applied(tmp_path: Path) -> None:
    stored = Image.new("RGB", (40, 20), (0, 0, 255))
    stored.paste((255, 0, 0), (0, 0, 10, 10))  # red block at the stored top-left
    exif = Image.Exif()
    exif[0x0112] = 6  # display rotated 90° clockwise
    path = tmp_path / "rotated.jpg"
    stored.save(path, quality=95, exif=exif)
    image = load_image(path)
    assert image.size == (20, 40)
    red, _, blue = pixel(image, (15, 5))  # now at the top-right
    assert red > 200 and blue < 60
    assert pixel(image, (5, 5))[2] > 200


def test_a_pil_input_is_copied_not_aliased() -> None:
    source = Image.new("RGB", (4, 4), (1, 2, 3))
    image = load_image(source)
    image.putpixel((0, 0), (9, 9, 9))
    assert source.getpixel((0, 0)) == (1, 2, 3)


# --- numpy input ---------------------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(5, 7), (5, 7, 1)])
def test_gray_arrays(shape: tuple[int, ...]) -> None:
    image = load_image(np.full(shape, 60, dtype=np.uint8))
    assert_rgb(image, (7, 5))
    assert pixel(image) == (60, 60, 60)


def test_rgb_array_keeps_channel_order() -> None:
    array = np.zeros((3, 4, 3), dtype=np.uint8)
    array[..., 0] = 200
    array[..., 2] = 10
    assert pixel(load_image(array)) == (200, 0, 10)


def test_rgba_array_is_composited_onto_black() -> None:
    array = np.zeros((2, 2, 4), dtype=np.uint8)
    array[..., :3] = 200
    array[0, 0, 3] = 255
    array[0, 1, 3] = 0
    image = load_image(array)
    assert pixel(image, (0, 0)) == (200, 200, 200)
    assert pixel(image, (1, 0)) == (0, 0, 0)


def test_uint16_array_maps_full_scale() -> None:
    array = np.array([[0, 257 * 7, 65535]], dtype=np.uint16)
    image = load_image(array)
    assert [pixel(image, (x, 0))[0] for x in range(3)] == [0, 7, 255]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_float_array_in_unit_range(dtype: type) -> None:
    array: np.ndarray = np.array([[0.0, 0.5, 1.0, 1.5, -0.2]], dtype=dtype)
    image = load_image(array)
    assert [pixel(image, (x, 0))[0] for x in range(5)] == [0, 128, 255, 255, 0]


@pytest.mark.parametrize(
    ("array", "words"),
    [
        (np.zeros((4, 4, 2), dtype=np.uint8), "shape"),
        (np.zeros((2, 4, 4, 3), dtype=np.uint8), "shape"),
        (np.zeros((0, 4), dtype=np.uint8), "no pixels"),
        (np.zeros((4, 4), dtype=np.int32), "dtype int32"),
        (np.full((4, 4), np.nan, dtype=np.float32), "NaN"),
    ],
)
def test_bad_arrays_are_rejected(array: np.ndarray, words: str) -> None:
    with pytest.raises(ImageLoadError, match=words) as caught:
        load_image(array)
    assert caught.value.source == "<array>"


# --- sources and names ---------------------------------------------------------------------------


def test_bytes_and_str_paths_load(tmp_path: Path) -> None:
    data = png_bytes(textured_image(16))
    path = tmp_path / "a.png"
    path.write_bytes(data)
    from_bytes = load_image(data)
    from_str = load_image(str(path))
    assert np.array_equal(np.asarray(from_bytes), np.asarray(from_str))
    assert np.array_equal(np.asarray(from_bytes), np.asarray(textured_image(16)))


def test_error_names_the_file_by_its_name(tmp_path: Path) -> None:
    with pytest.raises(ImageLoadError, match="file not found") as caught:
        load_image(tmp_path / "missing.png")
    assert caught.value.source == "missing.png"
    assert str(caught.value).startswith("missing.png: ")


def test_error_uses_the_given_name() -> None:
    with pytest.raises(ImageLoadError) as caught:
        load_image(b"junk", name="upload-7")
    assert caught.value.source == "upload-7"


def test_empty_bytes_are_named_bytes() -> None:
    with pytest.raises(ImageLoadError, match="empty") as caught:
        load_image(b"")
    assert caught.value.source == "<bytes>"


def test_a_directory_is_not_an_image(tmp_path: Path) -> None:
    with pytest.raises(ImageLoadError, match="not a regular file"):
        load_image(tmp_path)


def test_unsupported_input_type() -> None:
    with pytest.raises(ImageLoadError, match="unsupported input type"):
        load_image(12345)  # type: ignore[arg-type]


# --- bad data ------------------------------------------------------------------------------------


def test_zero_byte_file(tmp_path: Path) -> None:
    path = tmp_path / "zero.png"
    path.touch()
    with pytest.raises(ImageLoadError, match=r"empty \(0 bytes\)"):
        load_image(path)


def test_text_file_with_an_image_name(tmp_path: Path) -> None:
    path = tmp_path / "notes.jpg"
    path.write_text("hello")
    with pytest.raises(ImageLoadError, match="not a recognised image format"):
        load_image(path)


@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
def test_truncated_data_is_refused(fmt: str) -> None:
    buffer = io.BytesIO()
    textured_image(64).save(buffer, format=fmt)
    data = buffer.getvalue()
    with pytest.raises(ImageLoadError, match="truncated"):
        load_image(data[: len(data) * 2 // 3])


def test_truncated_data_is_refused_even_if_pillow_allows_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", True)
    data = png_bytes(textured_image(64))
    with pytest.raises(ImageLoadError, match="truncated"):
        load_image(data[: len(data) // 2])
    assert ImageFile.LOAD_TRUNCATED_IMAGES is True  # restored for whoever set it


def test_a_lazily_opened_truncated_pil_image_is_refused() -> None:
    data = png_bytes(textured_image(64))
    lazy = Image.open(io.BytesIO(data[: len(data) // 2]))
    with pytest.raises(ImageLoadError, match="truncated"):
        load_image(lazy, name="lazy.png")


def test_corrupt_pixel_data_is_refused() -> None:
    data = bytearray(png_bytes(textured_image(64)))
    start = data.index(b"IDAT") + 4
    data[start : start + 40] = bytes(range(200, 240))
    with pytest.raises(ImageLoadError, match="corrupt"):
        load_image(bytes(data))


def test_damaged_header_is_refused() -> None:
    data = bytearray(png_bytes(textured_image(16)))
    data[20] ^= 0xFF  # inside IHDR: its checksum no longer matches
    with pytest.raises(ImageLoadError, match=r"looks like PNG .* header is damaged"):
        load_image(bytes(data))


def test_size_limit_says_the_size_the_limit_and_the_fix() -> None:
    data = png_bytes(textured_image(64))
    with pytest.raises(ImageLoadError) as caught:
        load_image(data, max_pixels=1000)
    reason = caught.value.reason
    assert "64×64" in reason and "1,000" in reason and "max_pixels" in reason


@pytest.mark.parametrize("kind", ["array", "pil"])
def test_size_limit_applies_to_in_memory_inputs(kind: str) -> None:
    image = textured_image(64)
    source = np.asarray(image) if kind == "array" else image
    with pytest.raises(ImageLoadError, match="64×64"):
        load_image(source, max_pixels=100)
    assert load_image(source, max_pixels=64 * 64).size == (64, 64)


def test_huge_dimensions_are_refused_from_the_header_without_decoding(tmp_path: Path) -> None:
    path = tmp_path / "huge.png"
    path.write_bytes(huge_png_bytes())
    tracemalloc.start()
    try:
        with pytest.raises(ImageLoadError, match="20000×20000") as caught:
            load_image(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert f"{DEFAULT_MAX_PIXELS:,}" in caught.value.reason
    assert peak < 20_000_000  # decoding would need 400 MB


def test_pillow_decompression_bomb_limit_is_a_load_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    with pytest.raises(ImageLoadError, match="decompression-bomb") as caught:
        load_image(png_bytes(textured_image(64)))
    assert "MAX_IMAGE_PIXELS" in caught.value.reason


def test_decompression_bomb_error_while_decoding_is_a_load_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def explode(self: Image.Image) -> None:
        raise Image.DecompressionBombError("frame too large")

    monkeypatch.setattr(PngImagePlugin.PngImageFile, "load", explode)
    with pytest.raises(ImageLoadError, match="decompression bomb"):
        load_image(png_bytes(textured_image(16)))


# --- probe_image ---------------------------------------------------------------------------------


def test_probe_reads_a_huge_header_quickly(tmp_path: Path) -> None:
    path = tmp_path / "huge.png"
    path.write_bytes(huge_png_bytes())
    info = probe_image(path)
    assert info == ImageInfo(width=20_000, height=20_000, mode="1", format="PNG")
    assert info.pixels == 400_000_000


def test_probe_other_sources() -> None:
    image = Image.new("L", (5, 3))
    assert probe_image(image) == ImageInfo(5, 3, "L", None)
    assert probe_image(png_bytes(image)) == ImageInfo(5, 3, "L", "PNG")
    array_info = probe_image(np.zeros((3, 5, 3), dtype=np.uint16))
    assert (array_info.width, array_info.height) == (5, 3)


def test_probe_does_not_notice_truncation_but_load_does() -> None:
    data = png_bytes(textured_image(64))
    truncated = data[: len(data) // 2]
    assert probe_image(truncated).width == 64
    with pytest.raises(ImageLoadError):
        load_image(truncated)


@pytest.mark.parametrize(("data", "words"), [(b"", "empty"), (b"plain text", "not a recognised")])
def test_probe_rejects_non_images(data: bytes, words: str) -> None:
    with pytest.raises(ImageLoadError, match=words):
        probe_image(data)
