"""Fuzzing the parsers and decoders with hypothesis, and replaying the inputs it found (tests/regressions/).

The only outcomes allowed: a valid result, or a ConvcliError whose message is one line; on the
command line, exit 0, or exit 1 or 2 with one line on stderr and no traceback.

``CONVCLI_FUZZ_EXAMPLES=2000 pytest tests/test_fuzz.py`` fuzzes longer. Each input that once broke
something is kept in ``tests/regressions/<target>/`` and replayed by ``test_regressions``.
"""

from __future__ import annotations

import io
import math
import os
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from conftest import run_cli
from convcli.errors import ConvcliError
from convcli.io import classify_source, decode
from convcli.kernels import load_kernel_file, parse_kernel_spec
from convcli.matrices import format_matrix, parse_matrix
from convcli.shapes import parse_pair

REGRESSIONS = Path(__file__).resolve().parent / "regressions"
EXAMPLES = int(os.environ.get("CONVCLI_FUZZ_EXAMPLES", "60"))
FUZZ = settings(
    max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)


def _one_line(error: Exception) -> None:
    text = str(error)
    assert text and "\n" not in text and "\r" not in text, repr(text)
    assert "Traceback" not in text


# ---------------------------------------------------------------------------
# Checkers: one per target, shared by the fuzz tests and the regression replay


def check_pair(text: str) -> None:
    for minimum in (0, 1):
        try:
            pair = parse_pair(text, "stride", minimum)
        except ConvcliError as error:
            _one_line(error)
            continue
        assert isinstance(pair, tuple) and len(pair) == 2
        assert all(isinstance(v, int) and v >= minimum for v in pair)


def check_kernel_spec(text: str) -> None:
    try:
        kernel = parse_kernel_spec(text)
    except ConvcliError as error:
        _one_line(error)
        return
    weights = kernel.weights
    assert weights.ndim == 2 and weights.size > 0 and max(weights.shape) <= 4096
    assert np.all(np.isfinite(weights)) and not weights.flags.writeable
    assert kernel.name and "/" not in kernel.name


def check_kernel_file(data: bytes, suffix: str) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"k{suffix}"
        path.write_bytes(data)
        try:
            weights = load_kernel_file(path)
        except ConvcliError as error:
            _one_line(error)
            return
    assert weights.ndim == 2 and weights.size > 0 and np.all(np.isfinite(weights))


def check_matrix(text: str) -> None:
    try:
        array = parse_matrix(text)
    except ConvcliError as error:
        _one_line(error)
        return
    assert array.ndim == 2 and array.size > 0 and np.all(np.isfinite(array))
    # What convcli writes it reads back exactly.
    np.testing.assert_array_equal(parse_matrix(format_matrix(array)), array)


def check_image(data: bytes, name: str = "-") -> None:
    source = classify_source(name)
    for options in ({}, {"color": True, "frame": 1}, {"max_pixels": 64, "normalize_method": "max"}):
        try:
            loaded = decode(data, source, **options)
        except ConvcliError as error:
            _one_line(error)
            continue
        array = loaded.array
        assert array.ndim in (2, 3) and array.size > 0
        assert np.all(np.isfinite(array)), loaded.detail
        assert "\n" not in loaded.detail and all("\n" not in note for note in loaded.notes)


def check_cli_stdin(data: bytes) -> None:
    run = run_cli(["filter", "-", "-k", "0 1; 2 3", "-o", "-", "--format", "npy"], input=data)
    assert run.exception is None, run
    assert "Traceback" not in run.stderr, run
    if run.exit_code == 0:
        result = np.load(io.BytesIO(run.stdout_bytes), allow_pickle=False)
        assert result.ndim in (2, 3)
    else:
        assert run.exit_code in (1, 2), run
        assert len(run.stderr.strip().splitlines()) == 1, run


# ---------------------------------------------------------------------------
# Strategies

PAIR_TEXT = st.one_of(
    st.text(max_size=30),
    st.from_regex(r"\A\s*-?[0-9٣]{1,25}\s*([xX×,]\s*-?[0-9]{1,25}\s*)?\Z"),
    st.integers(min_value=0, max_value=6000).map(lambda n: "9" * n),
    st.builds(lambda a, b: f"{a}x{b}", st.integers(-5, 10**40), st.integers(-5, 10**40)),
)

SPEC_ALPHABET = "0123456789 .,;:xe+-\t\nEinfa/"
NAMES = ["gaussian", "blur", "identity", "laplacian", "diff-x", "diff-y", "edge", "sobel-x", "sharpen", "vertical"]
KERNEL_SPEC = st.one_of(
    st.text(alphabet=SPEC_ALPHABET, max_size=40),
    st.text(max_size=20),
    st.builds(
        lambda name, params: ":".join([name, *params]),
        st.sampled_from(NAMES),
        st.lists(st.text(alphabet="0123456789.x,-e", max_size=6), max_size=3),
    ),
    st.builds(
        lambda w, h, values: f"{w}x{h}: " + ",".join(values),
        st.integers(0, 6),
        st.integers(0, 6),
        st.lists(st.sampled_from(["1", "-2.5", "0", "nan", "inf", "1e400", "x", ""]), max_size=40),
    ),
)

MATRIX_TEXT = st.one_of(
    st.text(max_size=60),
    st.text(alphabet="0123456789 .,;#\n-+eE\tnaif", max_size=80),
    st.lists(
        st.lists(st.floats(allow_nan=False, allow_infinity=False, width=64), min_size=1, max_size=5),
        min_size=1,
        max_size=5,
    ).map(lambda rows: "\n".join(" ".join(repr(v) for v in row) for row in rows)),
)


def _seed_files() -> list[bytes]:
    """Small valid files of every format convcli reads, to be mutated."""
    import tifffile

    seeds = []
    gray = (np.arange(48, dtype=np.uint8) * 5).reshape(6, 8)
    for image, fmt in (
        (Image.fromarray(gray), "PNG"),
        (Image.fromarray(np.stack([gray] * 3, axis=2)), "JPEG"),
        (Image.fromarray(gray).convert("P"), "GIF"),
        (Image.fromarray(gray), "BMP"),
        (Image.fromarray(gray), "WEBP"),
        (Image.fromarray(np.stack([gray] * 4, axis=2)), "PNG"),
        (Image.fromarray(gray.astype(np.uint16) * 257), "PNG"),
    ):
        buffer = io.BytesIO()
        image.save(buffer, fmt)
        seeds.append(buffer.getvalue())
    for array in (gray, gray.astype(np.float32) / 7, np.stack([gray] * 3)):
        buffer = io.BytesIO()
        tifffile.imwrite(buffer, array, photometric="minisblack")
        seeds.append(buffer.getvalue())
    buffer = io.BytesIO()
    np.save(buffer, gray.astype(np.float64))
    seeds.append(buffer.getvalue())
    seeds.append(b"0 1 2\n3 4 5\n")
    return seeds


SEEDS = _seed_files()


@st.composite
def mutated_file(draw) -> bytes:
    data = bytearray(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(0, 6))):
        position = draw(st.integers(0, len(data) - 1))
        data[position] = draw(st.integers(0, 255))
    if draw(st.booleans()):
        data = data[: draw(st.integers(0, len(data)))]
    if draw(st.booleans()):
        position = draw(st.integers(0, len(data)))
        data[position:position] = draw(st.binary(max_size=16))
    return bytes(data)


IMAGE_BYTES = st.one_of(st.binary(max_size=200), mutated_file())


# ---------------------------------------------------------------------------
# Fuzz tests


@FUZZ
@given(PAIR_TEXT)
def test_fuzz_parse_pair(text):
    check_pair(text)


@FUZZ
@given(KERNEL_SPEC)
def test_fuzz_kernel_specs(text):
    check_kernel_spec(text)


@FUZZ
@given(st.one_of(st.binary(max_size=200), mutated_file()), st.sampled_from([".txt", ".csv", ".npy", ".kernel"]))
def test_fuzz_kernel_files(data, suffix):
    check_kernel_file(data, suffix)


@FUZZ
@given(MATRIX_TEXT)
def test_fuzz_text_matrices(text):
    check_matrix(text)


@FUZZ
@given(IMAGE_BYTES, st.sampled_from(["-", "x.png", "x.jpg", "x.tif", "x.npy", "x.txt", "x"]))
def test_fuzz_image_bytes(data, name):
    check_image(data, name)


@settings(max_examples=max(20, EXAMPLES // 2), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(IMAGE_BYTES)
def test_fuzz_cli_stdin(data):
    check_cli_stdin(data)


def small_or_refused(text: str) -> bool:
    """Keep geometry texts that parse to at most 64 per axis, or that the tool must refuse.

    Values between 65 and the 2**24 limit are valid and make outputs of millions of numbers written as
    text (minutes per example); they say nothing more about parsing than 64 does.
    """
    from convcli.limits import MAX_GEOMETRY

    try:
        pair = parse_pair(text, "value", minimum=0)
    except ConvcliError:
        return True
    return max(pair) <= 64 or max(pair) > MAX_GEOMETRY


@settings(max_examples=max(20, EXAMPLES // 2), deadline=None)
@given(
    st.lists(st.sampled_from(["-s", "-p", "-d"]), min_size=1, max_size=3),
    st.lists(PAIR_TEXT.filter(small_or_refused), min_size=3, max_size=3),
)
def test_fuzz_cli_geometry(flags, values):
    args = ["filter", "-", "-k", "0 1; 2 3", "-o", "-"]
    for flag, value in zip(flags, values):
        args += [flag, value]
    run = run_cli(args, input=b"0 1 2 3\n4 5 6 7\n8 9 10 11\n")
    assert run.exception is None, run
    if run.exit_code:
        assert run.exit_code in (1, 2) and len(run.stderr.strip().splitlines()) == 1, run
    else:
        rows = run.stdout.strip().splitlines()
        assert rows and all(math.isfinite(float(v)) for row in rows for v in row.split())


LAYER_TEXT = st.one_of(
    st.text(max_size=40),
    st.builds(
        lambda kind, pairs: kind + ":" + ",".join(f"{key}={value}" for key, value in pairs),
        st.sampled_from(["conv", "pool", "transpose", "Conv", "dense", ""]),
        st.lists(st.tuples(st.sampled_from(["k", "s", "p", "d", "op", "ceil", "x", ""]), PAIR_TEXT), max_size=5),
    ),
)


@FUZZ
@given(st.lists(LAYER_TEXT, min_size=1, max_size=4), PAIR_TEXT)
def test_fuzz_layer_stacks(layers, size):
    """Layer specs and layer files: a table of sizes or a ConvcliError, nothing else; the CLI: exit 0, or 2 in one line."""
    from convcli.teach.layers import parse_layer, parse_layer_file
    from convcli.teach.stacks import run_stack

    try:
        parsed = [parse_layer(text) for text in layers]
        from_file = parse_layer_file("\n".join(layers) + "\n# comment\n")
        assert [layer.spec for layer in from_file] == [layer.spec for layer in parsed]
        run_stack(parsed, parse_pair(size))
    except ConvcliError:
        pass
    run = run_cli(["shape", "--input", size, *layers])
    assert run.exception is None, run
    if run.exit_code:
        assert run.exit_code == 2 and len(run.stderr.strip().splitlines()) == 1, run


# ---------------------------------------------------------------------------
# Regressions: every file under tests/regressions/<target>/ is replayed


def _regression_cases() -> list[tuple[str, Path]]:
    if not REGRESSIONS.is_dir():
        return []
    return sorted(
        (folder.name, path) for folder in REGRESSIONS.iterdir() if folder.is_dir() for path in folder.iterdir()
    )


@pytest.mark.parametrize(("target", "path"), _regression_cases(), ids=lambda v: v.name if isinstance(v, Path) else v)
def test_regressions(target, path):
    data = path.read_bytes()
    if target == "pair":
        check_pair(data.decode("utf-8"))
    elif target == "kernel-spec":
        check_kernel_spec(data.decode("utf-8"))
    elif target == "kernel-file":
        check_kernel_file(data, path.suffix)
    elif target == "matrix":
        check_matrix(data.decode("utf-8"))
    elif target == "image":
        check_image(data, "-")
        check_image(data, "x" + path.suffix)
        check_cli_stdin(data)
    else:
        pytest.fail(f"unknown regression target folder {target!r}")


def test_there_are_regression_cases_for_every_target():
    targets = {target for target, _ in _regression_cases()}
    assert targets >= {"pair", "kernel-spec", "kernel-file", "matrix", "image"}
