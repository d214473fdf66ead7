"""The typed records a command builds once from click's keyword arguments.

The options are the bundles of :mod:`convcli.cli.options` (``source_options``,
``geometry_options``, ``output_options``...), named here as such.
:func:`read_settings`, :func:`geometry_settings` and :func:`write_settings` give the
:mod:`convcli.api.settings` records the library takes; :class:`RunOptions` is where
the results go and how a run over many sources behaves.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..api.settings import Geometry, ReadSettings, WriteSettings


def read_settings(options: dict[str, Any]) -> ReadSettings:
    """The :class:`~convcli.api.settings.ReadSettings` of :func:`source_options` (``--max-pixels 0`` = no limit)."""
    from ..limits import DEFAULT_MAX_PIXELS

    max_pixels = options.get("max_pixels", DEFAULT_MAX_PIXELS)
    return ReadSettings(
        gray=options["gray"],
        normalize=options["normalize_method"],
        color=options["color"],
        frame=options["frame"],
        timeout=options["timeout"],
        max_download=options["max_download"] * 1024 * 1024,
        max_pixels=None if max_pixels == 0 else max_pixels,
        orient=options.get("orient", True),
    )


def geometry_settings(options: dict[str, Any]) -> Geometry:
    """The :class:`~convcli.api.settings.Geometry` of :func:`geometry_options` (and :func:`placement_options`).

    ``--same-extra`` without ``--padding same`` is refused (exit 2).
    """
    from ..errors import ParameterError

    same_extra = options.get("same_extra")
    if same_extra is not None and options["padding"] != "same":
        raise ParameterError(
            f"--same-extra {same_extra} places the extra row/column of --padding same (even kernels); "
            "add --padding same or drop --same-extra"
        )
    return Geometry(
        stride=options["stride"],
        padding=options["padding"],
        dilation=options["dilation"],
        pad_mode=options["pad_mode"],
        pad_value=options["pad_value"],
        convolve=options["convolve"],
        origin=options.get("origin", (0, 0)),
        same_extra=same_extra or "bottom-right",
    )


def write_settings(options: dict[str, Any]) -> WriteSettings:
    """The :class:`~convcli.api.settings.WriteSettings` of :func:`output_options`."""
    return WriteSettings(
        format=options.get("output_format"),
        scale=options["scale"],
        vmin=options["vmin"],
        vmax=options["vmax"],
        depth=int(options["depth"]),
        compression=options.get("compression", 1),
    )


@dataclass(frozen=True)
class RunOptions:
    """Where the results go and how a run over many sources behaves (:func:`output_options`, :func:`batch_options`,
    :func:`figure_options`), shared by filter, pool and upsample."""

    write: WriteSettings
    output: str | None = None
    as_json: bool = False
    quiet: bool = False
    from_file: str | None = None
    outdir: str | None = None
    name_template: str | None = None
    jobs: int | None = None
    fail_fast: bool = False
    figure: str | None = None
    cmap: str | None = None
    scheduler: str | None = None
    scheduler_timeout: float = 10.0
    recursive: bool = False

    @property
    def silent(self) -> bool:
        """No report lines on stderr (``--quiet``, or ``--json`` which reports on stdout)."""
        return self.quiet or self.as_json


def run_options(options: dict[str, Any]) -> RunOptions:
    """The :class:`RunOptions` of a command with the output, batch and figure bundles."""
    return RunOptions(
        write=write_settings(options),
        output=options.get("output"),
        as_json=options.get("as_json", False),
        quiet=options.get("quiet", False),
        from_file=options.get("from_file"),
        outdir=options.get("outdir"),
        name_template=options.get("name_template"),
        jobs=options.get("jobs"),
        fail_fast=options.get("fail_fast", False),
        figure=options.get("figure"),
        cmap=options.get("cmap"),
        scheduler=_checked_scheduler(options.get("scheduler")),
        scheduler_timeout=options.get("scheduler_timeout", 10.0),
        recursive=options.get("recursive", False),
    )


def _checked_scheduler(text: str | None) -> str | None:
    """``--scheduler`` as given, once it parses (a bad address is a usage error before any work)."""
    if text is not None:
        from ..run.cluster import parse_scheduler

        parse_scheduler(text)
    return text


def max_memory_bytes(options: dict[str, Any]) -> int | None:
    """``--max-memory`` in bytes, or ``None`` (use the memory available)."""
    value = options.get("max_memory")
    return None if value is None else int(value) * 1024 * 1024
