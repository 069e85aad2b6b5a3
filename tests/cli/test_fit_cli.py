"""``campaign-opt scenario fit``: a scenario YAML fitted to a log, the tolerance report as JSON,
column names from options or a mapping file, one-line errors naming the option."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from cli.app import app
from simulators import Simulator, load_scenario
from tests.simulators.test_fit import MAPPING, simulated_log, write_csv

runner = CliRunner(env={"COLUMNS": "200"})
FAST = ["--rounds", "1", "--max-nfev", "2", "--customers", "1000", "--seeds", "1"]


@pytest.fixture(scope="module")
def log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_csv(simulated_log(6000, seed=5), tmp_path_factory.mktemp("fitlog") / "log.csv")


def test_fit_writes_a_valid_scenario_and_a_tolerance_report(log: Path, tmp_path: Path) -> None:
    mapping = tmp_path / "mapping.yaml"
    half = {k: v for k, v in MAPPING.items() if k not in ("visit", "product_lines")}
    mapping.write_text(yaml.safe_dump(half))
    out = tmp_path / "world" / "fitted.yaml"
    audience = tmp_path / "audience.csv"
    audience.write_text("stage,months,area\n" + "returning,1,rural\n" * 30 + "new,2,urban\n" * 10)
    args = ["scenario", "fit", "--log", str(log), "--out", str(out), "--mapping", str(mapping), *FAST]
    args += ["--visit", "clicked_or_visited", "--product-line", "mens=bought_mens"]
    args += [
        "--product-line",
        "womens=bought_womens",
        "--name",
        "mine",
        "--audience",
        str(audience),
        "--json",
    ]
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    body = json.loads(res.stdout)
    assert body["scenario"] == "mine" and body["out"] == str(out)
    rows = body["report"]["rows"]
    assert {r["metric"] for r in rows} == {"visit", "conversion", "spend"}
    for r in rows:
        assert set(r) >= {"data", "simulator", "difference", "tolerance", "within_tolerance"}
    assert body["report"]["rows_within_tolerance"] == sum(r["within_tolerance"] for r in rows)
    sc = load_scenario(out)
    assert sc.name == "mine" and sc.population.size == 40  # the audience's customers
    assert sc.population.segments["returning"].share == pytest.approx(0.75)
    assert sc.population.segments["returning"].recency[0] == pytest.approx(1.0)
    sim = Simulator(sc)
    sim.reset(0)
    assert len(sim.arms) == 3
    table = runner.invoke(
        app, ["scenario", "fit", "--log", str(log), "--out", str(out), "--mapping", str(mapping), *FAST]
    )
    assert table.exit_code == 0, table.output
    assert "no_contact" in table.stdout and "Tolerance:" in table.stdout


@pytest.mark.parametrize(
    ("extra", "option"),
    [
        (["--log", "{tmp}/none.csv"], "--log"),
        (["--mapping", "{tmp}/bad.yaml"], "--mapping"),
        (["--product-line", "mens"], "--product-line"),
        (["--audience", "{tmp}/none.csv"], "--audience"),
        (["--recency", "no_such_column"], "--log"),
        (["--out", "/proc/nope/x.yaml"], "--out"),
        (["--rounds", "0"], "--rounds"),
    ],
)
def test_bad_input_exits_2_naming_the_option(
    log: Path, tmp_path: Path, extra: list[str], option: str
) -> None:
    (tmp_path / "bad.yaml").write_text("arm: [1\n")
    args = ["scenario", "fit", "--log", str(log), "--out", str(tmp_path / "o.yaml"), *FAST]
    args += [a.replace("{tmp}", str(tmp_path)) for a in extra]
    res = runner.invoke(app, args)
    assert res.exit_code == 2, res.output
    error = " ".join(res.output.split()).lower().split("error", 1)
    assert len(error) == 2 and option.lower() in error[1], res.output
