"""How long each site's KRI has been flagged, over the monthly snapshots (stored with the latest one)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from analytics.kri.sites import FLAG_AMBER


def persistence(cells: pd.DataFrame) -> pd.DataFrame:
    """Per site and KRI: consecutive flagged months up to the latest snapshot, new this month, z history."""
    if cells.empty:
        return pd.DataFrame(columns=["study_site_id", "kri", "months_flagged", "new_flag", "z_history"])
    flagged = (cells["flag"] >= FLAG_AMBER).to_numpy()
    table = cells.assign(flagged=flagged).pivot_table(
        index=["study_site_id", "kri"], columns="snap", values="flagged", aggfunc="max", fill_value=False)
    values = table.to_numpy(dtype=bool)[:, ::-1]  # latest first
    run_length = np.where(values.all(1), values.shape[1], np.argmin(values, axis=1))
    previous = values[:, 1] if values.shape[1] > 1 else np.zeros(len(values), dtype=bool)
    # z per snapshot, oldest first (None where a snapshot had no score: a study without events has none).
    history = cells.sort_values("snap").groupby(["study_site_id", "kri"])["z"].agg(
        lambda z: [None if pd.isna(v) else round(float(v), 2) for v in z])
    return pd.DataFrame({"months_flagged": run_length, "new_flag": values[:, 0] & ~previous,
                         "z_history": history.reindex(table.index).to_numpy()}, index=table.index).reset_index()
