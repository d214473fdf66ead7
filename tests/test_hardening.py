"""Hostile and odd inputs: decompression bombs, corrupt and misleading files, NaN, absurd sizes, outputs.

Every refusal is checked for its class or exit code and its one-line message; crafted files are
built here byte by byte so the tests say exactly what the file claims.
"""

from __future__ import annotations

import errno
import io
import os
import re
import socket
import socketserver
import struct
import threading
import time
import tracemalloc
import zlib
from pathlib import Path

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from PIL import Image

from conftest import assert_error, run_cli
from convcli.errors import DecodeError, KernelError, OutputError, ParameterError, ShapeError, SourceError
from convcli.io import classify_source, decode, load_source, write_atomic
from convcli.limits import (
    LimitError,
    check_geometry,
    check_memory,
    correlation_work,
    estimate_filter,
)

# ---------------------------------------------------------------------------
# Crafted headers


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def png_claiming(width: int, height: int, bit_depth: int = 8, colour_type: int = 0) -> bytes:
    """A well-formed PNG header claiming ``width x height`` with a few bytes of pixel data."""
    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, colour_type, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", zlib.compress(b"\0" * 64)) + _chunk(b"IEND", b"")
    )


def tiff_claiming(width: int, height: int) -> bytes:
    """A little-endian baseline TIFF whose IFD claims ``width x height`` 8-bit gray pixels (16 bytes present)."""
    entries = [
        (256, 4, 1, width),  # ImageWidth, LONG
        (257, 4, 1, height),  # ImageLength
        (258, 3, 1, 8),  # BitsPerSample, SHORT
        (259, 3, 1, 1),  # Compression: none
        (262, 3, 1, 1),  # Photometric: min-is-black
        (273, 4, 1, 8 + 2 + 12 * 9 + 4),  # StripOffsets: right after the IFD
        (277, 3, 1, 1),  # SamplesPerPixel
        (278, 4, 1, height),  # RowsPerStrip
        (279, 4, 1, width * height % (1 << 32)),  # StripByteCounts (a lie)
    ]
    ifd = struct.pack("<H", len(entries))
    for tag, kind, count, value in entries:
        packed = struct.pack("<HI", value, 0)[:4] if kind == 3 else struct.pack("<I", value)
        ifd += struct.pack("<HHI", tag, kind, count) + packed
    ifd += struct.pack("<I", 0)
    return b"II*\x00" + struct.pack("<I", 8) + ifd + b"\x80" * 16


def gif_claiming(width: int, height: int) -> bytes:
    screen = b"GIF89a" + struct.pack("<HHBBB", width, height, 0, 0, 0)
    image = b"," + struct.pack("<HHHHB", 0, 0, width, height, 0) + b"\x02\x02\x4c\x01\x00"
    return screen + image + b";"


def jpeg_claiming(width: int, height: int) -> bytes:
    sof = b"\xff\xc0" + struct.pack(">HBHHB", 11, 8, height, width, 1) + b"\x01\x11\x00"
    sos = b"\xff\xda" + struct.pack(">HB", 8, 1) + b"\x01\x00\x00\x3f\x00"
    return b"\xff\xd8" + sof + sos + b"\x00" * 16 + b"\xff\xd9"


def npy_claiming(shape: tuple[int, ...], dtype: str = "<f8") -> bytes:
    from numpy.lib import format as npy_format

    buffer = io.BytesIO()
    npy_format.write_array_header_1_0(buffer, {"descr": dtype, "fortran_order": False, "shape": shape})
    return buffer.getvalue() + b"\0" * 64


def decode_bytes(data: bytes, name: str = "-", **options):
    return decode(data, classify_source(name) if name != "-" else classify_source("-"), **options)


BOMBS = {
    "png": png_claiming(100_000, 100_000),
    "png16rgb": png_claiming(100_000, 100_000, 16, 2),
    "tiff": tiff_claiming(100_000, 100_000),
    "gif": gif_claiming(65_535, 65_535),
    "jpeg": jpeg_claiming(65_500, 65_500),
    "npy": npy_claiming((100_000, 100_000)),
}


@pytest.mark.parametrize("kind", sorted(BOMBS))
def test_bombs_are_refused_from_the_header(kind):
    calls = []
    started = time.perf_counter()
    with pytest.raises(LimitError, match=r"pixels, above the limit of 178,956,970 .*raise --max-pixels") as info:
        decode_bytes(BOMBS[kind], on_size=lambda *size: calls.append(size))
    assert time.perf_counter() - started < 2  # nothing was decoded or allocated
    assert calls == []  # refused before the memory check: the header alone decided
    assert "\n" not in str(info.value)
    side = "65535x65535" if kind == "gif" else "65500x65500" if kind == "jpeg" else "100000x100000"
    assert side in str(info.value)


def test_raising_the_pixel_limit_reaches_the_memory_check_not_pillow(samples, tmp_path):
    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(png_claiming(100_000, 100_000))
    out = tmp_path / "out.png"
    run = run_cli(["filter", bomb, "-k", "vertical", "-o", out, "--max-pixels", "0", "--max-memory", "1024"])
    assert_error(run, 1, "bomb.png' (100000x100000) with vertical needs about", "GiB of memory", "--max-memory")
    assert not out.exists()
    run = run_cli(["filter", bomb, "-k", "vertical", "-o", out])
    assert_error(run, 1, "100000x100000 = 10,000,000,000 pixels", "raise --max-pixels")


def test_pillow_bomb_check_is_replaced_by_ours():
    # 15000x15000 is above Pillow's own refusal point (178,956,970 pixels): with our limit raised
    # Pillow must not raise DecompressionBombError (or warn); the truncated data is what fails.
    data = png_claiming(15_000, 15_000, 1, 0)
    seen = []
    with pytest.raises(DecodeError, match="damaged or truncated"):
        decode_bytes(data, max_pixels=300_000_000, on_size=lambda *size: seen.append(size))
    assert seen and seen[0][:2] == (15_000, 15_000)


def test_max_pixels_applies_to_arrays_and_text(tmp_path):
    np.save(tmp_path / "a.npy", np.zeros((20, 30)))
    with pytest.raises(LimitError, match="20x30 = 600 pixels, above the limit of 599"):
        load_source(str(tmp_path / "a.npy"), max_pixels=599)
    assert load_source(str(tmp_path / "a.npy"), max_pixels=600).array.shape == (20, 30)
    with pytest.raises(LimitError, match="2x2 = 4 pixels"):
        load_source("-", stdin=io.BytesIO(b"1 2; 3 4"), max_pixels=3)


# ---------------------------------------------------------------------------
# .npy headers that lie


def test_npy_claiming_more_than_it_holds(tmp_path):
    data = npy_claiming((50_000, 50_000))
    with pytest.raises(DecodeError, match=r"claims shape 50000x50000 \(19 GiB\) but holds only 64 B; .*damaged"):
        decode_bytes(data, max_pixels=None)
    # Shapes whose product overflows int64 are still compared exactly (Python ints).
    with pytest.raises(DecodeError, match="claims shape 4294967296x4294967296"):
        decode_bytes(npy_claiming((1 << 32, 1 << 32)), max_pixels=None)
    with pytest.raises(DecodeError, match="holds object values"):
        decode_bytes(npy_claiming((2, 2), "|O"))
    with pytest.raises(DecodeError, match="holds complex128 values"):
        decode_bytes(npy_claiming((2, 2), "<c16"))
    with pytest.raises(DecodeError, match="has shape"):
        decode_bytes(npy_claiming((2, 2, 2)))
    with pytest.raises(DecodeError, match="not a readable .npy"):
        decode_bytes(b"\x93NUMPY\x01\x00garbage")


def test_npy_kernel_file_claiming_a_huge_shape(tmp_path):
    from convcli.kernels import parse_kernel_spec

    (tmp_path / "k.npy").write_bytes(npy_claiming((100_000, 100_000)))
    with pytest.raises(KernelError, match="is 100000x100000; kernels are limited to 4096 per side"):
        parse_kernel_spec(str(tmp_path / "k.npy"))
    (tmp_path / "k2.npy").write_bytes(npy_claiming((40, 40)))
    with pytest.raises(KernelError, match=r"claims shape 40x40 \(12 KiB\) but holds only 64 B"):
        parse_kernel_spec(str(tmp_path / "k2.npy"))


# ---------------------------------------------------------------------------
# Corrupt and misleading files


def _png(array: np.ndarray, mode: str | None = None) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array, mode).save(buffer, "PNG")
    return buffer.getvalue()


def _jpeg(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=100)
    return buffer.getvalue()


def _noise(shape, seed=0):
    return np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)


@pytest.mark.parametrize(
    ("name", "data", "fragment"),
    [
        ("cut.jpg", _jpeg(Image.fromarray(_noise((64, 64, 3))))[:600], "damaged or truncated"),
        ("cut.png", _png(_noise((64, 64)))[:100], "damaged or truncated"),
        ("header-only.png", _png(_noise((64, 64)))[:33], "starts like a PNG file but is damaged or truncated"),
        ("cut.gif", b"GIF89a\x10\x00\x10\x00", "starts like a GIF file but is damaged or truncated"),
        ("cut.tif", tiff_claiming(4, 4)[:20], "not a readable TIFF"),
        ("zero.png", b"", "is empty (0 bytes)"),
        ("text.png", b"I am a text file, not a picture", "not an image convcli can read"),
        ("random.jpg", bytes(range(256)) * 4, "not an image convcli can read"),
        ("magic-only.png", b"\x89PNG\r\n\x1a\n", "starts like a PNG file but is damaged"),
    ],
)
def test_corrupt_files_give_one_line_errors(tmp_path, name, data, fragment):
    path = tmp_path / name
    path.write_bytes(data)
    with pytest.raises(DecodeError, match=re.escape(fragment)) as info:
        load_source(str(path))
    assert "\n" not in str(info.value)
    run = run_cli(["filter", path, "-k", "vertical", "-o", tmp_path / "out.png"])
    assert_error(run, 1, fragment)
    assert not (tmp_path / "out.png").exists()


def test_png_named_jpg_and_jpeg_named_png_are_decoded_by_content(tmp_path):
    pixels = np.array([[0, 255], [255, 0]], dtype=np.uint8)
    (tmp_path / "a.jpg").write_bytes(_png(pixels))
    loaded = load_source(str(tmp_path / "a.jpg"))
    assert loaded.detail.startswith("PNG") and loaded.array.tolist() == [[0, 1], [1, 0]]
    (tmp_path / "b.png").write_bytes(_jpeg(Image.new("L", (8, 8), 200)))
    loaded = load_source(str(tmp_path / "b.png"))
    assert loaded.detail.startswith("JPEG")
    np.testing.assert_allclose(loaded.array, 200 / 255, atol=2 / 255)


def test_animated_gif_names_the_frame_used(tmp_path):
    frames = [Image.new("L", (4, 3), value) for value in (0, 128, 255)]
    path = tmp_path / "anim.gif"
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=50)
    loaded = load_source(str(path))
    assert loaded.notes == (f"note: {str(path)!r} has 3 frames; using frame 0 (choose another with --frame N, from 0)",)
    assert loaded.detail.endswith("frame 0") and loaded.array.max() == 0
    run = run_cli(["filter", path, "-k", "1", "--frame", "2", "-o", tmp_path / "f2.npy"])
    assert run.exit_code == 0, run
    assert "has 3 frames; using frame 2" in run.stderr.splitlines()[0]
    np.testing.assert_allclose(np.load(tmp_path / "f2.npy"), np.ones((3, 4)))
    run = run_cli(["filter", path, "-k", "1", "--frame", "3", "-o", tmp_path / "f3.npy"])
    assert_error(run, 1, "has 3 frame(s); --frame 3 does not exist (use 0 to 2)")
    single = tmp_path / "one.png"
    single.write_bytes(_png(np.zeros((2, 2), np.uint8)))
    assert load_source(str(single)).notes == ()


def test_multi_page_tiff_pages(tmp_path):
    import tifffile

    path = tmp_path / "stack.tif"
    tifffile.imwrite(
        path, np.stack([np.full((3, 5), v, np.uint16) for v in (0, 1000, 65535)]), photometric="minisblack"
    )
    first = load_source(str(path))
    assert first.array.shape == (3, 5) and first.array.max() == 0
    assert "has 3 pages; using page 0" in first.notes[0]
    np.testing.assert_allclose(load_source(str(path), frame=1).array, 1000 / 65535, rtol=1e-6)
    np.testing.assert_allclose(load_source(str(path), frame=2).array, 1.0)
    with pytest.raises(DecodeError, match=r"has 3 page\(s\); --frame 3 does not exist"):
        load_source(str(path), frame=3)


def test_tiff_modes(tmp_path):
    import tifffile

    # 1-bit, written by Pillow.
    bilevel = Image.new("1", (3, 1))
    bilevel.putpixel((1, 0), 1)
    buffer = io.BytesIO()
    bilevel.save(buffer, "TIFF")
    assert decode_bytes(buffer.getvalue()).array.tolist() == [[0, 1, 0]]
    # Palette: indices through a 16-bit colour map, as Pillow reads it.
    palette = Image.new("P", (3, 1))
    palette.putpalette([0, 0, 0, 255, 0, 0, 0, 0, 255] + [0] * 759)
    palette.putpixel((1, 0), 1)
    palette.putpixel((2, 0), 2)
    buffer = io.BytesIO()
    palette.save(buffer, "TIFF")
    loaded = decode_bytes(buffer.getvalue(), color=True)
    np.testing.assert_allclose(loaded.array[0], [[0, 0, 0], [1, 0, 0], [0, 0, 1]])
    # Min-is-white: 0 is white.
    buffer = io.BytesIO()
    tifffile.imwrite(buffer, np.array([[0, 255]], np.uint8), photometric="miniswhite")
    assert decode_bytes(buffer.getvalue()).array.tolist() == [[1, 0]]
    # 16-bit RGB keeps all 16 bits.
    buffer = io.BytesIO()
    tifffile.imwrite(buffer, np.array([[[256, 257, 0]]], np.uint16), photometric="rgb")
    np.testing.assert_allclose(decode_bytes(buffer.getvalue(), color=True).array[0, 0] * 65535, [256, 257, 0])
    # Planar (separate) RGB comes out as (H, W, 3).
    buffer = io.BytesIO()
    planes = np.zeros((3, 2, 4), np.uint8)
    planes[2] = 255
    tifffile.imwrite(buffer, planes, photometric="rgb", planarconfig="separate")
    loaded = decode_bytes(buffer.getvalue(), color=True)
    assert loaded.array.shape == (2, 4, 3) and loaded.array[..., 2].min() == 1 and loaded.array[..., :2].max() == 0
    # CMYK
    buffer = io.BytesIO()
    tifffile.imwrite(buffer, np.array([[[255, 0, 0, 0], [0, 0, 0, 128]]], np.uint8), photometric="separated")
    np.testing.assert_allclose(
        decode_bytes(buffer.getvalue(), color=True).array[0] * 255, [[0, 255, 255], [127, 127, 127]]
    )


def test_cmyk_jpeg_becomes_rgb_by_the_standard_formula():
    cmyk = np.array([[[255, 0, 0, 0], [0, 255, 0, 0], [0, 0, 0, 128], [0, 0, 0, 0]]], np.uint8)
    data = _jpeg(Image.fromarray(cmyk, "CMYK").resize((32, 8), Image.NEAREST))
    loaded = decode_bytes(data, color=True)
    assert "CMYK" in loaded.detail
    expected = (255 - cmyk[0, :, :3].astype(float)) * (255 - cmyk[0, :, 3:].astype(float)) / 255
    centres = loaded.array[4, [4, 12, 20, 28]] * 255
    np.testing.assert_allclose(centres, expected, atol=6)  # JPEG is lossy


def test_alpha_is_dropped_not_composited():
    la = np.zeros((1, 2, 2), np.uint8)
    la[0, :, 0] = (100, 200)
    la[0, :, 1] = (0, 255)
    np.testing.assert_allclose(decode_bytes(_png(la, "LA")).array * 255, [[100, 200]], rtol=1e-6)
    rgba = np.zeros((1, 1, 4), np.uint8)
    rgba[0, 0] = (255, 255, 255, 0)  # fully transparent white stays white
    assert decode_bytes(_png(rgba)).array[0, 0] == pytest.approx(1.0)


def test_sixteen_bit_gray_and_float_tiff():
    import tifffile

    assert decode_bytes(_png(np.array([[0, 32768, 65535]], np.uint16))).array[0, 1] == pytest.approx(32768 / 65535)
    buffer = io.BytesIO()
    tifffile.imwrite(buffer, np.array([[-2.5, 1e6]], np.float32))
    np.testing.assert_array_equal(decode_bytes(buffer.getvalue()).array, [[-2.5, 1e6]])


# ---------------------------------------------------------------------------
# NaN and infinity


def test_nan_in_an_array_source_is_refused_with_count_and_position(tmp_path):
    values = np.zeros((3, 4))
    values[1, 2] = np.nan
    values[2, 0] = -np.inf
    np.save(tmp_path / "a.npy", values)
    with pytest.raises(DecodeError, match=r"holds 2 NaN or infinite values \(the first, nan, at row 2, column 3\)"):
        load_source(str(tmp_path / "a.npy"))
    run = run_cli(["filter", tmp_path / "a.npy", "-k", "1", "-o", tmp_path / "o.npy"])
    assert_error(run, 1, "2 NaN or infinite values", "row 2, column 3", "numpy.nan_to_num")


def test_nan_in_a_float_tiff_and_in_text(tmp_path):
    import tifffile

    buffer = io.BytesIO()
    tifffile.imwrite(buffer, np.array([[0, np.inf]], np.float32))
    with pytest.raises(DecodeError, match=r"1 NaN or infinite value \(the first, inf, at row 1, column 2\)"):
        decode_bytes(buffer.getvalue())
    with pytest.raises(DecodeError, match="'inf' is not a finite number"):
        decode_bytes(b"1 2\n3 inf\n")


def test_nan_in_a_kernel_is_refused():
    run = run_cli(["filter", "-", "-k", "1 1e999", "-o", "-"], input=b"1 2 3")
    assert_error(run, 2, "'1e999' is not a finite number")
    run = run_cli(["filter", "-", "-k", "2x1: 1, inf", "-o", "-"], input=b"1 2 3")
    assert_error(run, 2, "NaN or infinity")


# ---------------------------------------------------------------------------
# Absurd sizes and integer arithmetic


@pytest.mark.parametrize(
    ("args", "code", "fragment"),
    [
        (["-k", " ".join(["1"] * 100_000)], 2, "is 1x100000; kernels are limited to 4096 per side"),
        (["-k", "blur:100000x1"], 2, "out of range; use 1 to 4096"),
        (["-k", "100000x1: 1"], 2, "declares 100000x1 (WxH) = 100000 values but has 1"),
        (["-k", "1", "-s", str(10**9)], 2, "stride 1000000000x1000000000 is absurdly large"),
        (["-k", "1", "-s", "1x" + str(10**30)], 2, "is absurdly large; convcli accepts at most 16777216"),
        (["-k", "1", "-d", "3x" + str(10**9)], 2, "dilation 3x1000000000 is absurdly large"),
        (["-k", "1", "-p", str(10**8)], 2, "padding 100000000x100000000 is absurdly large"),
        (["-k", "1", "-s", "9" * 5000], 2, "has too many digits"),
        (["-k", "9" * 5000 + "x1: 1"], 2, "is absurdly large"),
        (["-k", "1", "-p", "1000000"], 1, "TiB of memory (encoding"),
        (["-k", "gaussian:4095", "--method", "fft", "-p", "100000"], 1, "TiB of memory (encoding"),
    ],
)
def test_absurd_sizes_are_refused_before_allocating(tmp_path, args, code, fragment):
    started = time.perf_counter()
    run = run_cli(["filter", "-", *args, "-o", tmp_path / "o.txt"], input=b"1 2 3; 4 5 6")
    assert_error(run, code, fragment)
    assert time.perf_counter() - started < 10
    assert not (tmp_path / "o.txt").exists()


def test_check_geometry_accepts_the_limit_and_same():
    check_geometry(stride=(1 << 24, 1), padding="same", dilation=(1, 1 << 24))
    with pytest.raises(ShapeError, match="padding 16777217x0"):
        check_geometry(padding=((1 << 24) + 1, 0))


def test_shape_arithmetic_is_exact_for_huge_sizes():
    # Python ints: no wrap-around where int64 would overflow (2**40 * 2**40 * 8 bytes).
    from convcli.shapes import conv_geometry, conv_output_length

    side = 1 << 40
    assert conv_output_length(side, 3, stride=7, pad_before=5, pad_after=5) == (side + 10 - 3) // 7 + 1
    geometry = conv_geometry((side, side), (3, 3), padding=(1, 1))
    assert geometry.output == (side, side)
    estimate = estimate_filter((side, side), 1, [((3, 3), "direct")], padding=(1, 1), itemsize=8)
    assert estimate.parts["input"] == side * side * 8 > np.iinfo(np.int64).max // 2**20
    with pytest.raises(LimitError, match="needs about"):
        check_memory(estimate)
    with pytest.raises(ParameterError, match="too many digits"):
        from convcli.shapes import parse_pair

        parse_pair("1x" + "7" * 4400)


@pytest.mark.parametrize(
    ("method", "kernel", "padding"),
    [("direct", (3, 3), (0, 0)), ("direct", (5, 5), (2, 2)), ("separable", (9, 9), (4, 4)), ("fft", (15, 15), (7, 7))],
)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_memory_model_bounds_what_the_engine_allocates(method, kernel, padding, dtype):
    """The estimate is at least what correlate2d really allocates (tracemalloc sees NumPy's buffers), and not absurdly more."""
    from convcli.engine import correlate2d

    rng = np.random.default_rng(1)
    image = rng.random((300, 400)).astype(dtype)
    weights = np.outer(rng.random(kernel[0]), rng.random(kernel[1])) if method == "separable" else rng.random(kernel)
    parts = correlation_work((300, 400), kernel, method, padding=padding, itemsize=np.dtype(dtype).itemsize)
    estimated = sum(parts.values())
    # The model follows the NumPy path; the OpenCV backend (when installed) allocates less, so there
    # the estimate is only an upper bound.
    for backend in ("numpy", "auto"):
        correlate2d(image[:40, :40], weights, padding=padding, method=method, backend=backend)  # imports, plans
        tracemalloc.start()
        tracemalloc.reset_peak()
        before = tracemalloc.get_traced_memory()[0]
        correlate2d(image, weights, padding=padding, method=method, backend=backend)
        peak = tracemalloc.get_traced_memory()[1] - before
        tracemalloc.stop()
        assert peak <= estimated, (backend, peak, parts)
        if backend == "numpy":
            assert estimated <= 4 * peak + (1 << 20), (peak, parts)


def test_whole_filter_estimate_covers_a_real_run(samples, tmp_path):
    """Peak traced memory of a whole CLI run (decode, filter, encode) stays below the estimate it was checked against."""
    seen = []
    import convcli.limits as limits

    original = limits.check_memory

    def record(estimate, max_memory=None):
        seen.append(estimate)
        return original(estimate, max_memory)

    tracemalloc.start()
    try:
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(limits, "check_memory", record)
            run = run_cli(["filter", samples / "coffee.png", "-k", "gaussian:15", "-o", tmp_path / "o.png", "--color"])
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert run.exit_code == 0, run
    assert len(seen) == 1 and seen[0].total >= peak * 0.9, (seen, peak)


# ---------------------------------------------------------------------------
# Files and stdin that never end


def test_endless_stdin_is_cut_at_the_limit():
    from convcli.io import read_stdin_bytes

    class Endless(io.RawIOBase):
        def readable(self):
            return True

        def readinto(self, buffer):
            buffer[:] = (b"12" * len(buffer))[: len(buffer)]
            return len(buffer)

    with pytest.raises(LimitError, match="standard input is larger than 8 MiB"):
        read_stdin_bytes(Endless(), limit=8 << 20)


@pytest.mark.skipif(not os.path.exists("/dev/zero"), reason="needs /dev/zero")
def test_dev_zero_as_a_path_is_cut_at_the_limit(monkeypatch):
    monkeypatch.setattr("convcli.io.sources.input_byte_limit", lambda: 4 << 20)
    with pytest.raises(SourceError, match=r"'/dev/zero' starts with 64 KiB of the byte 0x00 and nothing else"):
        load_source("/dev/zero")
    started = time.perf_counter()
    with pytest.raises(SourceError, match="standard input starts with 64 KiB"), open("/dev/zero", "rb") as zeros:
        load_source("-", stdin=zeros)  # without the limit lowered: refused from its first bytes
    assert time.perf_counter() - started < 1


def test_a_file_larger_than_memory_is_refused_from_its_size(tmp_path, monkeypatch):
    big = tmp_path / "big.png"
    with open(big, "wb") as stream:
        stream.truncate(64 << 20)  # sparse: no disk used
    monkeypatch.setattr("convcli.io.sources.input_byte_limit", lambda: 1 << 20)
    with pytest.raises(LimitError, match=r"is 64 MiB, more than the 1 MiB convcli reads \(half the memory available\)"):
        load_source(str(big))


# ---------------------------------------------------------------------------
# Outputs


class _FullDisk:
    """A file object that accepts a little and then fails with ENOSPC, as a full disk does."""

    def __init__(self, stream):
        self.stream = stream

    def write(self, data):
        self.stream.write(data[:10])
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stream.close()


def test_full_disk_leaves_no_partial_file_and_keeps_the_old_output(tmp_path, monkeypatch):
    target = tmp_path / "out.png"
    target.write_bytes(b"old output")
    real_fdopen = os.fdopen
    monkeypatch.setattr(os, "fdopen", lambda fd, mode: _FullDisk(real_fdopen(fd, mode)))
    with pytest.raises(OutputError, match="cannot write .*out.png': No space left on device"):
        write_atomic(target, b"new data" * 100)
    assert target.read_bytes() == b"old output"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.png"]


def test_full_disk_through_the_cli(samples, tmp_path, monkeypatch):
    real_fdopen = os.fdopen
    monkeypatch.setattr(os, "fdopen", lambda fd, mode: _FullDisk(real_fdopen(fd, mode)))
    out = tmp_path / "edges.png"
    run = run_cli(["filter", samples / "camera.png", "-k", "vertical", "-o", out])
    assert_error(run, 1, "No space left on device")
    assert not any(p.name.startswith(".edges") for p in tmp_path.iterdir()) and not out.exists()


def test_unwritable_directory(samples, tmp_path):
    # /sys is read-only even for root; a chmod-ed folder is tried too when not root.
    targets = ["/sys/convcli-out.png"]
    if os.geteuid() != 0:
        locked = tmp_path / "locked"
        locked.mkdir()
        locked.chmod(0o500)
        targets.append(str(locked / "out.png"))
    for target in targets:
        if not os.path.isdir(os.path.dirname(target)):
            continue
        run = run_cli(["filter", samples / "x.txt", "-k", "1", "-o", target])
        assert_error(run, 1, f"cannot write {target!r}")
        assert not os.path.exists(target)


def test_the_input_is_never_overwritten(samples, tmp_path, monkeypatch):
    source = samples / "x.txt"
    original = source.read_bytes()
    (tmp_path / "soft.txt").symlink_to(source)
    os.link(source, tmp_path / "hard.txt")
    for target in (source, tmp_path / "soft.txt", tmp_path / "hard.txt"):
        run = run_cli(["filter", source, "-k", "1", "-o", target])
        assert_error(run, 2, "never overwrites its input")
    # The default output name, when it is a link to the input.
    monkeypatch.chdir(tmp_path)
    Path("x-custom.txt").symlink_to(source)
    run = run_cli(["filter", source, "-k", "0 1; 2 3"])
    assert_error(run, 2, "output 'x-custom.txt' is the input")
    assert source.read_bytes() == original


def test_existing_output_is_replaced_whole_and_a_symlinked_output_is_replaced_not_followed(samples, tmp_path):
    other = tmp_path / "other.txt"
    other.write_text("precious")
    link = tmp_path / "out.txt"
    link.symlink_to(other)
    run = run_cli(["filter", samples / "x.txt", "-k", "1", "-o", link])
    assert run.exit_code == 0, run
    assert not link.is_symlink() and link.read_text() == "0 1 2\n3 4 5\n6 7 8\n"
    assert other.read_text() == "precious"
    link.chmod(0o640)
    run = run_cli(["filter", samples / "x.txt", "-k", "2", "-o", link])
    assert run.exit_code == 0 and link.read_text().startswith("0 2 4")
    assert link.stat().st_mode & 0o777 == 0o640  # permissions of the replaced file are kept


def test_source_errors_are_source_errors():
    # The classes decide the exit code: reading problems are 1, command-line problems 2.
    assert issubclass(LimitError, Exception) and LimitError.exit_code == 1
    with pytest.raises(SourceError, match="is a folder"):
        load_source("/")


# ---------------------------------------------------------------------------
# URLs, against a raw local server that misbehaves on purpose


class _RawHandler(socketserver.StreamRequestHandler):
    """Speaks just enough HTTP/1.1 to lie: each path is a behaviour written byte by byte."""

    def handle(self) -> None:
        try:
            line = self.rfile.readline(65537).decode("latin-1")
            while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                pass
            path = line.split(" ")[1] if line.count(" ") >= 2 else "/"
            getattr(self, "route_" + path.strip("/").replace("-", "_").split("/")[0], self.route_missing)(path)
        except (BrokenPipeError, ConnectionResetError, OSError):
            pass  # the client hung up: that is what several tests want

    def send(self, status: str, headers: dict[str, str], body: bytes = b"") -> None:
        head = f"HTTP/1.1 {status}\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"
        self.wfile.write(head.encode() + body)

    def route_missing(self, path: str) -> None:
        self.send("404 Not Found", {"Content-Type": "text/html", "Content-Length": "14"}, b"<h1>nope</h1>\n")

    def route_image(self, path: str) -> None:
        body = _png(np.full((3, 5), 255, np.uint8))
        self.send("200 OK", {"Content-Type": "image/png", "Content-Length": str(len(body))}, body)

    def route_short_body(self, path: str) -> None:  # promises 1000 bytes, sends 100, closes
        body = _png(_noise((64, 64)))
        self.send("200 OK", {"Content-Type": "image/png", "Content-Length": "1000", "Connection": "close"}, body[:100])

    def route_small_length(self, path: str) -> None:  # promises 10 bytes, then streams megabytes
        self.send("200 OK", {"Content-Type": "image/png", "Content-Length": "10"}, b"\x89PNG\r\n\x1a\n\0\0")
        for _ in range(200):
            self.wfile.write(b"\0" * 65536)

    def route_huge_length(self, path: str) -> None:  # declares 10 GiB
        self.send("200 OK", {"Content-Type": "image/png", "Content-Length": str(10 << 30)}, b"\x89PNG")
        time.sleep(5)

    def route_endless(self, path: str) -> None:  # no length, never ends
        self.send("200 OK", {"Content-Type": "image/png", "Connection": "close"}, b"\x89PNG\r\n\x1a\n")
        while True:
            self.wfile.write(b"\0" * 65536)

    def route_endless_chunked(self, path: str) -> None:
        self.send("200 OK", {"Content-Type": "image/png", "Transfer-Encoding": "chunked"})
        while True:
            self.wfile.write(b"10000\r\n" + b"\0" * 65536 + b"\r\n")

    def route_trickle(self, path: str) -> None:  # one byte every 0.1 s: each wait is short, the whole is endless
        self.send("200 OK", {"Content-Type": "image/png", "Content-Length": "100000"})
        for _ in range(100000):
            self.wfile.write(b"\0")
            self.wfile.flush()
            time.sleep(0.1)

    def route_slow(self, path: str) -> None:
        time.sleep(3)
        self.route_image(path)

    def route_loop(self, path: str) -> None:
        self.send("302 Found", {"Location": "/loop-back", "Content-Length": "0"})

    def route_loop_back(self, path: str) -> None:
        self.send("302 Found", {"Location": "/loop", "Content-Length": "0"})

    def route_chain(self, path: str) -> None:  # /chain/N redirects N more times, then the image
        left = int(path.rsplit("/", 1)[1])
        target = f"/chain/{left - 1}" if left > 0 else "/image"
        self.send("302 Found", {"Location": target, "Content-Length": "0"})

    def route_to_ftp(self, path: str) -> None:
        self.send("301 Moved", {"Location": "ftp://127.0.0.1/x.png", "Content-Length": "0"})

    def route_to_file(self, path: str) -> None:
        self.send("307 Temporary Redirect", {"Location": "file:///etc/passwd", "Content-Length": "0"})

    def route_html(self, path: str) -> None:
        body = b"<!doctype html><html><body><h1>Sorry</h1>Please log in.</body></html>"
        self.send("200 OK", {"Content-Type": "text/html; charset=utf-8", "Content-Length": str(len(body))}, body)

    def route_server_error(self, path: str) -> None:
        body = b"<html>Internal\nServer\nError</html>"
        self.send("500 Internal Server Error", {"Content-Type": "text/html", "Content-Length": str(len(body))}, body)

    def route_truncated(self, path: str) -> None:  # honest length, but the PNG inside is cut
        body = _png(_noise((64, 64)))[:300]
        self.send("200 OK", {"Content-Type": "image/png", "Content-Length": str(len(body))}, body)

    def route_garbage(self, path: str) -> None:
        self.wfile.write(b"SSH-2.0-OpenSSH_9.0\r\n")

    def route_reset(self, path: str) -> None:
        self.send("200 OK", {"Content-Type": "image/png", "Content-Length": "5000"}, b"\x89PNG\r\n\x1a\n")
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.connection.close()


class _RawServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def handle_error(self, request, client_address) -> None:  # type: ignore[no-untyped-def]
        pass


@pytest.fixture(scope="module")
def hostile_server():
    server = _RawServer(("127.0.0.1", 0), _RawHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


URL_CASES = [
    ("/short-body", SourceError, "was cut short after 100 bytes (the server announced 1000); try again"),
    ("/small-length", DecodeError, "damaged or truncated"),
    ("/huge-length", SourceError, "download is larger than 1 MiB; raise --max-download"),
    ("/endless", SourceError, "download is larger than 1 MiB"),
    ("/endless-chunked", SourceError, "download is larger than 1 MiB"),
    ("/trickle", SourceError, "download took longer than 1 s; raise --timeout"),
    ("/slow", SourceError, "no answer within 1 s; raise --timeout"),
    ("/loop", SourceError, "the server redirects in a loop"),
    ("/chain/6", SourceError, "more than 5 redirects"),
    ("/to-ftp", SourceError, "redirected to a ftp: URL, which is refused"),
    ("/to-file", SourceError, "redirected to a file: URL, which is refused"),
    ("/html", DecodeError, "the server sent an HTML page, not an image"),
    ("/server-error", SourceError, "HTTP 500 Internal Server Error; check the address"),
    ("/missing.png", SourceError, "HTTP 404 Not Found"),
    ("/truncated", DecodeError, "damaged or truncated"),
    ("/garbage", SourceError, "not valid HTTP"),
    ("/reset", SourceError, "http"),
]


@pytest.mark.network
@pytest.mark.parametrize(("path", "error", "fragment"), URL_CASES, ids=[c[0] for c in URL_CASES])
def test_hostile_urls(hostile_server, path, error, fragment):
    started = time.perf_counter()
    with pytest.raises(error, match=re.escape(fragment)) as info:
        load_source(hostile_server + path, timeout=1.0, max_download=1 << 20)
    assert time.perf_counter() - started < 4
    assert "\n" not in str(info.value)


@pytest.mark.network
def test_five_redirects_are_fine(hostile_server):
    assert load_source(hostile_server + "/chain/4", timeout=2).array.shape == (3, 5)


@pytest.mark.network
def test_hostile_url_through_the_cli(hostile_server, tmp_path):
    for path, code, fragment in (("/endless", 1, "larger than 1 MiB"), ("/html", 1, "HTML page"), ("/loop", 1, "loop")):
        run = run_cli(
            [
                "filter",
                hostile_server + path,
                "-k",
                "1",
                "--max-download",
                "1",
                "--timeout",
                "2",
                "-o",
                tmp_path / "o.png",
            ]
        )
        assert_error(run, code, fragment)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "url", ["file:///etc/passwd", "ftp://127.0.0.1/x.png", "data:image/png;base64,iVBORw0KGgo=", "gopher://x/"]
)
def test_other_schemes_are_refused(url):
    with pytest.raises(SourceError, match="scheme is not supported"):
        load_source(url)


@pytest.mark.parametrize(
    "url", ["http://[::1", "http://127.0.0.1:99999/x.png", "http:///x.png", "http://exa mple.com/x"]
)
def test_malformed_urls(url):
    with pytest.raises(SourceError) as info:
        load_source(url, timeout=1)
    assert "\n" not in str(info.value) and url.split("/")[0] in str(info.value)


# ---------------------------------------------------------------------------
# No hangs in shape arithmetic


def _covering_padding_by_search(size, kernel, stride, pad, dilation):
    """The obvious search: grow the padding one step at a time until the last window reaches the last row."""
    from convcli.shapes import conv_output_length

    while True:
        out = conv_output_length(size, kernel, stride, pad, pad, dilation)
        if stride * (out - 1) + dilation * (kernel - 1) >= pad + size - 1:
            return pad
        pad += 1


@settings(max_examples=300, deadline=None)
@given(st.integers(1, 60), st.integers(1, 9), st.integers(1, 40), st.integers(0, 12), st.integers(1, 4))
def test_covering_padding_matches_the_search(size, kernel, stride, pad, dilation):
    from convcli.shapes import conv_geometry

    span = dilation * (kernel - 1) + 1
    assume(size + 2 * pad >= span)
    geometry = conv_geometry((size, 1), (kernel, 1), (stride, 1), (pad, 0), (dilation, 1))
    assert geometry.covering_padding()[0] == _covering_padding_by_search(size, kernel, stride, pad, dilation)


def test_huge_strides_do_not_hang(tmp_path):
    started = time.perf_counter()
    run = run_cli(["filter", "-", "-k", "1", "-s", str(1 << 24), "-o", "-"], input=b"1 2 3; 4 5 6; 7 8 9")
    assert run.exit_code == 0, run
    assert "--padding 8388607x8388607 would reach them" in run.stderr
    assert time.perf_counter() - started < 5


@pytest.mark.parametrize(
    ("args", "code", "fragment"),
    [
        (["upsample", "-k", "blur:2", "--stride", "16000000"], 1, "upsampling"),
        (["upsample", "-k", "blur:2", "--stride", "100000"], 1, "needs about 1.2 TiB of memory ("),
        (["upsample", "-k", "blur:2", "--stride", str(10**9)], 2, "stride 1000000000x1000000000 is absurdly large"),
        (["pool", "--size", "2", "--stride", str(10**9)], 2, "stride 1000000000x1000000000 is absurdly large"),
        (["pool", "--size", "3", "--dilation", str(10**8)], 2, "dilation 100000000x100000000 is absurdly large"),
    ],
)
def test_pool_and_upsample_refuse_absurd_sizes_before_allocating(tmp_path, args, code, fragment):
    started = time.perf_counter()
    run = run_cli([args[0], "-", *args[1:], "-o", tmp_path / "o.npy"], input=b"1 2 3; 4 5 6; 7 8 9")
    assert_error(run, code, fragment)
    assert time.perf_counter() - started < 10
    assert not (tmp_path / "o.npy").exists()


def test_a_subsampled_estimate_keeps_uneven_padding():
    # A plan that computes every output at stride 1 and keeps every s-th counts all the stride-1 outputs of the
    # padded image: 40 rows and columns of padding on one side count as much as 20 on each (they were dropped).
    from convcli.limits import estimate_filter
    from convcli.shapes import conv_geometry

    one_side = estimate_filter(
        (300, 400), 1, [((3, 3), "direct")], stride=(2, 2), padding=((0, 40), (0, 40)), subsampled=[True], itemsize=4
    )
    both = estimate_filter(
        (300, 400), 1, [((3, 3), "direct")], stride=(2, 2), padding=((20, 20), (20, 20)), subsampled=[True], itemsize=4
    )
    full = conv_geometry((300, 400), (3, 3), (1, 1), ((0, 40), (0, 40)), (1, 1))
    assert one_side.parts["all outputs"] == both.parts["all outputs"] == full.output[0] * full.output[1] * 4
