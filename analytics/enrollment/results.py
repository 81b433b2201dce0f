"""The enrollment forecasts as derived tables: one function the derived-results registry calls.

``compute_enrollment_results(wh, scope, study_ids)`` reads the warehouse only through
``wh.query`` (and ``wh.reference`` for the condition-population reference) and returns, per table
of the ``derived`` schema declared in :mod:`analytics.core.schema`, a tidy frame with ``study_id`` on
every row. Seeds are derived from the study id, so the same data give the same results.
"""

from __future__ import annotations

import zlib

import numpy as np
import pandas as pd

from analytics.core.derived import DerivedResult, RefreshRun
from analytics.core.schema import TABLES_BY_NAME
from analytics.core.scope import AccessScope, PortfolioFilter
from analytics.core.warehouse import Warehouse
from analytics.enrollment.data import (
    read_condition_population,
    read_milestones,
    read_sites,
    read_studies,
    read_subjects,
    read_targets,
)
from analytics.enrollment.demographics import enrollment_by_group
from analytics.enrollment.forecast import FAN_COLUMNS, FAN_QUANTILES
from analytics.enrollment.linear import linear_fan, linear_forecast
from analytics.enrollment.poisson_gamma import PoissonGammaModel
from analytics.enrollment.prophet_baseline import prophet_forecast
from analytics.enrollment.scenario import sites_to_add
from analytics.enrollment.site_table import build_site_table, screening_lag_days
from analytics.enrollment.timeline import lock_lag_sample, timeline

RESULT_TABLES = ("enrollment_forecast", "enrollment_study_summary", "enrollment_site_forecast",
                 "enrollment_timeline", "enrollment_demographics")
N_SIMS = 10_000
PROPHET_HORIZON_WEEKS = 260


def study_seed(study_id: str) -> int:
    """A fixed seed per study (results do not depend on which other studies are computed)."""
    return zlib.crc32(study_id.encode("utf-8"))


def _empty(name: str) -> pd.DataFrame:
    return pd.DataFrame({c.name: pd.Series(dtype="object") for c in TABLES_BY_NAME[name].columns})


def _conform(name: str, frame: pd.DataFrame) -> pd.DataFrame:
    """Columns in schema order, dates as dates."""
    table = TABLES_BY_NAME[name]
    out = frame.reindex(columns=[c.name for c in table.columns])
    for column in table.columns:
        if column.type == "DATE":
            out[column.name] = pd.to_datetime(out[column.name]).dt.normalize()
        elif column.type == "INTEGER":
            out[column.name] = pd.to_numeric(out[column.name], errors="coerce").astype("Int64")
        elif column.type == "DOUBLE":
            out[column.name] = pd.to_numeric(out[column.name], errors="coerce").astype("float64")
    return out.reset_index(drop=True)


def _series(study_id: str, series: str, frame: pd.DataFrame) -> pd.DataFrame:
    out = frame.copy()
    out.insert(0, "series", series)
    out.insert(0, "study_id", study_id)
    return out


def _actual_curve(dates: pd.Series) -> pd.DataFrame:
    """Cumulative randomized at the end of every day with a randomization."""
    counts = pd.to_datetime(dates).dropna().dt.normalize().value_counts().sort_index().cumsum()
    return pd.DataFrame({"date": counts.index, "q50": counts.to_numpy(float)})


def _plan_curve(study: pd.Series) -> pd.DataFrame:
    """Linear planned accrual from planned FPI (0) to planned LPI (target), weekly."""
    if pd.isna(study["planned_fpi"]) or pd.isna(study["planned_lpi"]) or pd.isna(study["target_enrollment"]):
        return pd.DataFrame(columns=["date", "q50"])
    dates = pd.date_range(study["planned_fpi"], study["planned_lpi"], freq="7D")
    dates = dates.union(pd.DatetimeIndex([study["planned_lpi"]]))
    span = max((study["planned_lpi"] - study["planned_fpi"]).days, 1)
    return pd.DataFrame({"date": dates, "q50": float(study["target_enrollment"]) * (dates - study["planned_fpi"]).days / span})


def forecast_study(study: pd.Series, sites: pd.DataFrame, subjects: pd.DataFrame, milestones: pd.DataFrame,
                   targets: pd.DataFrame, population: pd.DataFrame, cut: pd.Timestamp, lock_days: np.ndarray,
                   n_sims: int = N_SIMS) -> dict[str, pd.DataFrame]:
    """Every derived enrollment frame of one study at the as-of date ``cut``."""
    study_id = study["study_id"]
    seed = study_seed(study_id)
    target = int(study["target_enrollment"]) if pd.notna(study["target_enrollment"]) else 0
    randomized = subjects.dropna(subset=["randomization_date"])
    known = randomized[randomized["randomization_date"] <= cut]
    n_randomized = len(known)
    planned_lpi = study["planned_lpi"] if pd.notna(study["planned_lpi"]) else None
    curves = [_series(study_id, "actual", _actual_curve(known["randomization_date"])),
              _series(study_id, "plan", _plan_curve(study))]
    summary = {"study_id": study_id, "as_of_date": cut, "target": target, "randomized": n_randomized,
               "active_sites": int((sites["activation_date"] <= cut).sum()),
               "pending_sites": int((sites["activation_date"].isna() & ~sites["dropped"]).sum()),
               "planned_lpi": planned_lpi}
    site_frame = pd.DataFrame()
    lpi_days, horizon_days, actual_lpi, remaining = None, None, None, max(target - n_randomized, 0)
    if target and n_randomized >= target:
        actual_lpi = known["randomization_date"].sort_values().iloc[target - 1]
        on_time = float(actual_lpi <= planned_lpi) if planned_lpi is not None else np.nan
        summary.update({"p_on_time": on_time, "lpi_p10": actual_lpi, "lpi_p50": actual_lpi, "lpi_p80": actual_lpi,
                        "lpi_p90": actual_lpi, "sites_to_add": 0})
    elif target:
        lag = screening_lag_days(subjects, cut)
        table = build_site_table(sites, known, cut, sites["dropped"], lag)
        try:
            model = PoissonGammaModel().fit(table, cut, target, planned_lpi, known["randomization_date"])
        except ValueError:
            model = None  # neither randomizations nor a plan: nothing to forecast from
        if model is not None:
            forecast = model.predict(n_sims=n_sims, seed=seed)
            fan = forecast.fan(seed=seed)
            curves.append(_series(study_id, "poisson_gamma", fan))
            lpi_days = forecast.sims.completion_days
            horizon_days = float(forecast.sims.x[-1])
            quantiles = forecast.completion_dates((0.1, 0.5, 0.8, 0.9))
            scenario = sites_to_add(forecast, planned_lpi, seed=seed)
            rates = model.rates_
            summary.update({
                "p_on_time": forecast.p_target_by(planned_lpi), "lpi_p10": quantiles[0.1], "lpi_p50": quantiles[0.5],
                "lpi_p80": quantiles[0.8], "lpi_p90": quantiles[0.9], "horizon_date": forecast.horizon_date,
                "rate_per_site_month": rates.rate_per_site_month,
                "rate_shape": rates.alpha, "trend_per_year": rates.gamma_per_year, "prior_weight": rates.prior_weight,
                "sites_to_add": scenario["sites_to_add"], "add_sites_by": scenario["add_sites_by"],
                "p_on_time_with_added": scenario["p_on_time_with_added"],
            })
            site_frame = forecast.site_forecast().assign(study_id=study_id)
            grid = pd.DatetimeIndex(fan["date"])
            if n_randomized:
                curves.append(_series(study_id, "linear",
                                      linear_fan(known["randomization_date"], cut, target, grid, FAN_QUANTILES)))
                summary["linear_lpi"] = linear_forecast(known["randomization_date"], cut, target, (0.5,))[0.5]
                prophet = prophet_forecast(known["randomization_date"], cut, target, PROPHET_HORIZON_WEEKS,
                                           (0.5,), planned_lpi, FAN_QUANTILES, seed=seed % (2 ** 32 - 1))
                if prophet is not None:
                    curves.append(_series(study_id, "prophet", prophet["fan"][prophet["fan"]["date"] <= grid.max()]))
                    summary["prophet_lpi"] = prophet["completion"][0.5]
    study_milestones = milestones[milestones["study_id"] == study_id]
    timeline_frame = timeline(study, cut, lpi_days, actual_lpi, study_milestones, lock_days, horizon_days)
    demographics = enrollment_by_group(subjects, study, targets[targets["study_id"] == study_id], population,
                                       site_frame if len(site_frame) else None, remaining, seed=seed % (2 ** 32))
    forecast_frame = pd.concat(curves, ignore_index=True)
    for column in FAN_COLUMNS:
        if column not in forecast_frame:
            forecast_frame[column] = np.nan
    actual_or_plan = forecast_frame["series"].isin(["actual", "plan"])
    forecast_frame.loc[actual_or_plan, [c for c in FAN_COLUMNS if c != "q50"]] = np.nan
    forecast_frame = forecast_frame.drop_duplicates(["study_id", "series", "date"], keep="last")
    return {
        "enrollment_forecast": forecast_frame,
        "enrollment_study_summary": pd.DataFrame([summary]),
        "enrollment_site_forecast": site_frame,
        "enrollment_timeline": timeline_frame,
        "enrollment_demographics": demographics,
    }


def compute_enrollment_results(wh: Warehouse, scope: AccessScope, study_ids: list[str] | tuple[str, ...],
                               n_sims: int = N_SIMS, portfolio_scope: AccessScope | None = None
                               ) -> dict[str, pd.DataFrame]:
    """Derived enrollment tables for ``study_ids`` (those the scope lets it see) at the warehouse's as-of date.

    Returns ``{table name: frame}`` for :data:`RESULT_TABLES`, columns as declared in the ``derived``
    schema, ``study_id`` on every row. Deterministic: each study's simulations use a seed derived
    from its id. ``portfolio_scope``: the studies the lock lag learns from (default ``scope``).
    """
    filters = PortfolioFilter(study_ids=tuple(study_ids))
    cut = pd.Timestamp(wh.as_of())
    studies = read_studies(wh, scope, filters)
    sites = read_sites(wh, scope, filters)
    subjects = read_subjects(wh, scope, filters)
    milestones = read_milestones(wh, scope, filters)
    targets = read_targets(wh, scope, filters)
    population = read_condition_population(wh, studies["indication"].dropna().unique().tolist())
    # The lock lag learns from every study the scope sees, not only those being recomputed.
    portfolio_milestones = read_milestones(wh, portfolio_scope or scope, PortfolioFilter())
    lock_days, _ = lock_lag_sample(portfolio_milestones, n_sims, np.random.default_rng(0))
    parts: dict[str, list[pd.DataFrame]] = {name: [] for name in RESULT_TABLES}
    for _, study in studies.iterrows():
        study_id = study["study_id"]
        frames = forecast_study(study, sites[sites["study_id"] == study_id].reset_index(drop=True),
                                subjects[subjects["study_id"] == study_id], milestones, targets, population, cut,
                                lock_days, n_sims)
        for name, frame in frames.items():
            if len(frame):
                parts[name].append(frame)
    return {name: _conform(name, pd.concat(frames, ignore_index=True)) if frames else _conform(name, _empty(name))
            for name, frames in parts.items()}


def _compute_for_registry(run: RefreshRun) -> dict[str, pd.DataFrame]:
    run.progress("forecasting enrollment (Poisson-Gamma, linear, Prophet)")
    # The lock lag from every study of the warehouse, however many are recomputed now (a study's
    # forecast must not depend on the studies refreshed with it).
    every = AccessScope(study_ids=frozenset(run.all_study_ids), blinded=False)
    return compute_enrollment_results(run.warehouse, run.scope, list(run.study_ids), portfolio_scope=every)


ENROLLMENT_RESULT = DerivedResult(
    name="enrollment",
    description="enrollment forecasts, timelines and demographics per study",
    tables=RESULT_TABLES,
    compute=_compute_for_registry,
    code=tuple(f"analytics.enrollment.{m}" for m in (
        "activation", "data", "demographics", "forecast", "linear", "poisson_gamma", "prior", "prophet_baseline",
        "results", "scenario", "simulate", "site_table", "timeline")),
    params=(("n_sims", N_SIMS), ("prophet_horizon_weeks", PROPHET_HORIZON_WEEKS)),
    portfolio_tables=("studies", "milestones"),
)
