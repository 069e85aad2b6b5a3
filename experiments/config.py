"""Experiment files (YAML): scenarios x policies x hyperparameters x seeds, validated once.

An experiment names the scenarios to run, the policies (each with a hyperparameter ``grid``),
the trial seeds, how each policy is trained before it is evaluated, the evaluation protocol,
where runs are tracked (MLflow) and, for search spaces, how Ray Tune samples and schedules.

A grid value is a scalar (fixed), a list (one trial per value; lists of several keys are
crossed) or a search space ``{type: loguniform|uniform|randint|choice, ...}``; a policy with
a search space is tuned with Ray Tune (``tune`` section), the others run as a plain grid.

Example:
    >>> cfg = parse_config({"name": "demo", "scenarios": ["retail"],
    ...                     "policies": [{"name": "epsilon_greedy", "grid": {"epsilon": [0.05, 0.1]}}]})
    >>> [p.name for p in cfg.policies], cfg.seeds
    (['epsilon_greedy'], [0])
"""

from __future__ import annotations

import inspect
import itertools
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    PlainValidator,
    Tag,
    ValidationError,
    field_validator,
    model_validator,
)

# Re-exported from the policy catalogue (experiments.runner reads them here).
from policies.registry import PRETRAINABLE as PRETRAINABLE
from policies.registry import RL_ALGORITHMS as RL_ALGORITHMS


def _scalar(value: Any) -> bool | int | float | str:
    if isinstance(value, bool | int | float | str):
        return value
    raise ValueError(f"a hyperparameter value is a number, true/false or text, got {value!r}")


Scalar = Annotated[bool | int | float | str, PlainValidator(_scalar)]
"""A hyperparameter value."""

SB3_KEYS = frozenset(
    {
        "learning_rate",
        "n_steps",
        "batch_size",
        "n_epochs",
        "gamma",
        "gae_lambda",
        "clip_range",
        "ent_coef",
        "vf_coef",
        "max_grad_norm",
        "normalize_advantage",
        "use_rms_prop",
        "rms_prop_eps",
    }
)
"""SB3 PPO/A2C constructor arguments a grid may set for ``ppo`` and ``a2c``."""

TUNE_METRICS = ("cost_to_goal", "ratio_to_oracle", "roi", "conversions", "goal_progress", "spend")
"""Metrics Ray Tune may optimize (means over a trial's evaluation campaigns)."""


class ConfigError(ValueError):
    """An invalid experiment file; the message names the field (``policies.0.grid.lr: ...``)."""


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SearchSpace(_Frozen):
    """A Ray Tune search space for one hyperparameter.

    ``loguniform``/``uniform`` take ``low`` < ``high`` (``loguniform`` needs ``low`` > 0),
    ``randint`` takes integers ``low`` <= value < ``high``, ``choice`` takes ``values``.
    """

    type: Literal["loguniform", "uniform", "randint", "choice"]
    low: float | None = None
    high: float | None = None
    values: list[Scalar] | None = None

    @model_validator(mode="after")
    def _bounds(self) -> SearchSpace:
        if self.type == "choice":
            if not self.values or self.low is not None or self.high is not None:
                raise ValueError("choice takes a non-empty 'values' list (and no low/high)")
            return self
        if self.values is not None or self.low is None or self.high is None:
            raise ValueError(f"{self.type} takes 'low' and 'high' (and no values)")
        if not self.low < self.high:
            raise ValueError(f"low ({self.low}) must be below high ({self.high})")
        if self.type == "loguniform" and self.low <= 0:
            raise ValueError(f"loguniform needs low > 0, got {self.low}")
        if self.type == "randint" and not (float(self.low).is_integer() and float(self.high).is_integer()):
            raise ValueError("randint takes whole-number low and high")
        return self

    def example(self) -> Scalar:
        """A value inside the space (for validating the key against the policy)."""
        if self.type == "choice":
            assert self.values is not None
            return self.values[0]
        assert self.low is not None
        return int(self.low) if self.type == "randint" else float(self.low)

    def to_tune(self) -> Any:
        """The ``ray.tune`` search-space object (imports Ray)."""
        from ray import tune

        if self.type == "choice":
            return tune.choice(list(self.values or []))
        assert self.low is not None and self.high is not None
        if self.type == "loguniform":
            return tune.loguniform(self.low, self.high)
        if self.type == "uniform":
            return tune.uniform(self.low, self.high)
        return tune.randint(int(self.low), int(self.high))


def _grid_kind(value: Any) -> str:
    if isinstance(value, Mapping | SearchSpace):
        return "SearchSpace"
    return "List" if isinstance(value, list) else "Scalar"


GridValue = Annotated[
    Annotated[SearchSpace, Tag("SearchSpace")]
    | Annotated[list[Scalar], Tag("List")]
    | Annotated[Scalar, Tag("Scalar")],
    Discriminator(_grid_kind),
]
"""A grid entry: a search space, a list of values (crossed) or one value."""


class TrainingConfig(_Frozen):
    """How a policy is trained before it is evaluated.

    Attributes:
        campaigns: learning bandits: simulated warm-start campaigns (training seeds
            ``1_000_000 + 1_000 * seed + i``, far from the evaluation seeds); 0: learn only
            during the evaluation campaign. Ignored by non-learning policies.
        timesteps: ``ppo``/``a2c``: environment steps (campaign iterations) to train.
        n_customers: population of the training world (default: the evaluation's).
    """

    campaigns: Annotated[int, Field(ge=0, le=1000)] = 0
    timesteps: Annotated[int, Field(ge=1)] = 2_000
    n_customers: Annotated[int, Field(ge=100)] | None = None


class PolicyConfig(_Frozen):
    """One policy of the experiment and its hyperparameter grid.

    Attributes:
        name: a policy name of :data:`policies.POLICY_NAMES` (``fixed:ARM`` with its arm).
        grid: hyperparameter -> value, list of values (crossed) or search space (Ray Tune).
            Keys are constructor arguments of the policy, or SB3 arguments for ``ppo``/``a2c``.
        training: overrides the experiment's ``training`` for this policy.
    """

    name: Annotated[str, Field(min_length=1)]
    grid: dict[str, GridValue] = Field(default_factory=dict)
    training: TrainingConfig | None = None

    @field_validator("name")
    @classmethod
    def _no_inline_params(cls, v: str) -> str:
        if ":" in v and not v.startswith("fixed:"):
            raise ValueError(f"put hyperparameters in 'grid', not in the name ({v!r})")
        return v

    @field_validator("grid")
    @classmethod
    def _non_empty_lists(cls, v: dict[str, GridValue]) -> dict[str, GridValue]:
        for key, value in v.items():
            if isinstance(value, list) and not value:
                raise ValueError(f"{key}: an empty list gives no trial")
        return v

    @property
    def is_search(self) -> bool:
        """Whether any hyperparameter is a search space (the policy is tuned with Ray Tune)."""
        return any(isinstance(v, SearchSpace) for v in self.grid.values())

    def grid_points(self) -> list[dict[str, Scalar]]:
        """The crossed grid (search-space keys left out): one dict per trial."""
        keys = [k for k, v in self.grid.items() if not isinstance(v, SearchSpace)]
        lists = [_as_list(self.grid[k]) for k in keys]
        return [dict(zip(keys, combo, strict=True)) for combo in itertools.product(*lists)]


def _as_list(value: GridValue) -> list[Scalar]:
    if isinstance(value, list):
        return value
    assert not isinstance(value, SearchSpace)
    return [value]


class EvaluationConfig(_Frozen):
    """The evaluation protocol: the campaigns each trained policy is judged on.

    Goal, budget and customers per iteration default to the scenario's, scaled by
    ``n_customers / population.size`` when the population is smaller (as ``Campaign-v0`` does);
    explicit values are taken as given.

    Attributes:
        seeds: campaign seeds every trial is evaluated on; ``None``: one campaign with the
            trial's own seed (so the seeds axis of the experiment is the campaign seed too).
        goal_metric: ``conversions`` or ``revenue`` (default: the scenario's).
        goal_target: goal amount.
        budget: cost threshold in dollars.
        n_customers: population size of the evaluation world.
        customers_per_iteration: candidates per iteration.
        max_iterations: most iterations per campaign.
        oracle: the yardstick every campaign is compared with (regret, ratio to the oracle),
            run with the same campaign seed: ``oracle`` or ``oracle:key=value,...`` (e.g.
            ``oracle:pace=1.5`` when the default oracle, which paces its spend to reach the
            goal in the last iteration, misses it by a hair).
    """

    seeds: list[Annotated[int, Field(ge=0)]] | None = None
    goal_metric: Literal["conversions", "revenue"] | None = None
    goal_target: Annotated[float, Field(gt=0)] | None = None
    budget: Annotated[float, Field(gt=0)] | None = None
    n_customers: Annotated[int, Field(ge=100)] | None = None
    customers_per_iteration: Annotated[int, Field(ge=1)] | None = None
    max_iterations: Annotated[int, Field(ge=1, le=10_000)] | None = None
    oracle: Annotated[str, Field(pattern=r"^oracle(:.*)?$")] = "oracle"

    @field_validator("seeds")
    @classmethod
    def _some_seeds(cls, v: list[int] | None) -> list[int] | None:
        if v is not None and (not v or len(set(v)) != len(v)):
            raise ValueError("give at least one seed, each once")
        return v


class TrackingConfig(_Frozen):
    """Where runs are tracked.

    Attributes:
        experiment: MLflow experiment name (default: the experiment's ``name``).
        tracking_uri: MLflow tracking URI; ``MLFLOW_TRACKING_URI`` wins when set. Local stores
            must be ``sqlite:///...`` (a ``file:`` store is refused).
        artifact_location: where a new MLflow experiment keeps its artifacts.
    """

    experiment: str | None = None
    tracking_uri: str = "sqlite:///mlruns/mlflow.db"
    artifact_location: str = "mlruns/"

    @field_validator("tracking_uri")
    @classmethod
    def _no_file_store(cls, v: str) -> str:
        if v.startswith("file:") or "://" not in v:
            raise ValueError(
                f"{v!r}: use a database store such as sqlite:///mlruns/mlflow.db or an http(s):// "
                "tracking server (file stores are not supported)"
            )
        return v


class TuneConfig(_Frozen):
    """Ray Tune settings for policies whose grid has a search space.

    Each Tune trial is one hyperparameter sample; it runs the experiment's seeds one after the
    other and reports the running mean of ``metric`` after each, so the scheduler can stop a
    poor sample after fewer seeds (``asha``/``median``; ``fifo`` never stops early).

    Attributes:
        metric: what to optimize (a failed campaign's ``cost_to_goal`` counts as its spend
            extrapolated to the goal, at least the budget).
        mode: ``min`` or ``max``.
        num_samples: samples drawn from the search space (crossed with any list values).
        scheduler: ``asha``, ``median`` or ``fifo``.
        grace_period: seeds a sample runs before the scheduler may stop it.
        seed: seed of the search-space sampler.
    """

    metric: Literal["cost_to_goal", "ratio_to_oracle", "roi", "conversions", "goal_progress", "spend"] = (
        "cost_to_goal"
    )
    mode: Literal["min", "max"] = "min"
    num_samples: Annotated[int, Field(ge=1, le=10_000)] = 4
    scheduler: Literal["asha", "median", "fifo"] = "asha"
    grace_period: Annotated[int, Field(ge=1)] = 1
    seed: int = 0


class ExperimentConfig(_Frozen):
    """A whole experiment file.

    Attributes:
        name: experiment name (also the MLflow experiment unless ``tracking.experiment``).
        description: free text.
        scenarios: built-in scenario names or YAML paths.
        policies: the policies and their grids.
        seeds: trial seeds (training and policy seed; the campaign seed unless
            ``evaluation.seeds``).
        training: default training budget.
        evaluation: the evaluation protocol.
        tracking: MLflow settings.
        tune: Ray Tune settings (used by policies with search spaces).
    """

    name: Annotated[str, Field(min_length=1, pattern=r"^[A-Za-z0-9_.\-]+$")]
    description: str = ""
    scenarios: Annotated[list[str], Field(min_length=1)]
    policies: Annotated[list[PolicyConfig], Field(min_length=1)]
    seeds: Annotated[list[Annotated[int, Field(ge=0)]], Field(min_length=1)] = Field(
        default_factory=lambda: [0]
    )
    training: TrainingConfig = TrainingConfig()
    evaluation: EvaluationConfig = EvaluationConfig()
    tracking: TrackingConfig = TrackingConfig()
    tune: TuneConfig = TuneConfig()

    @field_validator("seeds")
    @classmethod
    def _distinct(cls, v: list[int]) -> list[int]:
        if len(set(v)) != len(v):
            raise ValueError("each seed once")
        return v

    @property
    def experiment_name(self) -> str:
        """The MLflow experiment name."""
        return self.tracking.experiment or self.name

    def training_for(self, policy: PolicyConfig) -> TrainingConfig:
        """The training budget of one policy."""
        return policy.training or self.training

    def n_trials(self) -> int:
        """Grid trials (search-space policies count ``num_samples`` samples per grid point)."""
        per_seed = sum(
            len(p.grid_points()) * (self.tune.num_samples if p.is_search else 1) for p in self.policies
        )
        return len(self.scenarios) * per_seed * len(self.seeds)


def _loc(loc: tuple[int | str, ...]) -> str:
    # pydantic puts union-member names (e.g. "SearchSpace", "list[...]") into the location.
    parts = [str(p) for p in loc if not (isinstance(p, str) and ("[" in p or p[:1].isupper()))]
    return ".".join(parts)


def _format(err: ValidationError) -> str:
    seen: dict[str, str] = {}
    for e in err.errors():
        key = _loc(tuple(e["loc"]))
        seen.setdefault(key, e["msg"].removeprefix("Value error, "))
    return "; ".join(f"{k}: {v}" if k else v for k, v in seen.items())


def _check_names(cfg: ExperimentConfig) -> None:
    """Unknown scenarios, policies and hyperparameters, with the field that names them."""
    from policies.registry import POLICY_CLASSES, UnknownPolicyError, make_policy
    from simulators import ScenarioError, Simulator, load_scenario

    sims = []
    for i, name in enumerate(cfg.scenarios):
        try:
            sims.append(Simulator(load_scenario(name), n_customers=1))
        except ScenarioError as err:
            raise ConfigError(f"scenarios.{i}: {err}") from None
    for i, pol in enumerate(cfg.policies):
        family = pol.name.partition(":")[0]
        if family not in POLICY_CLASSES:
            raise ConfigError(
                f"policies.{i}.name: unknown policy {pol.name!r}; known: {sorted(POLICY_CLASSES)}"
            )
        if family == "fixed" and pol.grid:
            raise ConfigError(f"policies.{i}.grid: fixed:ARM takes no hyperparameters")
        for key, value in pol.grid.items():
            example = value.example() if isinstance(value, SearchSpace) else _as_list(value)[0]
            if family in RL_ALGORITHMS:
                if key not in SB3_KEYS:
                    raise ConfigError(
                        f"policies.{i}.grid.{key}: not a {family} training hyperparameter; known: "
                        f"{sorted(SB3_KEYS)}"
                    )
                continue
            cls = POLICY_CLASSES[family]
            known = [
                k
                for k in inspect.signature(cls.__init__).parameters
                if k not in ("self", "simulator", "seed")
            ]
            if key not in known:
                raise ConfigError(
                    f"policies.{i}.grid.{key}: {family} has no hyperparameter {key!r}; known: {known}"
                )
            values = [example] if isinstance(value, SearchSpace) else _as_list(value)
            for v in values:
                for sim in sims:
                    try:
                        make_policy(policy_name(pol.name, {key: v}), sim)
                    except UnknownPolicyError as err:
                        raise ConfigError(f"policies.{i}.grid.{key}: {err}") from None
                    except (TypeError, ValueError) as err:
                        raise ConfigError(f"policies.{i}.grid.{key}: {v!r}: {err}") from None
        if family not in RL_ALGORITHMS:
            for sim in sims:
                try:
                    make_policy(pol.name, sim)
                except UnknownPolicyError as err:
                    raise ConfigError(f"policies.{i}.name: {err}") from None
    for sim in sims:
        try:
            make_policy(cfg.evaluation.oracle, sim)
        except UnknownPolicyError as err:
            raise ConfigError(f"evaluation.oracle: {err}") from None
    if cfg.tune.metric == "ratio_to_oracle" and cfg.tune.mode != "min":
        raise ConfigError("tune.mode: ratio_to_oracle is minimized (mode: min)")


def policy_name(name: str, params: Mapping[str, Scalar]) -> str:
    """The CLI name of a policy with hyperparameters: ``epsilon_greedy:epsilon=0.05``.

    ``ppo``/``a2c`` keep their bare name (their grid goes to the SB3 trainer).
    """
    if not params or name in RL_ALGORITHMS:
        return name
    return name + ":" + ",".join(f"{k}={_text(v)}" for k, v in params.items())


def _text(v: Scalar) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    return repr(v) if isinstance(v, float) else str(v)


def parse_config(data: Any, source: str = "<config>") -> ExperimentConfig:
    """Validate an experiment mapping (a parsed YAML document).

    Raises:
        ConfigError: a wrong key or value, or an unknown scenario, policy or hyperparameter;
            the message starts with ``source`` and names the field.
    """
    if not isinstance(data, Mapping):
        raise ConfigError(f"{source}: an experiment file is a mapping (name, scenarios, policies, ...)")
    try:
        cfg = ExperimentConfig.model_validate(dict(data))
    except ValidationError as err:
        raise ConfigError(f"{source}: {_format(err)}") from None
    try:
        _check_names(cfg)
    except ConfigError as err:
        raise ConfigError(f"{source}: {err}") from None
    return cfg


def load_config(path: str | Path) -> ExperimentConfig:
    """Read and validate an experiment YAML file.

    Args:
        path: the file.

    Raises:
        ConfigError: missing file, invalid YAML, or an invalid experiment (the message names the
            field, e.g. ``policies.0.grid.lr: ...``).
    """
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"{p}: experiment file not found")
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8"))
    except yaml.YAMLError as err:
        raise ConfigError(f"{p}: not valid YAML: {err}") from None
    return parse_config(data, str(p))


def builtin_configs() -> dict[str, Path]:
    """The shipped experiment files by stem (``experiments/configs/*.yaml``)."""
    folder = Path(__file__).parent / "configs"
    return {p.stem: p for p in sorted(folder.glob("*.yaml"))}
