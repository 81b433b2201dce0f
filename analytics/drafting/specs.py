"""The document types: each a declarative :class:`DocumentSpec` run by one engine
(:mod:`analytics.drafting.service`).

A spec names its subject (what the document is about and how the user picks it), its facts query
(fixed, parameterized, scoped SQL in ``queries_*``), its sections (which the checker requires) and
their templates, the instructions a model gets, and a ``template_version`` that goes into the
audit trail: change a template, a facts query or the instructions and bump it.

Adding a document type is adding a spec to :data:`CATALOGUE`. The Data Quality, CAPA and
Feasibility areas are built beside this one: their documents here read the tables that exist now
(see the extension notes in :mod:`analytics.drafting.queries_operations` and
:mod:`analytics.drafting.queries_quality`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from analytics.drafting import queries_operations as ops
from analytics.drafting import queries_patients as patients
from analytics.drafting import queries_quality as quality
from analytics.drafting.context import FactContext
from analytics.drafting.facts import Fact
from analytics.drafting.plain_language import DEFAULT_MAX_GRADE, ETHICS_MARK
from analytics.drafting.templates import Each, Line, Section, equals, positive, zero

SUBJECT_KINDS = {"site": "Site", "study": "Study", "study_or_sponsor": "Study or sponsor", "capa": "CAPA",
                 "area": "Therapeutic area"}


@dataclass(frozen=True)
class DocumentSpec:
    """One document type.

    Attributes:
        key: stable id (URLs, audit trail).
        title: the document's name.
        subject_kind: what the user picks (:data:`SUBJECT_KINDS`).
        facts_query: the facts query.
        sections: the sections in order, with their templates.
        template_version: changes whenever the facts query, the template or the instructions do.
        instructions: what the model is asked to write, beyond the common rules.
        audience: who reads it (shown to the user and given to the model).
        patient_facing: plain-language rules and readability apply.
        preface: lines the template puts before the first section (no facts).
        review_pack: exports as a sponsor review pack with charts.
    """

    key: str
    title: str
    subject_kind: str
    facts_query: Callable[[FactContext], list[Fact]]
    sections: tuple[Section, ...]
    template_version: str
    instructions: str
    audience: str
    patient_facing: bool = False
    max_grade: float | None = None
    preface: tuple[str, ...] = ()
    review_pack: bool = False

    @property
    def required_sections(self) -> tuple[str, ...]:
        return tuple(s.name for s in self.sections if s.required)


MONITORING_VISIT_REPORT = DocumentSpec(
    key="monitoring_visit_report",
    title="Monitoring visit report summary",
    subject_kind="site",
    facts_query=ops.monitoring_visit_facts,
    template_version="mvr-2",
    audience="the study's clinical research associates and clinical operations lead",
    instructions="Summarize the site's status for the monitoring visit report: the visit, enrollment, data "
                 "quality, safety reporting, risk indicators and open actions. Neutral, factual tone; a flag is a "
                 "signal to review, never an accusation.",
    sections=(
        Section("Site and visit", (
            Line("This summary covers {site_name}, site {site_number} of protocol {protocol}, with data as of "
                 "{period_end}."),
            Line("The principal investigator is {investigator}; the site is {site_status}."),
            Line("The last monitoring visit ({last_visit_type}) took place on {last_visit_date}, {days_since_visit} "
                 "before the data cut, and raised {last_visit_findings|finding|findings}."),
        )),
        Section("Enrollment", (
            Line("The site has screened {screened|subject|subjects} and randomized {randomized|subject|subjects}."),
            Line("In the last {period_days} it randomized {randomized_period|subject|subjects}."),
            Line("Screen failures number {screen_failures|subject|subjects}, {screen_failure_pct} of those screened.",
                 when=positive("screened")),
            Line("So far {discontinued|subject has|subjects have} discontinued the study."),
        )),
        Section("Data quality", (
            Line("The site has {open_queries|open query|open queries}, of which {old_queries|query has|queries have} been open for more "
                 "than 30 days ({old_queries_pct} of open queries).", when=positive("open_queries")),
            Line("No query is open at the site.", when=zero("open_queries")),
            Line("Visits not entered in the eCRF more than 10 days after they took place: {late_entry_visits|visit|visits}."),
            Line("In the last {period_days} the site reported {deviations} protocol deviations, of which "
                 "{important_deviations} important deviations."),
        )),
        Section("Safety reporting", (
            Line("In the last {period_days} subjects at the site had {aes|adverse event|adverse events} with onset in the period, "
                 "including {saes|serious adverse event|serious adverse events}."),
            Line("The median time from onset to entry of those events was {ae_report_lag}."),
        )),
        Section("Risk indicators", (
            Line("At the latest monthly snapshot {flagged_kris} flagged indicators stand out at this site against "
                 "the study's other sites.", when=positive("flagged_kris")),
            Each("kri:", "{name}: flagged {flag}, observed over expected ratio {o_e}."),
            Line("No key risk indicator is flagged at this site at the latest snapshot.", when=zero("flagged_kris")),
        )),
        Section("Open actions", (
            Line("The site has {open_capas} open CAPAs, of which {overdue_capas|overdue CAPA|overdue CAPAs} are past their due "
                 "date.", when=positive("open_capas")),
            Line("No CAPA is open at the site.", when=zero("open_capas")),
        )),
    ),
)

SPONSOR_STATUS_UPDATE = DocumentSpec(
    key="sponsor_status_update",
    title="Sponsor status update",
    subject_kind="study_or_sponsor",
    facts_query=ops.status_update_facts,
    template_version="ssu-2",
    audience="the sponsor's study team",
    instructions="Write a concise status update for the sponsor: enrollment against target and plan with the "
                 "forecast, risk signals, data quality backlog and overdue actions, then what needs their attention.",
    review_pack=True,
    sections=(
        Section("Summary", (
            Line("This update covers {studies|study|studies} of {sponsor}, with {total_randomized|subject|subjects} randomized "
                 "in total as of {period_end}."),
            Line("This update reports data as of {period_end} and the last {period_days}.",
                 when=lambda f: "studies" not in f),
        )),
        Section("Enrollment", (
            Each("study:", "{name} ({status}): {randomized|subject randomized|subjects randomized} of {target|subject|subjects} targeted "
                           "({pct_target}), {randomized_change|subject|subjects} randomized in the period, "
                           "{active_sites|active site|active sites}; enrollment is {enrollment_status}."),
        )),
        Section("Forecast", (
            Each("study:", "{name}: the median forecast for the last patient in is {forecast_lpi} against "
                           "{planned_lpi} planned, a {p_on_time} probability of reaching the target on time."),
        ), empty="No enrollment forecast is stored for these studies."),
        Section("Risks and quality", (
            Each("study:", "{name}: {red_sites|site|sites} with a red KRI flag, {open_queries|open query|open queries} "
                           "({old_queries|query open|queries open} more than 30 days), {overdue_capas|overdue CAPA|overdue CAPAs}."),
            Each("study:", "{name}: the milestone '{late_milestone}' is {late_milestone_days} overdue."),
        )),
    ),
)

MEETING_SUMMARY = DocumentSpec(
    key="meeting_summary",
    title="Study risk review meeting summary",
    subject_kind="study",
    facts_query=ops.meeting_summary_facts,
    template_version="mtg-2",
    audience="the study team's risk review meeting",
    instructions="Summarize the study's current risks and open actions for the risk review meeting, so the "
                 "meeting can decide what to follow up. Do not record decisions that were not taken.",
    sections=(
        Section("Status", (
            Line("Protocol {protocol} has randomized {randomized|subject of|subjects of} {target|subject|subjects} targeted "
                 "({pct_target}) as of {period_end}; enrollment is {enrollment_status}."),
        )),
        Section("Current risks", (
            Line("At the latest snapshot {flagged_sites} flagged sites are among the sites with the strongest "
                 "signals.", when=positive("flagged_sites")),
            Each("site:", "{name}: {red} red flags and {amber} amber flags."),
            Line("In the last {period_days}, {quality_events} quality events were reported, of which "
                 "{critical_events} critical events and {major_events} major events."),
            Each("milestone:", "{name}, planned for {planned}, is {days_late} overdue."),
        )),
        Section("Open actions", (
            Line("{open_capas|CAPA is|CAPAs are} open, {overdue_capas} of them overdue; {closed_capas|CAPA was|CAPAs were} "
                 "closed in the period."),
            Each("capa:", "{name} ({root_cause}, owner {owner}) is due on {due}, {days_overdue} past that date.",
                 when=positive("days_overdue")),
            Each("capa:", "{name} ({root_cause}, owner {owner}) is due on {due}.",
                 when=lambda f: not positive("days_overdue")(f)),
        )),
        Section("For discussion", (
            Line("The meeting is asked to confirm owners and dates for the overdue actions and to decide which "
                 "flagged sites need a targeted visit."),
        ), required=False),
    ),
)

CAPA_DESCRIPTION = DocumentSpec(
    key="capa_description",
    title="CAPA description",
    subject_kind="capa",
    facts_query=quality.capa_facts,
    template_version="capa-2",
    audience="quality assurance and the CAPA owner",
    instructions="Describe the CAPA in four parts: the problem, its root cause, the actions and their dates, and "
                 "the effectiveness check. Quote the recorded descriptions; add no cause or action not in the facts.",
    sections=(
        Section("Problem", (
            Line("{capa} addresses a {event_severity} quality event in {event_category} reported on {event_reported} "
                 "for protocol {protocol}."),
            Line("Site: {site}."),
            Line("The event was recorded as: \"{event_description}\"."),
        )),
        Section("Root cause", (
            Line("The root cause was categorized as {root_cause}."),
        )),
        Section("Actions", (
            Line("The CAPA was opened on {opened}, {days_to_open} after the event was reported, with the owner "
                 "{owner}."),
            Line("Recorded problem and action: \"{description}\"."),
            Line("It was due on {original_due}; after {extensions|extension|extensions} it is due on {current_due}.",
                 when=positive("extensions")),
            Line("It is due on {current_due}, with no extension.", when=zero("extensions")),
            Line("The CAPA is {state} after {days_open}, {days_overdue} past its due date.",
                 when=positive("days_overdue")),
            Line("The CAPA is {state} after {days_open}.",
                 when=lambda f: equals("state", "open")(f) and not positive("days_overdue")(f)),
            Line("It was closed on {closed}, {days_open} after it was opened."),
        )),
        Section("Effectiveness check", (
            Line("The effectiveness check on {check_date} found the actions {check_result}."),
        ), empty="No effectiveness check has been recorded yet."),
    ),
)

FEASIBILITY_SUMMARY = DocumentSpec(
    key="feasibility_summary",
    title="Feasibility summary",
    subject_kind="area",
    facts_query=quality.feasibility_facts,
    template_version="feas-3",
    audience="the proposal team",
    instructions="Summarize the feasibility evidence for a new study in this therapeutic area: registry "
                 "benchmarks and the institutions whose history suggests they would enroll. Present estimates with "
                 "their intervals; do not promise enrollment.",
    sections=(
        Section("Benchmarks", (
            Line("The registry holds {trials|trial|trials} in {area}."),
            Line("Of those, {completed_pct} completed, and {ended|trial has|trials have} ended (completed or terminated)."),
            Line("Trials that ended enrolled a median of {median_enrollment|participant|participants}, at a median of "
                 "{median_sites|site|sites}."),
            Line("Half completed within {median_months} of their start (Kaplan-Meier: trials still running count "
                 "as censored, never at their anticipated dates)."),
            Line("The portfolio has run {own_studies|study|studies} in the area."),
        )),
        Section("Candidate institutions", (
            Line("Ranked by their shrunk enrollment rate in the area, {ranked|institution leads|institutions lead}:",
                 when=positive("ranked")),
            Each("institution:", "{name} ({country}): {studies|study|studies}, {randomized|subject randomized|subjects randomized}, an "
                                 "expected {rate} (80% credible interval {lower} to {upper})."),
        ), empty="No institution of yours has a history in this area."),
        Section("Caveats", (
            Line("Rates are shrunk toward the area's mean, so institutions with little history rank near it; "
                 "registry benchmarks describe other sponsors' trials."),
        ), required=False),
    ),
)

RECRUITMENT_NOTICE = DocumentSpec(
    key="recruitment_notice",
    title="Recruitment notice",
    subject_kind="site",
    facts_query=patients.recruitment_notice_facts,
    template_version="notice-2",
    audience="people who might take part (patient-facing; for ethics committee review before any use)",
    instructions="Write a short, plain-language notice inviting people to learn about the study, at about an 8th "
                 "grade reading level: short sentences, everyday words. Say what the study is about, what taking "
                 "part involves, who may be able to join and whom to contact. Promise no benefit; put no pressure "
                 "on anyone; say that taking part is a free choice. Do not give ages as eligibility limits: say "
                 "they are the ages of people who joined so far.",
    patient_facing=True,
    max_grade=DEFAULT_MAX_GRADE,
    preface=(f"*{ETHICS_MARK}. Not for use until approved.*",),
    sections=(
        Section("What is this study about?", (
            Line("We are doing a research study about {condition}."),
            Line("We want to learn more about a study medicine. We do not know if it will work for you."),
        )),
        Section("What would I do?", (
            Line("You would come to {visits|study visit|study visits}."),
            Line("The visits are about {visit_weeks} apart."),
            Line("The study medicine part lasts about {treatment_months}."),
            Line("After that, we check on you for {follow_up_days}."),
        )),
        Section("Who can join?", (
            Line("People with {condition} may be able to join."),
            Line("So far, {sexes} aged {min_age} to {max_age} have joined."),
            Line("The study team will check if the study is right for you."),
        )),
        Section("Your choice", (
            Line("Taking part is your choice. You can say no. You can stop at any time. Your care will not change "
                 "if you say no."),
        )),
        Section("Who do I contact?", (
            Line("Please contact the study team at {site_name}."),
            Line("The study doctor is {investigator}."),
        )),
    ),
)

CSR_AE_OVERVIEW = DocumentSpec(
    key="csr_ae_overview",
    title="Clinical study report: overview of adverse events",
    subject_kind="study",
    facts_query=patients.ae_overview_facts,
    template_version="csr-ae-2",
    audience="medical writers and the study's safety team",
    instructions="Write the adverse-event overview section of the clinical study report (ICH E3 12.2): subjects "
                 "with adverse events, by system organ class and by severity, serious adverse events and "
                 "discontinuations due to adverse events. Use subjects (not events) as the unit unless a fact says "
                 "events. Report arm-level figures only if arm facts are given.",
    sections=(
        Section("Overview", (
            Line("Of {randomized|subject randomized|subjects randomized} in {protocol}, {with_ae|subject|subjects} ({with_ae_pct}) had at least "
                 "one adverse event, with {events} adverse events reported in total (data as of {period_end})."),
        )),
        Section("By system organ class", (
            Each("soc:", "{name}: {subjects|subject|subjects} ({pct}), {events|event|events}."),
        ), empty="No adverse event has been reported."),
        Section("By severity", (
            Each("grade:", "{name} as the highest grade: {subjects|subject|subjects} ({pct})."),
            Line("In total {with_grade3|subject|subjects} ({with_grade3_pct}) had an adverse event of grade 3 or higher."),
        )),
        Section("Serious adverse events", (
            Line("{with_sae|subject|subjects} ({with_sae_pct}) had a serious adverse event; {sae_events|serious adverse event was|serious adverse events were} "
                 "reported."),
        )),
        Section("Discontinuations due to adverse events", (
            Line("{disc_ae|subject|subjects} ({disc_ae_pct}) discontinued the study because of an adverse event."),
        )),
        Section("By treatment group", (
            Each("arm:", "{name}: {randomized|subject randomized|subjects randomized}; {with_ae|subject|subjects} ({with_ae_pct}) with at least "
                         "one AE, {with_sae|subject|subjects} ({with_sae_pct}) with a serious AE, {disc_ae|subject|subjects} "
                         "discontinued because of an AE."),
        ), required=False,
            empty="Figures by treatment group are not included: this draft was made for a blinded role."),
    ),
)

DATA_QUALITY_FINDINGS = DocumentSpec(
    key="data_quality_findings",
    title="Data-quality findings",
    subject_kind="study",
    facts_query=ops.data_quality_facts,
    template_version="dq-2",
    audience="data management and the study team",
    instructions="Summarize the study's data-quality findings: query backlog and aging, turnaround, data-entry "
                 "timeliness, source-data verification and sites whose data look atypical. A signal is something "
                 "to review, never an accusation.",
    sections=(
        Section("Queries", (
            Line("{open_queries|query is|queries are} open: {q_0_7|query|queries} aged 0-7 days, {q_8_30|query|queries} aged 8-30 "
                 "days, {q_31_90|query|queries} aged 31-90 days and {q_over_90|query|queries} aged over 90 days."),
            Line("Open queries aged over 30 days make up {old_pct} of open queries.", when=positive("open_queries")),
            Line("In the last {period_days}, {queries_period|query was|queries were} raised, {queries_per_100} entered."),
            Line("Queries closed in the period took a median of {days_to_close} to close."),
        )),
        Section("Data entry and verification", (
            Line("Visits in the period were entered a median of {entry_lag} after they took place."),
            Line("Visits not entered more than 10 days after they took place: {late_entry_visits|visit|visits}."),
            Line("Source-data verification covers {sdv_pct} of entered data points, leaving {sdv_backlog} data points "
                 "to verify; {changed_pct} of data points were changed after entry."),
        )),
        Section("Unusual patterns", (
            Line("Of {tested_sites|site|sites} with enough data for the atypical-data tests, {atypical_sites|site looks|sites look} "
                 "atypical against their study's other sites and are to be reviewed."),
        )),
    ),
)

CATALOGUE: tuple[DocumentSpec, ...] = (MONITORING_VISIT_REPORT, SPONSOR_STATUS_UPDATE, MEETING_SUMMARY,
                                       CAPA_DESCRIPTION, FEASIBILITY_SUMMARY, RECRUITMENT_NOTICE, CSR_AE_OVERVIEW,
                                       DATA_QUALITY_FINDINGS)
CATALOGUE_BY_KEY = {spec.key: spec for spec in CATALOGUE}
