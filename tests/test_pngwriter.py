"""convcli's own PNG writer, read back by two independent decoders (Pillow and pypng)."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import png
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from PIL import Image

from convcli.errors import ParameterError
from convcli.io.png import compress_parts, default_parts, filter_up, png_bytes


def read_pillow(data: bytes) -> np.ndarray:
    image = Image.open(io.BytesIO(data))
    image.load()
    if image.mode in ("I;16", "I;16B"):
        return np.asarray(image).astype(np.uint16)
    return np.asarray(image)


def read_pypng(data: bytes) -> tuple[np.ndarray, dict]:
    width, height, rows, info = png.Reader(bytes=data).read()
    values = np.vstack([np.asarray(row, dtype=np.uint16) for row in rows])
    return values.reshape(height, width, info["planes"]), info


def chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    """(type, payload) of every chunk, checking each CRC."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    found = []
    position = 8
    while position < len(data):
        (length,) = struct.unpack(">I", data[position : position + 4])
        kind = data[position + 4 : position + 8]
        payload = data[position + 8 : position + 8 + length]
        (crc,) = struct.unpack(">I", data[position + 8 + length : position + 12 + length])
        assert crc == zlib.crc32(kind + payload), kind
        found.append((kind, payload))
        position += 12 + length
    assert position == len(data)
    return found


def naive_up(pixels: np.ndarray) -> bytes:
    """Filter type 2 by the letter of the PNG spec, one byte at a time."""
    if pixels.ndim == 2:
        pixels = pixels[:, :, np.newaxis]
    samples = pixels.astype(">u2" if pixels.dtype == np.uint16 else np.uint8)
    rows = [bytes(samples[r].tobytes()) for r in range(pixels.shape[0])]
    out = bytearray()
    previous = bytes(len(rows[0]))
    for row in rows:
        out.append(2)
        out.extend((row[x] - previous[x]) % 256 for x in range(len(row)))
        previous = row
    return bytes(out)


def check_round_trip(pixels: np.ndarray, **options) -> bytes:
    data = png_bytes(pixels, **options)
    expected = pixels if pixels.ndim == 3 else pixels[:, :, np.newaxis]
    through_pypng, info = read_pypng(data)
    np.testing.assert_array_equal(through_pypng, expected)
    assert info["bitdepth"] == pixels.dtype.itemsize * 8
    assert info["greyscale"] == (expected.shape[2] <= 2) and info["alpha"] == (expected.shape[2] in (2, 4))
    through_pillow = read_pillow(data)
    if expected.shape[2] == 1:
        through_pillow = through_pillow[:, :, np.newaxis]
    if pixels.dtype == np.uint8 or expected.shape[2] == 1:  # Pillow reduces 16-bit colour to 8 bits
        np.testing.assert_array_equal(through_pillow, expected)
    return data


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
@pytest.mark.parametrize("channels", [None, 1, 2, 3, 4])
@pytest.mark.parametrize("shape", [(1, 1), (1, 7), (9, 1), (13, 17), (40, 33)])
def test_round_trip_through_two_decoders(dtype, channels, shape):
    rng = np.random.default_rng(sum(shape) * 10 + (channels or 0))
    size = shape if channels is None else (*shape, channels)
    pixels = rng.integers(0, np.iinfo(dtype).max, size=size, endpoint=True, dtype=dtype)
    for parts in (1, 2, 3):
        check_round_trip(pixels, parts=parts)


@pytest.mark.parametrize("level", range(10))
def test_every_compression_level(level):
    rng = np.random.default_rng(level)
    smooth = np.cumsum(rng.integers(0, 3, size=(50, 61)), axis=1).astype(np.uint16) * 97
    for pixels in (smooth, (smooth >> 8).astype(np.uint8), np.stack([smooth] * 3, axis=2)):
        for parts in (1, 2):
            check_round_trip(pixels, compression=level, parts=parts)


def test_level_0_is_stored_and_larger_than_level_9():
    pixels = np.tile(np.arange(200, dtype=np.uint8), (100, 1))
    stored = png_bytes(pixels, compression=0)
    smallest = png_bytes(pixels, compression=9)
    assert len(stored) > 100 * 201 > 20 * len(smallest)
    idat = b"".join(payload for kind, payload in chunks(stored) if kind == b"IDAT")
    assert idat[:2] == b"\x78\x01" and (idat[0] * 256 + idat[1]) % 31 == 0


def test_file_layout_and_header():
    pixels = np.zeros((3, 5, 4), np.uint16)
    found = chunks(png_bytes(pixels))
    assert [kind for kind, _ in found][0] == b"IHDR" and found[-1] == (b"IEND", b"")
    assert {kind for kind, _ in found} == {b"IHDR", b"IDAT", b"IEND"}
    # width, height, bit depth 16, colour type 6 (RGBA), deflate, filter method 0, no interlace
    assert struct.unpack(">IIBBBBB", found[0][1]) == (5, 3, 16, 6, 0, 0, 0)


@pytest.mark.parametrize("parts", [1, 2, 5])
def test_the_parts_make_one_zlib_stream_of_the_filtered_bytes(parts):
    rng = np.random.default_rng(parts)
    pixels = rng.integers(0, 40, size=(300, 257), dtype=np.uint8)
    data = png_bytes(pixels, parts=parts)
    idat = b"".join(payload for kind, payload in chunks(data) if kind == b"IDAT")
    assert zlib.decompress(idat) == naive_up(pixels)


def test_filter_up_matches_the_spec_byte_by_byte():
    rng = np.random.default_rng(3)
    for pixels in (
        rng.integers(0, 256, size=(7, 5), dtype=np.uint8),
        rng.integers(0, 65536, size=(4, 6, 3), dtype=np.uint16),
        rng.integers(0, 256, size=(1, 9, 2), dtype=np.uint8),
    ):
        assert filter_up(pixels).tobytes() == naive_up(pixels)


def test_compress_parts_any_split():
    data = np.frombuffer(b"abcabcabd" * 1000 + bytes(range(256)), dtype=np.uint8)
    for parts in (1, 2, 7, 10_000):
        assert zlib.decompress(compress_parts(data, 6, parts)) == data.tobytes()


def test_large_images_use_several_parts_and_split_idat(monkeypatch):
    monkeypatch.setenv("CONVCLI_THREADS", "2")
    assert default_parts(100_000) == 1 and default_parts(12_000_000) == 2
    monkeypatch.setenv("CONVCLI_THREADS", "1")
    assert default_parts(12_000_000) == 1
    monkeypatch.setenv("CONVCLI_THREADS", "2")
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, size=(1100, 1000, 3), dtype=np.uint8)  # incompressible: > 1 MiB of IDAT
    data = check_round_trip(pixels)
    sizes = [len(payload) for kind, payload in chunks(data) if kind == b"IDAT"]
    assert len(sizes) == 4 and max(sizes) == 1 << 20


@pytest.mark.parametrize(
    ("pixels", "options", "message"),
    [
        (np.zeros((2, 2), np.float32), {}, "uint8 or uint16"),
        (np.zeros((2, 2, 5), np.uint8), {}, "(H, W, 1-4)"),
        (np.zeros((0, 2), np.uint8), {}, "H, W >= 1"),
        (np.zeros(4, np.uint8), {}, "(H, W)"),
        (np.zeros((2, 2), np.uint8), {"compression": 10}, "0 (none) to 9"),
    ],
)
def test_refuses_what_it_cannot_write(pixels, options, message):
    with pytest.raises(ParameterError, match=message.replace("(", r"\(").replace(")", r"\)")):
        png_bytes(pixels, **options)


@settings(max_examples=60, deadline=None)
@given(
    pixels=st.one_of(
        hnp.arrays(np.uint8, hnp.array_shapes(min_dims=2, max_dims=2, min_side=1, max_side=24)),
        hnp.arrays(np.uint16, hnp.array_shapes(min_dims=2, max_dims=2, min_side=1, max_side=24)),
        hnp.arrays(
            st.sampled_from([np.uint8, np.uint16]),
            st.tuples(st.integers(1, 16), st.integers(1, 16), st.integers(1, 4)),
        ),
    ),
    level=st.integers(0, 9),
    parts=st.integers(1, 4),
)
def test_random_arrays_round_trip(pixels, level, parts):
    check_round_trip(pixels, compression=level, parts=parts)
