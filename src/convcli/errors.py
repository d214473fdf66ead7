"""The convcli exception family.

Every error a user can cause is a :class:`ConvcliError`. Each subclass also
inherits the matching builtin (``ValueError``, ``LookupError``, ``OSError``) so
library callers can catch what they already know. The command line translates
them in one place (``convcli.cli``) into a one-line message and an exit code:
2 when the command line itself is wrong, 1 when something fails while running.

This module imports nothing from convcli.
"""

from __future__ import annotations

EXIT_USAGE = 2
EXIT_FAILURE = 1


class ConvcliError(Exception):
    """Base class: a problem the user can fix; never shown with a traceback."""

    exit_code = EXIT_FAILURE


class ParameterError(ConvcliError, ValueError):
    """An option value or a combination of options is invalid (exit 2)."""

    exit_code = EXIT_USAGE


class ShapeError(ParameterError):
    """Sizes, kernel, stride, padding and dilation do not fit together (exit 2)."""


class KernelError(ParameterError):
    """A kernel spec, kernel file or kernel value is unusable (exit 2)."""


class UnknownKernelError(KernelError, LookupError):
    """A kernel name is not in the catalogue (exit 2)."""


class SourceError(ConvcliError, OSError):
    """A source (path, URL, stdin) cannot be read (exit 1)."""


class DecodeError(ConvcliError, ValueError):
    """A source was read but is not an image or a numeric matrix (exit 1)."""


class OutputError(ConvcliError, OSError):
    """An output cannot be written (exit 1)."""


class OutputUsageError(ParameterError):
    """The output options are wrong before any work starts (exit 2)."""
