"""The benchmark's aggregation: yardstick oracle, ratios and the target check."""

from __future__ import annotations

from experiments.benchmark import BenchmarkResult, RunResult, from_runs, to_markdown


def _run(policy: str, seed: int, cost: float | None) -> RunResult:
    return RunResult(
        scenario="s",
        policy=policy,
        seed=seed,
        goal_reached=cost is not None,
        cost_to_goal=cost,
        spend=cost or 50.0,
        conversions=10,
        revenue=1.0,
        iterations=3,
        seconds=0.1,
    )


def _result() -> BenchmarkResult:
    runs = []
    for seed in range(3):
        runs += [
            _run("oracle", seed, 200.0),
            _run("oracle:reserve_aware=true", seed, 100.0 + seed),  # cheaper: the yardstick
            _run("oracle:cheap_but_fails", seed, 10.0 if seed else None),  # not on every seed
            _run("thompson", seed, 150.0),
            _run("budgeted_ts", seed, 120.0 if seed < 2 else None),
            _run("explore_then_commit", seed, None),
            _run("vw", seed, 300.0),
            _run("feature_oracle", seed, 125.0),
        ]
    return from_runs(runs, {"s": {0: 80.0, 1: 90.0, 2: None}})


def test_the_yardstick_is_the_most_reliable_then_cheapest_oracle() -> None:
    res = _result()
    assert res.yardstick == {"s": "oracle:reserve_aware=true"}
    rows = {r.policy: r for r in res.rows}
    assert rows["oracle:reserve_aware=true"].ratio_to_oracle == 1.0
    assert rows["oracle"].ratio_to_oracle == 200.0 / 101.0
    assert rows["explore_then_commit"].ratio_to_oracle is None and rows["explore_then_commit"].failed == 3


def test_target_check_picks_the_most_reliable_adaptive_policy_and_compares_it() -> None:
    (check,) = _result().to_dict()["targets"]
    # thompson reaches the goal on every seed; budgeted_ts is cheaper but fails once.
    assert check["best_adaptive"] == "thompson" and check["goal_reached_rate"] == 1.0
    assert check["ratio_to_oracle"] == round(150.0 / 101.0, 3)
    assert check["ratio_to_explore_then_commit"] == {"explore_then_commit": "never reached the goal"}
    assert check["ratio_to_peers"] == {"vw": 0.5}
    assert check["ratio_to_feature_oracle"] == round(150.0 / 125.0, 3)
    assert check["lp_bound"] == 85.0  # the median of the finite bounds


def test_round_trip_through_json_and_markdown() -> None:
    res = _result()
    again = BenchmarkResult.from_dict(res.to_dict())
    assert again.rows == res.rows and again.yardstick == res.yardstick and again.lp_bound == res.lp_bound
    md = to_markdown(res)
    assert (
        md.startswith("| scenario")
        and "`oracle:reserve_aware=true`" in md
        and "best adaptive `thompson`" in md
        and "lp_bound" in md
        and "to feature_oracle 1.20x" in md
    )
