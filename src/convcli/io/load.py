"""Loading one source: classify it, read its bytes (file, URL, stdin) and decode them."""

from __future__ import annotations

from ..errors import DecodeError, SourceError
from ..limits import DEFAULT_MAX_DOWNLOAD, DEFAULT_MAX_PIXELS, DEFAULT_TIMEOUT, SizeCheck
from .decode import Loaded, decode
from .fetch import fetch_url
from .sources import classify_source, read_path_bytes, read_stdin_bytes


def load_source(
    text: str,
    *,
    gray: str = "luma",
    normalize_method: str = "dtype",
    color: bool = False,
    frame: int = 0,
    stdin=None,  # type: ignore[no-untyped-def]
    timeout: float = DEFAULT_TIMEOUT,
    max_download: int = DEFAULT_MAX_DOWNLOAD,
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
    on_size: SizeCheck | None = None,
    orient: bool = True,
) -> Loaded:
    """Classify, read and decode one source.

    Parameters
    ----------
    text : str
        A path, an http(s) URL or ``-`` (read from ``stdin``, a binary stream).
    gray, normalize_method, color, frame
        See :func:`to_gray`, :func:`normalize`; ``color`` keeps RGB channels;
        ``frame`` picks a frame of an animated or multi-page image.
    timeout, max_download
        URL limits: seconds, bytes (see :func:`fetch_url`).
    max_pixels, on_size, orient
        See :func:`decode`. Files and stdin are read up to the memory
        available (a file larger than that is refused from its size);
        ``orient`` turns photos upright by their EXIF orientation.
    """
    source = classify_source(text)
    options = dict(
        gray=gray,
        normalize_method=normalize_method,
        color=color,
        frame=frame,
        max_pixels=max_pixels,
        on_size=on_size,
        orient=orient,
    )
    if source.kind == "stdin":
        if stdin is None:
            raise SourceError("no standard input stream to read '-' from")
        data = read_stdin_bytes(stdin)
    elif source.kind == "url":
        data, content_type = fetch_url(text, timeout=timeout, max_bytes=max_download)
        try:
            return decode(data, source, **options)  # type: ignore[arg-type]
        except DecodeError:
            if content_type.startswith("text/html"):
                raise DecodeError(
                    f"{source.display}: the server sent an HTML page, not an image; check the address"
                ) from None
            raise
    else:
        data = read_path_bytes(text)
    return decode(data, source, **options)  # type: ignore[arg-type]
