"""Summaries of a Poisson-Gamma simulation as tidy frames: fan, completion, P(on time), per site."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from analytics.enrollment import DAYS_PER_MONTH
from analytics.enrollment.poisson_gamma import exposure, ramp_delay_days, site_exposure
from analytics.enrollment.simulate import Simulation

FAN_QUANTILES = (0.05, 0.10, 0.25, 0.50, 0.75, 0.90, 0.95)
FAN_COLUMNS = tuple(f"q{round(q * 100):02d}" for q in FAN_QUANTILES)
FAN_SIMS = 2_000
BEYOND_HORIZON = 1e9  # the fan's marginal quantiles per date need fewer simulations than the tails of completion


def quantile_dates(cut: pd.Timestamp, days: np.ndarray, probabilities) -> list[pd.Timestamp | None]:
    """Dates at the given quantiles of ``days`` after ``cut`` (None where beyond the simulated horizon)."""
    # Simulations that never reach the target within the horizon sort last (a large finite stand-in).
    values = np.quantile(np.where(np.isfinite(days), days, BEYOND_HORIZON), probabilities)
    # A quantile interpolated towards the stand-in is beyond the horizon too.
    return [cut + pd.Timedelta(days=float(np.ceil(v))) if v < BEYOND_HORIZON / 1e3 else None for v in np.atleast_1d(values)]


@dataclass
class Forecast:
    """A fitted model's predictive distribution; every frame carries dates and counts, no study id."""

    model: object
    sims: Simulation

    @property
    def cut(self) -> pd.Timestamp:
        return self.model.cut_date_

    @property
    def horizon_date(self) -> pd.Timestamp:
        """The last date simulated: a completion quantile that is None lies after it."""
        return self.cut + pd.Timedelta(days=float(self.sims.x[-1]))

    def completion_dates(self, probabilities=(0.1, 0.5, 0.8, 0.9)) -> dict[float, pd.Timestamp | None]:
        """Date the target is reached at each probability (quantiles of the completion time)."""
        return dict(zip(probabilities, quantile_dates(self.cut, self.sims.completion_days, probabilities)))

    def p_target_by(self, date: pd.Timestamp | None) -> float:
        """P(the target is randomized by ``date``)."""
        if date is None or pd.isna(date):
            return float("nan")
        days = (pd.Timestamp(date) - self.cut).days
        return float(np.mean(self.sims.completion_days <= days))

    def fan(self, seed: int = 0) -> pd.DataFrame:
        """Cumulative randomized by week: the 5/10/25/50/75/90/95% quantiles (columns ``q05``...``q95``)."""
        rng = np.random.default_rng(seed)
        sims = self.sims
        intensity = sims.cumulative_intensity[:FAN_SIMS]
        further = np.minimum(rng.poisson(intensity), sims.remaining)
        counts = sims.randomized + further
        finite = np.isfinite(sims.completion_days)
        last = np.quantile(sims.completion_days[finite], 0.95) if finite.any() else sims.x[-1]
        keep = sims.x <= min(sims.x[-1], last + 8 * 7)
        quantiles = np.quantile(counts[:, keep], FAN_QUANTILES, axis=0)
        frame = pd.DataFrame(quantiles.T, columns=list(FAN_COLUMNS))
        frame.insert(0, "date", self.cut + pd.to_timedelta(sims.x[keep], unit="D"))
        return frame

    def site_forecast(self) -> pd.DataFrame:
        """Per site: posterior rate, expected further randomizations and P(enrolls nobody), to the median LPI."""
        model, rates = self.model, self.model.rates_
        table = model.site_table_
        horizon = self.completion_dates((0.5,))[0.5]
        x_end = float((horizon - self.cut).days) if horizon is not None else float(self.sims.x[-1])
        alpha, beta, g = rates.alpha, rates.beta_per_day, rates.gamma_per_day
        k = table["randomized"].to_numpy(float)
        tau = table["open_days"].to_numpy(float)
        active = table["activation_date"].notna().to_numpy()
        dropped = table["dropped"].to_numpy(bool)
        shape = np.where(active, alpha + k, alpha)
        rate = np.where(active, beta + site_exposure(tau, g, model.ramp_share), beta)
        drift_now = np.exp(g * tau)
        current = stats.gamma(shape, scale=1 / rate)
        future = np.where(active, drift_now * exposure(np.full_like(tau, x_end), g), 0.0)
        p_never = np.where(dropped, 1.0, 0.0)
        activation_p50 = pd.Series(pd.NaT, index=table.index, dtype="datetime64[ns]")
        pending = ~active & ~dropped
        if model.include_pending and model.activation_ is not None and pending.any():
            planned = table.loc[pending, "planned_activation_date"]
            ok = planned.notna().to_numpy()
            offset = (planned[ok] - self.cut).dt.days.to_numpy(float)
            never, quantiles = model.activation_.pending(offset, np.maximum(-offset, 0))
            rows = np.flatnonzero(pending)[ok]
            open_for = np.maximum(x_end - quantiles - float(table["lag_days"].iloc[0]) - ramp_delay_days(model.ramp_share),
                                  0.0)
            exposure_q = exposure(open_for, g)
            future[rows] = (1 - never) * exposure_q.mean(axis=1)
            zero = (1 + exposure_q / beta) ** (-alpha)
            p_never[rows] = never
            p_zero_pending = never + (1 - never) * zero.mean(axis=1)
            activation_p50.iloc[rows] = (self.cut + pd.to_timedelta(np.median(quantiles, axis=1), unit="D")).to_numpy()
        expected = shape / rate * future
        p_zero = np.where(k > 0, 0.0, np.where(active, (1 + future / rate) ** (-shape), 1.0))
        if model.include_pending and model.activation_ is not None and pending.any():
            p_zero[rows] = p_zero_pending
        total = expected.sum()
        return pd.DataFrame({
            "study_site_id": table["study_site_id"].to_numpy(),
            "country_code": table["country_code"].to_numpy(),
            "state": np.where(active, "active", np.where(dropped, "dropped", "pending")),
            "randomized": k.astype("int64"),
            "open_months": tau / DAYS_PER_MONTH,
            "rate_mean": np.where(active, shape / rate * drift_now, alpha / beta) * DAYS_PER_MONTH,
            "rate_p10": current.ppf(0.1) * np.where(active, drift_now, 1.0) * DAYS_PER_MONTH,
            "rate_p90": current.ppf(0.9) * np.where(active, drift_now, 1.0) * DAYS_PER_MONTH,
            "expected_by_lpi": expected,
            "share_of_remaining": expected / total if total > 0 else np.zeros_like(expected),
            "p_enrolls_nobody": p_zero,
            "p_never_activates": np.where(active, 0.0, p_never),
            "activation_p50": activation_p50.to_numpy(),
        })
