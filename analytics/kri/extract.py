"""Per-subject, per-snapshot measures for every KRI, aggregated in DuckDB.

One query per source (see :mod:`analytics.kri.specs`), all through the warehouse's scope CTEs. The
result has one row per subject and monthly snapshot with every measure as a column, cumulative up to
that snapshot's cutoff date. Site KRIs are sums of these rows, so the same frame serves scoring,
leave-one-site-out references and patient-reshuffle permutations.
"""

from __future__ import annotations

import calendar
import datetime as dt

import numpy as np
import pandas as pd

from analytics.kri.specs import EVENT_SOURCES, STATE_SOURCES, TIME_ON_STUDY_BINS, EventSource, StateSource
from analytics.core.scope import AccessScope, PortfolioFilter
from analytics.core.warehouse import Warehouse

N_SNAPSHOTS = 6  # the as-of date and the five previous month ends
SUBJECT_KEYS = ["study_id", "study_site_id", "subject_id", "snap"]


def snapshot_dates(as_of: dt.date, count: int = N_SNAPSHOTS) -> list[dt.date]:
    """Cutoffs, oldest first: ``as_of`` and the same day of each of the ``count - 1`` months before it.

    Snapshots a whole month apart (1 Nov, 1 Oct, ...; the 31st becomes the month's last day), so
    no two snapshots fall a day apart when the data end early in a month.
    """
    dates = []
    for back in range(count):
        month = as_of.month - back
        year = as_of.year + (month - 1) // 12
        month = (month - 1) % 12 + 1
        last_day = calendar.monthrange(year, month)[1]
        dates.append(dt.date(year, month, min(as_of.day, last_day)))
    return sorted(dates)


def _snapshot_params(cutoffs: list[dt.date]) -> dict[str, object]:
    params: dict[str, object] = {f"c{i}": d for i, d in enumerate(cutoffs)}
    params["cutoffs"] = list(cutoffs)
    return params


_SNAPSHOT_CTE = "snapshots AS (SELECT i - 1 AS snap, $cutoffs[i] AS cutoff FROM range(1, len($cutoffs) + 1) t(i))"


def _bucket_sql(date_sql: str, count: int) -> str:
    """The index of the first snapshot whose cutoff is on or after ``date_sql``."""
    whens = " ".join(f"WHEN {date_sql} <= $c{i} THEN {i}" for i in range(count))
    return f"CASE {whens} END"


def _bin_sql(days_sql: str) -> str:
    whens = " ".join(f"WHEN {days_sql} < {hi} THEN {k}" for k, (_, hi) in enumerate(TIME_ON_STUDY_BINS))
    return f"CASE {whens} ELSE {len(TIME_ON_STUDY_BINS) - 1} END"


def event_source_sql(source: EventSource, count: int) -> str:
    """Constant SQL text counting ``source`` records per subject and snapshot bucket."""
    columns = [f"{expr} AS {name}" for name, expr in source.measures]
    if source.binned:
        bin_expr = _bin_sql(source.bin_days_sql)
        for name, condition in source.binned:
            for k in range(len(TIME_ON_STUDY_BINS)):
                columns.append(f"count(*) FILTER (WHERE ({condition}) AND {bin_expr} = {k}) AS {name}__b{k}")
    return (
        f"SELECT {source.subject_sql} AS subject_id, {_bucket_sql(source.date_sql, count)} AS snap, "
        + ", ".join(columns)
        + f" FROM {source.from_sql} WHERE ({source.where_sql}) AND {source.date_sql} <= $c{count - 1} "
        f"AND {source.subject_sql} IS NOT NULL GROUP BY ALL"
    )


def state_source_sql(source: StateSource) -> str:
    """Constant SQL text evaluating ``source`` per subject at each snapshot cutoff."""
    columns = ", ".join(f"{expr} AS {name}" for name, expr in source.measures)
    if source.group_by_subject:
        return f"SELECT {source.subject_sql} AS subject_id, k.snap, {columns} FROM {source.from_sql} " \
               f"CROSS JOIN snapshots k WHERE {source.subject_sql} IS NOT NULL GROUP BY ALL"
    return (
        f"SELECT su.subject_id, su.study_id, su.study_site_id, k.snap, {columns} "
        f"FROM {source.from_sql} CROSS JOIN snapshots k"
    )


def subject_measures(
    wh: Warehouse, scope: AccessScope, filters: PortfolioFilter, cutoffs: list[dt.date]
) -> pd.DataFrame:
    """Every KRI measure per subject and snapshot (``snap`` 0 = oldest cutoff), cumulative to the cutoff.

    Rows: every screened subject of the scoped studies for every snapshot. Counts are integers,
    ``days_*`` are days.
    """
    params = _snapshot_params(cutoffs)
    count = len(cutoffs)
    base_source, *other_states = STATE_SOURCES
    frame = wh.query_with(scope, _SNAPSHOT_CTE, state_source_sql(base_source), params, filters)
    frame = frame.sort_values(["subject_id", "snap"], ignore_index=True)
    for source in other_states:
        part = wh.query_with(scope, _SNAPSHOT_CTE, state_source_sql(source), params, filters)
        frame = frame.merge(part, on=["subject_id", "snap"], how="left")
    index = pd.MultiIndex.from_frame(frame[["subject_id", "snap"]])
    for source in EVENT_SOURCES:
        part = wh.query_with(scope, "", event_source_sql(source, count), params, filters)
        part = part.groupby(["subject_id", "snap"]).sum()
        # Records fall in their first snapshot; a snapshot's total is the cumulative sum to it.
        cumulative = part.reindex(index, fill_value=0).groupby(level=0, sort=False).cumsum()
        for column in cumulative.columns:
            frame[column] = cumulative[column].to_numpy()
    measure_columns = [c for c in frame.columns if c not in SUBJECT_KEYS]
    frame[measure_columns] = frame[measure_columns].fillna(0).astype("float64")
    frame["snap"] = frame["snap"].astype("int64")
    return frame


def treatment_days_by_bin(days_on_treatment: np.ndarray) -> np.ndarray:
    """Days spent in each time-on-study bin (n x bins) for subjects with ``days_on_treatment`` days."""
    lo = np.array([b[0] for b in TIME_ON_STUDY_BINS], dtype="float64")
    hi = np.array([b[1] for b in TIME_ON_STUDY_BINS], dtype="float64")
    return np.clip(days_on_treatment[:, None] - lo[None, :], 0.0, hi - lo)
