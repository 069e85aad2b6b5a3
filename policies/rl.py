"""Reinforcement-learning policies: Stable-Baselines3 models trained on ``Campaign-v0``.

``ppo`` (:class:`PPOPolicy`) and ``a2c`` (:class:`A2CPolicy`) wrap an SB3 actor-critic model
trained on ``CampaignOpt/Campaign-v0`` (:func:`train_rl`) behind the one policy interface, so the
campaign loop (``agent.Campaign``) and the live runner can use them like any other policy.

One campaign iteration = one environment step. In :meth:`SB3Policy.act` the policy

1. builds the observation the environment would show, with :func:`envs.observation.build_observation`
   (the code the environment itself uses), from statistics it keeps about its own campaign
   (see :class:`CampaignTracker`: the loop's budget and goal figures, and what
   :meth:`SB3Policy.update` learned from the decisions and events);
2. lets the model choose a wave ``(segment, channel, content, offer, volume)``: the most probable
   value of each component (``deterministic=True``, the default), or a draw from the model's
   distribution with the policy's own random generator (``deterministic=False``);
3. turns the wave into one arm per candidate as the environment does: the (channel, content,
   offer) is mapped to an arm with :func:`envs.campaign.arm_lookup`; the candidates of the chosen
   lifecycle segment (or all candidates for ``"all"``) whose mask allows that arm are eligible; a
   ``volume`` share of the segment's eligible *population* (estimated as eligible candidates *
   population / candidates, as the environment's wave is a share of the whole segment; at most
   all eligible candidates, rounded up, and no more than the available budget pays at worst-case
   cost; ``population_scaled=False`` takes the share of the eligible candidates instead) is drawn
   uniformly at random with the policy's generator and gets the arm, everyone else gets arm 0
   (no contact).

Propensities (``pscores``): a contacted customer's pscore is the model's probability of the joint
wave action that was chosen, ``prod_i p_i(a_i)`` over the five components (from
``model.policy.get_distribution``), clipped to at least ``1e-12``. A customer not contacted gets
1 in deterministic mode (no contact for them followed deterministically from the wave) and the
same joint probability in stochastic mode. (The uniform draw of the contacted subset is not folded
in.)

Differences from the environment, inherent to acting in the loop: a policy only sees the loop's
candidates (``customers_per_iteration`` customers drawn by the loop), so population figures
(the population size, segment sizes, reachability per channel) are estimated from the candidates
seen so far, and a wave contacts a share of the segment's *candidates* rather than of the whole
segment.

Example:
    >>> from policies.rl import train_rl, PPOPolicy
    >>> policy = train_rl("ppo", "retail", 20_000, Path("runs/ppo"), seed=0)  # doctest: +SKIP
    >>> policy = PPOPolicy.load("runs/ppo")  # doctest: +SKIP
"""

from __future__ import annotations

import json
import math
import os
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar, Self

import numpy as np

from envs.campaign import CampaignEnv, arm_lookup
from envs.observation import CampaignStats, build_observation, max_sends_log
from policies.base import DecisionContext, Decisions, Feedback, Policy
from simulators import load_scenario
from simulators.money import first_per_decision, window_closed
from simulators.types import NO_CONTACT, ArmTable, BoolArray, EventKind, FloatArray, IntArray

__all__ = [
    "ALGORITHMS",
    "DEFAULT_VOLUME_LEVELS",
    "A2CPolicy",
    "CampaignTracker",
    "PPOPolicy",
    "SB3Policy",
    "train_rl",
]

DEFAULT_VOLUME_LEVELS: tuple[float, ...] = (0.25, 0.5, 0.75, 1.0)
"""Volume levels of the training environment: every wave sends (no 0 level), so short training
learns *what* to send instead of first discovering that sending anything can pay (see
``tests/envs/test_ppo.py``); a campaign toward a goal has no use for idle iterations."""

MODEL_FILE = "model.zip"
"""The SB3 model inside a saved policy folder (next to ``policy.json``)."""

_MIN_PSCORE = 1e-12
_DELIVERED = int(EventKind.DELIVERED)
_CLICKED = int(EventKind.CLICKED)
_CONVERTED = int(EventKind.CONVERTED)
_UNSUBSCRIBED = int(EventKind.UNSUBSCRIBED)


def _hyperparameters(algo: str) -> dict[str, Any]:
    """SB3 constructor arguments used by :func:`train_rl` (episodes are at most ~20 steps)."""
    if algo == "ppo":
        return {"n_steps": 512, "batch_size": 64, "n_epochs": 10, "learning_rate": 1e-3, "gamma": 0.95,
                "ent_coef": 0.01}  # fmt: skip
    if algo == "a2c":
        return {"n_steps": 20, "learning_rate": 1e-3, "gamma": 0.95, "ent_coef": 0.01}
    raise ValueError(f"algo must be one of {list(ALGORITHMS)}, got {algo!r}")


class CampaignTracker:
    """The statistics of one campaign that ``Campaign-v0``'s observation is built from.

    Kept from the loop's contexts (:meth:`begin`) and feedback (:meth:`record`): budget and goal
    figures come from the context; sends, conversions (attributed once per decision, inside the
    attribution window), clicks, unsubscribes and deliveries from the policy's own decisions
    and their events. The population size is estimated as the largest customer index seen + 1,
    segment sizes from the segment shares of the distinct candidates seen, reachability per
    channel from the candidates' masks.

    Args:
        n_segments: number of lifecycle segment one-hot columns leading ``ctx.features``.
        n_arms: arms of the scenario (arm 0 included).
        arm_channel: ``(n_arms,)`` channel index per arm (-1 for no contact).
        n_channels: number of channels.
        fatigue_decay: the fatigue statistic's decay per iteration.
    """

    def __init__(
        self, n_segments: int, n_arms: int, arm_channel: IntArray, n_channels: int, fatigue_decay: float
    ) -> None:
        self.S, self.A, self.C = n_segments, n_arms, n_channels
        self.arm_channel = np.asarray(arm_channel, dtype=np.int64)
        self.fatigue_decay = float(fatigue_decay)
        self.reset()

    def reset(self) -> None:
        """Forget the campaign (a new one starts at iteration 0)."""
        S, A = self.S, self.A
        self.started = False
        self.budget = 0.0
        self.target = 1.0
        self.max_iterations = 1
        self.cpi = 1
        self.window = 0
        self.spent = 0.0
        self.last_wave = 0
        self.seen = np.zeros(0, dtype=bool)  # per customer index: seen as a candidate
        self.contacted = np.zeros(0, dtype=bool)
        self.seen_by_seg = np.zeros(S)
        self.reach_cand = np.zeros((S, self.C))  # candidates reachable per channel, latest context
        self.cand_by_seg = np.zeros(S)
        self.seg_sends = np.zeros(S)
        self.seg_contacted = np.zeros(S)
        self.seg_conv = np.zeros(S)
        self.seg_fatigue = np.zeros(S)
        self.arm_sends = np.zeros(A)
        self.arm_conv = np.zeros(A)
        self.arm_click = np.zeros(A)
        self.arm_unsub = np.zeros(A)
        # Per decision id (the loop's ids are 0, 1, 2, ...): iteration, arm, segment, converted.
        self.dec_iter = np.full(0, -1, dtype=np.int64)
        self.dec_arm = np.zeros(0, dtype=np.int64)
        self.dec_seg = np.zeros(0, dtype=np.int64)
        self.dec_conv = np.zeros(0, dtype=bool)

    # -- from the loop -------------------------------------------------------------------------
    def segments(self, ctx: DecisionContext) -> IntArray:
        """``(n,)`` lifecycle segment of each candidate (0 when the features have none)."""
        if self.S == 0:
            return np.zeros(len(ctx), dtype=np.int64)
        seg: IntArray = np.argmax(np.asarray(ctx.features)[:, : self.S], axis=1).astype(np.int64)
        return seg

    def begin(self, ctx: DecisionContext, seg: IntArray) -> None:
        """Take in an iteration's context (the first one opens the campaign)."""
        if ctx.iteration == 0 or not self.started:
            self.reset()
            self.started = True
            # Nothing is spent or reserved before the first iteration.
            self.budget = float(ctx.budget_available)
            self.target = max(float(ctx.goal_remaining), 1e-12)
            self.max_iterations = max(int(ctx.iteration + ctx.iterations_left), 1)
            self.cpi = max(len(ctx), 1)
            self.window = int(ctx.attribution_window)
        cust = np.asarray(ctx.customers, dtype=np.int64)
        if cust.size:
            n = int(cust.max()) + 1
            if n > self.seen.size:
                self.seen = np.concatenate([self.seen, np.zeros(n - self.seen.size, dtype=bool)])
                self.contacted = np.concatenate(
                    [self.contacted, np.zeros(n - self.contacted.size, dtype=bool)]
                )
            new = ~self.seen[cust]
            self.seen[cust[new]] = True
            if self.S:
                self.seen_by_seg += np.bincount(seg[new], minlength=self.S)
        if self.S:
            mask = np.asarray(ctx.mask, dtype=bool)
            # (n, C): the candidate may still be sent some arm of the channel.
            ch = self.arm_channel[None, 1:] == np.arange(self.C)[:, None]  # (C, A-1)
            reach = (mask[:, 1:].astype(np.int64) @ ch.T.astype(np.int64)) > 0
            onehot = (seg[:, None] == np.arange(self.S)[None, :]).astype(np.float64)  # (n, S)
            self.reach_cand = onehot.T @ reach.astype(np.float64)
            self.cand_by_seg = onehot.sum(axis=0)

    def record(self, feedback: Feedback, seg: IntArray) -> None:
        """Book an iteration's decisions and events."""
        ctx = feedback.ctx
        arms_table = ctx.arms
        ids = np.asarray(feedback.decision_ids, dtype=np.int64)
        sent = ids >= 0
        arms = np.asarray(feedback.decisions.arms, dtype=np.int64)
        sid, sarm, sseg = ids[sent], arms[sent], seg[sent]
        if sid.size:
            top = int(sid.max()) + 1
            if top > self.dec_iter.size:
                grow = top - self.dec_iter.size
                self.dec_iter = np.concatenate([self.dec_iter, np.full(grow, -1, dtype=np.int64)])
                self.dec_arm = np.concatenate([self.dec_arm, np.zeros(grow, dtype=np.int64)])
                self.dec_seg = np.concatenate([self.dec_seg, np.zeros(grow, dtype=np.int64)])
                self.dec_conv = np.concatenate([self.dec_conv, np.zeros(grow, dtype=bool)])
            self.dec_iter[sid] = ctx.iteration
            self.dec_arm[sid] = sarm
            self.dec_seg[sid] = sseg
            self.spent += float(np.asarray(arms_table.send_cost)[sarm].sum())
            self.arm_sends += np.bincount(sarm, minlength=self.A)
            cust = np.asarray(ctx.customers, dtype=np.int64)[sent]
            first = ~self.contacted[cust]
            self.contacted[cust] = True
            if self.S:
                self.seg_sends += np.bincount(sseg, minlength=self.S)
                self.seg_contacted += np.bincount(sseg[first], minlength=self.S)
        self.last_wave = int(sid.size)

        ev = feedback.events
        delivered = np.zeros(self.S)
        if len(ev):
            did = np.asarray(ev.decision_id, dtype=np.int64)
            own = (did >= 0) & (did < self.dec_iter.size)
            own[own] &= self.dec_iter[did[own]] >= 0
            kind = np.asarray(ev.kind)
            d = did[own]
            k = kind[own]
            if self.S:
                delivered = np.bincount(self.dec_seg[d[k == _DELIVERED]], minlength=self.S).astype(np.float64)
            self.arm_click += np.bincount(self.dec_arm[d[k == _CLICKED]], minlength=self.A)
            self.arm_unsub += np.bincount(self.dec_arm[d[k == _UNSUBSCRIBED]], minlength=self.A)
            conv = k == _CONVERTED
            if conv.any():
                cd = d[conv]
                it = np.asarray(ev.iteration, dtype=np.int64)[own][conv]
                cost = np.asarray(ev.offer_cost, dtype=np.float64)[own][conv]
                live = ~window_closed(self.dec_iter[cd], it, self.window)  # it: each event's iteration
                cd, cost = cd[live], cost[live]
                cd, first_idx = first_per_decision(cd)
                cost = cost[first_idx]
                fresh = ~self.dec_conv[cd]
                cd, cost = cd[fresh], cost[fresh]
                self.dec_conv[cd] = True
                self.spent += float(cost.sum())
                self.arm_conv += np.bincount(self.dec_arm[cd], minlength=self.A)
                if self.S:
                    self.seg_conv += np.bincount(self.dec_seg[cd], minlength=self.S)
        self.seg_fatigue = (self.seg_fatigue + delivered) * self.fatigue_decay

    # -- the observation -----------------------------------------------------------------------
    def stats(self, ctx: DecisionContext) -> CampaignStats:
        """The campaign's statistics as of ``ctx`` (before the iteration's decisions)."""
        n_hat = max(int(self.seen.size), 1)
        total_seen = max(float(self.seen_by_seg.sum()), 1.0)
        seg_size = self.seen_by_seg / total_seen * n_hat
        reach_share = self.reach_cand / np.maximum(self.cand_by_seg, 1.0)[:, None]
        budget = max(self.budget, 1e-12)
        reserved = max(self.budget - self.spent - float(ctx.budget_available), 0.0)
        t = int(ctx.iteration)
        open_ = (self.dec_iter >= 0) & ~window_closed(self.dec_iter, t, self.window) & ~self.dec_conv
        return CampaignStats(
            spent=self.spent / budget,
            reserved=reserved / budget,
            progress=(self.target - float(ctx.goal_remaining)) / self.target,
            iteration=t / self.max_iterations,
            pending=float(np.count_nonzero(open_)) / (self.cpi * max(self.window, 1)),
            last_wave=self.last_wave / self.cpi,
            n_customers=n_hat,
            seg_size=seg_size,
            seg_sends=self.seg_sends,
            seg_contacted=self.seg_contacted,
            seg_conv=self.seg_conv,
            seg_fatigue=self.seg_fatigue,
            seg_reach=reach_share * seg_size[:, None],
            arm_sends=self.arm_sends,
            arm_conv=self.arm_conv,
            arm_click=self.arm_click,
            arm_unsub=self.arm_unsub,
        )

    # -- persistence ---------------------------------------------------------------------------
    _ARRAYS: ClassVar[tuple[str, ...]] = (
        "seen_by_seg", "reach_cand", "cand_by_seg", "seg_sends", "seg_contacted", "seg_conv",
        "seg_fatigue", "arm_sends", "arm_conv", "arm_click", "arm_unsub", "dec_iter", "dec_arm",
        "dec_seg",
    )  # fmt: skip
    _SCALARS: ClassVar[tuple[str, ...]] = (
        "started", "budget", "target", "max_iterations", "cpi", "window", "spent", "last_wave",
    )  # fmt: skip

    def to_json(self) -> dict[str, Any]:
        """JSON-ready state (boolean per-customer arrays as index lists)."""
        out: dict[str, Any] = {k: getattr(self, k) for k in self._SCALARS}
        out.update({k: np.asarray(getattr(self, k)).tolist() for k in self._ARRAYS})
        out["arm_channel"] = self.arm_channel.tolist()
        out["n_seen"] = int(self.seen.size)
        out["seen"] = np.flatnonzero(self.seen).tolist()
        out["contacted"] = np.flatnonzero(self.contacted).tolist()
        out["dec_conv"] = np.flatnonzero(self.dec_conv).tolist()
        return out

    def from_json(self, state: dict[str, Any]) -> None:
        """Inverse of :meth:`to_json`."""
        self.reset()
        for k in self._SCALARS:
            setattr(self, k, type(getattr(self, k))(state[k]))
        for k in self._ARRAYS:
            ref = np.asarray(getattr(self, k))
            arr = np.asarray(state[k], dtype=ref.dtype)
            setattr(self, k, arr.reshape((-1, *ref.shape[1:])) if ref.ndim > 1 else arr)
        n = int(state["n_seen"])
        self.seen = np.zeros(n, dtype=bool)
        self.seen[np.asarray(state["seen"], dtype=np.int64)] = True
        self.contacted = np.zeros(n, dtype=bool)
        self.contacted[np.asarray(state["contacted"], dtype=np.int64)] = True
        self.dec_conv = np.zeros(self.dec_iter.size, dtype=bool)
        self.dec_conv[np.asarray(state["dec_conv"], dtype=np.int64)] = True


class SB3Policy(Policy):
    """A Stable-Baselines3 model trained on ``Campaign-v0``, behind the policy interface.

    Build one with :func:`train_rl`, or load a saved one with :meth:`load` (``policy.json`` and
    ``model.zip`` in a folder). See the module docstring for how a wave becomes decisions.

    Args:
        seed: the policy's seed (random subsets of a wave, stochastic choices).
        model_path: a saved policy folder or SB3 ``.zip`` to load the model from (optional; a
            policy without a model cannot act).
        deterministic: the most probable wave (``True``) or a draw from the model's distribution.
        volume_levels: the training environment's volume levels.
        segment_names: the training environment's segments (``"all"`` last).
        channel_names: the scenario's channels, for checking the campaign's arms.
        arm_names: the scenario's arms, for checking the campaign's arms.
        fatigue_decay: the training environment's fatigue decay.
        training: how the model was trained (scenario, timesteps, seconds, ...), for the record.
        population_scaled: read a volume level as a share of the segment's eligible
            *population*, as the environment does (the wave contacts ``level * eligible
            candidates * population / candidates`` of the eligible candidates, at most all of
            them); ``False`` reads it as a share of the eligible candidates.
    """

    name: ClassVar[str] = "sb3"
    algo: ClassVar[str] = ""

    def __init__(
        self,
        seed: int | None = None,
        model_path: str = "",
        deterministic: bool = True,
        volume_levels: Sequence[float] = DEFAULT_VOLUME_LEVELS,
        segment_names: Sequence[str] = (),
        channel_names: Sequence[str] = (),
        arm_names: Sequence[str] = (),
        fatigue_decay: float = 0.6,
        training: dict[str, Any] | None = None,
        population_scaled: bool = True,
    ) -> None:
        super().__init__(seed)
        if not 0 <= fatigue_decay <= 1:
            raise ValueError(f"fatigue_decay must be in [0, 1], got {fatigue_decay}")
        self.model_path = str(model_path)
        self.deterministic = bool(deterministic)
        self.volume_levels = tuple(float(v) for v in volume_levels)
        self.segment_names = tuple(segment_names)
        self.channel_names = tuple(channel_names)
        self.arm_names = tuple(arm_names)
        self.fatigue_decay = float(fatigue_decay)
        self.training: dict[str, Any] = dict(training or {})
        self.population_scaled = bool(population_scaled)
        self.model: Any = None
        self._tracker: CampaignTracker | None = None
        self._lookup: IntArray | None = None
        self._segs: IntArray | None = None  # segments of the last act's candidates
        if self.model_path:
            self.load_model(self.model_path)

    # -- model ---------------------------------------------------------------------------------
    @classmethod
    def sb3_class(cls) -> Any:
        """The Stable-Baselines3 algorithm class (imported lazily)."""
        import stable_baselines3

        return getattr(stable_baselines3, cls.algo.upper())

    def load_model(self, path: str | Path) -> None:
        """Load the SB3 model from a policy folder (its ``model.zip``) or a ``.zip`` file."""
        p = Path(path)
        if p.is_dir():
            p = p / MODEL_FILE
        self.model = self.sb3_class().load(str(p), device="cpu")

    @property
    def n_segments(self) -> int:
        """Lifecycle segments of the training environment (``"all"`` excluded)."""
        return max(len(self.segment_names) - 1, 0)

    def _tracker_for(self, arms: ArmTable) -> CampaignTracker:
        """The campaign tracker, and the arm lookup table, built on first use."""
        if self._lookup is None:
            if self.arm_names and tuple(arms.names) != self.arm_names:
                raise ValueError(
                    f"{self.name} was trained on arms {list(self.arm_names)}, "
                    f"the campaign has {list(arms.names)}"
                )
            shape = (len(arms.channel_names), len(arms.content_names), len(arms.offer_names))
            self._lookup, _ = arm_lookup(
                np.asarray(arms.channel), np.asarray(arms.content), np.asarray(arms.offer), shape
            )
        if self._tracker is None:
            self._tracker = CampaignTracker(
                self.n_segments,
                len(arms),
                np.asarray(arms.channel),
                len(arms.channel_names),
                self.fatigue_decay,
            )
        return self._tracker

    def wave_distribution(self, obs: np.ndarray) -> list[FloatArray]:
        """The model's probabilities of each action component for one observation."""
        import torch

        if self.model is None:
            raise RuntimeError(f"{self.name} has no model: train it (train_rl) or load one (model_path=)")
        with torch.no_grad():
            obs_t, _ = self.model.policy.obs_to_tensor(obs)
            dist = self.model.policy.get_distribution(obs_t)
            return [np.asarray(d.probs[0].cpu().numpy(), dtype=np.float64) for d in dist.distribution]

    # -- the interface -------------------------------------------------------------------------
    def act(self, ctx: DecisionContext) -> Decisions:
        """Choose one wave and turn it into per-customer arms (see the module docstring)."""
        tracker = self._tracker_for(ctx.arms)
        assert self._lookup is not None
        seg = tracker.segments(ctx)
        self._segs = seg
        tracker.begin(ctx, seg)
        obs = build_observation(tracker.stats(ctx), max_sends_log(tracker.max_iterations, tracker.cpi))
        probs = self.wave_distribution(obs)
        if self.deterministic:
            action = [int(np.argmax(p)) for p in probs]
        else:
            action = [int(self.rng.choice(p.size, p=p / p.sum())) for p in probs]
        p_joint = max(float(np.prod([p[a] for p, a in zip(probs, action, strict=True)])), _MIN_PSCORE)
        seg_i, ch_i, co_i, of_i, vol_i = action
        arm = int(self._lookup[ch_i, co_i, of_i])
        level = self.volume_levels[vol_i]

        n = len(ctx)
        arms_out = np.full(n, NO_CONTACT, dtype=np.int64)
        mask: BoolArray = np.asarray(ctx.mask, dtype=bool)
        in_seg = np.ones(n, dtype=bool) if seg_i >= self.n_segments else seg == seg_i
        cand = np.flatnonzero(in_seg & mask[:, arm])
        # The environment sends a share of the segment's eligible *population*, capped at the
        # wave size; the loop offers a random sample of it, so the share is scaled up by
        # population / candidates (estimated) and capped at the eligible candidates.
        scale = max(tracker.seen.size / max(n, 1), 1.0) if self.population_scaled else 1.0
        k = min(math.ceil(level * cand.size * scale - 1e-9), cand.size) if level > 0 else 0
        worst = float(ctx.arms.worst_case_cost[arm])
        if worst > 0:
            k = min(k, math.floor(max(ctx.budget_available, 0.0) / worst))
        if 0 < k < cand.size:
            cand = np.sort(self.rng.choice(cand, size=k, replace=False))
        elif k <= 0:
            cand = cand[:0]
        arms_out[cand] = arm
        pscores = np.full(n, 1.0 if self.deterministic else p_joint)
        pscores[cand] = p_joint
        return Decisions(arms=arms_out, pscores=pscores)

    def update(self, feedback: Feedback) -> None:
        """Keep the statistics the observation needs (the model itself is not updated online)."""
        tracker = self._tracker_for(feedback.ctx.arms)
        seg = self._segs
        if seg is None or seg.shape[0] != len(feedback.ctx):
            seg = tracker.segments(feedback.ctx)
        tracker.record(feedback, seg)
        self._segs = None

    # -- persistence ---------------------------------------------------------------------------
    def config(self) -> dict[str, Any]:
        """Constructor arguments (the model itself is saved to ``model.zip``)."""
        return {
            "seed": self.seed,
            "deterministic": self.deterministic,
            "volume_levels": list(self.volume_levels),
            "segment_names": list(self.segment_names),
            "channel_names": list(self.channel_names),
            "arm_names": list(self.arm_names),
            "fatigue_decay": self.fatigue_decay,
            "training": self.training,
            "population_scaled": self.population_scaled,
        }

    def _state(self) -> dict[str, Any]:
        return {"campaign": self._tracker.to_json() if self._tracker is not None else None}

    def _restore(self, state: dict[str, Any]) -> None:
        camp = state.get("campaign")
        if camp is not None:
            self._tracker = CampaignTracker(
                self.n_segments,
                len(camp["arm_sends"]),
                np.asarray(camp["arm_channel"], dtype=np.int64),
                len(self.channel_names),
                self.fatigue_decay,
            )
            self._tracker.from_json(camp)

    def save(self, path: str | Path) -> Path:
        """Write ``policy.json`` (config, campaign statistics, random state) and ``model.zip``."""
        folder = super().save(path)
        if self.model is not None:
            self.model.save(str(folder / MODEL_FILE))
        return folder

    @classmethod
    def load(cls, path: str | Path, **kwargs: Any) -> Self:
        """Rebuild a policy saved with :meth:`save`, with its SB3 model.

        ``SB3Policy.load`` loads whichever algorithm the folder holds; ``kwargs`` override saved
        constructor arguments (e.g. ``deterministic=False``).

        Raises:
            ValueError: the folder holds another policy.
        """
        doc = json.loads((Path(path) / "policy.json").read_text(encoding="utf-8"))
        name = doc.get("policy")
        target: type[SB3Policy] = cls
        if cls is SB3Policy and name in ALGORITHMS:
            target = ALGORITHMS[name]
        if name != target.name:
            raise ValueError(f"{path} holds a {name!r} policy, not {cls.name!r}")
        obj = target(**{**doc["config"], **kwargs})
        obj._restore(doc["state"])
        obj.rng.bit_generator.state = doc["rng"]
        obj.load_model(path)
        assert isinstance(obj, cls)
        return obj


class PPOPolicy(SB3Policy):
    """:class:`SB3Policy` with a Stable-Baselines3 PPO model (``ppo``)."""

    name: ClassVar[str] = "ppo"
    algo: ClassVar[str] = "ppo"


class A2CPolicy(SB3Policy):
    """:class:`SB3Policy` with a Stable-Baselines3 A2C model (``a2c``)."""

    name: ClassVar[str] = "a2c"
    algo: ClassVar[str] = "a2c"


ALGORITHMS: dict[str, type[SB3Policy]] = {"ppo": PPOPolicy, "a2c": A2CPolicy}
"""Policy classes by algorithm name."""


def train_rl(
    algo: str,
    scenario: str,
    timesteps: int,
    out: Path,
    seed: int,
    n_customers: int | None = None,
    progress: bool = True,
    *,
    volume_levels: Sequence[float] = DEFAULT_VOLUME_LEVELS,
    deterministic: bool = True,
    hyperparameters: dict[str, Any] | None = None,
    threads: int = 1,
) -> SB3Policy:
    """Train an SB3 model on ``Campaign-v0`` and save the policy to ``out``.

    Args:
        algo: ``"ppo"`` or ``"a2c"``.
        scenario: a built-in scenario name or a YAML path.
        timesteps: environment steps (campaign iterations) to train for.
        out: folder to write ``policy.json`` and ``model.zip`` to.
        seed: seeds the model, the environment and the policy.
        n_customers: population of the training world (default: the scenario's; the goal,
            budget and wave size are scaled with it).
        progress: show SB3's progress bar.
        volume_levels: the environment's volume levels.
        deterministic: the saved policy's mode.
        hyperparameters: SB3 constructor arguments overriding the defaults.
        threads: torch threads while training (restored afterwards); the network is tiny, and
            one thread is several times faster than two on a 2-core machine.

    Returns:
        The trained policy (already saved).

    Raises:
        ValueError: unknown ``algo`` or invalid scenario arguments.
    """
    import torch

    if algo not in ALGORITHMS:
        raise ValueError(f"algo must be one of {list(ALGORITHMS)}, got {algo!r}")
    cls = ALGORITHMS[algo]
    os.environ.setdefault("SB3_LOGDIR", tempfile.mkdtemp(prefix="sb3-"))
    sc = load_scenario(scenario)
    env = CampaignEnv(sc, n_customers=n_customers, volume_levels=tuple(volume_levels))
    params = {**_hyperparameters(algo), **(hyperparameters or {})}
    old_threads = torch.get_num_threads()
    torch.set_num_threads(max(int(threads), 1))
    try:
        model = cls.sb3_class()("MlpPolicy", env, seed=seed, device="cpu", verbose=0, **params)
        start = time.perf_counter()
        model.learn(total_timesteps=int(timesteps), progress_bar=progress)
        seconds = time.perf_counter() - start
    finally:
        torch.set_num_threads(old_threads)
    arms = env.simulator.arms
    policy = cls(
        seed=seed,
        deterministic=deterministic,
        volume_levels=env.volume_levels,
        segment_names=env.segment_names,
        channel_names=arms.channel_names,
        arm_names=arms.names,
        fatigue_decay=env.fatigue_decay,
        training={
            "algo": algo,
            "scenario": str(scenario),
            "n_customers": env.simulator.n_customers,
            "timesteps": int(timesteps),
            "seed": seed,
            "seconds": round(seconds, 3),
            "torch_threads": max(int(threads), 1),
            "hyperparameters": params,
        },
    )
    policy.model = model
    policy.save(out)
    return policy
