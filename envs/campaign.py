"""``CampaignOpt/Campaign-v0``: a whole campaign as an MDP, one step per campaign iteration.

Each step is one wave: the agent chooses an audience segment, a channel, a content, an offer and
a volume; the environment reserves budget, sends the wave to eligible customers of the segment
drawn uniformly at random without replacement, lets the iteration close
(``simulator.advance()``) and reports what came back.

Action ``MultiDiscrete([n_segments + 1, n_channels, n_contents, n_offers, n_volume_levels])``:
    0. audience segment: the scenario's observable lifecycle segments in scenario order
       (``env.unwrapped.segment_names``), then ``"all"`` (the whole population). Segments come
       from the simulator's ``segment=<name>`` features; a simulator without them has only
       ``"all"``.
    1. channel, 2. content, 3. offer: indices into ``arms.channel_names``, ``content_names``,
       ``offer_names``. A combination that is not an arm of the scenario is *mapped* to the
       nearest arm: same channel, content and offer scored 4, 2 and 1 (highest score wins, ties
       to the lower arm index); ``info["arm"]`` / ``info["arm_name"]`` name the arm sent and
       ``info["mapped"]`` is ``True``. The table is ``env.unwrapped.arm_lookup``.
    4. volume: ``volume_levels[i]`` (default ``(0, 0.25, 0.5, 0.75, 1)``), the share of the
       segment's *eligible* customers to contact, rounded up and capped at
       ``customers_per_iteration``; level 0 sends nothing this iteration.

    Eligible = in the segment, allowed the arm by ``simulator.arm_mask`` (reachable on the
    channel, not unsubscribed) and not contacted in the last ``min_contact_gap - 1`` iterations
    (default gap 1: any customer, once per iteration). A wave with no eligible customer sends
    nothing. If the wave's worst-case cost does not fit the remaining budget it is scaled down
    to the customers that fit (``info["budget_limited"]``); nothing is sent when none fits.
    :meth:`CampaignEnv.action_masks` returns per-component masks (flat, the layout of
    ``sb3_contrib.MaskablePPO`` for ``MultiDiscrete``): a value is allowed when at least one
    arm with it has an eligible customer and fits the remaining budget; volume 0 is always
    allowed; when no wave is possible at all only volume 0 is allowed (the other components
    are all allowed: their value does not matter; without a 0 level every volume is allowed).
    Before sending, a simulator other than the built-in one is asked again for the drawn
    customers' ``arm_mask`` (``verify_masks``); customers it refuses are dropped
    (``info["mask_dropped"]``).

Observation ``Box(0, 1, (7 + n_segments * (5 + n_channels) + 4 * (n_arms - 1),), float32)``,
names in ``env.unwrapped.observation_names``:
    * global (7): ``budget_remaining`` = (budget - spent - reserved) / budget, ``budget_spent``
      = spent / budget, ``budget_reserved`` = reserved / budget, ``goal_progress`` = min(achieved
      / target, 1), ``iteration`` = iterations done / max_iterations, ``pending`` = decisions
      sent whose attribution window is still open and that have not converted / (
      customers_per_iteration * max(window, 1)), ``last_wave`` = customers in the last wave /
      customers_per_iteration;
    * per lifecycle segment (5 + n_channels each): ``size`` = segment / population,
      ``sends`` = log1p(sends) / log1p(max_iterations * customers_per_iteration),
      ``contacted`` = share of the segment contacted at least once, ``conversion_rate`` =
      attributed conversions / sends, ``fatigue`` = min(mean fatigue / 5, 1) where fatigue is
      delivered contacts per customer decayed by the scenario's ``dynamics.fatigue_decay``
      each iteration (the simulator's fatigue, averaged; ``fatigue_decay=`` overrides, 0.6 for a
      simulator without a scenario), then ``reachable_<channel>`` =
      share of the segment that may still be sent that channel;
    * per contact arm (4 each, arm 0 excluded): ``sends`` (log scale as above),
      ``conversion_rate``, ``click_rate``, ``unsubscribe_rate`` (each per send).
    Statistics count only what the environment observed from its own decisions' events.

Reward, in units of the budget (``reward_scale``, default ``1 / budget``):
    * ``reward="goal"`` (default): (goal-metric gained in the step) * ``value_per_unit`` - money
      spent in the step, where ``value_per_unit`` defaults to ``budget / target`` (reaching the
      target with exactly the whole budget nets 0);
    * ``reward="net_value"``: revenue gained * margin - money spent;
    plus ``goal_bonus`` (default 1.0, already in scaled units) in the step the goal is reached.
    Gains are conversions (or revenue) *attributed to the campaign's decisions* (once per
    decision, inside its attribution window); organic purchases of customers not contacted do
    not count. Spend is send costs plus redeemed offers, as the ledger books them.

Episode:
    ``terminated`` when the goal is reached or when the remaining budget (budget - spent -
    reserved) cannot pay the worst-case cost of one more contact with the cheapest arm that
    still has an eligible customer (or no customer can be contacted at all); ``truncated``
    after ``max_iterations`` steps. When an episode ends without reaching the goal the
    environment drains like the campaign loop: it advances the simulator through the
    attribution window and the last waves' delayed conversions count in the final reward
    (and can still reach the goal). The attribution window is the simulator's ``max_delay``
    (the longest conversion delay; 0 if it has none) unless ``attribution_window=`` is given.
    After the episode ends, ``step`` raises until ``reset``.

Info (every step): the wave (``segment``, ``arm``, ``arm_name``, ``mapped``, ``volume``,
    ``eligible``, ``requested``, ``sent``, ``budget_limited``, ``mask_dropped``), the money
    (``spent``, ``reserved``, ``remaining``, ``spent_step``), the goal (``conversions``,
    ``revenue``, ``progress`` = achieved / target, ``goal_reached``), ``iteration``,
    ``stop_reason`` (``""`` while running; ``goal_reached``, ``budget_exhausted``,
    ``no_eligible_customers`` or ``max_iterations``) and ``action_mask``.

Budget: the project's ledger rules (worst-case reservation before sending, send cost charged at
    once, offers charged on redemption, reservations released when the attribution window
    closes, integer micro-dollars); ``spent`` never exceeds the budget.

Defaults: goal metric, target, budget, ``max_iterations`` and ``customers_per_iteration`` come
    from ``scenario.default_goal``; with ``n_customers`` smaller than the scenario's population
    the target, budget and customers per iteration are scaled by the same ratio. Each is
    overridable by keyword.

Example:
    >>> import envs, gymnasium as gym
    >>> env = gym.make("CampaignOpt/Campaign-v0", scenario="retail", n_customers=3000)
    >>> obs, info = env.reset(seed=0)
    >>> obs, reward, terminated, truncated, info = env.step(env.action_space.sample())
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal, SupportsFloat

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from numpy.typing import NDArray

from envs._common import (
    BoolArray,
    FloatArray,
    IntArray,
    make_simulator,
    resolve_goal,
)
from envs._common import attribution_window as resolve_window
from envs._common import fatigue_decay as resolve_fatigue_decay
from envs.observation import CampaignStats, build_observation, max_sends_log, observation_names
from simulators import CustomerSimulator, EventBatch, EventKind, Scenario, Simulator
from simulators.money import CampaignLedger, dollars

ObsType = NDArray[np.float32]
ActType = NDArray[np.int64]

_DELIVERED = int(EventKind.DELIVERED)
_CLICKED = int(EventKind.CLICKED)
_CONVERTED = int(EventKind.CONVERTED)
_UNSUBSCRIBED = int(EventKind.UNSUBSCRIBED)

ALL_SEGMENT = "all"
"""Name of the audience choice that targets the whole population."""

_SEGMENT_PREFIX = "segment="
_CHUNK = 65_536


class CampaignEnv(gym.Env[ObsType, ActType]):
    """A campaign as an MDP over a customer simulator; see the module docstring for the layout.

    Args:
        scenario: built-in scenario name, YAML path or :class:`simulators.Scenario`
            (default ``"retail"`` when ``simulator`` is not given either).
        simulator: any object following :class:`simulators.CustomerSimulator`.
        n_customers: population size of a simulator built from ``scenario``.
        budget: cost threshold in dollars.
        goal_metric: ``"conversions"`` or ``"revenue"``.
        goal_target: the goal value.
        max_iterations: iteration limit (steps per episode).
        customers_per_iteration: the most customers one wave may contact.
        volume_levels: shares of the eligible customers selectable as volume, each in [0, 1].
        reward: ``"goal"`` or ``"net_value"``.
        value_per_unit: dollars per unit of goal metric for ``reward="goal"``
            (default ``budget / target``).
        goal_bonus: reward added when the goal is reached (scaled units).
        reward_scale: reward multiplier (default ``1 / budget``).
        min_contact_gap: iterations between two contacts of one customer (>= 1).
        attribution_window: iterations a conversion may lag its send (default: the simulator's
            ``max_delay``, else 0).
        fatigue_decay: decay of the fatigue statistic per iteration (default: the scenario's).
        verify_masks: re-check ``simulator.arm_mask`` for the drawn customers before sending
            (default: ``True`` unless the simulator is the built-in :class:`simulators.Simulator`,
            whose masks change only through unsubscribe events, which the environment tracks).
        render_mode: only ``None``.

    Raises:
        ValueError: invalid arguments (the message says what is allowed).
    """

    metadata: dict[str, Any] = {"render_modes": []}  # noqa: RUF012

    def __init__(
        self,
        scenario: str | Path | Scenario | None = None,
        *,
        simulator: CustomerSimulator | None = None,
        n_customers: int | None = None,
        budget: float | None = None,
        goal_metric: Literal["conversions", "revenue"] | None = None,
        goal_target: float | None = None,
        max_iterations: int | None = None,
        customers_per_iteration: int | None = None,
        volume_levels: Sequence[float] = (0.0, 0.25, 0.5, 0.75, 1.0),
        reward: Literal["goal", "net_value"] = "goal",
        value_per_unit: float | None = None,
        goal_bonus: float = 1.0,
        reward_scale: float | None = None,
        min_contact_gap: int = 1,
        attribution_window: int | None = None,
        fatigue_decay: float | None = None,
        verify_masks: bool | None = None,
        render_mode: str | None = None,
    ) -> None:
        if render_mode is not None:
            raise ValueError(f"render_mode must be None (nothing to render), got {render_mode!r}")
        self.simulator = make_simulator(scenario, simulator, n_customers)
        sim = self.simulator
        self.goal = resolve_goal(
            sim,
            metric=goal_metric,
            target=goal_target,
            budget=budget,
            max_iterations=max_iterations,
            customers_per_iteration=customers_per_iteration,
        )
        levels = np.asarray(list(volume_levels), dtype=np.float64)
        if levels.ndim != 1 or levels.size < 1 or np.any((levels < 0) | (levels > 1)):
            raise ValueError(f"volume_levels must be shares in [0, 1], got {list(volume_levels)}")
        if reward not in ("goal", "net_value"):
            raise ValueError(f"reward must be 'goal' or 'net_value', got {reward!r}")
        if min_contact_gap < 1:
            raise ValueError(f"min_contact_gap must be >= 1, got {min_contact_gap}")
        self.volume_levels: tuple[float, ...] = tuple(float(v) for v in levels)
        self.reward_kind: str = reward
        self.value_per_unit = (
            float(value_per_unit) if value_per_unit is not None else self.goal.budget / self.goal.target
        )
        self.goal_bonus = float(goal_bonus)
        self.reward_scale = float(reward_scale) if reward_scale is not None else 1.0 / self.goal.budget
        self.min_contact_gap = int(min_contact_gap)
        self.window = resolve_window(sim, attribution_window)
        self.fatigue_decay = resolve_fatigue_decay(sim, fatigue_decay)
        self.verify_masks = (type(sim) is not Simulator) if verify_masks is None else verify_masks
        self._margin = float(sim.margin)

        arms = sim.arms
        self.arm_names: tuple[str, ...] = arms.names
        self.channel_names: tuple[str, ...] = arms.channel_names
        self.content_names: tuple[str, ...] = arms.content_names
        self.offer_names: tuple[str, ...] = arms.offer_names
        self.n_arms = len(arms)
        self._arm_channel = np.asarray(arms.channel, dtype=np.int64)
        self._send_cost = np.asarray(arms.send_cost, dtype=np.float64)
        self._max_offer = np.asarray(arms.max_offer_cost, dtype=np.float64)
        self._worst = self._send_cost + self._max_offer
        self.arm_lookup, self._exact = _arm_lookup(
            np.asarray(arms.channel), np.asarray(arms.content), np.asarray(arms.offer),
            (len(arms.channel_names), len(arms.content_names), len(arms.offer_names)),
        )  # fmt: skip
        n_ch = len(self.channel_names)
        # (n_channels, n_arms): which arms use each channel.
        self._channel_arms = self._arm_channel[None, :] == np.arange(n_ch)[:, None]

        feature_names = tuple(sim.feature_names)
        self._segment_cols = np.array(
            [i for i, f in enumerate(feature_names) if f.startswith(_SEGMENT_PREFIX)],
            dtype=np.int64,
        )
        self.segment_names: tuple[str, ...] = (
            *(feature_names[i].removeprefix(_SEGMENT_PREFIX) for i in self._segment_cols),
            ALL_SEGMENT,
        )
        S = len(self.segment_names) - 1
        self.n_segments = S

        self._nvec = np.array(
            [S + 1, n_ch, len(self.content_names), len(self.offer_names), levels.size],
            dtype=np.int64,
        )
        self.action_space = spaces.MultiDiscrete(self._nvec)
        self.observation_names: tuple[str, ...] = _observation_names(
            self.segment_names[:S], self.channel_names, self.arm_names[1:]
        )
        self.observation_space = spaces.Box(0.0, 1.0, shape=(len(self.observation_names),), dtype=np.float32)
        self._max_sends_log = max_sends_log(self.goal.max_iterations, self.goal.customers_per_iteration)
        self._ready = False

    # -- gymnasium API ------------------------------------------------------------------------
    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[ObsType, dict[str, Any]]:
        """Draw a fresh population and open a new campaign.

        Args:
            seed: seeds the environment; the same seed gives the same episode, bit for bit.
            options: unused.

        Returns:
            The observation and ``info`` (``action_mask`` and the budget figures).
        """
        super().reset(seed=seed)
        sim = self.simulator
        sim.reset(seed=int(self.np_random.integers(0, 2**63 - 1)))
        n, S, A = sim.n_customers, self.n_segments, self.n_arms
        codes = self._segment_codes()
        self._seg = codes
        self._order = np.argsort(codes, kind="stable").astype(np.int64)
        self._rank = np.empty(n, dtype=np.int64)
        self._rank[self._order] = np.arange(n, dtype=np.int64)
        self._bounds = np.searchsorted(codes[self._order], np.arange(S + 1)).astype(np.int64)
        self._bounds[-1] = n
        self._seg_size = np.diff(self._bounds).astype(np.float64)
        # (n_arms, n) eligibility by arm, columns in segment order: a segment is a slice.
        elig = np.empty((A, n), dtype=bool)
        for lo in range(0, n, _CHUNK):
            hi = min(lo + _CHUNK, n)
            part = self._order[lo:hi]
            elig[:, lo:hi] = np.asarray(sim.arm_mask(part), dtype=bool).T
        elig[0] = False  # no contact is never a wave
        self._elig = elig
        self._elig_count = np.zeros((S, A), dtype=np.int64)
        for s in range(S):
            seg_cols = elig[:, self._bounds[s] : self._bounds[s + 1]]
            self._elig_count[s] = np.count_nonzero(seg_cols, axis=1)
        self._available_from = np.zeros(n, dtype=np.int64)  # in segment order
        self._ever = np.zeros(n, dtype=bool)

        self._ledger = CampaignLedger(self.goal.budget, self.window)
        self._wave_arm = np.zeros(self.goal.max_iterations, dtype=np.int64)  # per iteration

        self._t = 0
        self._clock = 0
        self._conversions = 0
        self._revenue = 0.0
        self._goal_reached = False
        self._last_wave = 0
        self._seg_sends = np.zeros(S)
        self._seg_conv = np.zeros(S)
        self._seg_contacted = np.zeros(S)
        self._seg_fatigue = np.zeros(S)
        self._arm_sends = np.zeros(A)
        self._arm_conv = np.zeros(A)
        self._arm_click = np.zeros(A)
        self._arm_unsub = np.zeros(A)
        self._ready = True
        return self._observe(), self._info_base()

    def step(self, action: ActType) -> tuple[ObsType, SupportsFloat, bool, bool, dict[str, Any]]:
        """Run one campaign iteration.

        Args:
            action: ``(5,)`` segment, channel, content, offer and volume indices.

        Returns:
            ``(obs, reward, terminated, truncated, info)``; ``info`` holds the wave (``segment``,
            ``arm``, ``arm_name``, ``mapped``, ``volume``, ``eligible``, ``requested``, ``sent``,
            ``budget_limited``, ``mask_dropped``), the money (``spent``, ``reserved``,
            ``remaining``, ``spent_step``), the goal (``conversions``, ``revenue``,
            ``progress``, ``goal_reached``), ``stop_reason`` and ``action_mask``.

        Raises:
            RuntimeError: ``step`` before ``reset``, or after the episode ended.
            ValueError: an action of the wrong shape or out of range.
        """
        if not self._ready:
            raise RuntimeError("call reset() before step() (and after an episode ends)")
        a = np.asarray(action, dtype=np.int64).reshape(-1)
        nvec = self._nvec
        if a.shape != nvec.shape or np.any(a < 0) or np.any(a >= nvec):
            raise ValueError(f"action must be 5 indices below {nvec.tolist()}, got {action!r}")
        seg_i, ch_i, co_i, of_i, vol_i = (int(x) for x in a)
        arm = int(self.arm_lookup[ch_i, co_i, of_i])
        mapped = not bool(self._exact[ch_i, co_i, of_i])
        level = self.volume_levels[vol_i]
        t, cpi = self._t, self.goal.customers_per_iteration
        spent0, progress0, revenue0 = self._ledger.spent_micros, self._progress(), self._revenue

        lo, hi = self._segment_slice(seg_i)
        row = self._elig[arm, lo:hi]
        if self.min_contact_gap > 1:
            row = row & (self._available_from[lo:hi] <= t)
        cand = np.flatnonzero(row)
        eligible = int(cand.shape[0])
        requested = min(math.ceil(level * eligible - 1e-9), cpi) if level > 0 else 0
        k = int(np.count_nonzero(self._ledger.affordable(np.full(requested, self._worst[arm]))))
        dropped = 0
        self._wave_arm[t] = arm
        batches: list[EventBatch] = []
        if k > 0:
            if k < eligible:
                cand = cand[self.np_random.choice(eligible, k, replace=False)]
            pos = cand + lo
            customers = self._order[pos]
            if self.verify_masks:
                ok = np.asarray(self.simulator.arm_mask(customers), dtype=bool)[:, arm]
                if not np.all(ok):
                    self._drop_eligibility(pos[~ok], np.array([arm]))
                    dropped = int(np.count_nonzero(~ok))
                    pos, customers = pos[ok], customers[ok]
            k = int(customers.shape[0])
            ids = self._ledger.send(t, np.full(k, self._worst[arm]), np.full(k, self._send_cost[arm]))
            batches.append(self.simulator.send(ids, customers, np.full(k, arm, dtype=np.int64)))
            self._available_from[pos] = t + self.min_contact_gap
            new = customers[~self._ever[customers]]
            self._ever[new] = True
            if self.n_segments:
                seg = self._seg[customers]
                self._seg_sends += np.bincount(seg, minlength=self.n_segments)
                self._seg_contacted += np.bincount(self._seg[new], minlength=self.n_segments)
            self._arm_sends[arm] += k
        self._last_wave = k
        batches.append(self.simulator.advance())
        self._t = t + 1
        self._clock += 1
        delivered = self._ingest(EventBatch.concat(batches))
        self._seg_fatigue = (self._seg_fatigue + delivered) * self.fatigue_decay
        self._close_windows()

        terminated, truncated, reason = self._stop_rule()
        if reason not in (None, "goal_reached"):
            # Drain like the campaign loop: the last waves' delayed conversions still count.
            for _ in range(self.window):
                batch = self.simulator.advance()
                self._clock += 1
                self._ingest(batch)
                self._close_windows()
        gained = self._progress() - progress0
        spent = dollars(self._ledger.spent_micros - spent0)
        if self.reward_kind == "goal":
            value = gained * self.value_per_unit
        else:
            value = (self._revenue - revenue0) * self._margin
        reward = (value - spent) * self.reward_scale
        if not self._goal_reached and self._progress() >= self.goal.target:
            self._goal_reached = True
            reward += self.goal_bonus
            if reason != "goal_reached":
                reason = f"{reason}, goal_reached" if reason else "goal_reached"
        if terminated or truncated:
            self._ready = False
        info = self._info_base()
        info.update(
            segment=self.segment_names[seg_i],
            arm=arm,
            arm_name=self.arm_names[arm],
            mapped=mapped,
            volume=level,
            eligible=eligible,
            requested=requested,
            sent=k,
            budget_limited=k + dropped < requested,
            mask_dropped=dropped,
            spent_step=spent,
            stop_reason=reason or "",
        )
        return self._observe(), float(reward), terminated, truncated, info

    def action_masks(self) -> BoolArray:
        """Per-component action masks, concatenated: ``(sum(action_space.nvec),)`` booleans.

        Segment, channel, content and offer values are allowed when some arm with that value has
        an eligible customer (in the segment) and fits the remaining budget; volume 0 is always
        allowed, the other volumes when any wave is possible.
        """
        nvec = self._nvec
        if not self._ready:
            return np.ones(int(nvec.sum()), dtype=bool)
        fits = self._ledger.fits(self._worst)
        fits[0] = False
        counts = np.vstack([self._elig_count, self._elig_total()[None, :]])  # (S + 1, A)
        valid = (counts > 0) & fits[None, :]
        arm_ok = valid.any(axis=0)
        seg = valid.any(axis=1)
        ch = self._channel_arms[:, arm_ok].any(axis=1)
        arms = self.simulator.arms
        co = np.zeros(nvec[2], dtype=bool)
        of = np.zeros(nvec[3], dtype=bool)
        co[np.asarray(arms.content)[arm_ok]] = True
        of[np.asarray(arms.offer)[arm_ok]] = True
        any_wave = bool(arm_ok.any())
        vol = np.full(nvec[4], any_wave, dtype=bool)
        vol[np.asarray(self.volume_levels) == 0.0] = True
        parts = [seg, ch, co, of]
        parts = [p if p.any() and any_wave else np.ones_like(p) for p in parts]
        if not vol.any():
            vol[:] = True
        return np.concatenate([*parts, vol])

    # -- internals ----------------------------------------------------------------------------
    def _segment_codes(self) -> IntArray:
        """``(n,)`` lifecycle segment per customer, from the ``segment=`` features."""
        sim = self.simulator
        n = sim.n_customers
        if self._segment_cols.size == 0:
            return np.zeros(n, dtype=np.int64)
        pop = getattr(sim, "population", None)
        seg = getattr(pop, "segment", None)
        if isinstance(sim, Simulator) and isinstance(seg, np.ndarray) and seg.shape == (n,):
            return seg.astype(np.int64)  # the same codes as the one-hot features, without them
        out = np.empty(n, dtype=np.int64)
        for lo in range(0, n, _CHUNK):
            c = np.arange(lo, min(lo + _CHUNK, n), dtype=np.int64)
            out[lo : lo + c.shape[0]] = np.argmax(np.asarray(sim.features(c))[:, self._segment_cols], axis=1)
        return out

    def _segment_slice(self, seg_i: int) -> tuple[int, int]:
        if seg_i >= self.n_segments:
            return 0, self.simulator.n_customers
        return int(self._bounds[seg_i]), int(self._bounds[seg_i + 1])

    def _elig_total(self) -> IntArray:
        """``(n_arms,)`` customers eligible for each arm in the whole population."""
        total: IntArray = (
            self._elig_count.sum(axis=0)
            if self.n_segments
            else np.count_nonzero(self._elig, axis=1).astype(np.int64)
        )
        return total

    def _progress(self) -> float:
        return float(self._conversions if self.goal.metric == "conversions" else self._revenue)

    def _drop_eligibility(self, pos: IntArray, arms: IntArray) -> None:
        """Mark customers (segment-order positions) ineligible for ``arms``; keeps counts."""
        pos = np.unique(pos)
        grid = np.ix_(arms, pos)
        was = self._elig[grid]  # (len(arms), len(pos))
        if self.n_segments and was.any():
            seg = self._seg[self._order[pos]]
            onehot = seg[:, None] == np.arange(self.n_segments)[None, :]  # (len(pos), S)
            self._elig_count[:, arms] -= onehot.T.astype(np.int64) @ was.T.astype(np.int64)
        self._elig[grid] = False

    def _ingest(self, events: EventBatch) -> FloatArray:
        """Book the environment's decision events: ledger, statistics, eligibility.

        Returns:
            ``(n_segments,)`` delivered contacts per segment in these events.

        Raises:
            RuntimeError: an offer redeemed outside its attribution window.
        """
        S = self.n_segments
        delivered = np.zeros(S)
        if len(events) == 0:
            return delivered
        kind = events.kind
        own = events.decision_id >= 0
        if S:
            # Deliveries happen when sent, so they belong to the live wave of this iteration.
            cust = events.customer[own & (kind == _DELIVERED)]
            if cust.size:
                delivered = np.bincount(self._seg[cust], minlength=S).astype(np.float64)
        # Only clicks, conversions and unsubscribes need their decision (few events).
        rare = own & (kind >= _CLICKED)
        if not rare.any():
            return delivered
        ev = events.select(rare)
        led = self._ledger
        # As the campaign loop: attributable until the window is closed at the end of an iteration.
        live = led.in_window(ev.decision_id)
        arm = self._wave_arm[led.sent_at(ev.decision_id)]
        kind = ev.kind
        A = self.n_arms
        m = (kind == _CLICKED) & live
        if m.any():
            self._arm_click += np.bincount(arm[m], minlength=A)
        m = (kind == _UNSUBSCRIBED) & live
        if m.any():
            self._arm_unsub += np.bincount(arm[m], minlength=A)
            for ch in np.unique(self._arm_channel[arm[m]]).tolist():
                mc = m & (self._arm_channel[arm] == ch)
                self._drop_eligibility(self._rank[ev.customer[mc]], np.flatnonzero(self._channel_arms[ch]))
        conv = np.flatnonzero(kind == _CONVERTED)
        if conv.size:
            if (~live[conv] & (ev.offer_cost[conv] > 0)).any():
                raise RuntimeError(
                    "an offer was redeemed outside its decision's attribution window: the window is "
                    "shorter than the simulator's conversion delays (set attribution_window=)"
                )
            idx = conv[led.convert(ev.decision_id[conv], ev.offer_cost[conv]).counted]
            if idx.size:
                self._conversions += int(idx.size)
                self._revenue += float(ev.revenue[idx].sum())
                self._arm_conv += np.bincount(arm[idx], minlength=A)
                if S:
                    self._seg_conv += np.bincount(self._seg[ev.customer[idx]], minlength=S)
        return delivered

    def _close_windows(self) -> None:
        """Release reservations and pending counts of waves whose window has closed."""
        self._ledger.close(self._clock)

    def _stop_rule(self) -> tuple[bool, bool, str | None]:
        if self._progress() >= self.goal.target:
            return True, False, "goal_reached"
        total = self._elig_total()
        useful = total > 0
        useful[0] = False
        if not useful.any():
            return True, False, "no_eligible_customers"
        if not self._ledger.fits(self._worst[useful]).any():
            return True, False, "budget_exhausted"
        if self._t >= self.goal.max_iterations:
            return False, True, "max_iterations"
        return False, False, None

    def _info_base(self) -> dict[str, Any]:
        return {
            "iteration": self._t,
            "spent": self._ledger.spent,
            "reserved": self._ledger.reserved,
            "remaining": self._ledger.available,
            "conversions": self._conversions,
            "revenue": self._revenue,
            "progress": self._progress() / self.goal.target,
            "goal_reached": self._goal_reached,
            "action_mask": self.action_masks(),
        }

    def _observe(self) -> ObsType:
        g, led = self.goal, self._ledger
        budget = max(led.budget_micros, 1)
        S = self.n_segments
        if S:
            counts = self._elig_count  # (S, A)
            reach = np.where(self._channel_arms[None, :, :], counts[:, None, :], 0).max(axis=2)
        else:
            reach = np.zeros((0, len(self.channel_names)))
        stats = CampaignStats(
            spent=led.spent_micros / budget,
            reserved=led.reserved_micros / budget,
            progress=self._progress() / g.target,
            iteration=self._t / g.max_iterations,
            pending=led.n_attributable / (g.customers_per_iteration * max(self.window, 1)),
            last_wave=self._last_wave / g.customers_per_iteration,
            n_customers=self.simulator.n_customers,
            seg_size=self._seg_size,
            seg_sends=self._seg_sends,
            seg_contacted=self._seg_contacted,
            seg_conv=self._seg_conv,
            seg_fatigue=self._seg_fatigue,
            seg_reach=reach,
            arm_sends=self._arm_sends,
            arm_conv=self._arm_conv,
            arm_click=self._arm_click,
            arm_unsub=self._arm_unsub,
        )
        return build_observation(stats, self._max_sends_log)


def arm_lookup(
    channel: IntArray, content: IntArray, offer: IntArray, shape: tuple[int, int, int]
) -> tuple[IntArray, BoolArray]:
    """Map every (channel, content, offer) to an arm as ``Campaign-v0`` does (public helper).

    Args:
        channel: ``(n_arms,)`` channel index per arm (arm 0, no contact, first).
        content: ``(n_arms,)`` content index per arm.
        offer: ``(n_arms,)`` offer index per arm.
        shape: ``(n_channels, n_contents, n_offers)``.

    Returns:
        ``(n_channels, n_contents, n_offers)`` arm indices and whether each is an exact match.
    """
    return _arm_lookup(np.asarray(channel), np.asarray(content), np.asarray(offer), shape)


def _arm_lookup(
    channel: IntArray, content: IntArray, offer: IntArray, shape: tuple[int, int, int]
) -> tuple[IntArray, BoolArray]:
    """Map every (channel, content, offer) to an arm: itself if it exists, else the nearest.

    Returns:
        ``(n_channels, n_contents, n_offers)`` arm indices and whether each is an exact match.
    """
    ch = np.arange(shape[0])[:, None, None, None]
    co = np.arange(shape[1])[None, :, None, None]
    of = np.arange(shape[2])[None, None, :, None]
    score = (
        4 * (channel[1:] == ch).astype(np.int64)
        + 2 * (content[1:] == co).astype(np.int64)
        + (offer[1:] == of).astype(np.int64)
    )  # (n_ch, n_co, n_of, n_arms - 1)
    best = np.argmax(score, axis=-1)  # first maximum: the lowest arm index
    lookup = (best + 1).astype(np.int64)
    exact = np.take_along_axis(score, best[..., None], axis=-1)[..., 0] == 7
    return lookup, exact


def _observation_names(
    segments: Sequence[str], channels: Sequence[str], arms: Sequence[str]
) -> tuple[str, ...]:
    return observation_names(segments, channels, arms)
