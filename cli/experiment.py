"""``campaign-opt experiment``: run experiment files and compare their runs from MLflow."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from cli.common import fail, print_json, runs_bar, stderr, writable_folder

experiment_app = typer.Typer(
    name="experiment",
    help="Run experiment files (YAML) in parallel with Ray, tracked in MLflow; compare their runs.",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode=None,
)
_out = Console(soft_wrap=True)


_STORES = ("sqlite", "postgresql", "mysql", "mssql", "http", "https")
"""URI schemes of the MLflow stores an experiment can be tracked in (databases and servers)."""


def _tracking_uri(cfg: Any, override: str | None) -> str:
    """The tracking URI (``--tracking-uri``, ``$MLFLOW_TRACKING_URI`` or the config's), or exit 2."""
    from experiments.runner import RunnerError
    from experiments.tracking import resolve_tracking_uri

    where = "--tracking-uri, $MLFLOW_TRACKING_URI or the config's tracking.tracking_uri"
    try:
        uri = resolve_tracking_uri(cfg, override)
    except (RunnerError, OSError) as err:  # OSError: the SQLite file's folder cannot be made
        raise fail(f"{where}: {err}") from None
    if uri.partition("://")[0].partition("+")[0] not in _STORES:
        raise fail(
            f"{where}: {uri!r}: use one of the schemes {list(_STORES)}, e.g. sqlite:///mlruns/mlflow.db"
        )
    return uri


@experiment_app.command("run")
def run(
    config: Annotated[Path, typer.Argument(help="Experiment YAML file (see experiments/configs/).")],
    workers: Annotated[
        int, typer.Option(help="Parallel trials: Ray tasks on a local Ray (1: serial, no Ray).", min=1)
    ] = 1,
    address: Annotated[
        str | None, typer.Option(help="Join this Ray cluster (e.g. ray://head:10001 or auto) instead.")
    ] = None,
    register: Annotated[
        str | None,
        typer.Option(help="Register the best trial's policy as this model, with alias 'champion'."),
    ] = None,
    tracking_uri: Annotated[
        str | None,
        typer.Option(help="MLflow tracking URI (default: MLFLOW_TRACKING_URI, then the config's)."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Run every trial of CONFIG (train, then evaluate), log them to MLflow, print the table."""
    from mlflow.exceptions import MlflowException

    from experiments.compare import compare_results, to_markdown
    from experiments.config import ConfigError, load_config
    from experiments.runner import RunnerError, TrialResult, run_experiment

    try:
        cfg = load_config(config)
    except ConfigError as err:
        raise fail(f"CONFIG: {err}") from None
    except (OSError, UnicodeDecodeError) as err:  # a file that is not UTF-8 text, here or a scenario
        raise fail(f"CONFIG {str(config)!r}: cannot read a file of it as UTF-8 YAML ({err})") from None
    uri = _tracking_uri(cfg, tracking_uri)
    total = cfg.n_trials()
    stderr.print(
        f"experiment [bold]{cfg.name}[/]: {total} trials on "
        f"{'Ray at ' + address if address else (f'{workers} workers' if workers > 1 else '1 process')}; "
        f"tracking {uri}",
        highlight=False,
    )
    with runs_bar(cfg.name, as_json) as bar:
        task = bar.add_task(cfg.name, total=total, last="")

        def done(r: TrialResult) -> None:
            bar.update(task, advance=1, last=r.trial_id)
            if not stderr.is_terminal and not as_json:
                stderr.print(f"done {r.trial_id}", highlight=False)

        try:
            result = run_experiment(
                cfg, workers=workers, address=address, on_result=done, register=register, tracking_uri=uri
            )
        except (RunnerError, MlflowException) as err:
            raise fail(str(err)) from None
    if as_json:
        print_json(result.to_dict())
        return
    _out.print(to_markdown(compare_results(result.results)), highlight=False)
    stderr.print(
        f"{len(result.results)} trials in {result.seconds:,.1f}s; MLflow experiment {cfg.experiment_name!r}, "
        f"parent run {result.parent_run_id}; open with: mlflow ui --backend-store-uri {uri}",
        highlight=False,
    )
    if result.registered is not None:
        reg = result.registered
        stderr.print(
            f"registered {reg.trial_id} as {reg.name} version {reg.version} (alias {reg.alias}); "
            f"run it with: campaign-opt simulate --policy {reg.uri}",
            highlight=False,
        )


@experiment_app.command("compare")
def compare(
    name: Annotated[str, typer.Argument(help="MLflow experiment name (the config's name by default).")],
    run_id: Annotated[
        str | None, typer.Option(help="A parent run id (default: the experiment's latest run).")
    ] = None,
    tracking_uri: Annotated[
        str | None,
        typer.Option(
            help="MLflow tracking URI (default: MLFLOW_TRACKING_URI, then sqlite:///mlruns/mlflow.db)."
        ),
    ] = None,
    out_dir: Annotated[Path, typer.Option("--out", help="Folder for comparison.png and .md.")] = Path(
        "runs/compare"
    ),
    as_json: Annotated[bool, typer.Option("--json", help="Print the rows as JSON.")] = False,
) -> None:
    """Table of an experiment's runs: per scenario and policy, median and IQR over seeds."""
    from dataclasses import asdict

    from mlflow.exceptions import MlflowException

    from experiments.compare import compare_records, to_markdown
    from experiments.plots import plot_comparison
    from experiments.runner import RunnerError
    from experiments.tracking import trial_records

    uri = _tracking_uri(None, tracking_uri)
    writable_folder("--out", out_dir)
    try:
        parent, records = trial_records(uri, name, run_id)
    except RunnerError as err:
        raise fail(f"NAME {name!r}: {err}") from None
    except MlflowException as err:  # the given run, or else the store, is not there
        raise fail(f"{'--run-id' if run_id is not None else '--tracking-uri'}: {err}") from None
    if not records:
        raise fail(f"NAME {name!r}: run {parent} has no trial runs")
    rows = compare_records(records)
    png = plot_comparison(rows, out_dir / "comparison.png")
    md = out_dir / "comparison.md"
    md.write_text(to_markdown(rows) + "\n", encoding="utf-8")
    if as_json:
        print_json({"experiment": name, "parent_run_id": parent, "rows": [asdict(r) for r in rows]})
        return
    _out.print(to_markdown(rows), highlight=False)
    stderr.print(
        f"{len(records)} trial runs of parent run {parent}; wrote {png} and {md}; "
        f"browse them with: mlflow ui --backend-store-uri {uri}",
        highlight=False,
    )
