"""The hierarchical KRI model, the permutation and the simaerep-style baseline on simulated truth."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from analytics.kri.calibrated import fit_calibrated
from analytics.kri.engine import run_engine
from analytics.kri.models import (
    SiteData,
    count_tails,
    fit_spread,
    log_likelihood_ratio_kept,
    proportion_tails,
    site_posterior,
)
from analytics.kri.permutation import size_adjusted_p
from analytics.kri.simaerep import bh_adjust, cumulative_events, simaerep_inframe
from analytics.kri.sites import SiteIndex
from analytics.kri.specs import kri, stratum_columns

AE_SPECS = (kri("ae_rate"), kri("sae_rate"))


def _study_frame(rng: np.random.Generator, studies: int, sites: int, tau: float, silenced: int = 0,
                 size_slope: float = 0.0) -> pd.DataFrame:
    """Subjects with AEs (Gamma frailty, log-normal site effects); the first ``silenced`` sites report none.

    ``size_slope``: a benign institution effect that goes with size (a site's rate times
    ``(n / 10) ** size_slope`` for ``n`` subjects; negative: small sites report more).
    """
    rows = []
    for s in range(studies):
        for k in range(sites):
            n = int(rng.integers(3, 25))
            days = rng.uniform(30, 600, n)
            effect = np.exp(tau * rng.standard_normal() - tau**2 / 2) * (n / 10) ** size_slope
            mean = 4.0 / 365 * days * effect * rng.gamma(2.0, 0.5, n)
            ae = rng.poisson(mean) * (0 if k < silenced else 1)
            rows.append(pd.DataFrame({"study_id": f"S{s}", "study_site_id": f"S{s}-{k:03d}",
                                      "subject_id": [f"S{s}-{k}-{i}" for i in range(n)], "snap": 0,
                                      "days_on_treatment": days, "ae": ae}))
    frame = pd.concat(rows, ignore_index=True)
    # Put every AE in the bin of a uniform day on treatment (enough for a flat hazard).
    for column in stratum_columns("ae") + stratum_columns("sae"):
        frame[column] = 0.0
    bins = np.searchsorted([30, 90, 180, 365], rng.uniform(0, frame["days_on_treatment"]), side="right")
    for b in range(5):
        frame[f"ae__b{b}"] = np.where(bins == b, frame["ae"], 0).astype(float)
    frame["sae__b0"] = 0.0
    return frame.drop(columns="ae")


def test_count_tails_reduce_to_poisson_and_match_monte_carlo_for_large_sites():
    observed, expected = np.array([0.0, 3.0, 12.0]), np.array([5.0, 5.0, 5.0])
    low, high = count_tails(observed, expected, expected, np.zeros(3))
    np.testing.assert_allclose(low, stats.poisson.cdf(observed - 1, expected) + 0.5 * stats.poisson.pmf(observed, expected),
                               rtol=1e-9)
    rng = np.random.default_rng(0)
    counts = rng.poisson(500 * np.exp(rng.normal(-0.08, 0.4, 200_000)))
    y = np.quantile(counts, [0.001, 0.01, 0.5]).round()
    low, _ = count_tails(y, np.full(3, 500.0), np.full(3, 500.0), np.full(3, 0.16))
    monte_carlo = [(counts < v).mean() + 0.5 * (counts == v).mean() for v in y]
    np.testing.assert_allclose(low, monte_carlo, atol=0.0015)


def test_proportion_tails_of_a_precise_site_follow_the_between_site_spread():
    rng = np.random.default_rng(1)
    shares = 1 / (1 + np.exp(-(np.log(0.04 / 0.96) + rng.normal(-0.92 * 0.08, 0.4, 200_000))))
    counts = rng.binomial(5000, shares)
    y = np.quantile(counts, [0.01, 0.99]).round()
    low, high = proportion_tails(y, np.full(2, 5000.0), np.full(2, 200.0), np.full(2, 192.0), np.full(2, 0.16))
    assert low[0] == pytest.approx(0.01, abs=0.002) and high[1] == pytest.approx(0.01, abs=0.002)


def test_marginal_likelihood_recovers_the_between_site_spread():
    rng = np.random.default_rng(2)
    for tau in (0.1, 0.4):
        expected = rng.uniform(5, 200, 400)
        observed = rng.poisson(expected * np.exp(rng.normal(-tau**2 / 2, tau, 400))).astype(float)
        data = SiteData("count", observed, expected, expected, expected.copy())
        fit = fit_spread(data, np.zeros(400), np.zeros(400, dtype=int), 1, np.ones(400, dtype=bool), np.array([0.05]))
        assert np.sqrt(fit.tau2[0]) == pytest.approx(tau, abs=0.06)


def test_other_silent_sites_do_not_pull_the_reference_down():
    rng = np.random.default_rng(3)
    frame = _study_frame(rng, 1, 20, 0.15, silenced=4)
    index = SiteIndex.from_frame(frame)
    fit = fit_calibrated(frame, index, kri("ae_rate"))
    clean = np.arange(index.n_sites) >= 4
    # Clean sites are judged against clean peers: observed / expected near 1, not inflated by 20%.
    assert np.median(fit.observed[clean] / fit.expected[clean]) == pytest.approx(1.0, abs=0.08)
    assert fit.clean_probability[:4].max() < 0.05


def test_the_posterior_says_how_far_below_the_study_a_silent_site_is():
    data = SiteData("count", np.array([0.0, 30.0]), np.array([30.0, 30.0]), np.array([30.0, 30.0]), np.array([36.0, 36.0]))
    post = site_posterior(data, np.array([0.02, 0.02]), np.zeros(2), np.array([0.05, 0.05]))
    assert post["prob_below"][0] > 0.99 and post["posterior_ratio_high"][0] < 0.2
    assert post["prob_below"][1] < 0.05 and post["posterior_ratio_low"][1] < 1 < post["posterior_ratio_high"][1]


def _negative_binomial_sites(rng: np.random.Generator, n: int, tau: float, kept: float) -> SiteData:
    """Sites of 3-60 expected AEs (subject frailty: variance 1.5 x the mean), log-normal site effects
    of SD ``tau``, each reporting ``kept`` of its AEs."""
    expected = rng.uniform(3, 60, n)
    size = expected / 0.5  # variance e + e^2 / size = 1.5 e
    mean = expected * np.exp(tau * rng.standard_normal(n) - tau**2 / 2) * kept
    observed = rng.poisson(rng.gamma(size, mean / size)).astype(float)
    return SiteData("count", observed, expected, expected, 1.5 * expected)


def test_the_likelihood_ratio_for_half_kept_finds_more_half_reporting_sites_than_the_tail_at_equal_fpr():
    rng = np.random.default_rng(5)
    tau2 = 0.15**2
    clean, half = _negative_binomial_sites(rng, 20_000, 0.15, 1.0), _negative_binomial_sites(rng, 5_000, 0.15, 0.5)

    def evidence(data: SiteData) -> tuple[np.ndarray, np.ndarray]:
        n = len(data.observed)
        lr = log_likelihood_ratio_kept(data, np.full(n, tau2), np.zeros(n), 0.5)
        low, _ = count_tails(data.observed, data.expected, data.base_variance, np.full(n, tau2))
        return lr, -np.log(low)

    (lr_clean, tail_clean), (lr_half, tail_half) = evidence(clean), evidence(half)
    detected_lr = np.mean(lr_half > np.quantile(lr_clean, 0.99))
    detected_tail = np.mean(tail_half > np.quantile(tail_clean, 0.99))
    # Neyman-Pearson: for this one alternative no ranking does better; the tail treats every size alike.
    assert detected_lr >= detected_tail - 0.01
    # Fewer AEs than expected is evidence for the alternative, as many as expected against it.
    one = SiteData("count", np.array([20.0, 40.0, 60.0]), np.full(3, 40.0), np.full(3, 40.0), np.full(3, 60.0))
    ratio = log_likelihood_ratio_kept(one, np.full(3, tau2), np.zeros(3), 0.5)
    assert ratio[0] > 0 > ratio[1] > ratio[2]
    # A wider spread between sites explains more of a shortfall.
    assert log_likelihood_ratio_kept(one, np.full(3, 0.5), np.zeros(3), 0.5)[0] < ratio[0]
    with pytest.raises(ValueError, match="count KRIs"):
        log_likelihood_ratio_kept(SiteData("proportion", *one.observed[None].repeat(4, 0)), np.zeros(3), np.zeros(3), 0.5)


def test_site_score_p_values_of_clean_sites_are_uniform_and_flags_follow_the_policy():
    rng = np.random.default_rng(4)
    frame = _study_frame(rng, 8, 60, 0.2)
    run = run_engine(frame, "calibrated", specs=AE_SPECS)
    p = run.sites["site_p"].dropna()
    assert len(p) > 400 and stats.kstest(p, "uniform").pvalue > 0.01
    evaluable = run.sites[run.sites["evaluable"] > 0]
    assert evaluable["any_amber"].mean() == pytest.approx(0.10, abs=0.04)
    assert evaluable["any_red"].mean() <= 0.025


def test_site_score_of_small_clean_sites_stays_uniform_when_rates_go_with_site_size():
    # Small sites report 30% more AEs per patient-year than sites of 10 (institution quality goes
    # with enrolment); patient reshuffling cannot reproduce that, so without the size trend the
    # small sites' site-score p-values leaned low (KS p 0.003, 62% at or below 0.5).
    rng = np.random.default_rng(4)
    frame = _study_frame(rng, 8, 60, 0.2, size_slope=-0.3)
    run = run_engine(frame, "calibrated", specs=AE_SPECS)
    size = run.sites["study_site_id"].map(frame.groupby("study_site_id").size())
    small = run.sites.loc[size <= 8, "site_p"].dropna()
    assert len(small) > 100
    assert stats.kstest(small, "uniform").pvalue > 0.05
    assert stats.kstest(run.sites["site_p"].dropna(), "uniform").pvalue > 0.05


def test_size_trend_leaves_each_site_out_of_its_own_reference():
    rng = np.random.default_rng(7)
    p = stats.norm.sf(rng.standard_normal(40))
    p[0] = 1e-6  # an atypical site that is not red
    log_size = np.log(rng.integers(1, 60, 40).astype(float))
    adjusted = size_adjusted_p(p, log_size, np.ones(40))
    assert adjusted[0] < 1e-4
    # No trend in the data: the adjustment moves the clean sites' p-values little.
    assert np.abs(stats.norm.isf(adjusted[1:]) - stats.norm.isf(p[1:])).max() < 0.6
    # Red sites (weight 0) do not inform the line, but are still judged against it.
    assert np.isfinite(size_adjusted_p(p, log_size, np.r_[0.0, np.ones(39)])).all()


def test_simaerep_flags_a_site_without_events_and_adjusts_like_simaerep():
    rng = np.random.default_rng(5)
    n = 400
    site = np.arange(n) // 10
    visits = np.maximum(np.round(rng.normal(20, 4, n)), 1).astype(int)
    events = [rng.poisson(0.5, v) * (0 if s == 0 else 1) for v, s in zip(visits, site)]
    patient = np.repeat(np.arange(n), [e.sum() for e in events])
    visit = np.concatenate([np.repeat(np.arange(1, len(e) + 1), e) for e in events])
    cumulative = cumulative_events(patient, visit, n, visits.max())
    result = simaerep_inframe(np.zeros(n), site, visits, cumulative).set_index("site")
    assert result.loc[0, "p_low"] == 0.0 and result.loc[0, "p_low_adjusted"] <= 0.05
    assert (result["p_low_adjusted"] <= 0.05).sum() <= 3
    np.testing.assert_allclose(bh_adjust(np.array([0.01, 0.02, 0.5, 0.5])), [0.04, 0.04, 0.5, 0.5])
