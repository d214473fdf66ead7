"""Writing animations: GIF and APNG through imageio v3 (Pillow), MP4 where imageio's ffmpeg plugin is installed."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..errors import OutputError, OutputUsageError
from .atomic import write_atomic

#: suffix -> animation format
ANIMATION_FORMATS = {".gif": "gif", ".png": "apng", ".apng": "apng", ".mp4": "mp4"}


def animation_format(destination: str, requested: str | None = None) -> str:
    """``gif``, ``apng`` or ``mp4``, from ``requested`` or the destination's suffix (``-``: GIF).

    >>> animation_format("steps.gif"), animation_format("steps.png"), animation_format("-")
    ('gif', 'apng', 'gif')
    """
    if requested is not None:
        if requested not in ("gif", "apng", "mp4"):
            raise OutputUsageError(f"animation format {requested!r} is not gif, apng or mp4")
        return requested
    if destination == "-":
        return "gif"
    suffix = Path(destination).suffix.lower()
    if suffix not in ANIMATION_FORMATS:
        raise OutputUsageError(
            f"cannot tell the animation format of {destination!r}; name it .gif, .png (APNG) or .mp4, or give --format"
        )
    return ANIMATION_FORMATS[suffix]


def _require_imageio() -> object:
    try:
        import imageio.v3 as iio
    except ImportError:
        raise OutputError(
            "animations need imageio, which is not installed; pip install imageio (it comes with convcli)"
        ) from None
    return iio


def mp4_plugin() -> str | None:
    """The imageio plugin that writes MP4 here: ``FFMPEG`` (imageio-ffmpeg), ``pyav`` (av), or ``None``."""
    import importlib.util

    if importlib.util.find_spec("imageio_ffmpeg") is not None:
        return "FFMPEG"
    if importlib.util.find_spec("av") is not None:
        return "pyav"
    return None


def encode_animation(frames: Sequence[np.ndarray], fmt: str, durations: Sequence[float], fps: float) -> bytes:
    """The bytes of an animation of RGB ``frames``; ``durations`` in milliseconds per frame (GIF, APNG).

    GIF and APNG loop forever. MP4 shows every frame ``1/fps`` seconds: a longer
    duration (the held last frame) repeats the frame.
    """
    iio = _require_imageio()
    stack = np.stack([np.ascontiguousarray(frame, dtype=np.uint8) for frame in frames])
    if fmt in ("gif", "apng"):
        extension = ".gif" if fmt == "gif" else ".png"
        # Pillow takes one duration for a single frame, a list for several.
        duration: float | list[float] = float(durations[0]) if len(stack) == 1 else [float(d) for d in durations]
        return iio.imwrite("<bytes>", stack, extension=extension, duration=duration, loop=0)  # type: ignore[attr-defined, no-any-return]
    plugin = mp4_plugin()
    if plugin is None:
        raise OutputError(
            "MP4 needs imageio's ffmpeg plugin: pip install imageio-ffmpeg (or av); or write .gif or .png"
        )
    repeats = [max(1, round(d * fps / 1000.0)) for d in durations]
    video = np.repeat(stack, repeats, axis=0)
    # H.264 wants even sides: pad with white
    height, width = video.shape[1:3]
    video = np.pad(video, ((0, 0), (0, height % 2), (0, width % 2), (0, 0)), constant_values=255)
    handle, temporary = tempfile.mkstemp(suffix=".mp4")
    os.close(handle)
    try:
        options = {"macro_block_size": 1} if plugin == "FFMPEG" else {}
        try:
            iio.imwrite(temporary, video, plugin=plugin, fps=fps, codec="libx264", **options)  # type: ignore[attr-defined]
        except (ImportError, ValueError, RuntimeError, OSError) as exc:
            message = (str(exc).splitlines() or [type(exc).__name__])[0][:160]
            raise OutputError(f"the MP4 encoder failed ({message}); write .gif or .png instead") from None
        return Path(temporary).read_bytes()
    finally:
        os.unlink(temporary)


def write_animation(
    destination: str | Path, frames: Sequence[np.ndarray], fmt: str, durations: Sequence[float], fps: float
) -> int:
    """Encode and write an animation atomically; returns the number of bytes written."""
    data = encode_animation(frames, fmt, durations, fps)
    write_atomic(destination, data)
    return len(data)
