"""A/B reports and round comparisons (agent/comparison.py): the statistics on hand examples and
against scipy, known effects found and null effects not (after correction) across seeds, the
loaders of our campaign logs and of external logs, the plots."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from agent.comparison import (
    Outcomes,
    ReportError,
    ab_report,
    benjamini_hochberg,
    format_ab,
    format_rounds,
    holm,
    load_outcomes,
    newcombe_interval,
    rate_test,
    rounds_report,
    welch,
    wilson_interval,
)
from agent.plots import plot_ab, plot_rounds

HILLSTROM = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "hillstrom.csv"


def _table(rates: dict[str, float], n: int, seed: int, revenue: dict[str, float] | None = None) -> Outcomes:
    """``n`` decisions per arm, conversions Bernoulli(rate), revenue per conversion log-normal."""
    rng = np.random.default_rng(seed)
    arms = np.repeat(np.array(list(rates), dtype=np.str_), n)
    p = np.repeat(np.array(list(rates.values())), n)
    conv = (rng.random(p.size) < p).astype(float)
    mean = np.repeat(np.array([(revenue or {}).get(a, 100.0) for a in rates]), n)
    rev = conv * mean * rng.lognormal(-0.125, 0.5, p.size)
    cost = np.where(arms == "no_contact", 0.0, 0.01)
    return Outcomes(
        arm=arms, policy=np.full(p.size, "random", dtype=np.str_), conversion=conv, revenue=rev, cost=cost
    )


# -- the statistics on hand examples -----------------------------------------------------------


def test_holm_and_bh_on_a_hand_example() -> None:
    p = [0.01, 0.04, 0.03, 0.005]
    # Holm: sorted 0.005, 0.01, 0.03, 0.04 times 4, 3, 2, 1 = 0.02, 0.03, 0.06, 0.04; running max.
    assert holm(p) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    # BH: p * 4 / rank = 0.02, 0.02, 0.04, 0.04; running min from the top.
    assert benjamini_hochberg(p) == pytest.approx([0.02, 0.04, 0.04, 0.02])
    assert holm([0.5, 0.6]) == pytest.approx([1.0, 1.0])  # clipped at 1
    assert benjamini_hochberg([0.5, 0.6]) == pytest.approx([0.6, 0.6])
    assert holm([]) == [] and benjamini_hochberg([]) == []
    assert holm([0.02]) == [0.02] and benjamini_hochberg([0.02]) == [0.02]


def test_holm_is_never_below_bh_and_bh_never_below_raw() -> None:
    rng = np.random.default_rng(0)
    for _ in range(50):
        p = rng.random(rng.integers(1, 12)) ** 3
        h, b = np.array(holm(p)), np.array(benjamini_hochberg(p))
        assert np.all(h >= b - 1e-12) and np.all(b >= p - 1e-12) and np.all(h <= 1)


def test_wilson_and_newcombe_on_published_values() -> None:
    lo, hi = wilson_interval(0, 10)
    assert lo == 0.0 and hi == pytest.approx(0.2775, abs=1e-4)
    lo, hi = wilson_interval(5, 10)
    assert (lo, hi) == pytest.approx((0.2366, 0.7634), abs=1e-4)
    assert wilson_interval(10, 10)[1] == 1.0 and wilson_interval(0, 0) == (0.0, 1.0)
    # Newcombe (1998), example (a): 56/70 vs 48/80, difference 0.2, method 10: 0.0524 to 0.3339.
    lo, hi = newcombe_interval(56, 70, 48, 80)
    assert (lo, hi) == pytest.approx((0.0524, 0.3339), abs=1e-4)


def test_tests_agree_with_scipy() -> None:
    rng = np.random.default_rng(1)
    x1, x0 = rng.normal(1.0, 2.0, 300), rng.normal(0.6, 1.0, 500)
    d, lo, hi, p = welch(x1, x0)
    ref = stats.ttest_ind(x1, x0, equal_var=False)
    assert p == pytest.approx(ref.pvalue) and d == pytest.approx(x1.mean() - x0.mean())
    assert lo < d < hi
    # The pooled z-test is the uncorrected chi-square test of the 2x2 table.
    table = [[60, 940], [40, 960]]
    chi = stats.chi2_contingency(table, correction=False)
    assert rate_test(60, 1000, 40, 1000) == pytest.approx(chi.pvalue)
    # Small cells: Fisher's exact test.
    assert rate_test(3, 20, 0, 20) == pytest.approx(stats.fisher_exact([[3, 17], [0, 20]])[1])


# -- known effects found, null effects not -----------------------------------------------------


def test_a_known_effect_is_found_across_seeds() -> None:
    rates = {"no_contact": 0.05, "email/a/none": 0.05, "email/b/none": 0.08}
    found = 0
    for seed in range(40):
        rep = ab_report(_table(rates, 3000, seed))
        assert rep.control == "no_contact"
        c = rep.comparison("email/b/none")
        found += c.significant
        assert c.low <= c.difference <= c.high
    assert found >= 36  # power about 0.97 at n = 3000 per arm


def test_null_effects_stay_below_alpha_after_correction_across_seeds() -> None:
    rates = {"no_contact": 0.05, **{f"email/c{k}/none": 0.05 for k in range(5)}}
    corrected = {"holm": 0, "bh": 0}
    raw = 0
    seeds = 120
    for seed in range(seeds):
        t = _table(rates, 2000, 1000 + seed)
        for corr in ("holm", "bh"):
            rep = ab_report(t, correction=corr)  # type: ignore[arg-type]
            corrected[corr] += any(c.significant for c in rep.comparisons if c.metric == "conversion_rate")
        raw += any(c.p_value < 0.05 for c in rep.comparisons if c.metric == "conversion_rate")
    # The family-wise error of 5 tests is about 0.23 uncorrected, at most 0.05 with Holm (and BH
    # under the global null); 120 seeds: allow binomial noise (P(X > 12 | p = 0.05) < 0.01).
    assert corrected["holm"] <= 12 and corrected["bh"] <= 12
    assert raw > corrected["holm"]
    # Coverage of the Newcombe interval under the null: the true difference (0) is inside ~95%.
    covered = sum(
        c.low <= 0.0 <= c.high
        for seed in range(40)
        for c in ab_report(_table(rates, 2000, 5000 + seed)).comparisons
        if c.metric == "conversion_rate"
    )
    assert covered >= 0.9 * 40 * 5


def test_a_revenue_effect_is_found_by_welch() -> None:
    rates = {"no_contact": 0.05, "email/a/none": 0.05}
    hits = sum(
        ab_report(_table(rates, 4000, s, revenue={"email/a/none": 160.0}))
        .comparison("email/a/none", "revenue_per_customer")
        .significant
        for s in range(20)
    )
    assert hits >= 15


# -- groups, control, the report's forms -------------------------------------------------------


def test_groups_by_channel_content_offer_and_policy() -> None:
    arms = np.array(["no_contact", "email/a/none", "sms/a/pct10", "sms/b/none"] * 50, dtype=np.str_)
    n = arms.size
    t = Outcomes(
        arm=arms,
        policy=np.array(["p1", "p2"] * (n // 2), dtype=np.str_),
        conversion=np.tile([0.0, 1.0, 0.0, 1.0], 50),
        revenue=np.tile([0.0, 10.0, 0.0, 20.0], 50),
        cost=np.tile([0.0, 0.001, 0.02, 0.02], 50),
    )
    assert [g.name for g in ab_report(t, "channel").groups] == ["no_contact", "email", "sms"]
    assert [g.name for g in ab_report(t, "offer").groups] == ["no_contact", "none", "pct10"]
    content = ab_report(t, "content")
    assert content.group("b").n == 50 and content.group("a").n == 100
    pol = ab_report(t, "policy")
    assert pol.control == "p1"  # no no-contact group: the largest (tie: the first name)
    assert ab_report(t, "policy", control="p2").control == "p2"
    g = ab_report(t, "arm").group("sms/b/none")
    assert g.conversions == 50 and g.revenue == pytest.approx(1000.0)
    assert g.net_value == pytest.approx(1000.0 * 0.3 - 50 * 0.02) and g.cost_per_conversion == pytest.approx(
        0.02
    )
    with pytest.raises(ReportError, match="control"):
        ab_report(t, control="nobody")
    with pytest.raises(ReportError, match="by"):
        ab_report(t, "colour")
    with pytest.raises(ReportError, match="alpha"):
        ab_report(t, alpha=0.0)
    with pytest.raises(ReportError, match="no decisions"):
        ab_report(t.select(np.zeros(n, bool)))


def test_report_forms_are_json_and_text_and_png(tmp_path: Path) -> None:
    import json

    rep = ab_report(_table({"no_contact": 0.05, "email/a/none": 0.07}, 2000, 0))
    d = rep.to_dict()
    json.dumps(d, allow_nan=False)
    assert d["kind"] == "ab" and len(d["groups"]) == 2 and len(d["comparisons"]) == 3
    assert "email/a/none" in format_ab(rep)
    png = plot_ab(rep, tmp_path / "ab.png")
    assert png.read_bytes()[:4] == b"\x89PNG"


# -- rounds ------------------------------------------------------------------------------------


def test_rounds_finds_a_better_round_and_not_a_same_one(tmp_path: Path) -> None:
    before = _table({"no_contact": 0.05, "email/a/none": 0.06}, 4000, 0)
    same = _table({"no_contact": 0.05, "email/a/none": 0.06}, 4000, 1)
    better = _table({"no_contact": 0.05, "email/a/none": 0.10}, 4000, 2)
    up = rounds_report(before, better)
    d = up.delta("conversion_rate")
    assert d.p_value is not None and d.p_value < 0.01
    assert d.low is not None and d.high is not None and d.low <= 0.02 <= d.high  # truth: +2 points overall
    assert up.delta("conversions").difference == up.after.conversions - up.before.conversions
    arm = {g.group: g for g in up.groups}
    assert arm["email/a/none"].significant and not arm["no_contact"].significant
    cpc = up.delta("cost_per_conversion")
    assert cpc.difference is not None and cpc.difference < 0  # more conversions for the same sends
    flat = rounds_report(before, same)
    assert not any(g.significant for g in flat.groups)
    assert "cost_per_conversion" in format_rounds(flat)
    assert plot_rounds(up, tmp_path / "r.png").read_bytes()[:4] == b"\x89PNG"
    with pytest.raises(ReportError, match="before"):
        rounds_report(before.select(np.zeros(len(before), bool)), same)


# -- loaders -----------------------------------------------------------------------------------


def test_campaign_export_loads_with_the_campaigns_totals(tmp_path: Path) -> None:
    from agent import Campaign, CampaignSpec, Goal
    from agent.export import export_logs
    from policies import make_policy
    from simulators import Simulator, load_scenario

    sim = Simulator(load_scenario("retail"), n_customers=3000)
    spec = CampaignSpec(goal=Goal(target=60), budget=60, customers_per_iteration=800, max_iterations=4)
    camp = Campaign(spec, sim, make_policy("random", sim, seed=0), seed=0)
    camp.run()
    export_logs(camp, tmp_path / "log")
    t = load_outcomes(tmp_path / "log")
    rep = camp.report()
    assert len(t) == len(camp.log) == rep.sends
    assert float(t.cost.sum()) == pytest.approx(rep.spend, abs=1e-6)
    assert int(np.count_nonzero(t.conversion)) <= rep.conversions
    assert float(t.revenue.sum()) <= rep.revenue + 1e-6
    assert set(t.policy.tolist()) == {"random"}
    assert load_outcomes(tmp_path / "log" / "decisions.parquet").arm.tolist() == t.arm.tolist()
    ab = ab_report(t, "channel")
    assert sum(g.n for g in ab.groups) == len(t)
    with pytest.raises(ReportError, match=r"decisions\.parquet"):
        load_outcomes(tmp_path)  # a folder without the two files is read as... nothing
    with pytest.raises(FileNotFoundError):
        load_outcomes(tmp_path / "none.csv")


def test_hillstrom_emails_beat_no_email() -> None:
    if not HILLSTROM.is_file():
        pytest.skip(f"Hillstrom data file not found at {HILLSTROM} (see ../shared/data/README.md)")
    t = load_outcomes(HILLSTROM)
    rep = ab_report(t)
    assert rep.control == "no_email"
    assert [g.n for g in rep.groups] == [21_306, 21_307, 21_387]
    assert rep.group("mens_email").rate == pytest.approx(0.01253, abs=5e-5)
    for arm in ("mens_email", "womens_email"):
        assert rep.comparison(arm).significant and rep.comparison(arm, "revenue_per_customer").significant
    assert math.isclose(rep.comparison("mens_email").difference, 0.01253 - 0.00573, abs_tol=1e-4)


def test_importing_the_comparison_loads_no_heavy_dependency() -> None:
    """scipy, matplotlib and pyarrow load on first use: the agent stays light to import."""
    import subprocess
    import sys

    heavy = ("scipy", "matplotlib", "pyarrow", "gymnasium", "torch", "experiments")
    code = f"import sys, agent, agent.comparison; print(' '.join(m for m in {heavy!r} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
