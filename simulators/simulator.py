"""The vectorized customer-response simulator.

The response model for customer ``i`` sent arm ``a = (channel c, content k, offer o)``:

* delivered ~ Bernoulli(deliver_c) if ``i`` is reachable on ``c`` and not unsubscribed, else 0;
* opened | delivered ~ Bernoulli(open_c * affinity_ic * exp(-penalty * fatigue_i));
* clicked | opened ~ Bernoulli(click_c * attr_click_i * type_click_i * content_match_ik);
* organic visit ~ Bernoulli(v_i), with v_i multiplied by the type's ``contact_visit`` once
  delivered (sleeping dogs visit less when contacted);
* converted = (clicked and Bernoulli(click_conversion_i * conversion_k * (1 + sens_i * lift_o)))
  or (organic visit and Bernoulli(organic_conversion_i)), where ``conversion_k`` is the
  content's multiplier and ``sens_i`` the customer's offer sensitivity;
* the offer is redeemed when the customer converts after opening it: the discount
  ``min(discount_o * order_value, max_value_o)`` is the offer cost, also for customers who
  would have bought anyway;
* unsubscribed | delivered ~ Bernoulli(unsub_c * type_unsub_i * (1 + fatigue_unsub * fatigue_i));
* conversions caused by a contact arrive ``d`` iterations later with P(d) = conversion_delay[d].

Customers not contacted in an iteration convert organically with P = v_i * organic_conversion_i.
:meth:`Simulator.expected` gives the closed forms of all of these, so the oracle and the tests
use exactly the model that :meth:`Simulator.send` samples from.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from simulators.scenario import UPLIFT_TYPES, Scenario
from simulators.types import (
    NO_CONTACT,
    ArmTable,
    BoolArray,
    EventBatch,
    EventKind,
    FloatArray,
    GroundTruth,
    IntArray,
)

_MAX_RECENCY_NORM = 24.0


def build_arms(scenario: Scenario) -> ArmTable:
    """The scenario's arm table: no contact first, then the listed (or all) combinations."""
    combos = [tuple(a.split("/")) for a in scenario.arms] if scenario.arms is not None else None
    return ArmTable.build(
        {c: cfg.send_cost for c, cfg in scenario.channels.items()},
        list(scenario.contents),
        {o: (cfg.discount, cfg.max_value) for o, cfg in scenario.offers.items()},
        combos,  # type: ignore[arg-type]
    )


@dataclass
class Population:
    """One drawn population (struct of arrays, one row per customer).

    Observable: ``segment``, ``recency``, ``frequency``, ``monetary``, ``attributes``,
    ``lines_observed``, ``reachable``, ``preferred_channel``. Hidden: everything else.
    """

    segment: IntArray  # (n,)
    recency: IntArray  # (n,) months since last purchase, >= 1
    frequency: IntArray  # (n,) orders last year, >= 1
    monetary: FloatArray  # (n,) dollars spent last year
    attributes: dict[str, IntArray]  # name -> (n,) value codes
    lines_observed: BoolArray  # (n, n_lines)
    lines_true: BoolArray  # (n, n_lines) hidden
    reachable: BoolArray  # (n, n_channels)
    preferred_channel: IntArray  # (n,) observed (noisy) best channel
    uplift_type: IntArray  # (n,) hidden, index into UPLIFT_TYPES
    affinity: FloatArray  # (n, n_channels) hidden open-rate multipliers
    offer_sensitivity: FloatArray  # (n,) hidden
    order_mean: FloatArray  # (n,) hidden mean order value
    organic_visit: FloatArray  # (n,) P(visit) without contact
    organic_conversion: FloatArray  # (n,) P(convert | organic visit)
    click_mult: FloatArray  # (n,) attribute * type click multiplier
    click_conversion: FloatArray  # (n,) P(convert | click) without offer
    offer_response: FloatArray  # (n,) sensitivity * type offer response
    contact_visit: FloatArray  # (n,)
    unsubscribe_mult: FloatArray  # (n,)
    content_match: FloatArray  # (n, n_contents)

    def __len__(self) -> int:
        return int(self.segment.shape[0])


def _categorical(rng: np.random.Generator, probs: NDArray[np.float64], n: int) -> IntArray:
    cdf = np.cumsum(probs)
    cdf[-1] = 1.0
    return np.searchsorted(cdf, rng.random(n), side="right").astype(np.int64)


def generate_population(scenario: Scenario, rng: np.random.Generator, n: int) -> Population:
    """Draw ``n`` customers from the scenario's population model."""
    pop = scenario.population
    seg_names = list(pop.segments)
    segs = [pop.segments[s] for s in seg_names]
    segment = _categorical(rng, np.array([s.share for s in segs]), n)

    # Recency, frequency, monetary: per segment distributions.
    recency = np.empty(n, np.int64)
    frequency = np.empty(n, np.int64)
    monetary = np.empty(n, np.float64)
    uplift = np.empty(n, np.int64)
    for s_idx, s in enumerate(segs):
        idx = np.flatnonzero(segment == s_idx)
        m = idx.size
        recency[idx] = 1 + _categorical(rng, np.array(s.recency), m)
        frequency[idx] = 1 + rng.poisson(s.frequency_mean, m)
        if s.monetary_quantiles is None:
            monetary[idx] = s.monetary_median * np.exp(s.monetary_sigma * rng.standard_normal(m))
        else:
            q = np.array(s.monetary_quantiles)
            monetary[idx] = np.interp(rng.random(m), np.linspace(0.0, 1.0, q.size), q)
        mix = np.array([s.uplift_mix.get(t, 0.0) for t in UPLIFT_TYPES])
        uplift[idx] = _categorical(rng, mix, m)

    # Observable categorical attributes and their effects.
    attributes: dict[str, IntArray] = {}
    visit_mult = np.ones(n)
    click_attr = np.ones(n)
    for name, values in pop.attributes.items():
        vals = list(values.values())
        codes = _categorical(rng, np.array([v.share for v in vals]), n)
        attributes[name] = codes
        visit_mult *= np.array([v.visit for v in vals])[codes]
        click_attr *= np.array([v.click for v in vals])[codes]

    # Product lines: true interest (hidden) and what purchase history shows (noisy).
    lines = pop.product_lines.lines
    combos = list(pop.product_lines.combos.items())
    combo = _categorical(rng, np.array([v.share for _, v in combos]), n)
    combo_lines = np.array([[ln in c.split("+") for ln in lines] for c, _ in combos], dtype=bool)
    lines_true = combo_lines[combo]
    visit_mult *= np.array([v.visit for _, v in combos])[combo]
    click_attr *= np.array([v.click for _, v in combos])[combo]
    flip = rng.random(lines_true.shape) < pop.product_lines.observation_noise
    lines_observed = lines_true ^ flip

    # Channels: reachability (observable), hidden affinity, noisy observed preference.
    ch_cfg = list(scenario.channels.values())
    n_ch = len(ch_cfg)
    reach = np.array([c.reach for c in ch_cfg])
    reachable = rng.random((n, n_ch)) < reach
    sig = np.array([c.affinity_sigma for c in ch_cfg])
    affinity = np.exp(sig * rng.standard_normal((n, n_ch)) - 0.5 * sig**2)
    best = np.argmax(np.where(reachable, affinity, -1.0), axis=1)
    noise = rng.integers(0, n_ch, n)
    accurate = rng.random(n) < pop.preferred_channel_accuracy
    preferred = np.where(accurate, best, noise).astype(np.int64)

    # Hidden individual traits.
    ps = pop.propensity_sigma
    propensity = np.exp(ps * rng.standard_normal(n) - 0.5 * ps**2)
    os_ = pop.offer_sensitivity_sigma
    sensitivity = np.exp(os_ * rng.standard_normal(n) - 0.5 * os_**2)
    mon_median = float(np.median(monetary)) if n else 1.0
    ov = scenario.order_value
    order_mean = ov.mean * (monetary / mon_median) ** ov.monetary_elasticity

    types = [scenario.uplift_types[t] for t in UPLIFT_TYPES]

    def per_type(field: str) -> FloatArray:
        return np.array([float(getattr(t, field)) for t in types])[uplift]

    recency_mult = np.exp(pop.recency_effect * (recency - 1))
    monetary_mult = (monetary / mon_median) ** pop.monetary_effect
    organic_visit = np.clip(
        per_type("organic_visit") * visit_mult * recency_mult * monetary_mult * propensity, 0, 1
    )

    contents = list(scenario.contents.values())
    match = np.empty((n, len(contents)))
    for k, c in enumerate(contents):
        bonus = np.array([c.line_match.get(ln, 0.0) for ln in lines])
        match[:, k] = c.appeal + lines_true.astype(np.float64) @ bonus

    return Population(
        segment=segment,
        recency=recency,
        frequency=frequency,
        monetary=monetary,
        attributes=attributes,
        lines_observed=lines_observed,
        lines_true=lines_true,
        reachable=reachable,
        preferred_channel=preferred,
        uplift_type=uplift,
        affinity=affinity,
        offer_sensitivity=sensitivity,
        order_mean=order_mean,
        organic_visit=organic_visit,
        organic_conversion=per_type("organic_conversion"),
        click_mult=click_attr * per_type("click"),
        click_conversion=per_type("click_conversion"),
        offer_response=sensitivity * per_type("offer_response"),
        contact_visit=per_type("contact_visit"),
        unsubscribe_mult=per_type("unsubscribe"),
        content_match=match,
    )


def _expected_capped(mean: FloatArray, sigma: float, rate: FloatArray, cap: FloatArray) -> FloatArray:
    """E[min(rate * X, cap)] for X log-normal with the given mean and log-sd ``sigma``."""
    out = np.zeros(np.broadcast(mean, rate, cap).shape)
    pos = (rate > 0) & (cap > 0)
    if not np.any(pos):
        return out
    mean, rate, cap = (np.broadcast_to(a, out.shape)[pos] for a in (mean, rate, cap))
    if sigma == 0:
        out[pos] = np.minimum(rate * mean, cap)
        return out
    # scipy is heavy to import and only this closed form needs it: loaded on first use, so that
    # importing the simulator (and the agent above it) does not load scipy.
    from scipy.special import ndtr

    mu = np.log(mean) - 0.5 * sigma**2
    log_k = np.log(cap / rate)
    below = mean * ndtr((log_k - mu - sigma**2) / sigma)  # E[X; X < k]
    above = 1.0 - ndtr((log_k - mu) / sigma)  # P(X >= k)
    out[pos] = rate * below + cap * above
    return out


class Simulator:
    """A population of simulated customers and their responses to campaign decisions.

    Implements :class:`simulators.types.CustomerSimulator`.

    Args:
        scenario: the validated scenario.
        n_customers: population size; default ``scenario.population.size``.

    Example:
        >>> import numpy as np
        >>> from simulators import Simulator, load_scenario
        >>> sim = Simulator(load_scenario("retail"), n_customers=1000)
        >>> sim.reset(seed=0)
        >>> customers = np.arange(5)
        >>> events = sim.send(customers, customers, np.ones(5, dtype=np.int64))
        >>> sim.expected(customers, np.zeros(5, dtype=np.int64)).cost.tolist()
        [0.0, 0.0, 0.0, 0.0, 0.0]
    """

    def __init__(self, scenario: Scenario, n_customers: int | None = None) -> None:
        self.scenario = scenario
        self._n = int(n_customers if n_customers is not None else scenario.population.size)
        if self._n < 1:
            raise ValueError(f"n_customers must be >= 1, got {self._n}")
        self._arms = build_arms(scenario)
        ch = list(scenario.channels.values())
        self._deliver = np.array([c.deliver_rate for c in ch])
        self._open = np.array([c.open_rate for c in ch])
        self._click = np.array([c.click_rate for c in ch])
        self._unsub = np.array([c.unsubscribe_rate for c in ch])
        self._lift = np.array([o.lift for o in scenario.offers.values()])
        self._content_conversion = np.array([k.conversion for k in scenario.contents.values()])
        self._delay_cdf = np.cumsum(scenario.dynamics.conversion_delay)
        self._delay_cdf[-1] = 1.0
        self._feature_names = self._build_feature_names()
        self._pop: Population | None = None
        self._iteration = 0

    # -- protocol properties -------------------------------------------------------------
    @property
    def arms(self) -> ArmTable:
        return self._arms

    @property
    def n_customers(self) -> int:
        return self._n

    @property
    def feature_names(self) -> tuple[str, ...]:
        return self._feature_names

    @property
    def iteration(self) -> int:
        return self._iteration

    @property
    def margin(self) -> float:
        return self.scenario.margin

    @property
    def max_delay(self) -> int:
        """Longest delay, in iterations, between a contact and a conversion it causes."""
        return len(self.scenario.dynamics.conversion_delay) - 1

    @property
    def population(self) -> Population:
        """The current population (hidden traits included: for tests and the oracle)."""
        if self._pop is None:
            raise RuntimeError("call reset(seed=...) before using the simulator")
        return self._pop

    # -- lifecycle --------------------------------------------------------------------------
    def reset(self, seed: int | None = None) -> None:
        """Draw the population and clear fatigue, opt-outs and pending conversions."""
        pop_seq, resp_seq = np.random.SeedSequence(seed).spawn(2)
        self._pop = generate_population(self.scenario, np.random.default_rng(pop_seq), self._n)
        self._rng = np.random.default_rng(resp_seq)
        self._organic_p = self._pop.organic_visit * self._pop.organic_conversion
        self._static_features()
        n, n_ch = self._n, len(self._arms.channel_names)
        self._iteration = 0
        self.fatigue = np.zeros(n)
        self.unsubscribed = np.zeros((n, n_ch), dtype=bool)
        self.contacts = np.zeros(n, dtype=np.int64)
        self.last_contact = np.full(n, -1, dtype=np.int64)
        self._contacted_now = np.zeros(n, dtype=bool)
        self._pending: list[list[EventBatch]] = [[] for _ in self.scenario.dynamics.conversion_delay]

    def state(self) -> dict[str, Any]:
        """What changes while a campaign runs (the population is a function of the reset seed):
        iteration, fatigue, opt-outs, contact history, conversions still to arrive (one batch per
        delay) and the response stream's random state. Plain numpy arrays and numbers."""
        pending = [EventBatch.concat(bucket) for bucket in self._pending]
        return {
            "iteration": self._iteration,
            "fatigue": self.fatigue,
            "unsubscribed": self.unsubscribed,
            "contacts": self.contacts,
            "last_contact": self.last_contact,
            "contacted_now": self._contacted_now,
            "pending": [vars(b) for b in pending],
            "rng": self._rng.bit_generator.state,
        }

    def restore(self, state: dict[str, Any]) -> None:
        """Bring a simulator reset with the same seed to :meth:`state` (the inverse)."""
        self._iteration = int(state["iteration"])
        for name in ("fatigue", "unsubscribed", "contacts", "last_contact"):
            setattr(self, name, np.array(state[name], dtype=getattr(self, name).dtype))
        self._contacted_now = np.array(state["contacted_now"], dtype=bool)
        self._pending = [[EventBatch(**b)] if len(b["decision_id"]) else [] for b in state["pending"]]
        self._rng.bit_generator.state = state["rng"]

    # -- observation ------------------------------------------------------------------------
    def _build_feature_names(self) -> tuple[str, ...]:
        sc = self.scenario
        names = [f"segment={s}" for s in sc.population.segments]
        names += ["recency", "frequency", "monetary"]
        for attr, values in sc.population.attributes.items():
            names += [f"{attr}={v}" for v in values]
        names += [f"bought_{ln}" for ln in sc.population.product_lines.lines]
        names += [f"reachable_{c}" for c in sc.channels]
        names += [f"preferred_{c}" for c in sc.channels]
        names += ["fatigue", "contacts", "since_last_contact"]
        return tuple(names)

    def features(self, customers: IntArray) -> NDArray[np.float32]:
        """``(n, n_features)`` observable features scaled to [0, 1]; see :attr:`feature_names`.

        Scales: recency / 24 months, log1p(frequency) / log1p(50), log1p(monetary) / log1p(10,000),
        fatigue / 5, contacts / 20, iterations since last contact / 10 (1 if never), all clipped.
        """
        p = self.population
        c = np.asarray(customers, dtype=np.int64)
        n_ch = len(self._arms.channel_names)
        head = self._static_head.shape[1]
        out = np.empty((c.shape[0], len(self._feature_names)), dtype=np.float32)
        out[:, :head] = self._static_head[c]
        out[:, head : head + n_ch] = p.reachable[c] & ~self.unsubscribed[c]
        out[:, head + n_ch : head + 2 * n_ch] = self._static_preferred[c]
        since = np.where(self.last_contact[c] < 0, 10, self._iteration - self.last_contact[c])
        out[:, -3] = np.minimum(self.fatigue[c] / 5.0, 1.0)
        out[:, -2] = np.minimum(self.contacts[c] / 20.0, 1.0)
        out[:, -1] = np.minimum(since / 10.0, 1.0)
        return out

    def _static_features(self) -> None:
        """Precompute the features that never change within an episode (float32)."""
        p = self.population
        n_seg = len(self.scenario.population.segments)
        cols: list[NDArray[np.float64]] = [np.eye(n_seg)[p.segment]]
        cols.append(np.minimum(p.recency / _MAX_RECENCY_NORM, 1.0)[:, None])
        cols.append(np.minimum(np.log1p(p.frequency) / np.log1p(50.0), 1.0)[:, None])
        cols.append(np.minimum(np.log1p(p.monetary) / np.log1p(10_000.0), 1.0)[:, None])
        for attr, values in self.scenario.population.attributes.items():
            cols.append(np.eye(len(values))[p.attributes[attr]])
        cols.append(p.lines_observed.astype(np.float64))
        self._static_head = np.concatenate(cols, axis=1).astype(np.float32)
        self._static_preferred = np.eye(len(self._arms.channel_names), dtype=np.float32)[p.preferred_channel]

    def arm_mask(self, customers: IntArray) -> BoolArray:
        """``(n, n_arms)``: arm allowed when its channel is reachable and not unsubscribed."""
        p = self.population
        c = np.asarray(customers, dtype=np.int64)
        ok = p.reachable[c] & ~self.unsubscribed[c]  # (n, n_channels)
        ch = self._arms.channel
        mask = np.ones((c.shape[0], ch.shape[0]), dtype=bool)
        mask[:, 1:] = ok[:, ch[1:]]
        return mask

    # -- ground truth -----------------------------------------------------------------------
    def _probabilities(
        self, c: IntArray, a: IntArray
    ) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray, FloatArray, FloatArray, FloatArray]:
        """Per-pair (p_deliver, p_open|d, p_click|o, v0, v1, cc, p_unsub|d) for broadcast c, a."""
        p = self.population
        arms = self._arms
        ch = arms.channel[a]
        contact = ch >= 0
        chi = np.where(contact, ch, 0)
        ki = np.where(contact, arms.content[a], 0)
        oi = np.where(contact, arms.offer[a], 0)
        ok = p.reachable[c, chi] & ~self.unsubscribed[c, chi] & contact
        pd = np.where(ok, self._deliver[chi], 0.0)
        fat = self.fatigue[c]
        po = np.clip(
            self._open[chi] * p.affinity[c, chi] * np.exp(-self.scenario.dynamics.fatigue_open_penalty * fat),
            0.0,
            1.0,
        )
        pc = np.clip(self._click[chi] * p.click_mult[c] * p.content_match[c, ki], 0.0, 1.0)
        v0 = p.organic_visit[c]
        v1 = np.minimum(v0 * p.contact_visit[c], 1.0)
        cc = np.clip(
            p.click_conversion[c]
            * self._content_conversion[ki]
            * (1.0 + p.offer_response[c] * self._lift[oi]),
            0.0,
            1.0,
        )
        pu = np.clip(
            self._unsub[chi]
            * p.unsubscribe_mult[c]
            * (1.0 + self.scenario.dynamics.fatigue_unsubscribe * fat),
            0.0,
            1.0,
        )
        return pd, po, pc, v0, v1, cc, pu

    def expected(self, customers: IntArray, arms: IntArray) -> GroundTruth:
        """True expectations for every (customer, arm) pair; arrays broadcast together.

        Args:
            customers: customer indices, e.g. ``(n,)`` or ``(n, 1)``.
            arms: arm indices, e.g. ``(n,)`` or ``(1, n_arms)``.

        Returns:
            :class:`GroundTruth` whose arrays have the broadcast shape of the inputs. The state
            (fatigue, opt-outs) is that of the current iteration.
        """
        c, a = np.broadcast_arrays(np.asarray(customers, np.int64), np.asarray(arms, np.int64))
        p = self.population
        pd, po, pc, v0, v1, cc, pu = self._probabilities(c, a)
        c0 = p.organic_conversion[c]
        g0 = v0 * c0
        g1 = v1 * c0
        conv_click = 1.0 - (1.0 - cc) * (1.0 - g1)
        click = po * pc
        p_convert = (1.0 - pd) * g0 + pd * ((1.0 - click) * g1 + click * conv_click)
        p_visit = (1.0 - pd) * v0 + pd * ((1.0 - click) * v1 + click)
        discount = self._arms.discount[a]
        cap = self._arms.max_offer_cost[a]
        p_redeem = np.where(discount > 0, pd * po * ((1.0 - pc) * g1 + pc * conv_click), 0.0)
        order = p.order_mean[c]
        offer_cost = p_redeem * _expected_capped(order, self.scenario.order_value.sigma, discount, cap)
        send_cost = self._arms.send_cost[a]
        return GroundTruth(
            p_deliver=pd,
            p_open=pd * po,
            p_click=pd * click,
            p_visit=p_visit,
            p_convert=p_convert,
            p_convert_baseline=g0,
            p_redeem=p_redeem,
            p_unsubscribe=pd * pu,
            revenue=p_convert * order,
            offer_cost=offer_cost,
            send_cost=send_cost,
            cost=send_cost + offer_cost,
            worst_case_cost=send_cost + cap,
        )

    # -- dynamics ---------------------------------------------------------------------------
    def send(self, decision_ids: IntArray, customers: IntArray, arms: IntArray) -> EventBatch:
        """Send one iteration's decisions and sample the responses.

        Args:
            decision_ids: ``(n,)`` ids echoed on every event of the decision.
            customers: ``(n,)`` distinct customer indices.
            arms: ``(n,)`` arm per customer; arm 0 (no contact) sends nothing.

        Returns:
            The events that happen in this iteration (delivered, opened, clicked, unsubscribed
            and undelayed conversions). Delayed conversions come from later :meth:`advance` calls.
        """
        ids = np.asarray(decision_ids, np.int64)
        c = np.asarray(customers, np.int64)
        a = np.asarray(arms, np.int64)
        if not (ids.shape == c.shape == a.shape) or c.ndim != 1:
            raise ValueError("decision_ids, customers and arms must be 1-D arrays of one length")
        if a.size and (a.min() < 0 or a.max() >= len(self._arms)):
            raise ValueError(f"arms must be in 0..{len(self._arms) - 1}")
        sent = a != NO_CONTACT
        ids, c, a = ids[sent], c[sent], a[sent]
        n = c.shape[0]
        if n == 0:
            return EventBatch.empty()
        if np.bincount(c, minlength=self._n).max(initial=0) > 1:
            raise ValueError("a customer may receive at most one contact per iteration")
        p = self.population
        if np.any(self._contacted_now[c]):
            raise ValueError(
                "a customer may receive at most one contact per iteration: already contacted in "
                "this one by an earlier send (call advance() first)"
            )
        rng = self._rng
        pd, po, pc, v0, v1, cc, pu = self._probabilities(c, a)
        u = rng.random((7, n))
        delivered = u[0] < pd
        opened = delivered & (u[1] < po)
        clicked = opened & (u[2] < pc)
        organic_visit = u[3] < np.where(delivered, v1, v0)
        converted = (clicked & (u[4] < cc)) | (organic_visit & (u[5] < p.organic_conversion[c]))
        unsub = delivered & (u[6] < pu)

        sigma = self.scenario.order_value.sigma
        order = p.order_mean[c] * np.exp(sigma * rng.standard_normal(n) - 0.5 * sigma**2)
        redeemed = converted & opened & (self._arms.discount[a] > 0)
        offer_cost = np.where(
            redeemed, np.minimum(self._arms.discount[a] * order, self._arms.max_offer_cost[a]), 0.0
        )
        delay = np.searchsorted(self._delay_cdf, rng.random(n), side="right")

        # State: fatigue grows with every delivered contact; opt-outs are for good.
        self.fatigue[c] += delivered
        ch = self._arms.channel[a]
        self.unsubscribed[c[unsub], ch[unsub]] = True
        self.contacts[c] += 1
        self.last_contact[c] = self._iteration
        self._contacted_now[c] = True

        t = self._iteration
        batches = [
            self._events(ids[m], c[m], kind, t)
            for m, kind in (
                (delivered, EventKind.DELIVERED),
                (opened, EventKind.OPENED),
                (clicked, EventKind.CLICKED),
                (unsub, EventKind.UNSUBSCRIBED),
            )
        ]
        for d in range(len(self._pending)):
            m = converted & (delay == d)
            conv = self._events(ids[m], c[m], EventKind.CONVERTED, t + d, order[m], offer_cost[m])
            if d == 0:
                batches.append(conv)
            elif len(conv):
                self._pending[d].append(conv)
        return EventBatch.concat(batches)

    @staticmethod
    def _events(
        ids: IntArray,
        c: IntArray,
        kind: EventKind,
        t: int,
        revenue: FloatArray | None = None,
        offer_cost: FloatArray | None = None,
    ) -> EventBatch:
        n = ids.shape[0]
        return EventBatch(
            decision_id=ids,
            customer=c,
            kind=np.full(n, int(kind), np.int8),
            iteration=np.full(n, t, np.int64),
            revenue=revenue if revenue is not None else np.zeros(n),
            offer_cost=offer_cost if offer_cost is not None else np.zeros(n),
        )

    def advance(self) -> EventBatch:
        """Close the current iteration and open the next.

        Returns:
            Organic conversions of the customers not contacted in the closing iteration
            (``decision_id == -1``), then the delayed conversions due in the new iteration.
        """
        p = self.population
        draw = self._rng.random(self._n)
        buy = np.flatnonzero((draw < self._organic_p) & ~self._contacted_now)
        sigma = self.scenario.order_value.sigma
        order = p.order_mean[buy] * np.exp(sigma * self._rng.standard_normal(buy.shape[0]) - 0.5 * sigma**2)
        organic = self._events(
            np.full(buy.shape[0], -1, np.int64), buy, EventKind.CONVERTED, self._iteration, order
        )
        self._contacted_now[:] = False
        self.fatigue *= self.scenario.dynamics.fatigue_decay
        self._iteration += 1
        due = self._pending[1] if len(self._pending) > 1 else []
        self._pending = [[], *self._pending[2:], []] if len(self._pending) > 1 else [[]]
        return EventBatch.concat([organic, *due])

    @property
    def pending_conversions(self) -> int:
        """Conversions already decided by the simulator but not yet observed (hidden)."""
        return sum(len(b) for bucket in self._pending for b in bucket)
