"""The Poisson-Gamma model's input: one row per study-site at a data cut, using only what was known then."""

from __future__ import annotations

import numpy as np
import pandas as pd

SITE_TABLE_COLUMNS = (
    "study_site_id", "country_code", "planned_activation_date", "activation_date", "dropped",
    "randomized", "open_days", "randomized_open_days_sum", "selection_date", "lag_days",
)


def screening_lag_days(subjects: pd.DataFrame, cut_date: pd.Timestamp) -> float:
    """Median days from screening to randomization of subjects randomized by the cut (0 if unknown).

    A site randomizes its first subject a screening period after it starts screening, so the
    randomization process of a site starts this long after its activation.
    """
    if "screening_date" not in subjects:
        return 0.0
    known = subjects[pd.to_datetime(subjects["randomization_date"]) <= pd.Timestamp(cut_date)]
    lag = (pd.to_datetime(known["randomization_date"]) - pd.to_datetime(known["screening_date"])).dt.days.dropna()
    return float(max(lag.median(), 0.0)) if len(lag) else 0.0


def build_site_table(sites: pd.DataFrame, randomizations: pd.DataFrame, cut_date: pd.Timestamp,
                     dropped: pd.Series | None = None, lag_days: float = 0.0) -> pd.DataFrame:
    """Per-site counts and open time at ``cut_date``.

    Args:
        sites: one row per study-site with ``study_site_id``, ``activation_date`` (NaT if not
            activated), optional ``planned_activation_date``, ``selection_date``, ``country_code``.
        randomizations: one row per randomized subject with ``study_site_id`` and
            ``randomization_date``.
        cut_date: the data cut; activations and randomizations after it are ignored.
        dropped: optional boolean per row of ``sites``: known at the cut never to activate.
        lag_days: screening-to-randomization lag (:func:`screening_lag_days`); open time and the
            days-since-activation of randomizations count from activation plus this lag.

    Returns:
        The site table: ``randomized`` (count by the cut), ``open_days`` (days from activation to the
        cut, 0 if not active), ``randomized_open_days_sum`` (sum over the site's randomizations of
        days since its activation, the sufficient statistic of the drift term), ``activation_date``
        blanked when after the cut, and ``dropped``.
    """
    cut = pd.Timestamp(cut_date)
    table = pd.DataFrame({"study_site_id": sites["study_site_id"].astype(str).to_numpy()})
    for column in ("country_code", "planned_activation_date", "selection_date"):
        table[column] = sites[column].to_numpy() if column in sites else None
    for column in ("planned_activation_date", "selection_date"):
        table[column] = pd.to_datetime(table[column])
    known = randomizations[pd.to_datetime(randomizations["randomization_date"]) <= cut]
    first = pd.to_datetime(known.groupby("study_site_id")["randomization_date"].min())
    activation = pd.Series(pd.to_datetime(sites["activation_date"]).to_numpy())
    activation = activation.where(activation <= cut)
    # A site that randomized before the cut was active even when no activation date is recorded
    # (imported SDTM data have none): its first randomization stands in for the activation.
    activation = activation.fillna(pd.Series(first.reindex(table["study_site_id"]).to_numpy()))
    table["activation_date"] = activation.to_numpy()
    table["dropped"] = (np.zeros(len(table), dtype=bool) if dropped is None
                        else np.asarray(dropped, dtype=bool)) & activation.isna().to_numpy()
    table["open_days"] = ((cut - activation).dt.days - lag_days).fillna(0).clip(lower=0).astype("float64").to_numpy()
    table["lag_days"] = float(lag_days)

    joined = known[["study_site_id", "randomization_date"]].merge(
        table[["study_site_id", "activation_date"]], on="study_site_id", how="inner")
    since = ((pd.to_datetime(joined["randomization_date"]) - joined["activation_date"]).dt.days - lag_days).clip(lower=0)
    grouped = since.groupby(joined["study_site_id"])
    table["randomized"] = grouped.size().reindex(table["study_site_id"]).fillna(0).astype("int64").to_numpy()
    table["randomized_open_days_sum"] = grouped.sum().reindex(table["study_site_id"]).fillna(0.0).to_numpy()
    return table[list(SITE_TABLE_COLUMNS)]
