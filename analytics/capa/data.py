"""Cached, scoped loaders of the CAPA trends page: events, CAPAs, monthly series and site rates.

Every function reads through :meth:`Warehouse.query` with the user's scope and filters, so each
relation holds only what the user may see. The date filters choose events by report date, CAPAs by
opening date and chart months by month; the charts always end at the last full month before the
data's as-of date.
"""

from __future__ import annotations

import datetime as dt

import pandas as pd

from analytics.core.caching import cached
from analytics.core.scope import AccessScope, PortfolioFilter
from analytics.core.warehouse import Warehouse

_STUDY_PARAM = "(len($chart_studies) = 0 OR list_contains($chart_studies, {col}))"


def _studies(study_id: str | None) -> dict[str, object]:
    return {"chart_studies": [study_id] if study_id else []}


def last_full_month(as_of: dt.date) -> dt.date:
    """The first day of the last month that ended before ``as_of``."""
    first = as_of.replace(day=1)
    return (first - dt.timedelta(days=1)).replace(day=1)


@cached
def quality_events(wh: Warehouse, scope: AccessScope, filters: PortfolioFilter) -> pd.DataFrame:
    """Quality events with study, sponsor, site, stored theme and recurrence flag."""
    return wh.query(scope, """
        SELECT e.quality_event_id, e.study_id, st.sponsor_id, e.study_site_id, ss.site_name, ss.country_code,
               e.category, e.severity, e.description, e.reported_date,
               t.theme_id, th.name AS theme_name, t.theme_similarity, t.repeats_event_id, t.repeat_similarity,
               t.repeat_days, coalesce(t.possible_recurrence, false) AS possible_recurrence
        FROM quality_events e
        JOIN scoped_studies st USING (study_id)
        LEFT JOIN scoped_sites ss USING (study_site_id)
        LEFT JOIN capa_event_themes t USING (quality_event_id)
        LEFT JOIN capa_themes th ON th.study_id = e.study_id AND th.theme_id = t.theme_id
        WHERE e.reported_date BETWEEN $date_from AND $date_to
        ORDER BY e.reported_date, e.quality_event_id
    """, None, filters)


@cached
def capas(wh: Warehouse, scope: AccessScope, filters: PortfolioFilter) -> pd.DataFrame:
    """CAPAs with the process (the triggering event's category), study, sponsor and site."""
    return wh.query(scope, """
        SELECT c.capa_id, c.study_id, st.sponsor_id, c.study_site_id, ss.site_name, c.quality_event_id,
               coalesce(e.category, 'Not linked to an event') AS process, c.root_cause_category, c.description,
               c.owner, c.opened_date, c.original_due_date, c.current_due_date, coalesce(c.extension_count, 0)
               AS extension_count, c.closed_date, c.effectiveness_check_date, c.effectiveness_result
        FROM capas c
        JOIN scoped_studies st USING (study_id)
        LEFT JOIN scoped_sites ss USING (study_site_id)
        LEFT JOIN quality_events e USING (quality_event_id)
        WHERE c.opened_date BETWEEN $date_from AND $date_to
        ORDER BY c.opened_date, c.capa_id
    """, None, filters)


def _month_grid(first: dt.date | None, last: dt.date) -> pd.DataFrame:
    if first is None or first > last:
        return pd.DataFrame({"month": pd.Series([], dtype="datetime64[us]")})
    return pd.DataFrame({"month": pd.date_range(pd.Timestamp(first), pd.Timestamp(last), freq="MS")})


def _on_grid(frame: pd.DataFrame, as_of: dt.date) -> pd.DataFrame:
    """Months from the first with data to the last full month, zero-filled, in order."""
    frame = frame.assign(month=pd.to_datetime(frame["month"]))
    last = last_full_month(as_of)
    first = frame["month"].min().date() if len(frame) else None
    grid = _month_grid(first, last)
    out = grid.merge(frame, on="month", how="left").fillna({"numerator": 0, "denominator": 0})
    return out[["month", "numerator", "denominator"]]


@cached
def monthly_deviations(wh: Warehouse, scope: AccessScope, filters: PortfolioFilter,
                       study_id: str | None = None) -> pd.DataFrame:
    """Per month: deviations that occurred and completed subject-visits (all selected studies, or one)."""
    frame = wh.query_with(scope, f"""
        dev AS (
            SELECT date_trunc('month', occurred_date) AS month, count(*) AS numerator
            FROM protocol_deviations WHERE occurred_date IS NOT NULL AND {_STUDY_PARAM.format(col='study_id')}
            GROUP BY 1),
        vis AS (
            SELECT date_trunc('month', actual_date) AS month, count(*) AS denominator
            FROM visits WHERE status = 'Completed' AND actual_date IS NOT NULL
              AND {_STUDY_PARAM.format(col='study_id')}
            GROUP BY 1)""", """
        SELECT month, coalesce(numerator, 0) AS numerator, coalesce(denominator, 0) AS denominator
        FROM vis FULL JOIN dev USING (month)
        WHERE month BETWEEN date_trunc('month', $date_from::DATE) AND $date_to
        ORDER BY month
    """, _studies(study_id), filters)
    return _on_grid(frame, wh.as_of())


RISK_EXPOSURES = ("subject_days", "visits")
RISK_EXPOSURE = "subject_days"  # what a stratum's rate is per (chosen on the calibration seeds)

_DEVIATION_PHASES = """
        dev AS (
            SELECT date_trunc('month', p.occurred_date) AS month, p.study_id,
                   CASE WHEN p.subject_id IS NULL THEN 'site'
                        WHEN s.randomization_date IS NOT NULL AND p.occurred_date >= s.randomization_date
                        THEN 'treatment' ELSE 'screening' END AS phase,
                   count(*) AS numerator
            FROM protocol_deviations p LEFT JOIN subjects s ON s.subject_id = p.subject_id
            WHERE p.occurred_date IS NOT NULL AND {study_p}
            GROUP BY ALL)"""
_VISIT_EXPOSURE = """
        exposure AS (
            SELECT date_trunc('month', actual_date) AS month, study_id,
                   CASE WHEN visit_number = 0 THEN 'screening' ELSE 'treatment' END AS phase,
                   count(*) AS denominator
            FROM visits WHERE status = 'Completed' AND actual_date IS NOT NULL AND {study}
            GROUP BY ALL)"""
# Days of each (study, phase) span falling in each calendar month: the exposure of both the
# subject-day deviation rates and the CAPA closure bands, from a CTE named ``spans``.
_MONTHLY_SPAN_DAYS = """
        exposure AS (
            SELECT CAST(m AS DATE) AS month, study_id, phase,
                   sum(date_diff('day', greatest(start_date, CAST(m AS DATE)),
                                 least(stop_date, CAST(m + INTERVAL 1 MONTH AS DATE)))) AS denominator
            FROM (SELECT *, unnest(generate_series(date_trunc('month', start_date), stop_date, INTERVAL 1 MONTH)) AS m
                  FROM spans WHERE stop_date > start_date)
            GROUP BY ALL)"""
# Time on study: screening from the screening visit to randomization (a screen failure: for the study's
# median screening-to-randomization time); treatment from randomization to discontinuation, to the
# as-of date while on study, or for a completer to one visit interval after the last visit (its last
# dosing interval), the interval being the study's median between scheduled treatment visits.
_SUBJECT_DAY_EXPOSURE = """
        last_visit AS (
            SELECT subject_id, max(actual_date) AS last_date FROM visits
            WHERE status = 'Completed' AND {study} GROUP BY 1),
        visit_gap AS (
            SELECT study_id, median(gap) AS days FROM (
                SELECT study_id, scheduled_date - lag(scheduled_date) OVER (
                    PARTITION BY subject_id ORDER BY visit_number) AS gap
                FROM visits WHERE visit_number > 0 AND {study})
            WHERE gap IS NOT NULL GROUP BY 1),
        screening_time AS (
            SELECT study_id, median(randomization_date - screening_date) AS days FROM subjects
            WHERE randomization_date IS NOT NULL AND {study} GROUP BY 1),
        spans AS (
            SELECT s.study_id, 'screening' AS phase, s.screening_date AS start_date,
                   least(coalesce(s.randomization_date,
                                  s.screening_date + CAST(coalesce(t.days, 0) AS INTEGER)), $as_of) AS stop_date
            FROM subjects s LEFT JOIN screening_time t ON t.study_id = s.study_id
            WHERE s.screening_date IS NOT NULL AND {study_s}
            UNION ALL
            SELECT s.study_id, 'treatment', s.randomization_date,
                   least(CASE WHEN s.discontinuation_date IS NOT NULL THEN s.discontinuation_date
                              WHEN s.status = 'Completed'
                              THEN coalesce(v.last_date, s.randomization_date) + CAST(coalesce(g.days, 0) AS INTEGER)
                              ELSE $as_of END, $as_of)
            FROM subjects s LEFT JOIN last_visit v ON v.subject_id = s.subject_id
            LEFT JOIN visit_gap g ON g.study_id = s.study_id
            WHERE s.randomization_date IS NOT NULL AND {study_s}),""" + _MONTHLY_SPAN_DAYS


@cached
def monthly_deviation_strata(wh: Warehouse, scope: AccessScope, filters: PortfolioFilter,
                             study_id: str | None = None, exposure: str | None = None) -> pd.DataFrame:
    """Per month, study and phase: deviations and their exposure (the risk adjustment's strata).

    A deviation is of the ``screening`` phase when its subject was not (yet) randomized on the day it
    occurred, of the ``treatment`` phase otherwise, and of the ``site`` phase when it names no
    subject (its exposure is all of the study's, :func:`analytics.capa.spc.expected_counts`).
    ``exposure`` (default :data:`RISK_EXPOSURE`): ``subject_days``, the days subjects spent in the
    phase in the month; or ``visits``, the phase's completed visits (a screening visit has
    ``visit_number`` 0, SDTM VISITNUM).
    """
    exposure = exposure or RISK_EXPOSURE
    if exposure not in RISK_EXPOSURES:
        raise ValueError(f"exposure must be one of {RISK_EXPOSURES}, not {exposure!r}")
    template = _SUBJECT_DAY_EXPOSURE if exposure == "subject_days" else _VISIT_EXPOSURE
    ctes = (_DEVIATION_PHASES.format(study_p=_STUDY_PARAM.format(col="p.study_id")) + "," + template.format(
        study=_STUDY_PARAM.format(col="study_id"), study_s=_STUDY_PARAM.format(col="s.study_id")))
    frame = wh.query_with(scope, ctes, """
        SELECT month, study_id, phase, coalesce(numerator, 0) AS numerator,
               coalesce(denominator, 0) AS denominator
        FROM exposure FULL JOIN dev USING (month, study_id, phase)
        WHERE month BETWEEN date_trunc('month', $date_from::DATE) AND $date_to
        ORDER BY month, study_id, phase
    """, {**_studies(study_id), "as_of": wh.as_of()}, filters)
    frame["month"] = pd.to_datetime(frame["month"])
    return frame[frame["month"] <= pd.Timestamp(last_full_month(wh.as_of()))].reset_index(drop=True)


@cached
def monthly_on_time(wh: Warehouse, scope: AccessScope, filters: PortfolioFilter,
                    study_id: str | None = None) -> pd.DataFrame:
    """Per month of the current due date: CAPAs due and those closed on or before it."""
    frame = wh.query(scope, f"""
        SELECT date_trunc('month', current_due_date) AS month,
               count(*) FILTER (WHERE closed_date IS NOT NULL AND closed_date <= current_due_date) AS numerator,
               count(*) AS denominator
        FROM capas
        WHERE current_due_date IS NOT NULL AND {_STUDY_PARAM.format(col='study_id')}
          AND current_due_date BETWEEN $date_from AND $date_to
        GROUP BY 1 ORDER BY 1
    """, _studies(study_id), filters)
    return _on_grid(frame, wh.as_of())


# How far through the time it was given a CAPA is (days open over original due minus opened): the
# closure rate's strata. Most CAPAs close near 80% of their time, so the rate of closure rises steeply
# through the bands; a month's expected closures follow its mix of young and old open CAPAs.
CLOSURE_BANDS: tuple[tuple[str, float, float], ...] = (
    ("under 50% of the time given", 0.0, 0.5), ("50-75%", 0.5, 0.75), ("75-100%", 0.75, 1.0),
    ("100-150%", 1.0, 1.5), ("over 150%", 1.5, 1e6))
POOLED_STUDIES = "charted studies"
_CLOSURE_STRATA = """
        bands AS (
            SELECT unnest($band_names) AS phase, unnest($band_lows) AS low, unnest($band_highs) AS high),
        open_capas AS (
            SELECT study_id, opened_date, closed_date,
                   date_diff('day', opened_date, original_due_date) AS allowed,
                   least(coalesce(closed_date, $as_of), $as_of) AS stop_date
            FROM capas
            WHERE opened_date IS NOT NULL AND original_due_date > opened_date AND {study}),
        spans AS (
            SELECT c.study_id, b.phase,
                   c.opened_date + CAST(ceil(b.low * c.allowed) AS INTEGER) AS start_date,
                   least(c.stop_date, c.opened_date + CAST(least(ceil(b.high * c.allowed), 100000) AS INTEGER))
                       AS stop_date
            FROM open_capas c CROSS JOIN bands b),""" + _MONTHLY_SPAN_DAYS + """,
        closures AS (
            SELECT date_trunc('month', c.closed_date) AS month, c.study_id, b.phase, count(*) AS numerator
            FROM open_capas c JOIN bands b
              ON date_diff('day', c.opened_date, c.closed_date) >= ceil(b.low * c.allowed)
             AND date_diff('day', c.opened_date, c.closed_date) < ceil(b.high * c.allowed)
            WHERE c.closed_date IS NOT NULL AND c.closed_date <= $as_of
            GROUP BY ALL)"""


@cached
def monthly_closure_strata(wh: Warehouse, scope: AccessScope, filters: PortfolioFilter,
                           study_id: str | None = None) -> pd.DataFrame:
    """Per month and band of :data:`CLOSURE_BANDS`: CAPAs closed and open CAPA-days (the strata).

    A CAPA is at risk of closing from the day it is opened to the day it closes (or the as-of date);
    each of its days falls in the band of how far through its time it then was, and its closure in the
    band of its closing day. Columns as :func:`monthly_deviation_strata` (``phase`` is the band); the
    bands are pooled over the charted studies (``study_id`` is :data:`POOLED_STUDIES`): closing CAPAs is
    a sponsor's process, and per study a band holds too few closures in 12 baseline months (on the
    calibration seeds, rates per study and band gave 1.9 false signals per 100 stable months, pooled 0.15).
    """
    names, lows, highs = (list(column) for column in zip(*CLOSURE_BANDS))
    frame = wh.query_with(scope, _CLOSURE_STRATA.format(study=_STUDY_PARAM.format(col="study_id")), """
        SELECT month, $pooled AS study_id, phase, sum(coalesce(numerator, 0)) AS numerator,
               sum(coalesce(denominator, 0)) AS denominator
        FROM exposure FULL JOIN closures USING (month, study_id, phase)
        WHERE month BETWEEN date_trunc('month', $date_from::DATE) AND $date_to
        GROUP BY month, phase ORDER BY month, phase
    """, {**_studies(study_id), "as_of": wh.as_of(), "pooled": POOLED_STUDIES,
          "band_names": names, "band_lows": [float(x) for x in lows], "band_highs": [float(x) for x in highs]},
        filters)
    frame["month"] = pd.to_datetime(frame["month"])
    return frame[frame["month"] <= pd.Timestamp(last_full_month(wh.as_of()))].reset_index(drop=True)


def monthly_closures(strata: pd.DataFrame, as_of: dt.date) -> pd.DataFrame:
    """Per month (zero-filled to the last full month): CAPAs closed and open CAPA-days, from the strata."""
    return _on_grid(strata.groupby("month", as_index=False)[["numerator", "denominator"]].sum(), as_of)


@cached
def site_deviation_rates(wh: Warehouse, scope: AccessScope, filters: PortfolioFilter,
                         study_id: str | None = None) -> pd.DataFrame:
    """Per study-site: deviations and completed subject-visits in the chosen dates (for the funnel plot)."""
    return wh.query_with(scope, f"""
        vis AS (
            SELECT study_site_id, count(*) AS visits FROM visits
            WHERE status = 'Completed' AND actual_date BETWEEN $date_from AND $date_to
              AND {_STUDY_PARAM.format(col='study_id')}
            GROUP BY 1),
        dev AS (
            SELECT study_site_id, count(*) AS deviations FROM protocol_deviations
            WHERE occurred_date BETWEEN $date_from AND $date_to AND {_STUDY_PARAM.format(col='study_id')}
            GROUP BY 1)""", """
        SELECT ss.study_site_id, ss.study_id, ss.site_name, ss.country_code, vis.visits,
               coalesce(dev.deviations, 0) AS deviations
        FROM vis JOIN scoped_sites ss USING (study_site_id) LEFT JOIN dev USING (study_site_id)
        ORDER BY ss.study_site_id
    """, _studies(study_id), filters)


@cached
def study_labels(wh: Warehouse, scope: AccessScope, filters: PortfolioFilter) -> dict[str, str]:
    """Study id -> "protocol (study id)" for the studies the user sees with the filters."""
    frame = wh.query(scope, "SELECT study_id, protocol_id FROM scoped_studies ORDER BY study_id", None, filters)
    return {s: f"{p} ({s})" for s, p in zip(frame["study_id"], frame["protocol_id"])}
