"""The gsm-style funnel-plot z score, kept as a selectable method and as the evaluation baseline.

As in gsm (Gilead "Good Statistical Monitoring"): the expected count is the study's overall rate
(including the site itself) times the site's denominator, with no time-on-study profile; the z is a
normal approximation (Poisson for rates, binomial for proportions) divided by one over-dispersion
factor ``phi = mean(z^2)`` over the study's sites; flags at fixed z thresholds
(-3, -2, 2, 3; AE/SAE -2, -1, 2, 3); sites below a minimum denominator are blanked.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from analytics.kri.sites import FLAG_AMBER, FLAG_INSUFFICIENT, FLAG_OK, FLAG_RED, SiteIndex
from analytics.kri.specs import KRISpec


def funnel_scores(observed: np.ndarray, denominator: np.ndarray, index: SiteIndex, spec: KRISpec) -> pd.DataFrame:
    """Per-site gsm funnel z for one KRI (``observed`` and ``denominator`` are per subject row)."""
    S, G = index.n_sites, index.n_groups
    site_o = np.bincount(index.row_site, weights=observed, minlength=S)
    site_n = np.bincount(index.row_site, weights=denominator, minlength=S)
    group_o = np.bincount(index.site_group, weights=site_o, minlength=G)
    group_n = np.bincount(index.site_group, weights=site_n, minlength=G)
    with np.errstate(divide="ignore", invalid="ignore"):
        rate = np.nan_to_num(group_o / group_n)[index.site_group]
        expected = site_n * rate
        if spec.family == "count":
            raw_z = (site_o - expected) / np.sqrt(expected)
        else:
            raw_z = (site_o - expected) / np.sqrt(site_n * rate * (1 - rate))
    usable = (site_n >= spec.funnel_min_denominator) & np.isfinite(raw_z)
    sq = np.where(usable, raw_z**2, 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        phi = np.bincount(index.site_group, weights=sq, minlength=G) / np.bincount(
            index.site_group, weights=usable, minlength=G
        )
    phi = np.where(np.isfinite(phi) & (phi > 0), phi, 1.0)
    z = np.where(usable, raw_z / np.sqrt(phi[index.site_group]), np.nan)
    return pd.DataFrame({
        "observed": site_o, "denominator": site_n, "expected": expected,
        "p_low": stats.norm.cdf(z), "p_high": stats.norm.sf(z), "evaluable": usable, "z": z,
    })


def flag_funnel(cells: pd.DataFrame, spec_of: dict[str, KRISpec]) -> None:
    """gsm flags from z and each KRI's thresholds (red low, amber low, amber high, red high)."""
    thresholds = np.array([spec_of[k].funnel_thresholds for k in cells["kri"]], dtype="float64")
    z = cells["z"].to_numpy()
    red = (z <= thresholds[:, 0]) | (z >= thresholds[:, 3])
    amber = (z <= thresholds[:, 1]) | (z >= thresholds[:, 2])
    evaluable = cells["evaluable"].to_numpy(dtype=bool)
    flag = np.where(red, FLAG_RED, np.where(amber, FLAG_AMBER, FLAG_OK))
    cells["flag"] = np.where(evaluable, flag, FLAG_INSUFFICIENT).astype("int64")
    cells["direction"] = np.where(cells["flag"] > 0, np.where(z < 0, "low", "high"), "")
    cells["p"] = np.where(evaluable, 2 * stats.norm.sf(np.abs(z)), np.nan)
    cells["tests_at_site"] = 0
