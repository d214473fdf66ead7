"""libvips .mat kernel files: reading (scale, offset, strict header), writing, and the real vips conv."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

import convcli
from conftest import assert_error
from convcli.errors import KernelError
from convcli.kernels import (
    Kernel,
    kernel_file_bytes,
    load_kernel_file,
    parse_kernel_spec,
    parse_vips_matrix,
    read_kernel_file,
    write_kernel_file,
)

VIPS = shutil.which("vips")
needs_vips = pytest.mark.skipif(
    VIPS is None, reason="libvips' command-line tools are not installed (apt: libvips-tools)"
)


def test_header_scale_and_offset_are_applied_as_vips_does():
    m = parse_vips_matrix("3 1 4 10\n1 2 3\n")
    assert m.rows.tolist() == [[1, 2, 3]]
    assert (m.scale, m.offset) == (4.0, 10.0)
    assert m.weights.tolist() == [[0.25, 0.5, 0.75]]
    assert parse_vips_matrix("2 2\n1 2\n3 4\n").weights.tolist() == [[1, 2], [3, 4]]  # scale 1, offset 0
    assert parse_vips_matrix("1 1 -2\n3\n").weights.tolist() == [[-1.5]]  # a negative scale is allowed
    # Tabs, commas, CRLF line ends, comments and blank lines are accepted.
    m = parse_vips_matrix("3\t2\t2\t0.5\r\n1,2,3\r\n\r\n# a comment\r\n4 5 6 # trailing\r\n")
    assert m.weights.tolist() == [[0.5, 1, 1.5], [2, 2.5, 3]] and m.offset == 0.5


def test_a_four_wide_mat_file_is_no_longer_read_as_a_grid(tmp_path):
    # The case: "4 2 1 0" would have been the first row of a 4-wide kernel.
    path = tmp_path / "k.mat"
    path.write_text("4 2 2 1\n1 2 3 4\n5 6 7 8\n")
    kernel = parse_kernel_spec(str(path))
    assert kernel.weights.tolist() == [[0.5, 1, 1.5, 2], [2.5, 3, 3.5, 4]]
    assert kernel.offset == 1.0
    assert "offset 1" in kernel.description
    assert load_kernel_file(path).tolist() == kernel.weights.tolist()
    weights, offset = read_kernel_file(path)
    assert (weights.tolist(), offset) == (kernel.weights.tolist(), 1.0)
    assert Kernel("x", np.ones((1, 1))).offset == 0.0
    assert parse_kernel_spec("sobel-x").offset == 0.0


@pytest.mark.parametrize(
    ("text", "fragments"),
    [
        ("", ["is empty", "width height [scale [offset]]"]),
        ("3\n1 2 3\n", ["header '3' has 1 fields", "width height [scale [offset]]"]),
        ("3 1 1 0 7\n1 2 3\n", ["header '3 1 1 0 7' has 5 fields"]),
        ("3 one\n1 2 3\n", ["header '3 one' is not numbers"]),
        ("3.5 1\n1 2 3\n", ["header '3.5 1' gives width 3.5", "whole number from 1 to 4096"]),
        ("3 0\n", ["header '3 0' gives height 0"]),
        ("5000 1\n1\n", ["gives width 5000"]),
        ("3 1 0 0\n1 2 3\n", ["header '3 1 0 0' has scale 0", "non-zero"]),
        ("3 1 inf\n1 2 3\n", ["header '3 1 inf' holds a number that is not finite"]),
        ("3 2\n1 2 3\n4 5\n", ["line 3: row 2 has 2 values but header '3 2' says width 3"]),
        ("3 1\n1 2 3 4\n", ["line 2: row 1 has 4 values but header '3 1' says width 3"]),
        ("3 1\n1 2 3\n4 5 6\n", ["header '3 1' says 1 row but line 3 holds another"]),
        ("3 3 1 0\n1 2 3\n", ["header '3 3 1 0' says 3 rows but the file has 1"]),
        ("2 1\n1 x\n", ["line 2: 'x' is not a number"]),
    ],
)
def test_bad_headers_are_refused_naming_the_header(text, fragments):
    with pytest.raises(KernelError) as error:
        parse_vips_matrix(text, "kernel file 'k.mat'")
    message = str(error.value)
    assert message.startswith("kernel file 'k.mat'")
    assert "\n" not in message
    for fragment in fragments:
        assert fragment in message


def test_a_matlab_file_is_refused(tmp_path, cli):
    path = tmp_path / "k.mat"
    path.write_bytes(b"MATLAB 5.0 MAT-file\x00\xff\xfe\x00\x01")
    with pytest.raises(KernelError, match="not a MATLAB file"):
        parse_kernel_spec(str(path))
    assert_error(cli(["kernels", "show", str(path)]), 2, "not a MATLAB file")
    path.write_text("3 2\n1 2 3\n")
    assert_error(cli(["kernels", "show", str(path)]), 2, "header '3 2' says 2 rows but the file has 1")


@pytest.mark.parametrize("suffix", [".mat", ".txt", ".csv", ".npy", ".kernel"])
def test_written_files_read_back_as_the_same_kernel(tmp_path, suffix):
    rows = np.array([[1.0, 2.0, 1.0], [2.0, 4.0, 2.0]])
    path = write_kernel_file(tmp_path / f"k{suffix}", rows, scale=16)
    assert load_kernel_file(path).tolist() == (rows / 16).tolist()
    kernel = parse_kernel_spec(str(path))
    assert kernel.weights.tolist() == (rows / 16).tolist()
    # A Kernel is written as the kernel it is (a .mat gets weights * scale as rows).
    again = write_kernel_file(tmp_path / f"again{suffix}", kernel, scale=16)
    assert parse_kernel_spec(str(again)).weights.tolist() == kernel.weights.tolist()
    assert not list(tmp_path.glob(".*.tmp"))


def test_mat_writer_keeps_scale_offset_and_comments(tmp_path):
    data = kernel_file_bytes([[1, 2, 1]], ".mat", scale=4, offset=128, comments=("made by a test",))
    assert data == b"3 1 4 128\n1 2 1\n# made by a test\n"
    path = tmp_path / "k.mat"
    path.write_bytes(data)
    kernel = parse_kernel_spec(str(path))
    assert (kernel.weights.tolist(), kernel.offset) == ([[0.25, 0.5, 0.25]], 128.0)
    # The Kernel's offset is the default offset of what it is written to.
    assert kernel_file_bytes(kernel, ".mat").startswith(b"3 1 1 128\n")
    assert kernel_file_bytes([[1, -1]], ".txt", comments=("a", "b")) == b"# a\n# b\n1 -1\n"
    assert kernel_file_bytes([[1, -1], [2, 0.5]], ".kernel") == b"2x2: 1, -1, 2, 0.5\n"


@pytest.mark.parametrize(
    ("call", "fragment"),
    [
        (lambda: kernel_file_bytes([[1]], ".png"), "cannot write a kernel as '.png'"),
        (lambda: kernel_file_bytes([[1]], ""), "a file without suffix"),
        (lambda: kernel_file_bytes([[1]], ".txt", offset=3), "a .txt kernel file has no offset"),
        (lambda: kernel_file_bytes([[1]], ".mat", scale=0), "scale 0 must be a finite, non-zero number"),
        (lambda: kernel_file_bytes([[np.nan]], ".mat"), "NaN or infinity"),
        (lambda: write_kernel_file("/nonexistent-dir/k.mat", [[1]]), "cannot write kernel file"),
    ],
)
def test_writer_refusals(call, fragment):
    with pytest.raises(KernelError, match=fragment.replace(".", r"\.").replace("(", r"\(")):
        call()


# ---------------------------------------------------------------------------
# Against the real vips


def _vips(*args: str) -> None:
    assert VIPS is not None
    subprocess.run([VIPS, *args], check=True, capture_output=True, timeout=60)


def _vips_image(path: Path, array: np.ndarray) -> Path:
    """A double image for vips from a .mat file written by convcli's own writer."""
    mat = path.with_suffix(".mat")
    write_kernel_file(mat, array)
    image = path.with_suffix(".v")
    _vips("matrixload", str(mat), str(image))
    return image


def _read_csv(path: Path) -> np.ndarray:
    return np.array([[float(v) for v in line.split("\t") if v.strip()] for line in path.read_text().splitlines()])


@needs_vips
@pytest.mark.parametrize(
    ("rows", "scale", "offset"),
    [
        ([[1, 2, 3], [4, 5, 6], [7, 8, 9]], 1, 0),
        ([[1, 2, 3], [4, 5, 6], [7, 8, 9]], 4, 10),
        ([[1, 0, 0]], -2, 0.5),
        ([[0, -1, 0], [-1, 4, -1], [0, -1, 0]], 0.5, 100),
        ([[1, 2, 3, 2, 1]], 9, 0),
        ([[1], [-2], [3]], 3, -7),
    ],
)
def test_vips_conv_equals_convcli(tmp_path, rows, scale, offset):
    """``vips conv in out mask.mat --precision float`` is correlation with rows/scale, replicated edges, plus offset."""
    rng = np.random.default_rng(7)
    image = rng.uniform(-50, 50, size=(7, 9)).round(3)
    source = _vips_image(tmp_path / "in", image)
    mask = write_kernel_file(tmp_path / "mask.mat", rows, scale=scale, offset=offset)
    _vips("conv", str(source), str(tmp_path / "out.v"), str(mask), "--precision", "float")
    _vips("csvsave", str(tmp_path / "out.v"), str(tmp_path / "out.csv"))
    theirs = _read_csv(tmp_path / "out.csv")
    kernel = parse_kernel_spec(str(mask))
    assert kernel.offset == offset
    # The weights as an array (no offset attached), and the offset added here, as filter's bias will add it.
    ours = convcli.filter(image, np.asarray(kernel.weights), padding="same", pad_mode="replicate") + kernel.offset
    np.testing.assert_allclose(ours, theirs, rtol=1e-9, atol=1e-9)
    if np.any(kernel.weights != kernel.weights[::-1, ::-1]):
        flipped = convcli.filter(image, np.asarray(kernel.weights), padding="same", pad_mode="replicate", convolve=True)
        assert np.max(np.abs(flipped + kernel.offset - theirs)) > 1e-3  # vips does not flip


@needs_vips
def test_vips_reads_what_convcli_writes_and_refuses_what_it_refuses(tmp_path):
    # The sniffing quirk: "3 1" then "1 0 0" is not recognised as a matrix by vips 8.14 when given by name;
    # convcli always writes the four header fields, which vips recognises.
    short = tmp_path / "short.mat"
    short.write_text("3 1\n1 0 0\n")
    source = _vips_image(tmp_path / "in", np.zeros((3, 3)))
    quirk = subprocess.run(
        [VIPS, "conv", str(source), str(tmp_path / "o.v"), str(short)], capture_output=True, text=True, timeout=60
    )
    ours = write_kernel_file(tmp_path / "ours.mat", [[1, 0, 0]])
    _vips("conv", str(source), str(tmp_path / "o.v"), str(ours))
    if quirk.returncode == 0:
        pytest.skip("this libvips recognises two-field headers by name (the 8.14 quirk is fixed)")
    assert "not a known file format" in quirk.stderr
    # Scale 0 is refused by vips as by convcli.
    zero = tmp_path / "zero.mat"
    zero.write_text("1 1 0 0\n1\n")
    refused = subprocess.run([VIPS, "matrixload", str(zero), str(tmp_path / "z.v")], capture_output=True, text=True)
    assert refused.returncode != 0 and "zero scale" in refused.stderr
    with pytest.raises(KernelError, match="scale 0"):
        parse_kernel_spec(str(zero))


@needs_vips
def test_vips_even_masks_anchor_top_left(tmp_path):
    """Documented in kernels.vips: an even mask's extra row and column lie above and left (ndimage's placement)."""
    impulse = np.zeros((5, 5))
    impulse[2, 2] = 1
    source = _vips_image(tmp_path / "in", impulse)
    mask = write_kernel_file(tmp_path / "m.mat", [[1, 2], [3, 4]])
    _vips("conv", str(source), str(tmp_path / "o.v"), str(mask), "--precision", "float")
    _vips("csvsave", str(tmp_path / "o.v"), str(tmp_path / "o.csv"))
    out = _read_csv(tmp_path / "o.csv")
    assert out[2, 2] == 4 and out[3, 3] == 1 and out.sum() == 10
    # convcli's 'same' puts the extra row/column bottom/right (PyTorch): the response sits one step up-left.
    ours = convcli.filter(impulse, [[1, 2], [3, 4]], padding="same")
    assert ours[1, 1] == 4 and ours[2, 2] == 1
    np.testing.assert_array_equal(ours[:-1, :-1], out[1:, 1:])


def test_filter_adds_the_offset_of_a_mat_kernel(tmp_path):
    """out = sum / scale + offset, as vips conv computes it, through convcli.filter and the command."""
    import numpy as np

    import convcli
    from conftest import run_cli

    mat = tmp_path / "k.mat"
    mat.write_text("2 1 4 10\n1 3\n")
    image = np.arange(12.0).reshape(3, 4)
    want = (image[:, :-1] * 1 + image[:, 1:] * 3) / 4 + 10
    np.testing.assert_allclose(convcli.filter(image, str(mat)), want)
    np.testing.assert_allclose(convcli.filter(image, str(mat), bias=1.0), want + 1)
    np.save(tmp_path / "x.npy", image)
    run = run_cli(["filter", tmp_path / "x.npy", "-k", mat, "-o", tmp_path / "o.npy"])
    assert run.exit_code == 0, run
    np.testing.assert_allclose(np.load(tmp_path / "o.npy"), want)
    np.testing.assert_allclose(convcli.upsample(np.ones((1, 1)), str(mat), stride=1), [[0.25 + 10, 0.75 + 10]])


def test_learn_writes_a_mat_kernel_that_filter_reads_back(tmp_path):
    import numpy as np

    from conftest import run_cli

    source = Path(__file__).resolve().parent.parent / "samples" / "edges.txt"
    target = tmp_path / "target.npy"
    assert run_cli(["filter", source, "-k", "1 -1", "--bias", "0.5", "-o", target]).exit_code == 0
    learned = tmp_path / "k.mat"
    run = run_cli(["learn", source, target, "--solver", "lstsq", "--bias", "-o", learned])
    assert run.exit_code == 0, run
    header = learned.read_text().splitlines()[0].split()
    assert header[:2] == ["2", "1"] and float(header[3]) == pytest.approx(0.5)
    again = tmp_path / "again.npy"
    assert run_cli(["filter", source, "-k", learned, "-o", again]).exit_code == 0
    np.testing.assert_allclose(np.load(again), np.load(target), atol=1e-9)
