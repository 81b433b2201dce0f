"""The edit-check catalogue: every check is a declarative :class:`EditCheck` run by one engine.

A check is one constant SELECT over the scoped relations (see :mod:`analytics.core.scope`) that
returns one row per record found wrong, with the standard columns :data:`OUTPUT_COLUMNS`:

* ``study_id``, ``study_site_id``, ``subject_id``: where;
* ``record_id`` (text): the record in the check's ``table``; ``label``: the record as a person names it
  (a visit, an adverse event's term and onset); ``visit``: its visit label, if any;
* ``field``: the column found wrong; ``value``: what it holds; ``expected``: what the check expected;
* ``record_date``: the record's date (for trends);
* ``evidence``: every value the check read, as text. The finding's id is a hash of the check, the
  record and this evidence, so a finding a reviewer set aside comes back only when its data change.

Adding a check is adding one :class:`EditCheck` to :data:`CATALOGUE`; the engine
(:mod:`analytics.quality.engine`) runs it, hashes and words its findings. Plausibility limits of lab
tests and vital signs per unit are :data:`PLAUSIBLE_RANGES` (physiological limits, far outside any
normal range: a value beyond them is a unit or typing error, not an abnormal result).
"""

from __future__ import annotations

from dataclasses import dataclass

CATEGORIES: tuple[str, ...] = (
    "Missing data", "Type and range", "Date logic", "Cross-form consistency", "Duplicates", "SDTM conformance",
)
SEVERITIES: tuple[str, ...] = ("Critical", "Major", "Minor")
OUTPUT_COLUMNS: tuple[str, ...] = (
    "study_id", "study_site_id", "subject_id", "record_id", "label", "visit", "field", "value", "expected",
    "record_date", "evidence",
)
# A form is expected at a visit when at least this share of the study's completed visits with that number
# have it, among at least MIN_VISITS_FOR_SCHEDULE such visits (the schedule is read from the data).
EXPECTED_FORM_SHARE = 0.9
MIN_VISITS_FOR_SCHEDULE = 10
# A test counts as numeric in a study when at least this share of its results carry a number.
NUMERIC_TEST_SHARE = 0.9


@dataclass(frozen=True)
class EditCheck:
    """One edit check.

    Attributes:
        id: stable identifier, shown with every finding (e.g. ``DL01``).
        name: short name for tables and filters.
        category: one of :data:`CATEGORIES`.
        severity: one of :data:`SEVERITIES`.
        table: the warehouse table whose records the findings name.
        reads: the ``table.column`` fields the check reads (documentation and the data dictionary of checks).
        sql: the SELECT returning :data:`OUTPUT_COLUMNS`; values come only as ``$name`` parameters.
        message: the finding in words, a template over the output columns (``{value}``, ``{expected}``, ...).
        description: what the check looks for, in a data manager's words.
        ctes: extra ``name AS (...)`` relations the SELECT uses (after the scope's own).
        restricted: reads treatment-revealing tables (runs only for unblinded scopes, e.g. the refresh).
    """

    id: str
    name: str
    category: str
    severity: str
    table: str
    reads: tuple[str, ...]
    sql: str
    message: str
    description: str
    ctes: str = ""
    restricted: bool = False

    def __post_init__(self) -> None:
        if self.category not in CATEGORIES:
            raise ValueError(f"{self.id}: category {self.category!r} is not one of {CATEGORIES}")
        if self.severity not in SEVERITIES:
            raise ValueError(f"{self.id}: severity {self.severity!r} is not one of {SEVERITIES}")


# --- plausibility limits per test and unit -----------------------------------------------------

# Unit spellings that mean the same (upper-cased source spelling -> canonical spelling).
UNIT_ALIASES: dict[str, str] = {
    "GI/L": "10^9/L", "10E9/L": "10^9/L", "X10E9/L": "10^9/L", "10*9/L": "10^9/L", "10^9/L": "10^9/L",
    "TI/L": "10^12/L", "10E12/L": "10^12/L", "X10E12/L": "10^12/L", "10^12/L": "10^12/L",
    "BEATS/MIN": "beats/min", "BPM": "beats/min", "/MIN": "beats/min",
    "MMHG": "mmHg", "C": "C", "F": "F", "KG": "kg", "LB": "LB", "CM": "cm", "IN": "in",
    "U/L": "U/L", "IU/L": "U/L", "UMOL/L": "umol/L", "MMOL/L": "mmol/L", "MG/DL": "mg/dL", "G/L": "g/L",
    "G/DL": "g/dL", "%": "%", "1": "1", "FRACTION OF 1": "1",
}

# test code -> {canonical unit: (lowest plausible, highest plausible)}; both limits exclusive of nothing:
# a value below the first or above the second is implausible in that unit.
PLAUSIBLE_RANGES: dict[str, dict[str, tuple[float, float]]] = {
    "SYSBP": {"mmHg": (40, 300)},
    "DIABP": {"mmHg": (20, 200)},
    "PULSE": {"beats/min": (15, 250)},
    "HR": {"beats/min": (15, 250)},
    "TEMP": {"C": (30, 45), "F": (86, 113)},
    "WEIGHT": {"kg": (20, 400), "LB": (44, 880)},
    "HEIGHT": {"cm": (50, 250), "in": (20, 100)},
    "ALT": {"U/L": (0.1, 20_000)},
    "AST": {"U/L": (0.1, 20_000)},
    "ALP": {"U/L": (1, 10_000)},
    "GGT": {"U/L": (0.5, 10_000)},
    "CK": {"U/L": (1, 200_000)},
    "BILI": {"umol/L": (0.5, 1_000), "mg/dL": (0.03, 60)},
    "CREAT": {"umol/L": (5, 3_000), "mg/dL": (0.05, 35)},
    "GLUC": {"mmol/L": (0.5, 60), "mg/dL": (9, 1_100)},
    "HGB": {"g/L": (20, 250), "g/dL": (2, 25), "mmol/L": (1.2, 15.5)},
    "HCT": {"1": (0.05, 0.9), "%": (5, 90)},
    "WBC": {"10^9/L": (0.05, 500)},
    "PLAT": {"10^9/L": (1, 3_000)},
    "RBC": {"10^12/L": (0.5, 10)},
    "SODIUM": {"mmol/L": (90, 200)},
    "K": {"mmol/L": (1, 12)},
    "CL": {"mmol/L": (50, 160)},
    "CA": {"mmol/L": (0.5, 5), "mg/dL": (2, 20)},
    "PHOS": {"mmol/L": (0.1, 6)},
    "BUN": {"mmol/L": (0.3, 120), "mg/dL": (1, 340)},
    "ALB": {"g/L": (5, 80), "g/dL": (0.5, 8)},
    "PROT": {"g/L": (20, 150), "g/dL": (2, 15)},
    "CHOL": {"mmol/L": (0.5, 30), "mg/dL": (20, 1_200)},
    "URATE": {"umol/L": (10, 2_000), "mg/dL": (0.2, 35)},
}
# Terms and tests that mean a pregnancy (CDISC LBTESTCD HCG: choriogonadotropin; MedDRA terms).
PREGNANCY_TESTS: tuple[str, ...] = ("HCG", "HCGB", "BHCG", "PREGTEST")
PREGNANCY_TERM_PATTERN = "%pregnan%"
SERIOUSNESS_FIELDS = ("death", "life-threatening", "hospitalization", "disability", "congenital anomaly",
                      "medically important")


def range_parameters() -> dict[str, list]:
    """The limits and unit aliases as query parameters (lists unnested by the range checks)."""
    tests, units, lows, highs = [], [], [], []
    for test, by_unit in PLAUSIBLE_RANGES.items():
        for unit, (low, high) in by_unit.items():
            tests.append(test)
            units.append(unit)
            lows.append(float(low))
            highs.append(float(high))
    return {"range_tests": tests, "range_units": units, "range_low": lows, "range_high": highs,
            "alias_from": list(UNIT_ALIASES), "alias_to": list(UNIT_ALIASES.values())}


# --- shared relations ----------------------------------------------------------------------------

LIMITS_CTES = """
limits AS (
    SELECT unnest($range_tests) AS test_code, unnest($range_units) AS unit, unnest($range_low) AS low,
           unnest($range_high) AS high
), aliases AS (
    SELECT unnest($alias_from) AS spelled, unnest($alias_to) AS canonical
), unit_pairs AS (
    -- Units are resolved once per distinct (test, unit), not per result: millions of results, few pairs.
    SELECT DISTINCT test_code, unit FROM measurements WHERE test_code IN (SELECT test_code FROM limits)
), pair_limits AS (
    SELECT p.test_code, p.unit, l.unit AS canonical_unit, l.low, l.high,
           (SELECT string_agg(k.unit, ', ' ORDER BY k.unit) FROM limits k WHERE k.test_code = p.test_code) AS units
    FROM unit_pairs p LEFT JOIN aliases a ON a.spelled = upper(trim(p.unit))
    LEFT JOIN limits l ON l.test_code = p.test_code AND l.unit = coalesce(a.canonical, p.unit)
)"""

_DEATHS = """
deaths AS (
    SELECT subject_id, min(death_date) AS death_date, arg_min(source, death_date) AS source FROM (
        SELECT subject_id, event_date AS death_date, 'a death disposition' AS source FROM dispositions
        WHERE upper(decoded_term) = 'DEATH' AND event_date IS NOT NULL
        UNION ALL
        SELECT subject_id, end_date, 'a fatal adverse event' FROM adverse_events
        WHERE upper(outcome) = 'FATAL' AND end_date IS NOT NULL
        UNION ALL
        SELECT subject_id, discontinuation_date, 'discontinuation for death' FROM subjects
        WHERE lower(discontinuation_reason) LIKE '%death%' AND discontinuation_date IS NOT NULL
    ) GROUP BY 1
)"""

_VISIT_LABEL = "coalesce(v.visit_name, 'Visit ' || CAST(v.visit_number AS VARCHAR))"
_AE_LABEL = ("'adverse event ' || coalesce(a.term, '(no term)') || ' (onset ' "
             "|| coalesce(CAST(a.onset_date AS VARCHAR), a.onset_date_text, 'unknown') || ')'")


def _required_sql(table: str, key: str, fields: tuple[str, ...], where: str, label: str, visit: str = "NULL",
                  record_date: str = "NULL") -> str:
    """One finding per empty required field of ``table`` (names from this module, never from input)."""
    parts = []
    for name in fields:
        parts.append(f"""
        SELECT t.study_id, t.study_site_id, t.subject_id,
               CAST(t.{key} AS VARCHAR) AS record_id, {label} AS label, {visit} AS visit, '{name}' AS field,
               NULL AS value, 'a value' AS expected, {record_date} AS record_date,
               concat_ws('|', CAST(t.{key} AS VARCHAR), '{name}') AS evidence
        FROM {table} t WHERE t.{name} IS NULL AND ({where})
          -- a field the study records for nobody is absent from its source, not missing per record
          AND t.study_id IN (SELECT study_id FROM {table} WHERE {name} IS NOT NULL)""")
    return "\nUNION ALL".join(parts)


CATALOGUE: tuple[EditCheck, ...] = (
    # --- missing data ----------------------------------------------------------------------------
    EditCheck(
        "MD01", "Subject record incomplete", "Missing data", "Major", "subjects",
        ("subjects.sex", "subjects.age", "subjects.screening_date", "subjects.consent_date"),
        _required_sql("subjects", "subject_id", ("sex", "age", "screening_date", "consent_date"), "TRUE",
                      "'subject record'", record_date="t.screening_date"),
        "Subject {subject_id}: {field} is empty.",
        "Sex, age, screening and consent dates are required for every screened subject (a field a study records "
        "for no subject at all, e.g. consent in SDTM without RFICDTC, is not checked).",
    ),
    EditCheck(
        "MD02", "Completed visit without a date", "Missing data", "Major", "visits",
        ("visits.status", "visits.actual_date"),
        f"""
        SELECT v.study_id, v.study_site_id, v.subject_id, CAST(v.visit_id AS VARCHAR) AS record_id,
               {_VISIT_LABEL} AS label, {_VISIT_LABEL} AS visit, 'actual_date' AS field, NULL AS value,
               'the visit date' AS expected,
               v.scheduled_date AS record_date, concat_ws('|', v.visit_id, v.status) AS evidence
        FROM visits v WHERE v.status = 'Completed' AND v.actual_date IS NULL""",
        "{visit} of {subject_id} is marked completed but has no visit date.",
        "A visit recorded as completed needs the date it took place.",
    ),
    EditCheck(
        "MD03", "Result missing", "Missing data", "Major", "measurements",
        ("measurements.value", "measurements.test_code"),
        f"""
        SELECT m.study_id, m.study_site_id, m.subject_id, CAST(m.measurement_id AS VARCHAR) AS record_id,
               m.test_code || ' result' AS label, {_VISIT_LABEL} AS visit, m.test_code AS field, NULL AS value,
               'a numeric result' AS expected, m.collected_date AS record_date,
               concat_ws('|', m.measurement_id, m.test_code) AS evidence
        FROM measurements m JOIN numeric_tests n USING (study_id, test_code)
        LEFT JOIN visits v USING (visit_id)
        WHERE m.value IS NULL""",
        "{subject_id}, {visit}: the {field} record has no result.",
        "A lab or vital-sign record of a numeric test without a result (tests whose results are text are "
        "not checked).",
        ctes=f"""
with_missing AS (
    SELECT DISTINCT study_id, test_code FROM measurements WHERE value IS NULL
), numeric_tests AS (
    -- Only the tests that have a missing result at all are weighed (none, in clean data).
    SELECT m.study_id, m.test_code FROM measurements m JOIN with_missing USING (study_id, test_code) GROUP BY ALL
    HAVING count(m.value) >= {NUMERIC_TEST_SHARE} * count(*)
)""",
    ),
    EditCheck(
        "MD04", "Adverse event incomplete", "Missing data", "Major", "adverse_events",
        ("adverse_events.term", "adverse_events.onset_date", "adverse_events.onset_date_text"),
        f"""
        SELECT a.study_id, a.study_site_id, a.subject_id, CAST(a.ae_id AS VARCHAR) AS record_id, {_AE_LABEL} AS label,
               NULL AS visit, f.field, NULL AS value, f.expected, a.report_date AS record_date,
               concat_ws('|', a.ae_id, f.field, a.term, a.onset_date_text) AS evidence
        FROM adverse_events a
        JOIN (SELECT 'term' AS field, 'the adverse event term' AS expected
              UNION ALL SELECT 'onset_date', 'an onset date (complete or partial)') f
          ON (f.field = 'term' AND a.term IS NULL)
          OR (f.field = 'onset_date' AND a.onset_date IS NULL AND a.onset_date_text IS NULL)""",
        "The {label} of {subject_id}: {field} is empty.",
        "Every adverse event needs its term and an onset date.",
    ),
    EditCheck(
        "MD05", "Expected page missing", "Missing data", "Major", "visits",
        ("visits.status", "visits.visit_number", "crf_pages.form"),
        f"""
        SELECT v.study_id, v.study_site_id, v.subject_id, CAST(v.visit_id AS VARCHAR) AS record_id,
               {_VISIT_LABEL} AS label, {_VISIT_LABEL} AS visit, 'form' AS field, NULL AS value, f.form AS expected,
               v.actual_date AS record_date, concat_ws('|', v.visit_id, v.actual_date, f.form) AS evidence
        FROM done d JOIN expected_forms f USING (study_id, visit_number) JOIN visits v USING (visit_id)
        WHERE NOT EXISTS (SELECT 1 FROM crf_pages p WHERE p.visit_id = d.visit_id AND p.form = f.form)""",
        "{visit} of {subject_id} took place but its {expected} page was never created.",
        "A page the visit schedule expects (the form at least "
        f"{EXPECTED_FORM_SHARE:.0%} of the study's completed visits of that number have) is absent. Studies "
        "without eCRF page data (SDTM imports) are not checked.",
        ctes=f"""
done AS (
    SELECT visit_id, study_id, visit_number FROM visits
    WHERE status = 'Completed' AND actual_date IS NOT NULL
      AND study_id IN (SELECT DISTINCT study_id FROM crf_pages)
), with_form AS (
    SELECT d.study_id, d.visit_number, p.form, count(DISTINCT p.visit_id) AS visits_with
    FROM done d JOIN crf_pages p USING (visit_id) GROUP BY ALL
), per_number AS (
    SELECT study_id, visit_number, count(*) AS visits_done FROM done GROUP BY ALL
), expected_forms AS (
    SELECT w.study_id, w.visit_number, w.form FROM with_form w JOIN per_number n USING (study_id, visit_number)
    WHERE n.visits_done >= {MIN_VISITS_FOR_SCHEDULE} AND w.visits_with >= {EXPECTED_FORM_SHARE} * n.visits_done
)""",
    ),
    # --- type and range ----------------------------------------------------------------------------
    EditCheck(
        "TR01", "Unit not valid for the test", "Type and range", "Major", "measurements",
        ("measurements.test_code", "measurements.unit"),
        f"""
        SELECT r.study_id, r.study_site_id, r.subject_id, CAST(r.measurement_id AS VARCHAR) AS record_id,
               r.test_code || ' result' AS label, {_VISIT_LABEL} AS visit, 'unit' AS field,
               coalesce(r.unit, '(none)') AS value, pl.units AS expected,
               r.collected_date AS record_date, concat_ws('|', r.measurement_id, r.test_code, r.unit) AS evidence
        FROM measurements r
        JOIN (SELECT * FROM pair_limits WHERE canonical_unit IS NULL) pl
          ON pl.test_code = r.test_code AND pl.unit IS NOT DISTINCT FROM r.unit
        LEFT JOIN visits v USING (visit_id)
        WHERE r.value IS NOT NULL""",
        "{subject_id}, {visit}: the {label} has unit {value}, not a unit of this test (expected {expected}).",
        "Lab and vital-sign results must carry a unit valid for their test.",
        ctes=LIMITS_CTES,
    ),
    EditCheck(
        "TR02", "Implausible value", "Type and range", "Critical", "measurements",
        ("measurements.test_code", "measurements.value", "measurements.unit"),
        f"""
        SELECT r.study_id, r.study_site_id, r.subject_id, CAST(r.measurement_id AS VARCHAR) AS record_id,
               r.test_code || ' result' AS label, {_VISIT_LABEL} AS visit, r.test_code AS field,
               CAST(r.value AS VARCHAR) || ' ' || coalesce(r.unit, '') AS value,
               CAST(l.low AS VARCHAR) || ' to ' || CAST(l.high AS VARCHAR) || ' ' || l.canonical_unit AS expected,
               r.collected_date AS record_date,
               concat_ws('|', r.measurement_id, r.test_code, r.value, r.unit) AS evidence
        FROM measurements r
        JOIN pair_limits l ON l.test_code = r.test_code AND l.unit IS NOT DISTINCT FROM r.unit
        LEFT JOIN visits v USING (visit_id)
        WHERE l.canonical_unit IS NOT NULL AND (r.value < l.low OR r.value > l.high)""",
        "{subject_id}, {visit}: {field} {value} is outside the plausible range {expected}.",
        "A result outside physiologically possible limits for its test and unit (a typing or unit error, not "
        "an abnormal result).",
        ctes=LIMITS_CTES,
    ),
    # --- date logic --------------------------------------------------------------------------------
    EditCheck(
        "DL01", "Visit before consent", "Date logic", "Critical", "visits",
        ("visits.actual_date", "subjects.consent_date"),
        f"""
        SELECT v.study_id, v.study_site_id, v.subject_id, CAST(v.visit_id AS VARCHAR) AS record_id,
               {_VISIT_LABEL} AS label, {_VISIT_LABEL} AS visit, 'actual_date' AS field,
               CAST(v.actual_date AS VARCHAR) AS value, 'on or after consent (' || CAST(s.consent_date AS VARCHAR) || ')' AS expected,
               v.actual_date AS record_date, concat_ws('|', v.visit_id, v.actual_date, s.consent_date) AS evidence
        FROM visits v JOIN subjects s USING (subject_id)
        WHERE v.actual_date < s.consent_date""",
        "{visit} of {subject_id} on {value} is before informed consent; expected {expected}.",
        "No study visit may take place before the subject signed informed consent.",
    ),
    EditCheck(
        "DL02", "AE ends before it starts", "Date logic", "Major", "adverse_events",
        ("adverse_events.onset_date", "adverse_events.end_date"),
        f"""
        SELECT a.study_id, a.study_site_id, a.subject_id, CAST(a.ae_id AS VARCHAR) AS record_id, {_AE_LABEL} AS label,
               NULL AS visit, 'end_date' AS field, CAST(a.end_date AS VARCHAR) AS value,
               'on or after onset (' || CAST(a.onset_date AS VARCHAR) || ')' AS expected,
               a.onset_date AS record_date, concat_ws('|', a.ae_id, a.onset_date, a.end_date) AS evidence
        FROM adverse_events a WHERE a.end_date < a.onset_date""",
        "The {label} of {subject_id} ends on {value}; expected {expected}.",
        "An adverse event cannot resolve before its onset.",
    ),
    EditCheck(
        "DL03", "Dosing before randomization", "Date logic", "Critical", "exposures",
        ("exposures.start_date", "subjects.randomization_date"),
        """
        SELECT e.study_id, e.study_site_id, e.subject_id, CAST(e.exposure_id AS VARCHAR) AS record_id,
               'first dose' AS label, NULL AS visit, 'start_date' AS field, CAST(e.start_date AS VARCHAR) AS value,
               'on or after randomization (' || CAST(s.randomization_date AS VARCHAR) || ')' AS expected,
               e.start_date AS record_date,
               concat_ws('|', e.exposure_id, e.start_date, s.randomization_date) AS evidence
        FROM exposures e JOIN subjects s USING (subject_id)
        WHERE e.start_date < s.randomization_date""",
        "Study treatment of {subject_id} started on {value}; expected {expected}.",
        "Study treatment cannot start before the subject was randomized (reads exposure dates, never the "
        "treatment).",
        restricted=True,
    ),
    EditCheck(
        "DL04", "Event after death", "Date logic", "Critical", "subjects",
        ("visits.actual_date", "adverse_events.onset_date", "dispositions.decoded_term", "adverse_events.outcome",
         "subjects.discontinuation_reason"),
        f"""
        SELECT v.study_id, v.study_site_id, v.subject_id, 'visit ' || CAST(v.visit_id AS VARCHAR) AS record_id,
               {_VISIT_LABEL} AS label, {_VISIT_LABEL} AS visit, 'visits.actual_date' AS field, CAST(v.actual_date AS VARCHAR) AS value,
               'on or before death (' || CAST(d.death_date AS VARCHAR) || ', from ' || d.source || ')' AS expected,
               v.actual_date AS record_date, concat_ws('|', v.visit_id, v.actual_date, d.death_date) AS evidence
        FROM visits v JOIN deaths d USING (subject_id) WHERE v.actual_date > d.death_date
        UNION ALL
        SELECT a.study_id, a.study_site_id, a.subject_id, 'adverse event ' || CAST(a.ae_id AS VARCHAR), {_AE_LABEL},
               NULL, 'adverse_events.onset_date', CAST(a.onset_date AS VARCHAR),
               'on or before death (' || CAST(d.death_date AS VARCHAR) || ', from ' || d.source || ')',
               a.onset_date, concat_ws('|', a.ae_id, a.onset_date, d.death_date)
        FROM adverse_events a JOIN deaths d USING (subject_id) WHERE a.onset_date > d.death_date""",
        "{subject_id}: {label} dated {value} is after the subject's death; expected {expected}.",
        "No visit or adverse event can start after the subject's death (a death disposition, a fatal adverse "
        "event's end date, or a discontinuation for death).",
        ctes=_DEATHS,
    ),
    EditCheck(
        "DL05", "Visit after study exit", "Date logic", "Major", "visits",
        ("visits.actual_date", "subjects.discontinuation_date"),
        f"""
        SELECT v.study_id, v.study_site_id, v.subject_id, CAST(v.visit_id AS VARCHAR) AS record_id,
               {_VISIT_LABEL} AS label, {_VISIT_LABEL} AS visit, 'actual_date' AS field,
               CAST(v.actual_date AS VARCHAR) AS value, 'on or before discontinuation (' || CAST(s.discontinuation_date AS VARCHAR) || ')' AS expected,
               v.actual_date AS record_date,
               concat_ws('|', v.visit_id, v.actual_date, s.discontinuation_date) AS evidence
        FROM visits v JOIN subjects s USING (subject_id)
        WHERE v.actual_date > s.discontinuation_date""",
        "{visit} of {subject_id} on {value} is after the subject left the study; expected {expected}.",
        "A subject who discontinued has no later study visits.",
    ),
    EditCheck(
        "DL06", "Visit outside its window", "Date logic", "Minor", "visits",
        ("visits.actual_date", "visits.scheduled_date", "visits.window_days"),
        f"""
        SELECT v.study_id, v.study_site_id, v.subject_id, CAST(v.visit_id AS VARCHAR) AS record_id,
               {_VISIT_LABEL} AS label, {_VISIT_LABEL} AS visit, 'actual_date' AS field,
               CAST(v.actual_date AS VARCHAR) AS value, CAST(v.scheduled_date AS VARCHAR) || ' +/- ' || CAST(v.window_days AS VARCHAR) || ' days' AS expected,
               v.actual_date AS record_date,
               concat_ws('|', v.visit_id, v.actual_date, v.scheduled_date, v.window_days) AS evidence
        FROM visits v
        WHERE v.visit_number > 0 AND v.window_days IS NOT NULL
          AND abs(date_diff('day', v.scheduled_date, v.actual_date)) > v.window_days""",
        "{visit} of {subject_id} took place on {value}, outside its window {expected}.",
        "Treatment visits must fall within their protocol window around the scheduled date.",
    ),
    # --- cross-form consistency ---------------------------------------------------------------------
    EditCheck(
        "CF01", "Serious AE without SAE details", "Cross-form consistency", "Critical", "adverse_events",
        ("adverse_events.serious", "adverse_events.serious_criteria"),
        f"""
        SELECT a.study_id, a.study_site_id, a.subject_id, CAST(a.ae_id AS VARCHAR) AS record_id, {_AE_LABEL} AS label,
               NULL AS visit, 'serious_criteria' AS field, NULL AS value, 'at least one seriousness criterion' AS expected,
               a.onset_date AS record_date, concat_ws('|', a.ae_id, a.serious, a.serious_criteria) AS evidence
        FROM adverse_events a
        WHERE a.serious AND coalesce(trim(a.serious_criteria), '') = ''
          AND a.study_id IN (SELECT study_id FROM adverse_events WHERE serious_criteria IS NOT NULL)""",
        "The serious {label} of {subject_id} has no seriousness criteria (SAE details).",
        "A serious adverse event needs its SAE details: which seriousness criteria it met. Studies that record "
        "no criteria at all are not checked.",
    ),
    EditCheck(
        "CF02", "Grade or outcome inconsistent with seriousness", "Cross-form consistency", "Major",
        "adverse_events", ("adverse_events.grade", "adverse_events.outcome", "adverse_events.serious"),
        f"""
        SELECT a.study_id, a.study_site_id, a.subject_id, CAST(a.ae_id AS VARCHAR) AS record_id, {_AE_LABEL} AS label,
               NULL AS visit, 'serious' AS field,
               CASE WHEN upper(a.outcome) = 'FATAL' THEN 'fatal outcome, not serious'
                    ELSE 'grade ' || CAST(a.grade AS VARCHAR) || ', not serious' END AS value,
               'serious' AS expected, a.onset_date AS record_date,
               concat_ws('|', a.ae_id, a.grade, a.outcome, a.serious) AS evidence
        FROM adverse_events a
        WHERE NOT coalesce(a.serious, FALSE) AND a.serious IS NOT NULL
          AND (a.grade >= 4 OR upper(a.outcome) = 'FATAL')""",
        "The {label} of {subject_id}: {value}; a life-threatening or fatal event is {expected}.",
        "A grade 4 (life-threatening) or grade 5 or fatal adverse event must be marked serious.",
    ),
    EditCheck(
        "CF03", "Pregnancy data for a male subject", "Cross-form consistency", "Major", "subjects",
        ("subjects.sex", "adverse_events.term", "measurements.test_code"),
        f"""
        SELECT a.study_id, a.study_site_id, a.subject_id, 'adverse event ' || CAST(a.ae_id AS VARCHAR) AS record_id,
               {_AE_LABEL} AS label, NULL AS visit, 'adverse_events.term' AS field, a.term AS value, 'a female subject' AS expected,
               a.onset_date AS record_date, concat_ws('|', a.ae_id, a.term, s.sex) AS evidence
        FROM adverse_events a JOIN subjects s USING (subject_id)
        WHERE s.sex = 'M' AND lower(a.term) LIKE $pregnancy_term
        UNION ALL
        SELECT m.study_id, m.study_site_id, m.subject_id, 'result ' || CAST(m.measurement_id AS VARCHAR),
               m.test_code || ' result', {_VISIT_LABEL}, 'measurements.test_code', m.test_code, 'a female subject', m.collected_date,
               concat_ws('|', m.measurement_id, m.test_code, s.sex)
        FROM measurements m JOIN subjects s USING (subject_id) LEFT JOIN visits v USING (visit_id)
        WHERE s.sex = 'M' AND list_contains($pregnancy_tests, upper(m.test_code))""",
        "{subject_id} is male but has pregnancy data: {label}.",
        "Pregnancy adverse events and pregnancy tests are recorded only for female subjects.",
    ),
    # --- duplicates ------------------------------------------------------------------------------------
    EditCheck(
        "DU01", "Duplicate result", "Duplicates", "Major", "measurements",
        ("measurements.subject_id", "measurements.visit_id", "measurements.test_code", "measurements.time_point"),
        f"""
        SELECT m.study_id, m.study_site_id, m.subject_id, CAST(m.measurement_id AS VARCHAR) AS record_id,
               m.test_code || ' result' AS label, {_VISIT_LABEL} AS visit, m.test_code AS field,
               CAST(m.value AS VARCHAR) AS value,
               'one result (first: record ' || CAST(r.first_id AS VARCHAR) || ')' AS expected,
               m.collected_date AS record_date,
               concat_ws('|', m.measurement_id, r.first_id, m.value, m.collected_date) AS evidence
        FROM measurements m
        JOIN repeated_in_visit r ON r.visit_id = m.visit_id AND r.test_code = m.test_code
         AND r.time_point IS NOT DISTINCT FROM m.time_point
        LEFT JOIN visits v ON v.visit_id = m.visit_id
        WHERE m.measurement_id <> r.first_id
        UNION ALL
        SELECT m.study_id, m.study_site_id, m.subject_id, CAST(m.measurement_id AS VARCHAR), m.test_code || ' result',
               'collected ' || CAST(m.collected_date AS VARCHAR), m.test_code, CAST(m.value AS VARCHAR),
               'one result (first: record ' || CAST(r.first_id AS VARCHAR) || ')', m.collected_date,
               concat_ws('|', m.measurement_id, r.first_id, m.value, m.collected_date)
        FROM measurements m
        JOIN repeated_in_day r ON r.subject_id = m.subject_id AND r.test_code = m.test_code
         AND r.collected_date IS NOT DISTINCT FROM m.collected_date AND r.time_point IS NOT DISTINCT FROM m.time_point
        WHERE m.visit_id IS NULL AND m.measurement_id <> r.first_id""",
        "{subject_id}, {visit}: {field} recorded more than once ({expected}).",
        "A subject has one result per test, visit (or collection day, without a visit) and time point.",
        ctes="""
repeated_in_visit AS (
    -- Visit ids are unique across subjects, so the visit (an integer) keys the result: no text over millions of rows.
    SELECT visit_id, test_code, time_point, min(measurement_id) AS first_id
    FROM measurements WHERE visit_id IS NOT NULL AND test_code IS NOT NULL GROUP BY ALL HAVING count(*) > 1
), repeated_in_day AS (
    SELECT subject_id, collected_date, test_code, time_point, min(measurement_id) AS first_id
    FROM measurements WHERE visit_id IS NULL AND test_code IS NOT NULL GROUP BY ALL HAVING count(*) > 1
)""",
    ),
)

CATALOGUE_BY_ID: dict[str, EditCheck] = {c.id: c for c in CATALOGUE}


def check_parameters() -> dict[str, object]:
    """Every parameter the catalogue's SQL uses (the engine passes only those a check names)."""
    return {**range_parameters(), "pregnancy_term": PREGNANCY_TERM_PATTERN, "pregnancy_tests": list(PREGNANCY_TESTS)}
