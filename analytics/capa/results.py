"""Themes and possible recurrences of quality events as a derived result (see :mod:`analytics.core.derived`).

Clustering the free text of a study's events takes seconds per study, too slow for a page, so the
registry computes it per study when the study's data or this code change, and stores
``derived.capa_themes`` (one row per theme) and ``derived.capa_event_themes`` (one row per event).
Each study's themes depend on its own events only.
"""

from __future__ import annotations

import pandas as pd

from analytics.capa.themes import event_texts, find_recurrences, fit_themes
from analytics.core.derived import DerivedResult, RefreshRun
from analytics.core.scope import NO_FILTER

THEME_COLUMNS = ("study_id", "theme_id", "name", "top_terms", "events", "sites", "recurrences", "first_reported",
                 "last_reported")
EVENT_COLUMNS = ("study_id", "quality_event_id", "study_site_id", "theme_id", "theme_similarity", "repeats_event_id",
                 "repeat_similarity", "repeat_days", "possible_recurrence")


def study_themes(events: pd.DataFrame, capas: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(themes, event rows) of one study's events (ordered by report date and id) and their CAPAs."""
    events = events.sort_values(["reported_date", "quality_event_id"]).reset_index(drop=True)
    model = fit_themes(event_texts(events, capas))
    rows = events[["study_id", "quality_event_id", "study_site_id"]].copy()
    rows["theme_id"] = model.labels.astype("int32")
    rows["theme_similarity"] = model.similarity_to_theme
    rows = pd.concat([rows, find_recurrences(events, model)], axis=1)
    rows["reported_date"] = events["reported_date"]
    themes = []
    for theme_id, group in rows.groupby("theme_id"):
        themes.append({
            "study_id": group["study_id"].iloc[0], "theme_id": int(theme_id), "name": model.names[theme_id],
            "top_terms": ", ".join(model.terms[theme_id]), "events": len(group),
            "sites": int(group["study_site_id"].nunique()), "recurrences": int(group["possible_recurrence"].sum()),
            "first_reported": group["reported_date"].min(), "last_reported": group["reported_date"].max(),
        })
    return pd.DataFrame(themes, columns=list(THEME_COLUMNS)), rows[list(EVENT_COLUMNS)]


def compute_capa_themes(run: RefreshRun) -> dict[str, pd.DataFrame]:
    """Themes and recurrences of every study in ``run.study_ids``."""
    wh = run.warehouse
    events = wh.query(run.scope, "SELECT study_id, quality_event_id, study_site_id, description, reported_date "
                                 "FROM quality_events", None, NO_FILTER)
    capas = wh.query(run.scope, "SELECT quality_event_id, description FROM capas", None, NO_FILTER)
    theme_parts, event_parts = [], []
    for study_id, group in events.groupby("study_id"):
        run.progress(f"text themes of {study_id} ({len(group)} events)")
        themes, rows = study_themes(group, capas[capas["quality_event_id"].isin(group["quality_event_id"])])
        theme_parts.append(themes)
        event_parts.append(rows)
    empty_themes = pd.DataFrame(columns=list(THEME_COLUMNS))
    empty_events = pd.DataFrame(columns=list(EVENT_COLUMNS))
    return {"capa_themes": pd.concat(theme_parts, ignore_index=True) if theme_parts else empty_themes,
            "capa_event_themes": pd.concat(event_parts, ignore_index=True) if event_parts else empty_events}


CAPA_THEMES_RESULT = DerivedResult(
    name="capa_themes",
    description="text themes of quality events and CAPAs, and possible recurrences",
    tables=("capa_themes", "capa_event_themes"),
    compute=compute_capa_themes,
    code=("analytics.capa.themes", "analytics.capa.results"),
)
