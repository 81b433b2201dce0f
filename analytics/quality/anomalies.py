"""Unusual data patterns per site, ranked and explained in words a data manager can act on.

Every site is compared with the other sites of its own study. Four families of evidence, each a
one-sided p-value per site, are combined (Fisher) into the site's ranking score:

* **atypical-data tests** of the RBM engine (:mod:`analytics.kri.atypical`: terminal-digit preference,
  low within-subject variance, too-typical subjects, identical vital-sign vectors, too-regular visit
  dates), read from their stored results and not computed twice;
* **robust z per test and site** (median/MAD over the study's sites, |z| > :data:`Z_FLAG`) of five
  statistics per lab or vital-sign test: the site's mean, its within-subject SD (log), the ratio of
  between-subject to within-subject SD (log: invented values rarely keep a subject's own level from
  visit to visit), the share of results outside the normal range, and the share of integer values
  ending in 0; the family's p is the smallest two-sided p, Bonferroni-adjusted over the statistics;
* **entry bursts**: the site's eCRF data were entered on far fewer days than its own entry delays,
  spread at random over its visits, would give (batches of visits entered at once);
* an **IsolationForest** over the sites' profiles (the robust z's and the burst score), per study;
  its p is the site's rank among the study's sites.

The combined score ranks sites; it is a pointer for a data manager's review, never a verdict.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
import pandas as pd
from scipy import stats
from sklearn.ensemble import IsolationForest

from analytics.core.scope import AccessScope, PortfolioFilter
from analytics.core.warehouse import Warehouse
from analytics.kri.atypical import TEST_LABELS
from analytics.kri.permutation import study_stream
from analytics.quality.specs import LIMITS_CTES, range_parameters

Z_FLAG = 3.5  # robust z beyond this is a signal (Iglewicz and Hoaglin's outlier rule)
Z_CLIP = 5.0  # one test's robust z counts at most this much in a site's combined shift
SIGNAL_P = 0.01  # a family p below this counts as a signal of the site
MIN_SUBJECTS = 4  # subjects with a test for the site's statistics of that test
MIN_SITES = 5  # sites with a statistic for its robust z within a study
MIN_SITES_FOREST = 8
BURST_SHUFFLES = 5
RANDOM_STATE = 20261101
FOREST_TREES = 32  # per study: each tree costs sklearn ~5-10 ms of overhead, and studies are many
STATISTICS = {
    "mean": "median of subjects' mean values",
    "within_sd": "visit-to-visit variation within a subject (log SD)",
    "between_within": "spread between subjects relative to the variation within them (log ratio)",
    "abnormal_share": "share of results outside the normal range",
    "digit0_share": "share of values ending in 0",
}

_SUBJECT_TEST_SQL = """
SELECT m.study_id, m.study_site_id, m.subject_id, m.test_code, any_value(m.domain) AS domain,
       any_value(coalesce(m.test_name, m.test_code)) AS test_name, any_value(m.unit) AS unit,
       -- Floating-point sums in measurement order: a study's digits however its rows are stored or split.
       count(*) AS n,
       list_aggregate(list(CASE WHEN m.domain = 'LB' THEN ln(m.value) ELSE m.value END ORDER BY m.measurement_id),
                      'avg') AS centre,
       list_aggregate(list(CASE WHEN m.domain = 'LB' THEN ln(m.value) ELSE m.value END ORDER BY m.measurement_id),
                      'var_samp') AS within_var,
       list_aggregate(list(m.value ORDER BY m.measurement_id), 'avg') AS mean_value,
       count(*) FILTER (WHERE m.value < m.ref_low OR m.value > m.ref_high) AS abnormal,
       count(*) FILTER (WHERE m.ref_low IS NOT NULL OR m.ref_high IS NOT NULL) AS with_range,
       count(*) FILTER (WHERE m.value = round(m.value)) AS integers,
       count(*) FILTER (WHERE m.value = round(m.value) AND CAST(abs(m.value) AS BIGINT) % 10 = 0) AS zeros
FROM measurements m JOIN scoped_sites USING (study_site_id)
LEFT JOIN pair_limits l ON l.test_code = m.test_code AND l.unit IS NOT DISTINCT FROM m.unit
-- Values the edit checks reject (implausible for their unit) would swamp a site's patterns: left out here.
WHERE m.value IS NOT NULL AND (m.domain <> 'LB' OR m.value > 0)
  AND (l.canonical_unit IS NULL OR m.value BETWEEN l.low AND l.high)
GROUP BY m.study_id, m.study_site_id, m.subject_id, m.test_code
ORDER BY m.study_id, m.study_site_id, m.subject_id, m.test_code
"""

_ENTRY_SQL = """
SELECT v.study_id, v.study_site_id, v.actual_date, date_diff('day', v.actual_date, v.entry_date) AS lag
FROM visits v JOIN scoped_sites USING (study_site_id)
WHERE v.actual_date IS NOT NULL AND v.entry_date IS NOT NULL
ORDER BY v.study_id, v.visit_id  -- the shuffles below draw per row: a study's rows in one order however read
"""


def site_statistics(per_subject: pd.DataFrame) -> pd.DataFrame:
    """Per study, site and test: the five statistics and the subjects they rest on."""
    s = per_subject.copy()
    s["ss"] = (s["n"] - 1).clip(lower=0) * s["within_var"].fillna(0.0)
    s["df"] = (s["n"] - 1).clip(lower=0)
    grouped = s.groupby(["study_id", "study_site_id", "test_code"])
    out = grouped.agg(subjects=("subject_id", "nunique"), values=("n", "sum"), ss=("ss", "sum"), df=("df", "sum"),
                      between_var=("centre", "var"), mean=("mean_value", "median"), abnormal=("abnormal", "sum"),
                      with_range=("with_range", "sum"), integers=("integers", "sum"), zeros=("zeros", "sum"),
                      domain=("domain", "first"), test_name=("test_name", "first"), unit=("unit", "first"))
    within_var = out["ss"] / out["df"].where(out["df"] > 0)
    out["within_sd"] = np.log(np.sqrt(within_var.where(within_var > 0)))
    out["between_within"] = np.log(np.sqrt(out["between_var"].where(out["between_var"] > 0)) /
                                   np.sqrt(within_var.where(within_var > 0)))
    out["abnormal_share"] = (out["abnormal"] / out["with_range"]).where(out["with_range"] >= 20)
    integer_test = out.groupby(["study_id", "test_code"])["integers"].transform("sum") >= 0.95 * \
        out.groupby(["study_id", "test_code"])["values"].transform("sum")
    out["digit0_share"] = (out["zeros"] / out["integers"]).where(integer_test & (out["integers"] >= 20))
    out = out[out["subjects"] >= MIN_SUBJECTS]
    return out.reset_index()


def robust_z(statistics: pd.DataFrame) -> pd.DataFrame:
    """Long table: per site, test and statistic, the value, the other sites' median and the robust z.

    The scale is the MAD of the study's sites, but never below the site's own sampling error (a share
    from 30 results, a log SD from 20 degrees of freedom): with few results per site, or a statistic
    nearly constant across sites (no abnormal bilirubin anywhere), the MAD alone would call sampling
    noise an outlier.
    """
    ids = ["study_id", "study_site_id", "test_code", "test_name", "unit", "domain"]
    counts = statistics[ids + ["subjects", "df", "with_range", "integers"]]
    long = statistics.melt(id_vars=ids, value_vars=list(STATISTICS), var_name="statistic",
                           value_name="site_value").dropna(subset=["site_value"]).merge(counts, on=ids, how="left")
    keys = [long["study_id"], long["test_code"], long["statistic"]]
    group = long.groupby(keys)["site_value"]
    long["peer_value"] = group.transform("median")
    mad = 1.4826 * (long["site_value"] - long["peer_value"]).abs().groupby(keys).transform("median")
    sites = group.transform("count")
    share = long["peer_value"].clip(0.02, 0.98)
    sampling = pd.Series(np.select(
        [long["statistic"] == "within_sd", long["statistic"] == "between_within",
         long["statistic"] == "abnormal_share", long["statistic"] == "digit0_share"],
        [1 / np.sqrt(2 * long["df"].clip(lower=1)),
         np.sqrt(1 / (2 * (long["subjects"] - 1).clip(lower=1)) + 1 / (2 * long["df"].clip(lower=1))),
         np.sqrt(share * (1 - share) / long["with_range"].clip(lower=1)),
         np.sqrt(share * (1 - share) / long["integers"].clip(lower=1))], default=0.0), index=long.index)
    scale = np.maximum(mad, sampling)
    long["z"] = ((long["site_value"] - long["peer_value"]) / scale.where(scale > 0)).where(sites >= MIN_SITES)
    return long.dropna(subset=["z"]).drop(columns=["subjects", "df", "with_range", "integers"]).reset_index(drop=True)


def entry_bursts(entries: pd.DataFrame, seed: int = RANDOM_STATE) -> pd.DataFrame:
    """Per site: distinct entry days against those its own delays, shuffled over its visits, would give."""
    if entries.empty:
        return pd.DataFrame(columns=["study_id", "study_site_id", "visits", "entry_days", "expected_days", "ratio"])
    e = entries.dropna().copy()
    e["visit_day"] = pd.to_datetime(e["actual_date"]).to_numpy().astype("datetime64[D]").astype("int64")
    e["entry_day"] = e["visit_day"] + e["lag"].astype("int64")
    observed = e.groupby(["study_id", "study_site_id"]).agg(visits=("entry_day", "size"),
                                                           entry_days=("entry_day", "nunique"))
    # One random stream per study: a study's bursts do not depend on the other studies scored with it.
    studies = e["study_id"].to_numpy()
    streams = {study: study_stream(seed, str(study)) for study in pd.unique(studies)}
    rows_of = {study: np.flatnonzero(studies == study) for study in streams}
    expected = []
    for _ in range(BURST_SHUFFLES):
        uniform = np.empty(len(e))
        for study, rng in streams.items():
            uniform[rows_of[study]] = rng.uniform(size=len(rows_of[study]))
        order = np.lexsort((uniform, e["study_site_id"].to_numpy()))
        shuffled = e.iloc[order]
        sorted_e = e.sort_values("study_site_id", kind="stable")
        day = sorted_e["visit_day"].to_numpy() + shuffled["lag"].to_numpy()
        frame = pd.DataFrame({"study_id": sorted_e["study_id"].to_numpy(),
                              "study_site_id": sorted_e["study_site_id"].to_numpy(), "day": day})
        expected.append(frame.groupby(["study_id", "study_site_id"])["day"].nunique())
    observed["expected_days"] = pd.concat(expected, axis=1).mean(axis=1)
    observed["ratio"] = observed["entry_days"] / observed["expected_days"]
    return observed[observed["visits"] >= 10].reset_index()


def consistent_shifts(z: pd.DataFrame) -> pd.DataFrame:
    """Per site and statistic: the robust z's of all tests combined (Stouffer, each clipped at +-Z_CLIP).

    One test far from its peers is often clinical (a few subjects with liver toxicity at one site); data
    invented by one hand shift the same statistic across most tests, which this rewards.
    """
    if z.empty:
        return pd.DataFrame(columns=["study_id", "study_site_id", "statistic", "tests", "same_direction", "z", "p"])
    clipped = z.assign(zc=z["z"].clip(-Z_CLIP, Z_CLIP), up=(z["z"] > 0).astype("int64"))
    grouped = clipped.groupby(["study_id", "study_site_id", "statistic"])
    # math.fsum: pandas' grouped float sum of a group can differ in the last digit with the other
    # groups in the frame, and a site's score must not depend on the studies scored with it.
    out = grouped.agg(tests=("zc", "size"), total=("zc", math.fsum), positive=("up", "sum"))
    out["z"] = out["total"] / np.sqrt(out["tests"])
    out["same_direction"] = np.where(out["z"] > 0, out["positive"], out["tests"] - out["positive"])
    out["p"] = _two_sided(out["z"])
    return out.reset_index()


def _two_sided(z: pd.Series) -> pd.Series:
    return pd.Series(2 * stats.norm.sf(np.abs(z.to_numpy(dtype="float64"))), index=z.index)


def _explain_z(row: Mapping[str, object]) -> str:
    test = row["test_name"] or row["test_code"]
    unit = f" {row['unit']}" if isinstance(row["unit"], str) and row["statistic"] == "mean" else ""
    values = {
        "mean": (f"{row['site_value']:,.1f}{unit}", f"{row['peer_value']:,.1f}{unit}", f"{test}: the median of the site's subjects is"),
        # Labs are compared on the log scale: their SD reads as a typical relative change.
        "within_sd": ((f"{np.expm1(min(np.exp(row['site_value']), 20.0)):.0%}",
                       f"{np.expm1(min(np.exp(row['peer_value']), 20.0)):.0%}",
                       f"{test}: a subject's values vary from visit to visit by about")
                      if row["domain"] == "LB" else
                      (f"{np.exp(row['site_value']):,.3g} {row['unit'] or ''}".rstrip(),
                       f"{np.exp(row['peer_value']):,.3g} {row['unit'] or ''}".rstrip(),
                       f"{test}: a subject's values vary from visit to visit by a SD of")),
        "between_within": (f"{np.exp(row['site_value']):.2f}", f"{np.exp(row['peer_value']):.2f}",
                           f"{test}: subjects differ from one another, relative to their own visit-to-visit "
                           "variation, by a ratio of"),
        "abnormal_share": (f"{row['site_value']:.0%}", f"{row['peer_value']:.0%}",
                           f"{test}: results outside the normal range are"),
        "digit0_share": (f"{row['site_value']:.0%}", f"{row['peer_value']:.0%}", f"{test}: values ending in 0 are"),
    }[row["statistic"]]
    return (f"{values[2]} {values[0]}, against {values[1]} at the study's other sites "
            f"(robust z {row['z']:+.1f}).")


def _atypical_signals(atypical: pd.DataFrame) -> pd.DataFrame:
    """The stored atypical-data tests as explained signals (each site's peers from the same table)."""
    if atypical.empty:
        return pd.DataFrame()
    a = atypical.copy()
    rows = []
    peer_copied = a.groupby("study_id")["copied_share"].transform("median")
    peer_ratio = 1.0
    for test, signal in (("copied_vectors", "identical_vectors"), ("digit_preference", "digit_preference"),
                         ("low_variance", "low_variance"), ("inliers", "inliers"),
                         ("regular_visits", "regular_visits")):
        p = a[test]
        keep = p.notna()
        if signal == "identical_vectors":
            site_value, peer, text = a["copied_share"], peer_copied, [
                f"{s:.0%} of the site's vital-sign records repeat another subject's values exactly, against "
                f"{q:.1%} at the study's other sites." for s, q in zip(a["copied_share"].fillna(0), peer_copied.fillna(0))]
        elif signal == "regular_visits":
            site_value, peer, text = a["on_day_share"], a["study_on_day_share"], [
                f"{s:.0%} of the site's visits fall exactly on their scheduled day, against {q:.0%} at the study's "
                "other sites." for s, q in zip(a["on_day_share"].fillna(0), a["study_on_day_share"].fillna(0))]
        elif signal == "low_variance":
            site_value, peer, text = a["variance_ratio"], pd.Series(peer_ratio, index=a.index), [
                f"Subjects' values vary from visit to visit {v:.0%} as much as at the study's other sites."
                for v in a["variance_ratio"].fillna(1)]
        else:
            site_value = peer = pd.Series(np.nan, index=a.index)
            text = [f"{TEST_LABELS[test]}: the site's data look unlike its peers' (p {q:.2g})." for q in p.fillna(1)]
        rows.append(pd.DataFrame({
            "study_id": a["study_id"], "study_site_id": a["study_site_id"], "signal": signal, "test_code": None,
            "statistic": TEST_LABELS[test], "site_value": site_value, "peer_value": peer,
            "z": stats.norm.isf(p.clip(1e-300, 1).to_numpy(dtype="float64")), "p": p, "explanation": text,
        })[keep])
    return pd.concat(rows, ignore_index=True)


def _forest(profile: pd.DataFrame) -> pd.Series:
    """IsolationForest anomaly score per site, fitted within each study (higher = more unusual)."""
    scores = pd.Series(np.nan, index=profile.index)
    for _, block in profile.groupby(level="study_id"):
        if len(block) < MIN_SITES_FOREST:
            continue
        forest = IsolationForest(n_estimators=FOREST_TREES, random_state=RANDOM_STATE)
        # Only the study's own columns: tests other studies measure would add constant zeros here.
        x = block.dropna(axis=1, how="all").fillna(0.0).clip(-20, 20).to_numpy()
        forest.fit(x)
        scores.loc[block.index] = -forest.score_samples(x)
    return scores


def score_sites(per_subject: pd.DataFrame, entries: pd.DataFrame, atypical: pd.DataFrame
                ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(signals, sites): every explained signal, and each site's combined score and rank explanation."""
    z = robust_z(site_statistics(per_subject)) if len(per_subject) else pd.DataFrame(
        columns=["study_id", "study_site_id", "test_code", "test_name", "unit", "domain", "statistic", "site_value",
                 "peer_value", "z"])
    z["p"] = _two_sided(z["z"]) if len(z) else pd.Series(dtype="float64")
    bursts = entry_bursts(entries)
    if len(bursts):
        log_ratio = np.log(bursts["ratio"].clip(lower=1e-3))
        centre = log_ratio.groupby(bursts["study_id"]).transform("median")
        mad = (1.4826 * (log_ratio - centre).abs().groupby(bursts["study_id"]).transform("median")).clip(lower=0.02)
        bursts["z"] = (log_ratio - centre) / mad
        bursts["p"] = stats.norm.cdf(bursts["z"])
    keys = ["study_id", "study_site_id"]
    sites = pd.concat([
        z[keys], bursts[keys] if len(bursts) else pd.DataFrame(columns=keys),
        atypical[keys] if len(atypical) else pd.DataFrame(columns=keys)]).drop_duplicates().reset_index(drop=True)
    if sites.empty:
        return pd.DataFrame(), pd.DataFrame()
    # Profile per site for the forest: robust z of every (test, statistic), and the burst z.
    profile = z.pivot_table(index=keys, columns=["test_code", "statistic"], values="z") if len(z) else \
        pd.DataFrame(index=pd.MultiIndex.from_frame(sites))
    profile.columns = [f"{t}:{s}" for t, s in profile.columns] if len(z) else []
    profile = profile.reindex(pd.MultiIndex.from_frame(sites))
    if len(bursts):
        profile["entry_burst"] = bursts.set_index(keys)["z"].reindex(profile.index)
    forest = _forest(profile) if profile.shape[1] else pd.Series(np.nan, index=profile.index)
    forest_rank = forest.groupby(level="study_id").rank(ascending=False)
    forest_n = forest.groupby(level="study_id").transform("count")
    forest_p = (forest_rank / forest_n).where(forest.notna())

    families = pd.DataFrame(index=profile.index)
    shifts = consistent_shifts(z)
    if len(shifts):
        per_site = shifts.groupby(keys)["p"].agg(["min", "size"])
        families["robust_z"] = (per_site["min"] * per_site["size"]).clip(upper=1.0)
    if len(bursts):
        families["entry_burst"] = bursts.set_index(keys)["p"]
    if len(atypical):
        families["atypical"] = atypical.set_index(keys)["atypical_p"]
    families["isolation_forest"] = forest_p
    families = families.reindex(profile.index)
    p = families.clip(lower=1e-300)
    available = p.notna().sum(axis=1)
    statistic = -2 * np.log(p).sum(axis=1, min_count=1)
    combined = pd.Series(stats.chi2.sf(statistic, 2 * available.clip(lower=1)), index=p.index).where(available > 0)

    signals = _signals(z, shifts, bursts, atypical, forest, forest_p, profile)
    # Equal p-values (two labs both at robust z 4.0) are told apart by their text, not by the rows' order.
    top = signals.sort_values(["p", "explanation"], kind="stable").drop_duplicates(keys).set_index(keys)["explanation"] \
        if len(signals) else \
        pd.Series(dtype="object")
    ranked = pd.DataFrame({
        "signals": (families < SIGNAL_P).sum(axis=1), "combined_p": combined,
        "score": -np.log10(combined.clip(lower=1e-300)), "isolation_score": forest,
    }, index=profile.index)
    ranked["top_explanation"] = top.reindex(ranked.index)
    return signals, ranked.reset_index()


def _signals(z: pd.DataFrame, shifts: pd.DataFrame, bursts: pd.DataFrame, atypical: pd.DataFrame,
             forest: pd.Series, forest_p: pd.Series, profile: pd.DataFrame) -> pd.DataFrame:
    parts = []
    strong_shift = shifts[shifts["p"] * len(STATISTICS) < SIGNAL_P] if len(shifts) else shifts
    if len(strong_shift):
        parts.append(pd.DataFrame({
            "study_id": strong_shift["study_id"], "study_site_id": strong_shift["study_site_id"],
            "signal": "robust_z", "test_code": "all tests:" + strong_shift["statistic"],
            "statistic": strong_shift["statistic"].map(STATISTICS), "site_value": strong_shift["same_direction"],
            "peer_value": strong_shift["tests"], "z": strong_shift["z"], "p": strong_shift["p"],
            "explanation": [
                f"Across {int(k)} tests, the site's {STATISTICS[st]} is {'higher' if zz > 0 else 'lower'} than at the "
                f"study's other sites for {int(d)} of them (combined robust z {zz:+.1f})."
                for st, k, d, zz in zip(strong_shift["statistic"], strong_shift["tests"],
                                        strong_shift["same_direction"], strong_shift["z"])]}))
    strong = z[z["z"].abs() > Z_FLAG]
    if len(strong):
        parts.append(pd.DataFrame({
            "study_id": strong["study_id"], "study_site_id": strong["study_site_id"], "signal": "robust_z",
            "test_code": strong["test_code"] + ":" + strong["statistic"],
            "statistic": strong["statistic"].map(STATISTICS), "site_value": strong["site_value"],
            "peer_value": strong["peer_value"], "z": strong["z"], "p": strong["p"],
            "explanation": [_explain_z(r) for r in strong.to_dict("records")]}))
    if len(bursts):
        b = bursts[bursts["p"] < SIGNAL_P]
        parts.append(pd.DataFrame({
            "study_id": b["study_id"], "study_site_id": b["study_site_id"], "signal": "entry_burst",
            "test_code": None, "statistic": "days with data entry relative to its own delays",
            "site_value": b["ratio"], "peer_value": np.exp(np.log(bursts["ratio"].clip(lower=1e-3)).groupby(
                bursts["study_id"]).transform("median")).loc[b.index], "z": b["z"], "p": b["p"],
            "explanation": [f"The site entered {v:,} visits' data on {d:,} days; entering each visit after its own "
                            f"usual delay would take about {e:,.0f} days (a {1 - r:.0%} shortfall: batches entered "
                            "at once)." for v, d, e, r in zip(b["visits"], b["entry_days"], b["expected_days"],
                                                              b["ratio"])]}))
    parts.append(_atypical_signals(atypical[atypical[["copied_vectors", "digit_preference", "low_variance",
                                                      "inliers", "regular_visits"]].min(axis=1) < SIGNAL_P]
                                   if len(atypical) else atypical))
    unusual = forest_p[(forest_p <= 0.05) & forest.notna()]
    if len(unusual):
        drivers = profile.loc[unusual.index].abs().idxmax(axis=1)
        parts.append(pd.DataFrame({
            "study_id": unusual.index.get_level_values("study_id"),
            "study_site_id": unusual.index.get_level_values("study_site_id"), "signal": "isolation_forest",
            "test_code": drivers.to_numpy(), "statistic": "data profile (IsolationForest)",
            "site_value": forest.loc[unusual.index].to_numpy(), "peer_value": np.nan, "z": np.nan,
            "p": unusual.to_numpy(),
            "explanation": [f"The site's data profile is the most unusual of its study's sites by an IsolationForest "
                            f"(driven most by {d.replace(':', ', ').replace('_', ' ')})." for d in drivers]}))
    parts = [p for p in parts if p is not None and len(p)]
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()


def signal_inputs(wh: Warehouse, scope: AccessScope, filters: PortfolioFilter) -> tuple[pd.DataFrame, pd.DataFrame,
                                                                                       pd.DataFrame]:
    """The per-subject test aggregates, visit entry lags and stored atypical tests (from DuckDB)."""
    per_subject = wh.query_with(scope, LIMITS_CTES, _SUBJECT_TEST_SQL, range_parameters(), filters)
    entries = wh.query(scope, _ENTRY_SQL, None, filters)
    # In key order: a site's place decides its row in the isolation forest's fit.
    atypical = wh.query(scope, "SELECT * FROM atypical_sites ORDER BY study_id, study_site_id", None, filters)
    return per_subject, entries, atypical
