"""The Poisson-Gamma engine on data simulated from known parameters: what a statistician would check."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from analytics.enrollment import DAYS_PER_MONTH
from analytics.enrollment.poisson_gamma import PoissonGammaModel, fit_rates
from analytics.enrollment.prior import plan_prior
from analytics.enrollment.scenario import p_on_time_by_sites_added, sites_to_add

CUT = pd.Timestamp("2026-01-01")


def _poisson_gamma_sites(rng: np.random.Generator, n_sites: int, alpha: float, rate_per_month: float,
                         drift_per_year: float = 0.0) -> tuple[pd.DataFrame, np.ndarray]:
    """Active sites with Gamma rates, open 100-700 days, counts and event times from the drifting process."""
    open_days = rng.uniform(100, 700, n_sites)
    rates = rng.gamma(alpha, rate_per_month / alpha, n_sites) / DAYS_PER_MONTH
    g = drift_per_year / 365.25
    exposure = open_days if g == 0 else np.expm1(g * open_days) / g
    counts = rng.poisson(rates * exposure)
    # Event times since activation by inversion of the cumulative intensity exp(g s).
    u = rng.uniform(size=counts.sum())
    site = np.repeat(np.arange(n_sites), counts)
    times = u * open_days[site] if g == 0 else np.log1p(u * np.expm1(g * open_days[site])) / g
    sums = np.bincount(site, weights=times, minlength=n_sites)
    table = pd.DataFrame({
        "study_site_id": [f"S{i:03d}" for i in range(n_sites)], "country_code": "US",
        "planned_activation_date": CUT - pd.to_timedelta(open_days + 20, unit="D"),
        "activation_date": CUT - pd.to_timedelta(open_days, unit="D"), "dropped": False,
        "randomized": counts, "open_days": open_days, "randomized_open_days_sum": sums,
        "selection_date": pd.NaT, "lag_days": 0.0,
    })
    return table, rates


def test_maximum_likelihood_recovers_known_rates() -> None:
    rng = np.random.default_rng(5)
    table, _ = _poisson_gamma_sites(rng, 400, alpha=2.0, rate_per_month=0.8)
    constant = fit_rates(table, time_varying=False)
    assert constant.rate_per_site_month == pytest.approx(0.8, rel=0.1)
    assert constant.alpha == pytest.approx(2.0, rel=0.35)
    drifting, _ = _poisson_gamma_sites(np.random.default_rng(6), 400, alpha=2.0, rate_per_month=0.8,
                                       drift_per_year=-0.5)
    fitted = fit_rates(drifting, time_varying=True)
    assert fitted.gamma_per_year == pytest.approx(-0.5, abs=0.2)
    assert fitted.rate_per_site_month == pytest.approx(0.8, rel=0.15)
    # The constant-rate fit of the same data finds no drift to report.
    assert fit_rates(drifting, time_varying=False).gamma_per_year == 0.0


def test_fan_covers_the_truth_at_its_nominal_rate_on_poisson_gamma_data() -> None:
    rng = np.random.default_rng(11)
    covered = {80: 0, 90: 0}
    replicates = 150
    for replicate in range(replicates):
        table, rates = _poisson_gamma_sites(rng, 40, alpha=1.5, rate_per_month=1.0)
        randomized = int(table["randomized"].sum())
        remaining = 150
        truth = rng.gamma(remaining) / rates.sum()  # days to the remaining-th further event
        # The simulated sites have no start-up ramp, so the model is told so: this checks the classic
        # model on its own assumptions (with the default ramp it would credit each site 15 days of lost
        # exposure that never happened and run a few per cent fast).
        model = PoissonGammaModel(certainty=0.0, time_varying=False, rate_walk=False, ramp_share=0.0)
        model.fit(table, CUT, randomized + remaining)
        days = model.predict(n_sims=2_000, seed=replicate).sims.completion_days
        for level in covered:
            low, high = np.quantile(days, [(1 - level / 100) / 2, (1 + level / 100) / 2])
            covered[level] += int(low <= truth <= high)
    assert covered[80] / replicates == pytest.approx(0.80, abs=0.08)
    assert covered[90] / replicates == pytest.approx(0.90, abs=0.06)


def _behind_plan_forecast():
    rng = np.random.default_rng(3)
    table, _ = _poisson_gamma_sites(rng, 30, alpha=2.0, rate_per_month=0.5)
    randomized = int(table["randomized"].sum())
    planned_lpi = CUT + pd.Timedelta(days=365)
    model = PoissonGammaModel(rate_walk=False).fit(table, CUT, randomized + 300, planned_lpi)
    return model.predict(n_sims=4_000, seed=1), planned_lpi


def test_p_on_time_rises_with_every_site_added_and_sites_to_add_reaches_80_percent() -> None:
    forecast, planned_lpi = _behind_plan_forecast()
    curve = p_on_time_by_sites_added(forecast, planned_lpi, 60)
    p = curve["p_on_time"].to_numpy()
    assert p[0] < 0.2
    assert np.all(np.diff(p) >= 0)
    assert p[-1] > p[0] + 0.5
    plan = sites_to_add(forecast, planned_lpi, max_sites=60)
    m = plan["sites_to_add"]
    assert m is not None and p[m] >= 0.8 and p[m - 1] < 0.8
    assert plan["add_sites_by"] >= curve["activation_date"].iloc[0]
    # Activating the added sites later can only lower the chance of finishing on time.
    later = p_on_time_by_sites_added(forecast, planned_lpi, m, plan["add_sites_by"] + pd.Timedelta(weeks=8))
    assert later["p_on_time"].iloc[m] <= p[m]


def _design_stage_table(n_sites: int = 20) -> pd.DataFrame:
    planned = CUT + pd.to_timedelta(np.linspace(14, 180, n_sites), unit="D")
    return pd.DataFrame({
        "study_site_id": [f"P{i:02d}" for i in range(n_sites)], "country_code": "DE",
        "planned_activation_date": planned, "activation_date": pd.NaT, "dropped": False, "randomized": 0,
        "open_days": 0.0, "randomized_open_days_sum": 0.0, "selection_date": pd.NaT, "lag_days": 14.0,
    })


def test_a_study_with_no_randomizations_forecasts_from_its_plan() -> None:
    table = _design_stage_table()
    medians = {}
    for months in (12, 24):
        planned_lpi = CUT + pd.Timedelta(days=months * 30.44)
        model = PoissonGammaModel().fit(table, CUT, 200, planned_lpi)
        assert model.rates_.prior_weight == 1.0
        prior = plan_prior(table, planned_lpi, 200)
        assert model.rates_.mu_per_day == pytest.approx(prior.rate_per_day, rel=0.1)
        forecast = model.predict(n_sims=4_000, seed=2)
        q = forecast.completion_dates((0.1, 0.5, 0.9))
        assert q[0.1] is not None and q[0.5] is not None and q[0.1] > CUT
        if q[0.9] is not None:
            assert q[0.9] > q[0.5]
        medians[months] = q[0.5]
        assert 0.0 < forecast.p_target_by(planned_lpi) < 1.0
    # A plan that promises faster enrollment moves the forecast earlier (it is the only information).
    assert medians[12] < medians[24]
    with pytest.raises(ValueError, match="no randomizations and no plan"):
        PoissonGammaModel().fit(table.assign(planned_activation_date=pd.NaT), CUT, 200, None)


def test_the_start_up_ramp_is_part_of_a_young_sites_exposure() -> None:
    """Sites open one to four months enroll below their rate at first; the ramped exposure recovers the rate."""
    from scipy import integrate

    from analytics.enrollment.poisson_gamma import RAMP_DAYS, site_exposure

    share, g = 0.3, -0.2 / 365.25
    numeric = integrate.quad(lambda s: (1 - share * np.exp(-s / RAMP_DAYS)) * np.exp(g * s), 0, 75)[0]
    assert site_exposure(np.array([75.0]), g, share)[0] == pytest.approx(numeric, rel=1e-6)
    rng = np.random.default_rng(8)
    table, rates = _poisson_gamma_sites(rng, 3000, alpha=2.0, rate_per_month=0.8)
    open_days = rng.uniform(30, 120, len(table))
    table["open_days"] = open_days
    table["randomized"] = rng.poisson(rates * site_exposure(open_days, 0.0, share))
    with_ramp = fit_rates(table, time_varying=False, ramp_share=share)
    without = fit_rates(table, time_varying=False, ramp_share=0.0)
    assert with_ramp.rate_per_site_month == pytest.approx(0.8, rel=0.06)
    assert without.rate_per_site_month < 0.93 * with_ramp.rate_per_site_month  # young sites look slow


def test_sites_not_yet_active_count_as_censored_even_when_planned_after_the_cut() -> None:
    """Only the early few of the sites planned around the cut are active: the rest say delays are longer."""
    from analytics.enrollment.activation import EARLIEST_DAYS, fit_activation

    planned = CUT + pd.to_timedelta(np.r_[np.full(4, -20.0), np.full(16, 10.0)], unit="D")
    activation = pd.Series(pd.NaT, index=range(20), dtype="datetime64[ns]")
    activation[:4] = CUT - pd.Timedelta(days=40)  # the four active ones came 20 days early
    table = pd.DataFrame({"planned_activation_date": planned, "activation_date": activation, "dropped": False})
    everyone = fit_activation(table, CUT)
    active_only = fit_activation(table[activation.notna()], CUT)
    median_delay = np.exp(everyone.mu) - EARLIEST_DAYS
    assert median_delay > np.exp(active_only.mu) - EARLIEST_DAYS + 10
    # None of the sixteen waiting sites activated in the 10 days before its planned date.
    assert everyone.survival(np.array([-10.0]))[0] > 0.5


def test_a_site_activating_long_before_its_plan_does_not_stretch_the_fitted_delays() -> None:
    """Start-up runs about 217 days against 180 planned; one site among sixty comes 150 days early."""
    from analytics.enrollment.activation import fit_activation

    rng = np.random.default_rng(5)
    delays = np.round(217 * np.exp(0.5 * rng.standard_normal(60)) - 180 * np.exp(0.15 * rng.standard_normal(60)))
    delays[-1] = -150.0
    planned = CUT - pd.to_timedelta(np.full(60, 900.0), unit="D")
    table = pd.DataFrame({"planned_activation_date": planned, "activation_date": planned + pd.to_timedelta(delays, unit="D"),
                          "dropped": False})
    fitted = fit_activation(table, CUT)
    fitted_p90 = np.exp(fitted.mu + 1.2816 * fitted.sigma) - fitted.earliest_days
    # With the shift at 120 days the early site was scored as an extreme outlier: 90% quantile 268 d.
    assert fitted_p90 == pytest.approx(np.quantile(delays, 0.9), rel=0.2)


def test_the_walks_level_at_the_cut_follows_a_recent_change_and_its_start_is_anchored() -> None:
    from analytics.enrollment.poisson_gamma import filtered_walk_level, walk_start_variance

    # The level of a walk over its whole window, about the window's own mean, is known to q T / 3.
    assert walk_start_variance(12, 24, 0.1) == pytest.approx(0.01 * 12 / 3)
    assert walk_start_variance(48, 24, 0.1) == pytest.approx(0.01 * (24 ** 2 / 48 - 24 + 16))
    rng = np.random.default_rng(21)
    table, rates = _poisson_gamma_sites(rng, 60, alpha=3.0, rate_per_month=1.0)
    table["open_days"] = 720.0  # every site open two years: randomizations spread evenly over them
    table["activation_date"] = CUT - pd.Timedelta(days=720)
    days = np.concatenate([rng.uniform(0, 720, int(k)) for k in table["randomized"]])
    steady = CUT - pd.to_timedelta(720 - days, unit="D")
    fitted = fit_rates(table, time_varying=False)
    level, var = filtered_walk_level(table, pd.Series(steady), CUT, fitted, walk_sd=0.06, ramp_share=0.0)
    assert abs(level) < 0.1 and 0 < var < 0.01
    # The same sites, but randomizing at half their pace for the last six months.
    late = days > 540
    slowed = pd.Series(steady[~late | (rng.uniform(size=len(days)) < 0.5)])
    level, _ = filtered_walk_level(table, slowed, CUT, fitted, walk_sd=0.06, ramp_share=0.0)
    assert level < -0.3  # log 0.5 = -0.69, against an average the slowdown pulled down too


def test_without_randomization_dates_the_walk_starts_from_the_average_level() -> None:
    from analytics.evaluation.enrollment_speed import synthetic_dates, synthetic_site_table

    table, cut = synthetic_site_table(n_sites=80, pending_share=0.1)
    target = int(table["randomized"].sum() * 2)
    undated = PoissonGammaModel().fit(table, cut, target)
    assert undated.rates_.walk_level == 0.0 and undated.rates_.walk_level_var == 0.0
    # Evenly spread dates: the level stands near the average, and the two forecasts agree to within weeks.
    dated = PoissonGammaModel().fit(table, cut, target, randomization_dates=synthetic_dates(table, cut))
    assert abs(dated.rates_.walk_level) < 0.15 and dated.rates_.walk_level_var > 0
    medians = [float(np.median(m.predict(n_sims=2_000, seed=1).sims.completion_days)) for m in (undated, dated)]
    assert abs(medians[0] - medians[1]) < 0.15 * medians[0]
