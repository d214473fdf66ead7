"""The PNG writer's deflate (issue 19, item 4): ISA-L at level 1 when installed, zlib otherwise; same pixels either way."""

from __future__ import annotations

import io
import zlib

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from convcli.io import png


def photo(height: int = 300, width: int = 451, channels: int = 3) -> np.ndarray:
    """A smooth image with noise: compresses like a photograph, not like a flat test card."""
    rng = np.random.default_rng(height * width + channels)
    y, x = np.mgrid[0:height, 0:width]
    base = 127 + 60 * np.sin(x / 17.0)[..., None] * np.cos(y / 23.0)[..., None] + rng.normal(0, 6, (height, width, 1))
    return np.clip(base + np.arange(channels) * 20, 0, 255).astype(np.uint8)


def decoded(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)))


def row_written(pixels: np.ndarray, strips: list[int], **options) -> bytes:
    out = io.BytesIO()
    writer = png.PngRowWriter(out.write, pixels.shape, pixels.dtype, **options)
    start = 0
    for rows in strips:
        if start >= pixels.shape[0]:
            break
        writer.write(pixels[start : start + rows])
        start += rows
    if start < pixels.shape[0]:
        writer.write(pixels[start:])
    writer.close()
    return out.getvalue()


@pytest.fixture(params=["zlib", "isal"])
def deflate(request, monkeypatch):
    """Each deflate in turn: plain zlib (the switch), and ISA-L where it is installed."""
    if request.param == "zlib":
        monkeypatch.setenv(png.DEFLATE_ENV, "zlib")
        assert png.fast_deflate() is None
    else:
        monkeypatch.delenv(png.DEFLATE_ENV, raising=False)
        if png.fast_deflate() is None:
            pytest.skip("isal is not installed (pip install 'convcli[deflate]')")
    return request.param


@pytest.mark.parametrize("level", [0, 1, 6])
@pytest.mark.parametrize("parts", [1, 3])
def test_every_deflate_gives_a_standard_png_of_the_same_pixels(deflate, level, parts):
    pixels = photo()
    data = png.png_bytes(pixels, compression=level, parts=parts)
    np.testing.assert_array_equal(decoded(data), pixels)  # Pillow's (libpng-compatible) reader
    # The IDAT stream is one standard zlib stream: zlib alone inflates it to the filtered rows.
    assert zlib.decompress(_idat(data)) == png.filter_up(pixels).tobytes()


def _idat(data: bytes) -> bytes:
    position, stream = 8, b""
    while position < len(data):
        length = int.from_bytes(data[position : position + 4], "big")
        kind = data[position + 4 : position + 8]
        if kind == b"IDAT":
            stream += data[position + 8 : position + 8 + length]
        position += 12 + length
    return stream


def test_zlib_switch_gives_the_plain_zlib_file(monkeypatch):
    pixels = photo(120, 200, 1)
    monkeypatch.setenv(png.DEFLATE_ENV, "zlib")
    forced = png.png_bytes(pixels, compression=1, parts=1)
    body = zlib.compressobj(1, zlib.DEFLATED, -15)
    filtered = png.filter_up(pixels).tobytes()
    want = body.compress(filtered) + body.flush()
    assert _idat(forced)[2:-4] == want  # header and Adler-32 around zlib's own deflate of the filtered rows


def test_without_isal_the_writer_falls_back_to_zlib(monkeypatch):
    monkeypatch.delenv(png.DEFLATE_ENV, raising=False)
    monkeypatch.setattr(png, "_isal", lambda: None)
    assert png.fast_deflate() is None
    pixels = photo(64, 80, 3)
    with_fallback = png.png_bytes(pixels, compression=1, parts=1)
    monkeypatch.setenv(png.DEFLATE_ENV, "zlib")
    assert with_fallback == png.png_bytes(pixels, compression=1, parts=1)


def test_only_level_one_goes_to_isal(monkeypatch):
    calls = []

    class Fake:
        DEFLATED = zlib.DEFLATED

        @staticmethod
        def compressobj(level, method, wbits):
            calls.append(level)
            return zlib.compressobj(level, method, wbits)

    monkeypatch.delenv(png.DEFLATE_ENV, raising=False)
    monkeypatch.setattr(png, "_isal", lambda: Fake)
    for level in (1, 2, 6, 9):
        png.raw_compressor(level)
    assert calls == [1]


@settings(max_examples=25, deadline=None)
@given(strips=st.lists(st.integers(1, 90), min_size=1, max_size=12), parts=st.integers(1, 4))
def test_the_row_writer_gives_the_in_memory_bytes_whatever_the_strips(strips, parts):
    # Both writers hand the compressor the same pieces (FEED_BYTES from each part's start), so the bytes match
    # for zlib and for ISA-L, whose output depends on how its input is cut.
    pixels = photo(260, 700, 3)  # 546 KB of filtered rows: more than one FEED_BYTES piece per part
    assert len(png.filter_up(pixels).tobytes()) > 2 * png.FEED_BYTES
    assert row_written(pixels, strips, compression=1, parts=parts) == png.png_bytes(pixels, compression=1, parts=parts)
