"""The main job (`make run`) end to end, on a small campaign: server process, HTTP, report, plot, MLflow."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

from rich.console import Console

from cli.demo import DEFAULT_POLICY, run_demo
from policies import make_policy
from simulators import Simulator, load_scenario


def test_main_job_end_to_end(tmp_path: Path) -> None:
    data = tmp_path / "data"
    # A saved default policy: the job skips training (covered by the train command's tests).
    make_policy("thompson", Simulator(load_scenario("retail"), n_customers=100), seed=0).save(
        data / "policies" / DEFAULT_POLICY
    )
    printed: list[dict[str, Any]] = []
    uri = f"sqlite:///{tmp_path / 'mlruns' / 'mlflow.db'}"
    report = run_demo(
        data,
        Console(file=io.StringIO()),
        printed.append,
        tracking_uri=uri,
        campaign={"n_customers": 3000, "customers_per_iteration": 600, "goal": {"target": 30}, "budget": 80},
        out_dir=tmp_path / "runs",
    )
    # Structured output only (the console's text wraps with the terminal's width): the report
    # printed as JSON is the one the API served for campaign 1, created and run over HTTP.
    assert json.loads(json.dumps(printed)) == [report]
    assert report["campaign_id"] == 1 and report["status"] == "completed" and report["spend"] <= 80
    assert report["money"]["spent"] == report["spend"] and report["realtime"]["decisions"] == 0
    assert (tmp_path / "runs" / "live-campaign-1.png").read_bytes()[:4] == b"\x89PNG"

    import mlflow

    mlflow.set_tracking_uri(uri)
    (run,) = mlflow.search_runs(experiment_names=["live-campaigns"], output_format="list")
    assert run.data.metrics["spend"] == report["spend"] and run.data.params["scenario"] == "retail"
    assert (tmp_path / "mlruns" / "artifacts").is_dir()
