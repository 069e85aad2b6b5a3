"""Registering the best trial's policy and loading it back as ``models:/NAME@champion``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from agent import Campaign
from cli.app import app
from experiments.runner import ExperimentResult, evaluation_spec, run_experiment, unzip_policy
from policies import load_policy, make_policy
from serving.registry import RegistryError, list_registered, parse_model_uri, resolve_policy
from simulators import Simulator, load_scenario
from tests.experiments.conftest import tiny_config


@pytest.fixture(scope="module")
def registered(tmp_path_factory: pytest.TempPathFactory) -> tuple[ExperimentResult, str]:
    store = tmp_path_factory.mktemp("registry")
    cfg = tiny_config(
        store,
        policies=[{"name": "oracle"}, {"name": "random"}, {"name": "thompson"}],
        seeds=[0],
        training={"campaigns": 2},
    )
    result = run_experiment(cfg, workers=1, register="tiny_champ")
    return result, cfg.tracking.tracking_uri


def _run(policy_name: str, uri: str, seed: int) -> dict[str, object]:
    sc = load_scenario("retail")
    cfg = tiny_config(Path("."))
    spec, n = evaluation_spec(sc, cfg.evaluation)
    sim = Simulator(sc, n_customers=n)
    pol = resolve_policy(policy_name, sim, seed=seed, tracking=uri)
    camp = Campaign(spec, sim, pol, seed=seed)
    rep = camp.run()
    return {"arms": camp.log.arm.tolist(), "customers": camp.log.customer.tolist(), "spend": rep.spend}


def test_register_sets_champion_on_the_best_trial(registered: tuple[ExperimentResult, str]) -> None:
    result, uri = registered
    reg = result.registered
    assert reg is not None and reg.name == "tiny_champ" and reg.alias == "champion" and reg.version == "1"
    assert reg.trial_id in ("retail/random/seed=0", "retail/thompson/seed=0")  # never the oracle
    assert reg.run_id == result.run_ids[reg.trial_id]
    (model,) = [m for m in list_registered(uri) if m["name"] == "tiny_champ"]
    assert model["aliases"] == {"champion": "1"} and model["uri"] == "models:/tiny_champ@champion"
    assert model["versions"][0]["run_id"] == reg.run_id
    assert model["versions"][0]["tags"]["trial_id"] == reg.trial_id


def test_loading_from_the_registry_round_trips(
    registered: tuple[ExperimentResult, str], tmp_path: Path
) -> None:
    result, uri = registered
    reg = result.registered
    assert reg is not None
    trial = next(r for r in result.results if r.trial_id == reg.trial_id)
    sim = Simulator(load_scenario("retail"), n_customers=800)
    loaded = resolve_policy("models:/tiny_champ@champion", sim, tracking=uri)
    local = load_policy(unzip_policy(trial.policy_archive, tmp_path / "p"), sim)
    assert loaded.name == local.name == trial.spec.family
    assert json.dumps(loaded._state(), sort_keys=True) == json.dumps(local._state(), sort_keys=True)
    # Same seed, same decisions: by alias, by version, and twice in a row.
    a = _run("models:/tiny_champ@champion", uri, seed=5)
    b = _run("models:/tiny_champ/1", uri, seed=5)
    c = _run("models:/tiny_champ@champion", uri, seed=5)
    assert a == b == c and a["arms"]
    d = _run("models:/tiny_champ@champion", uri, seed=6)
    assert d != a


def test_a_learned_champion_differs_from_an_untrained_policy(tmp_path: Path) -> None:
    cfg = tiny_config(tmp_path, policies=[{"name": "thompson"}], seeds=[0], training={"campaigns": 2})
    result = run_experiment(cfg, workers=1, register="learned")
    uri = cfg.tracking.tracking_uri
    sim = Simulator(load_scenario("retail"), n_customers=800)
    loaded = resolve_policy("models:/learned@champion", sim, seed=1, tracking=uri)
    fresh = make_policy("thompson", sim, seed=1)
    assert json.dumps(loaded._state(), sort_keys=True) != json.dumps(fresh._state(), sort_keys=True)
    assert result.registered is not None and result.registered.version == "1"
    again = run_experiment(cfg, workers=1, register="learned")  # a second version moves the alias
    assert again.registered is not None and again.registered.version == "2"
    (model,) = [m for m in list_registered(uri) if m["name"] == "learned"]
    assert model["aliases"] == {"champion": "2"} and model["latest_version"] == "2"


def test_unknown_models_and_bad_uris_are_clear_errors(registered: tuple[ExperimentResult, str]) -> None:
    _, uri = registered
    sim = Simulator(load_scenario("retail"), n_customers=100)
    with pytest.raises(RegistryError, match="tiny_champ"):
        resolve_policy("models:/nope@champion", sim, tracking=uri)
    with pytest.raises(RegistryError, match="models:/NAME@ALIAS"):
        parse_model_uri("models:/a/b/c")
    assert parse_model_uri("models:/a@champion") == ("a", "champion", None)
    assert parse_model_uri("models:/a/7") == ("a", None, "7")
    assert resolve_policy("random", sim, seed=0).name == "random"  # plain names: make_policy


def test_simulate_runs_a_registered_policy(
    registered: tuple[ExperimentResult, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    _, uri = registered
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    args = ["simulate", "--policy", "models:/tiny_champ@champion", "--max-iterations", "2"]
    args += ["--customers-per-iteration", "300", "--json"]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["iterations"] == 2
    res = CliRunner().invoke(app, ["simulate", "--policy", "models:/missing@champion"])
    assert res.exit_code == 2 and "missing" in res.output
