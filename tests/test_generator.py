"""The synthetic portfolio: sizes, determinism, realism and the labelled ground truth."""

from __future__ import annotations

from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest

from analytics.core import schema, warehouse
from analytics.generator.plan import ANOMALY_TYPES, SHIFT_TYPES
from tests.conftest import build_warehouse


def _one(db: Path, sql: str) -> object:
    with warehouse.inspect(db) as con:
        return con.execute(sql).fetchone()[0]


def _frame(db: Path, sql: str):
    with warehouse.inspect(db) as con:
        return con.execute(sql).df()


def test_demo_preset_has_the_promised_size(demo_db: Path) -> None:
    assert _one(demo_db, "SELECT count(*) FROM main.sponsors") == 3
    assert _one(demo_db, "SELECT count(*) FROM main.studies") == 12
    assert 280 <= _one(demo_db, "SELECT count(*) FROM main.study_sites") <= 320
    assert 5_000 <= _one(demo_db, "SELECT count(*) FROM main.subjects") <= 7_000
    for table in ("visits", "crf_pages", "queries", "adverse_events", "protocol_deviations", "measurements",
                  "monitoring_visits", "quality_events", "capas", "milestones", "historical_trials"):
        assert _one(demo_db, f"SELECT count(*) FROM main.{table}") > 0, table


def test_same_seed_gives_the_same_data_and_another_seed_does_not(tiny_db: Path, tmp_path: Path) -> None:
    again = build_warehouse(tmp_path / "again.duckdb", "tiny", 7, refresh=False)
    other = build_warehouse(tmp_path / "other.duckdb", "tiny", 8, refresh=False)
    digest = "SELECT sum(hash(subject_id, screening_date, randomization_date, status)) FROM main.subjects"
    lab_digest = "SELECT sum(hash(measurement_id, test_code, value)) FROM main.measurements"
    assert _one(again, digest) == _one(tiny_db, digest)
    assert _one(again, lab_digest) == _one(tiny_db, lab_digest)
    assert _one(other, digest) != _one(tiny_db, digest)


def test_share_of_activated_sites_enrolling_nobody_is_realistic(demo_db: Path) -> None:
    share = _one(demo_db, """
        SELECT avg((n = 0)::INT) FROM (
            SELECT ss.study_site_id, count(s.randomization_date) AS n
            FROM main.study_sites ss LEFT JOIN main.subjects s USING (study_site_id)
            WHERE ss.activation_date IS NOT NULL GROUP BY ALL)
    """)
    assert 0.11 <= share <= 0.17
    assert _one(demo_db, "SELECT count(*) FROM main.study_sites WHERE status = 'Never activated'") > 0


def test_randomized_never_exceeds_target_and_dates_are_ordered(demo_db: Path) -> None:
    over = _one(demo_db, """
        SELECT count(*) FROM main.studies st
        WHERE target_enrollment < (SELECT count(randomization_date) FROM main.subjects s WHERE s.study_id = st.study_id)
    """)
    assert over == 0
    # Apart from the labelled data errors the edit checks must find (generator/data_errors.py).
    labelled = f"(SELECT subject_id FROM {schema.table('data_errors').qualified_name} WHERE subject_id IS NOT NULL)"
    for condition in ("randomization_date < screening_date", "consent_date > screening_date"):
        assert _one(demo_db, f"SELECT count(*) FROM main.subjects WHERE {condition} "
                             f"AND subject_id NOT IN {labelled}") == 0, condition
    assert _one(demo_db, "SELECT count(*) FROM main.visits WHERE entry_date < actual_date "
                         f"AND {_unlabelled('visits', 'visit_id')}") == 0
    assert _one(demo_db, "SELECT count(*) FROM main.queries WHERE closed_date < opened_date") == 0
    as_of = _one(demo_db, "SELECT max(value) FROM meta.warehouse_info WHERE key = 'as_of_date'")
    assert _one(demo_db, f"SELECT count(*) FROM main.adverse_events WHERE report_date > DATE '{as_of}'") == 0


def test_adverse_events_are_front_loaded(demo_db: Path) -> None:
    rates = _frame(demo_db, """
        WITH exposure AS (
            SELECT subject_id, randomization_date,
                   date_diff('day', randomization_date,
                             coalesce(discontinuation_date, DATE '2026-11-01')) AS days
            FROM main.subjects WHERE randomization_date IS NOT NULL)
        SELECT
            (SELECT count(*) FROM main.adverse_events ae JOIN exposure e USING (subject_id)
             WHERE date_diff('day', e.randomization_date, ae.onset_date) < 60)
              / (SELECT sum(least(days, 60)) FROM exposure) AS early,
            (SELECT count(*) FROM main.adverse_events ae JOIN exposure e USING (subject_id)
             WHERE date_diff('day', e.randomization_date, ae.onset_date) >= 180)
              / (SELECT sum(greatest(days - 180, 0)) FROM exposure) AS late
    """)
    assert rates["early"][0] > 2 * rates["late"][0]


def _unlabelled(table: str, key: str) -> str:
    """A condition leaving out the records the generator changed on purpose (its labelled data errors)."""
    truth = schema.table("data_errors").qualified_name
    return f"CAST({key} AS VARCHAR) NOT IN (SELECT record_id FROM {truth} WHERE table_name = '{table}')"


def test_data_entry_lag_is_right_skewed(demo_db: Path) -> None:
    lag = _frame(demo_db, "SELECT date_diff('day', actual_date, entry_date) AS d FROM main.visits "
                          f"WHERE entry_date IS NOT NULL AND {_unlabelled('visits', 'visit_id')}")["d"]
    assert lag.min() >= 0
    assert lag.mean() > 1.3 * lag.median()
    assert lag.quantile(0.99) > 5 * lag.median()


def test_lab_values_are_correlated_within_subject(demo_db: Path) -> None:
    alt = _frame(demo_db, "SELECT subject_id, ln(value) AS v FROM main.measurements WHERE test_code = 'ALT'")
    between = alt.groupby("subject_id")["v"].mean().var()
    within = alt.groupby("subject_id")["v"].var().mean()
    assert between / (between + within) > 0.3  # intraclass correlation
    units = _frame(demo_db, "SELECT test_code, count(DISTINCT unit) AS n FROM main.measurements "
                            f"WHERE {_unlabelled('measurements', 'measurement_id')} GROUP BY 1")
    assert (units["n"] == 1).all()
    assert _one(demo_db, "SELECT count(*) FROM main.measurements WHERE grade >= 3") > 0


def _ctgov_by_phase(shared_data: Path) -> pd.DataFrame:
    """Median months (start to completion date) and enrollment of the real exports' interventional studies."""
    frames = [pd.read_csv(f) for f in sorted((shared_data / "ctgov").glob("*_ctg-studies.csv"))]
    df = pd.concat(frames, ignore_index=True)
    df = df[df["Study Type"] == "INTERVENTIONAL"]
    start = pd.to_datetime(df["Start Date"], format="mixed", errors="coerce")
    end = pd.to_datetime(df["Completion Date"], format="mixed", errors="coerce")
    df = df.assign(months=(end - start).dt.days / 30.44)
    return df.groupby("Phases").agg(months=("months", "median"), enrollment=("Enrollment", "median"),
                                    studies=("months", "size"))


REAL_PHASES = {"Phase 1": "PHASE1", "Phase 2": "PHASE2", "Phase 3": "PHASE3", "Phase 4": "PHASE4"}


def test_historical_trials_match_clinicaltrials_gov_by_phase(demo_db: Path, shared_data: Path) -> None:
    real = _ctgov_by_phase(shared_data)
    df = _frame(demo_db, """
        SELECT phase, median(enrollment) AS enrollment,
               median(date_diff('day', start_date, completion_date)) / 30.44 AS months
        FROM main.historical_trials GROUP BY 1
    """).set_index("phase")
    assert real.loc["PHASE3", "months"] > 30  # the registry's trials are long: the check has teeth
    for phase in REAL_PHASES.values():
        assert df.loc[phase, "months"] == pytest.approx(real.loc[phase, "months"], rel=0.15), phase
        assert df.loc[phase, "enrollment"] == pytest.approx(real.loc[phase, "enrollment"], rel=0.3), phase


@pytest.fixture(scope="module")
def histories():
    from analytics.generator.histories import enrollment_histories

    return [h for seed in (41, 42) for h in enrollment_histories("enrollment", seed)]


def _study_outcomes(histories) -> pd.DataFrame:
    rows = []
    for h in histories:
        facts = h.study
        randomized = h.subjects["randomization_date"].dropna().sort_values()
        target = facts["target_enrollment"]
        done = len(randomized) >= target
        lpi = randomized.iloc[target - 1] if done else pd.NaT
        planned_days = (facts["planned_lpi"] - facts["planned_fpi"]).days
        rows.append({
            "phase": facts["phase"],
            "done": done,
            "ratio": (lpi - facts["planned_fpi"]).days / planned_days if done else np.nan,
            # ClinicalTrials.gov start (first participant) to completion (last participant's last visit).
            "months": ((lpi - randomized.iloc[0]).days + facts["treatment_duration_days"] + facts["follow_up_days"])
            / 30.44 if done else np.nan,
        })
    return pd.DataFrame(rows)


def test_studies_enroll_late_like_real_ones(histories) -> None:
    outcomes = _study_outcomes(histories)
    assert outcomes["done"].mean() >= 0.9
    # Sponsors take nearly double the planned enrollment time, with a tail of badly late studies.
    assert 1.5 <= outcomes["ratio"].median() <= 2.3
    assert (outcomes["ratio"] < 1).mean() >= 0.05  # some finish early
    assert (outcomes["ratio"] > 3).mean() >= 0.08
    sites = pd.concat([h.sites for h in histories])
    start_up_weeks = (sites["activation_date"] - sites["selection_date"]).dt.days.dropna() / 7
    assert 27 <= start_up_weeks.median() <= 35  # Tufts: ~31 weeks
    assert 0.06 <= sites["never_activates"].mean() <= 0.14
    to_first = pd.concat([
        (h.subjects.groupby("study_site_id")["screening_date"].min()
         - h.sites.set_index("study_site_id")["activation_date"]).dt.days.dropna() for h in histories])
    assert 20 <= to_first.median() <= 45  # activation to first patient ~32 days


def test_study_durations_match_clinicaltrials_gov_by_phase(histories, shared_data: Path) -> None:
    real = _ctgov_by_phase(shared_data)
    months = _study_outcomes(histories).groupby("phase")["months"].median()
    for phase in ("Phase 2", "Phase 3"):  # the phases with enough generated studies for a stable median
        assert months[phase] == pytest.approx(real.loc[REAL_PHASES[phase], "months"], rel=0.2), phase


def test_rates_drift_with_seasonal_dips(histories) -> None:
    randomized = pd.concat([h.subjects for h in histories])["screening_date"].dropna()
    by_month = randomized.dt.month.value_counts(normalize=True).sort_index()
    assert by_month[12] < 0.8 * by_month[[3, 4, 5, 9, 10]].mean()
    assert by_month[8] < 0.9 * by_month[[3, 4, 5, 9, 10]].mean()


def test_demographics_use_cdisc_terms_and_vary_by_site(demo_db: Path) -> None:
    races = set(_frame(demo_db, "SELECT DISTINCT race FROM main.subjects")["race"])
    assert {"WHITE", "BLACK OR AFRICAN AMERICAN", "ASIAN", "NOT REPORTED"} <= races
    by_site = _frame(demo_db, """
        SELECT s.study_site_id, si.country_code, avg((race = 'BLACK OR AFRICAN AMERICAN')::INT) AS black,
               avg((race = 'NOT REPORTED')::INT) AS not_reported, count(*) AS n
        FROM main.subjects s JOIN main.study_sites ss USING (study_site_id) JOIN main.sites si USING (site_id)
        GROUP BY ALL HAVING count(*) >= 15
    """)
    us = by_site[by_site["country_code"] == "US"]
    assert us["black"].std() > 0.03  # sites differ beyond chance
    assert by_site.loc[by_site["country_code"] == "FR", "not_reported"].median() > 0.6
    sex = _frame(demo_db, "SELECT st.indication, avg((s.sex = 'F')::INT) AS f FROM main.subjects s "
                          "JOIN main.studies st USING (study_id) WHERE st.phase <> 'Phase 1' GROUP BY 1")
    assert sex["f"].max() - sex["f"].min() > 0.2  # the condition decides the sex mix
    plans = _frame(demo_db, "SELECT st.phase, count(DISTINCT t.study_id) AS n FROM main.studies st "
                            "LEFT JOIN main.enrollment_targets t USING (study_id) GROUP BY 1").set_index("phase")
    studies = _frame(demo_db, "SELECT phase, count(*) AS n FROM main.studies GROUP BY 1").set_index("phase")
    assert plans.loc["Phase 3", "n"] == studies.loc["Phase 3", "n"]  # every Phase 3 study has a diversity plan
    shares = _frame(demo_db, "SELECT study_id, dimension, sum(target_share) AS total FROM main.enrollment_targets GROUP BY ALL")
    assert shares["total"].between(0.9, 1.05).all()


def test_free_text_is_varied(demo_db: Path) -> None:
    distinct = _one(demo_db, "SELECT count(DISTINCT description) FROM main.capas")
    total = _one(demo_db, "SELECT count(*) FROM main.capas")
    assert distinct > 0.5 * total
    assert _one(demo_db, "SELECT count(DISTINCT category) FROM main.protocol_deviations") >= 6


def test_every_anomaly_type_is_labelled(demo_db: Path) -> None:
    labelled = set(_frame(demo_db, "SELECT DISTINCT anomaly_type FROM truth.anomalies")["anomaly_type"])
    assert labelled == set(ANOMALY_TYPES) | set(SHIFT_TYPES)


def test_removing_all_adverse_events_leaves_none_at_that_site(demo_db: Path) -> None:
    df = _frame(demo_db, """
        SELECT a.study_site_id, (SELECT count(*) FROM main.adverse_events ae
                                 WHERE ae.study_site_id = a.study_site_id) AS aes
        FROM truth.anomalies a WHERE anomaly_type = 'ae_under_reporting' AND magnitude = 1.0
    """)
    assert len(df) > 0 and (df["aes"] == 0).all()


def test_fabricated_subjects_have_punctual_low_variance_vitals(demo_db: Path) -> None:
    df = _frame(demo_db, """
        WITH fab AS (SELECT subject_id FROM truth.anomalies WHERE level = 'subject')
        SELECT (m.subject_id IN (SELECT subject_id FROM fab)) AS fabricated, m.subject_id, m.value
        FROM main.measurements m WHERE m.test_code = 'SYSBP'
    """)
    sd = df.groupby(["fabricated", "subject_id"])["value"].std().groupby(level=0).median()
    assert sd[True] < 0.5 * sd[False]
    terminal = df.assign(digit=(df["value"] % 10).astype(int)).groupby("fabricated")["digit"].apply(
        lambda d: np.isin(d, [0, 5]).mean())
    assert terminal[True] > 0.6 and terminal[False] < 0.35
    # Invented subjects are implausibly typical: their means sit close to the population centre.
    means = df.groupby(["fabricated", "subject_id"])["value"].mean()
    distance = (means - df["value"].median()).abs().groupby(level=0).median()
    assert distance[True] < 0.5 * distance[False]


def test_historical_trials_carry_what_feasibility_reads(demo_db: Path) -> None:
    df = _frame(demo_db, """
        SELECT t.*, (SELECT count(*) FROM main.historical_trial_sites s WHERE s.nct_id = t.nct_id) AS listed,
               (SELECT count(*) FROM main.historical_trial_sites s JOIN main.sites i ON i.name = s.facility
                WHERE s.nct_id = t.nct_id) AS at_portfolio
        FROM main.historical_trials t
    """)
    for column in ("sponsor_class", "eligibility_criteria", "primary_completion_date", "sex", "arm_count",
                   "interventions", "primary_outcome", "study_type"):
        assert df[column].notna().mean() > 0.95, column
    assert (df["listed"] == df["n_sites"]).all()
    assert 0.2 < df["at_portfolio"].sum() / df["listed"].sum() < 0.5
    assert set(df["status"]) >= {"COMPLETED", "TERMINATED", "RECRUITING", "ACTIVE_NOT_RECRUITING", "NOT_YET_RECRUITING"}
    running = df[df["status"].isin(["RECRUITING", "ACTIVE_NOT_RECRUITING"])]
    as_of, updated = pd.Timestamp("2026-11-01"), pd.to_datetime(df["last_update_date"])
    assert updated.notna().all() and (updated <= as_of).all()
    # Every running record's anticipated completion lay ahead when it was last updated (month-precise dates
    # are the first of their month). Records kept up to date still show it ahead; stale ones are past it.
    anticipated = pd.to_datetime(running["completion_date"])
    assert (anticipated > updated[running.index] - pd.Timedelta(days=31)).all()
    overdue = running[anticipated <= as_of]
    assert 0 < len(overdue) < 0.1 * len(running)
    assert (updated[overdue.index] < pd.to_datetime(overdue["completion_date"]) + pd.Timedelta(days=31)).all()
    assert (updated[running.index] > as_of - pd.Timedelta(days=2 * 365)).all()
    unknown = df[df["status"] == "UNKNOWN"]
    assert len(unknown) and (updated[unknown.index] <= as_of - pd.Timedelta(days=2 * 365)).all()
    ended = df[df["status"].isin(["COMPLETED", "TERMINATED"])]
    assert (updated[ended.index] >= pd.to_datetime(ended["completion_date"]) - pd.Timedelta(days=31)).all()
    done = df[df["status"] == "COMPLETED"]
    months = (pd.to_datetime(done["completion_date"]) - pd.to_datetime(done["start_date"])).dt.days / 30.44
    per_site = done["enrollment"] / done["n_sites"]
    assert months.corr(per_site, method="spearman") > 0.3  # more participants per site take longer
    industry = done.groupby(done["sponsor_class"] == "INDUSTRY")["n_sites"].median()
    assert industry[True] > industry[False]
