"""The warehouse schema: one declarative definition for DDL, the data dictionary and import contracts.

Every table is a :class:`Table` of :class:`Column` specs. The DDL that builds the warehouse, the
data dictionary in ``data/DATA_DICTIONARY.md`` and the operational-import contract are all generated
from these specs, so they cannot drift apart.

Namespaces:

* ``main``: trial data and reference data that pages read (always through the access scope's
  relations, see :mod:`analytics.core.scope`).
* ``restricted``: unblinding data (treatment arms, exposures), in its own file beside the
  warehouse; blinded readers never attach it.
* ``derived``: results computed from the data (KRI scores, atypical-data tests, ...), refreshed by
  the derived-results registry (:mod:`analytics.core.derived`) when data or code change.
* ``truth``: labelled anomalies injected by the synthetic generator; pages never read it.
* ``meta``: schema versions, warehouse facts (as-of date, preset, seed), data and result versions.

Each table also declares how the access scope narrows it (:attr:`Table.access`).

Text limits: every VARCHAR column has a maximum length (:attr:`Column.text_limit`): identifiers
(:attr:`Column.is_identifier`, the ``*_id`` columns) at most :data:`ID_MAX_LENGTH` characters and
free of control characters and path separators; other text :data:`TEXT_MAX_LENGTH` unless the
column declares a longer ``max_length`` (eligibility criteria, outcome lists). Importers refuse
values beyond them, naming file, row and column.
"""

from __future__ import annotations

from dataclasses import dataclass, field

SCHEMA_VERSION = 12

ID_MAX_LENGTH = 64  # identifiers: study, site, subject, sponsor keys
TEXT_MAX_LENGTH = 4_000  # ordinary text: names, terms, descriptions
LONG_TEXT_MAX_LENGTH = 100_000  # registry free text: eligibility criteria, outcome lists, conditions
# Identifier columns that are free-form sponsor numbering rather than keys (may contain "/").
NOT_IDENTIFIERS = frozenset({"protocol_id"})


@dataclass(frozen=True)
class Column:
    """One column: its DuckDB type, whether a value is required, meaning and allowed values."""

    name: str
    type: str
    description: str
    required: bool = False
    allowed: tuple[str, ...] = ()
    primary_key: bool = False
    max_length: int | None = None  # VARCHAR only; default from the column kind (see text_limit)

    @property
    def is_identifier(self) -> bool:
        """A key-like text column (``*_id``): no control characters or path separators allowed."""
        return self.type == "VARCHAR" and self.name.endswith("_id") and self.name not in NOT_IDENTIFIERS

    @property
    def text_limit(self) -> int | None:
        """Most characters a value may have (None for non-text columns)."""
        if self.type != "VARCHAR":
            return None
        if self.max_length is not None:
            return self.max_length
        return ID_MAX_LENGTH if self.is_identifier or self.name in NOT_IDENTIFIERS else TEXT_MAX_LENGTH


@dataclass(frozen=True)
class Table:
    """One warehouse table: its namespace, name, purpose and columns."""

    name: str
    description: str
    columns: tuple[Column, ...]
    schema: str = "main"
    importable: bool = False  # part of the operational CSV/Parquet contract
    indexes: tuple[str, ...] = field(default=())
    access_rule: str = ""  # how the access scope narrows it; empty: derived from its columns (see access)

    @property
    def qualified_name(self) -> str:
        return f"{self.schema}.{self.name}"

    @property
    def access(self) -> str:
        """How the access scope narrows this table (see :mod:`analytics.core.scope`).

        ``hidden`` (never readable through the query layer), ``reference`` (not trial data),
        ``site`` (by study-site), ``site_or_study`` (site rows by site, study-level rows by study),
        ``subject`` (by the subject's site), ``study``, or one of the scoping tables' own rules.
        """
        if self.access_rule:
            return self.access_rule
        if self.schema in ("meta", "truth"):
            return "hidden"
        names = {c.name: c for c in self.columns}
        if "study_site_id" in names:
            site = names["study_site_id"]
            return "site" if site.required or site.primary_key else "site_or_study"
        if "subject_id" in names:
            return "subject"
        if "study_id" in names:
            return "study"
        return "reference"

    @property
    def primary_key(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns if c.primary_key)

    def column(self, name: str) -> Column:
        for col in self.columns:
            if col.name == name:
                return col
        raise KeyError(f"{self.qualified_name} has no column {name!r}")

    def ddl(self) -> str:
        """CREATE TABLE statement; allowed values become CHECK constraints."""
        parts = []
        for col in self.columns:
            spec = f"{col.name} {col.type}"
            if col.required or col.primary_key:
                spec += " NOT NULL"
            if col.allowed:
                values = ", ".join("'" + v.replace("'", "''") + "'" for v in col.allowed)
                spec += f" CHECK ({col.name} IN ({values}))"
            parts.append(spec)
        if self.primary_key:
            parts.append(f"PRIMARY KEY ({', '.join(self.primary_key)})")
        body = ",\n    ".join(parts)
        return f"CREATE TABLE IF NOT EXISTS {self.qualified_name} (\n    {body}\n)"


def _c(name: str, type_: str, description: str, **kw) -> Column:
    return Column(name, type_, description, **kw)


PHASES = ("Phase 1", "Phase 2", "Phase 3", "Phase 4")
STUDY_STATUSES = ("Planned", "Start-up", "Enrolling", "Follow-up", "Closed")
STUDY_SITE_STATUSES = ("Planned", "Active", "Closed", "Never activated")
SUBJECT_STATUSES = ("Screening", "Screen failure", "On study", "Completed", "Discontinued")
VISIT_STATUSES = ("Completed", "Missed")
QUERY_STATUSES = ("Open", "Answered", "Closed")
MEASUREMENT_DOMAINS = ("LB", "VS")
MONITORING_VISIT_TYPES = ("SIV", "IMV", "Remote", "COV")
CAPA_EFFECTIVENESS = ("Effective", "Not effective")
DATE_PRECISIONS = ("year", "month", "day")
REGISTRY_SEXES = ("ALL", "FEMALE", "MALE")
_LONG = LONG_TEXT_MAX_LENGTH
# SUPP-- qualifiers joined to their parent records (main, and restricted for treatment-revealing ones).
_QUALIFIER_COLUMNS = (
    _c("study_id", "VARCHAR", "Study.", primary_key=True),
    _c("subject_id", "VARCHAR", "Subject.", primary_key=True),
    _c("domain", "VARCHAR", "Parent domain (RDOMAIN), e.g. AE.", primary_key=True),
    _c("record_key", "VARCHAR", "Parent record (IDVAR=IDVARVAL), empty for subject level.", primary_key=True),
    _c("qualifier", "VARCHAR", "Qualifier name (QNAM).", primary_key=True),
    _c("label", "VARCHAR", "Qualifier label (QLABEL)."),
    _c("value", "VARCHAR", "Qualifier value (QVAL)."),
)
# CDISC SDTM controlled terminology for DM.RACE (C74457) and DM.ETHNIC (C66790).
RACES = (
    "AMERICAN INDIAN OR ALASKA NATIVE", "ASIAN", "BLACK OR AFRICAN AMERICAN",
    "NATIVE HAWAIIAN OR OTHER PACIFIC ISLANDER", "WHITE", "MULTIPLE", "OTHER", "NOT REPORTED", "UNKNOWN",
)
ETHNICITIES = ("HISPANIC OR LATINO", "NOT HISPANIC OR LATINO", "NOT REPORTED", "UNKNOWN")
SEXES = ("F", "M", "U")
# Age groups of enrollment diversity plans (years at consent; FDA reporting of older adults).
AGE_GROUPS = ("18-44", "45-64", "65-74", "75+")
DEMOGRAPHIC_DIMENSIONS = ("sex", "age_group", "race", "ethnicity")
ENROLLMENT_SERIES = ("actual", "plan", "poisson_gamma", "linear", "prophet")
ENROLLMENT_MILESTONES = ("Last patient in", "Last patient last visit", "Database lock")

TABLES: tuple[Table, ...] = (
    Table(
        "sponsors",
        "Pharmaceutical or biotech companies that contract the CRO.",
        (
            _c("sponsor_id", "VARCHAR", "Stable sponsor key, e.g. SP01.", primary_key=True),
            _c("name", "VARCHAR", "Sponsor display name.", required=True),
        ),
        importable=True,
        access_rule="sponsor",
    ),
    Table(
        "studies",
        "Clinical studies run by the CRO, one row per protocol.",
        (
            _c("study_id", "VARCHAR", "Stable study key.", primary_key=True),
            _c("protocol_id", "VARCHAR", "Sponsor protocol number.", required=True),
            _c("sponsor_id", "VARCHAR", "Owning sponsor (sponsors.sponsor_id).", required=True),
            _c("title", "VARCHAR", "Short study title."),
            _c("phase", "VARCHAR", "Development phase.", allowed=PHASES),
            _c("therapeutic_area", "VARCHAR", "Therapeutic area, e.g. Oncology."),
            _c("indication", "VARCHAR", "Disease or condition studied."),
            _c("target_enrollment", "INTEGER", "Randomized subjects planned (count)."),
            _c("planned_fpi", "DATE", "Planned first patient in (first randomization)."),
            _c("planned_lpi", "DATE", "Planned last patient in (target enrollment reached)."),
            _c("status", "VARCHAR", "Study status at the as-of date.", allowed=STUDY_STATUSES),
            _c("blinded", "BOOLEAN", "True when treatment assignment is masked.", required=True),
            _c("visit_interval_days", "INTEGER", "Days between scheduled treatment visits."),
            _c("planned_visits", "INTEGER", "Scheduled visits per subject after randomization."),
            _c("treatment_duration_days", "INTEGER", "Planned treatment period per subject (days, randomization to "
               "the last treatment visit)."),
            _c("follow_up_days", "INTEGER", "Planned follow-up after the last treatment visit (days) before the "
               "subject's last visit."),
            _c("data_source", "VARCHAR", "Where the study's data came from: synthetic, sdtm or tables."),
        ),
        importable=True,
        access_rule="studies",
    ),
    Table(
        "countries",
        "Countries where sites operate (ISO 3166-1 alpha-2).",
        (
            _c("country_code", "VARCHAR", "ISO 3166-1 alpha-2 code.", primary_key=True),
            _c("name", "VARCHAR", "Country name.", required=True),
            _c("region", "VARCHAR", "Geographic region, e.g. Europe."),
        ),
    ),
    Table(
        "sites",
        "Investigator institutions; one institution may run many studies.",
        (
            _c("site_id", "VARCHAR", "Stable institution key.", primary_key=True),
            _c("name", "VARCHAR", "Institution name.", required=True),
            _c("country_code", "VARCHAR", "Country (countries.country_code).", required=True),
            _c("city", "VARCHAR", "City."),
        ),
        importable=True,
        access_rule="institution",
    ),
    Table(
        "study_sites",
        "A site's participation in one study (the unit monitors triage).",
        (
            _c("study_site_id", "VARCHAR", "Stable key, unique across studies.", primary_key=True),
            _c("study_id", "VARCHAR", "Study (studies.study_id).", required=True),
            _c("site_id", "VARCHAR", "Institution (sites.site_id).", required=True),
            _c("site_number", "VARCHAR", "Site number within the study, as on the eCRF.", required=True),
            _c("investigator", "VARCHAR", "Principal investigator."),
            _c("status", "VARCHAR", "Site status at the as-of date.", allowed=STUDY_SITE_STATUSES),
            _c("selection_date", "DATE", "Site selected: start of site start-up (contract, ethics, initiation)."),
            _c("planned_activation_date", "DATE", "Planned site initiation / activation."),
            _c("activation_date", "DATE", "Actual activation; empty if never activated."),
            _c("planned_enrollment", "INTEGER", "Randomized subjects the site committed to (count)."),
        ),
        importable=True,
        access_rule="study_sites",
    ),
    Table(
        "subjects",
        "Screened subjects (including screen failures).",
        (
            _c("subject_id", "VARCHAR", "Unique subject key (study-prefixed USUBJID).", primary_key=True),
            _c("study_id", "VARCHAR", "Study.", required=True),
            _c("study_site_id", "VARCHAR", "Study-site.", required=True),
            _c("sex", "VARCHAR", "Sex: F, M or U.", allowed=SEXES),
            _c("age", "INTEGER", "Age at consent (years)."),
            _c("race", "VARCHAR", "Race (SDTM DM.RACE controlled terminology).", allowed=RACES),
            _c("ethnicity", "VARCHAR", "Ethnicity (SDTM DM.ETHNIC controlled terminology).", allowed=ETHNICITIES),
            _c("screening_date", "DATE", "Screening visit date."),
            _c("consent_date", "DATE", "Informed consent signed."),
            _c("randomization_date", "DATE", "Randomization; empty for screen failures."),
            _c("screen_failure_reason", "VARCHAR", "Why the subject failed screening."),
            _c("discontinuation_date", "DATE", "Early study discontinuation date."),
            _c("discontinuation_reason", "VARCHAR", "Reason for early discontinuation."),
            _c("status", "VARCHAR", "Subject status at the as-of date.", allowed=SUBJECT_STATUSES),
        ),
        importable=True,
    ),
    Table(
        "treatment_assignments",
        "Randomized treatment arm. Restricted: unblinded roles only.",
        (
            _c("subject_id", "VARCHAR", "Subject.", primary_key=True),
            _c("study_id", "VARCHAR", "Study.", required=True),
            _c("arm", "VARCHAR", "Treatment arm.", required=True),
            _c("arm_code", "VARCHAR", "Planned arm code (SDTM DM.ARMCD)."),
            _c("actual_arm", "VARCHAR", "Actual arm (SDTM DM.ACTARM)."),
            _c("actual_arm_code", "VARCHAR", "Actual arm code (SDTM DM.ACTARMCD)."),
        ),
        schema="restricted",
    ),
    Table(
        "visits",
        "Subject visits: schedule, window, actual date and eCRF entry.",
        (
            _c("visit_id", "BIGINT", "Unique visit key.", primary_key=True),
            _c("subject_id", "VARCHAR", "Subject.", required=True),
            _c("study_id", "VARCHAR", "Study.", required=True),
            _c("study_site_id", "VARCHAR", "Study-site.", required=True),
            _c("visit_number", "DOUBLE", "Visit number (SDTM VISITNUM); 0 is screening."),
            _c("visit_name", "VARCHAR", "Visit label."),
            _c("scheduled_date", "DATE", "Protocol-scheduled date."),
            _c("window_days", "INTEGER", "Allowed deviation from the scheduled date (days, +/-)."),
            _c("actual_date", "DATE", "Date the visit happened; empty when missed."),
            _c("entry_date", "DATE", "Date the visit's eCRF was first entered."),
            _c("status", "VARCHAR", "Completed or Missed.", allowed=VISIT_STATUSES),
        ),
        importable=True,
    ),
    Table(
        "crf_pages",
        "eCRF pages with their data-point counts (entered, changed, source-data verified).",
        (
            _c("page_id", "BIGINT", "Unique page key.", primary_key=True),
            _c("visit_id", "BIGINT", "Visit.", required=True),
            _c("study_id", "VARCHAR", "Study.", required=True),
            _c("study_site_id", "VARCHAR", "Study-site.", required=True),
            _c("subject_id", "VARCHAR", "Subject.", required=True),
            _c("form", "VARCHAR", "eCRF form name."),
            _c("entry_date", "DATE", "Date first entered."),
            _c("data_points", "INTEGER", "Data points on the page (count)."),
            _c("changed_points", "INTEGER", "Data points changed at least once after entry (count)."),
            _c("sdv_points", "INTEGER", "Data points source-data verified (count)."),
            _c("sdv_date", "DATE", "Date SDV of the page was completed."),
        ),
    ),
    Table(
        "queries",
        "Data queries raised on eCRF pages.",
        (
            _c("query_id", "BIGINT", "Unique query key.", primary_key=True),
            _c("study_id", "VARCHAR", "Study.", required=True),
            _c("study_site_id", "VARCHAR", "Study-site.", required=True),
            _c("subject_id", "VARCHAR", "Subject."),
            _c("page_id", "BIGINT", "Page the query was raised on."),
            _c("origin", "VARCHAR", "Automatic edit check or manual review.", allowed=("Edit check", "Manual")),
            _c("opened_date", "DATE", "Date raised.", required=True),
            _c("answered_date", "DATE", "Date the site answered."),
            _c("closed_date", "DATE", "Date closed by data management."),
            _c("status", "VARCHAR", "Status at the as-of date.", allowed=QUERY_STATUSES),
        ),
        importable=True,
    ),
    Table(
        "adverse_events",
        "Adverse events as reported in the EDC.",
        (
            _c("ae_id", "BIGINT", "Unique AE key.", primary_key=True),
            _c("study_id", "VARCHAR", "Study.", required=True),
            _c("study_site_id", "VARCHAR", "Study-site.", required=True),
            _c("subject_id", "VARCHAR", "Subject.", required=True),
            _c("term", "VARCHAR", "Preferred term."),
            _c("body_system", "VARCHAR", "System organ class."),
            _c("serious", "BOOLEAN", "Serious adverse event."),
            _c("grade", "INTEGER", "Severity grade 1-5 (CTCAE)."),
            _c("onset_date", "DATE", "Onset date; a partial onset is imputed (see onset_date_imputed)."),
            _c("onset_date_text", "VARCHAR", "Onset as reported (ISO 8601, may be partial)."),
            _c("end_date", "DATE", "Resolution date."),
            _c("report_date", "DATE", "Date entered in the EDC."),
            _c("onset_date_precision", "VARCHAR", "Precision of the reported onset.", allowed=DATE_PRECISIONS),
            _c("end_date_text", "VARCHAR", "Resolution as reported (ISO 8601, may be partial)."),
            _c("severity", "VARCHAR", "Reported severity (SDTM AESEV), e.g. MILD, MODERATE, SEVERE."),
            _c("treatment_emergent", "BOOLEAN", "Treatment-emergent flag (SDTM SUPPAE AETRTEM)."),
            _c("onset_date_imputed", "BOOLEAN", "True when onset_date was imputed from a partial onset_date_text: "
               "first day of the known month or year, raised to the first dose (else consent) date when that "
               "falls in the known period and not after a known end date."),
            _c("outcome", "VARCHAR", "Outcome (SDTM AEOUT), e.g. RECOVERED/RESOLVED, NOT RECOVERED/NOT RESOLVED, FATAL."),
            _c("serious_criteria", "VARCHAR", "Seriousness criteria met, comma separated (SDTM AESDTH, AESLIFE, "
               "AESHOSP, AESDISAB, AESCONG, AESMIE): death, life-threatening, hospitalization, disability, "
               "congenital anomaly, medically important. Empty when none is recorded."),
        ),
    ),
    Table(
        "protocol_deviations",
        "Protocol deviations with category and importance.",
        (
            _c("deviation_id", "BIGINT", "Unique deviation key.", primary_key=True),
            _c("study_id", "VARCHAR", "Study.", required=True),
            _c("study_site_id", "VARCHAR", "Study-site.", required=True),
            _c("subject_id", "VARCHAR", "Subject, if subject-level."),
            _c("category", "VARCHAR", "Deviation category."),
            _c("important", "BOOLEAN", "Important (ICH E3) deviation."),
            _c("description", "VARCHAR", "Free-text description."),
            _c("occurred_date", "DATE", "Date of the deviation."),
            _c("reported_date", "DATE", "Date it was recorded."),
        ),
        importable=True,
    ),
    Table(
        "measurements",
        "Lab (LB) and vital-sign (VS) results with units, reference ranges and grades.",
        (
            _c("measurement_id", "BIGINT", "Unique result key.", primary_key=True),
            _c("study_id", "VARCHAR", "Study.", required=True),
            _c("study_site_id", "VARCHAR", "Study-site.", required=True),
            _c("subject_id", "VARCHAR", "Subject.", required=True),
            _c("visit_id", "BIGINT", "Visit."),
            _c("domain", "VARCHAR", "LB or VS.", allowed=MEASUREMENT_DOMAINS),
            _c("test_code", "VARCHAR", "Test short code (LBTESTCD / VSTESTCD)."),
            _c("value", "DOUBLE", "Numeric result in the unit given."),
            _c("unit", "VARCHAR", "Unit of the result."),
            _c("ref_low", "DOUBLE", "Lower limit of normal."),
            _c("ref_high", "DOUBLE", "Upper limit of normal."),
            _c("grade", "INTEGER", "Toxicity grade 0-4 (labs only)."),
            _c("collected_date", "DATE", "Collection date."),
            _c("normal_range_flag", "VARCHAR", "Reference-range indicator as reported (LBNRIND), e.g. HIGH."),
            _c("test_name", "VARCHAR", "Test name (LBTEST / VSTEST)."),
            _c("time_point", "VARCHAR", "Position and planned time point (SDTM --POS, --TPT) when a visit has several "
               "results of one test, e.g. SUPINE / AFTER LYING DOWN FOR 5 MINUTES."),
        ),
    ),
    Table(
        "monitoring_visits",
        "CRA monitoring visits (site initiation, interim, remote, close-out).",
        (
            _c("monitoring_visit_id", "BIGINT", "Unique key.", primary_key=True),
            _c("study_id", "VARCHAR", "Study.", required=True),
            _c("study_site_id", "VARCHAR", "Study-site.", required=True),
            _c("visit_type", "VARCHAR", "SIV, IMV, Remote or COV.", allowed=MONITORING_VISIT_TYPES),
            _c("planned_date", "DATE", "Planned date."),
            _c("actual_date", "DATE", "Date performed."),
            _c("report_date", "DATE", "Monitoring report finalized."),
            _c("findings", "INTEGER", "Findings raised (count)."),
        ),
        importable=True,
    ),
    Table(
        "quality_events",
        "Quality events (issues found in audits, monitoring or by sites).",
        (
            _c("quality_event_id", "BIGINT", "Unique key.", primary_key=True),
            _c("study_id", "VARCHAR", "Study.", required=True),
            _c("study_site_id", "VARCHAR", "Study-site, if site-level."),
            _c("category", "VARCHAR", "Quality event category."),
            _c("severity", "VARCHAR", "Minor, Major or Critical.", allowed=("Minor", "Major", "Critical")),
            _c("description", "VARCHAR", "Free-text description."),
            _c("reported_date", "DATE", "Date reported.", required=True),
        ),
        importable=True,
    ),
    Table(
        "capas",
        "Corrective and preventive actions.",
        (
            _c("capa_id", "BIGINT", "Unique key.", primary_key=True),
            _c("study_id", "VARCHAR", "Study.", required=True),
            _c("study_site_id", "VARCHAR", "Study-site, if site-level."),
            _c("quality_event_id", "BIGINT", "Triggering quality event."),
            _c("root_cause_category", "VARCHAR", "Root-cause category."),
            _c("description", "VARCHAR", "Free-text description of the problem and action."),
            _c("owner", "VARCHAR", "Accountable person."),
            _c("opened_date", "DATE", "Date opened.", required=True),
            _c("original_due_date", "DATE", "Due date when opened."),
            _c("current_due_date", "DATE", "Due date after extensions."),
            _c("extension_count", "INTEGER", "Times the due date was extended."),
            _c("closed_date", "DATE", "Date closed."),
            _c("effectiveness_check_date", "DATE", "Date of the effectiveness check."),
            _c("effectiveness_result", "VARCHAR", "Outcome of the check.", allowed=CAPA_EFFECTIVENESS),
        ),
        importable=True,
    ),
    Table(
        "milestones",
        "Study milestones, planned and actual.",
        (
            _c("study_id", "VARCHAR", "Study.", primary_key=True),
            _c("milestone", "VARCHAR", "Milestone name.", primary_key=True),
            _c("sequence", "INTEGER", "Order of the milestone in the study plan."),
            _c("planned_date", "DATE", "Planned date."),
            _c("actual_date", "DATE", "Actual date, once reached."),
        ),
        importable=True,
    ),
    Table(
        "enrollment_targets",
        "The study's enrollment diversity plan: target share of randomized subjects per demographic group.",
        (
            _c("study_id", "VARCHAR", "Study.", primary_key=True),
            _c("dimension", "VARCHAR", "Demographic dimension.", primary_key=True, allowed=DEMOGRAPHIC_DIMENSIONS),
            _c("category", "VARCHAR", "Group within the dimension (sex code, age group, CDISC race or ethnicity).",
               primary_key=True),
            _c("target_share", "DOUBLE", "Planned share of randomized subjects in the group (0-1).", required=True),
        ),
        importable=True,
    ),
    Table(
        "condition_population",
        "Reference: demographic make-up of the population with a condition, per country (not trial data).",
        (
            _c("indication", "VARCHAR", "Condition, as in studies.indication.", primary_key=True),
            _c("country_code", "VARCHAR", "Country (countries.country_code).", primary_key=True),
            _c("dimension", "VARCHAR", "Demographic dimension.", primary_key=True, allowed=DEMOGRAPHIC_DIMENSIONS),
            _c("category", "VARCHAR", "Group within the dimension.", primary_key=True),
            _c("population_share", "DOUBLE", "Share of the condition's population in the group (0-1).", required=True),
            _c("source", "VARCHAR", "Where the figure comes from."),
        ),
    ),
    Table(
        "historical_trials",
        "Completed and ongoing trials for feasibility benchmarks (ClinicalTrials.gov-shaped).",
        (
            _c("nct_id", "VARCHAR", "ClinicalTrials.gov NCT number.", primary_key=True),
            _c("title", "VARCHAR", "Brief title."),
            _c("status", "VARCHAR", "Overall status, e.g. COMPLETED (classic export wording normalized)."),
            _c("phase", "VARCHAR", "Phase(s): EARLY_PHASE1, PHASE1..PHASE4 or NA, several separated by |."),
            _c("conditions", "VARCHAR", "Conditions, separated by |.", max_length=_LONG),
            _c("therapeutic_area", "VARCHAR", "Therapeutic area (derived)."),
            _c("enrollment", "INTEGER", "Actual or anticipated enrollment (count)."),
            _c("start_date", "DATE", "Study start."),
            _c("start_date_precision", "VARCHAR", "day or month.", allowed=("day", "month")),
            _c("completion_date", "DATE", "Completion."),
            _c("completion_date_precision", "VARCHAR", "day or month.", allowed=("day", "month")),
            _c("n_sites", "INTEGER", "Number of locations."),
            _c("countries", "VARCHAR", "Countries, separated by |.", max_length=_LONG),
            _c("data_source", "VARCHAR", "synthetic or ctgov."),
            _c("study_type", "VARCHAR", "INTERVENTIONAL, OBSERVATIONAL or EXPANDED_ACCESS."),
            _c("primary_completion_date", "DATE", "Primary completion."),
            _c("primary_completion_date_precision", "VARCHAR", "day or month.", allowed=("day", "month")),
            _c("sponsor", "VARCHAR", "Lead sponsor."),
            _c("sponsor_class", "VARCHAR", "Lead sponsor class (INDUSTRY, NIH, FED, OTHER_GOV, NETWORK, OTHER, ...); "
               "classic CSV exports list every funder's class, separated by |."),
            _c("interventions", "VARCHAR", "Interventions (TYPE: name), separated by |.", max_length=_LONG),
            _c("sex", "VARCHAR", "Sexes eligible.", allowed=REGISTRY_SEXES),
            _c("min_age_years", "DOUBLE", "Minimum eligible age in years (months, weeks and days converted)."),
            _c("max_age_years", "DOUBLE", "Maximum eligible age in years."),
            _c("age_groups", "VARCHAR", "Age groups eligible: CHILD, ADULT, OLDER_ADULT, separated by |."),
            _c("healthy_volunteers", "BOOLEAN", "Accepts healthy volunteers."),
            _c("eligibility_criteria", "VARCHAR", "Inclusion and exclusion criteria (free text).", max_length=_LONG),
            _c("primary_outcome", "VARCHAR", "Primary outcome measure(s), separated by |.", max_length=_LONG),
            _c("secondary_outcome", "VARCHAR", "Secondary outcome measure(s), separated by |.", max_length=_LONG),
            _c("arm_count", "INTEGER", "Number of arms (arm groups) the record lists (JSON records only; count)."),
            _c("last_update_date", "DATE", "When the registry record was last updated (\"Last Update Posted\"): "
               "what it says is known up to then only, so a still-running trial is censored there."),
            _c("last_update_date_precision", "VARCHAR", "day or month.", allowed=("day", "month")),
            _c("export_file", "VARCHAR", "The export the record was last loaded from: its file name (as in "
               "data_provenance), or 'generated (preset, seed)' for a generated history; empty for records loaded "
               "before exports were recorded."),
            _c("export_sha256", "VARCHAR", "SHA-256 checksum of that export file (tells apart two downloads of the "
               "same name; empty for a generated history)."),
            _c("export_as_of", "DATE", "What that export knew up to, the record's own as-of date: ClinicalTrials.gov "
               "exports carry no download date, so the latest \"Last Update Posted\" of its records, or for an export "
               "without that column the latest start of a started trial; the generation as-of date of a generated "
               "history. A running trial is censored no later than this; empty: the warehouse's as-of date."),
        ),
    ),
    Table(
        "historical_trial_sites",
        "Locations (sites) of historical trials, one row per site as the registry lists them.",
        (
            _c("nct_id", "VARCHAR", "Trial (historical_trials.nct_id).", primary_key=True),
            _c("site_number", "INTEGER", "Order of the site in the registry record (1 = first).", primary_key=True),
            _c("facility", "VARCHAR", "Facility name; from CSV exports the whole location text before the country "
               "(facility, city, state, zip as written)."),
            _c("city", "VARCHAR", "City (JSON records only)."),
            _c("state", "VARCHAR", "State or region (JSON records only)."),
            _c("zip", "VARCHAR", "Postal code (JSON records only)."),
            _c("country", "VARCHAR", "Country name as the registry writes it."),
            _c("recruitment_status", "VARCHAR", "Site recruitment status, e.g. RECRUITING (JSON records only)."),
        ),
    ),
    Table(
        "data_provenance",
        "Where each study's data came from: one row per source file loaded.",
        (
            _c("study_id", "VARCHAR", "Study the file fed (or the ctgov batch id).", primary_key=True),
            _c("file_name", "VARCHAR", "Source file name (relative to the chosen folder).", primary_key=True),
            _c("source_type", "VARCHAR", "synthetic, sdtm, ctgov or tables."),
            _c("sha256", "VARCHAR", "SHA-256 checksum of the file."),
            _c("row_count", "BIGINT", "Rows read from the file (count)."),
            _c("rejected_rows", "BIGINT", "Rows of the file left out of the load (count)."),
            _c("imported_at", "TIMESTAMP", "When the load was committed (UTC)."),
            _c("importer_version", "VARCHAR", "Version of the importer that loaded it."),
            _c("notes", "VARCHAR", "How derived values were obtained from this file (estimates, gaps)."),
        ),
        access_rule="provenance",
    ),
    Table(
        "dispositions",
        "Subject disposition and milestone events (SDTM DS): completion, discontinuation, screen failure.",
        (
            _c("disposition_id", "BIGINT", "Unique key.", primary_key=True),
            _c("study_id", "VARCHAR", "Study.", required=True),
            _c("study_site_id", "VARCHAR", "Study-site.", required=True),
            _c("subject_id", "VARCHAR", "Subject.", required=True),
            _c("category", "VARCHAR", "Event category (DSCAT), e.g. DISPOSITION EVENT."),
            _c("decoded_term", "VARCHAR", "Standardized term (DSDECOD), e.g. ADVERSE EVENT."),
            _c("reported_term", "VARCHAR", "Term as reported (DSTERM)."),
            _c("event_date", "DATE", "Event date (only when the day is known)."),
            _c("event_date_text", "VARCHAR", "Event date as reported (ISO 8601, may be partial)."),
            _c("event_date_precision", "VARCHAR", "Precision of the reported date.", allowed=DATE_PRECISIONS),
            _c("visit_number", "DOUBLE", "Visit number (VISITNUM)."),
        ),
    ),
    Table(
        "planned_visits",
        "Planned visit schedule of a study (SDTM TV).",
        (
            _c("study_id", "VARCHAR", "Study.", primary_key=True),
            _c("visit_number", "DOUBLE", "Visit number (VISITNUM).", primary_key=True),
            _c("visit_name", "VARCHAR", "Visit label."),
            _c("planned_day", "INTEGER", "Planned study day (VISITDY; day 1 = first treatment)."),
            _c("start_rule", "VARCHAR", "Rule for the start of the visit (TVSTRL)."),
            _c("end_rule", "VARCHAR", "Rule for the end of the visit (TVENRL)."),
        ),
    ),
    Table(
        "supplemental_qualifiers",
        "SDTM supplemental qualifiers (SUPP--) joined to their parent records.",
        _QUALIFIER_COLUMNS,
    ),
    Table(
        "exposures",
        "Study treatment exposure (SDTM EX). Restricted: treatment names and doses unblind.",
        (
            _c("exposure_id", "BIGINT", "Unique key.", primary_key=True),
            _c("study_id", "VARCHAR", "Study.", required=True),
            _c("study_site_id", "VARCHAR", "Study-site.", required=True),
            _c("subject_id", "VARCHAR", "Subject.", required=True),
            _c("treatment", "VARCHAR", "Treatment name (EXTRT)."),
            _c("dose", "DOUBLE", "Dose per administration."),
            _c("dose_unit", "VARCHAR", "Dose unit."),
            _c("route", "VARCHAR", "Route of administration."),
            _c("start_date", "DATE", "Exposure start (day known)."),
            _c("end_date", "DATE", "Exposure end (day known)."),
            _c("start_date_text", "VARCHAR", "Start as reported (ISO 8601, may be partial)."),
        ),
        schema="restricted",
    ),
    Table(
        "treatment_qualifiers",
        "Supplemental qualifiers that reveal treatment (SUPPEX and other qualifiers of exposure or arm "
        "variables). Restricted: unblinded roles only.",
        _QUALIFIER_COLUMNS,
        schema="restricted",
    ),
    Table(
        "trial_arms",
        "Planned arms of a study and their elements (SDTM TA). Restricted: arm names unblind.",
        (
            _c("study_id", "VARCHAR", "Study.", primary_key=True),
            _c("arm_code", "VARCHAR", "Arm code (ARMCD).", primary_key=True),
            _c("element_order", "INTEGER", "Order of the element within the arm (TAETORD).", primary_key=True),
            _c("arm", "VARCHAR", "Arm (ARM)."),
            _c("element_code", "VARCHAR", "Element code (ETCD)."),
            _c("element", "VARCHAR", "Element (ELEMENT)."),
            _c("epoch", "VARCHAR", "Epoch (EPOCH)."),
        ),
        schema="restricted",
    ),
    Table(
        "enrollment_forecast",
        "Cumulative randomized subjects by date: actual, plan and each forecast's quantiles (derived).",
        (
            _c("study_id", "VARCHAR", "Study.", primary_key=True),
            _c("series", "VARCHAR", "actual, plan or the forecasting method.", primary_key=True,
               allowed=ENROLLMENT_SERIES),
            _c("date", "DATE", "Date (weekly grid; actual and plan at their own dates).", primary_key=True),
            _c("q05", "DOUBLE", "5th percentile of cumulative randomized (count)."),
            _c("q10", "DOUBLE", "10th percentile (count)."),
            _c("q25", "DOUBLE", "25th percentile (count)."),
            _c("q50", "DOUBLE", "Median; the value itself for actual and plan (count)."),
            _c("q75", "DOUBLE", "75th percentile (count)."),
            _c("q90", "DOUBLE", "90th percentile (count)."),
            _c("q95", "DOUBLE", "95th percentile (count)."),
        ),
        schema="derived",
    ),
    Table(
        "enrollment_study_summary",
        "Per study at the as-of date: P(target by the planned date), completion quantiles, sites to add (derived).",
        (
            _c("study_id", "VARCHAR", "Study.", primary_key=True),
            _c("as_of_date", "DATE", "Data cut the forecast uses."),
            _c("target", "INTEGER", "Target randomized (count)."),
            _c("randomized", "INTEGER", "Randomized by the as-of date (count)."),
            _c("active_sites", "INTEGER", "Sites activated by the as-of date (count)."),
            _c("pending_sites", "INTEGER", "Sites planned but not yet activated (count)."),
            _c("planned_lpi", "DATE", "Planned last patient in."),
            _c("p_on_time", "DOUBLE", "Probability the target is randomized by the planned LPI (0-1)."),
            _c("lpi_p10", "DATE", "Date the target is reached: 10th percentile."),
            _c("lpi_p50", "DATE", "Median date the target is reached."),
            _c("lpi_p80", "DATE", "Date by which the target is reached with 80% probability."),
            _c("lpi_p90", "DATE", "Date the target is reached: 90th percentile."),
            _c("horizon_date", "DATE", "Last date the forecast simulates; an empty LPI quantile is after this date."),
            _c("rate_per_site_month", "DOUBLE", "Fitted mean randomizations per active site per month."),
            _c("rate_shape", "DOUBLE", "Gamma shape alpha of site rates (smaller = more site-to-site variation)."),
            _c("trend_per_year", "DOUBLE", "Fitted log-rate change per year of site open time (0 = constant)."),
            _c("prior_weight", "DOUBLE", "Weight of the plan-based prior in the fitted mean rate (0-1)."),
            _c("sites_to_add", "INTEGER", "Additional sites needed for P(on time) >= 0.8 (empty if none suffice)."),
            _c("add_sites_by", "DATE", "Latest activation date of the added sites that still gives P >= 0.8."),
            _c("p_on_time_with_added", "DOUBLE", "P(on time) with the added sites activated at the earliest date."),
            _c("linear_lpi", "DATE", "Date the target is reached by linear extrapolation of the last 90 days."),
            _c("prophet_lpi", "DATE", "Median date the target is reached by the Prophet baseline."),
        ),
        schema="derived",
    ),
    Table(
        "enrollment_site_forecast",
        "Per site: posterior rate, expected further randomizations, P(enrolls nobody) (derived).",
        (
            _c("study_id", "VARCHAR", "Study.", required=True),
            _c("study_site_id", "VARCHAR", "Study-site.", primary_key=True),
            _c("country_code", "VARCHAR", "Country."),
            _c("state", "VARCHAR", "active, pending or dropped at the as-of date.",
               allowed=("active", "pending", "dropped")),
            _c("randomized", "INTEGER", "Randomized by the as-of date (count)."),
            _c("open_months", "DOUBLE", "Months open by the as-of date."),
            _c("rate_mean", "DOUBLE", "Posterior mean randomizations per month."),
            _c("rate_p10", "DOUBLE", "Posterior 10th percentile of the rate (per month)."),
            _c("rate_p90", "DOUBLE", "Posterior 90th percentile of the rate (per month)."),
            _c("expected_by_lpi", "DOUBLE", "Expected further randomizations until the median forecast LPI (count)."),
            _c("share_of_remaining", "DOUBLE", "Expected share of the remaining randomizations (0-1)."),
            _c("p_enrolls_nobody", "DOUBLE", "Probability the site has randomized nobody by the median forecast LPI."),
            _c("p_never_activates", "DOUBLE", "Probability a pending site never activates (0-1)."),
            _c("activation_p50", "DATE", "Median forecast activation date of a pending site."),
        ),
        schema="derived",
    ),
    Table(
        "enrollment_timeline",
        "Forecast last patient in, last patient last visit and database lock against plan (derived).",
        (
            _c("study_id", "VARCHAR", "Study.", primary_key=True),
            _c("milestone", "VARCHAR", "Milestone.", primary_key=True, allowed=ENROLLMENT_MILESTONES),
            _c("planned_date", "DATE", "Planned date (milestones table)."),
            _c("actual_date", "DATE", "Actual date, once reached."),
            _c("p10", "DATE", "10th percentile of the forecast date."),
            _c("p50", "DATE", "Median forecast date."),
            _c("p80", "DATE", "Date reached with 80% probability."),
            _c("p90", "DATE", "90th percentile of the forecast date."),
            _c("horizon_date", "DATE", "Latest date the forecast covers; an empty quantile is after this date."),
            _c("p_by_planned", "DOUBLE", "Probability of reaching it by the planned date (0-1)."),
        ),
        schema="derived",
    ),
    Table(
        "enrollment_demographics",
        "Randomized subjects per demographic group against target and population, with the forecast end (derived).",
        (
            _c("study_id", "VARCHAR", "Study.", primary_key=True),
            _c("level", "VARCHAR", "study, country or site.", primary_key=True, allowed=("study", "country", "site")),
            _c("level_id", "VARCHAR", "Study id, country code or study-site id.", primary_key=True),
            _c("dimension", "VARCHAR", "Demographic dimension.", primary_key=True, allowed=DEMOGRAPHIC_DIMENSIONS),
            _c("category", "VARCHAR", "Group.", primary_key=True),
            _c("randomized", "INTEGER", "Randomized in the group so far (count)."),
            _c("share", "DOUBLE", "Share of the level's randomized subjects (0-1)."),
            _c("target_share", "DOUBLE", "Diversity-plan target share (study level; 0-1)."),
            _c("population_share", "DOUBLE", "Share in the condition's population of the level's countries (0-1)."),
            _c("forecast_count_p50", "DOUBLE", "Forecast count in the group when enrollment ends: median."),
            _c("forecast_count_p10", "DOUBLE", "Forecast count at the end: 10th percentile."),
            _c("forecast_count_p90", "DOUBLE", "Forecast count at the end: 90th percentile."),
            _c("forecast_share_p50", "DOUBLE", "Forecast share at the end: median (0-1)."),
            _c("p_meets_target", "DOUBLE", "Probability the final share reaches the target share (0-1)."),
        ),
        schema="derived",
    ),
    Table(
        "anomalies",
        "Labelled anomalies injected by the generator (ground truth for evaluation).",
        (
            _c("anomaly_id", "INTEGER", "Unique key.", primary_key=True),
            _c("anomaly_type", "VARCHAR", "What was injected.", required=True),
            _c("level", "VARCHAR", "site, subject or study.", allowed=("site", "subject", "study")),
            _c("study_id", "VARCHAR", "Study.", required=True),
            _c("study_site_id", "VARCHAR", "Study-site, for site and subject anomalies."),
            _c("subject_id", "VARCHAR", "Subject, for subject anomalies."),
            _c("magnitude", "DOUBLE", "Strength, e.g. share of AEs removed (0-1) or rate multiplier."),
            _c("detail", "VARCHAR", "Human-readable description."),
            _c("start_date", "DATE", "First day the anomaly is present (process shifts); empty when present "
               "from the start."),
        ),
        schema="truth",
    ),
    Table(
        "quality_event_labels",
        "The theme each generated quality event's free text was written about (ground truth for text clustering).",
        (
            _c("quality_event_id", "BIGINT", "Quality event (quality_events.quality_event_id).", primary_key=True),
            _c("study_id", "VARCHAR", "Study.", required=True),
            _c("theme", "VARCHAR", "The theme the text describes.", required=True),
            _c("other_theme", "VARCHAR", "A second theme the text mentions in passing, if any."),
            _c("recurrence_of", "BIGINT", "Injected recurrence: the earlier event of the same theme and site it repeats."),
        ),
        schema="truth",
    ),
    Table(
        "kri_cells",
        "KRI results per method, monthly snapshot, site and KRI (computed from the tables above).",
        (
            _c("method", "VARCHAR", "Scoring method: calibrated or funnel.", required=True),
            _c("snap", "BIGINT", "Snapshot number, 0 = oldest of the six monthly snapshots.", required=True),
            _c("study_id", "VARCHAR", "Study.", required=True),
            _c("study_site_id", "VARCHAR", "Study-site.", required=True),
            _c("kri", "VARCHAR", "KRI id (analytics/kri/specs.py).", required=True),
            _c("observed", "DOUBLE", "Observed numerator (events or yes-count)."),
            _c("denominator", "DOUBLE", "Denominator (days on study, subjects, visits, ...)."),
            _c("expected", "DOUBLE", "Expected numerator from the study's other sites."),
            _c("p_low", "DOUBLE", "Mid-p lower tail."),
            _c("p_high", "DOUBLE", "Mid-p upper tail."),
            _c("evaluable", "BOOLEAN", "Expected count large enough to flag."),
            _c("site_code", "BIGINT", "Engine-internal site index within the study (snapshot, study-site order)."),
            _c("scale", "DOUBLE", "Multiplier from numerator/denominator to the KRI's unit."),
            _c("rate", "DOUBLE", "Observed rate in the KRI's unit."),
            _c("expected_rate", "DOUBLE", "Expected rate in the KRI's unit."),
            _c("o_e", "DOUBLE", "Observed / expected."),
            _c("flag", "BIGINT", "-1 insufficient data, 0 ok, 1 amber, 2 red."),
            _c("direction", "VARCHAR", "low or high when flagged."),
            _c("z", "DOUBLE", "Signed normal score of the more extreme tail."),
            _c("p", "DOUBLE", "The cell's p-value for its directions of concern."),
            _c("tests_at_site", "BIGINT", "One-sided tests evaluable at the site (for the flag thresholds)."),
            _c("months_flagged", "BIGINT", "Latest snapshot: consecutive monthly snapshots flagged amber or red."),
            _c("new_flag", "BOOLEAN", "Latest snapshot: flagged now and not at the previous snapshot."),
            _c("z_history", "DOUBLE[]", "Latest snapshot: the signed score at each snapshot, oldest first."),
            _c("posterior_ratio", "DOUBLE",
               "Posterior median of the site's rate (or share) relative to its study's (calibrated)."),
            _c("posterior_ratio_low", "DOUBLE", "Lower end of its 90% credible interval."),
            _c("posterior_ratio_high", "DOUBLE", "Upper end of its 90% credible interval."),
            _c("prob_below", "DOUBLE", "Posterior probability the site's rate is below 75% of its study's (0-1)."),
            _c("prob_above", "DOUBLE", "Posterior probability the site's rate is above 133% of its study's (0-1)."),
            _c("amber_alpha", "DOUBLE", "Per-cell false-positive rate of the amber flag (permutation-calibrated)."),
            _c("red_alpha", "DOUBLE", "Per-cell false-positive rate of the red flag (permutation-calibrated)."),
        ),
        schema="derived",
    ),
    Table(
        "kri_sites",
        "Site scores per method and monthly snapshot (computed).",
        (
            _c("method", "VARCHAR", "Scoring method.", required=True),
            _c("snap", "BIGINT", "Snapshot number.", required=True),
            _c("study_id", "VARCHAR", "Study.", required=True),
            _c("study_site_id", "VARCHAR", "Study-site.", required=True),
            _c("red", "BIGINT", "KRIs flagged red (count)."),
            _c("amber", "BIGINT", "KRIs flagged amber (count)."),
            _c("evaluable", "BIGINT", "KRIs with enough data (count)."),
            _c("site_score", "DOUBLE", "Combined site score (calibrated: mean -ln p; funnel: flag weights)."),
            _c("any_amber", "BOOLEAN", "Any KRI amber or red."),
            _c("any_red", "BOOLEAN", "Any KRI red."),
            _c("site_p", "DOUBLE", "Permutation p-value of the site score (calibrated, latest snapshot)."),
        ),
        schema="derived",
    ),
    Table(
        "kri_variance_inputs",
        "Per-site between-site variance evidence that forms the portfolio prior for small studies (computed).",
        (
            _c("snap", "BIGINT", "Snapshot number.", required=True),
            _c("study_id", "VARCHAR", "Study.", required=True),
            _c("study_site_id", "VARCHAR", "Study-site.", required=True),
            _c("kri", "VARCHAR", "KRI id.", required=True),
            _c("implied", "DOUBLE", "Implied between-site variance (log or logit scale)."),
        ),
        schema="derived",
    ),
    Table(
        "atypical_sites",
        "Atypical-data tests per site against its study (computed).",
        (
            _c("study_id", "VARCHAR", "Study.", required=True),
            _c("study_site_id", "VARCHAR", "Study-site.", required=True),
            _c("digit_preference", "DOUBLE", "p: terminal-digit preference."),
            _c("digit_values", "DOUBLE", "Integer-recorded values tested (count)."),
            _c("low_variance", "DOUBLE", "p: low within-subject variance."),
            _c("variance_ratio", "DOUBLE", "Within-subject variance relative to the study's other sites."),
            _c("inliers", "DOUBLE", "p: subjects implausibly close to the study centre."),
            _c("mean_distance", "DOUBLE", "Mean squared Mahalanobis distance of the site's subjects."),
            _c("copied_vectors", "DOUBLE", "p: identical vital-sign vectors."),
            _c("copied_share", "DOUBLE", "Share of vital-sign vectors repeated at the site."),
            _c("regular_visits", "DOUBLE", "p: visits too often exactly on the scheduled day."),
            _c("on_day_share", "DOUBLE", "Share of the site's visits on the scheduled day."),
            _c("study_on_day_share", "DOUBLE", "Same share at the study's other sites."),
            _c("shared_traits", "DOUBLE", "p: a subset of subjects unlike the site's others in several traits at once."),
            _c("subjects_with_vitals", "BIGINT", "Subjects with vital signs (count)."),
            _c("tests_available", "BIGINT", "Tests with enough data (count)."),
            _c("atypical_p", "DOUBLE", "Combined (weighted Stouffer) p-value."),
            _c("atypical_score", "DOUBLE", "Combined score, -log10 p."),
            _c("atypical_flag", "BOOLEAN", "Flagged as atypical."),
        ),
        schema="derived",
    ),
    # --- data quality (analytics/quality): conformance at import, findings and signals, labelled errors ---
    Table(
        "sdtm_conformance",
        "SDTM conformance issues found in a study's files when they were imported (CDISC/Pinnacle 21 rule IDs).",
        (
            _c("study_id", "VARCHAR", "Study the files were loaded as.", required=True),
            _c("study_site_id", "VARCHAR", "Study-site of the record's subject, when it has one."),
            _c("subject_id", "VARCHAR", "Subject (USUBJID), when the record has one."),
            _c("rule_id", "VARCHAR", "Rule ID, e.g. SD0002 (analytics/quality/conformance.py).", required=True),
            _c("severity", "VARCHAR", "Error or Warning.", allowed=("Error", "Warning")),
            _c("domain", "VARCHAR", "SDTM domain, e.g. AE."),
            _c("variable", "VARCHAR", "SDTM variable, e.g. AESTDTC."),
            _c("file_name", "VARCHAR", "Source file."),
            _c("row_number", "BIGINT", "Row in the source file (1 = first record)."),
            _c("record_key", "VARCHAR", "The record's key, e.g. USUBJID=01-701-1015, AESEQ=3."),
            _c("value", "VARCHAR", "The value checked (treatment-revealing values are not kept)."),
            _c("message", "VARCHAR", "What is wrong, in words."),
        ),
    ),
    Table(
        "quality_findings",
        "Data-quality findings of the edit checks and the SDTM conformance rules, one per record and check (derived).",
        (
            _c("finding_id", "VARCHAR", "Content hash of the check and the data it read: changes when those data change.",
               primary_key=True),
            _c("record_key", "VARCHAR", "The check and the record it concerns (stays the same when the data change).",
               required=True),
            _c("study_id", "VARCHAR", "Study.", required=True),
            _c("study_site_id", "VARCHAR", "Study-site."),
            _c("subject_id", "VARCHAR", "Subject."),
            _c("check_id", "VARCHAR", "Edit check id or conformance rule ID (analytics/quality/specs.py).",
               required=True),
            _c("category", "VARCHAR", "Kind of check.", required=True, allowed=(
                "Missing data", "Type and range", "Date logic", "Cross-form consistency", "Duplicates",
                "SDTM conformance")),
            _c("severity", "VARCHAR", "Critical, Major or Minor.", allowed=("Critical", "Major", "Minor")),
            _c("table_name", "VARCHAR", "Warehouse table (or SDTM dataset) of the record."),
            _c("record_id", "VARCHAR", "The record's id in that table."),
            _c("visit", "VARCHAR", "Visit of the record, when it has one."),
            _c("field", "VARCHAR", "Field (column or SDTM variable) found wrong."),
            _c("value", "VARCHAR", "The value found."),
            _c("expected", "VARCHAR", "What the check expected."),
            _c("message", "VARCHAR", "The finding in words."),
            _c("record_date", "DATE", "Date of the record (visit, onset, collection), for trends."),
        ),
        schema="derived",
    ),
    Table(
        "quality_signals",
        "Unusual data patterns per site against the other sites of its study, each explained in words (derived).",
        (
            _c("study_id", "VARCHAR", "Study.", required=True),
            _c("study_site_id", "VARCHAR", "Study-site.", required=True),
            _c("signal", "VARCHAR", "Which pattern.", required=True, allowed=(
                "robust_z", "isolation_forest", "identical_vectors", "entry_burst", "digit_preference",
                "low_variance", "inliers", "regular_visits")),
            _c("test_code", "VARCHAR", "Test (and statistic) the signal concerns, when one."),
            _c("statistic", "VARCHAR", "What was compared, e.g. share of values ending in 0."),
            _c("site_value", "DOUBLE", "The site's value of the statistic."),
            _c("peer_value", "DOUBLE", "The same at the study's other sites (median)."),
            _c("z", "DOUBLE", "Robust z (median/MAD) or normal score of the signal."),
            _c("p", "DOUBLE", "One-sided p-value against the study's other sites."),
            _c("explanation", "VARCHAR", "The signal in a data manager's words."),
        ),
        schema="derived",
    ),
    Table(
        "quality_sites",
        "Sites ranked by the combined evidence of their unusual data patterns (derived).",
        (
            _c("study_id", "VARCHAR", "Study.", required=True),
            _c("study_site_id", "VARCHAR", "Study-site.", primary_key=True),
            _c("signals", "BIGINT", "Signals with p below 0.01 (count)."),
            _c("combined_p", "DOUBLE", "Combined p-value over the site's signal families (Fisher, each family's "
               "smallest p Bonferroni-adjusted)."),
            _c("score", "DOUBLE", "Ranking score, -log10 of the combined p."),
            _c("isolation_score", "DOUBLE", "IsolationForest anomaly score of the site's data profile (higher = more "
               "unusual)."),
            _c("top_explanation", "VARCHAR", "The strongest signal in words."),
        ),
        schema="derived",
    ),
    Table(
        "data_errors",
        "Data errors injected into generated studies with the check that should find each (ground truth).",
        (
            _c("error_id", "INTEGER", "Unique key.", primary_key=True),
            _c("category", "VARCHAR", "Check category the error belongs to.", required=True),
            _c("check_id", "VARCHAR", "Edit check that should find it.", required=True),
            _c("study_id", "VARCHAR", "Study.", required=True),
            _c("study_site_id", "VARCHAR", "Study-site."),
            _c("subject_id", "VARCHAR", "Subject."),
            _c("table_name", "VARCHAR", "Table of the record changed."),
            _c("record_id", "VARCHAR", "Record changed (its id in that table)."),
            _c("detail", "VARCHAR", "What was changed."),
        ),
        schema="truth",
    ),
    Table(
        "capa_themes",
        "Recurring themes of a study's quality events and CAPAs, found in their free text (derived).",
        (
            _c("study_id", "VARCHAR", "Study.", primary_key=True),
            _c("theme_id", "INTEGER", "Theme number within the study (0 = the largest).", primary_key=True),
            _c("name", "VARCHAR", "Name from the theme's top terms."),
            _c("top_terms", "VARCHAR", "The theme's most characteristic terms, separated by ', '."),
            _c("events", "INTEGER", "Quality events in the theme (count)."),
            _c("sites", "INTEGER", "Study-sites with an event in the theme (count)."),
            _c("recurrences", "INTEGER", "Events flagged as repeating an earlier event of the theme (count)."),
            _c("first_reported", "DATE", "First event of the theme."),
            _c("last_reported", "DATE", "Latest event of the theme."),
        ),
        schema="derived",
    ),
    Table(
        "capa_event_themes",
        "Each quality event's theme and whether it repeats an earlier event of the same theme and site (derived).",
        (
            _c("study_id", "VARCHAR", "Study.", required=True),
            _c("quality_event_id", "BIGINT", "Quality event.", primary_key=True),
            _c("study_site_id", "VARCHAR", "Study-site, if site-level."),
            _c("theme_id", "INTEGER", "Theme (capa_themes.theme_id)."),
            _c("theme_similarity", "DOUBLE", "Cosine similarity of the event's text to its theme's centre (0-1)."),
            _c("repeats_event_id", "BIGINT", "The earlier event (same theme and site, within 12 months) it repeats."),
            _c("repeat_similarity", "DOUBLE", "Cosine similarity of the two events' texts (0-1)."),
            _c("repeat_days", "INTEGER", "Days since the event it repeats."),
            _c("possible_recurrence", "BOOLEAN", "Flagged: a possible failure of the earlier event's CAPA."),
        ),
        schema="derived",
    ),
    # Feasibility (analytics/feasibility/results.py): portfolio-level, computed from historical trials, so
    # these rows carry no study_id and are reference data like the trials they come from.
    Table(
        "feasibility_models",
        "Fitted duration and rate models per data source (quantile boosting with conformal calibration).",
        (
            _c("data_source", "VARCHAR", "Trials the model learned from: synthetic or ctgov.", primary_key=True),
            _c("target", "VARCHAR", "duration (months, start to completion) or rate (per site-month).", primary_key=True),
            _c("model", "BLOB", "The fitted model (pickled by the workbench itself; read only by it)."),
            _c("trained_on", "BIGINT", "Trials the quantile models were fitted on (count)."),
            _c("calibrated_on", "BIGINT", "Trials the conformal correction was computed on (count)."),
            _c("correction", "DOUBLE", "Conformal widening of each side of the 10-90% band (log scale)."),
            _c("latest_start", "DATE", "Latest start date among the trials learned from."),
            _c("sklearn_version", "VARCHAR", "scikit-learn version that fitted it."),
        ),
        schema="derived",
    ),
    Table(
        "feasibility_model_metrics",
        "Cross-validated error and 80% interval coverage of the model and the phase-median baseline.",
        (
            _c("data_source", "VARCHAR", "synthetic or ctgov.", primary_key=True),
            _c("target", "VARCHAR", "duration or rate.", primary_key=True),
            _c("method", "VARCHAR", "model or baseline (phase median, phase 10th-90th percentiles).", primary_key=True),
            _c("trials", "BIGINT", "Trials predicted out of fold (count)."),
            _c("median_abs_log_error", "DOUBLE", "Median absolute error of the log median prediction."),
            _c("coverage_80", "DOUBLE", "Share of trials inside their 80% interval."),
            _c("median_width_ratio", "DOUBLE", "Median ratio of the interval's upper to lower end."),
            _c("pinball", "DOUBLE", "Mean pinball loss over the 10th, 50th and 90th percentiles (log scale)."),
        ),
        schema="derived",
    ),
    Table(
        "feasibility_cv_predictions",
        "Out-of-fold predictions per trial (natural units), behind the cross-validated figures.",
        (
            _c("data_source", "VARCHAR", "synthetic or ctgov.", primary_key=True),
            _c("target", "VARCHAR", "duration or rate.", primary_key=True),
            _c("nct_id", "VARCHAR", "Trial.", primary_key=True),
            _c("observed", "DOUBLE", "Observed value (months or per site-month)."),
            _c("model_lo", "DOUBLE", "Model: lower end of the 80% interval."),
            _c("model_mid", "DOUBLE", "Model: median."),
            _c("model_hi", "DOUBLE", "Model: upper end of the 80% interval."),
            _c("baseline_lo", "DOUBLE", "Phase baseline: 10th percentile."),
            _c("baseline_mid", "DOUBLE", "Phase baseline: median."),
            _c("baseline_hi", "DOUBLE", "Phase baseline: 90th percentile."),
        ),
        schema="derived",
    ),
    # --- recruitment: eligibility criteria and pre-screening pools (analytics/recruitment) ---
    Table(
        "study_eligibility",
        "A study's eligibility criteria as the protocol writes them (inclusion and exclusion text) and its age and "
        "sex limits.",
        (
            _c("study_id", "VARCHAR", "Study.", primary_key=True),
            _c("criteria_text", "VARCHAR", "Inclusion and exclusion criteria (free text, one criterion per line or "
               "bullet, under 'Inclusion Criteria:' and 'Exclusion Criteria:' headers).", required=True, max_length=_LONG),
            _c("min_age_years", "DOUBLE", "Minimum age (years), when the protocol states one."),
            _c("max_age_years", "DOUBLE", "Maximum age (years), when the protocol states one."),
            _c("sex", "VARCHAR", "Sexes eligible.", allowed=REGISTRY_SEXES),
            _c("source", "VARCHAR", "Where the text came from: generator, protocol or registry."),
        ),
        importable=True,
    ),
    Table(
        "prescreen_patients",
        "A site's pre-screening pool: de-identified patients (no names, no dates of birth; age at the screening date).",
        (
            _c("patient_id", "VARCHAR", "Pseudonymous patient key (a hash of the site's own id, or generated).",
               primary_key=True),
            _c("study_id", "VARCHAR", "Study the pool is screened for.", required=True),
            _c("study_site_id", "VARCHAR", "Study-site whose patients these are.", required=True),
            _c("sex", "VARCHAR", "Sex: F, M or U.", allowed=SEXES),
            _c("age", "INTEGER", "Age at the screening date (years)."),
            _c("screening_date", "DATE", "Date the pool was drawn (time windows count back from it).", required=True),
            _c("source", "VARCHAR", "synthetic, fhir or csv."),
            _c("conditions_complete", "BOOLEAN",
               "True when the export states the patient's condition list is complete (a condition absent from it is "
               "not present); false or empty (not stated): absence is unknown."),
            _c("medications_complete", "BOOLEAN",
               "True when the export states the patient's medication list is complete (a medication absent from it was "
               "not taken); false or empty (not stated): absence is unknown."),
        ),
    ),
    Table(
        "prescreen_conditions",
        "Conditions of pre-screening patients (FHIR Condition): code, onset, clinical and verification status.",
        (
            _c("record_id", "VARCHAR", "Record key.", primary_key=True, max_length=200),
            _c("patient_id", "VARCHAR", "Patient (prescreen_patients).", required=True),
            _c("study_id", "VARCHAR", "Study.", required=True),
            _c("study_site_id", "VARCHAR", "Study-site.", required=True),
            _c("code", "VARCHAR", "Condition code (ICD-10-CM, or the source's system)."),
            _c("code_system", "VARCHAR", "Code system, e.g. ICD-10-CM or SNOMED CT."),
            _c("display", "VARCHAR", "Condition as named in the record."),
            _c("onset_date", "DATE", "Onset or diagnosis date."),
            _c("abatement_date", "DATE", "Resolution date."),
            _c("clinical_status", "VARCHAR", "FHIR clinical status: active, recurrence, relapse, inactive, remission, "
               "resolved."),
            _c("verification_status", "VARCHAR", "FHIR verification status: confirmed, provisional, differential, "
               "unconfirmed, refuted (ruled out), entered-in-error."),
        ),
    ),
    Table(
        "prescreen_observations",
        "Lab results, vital signs, scores and pregnancy status of pre-screening patients (FHIR Observation).",
        (
            _c("record_id", "VARCHAR", "Record key.", primary_key=True, max_length=200),
            _c("patient_id", "VARCHAR", "Patient (prescreen_patients).", required=True),
            _c("study_id", "VARCHAR", "Study.", required=True),
            _c("study_site_id", "VARCHAR", "Study-site.", required=True),
            _c("code", "VARCHAR", "Observation code (LOINC where the record carries one)."),
            _c("code_system", "VARCHAR", "Code system, e.g. LOINC."),
            _c("display", "VARCHAR", "Test as named in the record."),
            _c("value", "DOUBLE", "Numeric result in the unit given."),
            _c("unit", "VARCHAR", "Unit of the result (UCUM or as written)."),
            _c("value_text", "VARCHAR", "Coded or text result, e.g. Pregnant / Not pregnant."),
            _c("ref_high", "DOUBLE", "Upper limit of normal, in the result's unit."),
            _c("effective_date", "DATE", "Collection date."),
        ),
    ),
    Table(
        "prescreen_medications",
        "Medications of pre-screening patients (FHIR MedicationStatement / MedicationRequest).",
        (
            _c("record_id", "VARCHAR", "Record key.", primary_key=True, max_length=200),
            _c("patient_id", "VARCHAR", "Patient (prescreen_patients).", required=True),
            _c("study_id", "VARCHAR", "Study.", required=True),
            _c("study_site_id", "VARCHAR", "Study-site.", required=True),
            _c("code", "VARCHAR", "Medication code (WHO ATC, or the source's system such as RxNorm)."),
            _c("code_system", "VARCHAR", "Code system, e.g. ATC or RxNorm."),
            _c("display", "VARCHAR", "Medication as named in the record."),
            _c("start_date", "DATE", "Start of use."),
            _c("end_date", "DATE", "End of use; empty while ongoing."),
            _c("status", "VARCHAR", "FHIR status: active, completed, stopped, on-hold, intended, not-taken, "
               "entered-in-error."),
        ),
    ),
    Table(
        "recruitment_criteria",
        "Each study's eligibility criteria as parsed: section, text, structure or why it needs review (derived).",
        (
            _c("study_id", "VARCHAR", "Study.", primary_key=True),
            _c("number", "INTEGER", "Position in the protocol (1 = first).", primary_key=True),
            _c("criterion_key", "VARCHAR", "Stable id of the criterion (hash of section and text).", required=True),
            _c("section", "VARCHAR", "inclusion or exclusion.", allowed=("inclusion", "exclusion")),
            _c("criterion_text", "VARCHAR", "The criterion as written.", max_length=_LONG),
            _c("status", "VARCHAR", "structured, administrative (confirmed at screening) or needs_review.",
               allowed=("structured", "administrative", "needs_review")),
            _c("kind", "VARCHAR", "age, sex, condition, lab, ecog, medication, pregnancy, contraception, mixed, "
               "administrative or text."),
            _c("structure", "VARCHAR", "The criterion with its structure, as JSON.", max_length=_LONG),
            _c("reading", "VARCHAR", "The structure in words, or why it needs review.", max_length=_LONG),
        ),
        schema="derived",
    ),
    Table(
        "prescreen_truth",
        "The generator's truth for pre-screening: does each patient pass each criterion of the study.",
        (
            _c("patient_id", "VARCHAR", "Patient.", primary_key=True),
            _c("number", "INTEGER", "Criterion number.", primary_key=True),
            _c("study_id", "VARCHAR", "Study.", required=True),
            _c("study_site_id", "VARCHAR", "Study-site.", required=True),
            _c("passes", "BOOLEAN", "True when the patient truly passes the criterion.", required=True),
            _c("hard_case", "VARCHAR", "The hard case built in, if any (missing result, unit to convert, ...)."),
        ),
        schema="truth",
    ),
    Table(
        "eligibility_truth",
        "The generator's true structure of each criterion it wrote.",
        (
            _c("study_id", "VARCHAR", "Study.", primary_key=True),
            _c("number", "INTEGER", "Criterion number.", primary_key=True),
            _c("structure", "VARCHAR", "The criterion with its true structure, as JSON.", required=True, max_length=_LONG),
        ),
        schema="truth",
    ),
    Table(
        "study_versions",
        "A token per study that changes whenever a writer changes the study's data (for derived results).",
        (
            _c("study_id", "VARCHAR", "Study.", primary_key=True),
            _c("data_version", "VARCHAR", "Changes on every write to the study's rows.", required=True),
            _c("changed_at", "TIMESTAMP", "When (UTC)."),
        ),
        schema="meta",
    ),
    Table(
        "derived_state",
        "Which version of each derived result was computed from which data, per study ('*' = portfolio).",
        (
            _c("result", "VARCHAR", "Derived result name (analytics/registry.py).", primary_key=True),
            _c("study_id", "VARCHAR", "Study, or * for a portfolio-level result.", primary_key=True),
            _c("code_version", "VARCHAR", "Hash of the code and parameters that computed it.", required=True),
            _c("data_version", "VARCHAR", "The study's data version it was computed from.", required=True),
            _c("as_of_date", "DATE", "The warehouse's as-of date at computation."),
            _c("inputs", "VARCHAR", "Other inputs it depends on (e.g. the portfolio prior), as JSON."),
            _c("computed_at", "TIMESTAMP", "When (UTC)."),
            _c("rows", "BIGINT", "Rows written (count)."),
            _c("seconds", "DOUBLE", "Time taken (s)."),
        ),
        schema="meta",
    ),
    Table(
        "schema_version",
        "Migrations applied to this file.",
        (
            _c("version", "INTEGER", "Schema version.", primary_key=True),
            _c("description", "VARCHAR", "What the migration did."),
            _c("applied_at", "TIMESTAMP", "When it was applied (UTC)."),
        ),
        schema="meta",
    ),
    Table(
        "warehouse_info",
        "Facts about this warehouse file (as-of date, preset, seed, build time).",
        (
            _c("key", "VARCHAR", "Fact name.", primary_key=True),
            _c("value", "VARCHAR", "Fact value."),
        ),
        schema="meta",
    ),
)

TABLES_BY_NAME: dict[str, Table] = {t.name: t for t in TABLES}
SCHEMAS = ("main", "truth", "meta", "derived")  # namespaces of the warehouse file (restricted: its own file)


def table(name: str) -> Table:
    """The table spec called ``name`` (unqualified)."""
    try:
        return TABLES_BY_NAME[name]
    except KeyError:
        raise KeyError(f"unknown table {name!r}; known: {', '.join(sorted(TABLES_BY_NAME))}") from None


def data_dictionary_markdown() -> str:
    """The data dictionary as Markdown, generated from :data:`TABLES`."""
    lines = [
        "# Data dictionary",
        "",
        f"Generated from `analytics/core/schema.py` (schema version {SCHEMA_VERSION}) by "
        "`python -m analytics dictionary`. Do not edit by hand.",
        "",
    ]
    lines += [
        "Schemas: `main` (trial and reference data; pages read it only through the access scope's "
        "relations), `restricted` (treatment arms and exposures, in a separate file that blinded readers "
        "never attach), `derived` (results computed from the data by the derived-results registry, "
        "refreshed when data change), `truth` (the generator's labelled anomalies; pages never read "
        "it) and `meta` (schema versions, warehouse facts, data and result versions).",
        "",
    ]
    for t in TABLES:
        lines += [f"## `{t.qualified_name}`", "", t.description, ""]
        lines += ["| column | type | required | meaning | allowed values | max length |", "|---|---|---|---|---|---|"]
        for c in t.columns:
            req = "key" if c.primary_key else ("yes" if c.required else "")
            allowed = ", ".join(c.allowed)
            limit = "" if c.text_limit is None else f"{c.text_limit:,}" + (" (identifier)" if c.is_identifier else "")
            lines.append(f"| `{c.name}` | {c.type} | {req} | {c.description} | {allowed} | {limit} |")
        lines.append("")
    return "\n".join(lines)
