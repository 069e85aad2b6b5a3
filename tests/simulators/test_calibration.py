"""The ``hillstrom`` scenario against the real Hillstrom file (skipped when the file is absent)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import yaml

from simulators import Simulator, load_scenario
from simulators.calibration import (
    ARM_NAMES,
    ARM_TOLERANCE,
    HISTORY_EDGES,
    METRICS,
    CalibrationReport,
    CustomerFeatures,
    HillstromData,
    calibration_report,
    fit_hillstrom,
    format_calibration,
    hillstrom_skeleton,
    load_hillstrom,
    render_hillstrom_yaml,
)
from simulators.scenario import parse_scenario
from simulators.types import EventKind

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "hillstrom.csv"


@pytest.fixture(scope="module")
def data() -> HillstromData:
    if not DATA.is_file():
        pytest.skip(f"Hillstrom data file not found at {DATA} (see ../shared/data/README.md)")
    return load_hillstrom(DATA)


@pytest.fixture(scope="module")
def report(data: HillstromData) -> CalibrationReport:
    return calibration_report(DATA, seeds=(0, 1, 2))


@pytest.fixture(scope="module")
def population() -> CustomerFeatures:
    sim = Simulator(load_scenario("hillstrom"))
    sim.reset(seed=0)
    return CustomerFeatures.of_simulator(sim)


# -- the file -------------------------------------------------------------------------------


def test_load_matches_the_readme_per_arm_figures(data: HillstromData) -> None:
    assert len(data) == 64_000
    readme = {  # arm: rows, visit, conversion, spend per customer (../shared/data/README.md)
        1: (21_307, 0.1828, 0.01253, 1.423),
        2: (21_387, 0.1514, 0.00884, 1.077),
        0: (21_306, 0.1062, 0.00573, 0.653),
    }
    for arm, (rows, visit, conv, spend) in readme.items():
        m = data.arm == arm
        assert int(m.sum()) == rows
        assert data.visit[m].mean() == pytest.approx(visit, abs=5e-5)
        assert data.conversion[m].mean() == pytest.approx(conv, abs=5e-6)
        assert data.spend[m].mean() == pytest.approx(spend, abs=5e-4)


def test_load_rejects_a_missing_file(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_hillstrom(tmp_path / "nope.csv")


# -- per arm: within 5% of the file, on sampled responses ----------------------------------


@pytest.mark.parametrize("metric", METRICS)
@pytest.mark.parametrize("arm", ARM_NAMES)
def test_per_arm_within_five_percent(report: CalibrationReport, arm: str, metric: str) -> None:
    row = report.row("all", arm, metric)
    assert abs(row.simulator / row.data - 1.0) <= ARM_TOLERANCE, row
    assert abs(row.expected / row.data - 1.0) <= ARM_TOLERANCE, row


def test_every_visit_and_conversion_row_within_tolerance(report: CalibrationReport) -> None:
    bad = [r for r in report.rows if r.metric != "spend" and not r.within_tolerance]
    assert not bad, format_calibration(report)


# -- group differences ------------------------------------------------------------------------


def _lift(
    report: CalibrationReport, group: str, arm: str, base: str, metric: str
) -> tuple[float, float, float]:
    """(data difference, simulator difference, standard error of the data difference)."""
    a, b = report.row(group, arm, metric), report.row(group, base, metric)
    return a.data - b.data, a.simulator - b.simulator, math.hypot(a.se_data, b.se_data)


@pytest.mark.parametrize(
    ("group", "arm", "base", "metric"),
    [
        # Men-only buyers respond much more to the men's e-mail than to the women's ...
        ("mens_only", "mens_email", "womens_email", "visit"),
        ("mens_only", "mens_email", "womens_email", "conversion"),
        # ... women-only buyers about equally to both ...
        ("womens_only", "mens_email", "womens_email", "visit"),
        ("womens_only", "mens_email", "womens_email", "conversion"),
        # ... buyers of both lines most to the men's e-mail.
        ("mens_and_womens", "mens_email", "womens_email", "visit"),
        ("mens_and_womens", "mens_email", "womens_email", "conversion"),
        # E-mail lifts per group.
        ("mens_only", "mens_email", "no_email", "visit"),
        ("womens_only", "womens_email", "no_email", "visit"),
        ("mens_and_womens", "mens_email", "no_email", "visit"),
        ("new", "mens_email", "no_email", "visit"),
        ("new", "womens_email", "no_email", "visit"),
        ("returning", "mens_email", "no_email", "visit"),
        ("returning", "womens_email", "no_email", "visit"),
        ("new", "mens_email", "no_email", "conversion"),
        ("returning", "mens_email", "no_email", "conversion"),
    ],
)
def test_group_differences_within_three_standard_errors(
    report: CalibrationReport, group: str, arm: str, base: str, metric: str
) -> None:
    data_diff, sim_diff, se = _lift(report, group, arm, base, metric)
    assert abs(sim_diff - data_diff) <= 3.0 * se, (group, arm, base, metric, data_diff, sim_diff)


def test_mens_only_prefer_the_mens_email_and_womens_only_do_not(report: CalibrationReport) -> None:
    mens_gap = _lift(report, "mens_only", "mens_email", "womens_email", "visit")[1]
    womens_gap = _lift(report, "womens_only", "mens_email", "womens_email", "visit")[1]
    assert mens_gap > 0.04  # the file: 5.8 points
    assert abs(womens_gap) < 0.01  # the file: -0.3 points


@pytest.mark.parametrize("arm", ARM_NAMES)
@pytest.mark.parametrize("metric", ["visit", "conversion"])
def test_returning_vs_new_ratio(report: CalibrationReport, arm: str, metric: str) -> None:
    new, ret = report.row("new", arm, metric), report.row("returning", arm, metric)
    data_ratio, sim_ratio = ret.data / new.data, ret.simulator / new.simulator
    rel_se = math.hypot(new.se_data / new.data, ret.se_data / ret.data)
    assert abs(math.log(sim_ratio / data_ratio)) <= max(3.0 * rel_se, 0.05), (
        arm,
        metric,
        data_ratio,
        sim_ratio,
    )


# -- the population's features --------------------------------------------------------------


def _share_gap(a: np.ndarray, b: np.ndarray, k: int) -> float:
    pa = np.bincount(a, minlength=k) / a.size
    pb = np.bincount(b, minlength=k) / b.size
    return float(np.abs(pa - pb).max())


def test_feature_marginals_match_the_file(data: HillstromData, population: CustomerFeatures) -> None:
    real, sim = data.features(), population
    assert sim.new.size == 64_000
    assert abs(sim.new.mean() - real.new.mean()) < 0.01
    assert abs(sim.mens.mean() - real.mens.mean()) < 0.01
    assert abs(sim.womens.mean() - real.womens.mean()) < 0.01
    assert abs((sim.mens & sim.womens).mean() - (real.mens & real.womens).mean()) < 0.005
    assert not np.any(~sim.mens & ~sim.womens)  # as in the file: everyone bought a line
    assert _share_gap(sim.zip_code, real.zip_code, 3) < 0.01
    assert _share_gap(sim.channel, real.channel, 3) < 0.01
    assert _share_gap(sim.recency, real.recency, 13) < 0.01
    n_bands = len(HISTORY_EDGES) + 1
    assert _share_gap(sim.history_band(), real.history_band(), n_bands) < 0.01
    for flag in (True, False):  # per segment too: returning customers have no history > $500
        s, r = sim.new == flag, real.new == flag
        assert _share_gap(sim.recency[s], real.recency[r], 13) < 0.015
        assert _share_gap(sim.history_band()[s], real.history_band()[r], n_bands) < 0.015
        assert sim.monetary[s].mean() == pytest.approx(real.monetary[r].mean(), rel=0.03)
    assert sim.monetary.min() == pytest.approx(real.monetary.min())


def test_yaml_distributions_are_the_files(data: HillstromData) -> None:
    shipped = load_scenario("hillstrom").population
    skeleton = parse_scenario(hillstrom_skeleton(data)).population
    for seg in ("new", "returning"):
        a, b = shipped.segments[seg], skeleton.segments[seg]
        assert (a.share, a.recency, a.monetary_quantiles) == (b.share, b.recency, b.monetary_quantiles)
    for attr in ("zip_code", "purchase_channel"):
        assert {k: v.share for k, v in shipped.attributes[attr].items()} == {
            k: v.share for k, v in skeleton.attributes[attr].items()
        }
    assert {k: v.share for k, v in shipped.product_lines.combos.items()} == {
        k: v.share for k, v in skeleton.product_lines.combos.items()
    }


# -- the scenario as a campaign world -------------------------------------------------------


def test_arms_are_no_email_mens_womens() -> None:
    sim = Simulator(load_scenario("hillstrom"), n_customers=100)
    assert sim.arms.names == ("no_contact", "email/mens/none", "email/womens/none")


def test_default_goal_needs_several_waves_and_email_everyone_reaches_it() -> None:
    sc = load_scenario("hillstrom")
    goal = sc.default_goal
    sim = Simulator(sc)
    sim.reset(seed=1)
    rng = np.random.default_rng(1)
    conversions, spend, waves = 0, 0.0, 0
    per_wave: list[int] = []
    cost = float(sim.arms.send_cost[1])
    while waves < goal.max_iterations and conversions < goal.target:
        n = min(goal.customers_per_iteration, int((goal.budget - spend) / cost + 1e-9))
        if n <= 0:
            break
        c = np.sort(rng.choice(sim.n_customers, size=n, replace=False))
        events = sim.send(c, c, np.ones(n, dtype=np.int64))  # the men's e-mail to everyone
        sim.advance()
        got = events.count(EventKind.CONVERTED)
        per_wave.append(got)
        conversions += got
        spend += n * cost
        waves += 1
    assert per_wave[0] < goal.target / 3
    assert conversions >= goal.target, (per_wave, spend)
    assert spend <= goal.budget + 1e-9
    assert waves >= 4


# -- the report's forms and the fitting procedure ------------------------------------------------


def test_report_forms(report: CalibrationReport) -> None:
    d = report.to_dict()
    json.dumps(d)
    assert len(d["rows"]) == len(report.rows) == 6 * 3 * 3
    assert d["seeds"] == [0, 1, 2]
    text = format_calibration(report)
    assert "mens_and_womens" in text and "womens_email" in text
    assert len(text.splitlines()) == 3 + 18 + 1
    with pytest.raises(KeyError, match="groups"):
        report.row("nobody", "mens_email", "visit")


def test_report_is_reproducible(data: HillstromData) -> None:
    a = calibration_report(DATA, seeds=(5,), n_customers=4000)
    b = calibration_report(DATA, seeds=(5,), n_customers=4000)
    assert a == b


def test_fit_runs_and_renders_a_valid_scenario(data: HillstromData) -> None:
    result = fit_hillstrom(DATA, n_customers=1500, max_nfev=1)
    assert result.n_cells > 150 and math.isfinite(result.chi2)
    text = render_hillstrom_yaml(result.scenario)
    sc = parse_scenario(yaml.safe_load(text), "rendered")
    assert sc.name == "hillstrom" and sc.arms == ["email/mens/none", "email/womens/none"]
