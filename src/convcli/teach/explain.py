"""A convolution written out step by step, for learners.

Every output element is shown as its sum of products, exactly as textbooks
write it (``0×0 + 1×1 + 3×2 + 4×3 = 19``): input value times kernel weight,
taken row by row over the window. The sums are computed here independently and
checked against the engine (:func:`convcli.engine.correlate2d`). The same
result is also shown as a matrix product: the im2col matrix (one row per
window) times the flattened kernel, and the Toeplitz-style weight matrix times
the flattened padded input.

Conventions
-----------
* Cross-correlation: the kernel is not flipped; with ``convolve=True`` it is
  flipped by 180 degrees first (true convolution) and the flipped kernel is
  shown.
* ``out[i, j] = sum_{u,v} K[u, v] * Xpad[i*sh + u*dh, j*sw + v*dw]``; output
  size per axis ``floor((n + p_before + p_after - d*(k-1) - 1)/s) + 1`` from
  :func:`convcli.shapes.conv_geometry`.
"""

from __future__ import annotations

import html
from dataclasses import dataclass

import numpy as np

from ..engine import convolve2d, correlate2d, pad2d
from ..errors import ParameterError
from ..matrices import format_matrix, format_number
from ..shapes import ConvGeometry, PaddingSpec, conv_geometry, format_pair

#: Limits above which :func:`check_small` refuses (the text would be unreadable).
MAX_OUTPUTS = 64
MAX_TAPS = 25
MAX_SIDE = 16
MAX_MATRIX_COLUMNS = 100


@dataclass(frozen=True)
class Explanation:
    """Everything :func:`render` prints.

    Attributes
    ----------
    geometry : ConvGeometry
    image : ndarray
        The input as read.
    padded : ndarray
        The padded input the windows slide over.
    given : ndarray
        The kernel as given.
    kernel : ndarray
        The kernel as applied (flipped when ``convolve``).
    terms : list of list of (value, weight)
        Per output element (row-major), its products in window order.
    output : ndarray
        The sums, computed here.
    engine : ndarray
        :func:`convcli.engine.correlate2d` on the same input.
    name : str
        How the text names the input (``convcli explain`` gives the source).
    matrix : bool
        Also show the im2col and weight-matrix products.

    ``str()`` is :func:`render` with ``×`` (what ``convcli explain`` prints);
    ``_repr_html_`` shows the sums as an HTML table (notebooks).
    """

    geometry: ConvGeometry
    image: np.ndarray
    padded: np.ndarray
    given: np.ndarray
    kernel: np.ndarray
    convolve: bool
    pad_mode: str
    terms: list[list[tuple[float, float]]]
    output: np.ndarray
    engine: np.ndarray
    name: str = "input"
    matrix: bool = False

    def text(self, times: str = "×") -> str:
        """The whole explanation as text, with ``times`` as the multiplication sign."""
        return render(self, source=self.name, matrix=self.matrix, times=times)

    def __str__(self) -> str:
        return self.text()

    def _repr_html_(self) -> str:
        return explanation_html(self)


def check_small(geometry: ConvGeometry, matrix: bool = False) -> None:
    """Refuse, politely, examples too large to read as text.

    Raises
    ------
    ParameterError
        Naming the size and the limit.
    """
    outputs = geometry.output[0] * geometry.output[1]
    taps = geometry.kernel[0] * geometry.kernel[1]
    padded = geometry.padded
    problems = []
    if max(padded) > MAX_SIDE:
        problems.append(f"the padded input is {format_pair(padded)} (limit {MAX_SIDE} per side)")
    if outputs > MAX_OUTPUTS:
        problems.append(f"it would write {outputs} sums (limit {MAX_OUTPUTS})")
    if taps > MAX_TAPS:
        problems.append(f"the kernel has {taps} taps (limit {MAX_TAPS})")
    if matrix and padded[0] * padded[1] > MAX_MATRIX_COLUMNS:
        problems.append(
            f"--matrix would print a weight matrix with {padded[0] * padded[1]} columns (limit {MAX_MATRIX_COLUMNS})"
        )
    if problems:
        raise ParameterError(
            "explain is for small examples and this one is too big to read: "
            + "; ".join(problems)
            + ". Crop the input (e.g. a .txt grid) or use 'convcli filter' for the result alone"
        )


def explain(
    image: np.ndarray,
    kernel: np.ndarray,
    *,
    stride: tuple[int, int] = (1, 1),
    padding: PaddingSpec = (0, 0),
    dilation: tuple[int, int] = (1, 1),
    convolve: bool = False,
    pad_mode: str = "zeros",
    pad_value: float = 0.0,
    matrix: bool = False,
    name: str = "input",
) -> Explanation:
    """Compute every output element as an explicit sum of products, and the engine's result.

    Raises
    ------
    ParameterError
        When the example is too large (see :func:`check_small`) or the input is not 2-D.

    Examples
    --------
    >>> e = explain(np.arange(9.0).reshape(3, 3), np.array([[0., 1.], [2., 3.]]))
    >>> e.terms[0]
    [(0.0, 0.0), (1.0, 1.0), (3.0, 2.0), (4.0, 3.0)]
    >>> e.output
    array([[19., 25.],
           [37., 43.]])
    """
    image = np.asarray(image, dtype=np.float64)
    if image.ndim != 2:
        raise ParameterError(f"explain works on one 2-D grid; got shape {image.shape}")
    given = np.asarray(kernel, dtype=np.float64)
    applied = given[::-1, ::-1] if convolve else given
    geometry = conv_geometry(image.shape, applied.shape, stride, padding, dilation)  # type: ignore[arg-type]
    check_small(geometry, matrix)
    padded = pad2d(image, geometry.padding, pad_mode, pad_value)
    (sh, sw), (dh, dw) = geometry.stride, geometry.dilation
    terms = []
    sums = np.zeros(geometry.output)
    for i in range(geometry.output[0]):
        for j in range(geometry.output[1]):
            products = [
                (float(padded[i * sh + u * dh, j * sw + v * dw]), float(applied[u, v]))
                for u in range(applied.shape[0])
                for v in range(applied.shape[1])
            ]
            terms.append(products)
            total = 0.0
            for value, weight in products:
                total += value * weight
            sums[i, j] = total
    engine = (convolve2d if convolve else correlate2d)(
        image,
        given,
        stride=geometry.stride,
        padding=padding,
        dilation=geometry.dilation,
        pad_mode=pad_mode,
        pad_value=pad_value,
        method="direct",
    )
    return Explanation(geometry, image, padded, given, applied, convolve, pad_mode, terms, sums, engine, name, matrix)


def im2col(explanation: Explanation) -> np.ndarray:
    """One row per output element: its window of the padded input, read row by row.

    ``im2col(e) @ e.kernel.ravel()`` is the output, flattened row-major.
    """
    return np.array([[value for value, _ in products] for products in explanation.terms]).reshape(
        len(explanation.terms), explanation.kernel.size
    )


def weight_matrix(explanation: Explanation) -> np.ndarray:
    """The Toeplitz-style matrix ``W`` with ``W @ padded.ravel() == output.ravel()``.

    Row ``(i, j)`` holds kernel weight ``K[u, v]`` in the column of padded
    pixel ``(i*sh + u*dh, j*sw + v*dw)`` and zeros elsewhere.
    """
    geometry = explanation.geometry
    rows, cols = explanation.padded.shape
    (sh, sw), (dh, dw) = geometry.stride, geometry.dilation
    kh, kw = explanation.kernel.shape
    matrix = np.zeros((geometry.output[0] * geometry.output[1], rows * cols))
    for i in range(geometry.output[0]):
        for j in range(geometry.output[1]):
            for u in range(kh):
                for v in range(kw):
                    matrix[i * geometry.output[1] + j, (i * sh + u * dh) * cols + (j * sw + v * dw)] += (
                        explanation.kernel[u, v]
                    )
    return matrix


def _number(value: float) -> str:
    """Readable: 12 significant digits at most (sums of decimals stay tidy)."""
    return format_number(float(f"{value:.12g}"))


def _factor(value: float) -> str:
    text = _number(value)
    return f"({text})" if text.startswith("-") else text


def format_sum(products: list[tuple[float, float]], total: float, times: str = "×") -> str:
    """``0×0 + 1×1 + 3×2 + 4×3 = 19``: input value times weight, in window order.

    >>> format_sum([(0.0, 0.0), (1.0, 1.0), (3.0, 2.0), (4.0, 3.0)], 19.0)
    '0×0 + 1×1 + 3×2 + 4×3 = 19'
    >>> format_sum([(2.0, -1.0), (-0.5, 2.0)], -3.0, times="*")
    '2*(-1) + (-0.5)*2 = -3'
    """
    return " + ".join(f"{_factor(v)}{times}{_factor(w)}" for v, w in products) + f" = {_number(total)}"


def _grid(array: np.ndarray) -> str:
    return format_matrix(np.vectorize(lambda x: float(f"{x:.12g}"))(array) if array.size else array, align=True)


def _agrees(a: np.ndarray, b: np.ndarray) -> bool:
    return a.shape == b.shape and bool(np.allclose(a, b, rtol=1e-9, atol=1e-12))


def render(explanation: Explanation, *, source: str = "input", matrix: bool = False, times: str = "×") -> str:
    """The whole explanation as text (what ``convcli explain`` prints)."""
    e = explanation
    g = e.geometry
    (t, b), (left, r) = g.padding
    padding = f"{t}x{left}" if (t, left) == (b, r) else f"{t},{b}x{left},{r}"
    operation = "convolution (kernel flipped)" if e.convolve else "cross-correlation (kernel not flipped)"
    lines = [
        f"{operation} of {source} {format_pair(g.input)} (HxW) with a {format_pair(g.kernel)} kernel, "
        f"stride {format_pair(g.stride)}, padding {padding}, dilation {format_pair(g.dilation)} "
        f"-> output {format_pair(g.output)}",
        "",
    ]
    if g.padding == ((0, 0), (0, 0)):
        lines += [f"input ({format_pair(g.input)}):", _grid(e.padded), ""]
    else:
        fill = {"zeros": "zeros", "constant": "a constant"}.get(e.pad_mode, f"'{e.pad_mode}' values")
        lines += [
            f"padded input ({format_pair(g.padded)}: the {format_pair(g.input)} input with {padding} rows/columns "
            f"of {fill} around it):",
            _grid(e.padded),
            "",
        ]
    if e.convolve:
        lines += [
            f"kernel as given ({format_pair(g.kernel)}):",
            _grid(e.given),
            "",
            "flipped 180 degrees (a convolution slides the flipped kernel):",
            _grid(e.kernel),
            "",
        ]
    else:
        lines += [f"kernel ({format_pair(g.kernel)}):", _grid(e.kernel), ""]
    where = []
    if g.stride != (1, 1):
        where.append(f"windows step {format_pair(g.stride)}")
    if g.dilation != (1, 1):
        where.append(f"taps {format_pair(g.dilation)} apart")
    lines.append(
        "each output = sum of (input value "
        + times
        + " kernel weight) over its window, row by row"
        + (f" ({', '.join(where)})" if where else "")
        + ":"
    )
    width = len(f"out[{g.output[0] - 1},{g.output[1] - 1}]")
    flat = e.output.ravel()
    for index, products in enumerate(e.terms):
        i, j = divmod(index, g.output[1])
        label = f"out[{i},{j}]".ljust(width)
        lines.append(f"{label} = {format_sum(products, flat[index], times)}")
    lines += ["", f"output ({format_pair(g.output)}):", _grid(e.output), ""]
    checks = [("the sums", e.output)]
    if matrix:
        columns = im2col(e)
        kernel_column = e.kernel.ravel()
        by_im2col = (columns @ kernel_column).reshape(g.output)
        weights = weight_matrix(e)
        by_weights = (weights @ e.padded.ravel()).reshape(g.output)
        taps = [f"k[{u},{v}]" for u in range(g.kernel[0]) for v in range(g.kernel[1])]
        labels = [f"out[{i},{j}]" for i in range(g.output[0]) for j in range(g.output[1])]
        cells = [["", *taps]] + [[labels[n], *[_number(x) for x in columns[n]]] for n in range(len(labels))]
        widths = [max(len(row[c]) for row in cells) for c in range(len(cells[0]))]
        lines += [
            f"as a matrix product (im2col): one row per output, its window read row by row ({len(labels)}x{len(taps)})",
            *["  ".join(cell.rjust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in cells],
            f"times the kernel as a column, same order: {' '.join(_number(x) for x in kernel_column)}",
            f"= {' '.join(_number(x) for x in by_im2col.ravel())} -> {format_pair(g.output)}, the output above",
            "",
            f"as a weight matrix (Toeplitz style): W ({weights.shape[0]}x{weights.shape[1]}) has one row per output "
            "and one column per padded input pixel (row by row); each row holds the kernel where its window reads",
            _grid(weights),
            f"times the padded input flattened row by row: {' '.join(_number(x) for x in e.padded.ravel())}",
            f"= {' '.join(_number(x) for x in by_weights.ravel())} -> {format_pair(g.output)}, the output above",
            "",
        ]
        checks += [("im2col", by_im2col), ("the weight matrix", by_weights)]
    agree = all(_agrees(values, e.engine) for _, values in checks)
    labels = [name for name, _ in checks]
    names = ", ".join(labels[:-1]) + " and " + labels[-1] + " all" if len(labels) > 1 else labels[0]
    function = "convolve2d" if e.convolve else "correlate2d"
    if agree:
        lines.append(f"check: {names} equal the result of convcli's engine ({function})")
    else:
        worst = max(float(np.max(np.abs(values - e.engine))) for _, values in checks)
        lines.append(f"check FAILED: {names} differ from convcli's engine by up to {worst:g} (please report this)")
    return "\n".join(lines)


def _html_grid(array: np.ndarray, caption: str) -> str:
    rows = "".join(
        "<tr>" + "".join(f'<td style="text-align:right">{_number(v)}</td>' for v in row) + "</tr>" for row in array
    )
    return f"<table><caption>{html.escape(caption)}</caption>{rows}</table>"


def explanation_html(explanation: Explanation, times: str = "×") -> str:
    """The input, the kernel as applied and a table of outputs, each cell its sum of products."""
    e = explanation
    g = e.geometry
    heading = render(e, source=e.name, times=times).split("\n", 1)[0]
    kernel = "kernel, flipped 180 degrees" if e.convolve else "kernel"
    cells = []
    for i in range(g.output[0]):
        row = []
        for j in range(g.output[1]):
            index = i * g.output[1] + j
            text = format_sum(e.terms[index], float(e.output[i, j]), times)
            row.append(f"<td><code>out[{i},{j}] = {html.escape(text)}</code></td>")
        cells.append("<tr>" + "".join(row) + "</tr>")
    return (
        f"<p>{html.escape(heading)}</p>"
        '<div style="display:flex;gap:2em;align-items:flex-start">'
        f"{_html_grid(e.padded, 'padded input' if g.padding != ((0, 0), (0, 0)) else 'input')}"
        f"{_html_grid(e.kernel, kernel)}</div>"
        f"<table><caption>each output: input value {html.escape(times)} kernel weight over its window</caption>"
        + "".join(cells)
        + "</table>"
    )
