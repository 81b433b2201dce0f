"""Flag states and the site index every KRI scoring method shares (kept apart so methods do not import each other)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

FLAG_INSUFFICIENT, FLAG_OK, FLAG_AMBER, FLAG_RED = -1, 0, 1, 2
FLAG_NAMES = {FLAG_INSUFFICIENT: "insufficient", FLAG_OK: "ok", FLAG_AMBER: "amber", FLAG_RED: "red"}


@dataclass
class SiteIndex:
    """Codes tying subject rows to sites and sites to (snapshot, study) groups."""

    row_site: np.ndarray  # subject row -> site code
    row_group: np.ndarray  # subject row -> group code
    site_group: np.ndarray  # site -> group code
    group_snap: np.ndarray  # group -> snapshot number
    sites: pd.DataFrame  # snap, study_id, study_site_id per site code
    n_sites: int
    n_groups: int

    @classmethod
    def from_frame(cls, frame: pd.DataFrame) -> "SiteIndex":
        keys = ["snap", "study_id", "study_site_id"]
        site_codes = frame.groupby(keys, sort=True).ngroup().to_numpy()
        sites = frame[keys].drop_duplicates().sort_values(keys, ignore_index=True)
        group_codes = sites.groupby(["snap", "study_id"], sort=True).ngroup().to_numpy()
        return cls(
            row_site=np.asarray(site_codes),
            row_group=np.asarray(group_codes)[site_codes],
            site_group=np.asarray(group_codes),
            group_snap=sites.groupby(group_codes)["snap"].first().to_numpy(),
            sites=sites,
            n_sites=len(sites),
            n_groups=int(group_codes.max()) + 1 if len(group_codes) else 0,
        )
