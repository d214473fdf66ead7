"""Colour JPEGs read as gray by luma use the file's own Y channel; everything else takes the RGB route."""

from __future__ import annotations

import io

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from convcli.cli import main
from convcli.io import classify_source, decode

BT601 = np.array([0.299, 0.587, 0.114])


def jpeg(pixels: np.ndarray, mode: str | None = None, **options) -> bytes:
    buffer = io.BytesIO()
    image = Image.fromarray(pixels) if mode is None else Image.fromarray(pixels).convert(mode)
    image.save(buffer, format="JPEG", **options)
    return buffer.getvalue()


def load(data: bytes, **options) -> np.ndarray:
    return decode(data, classify_source("photo.jpg"), **options).array


def decoded_rgb(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))


def y_plane(data: bytes) -> np.ndarray:
    """The Y of libjpeg's YCbCr output (no colour conversion at all), a second way to the same plane."""
    image = Image.open(io.BytesIO(data))
    image.draft("YCbCr", None)
    assert image.mode == "YCbCr"
    return np.asarray(image)[:, :, 0]


def check_against_rgb_route(data: bytes) -> float:
    """Y is the file's Y plane; within 1/255 of the float luma of the decoded RGB wherever nothing is clipped."""
    gray = load(data)
    np.testing.assert_array_equal(gray * 255, y_plane(data).astype(np.float32))
    rgb = decoded_rgb(data)
    luma = rgb.astype(np.float64) @ BT601 / 255
    unclipped = ~((rgb == 0) | (rgb == 255)).any(axis=2)
    difference = np.abs(gray - luma)[unclipped]
    assert difference.max() < 1 / 255
    return float(difference.max() * 255)


@pytest.mark.parametrize("name", ["chelsea", "coffee"])
@pytest.mark.parametrize("quality", [75, 90, 100])
@pytest.mark.parametrize("subsampling", [0, 2])
def test_bundled_photos_as_jpeg(samples, name, quality, subsampling):
    pixels = np.asarray(Image.open(samples / f"{name}.png").convert("RGB"))
    check_against_rgb_route(jpeg(pixels, quality=quality, subsampling=subsampling))


@pytest.mark.parametrize("seed", range(6))
def test_random_images_as_jpeg(seed):
    rng = np.random.default_rng(seed)
    height, width = rng.integers(1, 70, size=2)
    noise = rng.integers(0, 256, size=(height, width, 3), dtype=np.uint8)
    smooth = np.clip(np.cumsum(rng.normal(0, 6, size=(height, width, 3)), axis=1) + 128, 0, 255).astype(np.uint8)
    for pixels in (noise, smooth):
        for quality in (50, 95):
            check_against_rgb_route(jpeg(pixels, quality=quality, subsampling=int(rng.integers(0, 3))))


@pytest.mark.parametrize(
    "options", [{"progressive": True}, {"optimize": True}, {"progressive": True, "subsampling": 1}]
)
def test_progressive_and_optimized_jpegs(samples, options):
    pixels = np.asarray(Image.open(samples / "chelsea.png").convert("RGB"))
    check_against_rgb_route(jpeg(pixels, quality=85, **options))


def test_saturated_colours_differ_where_decoding_clips():
    # Red with blue dots: the subsampled chroma pushes decoded channels past 0 and 255; the Y plane keeps the encoded luma.
    pixels = np.zeros((32, 32, 3), np.uint8)
    pixels[..., 0] = 255
    pixels[::2, ::2] = (0, 0, 255)
    data = jpeg(pixels, quality=60)
    gray = load(data)
    np.testing.assert_array_equal(gray * 255, y_plane(data).astype(np.float32))
    rgb = decoded_rgb(data)
    clipped = ((rgb == 0) | (rgb == 255)).any(axis=2)
    difference = np.abs(gray - rgb.astype(np.float64) @ BT601 / 255)
    assert difference[clipped].max() > 1 / 255  # the documented exception is real
    assert difference[~clipped].max(initial=0) < 1 / 255


def test_other_routes_take_rgb():
    rng = np.random.default_rng(2)
    pixels = rng.integers(0, 256, size=(20, 30, 3), dtype=np.uint8)
    data = jpeg(pixels, quality=80)
    rgb = decoded_rgb(data).astype(np.float64)
    np.testing.assert_allclose(load(data, gray="mean"), rgb.mean(axis=2) / 255, atol=1e-6)
    np.testing.assert_allclose(load(data, color=True), rgb / 255, atol=1e-6)


def test_gray_and_cmyk_jpegs():
    rng = np.random.default_rng(3)
    pixels = rng.integers(0, 256, size=(17, 23, 3), dtype=np.uint8)
    gray = jpeg(pixels, "L", quality=90)
    np.testing.assert_array_equal(load(gray) * 255, np.asarray(Image.open(io.BytesIO(gray))).astype(np.float32))
    cmyk = jpeg(pixels, "CMYK", quality=90)
    assert Image.open(io.BytesIO(cmyk)).mode == "CMYK"
    rgb = decoded_rgb(cmyk).astype(np.float64)
    np.testing.assert_allclose(load(cmyk), rgb @ BT601 / 255, atol=1e-6)


def test_filter_command_reads_the_y_plane(samples, tmp_path):
    pixels = np.asarray(Image.open(samples / "coffee.png").convert("RGB"))
    (tmp_path / "c.jpg").write_bytes(data := jpeg(pixels, quality=85))
    runner = CliRunner()
    for gray, expected in (
        ("luma", y_plane(data) / 255),
        ("mean", decoded_rgb(data).astype(np.float64).mean(axis=2) / 255),
    ):
        out = tmp_path / f"{gray}.npy"
        result = runner.invoke(main, ["filter", str(tmp_path / "c.jpg"), "-k", "1", "--gray", gray, "-o", str(out)])
        assert result.exit_code == 0, result.output
        np.testing.assert_allclose(np.load(out), expected, atol=1e-6)
