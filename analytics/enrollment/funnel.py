"""The screening funnel: screened, consented, randomized and screen-failure reasons, per study and site."""

from __future__ import annotations

import pandas as pd

STAGES = ("Screened", "Consented", "Randomized")


def screening_funnel(subjects: pd.DataFrame) -> pd.DataFrame:
    """Counts per stage: one row per (study, site or None for the whole study, stage).

    ``subjects`` has one row per screened subject (:func:`analytics.enrollment.data.read_subjects`).
    """
    flags = pd.DataFrame({
        "study_id": subjects["study_id"], "study_site_id": subjects["study_site_id"],
        "Screened": True, "Consented": subjects["consent_date"].notna(),
        "Randomized": subjects["randomization_date"].notna(),
    })
    site = flags.groupby(["study_id", "study_site_id"])[list(STAGES)].sum().reset_index()
    study = flags.groupby("study_id")[list(STAGES)].sum().reset_index().assign(study_site_id=None)
    both = pd.concat([study, site], ignore_index=True)
    long = both.melt(id_vars=["study_id", "study_site_id"], value_vars=list(STAGES), var_name="stage", value_name="count")
    long["stage"] = pd.Categorical(long["stage"], categories=list(STAGES), ordered=True)
    return long.sort_values(["study_id", "study_site_id", "stage"], na_position="first").reset_index(drop=True)


def screen_failure_reasons(subjects: pd.DataFrame) -> pd.DataFrame:
    """Screen failures per reason: one row per (study, site or None, reason) with ``count``."""
    failed = subjects[subjects["status"].eq("Screen failure")].assign(
        reason=lambda d: d["screen_failure_reason"].fillna("Not recorded"))
    site = failed.groupby(["study_id", "study_site_id", "reason"]).size().rename("count").reset_index()
    study = failed.groupby(["study_id", "reason"]).size().rename("count").reset_index().assign(study_site_id=None)
    return pd.concat([study, site], ignore_index=True)[["study_id", "study_site_id", "reason", "count"]]
