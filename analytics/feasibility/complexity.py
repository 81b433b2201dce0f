"""Protocol complexity from what registry records carry.

Features, each with its unit and where it comes from:

* inclusion and exclusion criteria: counted in the eligibility free text. ClinicalTrials.gov
  writes "Inclusion Criteria:" and "Exclusion Criteria:" headings followed by bullet lines (``*``,
  ``-``, ``•``, ``1.``, ``1)``); each bullet line is one criterion (sub-bullets too). A section
  without bullets counts its non-empty lines. No text: unknown (CSV exports do not carry it);
* age range in years (maximum minus minimum; no upper limit counts as up to 100 years), whether
  an upper age limit of 65 or less applies, whether healthy volunteers are accepted, whether one
  sex only is eligible;
* arms (the record's arm groups; JSON records only), interventions (every format), primary and
  secondary outcomes (counted in the ``|``-separated lists).

Unknown stays unknown (NaN): the model handles missing values and the page says how many trials
carry each feature.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

NO_UPPER_AGE = 100.0  # years: an open upper age limit counts as this
_EXCLUSION_HEADING = re.compile(r"(?im)^\s*(?:key\s+)?exclusion\s+criteria\s*:?")
_INCLUSION_HEADING = re.compile(r"(?im)^\s*(?:key\s+)?inclusion\s+criteria\s*:?")
_BULLET = re.compile(r"(?m)^\s*(?:[*\-•·]|\d{1,3}[.)]|[a-z][.)])\s+\S")
COMPLEXITY_FEATURES: dict[str, str] = {
    "n_inclusion": "Inclusion criteria",
    "n_exclusion": "Exclusion criteria",
    "age_span_years": "Age range (years)",
    "upper_age_65": "Upper age limit 65 or less",
    "healthy_volunteers": "Healthy volunteers accepted",
    "single_sex": "One sex only",
    "n_arms": "Arms",
    "n_interventions": "Interventions",
    "n_primary_outcomes": "Primary outcomes",
    "n_secondary_outcomes": "Secondary outcomes",
}


def _count_items(section: str) -> int:
    bullets = len(_BULLET.findall(section))
    if bullets:
        return bullets
    return sum(1 for line in section.splitlines() if line.strip())


def count_criteria(text: str | None) -> tuple[float, float]:
    """(inclusion, exclusion) criteria in one eligibility text; NaN when there is no text."""
    if not isinstance(text, str) or not text.strip():
        return float("nan"), float("nan")
    text = text.replace("\r\n", "\n").replace("\\>", ">").replace("\\<", "<")
    parts = _EXCLUSION_HEADING.split(text, maxsplit=1)
    inclusion = _INCLUSION_HEADING.sub("", parts[0])
    exclusion = parts[1] if len(parts) > 1 else ""
    return float(_count_items(inclusion)), float(_count_items(exclusion)) if len(parts) > 1 else float("nan")


def _listed(values: pd.Series) -> pd.Series:
    """Items in a ``|``-separated list (NaN when empty)."""
    text = values.astype("string")
    return (text.str.count(r"\|") + 1).astype("Float64").astype(float).where(text.notna() & (text.str.strip() != ""))


def complexity_features(trials: pd.DataFrame) -> pd.DataFrame:
    """The complexity features of each trial (columns of :data:`COMPLEXITY_FEATURES`, same index)."""
    counts = [count_criteria(t) for t in trials["eligibility_criteria"]]
    low = pd.to_numeric(trials["min_age_years"], errors="coerce").astype(float)
    high = pd.to_numeric(trials["max_age_years"], errors="coerce").astype(float)
    known_ages = low.notna() | high.notna()
    span = (high.fillna(NO_UPPER_AGE) - low.fillna(0.0)).clip(lower=0).where(known_ages)
    sex = trials["sex"].astype("string")
    healthy = trials["healthy_volunteers"].astype("boolean")
    return pd.DataFrame({
        "n_inclusion": [c[0] for c in counts],
        "n_exclusion": [c[1] for c in counts],
        "age_span_years": span,
        "upper_age_65": (high <= 65).astype(float).where(known_ages),
        "healthy_volunteers": healthy.astype("Float64").astype(float),
        "single_sex": sex.isin(["FEMALE", "MALE"]).astype(float).where(sex.notna()),
        "n_arms": pd.to_numeric(trials["arm_count"], errors="coerce").astype(float),
        "n_interventions": _listed(trials["interventions"]),
        "n_primary_outcomes": _listed(trials["primary_outcome"]),
        "n_secondary_outcomes": _listed(trials["secondary_outcome"]),
    }, index=trials.index).astype(float)


def complexity_association(frame: pd.DataFrame, outcome: str) -> pd.DataFrame:
    """How each feature goes with ``outcome`` (log scale) among trials where both are known.

    Per feature: trials with it known, Spearman rank correlation, and the outcome's median in the
    lower and upper half of the feature (binary features: without and with it), so a reader sees
    the size of the difference, not only its sign.
    """
    rows = []
    for feature, label in COMPLEXITY_FEATURES.items():
        known = frame[[feature, outcome]].dropna()
        known = known[np.isfinite(known[outcome])]
        if len(known) < 10 or known[feature].nunique() < 2:
            rows.append({"feature": feature, "label": label, "trials": len(known), "spearman": np.nan,
                         "low_median": np.nan, "high_median": np.nan, "split": ""})
            continue
        binary = set(known[feature].unique()) <= {0.0, 1.0}
        cut = 0.5 if binary else float(known[feature].median())
        low = known[known[feature] <= cut] if not binary else known[known[feature] == 0]
        high = known[known[feature] > cut] if not binary else known[known[feature] == 1]
        if high.empty:  # many ties at the median: split below it instead
            low, high = known[known[feature] < cut], known[known[feature] >= cut]
        rows.append({
            "feature": feature, "label": label, "trials": len(known),
            "spearman": float(known[feature].corr(known[outcome], method="spearman")),
            "low_median": float(low[outcome].median()) if len(low) else np.nan,
            "high_median": float(high[outcome].median()) if len(high) else np.nan,
            "split": "no / yes" if binary else f"<= {cut:g} / > {cut:g}",
        })
    return pd.DataFrame(rows)
