"""Facts queries of the operational documents: monitoring visit report, sponsor status update,
meeting summary and data-quality findings.

Each function takes a :class:`~analytics.drafting.context.FactContext` and returns facts in the
order they are numbered. SQL is fixed and parameterized and reads only scoped relations; figures
that exist in the warehouse's analytics (the Overview's study table, the KRI engine's stored flags,
the enrollment forecasts) are read from there rather than recomputed.
"""

from __future__ import annotations

import pandas as pd

from analytics.core.scope import PortfolioFilter
from analytics.drafting.context import FactContext, SubjectUnavailable
from analytics.drafting.facts import Fact, change, days_between, fact, percent
from analytics.kri.service import kri_names
from analytics.portfolio.overview import milestones_at_risk, study_overview

LATE_ENTRY_DAYS = 10
OLD_QUERY_DAYS = 30
TOP_FLAGGED = 5

SUBJECT_NOUNS = ("subjects", "participants", "patients")

_SITE_SQL = """
SELECT s.study_site_id, s.study_id, s.site_number, s.site_name, s.city, s.country_code, s.investigator, s.status,
       st.protocol_id
FROM scoped_sites s JOIN scoped_studies st USING (study_id) WHERE s.study_site_id = $site"""

_SITE_COUNTS_SQL = """
SELECT
  (SELECT count(*) FROM subjects WHERE study_site_id = $site) AS screened,
  (SELECT count(randomization_date) FROM subjects WHERE study_site_id = $site) AS randomized,
  (SELECT count(*) FROM subjects WHERE study_site_id = $site AND randomization_date > $period_start) AS randomized_period,
  (SELECT count(*) FROM subjects WHERE study_site_id = $site AND status = 'Screen failure') AS screen_failures,
  (SELECT count(discontinuation_date) FROM subjects WHERE study_site_id = $site) AS discontinued,
  (SELECT count(*) FROM queries WHERE study_site_id = $site AND status <> 'Closed') AS open_queries,
  (SELECT count(*) FROM queries WHERE study_site_id = $site AND status <> 'Closed'
       AND date_diff('day', opened_date, $as_of) > $old_days) AS old_queries,
  (SELECT count(*) FROM visits WHERE study_site_id = $site AND entry_date IS NULL AND actual_date IS NOT NULL
       AND date_diff('day', actual_date, $as_of) > $late_days) AS late_entry_visits,
  (SELECT count(*) FROM protocol_deviations WHERE study_site_id = $site AND occurred_date > $period_start) AS deviations,
  (SELECT count(*) FROM protocol_deviations WHERE study_site_id = $site AND occurred_date > $period_start
       AND important) AS important_deviations,
  (SELECT count(*) FROM adverse_events WHERE study_site_id = $site AND onset_date > $period_start) AS aes,
  (SELECT count(*) FROM adverse_events WHERE study_site_id = $site AND onset_date > $period_start AND serious) AS saes,
  (SELECT median(date_diff('day', onset_date, report_date)) FROM adverse_events
       WHERE study_site_id = $site AND onset_date > $period_start AND report_date IS NOT NULL) AS ae_report_lag,
  (SELECT count(*) FROM capas WHERE study_site_id = $site AND closed_date IS NULL) AS open_capas,
  (SELECT count(*) FROM capas WHERE study_site_id = $site AND closed_date IS NULL AND current_due_date < $as_of)
       AS overdue_capas"""

_LAST_VISIT_SQL = """
SELECT visit_type, actual_date, report_date, findings FROM monitoring_visits
WHERE study_site_id = $site AND actual_date IS NOT NULL ORDER BY actual_date DESC LIMIT 1"""

_SITE_FLAGS_SQL = """
SELECT kri, flag, rate, expected_rate, o_e FROM kri_cells
WHERE method = 'calibrated' AND study_site_id = $site AND flag >= 1
  AND snap = (SELECT max(snap) FROM kri_cells WHERE study_site_id = $site)
ORDER BY flag DESC, p LIMIT $top"""

FLAG_WORDS = {1: "amber", 2: "red"}


def _site_key(ctx: FactContext) -> str:
    return f"study_site_id={ctx.subject}"


def _kri_flag_facts(rows: pd.DataFrame, key: str) -> list[Fact]:
    names = kri_names()
    out: list[Fact] = []
    for r in rows.itertuples():
        group = f"kri:{names.get(r.kri, r.kri)}"
        out += [fact("name", "Key risk indicator", names.get(r.kri, r.kri), "text", "kri_cells", key, group=group),
                fact("flag", "Flag", FLAG_WORDS.get(int(r.flag), "none"), "text", "kri_cells", key, group=group),
                fact("o_e", "Observed over expected", r.o_e, "ratio", "kri_cells", key, group=group)]
    return out


def monitoring_visit_facts(ctx: FactContext) -> list[Fact]:
    """A site's facts for a monitoring visit report summary (subject: a study-site id)."""
    site = ctx.one(_SITE_SQL, site=ctx.subject)
    key = _site_key(ctx)
    counts = ctx.one(_SITE_COUNTS_SQL, site=ctx.subject, old_days=OLD_QUERY_DAYS, late_days=LATE_ENTRY_DAYS)
    visit = ctx.query(_LAST_VISIT_SQL, site=ctx.subject)
    facts = [
        fact("site_name", "Site", site.site_name, "text", "sites", key),
        fact("site_number", "Site number", str(site.site_number), "text", "study_sites", key),
        fact("protocol", "Protocol", site.protocol_id, "id", "studies", f"study_id={site.study_id}"),
        fact("investigator", "Principal investigator", site.investigator, "text", "study_sites", key),
        fact("site_status", "Site status", site.status, "text", "study_sites", key),
        fact("period_days", "Reporting period", ctx.period_days, "days", "the page's period"),
        fact("period_end", "Data as of", ctx.as_of, "date", "meta.warehouse_info"),
    ]
    if not visit.empty:
        v = visit.iloc[0]
        facts += [fact("last_visit_type", "Last monitoring visit type", v.visit_type, "text", "monitoring_visits", key),
                  fact("last_visit_date", "Last monitoring visit", v.actual_date, "date", "monitoring_visits", key),
                  fact("last_visit_findings", "Findings at the last visit", v.findings, "findings",
                       "monitoring_visits", key),
                  days_between("days_since_visit", "Days since the last monitoring visit", v.actual_date, ctx.as_of,
                               "monitoring_visits", key)]
    facts += [
        fact("screened", "Subjects screened", counts.screened, "subjects screened", "subjects", key,
             nouns=SUBJECT_NOUNS),
        fact("randomized", "Subjects randomized", counts.randomized, "subjects randomized", "subjects", key,
             nouns=SUBJECT_NOUNS),
        fact("randomized_period", "Subjects randomized in the period", counts.randomized_period,
             "subjects randomized", "subjects", key, nouns=SUBJECT_NOUNS),
        fact("screen_failures", "Screen failures", counts.screen_failures, "screen failures", "subjects", key,
             nouns=SUBJECT_NOUNS),
        percent("screen_failure_pct", "Screen failures, % of screened", counts.screen_failures, counts.screened,
                "subjects", key),
        fact("discontinued", "Subjects discontinued", counts.discontinued, "subjects discontinued", "subjects", key,
             nouns=SUBJECT_NOUNS),
        fact("open_queries", "Open queries", counts.open_queries, "open queries", "queries", key),
        fact("old_queries", f"Queries open more than {OLD_QUERY_DAYS} days", counts.old_queries, "queries",
             "queries", key),
        percent("old_queries_pct", f"Queries open more than {OLD_QUERY_DAYS} days, % of open queries",
                counts.old_queries, counts.open_queries, "queries", key),
        fact("late_entry_visits", f"Visits not entered more than {LATE_ENTRY_DAYS} days after they took place", counts.late_entry_visits,
             "visits", "visits", key),
        fact("deviations", "Protocol deviations in the period", counts.deviations, "protocol deviations",
             "protocol_deviations", key),
        fact("important_deviations", "Important protocol deviations in the period", counts.important_deviations,
             "important deviations", "protocol_deviations", key),
        fact("aes", "Adverse events with onset in the period", counts.aes, "adverse events", "adverse_events", key,
             nouns=("AEs",)),
        fact("saes", "Serious adverse events with onset in the period", counts.saes, "serious adverse events",
             "adverse_events", key, nouns=("SAEs", "events")),
        fact("ae_report_lag", "Median days from AE onset to entry in the period", counts.ae_report_lag, "days",
             "adverse_events", key),
        fact("open_capas", "Open CAPAs", counts.open_capas, "open CAPAs", "capas", key, nouns=("actions",)),
        fact("overdue_capas", "Open CAPAs past their due date", counts.overdue_capas, "overdue CAPAs", "capas", key,
             nouns=("actions",)),
    ]
    flags = ctx.query(_SITE_FLAGS_SQL, site=ctx.subject, top=TOP_FLAGGED)
    facts.append(fact("flagged_kris", "Key risk indicators flagged amber or red", len(flags), "flagged indicators",
                      "kri_cells", key, nouns=("KRIs", "flags")))
    return facts + _kri_flag_facts(flags, key)


# --- sponsor status update --------------------------------------------------------------------

_FORECAST_SQL = """
SELECT study_id, p_on_time, lpi_p50, lpi_p80, planned_lpi, horizon_date FROM enrollment_study_summary
WHERE list_contains($studies, study_id)"""

_RANDOMIZED_BEFORE_SQL = """
SELECT study_id, count(randomization_date) FILTER (WHERE randomization_date <= $period_start) AS randomized_before
FROM subjects WHERE list_contains($studies, study_id) GROUP BY 1"""


def status_studies(ctx: FactContext) -> pd.DataFrame:
    """The studies a status update covers: one study (``ST001``) or a sponsor's (``sponsor:SP01``)."""
    if ctx.subject.startswith("sponsor:"):
        rows = ctx.query("SELECT study_id, protocol_id FROM scoped_studies WHERE sponsor_id = $sponsor "
                         "ORDER BY study_id", sponsor=ctx.subject.split(":", 1)[1])
    else:
        rows = ctx.query("SELECT study_id, protocol_id FROM scoped_studies WHERE study_id = $study",
                         study=ctx.subject)
    if rows.empty:
        raise SubjectUnavailable(f"'{ctx.subject}' is not available to you")
    return rows


def status_update_facts(ctx: FactContext) -> list[Fact]:
    """A study's or a sponsor's portfolio facts for a sponsor status update."""
    studies = status_studies(ctx)
    ids = studies["study_id"].tolist()
    overview = study_overview(ctx.warehouse, ctx.scope, PortfolioFilter(study_ids=tuple(ids)))
    from analytics.portfolio.overview import risk_signals, with_risk_signals

    overview = with_risk_signals(overview, risk_signals(ctx.warehouse, ctx.scope, PortfolioFilter(study_ids=tuple(ids))))
    forecast = ctx.query(_FORECAST_SQL, studies=ids).set_index("study_id")
    before = ctx.query(_RANDOMIZED_BEFORE_SQL, studies=ids).set_index("study_id")["randomized_before"]
    milestones = milestones_at_risk(ctx.warehouse, ctx.scope, PortfolioFilter(study_ids=tuple(ids)))
    facts: list[Fact] = [
        fact("period_days", "Reporting period", ctx.period_days, "days", "the page's period"),
        fact("period_end", "Data as of", ctx.as_of, "date", "meta.warehouse_info"),
    ]
    if ctx.subject.startswith("sponsor:"):
        facts += [fact("sponsor", "Sponsor", overview["sponsor_name"].iloc[0], "text", "sponsors",
                       f"sponsor_id={ctx.subject.split(':', 1)[1]}"),
                  fact("studies", "Studies", len(overview), "studies", "studies", nouns=("trials",)),
                  fact("total_randomized", "Subjects randomized, all studies", overview["randomized"].sum(),
                       "subjects randomized", "study_overview", nouns=SUBJECT_NOUNS)]
    for r in overview.itertuples():
        group, key = f"study:{r.protocol_id}", f"study_id={r.study_id}"
        facts += [
            fact("name", "Protocol", r.protocol_id, "id", "studies", key, group=group),
            fact("status", "Study status", r.status, "text", "studies", key, group=group),
            fact("enrollment_status", "Enrollment against plan", r.enrollment_status, "text", "study_overview", key,
                 group=group),
            fact("randomized", "Subjects randomized", r.randomized, "subjects randomized", "subjects", key,
                 group=group, nouns=SUBJECT_NOUNS),
            fact("target", "Target enrollment", r.target_enrollment, "subjects targeted", "studies", key,
                 group=group, nouns=SUBJECT_NOUNS),
            percent("pct_target", "Randomized, % of target", r.randomized, r.target_enrollment, "subjects", key,
                    group=group),
            change("randomized_change", "Subjects randomized in the period", r.randomized,
                   before.get(r.study_id, 0), "subjects randomized", "subjects", key, group=group),
            fact("active_sites", "Active sites", r.active_sites, "active sites", "study_sites", key, group=group),
            fact("red_sites", "Sites with a red KRI flag", r.red_sites, "sites", "kri_sites", key, group=group),
            fact("open_queries", "Open queries", r.open_queries, "open queries", "queries", key, group=group),
            fact("old_queries", "Queries open more than 30 days", r.queries_open_30d, "queries", "queries", key,
                 group=group),
            fact("overdue_capas", "Open CAPAs past their due date", r.overdue_capas, "overdue CAPAs", "capas", key,
                 group=group, nouns=("actions",)),
        ]
        if r.study_id in forecast.index:
            fc = forecast.loc[r.study_id]
            facts += [
                percent("p_on_time", "Probability of reaching the target by the planned last patient in",
                        fc.p_on_time, 1, "enrollment_study_summary", key, group=group, decimals=0),
                fact("planned_lpi", "Planned last patient in", fc.planned_lpi, "date", "studies", key, group=group),
            ]
            if pd.isna(fc.lpi_p50) and pd.notna(fc.horizon_date):
                # The median lies beyond the simulated horizon: what is known is that it is later.
                facts.append(fact("forecast_lpi_after", "Forecast last patient in (median) is after",
                                  fc.horizon_date, "date", "enrollment_study_summary", key, group=group))
            else:
                facts.append(fact("forecast_lpi", "Forecast last patient in (median)", fc.lpi_p50, "date",
                                  "enrollment_study_summary", key, group=group))
        late = milestones[(milestones["study_id"] == r.study_id) & (milestones["days_late"] > 0)]
        if not late.empty:
            m = late.iloc[0]
            facts += [fact("late_milestone", "Milestone overdue", m.milestone, "text", "milestones", key, group=group),
                      fact("late_milestone_days", "Days the milestone is overdue", m.days_late, "days", "milestones",
                           key, group=group)]
    return facts


# --- meeting summary ---------------------------------------------------------------------------

_RISK_SITES_SQL = """
SELECT k.study_site_id, s.site_number, s.site_name, k.red, k.amber FROM kri_sites k
JOIN scoped_sites s USING (study_site_id)
WHERE k.method = 'calibrated' AND k.study_id = $study AND k.red + k.amber > 0
  AND k.snap = (SELECT max(snap) FROM kri_sites WHERE study_id = $study)
ORDER BY k.red DESC, k.site_p, k.amber DESC LIMIT $top"""

_OPEN_CAPAS_SQL = """
SELECT c.capa_id, c.root_cause_category, c.current_due_date, c.owner, s.site_number,
       date_diff('day', c.current_due_date, $as_of) AS days_overdue
FROM capas c LEFT JOIN scoped_sites s USING (study_site_id)
WHERE c.study_id = $study AND c.closed_date IS NULL
ORDER BY days_overdue DESC NULLS LAST LIMIT $top"""

_CAPA_COUNTS_SQL = """
SELECT count(*) FILTER (WHERE closed_date IS NULL) AS open_capas,
       count(*) FILTER (WHERE closed_date IS NULL AND current_due_date < $as_of) AS overdue_capas,
       count(*) FILTER (WHERE closed_date > $period_start) AS closed_period
FROM capas WHERE study_id = $study"""

_EVENTS_SQL = """
SELECT count(*) FILTER (WHERE severity = 'Critical') AS critical, count(*) FILTER (WHERE severity = 'Major') AS major,
       count(*) AS events
FROM quality_events WHERE study_id = $study AND reported_date > $period_start"""


def _study_row(ctx: FactContext) -> pd.Series:
    return ctx.one("SELECT study_id, protocol_id, title, status, phase, indication, target_enrollment, planned_visits, "
                   "visit_interval_days, treatment_duration_days, follow_up_days, blinded "
                   "FROM scoped_studies WHERE study_id = $study", study=ctx.subject)


def meeting_summary_facts(ctx: FactContext) -> list[Fact]:
    """A study's current risks and open actions, for a meeting summary (subject: a study id)."""
    study = _study_row(ctx)
    key = f"study_id={study.study_id}"
    overview = study_overview(ctx.warehouse, ctx.scope, PortfolioFilter(study_ids=(study.study_id,))).iloc[0]
    capas = ctx.one(_CAPA_COUNTS_SQL, study=study.study_id)
    events = ctx.one(_EVENTS_SQL, study=study.study_id)
    facts = [
        fact("protocol", "Protocol", study.protocol_id, "id", "studies", key),
        fact("period_days", "Reporting period", ctx.period_days, "days", "the page's period"),
        fact("period_end", "Data as of", ctx.as_of, "date", "meta.warehouse_info"),
        fact("randomized", "Subjects randomized", overview.randomized, "subjects randomized", "subjects", key,
             nouns=SUBJECT_NOUNS),
        fact("target", "Target enrollment", overview.target_enrollment, "subjects targeted", "studies", key,
             nouns=SUBJECT_NOUNS),
        percent("pct_target", "Randomized, % of target", overview.randomized, overview.target_enrollment, "subjects",
                key),
        fact("enrollment_status", "Enrollment against plan", overview.enrollment_status, "text", "study_overview", key),
        fact("open_capas", "Open CAPAs", capas.open_capas, "open CAPAs", "capas", key, nouns=("actions",)),
        fact("overdue_capas", "Open CAPAs past their due date", capas.overdue_capas, "overdue CAPAs", "capas", key,
             nouns=("actions",)),
        fact("closed_capas", "CAPAs closed in the period", capas.closed_period, "closed CAPAs", "capas", key,
             nouns=("actions",)),
        fact("quality_events", "Quality events reported in the period", events.events, "quality events",
             "quality_events", key),
        fact("critical_events", "Critical quality events in the period", events.critical, "critical events",
             "quality_events", key),
        fact("major_events", "Major quality events in the period", events.major, "major events", "quality_events", key),
    ]
    sites = ctx.query(_RISK_SITES_SQL, study=study.study_id, top=TOP_FLAGGED)
    facts.append(fact("flagged_sites", "Sites with KRI flags (shown: up to 5)", len(sites), "flagged sites",
                      "kri_sites", key))
    for r in sites.itertuples():
        group, skey = f"site:{r.site_number}", f"study_site_id={r.study_site_id}"
        facts += [fact("name", "Site", f"{r.site_name} (site {r.site_number})", "text", "study_sites", skey,
                       group=group),
                  fact("red", "KRIs flagged red", r.red, "red flags", "kri_sites", skey, group=group,
                       nouns=("KRIs", "indicators")),
                  fact("amber", "KRIs flagged amber", r.amber, "amber flags", "kri_sites", skey, group=group,
                       nouns=("KRIs", "indicators"))]
    for r in ctx.query(_OPEN_CAPAS_SQL, study=study.study_id, top=TOP_FLAGGED).itertuples():
        group, ckey = f"capa:CAPA-{r.capa_id}", f"capa_id={r.capa_id}"
        facts += [fact("name", "CAPA", f"CAPA-{r.capa_id}", "id", "capas", ckey, group=group),
                  fact("root_cause", "Root cause", r.root_cause_category, "text", "capas", ckey, group=group),
                  fact("owner", "Owner", r.owner, "text", "capas", ckey, group=group),
                  fact("due", "Current due date", r.current_due_date, "date", "capas", ckey, group=group)]
        if r.days_overdue is not None and not pd.isna(r.days_overdue) and r.days_overdue > 0:
            facts.append(fact("days_overdue", "Days past the due date", r.days_overdue, "days", "derived from capas",
                              ckey, group=group))
    for m in milestones_at_risk(ctx.warehouse, ctx.scope, PortfolioFilter(study_ids=(study.study_id,))).itertuples():
        group = f"milestone:{m.milestone}"
        facts += [fact("name", "Milestone", m.milestone, "text", "milestones", key, group=group),
                  fact("planned", "Planned date", m.planned_date, "date", "milestones", key, group=group)]
        if m.days_late > 0:
            facts.append(fact("days_late", "Days overdue", m.days_late, "days", "derived from milestones", key,
                              group=group))
    return facts


# --- data-quality findings -------------------------------------------------------------------
# Extension point: the Data Quality area (edit checks, query metrics, unusual patterns with their
# dispositions) is being built beside this one. Until its findings are stored, this query states
# the data-quality facts the warehouse has now; when they land, add their facts here (or replace
# this function in the document type's spec) and bump the spec's template_version.

_DQ_SQL = """
SELECT
  (SELECT count(*) FROM queries WHERE study_id = $study AND status <> 'Closed') AS open_queries,
  (SELECT count(*) FROM queries WHERE study_id = $study AND status <> 'Closed'
        AND date_diff('day', opened_date, $as_of) <= 7) AS q_0_7,
  (SELECT count(*) FROM queries WHERE study_id = $study AND status <> 'Closed'
        AND date_diff('day', opened_date, $as_of) BETWEEN 8 AND 30) AS q_8_30,
  (SELECT count(*) FROM queries WHERE study_id = $study AND status <> 'Closed'
        AND date_diff('day', opened_date, $as_of) BETWEEN 31 AND 90) AS q_31_90,
  (SELECT count(*) FROM queries WHERE study_id = $study AND status <> 'Closed'
        AND date_diff('day', opened_date, $as_of) > 90) AS q_over_90,
  (SELECT median(date_diff('day', opened_date, closed_date)) FROM queries
        WHERE study_id = $study AND closed_date > $period_start) AS days_to_close,
  (SELECT count(*) FROM queries WHERE study_id = $study AND opened_date > $period_start) AS queries_period,
  (SELECT sum(data_points) FROM crf_pages WHERE study_id = $study AND entry_date > $period_start) AS points_period,
  (SELECT sum(data_points) FROM crf_pages WHERE study_id = $study) AS data_points,
  (SELECT sum(sdv_points) FROM crf_pages WHERE study_id = $study) AS sdv_points,
  (SELECT sum(changed_points) FROM crf_pages WHERE study_id = $study) AS changed_points,
  (SELECT median(date_diff('day', actual_date, entry_date)) FROM visits
        WHERE study_id = $study AND actual_date > $period_start AND entry_date IS NOT NULL) AS entry_lag,
  (SELECT count(*) FROM visits WHERE study_id = $study AND entry_date IS NULL AND actual_date IS NOT NULL
        AND date_diff('day', actual_date, $as_of) > $late_days) AS late_entry_visits,
  (SELECT count(*) FROM atypical_sites WHERE study_id = $study AND atypical_flag) AS atypical_sites,
  (SELECT count(*) FROM atypical_sites WHERE study_id = $study AND tests_available > 0) AS tested_sites"""


def data_quality_facts(ctx: FactContext) -> list[Fact]:
    """A study's data-quality facts: query aging and turnaround, entry lag, SDV, atypical-data sites."""
    study = _study_row(ctx)
    key = f"study_id={study.study_id}"
    dq = ctx.one(_DQ_SQL, study=study.study_id, late_days=LATE_ENTRY_DAYS)
    per_100 = None if not dq.points_period else 100.0 * float(dq.queries_period) / float(dq.points_period)
    return [
        fact("protocol", "Protocol", study.protocol_id, "id", "studies", key),
        fact("period_days", "Reporting period", ctx.period_days, "days", "the page's period"),
        fact("period_end", "Data as of", ctx.as_of, "date", "meta.warehouse_info"),
        fact("open_queries", "Open queries", dq.open_queries, "open queries", "queries", key),
        fact("q_0_7", "Open queries aged 0-7 days", dq.q_0_7, "queries", "queries", key),
        fact("q_8_30", "Open queries aged 8-30 days", dq.q_8_30, "queries", "queries", key),
        fact("q_31_90", "Open queries aged 31-90 days", dq.q_31_90, "queries", "queries", key),
        fact("q_over_90", "Open queries aged over 90 days", dq.q_over_90, "queries", "queries", key),
        percent("old_pct", "Open queries aged over 30 days, % of open", (dq.q_31_90 or 0) + (dq.q_over_90 or 0),
                dq.open_queries, "queries", key),
        fact("queries_period", "Queries raised in the period", dq.queries_period, "queries raised", "queries", key),
        fact("queries_per_100", "Queries raised per 100 data points entered in the period", per_100,
             "per 100 data points", "derived from queries, crf_pages", key, decimals=2),
        fact("days_to_close", "Median days to close a query (closed in the period)", dq.days_to_close, "days",
             "queries", key),
        fact("entry_lag", "Median days from visit to eCRF entry (visits in the period)", dq.entry_lag, "days",
             "visits", key),
        fact("late_entry_visits", f"Visits not entered more than {LATE_ENTRY_DAYS} days after they took place", dq.late_entry_visits, "visits",
             "visits", key),
        percent("sdv_pct", "Data points source-data verified, % of entered", dq.sdv_points, dq.data_points,
                "crf_pages", key),
        fact("sdv_backlog", "Data points not yet source-data verified",
             None if dq.data_points is None or pd.isna(dq.data_points) else dq.data_points - (dq.sdv_points or 0),
             "data points", "derived from crf_pages", key),
        percent("changed_pct", "Data points changed after entry, % of entered", dq.changed_points, dq.data_points,
                "crf_pages", key),
        fact("atypical_sites", "Sites whose data look atypical (combined test)", dq.atypical_sites, "sites",
             "atypical_sites", key),
        fact("tested_sites", "Sites with enough data for the atypical-data tests", dq.tested_sites, "sites",
             "atypical_sites", key),
    ]
