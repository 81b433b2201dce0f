"""Facts queries of the documents about participants: the patient-facing recruitment notice and the
clinical study report's adverse-event overview section.

Arm-level figures come from ``treatment_assignments``, a relation that exists only for unblinded
scopes (the query layer does not attach the restricted store for a blinded one), so a blinded
user's facts never contain them and the document says why.
"""

from __future__ import annotations

import pandas as pd

from analytics.drafting.context import FactContext, SubjectUnavailable
from analytics.drafting.facts import Fact, fact, percent
from analytics.drafting.queries_operations import SUBJECT_NOUNS

TOP_SOCS = 10
BLINDED_NOTE = "Arm-level figures are shown only to unblinded roles; this draft is blinded."

_NOTICE_SQL = """
SELECT s.study_site_id, s.site_name, s.city, s.country_code, s.investigator, st.study_id, st.indication,
       st.planned_visits, st.visit_interval_days, st.treatment_duration_days, st.follow_up_days, st.status
FROM scoped_sites s JOIN scoped_studies st USING (study_id) WHERE s.study_site_id = $site"""

_AGES_SQL = """
SELECT min(age) AS min_age, max(age) AS max_age, count(*) FILTER (WHERE sex = 'F') AS women,
       count(*) FILTER (WHERE sex = 'M') AS men
FROM subjects WHERE study_id = $study AND age IS NOT NULL"""


def recruitment_notice_facts(ctx: FactContext) -> list[Fact]:
    """A study-site's facts for a recruitment notice: condition, what taking part involves, who may
    join (as the people who joined so far show it), where and whom to contact (subject: study-site)."""
    n = ctx.one(_NOTICE_SQL, site=ctx.subject)
    key, skey = f"study_site_id={n.study_site_id}", f"study_id={n.study_id}"
    ages = ctx.one(_AGES_SQL, study=n.study_id)
    sexes = "women and men" if ages.women and ages.men else ("women" if ages.women else "men")
    weeks = None if pd.isna(n.visit_interval_days) else round(float(n.visit_interval_days) / 7)
    months = None if pd.isna(n.treatment_duration_days) else round(float(n.treatment_duration_days) / 30.4375)
    return [
        fact("condition", "Condition studied", str(n.indication).lower(), "text", "studies", skey),
        fact("site_name", "Study site", n.site_name, "text", "sites", key),
        fact("investigator", "Study doctor (principal investigator)", n.investigator, "text", "study_sites", key),
        fact("visits", "Planned study visits after joining", n.planned_visits, "visits", "studies", skey),
        fact("visit_weeks", "Weeks between visits", weeks, "weeks", "derived from studies.visit_interval_days", skey),
        fact("treatment_months", "Months of study treatment", months, "months",
             "derived from studies.treatment_duration_days", skey),
        fact("follow_up_days", "Days of follow-up after treatment", n.follow_up_days, "days", "studies", skey),
        fact("min_age", "Youngest age of people who joined so far", ages.min_age, "years", "subjects", skey),
        fact("max_age", "Oldest age of people who joined so far", ages.max_age, "years", "subjects", skey),
        fact("sexes", "People who joined so far", sexes, "text", "subjects", skey),
    ]


_AE_TOTALS_SQL = """
SELECT (SELECT count(*) FROM subjects WHERE study_id = $study AND randomization_date IS NOT NULL) AS randomized,
       count(DISTINCT a.subject_id) AS with_ae, count(a.ae_id) AS events,
       count(DISTINCT a.subject_id) FILTER (WHERE a.serious) AS with_sae,
       count(a.ae_id) FILTER (WHERE a.serious) AS sae_events,
       count(DISTINCT a.subject_id) FILTER (WHERE a.grade >= 3) AS with_grade3,
       (SELECT count(*) FROM subjects WHERE study_id = $study AND randomization_date IS NOT NULL
            AND discontinuation_reason = 'Adverse event') AS disc_ae
FROM (SELECT ae.* FROM adverse_events ae JOIN subjects s USING (subject_id)
      WHERE ae.study_id = $study AND s.randomization_date IS NOT NULL) a"""

_AE_SOC_SQL = """
SELECT coalesce(ae.body_system, 'Not coded') AS soc, count(DISTINCT ae.subject_id) AS subjects, count(*) AS events
FROM adverse_events ae JOIN subjects s USING (subject_id)
WHERE ae.study_id = $study AND s.randomization_date IS NOT NULL
GROUP BY 1 ORDER BY subjects DESC, soc LIMIT $top"""

_AE_GRADE_SQL = """
SELECT max_grade, count(*) AS subjects FROM (
    SELECT ae.subject_id, max(ae.grade) AS max_grade FROM adverse_events ae JOIN subjects s USING (subject_id)
    WHERE ae.study_id = $study AND s.randomization_date IS NOT NULL AND ae.grade IS NOT NULL GROUP BY 1)
GROUP BY 1 ORDER BY 1"""

_AE_ARM_SQL = """
SELECT r.arm, count(DISTINCT r.subject_id) AS randomized,
       count(DISTINCT ae.subject_id) AS with_ae,
       count(DISTINCT ae.subject_id) FILTER (WHERE ae.serious) AS with_sae,
       count(DISTINCT r.subject_id) FILTER (WHERE r.discontinuation_reason = 'Adverse event') AS disc_ae
FROM (SELECT s.subject_id, s.discontinuation_reason, t.arm FROM subjects s
      JOIN treatment_assignments t USING (subject_id)
      WHERE s.study_id = $study AND s.randomization_date IS NOT NULL) r
LEFT JOIN adverse_events ae USING (subject_id)
GROUP BY 1 ORDER BY 1"""


def ae_overview_facts(ctx: FactContext) -> list[Fact]:
    """A study's adverse-event overview for the clinical study report (subject: a study id).

    Subjects are the randomized ones; an AE counts once per subject within each row (a subject with
    two infections is one subject in "Infections"). Severity is the CTCAE grade (highest per subject).
    """
    study = ctx.one("SELECT study_id, protocol_id FROM scoped_studies WHERE study_id = $study", study=ctx.subject)
    key = f"study_id={study.study_id}"
    t = ctx.one(_AE_TOTALS_SQL, study=study.study_id)
    if not t.randomized:
        raise SubjectUnavailable(f"study '{ctx.subject}' has no randomized subject yet")
    n = t.randomized
    facts = [
        fact("protocol", "Protocol", study.protocol_id, "id", "studies", key),
        fact("period_end", "Data as of", ctx.as_of, "date", "meta.warehouse_info"),
        fact("randomized", "Subjects randomized", n, "subjects randomized", "subjects", key, nouns=SUBJECT_NOUNS),
        fact("with_ae", "Subjects with at least one adverse event", t.with_ae, "subjects", "adverse_events", key,
             nouns=SUBJECT_NOUNS),
        percent("with_ae_pct", "Subjects with at least one adverse event, % of randomized", t.with_ae, n,
                "adverse_events", key),
        fact("events", "Adverse events reported", t.events, "adverse events", "adverse_events", key, nouns=("AEs",)),
        fact("with_sae", "Subjects with a serious adverse event", t.with_sae, "subjects", "adverse_events", key,
             nouns=SUBJECT_NOUNS),
        percent("with_sae_pct", "Subjects with a serious adverse event, % of randomized", t.with_sae, n,
                "adverse_events", key),
        fact("sae_events", "Serious adverse events reported", t.sae_events, "serious adverse events",
             "adverse_events", key, nouns=("SAEs", "events")),
        fact("with_grade3", "Subjects with an adverse event of grade 3 or higher", t.with_grade3, "subjects",
             "adverse_events", key, nouns=SUBJECT_NOUNS),
        percent("with_grade3_pct", "Subjects with an adverse event of grade 3 or higher, % of randomized",
                t.with_grade3, n, "adverse_events", key),
        fact("disc_ae", "Subjects who discontinued because of an adverse event", t.disc_ae, "subjects",
             "subjects.discontinuation_reason", key, nouns=SUBJECT_NOUNS),
        percent("disc_ae_pct", "Subjects who discontinued because of an adverse event, % of randomized", t.disc_ae, n,
                "subjects", key),
    ]
    for r in ctx.query(_AE_GRADE_SQL, study=study.study_id).itertuples():
        group = f"grade:Grade {int(r.max_grade)}"
        facts += [fact("name", "Highest CTCAE grade", f"Grade {int(r.max_grade)}", "text", "adverse_events", key,
                       group=group),
                  fact("subjects", "Subjects whose highest grade it is", r.subjects, "subjects", "adverse_events", key,
                       group=group, nouns=SUBJECT_NOUNS),
                  percent("pct", "Subjects whose highest grade it is, % of randomized", r.subjects, n,
                          "adverse_events", key, group=group)]
    for r in ctx.query(_AE_SOC_SQL, study=study.study_id, top=TOP_SOCS).itertuples():
        group = f"soc:{r.soc}"
        facts += [fact("name", "System organ class", r.soc, "text", "adverse_events", key, group=group),
                  fact("subjects", "Subjects with an AE in the class", r.subjects, "subjects", "adverse_events", key,
                       group=group, nouns=SUBJECT_NOUNS),
                  percent("pct", "Subjects with an AE in the class, % of randomized", r.subjects, n,
                          "adverse_events", key, group=group),
                  fact("events", "AEs in the class", r.events, "events", "adverse_events", key, group=group,
                       nouns=("AEs",))]
    if ctx.scope.blinded:
        return facts
    for r in ctx.query(_AE_ARM_SQL, study=study.study_id).itertuples():
        group = f"arm:{r.arm}"
        facts += [fact("name", "Treatment arm", r.arm, "text", "treatment_assignments", key, group=group),
                  fact("randomized", "Subjects randomized to the arm", r.randomized, "subjects randomized",
                       "treatment_assignments", key, group=group, nouns=SUBJECT_NOUNS),
                  fact("with_ae", "Subjects with at least one AE", r.with_ae, "subjects", "adverse_events", key,
                       group=group, nouns=SUBJECT_NOUNS),
                  percent("with_ae_pct", "Subjects with at least one AE, % of the arm", r.with_ae, r.randomized,
                          "adverse_events", key, group=group),
                  fact("with_sae", "Subjects with a serious AE", r.with_sae, "subjects", "adverse_events", key,
                       group=group, nouns=SUBJECT_NOUNS),
                  percent("with_sae_pct", "Subjects with a serious AE, % of the arm", r.with_sae, r.randomized,
                          "adverse_events", key, group=group),
                  fact("disc_ae", "Subjects who discontinued because of an AE", r.disc_ae, "subjects",
                       "subjects.discontinuation_reason", key, group=group, nouns=SUBJECT_NOUNS)]
    return facts
