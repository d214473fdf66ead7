"""Files in and out: :func:`load` a source as a float array, :func:`save` an array atomically."""

from __future__ import annotations

from typing import Any

from ..io import Loaded, load_source
from .settings import ReadSettings


def load_settings(source: str, read: ReadSettings, *, stdin: Any = None, on_size: Any = None) -> Loaded:
    """Load one source (path, URL or ``-`` from ``stdin``) with ``read``; returns the :class:`~convcli.io.Loaded` record."""
    return load_source(
        source,
        gray=read.gray,
        normalize_method=read.normalize,
        color=read.color,
        frame=read.frame,
        stdin=stdin,
        timeout=read.timeout,
        max_download=read.max_download,
        max_pixels=read.max_pixels,
        on_size=on_size,
    )
