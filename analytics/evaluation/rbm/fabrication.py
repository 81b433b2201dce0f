"""Atypical data injected by the evaluation, not the generator: fabrication styles and benign variation.

Into a generated warehouse (its own temporary copy) this module writes

* **benign site-level variation** at every site, as real sites differ: a device/practice factor on
  the visit-to-visit noise of vital signs (log-normal, SD 0.15), a population shift of each vital
  sign's site mean; at 15% of sites legitimate rounding (half round blood pressure to even
  numbers, half prefer 0 and 5 for 10-30% of values); at 15% of sites scheduled clinics (20-60% of
  visits moved to the scheduled day);
* **fabricated subjects** at 10% of the clean sites, a share of each site's subjects, in one of four
  styles:

  - ``standard``: each of five signatures present independently (probability 0.6, at least one) at
    a random strength s ~ U(0.3, 0.9): rounding of blood pressure and pulse (share s), shrunk
    visit-to-visit noise (x (1 - 0.85 s)), shrunk subject effects (x (1 - 0.75 s)), vital-sign
    vectors copied from a template subject (share s of visits), visits on the scheduled day
    (share s); 30-70% of the site's subjects fabricated;
  - ``subtle`` (the review's variant): 30% of subjects, noise and subject effects x U(0.75, 0.8),
    rounding and punctual visits at 20-25%, each present with probability 0.75, no copying;
  - held out from the tests' design: ``carry_forward`` (each visit's vital signs are the previous
    visit's plus a small step) and ``cross_site_copy`` (a real subject of another site copied, with a
    constant offset per test).

Returns the labels: site -> style, and which benign features each clean site carries.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

FABRICATED_SITE_SHARE = 0.10
STYLE_WEIGHTS = {"standard": 0.4, "subtle": 0.4, "carry_forward": 0.1, "cross_site_copy": 0.1}
HELD_OUT_STYLES = ("carry_forward", "cross_site_copy")
ROUNDED_VITALS = ("SYSBP", "DIABP", "PULSE")
BLOOD_PRESSURE = ("SYSBP", "DIABP")
BENIGN_NOISE_SD = 0.15
BENIGN_SHIFT_SD = 0.25  # site mean shift, in between-subject SDs
BENIGN_ROUNDING_SHARE = 0.15
BENIGN_CLINIC_SHARE = 0.15
MIN_SUBJECTS_WITH_VITALS = 3

_MEASUREMENTS_SQL = """
SELECT m.measurement_id, m.study_id, m.study_site_id, m.subject_id, m.visit_id, m.domain, m.test_code, m.value,
       CAST(v.visit_number AS INTEGER) AS visit_number
FROM main.measurements m JOIN main.visits v USING (visit_id)
WHERE m.value IS NOT NULL AND m.domain IN ('VS', 'LB')
"""
_VISITS_SQL = """
SELECT visit_id, study_id, study_site_id, subject_id, scheduled_date, actual_date
FROM main.visits WHERE visit_number > 0 AND actual_date IS NOT NULL AND scheduled_date IS NOT NULL
"""


def _decimals(values: pd.Series) -> int:
    for k in (0, 1):
        scaled = values * 10**k
        if (np.abs(scaled - np.round(scaled)) < 1e-6).mean() > 0.95:
            return k
    return 2


def _round_to(values: np.ndarray, step: float) -> np.ndarray:
    return np.round(values / step) * step


def _choose_sites(m: pd.DataFrame, labelled: set[str], rng: np.random.Generator) -> pd.Series:
    """Fabricated sites (site -> style): a share of each study's unlabelled sites with enough vital signs."""
    vs_subjects = m[m["domain"] == "VS"].groupby("study_site_id", observed=True)["subject_id"].nunique()
    sites = m.groupby("study_site_id", observed=True)["study_id"].first().astype(str)
    eligible = sites[sites.index.map(vs_subjects).fillna(0) >= MIN_SUBJECTS_WITH_VITALS]
    eligible = eligible[~eligible.index.isin(labelled)]
    chosen = {}
    styles = list(STYLE_WEIGHTS)
    weights = np.array(list(STYLE_WEIGHTS.values()))
    for _, block in eligible.groupby(eligible):
        ids = rng.permutation(block.index.to_numpy())
        count = int(np.floor(FABRICATED_SITE_SHARE * len(ids) + rng.uniform()))
        for site in ids[:count]:
            chosen[site] = styles[rng.choice(len(styles), p=weights / weights.sum())]
    return pd.Series(chosen, dtype="object")


def _benign(m: pd.DataFrame, visits: pd.DataFrame, clean_sites: pd.Index, rng: np.random.Generator,
            decimals: dict[str, int]) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Benign site differences on every site's vital signs and visits; the features of each site."""
    site_codes = m["study_site_id"].cat.categories.to_numpy()
    site_of = m["study_site_id"].cat.codes.to_numpy()
    vs = (m["domain"] == "VS").to_numpy()
    values = m["value"].to_numpy().copy()
    subject_mean = m.groupby(["subject_id", "test_code"], observed=True)["value"].transform("mean").to_numpy()
    between = (m[vs].groupby(["study_id", "test_code"], observed=True)["value"].transform("std")
               .reindex(m.index).fillna(0).to_numpy())
    noise = np.exp(BENIGN_NOISE_SD * rng.standard_normal(len(site_codes)))
    test_of = m["test_code"].cat.codes.to_numpy()
    shift = rng.standard_normal((len(site_codes), len(m["test_code"].cat.categories)))[site_of, test_of]
    values = np.where(vs, subject_mean + noise[site_of] * (values - subject_mean) + BENIGN_SHIFT_SD * between * shift,
                      values)
    features = pd.DataFrame({"noise_factor": noise, "benign_rounding": "", "scheduled_clinic": False},
                            index=pd.Index(site_codes, name="study_site_id"))
    rows_of = pd.Series(np.arange(len(m))).groupby(site_of).indices
    is_bp = m["test_code"].isin(BLOOD_PRESSURE).to_numpy()
    is_rounded = m["test_code"].isin(ROUNDED_VITALS).to_numpy()
    clean = np.isin(site_codes, clean_sites)
    for code in np.flatnonzero(clean & (rng.uniform(size=len(site_codes)) < BENIGN_ROUNDING_SHARE)):
        kind = "even" if rng.uniform() < 0.5 else "zero_five"
        share = rng.uniform(0.5, 1.0) if kind == "even" else rng.uniform(0.1, 0.3)
        rows = rows_of.get(code, np.array([], dtype=int))
        rows = rows[(is_bp if kind == "even" else is_rounded)[rows] & (rng.uniform(size=len(rows)) < share)]
        values[rows] = _round_to(values[rows], 2.0 if kind == "even" else 5.0)
        features.iloc[code, features.columns.get_loc("benign_rounding")] = kind
    m = m.assign(value=values)
    v = visits.copy()
    visit_rows = pd.Series(np.arange(len(v))).groupby(v["site_code"].to_numpy()).indices
    actual = v["actual_date"].to_numpy().copy()
    scheduled = v["scheduled_date"].to_numpy()
    for code in np.flatnonzero(clean & (rng.uniform(size=len(site_codes)) < BENIGN_CLINIC_SHARE)):
        rows = visit_rows.get(code, np.array([], dtype=int))
        rows = rows[rng.uniform(size=len(rows)) < rng.uniform(0.2, 0.6)]
        actual[rows] = scheduled[rows]
        features.iloc[code, features.columns.get_loc("scheduled_clinic")] = True
    v["actual_date"] = actual
    return _round_recorded(m, decimals), v, features


def _round_recorded(m: pd.DataFrame, decimals: dict[str, int]) -> pd.DataFrame:
    """Vital signs back to each test's recorded precision (labs keep theirs)."""
    vs = (m["domain"] == "VS").to_numpy()
    steps = np.array([10.0 ** -decimals.get(t, 2) for t in m["test_code"].cat.categories])
    step = steps[m["test_code"].cat.codes.to_numpy()]
    values = m["value"].to_numpy().copy()
    values[vs] = np.round(values[vs] / step[vs]) * step[vs]
    return m.assign(value=values)


def _fabricate(m: pd.DataFrame, visits: pd.DataFrame, sites: pd.Series, rng: np.random.Generator,
               decimals: dict[str, int]) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Apply each fabricated site's style to a share of its subjects; returns data and per-site details."""
    values = m["value"].to_numpy().copy()
    is_lab = (m["domain"] == "LB").to_numpy() & (values > 0)
    work = np.where(is_lab, np.log(np.where(is_lab, values, 1.0)), values)
    m = m.assign(work=work)
    study_mean = m.groupby(["study_id", "test_code"], observed=True)["work"].transform("mean").to_numpy()
    subject_mean = m.groupby(["subject_id", "test_code"], observed=True)["work"].transform("mean").to_numpy()
    within_sd = ((m["work"] - subject_mean).groupby([m["study_id"], m["test_code"]], observed=True)
                 .transform("std").fillna(0).to_numpy())
    is_vs = (m["domain"] == "VS").to_numpy()
    is_rounded = m["test_code"].isin(ROUNDED_VITALS).to_numpy()
    subject = m["subject_id"].cat.codes.to_numpy()
    visit_number = m["visit_number"].to_numpy()
    test = m["test_code"].cat.codes.to_numpy()
    site_of = m["study_site_id"].cat.codes.to_numpy()
    site_categories = m["study_site_id"].cat.categories
    rows_of_site = pd.Series(np.arange(len(m))).groupby(site_of).indices
    rows_of_study = pd.Series(np.arange(len(m))).groupby(m["study_id"].cat.codes.to_numpy()).indices
    study_of_site = pd.Series(m["study_id"].cat.codes.to_numpy()).groupby(site_of).first()
    v = visits.copy()
    visit_rows_of_subject = pd.Series(np.arange(len(v))).groupby(v["subject_code"].to_numpy()).indices
    actual, scheduled = v["actual_date"].to_numpy().copy(), v["scheduled_date"].to_numpy()
    details = []
    for site, style in sites.items():
        code = site_categories.get_loc(site)
        site_rows = rows_of_site[code]
        subjects = rng.permutation(np.unique(subject[site_rows[is_vs[site_rows]]]))
        share = 0.3 if style == "subtle" else rng.uniform(0.3, 0.7)
        fake = subjects[:max(1, int(round(share * len(subjects))))]
        rows = site_rows[np.isin(subject[site_rows], fake)]
        info = {"study_site_id": site, "style": style, "fabricated_subjects": len(fake), "subjects": len(subjects)}
        fake_visits = np.concatenate([visit_rows_of_subject.get(f, np.array([], dtype=int)) for f in fake])
        if style in ("standard", "subtle"):
            present = rng.uniform(size=5) < (0.6 if style == "standard" else 0.75)
            if style == "subtle":
                present[3] = False  # no copying in the subtle variant
            if not present.any():
                present[rng.choice([0, 1, 2, 4] if style == "subtle" else np.arange(5))] = True
            if style == "standard":
                s = rng.uniform(0.3, 0.9, 5)
                rounding, noise, effect, copy, punctual = s[0], 1 - 0.85 * s[1], 1 - 0.75 * s[2], s[3], s[4]
            else:
                rounding, noise, effect, copy, punctual = (rng.uniform(0.2, 0.25), rng.uniform(0.75, 0.8),
                                                           rng.uniform(0.75, 0.8), 0.0, rng.uniform(0.2, 0.25))
            info.update({f"sig_{n}": bool(p) for n, p in
                         zip(("rounding", "low_noise", "inlier", "copying", "punctual"), present)})
            e = effect if present[2] else 1.0
            k = noise if present[1] else 1.0
            work[rows] = (study_mean[rows] + e * (subject_mean[rows] - study_mean[rows])
                          + k * (work[rows] - subject_mean[rows]))
            if present[3]:
                vs_rows = rows[is_vs[rows]]
                template = vs_rows[subject[vs_rows] == fake[0]]
                lookup = dict(zip(zip(visit_number[template], test[template]), work[template]))
                picked = {vn for vn in np.unique(visit_number[vs_rows]) if rng.uniform() < copy}
                for r in vs_rows[np.isin(visit_number[vs_rows], list(picked)) & (subject[vs_rows] != fake[0])]:
                    value = lookup.get((visit_number[r], test[r]))
                    if value is not None:
                        work[r] = value
            if present[0]:
                vital = rows[is_rounded[rows] & (rng.uniform(size=len(rows)) < rounding)]
                work[vital] = _round_to(work[vital], 10.0 if rng.uniform() < 0.3 else 5.0)
            if present[4] and len(fake_visits):
                moved = fake_visits[rng.uniform(size=len(fake_visits)) < punctual]
                actual[moved] = scheduled[moved]
        elif style == "carry_forward":
            vs_rows = rows[is_vs[rows]]
            order = vs_rows[np.lexsort((visit_number[vs_rows], test[vs_rows], subject[vs_rows]))]
            key = subject[order].astype("int64") * 1000 + test[order]
            first = pd.Series(order).groupby(key).transform("first").to_numpy()
            steps = 0.3 * within_sd[order] * rng.standard_normal(len(order))
            walk = pd.Series(steps).groupby(key).cumsum().to_numpy()
            work[order] = work[first] + walk
        elif style == "cross_site_copy":
            study_rows = rows_of_study[study_of_site[code]]
            donors = np.unique(subject[study_rows[site_of[study_rows] != code]])
            for f in fake if len(donors) else []:
                donor = donors[rng.integers(len(donors))]
                mine = rows[subject[rows] == f]
                theirs = study_rows[subject[study_rows] == donor]
                lookup = dict(zip(zip(visit_number[theirs], test[theirs]), work[theirs]))
                offsets = {t: 0.5 * rng.standard_normal() for t in np.unique(test[mine])}
                for r in mine:
                    value = lookup.get((visit_number[r], test[r]))
                    if value is not None:
                        work[r] = value + offsets[test[r]] * within_sd[r]
        details.append(info)
    v["actual_date"] = actual
    out = m.drop(columns="work").assign(value=np.where(is_lab, np.exp(work), work))
    return _round_recorded(out, decimals), v, pd.DataFrame(details)


def inject_atypical(path: Path, truth: pd.DataFrame, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Write benign variation and fabricated subjects into the warehouse at ``path`` (modified in place).

    Returns (fabricated sites with their style and signatures, benign features of every site).
    """
    rng = np.random.default_rng([seed, 4242])
    with duckdb.connect(str(path)) as con:
        m = con.execute(_MEASUREMENTS_SQL).df()
        for column in ("study_id", "study_site_id", "subject_id", "domain", "test_code"):
            m[column] = m[column].astype("category")  # integer codes: string sorts of 2M rows are slow
        visits = con.execute(_VISITS_SQL).df()
        visits["subject_code"] = pd.Categorical(visits["subject_id"], categories=m["subject_id"].cat.categories).codes
        visits["site_code"] = pd.Categorical(visits["study_site_id"], categories=m["study_site_id"].cat.categories).codes
        decimals = {t: _decimals(block["value"]) for t, block in m[m["domain"] == "VS"].groupby("test_code", observed=True)}
        labelled = set(truth["study_site_id"])
        fabricated = _choose_sites(m, labelled, rng)
        clean_sites = pd.Index(sorted(set(m["study_site_id"]) - labelled - set(fabricated.index)))
        m, visits, features = _benign(m, visits, clean_sites, rng, decimals)
        m, visits, details = _fabricate(m, visits, fabricated, rng, decimals)
        con.register("new_values", m[["measurement_id", "value"]])
        con.execute("UPDATE main.measurements SET value = n.value FROM new_values n "
                    "WHERE main.measurements.measurement_id = n.measurement_id")
        con.register("new_visits", visits[["visit_id", "actual_date"]])
        con.execute("UPDATE main.visits SET actual_date = n.actual_date FROM new_visits n "
                    "WHERE main.visits.visit_id = n.visit_id")
        con.execute("CHECKPOINT")
    return details, features.reset_index()
