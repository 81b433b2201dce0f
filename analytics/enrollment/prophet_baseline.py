"""Prophet as a weekly baseline: portfolio, country or study randomizations per week, with its own intervals.

Prophet (Taylor & Letham) fits trend and yearly seasonality to a weekly series; it has no notion of
sites or activation, so it is a baseline for portfolio and country totals and an overlay beside the
Poisson-Gamma fan, not a site-level model. Its predictive samples of future weekly counts, summed,
give the completion date's distribution and the cumulative fan.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

UNCERTAINTY_SAMPLES = 300
MIN_WEEKS = 6  # fewer weeks of history: no Prophet forecast



def _quiet() -> None:
    # cmdstanpy logs every chain, and an L-BFGS failure on sparse series (Prophet then falls back to
    # Newton and says so); importing prophet configures these loggers, so quieten them afterwards.
    logging.getLogger("cmdstanpy").disabled = True
    logging.getLogger("prophet").setLevel(logging.ERROR)


def weekly_counts(randomization_dates: pd.Series, cut_date: pd.Timestamp) -> pd.DataFrame:
    """Randomizations per week (weeks ending on the cut's weekday), ``ds`` = week end, ``y`` = count."""
    cut = pd.Timestamp(cut_date)
    dates = pd.to_datetime(pd.Series(randomization_dates)).dropna()
    dates = dates[dates <= cut]
    if dates.empty:
        return pd.DataFrame({"ds": pd.DatetimeIndex([]), "y": []})
    weeks_back = (cut - dates).dt.days // 7
    n_weeks = int(weeks_back.max()) + 1
    counts = np.bincount(weeks_back.to_numpy(), minlength=n_weeks)[::-1]
    ds = cut - pd.to_timedelta(7 * np.arange(n_weeks)[::-1], unit="D")
    return pd.DataFrame({"ds": ds, "y": counts.astype(float)})


def fit_prophet(history: pd.DataFrame, interval_width: float = 0.8, seed: int = 0):
    """A Prophet model fitted to a weekly ``ds``/``y`` series (yearly seasonality when two years are there)."""
    from prophet import Prophet

    _quiet()
    model = Prophet(weekly_seasonality=False, daily_seasonality=False, yearly_seasonality="auto",
                    interval_width=interval_width, uncertainty_samples=UNCERTAINTY_SAMPLES)
    np.random.seed(seed)  # Prophet draws its uncertainty samples from numpy's global generator
    model.fit(history, algorithm="LBFGS")
    return model


def weekly_baseline(history: pd.DataFrame, horizon_weeks: int, interval_width: float = 0.8, seed: int = 0) -> pd.DataFrame:
    """Prophet forecast of weekly counts: ``ds``, ``yhat``, ``yhat_lower``, ``yhat_upper`` (counts per week, >= 0)."""
    model = fit_prophet(history, interval_width, seed)
    future = model.make_future_dataframe(periods=horizon_weeks, freq="7D", include_history=False)
    future["ds"] = history["ds"].iloc[-1] + pd.to_timedelta(7 * np.arange(1, horizon_weeks + 1), unit="D")
    forecast = model.predict(future)[["ds", "yhat", "yhat_lower", "yhat_upper"]]
    forecast[["yhat", "yhat_lower", "yhat_upper"]] = forecast[["yhat", "yhat_lower", "yhat_upper"]].clip(lower=0)
    return forecast.reset_index(drop=True)


def prophet_paths(randomization_dates: pd.Series, cut_date: pd.Timestamp, horizon_weeks: int, seed: int = 0
                  ) -> tuple[pd.DatetimeIndex, np.ndarray] | None:
    """Sampled future weekly counts (samples x weeks, >= 0) and the week-end dates; None without history."""
    history = weekly_counts(randomization_dates, cut_date)
    if len(history) < MIN_WEEKS or history["y"].sum() == 0:
        return None
    model = fit_prophet(history, seed=seed)
    ds = history["ds"].iloc[-1] + pd.to_timedelta(7 * np.arange(1, horizon_weeks + 1), unit="D")
    samples = model.predictive_samples(pd.DataFrame({"ds": ds}))["yhat"]  # weeks x samples
    return pd.DatetimeIndex(ds), np.clip(samples.T, 0, None)


def prophet_forecast(randomization_dates: pd.Series, cut_date: pd.Timestamp, target: int, horizon_weeks: int,
                     probabilities=(0.05, 0.1, 0.25, 0.5, 0.75, 0.8, 0.9, 0.95), planned_lpi: pd.Timestamp | None = None,
                     fan_quantiles=(0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95), seed: int = 0) -> dict[str, object] | None:
    """Completion quantiles, P(target by ``planned_lpi``) and the cumulative fan from Prophet's samples."""
    cut = pd.Timestamp(cut_date)
    dates = pd.to_datetime(pd.Series(randomization_dates)).dropna()
    randomized = int((dates <= cut).sum())
    remaining = target - randomized
    paths = prophet_paths(dates, cut, horizon_weeks, seed)
    if paths is None:
        return None
    ds, weekly = paths
    cumulative = np.cumsum(weekly, axis=1)
    reached = cumulative >= remaining
    week = np.where(reached.any(axis=1), reached.argmax(axis=1), -1)
    before = np.where(week > 0, cumulative[np.arange(len(week)), np.maximum(week - 1, 0)], 0.0)
    this_week = weekly[np.arange(len(week)), np.maximum(week, 0)]
    fraction = np.where(this_week > 0, (remaining - before) / np.maximum(this_week, 1e-9), 1.0)
    days = np.where(week >= 0, 7 * (week + np.clip(fraction, 0, 1)), np.inf)
    finite = np.where(np.isfinite(days), days, 1e9)
    values = np.quantile(finite, probabilities)
    completion = {p: cut + pd.Timedelta(days=float(np.ceil(v))) if v < 1e6 else None for p, v in zip(probabilities, values)}
    p_on_time = float("nan")
    if planned_lpi is not None and pd.notna(planned_lpi):
        p_on_time = float(np.mean(days <= (pd.Timestamp(planned_lpi) - cut).days))
    fan = pd.DataFrame(np.minimum(randomized + np.quantile(cumulative, fan_quantiles, axis=0).T, target),
                       columns=[f"q{round(q * 100):02d}" for q in fan_quantiles])
    fan.insert(0, "date", ds)
    return {"completion": completion, "p_on_time": p_on_time, "fan": fan}


def portfolio_baseline(subjects: pd.DataFrame, cut_date: pd.Timestamp, horizon_weeks: int = 26,
                       by: str | None = None, interval_width: float = 0.8, seed: int = 0) -> pd.DataFrame:
    """Weekly randomizations of the portfolio (``by=None``) or per ``by`` group (e.g. ``"country_code"``):
    history and Prophet's forecast with its interval, in one tidy frame.

    Columns: ``group`` (``"portfolio"`` or the group value), ``ds`` (week end), ``kind`` (``history``
    or ``forecast``), ``y`` (observed count per week), ``yhat``, ``yhat_lower``, ``yhat_upper``
    (forecast counts per week). Groups with fewer than :data:`MIN_WEEKS` weeks of history get no forecast.
    """
    randomized = subjects.dropna(subset=["randomization_date"])
    groups = [("portfolio", randomized)] if by is None else list(randomized.groupby(by))
    frames = []
    for name, part in groups:
        history = weekly_counts(part["randomization_date"], cut_date)
        frames.append(history.assign(group=name, kind="history"))
        if len(history) >= MIN_WEEKS and history["y"].sum() > 0:
            forecast = weekly_baseline(history, horizon_weeks, interval_width, seed)
            frames.append(forecast.assign(group=name, kind="forecast"))
    columns = ["group", "ds", "kind", "y", "yhat", "yhat_lower", "yhat_upper"]
    return pd.concat(frames, ignore_index=True).reindex(columns=columns) if frames else pd.DataFrame(columns=columns)
