"""Display tables of the RBM heatmap page: readable column names and one format per kind of value.

Pure functions from the stored KRI tables to what a monitor reads: names instead of codes, rates
with their units, p-values as "< 0.001", no raw column names and no "None".
"""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd

from analytics.display.formats import count, p_value, ratio, share
from analytics.kri.atypical import TEST_LABELS, TESTS
from analytics.kri.specs import CATALOGUE, KRISpec

BREAKDOWN_LABELS = {"ae_body_system": "body system", "pd_category": "deviation category", "lab_test": "lab test"}
TEST_EXPLANATIONS = {
    "digit_preference": "Last digits of vital signs recorded unlike the study's other sites (more rounding).",
    "low_variance": "A subject's values vary less from visit to visit than at the study's other sites.",
    "inliers": "Subjects sit implausibly close to the study's average (too typical to be real).",
    "copied_vectors": "Identical sets of vital-sign values in different subjects.",
    "regular_visits": "Visits fall exactly on the scheduled day more often than at the study's other sites.",
    "shared_traits": ("Some of the site's subjects are steadier, more typical, rounder and more punctual than its "
                      "other subjects, together (a site-wide habit does not count)."),
}
format_p = p_value
FLAG_LABELS = {-1: "Insufficient data", 0: "No signal", 1: "Amber", 2: "Red"}


def kri_catalogue_table() -> pd.DataFrame:
    """Each KRI's definition, unit, denominator and which direction flags (from the catalogue)."""
    concern = {("low",): "too low", ("high",): "too high", ("low", "high"): "too low or too high"}
    return pd.DataFrame({
        "KRI": [k.name for k in CATALOGUE],
        "What it measures": [k.definition for k in CATALOGUE],
        "Unit": [k.unit for k in CATALOGUE],
        "Per": [k.denominator_label for k in CATALOGUE],
        "Flags when": [concern[k.directions] for k in CATALOGUE],
    })


def site_ranking_table(sites: pd.DataFrame, labels: Mapping[str, str], method: str) -> pd.DataFrame:
    """One row per site: name, study, country, flags and the combined evidence, strongest first."""
    out = pd.DataFrame({
        "Site": sites["study_site_id"].map(lambda s: labels.get(s, s)),
        "Study": sites["study_id"],
        "Country": sites["country_code"],
        "Red KRIs": sites["red"].astype("int64"),
        "Amber KRIs": sites["amber"].astype("int64"),
        "KRIs with enough data": sites["evaluable"].astype("int64"),
        "Flagged months in a row": sites["months_flagged"].astype("int64"),
        "New flags this month": sites["new_flags"].astype("int64"),
    })
    if method == "calibrated":
        out["Site score p"] = sites["site_p"].map(p_value)
    else:
        out["Site score (flag weights)"] = sites["site_score"].map(count)
    return out


def country_rollup_table(rollup: pd.DataFrame) -> pd.DataFrame:
    """Per country and KRI with any flag: sites, flagged, red, O/E (countries by name, not zeros)."""
    flagged = rollup[rollup["flagged"] > 0] if len(rollup) else rollup
    if flagged.empty:
        return pd.DataFrame(columns=["Country", "KRI", "Sites", "Flagged amber or red", "Red", "Observed / expected"])
    return pd.DataFrame({
        "Country": flagged["country_code"],
        "KRI": flagged["kri_name"],
        "Sites": flagged["sites"].astype("int64"),
        "Flagged amber or red": flagged["flagged"].astype("int64"),
        "Red": flagged["red"].astype("int64"),
        "Observed / expected": flagged["o_e"].map(ratio),
    }).sort_values(["Red", "Flagged amber or red"], ascending=False, ignore_index=True)


def flag_history_table(history: pd.DataFrame, spec: KRISpec) -> pd.DataFrame:
    """The site's KRI at each monthly snapshot, formatted."""
    return pd.DataFrame({
        "Snapshot": pd.to_datetime(history["cutoff"]).dt.strftime("%d %b %Y"),
        "Observed": history["observed"].map(count),
        "Expected": history["expected"].map(lambda v: "—" if pd.isna(v) else f"{v:,.1f}"),
        f"Rate ({spec.unit})": history["rate"].map(lambda v: "—" if pd.isna(v) else f"{v:,.3g}"),
        "p": history["p"].map(p_value),
        "Flag": history["flag"].map(lambda f: FLAG_LABELS.get(int(f), "—")),
    })


def breakdown_table(breakdown: pd.DataFrame) -> pd.DataFrame:
    """Counts by category at the site next to what its study's mix would predict."""
    if breakdown.empty:
        return pd.DataFrame({"Category": [], "At this site": [], "Share in the study": [], "Expected here": []})
    return pd.DataFrame({
        "Category": breakdown["category"],
        "At this site": breakdown["site_count"].map(count),
        "Share in the study": breakdown["study_share"].map(lambda v: share(v, 1)),
        "Expected here": breakdown["expected_at_site"].map(lambda v: f"{v:,.1f}"),
    })


def atypical_table(row: pd.Series) -> pd.DataFrame:
    """The atypical-data tests of one site: what each looks for and its p-value."""
    return pd.DataFrame({
        "Test": [TEST_LABELS[t] for t in TESTS],
        "Looks for": [TEST_EXPLANATIONS[t] for t in TESTS],
        "p (against the study's other sites)": [p_value(row[t]) for t in TESTS],
    })


def mostly_grey(cells: pd.DataFrame, share: float = 0.5) -> list[str]:
    """Sentences for the KRIs that are grey (too little data) at more than ``share`` of the sites shown."""
    if cells.empty:
        return []
    specs = {k.id: k for k in CATALOGUE}
    grey = cells.assign(grey=cells["flag"] < 0).groupby("kri")["grey"].mean()
    parts = [f"{specs[kri].name} at {fraction:.0%} (fewer than {specs[kri].min_expected:g} "
             f"{'events' if specs[kri].family == 'count' else 'cases'} expected per site)"
             for kri, fraction in grey[grey > share].sort_values(ascending=False).items()]
    if not parts:
        return []
    return ["Mostly grey here: " + "; ".join(parts) + ". Too few expected events at a site cannot be judged "
            "reliably, so such cells stay grey rather than look fine; studies that do not collect a measure "
            "(e.g. SDTM imports have no queries or entry dates) are grey for it throughout."]


def heatmap_table(cells: pd.DataFrame, site_order: list[str], labels: Mapping[str, str]) -> pd.DataFrame:
    """The heatmap as a table: one row per site, one column per KRI with its flag (for exports)."""
    names = {k.id: k.name for k in CATALOGUE}
    shown = cells[cells["study_site_id"].isin(set(site_order))]
    grid = shown.assign(state=shown["flag"].map(lambda f: FLAG_LABELS.get(int(f), "—"))).pivot_table(
        index="study_site_id", columns="kri", values="state", aggfunc="first")
    grid = grid.reindex(index=site_order, columns=[k.id for k in CATALOGUE]).fillna("—")
    grid.columns = [names[c] for c in grid.columns]
    grid.insert(0, "Site", [labels.get(s, s) for s in grid.index])
    return grid.reset_index(drop=True)


def posterior_sentence(cell: pd.Series, spec: KRISpec) -> str:
    """The calibrated model's site-level posterior of one cell, in a monitor's words."""
    return (f"Site-level posterior: this site's {spec.name.lower()} is {cell['posterior_ratio']:.2f} times its "
            f"study's (90% interval {cell['posterior_ratio_low']:.2f} to {cell['posterior_ratio_high']:.2f}); "
            f"P(below 75% of the study's) = {cell['prob_below']:.2f}, P(above 133%) = {cell['prob_above']:.2f}.")
