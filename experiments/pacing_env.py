"""``PacingEnv``: learn how hard each wave of a campaign pushes toward the goal (PPO's world).

One episode is one campaign, one step is one wave that sends. The agent is the **pacer** of
:mod:`policies.pacing`: it sees the campaign's position as a
:class:`policies.pacing.PacingObservation` (7 scenario-agnostic numbers, ``as_array()``) and
answers with a point of ``[-1, 1]^2``, mapped by :func:`policies.pacing.action_to_multipliers`
to a multiplier on the learner's marginal price (``[0.25, 4]``) and one on its per-wave need
(``[0.5, 3]``), exactly as ``funnel_ts:pacer=NAME`` applies them.

The world is cheap (a few milliseconds per wave, so PPO sees thousands of campaigns in
minutes) yet keeps what pacing is about:

* **Domain randomization.** Each episode draws a built-in scenario (``retail``, ``winback``,
  ``hillstrom``) at random, moved by :func:`simulators.perturb.perturb` (``strength``, 0.3), a
  goal and a budget each within ``±spread`` (30%) of the scenario's defaults, and a population.
* **Scale.** At most ``max_candidates`` simulated candidates per wave; each stands for ``copies``
  real customers with its expectations (``copies = ceil(wave / max_candidates)``), so the wave's
  capacity, the goal, the budget and the randomness of the outcomes (binomial counts over the
  copies) keep the scenario's real scale while the arrays stay small.
* **The true world.** The simulator's true expected conversion probability and cost of every
  (customer, arm) pair are computed once per episode (:meth:`simulators.Simulator.expected`,
  vectorized); contact fatigue scales the contact's effect (``exp(-penalty * fatigue)``, fatigue
  growing with expected deliveries and decaying each iteration as in the simulator).
  Opt-outs remove a share of a customer's copies from a channel for good (the simulator's
  unsubscribe probability, raised by fatigue).
* **A surrogate learner.** What ``funnel_ts`` believes, drawn per episode so the pacer meets
  models good and bad (the benchmark's ``funnel_ts`` over-predicts, by more than its calibration
  clip of 2x on ``winback``): a model that sees only part of what tells customers apart (in log
  space, a share ``info_t`` of the customer's true log-probability and the rest the arm's mean,
  rescaled so each arm's total over the wave is right; ``info_t`` grows from ``info_0`` over the
  campaign), times ``exp(bias_t + sd_t * z)``: ``z`` standard normal per pair and wave (which
  the knapsack's choice turns into a winner's curse), ``sd_t = sd_0 / sqrt(1 + t)``, and
  ``bias_t = bias_0 * 0.97^t + drift * t / (T - 1)`` (a per-episode bias, mostly
  over-prediction, plus a drift toward over-predicting the later, marginal waves, so the
  calibration of closed waves lags). Offer costs get half the noise. Its forecasts are scaled
  by its calibration (realized over forecast of closed decisions, shrunk to 1, within
  ``[0.5, 2]``), as ``funnel_ts`` does. The defaults were chosen from traces of the benchmark's
  ``funnel_ts`` (rule pacer), which ends a few percent short of the goal at the iteration limit
  with money left, its last waves' pending conversions forecast about 3x too high: here, with
  the rule pacer, unperturbed ``retail`` and ``winback`` at their default goals reach it in 5%
  and 45% of 20 episodes (0.97 and 0.995 of the goal on average).
* **Funnel_ts's pacing rule**, with the action applied: the need is
  ``(remaining + 1.5 * sqrt(goal_remaining)) / max(iterations_left - 1, 1) * volume`` and the
  most paid at the margin ``15 * (available + held) / remaining * price`` (``remaining``: the goal
  left after the delay-corrected pending forecast), moving at most 1.5x per wave; the wave is
  :func:`policies.knapsack.solve_wave` (reserve-aware) within the even share of the money over the
  attribution window.
* **The loop's money and time.** Worst cases are reserved at send and released when their
  attribution window closes; offer costs are charged on conversion; conversions arrive over the
  scenario's delays (the observation's ``pending`` is the delay-corrected expectation of what
  is still to arrive). Like the campaign loop, an iteration whose pending forecast already
  covers the goal passes without sending (it is not a step); the campaign stops when the goal
  is observed, at its iteration limit, or when the money left cannot pay one send, and then
  drains (late conversions still count, and their offers are still paid).

**Reward.** Each step: ``-spend / budget`` (dollars spent during the step, including the
iterations held after it). At the end, in addition: ``1 + (budget - spent) / budget`` when the
goal is reached within the budget (cheaper is better), else ``-2 * shortfall / goal``. An episode
therefore returns ``2 - 2 * spent / budget`` on success, and ``-spent / budget - 2 * shortfall /
goal`` otherwise.

Only :meth:`PacingEnv.reset` seeds it (``reset(seed=...)``): the same seed gives the same
campaign, wave by wave, for the same actions.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import gymnasium as gym
import numpy as np
from numpy.typing import NDArray

from policies.knapsack import price_band_wave
from policies.pacing import PacingAction, PacingObservation, action_to_multipliers
from simulators.perturb import perturb
from simulators.scenario import Scenario, load_scenario
from simulators.simulator import Simulator
from simulators.types import NO_CONTACT, FloatArray, IntArray

__all__ = ["SCENARIOS", "PacingEnv"]

SCENARIOS: tuple[str, ...] = ("retail", "winback", "hillstrom")
"""The built-in scenarios an episode is drawn from by default."""

PRICE_CAP = 15.0
"""funnel_ts's ``price_cap``: the most paid at the margin, over what the money affords."""
PRICE_STEP = 1.5
"""funnel_ts's ``price_step``: the most the marginal price moves from one wave to the next."""
MARGIN = 1.5
"""funnel_ts's ``margin``: standard deviations of a Poisson count of the goal left."""
SLACK = 1
"""funnel_ts's ``slack``: waves before the deadline by which the plan reaches the goal."""
BIAS_DECAY = 0.97
"""Per-wave factor on the surrogate learner's log bias."""


@lru_cache(maxsize=16)
def _scenario(name: str) -> Scenario:
    return load_scenario(name)


@dataclass
class _Wave:
    """The decisions of one sent wave (one row per contacted candidate, each ``copies`` sends)."""

    iteration: int
    sent: NDArray[np.int64]  # (k,) sends (copies still subscribed to the channel)
    hold: FloatArray  # (k,) reserved offer cap per send (worst case beyond the send cost)
    forecast: FloatArray  # (k,) the model's (uncalibrated) conversion probability per send
    conversions: NDArray[np.int64]  # (k, delays) conversions arriving at each delay
    offer_cost: FloatArray  # (k,) dollars charged per conversion


@dataclass
class _World:
    """One episode's campaign: the true world, the goal and the money."""

    scenario: str
    copies: int
    wave_size: int
    target: float
    budget: float
    iterations: int
    delays: FloatArray  # (D,) P(a conversion arrives d iterations after its send)
    p_true: FloatArray  # (n, A) true P(convert) (attributed; 0 for no contact)
    base: FloatArray  # (n,) P(convert) without contact
    offer_true: FloatArray  # (n, A) true expected offer cost
    send_cost: FloatArray  # (A,)
    cap: FloatArray  # (A,) offer cap (reserved until the window closes or it converts)
    mask: NDArray[np.bool_]  # (n, A)
    deliver: FloatArray  # (n, A) P(delivered)
    unsubscribe: FloatArray  # (n, A) P(unsubscribed) of an unfatigued contact
    channel: IntArray  # (A,) channel of each arm (-1: no contact)
    subscribed: FloatArray  # (n, channels) share of each customer's copies still subscribed
    fatigue_unsubscribe: float
    fatigue_penalty: float
    fatigue_decay: float
    sd0: float
    bias0: float
    drift: float  # log over-prediction added by the last wave (the margin is over-predicted most)
    info0: float  # share of the customer-level signal the model has at the first wave
    info1: float  # ... and at the last
    log_mean: FloatArray  # (A,) mean log P(convert) of each arm over the customers it reaches
    fatigue: FloatArray = field(default_factory=lambda: np.zeros(0))

    @property
    def window(self) -> int:
        return int(self.delays.size - 1)


class PacingEnv(gym.Env[NDArray[np.float32], NDArray[np.float32]]):
    """A campaign paced wave by wave; see the module docstring for the world and the reward.

    Args:
        scenarios: built-in scenario names (or YAML paths) an episode is drawn from.
        strength: strength of :func:`simulators.perturb.perturb` (0: the scenarios as they are).
        spread: relative half-width of the goal's and the budget's draws around the defaults.
        max_candidates: most simulated candidates per wave.
        model_sd: range of the surrogate model's initial log-error sd (drawn per episode).
        model_bias: mean and sd of the surrogate model's per-episode log bias (positive:
            over-prediction, as learners of rare conversions tend to do).
        model_info: range of the share of the customer-level signal the surrogate model has at
            the first wave (drawn per episode; see the module docstring).
        model_learn: range of the share of the missing signal it learns by the last wave.
        model_drift: range of the log over-prediction the model drifts into by the last wave.
    """

    metadata: dict[str, Any] = {"render_modes": []}  # noqa: RUF012

    def __init__(
        self,
        scenarios: tuple[str, ...] | list[str] = SCENARIOS,
        strength: float = 0.3,
        spread: float = 0.3,
        max_candidates: int = 500,
        model_sd: tuple[float, float] = (0.2, 0.8),
        model_bias: tuple[float, float] = (0.35, 0.45),
        model_info: tuple[float, float] = (0.2, 0.6),
        model_learn: tuple[float, float] = (0.0, 0.5),
        model_drift: tuple[float, float] = (0.2, 1.2),
    ) -> None:
        super().__init__()
        if not scenarios:
            raise ValueError("scenarios must name at least one scenario")
        if not (0 <= spread < 1 and strength >= 0 and max_candidates >= 1 and model_bias[1] >= 0):
            raise ValueError("need 0 <= spread < 1, strength >= 0, max_candidates >= 1, model_bias sd >= 0")
        self.scenarios = tuple(scenarios)
        self.strength = float(strength)
        self.spread = float(spread)
        self.max_candidates = int(max_candidates)
        self.model_sd = (float(model_sd[0]), float(model_sd[1]))
        self.model_bias = (float(model_bias[0]), float(model_bias[1]))
        self.model_info = (float(model_info[0]), float(model_info[1]))
        self.model_learn = (float(model_learn[0]), float(model_learn[1]))
        self.model_drift = (float(model_drift[0]), float(model_drift[1]))
        n_obs = PacingObservation.size()
        self.observation_space = gym.spaces.Box(0.0, 10.0, shape=(n_obs,), dtype=np.float32)
        self.action_space = gym.spaces.Box(-1.0, 1.0, shape=(2,), dtype=np.float32)
        self._world: _World | None = None

    # -- episode ----------------------------------------------------------------------------------
    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[NDArray[np.float32], dict[str, Any]]:
        super().reset(seed=seed)
        rng = self.np_random
        name = self.scenarios[int(rng.integers(len(self.scenarios)))]
        self._world = self._draw_world(name, rng)
        self._rng = rng
        self.t = 0
        self.spent = 0.0
        self.last_price = 0.0
        self.waves: list[_Wave] = []
        self.forecast_closed = 0.0
        self.realized_closed = 0.0
        self.steps = 0
        self.held_iterations = 0
        self.done = False
        self._skip_holds()
        return self._observe().as_array(), self._info()

    def _draw_world(self, name: str, rng: np.random.Generator) -> _World:
        base = _scenario(name)
        scenario = perturb(base, self.strength, rng) if self.strength > 0 else base
        goal = scenario.default_goal
        pop = scenario.population.size
        wave = min(goal.customers_per_iteration, pop)
        copies = max(1, math.ceil(wave / self.max_candidates))
        n = max(1, math.ceil(pop / copies))
        wave_size = max(1, min(n, round(wave / copies)))
        sim = Simulator(scenario, n_customers=n)
        sim.reset(seed=int(rng.integers(2**31)))
        arms = sim.arms
        customers = np.arange(n)
        gt = sim.expected(customers[:, None], np.arange(len(arms))[None, :])
        mask = sim.arm_mask(customers)
        p_true = np.where(mask, gt.p_convert, 0.0)
        p_true[:, NO_CONTACT] = 0.0  # no contact earns nothing toward an attributed goal
        lo, hi = 1.0 - self.spread, 1.0 + self.spread
        logp = np.log(np.maximum(p_true, 1e-9))
        reach = np.maximum(mask.sum(axis=0), 1)
        log_mean = np.where(mask, logp, 0.0).sum(axis=0) / reach
        info0 = float(rng.uniform(*self.model_info))
        return _World(
            scenario=name,
            copies=copies,
            wave_size=wave_size,
            target=float(goal.target * rng.uniform(lo, hi)),
            budget=float(goal.budget * rng.uniform(lo, hi)),
            iterations=int(goal.max_iterations),
            delays=np.asarray(scenario.dynamics.conversion_delay, dtype=np.float64),
            p_true=p_true,
            base=np.asarray(gt.p_convert_baseline[:, 0], dtype=np.float64),
            offer_true=np.where(mask, gt.offer_cost, 0.0),
            send_cost=np.asarray(arms.send_cost, dtype=np.float64),
            cap=np.asarray(arms.max_offer_cost, dtype=np.float64),
            mask=mask,
            deliver=np.asarray(gt.p_deliver, dtype=np.float64),
            unsubscribe=np.asarray(gt.p_unsubscribe, dtype=np.float64),
            channel=np.asarray(arms.channel, dtype=np.int64),
            subscribed=np.ones((n, len(arms.channel_names))),
            fatigue_unsubscribe=float(scenario.dynamics.fatigue_unsubscribe),
            fatigue_penalty=float(scenario.dynamics.fatigue_open_penalty),
            fatigue_decay=float(scenario.dynamics.fatigue_decay),
            sd0=float(rng.uniform(*self.model_sd)),
            bias0=float(self.model_bias[0] + self.model_bias[1] * rng.standard_normal()),
            drift=float(rng.uniform(*self.model_drift)),
            info0=info0,
            info1=info0 + (1.0 - info0) * float(rng.uniform(*self.model_learn)),
            log_mean=log_mean,
            fatigue=np.zeros(n),
        )

    @property
    def world(self) -> _World:
        if self._world is None:
            raise RuntimeError("call reset() first")
        return self._world

    # -- money and goal ---------------------------------------------------------------------------
    def _arrived(self, wave: _Wave, now: int) -> NDArray[np.int64]:
        """``(k,)`` conversions of ``wave`` observed by clock ``now`` (iterations before it)."""
        upto = now - 1 - wave.iteration
        if upto < 0:
            return np.zeros(wave.conversions.shape[0], np.int64)
        out: NDArray[np.int64] = wave.conversions[:, : upto + 1].sum(axis=1)
        return out

    def observed(self) -> float:
        """Attributed conversions observed so far (clock ``t``)."""
        return float(sum(int(self._arrived(w, self.t).sum()) for w in self.waves))

    def held(self) -> float:
        """Dollars reserved for offers of open decisions not converted yet."""
        total = 0.0
        for w in self.waves:
            if w.iteration + self.world.window >= self.t:  # window still open
                total += float((w.hold * (w.sent - self._arrived(w, self.t))).sum())
        return total

    @property
    def available(self) -> float:
        return max(self.world.budget - self.spent - self.held(), 0.0)

    def calibration(self) -> float:
        """Realized over forecast conversions of closed decisions, shrunk to 1, within [0.5, 2]."""
        prior = max(2.0, 0.1 * self.forecast_closed)
        return float(np.clip((self.realized_closed + prior) / (self.forecast_closed + prior), 0.5, 2.0))

    def pending(self) -> float:
        """Conversions still expected from open decisions (delay-corrected model forecast)."""
        w = self.world
        cdf = np.cumsum(w.delays)
        total = 0.0
        for wave in self.waves:
            age = self.t - 1 - wave.iteration
            if wave.iteration + w.window < self.t:
                continue
            got = float(cdf[min(max(age, 0), cdf.size - 1)]) if age >= 0 else 0.0
            f = wave.forecast
            p = f * (1.0 - got) / np.maximum(1.0 - f * got, 1e-9)
            waiting = wave.sent - self._arrived(wave, self.t)
            total += float((p * waiting).sum())
        return self.calibration() * total

    def _advance(self) -> float:
        """Close iteration ``t``: fatigue decays, the conversions of iteration ``t`` are observed
        (their offers charged), windows close. Returns the dollars charged."""
        w = self.world
        w.fatigue *= w.fatigue_decay
        self.t += 1
        charged = 0.0
        for wave in self.waves:
            d = self.t - 1 - wave.iteration  # conversions of delay d are observed (and paid) now
            if 0 <= d < wave.conversions.shape[1]:
                charged += float((wave.conversions[:, d] * wave.offer_cost).sum())
            if wave.iteration + w.window == self.t - 1:  # its window just closed
                self.forecast_closed += float((wave.forecast * wave.sent).sum())
                self.realized_closed += float(wave.conversions.sum())
        self.spent += charged
        return charged

    def _stop_reason(self) -> str | None:
        w = self.world
        if self.observed() >= w.target:
            return "goal_reached"
        if self.t >= w.iterations:
            return "max_iterations"
        cheapest = float(w.send_cost[1:][w.send_cost[1:] > 0].min(initial=0.0)) * w.copies
        if w.budget - self.spent < max(cheapest, 1e-9):
            return "budget_exhausted"
        return None

    def _skip_holds(self) -> float:
        """Let iterations pass without sending while the pending forecast covers the goal (as the
        loop does), until a wave must be sent or the campaign stops. Returns the dollars charged."""
        charged = 0.0
        while self._stop_reason() is None and self.observed() + self.pending() >= self.world.target:
            charged += self._advance()
            self.held_iterations += 1
        if self._stop_reason() is not None:
            charged += self._drain()
            self.done = True
        return charged

    def _drain(self) -> float:
        """After the last send: let every late conversion arrive (their offers are paid)."""
        charged = 0.0
        for _ in range(self.world.window):
            charged += self._advance()
        return charged

    # -- observation ------------------------------------------------------------------------------
    def _observe(self) -> PacingObservation:
        """As ``FunnelTSPolicy._observe``: the campaign before wave ``t``."""
        w = self.world
        held = self.held()
        available = max(w.budget - self.spent - held, 0.0)
        observed = self.observed()
        pending = self.pending()
        goal_remaining = max(w.target - observed, 0.0)
        remaining = max(goal_remaining - pending, 0.0)
        per_unit = w.budget / w.target
        spent = max(w.budget - available - held, 0.0)
        got = observed + pending
        return PacingObservation(
            time_left=max(w.iterations - self.t, 0) / w.iterations,
            budget_left=available / w.budget,
            goal_left=remaining / w.target,
            pending=pending / w.target,
            cost_per_unit=(spent / got) / per_unit if got > 0 else 1.0,
            affordable=((available + held) / max(remaining, 1e-9)) / per_unit,
            calibration=self.calibration(),
        )

    def _info(self) -> dict[str, Any]:
        w = self.world
        return {
            "scenario": w.scenario,
            "iteration": self.t,
            "goal": w.target,
            "budget": w.budget,
            "conversions": self.observed(),
            "spent": self.spent,
            "copies": w.copies,
        }

    # -- one wave ---------------------------------------------------------------------------------
    def _wave_arms(
        self, customers: IntArray, action: PacingAction
    ) -> tuple[IntArray, FloatArray, FloatArray]:
        """funnel_ts's rule with the action applied; the chosen arms, the model's forecasts and
        offer costs of the chosen arms."""
        w = self.world
        rng = self._rng
        n, A = customers.size, w.send_cost.size
        shrink = np.exp(-w.fatigue_penalty * w.fatigue[customers])[:, None]
        base = w.base[customers][:, None]
        p = np.clip(base + (w.p_true[customers] - base) * shrink, 0.0, 1.0)
        offer = w.offer_true[customers] * shrink
        sd = w.sd0 / math.sqrt(1.0 + self.t)
        progress = self.t / max(w.iterations - 1, 1)
        bias = w.bias0 * BIAS_DECAY**self.t + w.drift * progress
        err = np.exp(bias + sd * rng.standard_normal((n, A)) - 0.5 * sd * sd)
        info = w.info0 + (w.info1 - w.info0) * progress
        signal = np.exp(info * np.log(np.maximum(p, 1e-9)) + (1.0 - info) * w.log_mean[None, :])
        allowed = w.mask[customers]
        # unbiased per arm over the wave's candidates: the model ranks customers less well, but
        # knows the arms' average (the bias term decides whether it over-predicts)
        signal *= np.where(allowed, p, 0.0).sum(axis=0) / np.maximum(
            np.where(allowed, signal, 0.0).sum(axis=0), 1e-12
        )
        p_model = np.clip(signal * err, 0.0, 1.0)
        cost_model = w.send_cost[None, :] + offer * np.exp(0.5 * sd * rng.standard_normal((n, A)))
        ch = np.maximum(w.channel, 0)
        share = np.where(w.channel[None, :] >= 0, w.subscribed[customers][:, ch], 1.0)
        scale = w.copies * share  # copies a contact reaches
        value = np.where(allowed, p_model, -np.inf) * scale
        value[:, NO_CONTACT] = 0.0
        calibration = self.calibration()
        estimate = np.where(allowed, p_model * calibration, 0.0) * scale
        estimate[:, NO_CONTACT] = 0.0
        cost = cost_model * scale
        cost[:, NO_CONTACT] = 0.0
        worst = (w.send_cost + w.cap)[None, :] * scale

        held = self.held()
        available = max(w.budget - self.spent - held, 0.0)
        observed = self.observed()
        pending = self.pending()
        goal_remaining = max(w.target - observed, 0.0)
        remaining = max(goal_remaining - pending, 0.0)
        target = remaining + MARGIN * math.sqrt(goal_remaining)
        iterations_left = w.iterations - self.t
        need = target / max(iterations_left - SLACK, 1) * action.volume
        affordable = (available + held) / max(remaining, 1e-9)
        max_price = PRICE_CAP * affordable * action.price
        previous = self.last_price if self.last_price > 0 else affordable
        stepped = iterations_left > 2
        if stepped:
            max_price = min(max_price, previous * PRICE_STEP)
        wave_budget = min(available, (available + held) / (w.window + 1))
        if target <= 0:
            return np.zeros(n, np.int64), np.zeros(n), np.zeros((3, n))
        floor = previous / PRICE_STEP if stepped else 0.0
        sol = price_band_wave(value, cost, worst, need, wave_budget, estimate, max_price, floor)
        self.last_price = sol.price
        rows = np.arange(n)
        chosen = sol.arms
        p_chosen = p[rows, chosen]
        offer_per_conversion = offer[rows, chosen] / np.maximum(p_chosen, 1e-12)
        return chosen, p_chosen, np.stack([p_model[rows, chosen], offer_per_conversion, share[rows, chosen]])

    def step(
        self, action: NDArray[np.float32]
    ) -> tuple[NDArray[np.float32], float, bool, bool, dict[str, Any]]:
        if self._world is None:
            raise RuntimeError("call reset() first")
        if self.done:
            raise RuntimeError("the episode is over; call reset()")
        w = self.world
        rng = self._rng
        multipliers = action_to_multipliers(np.asarray(action, dtype=np.float64))
        spent_before = self.spent
        customers = np.sort(rng.choice(w.p_true.shape[0], size=w.wave_size, replace=False))
        chosen, p_chosen, extra = self._wave_arms(customers, multipliers)
        forecast, offer_per_conversion = extra[0], extra[1]
        sends = np.rint(w.copies * extra[2]).astype(np.int64)
        sent = (chosen != NO_CONTACT) & (sends > 0)
        c, a, sends = customers[sent], chosen[sent], sends[sent]
        # Send: pay the send costs, reserve the offer caps, draw the conversions and their delays.
        self.spent += float((w.send_cost[a] * sends).sum())
        conversions = rng.binomial(sends, p_chosen[sent])
        by_delay = (
            rng.multinomial(conversions, w.delays) if c.size else np.zeros((0, w.delays.size), np.int64)
        )
        wave = _Wave(
            iteration=self.t,
            sent=sends,
            hold=w.cap[a],
            forecast=forecast[sent],
            conversions=np.asarray(by_delay, dtype=np.int64).reshape(c.size, w.delays.size),
            offer_cost=np.where(w.cap[a] > 0, offer_per_conversion[sent], 0.0),
        )
        self.waves.append(wave)
        # Opt-outs are for good (a share of the copies); fatigue grows with expected deliveries.
        leave = w.unsubscribe[c, a] * (1.0 + w.fatigue_unsubscribe * w.fatigue[c])
        w.subscribed[c, w.channel[a]] *= 1.0 - np.clip(leave, 0.0, 1.0)
        np.add.at(w.fatigue, c, w.deliver[c, a])
        self.steps += 1
        self._advance()
        self._skip_holds()
        reward = -(self.spent - spent_before) / w.budget
        info = self._info()
        info.update(price=multipliers.price, volume=multipliers.volume, sends=int(sends.sum()))
        if self.done:
            conversions_total = self.observed()
            reached = conversions_total >= w.target and self.spent <= w.budget + 1e-6
            if reached:
                reward += 1.0 + (w.budget - self.spent) / w.budget
            else:
                reward -= 2.0 * max(w.target - conversions_total, 0.0) / w.target
            info.update(goal_reached=bool(reached), stop_reason=self._final_reason())
        return self._observe().as_array(), float(reward), self.done, False, info

    def _final_reason(self) -> str:
        w = self.world
        if self.observed() >= w.target:
            return "goal_reached"
        if self.t >= w.iterations:
            return "max_iterations"
        return "budget_exhausted"
