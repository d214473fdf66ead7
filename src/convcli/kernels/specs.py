"""Kernels: the built-in catalogue, kernel files and kernel specs.

A kernel is a 2-D array of weights applied by **cross-correlation** (the
kernel is *not* flipped): output ``(i, j)`` is the sum over ``(u, v)`` of
``K[u, v] * X[i + u, j + v]``, rows ``u`` going down and columns ``v`` going
right. ``--convolve`` flips the kernel by 180 degrees. Every orientation and
sign stated below assumes correlation.

Spec syntax (``-k SPEC``), tried in this order:

* inline matrix: ``"0 1; 2 3"`` (rows by ``;``, values by spaces or commas);
* ImageMagick kernel string: ``"3x3: 1,0,-1, 2,0,-2, 1,0,-1"`` (``WxH``,
  columns first as ImageMagick writes it, or ``N:`` for square);
* a file path: ``.txt``/``.csv`` grid, ``.npy`` array, libvips ``.mat``
  matrix (its scale divides the weights, its offset goes to
  :attr:`Kernel.offset`), or a text file holding an ImageMagick string;
* ImageMagick's named kernels behind ``im:``: ``im:Sobel:90``,
  ``im:Gaussian:0x2``, ``im:Laplacian:2`` (:mod:`.magick`; the prefix keeps
  them apart from convcli's names, which differ: convcli's ``laplacian:4`` is
  ImageMagick's ``Laplacian:1``);
* a catalogue name with parameters: ``gaussian:7``, ``gaussian:7:1.5``,
  ``blur:5``, ``diff-x:2``, ``edge:1,1``;
* the stem of a file in a kernel directory: the ``kernels/`` folder shipped
  with convcli and the folders in ``$CONVCLI_KERNEL_PATH``.

Any of them may end in ``@METHOD`` to normalise the weights: ``@sum``,
``@abs``, ``@!``, ``@^`` (``@pn``); see :mod:`.normalize`
(``gaussian:7@sum``, ``im:Sobel@^``).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import KernelError, UnknownKernelError
from ..matrices import parse_matrix
from .catalogue import _CATALOGUE, catalogue
from .files import kernel_files, parse_imagemagick, read_kernel_file
from .normalize import normalize_kernel, split_normalization
from .weights import KERNEL_FILE_SUFFIXES, Kernel, as_kernel_array

# ---------------------------------------------------------------------------
# Specs


_INLINE_RE = re.compile(r"^[\s\d.eE+\-,;]+$")


def _slug(text: str) -> str:
    slug = re.sub(r"[^A-Za-z0-9_.+-]+", "-", text).strip("-.")
    return slug or "kernel"


def parse_kernel_spec(spec: str) -> Kernel:
    """Resolve a ``-k`` spec into a :class:`Kernel` (see the module docstring for the order).

    Raises
    ------
    UnknownKernelError
        When the spec names nothing; the message suggests the closest names.
    KernelError
        When the spec, its parameters or the file are malformed.

    Examples
    --------
    >>> parse_kernel_spec("0 1; 2 3").weights
    array([[0., 1.],
           [2., 3.]])
    >>> parse_kernel_spec("diff-x").weights
    array([[ 1., -1.]])
    """
    text = spec.strip()
    if not text:
        raise KernelError(
            "the kernel spec is empty; give a name (convcli kernels lists them) or a matrix like '0 1; 2 3'"
        )
    base, method = split_normalization(text)
    if method is not None and not Path(text).is_file():
        kernel = normalize_kernel(parse_kernel_spec(base), method)
        return Kernel(kernel.name, kernel.weights, spec, kernel.description, kernel.offset)
    if text.startswith("[") and text.endswith("]"):  # NumPy / JSON nested lists: [[0, 1], [2, 3]]
        import json

        try:
            values = json.loads(text)
        except ValueError:
            raise KernelError(
                f"kernel {text!r} looks like a nested list but is not one; write it as [[0, 1], [2, 3]] (rows in "
                "brackets, values separated by commas) or as '0 1; 2 3'"
            ) from None
        return Kernel("custom", as_kernel_array(values, f"kernel {text!r}"), spec, "nested list")
    if _INLINE_RE.match(text) and re.search(r"\d", text):
        weights = as_kernel_array(parse_matrix(text, f"kernel {text!r}", error=KernelError), f"kernel {text!r}")
        return Kernel("custom", weights, spec, "inline matrix")
    magick = parse_imagemagick(text, f"kernel {text!r}")
    if magick is not None:
        return Kernel("custom", as_kernel_array(magick, f"kernel {text!r}"), spec, "ImageMagick kernel string")
    path = Path(text)
    prefix, _, rest = text.partition(":")
    if prefix.lower() == "im" and rest.strip() and not path.is_file():
        from .magick import magick_kernel  # im: names only

        named = magick_kernel(rest)
        note = "" if named.centred else f"; ImageMagick's origin is row {named.origin[0]}, column {named.origin[1]}"
        description = f"ImageMagick kernel {named.label} ({named.weights.shape[1]}x{named.weights.shape[0]}){note}"
        return Kernel(_slug(text.replace(":", "-")), named.weights, spec, description)
    if path.suffix.lower() in KERNEL_FILE_SUFFIXES or os.sep in text or (os.altsep and os.altsep in text):
        if path.is_file():
            return _file_kernel(path, spec, f"kernel file {text}")
        if os.sep in text or path.suffix.lower() in KERNEL_FILE_SUFFIXES:
            raise KernelError(
                f"kernel file {text!r} does not exist; check the path (or use a name from 'convcli kernels')"
            )
    name, _, rest = text.partition(":")
    name = name.lower()
    if name in _CATALOGUE:
        entry = _CATALOGUE[name]
        params = rest.split(":") if rest else []
        if len(params) > entry.max_params:
            raise KernelError(f"kernel {text!r} has too many parameters; usage: {entry.usage}")
        weights = as_kernel_array(entry.build(params), f"kernel {text!r}")
        return Kernel(_slug(text.replace(":", "-")), weights, spec, entry.description)
    for path in kernel_files():
        if path.stem == text:
            return _file_kernel(path, spec, f"kernel file {path.name}")
    names = [entry.name for entry in catalogue()] + [p.stem for p in kernel_files()]
    import difflib

    close = difflib.get_close_matches(name, names, n=3, cutoff=0.5)
    hint = (
        f"did you mean {', '.join(repr(c) for c in close)}?"
        if close
        else "give a name ('convcli kernels' lists them, e.g. gaussian:7), rows as '0 1; 2 3', a nested list "
        "[[0, 1], [2, 3]], an ImageMagick string '2x2: 0,1,2,3', or a kernel file"
    )
    raise UnknownKernelError(f"unknown kernel {text!r}: not a name, a matrix or a file; {hint}")


def _file_kernel(path: Path, spec: str, description: str) -> Kernel:
    weights, offset = read_kernel_file(path)
    if offset:
        description = f"{description} (offset {offset:g} added after the sum)"
    return Kernel(_slug(path.stem), weights, spec, description, offset)


def resolve_kernel(spec: Any, *, name: str = "custom") -> Kernel:
    """A :class:`Kernel` from anything that names or holds one: ``convcli.kernel(spec)``.

    Parameters
    ----------
    spec : str, os.PathLike, array-like or Kernel
        A spec string as ``-k`` takes it (a catalogue name such as
        ``"gaussian:7"``, an inline matrix ``"0 1; 2 3"``, an ImageMagick
        string ``"3x3: ..."``, a kernel file path), a path object, a nested
        list or array of weights (a 1-D sequence is one row), or a
        :class:`Kernel` (returned as is).
    name : str
        The name given to a kernel built from an array (used in output names).

    Returns
    -------
    Kernel
        Weights applied by cross-correlation (not flipped); ``convolve=True``
        in :func:`convcli.filter` flips them.

    Raises
    ------
    KernelError, UnknownKernelError
        The spec names nothing, or the weights are not a finite 2-D grid.

    Examples
    --------
    >>> resolve_kernel("0 1; 2 3").weights
    array([[0., 1.],
           [2., 3.]])
    >>> resolve_kernel([1, -1]).shape
    (1, 2)
    >>> resolve_kernel("vertical").name
    'vertical'
    """
    if isinstance(spec, Kernel):
        return spec
    if isinstance(spec, str):
        return parse_kernel_spec(spec)
    if isinstance(spec, os.PathLike):
        return parse_kernel_spec(os.fspath(spec))
    if isinstance(spec, (bytes, bytearray)):
        raise KernelError("kernel given as bytes; decode it to a str spec, or give an array of weights")
    try:
        np.asarray(spec, dtype=np.float64)
    except (TypeError, ValueError):
        shown = repr(spec) if len(repr(spec)) <= 40 else repr(spec)[:37] + "..."
        raise KernelError(
            f"kernel {shown} is not a spec, a Kernel or an array of numbers; e.g. '0 1; 2 3' or [[0, 1], [2, 3]]"
        ) from None
    weights = as_kernel_array(spec, "kernel")
    return Kernel(_slug(name), weights, "array", f"array {weights.shape[0]}x{weights.shape[1]}")
