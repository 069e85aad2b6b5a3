"""The main job (``make run``, ``campaign-opt demo``): the product end to end on embedded defaults.

Trains the default policy when none is saved, starts the API server on 127.0.0.1, creates an
owner key, creates the default ``retail`` campaign with its goal and budget over HTTP, starts
it, shows goal and budget progress until it stops, prints the report, saves the plot, logs the
campaign to the local MLflow store, and stops the server.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from serving.process import ServerProcess, child_env

DEFAULT_POLICY = "retail-default"
DEFAULT_LEARNER = "funnel_ts"
"""The learner the main job pretrains (the benchmark's best on retail and winback)."""


def _cli(*args: str, env: dict[str, str]) -> str:
    res = subprocess.run(
        [sys.executable, "-m", "cli", *args], env=env, capture_output=True, text=True, check=False
    )
    if res.returncode != 0:
        raise RuntimeError(f"campaign-opt {' '.join(args)} failed:\n{res.stderr[-3000:]}")
    return res.stdout


def run_demo(
    data_dir: Path,
    console: Console,
    print_report: Callable[[dict[str, Any]], None],
    train_campaigns: int = 2,
    tracking_uri: str = "sqlite:///mlruns/mlflow.db",
    campaign: dict[str, Any] | None = None,
    out_dir: Path = Path("runs"),
) -> dict[str, Any]:
    """Run the main job; returns the final report (JSON dict).

    Args:
        data_dir: the server's data folder (database, saved policies, plots).
        console: where progress and messages go.
        print_report: prints the final report.
        train_campaigns: warm-start campaigns when the default policy is not saved yet.
        tracking_uri: the MLflow store the campaign is logged to (``MLFLOW_TRACKING_URI`` wins).
        campaign: fields that override the default retail campaign's (tests use a small one).
        out_dir: where the report plot is saved.
    """
    from simulators import load_scenario

    env = child_env(data_dir)
    policy_dir = data_dir / "policies" / DEFAULT_POLICY
    if not (policy_dir / "policy.json").is_file():
        console.print(
            f"[bold]1/5[/] training the default policy ({DEFAULT_LEARNER}, "
            f"{train_campaigns} simulated campaigns)"
        )
        _cli(
            "train", "--policy", DEFAULT_LEARNER, "--scenario", "retail", "--campaigns", str(train_campaigns),
            "--out", str(policy_dir), env=env,
        )  # fmt: skip
    else:
        console.print(f"[bold]1/5[/] default policy found in {policy_dir}")
    data_dir.mkdir(parents=True, exist_ok=True)
    key = _cli("keys", "create", "--owner", "make-run", env=env).strip().splitlines()[-1]
    server = ServerProcess(data_dir, db_url=os.environ.get("DATABASE_URL"))
    console.print(f"[bold]2/5[/] starting the server on {server.url} (log: {server.log})")
    server.start()
    try:
        h = {"Authorization": f"Bearer {key}"}
        with httpx.Client(base_url=server.url, headers=h, timeout=120) as http:
            sc = load_scenario("retail")
            body = {
                "name": "retail (make run)",
                "scenario": "retail",
                "policy": f"saved:{DEFAULT_POLICY}",
                "goal": {"metric": sc.default_goal.metric, "target": sc.default_goal.target},
                "budget": sc.default_goal.budget,
                **(campaign or {}),
            }
            r = http.post("/campaigns", json=body)
            r.raise_for_status()
            camp = r.json()
            cid = camp["id"]
            console.print(
                f"[bold]3/5[/] campaign {cid} created over HTTP: goal {camp['goal']['target']:,.0f} "
                f"{camp['goal']['metric']}, budget ${camp['money']['budget']:,.0f}; starting it"
            )
            http.post(f"/campaigns/{cid}/start", json={"reason": "make run"}).raise_for_status()
            with Progress(
                TextColumn("{task.description}"), BarColumn(), TextColumn("{task.fields[text]}"),
                TimeElapsedColumn(), console=console,
            ) as bar:  # fmt: skip
                goal = bar.add_task("goal  ", total=1.0, text="")
                money = bar.add_task("budget", total=camp["money"]["budget"], text="")
                while True:
                    c = http.get(f"/campaigns/{cid}").json()
                    bar.update(goal, completed=c["goal_progress"], text=f"{c['conversions']:,} conversions")
                    bar.update(
                        money,
                        completed=c["money"]["spent"],
                        text=f"${c['money']['spent']:,.0f} spent, iteration {c['iterations']}",
                    )
                    if c["status"] not in ("ready", "running"):
                        break
                    time.sleep(0.5)
            console.print(f"[bold]4/5[/] campaign {c['status']} ({c['stop_reason']})")
            report: dict[str, Any] = http.get(f"/campaigns/{cid}/report").json()
            print_report(report)
            plot = out_dir / f"live-campaign-{cid}.png"
            plot.parent.mkdir(parents=True, exist_ok=True)
            plot.write_bytes(http.get(f"/campaigns/{cid}/report.png").content)
    finally:
        server.stop()
    run_id = _log_to_mlflow(report, plot, tracking_uri)
    db = env.get("DATABASE_URL", f"sqlite:///{data_dir / 'campaign-opt.db'}")
    console.print(
        f"[bold]5/5[/] done. plot: {plot}; database: {db}; MLflow run {run_id} in {tracking_uri} "
        f"(mlflow ui --backend-store-uri {tracking_uri}); server stopped"
    )
    return report


def _log_to_mlflow(report: dict[str, Any], plot: Path, tracking_uri: str) -> str:
    """Log the live campaign as one MLflow run (params, final metrics, the plot)."""
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    import logging

    import mlflow

    logging.getLogger("mlflow").setLevel(logging.WARNING)

    if tracking_uri.startswith("sqlite:///"):
        Path(tracking_uri.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    uri = os.environ.get("MLFLOW_TRACKING_URI", tracking_uri)
    mlflow.set_tracking_uri(uri)
    if mlflow.get_experiment_by_name("live-campaigns") is None:
        # Artifacts beside a SQLite store (else MLflow's default, ./mlruns under the current folder).
        where = (
            Path(uri.removeprefix("sqlite:///")).parent / "artifacts"
            if uri.startswith("sqlite:///")
            else None
        )
        mlflow.create_experiment(
            "live-campaigns", artifact_location=where.resolve().as_uri() if where else None
        )
    mlflow.set_experiment("live-campaigns")
    with mlflow.start_run(run_name=f"campaign-{report['campaign_id']}") as run:
        mlflow.log_params(
            {
                "scenario": report["scenario"],
                "policy": report["policy"],
                "goal_metric": report["goal_metric"],
                "goal_target": report["goal_target"],
                "budget": report["budget"],
            }
        )
        metrics = {
            k: report[k] for k in ("spend", "conversions", "revenue", "iterations", "sends", "goal_progress")
        }
        metrics["goal_reached"] = float(report["goal_reached"])
        if report.get("cost_to_goal") is not None:
            metrics["cost_to_goal"] = report["cost_to_goal"]
        mlflow.log_metrics(metrics)
        for rec in report.get("history", []):
            mlflow.log_metrics(
                {"spend_total": rec["spend_total"], "conversions_total": rec["conversions_total"]},
                step=rec["iteration"],
            )
        mlflow.log_artifact(str(plot))
        return str(run.info.run_id)
