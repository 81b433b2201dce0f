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
