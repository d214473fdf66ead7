"""Sources: classify a path, URL or stdin, name it in messages, and read the bytes of a file, stdin or folder.

URLs are downloaded by :mod:`convcli.io.fetch` (timeouts, size caps and safe
redirects).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import SourceError
from ..limits import LimitError, available_memory, format_bytes

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
# How sources are shown in messages (URL credentials hidden)

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


# ---------------------------------------------------------------------------
# Reading bytes: files and stdin


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
