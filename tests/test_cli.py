"""The command line, end to end through typer's runner."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from experiments.cli import app

runner = CliRunner()


def test_scenarios_json_lists_builtins() -> None:
    res = runner.invoke(app, ["scenarios", "--json"])
    assert res.exit_code == 0, res.output
    rows = json.loads(res.stdout)
    names = {r["name"] for r in rows}
    assert "retail" in names
    retail = next(r for r in rows if r["name"] == "retail")
    assert retail["customers"] >= 50_000 and retail["arms"] == 37 and retail["budget"] > 0


def test_simulate_json_report() -> None:
    res = runner.invoke(
        app,
        [
            "simulate",
            "--scenario",
            "retail",
            "--policy",
            "fixed:email/bestsellers/none",
            "--seed",
            "1",
            "--goal-conversions",
            "30",
            "--budget",
            "20",
            "--max-iterations",
            "4",
            "--customers-per-iteration",
            "2000",
            "--json",
        ],
    )
    assert res.exit_code == 0, res.output
    rep = json.loads(res.stdout)
    for key in (
        "goal_reached",
        "stop_reason",
        "spend",
        "budget",
        "conversions",
        "revenue",
        "iterations",
        "cost_per_conversion",
        "roi",
        "history",
    ):
        assert key in rep
    assert rep["budget"] == 20 and rep["spend"] <= 20
    assert len(rep["history"]) == rep["iterations"] <= 4


def test_simulate_human_output_and_yaml_path(tmp_path: Path) -> None:
    from importlib import resources

    src = resources.files("simulators") / "scenarios" / "retail.yaml"
    path = tmp_path / "mine.yaml"
    path.write_text(src.read_text().replace("size: 60000", "size: 3000"))
    res = runner.invoke(
        app,
        [
            "simulate",
            "--scenario",
            str(path),
            "--policy",
            "random",
            "--max-iterations",
            "2",
            "--customers-per-iteration",
            "500",
            "--plot",
            str(tmp_path / "r.png"),
        ],
    )
    assert res.exit_code == 0, res.output
    assert "spend / budget" in res.stdout and "stopped by" in res.stdout
    assert (tmp_path / "r.png").stat().st_size > 1000


def test_bad_input_is_a_clear_error(tmp_path: Path) -> None:
    res = runner.invoke(app, ["simulate", "--policy", "nope"])
    assert res.exit_code == 2 and "unknown policy" in res.output
    res = runner.invoke(app, ["simulate", "--scenario", "atlantis"])
    assert res.exit_code == 2 and "built-in scenarios" in res.output
    res = runner.invoke(app, ["simulate", "--goal-conversions", "3", "--goal-revenue", "4"])
    assert res.exit_code == 2 and "at most one" in res.output
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\npopulation: {sise: 3}\n")
    res = runner.invoke(app, ["simulate", "--scenario", str(bad)])
    assert res.exit_code == 2 and "population.sise" in res.output
    res = runner.invoke(app, ["calibration", "hillstrom", "--data", str(tmp_path / "missing.csv")])
    assert res.exit_code == 2 and "not found" in res.output


def test_benchmark_end_to_end_on_a_tiny_scenario(tmp_path: Path) -> None:
    from importlib import resources

    text = (resources.files("simulators") / "scenarios" / "retail.yaml").read_text()
    text = text.replace("size: 60000", "size: 2000").replace("target: 2000", "target: 40")
    text = text.replace("budget: 10000", "budget: 200").replace(
        "customers_per_iteration: 12000", "customers_per_iteration: 1000"
    )
    path = tmp_path / "tiny.yaml"
    path.write_text(text)
    out = tmp_path / "out"
    res = runner.invoke(
        app,
        [
            "benchmark",
            "--scenarios",
            str(path),
            "--policies",
            "oracle,random",
            "--seeds",
            "2",
            "--out",
            str(out),
            "--json",
        ],
    )
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    rows = {r["policy"]: r for r in data["rows"]}
    assert rows["oracle"]["runs"] == 2 and rows["oracle"]["ratio_to_oracle"] == 1.0
    assert len(data["runs"]) == 4
    assert (out / "benchmark.json").is_file() and (out / "benchmark.md").read_text().startswith("| scenario")
    assert (out / "benchmark.png").stat().st_size > 1000
    res = runner.invoke(app, ["benchmark", "--policies", "oracle,nope"])
    assert res.exit_code == 2 and "unknown policy" in res.output


def test_train_then_simulate_with_policy_path(tmp_path: Path) -> None:
    out = tmp_path / "ppo"
    res = runner.invoke(
        app,
        [
            "train",
            "--policy",
            "ppo",
            "--scenario",
            "retail",
            "--timesteps",
            "256",
            "--out",
            str(out),
            "--n-customers",
            "1500",
        ],
    )
    assert res.exit_code == 0, res.output
    assert (out / "policy.json").is_file() and (out / "model.zip").is_file()
    res = runner.invoke(
        app,
        [
            "simulate",
            "--policy-path",
            str(out),
            "--max-iterations",
            "2",
            "--customers-per-iteration",
            "1000",
            "--json",
        ],
    )
    assert res.exit_code == 0, res.output
    rep = json.loads(res.stdout)
    assert rep["policy"] == "ppo" and rep["spend"] <= rep["budget"]
    res = runner.invoke(app, ["train", "--policy", "oracle", "--out", str(tmp_path / "x")])
    assert res.exit_code == 2 and "trainable policies" in res.output
    res = runner.invoke(app, ["simulate", "--policy-path", str(tmp_path / "missing")])
    assert res.exit_code == 2 and "no saved policy" in res.output


def test_train_warm_starts_a_bandit_then_simulate_runs_it(tmp_path: Path) -> None:
    from importlib import resources

    text = (resources.files("simulators") / "scenarios" / "retail.yaml").read_text()
    text = text.replace("size: 60000", "size: 2000").replace("target: 2000", "target: 40")
    text = text.replace("budget: 10000", "budget: 200").replace(
        "customers_per_iteration: 12000", "customers_per_iteration: 1000"
    )
    path = tmp_path / "tiny.yaml"
    path.write_text(text)
    out = tmp_path / "bts"
    res = runner.invoke(
        app,
        ["train", "--policy", "budgeted_ts", "--scenario", str(path), "--campaigns", "2", "--out", str(out)],
    )
    assert res.exit_code == 0, res.output
    assert "campaign 2/2" in res.output and (out / "policy.json").is_file()
    res = runner.invoke(app, ["simulate", "--scenario", str(path), "--policy-path", str(out), "--json"])
    assert res.exit_code == 0, res.output
    rep = json.loads(res.stdout)
    assert rep["policy"] == "budgeted_ts" and rep["spend"] <= rep["budget"]
