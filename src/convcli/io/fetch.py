"""Downloading an http(s) URL safely: one deadline for the whole request, a size cap, safe redirects, credentials.

:func:`fetch_url` bounds the request by ``timeout`` (resolving, connecting,
headers, each redirect, the body), caps the body while it streams, follows at
most :data:`MAX_REDIRECTS` redirects (only to http/https, never in a loop) and
sends credentials written in the URL to their own host only, never showing
them (:func:`~convcli.io.sources.redact`). ``urllib.request`` and
``http.client`` are imported only when a URL is read.
"""

from __future__ import annotations

import contextlib
import math
import time
from typing import Any

from .._version import __version__
from ..errors import ParameterError, SourceError
from ..limits import DEFAULT_MAX_DOWNLOAD, DEFAULT_TIMEOUT, format_bytes
from .sources import one_line, redact, shown

MAX_REDIRECTS = 5


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
