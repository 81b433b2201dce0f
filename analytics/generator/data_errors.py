"""Labelled data errors injected into a generated portfolio: ground truth for the edit checks.

The generator's own output is clean (no visit outside its window, none after a subject left, no
fatal event followed by visits, no value beyond physiological limits), so every finding an edit
check makes on it is a false finding. This module then changes a few chosen records, each of one
edit check's kind, and writes what it changed to ``truth.data_errors`` with the check that should
find it (``python -m analytics eval quality`` measures recall against it).

Records are chosen deterministically for a seed (ordered by a hash of their key and the seed), each
error on a subject no other error touched, so one error never masks another.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

import duckdb
import pandas as pd

# Units that are wrong for a test (the unit check must reject them).
WRONG_UNITS = {"ALT": "mg/dL", "AST": "mg/dL", "PLAT": "g/L", "WBC": "g/L", "SODIUM": "mg/dL", "K": "mg/dL",
               "PULSE": "mmHg", "SYSBP": "beats/min", "DIABP": "beats/min", "TEMP": "kg", "WEIGHT": "C"}
VITAL_SLIP = 10  # a vital sign typed with an extra digit
PREGNANCY_TERM = "Pregnancy"
PREGNANCY_SOC = "Pregnancy, puerperium and perinatal conditions"
MISSING_SUBJECT_FIELDS = ("sex", "age", "screening_date", "consent_date")

Injection = Callable[[duckdb.DuckDBPyConnection, int, int, list[str], dt.date], pd.DataFrame]


def _pick(con: duckdb.DuckDBPyConnection, sql: str, count: int, seed: int, used: list[str],
          params: dict[str, object] | None = None) -> pd.DataFrame:
    """``count`` rows of ``sql`` (which yields ``subject_id`` and ``pick_key``) on subjects not yet used,
    one row per subject, in a seed-determined order."""
    return con.execute(
        f"""
        SELECT * EXCLUDE (rank) FROM (
            SELECT c.*, row_number() OVER (PARTITION BY c.subject_id ORDER BY hash(c.pick_key, $seed)) AS rank
            FROM ({sql}) c WHERE NOT list_contains($used, c.subject_id)
        ) WHERE rank = 1 ORDER BY hash(pick_key, $seed) LIMIT $n""",
        {"seed": seed, "used": used, "n": count, **(params or {})},
    ).df()


def _truth(rows: pd.DataFrame, category: str, check_id: str, table: str, record_id: pd.Series,
           detail: pd.Series | str) -> pd.DataFrame:
    return pd.DataFrame({"category": category, "check_id": check_id, "study_id": rows["study_id"],
                         "study_site_id": rows["study_site_id"], "subject_id": rows["subject_id"],
                         "table_name": table, "record_id": record_id.astype(str), "detail": detail})


def _next_id(con: duckdb.DuckDBPyConnection, sql: str) -> int:
    """The value of a one-cell query (the next free key of a table)."""
    return int(con.execute(sql).fetchall()[0][0])


def _register(con: duckdb.DuckDBPyConnection, rows: pd.DataFrame) -> None:
    con.register("_picked", rows)


@dataclass(frozen=True)
class UpdateError:
    """An error made by one UPDATE of the chosen records: which table, key, candidates and change."""

    check_id: str
    category: str
    table: str
    key: str
    candidates: str  # WHERE clause over the table (constant text)
    change: str  # SET clause (constant text)
    detail: str

    def __call__(self, con: duckdb.DuckDBPyConnection, count: int, seed: int, used: list[str],
                 as_of: dt.date) -> pd.DataFrame:
        rows = _pick(con, f"SELECT study_id, study_site_id, subject_id, {self.key}, CAST({self.key} AS VARCHAR) "
                          f"AS pick_key FROM main.{self.table} WHERE {self.candidates}", count, seed, used)
        # Table, key and clauses come from the declarations below, never from input.
        con.execute(f"UPDATE main.{self.table} SET {self.change} WHERE list_contains($ids, {self.key})",
                    {"ids": rows[self.key].tolist()})
        return _truth(rows, self.category, self.check_id, self.table, rows[self.key], self.detail)


UPDATE_ERRORS: tuple[UpdateError, ...] = (
    UpdateError("MD02", "Missing data", "visits", "visit_id", "status = 'Completed' AND visit_number > 0",
                "actual_date = NULL", "emptied the date of a completed visit"),
    UpdateError("MD03", "Missing data", "measurements", "measurement_id", "TRUE", "value = NULL", "emptied a result"),
    UpdateError("MD04", "Missing data", "adverse_events", "ae_id", "TRUE", "term = NULL",
                "emptied an adverse event term"),
    UpdateError("TR02", "Type and range", "measurements", "measurement_id", "value > 0",
                f"value = CASE WHEN domain = 'VS' THEN value * {VITAL_SLIP} ELSE -value END",
                f"vital sign multiplied by {VITAL_SLIP}, or lab result made negative"),
    UpdateError("DL02", "Date logic", "adverse_events", "ae_id", "end_date IS NOT NULL", "end_date = onset_date - 3",
                "end date set before onset"),
    UpdateError("DL06", "Date logic", "visits", "visit_id",
                "status = 'Completed' AND actual_date IS NOT NULL AND visit_number >= 2 AND window_days IS NOT NULL",
                "actual_date = scheduled_date - (window_days + 4)", "visit moved before its window"),
    UpdateError("CF01", "Cross-form consistency", "adverse_events", "ae_id", "serious", "serious_criteria = NULL",
                "seriousness criteria removed from a serious AE"),
    UpdateError("CF02", "Cross-form consistency", "adverse_events", "ae_id", "NOT serious", "grade = 4",
                "a non-serious AE given grade 4"),
)
_UPDATES = {error.check_id: error for error in UPDATE_ERRORS}


def _missing_subject_field(con, count, seed, used, as_of):
    rows = _pick(con, "SELECT study_id, study_site_id, subject_id, subject_id AS pick_key FROM main.subjects "
                      "WHERE randomization_date IS NOT NULL", count, seed, used)
    rows["field"] = [MISSING_SUBJECT_FIELDS[i % len(MISSING_SUBJECT_FIELDS)] for i in range(len(rows))]
    for field in MISSING_SUBJECT_FIELDS:
        ids = rows.loc[rows["field"] == field, "subject_id"].tolist()
        con.execute(f"UPDATE main.subjects SET {field} = NULL WHERE list_contains($ids, subject_id)", {"ids": ids})
    return _truth(rows, "Missing data", "MD01", "subjects", rows["subject_id"], "emptied " + rows["field"])


def _missing_page(con, count, seed, used, as_of):
    rows = _pick(con, """
        SELECT p.study_id, p.study_site_id, p.subject_id, p.page_id, p.visit_id, CAST(p.page_id AS VARCHAR) AS pick_key
        FROM main.crf_pages p JOIN main.visits v USING (visit_id)
        WHERE v.status = 'Completed' AND v.actual_date IS NOT NULL AND v.visit_number <= 2""", count, seed, used)
    ids = rows["page_id"].tolist()
    con.execute("DELETE FROM main.queries WHERE list_contains($ids, page_id)", {"ids": ids})
    con.execute("DELETE FROM main.crf_pages WHERE list_contains($ids, page_id)", {"ids": ids})
    return _truth(rows, "Missing data", "MD05", "visits", rows["visit_id"], "deleted an expected eCRF page")


def _wrong_unit(con, count, seed, used, as_of):
    rows = _pick(con, "SELECT study_id, study_site_id, subject_id, measurement_id, test_code, "
                      "CAST(measurement_id AS VARCHAR) AS pick_key FROM main.measurements "
                      "WHERE list_contains($tests, test_code)", count, seed, used, {"tests": list(WRONG_UNITS)})
    rows["wrong"] = rows["test_code"].map(WRONG_UNITS)
    _register(con, rows[["measurement_id", "wrong"]])
    con.execute("UPDATE main.measurements m SET unit = p.wrong FROM _picked p WHERE m.measurement_id = p.measurement_id")
    con.unregister("_picked")
    return _truth(rows, "Type and range", "TR01", "measurements", rows["measurement_id"],
                  "unit set to " + rows["wrong"])


def _visit_before_consent(con, count, seed, used, as_of):
    rows = _pick(con, """
        SELECT v.study_id, v.study_site_id, v.subject_id, v.visit_id, v.actual_date,
               CAST(v.visit_id AS VARCHAR) AS pick_key
        FROM main.visits v JOIN main.subjects s USING (subject_id)
        WHERE v.visit_number = 0 AND v.actual_date IS NOT NULL AND s.randomization_date > v.actual_date + 6""",
                 count, seed, used)
    rows["shift"] = [1 + i % 5 for i in range(len(rows))]
    _register(con, rows[["subject_id", "actual_date", "shift"]])
    con.execute("UPDATE main.subjects s SET consent_date = CAST(p.actual_date AS DATE) + CAST(p.shift AS INTEGER) "
                "FROM _picked p WHERE s.subject_id = p.subject_id")
    con.unregister("_picked")
    return _truth(rows, "Date logic", "DL01", "visits", rows["visit_id"], "consent moved after the screening visit")


def _dosing_before_randomization(con, count, seed, used, as_of):
    rows = _pick(con, "SELECT study_id, study_site_id, subject_id, randomization_date, subject_id AS pick_key "
                      "FROM main.subjects WHERE randomization_date IS NOT NULL", count, seed, used)
    start = _next_id(con, "SELECT coalesce(max(exposure_id), 0) + 1 FROM restricted.main.exposures")
    rows["exposure_id"] = range(start, start + len(rows))
    _register(con, rows[["exposure_id", "study_id", "study_site_id", "subject_id", "randomization_date"]])
    con.execute("""
        INSERT INTO restricted.main.exposures (exposure_id, study_id, study_site_id, subject_id, treatment, start_date,
                                               start_date_text)
        SELECT exposure_id, study_id, study_site_id, subject_id, 'Study treatment',
               CAST(randomization_date AS DATE) - 2, CAST(CAST(randomization_date AS DATE) - 2 AS VARCHAR)
        FROM _picked""")
    con.unregister("_picked")
    return _truth(rows, "Date logic", "DL03", "exposures", rows["exposure_id"], "first dose two days before randomization")


def _event_after_death(con, count, seed, used, as_of):
    rows = _pick(con, """
        SELECT study_id, study_site_id, subject_id, subject_id AS pick_key,
               max(visit_id) FILTER (WHERE last) AS last_visit, max(actual_date) FILTER (WHERE second) AS death
        FROM (SELECT v.*, row_number() OVER (PARTITION BY subject_id ORDER BY actual_date DESC) = 1 AS last,
                     row_number() OVER (PARTITION BY subject_id ORDER BY actual_date DESC) = 2 AS second
              FROM main.visits v WHERE actual_date IS NOT NULL)
        GROUP BY ALL HAVING count(*) >= 3 AND max(actual_date) FILTER (WHERE second) < max(actual_date)""",
                 count, seed, used)
    start = _next_id(con, "SELECT coalesce(max(disposition_id), 0) + 1 FROM main.dispositions")
    rows["disposition_id"] = range(start, start + len(rows))
    _register(con, rows[["disposition_id", "study_id", "study_site_id", "subject_id", "death"]])
    con.execute("""
        INSERT INTO main.dispositions (disposition_id, study_id, study_site_id, subject_id, category, decoded_term,
                                       reported_term, event_date, event_date_text, event_date_precision)
        SELECT disposition_id, study_id, study_site_id, subject_id, 'DISPOSITION EVENT', 'DEATH', 'Death',
               CAST(death AS DATE), CAST(CAST(death AS DATE) AS VARCHAR), 'day' FROM _picked""")
    con.unregister("_picked")
    return _truth(rows, "Date logic", "DL04", "subjects", "visit " + rows["last_visit"].astype(str),
                  "death recorded before the subject's last visit")


def _visit_after_exit(con, count, seed, used, as_of):
    rows = _pick(con, """
        SELECT v.study_id, v.study_site_id, v.subject_id, arg_max(v.visit_id, v.actual_date) AS visit_id,
               v.subject_id AS pick_key
        FROM main.visits v JOIN main.subjects s USING (subject_id)
        WHERE s.discontinuation_date IS NOT NULL AND v.actual_date IS NOT NULL AND v.visit_number > 0
        GROUP BY ALL""", count, seed, used)
    con.execute("""
        UPDATE main.visits v SET actual_date = s.discontinuation_date + 2
        FROM main.subjects s WHERE s.subject_id = v.subject_id AND list_contains($ids, v.visit_id)""",
                {"ids": rows["visit_id"].tolist()})
    return _truth(rows, "Date logic", "DL05", "visits", rows["visit_id"], "last visit dated after discontinuation")


def _pregnancy_male(con, count, seed, used, as_of):
    rows = _pick(con, """
        SELECT study_id, study_site_id, subject_id, randomization_date, subject_id AS pick_key FROM main.subjects
        WHERE sex = 'M' AND randomization_date IS NOT NULL
          AND coalesce(discontinuation_date, DATE '2999-12-31') > randomization_date + 20
          AND randomization_date + 20 < $as_of""", count, seed, used, {"as_of": as_of})
    start = _next_id(con, "SELECT coalesce(max(ae_id), 0) + 1 FROM main.adverse_events")
    rows["ae_id"] = range(start, start + len(rows))
    _register(con, rows[["ae_id", "study_id", "study_site_id", "subject_id", "randomization_date"]])
    con.execute(f"""
        INSERT INTO main.adverse_events (ae_id, study_id, study_site_id, subject_id, term, body_system, serious, grade,
                                         onset_date, onset_date_text, end_date, report_date, outcome)
        SELECT ae_id, study_id, study_site_id, subject_id, '{PREGNANCY_TERM}', '{PREGNANCY_SOC}', FALSE, 1,
               CAST(randomization_date AS DATE) + 10, CAST(CAST(randomization_date AS DATE) + 10 AS VARCHAR),
               CAST(randomization_date AS DATE) + 15, CAST(randomization_date AS DATE) + 12, 'RECOVERED/RESOLVED'
        FROM _picked""")
    con.unregister("_picked")
    return _truth(rows, "Cross-form consistency", "CF03", "subjects", "adverse event " + rows["ae_id"].astype(str),
                  "a pregnancy AE recorded for a male subject")


def _duplicate_result(con, count, seed, used, as_of):
    rows = _pick(con, "SELECT study_id, study_site_id, subject_id, measurement_id, "
                      "CAST(measurement_id AS VARCHAR) AS pick_key FROM main.measurements WHERE visit_id IS NOT NULL",
                 count, seed, used)
    start = _next_id(con, "SELECT max(measurement_id) + 1 FROM main.measurements")
    rows["copy_id"] = range(start, start + len(rows))
    _register(con, rows[["measurement_id", "copy_id"]])
    con.execute("INSERT INTO main.measurements BY NAME SELECT m.* EXCLUDE (measurement_id), p.copy_id AS "
                "measurement_id FROM main.measurements m JOIN _picked p ON p.measurement_id = m.measurement_id")
    con.unregister("_picked")
    return _truth(rows, "Duplicates", "DU01", "measurements", rows["copy_id"], "a result entered twice")


INJECTIONS: tuple[tuple[str, Injection], ...] = (
    ("MD01", _missing_subject_field), ("MD02", _UPDATES["MD02"]), ("MD03", _UPDATES["MD03"]),
    ("MD04", _UPDATES["MD04"]), ("MD05", _missing_page), ("TR01", _wrong_unit), ("TR02", _UPDATES["TR02"]),
    ("DL01", _visit_before_consent), ("DL02", _UPDATES["DL02"]), ("DL03", _dosing_before_randomization),
    ("DL04", _event_after_death), ("DL05", _visit_after_exit), ("DL06", _UPDATES["DL06"]),
    ("CF01", _UPDATES["CF01"]), ("CF02", _UPDATES["CF02"]), ("CF03", _pregnancy_male),
    ("DU01", _duplicate_result),
)


def inject_data_errors(con: duckdb.DuckDBPyConnection, per_check: int, seed: int, as_of: dt.date) -> pd.DataFrame:
    """Inject ``per_check`` errors of every edit check's kind; record and return them (``truth.data_errors``)."""
    if per_check <= 0:
        return pd.DataFrame()
    used: list[str] = []
    parts = []
    for number, (check_id, inject) in enumerate(INJECTIONS):
        rows = inject(con, per_check, seed + 7919 * number, used, as_of)
        used += rows["subject_id"].dropna().astype(str).tolist()
        parts.append(rows)
    truth = pd.concat(parts, ignore_index=True)
    first = _next_id(con, "SELECT coalesce(max(error_id), 0) + 1 FROM truth.data_errors")
    truth.insert(0, "error_id", range(first, first + len(truth)))
    con.register("_errors", truth)
    con.execute("INSERT INTO truth.data_errors BY NAME SELECT * FROM _errors")
    con.unregister("_errors")
    return truth
