"""Sources: classify a path, URL or stdin, and read its bytes (URLs with timeouts, size caps and safe redirects)."""

from __future__ import annotations

import contextlib
import math
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .._version import __version__
from ..errors import ParameterError, SourceError
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
        """How reports name the source: ``stdin`` for ``-``, else the text given (URL credentials hidden)."""
        return "stdin" if self.kind == "stdin" else redact(self.text)

    @property
    def what(self) -> str:
        """How messages name the source: ``standard input``, or the text quoted (credentials hidden, long names cut)."""
        return "standard input" if self.kind == "stdin" else repr(shown(self.text))

    def _url_name(self) -> str:
        """The last segment of a URL's path (never its credentials, query or fragment); the host when there is none."""
        import urllib.parse

        try:
            parts = urllib.parse.urlsplit(self.text)
            host = parts.hostname or ""
        except ValueError:
            return ""
        return parts.path.rstrip("/").rsplit("/", 1)[-1] or host

    @property
    def stem(self) -> str:
        """Name stem for default output names (``stdin`` for ``-``)."""
        if self.kind == "stdin":
            return "stdin"
        name = self._url_name() if self.kind == "url" else os.path.basename(self.text.rstrip("/"))
        stem = name.rsplit(".", 1)[0] if "." in name else name
        return re.sub(r"[^A-Za-z0-9_.+-]+", "-", stem).strip("-") or "image"

    @property
    def suffix(self) -> str:
        if self.kind == "path":
            return Path(self.text).suffix.lower()
        if self.kind == "url":
            path = self._url_name()
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
                f"{shown(text)!r}: the {scheme}: scheme is not supported; use a file path, an http(s) URL or - for stdin"
            )
    return Source(text, "path")


# ---------------------------------------------------------------------------
# Credentials and how URLs are shown

#: ``scheme://userinfo@``: what :func:`redact` hides (greedy: a password may hold ``@``); compiled by ``re`` on
#: first use (a message with an ``@``), not at import (start-up, issue 19).
_USERINFO_PATTERN = r"(?i)\b([a-z][a-z0-9+.-]*://)[^/?#\s]*@"
#: Longest path or URL shown in a message before it is shortened in the middle.
SHOWN_LENGTH = 160


def redact(text: str) -> str:
    """Hide the credentials of every URL in ``text`` (``http://user:secret@host/`` -> ``http://***@host/``).

    >>> redact("cannot read http://ann:s3cr%40t@example.com/a.png (or https://tok@x/)")
    'cannot read http://***@example.com/a.png (or https://***@x/)'
    """
    return re.sub(_USERINFO_PATTERN, r"\1***@", text) if "@" in text else text


def shorten(text: str, limit: int = SHOWN_LENGTH) -> str:
    """``text`` cut in the middle when longer than ``limit`` characters (a 4,000-character path stays readable).

    >>> shorten("a" * 10 + "b" * 10, 9)
    'aaaa…bbbb'
    """
    if len(text) <= limit:
        return text
    keep = max(1, (limit - 1) // 2)
    return text[:keep] + "…" + text[-keep:]


def shown(text: str) -> str:
    """A source or path as messages show it: credentials hidden, very long names shortened."""
    return shorten(redact(text))


def split_credentials(url: str) -> tuple[str, str | None]:
    """The URL without its ``user:password@`` part, and the ``Authorization`` header value they make (or ``None``).

    >>> split_credentials("http://ann:p%40ss@example.com:8080/a.png?x=1")
    ('http://example.com:8080/a.png?x=1', 'Basic YW5uOnBAc3M=')
    >>> split_credentials("https://example.com/a.png")
    ('https://example.com/a.png', None)
    """
    import base64
    import urllib.parse

    parts = urllib.parse.urlsplit(url)
    if "@" not in parts.netloc:
        return url, None
    userinfo, _, hostport = parts.netloc.rpartition("@")
    user, _, password = userinfo.partition(":")
    token = f"{urllib.parse.unquote(user)}:{urllib.parse.unquote(password)}".encode()
    clean = urllib.parse.urlunsplit(parts._replace(netloc=hostport))
    return clean, "Basic " + base64.b64encode(token).decode("ascii")


def _origin(url: str) -> tuple[str, str]:
    import urllib.parse

    parts = urllib.parse.urlsplit(url)
    return parts.scheme.lower(), parts.netloc.rpartition("@")[2].lower()


# ---------------------------------------------------------------------------
# Reading bytes


def _same_scheme_redirects(origin: str, shown_origin: str, authorization: str | None) -> Any:
    """A redirect handler that follows at most :data:`MAX_REDIRECTS` redirects, never to another scheme, never in a loop.

    Credentials given in the URL go only to the host they were written for:
    the ``Authorization`` header is sent again after a redirect to the same
    scheme, host and port, and dropped for any other.

    Built on first use: ``urllib.request`` (with ``http.client``, ``ssl`` and
    ``email``) is imported only when a URL is read, not on every start.
    """
    import urllib.parse
    import urllib.request

    class SameSchemeRedirects(urllib.request.HTTPRedirectHandler):
        max_redirections = MAX_REDIRECTS

        def http_error_302(self, req, fp, code, msg, headers):  # type: ignore[no-untyped-def]
            location = headers.get("location") or headers.get("uri")
            if not location or not location.strip():
                fp.close()
                raise SourceError(
                    f"{shown_origin}: the server answered HTTP {code} (a redirect) without saying where to "
                    "(no Location header); check the address"
                )
            target = urllib.parse.urljoin(req.full_url, location.strip())
            scheme = urllib.parse.urlsplit(target).scheme.lower()
            visited = getattr(req, "redirect_dict", {})
            problem = scheme not in ("http", "https") or target in visited or target == origin
            if problem or len(visited) >= MAX_REDIRECTS or "@" in urllib.parse.urlsplit(target).netloc:
                fp.close()
            if scheme not in ("http", "https"):
                raise SourceError(
                    f"{shown_origin}: redirected to a {scheme or 'schemeless'}: URL, which is refused (http and https only)"
                )
            if target in visited or target == origin:
                raise SourceError(
                    f"{shown_origin}: the server redirects in a loop (back to {shown(target)}); check the address"
                )
            if len(visited) >= MAX_REDIRECTS:
                raise SourceError(
                    f"{shown_origin}: more than {MAX_REDIRECTS} redirects; open the final address directly"
                )
            if "@" in urllib.parse.urlsplit(target).netloc:
                raise SourceError(
                    f"{shown_origin}: redirected to an address with credentials in it ({shown(target)}), which is "
                    "refused; open the final address directly"
                )
            return super().http_error_302(req, fp, code, msg, headers)

        http_error_301 = http_error_303 = http_error_307 = http_error_308 = http_error_302

        def redirect_request(self, req, fp, code, msg, headers, newurl):  # type: ignore[no-untyped-def]
            new = super().redirect_request(req, fp, code, msg, headers, newurl)
            if new is not None and authorization is not None and _origin(newurl) == _origin(origin):
                new.add_unredirected_header("Authorization", authorization)
            return new

    return SameSchemeRedirects()


def _recording_handlers(sockets: list[Any]) -> list[Any]:
    """HTTP and HTTPS handlers whose connections record their sockets (so a deadline can shut them down)."""
    import http.client
    import urllib.request

    def recording(base: type) -> type:
        class Recording(base):  # type: ignore[valid-type, misc]
            def __init__(self, *args: Any, **kwargs: Any) -> None:
                super().__init__(*args, **kwargs)
                create: Any = getattr(self, "_create_connection")  # noqa: B009 - set by http.client in __init__

                def record(*args: Any, **kwargs: Any) -> Any:
                    sock = create(*args, **kwargs)
                    sockets.append(sock)
                    return sock

                self._create_connection = record

        return Recording

    plain, secure = recording(http.client.HTTPConnection), recording(http.client.HTTPSConnection)

    class Plain(urllib.request.HTTPHandler):
        def http_open(self, req):  # type: ignore[no-untyped-def]
            return self.do_open(plain, req)

    class Secure(urllib.request.HTTPSHandler):
        def https_open(self, req):  # type: ignore[no-untyped-def]
            return self.do_open(secure, req, context=self._context)

    return [Plain(), Secure()]


def _too_big(url: str, max_bytes: int) -> SourceError:
    return SourceError(
        f"{url}: download is larger than {format_bytes(max_bytes)}; raise --max-download if you trust it"
    )


def check_timeout(timeout: Any) -> float:
    """``timeout`` as a positive, finite number of seconds; a :class:`ParameterError` naming it otherwise."""
    try:
        seconds = float(timeout)
    except (TypeError, ValueError):
        raise ParameterError(f"timeout {timeout!r} is not a number of seconds") from None
    if not math.isfinite(seconds) or seconds <= 0:
        raise ParameterError(f"timeout {timeout!r} must be a positive, finite number of seconds")
    return seconds


def fetch_url(url: str, timeout: float = DEFAULT_TIMEOUT, max_bytes: int = DEFAULT_MAX_DOWNLOAD) -> tuple[bytes, str]:
    """Download ``url``; returns the body and its content type.

    ``timeout`` bounds the whole request: resolving the name, connecting,
    the status line and the headers, each redirect and the body (a server
    that trickles bytes, or one header line at a time, is cut off too). The
    size cap is enforced while streaming, whatever ``Content-Length`` says (a
    declared length above the cap is refused before reading). At most
    :data:`MAX_REDIRECTS` redirects, only to http/https and never in a loop.
    A body shorter than its declared length is an error.

    Credentials in the URL (``http://user:password@host/``) are sent as HTTP
    basic authentication, to that host only, and never shown: every message
    names the URL with them hidden (:func:`redact`).
    """
    import threading

    seconds = check_timeout(timeout)
    label = shown(url)
    sockets: list[Any] = []
    outcome: list[Any] = []

    def work() -> None:
        try:
            outcome.append(_fetch(url, label, seconds, max_bytes, sockets))
        except BaseException as exc:  # noqa: BLE001 - handed to the calling thread
            outcome.append(exc)

    worker = threading.Thread(target=work, name="convcli-fetch", daemon=True)
    worker.start()
    # The worker's own checks (socket waits, the body's deadline) report first; this bounds what they cannot see:
    # a status line or headers trickled within each wait, a resolver that never answers.
    worker.join(seconds + min(0.5, seconds / 4))
    if worker.is_alive() or not outcome:
        _shut(sockets)
        worker.join(1.0)
        raise SourceError(
            f"{label}: no complete answer within {seconds:g} s (status line and headers included); "
            "raise --timeout or try again"
        )
    result = outcome[0]
    if isinstance(result, BaseException):
        raise result
    return result  # type: ignore[no-any-return]


def _shut(sockets: list[Any]) -> None:
    import socket

    for sock in list(sockets):
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
        with contextlib.suppress(OSError):
            sock.close()


def _fetch(url: str, label: str, timeout: float, max_bytes: int, sockets: list[Any]) -> tuple[bytes, str]:
    import http.client
    import socket
    import urllib.error
    import urllib.request

    deadline = time.monotonic() + timeout
    total = 0
    try:
        clean, authorization = split_credentials(url)
        opener = urllib.request.build_opener(
            *_recording_handlers(sockets), _same_scheme_redirects(clean, label, authorization)
        )
        request = urllib.request.Request(clean, headers={"User-Agent": f"convcli/{__version__}"})
        if authorization is not None:
            request.add_unredirected_header("Authorization", authorization)
        with opener.open(request, timeout=timeout) as response:
            content_type = response.headers.get_content_type()
            declared = response.headers.get("Content-Length", "")
            if declared.strip().isdigit() and int(declared) > max_bytes:
                raise _too_big(label, max_bytes)
            chunks = []
            while True:
                # read1 returns what has arrived (one network read), so the deadline is checked often.
                chunk = response.read1(1 << 16)
                if not chunk:
                    break
                total += len(chunk)
                if total > max_bytes:
                    raise _too_big(label, max_bytes)
                if time.monotonic() > deadline:
                    raise SourceError(f"{label}: download took longer than {timeout:g} s; raise --timeout or try again")
                chunks.append(chunk)
            if declared.strip().isdigit() and total < int(declared):
                raise SourceError(
                    f"{label}: the download was cut short after {total} bytes (the server announced {int(declared)}); "
                    "try again"
                )
    except SourceError:
        raise
    except urllib.error.HTTPError as exc:
        exc.close()
        status = one_line(exc.reason) if exc.reason else ""
        if exc.code == 401:
            raise SourceError(
                f"{label}: HTTP 401 {status}; the server wants credentials (http://user:password@host/...)"
                if authorization is None
                else f"{label}: HTTP 401 {status}; the server refused the credentials given in the URL"
            ) from None
        raise SourceError(f"{label}: HTTP {exc.code} {status}; check the address") from None
    except urllib.error.URLError as exc:
        reason = exc.reason
        if isinstance(reason, (TimeoutError, socket.timeout)):
            raise SourceError(f"{label}: no answer within {timeout:g} s; raise --timeout or try again") from None
        if isinstance(reason, ConnectionRefusedError):
            raise SourceError(f"{label}: connection refused; is the server running?") from None
        raise SourceError(f"{label}: cannot connect ({redact(one_line(reason))})") from None
    except TimeoutError:
        raise SourceError(f"{label}: no answer within {timeout:g} s; raise --timeout or try again") from None
    except http.client.IncompleteRead as exc:
        got = total + len(exc.partial)
        raise SourceError(
            f"{label}: the download was cut short after {got} bytes (the server announced more); try again"
        ) from None
    except http.client.HTTPException as exc:
        raise SourceError(
            f"{label}: the server's answer is not valid HTTP ({redact(one_line(exc))}); check the address"
        ) from None
    except (ValueError, UnicodeError) as exc:
        raise SourceError(f"{label}: not a valid URL ({redact(one_line(exc))}); check the address") from None
    except OSError as exc:
        raise SourceError(f"{label}: connection failed ({redact(one_line(exc))}); try again") from None
    return b"".join(chunks), content_type


def one_line(value: object) -> str:
    text = " ".join(str(value).split())
    return text[:200] if text else type(value).__name__


def input_byte_limit() -> int:
    """Most bytes read from a file or stdin: half the available memory (32 GiB when unknown).

    Half, because the bytes are only the start: decoding needs at least as much again for the
    pixels, so a source larger than that could never be filtered, and reading all the memory
    there is (``< /dev/zero``) would push the machine into its OOM killer before the refusal.
    """
    available = available_memory()
    return available // 2 if available is not None else 32 << 30


#: A stream whose first bytes are all one value for this long is no image, array or text (``/dev/zero``).
UNIFORM_START = 1 << 16


def read_limited(  # type: ignore[no-untyped-def]
    stream, limit: int, what: str, bound: str = "half the memory available; give a smaller input"
) -> bytes:
    """Read a binary stream to its end, refusing more than ``limit`` bytes (``/dev/zero`` and FIFOs never end).

    Never asks the stream for more than one byte past the limit; ``bound`` ends the message (what the
    limit is and what to do). A stream that starts with :data:`UNIFORM_START` copies of one byte
    (``/dev/zero``, ``yes |``) is refused at once instead of read to the limit.
    """
    chunks = []
    total = 0
    while True:
        chunk = stream.read(min(1 << 20, limit + 1 - total))
        if not chunk:
            break
        if not total and len(chunk) >= UNIFORM_START and chunk[:UNIFORM_START] == chunk[:1] * UNIFORM_START:
            raise SourceError(
                f"{what} starts with {format_bytes(UNIFORM_START)} of the byte {chunk[0]:#04x} and nothing else "
                "(/dev/zero?): not an image, a .npy array or a text matrix"
            )
        total += len(chunk)
        if total > limit:
            raise LimitError(f"{what} is larger than {format_bytes(limit)}, {bound}")
        chunks.append(chunk)
    return b"".join(chunks)


def _is_terminal(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError, OSError):
        return False


def read_stdin_bytes(stream, limit: int | None = None) -> bytes:  # type: ignore[no-untyped-def]
    """Read all of a binary stream (stdin) up to ``limit`` bytes; refuse an empty or closed one."""
    if stream is None or getattr(stream, "closed", False):
        raise SourceError("standard input is closed; pipe an image, a .npy array or a text matrix into '-'")
    if _is_terminal(stream):  # nobody is going to type a PNG: waiting would look like a hang
        raise SourceError(
            "standard input is a terminal; pipe an image, a .npy array or a text matrix into '-' "
            "(cat x.png | convcli ...)"
        )
    data = read_limited(stream, input_byte_limit() if limit is None else limit, "standard input")
    if not data:
        raise SourceError("standard input is empty; pipe an image, a .npy array or a text matrix into '-'")
    return data


def path_error(text: str, exc: OSError, what: str = "") -> str:
    """One line for an ``OSError`` on a path: what went wrong and how to fix it (ENAMETOOLONG, EACCES, ELOOP...)."""
    import errno

    name = f"{what} {shown(text)!r}".strip()
    if exc.errno == errno.ENAMETOOLONG:
        longest = max((len(os.fsencode(part)) for part in Path(text).parts), default=0)
        return (
            f"{name} is too long for the file system ({len(os.fsencode(text)):,} bytes, a name of {longest:,}; "
            "most allow 255 per name); use a shorter name"
        )
    if exc.errno == errno.ELOOP:
        return f"{name} is a loop of symbolic links; check the path"
    return f"cannot read {name}: {exc.strerror or exc}"


def read_path_bytes(text: str, limit: int | None = None) -> bytes:
    """Read a file, refusing one larger than ``limit`` bytes (by its size when it has one, else while reading)."""
    limit = input_byte_limit() if limit is None else limit
    name = repr(shown(text))
    try:
        with open(text, "rb") as stream:
            size = os.fstat(stream.fileno()).st_size
            if size > limit:
                raise LimitError(
                    f"{name} is {format_bytes(size)}, more than the {format_bytes(limit)} convcli reads (half the "
                    "memory available); "
                    "give a smaller input"
                )
            if size:  # a regular file: one read of its size (one copy in memory), then whatever it grew by
                data = stream.read(size + 1)
                if len(data) <= size:
                    return data
                return data + read_limited(stream, limit - len(data), name)
            return read_limited(stream, limit, name)  # a FIFO, /dev/zero, /proc: no size to trust
    except FileNotFoundError:
        raise SourceError(f"{name} does not exist; check the path") from None
    except IsADirectoryError:
        raise SourceError(f"{name} is a folder; give an image file (filter, pool and upsample take a folder)") from None
    except OSError as exc:
        raise SourceError(path_error(text, exc)) from None


# ---------------------------------------------------------------------------
# A folder as a source

#: What a folder source contributes: files with these extensions (any case), as mogrify and vips batches take.
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp")


def folder_images(folder: str, recursive: bool = False, limit: int | None = None) -> list[tuple[str, str]]:
    """The images in ``folder``, sorted by their path inside it: ``(path, subfolder)`` pairs.

    Images are files whose extension is one of :data:`IMAGE_SUFFIXES`; hidden
    files and folders (``.name``) are skipped, and so are arrays and other files
    (``.npy``/``.txt`` sources are given one by one or by a glob). ``recursive``
    also lists the subfolders (never following a link to a folder, so a link back
    up the tree is not walked again and again); ``subfolder`` is the file's folder
    relative to ``folder`` (``""`` at the top), which keeps outputs of ``a/x.png``
    and ``b/x.png`` apart.

    Raises
    ------
    SourceError
        The folder holds no image (the message says what was looked for), or
        more than ``limit`` of them.

    Examples
    --------
    >>> import os, tempfile
    >>> root = tempfile.mkdtemp()
    >>> for name in ("b.PNG", "a.jpg", ".hidden.png", "notes.txt", "sub/c.png"):
    ...     os.makedirs(os.path.dirname(os.path.join(root, name)), exist_ok=True)
    ...     open(os.path.join(root, name), "wb").close()
    >>> [(os.path.relpath(p, root), sub) for p, sub in folder_images(root)]
    [('a.jpg', ''), ('b.PNG', '')]
    >>> [(os.path.relpath(p, root), sub) for p, sub in folder_images(root, recursive=True)]
    [('a.jpg', ''), ('b.PNG', ''), ('sub/c.png', 'sub')]
    """
    found: list[tuple[str, str, str]] = []  # (sort key, path, subfolder)
    for current, subfolders, files in os.walk(folder, followlinks=False):
        subfolders[:] = sorted(name for name in subfolders if not name.startswith(".")) if recursive else []
        relative = os.path.relpath(current, folder)
        relative = "" if relative == "." else relative
        for name in files:
            if name.startswith(".") or os.path.splitext(name)[1].lower() not in IMAGE_SUFFIXES:
                continue
            path = os.path.join(current, name)
            if os.path.isfile(path):
                found.append((os.path.join(relative, name), path, relative))
        if limit is not None and len(found) > limit:
            raise SourceError(f"folder {shown(folder)!r} holds more than {limit:,} images; split the run")
    if not found:
        where = "it or its subfolders" if recursive else "it (--recursive looks in its subfolders too)"
        raise SourceError(f"folder {shown(folder)!r} holds no image: no {', '.join(IMAGE_SUFFIXES)} file in {where}")
    found.sort()
    return [(path, relative) for _, path, relative in found]
