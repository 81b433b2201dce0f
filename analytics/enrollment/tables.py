"""Display tables of the Enrollment page: names, dates and probabilities as a planner reads them."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from analytics.display.formats import forecast_date

# Counts keep their numbers (they sort as numbers and export as numbers) and show thousands
# separators, as ``analytics.display.formats.count`` writes them.
COUNT_FORMAT = "%,d"
PORTFOLIO_COUNTS = ("Randomized", "Target", "Active sites", "Sites not yet active")
PORTFOLIO_CONFIG = {name: st.column_config.NumberColumn(name, format=COUNT_FORMAT) for name in PORTFOLIO_COUNTS}
SITE_CONFIG = {"Randomized": st.column_config.NumberColumn("Randomized", format=COUNT_FORMAT)}


def _date(values: pd.Series) -> pd.Series:
    return pd.to_datetime(values).dt.strftime("%d %b %Y").fillna("—")


def _forecast(values: pd.Series, horizons: pd.Series | None) -> pd.Series:
    """Forecast dates; one beyond the simulation's horizon says "after <horizon>"."""
    if horizons is None:
        return _date(values)
    return pd.Series([forecast_date(v, h) for v, h in zip(pd.to_datetime(values), pd.to_datetime(horizons))],
                     index=values.index)


def _share(values: pd.Series) -> pd.Series:
    return values.map(lambda v: "—" if pd.isna(v) else f"{v:.0%}")


def portfolio_table(summaries: pd.DataFrame) -> pd.DataFrame:
    """One row per study: where it stands, when it will finish (80% sure), and what would put it on time.

    A study that has reached its target shows the date it did and whether that was on time.
    """
    done = (summaries["randomized"] >= summaries["target"]).fillna(False)
    horizon = summaries["horizon_date"] if "horizon_date" in summaries else None
    state = pd.Series("Enrolling", index=summaries.index)
    late = pd.to_datetime(summaries["lpi_p50"]) > pd.to_datetime(summaries["planned_lpi"])
    state[done] = ["Complete, late" if x else "Complete, on time" for x in late[done]]
    table = pd.DataFrame({
        "Protocol": summaries["protocol_id"],
        "Sponsor": summaries["sponsor"],
        "Randomized": summaries["randomized"].astype("Int64"),
        "Target": summaries["target"].astype("Int64"),
        "Planned last patient in": _date(summaries["planned_lpi"]),
        "Forecast (median)": _forecast(summaries["lpi_p50"], horizon),
        "80% sure by": _forecast(summaries["lpi_p80"], horizon),
        "P(on time)": _share(summaries["p_on_time"]),
        "Sites to add for 80% on time": summaries["sites_to_add"].map(
            lambda n: "—" if pd.isna(n) else ("none" if n == 0 else f"{int(n):,}")),
        "Add them by": _date(summaries["add_sites_by"]),
        "Active sites": summaries["active_sites"].astype("Int64"),
        "Sites not yet active": summaries["pending_sites"].astype("Int64"),
        "Study": summaries["study_id"],
    })
    table.insert(2, "Enrollment", state)
    table.loc[done, "Forecast (median)"] = "reached " + table.loc[done, "Forecast (median)"]
    for column in ("80% sure by", "P(on time)", "Sites to add for 80% on time", "Add them by"):
        table.loc[done, column] = "—"
    return table


def site_table(sites: pd.DataFrame) -> pd.DataFrame:
    """Per site: its fitted rate, what it adds to the rest of enrollment, and the chance it adds nothing."""
    return pd.DataFrame({
        "Site": sites["site_number"],
        "Institution": sites["site_name"],
        "Country": sites["country_code"],
        "State": sites["state"].fillna("—").str.capitalize(),
        "Randomized": sites["randomized"].astype("Int64"),
        "Rate per month (mean)": sites["rate_mean"].map(lambda v: "—" if pd.isna(v) else f"{v:.2f}"),
        "Rate 10-90%": [("—" if pd.isna(lo) else f"{lo:.2f} – {hi:.2f}") for lo, hi in
                        zip(sites["rate_p10"], sites["rate_p90"])],
        "Expected more by forecast LPI": sites["expected_by_lpi"].map(lambda v: "—" if pd.isna(v) else f"{v:.1f}"),
        "Share of the rest": _share(sites["share_of_remaining"]),
        "P(enrolls nobody more)": _share(sites["p_enrolls_nobody"]),
    })


def timeline_table(timeline: pd.DataFrame) -> pd.DataFrame:
    """LPI, LPLV and database lock: planned, actual, forecast with interval, chance of meeting the plan."""
    horizon = timeline["horizon_date"] if "horizon_date" in timeline else None
    low, high = _forecast(timeline["p10"], horizon), _forecast(timeline["p90"], horizon)
    return pd.DataFrame({
        "Milestone": timeline["milestone"],
        "Planned": _date(timeline["planned_date"]),
        "Actual": _date(timeline["actual_date"]),
        "Forecast (median)": _forecast(timeline["p50"], horizon),
        "10-90%": [b if a.startswith("after") else (f"{a} – {b}" if a != "—" else "—") for a, b in zip(low, high)],
        "P(by the planned date)": _share(timeline["p_by_planned"]),
    })
