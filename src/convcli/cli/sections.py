"""Help in sections, and "did you mean" for a mistyped command: the click classes every command uses.

``filter --help`` lists some forty options; one flat list hides the two that
matter. :data:`SECTIONS` maps each option (by its parameter name) to the
section it is listed under, in one place, so every command groups its options
the same way; ``tests/test_first_minutes_two.py`` fails when an option is in no
section, so a new option cannot be forgotten.
"""

from __future__ import annotations

import inspect
from typing import Any

import click

#: section title -> the options (click parameter names) listed under it, in the order the sections print.
SECTIONS: dict[str, tuple[str, ...]] = {
    "Operation": (
        "kernels",
        "kernel",
        "chain",
        "op",
        "size",
        "input_size",
        "layer_file",
        "layer_kernels",
        "bias",
        "method",
        "precision",
        "matrix",
        "flip",
        "freq",
    ),
    "Geometry": (
        "stride",
        "padding",
        "dilation",
        "origin",
        "same_extra",
        "pad_mode",
        "pad_value",
        "convolve",
        "ceil_mode",
        "count_include_pad",
        "output_padding",
        "output_size",
    ),
    "Learning": ("demo", "learn_bias", "solver", "optimizer", "epochs", "lr", "seed", "every"),
    "Sources": ("gray", "normalize_method", "color", "frame", "orient", "timeout", "max_download"),
    "Outputs": (
        "output",
        "output_format",
        "scale",
        "percentile",
        "vmin",
        "vmax",
        "depth",
        "compression",
        "pixel",
        "effective",
        "as_json",
        "quiet",
        "verbose",
    ),
    "Batch": (
        "recursive",
        "from_file",
        "outdir",
        "name_template",
        "jobs",
        "fail_fast",
        "scheduler",
        "scheduler_timeout",
    ),
    "Limits": ("max_pixels", "max_memory", "stream", "strip_rows", "tile"),
    "Figures": ("figure", "cmap", "plot", "log_scale"),
    "Animation": ("animation_format", "fps", "hold", "frames", "grid", "dpi"),
    "Other": ("help", "version"),
}

#: option name -> its section title
SECTION_OF: dict[str, str] = {name: title for title, names in SECTIONS.items() for name in names}


def section_of(param: click.Parameter, ctx: click.Context) -> str | None:
    """The section an option is listed under (``None``: not in :data:`SECTIONS`)."""
    if param is ctx.command.get_help_option(ctx):
        return "Other"
    return SECTION_OF.get(param.name or "")


def _format_sections(command: click.Command, ctx: click.Context, formatter: click.HelpFormatter) -> None:
    """The options of ``command`` under their section titles, in :data:`SECTIONS` order."""
    grouped: dict[str, list[tuple[str, str]]] = {title: [] for title in [*SECTIONS, "Options"]}
    for param in command.get_params(ctx):
        record = param.get_help_record(ctx) if isinstance(param, click.Option) else None
        if record is None:  # arguments (described in the text) and hidden options
            continue
        grouped[section_of(param, ctx) or "Options"].append(record)
    width = min(30, max((len(term) for records in grouped.values() for term, _ in records), default=0))
    for title, records in grouped.items():
        if records:
            with formatter.section(title):
                formatter.write_dl(
                    records, col_max=width, col_spacing=2 + width - min(width, max(len(t) for t, _ in records))
                )


def suggest_command(name: str, group: click.Group, ctx: click.Context) -> str:
    """``no such command 'fliter'; did you mean 'filter'?`` (the suggestion only when one is close)."""
    import difflib  # a mistyped command only

    close = difflib.get_close_matches(name, group.list_commands(ctx), n=1)
    return f"no such command {name!r}" + (f"; did you mean {close[0]!r}?" if close else "")


def suggest_option(error: click.NoSuchOption) -> str:
    """``no such option '--kernal'; did you mean '--kernel'?``: the closest visible options of the command first."""
    text = f"no such option {error.option_name!r}"
    names: list[str] = list(error.possibilities or [])
    if error.ctx is not None:
        names = [
            name
            for param in error.ctx.command.get_params(error.ctx)
            if isinstance(param, click.Option) and not param.hidden
            for name in [*param.opts, *param.secondary_opts]
            if name.startswith("--")
        ]
    import difflib  # a mistyped option only

    close = difflib.get_close_matches(error.option_name, names, n=2, cutoff=0.6)
    if close:
        text += "; did you mean " + " or ".join(repr(name) for name in close) + "?"
    return text


def examples_first(text: str) -> str:
    """A help text with its ``Examples:`` block moved up, right after the first paragraph (the short help).

    >>> print(examples_first("Do it.\\n\\nDetails.\\n\\n\\b\\nExamples:\\n  convcli x"))
    Do it.
    <BLANKLINE>
    \b
    Examples:
      convcli x
    <BLANKLINE>
    Details.
    """
    paragraphs = inspect.cleandoc(text).split("\n\n")
    found = [i for i, p in enumerate(paragraphs) if p.startswith("\b\nExamples:")]
    if not found or found[0] < 2:
        return text
    block = paragraphs.pop(found[0])
    paragraphs.insert(1, block)
    return "\n\n".join(paragraphs)


class SectionedCommand(click.Command):
    """A command whose ``--help`` shows its examples first and lists its options in sections (:data:`SECTIONS`)."""

    def format_help_text(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        if self.help:
            self.help = examples_first(self.help)
        super().format_help_text(ctx, formatter)

    def format_options(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        _format_sections(self, ctx, formatter)


class SectionedGroup(click.Group):
    """A group with sectioned help whose subcommands are :class:`SectionedCommand` s, and a "did you mean"
    for a mistyped subcommand."""

    command_class = SectionedCommand

    def format_help_text(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        if self.help:
            self.help = examples_first(self.help)
        super().format_help_text(ctx, formatter)

    def format_options(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        _format_sections(self, ctx, formatter)
        self.format_commands(ctx, formatter)

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        name = args[0] if args else ""
        if name and not name.startswith("-") and self.get_command(ctx, name) is None:
            raise click.UsageError(suggest_command(name, self, ctx), ctx)
        return super().resolve_command(ctx, args)


SectionedGroup.group_class = SectionedGroup


def usage_message(error: click.UsageError) -> str:
    """The one-line text of a usage error, with convcli's wording for an unknown option."""
    if isinstance(error, click.NoSuchOption):
        return suggest_option(error)
    text: Any = error.format_message()
    return str(text).rstrip(".")
