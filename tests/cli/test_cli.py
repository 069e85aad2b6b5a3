"""The command line, end to end through typer's runner.

Output is compared with whitespace collapsed (and a wide terminal), never as wrapped lines.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer
from typer.core import TyperCommand, TyperGroup, TyperOption
from typer.testing import CliRunner, Result

from cli.app import app
from policies.bandits import ArmStats, ThompsonPolicy

runner = CliRunner(env={"COLUMNS": "200"})


def _flat(text: str) -> str:
    """``text`` with every run of whitespace as one space (independent of the terminal width)."""
    return " ".join(text.split())


Command = TyperCommand | TyperGroup


def _commands(group: TyperGroup, path: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], Command]]:
    """Every command and group under ``group``, by its words on the command line."""
    found: list[tuple[tuple[str, ...], Command]] = []
    for name, cmd in sorted(group.commands.items()):
        assert isinstance(cmd, TyperCommand | TyperGroup)
        found.append(((*path, name), cmd))
        if isinstance(cmd, TyperGroup):
            found.extend(_commands(cmd, (*path, name)))
    return found


ROOT = typer.main.get_command(app)
assert isinstance(ROOT, TyperGroup)
COMMANDS = [((), ROOT), *_commands(ROOT)]


@pytest.mark.parametrize(
    ("path", "command"), COMMANDS, ids=[" ".join(p) or "campaign-opt" for p, _ in COMMANDS]
)
def test_help_of_every_command(path: tuple[str, ...], command: Command) -> None:
    res = runner.invoke(app, [*path, "--help"])
    assert res.exit_code == 0, res.output
    words = set(_flat(res.stdout).replace(",", " ").split())
    assert "Usage:" in words
    for param in command.params:
        if isinstance(param, TyperOption) and not param.hidden:
            assert set(param.opts + param.secondary_opts) <= words, (param.name, res.stdout)
    if isinstance(command, TyperGroup):
        assert set(command.commands) <= words, res.stdout


def test_simulate_help_shows_brackets_as_written() -> None:
    res = runner.invoke(app, ["simulate", "--help"])
    assert res.exit_code == 0, res.output
    assert "K/W[/GAP]:" in _flat(res.stdout).split()


SIM = ["simulate", "--max-iterations", "2", "--customers-per-iteration", "500"]
CONFIG = str(Path(__file__).parents[2] / "experiments" / "configs" / "bandits_vs_baselines.yaml")
BAD_INPUT = {
    "scenarios": [(["scenarios", "--jsn"], "--jsn")],
    "policies": [(["policies", "list", "--jsn"], "--jsn"), (["policies", "show"], "show")],
    "scenario": [
        (["scenario", "perturb", "nowhere", "--out", "{tmp}/p.yaml"], "NAME_OR_PATH"),
        (["scenario", "perturb", "retail", "--out", "{tmp}/p.yaml", "--strength", "-1"], "--strength"),
        (["scenario", "perturb", "retail", "--out", "{tmp}/p.yaml", "--strength", "nan"], "--strength"),
        (["scenario", "perturb", "retail", "--out", "{tmp}/p.yaml", "--seed", "-1"], "--seed"),
        (["scenario", "perturb", "retail", "--out", "/proc/p.yaml"], "--out"),
        (["scenario", "fit", "--log", "{tmp}/none.csv", "--out", "{tmp}/f.yaml"], "--log"),
        (["scenario", "fit", "--log", "{tmp}/bad.csv", "--out", "{tmp}/f.yaml"], "--log"),
        (
            [
                "scenario",
                "fit",
                "--log",
                "{tmp}/bad.csv",
                "--out",
                "{tmp}/f.yaml",
                "--mapping",
                "{tmp}/syntax.yaml",
            ],
            "--mapping",
        ),
        (
            ["scenario", "fit", "--log", "{tmp}/bad.csv", "--out", "{tmp}/f.yaml", "--product-line", "mens"],
            "--product-line",
        ),
    ],
    "simulate": [
        ([*SIM, "--seed", "-1"], "--seed"),
        ([*SIM, "--seed", str(2**32)], "--seed"),
        ([*SIM, "--budget", "inf"], "--budget"),
        ([*SIM, "--budget", "nan"], "--budget"),
        ([*SIM, "--budget", "-1"], "--budget"),
        ([*SIM, "--budget", "0"], "--budget"),
        ([*SIM, "--budget", "lots"], "--budget"),
        ([*SIM, "--budget", "1e308"], "--budget"),
        ([*SIM, "--goal-conversions", "nan"], "--goal-conversions"),
        ([*SIM, "--goal-revenue", "-inf"], "--goal-revenue"),
        ([*SIM, "--goal-conversions", "3", "--goal-revenue", "4"], "--goal-conversions"),
        ([*SIM, "--max-cost-per-customer", "0"], "--max-cost-per-customer"),
        ([*SIM, "--max-offer-value", "inf"], "--max-offer-value"),
        ([*SIM, "--holdout", "0.9"], "--holdout"),
        ([*SIM, "--holdout", "nan"], "--holdout"),
        (["simulate", "--max-iterations", "0"], "--max-iterations"),
        (["simulate", "--max-iterations", "10001"], "--max-iterations"),
        (["simulate", "--customers-per-iteration", "0"], "--customers-per-iteration"),
        ([*SIM, "--forecast", "0"], "--forecast"),
        ([*SIM, "--scenario", "atlantis"], "--scenario"),
        ([*SIM, "--scenario", "{tmp}/binary.yaml"], "--scenario"),
        ([*SIM, "--scenario", "{tmp}/syntax.yaml"], "--scenario"),
        ([*SIM, "--scenario", "{tmp}"], "--scenario"),
        ([*SIM, "--policy", "nope"], "--policy"),
        ([*SIM, "--policy", "fixed:fax/none/none"], "--policy"),
        ([*SIM, "--policy", "epsilon_greedy:epsilon=5"], "--policy"),
        ([*SIM, "--policy", "epsilon_greedy:epsilon=nan"], "--policy"),
        ([*SIM, "--policy", "ucb:alpha=-1"], "--policy"),
        ([*SIM, "--policy", "vw:exploration=--bogus"], "--policy"),
        ([*SIM, "--policy", "ppo"], "--policy"),
        ([*SIM, "--policy", "ppo:model_path={tmp}/none"], "--policy"),
        ([*SIM, "--policy-path", "{tmp}/none"], "--policy-path"),
        ([*SIM, "--policy-path", "{tmp}/not_json"], "--policy-path"),
        ([*SIM, "--policy-path", "{tmp}/missing_keys"], "--policy-path"),
        ([*SIM, "--policy-path", "{tmp}/wrong_types"], "--policy-path"),
        ([*SIM, "--policy-path", "{tmp}/wrong_state"], "--policy-path"),
        ([*SIM, "--scenario", "hillstrom", "--policy-path", "{tmp}/retail_thompson"], "--policy-path"),
        ([*SIM, "--export-log", "{tmp}/a_file/logs"], "--export-log"),
        ([*SIM, "--plot", "{tmp}/a_file/report.png"], "--plot"),
        ([*SIM, "--plot", "{tmp}/report.xyz"], "--plot"),
        ([*SIM, "--channel", "file:/proc/nope"], "--channel"),
        ([*SIM, "--channel", "file:{tmp}/a_file"], "--channel"),
        ([*SIM, "--channel", "carrier-pigeon"], "--channel"),
        ([*SIM, "--frequency-cap", "2"], "--frequency-cap"),
        ([*SIM, "--frequency-cap", "1/20000"], "--frequency-cap"),
        ([*SIM, "--channel-budget", "mail=inf"], "--channel-budget"),
        ([*SIM, "--channel-budget", "mail=1e300"], "--channel-budget"),
        ([*SIM, "--channel-budget", "fax=3"], "--channel-budget"),
        ([*SIM, "--suppression", "{tmp}/binary.yaml"], "--suppression"),
        ([*SIM, "--suppression", "{tmp}/none.txt"], "--suppression"),
    ],
    "train": [
        (["train", "--seed", "-1"], "--seed"),
        (["train", "--timesteps", "0"], "--timesteps"),
        (["train", "--n-customers", "10"], "--n-customers"),
        (["train", "--n-customers", str(10**9)], "--n-customers"),
        (["train", "--campaigns", "0"], "--campaigns"),
        (["train", "--scenario", "{tmp}/binary.yaml"], "--scenario"),
        (["train", "--policy", "oracle"], "--policy"),
        (["train", "--policy", "epsilon_greedy:epsilon=5"], "--policy"),
        (["train", "--policy", "ppo", "--out", "{tmp}/a_file/ppo"], "--out"),
        (["train", "--policy", "thompson", "--out", "{tmp}/a_file/ts"], "--out"),
        (["train", "--from-log", "{tmp}/none.csv", "--mapping", "hillstrom"], "--from-log"),
        (["train", "--from-log", "{tmp}/bad.csv", "--mapping", "hillstrom"], "--from-log"),
        (["train", "--from-log", "{tmp}/bad.csv", "--mapping", "{tmp}/syntax.yaml"], "--mapping"),
    ],
    "benchmark": [
        (["benchmark", "--seeds", "0"], "--seeds"),
        (["benchmark", "--scenarios", ","], "--scenarios"),
        (["benchmark", "--scenarios", "{tmp}/binary.yaml"], "--scenarios"),
        (["benchmark", "--scenarios", "retail,atlantis"], "--scenarios"),
        (["benchmark", "--policies", "oracle,nope"], "--policies"),
        (["benchmark", "--policies", "oracle:pace=nan"], "--policies"),
        (["benchmark", "--policies", "path"], "--policies"),
        (["benchmark", "--policy-path", "{tmp}/wrong_state"], "--policy-path"),
        (
            ["benchmark", "--scenarios", "hillstrom", "--policy-path", "{tmp}/retail_thompson"],
            "--policy-path",
        ),
        (["benchmark", "--out", "{tmp}/a_file/bench"], "--out"),
        (["benchmark", "--track", "warm"], "--track"),
        (["benchmark", "--track", "pretrained", "--train-campaigns", "-1"], "--train-campaigns"),
        (["benchmark", "--track", "sim-to-real", "--perturbations", "0"], "--perturbations"),
        (["benchmark", "--ladder", "--learner", "thompson"], "--learner"),
        (["benchmark", "--ladder", "--learner", "funnel_ts:explore=-1"], "--learner"),
    ],
    "train-pacer": [
        (["train-pacer", "--out", "{tmp}/weights.txt"], "--out"),
        (["train-pacer", "--out", "{tmp}/a_file/w.npz"], "--out"),
        (["train-pacer", "--timesteps", "10"], "--timesteps"),
        (["train-pacer", "--max-seconds", "nan"], "--max-seconds"),
        (["train-pacer", "--seed", "-1"], "--seed"),
    ],
    "calibration": [
        (["calibration", "retail"], "SCENARIO"),
        (["calibration", "--seeds", "0"], "--seeds"),
        (["calibration", "--data", "{tmp}/none.csv"], "--data"),
        (["calibration", "--data", "{tmp}/binary.yaml"], "--data"),
        (["calibration", "--data", "{tmp}/bad.csv", "--seeds", "1"], "--data"),
    ],
    "serve": [
        (["serve", "--port", "0"], "--port"),
        (["serve", "--port", "70000"], "--port"),
        (["serve", "--host", "999.1.1.1"], "--host"),
    ],
    "keys": [(["keys", "create"], "--owner")],
    "demo": [
        (["demo", "--train-campaigns", "0"], "--train-campaigns"),
        (["demo", "--data-dir", "{tmp}/a_file/data"], "--data-dir"),
    ],
    "audience": [
        (["audience", "import", "{tmp}/nowhere.csv", "--name", "x"], "FILE"),
        (["audience", "import", "{tmp}/bad.csv", "--name", "x", "--schema", "{tmp}/binary.yaml"], "--schema"),
        (["audience", "import", "{tmp}/bad.csv", "--name", "x", "--id-column", "nope"], "--id-column"),
        (["audience", "list", "--jsn"], "--jsn"),
        (["audience", "list", "--database-url", "bogus://x"], "--database-url"),
        (["audience", "show", "nope"], "AUDIENCE"),
    ],
    "report": [
        (["report", "ab", "--log", "{tmp}/none.csv"], "--log"),
        (["report", "ab", "--log", "{tmp}/bad.csv"], "--log"),
        (["report", "ab", "--log", "{tmp}/bad.csv", "--by", "colour"], "--by"),
        (["report", "ab", "--log", "{tmp}/bad.csv", "--alpha", "2"], "--alpha"),
        (["report", "ab", "--log", "{tmp}/bad.csv", "--mapping", "{tmp}/binary.yaml"], "--mapping"),
        (["report", "rounds", "--before", "{tmp}/none.csv", "--after", "{tmp}/none.csv"], "--before"),
        (["report", "rounds", "--before", "{tmp}/bad.csv", "--after", "{tmp}/none.csv"], "--before"),
    ],
    "evaluate": [
        (["evaluate", "--log", "{tmp}/none.csv", "--policy", "random"], "--log"),
        (["evaluate", "--log", "{tmp}/bad.csv", "--policy", "random"], "--mapping"),
        (["evaluate", "--log", "{tmp}/bad.csv", "--policy", "random", "--mapping", "nowhere"], "--mapping"),
        (["evaluate", "--log", "{tmp}/bad.csv", "--policy", "random", "--mapping", "hillstrom"], "--log"),
        (
            ["evaluate", "--log", "{tmp}/bad.csv", "--policy", "random", "--estimators", "magic"],
            "--estimators",
        ),
        (
            ["evaluate", "--log", "{tmp}/bad.csv", "--policy", "random", "--reward-model", "x"],
            "--reward-model",
        ),
        (["evaluate", "--log", "{tmp}/bad.csv", "--policy", "random", "--level", "2"], "--level"),
    ],
    "experiment": [
        (["experiment", "run", "{tmp}/none.yaml"], "CONFIG"),
        (["experiment", "run", "{tmp}/binary.yaml"], "CONFIG"),
        (["experiment", "run", "{tmp}/syntax.yaml"], "CONFIG"),
        (["experiment", "run", CONFIG, "--workers", "0"], "--workers"),
        (["experiment", "run", CONFIG, "--tracking-uri", "bogus://x"], "--tracking-uri"),
        (["experiment", "compare", "x", "--tracking-uri", "mlruns"], "--tracking-uri"),
        (
            ["experiment", "compare", "x", "--tracking-uri", "sqlite:////proc/nope/mlflow.db"],
            "--tracking-uri",
        ),
        (["experiment", "compare", "x", "--out", "{tmp}/a_file/compare"], "--out"),
    ],
}
"""Bad input per command, and the option the one-line error must name."""


@pytest.fixture(scope="module")
def bad_files(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder of broken inputs: binary and invalid YAML, broken saved policies, a plain file."""
    tmp = tmp_path_factory.mktemp("bad")
    (tmp / "binary.yaml").write_bytes(bytes(range(128, 256)) * 4)
    (tmp / "syntax.yaml").write_text("name: [\n")
    (tmp / "a_file").write_text("not a folder\n")
    (tmp / "bad.csv").write_text("a,b\n1,2\n")
    saved = {
        "not_json": "{policy: thompson",
        "missing_keys": json.dumps({"policy": "thompson"}),
        "wrong_types": json.dumps({"policy": "thompson", "config": [], "state": {}, "rng": {}}),
        "wrong_state": json.dumps(
            {"policy": "thompson", "config": {}, "state": {"trials": "many"}, "rng": {"state": 1}}
        ),
    }
    for name, text in saved.items():
        (tmp / name).mkdir()
        (tmp / name / "policy.json").write_text(text)
    retail = ThompsonPolicy(seed=0)
    retail.stats = ArmStats(37)  # what a campaign on retail's 37 arms leaves
    retail.save(tmp / "retail_thompson")
    return tmp


BAD_CASES = [
    pytest.param(args, option, id=" ".join(args).replace(" ".join(SIM), "simulate"))
    for cases in BAD_INPUT.values()
    for args, option in cases
]


@pytest.mark.parametrize(("args", "option"), BAD_CASES)
def test_bad_input_exits_2_with_one_line_naming_the_option(
    bad_files: Path, tmp_path: Path, args: list[str], option: str
) -> None:
    env = {"DATA_DIR": str(tmp_path), "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'mlflow.db'}"}
    res: Result = runner.invoke(app, [a.replace("{tmp}", str(bad_files)) for a in args], env=env)
    assert res.exit_code == 2, res.output
    assert isinstance(res.exception, SystemExit)
    error = _flat(res.output).lower().split("error:", 1)
    assert len(error) == 2 and option.lower() in error[1], res.output


def test_compare_an_unknown_run_names_run_id(tmp_path: Path) -> None:
    from mlflow import MlflowClient

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    MlflowClient(uri).create_experiment("x", artifact_location=(tmp_path / "artifacts").as_uri())
    res = runner.invoke(
        app,
        ["experiment", "compare", "x", "--run-id", "0123abc", "--tracking-uri", uri, "--out", str(tmp_path)],
    )
    assert res.exit_code == 2, res.output
    assert "--run-id" in _flat(res.output).split("error:", 1)[1]


def test_every_command_has_bad_input_cases() -> None:
    assert {path[0] for path, _ in COMMANDS if path} == set(BAD_INPUT)


def test_scenarios_json_lists_builtins() -> None:
    res = runner.invoke(app, ["scenarios", "--json"])
    assert res.exit_code == 0, res.output
    rows = json.loads(res.stdout)
    names = {r["name"] for r in rows}
    assert "retail" in names
    retail = next(r for r in rows if r["name"] == "retail")
    assert retail["customers"] >= 50_000 and retail["arms"] == 37 and retail["budget"] > 0


def test_policies_list_prints_the_catalogue() -> None:
    res = runner.invoke(app, ["policies", "list", "--json"])
    assert res.exit_code == 0, res.output
    rows = json.loads(res.stdout)
    by_name = {r["name"]: r for r in rows}
    assert [r["usage"] for r in rows][:3] == ["random", "fixed:ARM", "oracle"]
    assert by_name["oracle"]["kind"] == "yardstick" and not by_name["oracle"]["adaptive"]
    assert by_name["budgeted_ts"]["pretrainable"] and by_name["budgeted_ts"]["kind"] == "contextual"
    assert by_name["vw"]["kind"] == "peer"
    assert all(
        set(r) == {"name", "usage", "kind", "adaptive", "pretrainable", "class", "description"} for r in rows
    )
    table = runner.invoke(app, ["policies", "list"])
    assert table.exit_code == 0 and "yardstick" in table.stdout and "mabwiser" in table.stdout


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
    res = runner.invoke(
        app,
        [
            "benchmark",
            "--scenarios",
            str(path),
            "--policies",
            "oracle,thompson",
            "--seeds",
            "1",
            "--track",
            "sim-to-real",
            "--perturbations",
            "2",
            "--train-campaigns",
            "1",
            "--out",
            str(out),
            "--json",
        ],
    )
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    assert data["track"] == "sim-to-real"
    assert {r["scenario"] for r in data["rows"]} == {"retail~perturbed-0", "retail~perturbed-1"}


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
