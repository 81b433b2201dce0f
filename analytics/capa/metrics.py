"""CAPA backlog and performance: aging, overdue, on-time closure, extensions, effectiveness, Pareto.

Pure functions of the CAPA table from :func:`analytics.capa.data.capas` and the as-of date. Terms:

* **open**: not closed at the as-of date; its **age** is days since it was opened;
* **overdue**: open past its due date, judged against the *original* and the *current* (extended)
  due date;
* **on time**: closed on or before the current due date; **extension rate**: share of CAPAs whose
  due date was extended at least once;
* **effectiveness pass rate**: share of effectiveness checks judged effective.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

AGE_BUCKETS: tuple[tuple[int, int, str], ...] = (
    (0, 30, "0-30 d"), (31, 60, "31-60 d"), (61, 90, "61-90 d"), (91, 180, "91-180 d"), (181, 10**6, "over 180 d"),
)
GROUPINGS = {"sponsor": "sponsor_id", "study": "study_id", "site": "study_site_id", "process": "process",
             "owner": "owner"}
HUMAN_ERROR = "Human error"


def _dates(frame: pd.DataFrame, column: str) -> pd.Series:
    return pd.to_datetime(frame[column])


def with_status(capas: pd.DataFrame, as_of: dt.date) -> pd.DataFrame:
    """CAPAs with ``is_open``, ``age_days``, ``age_bucket``, overdue flags, ``on_time``, ``extended``."""
    out = capas.copy()
    today = pd.Timestamp(as_of)
    opened, closed = _dates(out, "opened_date"), _dates(out, "closed_date")
    original, current = _dates(out, "original_due_date"), _dates(out, "current_due_date")
    out["is_open"] = closed.isna() | (closed > today)
    out["age_days"] = np.where(out["is_open"], (today - opened).dt.days, np.nan)
    bins = [b[0] - 0.5 for b in AGE_BUCKETS] + [np.inf]
    out["age_bucket"] = pd.cut(out["age_days"], bins=bins, labels=[b[2] for b in AGE_BUCKETS])
    out["overdue_original"] = out["is_open"] & (original < today)
    out["overdue_current"] = out["is_open"] & (current < today)
    out["on_time"] = np.where(closed.notna() & ~out["is_open"], closed <= current, np.nan)
    out["extended"] = out["extension_count"].fillna(0) > 0
    out["cycle_days"] = (closed.where(~out["is_open"]) - opened).dt.days
    return out


def performance_by(capas: pd.DataFrame, as_of: dt.date, grouping: str) -> pd.DataFrame:
    """Per group (sponsor, study, site, process or owner): backlog, overdue, on-time, extensions, effectiveness."""
    column = GROUPINGS[grouping]
    frame = with_status(capas, as_of)
    frame[column] = frame[column].fillna("Study level")
    grouped = frame.groupby(column, dropna=False)
    checked = frame["effectiveness_result"].notna()
    out = pd.DataFrame({
        "capas": grouped.size(),
        "open": grouped["is_open"].sum(),
        "overdue_original": grouped["overdue_original"].sum(),
        "overdue_current": grouped["overdue_current"].sum(),
        "closed": grouped["cycle_days"].count(),
        "on_time_share": grouped["on_time"].mean(),
        "extension_rate": grouped["extended"].mean(),
        "checks": frame[checked].groupby(column).size(),
        "effective_share": frame[checked].assign(ok=frame["effectiveness_result"] == "Effective")
        .groupby(column)["ok"].mean(),
        "median_age_open": frame[frame["is_open"]].groupby(column)["age_days"].median(),
    }).reset_index().rename(columns={column: "group"})
    out["checks"] = out["checks"].fillna(0).astype("int64")
    return out.sort_values(["overdue_current", "open"], ascending=False, ignore_index=True)


def aging(capas: pd.DataFrame, as_of: dt.date) -> pd.DataFrame:
    """Open CAPAs per age bucket, split into not overdue, overdue only against the original date, and
    overdue against the current date."""
    frame = with_status(capas, as_of)
    open_ = frame[frame["is_open"]]
    state = np.select([open_["overdue_current"], open_["overdue_original"]],
                      ["Overdue (current due date)", "Overdue against the original date only"], "Not overdue")
    table = (open_.assign(state=state).groupby(["age_bucket", "state"], observed=False).size()
             .rename("capas").reset_index())
    return table


def headline(capas: pd.DataFrame, as_of: dt.date) -> dict[str, float]:
    """Counts and shares for the page's metrics row."""
    frame = with_status(capas, as_of)
    checked = frame["effectiveness_result"].notna()
    return {
        "capas": float(len(frame)),
        "open": float(frame["is_open"].sum()),
        "overdue_current": float(frame["overdue_current"].sum()),
        "overdue_original": float(frame["overdue_original"].sum()),
        "on_time_share": float(frame["on_time"].mean()) if frame["on_time"].notna().any() else float("nan"),
        "extension_rate": float(frame["extended"].mean()) if len(frame) else float("nan"),
        "effective_share": float((frame.loc[checked, "effectiveness_result"] == "Effective").mean())
        if checked.any() else float("nan"),
        "checks": float(checked.sum()),
    }


def pareto(capas: pd.DataFrame) -> tuple[pd.DataFrame, pd.Series | None]:
    """Root-cause categories other than human error by count with cumulative share, and human error apart.

    Returns (ranked causes with ``capas``, ``share`` and ``cumulative_share`` of the non-human-error
    total; the human-error row with its count and share of all CAPAs, or None when there is none).
    """
    counts = capas["root_cause_category"].fillna("Not recorded").value_counts()
    total = int(counts.sum())
    human = counts.get(HUMAN_ERROR)
    others = counts.drop(HUMAN_ERROR, errors="ignore").sort_values(ascending=False)
    ranked = pd.DataFrame({"cause": others.index, "capas": others.to_numpy()})
    subtotal = ranked["capas"].sum()
    ranked["share"] = ranked["capas"] / subtotal if subtotal else np.nan
    ranked["cumulative_share"] = ranked["share"].cumsum()
    human_row = None if human is None else pd.Series({"cause": HUMAN_ERROR, "capas": int(human),
                                                       "share_of_all": human / total})
    return ranked, human_row


def human_error_beneath(capas: pd.DataFrame, events: pd.DataFrame) -> pd.DataFrame:
    """Human-error CAPAs by the process and text theme of their event: what lies beneath "human error"."""
    human = capas[capas["root_cause_category"] == HUMAN_ERROR]
    if human.empty:
        return pd.DataFrame(columns=["process", "theme_name", "capas"])
    joined = human.merge(events[["quality_event_id", "theme_name"]], on="quality_event_id", how="left")
    joined["theme_name"] = joined["theme_name"].fillna("No theme stored")
    return (joined.groupby(["process", "theme_name"]).size().rename("capas").reset_index()
            .sort_values("capas", ascending=False, ignore_index=True))
