"""Facts queries of the quality and feasibility documents: a CAPA description and a feasibility
summary.

Extension points: the CAPA area (status history, extensions, effectiveness checks in the records
store) and the Feasibility area (proposal scenarios) are being built beside this one. These queries
read what the warehouse holds now (``capas`` with its quality event; ``historical_trials`` and the
site-selection ranking); when those areas store more, add their facts here and bump the document
type's ``template_version`` in :mod:`analytics.drafting.specs`.
"""

from __future__ import annotations

import pandas as pd

from analytics.drafting.context import FactContext, SubjectUnavailable
from analytics.drafting.facts import Fact, days_between, fact, percent
from analytics.feasibility.benchmarks import benchmark_table
from analytics.feasibility.trials import trial_table
from analytics.sites.performance import site_selection_ranking

TOP_INSTITUTIONS = 5

_CAPA_SQL = """
SELECT c.capa_id, c.study_id, st.protocol_id, s.site_number, s.site_name, c.root_cause_category, c.description,
       c.owner, c.opened_date, c.original_due_date, c.current_due_date, c.extension_count, c.closed_date,
       c.effectiveness_check_date, c.effectiveness_result,
       q.category AS event_category, q.severity AS event_severity, q.description AS event_description,
       q.reported_date AS event_reported
FROM capas c JOIN scoped_studies st USING (study_id)
LEFT JOIN scoped_sites s USING (study_site_id)
LEFT JOIN quality_events q USING (quality_event_id)
WHERE c.capa_id = $capa"""


def capa_id_of(subject: str) -> int:
    """The numeric CAPA id of ``CAPA-12`` or ``12``."""
    try:
        return int(subject.removeprefix("CAPA-"))
    except ValueError:
        raise SubjectUnavailable(f"'{subject}' is not a CAPA id") from None


def capa_facts(ctx: FactContext) -> list[Fact]:
    """One CAPA's problem, root cause, actions and effectiveness check (subject: ``CAPA-<id>``)."""
    c = ctx.one(_CAPA_SQL, capa=capa_id_of(ctx.subject))
    key = f"capa_id={c.capa_id}"
    facts = [
        fact("capa", "CAPA", f"CAPA-{c.capa_id}", "id", "capas", key),
        fact("protocol", "Protocol", c.protocol_id, "id", "studies", f"study_id={c.study_id}"),
        fact("site", "Site", None if pd.isna(c.site_name) else f"{c.site_name} (site {c.site_number})", "text",
             "study_sites", key),
        fact("event_category", "Quality event category", c.event_category, "text", "quality_events", key),
        fact("event_severity", "Quality event severity", c.event_severity, "text", "quality_events", key),
        fact("event_description", "Quality event description", c.event_description, "text", "quality_events", key),
        fact("event_reported", "Quality event reported", c.event_reported, "date", "quality_events", key),
        fact("root_cause", "Root-cause category", c.root_cause_category, "text", "capas", key),
        fact("description", "Problem and action", c.description, "text", "capas", key),
        fact("owner", "Owner", c.owner, "text", "capas", key),
        fact("opened", "Opened", c.opened_date, "date", "capas", key),
        days_between("days_to_open", "Days from the quality event to the CAPA", c.event_reported, c.opened_date,
                     "capas, quality_events", key),
        fact("original_due", "Original due date", c.original_due_date, "date", "capas", key),
        fact("current_due", "Current due date", c.current_due_date, "date", "capas", key),
        fact("extensions", "Due-date extensions", c.extension_count, "extensions", "capas", key),
    ]
    if pd.isna(c.closed_date):
        facts.append(fact("state", "Status", "open", "text", "capas", key))
        overdue = days_between("days_overdue", "Days past the current due date", c.current_due_date, ctx.as_of,
                               "capas", key)
        if isinstance(overdue.value, int) and overdue.value > 0:
            facts.append(overdue)
        facts.append(days_between("days_open", "Days open", c.opened_date, ctx.as_of, "capas", key))
    else:
        facts += [fact("state", "Status", "closed", "text", "capas", key),
                  fact("closed", "Closed", c.closed_date, "date", "capas", key),
                  days_between("days_open", "Days from opening to closure", c.opened_date, c.closed_date, "capas", key)]
    if not pd.isna(c.effectiveness_check_date):
        facts += [fact("check_date", "Effectiveness check", c.effectiveness_check_date, "date", "capas", key),
                  fact("check_result", "Effectiveness check result", c.effectiveness_result, "text", "capas", key)]
    return facts


# --- feasibility summary -----------------------------------------------------------------------


def area_benchmarks(ctx: FactContext, area: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The interventional registry trials of ``area`` and their benchmarks, as the Feasibility page computes
    them (:func:`analytics.feasibility.benchmarks.benchmark_table`): enrollment from trials that ended (their
    enrollment is actual), duration by Kaplan-Meier with running trials censored, never at their anticipated
    dates. Indexed by measure key."""
    trials = trial_table(ctx.warehouse)
    chosen = trials[(trials["therapeutic_area"] == area) & (trials["study_type"] != "OBSERVATIONAL")]
    return chosen, benchmark_table(chosen).set_index("measure")


def feasibility_facts(ctx: FactContext) -> list[Fact]:
    """Benchmarks and candidate institutions for a new study in a therapeutic area (subject: the area)."""
    area = ctx.subject
    own = ctx.query("SELECT count(*) AS studies, sum(target_enrollment) AS target FROM scoped_studies "
                    "WHERE therapeutic_area = $area", area=area).iloc[0]
    if not own.studies:
        raise SubjectUnavailable(f"no study of yours is in the therapeutic area '{area}'")
    trials, bench = area_benchmarks(ctx, area)
    key = f"therapeutic_area={area}"
    facts = [
        fact("area", "Therapeutic area", area, "text", "studies", key),
        fact("own_studies", "Studies of yours in the area", own.studies, "studies", "studies", key,
             nouns=("trials",)),
        fact("trials", "Registry trials in the area (interventional)", len(trials), "trials", "historical_trials",
             key, nouns=("studies",)),
        fact("ended", "Those trials that ended (completed or terminated)", bench.at["enrollment", "trials"], "trials",
             "historical_trials", key, nouns=("studies",)),
        fact("median_enrollment", "Median actual enrollment of the trials that ended", bench.at["enrollment", "p50"],
             "participants", "historical_trials", key, nouns=("subjects", "patients")),
        fact("median_sites", "Median number of sites of the trials listing their locations", bench.at["sites", "p50"],
             "sites", "historical_trials", key),
        fact("median_months", "Median start-to-completion time (Kaplan-Meier, running trials censored)",
             bench.at["duration", "p50"], "months", "historical_trials", key, decimals=1),
        percent("completed_pct", "Trials completed, % of those trials", int(trials["completed"].sum()), len(trials),
                "historical_trials", key, decimals=0),
    ]
    ranking = site_selection_ranking(ctx.warehouse, ctx.scope, area).head(TOP_INSTITUTIONS)
    facts.append(fact("ranked", "Institutions ranked (shown: up to 5)", len(ranking), "institutions",
                      "site_selection_ranking", key, nouns=("sites",)))
    for r in ranking.itertuples():
        group, ikey = f"institution:{r.site_name}", f"site_id={r.site_id}"
        facts += [
            fact("name", "Institution", r.site_name, "text", "sites", ikey, group=group),
            fact("country", "Country", r.country_code, "text", "sites", ikey, group=group),
            fact("studies", "Studies in the area", r.studies, "studies", "site_selection_ranking", ikey, group=group),
            fact("randomized", "Subjects randomized in the area", r.randomized, "subjects randomized",
                 "site_selection_ranking", ikey, group=group, nouns=("subjects", "patients", "participants")),
            fact("rate", "Expected randomizations per site-month (shrunk)", r.posterior_mean, "per site-month",
                 "site_selection_ranking", ikey, group=group, decimals=2),
            fact("lower", "80% credible interval, lower", r.lower, "per site-month", "site_selection_ranking", ikey,
                 group=group, decimals=2),
            fact("upper", "80% credible interval, upper", r.upper, "per site-month", "site_selection_ranking", ikey,
                 group=group, decimals=2),
        ]
    return facts
