"""``CampaignOpt/CustomerBandit-v0``: one decision per customer, as a contextual bandit.

Each step presents ``batch_size`` (B) distinct customers; the agent picks one arm for each; the
reward is what those decisions earned.

Observation:
    ``Box(0, 1, (n_features,), float32)`` for ``batch_size=1``, else ``(B, n_features)``: the
    simulator's observable features of the presented customers (``simulator.features``), listed
    in ``env.unwrapped.feature_names``. For the built-in simulator: one-hot lifecycle segment,
    recency / 24 months, log1p(frequency) / log1p(50), log1p(monetary) / log1p(10,000), one-hot
    categorical attributes, observed bought-product-line flags, per-channel "reachable and
    subscribed" flags, one-hot preferred channel, and the contact history: fatigue / 5, contacts
    / 20, iterations since the last contact / 10 (1 if never); every value clipped to [0, 1].

Action:
    ``Discrete(n_arms)`` for ``batch_size=1``, else ``MultiDiscrete([n_arms] * B)``: the arm per
    presented customer, an index into ``env.unwrapped.arm_names`` (arm 0 = no contact). An arm the
    customer cannot receive (``simulator.arm_mask``: unreachable channel, unsubscribed) is executed
    as no contact and flagged in ``info["invalid"]``; :meth:`CustomerBanditEnv.action_masks` and
    ``info["action_mask"]`` give the allowed arms for the current observation.

Reward (``reward=``), summed over the batch, per decision:
    * ``"net_value"`` (default): revenue * margin - send cost - offer cost;
    * ``"conversions"``: number of conversions;
    * ``"revenue"``: order revenue.
    A contacted decision earns its own conversions (those attributed to it by the simulator); a
    no-contact decision earns the customer's organic conversions of the iteration, so the expected
    reward of arm ``a`` for a customer is exactly the simulator's ground truth
    (``GroundTruth.net_value(margin)``, ``p_convert``, ``revenue``). A conversion counts once per
    decision, even if its event is duplicated.

Timing and delayed feedback:
    * ``delayed=False`` (default): a step sends its batch and advances the simulator through the
      attribution window (``max(window, 1)`` iterations; ``window`` is the simulator's
      ``max_delay``, the longest conversion delay, or ``attribution_window=``), so the reward is
      each decision's complete outcome.
    * ``delayed=True``: a step is one simulator iteration. The reward is everything that happened
      in it: the send costs and undelayed conversions of this step's decisions, the organic
      conversions of its no-contact customers, and conversions of earlier steps' decisions that
      arrive now. ``info["rewards"]`` has this step's decisions' part, ``info["late_rewards"]``
      ``(window, B)`` the part arriving now for the decisions made ``d`` steps ago (row ``d - 1``,
      column = position in that step's batch). At the last step of an episode all outstanding
      conversions are delivered, so an episode's return is every decision's complete outcome.

Customers and fatigue:
    * ``fatigue=True`` (default): every step draws B distinct customers uniformly from the whole
      population; customers are drawn again in later steps and carry their fatigue, contact
      history and opt-outs (all visible in their features).
    * ``fatigue=False``: customers are drawn without replacement over the episode, so nobody is
      presented twice and no contact affects a later decision (a stateless bandit); needs
      ``episode_length * batch_size <= n_customers``.

Episode:
    ``episode_length`` steps (default 100), then ``truncated=True``; ``terminated`` is always
    ``False`` (a bandit has no terminal state). The final observation shows the last batch again
    (after its contacts). ``reset(seed=)`` draws a fresh population; ``reset()`` without a seed
    continues the environment's random stream.

Budget (``budget=``, default unlimited):
    The project's ledger rules: each decision reserves its worst-case cost (send cost + offer
    ``max_value``) in batch order; a decision that does not fit in ``budget - spent - reserved``
    is refused, executed as no contact and flagged in ``info["refused"]``. Amounts are integer
    micro-dollars; spend never exceeds the budget.

Info (every step): ``rewards`` ``(B,)``, ``late_rewards`` ``(window, B)``, ``arms`` ``(B,)`` (as
    executed), ``invalid`` and ``refused`` ``(B,)``, ``customers`` ``(B,)`` (of the decisions just
    made), ``unattributed_events``, ``spent``, ``reserved``, ``remaining`` and ``action_mask``
    (``(n_arms,)`` or ``(B, n_arms)``, for the next observation). ``reset`` gives
    ``action_mask`` and ``customers``.

Stable-Baselines3 accepts both forms; for ``batch_size > 1`` its checker advises flattening the
2-D observation (one row per customer is the intended layout for per-customer policies).

Example:
    >>> import envs, gymnasium as gym
    >>> env = gym.make("CampaignOpt/CustomerBandit-v0", scenario="retail", n_customers=2000)
    >>> obs, info = env.reset(seed=0)
    >>> obs, reward, terminated, truncated, info = env.step(env.action_space.sample())
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Literal, SupportsFloat

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from numpy.typing import NDArray

from envs._common import (
    REWARD_KINDS,
    BoolArray,
    FloatArray,
    IntArray,
    event_value,
    make_simulator,
)
from envs._common import (
    attribution_window as resolve_window,
)
from simulators import NO_CONTACT, CustomerSimulator, EventBatch, EventKind, Scenario
from simulators.money import CampaignLedger

ObsType = NDArray[np.float32]
ActType = NDArray[np.int64] | int | np.integer[Any]


class CustomerBanditEnv(gym.Env[ObsType, ActType]):
    """Contextual bandit over a customer simulator; see the module docstring for the layout.

    Args:
        scenario: built-in scenario name, YAML path or :class:`simulators.Scenario`
            (default ``"retail"`` when ``simulator`` is not given either).
        simulator: any object following :class:`simulators.CustomerSimulator`.
        n_customers: population size of a simulator built from ``scenario`` (default: the
            scenario's).
        batch_size: customers per step (B).
        episode_length: steps per episode.
        reward: ``"net_value"``, ``"conversions"`` or ``"revenue"``.
        delayed: conversions arrive in later steps (see module docstring).
        fatigue: customers recur across steps and carry their contact history.
        budget: dollars the episode may spend; ``None`` for no limit.
        attribution_window: iterations a conversion may lag its send; default from the scenario.
        render_mode: only ``None`` (nothing to render).

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
        batch_size: int = 1,
        episode_length: int = 100,
        reward: Literal["net_value", "conversions", "revenue"] = "net_value",
        delayed: bool = False,
        fatigue: bool = True,
        budget: float | None = None,
        attribution_window: int | None = None,
        render_mode: str | None = None,
    ) -> None:
        if render_mode is not None:
            raise ValueError(f"render_mode must be None (nothing to render), got {render_mode!r}")
        self.simulator = make_simulator(scenario, simulator, n_customers)
        sim = self.simulator
        n = sim.n_customers
        if not 1 <= batch_size <= n:
            raise ValueError(f"batch_size must be in 1..n_customers={n}, got {batch_size}")
        if episode_length < 1:
            raise ValueError(f"episode_length must be >= 1, got {episode_length}")
        if not fatigue and episode_length * batch_size > n:
            raise ValueError(
                f"fatigue=False presents every customer at most once per episode: "
                f"episode_length * batch_size = {episode_length * batch_size} > n_customers = {n}"
            )
        if reward not in REWARD_KINDS:
            raise ValueError(f"reward must be one of {list(REWARD_KINDS)}, got {reward!r}")
        if budget is not None and not budget > 0:
            raise ValueError(f"budget must be > 0 or None, got {budget}")
        self.batch_size = int(batch_size)
        self.episode_length = int(episode_length)
        self.reward_kind: str = reward
        self.delayed = bool(delayed)
        self.fatigue = bool(fatigue)
        self.budget = math.inf if budget is None else float(budget)
        self.window = resolve_window(sim, attribution_window)
        arms = sim.arms
        self.arm_names: tuple[str, ...] = arms.names
        self.feature_names: tuple[str, ...] = tuple(sim.feature_names)
        self.n_arms = len(arms)
        self._send_cost = np.asarray(arms.send_cost, dtype=np.float64)
        self._max_offer = np.asarray(arms.max_offer_cost, dtype=np.float64)
        self._worst = self._send_cost + self._max_offer
        self._margin = float(sim.margin)
        B, F = self.batch_size, len(self.feature_names)
        shape = (F,) if B == 1 else (B, F)
        self.observation_space = spaces.Box(0.0, 1.0, shape=shape, dtype=np.float32)
        self.action_space: spaces.Space[Any] = (
            spaces.Discrete(self.n_arms)
            if B == 1
            else spaces.MultiDiscrete(np.full(B, self.n_arms, dtype=np.int64))
        )
        self._customers: IntArray | None = None
        self._mask: BoolArray = np.ones((B, self.n_arms), dtype=bool)
        self._step = 0
        self._ledger = self._new_ledger()
        self._dec_pos = np.zeros(0, dtype=np.int64)  # per decision id: position in its batch
        self._pos = np.full(n, -1, dtype=np.int64)
        self._held: list[EventBatch] = []
        self._perm: IntArray = np.arange(n, dtype=np.int64)

    # -- gymnasium API ------------------------------------------------------------------------
    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[ObsType, dict[str, Any]]:
        """Draw a fresh population and present the first batch.

        Args:
            seed: seeds the environment; the same seed gives the same episode, bit for bit.
            options: unused.

        Returns:
            The observation and ``info`` with ``action_mask`` and ``customers``.
        """
        super().reset(seed=seed)
        self.simulator.reset(seed=int(self.np_random.integers(0, 2**63 - 1)))
        n = self.simulator.n_customers
        self._step = 0
        self._ledger = self._new_ledger()
        self._pos = np.full(n, -1, dtype=np.int64)
        self._held = []
        if not self.fatigue:
            self._perm = self.np_random.permutation(n).astype(np.int64)
        obs = self._present()
        return obs, {"action_mask": self._info_mask(), "customers": self._customers_now().copy()}

    def step(self, action: ActType) -> tuple[ObsType, SupportsFloat, bool, bool, dict[str, Any]]:
        """Execute one arm per presented customer.

        Args:
            action: an arm index (``batch_size=1``) or ``(B,)`` arm indices.

        Returns:
            ``(obs, reward, terminated, truncated, info)``; ``info`` holds ``rewards`` ``(B,)``,
            ``late_rewards`` ``(window, B)``, ``arms`` ``(B,)`` (executed), ``invalid`` and
            ``refused`` ``(B,)``, ``customers`` ``(B,)`` (of the decisions just made),
            ``spent``, ``reserved``, ``remaining`` and ``action_mask`` (for the next
            observation).

        Raises:
            RuntimeError: ``step`` before ``reset``.
            ValueError: an action of the wrong shape or out of range.
        """
        customers = self._customers_now()
        B, W, t = self.batch_size, self.window, self._step
        a = np.asarray(action, dtype=np.int64).reshape(-1)
        if a.shape[0] != B:
            raise ValueError(f"action must hold {B} arm(s), got shape {np.shape(action)}")
        if a.size and (int(a.min()) < 0 or int(a.max()) >= self.n_arms):
            raise ValueError(f"arms must be in 0..{self.n_arms - 1}")
        pos = np.arange(B)
        allowed = self._mask[pos, a]
        arms = np.where(allowed, a, NO_CONTACT)
        fits = self._ledger.affordable(self._worst[arms])
        arms = np.where(fits, arms, NO_CONTACT)
        contacted = arms != NO_CONTACT
        idx = np.flatnonzero(contacted)
        sent_arms = arms[idx]
        ids = self._ledger.send(t, self._worst[sent_arms], self._send_cost[sent_arms])
        if ids.size and ids[-1] >= self._dec_pos.shape[0]:
            self._dec_pos = np.concatenate(
                [self._dec_pos, np.zeros(max(self._dec_pos.shape[0], B), np.int64)]
            )
        self._dec_pos[ids] = idx
        # Rewards only need conversions: keep those, drop the (many) funnel events early.
        now = _conversions(self.simulator.send(ids, customers[idx], sent_arms))
        idle = customers[~contacted]
        self._pos[idle] = np.flatnonzero(~contacted)

        last = t + 1 >= self.episode_length
        first = _conversions(self.simulator.advance())
        organic = first.decision_id < 0
        decided = first.select(~organic)
        if not self.delayed:
            batches = [now, decided]
            for _ in range(max(W, 1) - 1):
                batches.append(_conversions(self.simulator.advance()))
            self._held = []
        else:
            batches = [now, *self._held]
            self._held = [decided]
            if last:
                batches += self._held
                for _ in range(W - 1):
                    batches.append(_conversions(self.simulator.advance()))
                self._held = []
        events = EventBatch.concat(batches)
        events = events.select(events.decision_id >= 0)

        rewards = np.zeros(B)
        late = np.zeros((W, B))
        if self.reward_kind == "net_value":
            rewards[idx] -= self._send_cost[sent_arms]
        unattributed = self._book(events, t, rewards, late)
        # Organic conversions of this step's no-contact customers, once per customer.
        conv = first.select(organic)
        p = self._pos[conv.customer]
        mine = p >= 0
        if np.any(mine):
            conv = conv.select(mine)
            p = p[mine]
            _, first_idx = np.unique(p, return_index=True)
            keep = np.zeros(p.shape[0], dtype=bool)
            keep[first_idx] = True
            vals = event_value(conv, self.reward_kind, self._margin, keep)
            rewards += np.bincount(p, weights=vals, minlength=B)
        self._pos[idle] = -1

        self._ledger.close(t + 1 + (W if last else 0))
        self._step = t + 1
        obs = self._present() if not last else self._observe(customers)
        reward = float(rewards.sum() + late.sum())
        info: dict[str, Any] = {
            "rewards": rewards,
            "late_rewards": late,
            "arms": arms,
            "invalid": ~allowed,
            "refused": allowed & ~fits,
            "customers": customers,
            "unattributed_events": unattributed,
            "spent": self._ledger.spent,
            "reserved": self._ledger.reserved,
            "remaining": self._ledger.available,
            "action_mask": self._info_mask(),
        }
        return obs, reward, False, last, info

    def action_masks(self) -> BoolArray:
        """Arms allowed for the presented customers (``simulator.arm_mask``).

        Returns:
            ``(n_arms,)`` for ``batch_size=1``, else ``(B * n_arms,)``: the ``(B, n_arms)`` mask
            flattened row by row, the layout ``sb3_contrib.MaskablePPO`` expects for
            ``MultiDiscrete``. ``info["action_mask"]`` has the ``(B, n_arms)`` form.
        """
        return self._mask.reshape(-1).copy()

    # -- internals ----------------------------------------------------------------------------
    def _info_mask(self) -> BoolArray:
        """The mask in ``info``: ``(n_arms,)`` for ``batch_size=1``, else ``(B, n_arms)``."""
        return self._mask[0].copy() if self.batch_size == 1 else self._mask.copy()

    def _customers_now(self) -> IntArray:
        if self._customers is None:
            raise RuntimeError("call reset() before step()")
        return self._customers

    def _present(self) -> ObsType:
        """Draw the next batch of customers; returns its observation."""
        B, n = self.batch_size, self.simulator.n_customers
        if self.fatigue:
            c = self.np_random.choice(n, B, replace=False).astype(np.int64)
        else:
            c = self._perm[self._step * B : (self._step + 1) * B]
        self._customers = c
        return self._observe(c)

    def _observe(self, customers: IntArray) -> ObsType:
        feats = np.asarray(self.simulator.features(customers), dtype=np.float32)
        np.clip(feats, 0.0, 1.0, out=feats)
        self._mask = np.asarray(self.simulator.arm_mask(customers), dtype=bool)
        shape: tuple[int, ...] = self.observation_space.shape or ()
        return feats.reshape(shape)

    def _book(self, events: EventBatch, t: int, rewards: FloatArray, late: FloatArray) -> int:
        """Attribute decision events to decisions; updates ``rewards``/``late`` and the ledger.

        Args:
            events: conversion events of this environment's decisions.
            t: the current step.
            rewards: ``(B,)`` this step's decisions' values (updated in place).
            late: ``(window, B)`` values for earlier steps' decisions (updated in place).

        Returns:
            The number of conversion events that could not be attributed (older than the window).
        """
        conv = events
        if len(conv) == 0:
            return 0
        B = self.batch_size
        step_of = self._ledger.sent_at(conv.decision_id)
        j = self._dec_pos[conv.decision_id]
        age = t - step_of
        stray = ~self._ledger.in_window(conv.decision_id)
        if np.any(conv.offer_cost[stray] > 0):
            raise RuntimeError(
                "an offer was redeemed outside its decision's attribution window: the window is "
                "shorter than the simulator's conversion delays (set attribution_window=)"
            )
        # First conversion per decision only (duplicates and already-booked ones are dropped).
        first = self._ledger.convert(conv.decision_id, conv.offer_cost).counted
        vals = event_value(conv, self.reward_kind, self._margin, first)
        now = age == 0
        rewards += np.bincount(j[now], weights=vals[now], minlength=B)
        for d in range(1, self.window + 1):
            m = age == d
            if np.any(m):
                late[d - 1] += np.bincount(j[m], weights=vals[m], minlength=B)
        return int(np.count_nonzero(stray))

    def _new_ledger(self) -> CampaignLedger:
        # Without delays every outcome is settled within the step: a window of one step.
        return CampaignLedger(self.budget, self.window if self.delayed else 0)


def _conversions(events: EventBatch) -> EventBatch:
    """The ``CONVERTED`` events of a batch."""
    return events.select(events.kind == EventKind.CONVERTED)
