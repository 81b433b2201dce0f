"""What the CAPA trends page needs beyond the loaders: its views, event choices, the records store,
the themes' freshness and the CAPAs linked to each signal."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from analytics.capa import actions
from analytics.capa.data import quality_events
from analytics.capa.results import CAPA_THEMES_RESULT
from analytics.core.caching import cached
from analytics.core.derived import Freshness
from analytics.core.derived import freshness as derived_freshness
from analytics.core.records import RecordsStore
from analytics.core.scope import AccessScope, PortfolioFilter
from analytics.core.warehouse import Warehouse

VIEWS = {"trends": "Control charts", "backlog": "Backlog and aging", "causes": "Root causes",
         "cycle": "Cycle time", "recurrence": "Recurrence", "qtl": "QTL register", "actions": "CAPA actions"}


@cached
def event_choices(wh: Warehouse, scope: AccessScope, filters: PortfolioFilter) -> dict[str, str]:
    """Quality event id -> "QE-id · site · date" for every event the user sees, latest first."""
    events = quality_events(wh, scope, filters).iloc[::-1]
    return {str(int(e)): f"QE-{int(e)} · {s if isinstance(s, str) else st_id} · {pd.Timestamp(d):%d %b %Y}"
            for e, s, st_id, d in zip(events["quality_event_id"], events["study_site_id"], events["study_id"],
                                      events["reported_date"])}


def themes_freshness(wh: Warehouse, scope: AccessScope, filters: PortfolioFilter) -> Freshness:
    return derived_freshness(wh, scope, filters.study_level(), CAPA_THEMES_RESULT)


@st.cache_resource(show_spinner=False)
def records_store(url: str) -> RecordsStore:
    """One records store per process and URL (opening it upgrades the database to this release)."""
    return RecordsStore(url)


def visible_studies(wh: Warehouse, scope: AccessScope) -> frozenset[str]:
    """Every study the user's scope allows (writes are checked against it, reads restricted to it)."""
    return frozenset(wh.query(scope, "SELECT study_id FROM scoped_studies")["study_id"])


def linked_by_signal(store: RecordsStore, visible: frozenset[str]) -> dict[str, list[str]]:
    """signal id -> the workbench CAPAs opened from it (the QTL register's "linked CAPAs")."""
    capas = actions.workbench_capas(store, visible)
    if capas.empty:
        return {}
    return {signal: sorted(group["capa_ref"]) for signal, group in capas.groupby("signal_id")}
