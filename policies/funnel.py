"""``funnel_ts``: a learner that learns the customer, from every funnel event, paced to the deadline.

Conversions are under 1% of sends, so a model of conversions alone learns slowly. This policy
factors a contact's response along the funnel the events report, and learns each factor from its
own events (about a hundred times more than conversions):

* ``deliver[channel]``: delivered / sent, a Beta rate per channel;
* ``open(customer, channel)``: P(opened | delivered), from every delivered contact;
* ``click(customer, channel, content)``: P(clicked | opened), from every opened contact;
* ``convert(customer, content, offer)``: P(converted within the window | clicked), from every click;
* ``base(customer, contacted)``: P(converted | no click), from every candidate: the organic
  purchases of customers not contacted (what reveals *sure things*) and the conversions of contacted
  customers who did not click (``contacted`` interacts with every input, so contact may lower it:
  *sleeping dogs*).

The expected response of arm ``a = (channel c, content k, offer o)`` for customer ``i``::

    p_convert = d_c * (o_ic * k_ick * q_iko + (1 - o_ic * k_ick) * b1_i) + (1 - d_c) * b0_i
    p_redeem  = d_c * o_ic * (k_ick * q_iko + (1 - k_ick) * b1_i)        (offers only)
    uplift    = p_convert - b0_i

Each factor is a Bayesian logistic regression (:mod:`policies.logistic`, Laplace posterior) on the
customer's observable features **and a per-customer state built from the campaign's events**:
organic purchases and exposure, conversions without a click, clicks without a purchase, per-channel
opens over deliveries, unsubscribes. A customer's uplift type reveals itself in that state during
the campaign, and the models learn how much each piece of evidence is worth.

A contact is valued by its effect on the goal metric: attributed conversions (``p_convert``),
revenue (``p_convert`` times the customer's predicted order value) or incremental conversions
(``uplift``: sure things and sleeping dogs are left alone). Its cost is the send cost plus the
expected redemption cost of its offer; its worst case (the reservation it holds for the window) is
priced as a second resource.

Exploration is Thompson sampling: one draw of every model's coefficients per wave (coherent across
customers), scaled by ``explore``. Each wave is solved as the oracle's multiple-choice knapsack
(:func:`policies.knapsack.price_band_wave`, reserve-aware), driven by the sampled values.

Pacing knows the deadline and the budget. The wave's need is ``pace * (remaining - pending +
margin) / (iterations_left - slack)``, where ``pending`` is the lower of the delay-corrected value
still expected from sent decisions and the loop's own projection (``DecisionContext.goal_pending``)
and the margin doubles in the last two waves; forecasts are scaled by the model's track record
(realized over forecast of closed decisions and, delay-corrected, open ones), so a wave behind plan
buys more next time and one ahead saves. A pacer (:mod:`policies.pacing`) may scale the need and
the price. The marginal price is
capped at ``price_cap`` times what the money not yet spent can afford per unit of the goal left, and
a wave reserves at most its even share of that money over the attribution window.

Pretraining: :meth:`FunnelTSPolicy.begin_campaign` (called automatically when a campaign restarts
at iteration 0) keeps the learned coefficients as the next campaign's prior with its precision
times ``carry_over`` (wide enough to keep learning when the live world differs from the
simulator) and forgets the customers.

Propensities: the probability of the chosen arm under ``pscore_samples`` further coefficient draws
at the wave's price and penalty (held fixed), by Monte Carlo, floored at ``1 / (2 * samples)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
from numpy.typing import NDArray

from policies.base import DecisionContext, Decisions, Feedback, Policy
from policies.contextual import mc_propensity
from policies.customer_state import N_STATE, OPEN_FIELDS, CustomerState, OpenDecisions
from policies.knapsack import paced_need, price_band_wave
from policies.logistic import BayesLogistic, logit, sigmoid
from policies.pacing import PacingObservation, make_pacer
from simulators.types import (
    NO_CONTACT,
    ArmTable,
    EventBatch,
    EventKind,
    FloatArray,
    IntArray,
    decode_array,
    encode_array,
)

STATE_PRIOR = 0.1
"""Prior precision of the state-feature coefficients, relative to ``prior_precision``."""

CALIBRATION_DECAY = 0.7
"""Weight of the track record per wave of age in :meth:`FunnelTSPolicy.calibration`."""


@dataclass(frozen=True)
class _Draw:
    """One set of coefficients for the funnel models: ``open`` ``(n_channels, d_x + 2)``,
    ``click`` ``(n_contents, d_x + n_channels)``, ``convert`` and ``base`` vectors."""

    open: FloatArray
    click: FloatArray
    convert: FloatArray
    base: FloatArray


@dataclass(frozen=True)
class FunnelEstimates:
    """Per (candidate, arm) expectations, ``(n, n_arms)`` each (arm 0: no contact)."""

    p_convert: FloatArray
    p_redeem: FloatArray
    baseline: FloatArray  # (n,) P(convert) without contact
    p_open: FloatArray  # (n, n_arms) P(opened | delivered)
    p_click: FloatArray  # (n, n_arms) P(clicked | opened)
    q: FloatArray  # (n, n_arms) P(converted | clicked)
    contacted_base: FloatArray  # (n,) P(converted without a click | contacted)

    @property
    def uplift(self) -> FloatArray:
        """Incremental conversion probability of each arm over no contact."""
        return self.p_convert - self.baseline[:, None]


@dataclass(frozen=True)
class WaveValues:
    """One wave's valuation by the model (see :meth:`FunnelTSPolicy.values`).

    Attributes:
        value: ``(n, n_arms)`` goal per arm under a posterior draw (``-inf`` where not allowed,
            0 for no contact).
        estimate: ``(n, n_arms)`` posterior-mean goal per arm, calibrated (0 where not allowed).
        cost: ``(n, n_arms)`` expected cost per arm (send plus expected redemption).
        allowed: ``(n, n_arms)`` arms allowed (no contact always).
        x: ``(n, d)`` model inputs.
        per_channel: ``(n, n_channels)`` per-channel engagement inputs.
        unit: goal per conversion (1 for conversions, revenue per order).
        calibration: realized over forecast goal of closed decisions.
    """

    value: FloatArray
    estimate: FloatArray
    cost: FloatArray
    allowed: NDArray[np.bool_]
    x: NDArray[np.float32]
    per_channel: FloatArray
    unit: float
    calibration: float


class FunnelTSPolicy(Policy):
    """Factored-funnel Thompson sampling with per-customer event state and deadline pacing.

    See the module docstring for the model.

    Args:
        pace: factor on the per-wave need.
        margin: safety margin on the goal left, in standard deviations of a Poisson count of it
            (the goal is a random outcome: planning its expectation reaches it half the time).
        slack: waves before the deadline by which the plan reaches the goal.
        explore: scale of the posterior draws (0: greedy on posterior means).
        price_cap: most the wave pays at the margin per unit of the goal, as a multiple of what
            the money not yet spent affords per unit of the goal left.
        wave_reserve: most one wave may reserve (worst case), as a multiple of the even share
            ``(available + held) / (window + 1)``; 0 disables the cap.
        prior_precision: prior precision of every coefficient (pseudo-observations).
        carry_over: share of the learned precision kept as the prior of the next campaign.
        pscore_samples: Monte Carlo draws for the propensities.
        newton_steps: Newton steps per model after each wave.
        price_step: most the marginal price may move from one wave to the next, up or down (a
            factor; the first wave starts from what the budget affords per unit of the goal; 0:
            no limit; the last two waves are free to catch up).
        bystanders: customers of earlier waves sampled per wave (not candidates now, so not
            contacted) whose organic purchases teach the ``base`` model.
        pacer: the pacer (one of :data:`policies.pacing.PACERS`) whose multipliers scale each
            wave's marginal price and need (``rule``: none).
        early_calibration: whether open decisions count toward the calibration, delay-corrected
            (see :meth:`calibration`).
        seed: the policy's seed.
    """

    name: ClassVar[str] = "funnel_ts"

    def __init__(
        self,
        pace: float = 1.0,
        margin: float = 1.5,
        slack: int = 1,
        explore: float = 0.3,
        price_cap: float = 15.0,
        wave_reserve: float = 1.0,
        prior_precision: float = 2.0,
        carry_over: float = 0.3,
        pscore_samples: int = 16,
        newton_steps: int = 3,
        bystanders: int = 10_000,
        price_step: float = 1.5,
        pacer: str = "rule",
        early_calibration: bool = True,
        seed: int | None = None,
    ) -> None:
        super().__init__(seed)
        self._pacer = make_pacer(pacer)
        self.pacer = pacer
        self.early_calibration = early_calibration
        self._wave_calibration = 1.0
        checks = {
            "pace": pace > 0,
            "margin": margin >= 0,
            "slack": slack >= 0,
            "explore": explore >= 0,
            "price_cap": price_cap > 0,
            "wave_reserve": wave_reserve >= 0,
            "prior_precision": prior_precision > 0,
            "carry_over": 0 < carry_over <= 1,
            "pscore_samples": pscore_samples >= 1,
            "newton_steps": newton_steps >= 1,
            "bystanders": bystanders >= 0,
            "price_step": price_step == 0 or price_step >= 1,
        }
        for key, ok in checks.items():
            value = locals()[key]
            if not ok or not np.isfinite(value):
                raise ValueError(f"funnel_ts: {key}={value!r} is out of range")
        self.pace = pace
        self.margin = margin
        self.slack = slack
        self.explore = explore
        self.price_cap = price_cap
        self.wave_reserve = wave_reserve
        self.prior_precision = prior_precision
        self.carry_over = carry_over
        self.pscore_samples = pscore_samples
        self.newton_steps = newton_steps
        self.bystanders = bystanders
        self.price_step = price_step
        self.last_price = 0.0
        # The campaign's start (iterations, budget with holds, goal): the pacer's units.
        self.start: tuple[float, float, float] | None = None
        self._built: tuple[int, int, int, int, int] | None = None  # n_features, n_ch, n_co, n_of, n_arms
        self._last: (
            tuple[DecisionContext, NDArray[np.float32], FloatArray, FloatArray, FunnelEstimates] | None
        ) = None
        self.updates = 0
        self.campaigns = 0
        self._last_iteration = -1

    def config(self) -> dict[str, Any]:
        return {
            "pace": self.pace,
            "margin": self.margin,
            "slack": self.slack,
            "explore": self.explore,
            "price_cap": self.price_cap,
            "wave_reserve": self.wave_reserve,
            "prior_precision": self.prior_precision,
            "carry_over": self.carry_over,
            "pscore_samples": self.pscore_samples,
            "newton_steps": self.newton_steps,
            "bystanders": self.bystanders,
            "price_step": self.price_step,
            "pacer": self.pacer,
            "early_calibration": self.early_calibration,
            "seed": self.seed,
        }

    # -- model layout ---------------------------------------------------------------------------
    def _build(self, n_features: int, arms: ArmTable) -> None:
        n_ch, n_co, n_of = len(arms.channel_names), len(arms.content_names), len(arms.offer_names)
        self._build_sizes(n_features, n_ch, n_co, n_of, len(arms))
        self._set_arms(arms)

    def _set_arms(self, arms: ArmTable) -> None:
        self._arm_content = np.asarray(arms.content, dtype=np.int64)
        self._arm_offer = np.asarray(arms.offer, dtype=np.int64)
        self._arm_discount = np.asarray(arms.discount, dtype=np.float64)

    def _build_sizes(self, n_features: int, n_ch: int, n_co: int, n_of: int, n_arms: int) -> None:
        self._built = (n_features, n_ch, n_co, n_of, n_arms)
        self.d_x = 1 + n_features + N_STATE
        pp = self.prior_precision
        d_conv = 2 * self.d_x + n_co + n_of
        d_base = 2 * self.d_x
        # Coefficients of the state features get a prior a tenth as strong: the evidence a
        # customer's events carry (a purchase without contact, a click that converted) is worth
        # several logits, and each model must be free to learn that from a few thousand rows.
        x_pp = np.full(self.d_x, pp)
        x_pp[self.d_x - N_STATE :] = pp * STATE_PRIOR
        own_pp = np.full(2, pp * STATE_PRIOR)

        def prior(*parts: FloatArray | float) -> FloatArray:
            return np.concatenate([np.atleast_1d(np.asarray(q, dtype=np.float64)) for q in parts])

        # open: one model per channel (own-channel state appended); click: one per content
        # (channel levels appended). Independent blocks keep each Hessian small.
        self.open_models = [
            BayesLogistic(self.d_x + 2, prior(x_pp, own_pp), self._intercept(self.d_x + 2, 0, 0.15))
            for _ in range(n_ch)
        ]
        self.click_models = [
            BayesLogistic(
                self.d_x + n_ch, prior(x_pp, np.full(n_ch, pp)), self._intercept(self.d_x + n_ch, 0, 0.1)
            )
            for _ in range(n_co)
        ]
        self.convert_model = BayesLogistic(
            d_conv, prior(x_pp, x_pp, np.full(n_co + n_of, pp)), self._intercept(d_conv, 0, 0.05)
        )
        self.base_model = BayesLogistic(d_base, prior(x_pp, x_pp), self._intercept(d_base, 0, 0.005))
        self.state = CustomerState(n_ch)
        self.base_counts = np.zeros(2)  # purchases without a click, customer-iterations
        self.open_counts = np.zeros((n_ch, 2))  # opens, deliveries per channel
        self.deliver = np.ones((n_ch, 2))  # Beta(delivered + 1, not delivered + 1)
        self.delay_counts = np.ones(1)  # conversions by delay (with a uniform prior)
        self.revenue_sum, self.revenue_n = 85.0, 1.0
        self.offer_cost_sum = np.zeros(n_of)
        self.offer_cost_n = np.zeros(n_of)
        self.forecast_closed = 0.0
        self.realized_closed = 0.0
        self.open = OpenDecisions.empty(self.d_x)
        self.iterations_seen = 0
        self._static = np.zeros((0, 1 + n_features), np.float32)
        self._seen = np.zeros(0, bool)

    @staticmethod
    def _intercept(d: int, index: int, rate: float) -> FloatArray:
        m = np.zeros(d)
        m[index] = float(logit(rate))
        return m

    def _ensure(self, ctx: DecisionContext) -> None:
        n_features = int(np.asarray(ctx.features).shape[1])
        arms = ctx.arms
        sig = (
            n_features,
            len(arms.channel_names),
            len(arms.content_names),
            len(arms.offer_names),
            len(arms),
        )
        if self._built is None:
            self._build(n_features, arms)
        elif not hasattr(self, "_arm_content"):  # restored from a save: arms come with the context
            self._set_arms(arms)
        if self._built != sig:
            raise ValueError(f"funnel_ts was built for {self._built} (features, channels, ...), got {sig}")

    # -- campaign boundaries --------------------------------------------------------------------
    def begin_campaign(self) -> None:
        """A new campaign (new customers): keep the learned coefficients as a widened prior."""
        for m in self._models():
            m.to_prior(self.carry_over)
        n_ch = len(self.state.sent[0]) if self.state.size else self.state.n_channels
        self.state = CustomerState(n_ch)
        self.open = OpenDecisions.empty(self.d_x)
        self._static = np.zeros((0, self._static.shape[1]), np.float32)
        self._seen = np.zeros(0, bool)
        self.forecast_closed = self.realized_closed = 0.0
        self.iterations_seen = 0
        self.last_price = 0.0
        self.start = None
        self.campaigns += 1

    def _models(self) -> tuple[BayesLogistic, ...]:
        return (*self.open_models, *self.click_models, self.convert_model, self.base_model)

    # -- inputs -----------------------------------------------------------------------------------
    def inputs(self, ctx: DecisionContext) -> tuple[NDArray[np.float32], FloatArray]:
        """``(x (n, d_x), per_channel (n, n_channels, 2))``: intercept, observable features and
        state features of the candidates."""
        customers = np.asarray(ctx.customers, dtype=np.int64)
        shared, per_channel = self.state.features(
            customers, self.iterations_seen, self.base_rate, self.channel_open_rate
        )
        x = np.concatenate(
            [np.ones((customers.size, 1), np.float32), np.asarray(ctx.features, np.float32), shared], axis=1
        ).astype(np.float32)
        return x, per_channel

    @property
    def base_rate(self) -> float:
        """The population's purchase rate per iteration without a click (observed, with a prior
        of 0.5% over 1,000 customer-iterations)."""
        return float((self.base_counts[0] + 5.0) / (self.base_counts[1] + 1000.0))

    @property
    def channel_open_rate(self) -> FloatArray:
        """``(n_channels,)`` the population's open rate per delivery (observed, prior 15% over 20)."""
        out: FloatArray = (self.open_counts[:, 0] + 3.0) / (self.open_counts[:, 1] + 20.0)
        return out

    # -- prediction ---------------------------------------------------------------------------
    def _draw(self, scale: float) -> _Draw:
        def one(m: BayesLogistic) -> FloatArray:
            return m.theta if scale <= 0 else m.sample(self.rng, scale)

        return _Draw(
            open=np.stack([one(m) for m in self.open_models]),
            click=np.stack([one(m) for m in self.click_models]),
            convert=one(self.convert_model),
            base=one(self.base_model),
        )

    def predict(
        self,
        x: NDArray[np.float32],
        per_channel: FloatArray,
        arms: ArmTable,
        draw: _Draw,
        customers: IntArray | None = None,
        detail: bool = True,
    ) -> FunnelEstimates:
        """Funnel expectations for every candidate and arm under one set of coefficients; with
        ``customers``, each customer's own multipliers (:meth:`CustomerState.multipliers`)
        are applied to the population model's probabilities. Without ``detail`` only
        ``p_convert`` and ``baseline`` are filled (the others are empty): what a Thompson draw
        needs."""
        assert self._built is not None
        _, _n_ch, n_co, _n_of, n_arms = self._built
        d_x = self.d_x
        x64 = np.asarray(x, dtype=np.float64)
        # open: channel-crossed features + own-channel state
        th = draw.open
        z_open = (
            x64 @ th[:, :d_x].T + per_channel[:, :, 0] * th[:, d_x] + per_channel[:, :, 1] * th[:, d_x + 1]
        )
        p_open = sigmoid(z_open)  # (n, n_ch)
        # click: content-crossed features + channel level
        th = draw.click
        z_click = (x64 @ th[:, :d_x].T)[:, None, :] + th[:, d_x:].T[None, :, :]
        p_click = sigmoid(z_click)  # (n, n_ch, n_co)
        # convert | click: features, features x any offer, content and offer levels
        th = draw.convert
        lin = x64 @ th[:d_x]
        offer_lin = x64 @ th[d_x : 2 * d_x]
        co_lvl = th[2 * d_x : 2 * d_x + n_co]
        of_lvl = th[2 * d_x + n_co :]
        has_offer = np.asarray(arms.discount, dtype=np.float64) > 0
        # base without / with contact
        th = draw.base
        z0 = x64 @ th[:d_x]
        b0 = sigmoid(z0)
        b1 = sigmoid(z0 + x64 @ th[d_x:])

        a = np.arange(1, n_arms)
        ch, co, of = arms.channel[a], arms.content[a], arms.offer[a]
        deliver = self.deliver[:, 0] / self.deliver.sum(axis=1)
        d = deliver[ch][None, :]
        o = p_open[:, ch]
        k = p_click[:, ch, co]
        zq = (
            lin[:, None]
            + co_lvl[co][None, :]
            + of_lvl[of][None, :]
            + offer_lin[:, None] * has_offer[a][None, :]
        )
        q = sigmoid(zq)
        if customers is not None:
            m_open, m_click, m_q, m_b1 = self.state.multipliers(np.asarray(customers, dtype=np.int64))
            o = np.minimum(o * m_open[:, ch], 0.99)
            k = np.minimum(k * m_click[:, None], 0.99)
            q = np.minimum(q * m_q[:, None], 0.99)
            b1 = np.minimum(b1 * m_b1, 0.99)
        ok = o * k
        p_convert = np.zeros((x64.shape[0], n_arms))
        p_convert[:, 0] = b0
        p_convert[:, 1:] = d * (ok * q + (1.0 - ok) * b1[:, None]) + (1.0 - d) * b0[:, None]
        if not detail:
            empty = np.zeros((0, 0))
            return FunnelEstimates(p_convert, empty, b0, empty, empty, empty, b1)
        p_redeem = np.zeros_like(p_convert)
        p_redeem[:, 1:] = np.where(has_offer[a][None, :], d * o * (k * q + (1.0 - k) * b1[:, None]), 0.0)

        def full(v: FloatArray) -> FloatArray:
            out = np.zeros_like(p_convert)
            out[:, 1:] = v
            return out

        return FunnelEstimates(
            p_convert=p_convert,
            p_redeem=p_redeem,
            baseline=b0,
            p_open=full(o),
            p_click=full(k),
            q=full(q),
            contacted_base=b1,
        )

    def revenue_per_conversion(self) -> float:
        """Mean order value of the conversions seen (with a prior of one $85 order)."""
        return self.revenue_sum / self.revenue_n

    def offer_cost_per_redemption(self, arms: ArmTable) -> FloatArray:
        """``(n_arms,)`` expected offer cost of a redemption: observed mean per offer, shrunk to
        ``min(discount * order value, cap)`` with two pseudo-redemptions."""
        prior = np.minimum(arms.discount * self.revenue_per_conversion(), arms.max_offer_cost)
        of = np.where(arms.offer >= 0, arms.offer, 0)
        mean = (self.offer_cost_sum[of] + 2.0 * prior) / (self.offer_cost_n[of] + 2.0)
        out: FloatArray = np.where(arms.discount > 0, mean, 0.0)
        return out

    def _value(self, est: FunnelEstimates, metric: str) -> FloatArray:
        if metric == "incremental_conversions":
            v = est.uplift
        elif metric == "revenue":
            v = est.p_convert * self.revenue_per_conversion()
        else:
            v = est.p_convert.copy()
        v[:, NO_CONTACT] = 0.0
        return v

    # -- pacing ------------------------------------------------------------------------------------
    def calibration(self, now: int | None = None) -> float:
        """Realized over forecast goal (recent waves weigh more), shrunk to 1 by a tenth of the
        forecast, within [0.5, 2].

        Closed decisions count whole; with ``now`` (the iteration about to be decided), open
        ones count too, their forecast scaled by the share of conversions that has had time to
        arrive (delay-corrected), so a model that over-predicts is caught one wave after its
        first sends rather than once their window has closed.
        """
        forecast, realized = self.forecast_closed, self.realized_closed
        o = self.open
        if now is not None and o.ids.size:
            got = self._arrival_share(np.maximum(now - 1 - o.iteration, 0))
            forecast += float((o.forecast * got).sum())
            realized += float(o.realized.sum())
        prior = max(2.0, 0.1 * forecast)
        return float(np.clip((realized + prior) / (forecast + prior), 0.5, 2.0))

    def _arrival_share(self, age: IntArray) -> FloatArray:
        """Share of a decision's conversions that arrive within ``age`` iterations of its send."""
        cdf = np.cumsum(self.delay_counts) / self.delay_counts.sum()
        out: FloatArray = cdf[np.minimum(age, cdf.size - 1)]
        return out

    def expected_pending(self, now: int) -> float:
        """Goal value still expected from open decisions (delay-corrected forecast)."""
        o = self.open
        if o.ids.size == 0:
            return 0.0
        waiting = ~o.converted
        got = self._arrival_share(np.maximum(now - 1 - o.iteration, 0))
        p = o.forecast * (1.0 - got) / np.maximum(1.0 - o.forecast * got, 1e-9)
        return float(p[waiting].sum())

    def held(self, arms: ArmTable) -> float:
        """Dollars held by this policy's open decisions (offer caps of unconverted decisions)."""
        o = self.open
        return float(np.asarray(arms.max_offer_cost)[o.arm[~o.converted]].sum())

    def _observe(
        self, ctx: DecisionContext, held: float, remaining: float, pending: float, calibration: float
    ) -> PacingObservation:
        """The pacer's scenario-agnostic view of the campaign before this wave."""
        if self.start is None or ctx.iteration == 0:
            self.start = (
                float(ctx.iteration + ctx.iterations_left),
                ctx.budget_available + held,
                max(ctx.goal_remaining, 1e-9),
            )
        total, budget, goal = self.start
        per_unit = max(budget, 1e-9) / goal
        spent = max(budget - ctx.budget_available - held, 0.0)
        got = max(goal - ctx.goal_remaining - ctx.goal_pending, 0.0) + pending
        return PacingObservation(
            time_left=ctx.iterations_left / max(total, 1.0),
            budget_left=ctx.budget_available / max(budget, 1e-9),
            goal_left=remaining / goal,
            pending=pending / goal,
            cost_per_unit=(spent / got) / per_unit if got > 0 else 1.0,
            affordable=((ctx.budget_available + held) / max(remaining, 1e-9)) / per_unit,
            calibration=calibration,
        )

    # -- acting ------------------------------------------------------------------------------------
    def values(self, ctx: DecisionContext, explore: float | None = None) -> WaveValues:
        """What each arm is worth and costs for this wave's candidates, by the current model.

        Records the wave's forecasts so :meth:`update` can follow its decisions, whoever chose
        the arms (the benchmark's ladder drives this model with the oracle's allocator).

        Args:
            ctx: the wave's context.
            explore: scale of the posterior draw behind ``value`` (default: ``explore``).
        """
        self._ensure(ctx)
        if ctx.iteration == 0 and self._last_iteration > 0:
            self.begin_campaign()
        self._last_iteration = ctx.iteration
        arms = ctx.arms
        x, per_channel = self.inputs(ctx)
        allowed = np.asarray(ctx.mask, dtype=bool).copy()
        allowed[:, NO_CONTACT] = True
        metric = str(ctx.goal_metric)
        customers = np.asarray(ctx.customers, dtype=np.int64)
        mean = self.predict(x, per_channel, arms, self._draw(0.0), customers)
        redeem_cost = self.offer_cost_per_redemption(arms)
        cost = arms.send_cost[None, :] + mean.p_redeem * redeem_cost[None, :]
        cost[:, NO_CONTACT] = 0.0
        calibration = self.calibration(ctx.iteration if self.early_calibration else None)
        self._wave_calibration = calibration
        estimate = self._value(mean, metric) * calibration
        scale = self.explore if explore is None else explore
        sampled = self._value(
            self.predict(x, per_channel, arms, self._draw(scale), customers, detail=False), metric
        )
        value = np.where(allowed, sampled, -np.inf)
        value[:, NO_CONTACT] = 0.0
        estimate = np.where(allowed, estimate, 0.0)
        self._last = (ctx, x, estimate, per_channel, mean)
        unit = self.revenue_per_conversion() if metric == "revenue" else 1.0
        return WaveValues(value, estimate, cost, allowed, x, per_channel, unit, calibration)

    def act(self, ctx: DecisionContext) -> Decisions:
        w = self.values(ctx)
        x, per_channel, allowed, cost = w.x, w.per_channel, w.allowed, w.cost
        value, estimate, calibration, unit = w.value, w.estimate, w.calibration, w.unit
        arms = ctx.arms
        n = len(ctx)
        metric = str(ctx.goal_metric)
        customers = np.asarray(ctx.customers, dtype=np.int64)
        worst = np.asarray(arms.worst_case_cost, dtype=np.float64)

        pending = calibration * self.expected_pending(ctx.iteration)
        # The loop's goal_remaining may already leave out its own projection of the pending goal
        # (goal_pending, chain-ladder from each cohort's observed conversions): add it back and
        # count the lower of the two forecasts. Falling short of the goal loses the campaign,
        # overshooting costs a few sends; the model's forecast of what its recent (dearer) sends
        # will still bring carries its bias, which left last waves too small.
        observed_remaining = ctx.goal_remaining + ctx.goal_pending
        if ctx.goal_pending > 0:
            pending = min(pending, ctx.goal_pending)
        remaining = max(observed_remaining - pending, 0.0)
        # A safety margin of ``margin`` standard deviations of a Poisson count of the goal still
        # unobserved: the conversions still expected are as uncertain as those yet to be bought
        # (a margin on what is left after them sent nothing in the last wave when they seemed to
        # cover the goal, and the campaign ended a few dozen short).
        # In the last waves a shortfall can no longer be made up: the margin doubles there.
        margin = self.margin * (2.0 if ctx.iterations_left <= 2 else 1.0)
        target = remaining + margin * np.sqrt(max(observed_remaining, 0.0) * unit)
        # Plan to be done ``slack`` waves before the deadline: the last waves are the reserve.
        left = max(ctx.iterations_left - self.slack, 1)
        need = paced_need(target, left, self.pace)
        held = self.held(arms)
        affordable = (ctx.budget_available + held) / max(remaining, 1e-9)
        max_price = self.price_cap * affordable
        action = self._pacer(self._observe(ctx, held, remaining, pending, calibration))
        need *= action.volume
        max_price *= action.price
        previous = self.last_price if self.last_price > 0 else affordable
        if self.price_step > 0 and ctx.iterations_left > 2:
            # The marginal price moves by at most a factor ``price_step`` per wave (the first wave
            # starts from what the budget affords per unit of the goal): contact costs come in
            # steps (e-mail, SMS, mail), so a price that meets each wave's need exactly jumps
            # between "e-mail only" and "everything" as forecasts wobble, which wastes money
            # both ways; the shortfall or surplus is spread over the waves left instead.
            max_price = min(max_price, previous * self.price_step)
        wave_budget = ctx.budget_available
        if self.wave_reserve > 0:
            even = (ctx.budget_available + held) / (max(ctx.attribution_window, 0) + 1)
            wave_budget = min(wave_budget, self.wave_reserve * even)
        if target <= 0:
            arms_out = np.zeros(n, dtype=np.int64)
            return Decisions(arms=arms_out, pscores=np.ones(n), priority=np.zeros(n))
        floor = previous / self.price_step if self.price_step > 0 and ctx.iterations_left > 2 else 0.0
        wave = price_band_wave(value, cost, worst, need, wave_budget, estimate, max_price, floor)
        self.last_price = wave.price
        offset = cost / wave.price + wave.penalty * worst[None, :]

        def draw() -> IntArray:
            v = self._value(
                self.predict(x, per_channel, arms, self._draw(self.explore), customers, detail=False), metric
            )
            v[:, NO_CONTACT] = 0.0
            score = np.where(allowed, v - offset, -np.inf)
            return np.asarray(np.argmax(score, axis=1), dtype=np.int64)

        pscores = mc_propensity(wave.arms, self.pscore_samples, draw) if self.explore > 0 else np.ones(n)
        return Decisions(arms=wave.arms, pscores=pscores, priority=wave.priority)

    # -- learning ------------------------------------------------------------------------------------
    def update(self, feedback: Feedback) -> None:
        ctx = feedback.ctx
        self._ensure(ctx)
        if self._last is not None and self._last[0] is ctx:
            _, x, estimate, per_channel, mean = self._last
        else:
            x, per_channel = self.inputs(ctx)
            mean = self.predict(
                x, per_channel, ctx.arms, self._draw(0.0), np.asarray(ctx.customers, np.int64)
            )
            estimate = np.zeros((len(ctx), len(ctx.arms)))
        self._last = None
        arms = ctx.arms
        t = ctx.iteration
        events = feedback.events
        customers = np.asarray(ctx.customers, dtype=np.int64)
        ids = np.asarray(feedback.decision_ids, dtype=np.int64)
        chosen = np.asarray(feedback.decisions.arms, dtype=np.int64)
        sent = np.flatnonzero(ids >= 0)
        st = self.state
        st.grow(customers)
        if events.customer.size:
            st.grow(events.customer)
        organic = events.select((events.decision_id < 0) & (events.kind == EventKind.CONVERTED))
        self._learn_bystanders(customers, x, organic.customer[organic.iteration == t])

        # New decisions join the open set; their funnel events of this iteration label them now.
        own = per_channel[sent, arms.channel[chosen[sent]]]
        expected = np.stack(
            [
                mean.p_open[sent, chosen[sent]],
                mean.p_click[sent, chosen[sent]],
                mean.q[sent, chosen[sent]],
                mean.contacted_base[sent],
            ],
            axis=1,
        )
        new = OpenDecisions(
            ids=ids[sent],
            customer=customers[sent],
            arm=chosen[sent],
            iteration=np.full(sent.size, t, np.int64),
            clicked=np.zeros(sent.size, bool),
            converted=np.zeros(sent.size, bool),
            forecast=estimate[sent, chosen[sent]] / max(self._wave_calibration, 1e-9),
            realized=np.zeros(sent.size),
            x=x[sent],
            labelled=np.zeros(sent.size, bool),
            delivered=np.zeros(sent.size, bool),
            opened=np.zeros(sent.size, bool),
            own=np.asarray(own, np.float32),
            expected=expected,
        )
        funnel = np.isin(events.kind, (EventKind.DELIVERED, EventKind.OPENED, EventKind.CLICKED))
        if np.isin(new.ids, events.decision_id[funnel]).any():
            self._learn_funnel(new, own, expected, events, arms, st)
            new.labelled[:] = True
        # else: a real channel whose delivery, open and click events come later (or never): the
        # wave is labelled when its window closes, from the funnel events seen by then, and not
        # at all when none came (labelling it "not delivered" taught the models that no contact
        # ever arrives); conversions teach the model as they come.
        np.add.at(st.sent, (new.customer, arms.channel[new.arm]), 1.0)
        np.add.at(st.contacted_iterations, new.customer, 1.0)
        self.open = self.open.concat(new)

        self._see_late_funnel(events)
        # Conversions: attributed to open decisions (first one within the window), or organic.
        self._learn_conversions(events, arms, str(ctx.goal_metric))
        # Base rows of candidates not contacted: organic purchase this iteration or not.
        not_sent = np.flatnonzero(ids < 0)
        bought = np.isin(customers[not_sent], organic.customer[organic.iteration == t])
        xb = np.concatenate([x[not_sent], np.zeros_like(x[not_sent])], axis=1)
        self.base_model.add(xb, bought)
        self.base_counts += (float(bought.sum()), float(bought.size))
        np.add.at(st.organic, organic.customer, 1.0)
        unsub = events.select(events.kind == EventKind.UNSUBSCRIBED)
        np.add.at(st.unsubscribed, unsub.customer, 1.0)

        self._label_late(t - max(ctx.attribution_window, 0), arms, st)
        self._close(t - max(ctx.attribution_window, 0))
        self.iterations_seen = t + 1
        for m in self._models():
            m.fit(self.newton_steps, self.rng)
        self.updates += 1

    def _learn_bystanders(self, candidates: IntArray, x: NDArray[np.float32], bought: IntArray) -> None:
        """Base rows of customers seen in earlier waves who are not candidates now: they were not
        contacted, so their organic purchases this iteration (``bought``) label the ``base`` model.
        Their observable features are those of their last wave (cached), their state is current
        (before this iteration's events). At most ``bystanders`` rows per iteration, weighted up."""
        n_static = x.shape[1] - N_STATE
        if self._static.shape[0] < self.state.size:
            grown = np.zeros((self.state.size, n_static), np.float32)
            grown[: self._static.shape[0]] = self._static
            self._static = grown
            seen = np.zeros(self.state.size, bool)
            seen[: self._seen.shape[0]] = self._seen
            self._seen = seen
        others = self._seen.copy()
        others[candidates] = False
        pool = np.flatnonzero(others)
        self._static[candidates] = x[:, :n_static]
        self._seen[candidates] = True
        if pool.size == 0 or self.bystanders <= 0:
            return
        take = np.sort(self.rng.choice(pool, size=min(self.bystanders, pool.size), replace=False))
        shared, _ = self.state.features(take, self.iterations_seen, self.base_rate, self.channel_open_rate)
        xb = np.zeros((take.size, self.base_model.d), np.float32)
        xb[:, :n_static] = self._static[take]
        xb[:, n_static : self.d_x] = shared
        y = np.isin(take, bought)
        self.base_model.add(xb, y, np.full(take.size, pool.size / take.size, np.float32))
        self.base_counts += (float(y.sum()) * pool.size / take.size, float(pool.size))

    def _learn_funnel(
        self,
        new: OpenDecisions,
        own: FloatArray,
        expected: FloatArray,
        events: EventBatch,
        arms: ArmTable,
        st: CustomerState,
    ) -> None:
        """Label this iteration's sends with their delivered/opened/clicked events and learn
        ``deliver``, ``open`` and ``click`` from them (``own``: ``(n, 2)`` the own-channel state
        features at decision time; ``expected``: ``(n, 4)`` what the models expected of each send:
        open, click, convert after a click, convert without one)."""
        if new.ids.size == 0:
            return
        order = np.argsort(new.ids)
        sorted_ids = new.ids[order]

        def flag(kind: EventKind) -> NDArray[np.bool_]:  # this iteration's events of the new sends
            ev = events.decision_id[events.kind == kind]
            pos = np.searchsorted(sorted_ids, ev)
            pos = np.minimum(pos, sorted_ids.size - 1)
            hit = sorted_ids[pos] == ev
            out = np.zeros(new.ids.size, bool)
            out[order[pos[hit]]] = True
            return out

        delivered, opened, clicked = (
            flag(EventKind.DELIVERED),
            flag(EventKind.OPENED),
            flag(EventKind.CLICKED),
        )
        self._learn_funnel_flags(new, own, expected, delivered, opened, clicked, arms, st)

    def _learn_funnel_flags(
        self,
        new: OpenDecisions,
        own: FloatArray,
        expected: FloatArray,
        delivered: NDArray[np.bool_],
        opened: NDArray[np.bool_],
        clicked: NDArray[np.bool_],
        arms: ArmTable,
        st: CustomerState,
    ) -> None:
        """Learn ``deliver``, ``open`` and ``click`` from sends labelled delivered / opened / clicked."""
        ch = arms.channel[new.arm]
        co = arms.content[new.arm]
        n_ch = len(arms.channel_names)
        np.add.at(self.deliver[:, 0], ch, delivered)
        np.add.at(self.deliver[:, 1], ch, ~delivered)
        np.add.at(st.delivered, (new.customer[delivered], ch[delivered]), 1.0)
        np.add.at(st.opened, (new.customer[opened], ch[opened]), 1.0)
        np.add.at(st.clicked, new.customer[clicked], 1.0)
        np.add.at(st.exp_opened, (new.customer[delivered], ch[delivered]), expected[delivered, 0])
        np.add.at(st.exp_clicked, new.customer[opened], expected[opened, 1])
        np.add.at(st.exp_click_converted, new.customer[clicked], expected[clicked, 2])
        np.add.at(st.exp_noclick_converted, new.customer[~clicked], expected[~clicked, 3])
        new.clicked[:] = clicked
        np.add.at(self.open_counts[:, 0], ch, opened)
        np.add.at(self.open_counts[:, 1], ch, delivered)
        # open | delivered
        rows = np.flatnonzero(delivered)
        if rows.size:
            x = new.x[rows]
            xo = np.concatenate([x, own[rows].astype(np.float32)], axis=1)
            for k in range(n_ch):
                on = ch[rows] == k
                self.open_models[k].add(xo[on], opened[rows][on])
        # click | opened
        rows = np.flatnonzero(opened)
        if rows.size:
            n_co = len(arms.content_names)
            xc = np.zeros((rows.size, self.d_x + n_ch), np.float32)
            xc[:, : self.d_x] = new.x[rows]
            xc[np.arange(rows.size), self.d_x + ch[rows]] = 1.0
            for k in range(n_co):
                on = co[rows] == k
                self.click_models[k].add(xc[on], clicked[rows][on])

    def _see_late_funnel(self, events: EventBatch) -> None:
        """Funnel events of open decisions not labelled yet (a real channel's, arriving after
        their wave): remembered until the window closes (:meth:`_label_late`); a click also marks
        the decision clicked for the conversions that follow."""
        o = self.open
        wait = np.flatnonzero(~o.labelled)
        if wait.size == 0 or events.decision_id.size == 0:
            return
        for kind, field in (
            (EventKind.DELIVERED, o.delivered),
            (EventKind.OPENED, o.opened),
            (EventKind.CLICKED, o.clicked),
        ):
            field[wait[np.isin(o.ids[wait], events.decision_id[events.kind == kind])]] = True

    def _label_late(self, before: int, arms: ArmTable, st: CustomerState) -> None:
        """Learn the funnel of waves sent at or before ``before`` (their windows close now) that
        were not labelled when sent: from the events seen meanwhile, an open implying delivery
        and a click implying both; a wave that got no funnel event at all teaches nothing."""
        o = self.open
        late = (o.iteration <= before) & ~o.labelled
        if not late.any():
            return
        for it in np.unique(o.iteration[late]).tolist():
            rows = late & (o.iteration == it)
            c = o.take(rows)
            clicked = c.clicked
            opened = c.opened | clicked
            delivered = c.delivered | opened
            if delivered.any():
                own = np.asarray(c.own, np.float64)
                self._learn_funnel_flags(c, own, c.expected, delivered, opened, clicked, arms, st)
            o.labelled[rows] = True

    def _learn_conversions(self, events: EventBatch, arms: ArmTable, metric: str) -> None:
        conv = events.select((events.kind == EventKind.CONVERTED) & (events.decision_id >= 0))
        o = self.open
        if conv.decision_id.size == 0 or o.ids.size == 0:
            return
        order = np.argsort(o.ids)
        sorted_ids = o.ids[order]
        pos = np.minimum(np.searchsorted(sorted_ids, conv.decision_id), sorted_ids.size - 1)
        hit = sorted_ids[pos] == conv.decision_id
        idx = order[pos[hit]]
        rev = conv.revenue[hit]
        cost = conv.offer_cost[hit]
        delay = conv.iteration[hit] - o.iteration[idx]
        first = ~o.converted[idx]
        # duplicates of one decision in one batch: keep the first
        _, uniq = np.unique(idx, return_index=True)
        keep = np.zeros(idx.size, bool)
        keep[uniq] = True
        keep &= first
        idx, rev, cost, delay = idx[keep], rev[keep], cost[keep], delay[keep]
        o.converted[idx] = True
        o.realized[idx] = rev if metric == "revenue" else 1.0
        st = self.state
        clicked = o.clicked[idx]
        np.add.at(st.click_converted, o.customer[idx[clicked]], 1.0)
        np.add.at(st.noclick_converted, o.customer[idx[~clicked]], 1.0)
        self.revenue_sum += float(rev.sum())
        self.revenue_n += float(rev.size)
        of = arms.offer[o.arm[idx]]
        paid = cost > 0
        np.add.at(self.offer_cost_sum, of[paid], cost[paid])
        np.add.at(self.offer_cost_n, of[paid], 1.0)
        delay = np.maximum(delay, 0)
        if delay.size:
            top = int(delay.max()) + 1
            if top > self.delay_counts.size:
                self.delay_counts = np.concatenate([self.delay_counts, np.ones(top - self.delay_counts.size)])
            np.add.at(self.delay_counts, delay, 1.0)

    def _close(self, before: int) -> None:
        """Decisions sent at or before iteration ``before`` have a closed window: they label the
        ``convert`` (clicked) and ``base`` (contacted, not clicked) models."""
        o = self.open
        done = o.iteration <= before
        if not np.any(done):
            return
        c = o.take(done)
        clicked = c.clicked
        if np.any(clicked):
            assert self._built is not None
            n_co = self._built[2]
            x = c.x[clicked]
            xq = np.zeros((x.shape[0], self.convert_model.d), np.float32)
            xq[:, : self.d_x] = x
            has = self._arm_discount[c.arm[clicked]] > 0
            xq[has, self.d_x : 2 * self.d_x] = x[has]
            r = np.arange(x.shape[0])
            xq[r, 2 * self.d_x + self._arm_content[c.arm[clicked]]] = 1.0
            xq[r, 2 * self.d_x + n_co + self._arm_offer[c.arm[clicked]]] = 1.0
            self.convert_model.add(xq, c.converted[clicked])
        nc = ~clicked
        if np.any(nc):
            x = c.x[nc]
            self.base_model.add(np.concatenate([x, x], axis=1), c.converted[nc])
            self.base_counts += (float(c.converted[nc].sum()), float(nc.sum()))
        # Exponentially weighted: the model's bias drifts as it learns, the recent record counts.
        self.forecast_closed = CALIBRATION_DECAY * self.forecast_closed + float(c.forecast.sum())
        self.realized_closed = CALIBRATION_DECAY * self.realized_closed + float(c.realized.sum())
        self.open = o.take(~done)

    # -- persistence ---------------------------------------------------------------------------------
    def _state(self) -> dict[str, Any]:
        if self._built is None:
            return {}
        o = self.open
        return {
            "built": list(self._built),
            "updates": self.updates,
            "campaigns": self.campaigns,
            "last_iteration": self._last_iteration,
            "start": list(self.start) if self.start is not None else None,
            "iterations_seen": self.iterations_seen,
            "open_models": [m.state() for m in self.open_models],
            "click_models": [m.state() for m in self.click_models],
            "convert_model": self.convert_model.state(),
            "base_model": self.base_model.state(),
            "customers": self.state.state(),
            "static": encode_array(self._static),
            "seen": encode_array(self._seen),
            "arrays": {
                k: getattr(self, k).tolist()
                for k in (
                    "deliver",
                    "delay_counts",
                    "offer_cost_sum",
                    "offer_cost_n",
                    "base_counts",
                    "open_counts",
                )
            },
            "scalars": {
                k: float(getattr(self, k))
                for k in ("revenue_sum", "revenue_n", "forecast_closed", "realized_closed", "last_price")
            },
            "open": {f: encode_array(np.asarray(getattr(o, f))) for f in OPEN_FIELDS},
        }

    def _restore(self, state: dict[str, Any]) -> None:
        if not state:
            return
        built = tuple(int(v) for v in state["built"])
        if len(built) != 5:
            raise ValueError("funnel_ts state: 'built' must hold 5 sizes")
        n_features, n_ch = built[0], built[1]
        self._built = None
        self._build_sizes(n_features, n_ch, built[2], built[3], built[4])
        self.updates = int(state["updates"])
        self.campaigns = int(state["campaigns"])
        self._last_iteration = int(state["last_iteration"])
        self.iterations_seen = int(state["iterations_seen"])
        start = state.get("start")
        self.start = (float(start[0]), float(start[1]), float(start[2])) if start else None
        self.open_models = [BayesLogistic.from_state(s) for s in state["open_models"]]
        self.click_models = [BayesLogistic.from_state(s) for s in state["click_models"]]
        self.convert_model = BayesLogistic.from_state(state["convert_model"])
        self.base_model = BayesLogistic.from_state(state["base_model"])
        self.state.restore(state["customers"])
        self._static = decode_array(state["static"]).astype(np.float32)
        self._seen = decode_array(state["seen"]).astype(bool)
        for k, v in state["arrays"].items():
            setattr(self, k, np.asarray(v, dtype=np.float64))
        for k, v in state["scalars"].items():
            setattr(self, k, float(v))
        saved = state["open"]
        extra = OpenDecisions.defaults(int(decode_array(saved["ids"]).shape[0]))
        self.open = OpenDecisions(
            *(decode_array(saved[f]) if f in saved else extra[f] for f in OPEN_FIELDS)
        )  # a state saved before the late-funnel fields: everything counts as labelled
