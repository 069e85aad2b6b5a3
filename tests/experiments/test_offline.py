"""Learning from logs: the offline value policy, replay-fitting catalogue learners, held-out OPE,
MLflow tracking and the champion rule, and the Hillstrom result on a subsample."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from experiments.logs import LoggedData, load_external, read_mapping, simulate_log
from experiments.offline import (
    fit_by_replay,
    fixed_pi,
    registered_policy,
    track_and_register,
    train_from_log,
    world_for,
)
from experiments.ope import OPEConfig, context_for, feedback_events, target_probabilities
from policies import UnknownPolicyError, load_policy, make_policy
from policies.base import Decisions, Feedback
from policies.offline_value import OfflineValuePolicy
from simulators import Simulator, load_scenario

HILLSTROM = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "hillstrom.csv"
FAST = OPEConfig(n_bootstrap=200, reward_model="ridge")


@pytest.fixture(scope="module")
def sim() -> Simulator:
    return Simulator(load_scenario("hillstrom"), n_customers=12_000)


def test_offline_value_policy_probabilities_save_and_update(sim: Simulator, tmp_path: Path) -> None:
    """Exact propensities (rows sum to 1, act's pscores agree), save/load keeps the model, and
    learning through ``update`` (campaign feedback) gives the same model as ``fit`` on the log."""
    log = simulate_log(sim, 0)
    data = log.data
    pol = OfflineValuePolicy(epsilon=0.1, ridge=10.0, margin=sim.margin, seed=0).fit(data, weighted=False)
    ctx = context_for(data, sim.arms)
    pi = pol.action_probabilities(ctx)
    assert np.allclose(pi.sum(axis=1), 1.0) and pi.min() >= 0.1 / 3 - 1e-12
    dec = pol.act(ctx)
    assert np.allclose(dec.pscores, pi[np.arange(len(data)), dec.arms])
    loaded = load_policy(pol.save(tmp_path / "p"), sim)
    assert isinstance(loaded, OfflineValuePolicy)
    assert np.allclose(loaded.action_probabilities(ctx), pi)
    online = OfflineValuePolicy(epsilon=0.1, ridge=10.0, margin=sim.margin)
    ids = np.arange(len(data), dtype=np.int64)
    sent = np.where(data.action != 0, ids, -1)
    online.update(
        Feedback(ctx, Decisions(data.action, data.pscore), sent, feedback_events(data, ids, ids, 0))
    )
    assert np.allclose(online.coefficients(), pol.coefficients())


def test_a_catalogue_learner_fits_by_replay(sim: Simulator) -> None:
    """epsilon_greedy learns the arm with the best logged conversion rate per contact from the log."""
    log = simulate_log(sim, 1)
    data = log.data
    pol = fit_by_replay(
        make_policy("epsilon_greedy:epsilon=0.0", sim, seed=0), data, sim.arms, batch_size=2000
    )
    rates = [data.conversion[data.action == a].mean() for a in (1, 2)]
    arms = pol.act(context_for(data, sim.arms)).arms
    assert np.all(arms == 1 + int(np.argmax(rates)))


def test_train_from_log_on_a_simulated_log(sim: Simulator) -> None:
    """The learned policy is close to the best fixed arm in truth (the hillstrom world has little
    heterogeneity) and far above no contact; its DR interval covers its true value."""
    log = simulate_log(sim, 2)
    run = train_from_log(
        log.data, OfflineValuePolicy(margin=sim.margin, seed=0), sim.arms, 0.5, seed=3, config=FAST
    )
    assert set(run.results) == {
        "offline_value",
        "no_contact",
        "always email/mens/none",
        "always email/womens/none",
    }
    assert run.method == "exact" and run.train_rows + run.holdout_rows == len(log.data)
    held = run.holdout
    rows = np.isin(np.arange(len(log.data)), held.customer)
    truth = log.truth[rows]
    pi = target_probabilities(run.policy, held, sim.arms).pi
    value = float(np.sum(pi * truth) / len(held))
    best_fixed = max(float(np.mean(truth[:, a])) for a in (1, 2))
    assert value >= best_fixed - 0.03 and value > float(np.mean(truth[:, 0])) + 0.1
    dr = run.learned.get("dr")
    assert dr.low <= value <= dr.high
    assert run.to_dict()["dr_difference_vs"]["no_contact"]["low"] > 0


def _run(data: LoggedData, sim: Simulator, pol: OfflineValuePolicy) -> object:
    return train_from_log(data, pol, sim.arms, 0.5, seed=0, config=FAST, tune=False)


def test_register_moves_champion_only_when_the_lower_bound_beats_it(sim: Simulator, tmp_path: Path) -> None:
    from experiments.tracking import CHAMPION, client

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    art = str(tmp_path / "artifacts")
    data = simulate_log(sim, 4).data
    bad_data = LoggedData(**{**data.__dict__, "reward": -data.reward})  # learns the worst arm
    bad = _run(data, sim, OfflineValuePolicy(margin=sim.margin).fit(bad_data))
    first = track_and_register(bad, sim, uri, register="m", artifact_location=art)  # type: ignore[arg-type]
    assert first.registration is not None and first.registration.promoted
    good = _run(data, sim, OfflineValuePolicy(margin=sim.margin, ridge=1e4))
    second = track_and_register(good, sim, uri, register="m", artifact_location=art)  # type: ignore[arg-type]
    assert second.registration is not None and second.registration.promoted, second.registration
    again = _run(data, sim, OfflineValuePolicy(margin=sim.margin, ridge=1e4))
    third = track_and_register(again, sim, uri, register="m", artifact_location=art)  # type: ignore[arg-type]
    assert third.registration is not None and not third.registration.promoted
    assert "stays on version 2" in third.registration.reason
    c = client(uri)
    assert str(c.get_model_version_by_alias("m", CHAMPION).version) == "2"
    run = c.get_run(third.run_id)
    assert "learned.dr.value" in run.data.metrics and run.data.params["policy"] == "offline_value"
    champ = registered_policy("models:/m@champion", sim, tracking=uri)
    assert isinstance(champ, OfflineValuePolicy)
    assert isinstance(registered_policy("models:/m/1", sim, tracking=uri), OfflineValuePolicy)
    with pytest.raises(UnknownPolicyError, match="models:/m@nope"):
        registered_policy("models:/m@nope", sim, tracking=uri)
    from serving.registry import resolve_policy  # serving loads the catalogue's policy too

    served = resolve_policy("models:/m@champion", sim, tracking=uri)
    ctx = context_for(data, sim.arms)
    assert np.allclose(served.action_probabilities(ctx), champ.action_probabilities(ctx))  # type: ignore[attr-defined]


@pytest.mark.skipif(not HILLSTROM.is_file(), reason="../shared/data/hillstrom.csv is absent")
def test_hillstrom_learned_policy_beats_no_email() -> None:
    """On a seeded 24,000-row subsample, trained on half and evaluated on the other half, the
    learned policy's DR lower bound beats no e-mail's DR estimate (and their paired difference
    is positive)."""
    data = load_external(HILLSTROM, read_mapping("hillstrom"))
    sub = data.select(np.sort(np.random.default_rng(0).choice(len(data), 24_000, replace=False)))
    _, arms = world_for(sub)
    run = train_from_log(
        sub, OfflineValuePolicy(seed=0), arms, 0.5, seed=0, config=OPEConfig(n_bootstrap=300)
    )
    none = run.results["no_contact"].get("dr")
    learned = run.learned.get("dr")
    assert learned.low > none.value, (learned, none)
    assert run.differences["no_contact"][1] > 0
    assert np.allclose(fixed_pi(run.holdout, 0)[:, 0], 1.0)
