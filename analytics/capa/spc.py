"""Control charts of quality trends: u-charts and p-charts by month, Laney-adjusted when over-dispersed.

A chart is a :class:`ChartSpec` (what is counted, per what, which direction is of concern) run by one
engine, :func:`control_chart`, on a monthly series of numerators and denominators:

* ``u`` (counts per unit of exposure, e.g. deviations per 100 subject-visits): centre ``ubar``,
  point sigma ``sqrt(ubar / n_i)``;
* ``p`` (share of trials, e.g. CAPAs closed on time): centre ``pbar``, sigma ``sqrt(pbar (1 - pbar) / n_i)``.

Months with many subject-visits can vary more than Poisson counts: sites differ and their mix changes
from month to month, so the ordinary limits would be too narrow. Laney's correction (u' and p'
charts) measures that extra month-to-month variation as the average moving range of the
standardized values, ``sigma_z = mean |z_i - z_(i-1)| / 1.128``, and widens every point's sigma by it
when the baseline's ``sigma_z`` is beyond what chance gives a chart without over-dispersion
(:func:`laney_chance_threshold`: 1.48 for 12 months; it never narrows limits). "Whenever sigma_z > 1"
would widen the limits of about half of all charts by chance alone, and on the calibration seeds the
risk-adjusted deviation charts behave like Poisson ones (the correction applies to 6% of them at the
chance threshold). The chi-square dispersion test of the baseline is reported beside it.

The centre line and ``sigma_z`` come from the chart's *baseline*: ``baseline_points`` evaluable months
after the first ``baseline_skip`` (none for the risk-adjusted deviation chart, whose expected line
already follows the start-up mix of screening and treatment), or the first ones when the series is
shorter, and are then held, as
Phase I / Phase II practice has it, so a later shift is judged against what came before rather than
absorbed into it.
The run rules (:mod:`analytics.capa.rules`) are applied to every evaluable point; the chart's
``rules`` raise a signal (WE1, WE2 and a CUSUM of the standardized values), the others mark patterns.

**Small counts** (``ChartSpec.residual``): with a few expected deviations a month, ``(O - E) / sqrt(E)``
has a long upper tail (on the calibration seeds 3.8% of stable months with at most 3 expected
deviations were beyond 3), so the deviation chart standardizes each count by its Poisson tail
(:func:`poisson_deviate`) and draws the limits at the counts where that deviate reaches +-2 and +-3.
After the baseline it is the tail of the *predictive* distribution (:func:`predictive_deviate`): the
expected count rests on rates estimated from the baseline's own deviations, so a month is judged
against a negative binomial that carries that estimate's uncertainty too, not against a Poisson that
takes the baseline's rates as known (calibration seeds 9201-9208: false signals per 100 stable months
0.70 -> 0.65 on the deviation charts, 0.44 -> 0.09 on the closure charts, one shift fewer flagged
within two months on each, 22 of 42 and 12 of 18).

**Risk adjustment** (``ChartSpec.risk_adjusted``, the deviation chart): a study's deviations per visit
differ by phase (a screening visit stands for a different stretch of a subject's time than a
treatment visit; screen failures and the last treatment interval have deviations but few visits),
so the rate per visit of all its visits drifts as enrollment gives way to treatment and treatment
winds down, which a single frozen centre line reads as a shift. Given *strata* (per month, study
and phase: deviations and visits, :func:`analytics.capa.data.monthly_deviation_strata`), each
stratum's rate is estimated over the baseline months and the month's *expected* deviations are
``E_i = sum_k rate_k x_ik`` (indirect standardization). The chart is then a standardized one:
``z_i = (O_i - E_i) / sqrt(E_i)`` (Laney's ``sigma_z`` from their moving ranges, as above), drawn on
the rate scale with the expected rate ``E_i / n_i`` as a centre line that follows the month's mix and
limits ``(E_i +- k sigma_z sqrt(E_i)) / n_i``. Without strata (or with one stratum) this is the
ordinary u-chart.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import special, stats

from analytics.capa.rules import RULES, SIGNAL_RULES, apply_rules, signal_onsets

MOVING_RANGE_D2 = 1.128  # E|x1 - x2| / sigma for two normal values
# Laney widens the limits when the baseline's sigma_z exceeds this (never narrows them); None: when it
# exceeds what a baseline of that many months without over-dispersion gives 95% of the time.
LANEY_THRESHOLD: float | None = None
LANEY_CHANCE_LEVEL = 0.95
MEDIAN_MOVING_RANGE_D4 = 0.954  # median |x1 - x2| / sigma for two normal values
LANEY_MOVING_RANGE = "mean"  # "mean" (Laney) or "median" (robust to one outlying baseline month)


RESIDUALS = ("normal", "freeman_tukey", "poisson", "predictive")


@dataclass(frozen=True)
class ChartSpec:
    """One control chart.

    Attributes:
        id: stable id, e.g. ``deviations``.
        name: display title.
        family: ``u`` (count per exposure) or ``p`` (share).
        unit: what the plotted value is, with its unit.
        per: exposure per unit of the plotted value (100 subject-visits: 100); 1 for shares.
        concern: the direction that is a problem (``high`` or ``low``).
        min_denominator: months with a smaller denominator are shown but not judged.
        baseline_points: evaluable months the centre and Laney sigma are estimated from.
        baseline_skip: evaluable months left out before the baseline (a study's start-up months).
        numerator_label, denominator_label: what is counted, for tables and hovers.
        definition: what the chart shows, in a quality manager's words.
        risk_adjusted: u-charts: the centre line is each month's expected rate from the strata's
            baseline rates (observed against expected), when strata are given.
        residual: u-charts: how a month's count is standardized against its expected count,
            ``normal`` (``(O - E) / sqrt(E)``) or ``freeman_tukey`` (``sqrt(O) + sqrt(O + 1) -
            sqrt(4 E + 1)``, :func:`freeman_tukey`) or ``poisson`` (the normal score of the Poisson
            mid-p tail, :func:`poisson_deviate`) or ``predictive`` (the same tail of the negative binomial
            that carries the baseline's estimation uncertainty, :func:`predictive_deviate`, for months after
            the baseline); all are near normal even for a handful of expected deviations, where
            ``(O - E) / sqrt(E)`` has a long upper tail.
        rules: ids of the run rules (:data:`analytics.capa.rules.RULES`) that raise a signal on this chart;
            every other rule is still applied and its breaks marked as a *pattern* (worth a look, not a signal).
        expected_label: risk-adjusted charts: the legend of the expected line, saying what it follows.
    """

    id: str
    name: str
    family: str
    unit: str
    per: float
    concern: str
    min_denominator: float
    baseline_points: int
    baseline_skip: int
    numerator_label: str
    denominator_label: str
    definition: str
    risk_adjusted: bool = False
    residual: str = "normal"
    rules: tuple[str, ...] = SIGNAL_RULES
    expected_label: str = "Expected"

    def __post_init__(self) -> None:
        if self.family not in ("u", "p"):
            raise ValueError(f"{self.id}: family must be u or p")
        if self.residual not in RESIDUALS or (self.residual != "normal" and self.family != "u"):
            raise ValueError(f"{self.id}: residual must be one of {RESIDUALS} (others than normal for u-charts only)")
        unknown = set(self.rules) - {r.id for r in RULES}
        if unknown:
            raise ValueError(f"{self.id}: unknown rules {sorted(unknown)}")
        if self.concern not in ("high", "low"):
            raise ValueError(f"{self.id}: concern must be high or low")


CHARTS: tuple[ChartSpec, ...] = (
    ChartSpec("deviations", "Protocol deviations per 100 subject-visits", "u", "deviations per 100 subject-visits",
              100.0, "high", 100.0, 12, 0, "Deviations", "Subject-visits",
              "Protocol deviations that occurred in the month per 100 completed subject-visits in the month, "
              "against the rate expected from the time subjects spent in screening and in treatment that month "
              "(each study's baseline rates).",
              risk_adjusted=True, residual="predictive", expected_label="Expected (screening / treatment mix)"),
    ChartSpec("on_time", "CAPAs closed on time", "p", "% closed by the due date",
              1.0, "low", 5.0, 12, 0, "Closed on time", "CAPAs due",
              "Of the CAPAs whose current due date fell in the month, the share closed on or before it "
              "(a CAPA still open after its due date counts as late)."),
    # On-time closure lags a slowdown: a CAPA due next month is mostly done when closing slows, so it
    # still closes on time. Every open CAPA's chance of closing this month drops at once, so this chart
    # of the same process sees a slowdown sooner. Only WE1 raises a signal: its expected line rests on
    # 12 months' closure rates, and an error in them persists as a run of months a little below it,
    # which WE2 and the CUSUM read as a signal (calibration seeds 9201-9208: false signals per 100 stable
    # months 1.22 with WE1, WE2 and the CUSUM, 0.78 with WE1 and WE2, 0.44 with WE1).
    ChartSpec("closures", "CAPA closures against expected", "u", "closures per 100 open CAPA-days",
              100.0, "low", 150.0, 12, 0, "Closed", "Open CAPA-days",
              "CAPAs closed in the month per 100 days CAPAs were open in the month, against the closures "
              "expected from how far through their time the open CAPAs were (the baseline's rates): "
              "a low point means CAPAs are closing more slowly than before.",
              risk_adjusted=True, residual="predictive", rules=("we1",),
              expected_label="Expected (how far through their time the open CAPAs are)"),
)
CHARTS_BY_ID = {c.id: c for c in CHARTS}


@dataclass(frozen=True)
class ControlChart:
    """A computed chart: one row per month, and how its limits were set."""

    spec: ChartSpec
    points: pd.DataFrame
    centre: float
    sigma_z: float
    laney: bool
    dispersion_p: float
    baseline_months: int
    risk_adjusted: bool = False

    @property
    def signals(self) -> pd.DataFrame:
        """Points that break a rule in the direction of concern."""
        return self.points[self.points["concern_flag"]]


@functools.lru_cache(maxsize=64)
def laney_chance_threshold(points: int, level: float = LANEY_CHANCE_LEVEL, estimator: str = "mean") -> float:
    """The ``level`` quantile of the moving-range sigma_z of ``points`` independent standard normal values.

    With 12 baseline months the moving-range estimate of sigma_z exceeds 1 in about half of charts with
    no over-dispersion at all (its standard deviation is about 0.27), so "sigma_z > 1" would widen the
    limits of every other chart by chance; the correction is applied when the estimate is beyond this
    quantile instead. Monte Carlo with a fixed seed (20,000 series), so the value is reproducible.
    """
    if points < 3:
        return float("inf")
    z = np.random.default_rng(0).standard_normal((20_000, points))
    ranges = np.abs(np.diff(z, axis=1))
    estimate = np.median(ranges, axis=1) / MEDIAN_MOVING_RANGE_D4 if estimator == "median" \
        else ranges.mean(axis=1) / MOVING_RANGE_D2
    return float(np.quantile(estimate, level))


def freeman_tukey(observed: np.ndarray, expected: np.ndarray) -> np.ndarray:
    """Freeman-Tukey deviate of Poisson counts, ``sqrt(O) + sqrt(O + 1) - sqrt(4 E + 1)``: about standard normal.

    With 2 expected deviations, ``(O - E) / sqrt(E)`` passes 3 at 7 deviations (a 0.45% chance, three
    times the normal 0.135%); this deviate passes it at 9 (0.02%), and for larger ``E`` it tends to
    ``(O - E) / sqrt(E)``.
    """
    with np.errstate(invalid="ignore"):
        return np.sqrt(observed) + np.sqrt(observed + 1) - np.sqrt(4 * expected + 1)


def freeman_tukey_count(deviate: np.ndarray, expected: np.ndarray) -> np.ndarray:
    """The (continuous) count whose Freeman-Tukey deviate against ``expected`` is ``deviate``: the limits' counts."""
    total = np.asarray(deviate, dtype="float64") + np.sqrt(4 * np.asarray(expected, dtype="float64") + 1)
    with np.errstate(divide="ignore", invalid="ignore"):
        count = ((total ** 2 - 1) / (2 * total)) ** 2
    return np.where(total > 1, count, 0.0)


def poisson_deviate(observed: np.ndarray, expected: np.ndarray) -> np.ndarray:
    """The normal score of a count's Poisson mid-p upper tail: ``z`` with ``P(Z > z) = P(X > O) + P(X = O) / 2``.

    The mid-p tail is taken from the continuous extension ``P(X >= O + 1/2)``, the regularized
    incomplete gamma function ``P(O + 1/2, E)``, so the deviate is smooth and increasing in ``O`` and
    the limits can be drawn as the counts where it reaches +-k (:func:`poisson_count`). A month is
    judged by how unlikely its count is, not by ``(O - E) / sqrt(E)``, which with 15 expected
    deviations puts 28 at 3.2 sigma when a count as high has a 0.3% chance (2.8 sigma).
    """
    observed = np.asarray(observed, dtype="float64")
    expected = np.asarray(expected, dtype="float64")
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(expected > 0, special.ndtri(special.gammaincc(observed + 0.5, expected)), np.nan)


def poisson_count(deviate: np.ndarray | float, expected: np.ndarray) -> np.ndarray:
    """The (continuous) count whose :func:`poisson_deviate` against ``expected`` is ``deviate`` (bisection)."""
    expected = np.asarray(expected, dtype="float64")
    return _count_at_tail(lambda a: special.gammaincc(a, expected), deviate, expected + 20 * np.sqrt(expected) + 50)


def _count_at_tail(lower_tail, deviate: np.ndarray | float, high: np.ndarray) -> np.ndarray:
    """The count ``O`` with ``lower_tail(O + 1/2) = Phi(deviate)``, for a ``lower_tail`` rising in its argument.

    Bisection on ``[0, high]``: 60 halvings bring the bracket below a 1e-15 count.
    """
    target = np.broadcast_to(special.ndtr(np.asarray(deviate, dtype="float64")), high.shape)
    low = np.zeros_like(high)
    for _ in range(60):
        middle = (low + high) / 2
        below = lower_tail(middle) < target
        low, high = np.where(below, middle, low), np.where(below, high, middle)
    return np.maximum((low + high) / 2 - 0.5, 0.0)


def predictive_deviate(observed: np.ndarray, expected: np.ndarray, shape: np.ndarray | float) -> np.ndarray:
    """:func:`poisson_deviate` against the predictive distribution of a month judged by an estimated baseline.

    The expected count ``E`` of a month after the baseline rests on the baseline's rates, estimated
    from ``B`` baseline deviations, so it is itself uncertain (relative SD about ``1 / sqrt(B)``): with
    a Jeffreys prior the rate's posterior is Gamma(``B + 1/2``), and the month's count is then negative
    binomial with ``shape = B + 1/2`` and mean ``E``, variance ``E + E^2 / shape``. Judging it against
    Poisson(``E``) instead reads every month of a study whose baseline happened to run low as a little
    high, a shared error that a CUSUM adds up month after month (the Phase I estimation effect on Phase II
    charts: Jensen et al. 2006, J. Qual. Technol. 38:349). The mid-p tail of the negative binomial, on its
    continuous extension ``I_p(shape, O + 1/2)`` with ``p = shape / (shape + E)``, is smooth and increasing
    in ``O`` like the Poisson one and tends to it as ``shape`` grows; ``shape`` = inf gives the Poisson deviate
    (baseline months, which are part of the estimate).
    """
    observed = np.asarray(observed, dtype="float64")
    expected = np.asarray(expected, dtype="float64")
    shape = np.broadcast_to(np.asarray(shape, dtype="float64"), expected.shape)
    finite = np.isfinite(shape) & (shape > 0)
    out = poisson_deviate(observed, expected)
    with np.errstate(invalid="ignore", divide="ignore"):
        p = np.where(finite, shape / (shape + expected), 1.0)
        tail = special.betainc(np.where(finite, shape, 1.0), observed + 0.5, p)
        nb = np.where(expected > 0, special.ndtri(tail), np.nan)
    return np.where(finite, nb, out)


def predictive_count(deviate: np.ndarray | float, expected: np.ndarray, shape: np.ndarray | float) -> np.ndarray:
    """The (continuous) count whose :func:`predictive_deviate` against ``expected`` is ``deviate`` (bisection)."""
    expected = np.asarray(expected, dtype="float64")
    shape = np.broadcast_to(np.asarray(shape, dtype="float64"), expected.shape)
    finite = np.isfinite(shape) & (shape > 0)
    n = np.where(finite, shape, 1.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        p = n / (n + expected)
        spread = np.sqrt(expected + expected ** 2 / n)
    high = expected + 20 * np.where(np.isfinite(spread), spread, 0.0) + 50
    negative_binomial = _count_at_tail(lambda b: special.betainc(n, b, p), deviate, high)
    return np.where(finite, negative_binomial, poisson_count(deviate, expected))


def _ignore_shape(function):
    return lambda first, expected, shape: function(first, expected)


# residual -> (deviate of a count against its expected count and the predictive shape (inf: none), count at a
# given deviate); only the predictive residual reads the shape
RESIDUAL_TRANSFORMS = {"freeman_tukey": (_ignore_shape(freeman_tukey), _ignore_shape(freeman_tukey_count)),
                       "poisson": (_ignore_shape(poisson_deviate), _ignore_shape(poisson_count)),
                       "predictive": (predictive_deviate, predictive_count)}


def _sigma(spec: ChartSpec, centre: float, exposure: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        if spec.family == "u":
            return np.sqrt(centre / exposure)
        return np.sqrt(centre * (1 - centre) / exposure)


def expected_counts(strata: pd.DataFrame, months: pd.Series, baseline_months: pd.Series,
                    own_baseline_points: int = 0) -> np.ndarray:
    """Expected numerator per month from each stratum's rate over the baseline months.

    ``strata`` has columns ``month``, ``study_id``, ``phase``, ``numerator``, ``denominator``. A
    stratum's rate is its baseline numerator over its baseline denominator. A study with no exposure
    in the chart's baseline months (in a chart of several studies, one that started after them) has
    its own baseline instead: its first ``own_baseline_points`` months with exposure, as its own chart
    would, rather than being judged at the other studies' rates. A stratum still without baseline
    exposure takes its phase's rate over all studies, else the overall baseline rate. Phase ``site``
    (deviations that name no subject) has the study's visits of every phase as its exposure.
    """
    frame = strata.assign(month=pd.to_datetime(strata["month"]))
    visits = frame.groupby(["month", "study_id"], as_index=False)["denominator"].sum()
    site = frame[frame["phase"] == "site"].drop(columns="denominator").merge(visits, on=["month", "study_id"],
                                                                              how="left")
    frame = pd.concat([frame[frame["phase"] != "site"], site.fillna({"denominator": 0})], ignore_index=True)
    in_base = frame["month"].isin(pd.to_datetime(baseline_months))
    exposed = frame[frame["denominator"] > 0]
    late = set(exposed["study_id"]) - set(exposed.loc[in_base[exposed.index], "study_id"])
    if own_baseline_points and late:
        for study_id in sorted(late):
            own = np.sort(exposed.loc[exposed["study_id"] == study_id, "month"].unique())[:own_baseline_points]
            in_base |= (frame["study_id"] == study_id) & frame["month"].isin(own)
    base = frame[in_base]
    overall = base["numerator"].sum() / base["denominator"].sum() if base["denominator"].sum() > 0 else np.nan
    by_phase = base.groupby("phase")[["numerator", "denominator"]].sum()
    phase_rate = (by_phase["numerator"] / by_phase["denominator"]).where(by_phase["denominator"] > 0)
    by_stratum = base.groupby(["study_id", "phase"])[["numerator", "denominator"]].sum()
    stratum_rate = (by_stratum["numerator"] / by_stratum["denominator"]).where(by_stratum["denominator"] > 0)
    keys = pd.MultiIndex.from_frame(frame[["study_id", "phase"]])
    rate = pd.Series(stratum_rate.reindex(keys).to_numpy(), index=frame.index)
    rate = rate.fillna(frame["phase"].map(phase_rate)).fillna(overall)
    expected = (rate * frame["denominator"]).groupby(frame["month"]).sum()
    return expected.reindex(pd.to_datetime(months)).fillna(0.0).to_numpy(dtype="float64")


def control_chart(series: pd.DataFrame, spec: ChartSpec, strata: pd.DataFrame | None = None) -> ControlChart:
    """The control chart of ``series`` (columns ``month``, ``numerator``, ``denominator``; months in order).

    Adds per month: ``value`` (numerator / denominator * per), ``evaluable``, ``baseline``, ``expected``
    (numerator expected at the baseline rates), ``centre`` (the expected value: the baseline rate, or
    with ``strata`` and ``spec.risk_adjusted`` the month's risk-adjusted rate), ``sigma`` (Laney-
    adjusted), ``lcl``/``ucl`` (3 sigma), ``lwl``/``uwl`` (2 sigma), ``z`` (standardized, Laney-
    adjusted), the rule columns of :func:`~analytics.capa.rules.apply_rules` (every rule), ``concern_flag``
    (a signal rule of ``spec.rules`` broken in the direction of concern), ``favourable_flag`` (the other
    direction), ``pattern_flag`` (only another rule broken in the direction of concern) and
    ``signal_start`` (a concern flag whose previous evaluable month had none).
    """
    points = series[["month", "numerator", "denominator"]].reset_index(drop=True).copy()
    numerator = points["numerator"].to_numpy(dtype="float64")
    denominator = points["denominator"].to_numpy(dtype="float64")
    exposure = denominator / spec.per
    evaluable = denominator >= spec.min_denominator
    with np.errstate(divide="ignore", invalid="ignore"):
        value = np.where(denominator > 0, numerator / exposure, np.nan)
    baseline = np.zeros(len(points), dtype=bool)
    judged = np.flatnonzero(evaluable)
    if len(judged) < spec.baseline_skip + spec.baseline_points:  # a short series: the baseline is what there is
        baseline[judged[: spec.baseline_points]] = True
    else:
        baseline[judged[spec.baseline_skip: spec.baseline_skip + spec.baseline_points]] = True
    centre = float(numerator[baseline].sum() / exposure[baseline].sum()) if baseline.any() else float("nan")
    adjusted = spec.risk_adjusted and spec.family == "u" and strata is not None and len(strata) > 0 \
        and bool(baseline.any())
    if adjusted:
        expected = expected_counts(strata, points["month"], points.loc[baseline, "month"], spec.baseline_points)
        with np.errstate(divide="ignore", invalid="ignore"):
            centre_i = np.where(exposure > 0, expected / exposure, centre)
    else:
        centre_i = np.full(len(points), centre)
        expected = centre_i * exposure
    raw_sigma = _sigma(spec, centre_i, exposure)
    transform = RESIDUAL_TRANSFORMS.get(spec.residual) if spec.family == "u" else None
    # the predictive residual's negative-binomial shape: the baseline's count plus a half, after the baseline
    shape = np.where(baseline, np.inf, float(numerator[baseline].sum()) + 0.5)
    with np.errstate(divide="ignore", invalid="ignore"):
        raw_z = np.where(raw_sigma > 0, (value - centre_i) / raw_sigma, np.nan)
        if transform is not None:
            raw_z = np.where(np.isfinite(raw_z), transform[0](numerator, expected, shape), np.nan)
    sigma_z, laney, dispersion_p = 1.0, False, float("nan")
    base_z = raw_z[baseline]
    base_z = base_z[np.isfinite(base_z)]
    if len(base_z) >= 3:
        dispersion_p = float(stats.chi2.sf(float(np.sum(base_z ** 2)), len(base_z) - 1))
        ranges = np.abs(np.diff(base_z))
        moving = float(np.median(ranges)) / MEDIAN_MOVING_RANGE_D4 if LANEY_MOVING_RANGE == "median" \
            else float(np.mean(ranges)) / MOVING_RANGE_D2
        threshold = laney_chance_threshold(len(base_z), LANEY_CHANCE_LEVEL, LANEY_MOVING_RANGE) \
            if LANEY_THRESHOLD is None else LANEY_THRESHOLD
        if moving > threshold:
            sigma_z, laney = max(moving, 1.0), True
    sigma = raw_sigma * sigma_z
    upper_bound = np.inf if spec.family == "u" else 1.0
    points["value"] = value
    points["evaluable"] = evaluable
    points["baseline"] = baseline
    points["expected"] = expected
    points["centre"] = centre_i
    points["sigma"] = sigma
    points["z"] = raw_z / sigma_z
    for k, low, high in ((3, "lcl", "ucl"), (2, "lwl", "uwl")):
        if transform is not None:  # the counts whose deviate is -k / +k sigma_z, on the rate scale
            with np.errstate(divide="ignore", invalid="ignore"):
                points[low] = np.clip(transform[1](-k * sigma_z, expected, shape) / exposure, 0.0, upper_bound)
                points[high] = transform[1](k * sigma_z, expected, shape) / exposure
        else:
            points[low] = np.clip(centre_i - k * sigma, 0.0, upper_bound)
            points[high] = np.clip(centre_i + k * sigma, 0.0, upper_bound)
    # The trend rule reads the plotted values; on a risk-adjusted chart a run of rising rates may be the
    # mix changing, so it reads the standardized residuals instead.
    flags = apply_rules(points["z"], points["z"] if adjusted else value, evaluable, RULES)
    points = pd.concat([points, flags], axis=1)
    concern, other = spec.concern, "low" if spec.concern == "high" else "high"
    signal_rules = [r.id for r in RULES if r.id in spec.rules]
    pattern_rules = [r.id for r in RULES if r.id not in spec.rules]
    points["concern_flag"] = points[[f"{r}_{concern}" for r in signal_rules]].any(axis=1) if signal_rules else False
    points["favourable_flag"] = points[[f"{r}_{other}" for r in signal_rules]].any(axis=1) if signal_rules else False
    points["pattern_flag"] = ~points["concern_flag"] & (
        points[[f"{r}_{concern}" for r in pattern_rules]].any(axis=1) if pattern_rules else False)
    points["signal_start"] = signal_onsets(points["concern_flag"], evaluable)
    return ControlChart(spec, points, centre, sigma_z, laney, dispersion_p, int(baseline.sum()), adjusted)
