"""Funnel plot of sites' deviation rates: each site against the pooled rate of the sites shown.

Sites with few subject-visits vary a lot by chance, so a site is judged against limits that narrow
as its subject-visits grow: the pooled rate ``r`` plus or minus ``z sqrt(phi r / n)`` per 100
subject-visits, at 95% (z = 1.96) and 99.8% (z = 3.09). ``phi`` is the over-dispersion factor of
Spiegelhalter (2005): the mean squared z-score of the sites after winsorizing the 10% most extreme
at each end, used when above 1 (sites differ by more than chance, as they always do a little).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.stats import mstats

LIMITS = ((0.95, 1.959964), (0.998, 3.090232))
WINSOR = 0.1
PER = 100.0


def funnel(sites: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame, float, float]:
    """Sites with rate, z and position, the limit curves, the pooled rate and phi.

    ``sites`` has ``visits`` and ``deviations``. Returns (sites with ``rate``, ``z``, ``position``:
    "above 99.8%", "above 95%", "within", "below 95%"; curves with ``visits`` and one column per limit
    and side; pooled rate per 100 subject-visits; phi).
    """
    frame = sites[sites["visits"] > 0].copy()
    if frame.empty:
        return frame, pd.DataFrame(), float("nan"), float("nan")
    exposure = frame["visits"] / PER
    pooled = float(frame["deviations"].sum() / exposure.sum())
    frame["rate"] = frame["deviations"] / exposure
    frame["z"] = (frame["rate"] - pooled) / np.sqrt(pooled / exposure) if pooled > 0 else 0.0
    z = np.asarray(frame["z"], dtype=float)
    phi = float(np.mean(np.asarray(mstats.winsorize(z, limits=(WINSOR, WINSOR))) ** 2)) if len(z) >= 5 else 1.0
    phi = max(phi, 1.0)
    z_adj = frame["z"] / np.sqrt(phi)
    frame["position"] = np.select([z_adj > LIMITS[1][1], z_adj > LIMITS[0][1], z_adj < -LIMITS[0][1]],
                                  ["above 99.8%", "above 95%", "below 95%"], "within")
    grid = np.geomspace(max(frame["visits"].min() * 0.8, 5), frame["visits"].max() * 1.2, 80)
    curves = pd.DataFrame({"visits": grid})
    for level, zq in LIMITS:
        half = zq * np.sqrt(phi * pooled / (grid / PER))
        curves[f"upper_{level}"] = pooled + half
        curves[f"lower_{level}"] = np.maximum(pooled - half, 0.0)
    return frame, curves, pooled, phi
