"""The records the Drafting page reads, restricted to the studies the user's scope allows (the
records store does not apply the scope itself)."""

from __future__ import annotations

import pandas as pd

from analytics.core.scope import AccessScope
from analytics.core.warehouse import Warehouse
from analytics.drafting.store import recent_drafts
from analytics.drafting.views import records_store


def visible_study_ids(wh: Warehouse, scope: AccessScope) -> list[str]:
    return wh.query(scope, "SELECT study_id FROM scoped_studies ORDER BY 1")["study_id"].tolist()


def visible_drafts(wh: Warehouse, scope: AccessScope, limit: int = 200) -> pd.DataFrame:
    """The user's visible drafts, newest first (empty when the store cannot be opened).

    A draft is visible when every study its facts come from is visible (a sponsor-level update
    names all its studies)."""
    store, _ = records_store()
    if store is None:
        return pd.DataFrame(columns=["draft_id", "title", "recorded_at", "actor"])
    visible = set(visible_study_ids(wh, scope))
    drafts = recent_drafts(store, sorted(visible), limit)
    if drafts.empty:
        return drafts
    keep = drafts["study_ids"].map(lambda ids: set(ids or []) <= visible)
    return drafts[keep].reset_index(drop=True)
