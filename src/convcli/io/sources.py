"""Sources: classify a path, URL or stdin, and read its bytes (URLs with timeouts, size caps and safe redirects)."""

from __future__ import annotations

import os
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .._version import __version__
from ..errors import SourceError
from ..limits import (
    DEFAULT_MAX_DOWNLOAD,
    DEFAULT_TIMEOUT,
    LimitError,
    available_memory,
    format_bytes,
)

MAX_REDIRECTS = 5

_SCHEME_RE = re.compile(r"^([a-zA-Z][a-zA-Z0-9+.-]*):")


@dataclass(frozen=True)
class Source:
    """A classified source: ``kind`` is ``stdin``, ``url`` or ``path`` (``bytes`` for data handed to :func:`convcli.load`)."""

    text: str
    kind: str

    @property
    def display(self) -> str:
        """How reports name the source: ``stdin`` for ``-``, else the text given."""
        return "stdin" if self.kind == "stdin" else self.text

    @property
    def stem(self) -> str:
        """Name stem for default output names (``stdin`` for ``-``)."""
        if self.kind == "stdin":
            return "stdin"
        name = self.text.rstrip("/").rsplit("/", 1)[-1].split("?", 1)[0] if self.kind == "url" else Path(self.text).name
        stem = name.rsplit(".", 1)[0] if "." in name else name
        return re.sub(r"[^A-Za-z0-9_.+-]+", "-", stem).strip("-") or "image"

    @property
    def suffix(self) -> str:
        if self.kind == "path":
            return Path(self.text).suffix.lower()
        if self.kind == "url":
            path = self.text.split("?", 1)[0].rsplit("/", 1)[-1]
            return ("." + path.rsplit(".", 1)[1].lower()) if "." in path else ""
        return ""


def classify_source(text: str) -> Source:
    """Classify a source string; refuse URL schemes other than http and https.

    >>> classify_source("-").kind, classify_source("https://x/a.png").kind, classify_source("a.png").kind
    ('stdin', 'url', 'path')
    """
    if text == "-":
        return Source(text, "stdin")
    match = _SCHEME_RE.match(text)
    if match and len(match.group(1)) > 1:
        scheme = match.group(1).lower()
        if scheme in ("http", "https"):
            return Source(text, "url")
        if not os.path.exists(text):
            raise SourceError(
                f"{text!r}: the {scheme}: scheme is not supported; use a file path, an http(s) URL or - for stdin"
            )
    return Source(text, "path")


# ---------------------------------------------------------------------------
# Reading bytes


def _same_scheme_redirects(origin: str) -> Any:
    """A redirect handler that follows at most :data:`MAX_REDIRECTS` redirects, never to another scheme, never in a loop.

    Built on first use: ``urllib.request`` (with ``http.client``, ``ssl`` and
    ``email``) is imported only when a URL is read, not on every start.
    """
    import urllib.parse
    import urllib.request

    class SameSchemeRedirects(urllib.request.HTTPRedirectHandler):
        max_redirections = MAX_REDIRECTS

        def __init__(self, origin: str) -> None:
            super().__init__()
            self.origin = origin

        def http_error_302(self, req, fp, code, msg, headers):  # type: ignore[no-untyped-def]
            target = urllib.parse.urljoin(req.full_url, headers.get("location") or headers.get("uri") or "")
            scheme = urllib.parse.urlsplit(target).scheme.lower()
            visited = getattr(req, "redirect_dict", {})
            problem = scheme not in ("http", "https") or target in visited or target == self.origin
            if problem or len(visited) >= MAX_REDIRECTS:
                fp.close()
            if scheme not in ("http", "https"):
                raise SourceError(
                    f"{self.origin}: redirected to a {scheme or 'schemeless'}: URL, which is refused (http and https only)"
                )
            if target in visited or target == self.origin:
                raise SourceError(
                    f"{self.origin}: the server redirects in a loop (back to {target}); check the address"
                )
            if len(visited) >= MAX_REDIRECTS:
                raise SourceError(
                    f"{self.origin}: more than {MAX_REDIRECTS} redirects; open the final address directly"
                )
            return super().http_error_302(req, fp, code, msg, headers)

        http_error_301 = http_error_303 = http_error_307 = http_error_308 = http_error_302

    return SameSchemeRedirects(origin)


def _too_big(url: str, max_bytes: int) -> SourceError:
    return SourceError(
        f"{url}: download is larger than {format_bytes(max_bytes)}; raise --max-download if you trust it"
    )


def fetch_url(url: str, timeout: float = DEFAULT_TIMEOUT, max_bytes: int = DEFAULT_MAX_DOWNLOAD) -> tuple[bytes, str]:
    """Download ``url``; returns the body and its content type.

    ``timeout`` bounds the connection, each network wait and the whole
    download (a server that trickles bytes is cut off too). The size cap is
    enforced while streaming, whatever ``Content-Length`` says (a declared
    length above the cap is refused before reading). At most
    :data:`MAX_REDIRECTS` redirects, only to http/https and never in a loop.
    A body shorter than its declared length is an error.
    """
    import http.client
    import socket
    import urllib.error
    import urllib.request

    opener = urllib.request.build_opener(_same_scheme_redirects(url))
    deadline = time.monotonic() + timeout
    total = 0
    try:
        request = urllib.request.Request(url, headers={"User-Agent": f"convcli/{__version__}"})
        with opener.open(request, timeout=timeout) as response:
            content_type = response.headers.get_content_type()
            declared = response.headers.get("Content-Length", "")
            if declared.strip().isdigit() and int(declared) > max_bytes:
                raise _too_big(url, max_bytes)
            chunks = []
            while True:
                # read1 returns what has arrived (one network read), so the deadline is checked often.
                chunk = response.read1(1 << 16)
                if not chunk:
                    break
                total += len(chunk)
                if total > max_bytes:
                    raise _too_big(url, max_bytes)
                if time.monotonic() > deadline:
                    raise SourceError(f"{url}: download took longer than {timeout:g} s; raise --timeout or try again")
                chunks.append(chunk)
            if declared.strip().isdigit() and total < int(declared):
                raise SourceError(
                    f"{url}: the download was cut short after {total} bytes (the server announced {int(declared)}); "
                    "try again"
                )
    except SourceError:
        raise
    except urllib.error.HTTPError as exc:
        exc.close()
        status = str(exc.reason).splitlines()[0] if exc.reason else ""
        raise SourceError(f"{url}: HTTP {exc.code} {status}; check the address") from None
    except urllib.error.URLError as exc:
        reason = exc.reason
        if isinstance(reason, (TimeoutError, socket.timeout)):
            raise SourceError(f"{url}: no answer within {timeout:g} s; raise --timeout or try again") from None
        if isinstance(reason, ConnectionRefusedError):
            raise SourceError(f"{url}: connection refused; is the server running?") from None
        raise SourceError(f"{url}: cannot connect ({one_line(reason)})") from None
    except TimeoutError:
        raise SourceError(f"{url}: no answer within {timeout:g} s; raise --timeout or try again") from None
    except http.client.IncompleteRead as exc:
        got = total + len(exc.partial)
        raise SourceError(
            f"{url}: the download was cut short after {got} bytes (the server announced more); try again"
        ) from None
    except http.client.HTTPException as exc:
        raise SourceError(
            f"{url}: the server's answer is not valid HTTP ({one_line(exc)}); check the address"
        ) from None
    except (ValueError, UnicodeError) as exc:
        raise SourceError(f"{url}: not a valid URL ({one_line(exc)}); check the address") from None
    except OSError as exc:
        raise SourceError(f"{url}: connection failed ({one_line(exc)}); try again") from None
    return b"".join(chunks), content_type


def one_line(value: object) -> str:
    text = " ".join(str(value).split())
    return text[:200] if text else type(value).__name__


def input_byte_limit() -> int:
    """Most bytes read from a file or stdin: the available memory (64 GiB when unknown)."""
    available = available_memory()
    return available if available is not None else 64 << 30


def read_limited(stream, limit: int, what: str) -> bytes:  # type: ignore[no-untyped-def]
    """Read a binary stream to its end, refusing more than ``limit`` bytes (``/dev/zero`` never ends)."""
    chunks = []
    total = 0
    while True:
        chunk = stream.read(1 << 20)
        if not chunk:
            break
        total += len(chunk)
        if total > limit:
            raise LimitError(f"{what} is larger than {format_bytes(limit)}, the memory available; give a smaller input")
        chunks.append(chunk)
    return b"".join(chunks)


def read_stdin_bytes(stream, limit: int | None = None) -> bytes:  # type: ignore[no-untyped-def]
    """Read all of a binary stream (stdin) up to ``limit`` bytes; refuse an empty one."""
    data = read_limited(stream, input_byte_limit() if limit is None else limit, "standard input")
    if not data:
        raise SourceError("standard input is empty; pipe an image, a .npy array or a text matrix into '-'")
    return data


def read_path_bytes(text: str, limit: int | None = None) -> bytes:
    """Read a file, refusing one larger than ``limit`` bytes (by its size when it has one, else while reading)."""
    limit = input_byte_limit() if limit is None else limit
    try:
        with open(text, "rb") as stream:
            size = os.fstat(stream.fileno()).st_size
            if size > limit:
                raise LimitError(
                    f"{text!r} is {format_bytes(size)}, more than the {format_bytes(limit)} of memory available; "
                    "give a smaller input"
                )
            return read_limited(stream, limit, repr(text))
    except FileNotFoundError:
        raise SourceError(f"{text!r} does not exist; check the path") from None
    except IsADirectoryError:
        raise SourceError(f"{text!r} is a directory; give an image file") from None
    except OSError as exc:
        raise SourceError(f"cannot read {text!r}: {exc.strerror or exc}") from None
