"""Whether a path is a Zarr store or names one: the checks a command makes before it knows it needs zarr.

Kept apart from :mod:`convcli.io.zarrs` (the readers and writers, which bring the row machinery) so that
a small job, which asks these questions of every source and output, imports nothing more.
"""

from __future__ import annotations

import os

_MARKERS = ("zarr.json", ".zarray", ".zgroup")


def is_zarr(path: str) -> bool:
    """Whether ``path`` is a Zarr store (a folder holding ``zarr.json``, ``.zarray`` or ``.zgroup``)."""
    return os.path.isdir(path) and any(os.path.isfile(os.path.join(path, marker)) for marker in _MARKERS)


def is_zarr_output(path: str) -> bool:
    """Whether ``path`` names a Zarr output: a ``.zarr`` suffix."""
    return path != "-" and os.path.splitext(path.rstrip("/"))[1].lower() == ".zarr"
