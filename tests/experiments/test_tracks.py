"""The benchmark's tracks (cold-start, pretrained, sim-to-real) and the diagnostic ladder."""

from __future__ import annotations

from pathlib import Path

import pytest

from experiments.benchmark import TRACKS, BenchmarkResult, evaluation_worlds, expand_policies, run_benchmark
from experiments.ladder import ladder_steps, run_ladder
from policies.registry import POLICY_NAMES
from simulators import load_scenario

TINY = str(Path(__file__).parents[1] / "envs" / "tiny.yaml")


def test_sim_to_real_evaluates_on_perturbed_worlds_it_never_saw() -> None:
    sc = load_scenario(TINY)
    worlds = evaluation_worlds(sc, "sim-to-real", perturbations=2, strength=0.3)
    assert [w.name for w in worlds] == [f"{sc.name}~perturbed-0", f"{sc.name}~perturbed-1"]
    assert worlds[0] != worlds[1] and all(w.default_goal == sc.default_goal for w in worlds)
    assert evaluation_worlds(sc, "pretrained") == [sc] == evaluation_worlds(sc, "cold-start")


def test_tracks_run_and_say_which_they_are() -> None:
    trained: list[tuple[str, int]] = []
    res = run_benchmark(
        [TINY],
        ["oracle", "thompson"],
        seeds=1,
        track="sim-to-real",
        train_campaigns=1,
        perturbations=2,
        on_train=lambda scenario, policy, i, report: trained.append((policy, i)),
    )
    assert trained == [("thompson", 0)]  # trained once, on the built-in world; the oracle never
    data = res.to_dict()
    assert data["track"] == "sim-to-real"
    assert sorted(data["lp_bound"]) == ["tiny~perturbed-0", "tiny~perturbed-1"]
    assert {(r["scenario"], r["policy"]) for r in data["rows"]} == {
        (w, p) for w in ("tiny~perturbed-0", "tiny~perturbed-1") for p in ("oracle", "thompson")
    }
    assert {t["scenario"] for t in data["targets"]} == {"tiny~perturbed-0", "tiny~perturbed-1"}
    assert BenchmarkResult.from_dict(data).track == "sim-to-real"


def test_pretraining_changes_what_the_learner_does() -> None:
    cold = run_benchmark([TINY], ["thompson"], seeds=2, track="cold-start")
    warm = run_benchmark([TINY], ["thompson"], seeds=2, track="pretrained", train_campaigns=2)
    assert [(r.conversions, r.spend) for r in cold.runs] != [(r.conversions, r.spend) for r in warm.runs]


def test_unknown_track_is_refused() -> None:
    with pytest.raises(ValueError, match="track must be one of"):
        run_benchmark([TINY], ["oracle"], seeds=1, track="warm")
    assert TRACKS == ("cold-start", "pretrained", "sim-to-real")


def test_all_expands_to_the_catalogue_once() -> None:
    names = expand_policies(["oracle", "all"])
    assert names[0] == "oracle" and len(names) == len(set(names))
    assert set(names) == set(POLICY_NAMES) - {"fixed"}


def test_ladder_rungs_run_the_same_campaigns() -> None:
    res = run_ladder([TINY], 1, rungs=("oracle", "estimation", "exploration", "pacing"), teach_campaigns=1)
    steps = ladder_steps(res)
    assert [s["rung"] for s in steps] == ["oracle", "estimation", "exploration", "pacing"]
    assert res.yardstick.get("tiny") in (None, "oracle")
    assert all(s["ratio_to_oracle"] is None or s["ratio_to_oracle"] > 0 for s in steps)
    with pytest.raises(ValueError, match="unknown rungs"):
        run_ladder([TINY], 1, rungs=("oracle", "magic"))
