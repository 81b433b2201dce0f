"""How many sites to add, and by when, for P(target by the planned date) >= 0.8.

Added sites are like the study's sites: each never activates with the fitted probability and
otherwise draws its rate from the fitted site-rate Gamma, with the drift and random walk of the
simulation it joins. Common random numbers make P(on time) non-decreasing in the number added: the
``m``-site scenario adds site ``m`` to the ``m - 1``-site one in every simulation.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from analytics.enrollment.forecast import Forecast

P_REQUIRED = 0.8
SCENARIO_SIMS = 4_000
DEFAULT_START_UP_DAYS = 217  # ~31 weeks from selection to activation (Tufts CSDD) when the study has no history


def start_up_days(site_table: pd.DataFrame) -> float:
    """Median selection-to-activation days of the study's activated sites (default ~31 weeks)."""
    if "selection_date" not in site_table:
        return DEFAULT_START_UP_DAYS
    days = (pd.to_datetime(site_table["activation_date"]) - pd.to_datetime(site_table["selection_date"])).dt.days.dropna()
    return float(days.median()) if len(days) >= 3 else DEFAULT_START_UP_DAYS


def _added_exposure(forecast: Forecast, start_day: float, end_day: float, n: int) -> np.ndarray:
    """Per simulation: exposure to ``end_day`` of one site activated at ``start_day`` (days after the cut)."""
    sims = forecast.sims
    x, unit = sims.x, sims.unit_exposure[:n]
    at_end = _interp_rows(x, unit, end_day)
    at_start = _interp_rows(x, unit, start_day)
    return np.maximum(np.exp(-sims.gamma_per_day[:n] * start_day) * (at_end - at_start), 0.0)


def _interp_rows(x: np.ndarray, rows: np.ndarray, value: float) -> np.ndarray:
    value = min(max(value, x[0]), x[-1])
    j = min(int(np.searchsorted(x, value, side="right")), len(x) - 1)
    i = max(j - 1, 0)
    w = 0.0 if x[j] == x[i] else (value - x[i]) / (x[j] - x[i])
    return rows[:, i] * (1 - w) + rows[:, j] * w


def p_on_time_by_sites_added(forecast: Forecast, planned_lpi: pd.Timestamp, max_sites: int,
                             activation_date: pd.Timestamp | None = None, seed: int = 0) -> pd.DataFrame:
    """P(target by ``planned_lpi``) with 0..``max_sites`` sites added, all activating on ``activation_date``.

    ``activation_date`` defaults to the cut plus the study's median start-up time (the earliest
    date a site selected today could enroll).
    """
    model, sims = forecast.model, forecast.sims
    n = min(SCENARIO_SIMS, sims.n_sims)
    rng = np.random.default_rng(seed)
    end_day = float((pd.Timestamp(planned_lpi) - forecast.cut).days)
    start = activation_date if activation_date is not None else forecast.cut + pd.Timedelta(days=start_up_days(model.site_table_))
    start_day = float(max((pd.Timestamp(start) - forecast.cut).days, 0))
    base = _interp_rows(sims.x, sims.cumulative_intensity[:n], end_day) if end_day > 0 else np.zeros(n)
    never = model.activation_.never if model.activation_ is not None else 0.0
    rates = rng.standard_gamma(np.broadcast_to(sims.alpha[:n, None], (n, max_sites))) / sims.beta_per_day[:n, None]
    rates *= rng.random((n, max_sites)) >= never
    cumulative_rates = np.concatenate([np.zeros((n, 1)), np.cumsum(rates, axis=1)], axis=1)
    added = _added_exposure(forecast, start_day, end_day, n) if end_day > start_day else np.zeros(n)
    intensity = base[:, None] + cumulative_rates * added[:, None]
    on_time = intensity >= sims.arrivals[:n, None]
    return pd.DataFrame({"sites_added": np.arange(max_sites + 1), "p_on_time": on_time.mean(axis=0),
                         "activation_date": pd.Timestamp(start)})


def sites_to_add(forecast: Forecast, planned_lpi: pd.Timestamp | None, max_sites: int | None = None,
                 p_required: float = P_REQUIRED, seed: int = 0) -> dict[str, object]:
    """The fewest added sites giving P(on time) >= ``p_required``, and the latest activation that still does.

    Returns a dict with ``sites_to_add`` (0 if already likely on time, None if even ``max_sites``
    do not suffice or the planned date has passed), ``add_sites_by`` (latest weekly activation date
    keeping P >= ``p_required``), ``p_on_time_with_added`` and ``curve`` (P by number added).
    """
    empty = {"sites_to_add": None, "add_sites_by": None, "p_on_time_with_added": float("nan"), "curve": pd.DataFrame()}
    if planned_lpi is None or pd.isna(planned_lpi) or pd.Timestamp(planned_lpi) <= forecast.cut:
        return empty
    table = forecast.model.site_table_
    max_sites = max_sites or max(10, 2 * len(table))
    curve = p_on_time_by_sites_added(forecast, planned_lpi, max_sites, seed=seed)
    enough = np.flatnonzero(curve["p_on_time"].to_numpy() >= p_required)
    if not len(enough):
        return {**empty, "curve": curve}
    m = int(enough[0])
    if m == 0:
        return {"sites_to_add": 0, "add_sites_by": None, "p_on_time_with_added": float(curve["p_on_time"].iloc[0]),
                "curve": curve}
    earliest = curve["activation_date"].iloc[0]
    latest = earliest
    for weeks in range(1, 260):
        candidate = earliest + pd.Timedelta(weeks=weeks)
        if candidate >= pd.Timestamp(planned_lpi):
            break
        p = p_on_time_by_sites_added(forecast, planned_lpi, m, candidate, seed=seed)["p_on_time"].iloc[m]
        if p < p_required:
            break
        latest = candidate
    return {"sites_to_add": m, "add_sites_by": latest, "p_on_time_with_added": float(curve["p_on_time"].iloc[m]),
            "curve": curve}
