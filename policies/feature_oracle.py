"""``feature_oracle``: the oracle's allocator driven by the best model of what a policy observes.

The oracle (:class:`policies.baselines.OraclePolicy`) reads each customer's true expected
response, hidden traits included. A policy only sees the observable features (static ones and
the contact history: fatigue, contacts, iterations since the last contact, reachable channels).
This yardstick replaces the truth by ``E[truth | features, arm]``: gradient-boosted trees fitted
on a large randomized sample of the scenario drawn with seeds the benchmark never uses. The gap
between ``oracle`` and ``feature_oracle`` is the price of missing information; the gap between
``feature_oracle`` and a learner is the price of learning.

The sample (:func:`draw_sample`): campaigns of random waves on freshly drawn populations (seeds
``1_000_000 + k``), each wave a random half of the candidates sent a random allowed arm, so the
states cover fatigue, contact history and opt-outs. Each recorded pair is a candidate and a
random contact arm, with the simulator's ground-truth expectation in that state as target (the
unbiased target of lowest variance for ``E[p | x, arm]``). Three models (conversion probability,
revenue and expected cost; the arm is a categorical input) are fitted once per scenario and
cached on disk, keyed by the scenario's content, the sample size and the seed.

Example:
    >>> from policies import make_policy  # doctest: +SKIP
    >>> pol = make_policy("feature_oracle", Simulator(load_scenario("retail")), seed=0)  # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import os
import pickle
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Self

import numpy as np
from numpy.typing import NDArray

from policies.base import DecisionContext, Decisions, GoalMetric, Policy
from policies.baselines import buy_wave
from simulators.simulator import Simulator
from simulators.types import NO_CONTACT, BoolArray, CustomerSimulator, FloatArray, IntArray

TRAINING_SEED_BASE = 1_000_000
"""Populations of the sample are drawn with seeds from here on (the benchmark uses 0..k)."""
TARGETS = ("p_convert", "revenue", "cost")
"""What the models predict, each from the observable features and the arm."""
MODEL_FILE = "feature_model.pkl"
"""The fitted models' file, in the cache and in a saved policy's folder."""


def cache_root() -> Path:
    """Where fitted models are cached: ``$CAMPAIGN_OPT_CACHE`` or ``~/.cache/campaign-opt``."""
    return Path(os.environ.get("CAMPAIGN_OPT_CACHE", Path.home() / ".cache" / "campaign-opt"))


@dataclass
class FeatureModel:
    """The fitted ``E[target | features, arm]`` models of one scenario and their checks.

    Attributes:
        models: one regressor per name in :data:`TARGETS`, on ``[features, arm]`` rows.
        pairs: (customer, arm) pairs fitted on.
        seconds: wall time of drawing the sample and fitting.
        r2: ``R^2`` of each model against the ground truth on a held-out sample (NaN for a
            constant target).
        calibration: per decile of predicted ``p_convert`` on the held-out sample: mean
            prediction, mean ground truth, mean realized conversion (a Bernoulli draw).
    """

    models: dict[str, Any]
    pairs: int
    seconds: float
    r2: dict[str, float] = field(default_factory=dict)
    calibration: list[tuple[float, float, float]] = field(default_factory=list)

    def predict(
        self, features: NDArray[np.float32], mask: BoolArray, targets: tuple[str, ...] = TARGETS
    ) -> dict[str, FloatArray]:
        """Predictions for every candidate and allowed contact arm.

        Args:
            features: ``(n, n_features)`` observable features.
            mask: ``(n, n_arms)`` allowed arms (arm 0, no contact, is never predicted).
            targets: which of :data:`TARGETS` to predict.

        Returns:
            Per target, ``(n, n_arms)`` predictions clipped at 0 (``p_convert`` also at 1), 0
            where the arm is not allowed and for no contact.
        """
        from threadpoolctl import threadpool_limits

        allowed = mask.copy()
        allowed[:, NO_CONTACT] = False
        customers, arms = np.nonzero(allowed)
        rows = _rows(features[customers], arms.astype(np.int64))
        out: dict[str, FloatArray] = {}
        with threadpool_limits(1):
            for name in targets:
                full = np.zeros(mask.shape)
                full[customers, arms] = np.maximum(self.models[name].predict(rows), 0.0)
                out[name] = full
        if "p_convert" in out:
            out["p_convert"] = np.minimum(out["p_convert"], 1.0)
        return out


def _rows(features: NDArray[np.float32], arms: IntArray) -> FloatArray:
    """``[features, arm]`` model inputs (the arm last, as a categorical code)."""
    return np.column_stack([features.astype(np.float64), arms.astype(np.float64)])


def draw_sample(
    simulator: Simulator, pairs: int, seed: int, iterations: int, share: float = 0.5
) -> tuple[FloatArray, dict[str, FloatArray], FloatArray]:
    """Randomized (customer, arm) pairs across campaign states, with ground-truth targets.

    Args:
        simulator: the scenario's simulator (reset here with training seeds).
        pairs: pairs to draw (at least).
        seed: the sample's seed; population ``k`` uses ``TRAINING_SEED_BASE + seed * 1000 + k``.
        iterations: waves per campaign before a new population is drawn.
        share: share of each wave's candidates that is sent its random arm (the rest rests).

    Returns:
        ``(m, n_features + 1)`` model inputs, per target ``(m,)`` ground truth, and ``(m,)``
        realized conversions of the pairs (for the calibration check).
    """
    rng = np.random.default_rng(seed)
    n = simulator.n_customers
    xs: list[FloatArray] = []
    ys: dict[str, list[FloatArray]] = {t: [] for t in TARGETS}
    realized: list[FloatArray] = []
    drawn, k = 0, 0
    while drawn < pairs:
        simulator.reset(seed=TRAINING_SEED_BASE + seed * 1000 + k)
        k += 1
        for _ in range(iterations):
            if drawn >= pairs:
                break
            customers = np.arange(n, dtype=np.int64)
            mask = simulator.arm_mask(customers)
            mask[:, NO_CONTACT] = False
            reach = mask.any(axis=1)
            customers, mask = customers[reach], mask[reach]
            keys = np.where(mask, rng.random(mask.shape), -1.0)
            arms = np.argmax(keys, axis=1).astype(np.int64)
            gt = simulator.expected(customers, arms)
            xs.append(_rows(simulator.features(customers), arms))
            for t in TARGETS:
                ys[t].append(np.asarray(getattr(gt, t), dtype=np.float64))
            realized.append((rng.random(customers.shape[0]) < gt.p_convert).astype(np.float64))
            drawn += customers.shape[0]
            sent = rng.random(customers.shape[0]) < share
            simulator.send(np.arange(int(sent.sum())), customers[sent], arms[sent])
            simulator.advance()
    x = np.concatenate(xs)
    return (
        x,
        {t: np.concatenate(v) for t, v in ys.items()},
        np.concatenate(realized),
    )


def fit_feature_model(simulator: Simulator, pairs: int, seed: int, iterations: int) -> FeatureModel:
    """Draw the sample, fit one gradient-boosted model per target, check it on a held-out draw.

    Args:
        simulator: the scenario's simulator (reset with training seeds; left in a training state).
        pairs: pairs to fit on.
        seed: seed of the sample and of the models.
        iterations: waves per sampled campaign.
    """
    from sklearn.ensemble import HistGradientBoostingRegressor
    from threadpoolctl import threadpool_limits

    start = time.perf_counter()
    x, y, _ = draw_sample(simulator, pairs, seed, iterations)
    x, y = x[:pairs], {t: v[:pairs] for t, v in y.items()}
    arm_column = x.shape[1] - 1
    models: dict[str, Any] = {}
    for t in TARGETS:
        model = HistGradientBoostingRegressor(
            max_iter=100,
            learning_rate=0.15,
            max_leaf_nodes=31,
            min_samples_leaf=100,
            categorical_features=[arm_column],
            early_stopping=False,
            random_state=seed,
        )
        with threadpool_limits(1):  # OpenMP threads on a shared machine only wait for each other
            models[t] = model.fit(x, y[t])
    seconds = time.perf_counter() - start
    fitted = FeatureModel(models=models, pairs=int(x.shape[0]), seconds=seconds)
    hx, hy, hreal = draw_sample(simulator, max(pairs // 10, 10_000), seed + 500, iterations)
    pred = {t: np.asarray(m.predict(hx), dtype=np.float64) for t, m in models.items()}
    fitted.r2 = {t: _r2(pred[t], hy[t]) for t in TARGETS}
    deciles = np.array_split(np.argsort(pred["p_convert"], kind="stable"), 10)
    fitted.calibration = [
        (float(pred["p_convert"][d].mean()), float(hy["p_convert"][d].mean()), float(hreal[d].mean()))
        for d in deciles
    ]
    return fitted


def _r2(pred: FloatArray, truth: FloatArray) -> float:
    """``R^2`` of ``pred`` against ``truth``; NaN when the truth is constant (e.g. one send cost)."""
    var = float(np.var(truth))
    if var <= 1e-12 * max(float(np.mean(truth**2)), 1e-300):
        return float("nan")
    return 1.0 - float(np.mean((pred - truth) ** 2)) / var


def scenario_key(simulator: Simulator, pairs: int, seed: int, iterations: int) -> str:
    """Cache key: the scenario's content and the fitting parameters (the sample is drawn on the
    scenario's own population size, whatever the simulator's)."""
    doc = simulator.scenario.model_dump_json() + f"|{pairs}|{seed}|{iterations}|v1"
    return hashlib.sha256(doc.encode()).hexdigest()[:20]


def load_or_fit(simulator: Simulator, pairs: int, seed: int, iterations: int) -> FeatureModel:
    """The cached model of this scenario, fitted (on a copy of the simulator) when missing."""
    folder = (
        cache_root()
        / "feature_oracle"
        / f"{simulator.scenario.name}-{scenario_key(simulator, pairs, seed, iterations)}"
    )
    file = folder / MODEL_FILE
    if file.is_file():
        with file.open("rb") as fh:
            model: FeatureModel = pickle.load(fh)
        return model
    fresh = Simulator(simulator.scenario)
    model = fit_feature_model(fresh, pairs, seed, iterations)
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / f"{MODEL_FILE}.{os.getpid()}.tmp"
    with tmp.open("wb") as fh:
        pickle.dump(model, fh)
    tmp.replace(file)
    return model


class FeatureOraclePolicy(Policy):
    """The oracle's allocator with ``E[truth | observable features, arm]`` instead of the truth.

    Args:
        simulator: the scenario's :class:`simulators.Simulator` (its scenario is sampled to fit
            the model; its hidden state is never read when deciding).
        pace: factor on the per-wave share of the remaining goal (as the oracle's).
        safety: standard deviations of safety margin (as the oracle's).
        pairs: (customer, arm) pairs to fit on.
        fit_seed: seed of the training sample and of the models.
        fit_iterations: waves per sampled campaign.
    """

    name: ClassVar[str] = "feature_oracle"

    def __init__(
        self,
        simulator: CustomerSimulator,
        pace: float = 1.0,
        safety: float = 2.0,
        pairs: int = 1_000_000,
        fit_seed: int = 0,
        fit_iterations: int = 12,
        seed: int | None = None,
    ) -> None:
        super().__init__(seed)
        if not isinstance(simulator, Simulator):
            raise ValueError("feature_oracle needs a simulators.Simulator: it samples its scenario")
        if not pace > 0:
            raise ValueError(f"pace must be positive, got {pace}")
        if not safety >= 0:
            raise ValueError(f"safety must be at least 0, got {safety}")
        if pairs < 1000 or fit_iterations < 1:
            raise ValueError("pairs must be at least 1000 and fit_iterations at least 1")
        self.simulator = simulator
        self.pace = pace
        self.safety = safety
        self.pairs = pairs
        self.fit_seed = fit_seed
        self.fit_iterations = fit_iterations
        self._model: FeatureModel | None = None

    def config(self) -> dict[str, Any]:
        return {
            "pace": self.pace,
            "safety": self.safety,
            "pairs": self.pairs,
            "fit_seed": self.fit_seed,
            "fit_iterations": self.fit_iterations,
            "seed": self.seed,
        }

    @property
    def model(self) -> FeatureModel:
        """The fitted model (from the cache, fitted on first use)."""
        if self._model is None:
            self._model = load_or_fit(self.simulator, self.pairs, self.fit_seed, self.fit_iterations)
        return self._model

    def act(self, ctx: DecisionContext) -> Decisions:
        metric: GoalMetric = ctx.goal_metric
        goal = "p_convert" if metric == "conversions" else "revenue"
        pred = self.model.predict(ctx.features, ctx.mask, tuple(dict.fromkeys(("p_convert", goal, "cost"))))
        unit = (
            1.0 if metric == "conversions" else float(pred[goal].sum() / max(pred["p_convert"].sum(), 1e-12))
        )
        value = np.where(ctx.mask, pred[goal], -np.inf)
        value[:, NO_CONTACT] = 0.0
        return buy_wave(ctx, value, pred["cost"], self.pace, self.safety, unit)

    def save(self, path: str | Path) -> Path:
        """As :meth:`Policy.save`, with the fitted model beside ``policy.json`` when there is one."""
        folder = super().save(path)
        if self._model is not None:
            with (folder / MODEL_FILE).open("wb") as fh:
                pickle.dump(self._model, fh)
        return folder

    @classmethod
    def load(cls, path: str | Path, **kwargs: Any) -> Self:
        """As :meth:`Policy.load`; a saved model is used as is (else the cache is)."""
        obj = super().load(path, **kwargs)
        file = Path(path) / MODEL_FILE
        if file.is_file():
            with file.open("rb") as fh:
                obj._model = pickle.load(fh)
        return obj
