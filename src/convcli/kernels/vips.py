"""libvips matrix files (``.mat``): ``width height [scale [offset]]``, then the rows; read and written.

Format
------
The first line holds the width and the height (whole numbers), then
optionally a scale (default 1) and an offset (default 0); then ``height``
lines of ``width`` numbers each. libvips applies the mask as::

    out = sum(mask * window) / scale + offset

so convcli reads a ``.mat`` file into weights ``rows / scale`` and puts the
offset on :attr:`Kernel.offset <convcli.kernels.Kernel.offset>`, which
``filter`` adds to its bias.

How libvips 8.14 reads and applies it (``/usr/bin/vips``, checked with the
commands shown; ``imp.v`` is a 5x5 double image holding a 1 at (2, 2), made
by ``vips matrixload imp4.mat imp.v``, and outputs are printed with ``vips
csvsave out.v /dev/stdout``)
------------------------------------------------------------------------------
* **Correlation, not flipped**: ``vips conv imp.v out.v m.mat --precision
  float`` with ``m.mat`` = ``3 3 / 1 2 3 / 4 5 6 / 7 8 9`` writes ``9 8 7 / 6
  5 4 / 3 2 1`` around the impulse (the kernel turned by 180 degrees, which
  is what correlating an impulse gives). convcli's default (no
  ``--convolve``) matches it.
* **scale and offset**: ``3 1 4 10 / 1 2 3`` gives ``10.75 10.5 10.25`` around
  the impulse and 10 elsewhere (``sum / 4 + 10``); ``3 1 -2 0 / 1 0 0`` gives
  -0.5 (a negative scale is allowed); ``3 1 0 0`` is refused ("zero scale");
  ``3 1 0.5 0 / 1 2 3`` gives ``6 4 2``.
* **Header**: spaces or tabs between the fields (``3,1,1,0`` is refused by
  8.14: "no width / height"); ``3.0`` is a width, ``3.5`` is refused; a fifth
  field is ignored. Rows: a short row is refused ("line 0 too short"), extra
  values at the end of a row and extra rows after the last are *ignored*, a
  blank line counts as a (short) row, and lines after the rows are ignored.
  convcli is stricter where libvips guesses: the header must have 2 to 4
  fields, and the rows must be exactly ``height`` rows of exactly ``width``
  numbers (the mistake this module exists to catch), each refused with a
  one-line message naming the header. Commas between values are accepted,
  as are blank lines and ``#`` comments (convcli's text grids allow them).
* **Sniffing quirk**: libvips recognises a ``.mat`` *file name* (as the mask
  of ``vips conv``) by parsing the start of the file as a header, and 8.14
  evidently reads past the first line: a two-field header followed by a row
  whose second value is 0 (``3 1`` then ``1 0 0``; the "scale" it finds is 0)
  is "not a known file format" for ``vips conv``, while ``vips matrixload``
  reads it, and ``3 1`` then ``1 5 0`` works. :func:`format_vips_matrix`
  therefore always writes all four fields.
* **Edges**: the output has the input's size and the border repeats the edge
  pixel: a 3x3 of ones over ``5*r + c`` (5x5) gives 18 at (0, 0) =
  ``3*5 + 3``, i.e. convcli's ``--padding same --pad-mode replicate``.
* **Even sizes**: the window's anchor is ``(height//2, width//2)``: ``2 2 /
  1 2 / 3 4`` writes 4 at (2, 2) and 1 at (3, 3) around the impulse, so the
  extra row and column are above and to the left (ndimage's placement, not
  PyTorch's 'same'). Odd sizes are centred.
* **Precision**: ``--precision float`` (the 8.14 default) computes in
  floating point; ``integer`` rounds the mask first and is not what convcli
  reproduces.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import KernelError
from ..matrices import format_matrix, format_number
from .weights import MAX_KERNEL_SIDE, as_kernel_array

_FIELDS = re.compile(r"[\s,]+")


@dataclass(frozen=True)
class VipsMatrix:
    """A libvips matrix file: the rows as written, and the header's scale and offset.

    ``weights`` (``rows / scale``) is the kernel convcli applies before adding
    ``offset``.
    """

    rows: np.ndarray
    scale: float = 1.0
    offset: float = 0.0

    @property
    def weights(self) -> np.ndarray:
        """``rows / scale``, read-only float64."""
        weights = np.ascontiguousarray(self.rows / self.scale)
        weights.setflags(write=False)
        return weights


def _numbers(line: str) -> list[str]:
    return [t for t in _FIELDS.split(line.strip()) if t]


def parse_vips_matrix(text: str, what: str = "libvips matrix") -> VipsMatrix:
    """Parse the text of a ``.mat`` file, refusing a header that disagrees with the rows.

    Raises
    ------
    KernelError
        The header is not ``width height [scale [offset]]`` (whole positive
        sizes up to 4096, a non-zero scale, finite numbers), or the rows are
        not ``height`` rows of ``width`` numbers; the message quotes the
        header.

    Examples
    --------
    >>> m = parse_vips_matrix("3 1 4 10\\n1 2 3\\n")
    >>> m.weights, m.offset
    (array([[0.25, 0.5 , 0.75]]), 10.0)
    """
    lines = [(number, line.split("#", 1)[0]) for number, line in enumerate(text.splitlines(), start=1)]
    lines = [(number, line) for number, line in lines if line.strip()]
    if not lines:
        raise KernelError(f"{what} is empty; a .mat file starts with 'width height [scale [offset]]'")
    header_line, header_text = lines[0]
    header = " ".join(_numbers(header_text))
    fields = _numbers(header_text)
    usage = "a .mat header is 'width height [scale [offset]]'"
    if not 2 <= len(fields) <= 4:
        raise KernelError(f"{what}: header {header!r} has {len(fields)} fields; {usage}")
    try:
        values = [float(f) for f in fields]
    except ValueError:
        raise KernelError(f"{what}: header {header!r} is not numbers; {usage}") from None
    if not all(math.isfinite(v) for v in values):
        raise KernelError(f"{what}: header {header!r} holds a number that is not finite; {usage}")
    width, height = values[0], values[1]
    for name, size, field in (("width", width, fields[0]), ("height", height, fields[1])):
        if size != int(size) or not 1 <= size <= MAX_KERNEL_SIDE:
            raise KernelError(
                f"{what}: header {header!r} gives {name} {field}; use a whole number from 1 to {MAX_KERNEL_SIDE}"
            )
    scale = values[2] if len(values) > 2 else 1.0
    offset = values[3] if len(values) > 3 else 0.0
    if scale == 0:
        raise KernelError(
            f"{what}: header {header!r} has scale 0; libvips divides by the scale, so give a non-zero one"
        )
    w, h = int(width), int(height)
    rows: list[list[float]] = []
    for number, line in lines[1:]:
        tokens = _numbers(line)
        if len(rows) == h:
            raise KernelError(
                f"{what}: header {header!r} says {h} row{'s' if h != 1 else ''} but line {number} holds another; "
                "fix the height or remove the extra rows"
            )
        if len(tokens) != w:
            raise KernelError(
                f"{what}, line {number}: row {len(rows) + 1} has {len(tokens)} values but header {header!r} says "
                f"width {w}"
            )
        try:
            row = [float(t) for t in tokens]
        except ValueError:
            bad = next(t for t in tokens if not _is_float(t))
            raise KernelError(f"{what}, line {number}: {bad!r} is not a number") from None
        rows.append(row)
    if len(rows) != h:
        raise KernelError(f"{what}: header {header!r} says {h} rows but the file has {len(rows)}; fix the height")
    array = as_kernel_array(rows, what)
    return VipsMatrix(array, scale, offset)


def _is_float(token: str) -> bool:
    try:
        float(token)
    except ValueError:
        return False
    return True


def load_vips_matrix(path: Path | str) -> VipsMatrix:
    """Read a ``.mat`` file (see :func:`parse_vips_matrix`)."""
    path = Path(path)
    what = f"kernel file {str(path)!r}"
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise KernelError(
            f"{what} is not text; a .mat kernel is a libvips matrix ('width height [scale [offset]]' and rows), "
            "not a MATLAB file"
        ) from None
    except OSError as exc:
        raise KernelError(f"cannot read {what}: {exc.strerror or exc}") from None
    return parse_vips_matrix(text, what)


def format_vips_matrix(rows: Any, *, scale: float = 1.0, offset: float = 0.0, comments: tuple[str, ...] = ()) -> str:
    """The text of a ``.mat`` file holding ``rows`` with ``scale`` and ``offset``.

    All four header fields are always written (libvips 8.14 may not recognise
    a two-field header, see the module docstring); ``comments`` follow the
    rows as ``#`` lines, which libvips ignores there.

    >>> print(format_vips_matrix([[1, 2, 1]], scale=4), end="")
    3 1 4 0
    1 2 1
    """
    array = as_kernel_array(rows, "kernel")
    for name, value in (("scale", scale), ("offset", offset)):
        if not math.isfinite(value):
            raise KernelError(f"{name} {value!r} of a .mat file must be a finite number")
    if scale == 0:
        raise KernelError("scale 0 of a .mat file: libvips divides by the scale, so give a non-zero one")
    h, w = array.shape
    header = f"{w} {h} {format_number(float(scale))} {format_number(float(offset))}"
    lines = [header, format_matrix(array)] + [f"# {line}" for line in comments]
    return "\n".join(lines) + "\n"
