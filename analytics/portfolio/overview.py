"""Portfolio-level metrics for the Overview page (its figures are in :mod:`analytics.portfolio.figures`).

Every function takes the warehouse handle, the user's access scope and the global filters, reads
only through the scope CTEs, and is cached on those (small, hashable) arguments.
"""

from __future__ import annotations

import datetime as dt
from urllib.parse import urlencode

import pandas as pd
import streamlit as st

from analytics.core.caching import cached
from analytics.core.scope import NO_FILTER, AccessScope, PortfolioFilter
from analytics.display.formats import forecast_date
from analytics.kri.service import site_flag_counts
from analytics.core.warehouse import Warehouse

QUERY_AGE_BUCKETS = ((0, 7, "0-7 d"), (8, 30, "8-30 d"), (31, 90, "31-90 d"), (91, 100_000, ">90 d"))
BEHIND_PLAN_RATIO = 0.85  # randomized below 85% of the plan's expectation counts as behind
LATE_ENTRY_DAYS = 10


@cached
def study_overview(wh: Warehouse, scope: AccessScope, filters: PortfolioFilter = NO_FILTER) -> pd.DataFrame:
    """One row per study: enrollment against plan, sites, data-quality backlog and CAPAs.

    ``expected_now`` is the randomized count the plan implies at the as-of date, assuming linear
    accrual between planned first and last patient in (subjects). ``pct_of_expected`` compares the
    actual count with it. Site-level filters (country, site) narrow the counts to those sites and
    the plan to their share of the study's planned enrollment (``plan_share``).
    """
    as_of = wh.as_of()
    # The whole study's plan (not only the filtered sites'), the denominator of a filtered plan share.
    plan = wh.query(scope, "SELECT study_id, sum(planned_enrollment) AS planned_all FROM study_sites GROUP BY 1",
                    None, filters.study_level())
    return wh.query_with(
        scope,
        """
        subj AS (
            SELECT s.study_id, count(*) AS screened,
                   count(s.randomization_date) AS randomized,
                   count(*) FILTER (WHERE s.status = 'Screen failure') AS screen_failures,
                   count(*) FILTER (WHERE s.status = 'Discontinued') AS discontinued,
                   min(s.randomization_date) AS first_randomization
            FROM subjects s JOIN scoped_sites USING (study_site_id)
            WHERE s.screening_date BETWEEN $date_from AND $date_to
            GROUP BY ALL
        ),
        site_counts AS (
            SELECT study_id, count(*) AS sites, count(activation_date) AS active_sites,
                   sum(planned_enrollment) AS planned_here
            FROM scoped_sites GROUP BY ALL
        ),
        -- With a country or site filter, the plan is the filtered sites' share of the study's plan.
        study_plan AS (
            SELECT study_id, array_extract($plan_totals, array_position($plan_studies, study_id)) AS planned_all
            FROM scoped_studies
        ),
        q AS (
            SELECT q.study_id,
                   count(*) FILTER (WHERE q.status <> 'Closed') AS open_queries,
                   count(*) FILTER (WHERE q.status <> 'Closed' AND date_diff('day', q.opened_date, $as_of) > 30) AS queries_open_30d
            FROM queries q JOIN scoped_sites USING (study_site_id)
            WHERE q.opened_date BETWEEN $date_from AND $date_to
            GROUP BY ALL
        ),
        pages AS (
            SELECT v.study_id,
                   count(*) FILTER (WHERE v.entry_date IS NULL AND date_diff('day', v.actual_date, $as_of) > $late_days) AS overdue_visits
            FROM visits v JOIN scoped_sites USING (study_site_id)
            WHERE v.actual_date BETWEEN $date_from AND $date_to
            GROUP BY ALL
        ),
        capa AS (
            SELECT c.study_id,
                   count(*) FILTER (WHERE c.closed_date IS NULL) AS open_capas,
                   count(*) FILTER (WHERE c.closed_date IS NULL AND c.current_due_date < $as_of) AS overdue_capas
            FROM capas c JOIN scoped_sites USING (study_site_id)
            WHERE c.opened_date BETWEEN $date_from AND $date_to
            GROUP BY ALL
        )
        """,
        """
        SELECT st.study_id, st.protocol_id, st.sponsor_id, sp.name AS sponsor_name, st.data_source, st.phase,
               st.therapeutic_area, st.indication, st.status, st.blinded,
               st.planned_fpi, st.planned_lpi,
               CASE WHEN len($f_countries) = 0 AND len($f_sites) = 0 THEN 1.0
                    ELSE coalesce(site_counts.planned_here / nullif(study_plan.planned_all, 0), 1.0) END AS plan_share,
               round(st.target_enrollment * plan_share)::INTEGER AS target_enrollment,
               coalesce(site_counts.sites, 0) AS sites, coalesce(site_counts.active_sites, 0) AS active_sites,
               coalesce(subj.screened, 0) AS screened, coalesce(subj.randomized, 0) AS randomized,
               coalesce(subj.screen_failures, 0) AS screen_failures, coalesce(subj.discontinued, 0) AS discontinued,
               subj.first_randomization,
               round(plan_share * CASE WHEN $as_of <= st.planned_fpi THEN 0
                    WHEN $as_of >= st.planned_lpi THEN st.target_enrollment
                    ELSE st.target_enrollment * date_diff('day', st.planned_fpi, $as_of)
                               / greatest(date_diff('day', st.planned_fpi, st.planned_lpi), 1)
               END) AS expected_now,
               coalesce(q.open_queries, 0) AS open_queries, coalesce(q.queries_open_30d, 0) AS queries_open_30d,
               coalesce(pages.overdue_visits, 0) AS overdue_visits,
               coalesce(capa.open_capas, 0) AS open_capas, coalesce(capa.overdue_capas, 0) AS overdue_capas
        FROM scoped_studies st
        JOIN sponsors sp USING (sponsor_id)
        LEFT JOIN site_counts USING (study_id) LEFT JOIN study_plan USING (study_id)
        LEFT JOIN subj USING (study_id) LEFT JOIN q USING (study_id)
        LEFT JOIN pages USING (study_id) LEFT JOIN capa USING (study_id)
        -- with a country or site filter, only studies that have such sites
        WHERE (len($f_countries) = 0 AND len($f_sites) = 0) OR site_counts.sites > 0
        ORDER BY st.study_id
        """,
        {"as_of": as_of, "late_days": LATE_ENTRY_DAYS, "plan_studies": plan["study_id"].tolist(),
         "plan_totals": plan["planned_all"].astype("float64").tolist()},
        filters,
    ).pipe(_add_enrollment_status)


# Operational facts an SDTM submission does not carry: absent (NA), not zero, for such studies.
OPERATIONAL_COLUMNS = ("open_queries", "queries_open_30d", "overdue_visits", "open_capas", "overdue_capas")


def _add_enrollment_status(df: pd.DataFrame) -> pd.DataFrame:
    df = df.copy()
    from_sdtm = df["data_source"].eq("sdtm")
    for column in OPERATIONAL_COLUMNS:
        df[column] = df[column].astype("Int64").mask(from_sdtm)
    df["pct_of_target"] = (df["randomized"] / df["target_enrollment"].where(df["target_enrollment"] > 0)).astype("float64")
    expected = df["expected_now"].astype("float64")
    df["pct_of_expected"] = (df["randomized"] / expected.where(expected > 0)).astype("float64")
    df["enrollment_status"] = "Not started"
    df.loc[df["planned_fpi"].isna() | df["planned_lpi"].isna(), "enrollment_status"] = "No plan"
    started = expected > 0
    df.loc[started, "enrollment_status"] = "On track"
    df.loc[started & (df["pct_of_expected"] < BEHIND_PLAN_RATIO), "enrollment_status"] = "Behind plan"
    df.loc[df["randomized"] >= df["target_enrollment"], "enrollment_status"] = "Complete"
    return df


@cached
def query_aging(wh: Warehouse, scope: AccessScope, filters: PortfolioFilter = NO_FILTER) -> pd.DataFrame:
    """Open queries per study by age bucket at the as-of date (days since opened)."""
    as_of = wh.as_of()
    df = wh.query(
        scope,
        """
        SELECT q.study_id, date_diff('day', q.opened_date, $as_of) AS age_days, count(*) AS open_queries
        FROM queries q JOIN scoped_sites USING (study_site_id)
        WHERE q.status <> 'Closed' AND q.opened_date BETWEEN $date_from AND $date_to
        GROUP BY ALL
        """,
        {"as_of": as_of},
        filters,
    )
    df["age_bucket"] = pd.cut(
        df["age_days"],
        bins=[b[0] - 1 for b in QUERY_AGE_BUCKETS] + [QUERY_AGE_BUCKETS[-1][1]],
        labels=[b[2] for b in QUERY_AGE_BUCKETS],
    )
    return (
        df.groupby(["study_id", "age_bucket"], observed=False)["open_queries"].sum().reset_index()
    )


FORECAST_RISK = 0.5  # a forecast milestone with less than this chance of meeting its plan is at risk


@cached
def milestones_at_risk(wh: Warehouse, scope: AccessScope, filters: PortfolioFilter = NO_FILTER) -> pd.DataFrame:
    """Milestones not yet reached that are overdue, due within 90 days, or forecast to miss their plan.

    ``days_late`` is positive when the planned date has passed without the milestone (days). Last
    patient in, last patient last visit and database lock carry the enrollment forecast
    (``derived.enrollment_timeline``): its median date and the probability of meeting the plan; one
    with less than :data:`FORECAST_RISK` is at risk whenever it is due.
    """
    as_of = wh.as_of()
    df = wh.query(
        scope,
        """
        SELECT m.study_id, st.protocol_id, m.milestone, m.sequence, m.planned_date,
               date_diff('day', m.planned_date, $as_of) AS days_late,
               t.p50 AS forecast_date, t.horizon_date AS forecast_horizon, t.p_by_planned
        FROM milestones m JOIN scoped_studies st USING (study_id)
        LEFT JOIN enrollment_timeline t ON t.study_id = m.study_id AND t.milestone = m.milestone
        WHERE m.actual_date IS NULL
          AND (m.planned_date <= $as_of + INTERVAL 90 DAY OR t.p_by_planned < $risk)
          AND (m.sequence = (SELECT min(m2.sequence) FROM milestones m2
                             WHERE m2.study_id = m.study_id AND m2.actual_date IS NULL)
               OR t.p_by_planned < $risk)
        ORDER BY days_late DESC
        """,
        {"as_of": as_of, "risk": FORECAST_RISK},
        filters,
    )
    df["risk"] = [("Overdue" if d > 0 else "Due within 90 days") if (d > 0 or d >= -90) else "Forecast to miss the plan"
                  for d in df["days_late"]]
    return df


@cached
def risk_signals(wh: Warehouse, scope: AccessScope, filters: PortfolioFilter = NO_FILTER) -> pd.DataFrame:
    """Per study: sites with any red and with any amber KRI flag at the latest snapshot (calibrated engine)."""
    return site_flag_counts(wh, scope, filters, "calibrated")


def with_risk_signals(overview: pd.DataFrame, signals: pd.DataFrame) -> pd.DataFrame:
    """The study table with its red and flagged site counts (0 where the engine flagged nothing)."""
    merged = overview.merge(signals, on="study_id", how="left")
    for column in ("red_sites", "flagged_sites"):
        merged[column] = merged[column].fillna(0).astype("int64")
    return merged


def portfolio_kpis(overview: pd.DataFrame, milestones: pd.DataFrame) -> dict[str, int]:
    """Headline counts for the Overview: studies, behind plan, backlog, overdue CAPAs, late milestones."""
    return {
        "studies": int(len(overview)),
        "behind_plan": int((overview["enrollment_status"] == "Behind plan").sum()),
        "randomized": int(overview["randomized"].sum()),
        "red_sites": int(overview["red_sites"].sum()) if "red_sites" in overview else 0,
        "open_queries": int(overview["open_queries"].sum()),
        "queries_open_30d": int(overview["queries_open_30d"].sum()),
        "overdue_visits": int(overview["overdue_visits"].sum()),
        "overdue_capas": int(overview["overdue_capas"].sum()),
        "milestones_overdue": int((milestones["days_late"] > 0).sum()) if len(milestones) else 0,
    }



# --- display tables -------------------------------------------------------------------------------

STUDY_TABLE_CONFIG = {
    "% of target": st.column_config.ProgressColumn("% of target", format="%.0f%%", min_value=0, max_value=100,
                                                   help="Randomized as a share of the target (can pass 100%)"),
    "Risk view": st.column_config.LinkColumn("Risk view", display_text="Open heatmap"),
}


def study_table(studies: pd.DataFrame, filter_params: dict, links: list) -> pd.DataFrame:
    """The Overview's study table: names, enrollment against plan, risk and backlog, a heatmap link.

    The columns a clinical operations lead triages by come first, so they stay on screen.
    """
    table = pd.DataFrame({
        "Protocol": studies["protocol_id"],
        "Sponsor": studies["sponsor_name"],
        "Enrollment": studies["enrollment_status"],
        "Randomized": studies["randomized"].astype("int64"),
        "Plan by now": studies["expected_now"].round().astype("Int64"),
        "Target": studies["target_enrollment"].astype("Int64"),
        "% of target": (100 * studies["pct_of_target"]).round(0),
        "Red-flag sites": studies["red_sites"].astype("int64"),
        "Flagged sites": studies["flagged_sites"].astype("int64"),
        "Open queries": studies["open_queries"],
        "Queries > 30 d": studies["queries_open_30d"],
        "Visits not entered > 10 d": studies["overdue_visits"],
        "Overdue CAPAs": studies["overdue_capas"],
        "Active sites": studies["active_sites"].astype("int64"),
        "Sites": studies["sites"].astype("int64"),
        "Phase": studies["phase"],
        "Area": studies["therapeutic_area"],
        "Status": studies["status"],
        "Study": studies["study_id"],
    })
    rbm = next((p for p in links if p.key == "rbm"), None)
    if rbm is not None:  # a per-study link into the heatmap, keeping the other filters
        base = {k: v for k, v in filter_params.items() if k != "study" and k in rbm.filters}
        table.insert(1, "Risk view", [f"./{rbm.url_path}?{urlencode({**base, 'study': s}, doseq=True)}"
                                      for s in studies["study_id"]])
    return table


def milestone_table(milestones: pd.DataFrame) -> pd.DataFrame:
    """Milestones at risk: overdue ones say by how many days, upcoming ones in how many, with the forecast."""
    return pd.DataFrame({
        "Protocol": milestones["protocol_id"],
        "Milestone": milestones["milestone"],
        "Planned": pd.to_datetime(milestones["planned_date"]).dt.strftime("%d %b %Y"),
        "Status": [f"Overdue by {d:,} days" if d > 0 else ("Due today" if d == 0 else f"Due in {-d:,} days")
                   for d in milestones["days_late"].astype(int)],
        "Forecast (median)": [forecast_date(d, h) for d, h in zip(pd.to_datetime(milestones["forecast_date"]),
                                                                  pd.to_datetime(milestones["forecast_horizon"]))],
        "P(by the planned date)": milestones["p_by_planned"].map(lambda p: "—" if pd.isna(p) else f"{p:.0%}"),
        "Study": milestones["study_id"],
    })
