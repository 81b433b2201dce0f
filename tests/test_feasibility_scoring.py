"""Feasibility model scoring with running trials censored, and the choice between the model and the phase median."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from analytics.feasibility.censoring import censored_coverage, censored_median_abs_error
from analytics.feasibility.complexity import COMPLEXITY_FEATURES
from analytics.feasibility.selection import EVIDENCE_SHARE, fit_predictor
from analytics.feasibility.trials import build_trial_table

DEV_SEED = 5  # a development seed (the evaluation's held-out seeds are never used in tests)


def _history(seed: int, truth: dict | None = None) -> pd.DataFrame:
    from analytics.generator.history import historical_trials
    from analytics.generator.presets import PRESETS

    columns, _ = historical_trials(PRESETS["demo"], seed, truth=truth)
    return build_trial_table(pd.DataFrame({k: v.to_pandas() for k, v in columns.items()}), PRESETS["demo"].as_of)


def test_coverage_counts_running_trials_instead_of_dropping_them() -> None:
    rng = np.random.default_rng(3)
    n = 4000
    log_duration = rng.normal(3.5, 0.6, n)  # months ~ 33 median, a long right tail
    lo, hi = np.full(n, 3.5 - 1.2816 * 0.6), np.full(n, 3.5 + 1.2816 * 0.6)  # the true 10-90% band: covers 80%
    follow_up = np.log(rng.uniform(40, 90, n))  # as-of date minus start: administrative censoring
    event = log_duration <= follow_up
    seen = np.where(event, log_duration, follow_up)
    completed_only = np.mean((log_duration[event] >= lo[event]) & (log_duration[event] <= hi[event]))
    assert completed_only > 0.85  # dropping running trials drops the long ones the band misses
    assert censored_coverage(lo, hi, seen, event) == pytest.approx(0.80, abs=0.02)
    # A running trial already past its interval's upper end is a known miss.
    assert censored_coverage(np.array([0.0, 0.0]), np.array([1.0, 1.0]), np.array([0.5, 2.0]),
                             np.array([True, False])) == pytest.approx(0.5)


def test_the_censored_median_error_is_the_plain_median_without_censoring() -> None:
    rng = np.random.default_rng(4)
    observed, mid = rng.normal(0, 1, 501), rng.normal(0, 0.3, 501)
    assert censored_median_abs_error(mid, observed, np.ones(501, bool)) == pytest.approx(
        np.median(np.abs(observed - mid)), abs=0.002)


def test_the_estimate_is_close_to_the_true_coverage_of_a_generated_window() -> None:
    from analytics.feasibility.model import feature_frame
    from analytics.feasibility.selection import duration_population, score

    truth: dict = {}
    trials = _history(DEV_SEED, truth)
    years = trials["start_year"].astype(float)
    predictor = fit_predictor(trials[years < 2018], "duration", 1, (2015, 2017))
    window = trials[(years >= 2018) & (years <= 2020)]
    rows = duration_population(window)
    assert (~rows["completed"]).sum() > 30  # the window has running trials
    true_log = np.log(rows["nct_id"].map(pd.Series(truth["duration_months"], index=truth["nct_id"])).to_numpy(float))
    pred = predictor.model.predict(feature_frame(rows))
    true_coverage = np.mean((true_log >= pred["lo"]) & (true_log <= pred["hi"]))
    estimated = score(predictor.model.predict, window, "duration")["coverage_80"]
    done = rows["completed"].to_numpy(bool)
    completed_only = np.mean((true_log[done] >= pred["lo"][done]) & (true_log[done] <= pred["hi"][done]))
    assert abs(estimated - true_coverage) < 0.04 < completed_only - true_coverage


def test_the_phase_median_is_what_a_user_gets_when_the_features_carry_nothing_more() -> None:
    # Two development histories pooled: one seed's ~300-trial window is close to the 90% evidence bar
    # (0.895-1.0 over seeds 5-8), two give the choice room to show.
    trials = pd.concat([_history(seed).assign(nct_id=lambda t, s=seed: t["nct_id"] + f"-{s}")
                        for seed in (DEV_SEED, DEV_SEED + 1)], ignore_index=True)
    informative = fit_predictor(trials, "duration", 1, (2015, 2017))
    assert informative.method == "model" and informative.validation["evidence"] >= EVIDENCE_SHARE
    # Features shuffled within each phase: only the phase still says anything about duration.
    rng = np.random.default_rng(0)
    noise = trials.copy()
    features = ["group", "sponsor_class", "enrollment", "n_sites", "n_countries", *COMPLEXITY_FEATURES]
    for _, index in noise.groupby("phase").groups.items():
        noise.loc[index, features] = noise.loc[rng.permutation(index), features].to_numpy()
    uninformative = fit_predictor(noise, "duration", 1, (2015, 2017))
    assert uninformative.method == "baseline" and uninformative.validation["evidence"] < EVIDENCE_SHARE
    assert "Phase median" in uninformative.reason() and "not reliably closer" in uninformative.reason()
    x = pd.DataFrame({"phase": [5.0]}).reindex(columns=informative.model.columns)  # PHASE3, nothing else known
    got = uninformative.predict(x.assign(phase=5.0)).iloc[0]
    expected = uninformative.baseline.predict(pd.Series(["PHASE3"])).iloc[0]
    assert got["mid"] == pytest.approx(expected["mid"])


def test_an_export_is_dated_by_its_latest_record_update_else_its_latest_actual_start() -> None:
    from analytics.importers.ctgov import export_as_of

    with_updates = pd.DataFrame({"status": ["COMPLETED", "RECRUITING", "NOT_YET_RECRUITING"],
                                 "start_date": pd.to_datetime(["2015-01-01", "2023-05-01", "2026-01-01"]),
                                 "last_update_date": pd.to_datetime(["2020-01-01", "2024-03-26", "2024-02-01"])})
    # An anticipated start (2026, not yet recruiting) is not a date the export has seen.
    assert export_as_of(with_updates) == pd.Timestamp("2024-03-26")
    without = with_updates.drop(columns="last_update_date")
    assert export_as_of(without) == pd.Timestamp("2023-05-01")


def test_durations_by_start_cohort_show_a_cohort_that_runs_longer_and_keep_its_running_trials() -> None:
    from analytics.evaluation.feasibility import duration_by_start_cohort

    rng = np.random.default_rng(3)
    rows = []
    for first, scale in ((2009, 24.0), (2012, 24.0), (2015, 24.0), (2018, 48.0)):
        months = scale * np.exp(0.3 * rng.standard_normal(200))
        running = months > 40  # the long ones have not finished: censored at 40 months
        rows.append(pd.DataFrame({"start_year": rng.integers(first, first + 3, 200), "duration_months":
                                  np.where(running, 40.0, months), "completed": ~running, "still_running": running}))
    cohorts = duration_by_start_cohort(pd.concat(rows, ignore_index=True), split=2018)
    assert [c["start_years"] for c in cohorts] == [[2009, 2011], [2012, 2014], [2015, 2017], [2018, 2020]]
    assert [c["test_window"] for c in cohorts] == [False, False, False, True]
    earlier, test = cohorts[0], cohorts[-1]
    assert earlier["median_months"] == pytest.approx(24, rel=0.1)
    # Half the test cohort is still running at 40 months: Kaplan-Meier keeps them, so no median is claimed,
    # where dropping them would give the finished ones' median of about 36.
    assert test["median_months"] is None and test["still_running_at_months"]["36"] > 0.5
    assert test["trials"] == 200 and test["completed"] < 200


def _export(path, rows: list[tuple[str, str, str, str]]):
    """A small "Download CSV" export: (NCT number, status, start, completion) per trial."""
    lines = ["NCT Number,Study Status,Study Type,Phases,Enrollment,Start Date,Completion Date,Last Update Posted"]
    lines += [f"{nct},{status},INTERVENTIONAL,PHASE2,40,{start},{end},2024-06-01" for nct, status, start, end in rows]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_a_fresh_export_is_scored_without_the_trials_already_measured(tmp_path) -> None:
    from analytics.evaluation.feasibility import export_nct_ids, real_trials

    shared = _export(tmp_path / "shared.csv", [("NCT00000001", "COMPLETED", "2012-01", "2014-01"),
                                               ("NCT00000002", "COMPLETED", "2013-01", "2016-01")])
    fresh = _export(tmp_path / "fresh.csv", [("NCT00000002", "COMPLETED", "2013-01", "2016-01"),
                                             ("NCT00000003", "COMPLETED", "2014-03", "2015-09"),
                                             ("NCT00000004", "RECRUITING", "2019-05", "")])
    trials, as_of, exports, left_out = real_trials((fresh,), export_nct_ids((shared,)))
    assert sorted(trials["nct_id"]) == ["NCT00000003", "NCT00000004"]
    assert left_out == 1
    assert as_of == dt.date(2024, 6, 1) and exports == {"fresh.csv": "2024-06-01"}
    running = trials.set_index("nct_id").loc["NCT00000004"]
    assert bool(running["still_running"]) and not bool(running["completed"])
    with pytest.raises(RuntimeError, match="nothing is left to score"):
        real_trials((shared,), export_nct_ids((shared,)))
