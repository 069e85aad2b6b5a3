"""``campaign-opt``: the command line (typer). Every command has ``--help`` and ``--json``; bad
input exits with code 2 and one line naming the option (see :mod:`cli.common`)."""

from __future__ import annotations

import typer

from cli.audience import audience_app
from cli.benchmark import benchmark
from cli.evaluate import evaluate
from cli.experiment import experiment_app
from cli.pacer import train_pacer
from cli.policies import policies_app
from cli.report import report_app
from cli.scenario import calibration, scenario_app, scenarios
from cli.serve import demo, keys_app, serve
from cli.simulate import simulate
from cli.train import train

app = typer.Typer(
    name="campaign-opt",
    help="Autonomous campaign optimizer: simulate campaigns, calibrate scenarios, compare policies.",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode=None,  # help text is plain text ("K/W[/GAP]" is not markup); errors are one line
)
# Commands are listed in --help in this order (then the groups, in theirs).
app.add_typer(experiment_app, name="experiment")
app.command()(scenarios)
app.command()(simulate)
app.command()(train)
app.command()(evaluate)
app.command()(calibration)
app.command()(benchmark)
app.command(name="train-pacer")(train_pacer)
app.add_typer(keys_app, name="keys")
app.add_typer(audience_app, name="audience")
app.command()(serve)
app.command()(demo)
app.add_typer(scenario_app, name="scenario")
app.add_typer(policies_app, name="policies")
app.add_typer(report_app, name="report")


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":
    main()
