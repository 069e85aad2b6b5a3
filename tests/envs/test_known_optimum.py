"""On a tiny scenario with a closed-form optimum, the bandit's rewards rank arms like the truth.

``tiny.yaml``: every customer of a type is identical (no hidden spread), delivery is certain,
nobody unsubscribes and fatigue has no effect, so for a type with organic visit ``v``, organic
conversion ``c0``, contact-visit multiplier ``m``, click-conversion ``cc`` (times ``1 + lift``
with the deal), and a contact that is opened with ``po = 0.5`` and clicked after opening with
``pc = 0.4``:

* no contact: ``P(convert) = v * c0``;
* contact: ``g1 = v * m * c0``, ``click = po * pc``,
  ``P(convert) = click * (1 - (1 - cc) * (1 - g1)) + (1 - click) * g1``;
* the deal is redeemed by converters who opened it:
  ``P(redeem) = po * ((1 - pc) * g1 + pc * (1 - (1 - cc) * (1 - g1)))``, costing 20% of the
  $100 order;
* net value = ``P(convert) * 100 * margin - send cost ($0.50) - P(redeem) * $20``.

Persuadables respond to the deal (best: the deal, then the plain e-mail, then nothing); sleeping
dogs buy a lot on their own and much less once contacted (best: no contact).
"""

from __future__ import annotations

import numpy as np
import pytest

from envs.customer_bandit import CustomerBanditEnv
from simulators import Simulator, load_scenario
from tests.envs.conftest import TINY

MARGIN, ORDER, SEND, DISCOUNT = 0.5, 100.0, 0.5, 0.2
PO, PC = 0.5, 0.4
# type -> (organic visit, organic conversion, contact visit multiplier, click conversion, lift)
TYPES = {"persuadable": (0.1, 0.2, 1.0, 0.2, 2.0), "sleeper": (0.5, 0.5, 0.2, 0.05, 0.0)}


def closed_form(v: float, c0: float, m: float, cc: float, lift: float) -> np.ndarray:
    """Net value of (no contact, e-mail, e-mail with the deal) for one customer type."""
    values = [v * c0 * ORDER * MARGIN]
    g1 = v * m * c0
    for deal in (False, True):
        ccx = cc * (1.0 + (lift if deal else 0.0))
        after_click = 1.0 - (1.0 - ccx) * (1.0 - g1)
        click = PO * PC
        p_convert = click * after_click + (1.0 - click) * g1
        p_redeem = PO * ((1.0 - PC) * g1 + PC * after_click) if deal else 0.0
        values.append(p_convert * ORDER * MARGIN - SEND - p_redeem * DISCOUNT * ORDER)
    return np.array(values)


def ground_truth() -> dict[str, np.ndarray]:
    sim = Simulator(load_scenario(TINY), n_customers=200)
    sim.reset(seed=0)
    out = {}
    for code, name in enumerate(("persuadable", "sleeper")):
        c = np.flatnonzero(sim.population.segment == code)[:1]
        out[name] = sim.expected(c[:, None], np.arange(3)[None, :]).net_value(sim.margin)[0]
    return out


def test_closed_form_is_the_simulators_truth() -> None:
    truth = ground_truth()
    for name, params in TYPES.items():
        np.testing.assert_allclose(truth[name], closed_form(*params), rtol=1e-9)
    assert list(np.argsort(-truth["persuadable"])) == [2, 1, 0]
    assert list(np.argsort(-truth["sleeper"])) == [0, 1, 2]


def measured(delayed: bool, steps: int = 40, seed: int = 0) -> dict[str, tuple[np.ndarray, ...]]:
    """Mean and standard error of the env's reward per (type, arm), uniform random arms."""
    env = CustomerBanditEnv(TINY, batch_size=2000, episode_length=steps, delayed=delayed)
    rng = np.random.default_rng(seed)
    obs, _ = env.reset(seed=seed)
    persuadable_col = env.feature_names.index("segment=persuadable")
    window = env.window
    values = np.zeros((steps, env.batch_size))
    arms_log, types_log = [], []
    for t in range(steps):
        arms = rng.integers(0, 3, env.batch_size)
        arms_log.append(arms)
        types_log.append(obs[:, persuadable_col] > 0.5)
        obs, _, _, truncated, info = env.step(arms)
        values[t] += info["rewards"]
        for d in range(1, window + 1):  # late rewards of the decisions made d steps ago
            if t - d >= 0:
                values[t - d] += info["late_rewards"][d - 1]
        assert np.array_equal(info["arms"], arms)  # nothing masked, no budget
        assert truncated == (t == steps - 1)
    arms_all, types_all = np.concatenate(arms_log), np.concatenate(types_log)
    flat = values.reshape(-1)
    out = {}
    for name, is_p in (("persuadable", True), ("sleeper", False)):
        sel = [flat[(types_all == is_p) & (arms_all == a)] for a in range(3)]
        out[name] = (
            np.array([s.mean() for s in sel]),
            np.array([s.std(ddof=1) / np.sqrt(s.size) for s in sel]),
        )
    return out


@pytest.mark.parametrize("delayed", [False, True], ids=["complete", "delayed"])
def test_env_rewards_rank_arms_like_the_truth(delayed: bool) -> None:
    truth = ground_truth()
    got = measured(delayed)
    for name in TYPES:
        mean, se = got[name]
        assert list(np.argsort(-mean)) == list(np.argsort(-truth[name])), (name, mean, truth[name])
        # And the means are the truth, within sampling error.
        assert np.all(np.abs(mean - truth[name]) < 5 * se + 1e-9), (name, mean, truth[name], se)
