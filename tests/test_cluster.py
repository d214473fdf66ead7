"""Batches on a real Dask LocalCluster on 127.0.0.1 (started and stopped here): the same files and reports as --jobs 1."""

from __future__ import annotations

import json
import os
import shutil
import signal
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from conftest import assert_error, run_cli
from convcli.errors import ParameterError
from convcli.run.batch import Item
from convcli.run.cluster import ClusterError, check_workers, chunk_size, parse_scheduler

distributed = pytest.importorskip("distributed")

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "samples"


@pytest.fixture(scope="module")
def scheduler():
    """A LocalCluster of two worker processes on 127.0.0.1 for this module; closed (no process left) after."""
    import logging

    cluster = distributed.LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        dashboard_address=None,
        silence_logs=logging.ERROR,
    )
    try:
        yield cluster
    finally:
        cluster.close()


@pytest.fixture
def batch(tmp_path):
    """Sources of every kind a batch reads: photos (grey and colour), a text grid, a .npy array."""
    folder = tmp_path / "in"
    folder.mkdir()
    for name in ("camera.png", "chelsea.png", "coffee.png", "x.txt", "edges.txt"):
        shutil.copy(SAMPLES / name, folder)
    np.save(folder / "random.npy", np.random.default_rng(3).standard_normal((40, 30)))
    return folder


def comparable(text: str) -> list[str]:
    """Report lines without the run time and the output folder's name."""
    return [
        line.split(" in ")[0] if line.endswith(" s") else line for line in text.replace("outB", "outA").splitlines()
    ]


def test_the_same_bytes_and_reports_as_one_job(scheduler, batch, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    common = ["filter", "in/*", "-k", "vertical", "-k", "blur:3", "--name", "{stem}-{kernel}.{ext}"]
    serial = run_cli([*common, "--outdir", "outA", "--jobs", "1"])
    remote = run_cli([*common, "--outdir", "outB", "--scheduler", scheduler.scheduler_address])
    assert serial.exit_code == remote.exit_code == 0, remote
    assert comparable(remote.stderr) == comparable(serial.stderr)
    names = sorted(os.listdir("outA"))
    assert names == sorted(os.listdir("outB")) and len(names) == 12
    for name in names:
        assert (tmp_path / "outA" / name).read_bytes() == (tmp_path / "outB" / name).read_bytes(), name
    serial_json = run_cli([*common, "--outdir", "outA", "--json", "--jobs", "1"])
    remote_json = run_cli([*common, "--outdir", "outB", "--json", "--scheduler", scheduler.scheduler_address])

    def records(run):
        return [
            {**json.loads(line), "seconds": 0, "path": json.loads(line)["path"].replace("outB", "outA")}
            for line in run.stdout.splitlines()
        ]

    assert records(remote_json) == records(serial_json)


def test_a_failing_source_is_reported_and_the_others_go_on(scheduler, batch, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (batch / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    run = run_cli(["filter", "in/*", "-k", "vertical", "--outdir", "out", "--scheduler", scheduler.scheduler_address])
    serial = run_cli(["filter", "in/*", "-k", "vertical", "--outdir", "serial", "--jobs", "1"])
    assert run.exit_code == serial.exit_code == 1, run
    assert comparable(run.stderr.replace("out/", "serial/")) == comparable(serial.stderr)
    assert "broken.png" in run.stderr and "7 sources: 6 done, 1 failed" in run.stderr
    assert len(os.listdir("out")) == 6
    fast = run_cli(
        [
            "filter",
            "in/*",
            "-k",
            "vertical",
            "--outdir",
            "fast",
            "--fail-fast",
            "--scheduler",
            scheduler.scheduler_address,
        ]
    )
    assert fast.exit_code == 1 and "not run (--fail-fast)" in fast.stderr, fast


def test_a_worker_killed_mid_batch_loses_nothing(scheduler, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    folder = tmp_path / "many"
    folder.mkdir()
    for number in range(60):
        shutil.copy(SAMPLES / "camera.png", folder / f"c{number:02d}.png")
    client = distributed.Client(scheduler.scheduler_address, timeout=10)
    try:
        pids = list(client.run(os.getpid).values())
        killed: list[float] = []

        def kill_when_work_starts() -> None:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                if (tmp_path / "out").is_dir() and any(p.suffix == ".png" for p in (tmp_path / "out").iterdir()):
                    os.kill(pids[0], signal.SIGKILL)
                    killed.append(len(list((tmp_path / "out").glob("*.png"))))
                    return
                time.sleep(0.005)

        watcher = threading.Thread(target=kill_when_work_starts, daemon=True)
        watcher.start()
        run = run_cli(
            ["filter", "many/*.png", "-k", "gaussian:15", "--outdir", "out", "--scheduler", scheduler.scheduler_address]
        )
        watcher.join(timeout=5)
        assert run.exit_code == 0, run
        assert killed and killed[0] < 60, "the worker was killed after the batch ended"
        outputs = sorted((tmp_path / "out").iterdir())
        assert [p.name for p in outputs] == [f"c{n:02d}-gaussian-15.png" for n in range(60)]  # no .part file
        reference = run_cli(
            ["filter", str(SAMPLES / "camera.png"), "-k", "gaussian:15", "-o", str(tmp_path / "ref.png")]
        )
        assert reference.exit_code == 0
        assert {p.read_bytes() for p in outputs} == {(tmp_path / "ref.png").read_bytes()}
        client.wait_for_workers(2, timeout=30)  # the nanny brings the worker back for the next tests
    finally:
        client.close()


def test_an_unreachable_scheduler_is_one_line_within_the_timeout(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    start = time.monotonic()
    run = run_cli(
        [
            "filter",
            str(SAMPLES / "x.txt"),
            "-k",
            "1",
            "--outdir",
            "out",
            "--scheduler",
            "tcp://127.0.0.1:9",
            "--scheduler-timeout",
            "1",
        ]
    )
    assert_error(run, 1, "cannot reach the scheduler tcp://127.0.0.1:9 within 1 s")
    assert time.monotonic() - start < 8
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").iterdir())


@pytest.mark.parametrize("address", ["tcp://bad host:1", "http://x:1", "local:0", "local:x"])
def test_bad_addresses_are_usage_errors(address):
    assert_error(run_cli(["filter", str(SAMPLES / "x.txt"), "-k", "1", "--scheduler", address]), 2, "--scheduler")


def test_parse_scheduler_and_chunks():
    assert parse_scheduler("local:3").workers == 3 and parse_scheduler("local:3").local
    assert parse_scheduler("10.1.2.3:8786").address == "tcp://10.1.2.3:8786"
    with pytest.raises(ParameterError):
        parse_scheduler("local:999")
    # about 8 tasks per worker: large batches get large tasks (Dask's ~2.5 ms per task spread thin)
    assert chunk_size(1000, 2) == 63 and chunk_size(10, 4) == 1 and chunk_size(100_000, 2) == 6250


class FakeClient:
    def __init__(self, answers):
        self.answers = answers

    def run(self, function, *args):
        return self.answers


def test_a_worker_that_cannot_see_the_output_folder_stops_the_run_before_work(tmp_path):
    items = [Item(1, "a.png", (str(tmp_path / "out" / "a-k.png"),))]
    check_workers(FakeClient({"tcp://1": None, "tcp://2": None}), items)
    with pytest.raises(
        ClusterError, match=r"worker tcp://2 cannot do this run: the output folder .* does not exist there"
    ):
        check_workers(
            FakeClient(
                {"tcp://1": None, "tcp://2": f"the output folder {str(tmp_path / 'out')!r} does not exist there"}
            ),
            items,
        )
    from convcli.run.cluster import _check_worker

    assert _check_worker(str(tmp_path), ["."]) is None
    assert "does not exist there" in _check_worker(str(tmp_path), ["missing"])
    assert "working folder" in _check_worker(str(tmp_path / "nowhere"), ["."])


def test_the_temporary_files_of_a_killed_worker_are_removed(tmp_path):
    from convcli.run.cluster import remove_stale_parts

    out = tmp_path / "out"
    out.mkdir()
    (out / "a-k.png").write_bytes(b"whole")
    (out / ".a-k.png.x1y2.part").write_bytes(b"half")
    (out / ".other.png.x1y2.part").write_bytes(b"not ours")
    items = [Item(1, "a.png", (str(out / "a-k.png"),))]
    assert remove_stale_parts(items) == 1
    assert sorted(p.name for p in out.iterdir()) == [".other.png.x1y2.part", "a-k.png"]


def _engine_threads() -> tuple[str | None, int | None, int]:
    """On a worker: its execution limit (from the environment), as convcli.parallel reads it, and its cut count."""
    from convcli import parallel

    return os.environ.get("CONVCLI_POOL_THREADS"), parallel.pool_limit(), parallel.workers()


def test_a_local_cluster_shares_the_cores_between_its_workers():
    # local:N starts N worker processes on this machine: each runs its engine shares on cores // N threads
    # (the cuts stay the client's count, so the bytes are --jobs 1's: test_the_same_bytes_and_reports_as_one_job).
    from convcli.run.cluster import Cluster

    with Cluster(parse_scheduler("local:2")) as cluster:
        seen = set(cluster.client.run(_engine_threads).values())
    share = max(1, (os.cpu_count() or 1) // 2)
    assert seen == {(str(share), share, os.cpu_count() or 1)}


def test_the_pool_limit_comes_from_the_environment(monkeypatch):
    from convcli import parallel

    monkeypatch.setattr(parallel, "_POOL_LIMIT", None)
    monkeypatch.setenv("CONVCLI_POOL_THREADS", "1")
    assert parallel.pool_limit() == 1
    monkeypatch.setenv("CONVCLI_POOL_THREADS", "zero")
    assert parallel.pool_limit() is None
    parallel.limit_pool(3)
    try:
        assert parallel.pool_limit() == 3  # a process's own limit wins over the environment
    finally:
        parallel.limit_pool(None)
