"""CAPA trends: run rules, control charts, text themes and recurrences, metrics, QTLs, actions, page."""

from __future__ import annotations

import dataclasses

import datetime as dt
import io
import json
from pathlib import Path

import numpy as np
import openpyxl
import pandas as pd
import pytest
from scipy import stats
from sklearn.metrics import adjusted_rand_score

from analytics.capa import actions, cycle_time, data, exports, metrics, qtl, spc, themes
from analytics.capa.rules import RULES_BY_ID, apply_rules, signal_onsets
from analytics.core import warehouse
from analytics.core.records import RecordsStore
from analytics.core.scope import NO_FILTER, AccessScope
from analytics.generator import quality_text
from tests.import_helpers import open_page

AS_OF = dt.date(2026, 11, 1)


# --- run rules -----------------------------------------------------------------------------------


def _broken(z: list[float], values: list[float] | None = None) -> pd.DataFrame:
    return apply_rules(z, values if values is not None else z, [True] * len(z))


def test_each_western_electric_rule_breaks_where_its_pattern_completes() -> None:
    flags = _broken([0, 0, 3.2, 0])
    assert flags["we1_high"].tolist() == [False, False, True, False]
    flags = _broken([0, 2.5, -0.5, 2.2, 0])  # two of three beyond 2 sigma
    assert flags["we2_high"].tolist() == [False, False, False, True, False]
    assert not flags["we1_high"].any()
    flags = _broken([1.5, 1.2, 0.3, 1.1, 1.4, 0])  # four of five beyond 1 sigma
    assert flags["we3_high"].tolist() == [False, False, False, False, True, False]
    flags = _broken([-0.2] * 8 + [0.5])  # eight in a row below the centre
    assert flags["we4_low"].tolist() == [False] * 7 + [True, False]
    assert flags["rules_low"].iloc[7] == "we4"


def test_the_trend_rule_needs_six_points_each_higher_than_the_one_before() -> None:
    rising = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6]
    assert _broken([0.0] * 6, rising)["trend_high"].tolist() == [False] * 5 + [True]
    assert not _broken([0.0] * 5, rising[:5])["trend_high"].any()
    assert RULES_BY_ID["trend"].window == 6


def test_the_cusum_adds_up_a_lasting_rise_that_no_single_month_shows_and_restarts_after_it() -> None:
    z = [0.0, 1.7, 1.7, 1.7, 0.0, 1.7]
    flags = _broken(z)
    assert flags["cusum_high"].tolist() == [False, False, False, True, False, False]
    assert flags["cusum_sum_high"].tolist() == pytest.approx([0.0, 0.7, 1.4, 2.1, 0.0, 0.7])  # restarts after it
    assert not flags.loc[:3, ["we1_high", "we2_high", "we3_high", "we4_high"]].any().any()
    assert not _broken([0.9] * 20)["cusum_high"].any()  # within its allowance of 1 sigma a month
    assert _broken([-1.6, -1.6, -1.6, -1.6])["cusum_low"].iloc[3]


def test_the_deviation_chart_raises_signals_with_we1_we2_and_cusum_and_marks_other_rules_as_patterns() -> None:
    spec = spc.CHARTS_BY_ID["deviations"]
    assert spec.rules == ("we1", "we2", "cusum")
    visits = np.full(30, 1_000.0)
    counts = np.full(30, 30.0)
    counts[20:28] = 33.0  # eight months a little above the centre: WE4 completes, nothing reaches a limit
    chart = spc.control_chart(_series(counts, visits), spec)
    assert chart.points.loc[27, "we4_high"] and chart.points.loc[27, "pattern_flag"]
    assert not chart.points["concern_flag"].any() and not chart.signals.size
    with pytest.raises(ValueError, match="unknown rules"):
        dataclasses.replace(spec, rules=("we9",))


def test_predictive_deviates_keep_the_false_alarm_rate_when_the_baseline_rate_is_estimated() -> None:
    # A study with 3 deviations a month: its 12-month baseline holds about 36, so the expected count of a
    # later month is off by about 1 / sqrt(36) = 17%, the same way in every month of that study.
    rng = np.random.default_rng(11)
    true_rate, studies, months = 3.0, 40_000, 6
    baseline = rng.poisson(true_rate * 12, studies).astype(float)
    expected = np.repeat(np.maximum(baseline, 1.0) / 12, months)
    counts = rng.poisson(true_rate, studies * months).astype(float)
    shape = np.repeat(baseline + 0.5, months)
    poisson = spc.poisson_deviate(counts, expected)
    predictive = spc.predictive_deviate(counts, expected, shape)
    beyond_2 = 1 - stats.norm.cdf(2)
    assert (poisson > 2).mean() > 1.3 * beyond_2  # taking the estimate as known: a third more alarms
    assert (predictive > 2).mean() == pytest.approx(beyond_2, rel=0.15)
    assert spc.predictive_deviate(counts[:5], expected[:5], np.inf) == pytest.approx(poisson[:5])
    assert spc.predictive_deviate(counts[:5], expected[:5], 1e12) == pytest.approx(poisson[:5], abs=1e-4)
    observed = np.array([0.0, 3.0, 9.0, 40.0])
    z = spc.predictive_deviate(observed, np.array([2.0, 3.0, 3.0, 25.0]), 36.5)
    assert spc.predictive_count(z, np.array([2.0, 3.0, 3.0, 25.0]), 36.5) == pytest.approx(observed, abs=1e-6)
    # the chart: after the baseline, a month's limit sits higher than the Poisson one, never in the baseline
    series = _series(np.array([3.0] * 14), np.full(14, 100.0))
    predictive_chart = spc.control_chart(series, spc.CHARTS_BY_ID["deviations"])
    poisson_chart = spc.control_chart(series, dataclasses.replace(spc.CHARTS_BY_ID["deviations"], residual="poisson"))
    assert predictive_chart.points.loc[13, "ucl"] > poisson_chart.points.loc[13, "ucl"]
    assert predictive_chart.points.loc[5, "ucl"] == pytest.approx(poisson_chart.points.loc[5, "ucl"])


def test_poisson_deviates_keep_the_3_sigma_false_alarm_rate_for_a_few_expected_deviations() -> None:
    rng = np.random.default_rng(5)
    expected = np.full(400_000, 2.0)
    counts = rng.poisson(expected).astype(float)
    normal = (counts - expected) / np.sqrt(expected)
    assert (normal > 3).mean() > 0.004  # (O - E) / sqrt(E): three times the nominal 0.135%
    assert (spc.poisson_deviate(counts, expected) > 3).mean() < 0.00135
    z = spc.poisson_deviate(np.array([0.0, 5.0, 28.0, 70.0]), np.array([2.0, 5.0, 15.33, 50.0]))
    assert z[2] == pytest.approx(2.92, abs=0.03)  # the exact mid-p normal score of 28 against 15.33
    assert spc.poisson_count(z, np.array([2.0, 5.0, 15.33, 50.0])) == pytest.approx([0.0, 5.0, 28.0, 70.0], abs=1e-6)
    chart = spc.control_chart(_series(np.array([2.0] * 13 + [7.0]), np.full(14, 100.0)), spc.CHARTS_BY_ID["deviations"])
    assert chart.points.loc[13, "value"] < chart.points.loc[13, "ucl"]  # 7 of 2 expected is inside the limit
    assert not chart.points.loc[13, "we1_high"]


def test_rules_skip_months_that_are_not_judged_and_signals_start_once() -> None:
    z = [3.5, np.nan, 3.5, 0.0]
    flags = apply_rules(z, z, [True, False, True, True])
    assert flags["we1_high"].tolist() == [True, False, True, False]
    assert signal_onsets(flags["we1_high"], [True, False, True, True]).tolist() == [True, False, False, False]


# --- control charts ------------------------------------------------------------------------------


def _series(counts: np.ndarray, visits: np.ndarray) -> pd.DataFrame:
    return pd.DataFrame({"month": pd.date_range("2022-01-01", periods=len(counts), freq="MS"),
                         "numerator": counts, "denominator": visits})


def test_a_poisson_series_is_not_corrected_and_a_doubled_rate_is_flagged_at_once() -> None:
    rng = np.random.default_rng(3)
    visits = np.full(36, 800.0)
    counts = rng.poisson(0.03 * visits).astype(float)
    counts[30:] = rng.poisson(0.06 * visits[30:])
    chart = spc.control_chart(_series(counts, visits), spc.CHARTS_BY_ID["deviations"])
    assert not chart.laney and chart.baseline_months == 12
    assert chart.centre == pytest.approx(3.0, abs=0.6)  # per 100 subject-visits
    assert chart.points.loc[30:31, "concern_flag"].any()
    assert chart.points.loc[:11, "concern_flag"].sum() <= 1


def test_laney_is_applied_only_beyond_the_chance_spread_of_a_poisson_baseline() -> None:
    threshold = spc.laney_chance_threshold(12)
    assert 1.35 < threshold < 1.6  # 12 months without over-dispersion exceed sigma_z 1 half the time
    rng = np.random.default_rng(8)
    visits = np.full(30, 1_000.0)
    corrected = [spc.control_chart(_series(rng.poisson(0.03 * visits).astype(float), visits),
                                   spc.CHARTS_BY_ID["deviations"]).laney for _ in range(200)]
    assert np.mean(corrected) < 0.12


def test_over_dispersed_months_get_laney_limits_wider_than_poisson() -> None:
    rng = np.random.default_rng(4)
    visits = np.full(30, 2_000.0)
    rates = 0.03 * np.exp(0.25 * rng.standard_normal(30))
    chart = spc.control_chart(_series(rng.poisson(rates * visits).astype(float), visits),
                              spc.CHARTS_BY_ID["deviations"])
    assert chart.laney and chart.sigma_z > 1.5
    poisson_sigma = np.sqrt(chart.centre / (visits / 100))
    assert np.allclose(chart.points["sigma"], poisson_sigma * chart.sigma_z)
    assert chart.points["concern_flag"].mean() < 0.15  # without Laney most months would be flagged


def _phase_strata(months: pd.DatetimeIndex, screening: np.ndarray, treatment: np.ndarray,
                  dev_screening: np.ndarray, dev_treatment: np.ndarray) -> pd.DataFrame:
    return pd.concat([
        pd.DataFrame({"month": months, "study_id": "S1", "phase": "screening", "numerator": dev_screening,
                      "denominator": screening}),
        pd.DataFrame({"month": months, "study_id": "S1", "phase": "treatment", "numerator": dev_treatment,
                      "denominator": treatment})], ignore_index=True)


def test_the_risk_adjusted_chart_follows_the_visit_mix_and_still_flags_a_step() -> None:
    """Screening visits carry 8 deviations per 100, treatment visits 2; the study moves from screening to
    treatment, then enrolls a second wave. The plain u-chart reads the changing mix as runs away from its
    centre; the risk-adjusted one expects them, and flags a doubling of the treatment rate."""
    rng = np.random.default_rng(11)
    n = 40
    months = pd.date_range("2022-01-01", periods=n, freq="MS")
    screening = np.linspace(900, 100, n).round()
    screening[30:] = 700  # a second enrollment wave late in the study
    treatment = np.linspace(100, 1_500, n).round()
    dev_s = rng.poisson(0.08 * screening).astype(float)
    dev_t = rng.poisson(0.02 * treatment).astype(float)
    stable = _phase_strata(months, screening, treatment, dev_s, dev_t)
    series = stable.groupby("month", as_index=False)[["numerator", "denominator"]].sum()
    spec = spc.CHARTS_BY_ID["deviations"]
    plain = spc.control_chart(series, dataclasses.replace(spec, risk_adjusted=False), stable)
    adjusted = spc.control_chart(series, spec, stable)
    assert adjusted.risk_adjusted and not plain.risk_adjusted
    assert (plain.points["concern_flag"] | plain.points["favourable_flag"]).sum() >= 10
    assert (adjusted.points["concern_flag"] | adjusted.points["favourable_flag"]).sum() <= 1
    expected = adjusted.points["expected"].to_numpy()
    assert expected[30] / series["denominator"][30] > expected[29] / series["denominator"][29]  # follows the mix
    assert np.allclose(adjusted.points["centre"], expected / (series["denominator"] / 100))
    shifted = _phase_strata(months, screening, treatment, dev_s, dev_t + np.where(np.arange(n) >= 34, dev_t, 0))
    shifted_series = shifted.groupby("month", as_index=False)[["numerator", "denominator"]].sum()
    step = spc.control_chart(shifted_series, spec, shifted)
    assert step.points.loc[34:35, "concern_flag"].any()


def test_a_stratum_without_baseline_exposure_takes_its_phase_rate() -> None:
    months = pd.date_range("2022-01-01", periods=3, freq="MS")
    strata = pd.DataFrame({"month": list(months) * 2, "study_id": ["A"] * 3 + ["B"] * 3,
                           "phase": "treatment", "numerator": [4, 4, 4, 0, 0, 9],
                           "denominator": [100, 100, 100, 0, 0, 300]})
    expected = spc.expected_counts(strata, pd.Series(months), pd.Series(months[:2]))
    assert expected == pytest.approx([4.0, 4.0, 4.0 + 12.0])  # study B, new in month 3, at study A's 4 per 100


def test_a_study_that_starts_after_the_baseline_is_judged_against_its_own_first_months() -> None:
    months = pd.date_range("2022-01-01", periods=6, freq="MS")
    strata = pd.DataFrame({"month": list(months) * 2, "study_id": ["A"] * 6 + ["B"] * 6, "phase": "treatment",
                           "numerator": [4, 4, 4, 4, 4, 4, 0, 0, 0, 10, 10, 30],
                           "denominator": [100] * 6 + [0, 0, 0, 100, 100, 100]})
    expected = spc.expected_counts(strata, pd.Series(months), pd.Series(months[:2]), own_baseline_points=2)
    # study B's rate is its own first two months' 10 per 100, not study A's 4, so its tripling stands out
    assert expected == pytest.approx([4.0, 4.0, 4.0, 14.0, 14.0, 14.0])


def test_a_p_chart_flags_a_drop_in_on_time_closure_and_skips_thin_months() -> None:
    due = np.array([20.0] * 24 + [2.0])
    on_time = np.array([14.0] * 20 + [5.0, 4.0, 14.0, 14.0, 1.0])
    chart = spc.control_chart(_series(on_time, due), spc.CHARTS_BY_ID["on_time"])
    assert chart.spec.concern == "low"
    assert chart.points.loc[20, "concern_flag"] and chart.points.loc[20, "signal_start"]
    assert not chart.points.loc[24, "evaluable"] and not chart.points.loc[24, "concern_flag"]
    assert (chart.points["lcl"] >= 0).all() and (chart.points["ucl"] <= 1).all()


def test_the_closure_chart_sees_a_slowdown_at_once_when_the_open_capas_age_mix_changes() -> None:
    """Closures against the count expected from how far through their time the open CAPAs are."""
    rng = np.random.default_rng(5)
    months = pd.date_range("2022-01-01", periods=30, freq="MS")
    young = np.linspace(1500, 3000, 30)  # the portfolio grows; old CAPAs close ten times as often as young
    old = np.r_[np.full(20, 300.0), np.full(10, 1200.0)]  # from month 20 many more CAPAs are near their due date
    slow = np.r_[np.ones(26), np.full(4, 0.5)]  # closing halves from month 26
    closed_young, closed_old = rng.poisson(0.002 * young * slow), rng.poisson(0.02 * old * slow)
    strata = pd.concat([
        pd.DataFrame({"month": months, "study_id": "all", "phase": "young", "numerator": closed_young,
                      "denominator": young}),
        pd.DataFrame({"month": months, "study_id": "all", "phase": "old", "numerator": closed_old,
                      "denominator": old})], ignore_index=True)
    series = strata.groupby("month", as_index=False)[["numerator", "denominator"]].sum()
    chart = spc.control_chart(series, spc.CHARTS_BY_ID["closures"], strata)
    assert chart.spec.concern == "low" and chart.risk_adjusted
    # more old CAPAs from month 20: more closures expected, not a rise read as an improvement or a signal
    assert chart.points.loc[20, "expected"] > 2.5 * chart.points.loc[19, "expected"]
    assert not chart.points.loc[:25, "concern_flag"].any()
    # the slowdown's first month (12 closed, 27 expected) falls below the warning line at once; the 3-sigma
    # line it just misses, because 27 expected rest on a baseline of 103 closures when the mix has moved
    # 2.5-fold (a Poisson line, taking the baseline's rates as known, would put it at 3.2 sigma)
    assert chart.points.loc[26, "value"] < chart.points.loc[26, "lwl"]
    assert chart.points.loc[26, "z"] < -2.5
    assert chart.points.loc[26:, "concern_flag"].any()


def test_closure_strata_count_every_closure_and_every_open_capa_day_once(tiny_db: Path) -> None:
    wh = warehouse.Warehouse.open(tiny_db)
    strata = data.monthly_closure_strata(wh, AccessScope.full_access(True), NO_FILTER)
    as_of = wh.as_of()
    last = pd.Timestamp(data.last_full_month(as_of)) + pd.offsets.MonthBegin(1)
    with warehouse.inspect(tiny_db) as con:
        closed, days = con.execute("""
            SELECT count(*) FILTER (WHERE closed_date < ?),
                   sum(date_diff('day', opened_date, least(coalesce(closed_date, ?), ?, ?)))
            FROM main.capas WHERE original_due_date > opened_date AND opened_date < ?""",
                                   [last, as_of, as_of, last, last]).fetchone()
    assert set(strata["phase"]) <= {band for band, _, _ in data.CLOSURE_BANDS}
    assert strata["numerator"].sum() == closed
    assert strata["denominator"].sum() == pytest.approx(days)


# --- text themes and recurrences -------------------------------------------------------------------


def _generated_texts(per_theme: int, theme_ids: list[int], seed: int = 1) -> tuple[list[str], list[int]]:
    rng = np.random.default_rng(seed)
    texts, labels = [], []
    for theme in theme_ids:
        for _ in range(per_theme):
            texts.append(quality_text.event_text(theme, rng) + " " + quality_text.action_text(theme, "Process gap", rng))
            labels.append(theme)
    return texts, labels


def test_varied_text_is_not_a_template_lookup() -> None:
    texts, _ = _generated_texts(30, [0])
    assert len(set(texts)) == 30
    assert len({t.split(". Root")[0] for t in texts}) > 20  # paraphrases, numbers and noise vary


def test_themes_recover_distinct_labelled_themes_deterministically() -> None:
    theme_ids = [0, 3, 5, 9, 13, 15]
    texts, labels = _generated_texts(15, theme_ids)
    first = themes.fit_themes(texts)
    assert adjusted_rand_score(labels, first.labels) >= 0.7
    assert len(first.names) <= 2 * len(theme_ids)  # paraphrases of one theme are not split into themes
    assert np.array_equal(first.labels, themes.fit_themes(texts).labels)
    assert all(name for name in first.names)


def test_a_repeat_at_the_same_site_within_a_year_is_a_possible_recurrence() -> None:
    texts, _ = _generated_texts(1, [5, 5, 5, 9])
    events = pd.DataFrame({"quality_event_id": [1, 2, 3, 4], "study_site_id": ["S1", "S1", "S2", "S1"],
                           "reported_date": pd.to_datetime(["2024-01-01", "2024-06-01", "2024-07-01", "2026-01-01"])})
    model = themes.ThemeModel(np.array([0, 0, 0, 1]), np.array([[1.0, 0], [0.96, 0.28], [1, 0], [0, 1.0]]),
                              ["a", "b"], [["a"], ["b"]], np.ones(4))
    found = themes.find_recurrences(events, model)
    assert found["possible_recurrence"].tolist() == [False, True, False, False]  # other site; beyond 12 months
    assert found.loc[1, "repeats_event_id"] == 1 and found.loc[1, "repeat_days"] == 152


# --- metrics and cycle time ------------------------------------------------------------------------


def _capas() -> pd.DataFrame:
    rows = [  # opened, original due, current due, extensions, closed, root cause
        ("2026-01-01", "2026-02-01", "2026-03-01", 1, "2026-02-20", "Human error"),
        ("2026-06-01", "2026-07-01", "2026-12-01", 2, None, "Process gap"),
        ("2026-06-01", "2026-07-01", "2026-07-01", 0, None, "Process gap"),
        ("2026-09-15", "2026-12-15", "2026-12-15", 0, None, "Training gap"),
        ("2025-01-01", "2025-02-01", "2025-02-01", 0, "2025-06-01", "Human error"),
    ]
    frame = pd.DataFrame(rows, columns=["opened_date", "original_due_date", "current_due_date", "extension_count",
                                        "closed_date", "root_cause_category"])
    for column in ("opened_date", "original_due_date", "current_due_date", "closed_date"):
        frame[column] = pd.to_datetime(frame[column])
    return frame.assign(capa_id=range(1, 6), process="Documentation", effectiveness_result=[
        "Effective", None, None, None, "Not effective"])


def test_overdue_is_judged_against_the_original_and_the_current_due_date() -> None:
    status = metrics.with_status(_capas(), AS_OF)
    assert status["overdue_original"].tolist() == [False, True, True, False, False]
    assert status["overdue_current"].tolist() == [False, False, True, False, False]
    head = metrics.headline(_capas(), AS_OF)
    assert (head["open"], head["on_time_share"], head["extension_rate"], head["effective_share"]) == (3, 0.5, 0.4, 0.5)


def test_pareto_shows_human_error_apart_from_the_ranked_causes() -> None:
    ranked, human = metrics.pareto(_capas())
    assert "Human error" not in set(ranked["cause"]) and ranked["cause"].iloc[0] == "Process gap"
    assert ranked["cumulative_share"].iloc[-1] == pytest.approx(1.0)
    assert human["capas"] == 2 and human["share_of_all"] == pytest.approx(0.4)


def test_kaplan_meier_counts_open_capas_as_censored_not_as_closed() -> None:
    frame = pd.DataFrame({"opened_date": pd.to_datetime(["2026-01-01"] * 10), "process": "IP management",
                          "closed_date": pd.to_datetime(["2026-01-31"] * 4 + [None] * 6),
                          "original_due_date": pd.NaT, "current_due_date": pd.NaT, "extension_count": 0})
    _, summary = cycle_time.kaplan_meier(frame, AS_OF, "process")
    row = summary.iloc[0]
    assert row["median_closed_only"] == 30 and row["open"] == 6
    assert np.isnan(row["median_days"])  # 60% still open at 304 days: the median is not reached
    assert np.isnan(row["p90_days"])


# --- generated data, stored themes, QTLs ------------------------------------------------------------


def test_generated_events_carry_theme_labels_and_shifts_carry_start_dates(demo_db: Path) -> None:
    with warehouse.inspect(demo_db) as con:
        unlabelled = con.execute("SELECT count(*) FROM main.quality_events e LEFT JOIN truth.quality_event_labels l "
                                 "USING (quality_event_id) WHERE l.theme IS NULL").fetchone()[0]
        shifts = con.execute("SELECT anomaly_type, start_date FROM truth.anomalies WHERE level = 'study'").df()
        repeats = con.execute("""
            SELECT l.theme = p.theme AS same_theme, e.study_site_id = pe.study_site_id AS same_site,
                   e.reported_date - pe.reported_date AS gap
            FROM truth.quality_event_labels l JOIN main.quality_events e USING (quality_event_id)
            JOIN truth.quality_event_labels p ON p.quality_event_id = l.recurrence_of
            JOIN main.quality_events pe ON pe.quality_event_id = l.recurrence_of""").df()
    assert unlabelled == 0
    assert repeats["same_theme"].all() and repeats["same_site"].all() and repeats["gap"].between(60, 365).all()
    assert set(shifts["anomaly_type"]) == {"deviation_shift", "capa_closure_shift"}
    assert shifts["start_date"].notna().all()


def test_stored_themes_agree_with_the_labels_on_the_busiest_demo_study(demo_db: Path) -> None:
    with warehouse.inspect(demo_db) as con:
        rows = con.execute("""
            SELECT t.study_id, t.theme_id, l.theme FROM derived.capa_event_themes t
            JOIN truth.quality_event_labels l USING (quality_event_id)""").df()
        named = con.execute("SELECT count(*) FROM derived.capa_themes WHERE name <> ''").fetchone()[0]
    busiest = rows["study_id"].value_counts().index[0]
    part = rows[rows["study_id"] == busiest]
    assert len(part) > 100 and named > 0
    assert adjusted_rand_score(part["theme"], part["theme_id"]) >= 0.5


def test_qtl_register_gives_each_study_a_value_with_its_interval(tiny_db: Path) -> None:
    register = qtl.qtl_register(warehouse.Warehouse.open(tiny_db), AccessScope.full_access(True), NO_FILTER)
    assert set(register["qtl_id"]) == set(qtl.QTLS_BY_ID)
    judged = register[register["denominator"] >= qtl.MIN_SUBJECTS]
    assert ((judged["low"] <= judged["value"]) & (judged["value"] <= judged["high"])).all()
    breached = judged["value"] > judged["limit"]
    assert (judged.loc[breached, "status"] == "Breached").all()
    assert (judged.loc[~breached, "status"] != "Breached").all()


def test_the_excel_export_has_a_sheet_per_table() -> None:
    book = openpyxl.load_workbook(io.BytesIO(exports.excel_bytes({"CAPAs": pd.DataFrame({"CAPA": ["CAPA-1"]}),
                                                                  "A name: longer than Excel allows": pd.DataFrame()})))
    assert book.sheetnames == ["CAPAs", "A name  longer than Excel allow"]
    assert book["CAPAs"]["A2"].value == "CAPA-1"


# --- actions in the records store --------------------------------------------------------------------


@pytest.fixture
def store(tmp_path: Path):
    with RecordsStore(f"sqlite:///{tmp_path / 'records.sqlite'}") as opened:
        yield opened


def test_a_capa_opened_from_a_signal_keeps_its_history_links_and_check(store: RecordsStore) -> None:
    scope, visible = AccessScope(study_ids=frozenset({"ST001"})), {"ST001"}
    today = dt.date(2026, 11, 1)
    ref = actions.open_capa(store, "qm@cro.example", scope, visible, study_id="ST001", signal_type="qtl",
                            signal_id=qtl.qtl_signal_id("ST001", "discontinuation"), title="Dropouts above limit",
                            owner="A. Owner", due_date=dt.date(2026, 12, 31), events=[11, 12], today=today)
    with pytest.raises(actions.ActionRefused, match="later"):
        actions.update_capa(store, "qm@cro.example", scope, visible, ref, reason="sooner", due_date=dt.date(2026, 12, 1))
    with pytest.raises(actions.ActionRefused, match="reason"):
        actions.update_capa(store, "qm@cro.example", scope, visible, ref, reason=" ", status="In progress")
    assert actions.update_capa(store, "qm@cro.example", scope, visible, ref, reason="vendor delay",
                               due_date=dt.date(2027, 1, 31)) == 2
    actions.update_capa(store, "qm@cro.example", scope, visible, ref, reason="done", status="Closed")
    with pytest.raises(actions.ActionRefused, match="closed"):
        actions.update_capa(store, "qm@cro.example", scope, visible, ref, reason="again", status="Open")
    actions.link_event(store, "qm@cro.example", scope, visible, capa_ref=ref, study_id="ST001", quality_event_id=12,
                       linked=False, note="not related")
    actions.record_check(store, "qm@cro.example", scope, visible, capa_ref=ref, study_id="ST001",
                         check_date=today, result="Effective", method="no dropout above limit for 3 months",
                         today=today)
    current = actions.workbench_capas(store, visible).iloc[0]
    assert (current["status"], current["extension_count"], current["current_due_date"], current["original_due_date"]) \
        == ("Closed", 1, dt.date(2027, 1, 31), dt.date(2026, 12, 31))
    assert current["events"] == [11] and current["result"] == "Effective"
    history = actions.capa_history(store, ref, visible)
    assert list(history["record"]).count("CAPA") == 3 and (history["actor"] == "qm@cro.example").all()
    assert "due date extended to 2027-01-31: vendor delay" in set(history["reason"].dropna())
    assert store.verify_audit().ok
    assert actions.workbench_capas(store, {"ST002"}).empty  # reads are restricted to the user's studies


def test_an_action_for_a_study_outside_the_scope_is_refused_and_writes_nothing(store: RecordsStore) -> None:
    with pytest.raises(actions.ActionRefused, match="not available to you"):
        actions.open_capa(store, "qm", AccessScope(), {"ST001"}, study_id="ST009", signal_type="manual",
                          signal_id="x", title="t", owner="o", due_date=dt.date(2030, 1, 1))
    assert store.audit_log().empty


# --- the page -------------------------------------------------------------------------------------


def _capa_page(monkeypatch, tmp_path: Path, user: str, view: str):
    """The CAPA page for ``user`` at ``view``, writing to a records store of its own."""
    monkeypatch.setenv("CRO_USER", user)
    monkeypatch.setenv("CRO_RECORDS_URL", f"sqlite:///{tmp_path / 'records.sqlite'}")
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(Path(__file__).resolve().parents[1] / "app.py"), default_timeout=120)
    at.switch_page("pages/capa_trends.py")
    at.query_params["view"] = view
    return at.run()


@pytest.mark.parametrize("view", ["backlog", "causes", "cycle", "recurrence", "qtl", "actions"])
def test_every_view_renders_with_its_charts(view: str, app_env, monkeypatch, tmp_path) -> None:
    at = _capa_page(monkeypatch, tmp_path, "admin", view)
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    if view != "actions":
        assert at.get("plotly_chart")


def test_control_charts_mark_rule_breaking_months_and_the_funnel_has_a_legend(app_env, monkeypatch) -> None:
    at = open_page("pages/capa_trends.py")
    charts = [json.loads(c.proto.spec) for c in at.get("plotly_chart")]
    titles = [c["layout"]["title"]["text"] for c in charts]
    assert any(t.startswith("Protocol deviations per 100 subject-visits") for t in titles)
    assert any(t.startswith("CAPAs closed on time") for t in titles)
    assert any(t.startswith("CAPA closures against expected") for t in titles)
    # Each expected line's legend says what it follows: the closure chart's is not the visit mix.
    expected = {c["layout"]["title"]["text"].split(":")[0]: trace["name"] for c in charts for trace in c["data"]
                if str(trace.get("name", "")).startswith("Expected")}
    assert expected["Protocol deviations per 100 subject-visits"] == "Expected (screening / treatment mix)"
    assert expected["CAPA closures against expected"] == "Expected (how far through their time the open CAPAs are)"
    names = {trace.get("name") for c in charts for trace in c["data"]}
    assert "3-sigma limits" in names and "Running total (sigma above expected)" in names
    assert sum(t.startswith("Running total of excess (CUSUM)") for t in titles) == 2  # one under each chart
    assert [m.label for m in at.metric][:3] == ["CAPAs", "Open", "Overdue"]


def test_a_quality_manager_opens_a_capa_from_a_qtl_breach_and_the_register_links_it(app_env, monkeypatch,
                                                                                     tmp_path) -> None:
    at = _capa_page(monkeypatch, tmp_path, "admin", "qtl")
    at.text_input[0].input("Dropout rate above the QTL")
    at.text_input[1].input("Quality Manager")
    at.button[0].click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert any(s.value.startswith("Opened QM-") for s in at.success)
    register = next(d.value for d in at.dataframe if "Linked CAPAs" in d.value.columns)
    assert register["Linked CAPAs"].str.startswith("QM-").sum() == 1


def test_a_role_without_manage_capa_sees_no_action_forms(app_env, monkeypatch, tmp_path) -> None:
    at = _capa_page(monkeypatch, tmp_path, "statistician", "qtl")
    assert not at.exception and [b.key for b in at.button if b.key != "_cro_sign_out"] == []
