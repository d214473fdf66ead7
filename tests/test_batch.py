"""Batches: globs, source lists, output names, clashes, the process pool, failures, progress and summary."""

from __future__ import annotations

import io
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import SAMPLES, assert_error, run_cli
from convcli.cli import batching, reports
from convcli.errors import OutputUsageError, ParameterError, SourceError
from convcli.run.batch import (
    Item,
    check_unique,
    default_extension,
    expand_sources,
    output_name,
    read_source_file,
    read_source_list,
    run_items,
)


@pytest.fixture
def photos(tmp_path: Path) -> Path:
    """photos/ with images at three depths, a text file, and a folder named like an image."""
    root = tmp_path / "photos"
    (root / "a" / "b").mkdir(parents=True)
    shutil.copy(SAMPLES / "camera.png", root / "camera.png")
    shutil.copy(SAMPLES / "chelsea.png", root / "a" / "chelsea.png")
    shutil.copy(SAMPLES / "coffee.png", root / "a" / "b" / "coffee.png")
    (root / "notes.txt").write_text("1 2\n3 4\n")
    (root / "folder.png").mkdir()
    return root


# ---------------------------------------------------------------------------
# Pure helpers


def test_recursive_glob_matches_an_independent_walk(photos):
    expected = sorted(
        os.path.join(folder, name) for folder, _, names in os.walk(photos) for name in names if name.endswith(".png")
    )
    assert expand_sources([f"{photos}/**/*.png"]) == expected
    assert expand_sources([f"{photos}/*.png"]) == [str(photos / "camera.png")]  # one level; the folder is skipped


def test_plain_sources_stdin_urls_and_existing_odd_names_are_kept(tmp_path):
    odd = tmp_path / "odd[1].png"
    odd.write_bytes(b"x")
    sources = ["-", "https://example.invalid/*.png", str(odd), "missing.png"]
    assert expand_sources(sources) == sources


def test_a_pattern_without_matches_is_an_error(tmp_path):
    with pytest.raises(SourceError, match="no file matches"):
        expand_sources([f"{tmp_path}/*.jpg"])


def test_source_lists():
    assert read_source_list("a.png\r\n\n  # comment\n b c.png \n") == ["a.png", "b c.png"]
    assert read_source_file("-", io.StringIO("x.png\ny.png\n")) == ["x.png", "y.png"]
    with pytest.raises(SourceError, match="does not exist"):
        read_source_file("no-such-list.txt")


def test_output_names():
    assert output_name("{stem}-{kernel}.{ext}", stem="cat", kernel="gaussian-9", ext="png", index=3) == (
        "cat-gaussian-9.png"
    )
    assert output_name("{index:04d}.{ext}", stem="s", kernel="k", ext="npy", index=12) == "0012.npy"
    with pytest.raises(ParameterError, match=r"uses \{size\}; the fields are"):
        output_name("{size}.png", stem="s", kernel="k", ext="png", index=1)
    with pytest.raises(ParameterError, match="not a valid template"):
        output_name("{stem.png", stem="s", kernel="k", ext="png", index=1)
    assert [default_extension(s, None) for s in ("a.jpg", "a.npy", "a.csv", "a.TXT", "-")] == [
        "png",
        "npy",
        "csv",
        "txt",
        "png",
    ]
    assert default_extension("-", None, stdin_is_array=True) == "txt"
    assert default_extension("a.png", "tiff") == "tif"


def test_two_outputs_with_one_path_are_refused(tmp_path):
    check_unique([(str(tmp_path / "a.png"), "x"), ("-", "y"), ("-", "z")])
    with pytest.raises(OutputUsageError, match="from 'p/a.jpg' and 'q/a.jpg'"):
        check_unique([("out/a.png", "p/a.jpg"), ("out/./a.png", "q/a.jpg")])


def square(item: Item) -> int:
    """A worker for the pool tests (module level, so it can go to another process)."""
    if item.source == "bad":
        raise SourceError("bad source")
    return int(item.source) ** 2


def test_pool_gives_the_serial_results_in_input_order():
    items = [Item(i, str(i), ()) for i in range(1, 9)]
    serial = [(o.item.index, o.value) for o in run_items(items, square, jobs=1)]
    parallel = [(o.item.index, o.value) for o in run_items(items, square, jobs=2)]
    assert serial == parallel == [(i, i * i) for i in range(1, 9)]


def pool_limit(item: Item) -> tuple[int | None, int]:
    """A worker reporting the engine threads its process may run at once, and the cores it sees."""
    from convcli import parallel

    return parallel._POOL_LIMIT, os.cpu_count() or 1


def test_workers_share_the_cores_between_them():
    # --jobs 2 on this machine: each worker runs at most cores // 2 engine threads (the parent is not limited).
    from convcli import parallel
    from convcli.run.batch import default_jobs

    items = [Item(i, str(i), ()) for i in range(1, 5)]
    limits = {o.value[0] for o in run_items(items, pool_limit, jobs=2)}
    assert limits == {max(1, default_jobs() // 2)} and parallel._POOL_LIMIT is None


def test_a_limited_pool_cuts_the_same_tasks_and_gives_the_same_bytes(monkeypatch):
    # The cut follows workers() (CONVCLI_THREADS), not the limit: an FFT's tiles, box strips and PNG parts
    # give the same bytes whether 1 or all of the threads run them; with a limit of 1 every task runs here.
    from convcli import parallel
    from convcli.engine import correlate2d
    from convcli.io.png import png_bytes

    monkeypatch.setenv("CONVCLI_THREADS", "4")
    rng = np.random.default_rng(3)
    image = rng.random((700, 900), dtype=np.float32)
    kernels = [(rng.random((15, 15)), "fft"), (np.full((9, 9), 1 / 81), "box"), (rng.random((3, 3)), "direct")]

    def run() -> list:
        results = [correlate2d(image, k, padding="same", method=m, backend="numpy") for k, m in kernels]
        pixels = (np.clip(results[0] / results[0].max(), 0, 1) * 255).astype(np.uint8)
        return [*results, png_bytes(pixels, compression=1)]

    free = run()
    try:
        parallel.limit_pool(1)
        limited = run()
        started = parallel._POOL  # no pool: every share ran in this thread
    finally:
        parallel.limit_pool(None)
    for a, b in zip(free, limited):
        assert (a == b) if isinstance(a, bytes) else np.array_equal(a, b)
    assert started is None


def test_failures_are_captured_and_fail_fast_stops():
    items = [Item(1, "2", ()), Item(2, "bad", ()), Item(3, "4", ())]
    for jobs in (1, 2):
        outcomes = list(run_items(items, square, jobs=jobs))
        assert [o.ok for o in outcomes] == [True, False, True]
        assert outcomes[1].error == "bad source" and outcomes[1].exit_code == 1
    stopped = list(run_items(items, square, jobs=1, fail_fast=True))
    assert [o.ok for o in stopped] == [True, False]


def test_progress_line_and_durations():
    assert reports.progress_line(0, 4, 0, 0.0, width=4) == "[....] 0/4"
    assert reports.progress_line(3, 4, 1, 1.5, width=4) == "[###.] 3/4 2/s ETA 0:00 (1 failed)"
    assert reports.format_duration(59.6) == "1:00"
    assert reports.format_duration(3600) == "1:00:00"


# ---------------------------------------------------------------------------
# Through the CLI


def decoded(path: Path) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(image)


def test_glob_outdir_and_jobs_give_the_serial_bytes(photos, tmp_path):
    serial = run_cli(
        [
            "filter",
            f"{photos}/**/*.png",
            "-k",
            "vertical",
            "-k",
            "horizontal",
            "--outdir",
            tmp_path / "serial",
            "--jobs",
            "1",
        ]
    )
    parallel = run_cli(
        [
            "filter",
            f"{photos}/**/*.png",
            "-k",
            "vertical",
            "-k",
            "horizontal",
            "--outdir",
            tmp_path / "parallel",
            "--jobs",
            "2",
        ]
    )
    assert serial.exit_code == 0 and parallel.exit_code == 0, parallel
    names = sorted(os.listdir(tmp_path / "serial"))
    assert names == sorted(f"{s}-{k}.png" for s in ("camera", "chelsea", "coffee") for k in ("vertical", "horizontal"))
    assert names == sorted(os.listdir(tmp_path / "parallel"))
    for name in names:
        assert (tmp_path / "serial" / name).read_bytes() == (tmp_path / "parallel" / name).read_bytes(), name
    # the same messages in the same order; only the timing in the summary differs
    assert serial.stderr.splitlines()[:-1] == [
        line.replace(f"{tmp_path}/parallel/", f"{tmp_path}/serial/") for line in parallel.stderr.splitlines()[:-1]
    ]
    assert parallel.stderr.splitlines()[-1].startswith("3 sources: 3 done, 0 failed in ")
    # a single-source run writes the same pixels as the batch
    one = run_cli(["filter", photos / "camera.png", "-k", "vertical", "-o", tmp_path / "one.png"])
    assert one.exit_code == 0, one
    assert (tmp_path / "one.png").read_bytes() == (tmp_path / "serial" / "camera-vertical.png").read_bytes()


def test_name_template_and_nested_outdir(photos, tmp_path):
    out = tmp_path / "deep" / "er"
    run = run_cli(
        [
            "filter",
            f"{photos}/**/*.png",
            "-k",
            "gaussian:9",
            "--outdir",
            out,
            "--name",
            "{index:02d}.{stem}.{kernel}.{ext}",
        ]
    )
    assert run.exit_code == 0, run
    # sorted paths: a/b/coffee, a/chelsea, camera
    assert sorted(os.listdir(out)) == [
        "01.coffee.gaussian-9.png",
        "02.chelsea.gaussian-9.png",
        "03.camera.gaussian-9.png",
    ]
    assert decoded(out / "03.camera.gaussian-9.png").shape == (504, 504)


def test_clashing_names_are_refused_before_any_work(photos, tmp_path):
    out = tmp_path / "out"
    run = run_cli(["filter", f"{photos}/**/*.png", "-k", "vertical", "--outdir", out, "--name", "{kernel}.png"])
    assert_error(run, 2, "two outputs would both be written to", "vertical.png", "{stem}")
    assert os.listdir(out) == []
    same_stem = tmp_path / "other"
    same_stem.mkdir()
    shutil.copy(SAMPLES / "camera.png", same_stem / "camera.png")
    run = run_cli(["filter", photos / "camera.png", same_stem / "camera.png", "-k", "vertical", "--outdir", out])
    assert_error(run, 2, "camera-vertical.png")
    assert os.listdir(out) == []


def test_a_failing_source_is_one_line_and_the_others_complete(photos, tmp_path):
    (photos / "broken.png").write_text("not an image")
    out = tmp_path / "out"
    for jobs in ("1", "2"):
        shutil.rmtree(out, ignore_errors=True)
        run = run_cli(["filter", f"{photos}/**/*.png", "-k", "sobel-x", "--outdir", out, "--jobs", jobs])
        assert run.exit_code == 1, run
        errors = [line for line in run.stderr.splitlines() if "error:" in line]
        assert len(errors) == 1, run
        assert errors[0].startswith(f"convcli filter: error: '{photos}/broken.png' is not an image convcli can read"), (
            run
        )
        assert sorted(os.listdir(out)) == ["camera-sobel-x.png", "chelsea-sobel-x.png", "coffee-sobel-x.png"]
        assert run.stderr.splitlines()[-1].startswith("4 sources: 3 done, 1 failed in "), run
        assert "Traceback" not in run.stderr


def test_fail_fast_stops_at_the_first_failure(tmp_path):
    for name in ("a", "b", "c"):
        shutil.copy(SAMPLES / "x.txt", tmp_path / f"{name}.txt")
    (tmp_path / "b.txt").write_text("1 2\n3\n")
    out = tmp_path / "out"
    run = run_cli(["filter", f"{tmp_path}/*.txt", "-k", "1", "--outdir", out, "--fail-fast", "--jobs", "1"])
    assert run.exit_code == 1, run
    assert os.listdir(out) == ["a-custom.txt"]
    assert "3 sources: 1 done, 1 failed in" in run.stderr and "1 not run (--fail-fast)" in run.stderr


def test_json_lines_per_output_and_per_failure(photos, tmp_path):
    (photos / "broken.png").write_text("nope")
    run = run_cli(["filter", f"{photos}/*.png", "-k", "vertical", "-k", "diff-x", "--outdir", tmp_path / "o", "--json"])
    assert run.exit_code == 1, run
    records = [json.loads(line) for line in run.stdout.splitlines()]
    assert [(Path(r["source"]).name, r.get("path", "").rsplit("/", 1)[-1]) for r in records] == [
        ("broken.png", ""),
        ("camera.png", "camera-vertical.png"),
        ("camera.png", "camera-diff-x.png"),
    ]
    assert "not an image" in records[0]["error"] and records[0]["seconds"] >= 0
    assert records[1]["input"] == {"height": 512, "width": 512} and records[1]["output"] == {
        "height": 510,
        "width": 510,
    }
    assert records[2]["kernels"][0]["shape"] == {"height": 1, "width": 2}
    assert records[2]["output"] == {"height": 512, "width": 511}
    assert all(r["seconds"] >= 0 for r in records)


def test_sources_from_a_file_and_from_stdin(tmp_path):
    listing = tmp_path / "list.txt"
    listing.write_text(f"# my sources\n{SAMPLES / 'x.txt'}\n\n{SAMPLES / 'edges.txt'}\n")
    run = run_cli(["filter", "--from", listing, "-k", "diff-x", "--outdir", tmp_path / "a"])
    assert run.exit_code == 0, run
    assert sorted(os.listdir(tmp_path / "a")) == ["edges-diff-x.txt", "x-diff-x.txt"]
    assert (tmp_path / "a" / "x-diff-x.txt").read_text() == "-1 -1\n-1 -1\n-1 -1\n"  # x[i, j] - x[i, j+1]
    run = run_cli(["filter", "--from", "-", "-k", "diff-x", "--outdir", tmp_path / "b"], input=listing.read_text())
    assert run.exit_code == 0, run
    assert sorted(os.listdir(tmp_path / "b")) == ["edges-diff-x.txt", "x-diff-x.txt"]
    assert_error(run_cli(["filter", "-", "--from", "-", "-k", "1"]), 2, "both read standard input")
    assert_error(run_cli(["filter", "-k", "1"]), 2, "give at least one SOURCE")
    assert_error(run_cli(["filter", "--from", tmp_path / "nope.txt", "-k", "1"]), 1, "does not exist")


def test_batch_option_errors(tmp_path):
    x = str(SAMPLES / "x.txt")
    assert_error(run_cli(["filter", x, "-k", "1", "--name", "{size}.png"]), 2, "the fields are {stem}")
    assert_error(run_cli(["filter", x, "-k", "1", "-o", "a.txt", "--outdir", tmp_path]), 2, "drop -o")
    assert_error(run_cli(["filter", f"{tmp_path}/*.png", "-k", "1"]), 1, "no file matches")
    assert_error(run_cli(["filter", x, "-k", "1", "--jobs", "0"]), 2, "--jobs")
    blocker = tmp_path / "file"
    blocker.write_text("")
    assert_error(run_cli(["filter", x, "-k", "1", "--outdir", blocker / "sub"]), 1, "cannot create --outdir")


def test_pool_and_upsample_batches_match_serial(photos, tmp_path):
    for command in (
        ["pool", "--op", "mean", "--size", "4"],
        ["upsample", "-k", "bilinear", "--stride", "2", "-p", "1"],
    ):
        runs = {}
        for jobs in ("1", "2"):
            out = tmp_path / f"{command[0]}{jobs}"
            runs[jobs] = run_cli([command[0], f"{photos}/**/*.png", *command[1:], "--outdir", out, "--jobs", jobs])
            assert runs[jobs].exit_code == 0, runs[jobs]
        names = sorted(os.listdir(tmp_path / f"{command[0]}1"))
        assert len(names) == 3 and names == sorted(os.listdir(tmp_path / f"{command[0]}2"))
        for name in names:
            assert (tmp_path / f"{command[0]}1" / name).read_bytes() == (
                tmp_path / f"{command[0]}2" / name
            ).read_bytes()
    assert decoded(tmp_path / "pool1" / "camera-mean4.png").shape == (128, 128)
    assert decoded(tmp_path / "upsample1" / "camera-up2.png").shape == (1024, 1024)


def test_progress_bar_only_on_a_terminal(photos, tmp_path, monkeypatch):
    args = ["filter", f"{photos}/**/*.png", "-k", "vertical", "--jobs", "1"]
    plain = run_cli([*args, "--outdir", tmp_path / "a"])
    assert "\r" not in plain.stderr
    monkeypatch.setattr(batching, "stderr_is_terminal", lambda: True)
    shown = run_cli([*args, "--outdir", tmp_path / "b"])
    assert shown.exit_code == 0, shown
    assert "\r[" in shown.stderr and "3/3" in shown.stderr and "ETA" in shown.stderr
    assert shown.stderr.rstrip().splitlines()[-1].startswith("3 sources: 3 done")
    single = run_cli(["filter", photos / "camera.png", "-k", "vertical", "--outdir", tmp_path / "c"])
    assert "\r" not in single.stderr  # one source: no bar
    quiet = run_cli([*args, "--outdir", tmp_path / "d", "-q"])
    assert quiet.stderr == ""


def test_workers_forked_after_the_engine_ran_do_not_hang(tmp_path):
    """The engine's thread pool is not inherited by forked batch workers (they would wait on dead threads)."""
    import subprocess
    import sys

    script = f"""
import numpy as np
from click.testing import CliRunner
from convcli.engine import correlate2d
from convcli.cli import main
correlate2d(np.random.default_rng(0).random((1024, 1024)).astype(np.float32), np.ones((3, 3)))  # starts the pool
for i in range(3):
    np.save(r"{tmp_path}/s%d.npy" % i, np.random.default_rng(i).random((1024, 1024)).astype(np.float32))
result = CliRunner().invoke(main, ["filter", r"{tmp_path}/s*.npy", "-k", "blur:3", "--outdir", r"{tmp_path}/out",
                                   "--jobs", "2"])
print(result.exit_code)
"""
    env = {**os.environ, "CONVCLI_NO_OPENCV": "1"}  # the NumPy path is the one using the thread pool
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, env=env)
    assert done.returncode == 0 and done.stdout.strip() == "0", done.stderr
    assert len(list((tmp_path / "out").iterdir())) == 3
