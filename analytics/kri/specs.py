"""The key risk indicator catalogue: every KRI is a declarative :class:`KRISpec` run by one engine.

A KRI is a site-level ratio of two per-subject *measures* (numerator and denominator or exposure).
Measures are aggregated per subject and monthly snapshot by :mod:`analytics.kri.extract` from the
SQL snippets in :data:`EVENT_SOURCES` and :data:`STATE_SOURCES`. Adding a KRI whose measures exist
is adding one :class:`KRISpec` to :data:`CATALOGUE`; adding a measure is adding one entry to a
source's ``measures``.

Two statistical families:

* ``count``: events per unit of exposure (AEs per patient-day). Site counts are scored under a
  negative binomial; ``stratified`` KRIs standardize the expected count by the time-on-study
  profile (:data:`TIME_ON_STUDY_BINS`), because AEs are front-loaded.
* ``proportion``: events out of trials (grade 3+ labs out of graded labs). Scored under a
  beta-binomial.
"""

from __future__ import annotations

from dataclasses import dataclass

# Days-on-study bins for exposure-profile standardization: [lower, upper) in days since randomization.
TIME_ON_STUDY_BINS: tuple[tuple[int, int], ...] = ((0, 30), (30, 90), (90, 180), (180, 365), (365, 100_000))

DIRECTIONS = ("low", "high")


@dataclass(frozen=True)
class KRISpec:
    """One key risk indicator.

    Attributes:
        id: stable identifier used in URLs and caches, e.g. ``ae_rate``.
        name: display name.
        family: ``count`` (negative binomial, per exposure) or ``proportion`` (beta-binomial).
        numerator: measure counted (per subject); for stratified KRIs the measure has one column per
            time-on-study bin (``<name>__b<k>``).
        denominator: exposure measure (count family) or trials measure (proportion family).
        directions: which tails are of concern: ``low`` (too few events, e.g. under-reporting),
            ``high`` or both.
        unit: display unit of the rate.
        scale: multiplier from numerator/denominator to ``unit`` (e.g. 365.25 for per patient-year).
        min_expected: cells whose expected numerator count is below this are grey ("insufficient").
        stratified: expected counts standardized by time-on-study profile.
        funnel_thresholds: gsm-style z cut points (red low, amber low, amber high, red high).
        funnel_min_denominator: gsm-style minimum denominator below which the funnel blanks a site.
        breakdown: drill-down breakdown shown for this KRI (a key of ``analytics.kri.drilldown``).
        denominator_label: what the denominator counts, with its unit (for axes and tables).
        definition: what the KRI measures, in a monitor's words.
    """

    id: str
    name: str
    family: str
    numerator: str
    denominator: str
    directions: tuple[str, ...]
    unit: str
    scale: float = 1.0
    min_expected: float = 3.0
    stratified: bool = False
    funnel_thresholds: tuple[float, float, float, float] = (-3.0, -2.0, 2.0, 3.0)
    funnel_min_denominator: float = 3.0
    breakdown: str = ""
    denominator_label: str = ""
    definition: str = ""

    @property
    def denominator_display_scale(self) -> float:
        """Divide the stored denominator by this for its display unit (days become patient-years)."""
        return 365.25 if self.denominator in ("days_on_treatment", "days_in_study") else 1.0

    def __post_init__(self) -> None:
        if self.family not in ("count", "proportion"):
            raise ValueError(f"{self.id}: family must be count or proportion, not {self.family!r}")
        if not self.directions or any(d not in DIRECTIONS for d in self.directions):
            raise ValueError(f"{self.id}: directions must be a non-empty subset of {DIRECTIONS}")


CATALOGUE: tuple[KRISpec, ...] = (
    KRISpec("ae_rate", "AE rate", "count", "ae", "days_on_treatment", ("low", "high"),
            "AEs per patient-year", 365.25, stratified=True, funnel_thresholds=(-2.0, -1.0, 2.0, 3.0),
            funnel_min_denominator=30.0, breakdown="ae_body_system",
            denominator_label="patient-years on treatment",
            definition="Adverse events reported per patient-year on treatment, against the rate the study's other sites show at the same times on treatment. Low can mean under-reporting."),
    KRISpec("sae_rate", "SAE rate", "count", "sae", "days_on_treatment", ("low", "high"),
            "SAEs per patient-year", 365.25, stratified=True, funnel_thresholds=(-2.0, -1.0, 2.0, 3.0),
            funnel_min_denominator=30.0, breakdown="ae_body_system",
            denominator_label="patient-years on treatment",
            definition="Serious adverse events per patient-year on treatment, against the study's other sites. Low can mean under-reporting of serious events."),
    KRISpec("lab_grade3", "Grade 3+ labs", "proportion", "lab_grade3", "lab_graded", ("low", "high"),
            "share of graded lab results", breakdown="lab_test",
            denominator_label="graded lab results",
            definition="Share of graded laboratory results at CTCAE grade 3 or worse."),
    KRISpec("pd_rate", "Protocol deviations", "count", "pd", "days_in_study", ("low", "high"),
            "deviations per patient-year", 365.25, funnel_min_denominator=30.0, breakdown="pd_category",
            denominator_label="patient-years in study",
            definition="Protocol deviations per patient-year in the study."),
    KRISpec("important_pd_rate", "Important deviations", "count", "pd_important", "days_in_study",
            ("low", "high"), "important deviations per patient-year", 365.25, funnel_min_denominator=30.0,
            breakdown="pd_category",
            denominator_label="patient-years in study",
            definition="Important protocol deviations per patient-year in the study."),
    KRISpec("discontinuation", "Study discontinuation", "proportion", "discontinued", "randomized",
            ("high",), "share of randomized subjects", min_expected=2.0,
            denominator_label="randomized subjects",
            definition="Share of randomized subjects who left the study early."),
    KRISpec("screen_failure", "Screen failure", "proportion", "screen_failed", "screening_decided",
            ("low", "high"), "share of screened subjects", min_expected=2.0,
            denominator_label="subjects with a screening decision",
            definition="Share of screened subjects who failed screening."),
    KRISpec("query_rate", "Query rate", "count", "queries", "data_points", ("low", "high"),
            "queries per 1,000 data points", 1000.0, funnel_min_denominator=100.0,
            denominator_label="data points entered",
            definition="Data queries raised per 1,000 data points entered."),
    KRISpec("queries_open_30", "Queries open > 30 days", "proportion", "queries_open_30", "queries",
            ("high",), "share of queries", min_expected=2.0,
            denominator_label="queries raised",
            definition="Share of the site's queries still open more than 30 days after they were raised."),
    KRISpec("late_entry", "Data entry > 10 days late", "proportion", "pages_late", "pages", ("high",),
            "share of eCRF pages",
            denominator_label="eCRF pages",
            definition="Share of eCRF pages entered more than 10 days after the visit."),
    KRISpec("data_change", "Data change rate", "proportion", "changed_points", "data_points", ("high",),
            "share of data points changed",
            denominator_label="data points entered",
            definition="Share of data points changed after first entry."),
    KRISpec("ae_reporting_lag", "AE reporting lag", "proportion", "ae_late", "ae_dated", ("high",),
            "share of AEs entered > 7 days after onset", min_expected=2.0,
            denominator_label="AEs with onset and entry dates",
            definition="Share of adverse events entered more than 7 days after onset."),
    KRISpec("missed_visits", "Missed visits", "proportion", "visits_missed", "visits_due", ("high",),
            "share of scheduled visits", min_expected=2.0,
            denominator_label="visits due",
            definition="Share of scheduled visits that were missed."),
    # A site that stopped screening while its peers went on has few subjects in its later half.
    KRISpec("screening_momentum", "Screening momentum", "proportion", "screened_second_half", "screened",
            ("low",), "share of the site's subjects screened in the second half of its screening time",
            min_expected=2.0,
            denominator_label="subjects screened",
            definition="Share of the site's subjects screened in the second half of its screening time; low means the site stalled while its peers went on."),
)

CATALOGUE_BY_ID: dict[str, KRISpec] = {k.id: k for k in CATALOGUE}


def kri(kri_id: str) -> KRISpec:
    """The spec called ``kri_id`` (KeyError with the known ids otherwise)."""
    try:
        return CATALOGUE_BY_ID[kri_id]
    except KeyError:
        raise KeyError(f"unknown KRI {kri_id!r}; known: {', '.join(CATALOGUE_BY_ID)}") from None


def stratum_columns(measure: str) -> list[str]:
    """Per-bin column names of a stratified measure."""
    return [f"{measure}__b{k}" for k in range(len(TIME_ON_STUDY_BINS))]


# --- measure sources --------------------------------------------------------------------------
#
# An *event source* counts dated records: each record falls in the first snapshot whose cutoff is on
# or after its date, and snapshot totals are cumulative sums (one pass over a large table however
# many snapshots there are). A *state source* is evaluated per subject and snapshot cutoff (a cross
# join with the few snapshots) for quantities that are not cumulative, such as days on study or
# queries open at the cutoff. ``{bin}`` in a measure is replaced by the time-on-study bin index.


@dataclass(frozen=True)
class EventSource:
    """A table of dated records aggregated per subject and snapshot bucket."""

    name: str
    from_sql: str  # FROM/JOIN clause; must join scoped_sites and expose subject_id
    date_sql: str  # the record's date (decides its snapshot)
    measures: tuple[tuple[str, str], ...]  # (measure name, aggregate SQL)
    where_sql: str = "TRUE"
    binned: tuple[tuple[str, str], ...] = ()  # (measure name, FILTER condition) counted per bin
    bin_days_sql: str = ""  # days since randomization, for binned measures
    subject_sql: str = "subject_id"  # the record's subject key, qualified when joins make it ambiguous


_AE_BIN_DAYS = "greatest(date_diff('day', su.randomization_date, ae.onset_date), 0)"

EVENT_SOURCES: tuple[EventSource, ...] = (
    EventSource(
        "adverse_events",
        "adverse_events ae JOIN scoped_sites USING (study_site_id) "
        "JOIN subjects su USING (subject_id)",
        # When the EDC entry date is unknown (SDTM has none) the onset date is the best date known.
        "coalesce(ae.report_date, ae.onset_date)",
        (
            # Reporting lag needs both dates; SDTM studies are then "insufficient", not "never late".
            ("ae_dated", "count(*) FILTER (WHERE ae.onset_date IS NOT NULL AND ae.report_date IS NOT NULL)"),
            ("ae_late", "count(*) FILTER (WHERE date_diff('day', ae.onset_date, ae.report_date) > 7)"),
        ),
        binned=(("ae", "TRUE"), ("sae", "ae.serious")),
        bin_days_sql=_AE_BIN_DAYS,
        subject_sql="ae.subject_id",
    ),
    EventSource(
        "protocol_deviations",
        "protocol_deviations pd JOIN scoped_sites USING (study_site_id)",
        "coalesce(pd.reported_date, pd.occurred_date)",
        (
            ("pd", "count(*)"),
            ("pd_important", "count(*) FILTER (WHERE pd.important)"),
        ),
        subject_sql="pd.subject_id",
    ),
    EventSource(
        "lab_results",
        "measurements m JOIN scoped_sites USING (study_site_id)",
        "m.collected_date",
        (
            ("lab_graded", "count(*) FILTER (WHERE m.grade IS NOT NULL)"),
            ("lab_grade3", "count(*) FILTER (WHERE m.grade >= 3)"),
        ),
        where_sql="m.domain = 'LB'",
        subject_sql="m.subject_id",
    ),
    EventSource(
        "crf_pages",
        "crf_pages p JOIN scoped_sites USING (study_site_id) JOIN visits v USING (visit_id)",
        "p.entry_date",
        (
            ("pages", "count(*)"),
            ("pages_late", "count(*) FILTER (WHERE date_diff('day', v.actual_date, p.entry_date) > 10)"),
            ("data_points", "coalesce(sum(p.data_points), 0)"),
            ("changed_points", "coalesce(sum(p.changed_points), 0)"),
        ),
        subject_sql="p.subject_id",
    ),
    EventSource(
        "visits",
        "visits v JOIN scoped_sites USING (study_site_id)",
        "v.scheduled_date + coalesce(v.window_days, 0)",  # a visit counts once its window has closed
        (
            ("visits_due", "count(*)"),
            ("visits_missed", "count(*) FILTER (WHERE v.status = 'Missed')"),
        ),
        where_sql="v.visit_number > 0",
        subject_sql="v.subject_id",
    ),
)


@dataclass(frozen=True)
class StateSource:
    """Per-subject quantities evaluated at each snapshot ``k.cutoff`` (table ``k`` = snapshots)."""

    name: str
    from_sql: str
    measures: tuple[tuple[str, str], ...]
    group_by_subject: bool  # True when ``from_sql`` has several rows per subject (aggregate)
    subject_sql: str = "su.subject_id"


# Planned end of treatment: randomization + planned visits x interval (open-ended when unknown).
_PLANNED_END = (
    "coalesce(su.randomization_date + CAST(st.planned_visits * st.visit_interval_days AS INTEGER), "
    "DATE '2999-12-31')"
)
_TREATMENT_END = f"least(k.cutoff, coalesce(su.discontinuation_date, DATE '2999-12-31'), {_PLANNED_END})"
_RANDOMIZED_BY_CUTOFF = "(su.randomization_date IS NOT NULL AND su.randomization_date <= k.cutoff)"
# A screening outcome is taken as decided 28 days after screening (the longest screening window).
_FAILED_BY_CUTOFF = (
    "(su.randomization_date IS NULL AND su.status = 'Screen failure' AND su.screening_date + 28 <= k.cutoff)"
)

# Midpoint of a site's screening time so far: from its activation to the study's latest screening
# (by the cutoff). A site that keeps screening has about half its subjects after it.
_SITE_MIDPOINT = (
    "activation_date + (date_diff('day', activation_date, least(k.cutoff, (SELECT max(s2.screening_date) "
    "FROM subjects s2 WHERE s2.study_id = su.study_id AND s2.screening_date <= k.cutoff))) // 2)::INTEGER"
)

STATE_SOURCES: tuple[StateSource, ...] = (
    StateSource(
        "subjects",
        "subjects su JOIN scoped_sites USING (study_site_id) JOIN scoped_studies st ON st.study_id = su.study_id",
        (
            ("randomized", f"CAST({_RANDOMIZED_BY_CUTOFF} AS INTEGER)"),
            ("screen_failed", f"CAST({_FAILED_BY_CUTOFF} AS INTEGER)"),
            ("screening_decided", f"CAST({_RANDOMIZED_BY_CUTOFF} OR {_FAILED_BY_CUTOFF} AS INTEGER)"),
            ("screened", "CAST(su.screening_date <= k.cutoff AS INTEGER)"),
            ("screened_second_half", f"CAST(su.screening_date <= k.cutoff AND su.screening_date > {_SITE_MIDPOINT} AS INTEGER)"),
            ("discontinued", f"CAST({_RANDOMIZED_BY_CUTOFF} AND su.discontinuation_date <= k.cutoff AS INTEGER)"),
            ("days_on_treatment",
             f"CASE WHEN {_RANDOMIZED_BY_CUTOFF} "
             f"THEN greatest(date_diff('day', su.randomization_date, {_TREATMENT_END}), 0) ELSE 0 END"),
            ("days_in_study",
             "CASE WHEN coalesce(su.consent_date, su.screening_date) > k.cutoff THEN 0 "
             f"WHEN {_RANDOMIZED_BY_CUTOFF} "
             f"THEN greatest(date_diff('day', coalesce(su.consent_date, su.screening_date), {_TREATMENT_END}), 0) "
             "ELSE greatest(date_diff('day', coalesce(su.consent_date, su.screening_date), "
             "least(k.cutoff, su.screening_date + 28)), 0) END"),
        ),
        group_by_subject=False,
    ),
    StateSource(
        "queries",
        "queries q JOIN scoped_sites USING (study_site_id)",
        (
            ("queries", "count(*) FILTER (WHERE q.opened_date <= k.cutoff)"),
            ("queries_open_30",
             "count(*) FILTER (WHERE q.opened_date <= k.cutoff - 30 "
             "AND (q.closed_date IS NULL OR q.closed_date > k.cutoff))"),
        ),
        group_by_subject=True,
        subject_sql="q.subject_id",
    ),
)


def all_measures() -> list[str]:
    """Every measure column the extraction produces (stratified ones expanded per bin)."""
    names: list[str] = []
    for source in EVENT_SOURCES:
        names += [m for m, _ in source.measures]
        for m, _ in source.binned:
            names += stratum_columns(m)
    for source in STATE_SOURCES:
        names += [m for m, _ in source.measures]
    return names
