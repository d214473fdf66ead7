"""Hardening, round two (issue 17): slow servers, credentials, closed stdout, long names, absurd templates,
overflow, European CSV, EXIF orientation, decompression bombs in pixel data and metadata.

Every refusal is checked for its exit code and its one-line message; hostile servers run on 127.0.0.1
inside the test and stop by themselves; every test is bounded in time.
"""

from __future__ import annotations

import base64
import io
import json
import os
import socketserver
import struct
import subprocess
import sys
import threading
import time
import zlib

import numpy as np
import pytest
from PIL import Image, ImageOps

from conftest import ROOT, SAMPLES, assert_error, run_cli
from convcli import load
from convcli.errors import DecodeError, KernelError, ParameterError, SourceError
from convcli.io.decode import decode
from convcli.io.fetch import split_credentials
from convcli.io.load import load_source
from convcli.io.sources import classify_source, redact
from convcli.limits import LimitError

SRC = str(ROOT / "src")


def run_program(args: list[str], *, stdout=None, close_stdout: bool = False, timeout: float = 60, **kwargs):
    """``python -m convcli`` in a subprocess (the real streams, the real exit code); stderr captured."""
    env = {**os.environ, "PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", "")}
    return subprocess.run(
        [sys.executable, "-m", "convcli", *[str(a) for a in args]],
        stdout=subprocess.PIPE if stdout is None and not close_stdout else stdout,
        stderr=subprocess.PIPE,
        env=env,
        timeout=timeout,
        preexec_fn=kwargs.pop("preexec_fn", None) or ((lambda: os.close(1)) if close_stdout else None),
        **kwargs,
    )


def one_error_line(done, code: int, *fragments: str) -> str:
    stderr = done.stderr.decode()
    assert done.returncode == code, stderr
    assert "Traceback" not in stderr and "Exception ignored" not in stderr, stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    for fragment in fragments:
        assert fragment in lines[0], stderr
    return lines[0]


# ---------------------------------------------------------------------------
# URLs: slow servers, redirects without Location, credentials


def _png(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


IMAGE = _png(np.full((3, 5), 255, np.uint8))
AUTH = "Basic " + base64.b64encode(b"ann:s3cr@t").decode()


class _SlowHandler(socketserver.StreamRequestHandler):
    """Each path misbehaves in time or in its headers; every loop ends by itself within a few seconds."""

    seen: list[dict[str, str]] = []

    def handle(self) -> None:
        try:
            line = self.rfile.readline(65537).decode("latin-1")
            headers = {}
            while True:
                raw = self.rfile.readline(65537)
                if raw in (b"\r\n", b"\n", b""):
                    break
                name, _, value = raw.decode("latin-1").partition(":")
                headers[name.strip().lower()] = value.strip()
            path = line.split(" ")[1] if line.count(" ") >= 2 else "/"
            self.seen.append({"path": path, **headers})
            getattr(self, "route_" + path.strip("/").split("/")[0].split(".")[0].replace("-", "_"))(path, headers)
        except (BrokenPipeError, ConnectionResetError, OSError, AttributeError):
            pass

    def send(self, status: str, headers: dict[str, str], body: bytes = b"") -> None:
        head = f"HTTP/1.1 {status}\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"
        self.wfile.write(head.encode() + body)

    def route_status_trickle(self, path, headers) -> None:  # the status line, one byte a second
        for byte in b"HTTP/1.1 200 OK\r\n":
            self.wfile.write(bytes([byte]))
            self.wfile.flush()
            time.sleep(0.4)

    def route_header_trickle(self, path, headers) -> None:  # a header line every 0.7 s: each wait is short
        self.wfile.write(b"HTTP/1.1 200 OK\r\n")
        for number in range(12):
            self.wfile.write(f"X-Slow-{number}: yes\r\n".encode())
            self.wfile.flush()
            time.sleep(0.7)

    def route_no_location(self, path, headers) -> None:
        self.send("302 Found", {"Content-Length": "0"})

    def route_image(self, path, headers) -> None:
        self.send("200 OK", {"Content-Type": "image/png", "Content-Length": str(len(IMAGE))}, IMAGE)

    def route_private(self, path, headers) -> None:
        if headers.get("authorization") != AUTH:
            self.send("401 Unauthorized", {"WWW-Authenticate": 'Basic realm="x"', "Content-Length": "0"})
            return
        self.route_image(path, headers)

    def route_elsewhere(self, path, headers) -> None:  # same server, another host name: credentials stay behind
        port = self.server.server_address[1]
        self.send("302 Found", {"Location": f"http://localhost:{port}/private.png", "Content-Length": "0"})

    def route_same_host(self, path, headers) -> None:
        self.send("302 Found", {"Location": "/private.png", "Content-Length": "0"})


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def handle_error(self, request, client_address) -> None:  # type: ignore[no-untyped-def]
        pass


@pytest.fixture(scope="module")
def slow_server():
    server = _Server(("127.0.0.1", 0), _SlowHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", _SlowHandler.seen
    server.shutdown()
    server.server_close()


@pytest.mark.network
@pytest.mark.parametrize("path", ["/status-trickle", "/header-trickle"])
def test_timeout_bounds_the_status_line_and_headers(slow_server, path):
    base, _ = slow_server
    started = time.perf_counter()
    with pytest.raises(SourceError, match=r"no complete answer within 2 s \(status line and headers included\)"):
        load_source(base + path, timeout=2)
    assert time.perf_counter() - started < 3.5


@pytest.mark.network
def test_timeout_through_the_cli_is_one_line(slow_server, tmp_path):
    base, _ = slow_server
    started = time.perf_counter()
    run = run_cli(["filter", base + "/header-trickle", "-k", "1", "--timeout", "1", "-o", tmp_path / "o.png"])
    assert_error(run, 1, "no complete answer within 1 s", "raise --timeout")
    assert time.perf_counter() - started < 3
    assert list(tmp_path.iterdir()) == []


@pytest.mark.network
def test_a_redirect_without_location_is_not_a_loop(slow_server):
    base, _ = slow_server
    with pytest.raises(SourceError, match="HTTP 302 .*without saying where to .no Location header.") as info:
        load_source(base + "/no-location", timeout=2)
    assert "loop" not in str(info.value)


def _with_credentials(base: str, path: str) -> str:
    return base.replace("http://", "http://ann:s3cr%40t@") + path


@pytest.mark.network
def test_credentials_are_sent_as_basic_auth_never_as_the_host(slow_server):
    base, seen = slow_server
    seen.clear()
    loaded = load_source(_with_credentials(base, "/private.png"), timeout=3)
    assert loaded.array.shape == (3, 5)
    assert seen[-1]["authorization"] == AUTH
    assert seen[-1]["host"] == base.removeprefix("http://")  # the resolver got the host, not 'ann:s3cr@t@...'
    assert "s3cr" not in loaded.source.display and "s3cr" not in loaded.source.stem


@pytest.mark.network
def test_credentials_follow_a_redirect_to_the_same_host_only(slow_server):
    base, seen = slow_server
    assert load_source(_with_credentials(base, "/same-host"), timeout=3).array.shape == (3, 5)
    seen.clear()
    with pytest.raises(SourceError, match="HTTP 401") as info:
        load_source(_with_credentials(base, "/elsewhere"), timeout=3)
    assert [entry.get("authorization") for entry in seen] == [AUTH, None]
    assert "s3cr" not in str(info.value) and "***@" in str(info.value)


@pytest.mark.network
def test_credentials_never_show_in_messages_reports_or_json(slow_server, tmp_path):
    base, _ = slow_server
    url = _with_credentials(base, "/private.png")
    run = run_cli(["filter", url, "-k", "1", "--json", "-o", tmp_path / "o.png"])
    assert run.exit_code == 0, run
    record = json.loads(run.stdout)
    assert record["source"].startswith("http://***@127.0.0.1")
    assert "s3cr" not in run.stdout + run.stderr
    run = run_cli(["filter", url, "-k", "1", "-o", tmp_path / "p.png"])
    assert run.exit_code == 0 and "s3cr" not in run.stderr and "***@" in run.stderr, run
    wrong = base.replace("http://", "http://ann:wrong-secret@") + "/private.png"
    run = run_cli(["filter", wrong, "-k", "1", "-o", tmp_path / "q.png"])
    assert_error(run, 1, "HTTP 401", "refused the credentials", "http://***@127.0.0.1")
    assert "wrong-secret" not in run.stderr
    # a batch: the failing source's line, the summary and the JSON error record
    run = run_cli(["filter", wrong, url, "-k", "1", "--json", "--outdir", tmp_path / "out", "--name", "{index}.png"])
    assert run.exit_code == 1 and "secret" not in run.stdout + run.stderr and "s3cr" not in run.stdout, run
    assert "***@" in run.stderr and [json.loads(line).get("error") is None for line in run.stdout.splitlines()] == [
        False,
        True,
    ]
    # two outputs named alike: the clash message hides them too
    run = run_cli(["filter", wrong, url, "-k", "1", "--outdir", tmp_path / "out"])
    assert_error(run, 2, "two outputs would both be written")
    assert "secret" not in run.stderr and "s3cr" not in run.stderr


def test_redact_and_split_credentials():
    assert (
        redact("http://ann:p@ss@host/a.png and https://token@x.org/") == "http://***@host/a.png and https://***@x.org/"
    )
    assert redact("user@example.com is not a URL") == "user@example.com is not a URL"
    assert split_credentials("http://ann:p%40ss@h:8/a?b=1") == ("http://h:8/a?b=1", "Basic YW5uOnBAc3M=")
    assert classify_source("http://ann:secret@host").stem == "host"
    assert classify_source("http://ann:secret@host/photo.JPG?x=1").suffix == ".jpg"


def test_unreachable_host_with_credentials_does_not_leak_them():
    with pytest.raises(SourceError) as info:
        load_source("http://ann:hunter2@127.0.0.1:9/x.png", timeout=1)
    assert "hunter2" not in str(info.value) and "***@127.0.0.1:9" in str(info.value)


# ---------------------------------------------------------------------------
# Options: NaN and infinity, --timeout, --cmap


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("--bias", "nan"),
        ("--bias", "inf"),
        ("--pad-value", "nan"),
        ("--vmin", "-inf"),
        ("--vmax", "nan"),
        ("--vmax", "1e400"),
        ("--timeout", "nan"),
        ("--timeout", "inf"),
    ],
)
def test_nan_and_infinity_in_options_are_usage_errors_naming_the_option(option, value, tmp_path):
    run = run_cli(["filter", SAMPLES / "x.txt", "-k", "1", option, value, "-o", tmp_path / "o.png"])
    assert_error(run, 2, f"'{option}'", "not a finite number")
    assert list(tmp_path.iterdir()) == []


def test_timeout_nan_with_a_url_blames_the_timeout_not_the_url(tmp_path):
    run = run_cli(["filter", "http://127.0.0.1:9/x.png", "-k", "1", "--timeout", "nan", "-o", tmp_path / "o.png"])
    assert_error(run, 2, "'--timeout'")
    assert "URL" not in run.stderr
    with pytest.raises(ParameterError, match="timeout nan must be a positive, finite number of seconds"):
        load("http://127.0.0.1:9/x.png", timeout=float("nan"))


def test_an_unknown_colour_map_is_a_usage_error_naming_close_choices(tmp_path):
    pytest.importorskip("matplotlib")
    args = ["filter", SAMPLES / "x.txt", "-k", "1", "-o", tmp_path / "o.png", "--figure", tmp_path / "f.png"]
    assert_error(
        run_cli([*args, "--cmap", "virdis"]), 2, "'--cmap'", "'virdis' is not a matplotlib colour map", "'viridis'"
    )
    assert_error(run_cli([*args, "--cmap", "Gray"]), 2, "case-sensitive", "'gray'")
    assert_error(run_cli([*args, "--cmap", "zzzzzz"]), 2, "'--cmap'", "common ones")
    assert list(tmp_path.iterdir()) == []
    assert run_cli([*args, "--cmap", "magma"]).exit_code == 0


# ---------------------------------------------------------------------------
# EXIF orientation


def _photo(orientation: int, fmt: str = "JPEG") -> bytes:
    """A 4x6 colour photo (distinct corners) stored with EXIF ``orientation``."""
    pixels = np.zeros((4, 6, 3), np.uint8)
    pixels[0, 0] = (255, 0, 0)
    pixels[0, -1] = (0, 255, 0)
    pixels[-1, 0] = (0, 0, 255)
    pixels[:2, 2:4] = 200
    image = Image.fromarray(pixels)
    exif = Image.Exif()
    exif[0x0112] = orientation
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, exif=exif.tobytes(), **({"quality": 100, "subsampling": 0} if fmt == "JPEG" else {}))
    return buffer.getvalue()


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP"])
@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_is_applied_as_viewers_do(orientation, fmt):
    data = _photo(orientation, fmt)
    upright = np.asarray(ImageOps.exif_transpose(Image.open(io.BytesIO(data))).convert("RGB"), dtype=np.float32)
    np.testing.assert_allclose(load(data, color=True, normalize="none"), upright)
    stored = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"), dtype=np.float32)
    np.testing.assert_allclose(load(data, color=True, normalize="none", orient=False), stored)


def test_orientation_is_told_and_the_memory_check_sees_the_upright_size(tmp_path):
    path = tmp_path / "phone.jpg"
    path.write_bytes(_photo(6))
    sizes = []
    loaded = load_source(str(path), on_size=lambda h, w, c, b: sizes.append((h, w)))
    assert sizes == [(6, 4)] and loaded.array.shape == (6, 4)
    assert "rotated 90° clockwise by its EXIF orientation" in loaded.detail
    run = run_cli(["filter", path, "-k", "diff-x", "-o", tmp_path / "o.npy"])
    assert run.exit_code == 0 and "rotated 90° clockwise" in run.stderr, run
    assert np.load(tmp_path / "o.npy").shape == (6, 3)
    run = run_cli(["filter", path, "-k", "diff-x", "--no-orient", "-o", tmp_path / "p.npy"])
    assert run.exit_code == 0 and "EXIF orientation 6 not applied" in run.stderr, run
    assert np.load(tmp_path / "p.npy").shape == (4, 5)


def test_tiff_orientation_tag_is_applied():
    tifffile = pytest.importorskip("tifffile")
    pixels = np.arange(12, dtype=np.uint8).reshape(3, 4)
    buffer = io.BytesIO()
    tifffile.imwrite(buffer, pixels, extratags=[(274, "H", 1, 8, True)])
    np.testing.assert_array_equal(load(buffer.getvalue(), normalize="none"), np.rot90(pixels).astype(np.float32))
    np.testing.assert_array_equal(load(buffer.getvalue(), normalize="none", orient=False), pixels.astype(np.float32))


# ---------------------------------------------------------------------------
# Standard output closed or full, for every command that writes to it

STDOUT_COMMANDS = [
    ["kernels"],
    ["kernels", "--json"],
    ["kernels", "show", "sobel-x"],
    ["kernels", "show", "sobel-x", "--json"],
    ["filter", SAMPLES / "x.txt", "-k", "1", "-o", "-"],
    ["filter", SAMPLES / "camera.png", "-k", "1", "-o", "-"],
    ["pool", SAMPLES / "x.txt", "-o", "-"],
    ["upsample", SAMPLES / "x.txt", "-k", "nearest", "-o", "-"],
    ["shape", "--input", "5", "--kernel", "3"],
    ["explain", SAMPLES / "x.txt", "-k", "0 1; 2 3"],
    ["learn", "--demo", "--json"],
    ["learn", SAMPLES / "x.txt", SAMPLES / "x.txt", "--size", "1", "--solver", "lstsq", "--json"],
    ["shape", "--input", "9", "conv:k=3", "conv:k=3", "--effective", "--json"],
    ["animate", "filter", SAMPLES / "x.txt", "-k", "1", "--json"],
    ["animate", "filter", SAMPLES / "x.txt", "-k", "1", "-o", "-", "--dpi", "30"],
    ["kernels", "show", "1 -1", "--freq", "--json"],
    ["--help"],
    ["--version"],
]


@pytest.mark.parametrize("args", STDOUT_COMMANDS, ids=[" ".join(map(str, a[:3])) for a in STDOUT_COMMANDS])
def test_closed_stdout_is_an_error_never_a_silent_exit_0(args):
    one_error_line(run_program(args, close_stdout=True), 1, "standard output is closed")


@pytest.mark.parametrize("args", STDOUT_COMMANDS, ids=[" ".join(map(str, a[:3])) for a in STDOUT_COMMANDS])
def test_full_stdout_is_an_error_never_a_traceback(args):
    if not os.path.exists("/dev/full"):
        pytest.skip("no /dev/full")
    with open("/dev/full", "wb") as full:
        one_error_line(run_program(args, stdout=full), 1, "cannot write to standard output: No space left on device")


def test_json_on_a_closed_stdout_is_an_error_after_the_files_are_written(tmp_path):
    done = run_program(["filter", SAMPLES / "x.txt", "-k", "1", "--json", "-o", tmp_path / "o.txt"], close_stdout=True)
    one_error_line(done, 1, "standard output is closed")
    assert (tmp_path / "o.txt").read_text().startswith("0 1 2")


def test_a_command_that_writes_nothing_to_stdout_still_runs_with_it_closed(tmp_path):
    done = run_program(["filter", SAMPLES / "x.txt", "-k", "2", "-o", tmp_path / "o.txt"], close_stdout=True)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "o.txt").read_text().startswith("0 2 4")


def test_a_reader_that_goes_away_is_still_quiet():
    env = {**os.environ, "PYTHONPATH": SRC}
    script = f"{sys.executable} -m convcli filter {SAMPLES / 'camera.png'} -k 1 -o - | head -c 10 > /dev/null"
    done = subprocess.run(["bash", "-o", "pipefail", "-c", script], capture_output=True, env=env, timeout=60)
    assert done.stderr == b"" and done.returncode == 1


def test_warnings_become_one_line():
    from click.testing import CliRunner

    from convcli.cli import _show_warning

    runner = CliRunner()
    with runner.isolation() as (_, err, _):
        _show_warning(RuntimeWarning("overflow encountered\nin multiply"), RuntimeWarning, "/x/engine.py", 97)
        assert err.getvalue() == b"convcli: warning: overflow encountered in multiply\n"


# ---------------------------------------------------------------------------
# Names too long for the file system

LONG = "a" * 300


def test_long_names_for_inputs_outputs_defaults_templates_and_kernels(tmp_path):
    x = SAMPLES / "x.txt"
    assert_error(run_cli(["filter", tmp_path / f"{LONG}.png", "-k", "1", "-o", tmp_path / "o.png"]), 1, "too long")
    assert_error(run_cli(["filter", x, "-k", "1", "-o", tmp_path / f"{LONG}.png"]), 2, "name of 304 bytes", "255")
    assert_error(run_cli(["filter", x, "-k", "1", "--outdir", tmp_path, "--name", f"{LONG}-{{stem}}.png"]), 2, "255")
    assert_error(
        run_cli(["filter", x, "-k", f"{tmp_path / LONG}.txt", "-o", tmp_path / "o.png"]), 2, "'-k'", "too long"
    )
    assert_error(run_cli(["filter", x, "-k", "1", "--from", tmp_path / LONG]), 1, "--from", "too long")
    for name in (LONG, f"{LONG}.png"):
        assert len(run_cli(["filter", tmp_path / name, "-k", "1"]).stderr.splitlines()[0]) < 400
    assert sorted(tmp_path.iterdir()) == []


def test_a_long_source_name_makes_a_default_name_that_is_refused_before_work(tmp_path):
    source = tmp_path / ("b" * 250 + ".txt")
    source.write_text("1 2\n3 4\n")
    run = run_cli(["filter", source, "-k", "gaussian:3", "-p", "1", "--outdir", tmp_path / "out"])
    assert_error(run, 2, "has a name of", "choose a shorter -o, --name or --outdir")
    assert list((tmp_path / "out").iterdir()) == []


def test_an_output_name_at_the_limit_is_written_whole(tmp_path):
    target = tmp_path / ("c" * 251 + ".txt")  # 255 bytes: the hidden .part name must be shortened to fit
    run = run_cli(["filter", SAMPLES / "x.txt", "-k", "1", "-o", target])
    assert run.exit_code == 0, run
    assert target.read_text().startswith("0 1 2") and [p.name for p in tmp_path.iterdir()] == [target.name]


# ---------------------------------------------------------------------------
# --name templates that would allocate gigabytes


@pytest.mark.parametrize(
    ("template", "fragment"),
    [
        ("{index:99999999999}", "99,999,999,999 characters wide"),
        ("{stem:>99999999}", "99,999,999 characters wide"),
        ("{index:." + "9" * 50 + "}", "characters wide"),
        ("{kernel:x<1000}", "1,000 characters wide"),
        ("{index:{stem}}", "is not a format this field takes"),
        ("{stem!r}", "write the field plainly"),
        ("{stem:d}", "cannot be filled"),
        ("{" * 5000, "characters long"),
    ],
)
def test_absurd_name_templates_are_refused_at_once(template, fragment, tmp_path):
    started = time.perf_counter()
    run = run_cli(["filter", SAMPLES / "x.txt", "-k", "1", "--outdir", tmp_path, "--name", template])
    assert_error(run, 2, "--name", fragment)
    assert time.perf_counter() - started < 2 and list(tmp_path.iterdir()) == []
    assert len(run.stderr) < 400


def test_reasonable_templates_still_work(tmp_path):
    run = run_cli(
        ["filter", SAMPLES / "x.txt", "-k", "1", "--outdir", tmp_path, "--name", "{index:03d}-{stem:.3}.{ext}"]
    )
    assert run.exit_code == 0, run
    assert [p.name for p in tmp_path.iterdir()] == ["001-x.txt"]


# ---------------------------------------------------------------------------
# Batch planning is linear; lists are bounded


def test_planning_is_linear_in_the_sources(tmp_path, monkeypatch):
    from convcli.api.settings import WriteSettings
    from convcli.cli.batching import plan_items
    from convcli.cli.option_records import RunOptions

    folder = tmp_path / "many"
    folder.mkdir()
    sources = []
    for number in range(3000):
        path = folder / f"s{number:05d}.txt"
        path.write_bytes(b"1")
        sources.append(str(path))
    calls = {"stat": 0}
    real_stat = os.stat

    def counting_stat(*args, **kwargs):
        calls["stat"] += 1
        return real_stat(*args, **kwargs)

    monkeypatch.setattr(os, "stat", counting_stat)
    run = RunOptions(write=WriteSettings(), outdir=str(tmp_path / "out"))
    started = time.perf_counter()
    plan = plan_items(sources, ["k"], run, True)
    seconds = time.perf_counter() - started
    assert len(plan.items) == 3000
    assert calls["stat"] < 10 * len(sources)  # the quadratic version made 9,000,000
    assert seconds < 5


def test_from_lists_are_bounded(tmp_path, monkeypatch):
    import convcli.run.batch as batch

    monkeypatch.setattr(batch, "MAX_LIST_BYTES", 1 << 16)
    started = time.perf_counter()
    assert_error(run_cli(["filter", "-k", "1", "--from", "/dev/zero"]), 1, "--from '/dev/zero' is larger than 64 KiB")
    big = tmp_path / "list.txt"
    big.write_text("x.png\n" * 20000)
    assert_error(run_cli(["filter", "-k", "1", "--from", big]), 1, "the limit for a list of sources")
    assert_error(run_cli(["filter", "-k", "1", "--from", "-"], input=b"a.png\n" * 20000), 1, "--from -", "larger")
    assert time.perf_counter() - started < 10
    binary = tmp_path / "binary.txt"
    binary.write_bytes(b"a.png\n\0\0\0")
    assert_error(run_cli(["filter", "-k", "1", "--from", binary]), 1, "NUL bytes")
    utf16 = tmp_path / "u16.txt"
    utf16.write_bytes("a.png\n".encode("utf-16"))
    assert_error(run_cli(["filter", "-k", "1", "--from", utf16]), 1, "UTF-16")
    assert_error(run_cli(["filter", "-k", "1", "--from", tmp_path]), 1, "is a folder")


def test_a_fifo_fed_forever_is_cut_at_the_list_limit(tmp_path, monkeypatch):
    import convcli.run.batch as batch

    monkeypatch.setattr(batch, "MAX_LIST_BYTES", 1 << 16)
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    stop = threading.Event()

    def feed() -> None:
        descriptor = os.open(fifo, os.O_WRONLY)
        try:
            while not stop.is_set():
                os.write(descriptor, b"x.png\n" * 1000)
        except BrokenPipeError:
            pass  # the reader stopped: what the test wants
        finally:
            os.close(descriptor)

    writer = threading.Thread(target=feed, daemon=True)
    writer.start()
    try:
        assert_error(run_cli(["filter", "-k", "1", "--from", fifo]), 1, "the limit for a list of sources")
    finally:
        stop.set()
        writer.join(5)


def test_a_kernel_file_that_never_ends_is_refused(tmp_path, monkeypatch):
    import convcli.kernels.files as files

    monkeypatch.setattr(files, "MAX_KERNEL_TEXT", 1 << 16)
    endless = tmp_path / "k.txt"
    endless.write_text("1 " * 100_000)
    with pytest.raises(KernelError, match="larger than 64 KiB"):
        files.load_kernel_file(endless)


# ---------------------------------------------------------------------------
# Overflow to infinity: refused, never written with exit 0


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["filter", SAMPLES / "camera.png", "-k", "1e39"], "overflows float32"),
        (["filter", SAMPLES / "camera.png", "-k", "1e38", "-k", "100", "--chain"], "overflows float32"),
        (["filter", "BIG", "-k", "1", "--bias", "1e308"], "overflows float64"),
        (["upsample", "BIG", "-k", "1e308", "--stride", "1"], "overflows float64"),
        (["pool", "BIG", "--op", "mean"], "mean pooling overflows float64"),
        (["filter", "BIG", "-k", "1", "-o", "OUT.tif"], "beyond float32's"),
        (["filter", "WIDE", "-k", "1"], "wider than float32's range"),
    ],
)
def test_overflow_is_refused_in_one_line(args, fragment, tmp_path):
    (tmp_path / "big.txt").write_text("1e308 1e308 1e308\n1e308 -1e308 1e308\n1e308 1e308 1e308\n")
    (tmp_path / "wide.txt").write_text("-3e38 3e38\n1 2\n")
    names = {"BIG": tmp_path / "big.txt", "WIDE": tmp_path / "wide.txt", "OUT.tif": tmp_path / "o.tif"}
    args = [names.get(a, a) if isinstance(a, str) else a for a in args]
    if "-o" not in args:
        args += ["-o", tmp_path / "o.png"]
    run = run_cli(args)
    assert_error(run, 1, fragment)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["big.txt", "wide.txt"]


def test_float64_precision_avoids_a_float32_overflow_and_raw_outputs_keep_float64(tmp_path):
    run = run_cli(["filter", SAMPLES / "camera.png", "-k", "1e39", "--precision", "float64", "-o", tmp_path / "o.npy"])
    assert run.exit_code == 0, run
    assert np.isfinite(np.load(tmp_path / "o.npy")).all()
    big = tmp_path / "big.txt"
    big.write_text("1e308 -1e308\n")
    assert run_cli(["filter", big, "-k", "1", "-o", tmp_path / "b.npy"]).exit_code == 0


def test_filter_array_refuses_overflow_without_warnings():
    import warnings

    from convcli import filter as convolve

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(LimitError, match="overflows float32"):
            convolve(np.ones((8, 8), np.float32), [[1e38, 1e38], [1e38, 1e38]])
        with pytest.raises(LimitError, match="overflows float64"):
            convolve(np.full((4, 4), 1e308), "1", bias=1e308)


# ---------------------------------------------------------------------------
# Text grids: byte-order marks, European CSV


def test_byte_order_marks_are_skipped_in_kernels_sources_and_lists(tmp_path):
    kernel = tmp_path / "k.txt"
    kernel.write_bytes(b"\xef\xbb\xbf0 1\n2 3\n")
    source = tmp_path / "x.txt"
    source.write_bytes(b"\xef\xbb\xbf0 1 2\n3 4 5\n6 7 8\n")
    run = run_cli(["filter", source, "-k", kernel, "-o", "-"])
    assert run.exit_code == 0 and run.stdout.split() == ["19", "25", "37", "43"], run
    piped = run_cli(["filter", "-", "-k", kernel, "-o", "-"], input=source.read_bytes())
    assert piped.stdout == run.stdout, piped
    listed = tmp_path / "list.txt"
    listed.write_bytes(b"\xef\xbb\xbf" + str(source).encode() + b"\n")
    assert run_cli(["filter", "-k", "1", "--from", listed, "--outdir", tmp_path / "out"]).exit_code == 0


def test_utf16_text_is_named():
    with pytest.raises(DecodeError, match="is UTF-16 text; save it as UTF-8"):
        decode("1 2\n3 4\n".encode("utf-16"), classify_source("a.txt"))


@pytest.mark.parametrize(
    ("text", "suffix", "shape"),
    [
        ("1;0;-1\n2;0;-2\n", ".csv", (2, 3)),
        ("1;0;-1\n2;0;-2\n", ".txt", (2, 3)),
        ("\ufeff1;0;-1\r\n2;0;-2\r\n1;0;-1\r\n", ".csv", (3, 3)),
        ("1;2;3\n", ".csv", (1, 3)),
        ("1;2;3;\n4;5;6;\n", ".csv", (2, 3)),
        ("1 2; 3 4\n5 6; 7 8\n", ".txt", (4, 2)),
        ("1,2,3\n4,5,6\n", ".csv", (2, 3)),
    ],
)
def test_semicolon_separated_grids_keep_their_shape(text, suffix, shape, tmp_path):
    path = tmp_path / f"k{suffix}"
    path.write_text(text, encoding="utf-8")
    assert load(path).shape == shape
    run = run_cli(["kernels", "show", path, "--json"])
    assert run.exit_code == 0 and tuple(json.loads(run.stdout)["shape"].values()) == shape, run


def test_inline_specs_still_take_semicolons_as_rows():
    run = run_cli(["kernels", "show", "0 1; 2 3", "--json"])
    assert json.loads(run.stdout)["shape"] == {"height": 2, "width": 2}


@pytest.mark.parametrize(
    ("text", "fragment"),
    [("0,5;1,5\n2,5;3,5\n", "'0,5' has a decimal comma; write '0.5'"), ("1;;3\n4;5;6\n", "value 2 is empty")],
)
def test_decimal_commas_and_empty_cells_are_refused_not_misread(text, fragment, tmp_path):
    path = tmp_path / "k.csv"
    path.write_text(text)
    assert_error(run_cli(["kernels", "show", path]), 2, fragment, "line 1")
    assert_error(run_cli(["filter", path, "-k", "1", "-o", tmp_path / "o.csv"]), 1, fragment)


# ---------------------------------------------------------------------------
# Decompression bombs, empty arrays


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def _zeros_deflated(megabytes: int) -> bytes:
    packer = zlib.compressobj(9)
    return b"".join([packer.compress(b"\0" * (1 << 20)) for _ in range(megabytes)] + [packer.flush()])


def _png(ihdr: bytes, *chunks: bytes) -> bytes:
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + b"".join(chunks) + _chunk(b"IEND", b"")


@pytest.mark.parametrize("kind", [b"zTXt", b"iCCP"])
def test_zlib_bomb_in_png_metadata_is_called_what_it_is(kind):
    bomb = _chunk(kind, b"comment\0\0" + _zeros_deflated(4))
    data = _png(struct.pack(">IIBBBBB", 1, 1, 8, 0, 0, 0, 0), bomb, _chunk(b"IDAT", zlib.compress(b"\0\0")))
    with pytest.raises(DecodeError, match=r"compressed PNG metadata .* \(a zlib bomb\?\); refused") as info:
        decode(data, classify_source("bomb.png"))
    assert "damaged" not in str(info.value)


def test_zlib_bomb_in_16_bit_colour_png_pixels_is_refused_before_inflating():
    # 16-bit colour PNGs go through pypng, which inflated each IDAT chunk whole: 400 KB became 23 GB.
    data = _png(struct.pack(">IIBBBBB", 1, 1, 16, 2, 0, 0, 0), _chunk(b"IDAT", _zeros_deflated(64)))
    started = time.perf_counter()
    with pytest.raises(DecodeError, match=r"more compressed image data than its 1x1 size needs \(a zlib bomb\?\)"):
        decode(data, classify_source("bomb.png"))
    assert time.perf_counter() - started < 2


def test_zlib_bomb_in_tiff_strips_is_refused_before_inflating():
    strip = _zeros_deflated(64)
    entries = [(256, 4, 1, 1), (257, 4, 1, 1), (258, 3, 1, 8), (259, 3, 1, 8), (262, 3, 1, 1)]
    entries += [(273, 4, 1, 8 + 2 + 12 * 9 + 4), (277, 3, 1, 1), (278, 4, 1, 1), (279, 4, 1, len(strip))]
    ifd = struct.pack("<H", len(entries))
    for tag, kind, count, value in entries:
        packed = struct.pack("<HI", value, 0)[:4] if kind == 3 else struct.pack("<I", value)
        ifd += struct.pack("<HHI", tag, kind, count) + packed
    data = b"II*\x00" + struct.pack("<I", 8) + ifd + struct.pack("<I", 0) + strip
    with pytest.raises(DecodeError, match=r"compressed strip or tile that inflates past .* \(a zlib bomb\?\)"):
        decode(data, classify_source("bomb.tif"))


@pytest.mark.parametrize("shape", [(0, 5), (5, 0), (0,), (0, 0)])
def test_empty_arrays_exit_1_like_every_other_bad_file(shape, tmp_path):
    path = tmp_path / "empty.npy"
    np.save(path, np.zeros(shape))
    assert_error(run_cli(["filter", path, "-k", "3", "-o", tmp_path / "o.npy"]), 1, "non-empty")
    assert_error(run_cli(["filter", "-", "-k", "3", "-o", tmp_path / "o.npy"], input=path.read_bytes()), 1, "non-empty")
    assert_error(run_cli(["pool", path, "-o", tmp_path / "o.npy"]), 1, "non-empty")


# ---------------------------------------------------------------------------
# Percentages


def test_percentages_never_use_exponents(tmp_path):
    from convcli.cli.reports import percent

    pairs = [(9, 9), (0, 9), (1, 3), (1, 8), (1, 40), (1, 700), (1, 10**9), (9_996, 10**4), (10**9 - 1, 10**9)]
    assert [percent(*pair) for pair in pairs] == [
        "100%",
        "0%",
        "33%",
        "12%",
        "2.5%",
        "0.14%",
        "<0.01%",
        "99.96%",
        ">99.9999%",
    ]
    big = tmp_path / "big.txt"
    big.write_text("5 5\n5 5\n")
    run = run_cli(["filter", big, "-k", "1", "--scale", "clip", "-o", tmp_path / "o.png"])
    assert run.exit_code == 0 and "4 values (100%) fell outside" in run.stderr, run


# ---------------------------------------------------------------------------
# Found while probing: special output files, link loops in globs, a closed stdin, kernel parameters


def test_an_output_fifo_is_written_into_not_replaced(tmp_path):
    fifo = tmp_path / "out.txt"
    os.mkfifo(fifo)
    received = []
    reader = threading.Thread(target=lambda: received.append(fifo.read_bytes()), daemon=True)
    reader.start()
    time.sleep(0.2)
    run = run_cli(["filter", SAMPLES / "x.txt", "-k", "1", "-o", fifo])
    reader.join(5)
    assert run.exit_code == 0, run
    assert received == [b"0 1 2\n3 4 5\n6 7 8\n"] and fifo.is_fifo()
    assert_error(run_cli(["filter", SAMPLES / "x.txt", "-k", "1", "-o", fifo]), 1, "a FIFO that nobody reads")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.txt"]  # no .part file left beside it


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0, reason="mknod needs root")
def test_an_output_character_device_is_written_into_not_replaced(tmp_path):
    null = tmp_path / "null.png"
    os.mknod(null, 0o666 | 0o020000, os.makedev(1, 3))  # a private /dev/null: as root, a rename would replace it
    run = run_cli(["filter", SAMPLES / "x.txt", "-k", "1", "-o", null])
    assert run.exit_code == 0, run
    assert null.is_char_device()


def test_globstar_does_not_follow_link_loops(tmp_path):
    tree = tmp_path / "tree" / "a"
    tree.mkdir(parents=True)
    (tree / "up").symlink_to("..")
    (tree / "again").symlink_to("..")
    (tree / "x.txt").write_text("1 2\n3 4\n")
    started = time.perf_counter()
    run = run_cli(["filter", f"{tmp_path}/tree/**/*.txt", "-k", "1", "--outdir", tmp_path / "out"])
    assert run.exit_code == 0, run
    assert time.perf_counter() - started < 5  # it walked 2**40 paths before
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["x-custom.txt"]


def test_a_closed_stdin_is_one_line():
    done = run_program(["filter", "-", "-k", "1", "-o", "-"], stdin=subprocess.DEVNULL, preexec_fn=lambda: os.close(0))
    one_error_line(done, 1, "standard input is closed")


@pytest.mark.parametrize(
    ("spec", "fragment"),
    [("gaussian:7:1e308", "a parameter is out of range"), ("gaussian:7:1e-300", "contains NaN or infinity")],
)
def test_kernel_parameters_that_break_the_arithmetic_are_one_line(spec, fragment):
    assert_error(run_cli(["kernels", "show", spec]), 2, fragment)


def test_a_kernel_folder_with_broken_files_fifos_and_folders_still_lists(tmp_path, monkeypatch):
    folder = tmp_path / "kernels"
    folder.mkdir()
    os.mkfifo(folder / "pipe.txt")  # opening it would wait for a writer forever
    (folder / "dir.txt").mkdir()
    (folder / "bad.txt").write_text("x y\n")
    (folder / "good.txt").write_bytes(b"\xef\xbb\xbf# a good one\n1 2\n")
    monkeypatch.setenv("CONVCLI_KERNEL_PATH", os.pathsep.join([str(tmp_path / "missing"), str(folder)]))
    run = run_cli(["kernels"])
    assert run.exit_code == 0, run
    names = [line.split()[0] for line in run.stdout.splitlines()]
    assert "good" in names and "pipe" not in names and "dir" not in names and "bad" not in names
    assert "a good one [good.txt]" in run.stdout
    assert run.stderr.startswith("note: skipping bad: ")
    assert_error(run_cli(["filter", SAMPLES / "x.txt", "-k", "nosuch", "-o", "-"]), 2, "unknown kernel 'nosuch'")
    assert run_cli(["filter", SAMPLES / "x.txt", "-k", "good", "-o", "-"]).exit_code == 0


def test_jobs_are_capped(tmp_path):
    from convcli.run.batch import Item, max_jobs, run_items

    assert max_jobs() >= 8
    items = [Item(i, f"s{i}", ()) for i in range(3)]
    assert [o.value for o in run_items(items, _echo_index, jobs=10**9)] == [0, 1, 2]


def _echo_index(item):
    return item.index


def test_control_characters_in_names_never_reach_the_terminal_raw(tmp_path):
    evil = tmp_path / "evil\n\x1b[31mred.txt"
    evil.write_text("1 2\n3 4\n")
    run = run_cli(["filter", evil, "-k", "1", "-o", tmp_path / "o.txt"])
    assert run.exit_code == 0 and "\x1b" not in run.stderr and run.stderr.count("\n") == 1, run
    assert "evil\\n\\x1b[31mred.txt" in run.stderr
    run = run_cli(["filter", evil, tmp_path / "missing\x1b.txt", "-k", "1", "--outdir", tmp_path / "out"])
    assert run.exit_code == 1 and "\x1b" not in run.stderr and len(run.stderr.splitlines()) == 3, run


def test_kernel_files_and_source_lists_are_inputs_too(tmp_path):
    kernel = tmp_path / "k.txt"
    kernel.write_text("0 1\n2 3\n")
    assert_error(
        run_cli(["filter", SAMPLES / "x.txt", "-k", kernel, "-o", kernel]), 2, "is the input", "never overwrites"
    )
    assert kernel.read_text() == "0 1\n2 3\n"
    listed = tmp_path / "list.txt"
    listed.write_text(f"{SAMPLES / 'x.txt'}\n")
    run = run_cli(["filter", "--from", listed, "-k", "1", "--outdir", tmp_path, "--name", "list.txt"])
    assert_error(run, 2, "is the input")
    assert listed.read_text() == f"{SAMPLES / 'x.txt'}\n"
    run = run_cli(["upsample", SAMPLES / "x.txt", "-k", kernel, "-o", kernel])
    assert_error(run, 2, "is the input")


def test_stdin_from_a_terminal_is_refused_not_waited_for():
    pty = pytest.importorskip("pty")
    leader, follower = pty.openpty()
    try:
        done = run_program(["filter", "-", "-k", "1", "-o", "-"], stdin=follower, timeout=20)
        one_error_line(done, 1, "standard input is a terminal")
        done = run_program(["filter", "--from", "-", "-k", "1"], stdin=follower, timeout=20)
        one_error_line(done, 1, "--from - reads standard input, which is a terminal")
    finally:
        os.close(leader)
        os.close(follower)


def test_too_much_plain_png_text_is_not_called_a_zlib_bomb():
    text = _chunk(b"tEXt", b"note\0" + b"x" * (1 << 20))
    data = _png(struct.pack(">IIBBBBB", 1, 1, 8, 0, 0, 0, 0), *[text] * 70, _chunk(b"IDAT", zlib.compress(b"\0\0")))
    with pytest.raises(DecodeError, match="more PNG text metadata .* than the 64 MiB Pillow reads") as info:
        decode(data, classify_source("notes.png"))
    assert "bomb" not in str(info.value)


def test_a_closed_stderr_keeps_the_exit_code():
    done = run_program(["filter", "missing.png", "-k", "1"], preexec_fn=lambda: os.close(2))
    assert done.returncode == 1 and done.stderr == b""


@pytest.mark.parametrize("orientation", [3, 6, 8])
def test_exif_orientation_on_the_fast_jpeg_luma_path(orientation):
    data = _photo(orientation)
    upright = ImageOps.exif_transpose(Image.open(io.BytesIO(data)))
    luma = load(data, normalize="none")  # libjpeg's Y plane, then turned
    assert luma.shape == (upright.height, upright.width)
    reference = np.asarray(upright.convert("L"), dtype=np.float32)
    assert np.abs(luma - reference).max() <= 2


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("0,5 1,5\n2,5 3,5\n", "'0,5' between spaces looks like a decimal comma; write '0.5'"),
        ("\u22121 2\n3 4\n", "a typographic minus or dash: type the ASCII minus -"),
    ],
)
def test_decimal_commas_between_spaces_and_typographic_minus_are_named(text, fragment, tmp_path):
    path = tmp_path / "k.txt"
    path.write_text(text, encoding="utf-8")
    assert_error(run_cli(["kernels", "show", path]), 2, fragment)


@pytest.mark.parametrize(
    ("text", "shape"), [("1, 2, 3\n4, 5, 6\n", (2, 3)), ("1,2, 3,4\n", (1, 4)), ("1 ,2 3\n", (1, 3))]
)
def test_ordinary_comma_grids_are_unchanged(text, shape, tmp_path):
    path = tmp_path / "k.txt"
    path.write_text(text)
    assert load(path).shape == shape


def test_layer_stacks_are_bounded_and_fast(tmp_path):
    import time

    start = time.monotonic()
    run = run_cli(["shape", "--input", "224", *["conv:k=3,p=1"] * 2000, "--json"])
    assert run.exit_code == 0 and time.monotonic() - start < 20, run
    assert_error(run_cli(["shape", "--input", "5", "--layers", "/dev/zero"]), 1, "larger than 16 MiB")
    many = tmp_path / "many.txt"
    many.write_text("conv:k=1\n" * 100_001)
    assert_error(run_cli(["shape", "--input", "5", "--layers", many]), 2, "holds 100001 layers; at most 100000")
    assert_error(
        run_cli(["shape", "--input", "5", "conv:k=3,s=9999999999,d=99999999999"]), 2, "is larger than the padded input"
    )
