"""Site performance scorecards against study peers, and a shrunk ranking for site selection.

Scorecard metrics per study-site (units in the column names' docs below), each also as a percentile
among the sites of the same study (100 = best, whatever the metric's direction):

* ``enrollment_vs_plan``: randomized / planned-to-date (planned enrollment pro rata of the site's
  enrollment window elapsed), ratio;
* ``activation_to_fpi_days``: days from activation to the first randomization;
* ``screen_failure_rate``: screen failures / screened with an outcome;
* ``retention``: 1 - discontinued / randomized;
* ``entry_lag_days``: median days from visit to eCRF entry;
* ``query_turnaround_days``: median days from query opened to answered;
* ``deviations_per_100_months``: protocol deviations per 100 patient-months in study;
* ``monitoring_interval_days``: median days between performed monitoring visits.

Site selection: an institution's historical enrollment rate (randomized per site-month open) in the
chosen therapeutic area (optionally country), shrunk toward the area mean with a gamma-Poisson
(empirical Bayes) model so institutions with little history rank near the mean, with an 80%
credible interval.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st
from scipy import stats

from analytics.core.caching import cached
from analytics.core.scope import AccessScope, PortfolioFilter
from analytics.core.warehouse import Warehouse

DAYS_PER_MONTH = 30.4375
MIN_METRICS = 3  # metrics a site needs for an overall percentile
# metric -> (label, higher is better)
METRICS: dict[str, tuple[str, bool]] = {
    "enrollment_vs_plan": ("Enrollment vs plan", True),
    "activation_to_fpi_days": ("Activation to first patient (days)", False),
    "screen_failure_rate": ("Screen failure rate", False),
    "retention": ("Retention", True),
    "entry_lag_days": ("Data entry lag (median days)", False),
    "query_turnaround_days": ("Query turnaround (median days)", False),
    "deviations_per_100_months": ("Deviations per 100 patient-months", False),
    "monitoring_interval_days": ("Monitoring visit interval (median days)", False),
}

_SCORECARD_CTES = """
subj AS (
    SELECT su.study_site_id,
           count(*) FILTER (WHERE su.randomization_date IS NOT NULL) AS randomized,
           count(*) FILTER (WHERE su.status = 'Screen failure') AS screen_failed,
           count(*) FILTER (WHERE su.status = 'Screen failure' OR su.randomization_date IS NOT NULL) AS screened_decided,
           count(*) FILTER (WHERE su.discontinuation_date IS NOT NULL) AS discontinued,
           min(su.randomization_date) AS first_randomization,
           sum(date_diff('day', coalesce(su.consent_date, su.screening_date),
               least($as_of, coalesce(su.discontinuation_date, $as_of)))) / 30.4375 AS patient_months
    FROM subjects su JOIN scoped_sites USING (study_site_id)
    GROUP BY 1
), entry AS (
    SELECT v.study_site_id, median(date_diff('day', v.actual_date, v.entry_date)) AS entry_lag_days
    FROM visits v JOIN scoped_sites USING (study_site_id)
    WHERE v.entry_date IS NOT NULL AND v.actual_date IS NOT NULL GROUP BY 1
), q AS (
    SELECT q.study_site_id, median(date_diff('day', q.opened_date, q.answered_date)) AS query_turnaround_days
    FROM queries q JOIN scoped_sites USING (study_site_id)
    WHERE q.answered_date IS NOT NULL GROUP BY 1
), dev AS (
    SELECT pd.study_site_id, count(*) AS deviations
    FROM protocol_deviations pd JOIN scoped_sites USING (study_site_id) GROUP BY 1
), mon AS (
    SELECT study_site_id, median(gap) AS monitoring_interval_days FROM (
        SELECT mv.study_site_id,
               date_diff('day', lag(mv.actual_date) OVER (PARTITION BY mv.study_site_id ORDER BY mv.actual_date),
                         mv.actual_date) AS gap
        FROM monitoring_visits mv JOIN scoped_sites USING (study_site_id)
        WHERE mv.actual_date IS NOT NULL AND mv.visit_type IN ('IMV', 'Remote')
    ) WHERE gap IS NOT NULL GROUP BY 1
)"""

_SCORECARD_SQL = """
SELECT s.study_id, s.study_site_id, s.site_id, s.site_number, s.site_name, s.country_code, s.status,
       s.activation_date, s.planned_enrollment, st.planned_lpi, st.therapeutic_area,
       coalesce(subj.randomized, 0) AS randomized, coalesce(subj.screen_failed, 0) AS screen_failed,
       coalesce(subj.screened_decided, 0) AS screened_decided, coalesce(subj.discontinued, 0) AS discontinued,
       subj.first_randomization, coalesce(subj.patient_months, 0) AS patient_months,
       entry.entry_lag_days, q.query_turnaround_days, coalesce(dev.deviations, 0) AS deviations,
       mon.monitoring_interval_days
FROM scoped_sites s
JOIN scoped_studies st USING (study_id)
LEFT JOIN subj USING (study_site_id) LEFT JOIN entry USING (study_site_id) LEFT JOIN q USING (study_site_id)
LEFT JOIN dev USING (study_site_id) LEFT JOIN mon USING (study_site_id)
"""

_MONTHLY_SQL = """
SELECT su.study_site_id, date_trunc('month', su.randomization_date) AS month, count(*) AS randomized
FROM subjects su JOIN scoped_sites USING (study_site_id)
WHERE su.randomization_date IS NOT NULL AND su.randomization_date >= $since
GROUP BY ALL
"""


def scorecard_metrics(raw: pd.DataFrame, as_of) -> pd.DataFrame:
    """Derive the scorecard metrics and within-study percentiles from the aggregated site rows."""
    t = raw.copy()
    as_of_ts = pd.Timestamp(as_of)
    activation = pd.to_datetime(t["activation_date"])
    planned_lpi = pd.to_datetime(t["planned_lpi"])
    window = (planned_lpi - activation).dt.days.clip(lower=1)
    elapsed = ((as_of_ts - activation).dt.days / window).clip(0, 1)
    planned_to_date = t["planned_enrollment"] * elapsed
    t["enrollment_vs_plan"] = (t["randomized"] / planned_to_date.where(planned_to_date > 0)).astype("float64")
    t["activation_to_fpi_days"] = (pd.to_datetime(t["first_randomization"]) - activation).dt.days.astype("float64")
    t["screen_failure_rate"] = t["screen_failed"] / t["screened_decided"].where(t["screened_decided"] > 0)
    t["retention"] = 1 - t["discontinued"] / t["randomized"].where(t["randomized"] > 0)
    t["deviations_per_100_months"] = 100 * t["deviations"] / t["patient_months"].where(t["patient_months"] > 1)
    for metric, (_, higher_better) in METRICS.items():
        t[metric] = t[metric].astype("float64")
        # Mid-rank percentiles: twenty sites tied at no enrollment share the middle of their ranks
        # instead of the top (ranking ties at their maximum once put such a site at the 69th percentile).
        ranks = t.groupby("study_id")[metric].rank(pct=True, ascending=higher_better, method="average")
        t[f"{metric}_pct"] = (100 * ranks).round(0)
    pct_cols = [f"{m}_pct" for m in METRICS]
    available = t[pct_cols].notna().sum(axis=1)
    assessed = (t["randomized"] > 0) & (available >= MIN_METRICS)
    # A missing metric never counts as good: sites without enrollment or with too few metrics get no
    # overall percentile and rank below every assessed site of their study.
    t["overall_pct"] = t[pct_cols].mean(axis=1, skipna=True).round(0).where(assessed)
    t["assessment"] = np.select(
        [t["randomized"] == 0, ~assessed], ["No enrollment yet", f"Fewer than {MIN_METRICS} metrics"], "Assessed")
    return t


@cached
def site_scorecards(wh: Warehouse, scope: AccessScope, filters: PortfolioFilter) -> pd.DataFrame:
    """One scorecard row per study-site in scope, with within-study percentiles (100 = best).

    Percentiles compare a site with every site of its study, whatever the country or site filter.
    """
    as_of = wh.as_of()
    reference = filters.study_level()
    raw = wh.query_with(scope, _SCORECARD_CTES, _SCORECARD_SQL, {"as_of": as_of}, reference)
    table = scorecard_metrics(raw, as_of)
    if filters.country_codes or filters.study_site_ids:
        visible = set(wh.query(scope, "SELECT study_site_id FROM scoped_sites", None, filters)["study_site_id"])
        table = table[table["study_site_id"].isin(visible)]
    ordered = table.assign(_assessed=table["overall_pct"].notna()).sort_values(
        ["study_id", "_assessed", "overall_pct", "randomized"], ascending=[True, False, False, False], ignore_index=True)
    return ordered.drop(columns="_assessed")


@cached
def enrollment_sparklines(wh: Warehouse, scope: AccessScope, filters: PortfolioFilter, months: int = 12) -> pd.DataFrame:
    """Randomized subjects per month over the last ``months`` months, one list per study-site."""
    as_of = pd.Timestamp(wh.as_of())
    start = (as_of - pd.DateOffset(months=months - 1)).to_period("M").to_timestamp()
    monthly = wh.query(scope, _MONTHLY_SQL, {"since": start.date()}, filters)
    grid = pd.date_range(start, as_of, freq="MS")
    if monthly.empty:
        return pd.DataFrame(columns=["study_site_id", "randomized_by_month"])
    monthly["month"] = pd.to_datetime(monthly["month"])
    pivot = monthly.pivot_table(index="study_site_id", columns="month", values="randomized", aggfunc="sum",
                                fill_value=0).reindex(columns=grid, fill_value=0)
    return pd.DataFrame({"study_site_id": pivot.index,
                         "randomized_by_month": [list(map(int, row)) for row in pivot.to_numpy()]})


def with_sparklines(cards: pd.DataFrame, sparklines: pd.DataFrame, months: int = 12) -> pd.DataFrame:
    """Scorecards with their monthly randomization lists; sites with none in the window get zeros."""
    merged = cards.merge(sparklines, on="study_site_id", how="left")
    merged["randomized_by_month"] = [v if isinstance(v, list) else [0] * months for v in merged["randomized_by_month"]]
    return merged


def shrunk_enrollment_rates(history: pd.DataFrame, credible: float = 0.8) -> pd.DataFrame:
    """Empirical-Bayes (gamma-Poisson) enrollment rate per institution.

    Args:
        history: one row per institution with ``randomized`` (count) and ``site_months`` (months open).
        credible: width of the credible interval.

    The prior gamma(a, b) on the rate (per site-month) is fitted by the method of moments to the
    institutions' raw rates (between-institution variance net of Poisson noise); the posterior is
    gamma(a + randomized, b + site_months).
    """
    h = history[history["site_months"] > 0].copy()
    if h.empty:
        return h.assign(rate=[], posterior_mean=[], lower=[], upper=[])
    raw = h["randomized"] / h["site_months"]
    mean = h["randomized"].sum() / h["site_months"].sum()
    weights = h["site_months"] / h["site_months"].sum()
    variance = float((weights * (raw - mean) ** 2).sum() - mean / h["site_months"].mean())
    variance = max(variance, (0.1 * mean) ** 2, 1e-9)
    a, b = mean**2 / variance, mean / variance
    h["rate"] = raw
    h["posterior_mean"] = (a + h["randomized"]) / (b + h["site_months"])
    tail = (1 - credible) / 2
    h["lower"] = stats.gamma.ppf(tail, a + h["randomized"], scale=1 / (b + h["site_months"]))
    h["upper"] = stats.gamma.ppf(1 - tail, a + h["randomized"], scale=1 / (b + h["site_months"]))
    h["prior_mean"] = mean
    return h.sort_values("posterior_mean", ascending=False, ignore_index=True)


_HISTORY_SQL = """
SELECT s.site_id, any_value(s.site_name) AS site_name, any_value(s.country_code) AS country_code,
       count(DISTINCT s.study_id) AS studies,
       sum(coalesce(r.randomized, 0)) AS randomized,
       sum(greatest(date_diff('day', s.activation_date, least($as_of, coalesce(st.planned_lpi, $as_of))), 0))
           / 30.4375 AS site_months
FROM scoped_sites s JOIN scoped_studies st USING (study_id)
LEFT JOIN (
    SELECT su.study_site_id, count(*) FILTER (WHERE su.randomization_date IS NOT NULL) AS randomized
    FROM subjects su JOIN scoped_sites USING (study_site_id) GROUP BY 1
) r USING (study_site_id)
WHERE s.activation_date IS NOT NULL AND st.therapeutic_area = $area
  AND (len($countries) = 0 OR list_contains($countries, s.country_code))
GROUP BY s.site_id
"""


@cached
def site_selection_ranking(
    wh: Warehouse, scope: AccessScope, therapeutic_area: str, countries: tuple[str, ...] = ()
) -> pd.DataFrame:
    """Institutions ranked for a new study in ``therapeutic_area`` (and ``countries``) by shrunk enrollment rate.

    Columns: site_id, site_name, country_code, studies, randomized, site_months, rate (raw,
    randomized per site-month), posterior_mean, lower, upper (80% credible interval).
    """
    history = wh.query(scope, _HISTORY_SQL, {"as_of": wh.as_of(), "area": therapeutic_area,
                                             "countries": list(countries)})
    return shrunk_enrollment_rates(history)


@cached
def therapeutic_areas(wh: Warehouse, scope: AccessScope) -> list[str]:
    """Therapeutic areas of the studies in scope."""
    df = wh.query(scope, "SELECT DISTINCT therapeutic_area FROM scoped_studies WHERE therapeutic_area IS NOT NULL "
                         "ORDER BY 1")
    return df["therapeutic_area"].tolist()


# --- display tables -------------------------------------------------------------------------------

SCORECARD_CONFIG = {
    "Overall percentile": st.column_config.ProgressColumn("Overall percentile", min_value=0, max_value=100,
                                                          format="%d", help="Mean of the metric percentiles; "
                                                          "100 = best in the study"),
    "Randomized per month (12 m)": st.column_config.LineChartColumn("Randomized per month (12 m)"),
}
_METRIC_FORMATS = {
    "enrollment_vs_plan": lambda v: f"{v:.2f}× plan",
    "activation_to_fpi_days": lambda v: f"{v:,.0f} d",
    "screen_failure_rate": lambda v: f"{v:.0%}",
    "retention": lambda v: f"{v:.0%}",
    "entry_lag_days": lambda v: f"{v:,.0f} d",
    "query_turnaround_days": lambda v: f"{v:,.0f} d",
    "deviations_per_100_months": lambda v: f"{v:,.1f}",
    "monitoring_interval_days": lambda v: f"{v:,.0f} d",
}
_METRIC_LABELS = {
    "enrollment_vs_plan": "Enrollment vs plan",
    "activation_to_fpi_days": "Activation to first patient",
    "screen_failure_rate": "Screen failure",
    "retention": "Retention",
    "entry_lag_days": "Data entry lag (median)",
    "query_turnaround_days": "Query turnaround (median)",
    "deviations_per_100_months": "Deviations per 100 patient-months",
    "monitoring_interval_days": "Monitoring interval (median)",
}


def scorecard_table(cards: pd.DataFrame) -> pd.DataFrame:
    """The scorecards as a monitor reads them: names, formatted metrics, "—" where a metric has no data."""
    table = pd.DataFrame({
        "Study": cards["study_id"],
        "Site": cards["site_number"],
        "Institution": cards["site_name"],
        "Country": cards["country_code"],
        "Status": cards["status"],
        "Overall percentile": cards["overall_pct"],
        "Assessment": cards["assessment"],
        "Randomized": cards["randomized"].astype("int64"),
        "Randomized per month (12 m)": cards["randomized_by_month"],
    })
    for metric, label in _METRIC_LABELS.items():
        table[label] = [("—" if pd.isna(v) else _METRIC_FORMATS[metric](v)) for v in cards[metric]]
    return table


def ranking_table(ranking: pd.DataFrame) -> pd.DataFrame:
    """The site-selection ranking with readable columns (rates per site-month)."""
    return pd.DataFrame({
        "Institution": ranking["site_name"],
        "Country": ranking["country_code"],
        "Studies": ranking["studies"].astype("int64"),
        "Randomized": ranking["randomized"].astype("int64"),
        "Site-months open": ranking["site_months"].map(lambda v: f"{v:,.0f}"),
        "Raw rate (per site-month)": ranking["rate"].map(lambda v: f"{v:.2f}"),
        "Shrunk rate (per site-month)": ranking["posterior_mean"].map(lambda v: f"{v:.2f}"),
        "80% interval": [f"{lo:.2f} – {hi:.2f}" for lo, hi in zip(ranking["lower"], ranking["upper"])],
    })
