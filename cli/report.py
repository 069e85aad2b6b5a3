"""Reports on the command line: ``report ab`` (the groups of one log against a control) and
``report rounds`` (one round against the next), as a table, JSON and a PNG plot
(:mod:`agent.comparison`)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal

import typer

from cli.common import Number, fail, print_json

if TYPE_CHECKING:
    from agent.comparison import Outcomes

report_app = typer.Typer(
    help="Reports on logs: A/B tests of arms, channels, contents, offers or policies; round comparisons.",
    no_args_is_help=True,
    rich_markup_mode=None,
)

ByOption = Annotated[
    Literal["arm", "channel", "content", "offer", "policy"],
    typer.Option("--by", help="What a group is: arm, channel, content, offer or policy."),
]
CorrectionOption = Annotated[
    Literal["holm", "bh"],
    typer.Option(
        help="Multiple-comparison correction of the significance flags: holm or bh (both are reported)."
    ),
]
AlphaOption = Annotated[
    float,
    typer.Option(help="Significance level (intervals cover 1 - alpha).", parser=Number(0.0, 0.5, above=True)),
]
MarginOption = Annotated[
    float, typer.Option(help="Profit share of revenue in the net value.", parser=Number(0.0, 1.0))
]
MappingOption = Annotated[
    Path | None,
    typer.Option(
        help="Column mapping YAML of an external log (simulators.fit.LogMapping; default Hillstrom's)."
    ),
]
PlotOption = Annotated[Path | None, typer.Option(help="Write a PNG plot here.")]
JsonOption = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]


def _outcomes(option: str, path: Path, mapping: Path | None) -> Outcomes:
    """The log at ``path``, or exit 2 naming ``option``."""
    from agent.comparison import ReportError, load_outcomes
    from simulators.fit import LogError, LogMapping

    the_mapping = None
    if mapping is not None:
        try:
            the_mapping = LogMapping.from_file(mapping)
        except LogError as err:
            raise fail(f"--mapping: {err}") from None
    if not path.exists():
        raise fail(f"{option}: {str(path)!r} not found (a log file or a folder of decisions/events.parquet)")
    try:
        return load_outcomes(path, the_mapping)
    except (ReportError, OSError, ValueError, KeyError) as err:
        raise fail(f"{option} {str(path)!r}: {err}") from None


def _plot_target(plot: Path | None) -> None:
    if plot is None:
        return
    if plot.suffix.lower() != ".png":
        raise fail(f"--plot {str(plot)!r}: give a .png file name")
    try:
        plot.parent.mkdir(parents=True, exist_ok=True)
        with plot.open("ab"):
            pass
    except OSError as err:
        raise fail(f"--plot {str(plot)!r}: cannot write the file ({err.strerror or err})") from None


@report_app.command("ab")
def report_ab(
    log: Annotated[
        list[Path],
        typer.Option(
            "--log",
            help="A log: CSV/Parquet (one row per customer) or a campaign's export folder; repeat to "
            "pool several (e.g. two campaigns, --by policy).",
        ),
    ],
    by: ByOption = "arm",
    control: Annotated[
        str | None,
        typer.Option(help="The control group (default: no contact when present, else the largest group)."),
    ] = None,
    alpha: AlphaOption = 0.05,
    correction: CorrectionOption = "holm",
    margin: MarginOption = 0.3,
    mapping: MappingOption = None,
    plot: PlotOption = None,
    as_json: JsonOption = False,
) -> None:
    """Compare the groups of a log with a control: n, conversions, rate, revenue and net value
    per customer, cost; differences with intervals, p-values corrected (Holm and
    Benjamini-Hochberg)."""
    from agent.comparison import ReportError, ab_report, format_ab
    from agent.plots import plot_ab

    _plot_target(plot)
    from agent.comparison import Outcomes

    table = Outcomes.concat([_outcomes("--log", p, mapping) for p in log])
    try:
        rep = ab_report(table, by, control, alpha=alpha, correction=correction, margin=margin)
    except ReportError as err:
        option = "--control" if str(err).startswith("control") else "--log"
        raise fail(f"{option}: {err}") from None
    if plot is not None:
        plot_ab(rep, plot)
    if as_json:
        print_json({**rep.to_dict(), "plot": None if plot is None else str(plot)})
        return
    sys.stdout.write(format_ab(rep) + "\n")
    if plot is not None:
        print(f"wrote {plot}", file=sys.stderr)


@report_app.command("rounds")
def report_rounds(
    before: Annotated[
        Path, typer.Option("--before", help="The earlier round's log (file or export folder).")
    ],
    after: Annotated[Path, typer.Option("--after", help="The later round's log (file or export folder).")],
    by: ByOption = "arm",
    alpha: AlphaOption = 0.05,
    correction: CorrectionOption = "holm",
    margin: MarginOption = 0.3,
    mapping: MappingOption = None,
    plot: PlotOption = None,
    as_json: JsonOption = False,
) -> None:
    """Compare one campaign round with the next (two campaigns or two logs): conversions,
    spend, cost per conversion, rates by group, with deltas, intervals and p-values."""
    from agent.comparison import ReportError, format_rounds, rounds_report
    from agent.plots import plot_rounds

    _plot_target(plot)
    b = _outcomes("--before", before, mapping)
    a = _outcomes("--after", after, mapping)
    try:
        names = (before.stem or "before", after.stem or "after")
        labels = names if names[0] != names[1] else ("before", "after")
        rep = rounds_report(b, a, by, alpha=alpha, correction=correction, margin=margin, labels=labels)
    except ReportError as err:
        raise fail(f"{'--before' if 'before' in str(err) else '--after'}: {err}") from None
    if plot is not None:
        plot_rounds(rep, plot)
    if as_json:
        print_json({**rep.to_dict(), "plot": None if plot is None else str(plot)})
        return
    sys.stdout.write(format_rounds(rep) + "\n")
    if plot is not None:
        print(f"wrote {plot}", file=sys.stderr)
