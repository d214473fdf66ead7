"""Reading sources (paths, stdin bytes, URLs) and writing outputs."""

from __future__ import annotations

import io
import os

import numpy as np
import png
import pytest
from PIL import Image

from convcli.errors import DecodeError, OutputUsageError, SourceError
from convcli.io import (
    LUMA_WEIGHTS,
    classify_source,
    decode,
    encode,
    load_source,
    to_pixels,
    write_atomic,
)


def png_bytes(array, mode=None):
    buffer = io.BytesIO()
    Image.fromarray(array, mode).save(buffer, format="PNG") if mode else Image.fromarray(array).save(buffer, "PNG")
    return buffer.getvalue()


def load_bytes(data, name="x", **options):
    return decode(data, classify_source(name), **options)


def test_classify_refuses_other_schemes():
    for url in ("file:///etc/passwd", "ftp://host/x.png", "data:image/png;base64,AAAA"):
        with pytest.raises(SourceError, match="scheme is not supported"):
            classify_source(url)


def test_gray_8bit_png_scaled_by_255(tmp_path):
    pixels = np.array([[0, 51, 255]], dtype=np.uint8)
    loaded = load_bytes(png_bytes(pixels))
    assert loaded.kind == "image"
    np.testing.assert_allclose(loaded.array, [[0.0, 0.2, 1.0]], rtol=1e-6)
    assert loaded.array.dtype == np.float32


def test_luma_matches_pillow_within_one_level():
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, size=(64, 64, 3), dtype=np.uint8)
    ours = load_bytes(png_bytes(rgb)).array * 255
    pillow = np.asarray(Image.fromarray(rgb).convert("L"), dtype=np.float32)
    assert np.max(np.abs(np.rint(ours) - pillow)) <= 1
    assert np.mean(np.rint(ours) == pillow) > 0.97
    np.testing.assert_allclose(ours, rgb.astype(np.float64) @ np.array(LUMA_WEIGHTS), rtol=1e-5)


def test_mean_gray_and_alpha_dropped():
    rgba = np.zeros((2, 2, 4), dtype=np.uint8)
    rgba[..., 0] = 30
    rgba[..., 1] = 60
    rgba[..., 2] = 90
    rgba[..., 3] = [[0, 255], [128, 7]]  # alpha must not matter
    loaded = load_bytes(png_bytes(rgba), gray="mean")
    np.testing.assert_allclose(loaded.array, np.full((2, 2), 60 / 255), rtol=1e-6)


def test_normalize_max_is_the_tutorial_recipe():
    rgb = np.zeros((2, 2, 3), dtype=np.uint8)
    rgb[0, 0] = (10, 20, 30)
    rgb[1, 1] = (40, 40, 40)
    loaded = load_bytes(png_bytes(rgb), gray="mean", normalize_method="max")
    np.testing.assert_allclose(loaded.array, [[0.5, 0], [0, 1]], rtol=1e-6)
    raw = load_bytes(png_bytes(rgb), gray="mean", normalize_method="none")
    np.testing.assert_allclose(raw.array, [[20, 0], [0, 40]], rtol=1e-6)


def test_16bit_gray_keeps_precision():
    pixels = np.array([[0, 1, 65535]], dtype=np.uint16)
    loaded = load_bytes(png_bytes(pixels))
    np.testing.assert_allclose(loaded.array, [[0, 1 / 65535, 1]], rtol=1e-6)
    assert "16-bit" in loaded.detail


def test_16bit_rgb_png_keeps_precision():
    # Pillow would reduce this to 8 bits; values differing only in the low byte must stay apart.
    pixels = np.array([[[256, 256, 256], [257, 257, 257]]], dtype=np.uint16)
    buffer = io.BytesIO()
    png.Writer(2, 1, greyscale=False, bitdepth=16).write(buffer, pixels.reshape(1, 6))
    loaded = load_bytes(buffer.getvalue())
    assert loaded.array[0, 1] > loaded.array[0, 0]
    np.testing.assert_allclose(loaded.array * 65535, [[256, 257]], rtol=1e-5)


def test_palette_and_one_bit_images():
    palette = Image.new("P", (2, 1))
    palette.putpalette([0, 0, 0, 255, 255, 255] + [0] * 762)
    palette.putpixel((1, 0), 1)
    buffer = io.BytesIO()
    palette.save(buffer, "PNG")
    np.testing.assert_allclose(load_bytes(buffer.getvalue()).array, [[0, 1]], atol=1e-6)
    bilevel = Image.new("1", (2, 1))
    bilevel.putpixel((0, 0), 1)
    buffer = io.BytesIO()
    bilevel.save(buffer, "PNG")
    np.testing.assert_allclose(load_bytes(buffer.getvalue()).array, [[1, 0]])


def test_color_keeps_channels():
    rgb = np.zeros((1, 2, 3), dtype=np.uint8)
    rgb[0, 1] = (255, 0, 51)
    loaded = load_bytes(png_bytes(rgb), color=True)
    assert loaded.array.shape == (1, 2, 3)
    np.testing.assert_allclose(loaded.array[0, 1], [1, 0, 0.2], rtol=1e-6)


def test_float_tiff_is_kept_as_is():
    import tifffile

    buffer = io.BytesIO()
    tifffile.imwrite(buffer, np.array([[-1.5, 2.25]], dtype=np.float32))
    loaded = load_bytes(buffer.getvalue())
    np.testing.assert_array_equal(loaded.array, [[-1.5, 2.25]])


def test_gif_frames():
    frames = [Image.new("L", (2, 2), value) for value in (0, 255)]
    buffer = io.BytesIO()
    frames[0].save(buffer, "GIF", save_all=True, append_images=frames[1:])
    assert load_bytes(buffer.getvalue(), frame=1).array.max() == pytest.approx(1.0)
    with pytest.raises(DecodeError, match="has 2 frame"):
        load_bytes(buffer.getvalue(), frame=5)


def test_raw_sources_used_as_they_are(tmp_path):
    (tmp_path / "a.txt").write_text("0 1 2\n3 4 5\n")
    loaded = load_source(str(tmp_path / "a.txt"))
    assert loaded.kind == "array" and loaded.array.tolist() == [[0, 1, 2], [3, 4, 5]]
    (tmp_path / "a.csv").write_text("1,2\n3,400\n")
    assert load_source(str(tmp_path / "a.csv")).array.tolist() == [[1, 2], [3, 400]]
    np.save(tmp_path / "a.npy", np.array([[1, 2]], dtype=np.int16))
    loaded = load_source(str(tmp_path / "a.npy"))
    assert loaded.array.dtype == np.float64 and loaded.array.tolist() == [[1, 2]]


def test_stdin_content_is_sniffed():
    assert load_source("-", stdin=io.BytesIO(b"1 2; 3 4")).array.tolist() == [[1, 2], [3, 4]]
    buffer = io.BytesIO()
    np.save(buffer, np.eye(2))
    assert load_source("-", stdin=io.BytesIO(buffer.getvalue())).array.tolist() == [[1, 0], [0, 1]]
    image = load_source("-", stdin=io.BytesIO(png_bytes(np.zeros((3, 4), np.uint8))))
    assert image.kind == "image" and image.array.shape == (3, 4)
    with pytest.raises(SourceError, match="standard input is empty"):
        load_source("-", stdin=io.BytesIO(b""))
    with pytest.raises(DecodeError, match="not an image, a .npy array or a text matrix"):
        load_source("-", stdin=io.BytesIO(b"\x00\x01garbage\xff"))


def test_files_are_decoded_by_content(tmp_path):
    (tmp_path / "photo.jpg").write_bytes(png_bytes(np.full((2, 2), 255, np.uint8)))
    assert load_source(str(tmp_path / "photo.jpg")).detail.startswith("PNG")
    (tmp_path / "fake.png").write_text("hello, I am text")
    with pytest.raises(DecodeError, match="not an image convcli can read"):
        load_source(str(tmp_path / "fake.png"))
    (tmp_path / "empty.png").write_bytes(b"")
    with pytest.raises(DecodeError, match="is empty"):
        load_source(str(tmp_path / "empty.png"))
    data = png_bytes(np.random.default_rng(0).integers(0, 255, (64, 64), dtype=np.uint8))
    (tmp_path / "cut.png").write_bytes(data[: len(data) // 2])
    with pytest.raises(DecodeError, match="damaged or truncated"):
        load_source(str(tmp_path / "cut.png"))
    with pytest.raises(SourceError, match="does not exist"):
        load_source(str(tmp_path / "missing.png"))
    with pytest.raises(SourceError, match="is a folder"):
        load_source(str(tmp_path))


def test_url_loading(http_server):
    base, routes = http_server
    routes["/duck.png"] = (200, "image/png", png_bytes(np.full((3, 5), 255, np.uint8)), 0)
    routes["/page"] = (200, "text/html", b"<html><body>Oops</body></html>", 0)
    routes["/moved"] = (302, "", f"{base}/duck.png".encode(), 0)
    routes["/to-file"] = (302, "", b"file:///etc/passwd", 0)
    routes["/slow.png"] = (200, "image/png", b"x", 2.0)
    loaded = load_source(f"{base}/duck.png")
    assert loaded.array.shape == (3, 5) and loaded.source.stem == "duck"
    assert load_source(f"{base}/moved").array.shape == (3, 5)
    with pytest.raises(SourceError, match="HTTP 404"):
        load_source(f"{base}/missing.png")
    with pytest.raises(DecodeError, match="HTML page, not an image"):
        load_source(f"{base}/page")
    with pytest.raises(SourceError, match="redirected to a file: URL"):
        load_source(f"{base}/to-file")
    with pytest.raises(SourceError, match="no answer within 0.5 s"):
        load_source(f"{base}/slow.png", timeout=0.5)
    with pytest.raises(SourceError, match="larger than 1 MiB"):
        routes["/big.png"] = (200, "image/png", b"\x89PNG" + b"0" * (2 << 20), 0)
        load_source(f"{base}/big.png", max_download=1 << 20)


def test_url_connection_refused():
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(SourceError, match="connection refused"):
        load_source(f"http://127.0.0.1:{port}/x.png", timeout=2)


def test_to_pixels_modes():
    values = np.array([[-1.0, 0.0, 0.5, 1.0, 3.0]])
    pixels, mapping = to_pixels(values, scale="clip")
    assert pixels.tolist() == [[0, 0, 128, 255, 255]] and mapping.clipped == 2
    pixels, mapping = to_pixels(values, scale="minmax")
    assert pixels.tolist() == [[0, 64, 96, 128, 255]] and mapping.clipped == 0
    pixels, _ = to_pixels(values, scale="abs")
    assert pixels.tolist() == [[85, 0, 42, 85, 255]]
    pixels, mapping = to_pixels(values + 0.5)  # auto: outside [0, 1], 1 of 5 values negative -> minmax
    assert mapping.scale == "minmax"
    pixels, mapping = to_pixels(values)  # auto: a centred signed result (1 of 4 non-zero values negative)
    assert mapping.scale == "percentile:99.5" and (mapping.low, mapping.high) == (-3.0, 3.0)  # 5 values: the max
    assert pixels.tolist() == [[85, 128, 149, 170, 255]]  # 0 is mid-grey: 127.5 rounds to even
    pixels, mapping = to_pixels(np.array([[0.0, 0.25, 1.0]]))  # auto inside [0, 1] -> clip, identity mapping
    assert mapping.scale == "clip" and pixels.tolist() == [[0, 64, 255]]
    pixels, mapping = to_pixels(np.array([[0.0, 0.005, 0.02]]), vmin=0, vmax=0.01)  # the tutorial's display
    assert pixels.tolist() == [[0, 128, 255]] and mapping.clipped == 1
    pixels, _ = to_pixels(np.array([[0.0, 1.0]]), depth=16)
    assert pixels.dtype == np.uint16 and pixels.tolist() == [[0, 65535]]


def test_encode_round_trips(tmp_path):
    values = np.array([[0.0, 0.25], [0.5, 1.0]])
    for fmt in ("npy", "txt", "csv", "tiff"):
        data, mapping = encode(values, fmt)
        assert mapping is None
        path = tmp_path / f"out.{fmt}"
        path.write_bytes(data)
        np.testing.assert_allclose(load_source(str(path)).array, values)
    data, _ = encode(values, "png", depth=16)
    with Image.open(io.BytesIO(data)) as image:
        assert np.asarray(image).tolist() == [[0, 16384], [32768, 65535]]
    with pytest.raises(OutputUsageError, match="JPEG holds 8-bit"):
        encode(values, "jpeg", depth=16)
    rgb = np.zeros((1, 1, 3))
    rgb[0, 0] = (1.0, 0.5, 0.0)
    data, _ = encode(rgb, "png", depth=16)
    decoded = load_bytes(data, color=True).array
    np.testing.assert_allclose(decoded[0, 0], [1.0, 32768 / 65535, 0], rtol=1e-6)


def test_text_output_is_exact_and_short():
    data, _ = encode(np.array([[19.0, 25.0], [37.0, 43.0]]), "txt")
    assert data == b"19 25\n37 43\n"
    data, _ = encode(np.array([[0.1, -0.0, 1e-20]]), "csv")
    assert data == b"0.1,0,1e-20\n"


def test_write_atomic_leaves_no_partial_files(tmp_path):
    target = tmp_path / "out.png"
    write_atomic(target, b"abc")
    assert target.read_bytes() == b"abc"
    write_atomic(target, b"new")
    assert target.read_bytes() == b"new"
    assert sorted(os.listdir(tmp_path)) == ["out.png"]
