"""A TIFF result goes from the array straight into the file (io.rowwriters.write_tiff): tifffile.imwrite's bytes."""

from __future__ import annotations

import errno
import io
import os

import numpy as np
import pytest
import tifffile

from conftest import assert_error, run_cli
from convcli.api.files import save_file
from convcli.api.settings import WriteSettings
from convcli.errors import OutputError
from convcli.io import rowwriters
from convcli.io.rowwriters import write_tiff


def imwrite_bytes(values: np.ndarray) -> bytes:
    """What the in-memory encoder wrote: tifffile.imwrite of the float32 values into memory."""
    buffer = io.BytesIO()
    raw = np.ascontiguousarray(values, dtype=np.float32)
    tifffile.imwrite(buffer, raw, photometric="rgb" if values.ndim == 3 else "minisblack")
    return buffer.getvalue()


@pytest.mark.parametrize(
    "values",
    [
        np.random.default_rng(0).standard_normal((37, 53)).astype(np.float32),
        np.random.default_rng(1).standard_normal((20, 9)),  # float64: narrowed to float32, as before
        np.random.default_rng(2).random((11, 7, 3), dtype=np.float32),  # --color
        np.asfortranarray(np.arange(12.0).reshape(3, 4)),  # not C-contiguous
    ],
)
def test_the_file_is_tifffile_imwrites_bytes(tmp_path, values):
    target = tmp_path / "out.tif"
    assert save_file(values, str(target), WriteSettings()) == ("tiff", None)
    assert target.read_bytes() == imwrite_bytes(values)
    assert np.array_equal(tifffile.imread(target), values.astype(np.float32))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.tif"]  # no temporary left


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path, monkeypatch):
    target = tmp_path / "out.tif"
    target.write_bytes(b"old output")

    def full(self, rows):  # noqa: ANN001
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(rowwriters.TiffRowsWriter, "write", full)
    with pytest.raises(OutputError, match="cannot write .*out.tif': No space left on device"):
        write_tiff(str(target), np.zeros((4, 4), np.float32))
    assert target.read_bytes() == b"old output"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.tif"]


def test_an_interrupted_write_leaves_no_temporary(tmp_path, monkeypatch):
    def interrupted(self, rows):  # noqa: ANN001
        raise KeyboardInterrupt

    monkeypatch.setattr(rowwriters.TiffRowsWriter, "write", interrupted)
    with pytest.raises(KeyboardInterrupt):
        write_tiff(str(tmp_path / "out.tif"), np.zeros((4, 4), np.float32))
    assert list(tmp_path.iterdir()) == []


def test_the_command_line_writes_tiffs_to_files_devices_and_stdout(tmp_path):
    source = tmp_path / "x.txt"
    source.write_text("0 1 2\n3 4 5\n6 7 8\n")
    run = run_cli(["filter", source, "-k", "0 1; 2 3", "-o", tmp_path / "r.tif"])
    assert run.exit_code == 0, run.output
    assert np.array_equal(tifffile.imread(tmp_path / "r.tif"), [[19, 25], [37, 43]])
    assert run_cli(["filter", source, "-k", "0 1; 2 3", "-o", "/dev/null", "--format", "tiff"]).exit_code == 0
    piped = run_cli(["filter", source, "-k", "0 1; 2 3", "-o", "-", "--format", "tiff"])
    assert piped.exit_code == 0 and piped.stdout_bytes == imwrite_bytes(np.array([[19.0, 25], [37, 43]]))


def test_an_unwritable_folder_is_one_line(tmp_path):
    source = tmp_path / "x.txt"
    source.write_text("1 2\n3 4\n")
    target = "/sys/convcli-out.tif"  # read-only even for root
    if not os.path.isdir("/sys"):
        pytest.skip("no /sys")
    run = run_cli(["filter", source, "-k", "1", "-o", target])
    assert_error(run, 1, "cannot write '/sys/convcli-out.tif'")
    assert not os.path.exists(target)
