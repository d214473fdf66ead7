"""Shared fixtures: a CliRunner helper that shows stdout/stderr when an assertion fails, and a local HTTP server."""

from __future__ import annotations

import http.server
import os
import shutil
import socketserver
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner

# The fixed cost model (no per-machine FFT tile table): plans depend on the inputs alone. Subprocesses inherit it.
os.environ["CONVCLI_NO_CALIBRATION"] = "1"

from convcli.cli import main

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "samples"


@dataclass
class Run:
    exit_code: int
    stdout: str
    stderr: str
    stdout_bytes: bytes
    exception: BaseException | None

    def __str__(self) -> str:  # shown by pytest when an assertion on the run fails
        return f"exit {self.exit_code}\n--- stdout ---\n{self.stdout}\n--- stderr ---\n{self.stderr}"


def run_cli(args: list[str], input: bytes | str | None = None) -> Run:
    """Invoke ``convcli`` in-process; stdout and stderr are kept apart."""
    result = CliRunner().invoke(main, [str(a) for a in args], input=input, catch_exceptions=True, prog_name="convcli")
    exception = result.exception if not isinstance(result.exception, SystemExit) else None
    return Run(result.exit_code, result.stdout, result.stderr, result.stdout_bytes, exception)


def assert_error(run: Run, code: int, *fragments: str) -> None:
    """A user error: the given exit code, one line on stderr containing the fragments, no traceback."""
    assert run.exit_code == code, run
    assert run.exception is None, run
    assert "Traceback" not in run.stderr, run
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1, run
    for fragment in fragments:
        assert fragment in lines[0], run


@pytest.fixture
def cli():
    return run_cli


@pytest.fixture
def samples(tmp_path: Path) -> Path:
    """A private copy of samples/ (tests may write next to it)."""
    target = tmp_path / "samples"
    shutil.copytree(SAMPLES, target)
    return target


class _Handler(http.server.BaseHTTPRequestHandler):
    routes: dict[str, tuple[int, str, bytes, float]] = {}

    def do_GET(self) -> None:  # noqa: N802
        status, content_type, body, delay = self.routes.get(self.path, (404, "text/html", b"<h1>Not Found</h1>", 0))
        if status in (301, 302):
            self.send_response(status)
            self.send_header("Location", body.decode())
            self.end_headers()
            return
        if delay:
            time.sleep(delay)
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


class _Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def handle_error(self, request, client_address) -> None:  # type: ignore[no-untyped-def]
        pass  # a client that hangs up early (size cap, timeout) is expected, not worth a traceback


@pytest.fixture
def http_server() -> Iterator[tuple[str, dict]]:
    """A server on 127.0.0.1; tests fill ``routes[path] = (status, content_type, body, delay)``."""
    routes: dict[str, tuple[int, str, bytes, float]] = {}
    handler = type("Handler", (_Handler,), {"routes": routes})
    server = _Server(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", routes
    finally:
        server.shutdown()
        server.server_close()
