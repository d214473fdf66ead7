"""The command line's I/O glue: load a source with the command's options, write a result to a file or stdout."""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from ..api.settings import ReadSettings, WriteSettings
from ..errors import OutputUsageError
from .reports import message


@dataclass(frozen=True)
class Written:
    """What :func:`write_result` did."""

    destination: str
    fmt: str
    mapping: Any  # PixelMapping | None


def load(
    source: str,
    read: ReadSettings,
    *,
    quiet: bool = False,
    on_size: Callable[..., None] | None = None,
    stdin: Any = None,
) -> Any:
    """Load one source with the command's read settings; print its notes (which frame was used) on stderr.

    ``on_size(height, width, channels, decoded_bytes_per_pixel)`` runs once the
    size is read from the header, before decoding (a memory guard).
    ``stdin`` replaces standard input for ``-`` (a batch reads it once, in the parent).
    """
    from ..api.files import load_settings

    loaded = load_settings(source, read, stdin=binary_stream("stdin") if stdin is None else stdin, on_size=on_size)
    for note in loaded.notes:
        message(note, quiet)
    return loaded


def stdout_format(loaded: Any) -> str | None:
    """Format for ``-o -`` without ``--format``: raw arrays stay raw (.npy as npy, text as txt), images go as PNG."""
    if loaded.kind != "array":
        return None
    return "npy" if loaded.detail.startswith("NPY") else "txt"


def check_outputs(destinations: list[str], sources: list[str]) -> None:
    """Refuse, before any work, outputs that would clobber an input or each other, or that cannot be created.

    Linear in the number of outputs and sources: each input is looked up once (its device and inode),
    each output's folder is checked once, and an existing output is compared with the inputs by identity
    (100,000 sources plan in about a second; the first version compared every output with every input).
    """
    import os

    from ..io.atomic import check_output_paths

    inputs: dict[tuple[int, int], str] = {}
    for source in sources:
        if source == "-" or "://" in source:
            continue
        try:
            status = os.stat(source)
        except (OSError, ValueError):
            continue
        inputs.setdefault((status.st_dev, status.st_ino), source)
    seen: dict[str, str] = {}
    files = [d for d in destinations if d != "-"]
    check_output_paths(files)
    folders: dict[str, str] = {}
    for destination in files:
        folder, name = os.path.split(destination)
        if folder not in folders:
            folders[folder] = os.path.realpath(folder or ".")
        key = os.path.normcase(os.path.join(folders[folder], name))
        if key in seen:
            raise OutputUsageError(
                f"two outputs would both be written to {destination!r}; use distinct kernels or -o per run"
            )
        seen[key] = destination
        try:
            status = os.stat(destination)
        except (OSError, ValueError):
            continue
        clobbered = inputs.get((status.st_dev, status.st_ino))
        if clobbered is not None:
            raise OutputUsageError(
                f"output {destination!r} is the input {clobbered!r}; convcli never overwrites its input"
            )


def write_result(array: Any, destination: str, write: WriteSettings, raw_format: str | None = None) -> Written:
    """Encode and write one result (atomically for files; refusing binary to a terminal).

    ``raw_format`` is the format for ``-o -`` when ``--format`` is not given
    and the source was a raw array (its values stay numbers); images go as PNG.
    """
    from ..api.files import save_file, save_settings

    if destination == "-" and write.format is None and raw_format:
        write = replace(write, format=raw_format)
    _check_float32_range(array, destination, write.format)
    if destination != "-":
        fmt, mapping = save_file(array, destination, write)
        return Written(destination, fmt, mapping)
    data, fmt, mapping = save_settings(array, destination, write)
    stream = binary_stream("stdout")
    if fmt not in ("txt", "csv") and stdout_is_terminal():
        raise OutputUsageError(
            f"refusing to write {fmt.upper()} bytes to a terminal; redirect (> out.{fmt}) or pipe it, or use --format txt"
        )
    stream.write(data)
    stream.flush()
    return Written(destination, fmt, mapping)


def _check_float32_range(array: Any, destination: str, requested: str | None) -> None:
    """Refuse finite values beyond float32's range for formats computed in float32 (pixels, float TIFF): they
    would be written as infinity or lost to the clipping; raw text and ``.npy`` keep float64 exactly."""
    import numpy as np

    from ..io import output_format
    from ..io.pixels import extremes
    from ..limits import LimitError

    fmt = output_format(destination, requested)
    if fmt in ("npy", "txt", "csv") or array.dtype.kind != "f" or not array.size:
        return
    if fmt == "tiff" and array.dtype.itemsize <= 4:
        return  # float32 (or narrower) values are all within float32's range
    top = float(np.finfo(np.float32).max)
    low, high, _ = extremes(array)  # one read, in chunks on the worker threads
    if not (np.isfinite(high) and np.isfinite(low)):  # -inf of a max pool over padding alone: the pixels skip it
        finite = array[np.isfinite(array)]
        if not finite.size:
            return
        high, low = float(finite.max()), float(finite.min())
    if fmt != "tiff" and high - low > top:  # the mapping to pixels subtracts the low end in float32
        raise LimitError(
            f"the result spans {low:.3g} to {high:.3g}, wider than float32's range ({top:.2g}), in which "
            f"{fmt.upper()} pixels are computed; write .npy, .txt or .csv (they keep float64), or scale the values down"
        )
    if high > top or low < -top:
        worst = high if high > -low else low
        where = "stdout" if destination == "-" else repr(destination)
        raise LimitError(
            f"the result holds {worst:.3g}, beyond float32's ±{top:.2g}, which {fmt.upper()} output is computed in; "
            f"write .npy, .txt or .csv (they keep float64) instead of {where}, or scale the values down"
        )


def binary_stream(name: str) -> Any:
    """The binary side of ``sys.stdin``/``sys.stdout``, looked up at call time (so CliRunner's swap is seen).

    ``click.get_binary_stream`` is deprecated from Click 8.5 on.
    """
    stream = getattr(sys, name)
    return getattr(stream, "buffer", stream)


def stdout_is_terminal() -> bool:
    return sys.stdout.isatty()
