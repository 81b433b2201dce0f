"""Write a synthetic CRO portfolio into an open warehouse, study by study.

Each study draws from its own random stream (``[seed, 100 + study index]``), so the output is
deterministic for a seed and a study's data do not depend on how many studies precede it. Within a
study all work is vectorized numpy; the per-study loop is the only Python loop at scale.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable

import duckdb
import numpy as np
import pyarrow as pa

from analytics.core import schema
from analytics.generator import reference as ref
from analytics.generator.clinical import (
    ae_outcomes,
    serious_criteria,
    simulate_adverse_events,
    simulate_deviation_shift,
    simulate_deviations,
    simulate_measurements,
)
from analytics.generator.columns import (
    coded_column,
    date_column,
    group_ranges,
    insert,
    lognormal_days,
    nullable_int,
    text_column,
)
from analytics.generator.data_errors import inject_data_errors
from analytics.generator.demographics import condition_population_rows, diversity_targets
from analytics.generator.enrollment import simulate_subjects, simulate_visits
from analytics.generator.history import Institutions, historical_trials
from analytics.generator.operations import (
    FORMS,
    SEVERITIES,
    simulate_monitoring,
    simulate_pages,
    simulate_quality,
    simulate_queries,
)
from analytics.generator.plan import ANOMALY_TYPES, PortfolioPlan, make_plan
from analytics.generator.presets import PRESETS
from analytics.generator.quality_text import THEME_NAMES
from analytics.generator.recruitment import write_prescreening

GENERATOR_VERSION = "2.1"
# Extra random streams of a study (beside its main stream), so adding them changed no other data.
QUALITY_STREAM, DEVIATION_SHIFT_STREAM = 1, 2
Progress = Callable[[float, str], None]


class _Ids:
    """Running counters for the BIGINT keys of the large tables."""

    def __init__(self) -> None:
        self.next: dict[str, int] = {}

    def take(self, name: str, count: int) -> np.ndarray:
        start = self.next.get(name, 1)
        self.next[name] = start + count
        return np.arange(start, start + count, dtype="int64")


def generate_portfolio(
    con: duckdb.DuckDBPyConnection, preset_name: str, seed: int, progress: Progress | None = None,
    data_errors_per_check: int | None = None,
) -> dict[str, int]:
    """Generate the ``preset_name`` portfolio for ``seed`` into ``con``; returns rows per table.

    ``data_errors_per_check`` overrides the preset's number of labelled data errors of each edit
    check's kind (0: the clean portfolio).
    """
    preset = PRESETS[preset_name]
    report = progress or (lambda fraction, message: None)
    started = time.perf_counter()
    plan = make_plan(preset, seed)
    _write_reference(con, plan)
    report(0.02, "reference data")
    trials, trial_sites = historical_trials(preset, seed, Institutions(plan.institution_names, plan.institution_city,
                                                                       plan.institution_country))
    insert(con, "main.historical_trials", trials)
    insert(con, "main.historical_trial_sites", trial_sites)
    ids = _Ids()
    anomaly_rows: list[dict[str, object]] = []
    for study in range(preset.studies):
        _write_study(con, plan, study, seed, ids, anomaly_rows)
        write_prescreening(con, plan, study, seed, plan.study_ids[study],
                           [plan.ss_ids[k] for k in np.flatnonzero(plan.ss_study == study)], preset.prescreen_per_site)
        report(0.03 + 0.95 * (study + 1) / preset.studies, f"study {study + 1}/{preset.studies}")
    _write_anomalies(con, anomaly_rows)
    errors = preset.data_errors_per_check if data_errors_per_check is None else data_errors_per_check
    if errors:
        inject_data_errors(con, errors, seed, preset.as_of)
        report(0.99, f"{errors} labelled data errors of each edit check's kind")
    con.execute(
        "INSERT INTO main.data_provenance (study_id, file_name, source_type, row_count, rejected_rows, "
        "imported_at, importer_version, notes) "
        "SELECT study_id, 'generator', 'synthetic', NULL, 0, current_timestamp::TIMESTAMP, ?, ? FROM main.studies",
        [f"analytics.generator {GENERATOR_VERSION}", f"synthetic portfolio, preset {preset_name}, seed {seed}"],
    )
    report(1.0, f"done in {time.perf_counter() - started:.1f} s")
    return row_counts(con)


def row_counts(con: duckdb.DuckDBPyConnection) -> dict[str, int]:
    """Rows per table of the warehouse, in schema order."""
    return {t.qualified_name: con.execute(f"SELECT count(*) FROM {t.qualified_name}").fetchone()[0] for t in schema.TABLES}


def _write_reference(con: duckdb.DuckDBPyConnection, plan: PortfolioPlan) -> None:
    insert(con, "main.sponsors", {"sponsor_id": text_column(plan.sponsor_ids), "name": text_column(plan.sponsor_names)})
    insert(con, "main.countries", {
        "country_code": text_column([c[0] for c in ref.COUNTRIES]),
        "name": text_column([c[1] for c in ref.COUNTRIES]),
        "region": text_column([c[2] for c in ref.COUNTRIES]),
    })
    insert(con, "main.sites", {
        "site_id": text_column(plan.institution_ids),
        "name": text_column(plan.institution_names),
        "country_code": text_column([ref.COUNTRIES[c][0] for c in plan.institution_country]),
        "city": text_column(plan.institution_city),
    })
    insert(con, "main.condition_population", {k: pa.array(v) for k, v in condition_population_rows().items()})


def _write_study(
    con: duckdb.DuckDBPyConnection, plan: PortfolioPlan, study: int, seed: int, ids: _Ids,
    anomaly_rows: list[dict[str, object]],
) -> None:
    rng = np.random.default_rng([seed, 100 + study])
    as_of = plan.as_of_day
    sites = np.flatnonzero(plan.ss_study == study)
    study_id = plan.study_ids[study]
    site_ids = [plan.ss_ids[k] for k in sites]

    subjects = simulate_subjects(plan, study, sites, rng)
    visits = simulate_visits(plan, study, sites, subjects, rng)
    aes = simulate_adverse_events(plan, study, sites, subjects, rng)
    deviations = simulate_deviations(plan, study, sites, subjects, rng)
    measurements = simulate_measurements(plan, study, subjects, visits, rng)
    pages = simulate_pages(plan, sites, subjects, visits, rng)
    queries = simulate_queries(plan, sites, subjects, visits, pages, rng)
    deviations = deviations + simulate_deviation_shift(
        plan, study, sites, subjects, deviations, np.random.default_rng([seed, 100 + study, DEVIATION_SHIFT_STREAM]))
    quality = simulate_quality(plan, study, sites, np.random.default_rng([seed, 100 + study, QUALITY_STREAM]))

    # Subject keys: site number and rank of screening within the site.
    order = np.lexsort((subjects.screening, subjects.site))
    rank = np.empty(len(subjects), dtype="int64")
    _, within = group_ranges(np.bincount(subjects.site[order], minlength=len(sites)))
    rank[order] = within
    subject_ids = [f"{site_ids[s]}-{r + 1:03d}" for s, r in zip(subjects.site, rank)]

    randomized = ~np.isnan(subjects.randomization)
    target = int(plan.study_target[study])
    rand_sorted = np.sort(subjects.randomization[randomized])
    enrollment_complete = len(rand_sorted) >= target
    on_study = randomized & ~subjects.completed & np.isnan(subjects.discontinuation)
    attended = ~np.isnan(visits.actual)
    last_visit = float(visits.actual[attended].max()) if attended.any() else np.nan
    follow_up = float(plan.study_follow_up[study])
    # The last visit is the last subject's follow-up visit after its last treatment visit.
    lplv = last_visit + follow_up if enrollment_complete and not on_study.any() else np.nan
    activation = plan.ss_activation[sites]
    if np.isnan(activation).all():
        status = "Planned"
    elif not randomized.any():
        status = "Start-up"
    elif not enrollment_complete:
        status = "Enrolling"
    elif np.isnan(lplv) or lplv + 30 > as_of:
        status = "Follow-up"
    else:
        status = "Closed"
    closed = status == "Closed"

    monitoring = simulate_monitoring(plan, sites, subjects, visits, closed, rng)
    fpi = float(plan.study_fpi[study])
    enroll_days = float(plan.study_enroll_days[study])
    duration = float(plan.study_visits[study] * plan.study_interval[study])
    planned_lpi = fpi + enroll_days

    insert(con, "main.studies", {
        "study_id": text_column([study_id]),
        "protocol_id": text_column([plan.protocol_ids[study]]),
        "sponsor_id": text_column([plan.sponsor_ids[plan.study_sponsor[study]]]),
        "title": text_column([f"{plan.study_phase[study]} study in {plan.study_indication[study]}"]),
        "phase": text_column([plan.study_phase[study]]),
        "therapeutic_area": text_column([ref.THERAPEUTIC_AREAS[plan.study_ta[study]].name]),
        "indication": text_column([plan.study_indication[study]]),
        "target_enrollment": pa.array([target]),
        "planned_fpi": date_column(np.array([fpi])),
        "planned_lpi": date_column(np.array([planned_lpi])),
        "status": text_column([status]),
        "blinded": pa.array([bool(plan.study_blinded[study])]),
        "visit_interval_days": pa.array([int(plan.study_interval[study])]),
        "planned_visits": pa.array([int(plan.study_visits[study])]),
        "treatment_duration_days": pa.array([int(duration)]),
        "follow_up_days": pa.array([int(follow_up)]),
        "data_source": text_column(["synthetic"]),
    })

    # A site that never activates is written off once a year has passed since its selection.
    never = plan.ss_never[sites] & (plan.ss_selection[sites] + 365 < as_of)
    site_status = np.where(np.isnan(activation), np.where(never, "Never activated", "Planned"),
                           "Closed" if closed else "Active")
    n_sites = len(sites)
    study_col = lambda n: coded_column(np.zeros(n, dtype="int64"), [study_id])  # noqa: E731
    insert(con, "main.study_sites", {
        "study_site_id": text_column(site_ids),
        "study_id": study_col(n_sites),
        "site_id": text_column([plan.institution_ids[i] for i in plan.ss_institution[sites]]),
        "site_number": text_column([plan.ss_number[k] for k in sites]),
        "investigator": text_column([plan.ss_investigator[k] for k in sites]),
        "status": text_column(site_status.tolist()),
        "selection_date": date_column(plan.ss_selection[sites]),
        "planned_activation_date": date_column(plan.ss_planned_activation[sites]),
        "activation_date": date_column(activation),
        "planned_enrollment": pa.array(plan.ss_planned_enrollment[sites].astype("int64")),
    })

    n_subj = len(subjects)
    site_col = lambda local: coded_column(local, site_ids)  # noqa: E731
    subject_col = lambda local: coded_column(local, subject_ids)  # noqa: E731
    subject_status = np.select(
        [subjects.screen_failed, subjects.completed, ~np.isnan(subjects.discontinuation), randomized],
        ["Screen failure", "Completed", "Discontinued", "On study"], "Screening",
    )
    insert(con, "main.subjects", {
        "subject_id": text_column(subject_ids),
        "study_id": study_col(n_subj),
        "study_site_id": site_col(subjects.site),
        "sex": coded_column(subjects.sex, ["F", "M"]),
        "age": pa.array(subjects.age),
        "race": coded_column(subjects.race, list(schema.RACES)),
        "ethnicity": coded_column(subjects.ethnicity, list(schema.ETHNICITIES)),
        "screening_date": date_column(subjects.screening),
        "consent_date": date_column(subjects.consent),
        "randomization_date": date_column(subjects.randomization),
        "screen_failure_reason": coded_column(subjects.sf_reason, [r for r, _ in ref.SCREEN_FAILURE_REASONS]),
        "discontinuation_date": date_column(subjects.discontinuation),
        "discontinuation_reason": coded_column(subjects.disc_reason, [r for r, _ in ref.DISCONTINUATION_REASONS]),
        "status": text_column(subject_status.tolist()),
    })
    arms = ref.ARMS_BLINDED if plan.study_blinded[study] else ref.ARMS_OPEN
    rand_idx = np.flatnonzero(randomized)
    insert(con, "restricted.treatment_assignments", {
        "subject_id": text_column([subject_ids[i] for i in rand_idx]),
        "study_id": study_col(len(rand_idx)),
        "arm": coded_column(rng.integers(0, len(arms), len(rand_idx)), list(arms)),
    })

    visit_ids = ids.take("visit", len(visits))
    max_visit = int(visits.number.max(initial=0))
    visit_names = ["Screening"] + [f"Visit {k}" for k in range(1, max_visit + 1)]
    insert(con, "main.visits", {
        "visit_id": pa.array(visit_ids),
        "subject_id": subject_col(visits.subject),
        "study_id": study_col(len(visits)),
        "study_site_id": site_col(subjects.site[visits.subject]),
        "visit_number": pa.array(visits.number.astype("float64")),
        "visit_name": coded_column(visits.number, visit_names),
        "scheduled_date": date_column(visits.scheduled),
        "window_days": pa.array(visits.window.astype("int64")),
        "actual_date": date_column(visits.actual),
        "entry_date": date_column(visits.entry),
        "status": coded_column(np.where(np.isnan(visits.actual), 1, 0), ["Completed", "Missed"]),
    })

    page_ids = ids.take("page", len(pages.visit))
    page_subject = visits.subject[pages.visit]
    insert(con, "main.crf_pages", {
        "page_id": pa.array(page_ids),
        "visit_id": pa.array(visit_ids[pages.visit]),
        "study_id": study_col(len(page_ids)),
        "study_site_id": site_col(subjects.site[page_subject]),
        "subject_id": subject_col(page_subject),
        "form": coded_column(pages.form, [f for f, _ in FORMS]),
        "entry_date": date_column(pages.entry),
        "data_points": pa.array(pages.points.astype("int64")),
        "changed_points": pa.array(pages.changed.astype("int64")),
        "sdv_points": pa.array(pages.sdv_points.astype("int64")),
        "sdv_date": date_column(pages.sdv_date),
    })

    query_subject = page_subject[queries.page]
    status_code = np.where(~np.isnan(queries.closed), 2, np.where(~np.isnan(queries.answered), 1, 0))
    insert(con, "main.queries", {
        "query_id": pa.array(ids.take("query", len(queries.page))),
        "study_id": study_col(len(queries.page)),
        "study_site_id": site_col(subjects.site[query_subject]),
        "subject_id": subject_col(query_subject),
        "page_id": pa.array(page_ids[queries.page]),
        "origin": coded_column(queries.manual.astype("int64"), ["Edit check", "Manual"]),
        "opened_date": date_column(queries.opened),
        "answered_date": date_column(queries.answered),
        "closed_date": date_column(queries.closed),
        "status": coded_column(status_code, list(schema.QUERY_STATUSES)),
    })

    onset_text = np.datetime_as_string(aes.onset.astype("int64").astype("datetime64[D]")).tolist()
    insert(con, "main.adverse_events", {
        "ae_id": pa.array(ids.take("ae", len(aes.subject))),
        "study_id": study_col(len(aes.subject)),
        "study_site_id": site_col(subjects.site[aes.subject]),
        "subject_id": subject_col(aes.subject),
        "term": coded_column(aes.term, [t for t, _, _ in ref.AE_TERMS]),
        "body_system": coded_column(aes.term, [b for _, b, _ in ref.AE_TERMS]),
        "serious": pa.array(aes.serious),
        "grade": pa.array(aes.grade.astype("int64")),
        "onset_date": date_column(aes.onset),
        "onset_date_text": text_column(onset_text),
        "end_date": date_column(aes.end),
        "report_date": date_column(aes.report),
        "outcome": text_column(ae_outcomes(aes)),
        # A stream of its own, so adding SAE details left every other generated value as it was.
        "serious_criteria": text_column(serious_criteria(aes, np.random.default_rng([seed, 300 + study]))),
    })

    insert(con, "main.protocol_deviations", {
        "deviation_id": pa.array(ids.take("deviation", len(deviations.subject))),
        "study_id": study_col(len(deviations.subject)),
        "study_site_id": site_col(subjects.site[deviations.subject]),
        "subject_id": subject_col(deviations.subject),
        "category": coded_column(deviations.category, [c[0] for c in ref.DEVIATION_CATEGORIES]),
        "important": pa.array(deviations.important),
        "description": text_column(deviations.description),
        "occurred_date": date_column(deviations.occurred),
        "reported_date": date_column(deviations.reported),
    })

    m_subject = visits.subject[measurements.visit]
    tests = ref.LAB_TESTS
    ref_low = np.array([t.ref_low if t.ref_low is not None else np.nan for t in tests])[measurements.test]
    ref_high = np.array([t.ref_high if t.ref_high is not None else np.nan for t in tests])[measurements.test]
    insert(con, "main.measurements", {
        "measurement_id": pa.array(ids.take("measurement", len(measurements.visit))),
        "study_id": study_col(len(measurements.visit)),
        "study_site_id": site_col(subjects.site[m_subject]),
        "subject_id": subject_col(m_subject),
        "visit_id": pa.array(visit_ids[measurements.visit]),
        "domain": coded_column((np.array([t.domain for t in tests])[measurements.test] == "VS").astype("int64"), ["LB", "VS"]),
        "test_code": coded_column(measurements.test, [t.code for t in tests]),
        "value": pa.array(measurements.value),
        "unit": coded_column(measurements.test, [t.unit for t in tests]),
        "ref_low": pa.array(ref_low, mask=np.isnan(ref_low)),
        "ref_high": pa.array(ref_high, mask=np.isnan(ref_high)),
        "grade": nullable_int(measurements.grade, measurements.grade < 0),
        "collected_date": date_column(visits.actual[measurements.visit]),
    })

    insert(con, "main.monitoring_visits", {
        "monitoring_visit_id": pa.array(ids.take("monitoring", len(monitoring.site))),
        "study_id": study_col(len(monitoring.site)),
        "study_site_id": site_col(monitoring.site),
        "visit_type": coded_column(monitoring.kind, list(schema.MONITORING_VISIT_TYPES)),
        "planned_date": date_column(monitoring.planned),
        "actual_date": date_column(monitoring.actual),
        "report_date": date_column(monitoring.report),
        "findings": pa.array(monitoring.findings.astype("int64")),
    })

    qe_ids = ids.take("quality_event", len(quality.qe_site))
    insert(con, "main.quality_events", {
        "quality_event_id": pa.array(qe_ids),
        "study_id": study_col(len(qe_ids)),
        "study_site_id": site_col(quality.qe_site),
        "category": coded_column(quality.qe_category, [c[0] for c in ref.QUALITY_EVENT_CATEGORIES]),
        "severity": coded_column(quality.qe_severity, list(SEVERITIES)),
        "description": text_column(quality.qe_description),
        "reported_date": date_column(quality.qe_reported),
    })
    insert(con, "truth.quality_event_labels", {
        "quality_event_id": pa.array(qe_ids),
        "study_id": study_col(len(qe_ids)),
        "theme": coded_column(quality.qe_theme, list(THEME_NAMES)),
        "other_theme": coded_column(quality.qe_other_theme, list(THEME_NAMES)),
        "recurrence_of": nullable_int(np.where(quality.qe_recurrence_of >= 0, qe_ids[quality.qe_recurrence_of], 0),
                                      quality.qe_recurrence_of < 0),
    })
    insert(con, "main.capas", {
        "capa_id": pa.array(ids.take("capa", len(quality.capa_event))),
        "study_id": study_col(len(quality.capa_event)),
        "study_site_id": site_col(quality.qe_site[quality.capa_event]),
        "quality_event_id": pa.array(qe_ids[quality.capa_event]),
        "root_cause_category": coded_column(quality.capa_root_cause, [r[0] for r in ref.ROOT_CAUSES]),
        "description": text_column(quality.capa_description),
        "owner": text_column(quality.capa_owner),
        "opened_date": date_column(quality.capa_opened),
        "original_due_date": date_column(quality.capa_original_due),
        "current_due_date": date_column(quality.capa_current_due),
        "extension_count": pa.array(quality.capa_extensions.astype("int64")),
        "closed_date": date_column(quality.capa_closed),
        "effectiveness_check_date": date_column(quality.capa_check_date),
        "effectiveness_result": coded_column(quality.capa_effective, ["Not effective", "Effective"]),
    })

    planned_lplv = planned_lpi + duration + follow_up
    planned = np.array([fpi - 150, fpi - 30, fpi, fpi + enroll_days / 2, planned_lpi, planned_lplv,
                        planned_lplv + 60, planned_lplv + 150])
    half = int(np.ceil(target / 2))
    first_activation = np.nanmin(activation) if not np.isnan(activation).all() else np.nan
    actual = np.array([
        planned[0] + np.round(rng.normal(0, 10)),
        first_activation,
        rand_sorted[0] if len(rand_sorted) else np.nan,
        rand_sorted[half - 1] if len(rand_sorted) >= half else np.nan,
        rand_sorted[target - 1] if enrollment_complete else np.nan,
        lplv,
        np.nan,
        np.nan,
    ])
    actual[6] = lplv + np.floor(lognormal_days(rng, 45.0, 0.4, 1))[0]
    actual[7] = actual[6] + np.floor(lognormal_days(rng, 100.0, 0.3, 1))[0]
    actual[actual > as_of] = np.nan
    insert(con, "main.milestones", {
        "study_id": study_col(len(ref.MILESTONES)),
        "milestone": text_column(list(ref.MILESTONES)),
        "sequence": pa.array(np.arange(1, len(ref.MILESTONES) + 1)),
        "planned_date": date_column(np.floor(planned)),
        "actual_date": date_column(np.floor(actual)),
    })

    if plan.study_diversity_plan[study]:
        targets = diversity_targets(plan, study, sites)
        insert(con, "main.enrollment_targets", {"study_id": study_col(len(targets["category"])),
                                                **{k: pa.array(v) for k, v in targets.items()}})

    for local, k in enumerate(sites):
        code = plan.ss_anomaly[k]
        if code < 0:
            continue
        name = ANOMALY_TYPES[code]
        magnitude = float(plan.ss_anomaly_magnitude[k])
        anomaly_rows.append({
            "anomaly_type": name, "level": "site", "study_id": study_id, "study_site_id": site_ids[local],
            "subject_id": None, "magnitude": magnitude, "detail": _anomaly_detail(name, magnitude), "start_date": None,
        })
    for name, day, magnitude in _study_shifts(plan, study):
        anomaly_rows.append({
            "anomaly_type": name, "level": "study", "study_id": study_id, "study_site_id": None, "subject_id": None,
            "magnitude": magnitude, "detail": _anomaly_detail(name, magnitude, plan.sponsor_ids[plan.study_sponsor[study]]),
            "start_date": dt.date(1970, 1, 1) + dt.timedelta(days=int(day)),
        })
    for i in np.flatnonzero(subjects.fabricated):
        anomaly_rows.append({
            "anomaly_type": "fabricated_data", "level": "subject", "study_id": study_id,
            "study_site_id": site_ids[subjects.site[i]], "subject_id": subject_ids[i], "magnitude": 1.0,
            "detail": "vital signs with low variance, digit preference and copied vectors; punctual visits",
            "start_date": None,
        })


def _study_shifts(plan: PortfolioPlan, study: int) -> list[tuple[str, float, float]]:
    """The process shifts that touch ``study``: (anomaly type, start day, magnitude)."""
    shifts = []
    if not np.isnan(plan.study_deviation_shift_day[study]):
        shifts.append(("deviation_shift", float(plan.study_deviation_shift_day[study]),
                       float(plan.study_deviation_shift_factor[study])))
    sponsor = plan.study_sponsor[study]
    if not np.isnan(plan.sponsor_closure_shift_day[sponsor]):
        shifts.append(("capa_closure_shift", float(plan.sponsor_closure_shift_day[sponsor]),
                       float(plan.sponsor_closure_shift_factor[sponsor])))
    return shifts


def _anomaly_detail(name: str, magnitude: float, sponsor: str = "") -> str:
    return {
        "deviation_shift": f"deviation rate x{magnitude:g} at every site from the start date",
        "capa_closure_shift": f"sponsor {sponsor}: CAPAs take x{magnitude:g} as long to close from the start date",
        "ae_under_reporting": f"{magnitude:.0%} of adverse events removed",
        "ae_over_reporting": f"adverse event hazard x{magnitude:g}",
        "fabricated_data": f"{magnitude:.0%} of randomized subjects fabricated",
        "slow_data_entry": f"data-entry lag x{magnitude:g}",
        "query_backlog": f"query answer time x{magnitude:g}",
        "excess_important_deviations": f"deviation rate x{magnitude:g}, importance doubled",
        "enrollment_stall": f"site stops screening after {magnitude:.0%} of its open window",
        "capa_recurrence": "CAPA not effective; same quality event recurs",
    }[name]


def _write_anomalies(con: duckdb.DuckDBPyConnection, rows: list[dict[str, object]]) -> None:
    if not rows:
        return
    columns = {key: [r[key] for r in rows] for key in rows[0]}
    insert(con, "truth.anomalies", {
        "anomaly_id": pa.array(np.arange(1, len(rows) + 1, dtype="int32")),
        **{key: pa.array(values) for key, values in columns.items()},
    })
