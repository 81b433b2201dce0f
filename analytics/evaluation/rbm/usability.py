"""simaerep's usability grid: true- and false-positive rates of every method at its default flags.

Each cell is one study of 1,000 patients at 100 sites with a constant AE rate per visit, a share
of sites under-reporting at a given rate (the cell's three coordinates), scored by every method
at its default flag (engine: AE rate amber or red, low; funnel: gsm's AE thresholds; simaerep:
probability >= 0.95 after its multiplicity adjustment). The grid shows where each method stops
working: few AEs per visit, or so many under-reporting sites that they become the reference.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable

import numpy as np
import pandas as pd

from analytics.evaluation.rbm.methods import METHODS, score_sites
from analytics.evaluation.rbm.simaerep_setups import (
    USABILITY_AE_PER_VISIT,
    USABILITY_SHARE_UNDER,
    USABILITY_UR_RATE,
    usability_study,
)

Log = Callable[[str], None]


def usability_grid(seeds: tuple[int, ...], log: Log) -> dict[str, object]:
    """TPR and FPR per method and grid cell (pooled over ``seeds``), and their means over the grid."""
    rows = []
    cells = list(itertools.product(USABILITY_AE_PER_VISIT, USABILITY_SHARE_UNDER, USABILITY_UR_RATE))
    for seed in seeds:
        rng = np.random.default_rng([seed, 77])
        for i, (ae, share_under, ur) in enumerate(cells):
            data, under = usability_study(ae, share_under, ur, rng, f"U{seed}-{i}")
            scored = score_sites(data, seed=seed)
            scored["under"] = scored["study_site_id"].isin(under.index)
            for method in METHODS:
                flagged = scored[f"flag_{method}"] >= (1 if not method.startswith("simaerep") else 2)
                rows.append({"ae_per_visit": ae, "share_under": share_under, "ur_rate": ur, "method": method,
                             "seed": seed, "tp": int((flagged & scored["under"]).sum()),
                             "positives": int(scored["under"].sum()),
                             "fp": int((flagged & ~scored["under"]).sum()),
                             "negatives": int((~scored["under"]).sum())})
        log(f"[eval rbm]   usability grid seed {seed}: {len(cells)} studies")
    table = pd.DataFrame(rows).groupby(["method", "ae_per_visit", "share_under", "ur_rate"], as_index=False)[
        ["tp", "positives", "fp", "negatives"]].sum()
    table["tpr"] = table["tp"] / table["positives"].where(table["positives"] > 0)
    table["fpr"] = table["fp"] / table["negatives"].where(table["negatives"] > 0)
    summary = {}
    for method, block in table.groupby("method"):
        low_rate = block[block["ae_per_visit"] == min(USABILITY_AE_PER_VISIT)]
        heavy = block[block["share_under"] == max(USABILITY_SHARE_UNDER)]
        summary[method] = {
            "mean_tpr": round(float(block["tpr"].mean()), 4), "mean_fpr": round(float(block["fpr"].mean()), 4),
            "cells_with_fpr_above_5pct": int((block["fpr"] > 0.05).sum()),
            "mean_tpr_at_full_removal": round(float(block.loc[block["ur_rate"] == 1.0, "tpr"].mean()), 4),
            f"mean_tpr_at_{min(USABILITY_AE_PER_VISIT):g}_ae_per_visit": round(float(low_rate["tpr"].mean()), 4),
            f"mean_tpr_with_{max(USABILITY_SHARE_UNDER):.0%}_sites_under".replace("%", "pct"):
                round(float(heavy["tpr"].mean()), 4),
        }
    return {
        "description": "simaerep's usability grid (every third value of each axis), one study per cell and seed",
        "axes": {"ae_per_visit": list(USABILITY_AE_PER_VISIT), "share_under": list(USABILITY_SHARE_UNDER),
                 "ur_rate": list(USABILITY_UR_RATE)},
        "seeds": list(seeds),
        "summary": summary,
        "cells": [{k: (round(float(v), 4) if isinstance(v, float) else v) for k, v in r.items()}
                  for r in table.to_dict("records") if r["method"] in METHODS],
    }
