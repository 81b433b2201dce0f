"""Atypical-data (fabrication) tests per site, combined into one atypical-data score.

Five tests, each a one-sided p-value per site against the site's own study (leave-one-site-out):

* ``digit_preference``: terminal digits of integer-recorded vital signs, chi-square against the
  digit distribution of the study's other sites.
* ``low_variance``: pooled within-subject variance of every test (labs on the log scale) against the
  study's other sites; chi-square lower tail.
* ``inliers``: Mahalanobis distances of subjects' mean vital-sign vectors from the study centre; a
  site whose subjects are all too close to the centre (chi-square lower tail).
* ``copied_vectors``: visits whose whole vital-sign vector equals another subject's vector at the
  same site; Poisson upper tail against the study's chance rate.
* ``regular_visits``: treatment visits on exactly their scheduled day; binomial upper tail.

Each test's normal score is re-centred and re-scaled robustly within the study (median, MAD; scale
never below 1) so a benign study-wide quirk does not flag every site, then the tests are combined by
Fisher's method into one p-value. All heavy lifting is SQL aggregation in DuckDB.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from analytics.core.scope import AccessScope, PortfolioFilter
from analytics.core.warehouse import Warehouse

TESTS: tuple[str, ...] = ("digit_preference", "low_variance", "inliers", "copied_vectors", "regular_visits")
TEST_LABELS = {
    "digit_preference": "Terminal-digit preference",
    "low_variance": "Low within-subject variance",
    "inliers": "Too-typical subjects",
    "copied_vectors": "Identical value vectors",
    "regular_visits": "Too-regular visit dates",
}
ATYPICAL_ALPHA = 0.01  # combined p below this flags a site as atypical
MIN_SUBJECTS = 2  # sites with fewer subjects with vital signs are "insufficient"
MIN_SITES_FOR_ROBUST_SCALE = 5
COPY_RATE_FLOOR = 1e-4  # chance share of copied vectors assumed at least this (per visit)

_INTEGER_VITALS_SQL = """
integer_tests AS (
    SELECT m.test_code
    FROM measurements m JOIN scoped_sites USING (study_site_id)
    WHERE m.domain = 'VS'
    GROUP BY m.test_code
    HAVING avg(CASE WHEN m.value = round(m.value) THEN 1.0 ELSE 0.0 END) > 0.95
)"""

_DIGITS_SQL = """
SELECT m.study_id, m.study_site_id, CAST(abs(m.value) AS BIGINT) % 10 AS digit, count(*) AS n
FROM measurements m JOIN scoped_sites USING (study_site_id) JOIN integer_tests USING (test_code)
WHERE m.domain = 'VS' AND m.value IS NOT NULL
GROUP BY ALL
"""

_WITHIN_SQL = """
SELECT m.study_id, m.study_site_id, m.subject_id, m.test_code, m.domain,
       count(*) AS n,
       var_samp(CASE WHEN m.domain = 'LB' AND m.value > 0 THEN ln(m.value) ELSE m.value END) AS variance,
       avg(m.value) AS mean_value
FROM measurements m JOIN scoped_sites USING (study_site_id)
WHERE m.value IS NOT NULL
GROUP BY ALL
"""

_COPIES_CTES = """
vectors AS (
    SELECT m.study_id, m.study_site_id, m.subject_id, m.visit_id,
           string_agg(m.test_code || '=' || CAST(m.value AS VARCHAR), ';' ORDER BY m.test_code) AS vector
    FROM measurements m JOIN scoped_sites USING (study_site_id)
    WHERE m.domain = 'VS' AND m.value IS NOT NULL
    GROUP BY ALL
    HAVING count(*) >= 3
), marked AS (
    SELECT study_id, study_site_id,
           min(subject_id) OVER w <> max(subject_id) OVER w AS copied
    FROM vectors
    WINDOW w AS (PARTITION BY study_site_id, vector)
)"""

_COPIES_SQL = """
SELECT study_id, study_site_id, count(*) AS vectors, count(*) FILTER (WHERE copied) AS copied
FROM marked GROUP BY ALL
"""

_VISITS_SQL = """
SELECT v.study_id, v.study_site_id, count(*) AS visits,
       count(*) FILTER (WHERE v.actual_date = v.scheduled_date) AS on_day
FROM visits v JOIN scoped_sites USING (study_site_id)
WHERE v.visit_number > 0 AND v.actual_date IS NOT NULL AND v.scheduled_date IS NOT NULL
GROUP BY ALL
"""


def _loso(frame: pd.DataFrame, columns: list[str], by: list[str]) -> pd.DataFrame:
    """Study totals minus the site's own (``by`` ends with study_site_id)."""
    totals = frame.groupby(by[:-1])[columns].transform("sum")
    return totals - frame[columns]


def digit_preference(digits: pd.DataFrame) -> pd.DataFrame:
    """Chi-square of each site's terminal-digit counts against its study's other sites."""
    table = digits.pivot_table(index=["study_id", "study_site_id"], columns="digit", values="n",
                               aggfunc="sum", fill_value=0)
    table = table.reindex(columns=range(10), fill_value=0).astype("float64")
    own = table.to_numpy()
    study_total = table.groupby(level="study_id").transform("sum").to_numpy()
    other = study_total - own
    with np.errstate(divide="ignore", invalid="ignore"):
        share = (other + 0.5) / (other + 0.5).sum(1, keepdims=True)
        expected = share * own.sum(1, keepdims=True)
        statistic = ((own - expected) ** 2 / expected).sum(1)
    p = stats.chi2.sf(statistic, 9)
    p[own.sum(1) < 20] = np.nan
    return pd.DataFrame({"digit_preference": p, "digit_values": own.sum(1)}, index=table.index)


def low_variance(within: pd.DataFrame) -> pd.DataFrame:
    """Each site's pooled within-subject variance relative to its study's other sites (lower tail)."""
    w = within[(within["n"] >= 2) & within["variance"].notna()].copy()
    w["ss"] = (w["n"] - 1) * w["variance"]
    w["df"] = w["n"] - 1
    per_site_test = w.groupby(["study_id", "test_code", "study_site_id"], as_index=False)[["ss", "df"]].sum()
    other = _loso(per_site_test, ["ss", "df"], ["study_id", "test_code", "study_site_id"])
    sigma2 = other["ss"] / other["df"]
    per_site_test["ratio"] = per_site_test["ss"] / sigma2
    ok = np.isfinite(per_site_test["ratio"]) & (sigma2 > 0)
    site = per_site_test[ok].groupby(["study_id", "study_site_id"])[["ratio", "df"]].sum()
    site["low_variance"] = stats.chi2.cdf(site["ratio"], site["df"])
    site["variance_ratio"] = site["ratio"] / site["df"]
    return site[["low_variance", "variance_ratio"]]


def inliers(within: pd.DataFrame) -> pd.DataFrame:
    """Sum of subjects' squared Mahalanobis distances (vital-sign means) against chi-square, lower tail."""
    vs = within[within["domain"] == "VS"]
    means = vs.pivot_table(index=["study_id", "study_site_id", "subject_id"], columns="test_code",
                           values="mean_value").dropna()
    rows = []
    for study_id, block in means.groupby(level="study_id"):
        x = block.to_numpy()
        if len(x) < x.shape[1] + 5:
            continue
        centred = x - x.mean(0)
        precision = np.linalg.pinv(np.cov(centred, rowvar=False))
        d2 = np.einsum("ij,jk,ik->i", centred, precision, centred)
        sites = block.index.get_level_values("study_site_id")
        frame = pd.DataFrame({"d2": d2, "site": sites}).groupby("site")["d2"].agg(["sum", "size"])
        p = stats.chi2.cdf(frame["sum"], x.shape[1] * frame["size"])
        rows.append(pd.DataFrame({"study_id": study_id, "study_site_id": frame.index, "inliers": p,
                                  "mean_distance": frame["sum"] / frame["size"] / x.shape[1]}))
    if not rows:
        return pd.DataFrame(columns=["inliers", "mean_distance"],
                            index=pd.MultiIndex.from_arrays([[], []], names=["study_id", "study_site_id"]))
    return pd.concat(rows).set_index(["study_id", "study_site_id"])


def copied_vectors(copies: pd.DataFrame) -> pd.DataFrame:
    """Poisson upper tail of visits whose vital-sign vector repeats another subject's at the site."""
    c = copies.copy()
    other = _loso(c, ["vectors", "copied"], ["study_id", "study_site_id"])
    rate = np.maximum(other["copied"] / other["vectors"].where(other["vectors"] > 0), COPY_RATE_FLOOR)
    mean = c["vectors"] * rate.fillna(COPY_RATE_FLOOR)
    k = c["copied"].to_numpy()
    p = stats.poisson.sf(k, mean) + 0.5 * stats.poisson.pmf(k, mean)
    c["copied_vectors"] = np.where(k > 0, p, 1.0)
    c["copied_share"] = c["copied"] / c["vectors"]
    return c.set_index(["study_id", "study_site_id"])[["copied_vectors", "copied_share"]]


def regular_visits(visits: pd.DataFrame) -> pd.DataFrame:
    """Binomial upper tail of treatment visits on exactly their scheduled day."""
    v = visits.copy()
    other = _loso(v, ["visits", "on_day"], ["study_id", "study_site_id"])
    share = ((other["on_day"] + 0.5) / (other["visits"] + 1.0)).clip(1e-6, 1 - 1e-6)
    k = v["on_day"].to_numpy()
    p = stats.binom.sf(k, v["visits"], share) + 0.5 * stats.binom.pmf(k, v["visits"], share)
    v["regular_visits"] = p
    v["on_day_share"] = v["on_day"] / v["visits"]
    v["study_on_day_share"] = share
    return v.set_index(["study_id", "study_site_id"])[["regular_visits", "on_day_share", "study_on_day_share"]]


def robust_rescale(p: pd.Series, study: pd.Series) -> pd.Series:
    """Re-centre and re-scale a test's normal scores within each study (median, MAD, scale >= 1)."""
    # Clipped so certainty in either direction stays finite (medians and MADs stay defined).
    z = pd.Series(stats.norm.isf(np.clip(p.to_numpy(dtype="float64"), 1e-15, 1 - 1e-15)), index=p.index)
    grouped = z.groupby(study.to_numpy())
    centre = grouped.transform("median")
    mad = grouped.transform(lambda s: 1.4826 * (s - s.median()).abs().median())
    size = grouped.transform("count")
    small = size < MIN_SITES_FOR_ROBUST_SCALE
    scale = np.maximum(mad.fillna(1.0), 1.0)
    adjusted = np.where(small, z, (z - np.where(small, 0.0, centre.clip(lower=0.0))) / scale)
    return pd.Series(stats.norm.sf(adjusted), index=p.index).where(p.notna())


def combine(tests: pd.DataFrame) -> pd.DataFrame:
    """Fisher-combined p-value and score over the available tests of each site."""
    p = tests[list(TESTS)].clip(lower=1e-300)
    available = p.notna().sum(1)
    statistic = -2 * np.log(p).sum(1, min_count=1)
    combined = pd.Series(stats.chi2.sf(statistic, 2 * available.clip(lower=1)), index=tests.index)
    out = tests.copy()
    out["tests_available"] = available
    out["atypical_p"] = combined.where(available > 0)
    out["atypical_score"] = -np.log10(out["atypical_p"].clip(lower=1e-300))
    out["atypical_flag"] = out["atypical_p"] < ATYPICAL_ALPHA
    return out


_EMPTY_RESULT = pd.DataFrame({
    "study_id": pd.Series(dtype="str"), "study_site_id": pd.Series(dtype="str"),
    **{name: pd.Series(dtype="float64") for name in (
        "digit_preference", "digit_values", "low_variance", "variance_ratio", "inliers", "mean_distance",
        "copied_vectors", "copied_share", "regular_visits", "on_day_share", "study_on_day_share")},
    "subjects_with_vitals": pd.Series(dtype="int64"), "tests_available": pd.Series(dtype="int64"),
    "atypical_p": pd.Series(dtype="float64"), "atypical_score": pd.Series(dtype="float64"),
    "atypical_flag": pd.Series(dtype="bool"),
})


def score_atypical(digits: pd.DataFrame, within: pd.DataFrame, copies: pd.DataFrame, visits: pd.DataFrame) -> pd.DataFrame:
    """All five tests, robustly re-scaled, and the combined score per site (one row per site)."""
    parts = [digit_preference(digits), low_variance(within), inliers(within), copied_vectors(copies),
             regular_visits(visits)]
    table = pd.concat(parts, axis=1)
    if table.empty:  # no vital signs or visits at all (e.g. operational tables without results)
        return _EMPTY_RESULT.copy()
    subjects = within[within["domain"] == "VS"].groupby(["study_id", "study_site_id"])["subject_id"].nunique()
    table["subjects_with_vitals"] = subjects.reindex(table.index).fillna(0).astype("int64")
    raw = table[list(TESTS)].copy()
    study = pd.Series(table.index.get_level_values("study_id"), index=table.index)
    for test in TESTS:
        table[test] = robust_rescale(raw[test], study)
    table.loc[table["subjects_with_vitals"] < MIN_SUBJECTS, list(TESTS)] = np.nan
    return combine(table).reset_index()


def atypical_inputs(wh: Warehouse, scope: AccessScope, filters: PortfolioFilter) -> tuple[pd.DataFrame, ...]:
    """The four aggregates the tests need, from DuckDB."""
    digits = wh.query_with(scope, _INTEGER_VITALS_SQL, _DIGITS_SQL, None, filters)
    within = wh.query(scope, _WITHIN_SQL, None, filters)
    copies = wh.query_with(scope, _COPIES_CTES, _COPIES_SQL, None, filters)
    visits = wh.query(scope, _VISITS_SQL, None, filters)
    return digits, within, copies, visits
