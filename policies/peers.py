"""Peer bandit libraries behind the policy interface: Vowpal Wabbit (``vw``) and MABWiser (``mabwiser``).

These adapters let the benchmark compare the project's own bandits with what a data scientist would
otherwise pick off the shelf. They need the optional extra (``pip install -e '.[peers]'``); the
libraries are imported lazily, so this module imports without them and a peer raises
:class:`PeerNotInstalledError` with that hint when it is first used.

Both peers get the same information as the project's bandits: the customers' observable features,
the arm identities (channel, content, offer) and the arm costs, and they learn from the same
delayed feedback. Both optimize the same per-decision reward, in dollars:

    ``reward = price * value - cost``

where ``value`` is 1 for an attributed conversion (or its revenue when the goal metric is revenue)
and 0 for a decision whose attribution window closed without one, ``cost`` is the money the
decision actually cost (send cost, plus the offer cost paid on redemption), and ``price`` is what
one unit of the goal is worth to the campaign: ``value_per_unit`` when given, else the campaign's
own allowance, ``budget / goal`` as seen in the first context (10,000 $ / 2,000 conversions = 5 $ per
conversion on ``retail``). No contact earns exactly 0. A peer therefore contacts a customer when the
arm's expected conversions times the price beat its expected cost; it does not pace spend across
iterations (that is what the project's budget-aware bandits add), and the campaign loop enforces the
budget whatever a peer asks for.

Delayed feedback: each sent decision waits in a per-decision buffer (:class:`_DelayedRewards`) and
becomes one training example when its first attributed conversion arrives (positive value) or when
its attribution window closes without one (``-send_cost``), exactly when the campaign loop settles
it. Decisions without contact are not learned from: their reward is known to be 0.

Neither library is vectorized over customers the way the project's policies are: MABWiser predicts
and fits a whole batch per call (used here), while Vowpal Wabbit's ``--cb_explore_adf`` takes one
multi-line example (one customer and that customer's allowed arms) per ``predict``/``learn`` call, so
the VW adapter loops over customers in Python there (and writes each customer's feature text);
everything around those calls (sampling, propensities, the delayed-reward join) is numpy. About
0.3 to 0.5 ms per customer and call on one core: a 20 x 12,000 ``retail`` campaign takes about
four minutes with VW and two to three with MABWiser LinTS.
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any, ClassVar, Literal, Self

import numpy as np
from numpy.typing import NDArray
from scipy import special

from policies.base import DecisionContext, Decisions, Feedback, Policy
from simulators.money import find_decisions, first_per_decision, window_closed
from simulators.types import NO_CONTACT, ArmTable, BoolArray, EventKind, FloatArray, IntArray

PEERS_INSTALL_HINT = "pip install -e '.[peers]'"
"""How to install the peer libraries (the ``peers`` extra)."""

MIN_PSCORE = 1e-6
"""Floor of an estimated propensity, so every logged pscore is in (0, 1]."""


class PeerNotInstalledError(ImportError):
    """A peer library (``vowpalwabbit`` or ``mabwiser``) is not installed."""


def _import_vowpalwabbit() -> Any:
    try:
        import vowpalwabbit
    except ImportError as err:
        raise PeerNotInstalledError(
            f"the 'vw' policy needs Vowpal Wabbit, which is not installed: {PEERS_INSTALL_HINT}"
        ) from err
    return vowpalwabbit


def _import_mabwiser_utils() -> Any:
    _import_mabwiser()
    import mabwiser.utils

    return mabwiser.utils


def _import_mabwiser() -> Any:
    try:
        import mabwiser.mab
    except ImportError as err:
        raise PeerNotInstalledError(
            f"the 'mabwiser' policy needs MABWiser, which is not installed: {PEERS_INSTALL_HINT}"
        ) from err
    return mabwiser.mab


class _Resolved:
    """Decisions whose reward is known, in decision-id order (one training example each).

    Attributes:
        features: ``(k, n_features)`` customer features when the decision was made.
        mask: ``(k, n_arms)`` the arms that were allowed then.
        arms: ``(k,)`` the arm sent.
        pscores: ``(k,)`` the propensity the policy gave it.
        rewards: ``(k,)`` ``price * value - cost`` in dollars.
    """

    def __init__(
        self,
        features: NDArray[np.float32],
        mask: BoolArray,
        arms: IntArray,
        pscores: FloatArray,
        rewards: FloatArray,
    ) -> None:
        self.features = features
        self.mask = mask
        self.arms = arms
        self.pscores = pscores
        self.rewards = rewards

    def __len__(self) -> int:
        return int(self.arms.shape[0])


class _DelayedRewards:
    """Per-decision buffer that joins delayed conversions to the decisions they answer.

    A sent decision is kept (features, allowed arms, arm, propensity, send cost) until its first
    attributed conversion arrives or its attribution window closes, mirroring the campaign loop:
    a decision of iteration ``s`` can convert until the update of iteration ``s + window``.
    """

    _FIELDS = ("ids", "iteration", "arms", "pscores", "send_cost", "features", "mask")

    def __init__(self) -> None:
        self.ids = np.empty(0, np.int64)
        self.iteration = np.empty(0, np.int64)
        self.arms = np.empty(0, np.int64)
        self.pscores = np.empty(0, np.float64)
        self.send_cost = np.empty(0, np.float64)
        self.features: NDArray[np.float32] = np.empty((0, 0), np.float32)
        self.mask: BoolArray = np.empty((0, 0), np.bool_)

    def __len__(self) -> int:
        return int(self.ids.shape[0])

    def add(self, feedback: Feedback) -> None:
        """Buffer this iteration's sent decisions (contacts with a decision id)."""
        ctx, dec = feedback.ctx, feedback.decisions
        sent = np.flatnonzero((feedback.decision_ids >= 0) & (dec.arms != NO_CONTACT))
        if sent.size == 0:
            return
        arms = np.asarray(dec.arms, np.int64)[sent]
        features = np.asarray(ctx.features, np.float32)[sent]
        mask = np.asarray(ctx.mask, np.bool_)[sent]
        new: dict[str, NDArray[Any]] = {
            "ids": np.asarray(feedback.decision_ids, np.int64)[sent],
            "iteration": np.full(sent.size, ctx.iteration, np.int64),
            "arms": arms,
            "pscores": np.asarray(dec.pscores, np.float64)[sent],
            "send_cost": np.asarray(ctx.arms.send_cost, np.float64)[arms],
            "features": features,
            "mask": mask,
        }
        if len(self) == 0:
            self.features = np.empty((0, features.shape[1]), np.float32)
            self.mask = np.empty((0, mask.shape[1]), np.bool_)
        for f in self._FIELDS:
            setattr(self, f, np.concatenate([getattr(self, f), new[f]]))
        order = np.argsort(self.ids, kind="stable")
        for f in self._FIELDS:
            setattr(self, f, getattr(self, f)[order])

    def resolve(self, feedback: Feedback, price: float) -> _Resolved:
        """Remove and return the decisions whose reward became known in this iteration.

        Args:
            feedback: the iteration's feedback (its events may answer earlier decisions).
            price: dollars one unit of the goal metric is worth.
        """
        ctx, ev = feedback.ctx, feedback.events
        reward = np.zeros(len(self))
        done = np.zeros(len(self), bool)
        conv = (ev.kind == EventKind.CONVERTED) & (ev.decision_id >= 0)
        if len(self) and np.any(conv):
            ids, first = first_per_decision(ev.decision_id[conv])  # duplicates count once
            value = np.ones(ids.size) if ctx.goal_metric == "conversions" else ev.revenue[conv][first]
            offer_cost = ev.offer_cost[conv][first]
            rows, hit = find_decisions(self.ids, ids)  # decisions no longer (or never) buffered: ignored
            reward[rows] = price * value[hit] - (self.send_cost[rows] + offer_cost[hit])
            done[rows] = True
        closed = ~done & window_closed(self.iteration, ctx.iteration + 1, ctx.attribution_window)
        reward[closed] = -self.send_cost[closed]
        done |= closed
        out = _Resolved(
            self.features[done], self.mask[done], self.arms[done], self.pscores[done], reward[done]
        )
        for f in self._FIELDS:
            setattr(self, f, getattr(self, f)[~done])
        return out

    def save(self, file: Path) -> None:
        """Write the buffer to an ``.npz`` file."""
        np.savez(file, **{f: getattr(self, f) for f in self._FIELDS})

    def load(self, file: Path) -> None:
        """Read a buffer written by :meth:`save`."""
        with np.load(file) as z:
            for f in self._FIELDS:
                setattr(self, f, z[f])


class _PeerPolicy(Policy):
    """What both peer adapters share: the reward's price, the delayed-reward buffer, save/load.

    Args:
        seed: the policy's seed (sampling, and the libraries' own seeds are drawn from it).
        value_per_unit: dollars one unit of the goal metric is worth in the reward; ``None``: the
            campaign's ``budget / goal`` from the first context.
    """

    _BUFFER_FILE: ClassVar[str] = "pending.npz"

    def __init__(self, seed: int | None = None, value_per_unit: float | None = None) -> None:
        super().__init__(seed)
        if value_per_unit is not None and not value_per_unit > 0:
            raise ValueError(f"value_per_unit must be positive, got {value_per_unit}")
        self.value_per_unit = value_per_unit
        self.price: float | None = value_per_unit
        self._pending = _DelayedRewards()

    def _price(self, ctx: DecisionContext) -> float:
        if self.price is None:
            goal = ctx.goal_remaining if ctx.goal_remaining > 0 else 1.0
            self.price = float(ctx.budget_available / goal)
        return self.price

    @staticmethod
    def _check(ctx: DecisionContext) -> None:
        if ctx.features.ndim != 2 or ctx.mask.shape != (len(ctx), len(ctx.arms)):
            raise ValueError(
                f"context shapes do not match: features {ctx.features.shape}, mask {ctx.mask.shape}, "
                f"{len(ctx)} customers, {len(ctx.arms)} arms"
            )

    def update(self, feedback: Feedback) -> None:
        """Buffer the sent decisions and learn from every decision whose reward became known."""
        self._pending.add(feedback)
        resolved = self._pending.resolve(feedback, self._price(feedback.ctx))
        if len(resolved):
            self._learn(resolved, feedback.ctx.arms)

    def _learn(self, resolved: _Resolved, arms: ArmTable) -> None:
        raise NotImplementedError

    def _state(self) -> dict[str, Any]:
        return {"price": self.price}

    def _restore(self, state: dict[str, Any]) -> None:
        self.price = state.get("price")

    def _save_model(self, folder: Path) -> None:
        raise NotImplementedError

    def _load_model(self, folder: Path) -> None:
        raise NotImplementedError

    def save(self, path: str | Path) -> Path:
        """Write config, price, random state, the pending decisions and the library's model."""
        folder = super().save(path)
        self._pending.save(folder / self._BUFFER_FILE)
        self._save_model(folder)
        return folder

    @classmethod
    def load(cls, path: str | Path, **kwargs: Any) -> Self:
        """Rebuild a peer saved with :meth:`save`, its library model included."""
        obj = super().load(path, **kwargs)
        folder = Path(path)
        if (folder / cls._BUFFER_FILE).exists():
            obj._pending.load(folder / cls._BUFFER_FILE)
        obj._load_model(folder)
        return obj


def _reserved(arms: ArmTable, chosen: IntArray) -> FloatArray:
    """Dollars the ledger reserves per chosen arm (worst case; a tiny floor for no contact)."""
    return np.maximum(np.asarray(arms.worst_case_cost, np.float64)[chosen], 1e-9)


def _sample_rows(pmf: FloatArray, u: FloatArray) -> IntArray:
    """One column per row of a row-stochastic matrix, by inverse CDF (never a zero column)."""
    cum = np.cumsum(pmf, axis=1)
    out: IntArray = np.argmax(cum > u[:, None] * cum[:, -1:], axis=1).astype(np.int64)
    return out


VW_EXPLORATION_FLAGS = (
    "--epsilon",
    "--first",
    "--bag",
    "--cover",
    "--psi",
    "--nounif",
    "--softmax",
    "--lambda",
    "--squarecb",
    "--gamma_scale",
    "--gamma_exponent",
    "--regcb",
    "--regcbopt",
    "--mellowness",
    "--synthcover",
    "--rnd",
)
"""The exploration options of ``--cb_explore_adf`` the ``vw`` policy accepts (nothing that reads
or writes files)."""


def _is_number(text: str) -> bool:
    """Whether ``text`` reads as a float (a flag's value)."""
    try:
        float(text)
    except ValueError:
        return False
    return True


class VowpalWabbitPolicy(_PeerPolicy):
    """Vowpal Wabbit's contextual bandit with action-dependent features (``--cb_explore_adf``).

    One VW example per customer: a shared line with the customer's features (namespace ``C``) and
    one line per allowed arm (namespace ``A``: channel, content, offer and arm one-hots, a contact
    flag, the send cost in dollars and the offer's discount), learned with customer x arm
    interactions (``-q CA``). No contact is an action line with no features and the model has no
    constant or customer-only terms (``--noconstant --ignore_linear C``), so its predicted cost is
    exactly 0, which is its true reward. Masked arms are left out of the example, so VW's pmf covers
    the allowed arms only; the adapter samples the arm from that pmf with its own generator and logs
    the pmf value as the propensity. VW's cost is the negative reward (see the module docstring).

    Args:
        seed: the policy's seed (sampling, and VW's ``--random_seed``).
        exploration: VW exploration arguments added to ``--cb_explore_adf`` (e.g.
            ``"--epsilon 0.05"``, ``"--squarecb --gamma_scale 10"``, ``"--bag 5"``).
        value_per_unit: dollars per unit of the goal metric in the reward; ``None``: budget / goal.
    """

    name: ClassVar[str] = "vw"
    MODEL_FILE: ClassVar[str] = "vw.model"

    def __init__(
        self,
        seed: int | None = None,
        exploration: str = "--epsilon 0.05",
        value_per_unit: float | None = None,
    ) -> None:
        super().__init__(seed, value_per_unit)
        flags = [t for t in exploration.split() if not _is_number(t)]
        if not flags or any(f not in VW_EXPLORATION_FLAGS for f in flags):
            raise ValueError(
                f"exploration takes VW exploration flags {list(VW_EXPLORATION_FLAGS)} with numbers, "
                f"e.g. '--epsilon 0.05', got {exploration!r}"
            )
        self.exploration = exploration
        self._vw: Any = None
        self._action_lines: list[str] = []
        self._action_names: tuple[str, ...] = ()

    def config(self) -> dict[str, Any]:
        return {"seed": self.seed, "exploration": self.exploration, "value_per_unit": self.value_per_unit}

    def arguments(self) -> str:
        """The VW command line of a fresh model."""
        vw_seed = 0 if self.seed is None else int(self.seed) % (2**31)
        return (
            f"--cb_explore_adf {self.exploration} -q CA --noconstant --ignore_linear C "
            f"--quiet --random_seed {vw_seed}"
        )

    def _workspace(self) -> Any:
        if self._vw is None:
            vw = _import_vowpalwabbit()
            self._vw = vw.Workspace(self.arguments(), enable_logging=False)
        return self._vw

    def _actions(self, arms: ArmTable) -> list[str]:
        """One VW action line per arm (no contact: no features), cached per arm table."""
        if self._action_names != arms.names:
            lines = ["|A"]
            for a in range(1, len(arms)):
                lines.append(
                    f"|A contact arm_{a} ch_{arms.channel[a]} ct_{arms.content[a]} of_{arms.offer[a]} "
                    f"send:{arms.send_cost[a]:.6g} discount:{arms.discount[a]:.6g}"
                )
            self._action_lines, self._action_names = lines, arms.names
        return self._action_lines

    @staticmethod
    def _shared_lines(features: NDArray[np.float32]) -> list[str]:
        """The shared (customer) line of each row; zero features are left out."""
        out = []
        for row in np.asarray(features, np.float64):
            nz = np.flatnonzero(row)
            out.append("shared |C " + " ".join(f"f{j}:{row[j]:.5g}" for j in nz))
        return out

    def act(self, ctx: DecisionContext) -> Decisions:
        self._check(ctx)
        self._price(ctx)
        vw = self._workspace()
        actions = self._actions(ctx.arms)
        n, n_arms = ctx.mask.shape
        pmf = np.zeros((n, n_arms))
        pmf[:, NO_CONTACT] = 1.0
        contactable = np.flatnonzero(ctx.mask[:, 1:].any(axis=1))
        shared = self._shared_lines(ctx.features[contactable])
        # VW's cb_explore_adf predicts one multi-line example (one customer) per call: the library's
        # constraint. Everything else here is vectorized.
        for i, line in zip(contactable, shared, strict=True):
            allowed = np.flatnonzero(ctx.mask[i])
            pmf[i, NO_CONTACT] = 0.0
            pmf[i, allowed] = vw.predict([line, *(actions[a] for a in allowed)])
        pmf = np.where(ctx.mask, np.maximum(pmf, 0.0), 0.0)
        pmf /= pmf.sum(axis=1, keepdims=True)
        arms = _sample_rows(pmf, np.asarray(self.rng.random(size=n), np.float64))
        pscores = np.clip(pmf[np.arange(n), arms], MIN_PSCORE, 1.0)
        # VW exposes no value estimates under exploration: when the budget cannot pay for every
        # contact, the loop keeps the most probable arms per dollar the ledger reserves for them.
        return Decisions(arms=arms, pscores=pscores, priority=pscores / _reserved(ctx.arms, arms))

    def _learn(self, resolved: _Resolved, arms: ArmTable) -> None:
        vw = self._workspace()
        actions = self._actions(arms)
        shared = self._shared_lines(resolved.features)
        cost = -resolved.rewards
        # One multi-line example per decision (library constraint), the label on the arm sent.
        for k, line in enumerate(shared):
            chosen = int(resolved.arms[k])
            label = f"0:{cost[k]:.6g}:{resolved.pscores[k]:.6g} "
            allowed = np.flatnonzero(resolved.mask[k])
            vw.learn([line, *((label if a == chosen else "") + actions[a] for a in allowed)])

    def _save_model(self, folder: Path) -> None:
        if self._vw is not None:
            self._vw.save(str(folder / self.MODEL_FILE))

    def _load_model(self, folder: Path) -> None:
        file = folder / self.MODEL_FILE
        if file.exists():
            vw = _import_vowpalwabbit()
            # The model file carries its reductions and options; -i restores them.
            self._vw = vw.Workspace(f"--quiet -i {file}", enable_logging=False)

    def close(self) -> None:
        """Release VW's native workspace (a later call to act or update starts a fresh model)."""
        if self._vw is not None:
            self._vw.finish()
            self._vw = None


def _gaussian_argmax_pscores(
    mu: FloatArray, sd: FloatArray, allowed: BoolArray, chosen: IntArray, nodes: int = 64, chunk: int = 1024
) -> FloatArray:
    """P(the chosen column is the argmax) of independent ``N(mu, sd**2)`` scores per row.

    Columns with ``sd == 0`` are deterministic (no contact: score 0). For a stochastic chosen
    column ``c`` the probability is the one-dimensional integral over its own score,
    ``P = int_{u0}^{1} prod_{b != c} Phi((mu_c + sd_c Phi^-1(u) - mu_b) / sd_b) du`` with ``u0`` where
    ``c`` first beats the best deterministic column; it is computed with the midpoint rule on
    ``nodes`` points in ``u`` (error O(1/nodes) at worst, much less for smooth integrands). For a
    deterministic chosen column the product is exact. Results are floored at :data:`MIN_PSCORE`.
    """
    n = mu.shape[0]
    out = np.empty(n)
    k = (np.arange(nodes) + 0.5) / nodes
    for lo in range(0, n, chunk):
        sl = slice(lo, min(lo + chunk, n))
        m, s, ok, c = mu[sl], sd[sl], allowed[sl], chosen[sl]
        rows = np.arange(m.shape[0])
        stochastic = ok & (s > 0)
        det_best = np.where(ok & (s <= 0), m, -np.inf).max(axis=1)
        others = stochastic.copy()
        others[rows, c] = False
        s_safe = np.where(stochastic, s, 1.0)
        m_c, s_c = m[rows, c], s[rows, c]
        # Deterministic chosen column: every stochastic competitor must land below it.
        z = (m_c[:, None] - m) / s_safe
        p_det = np.exp(np.where(others, special.log_ndtr(z), 0.0).sum(axis=1))
        p_det = np.where(m_c >= det_best, p_det, 0.0)
        # Stochastic chosen column: integrate over its own score above the deterministic best.
        s_c_safe = np.where(s_c > 0, s_c, 1.0)
        u0 = special.ndtr((det_best - m_c) / s_c_safe)
        u = u0[:, None] + (1.0 - u0[:, None]) * k[None, :]
        t = m_c[:, None] + s_c_safe[:, None] * special.ndtri(u)
        cols = np.flatnonzero(others.any(axis=0))  # competitors that exist in this chunk
        zz = (t[:, :, None] - m[:, None, cols]) / s_safe[:, None, cols]
        cdf = special.ndtr(zz)
        p_sto = (1.0 - u0) * np.where(others[:, None, cols], cdf, 1.0).prod(axis=2).mean(axis=1)
        out[sl] = np.where(s_c > 0, p_sto, p_det)
    return np.clip(np.nan_to_num(out, nan=MIN_PSCORE), MIN_PSCORE, 1.0)


class MABWiserPolicy(_PeerPolicy):
    """MABWiser's linear contextual bandits (``LinTS`` or ``LinUCB``), one ridge model per contact arm.

    The context is the customer's features plus a constant 1 (MABWiser's ridge regression has no
    intercept). No contact is not a MABWiser arm: its reward is known to be 0, so it scores 0 and
    wins when every allowed contact arm scores below 0. MABWiser has no per-customer arm masks:
    the adapter takes its per-arm scores (``predict_expectations``: a posterior draw for LinTS, the
    upper confidence bound for LinUCB) and picks the best allowed arm itself.

    Propensities: LinUCB is deterministic (pscore 1; ties are broken uniformly at random and get
    ``1 / ties``). For LinTS, MABWiser draws a coefficient vector per arm and customer, so each
    arm's score is ``N(x.beta, alpha^2 x'A^-1 x)``; the pscore is the probability the chosen arm wins
    under those Gaussians, computed by one-dimensional quadrature (:func:`_gaussian_argmax_pscores`)
    from the per-arm posteriors. That needs the draws to be independent across arms, which MABWiser
    2.7 does not guarantee: its ``fit`` deep-copies each arm's model together with the generator the
    arms share, so after a fit every arm draws the very same normal vectors (perfectly coupled
    noise; the arm with the best mean then wins far more often than Thompson sampling intends).
    The adapter therefore gives each arm model its own generator, seeded from the policy's seed,
    right after creating the model (``fit`` keeps each arm's own generator from then on). Reading
    ``beta``/``A_inv`` and setting ``rng`` use MABWiser internals (``MAB._imp.arm_to_model``),
    checked at run time.

    ``save`` pickles the MABWiser object into the folder: load only folders you trust (unpickling
    can run arbitrary code).

    Args:
        seed: the policy's seed (tie breaks, and MABWiser's seed is drawn from it).
        learning_policy: ``"lin_ts"`` or ``"lin_ucb"``.
        alpha: exploration scale (posterior scale for LinTS, bound width for LinUCB).
        l2_lambda: ridge regularization.
        value_per_unit: dollars per unit of the goal metric in the reward; ``None``: budget / goal.
    """

    name: ClassVar[str] = "mabwiser"
    MODEL_FILE: ClassVar[str] = "mabwiser.pkl"

    def __init__(
        self,
        seed: int | None = None,
        learning_policy: Literal["lin_ts", "lin_ucb"] = "lin_ts",
        alpha: float = 1.0,
        l2_lambda: float = 1.0,
        value_per_unit: float | None = None,
    ) -> None:
        super().__init__(seed, value_per_unit)
        if learning_policy not in ("lin_ts", "lin_ucb"):
            raise ValueError(f"learning_policy must be 'lin_ts' or 'lin_ucb', got {learning_policy!r}")
        if not alpha > 0 or not l2_lambda > 0:
            raise ValueError(f"alpha and l2_lambda must be positive, got {alpha}, {l2_lambda}")
        self.learning_policy = learning_policy
        self.alpha = alpha
        self.l2_lambda = l2_lambda
        self._mab: Any = None

    def config(self) -> dict[str, Any]:
        return {
            "seed": self.seed,
            "learning_policy": self.learning_policy,
            "alpha": self.alpha,
            "l2_lambda": self.l2_lambda,
            "value_per_unit": self.value_per_unit,
        }

    @staticmethod
    def _design(features: NDArray[np.float32]) -> FloatArray:
        x = np.asarray(features, np.float64)
        return np.hstack([x, np.ones((x.shape[0], 1))])

    def _model(self, n_arms: int, n_features: int) -> Any:
        if self._mab is None:
            mab = _import_mabwiser()
            lp = (
                mab.LearningPolicy.LinTS(alpha=self.alpha, l2_lambda=self.l2_lambda)
                if self.learning_policy == "lin_ts"
                else mab.LearningPolicy.LinUCB(alpha=self.alpha, l2_lambda=self.l2_lambda)
            )
            model = mab.MAB(
                arms=list(range(1, n_arms)), learning_policy=lp, seed=int(self.rng.integers(2**31 - 1))
            )
            # An empty fit initializes every arm at its prior so predictions work before any reward.
            model.fit(np.empty(0, np.int64), np.empty(0), np.empty((0, n_features + 1)))
            self._mab = model
            self._independent_arm_generators()
        return self._mab

    def _arm_models(self) -> list[Any]:
        try:
            return [self._mab._imp.arm_to_model[a] for a in self._mab.arms]
        except (AttributeError, KeyError) as err:
            raise RuntimeError(
                "this MABWiser version does not expose arm models as mabwiser 2.7 does "
                "(MAB._imp.arm_to_model[arm]): the 'mabwiser' adapter needs them"
            ) from err

    def _independent_arm_generators(self) -> None:
        """One generator per arm model, so LinTS draws are independent across arms."""
        utils = _import_mabwiser_utils()
        models = self._arm_models()
        if not all(hasattr(m, "rng") for m in models):
            raise RuntimeError("MABWiser arm models have no 'rng' attribute (mabwiser 2.7 layout expected)")
        seeds = self.rng.integers(2**31 - 1, size=len(models))
        for m, s in zip(models, seeds, strict=True):
            m.rng = utils.create_rng(int(s))

    def _posterior(self, x: FloatArray) -> tuple[FloatArray, FloatArray]:
        """``(n, n_contact_arms)`` mean and standard deviation of each LinTS arm score."""
        models = self._arm_models()
        try:
            betas = np.stack([np.asarray(m.beta, np.float64) for m in models])
            a_inv = [np.asarray(m.A_inv, np.float64) for m in models]
        except AttributeError as err:
            raise RuntimeError(
                "MABWiser arm models have no beta/A_inv (mabwiser 2.7 layout expected): "
                "LinTS propensities cannot be computed"
            ) from err
        mu = x @ betas.T
        var = np.stack([((x @ ai) * x).sum(axis=1) for ai in a_inv], axis=1)
        return mu, self.alpha * np.sqrt(np.maximum(var, 0.0))

    def act(self, ctx: DecisionContext) -> Decisions:
        self._check(ctx)
        self._price(ctx)
        n, n_arms = ctx.mask.shape
        model = self._model(n_arms, ctx.features.shape[1])
        arms = np.zeros(n, np.int64)
        pscores = np.ones(n)
        priority = np.zeros(n)
        contactable = np.flatnonzero(ctx.mask[:, 1:].any(axis=1))
        if contactable.size == 0:
            return Decisions(arms=arms, pscores=pscores, priority=priority)
        x = self._design(ctx.features[contactable])
        mask = ctx.mask[contactable]
        expectations = model.predict_expectations(x)  # one batch call over all customers
        if isinstance(expectations, dict):  # MABWiser unwraps a batch of one
            expectations = [expectations]
        scores = np.zeros(mask.shape)
        scores[:, 1:] = np.array([list(e.values()) for e in expectations], dtype=np.float64)
        scores = np.where(mask, scores, -np.inf)
        scores[:, NO_CONTACT] = 0.0
        rows = np.arange(contactable.size)
        if self.learning_policy == "lin_ucb":
            best = scores.max(axis=1, keepdims=True)
            tied = mask & (scores >= best - 1e-12 * np.maximum(1.0, np.abs(best)))
            keys = np.where(tied, self.rng.random(tied.shape), -1.0)
            chosen = np.argmax(keys, axis=1).astype(np.int64)
            ps = 1.0 / tied.sum(axis=1)
        else:
            chosen = np.argmax(scores, axis=1).astype(np.int64)
            mu = np.zeros(mask.shape)
            sd = np.zeros(mask.shape)
            mu[:, 1:], sd[:, 1:] = self._posterior(x)
            ps = _gaussian_argmax_pscores(mu, sd, mask, chosen)
        arms[contactable] = chosen
        pscores[contactable] = ps
        # When the budget cannot pay for every contact, keep the best score per reserved dollar.
        priority[contactable] = scores[rows, chosen] / _reserved(ctx.arms, chosen)
        return Decisions(arms=arms, pscores=pscores, priority=priority)

    def _learn(self, resolved: _Resolved, arms: ArmTable) -> None:
        model = self._model(resolved.mask.shape[1], resolved.features.shape[1])
        model.partial_fit(resolved.arms, resolved.rewards, self._design(resolved.features))

    def _save_model(self, folder: Path) -> None:
        if self._mab is not None:
            (folder / self.MODEL_FILE).write_bytes(pickle.dumps(self._mab))

    def _load_model(self, folder: Path) -> None:
        file = folder / self.MODEL_FILE
        if file.exists():
            _import_mabwiser()  # a clear error instead of a failing unpickle when the extra is missing
            self._mab = pickle.loads(file.read_bytes())  # trusted folders only (documented)
