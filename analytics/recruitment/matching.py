"""Matching: every patient of a pool against every criterion, met / not met / unknown, with the evidence.

One engine evaluates an :class:`~analytics.recruitment.criteria.Atom` by its kind over the whole pool
at once (numpy and pandas over the pool's records, no loop over patients), then combines atoms into
the criterion's statement (any / all, negation) and the statement into *passes* (an inclusion passes
when its statement is true, an exclusion when it is false). Unknown is never "not met": a patient
with no recent result, a unit that cannot be converted, a result older than the criterion's window,
or a criterion that needs review stays unknown and goes to a person.

Rules (the generator's ground truth follows the same ones, written independently):

* **Labs**: the most recent result within the criterion's window (default
  :data:`DEFAULT_LAB_LOOKBACK_DAYS`) before screening, converted to the criterion's unit (pint, molar
  masses, the HbA1c line) or read against the result's upper limit of normal for "x ULN"; a result
  exactly on the threshold meets an inclusive comparator. No result in the window: unknown (the
  evidence names the older result, if any).
* **Conditions**: ICD-10-CM code prefixes, or the vocabulary's phrases in the record's name;
  refuted or entered-in-error records never count. A window counts the onset or the abatement inside
  it, or a condition still active (acute events such as infarction and stroke count by onset only);
  a duration ("for at least 6 months") needs an onset at least that long before screening. No record:
  not present, when the patient's condition list is stated complete; otherwise unknown ("list not
  stated complete"), and so is every "not present" the records would give (a missing record could say
  otherwise). A record that qualifies still counts.
* **Medications**: WHO ATC prefixes, or drug and class names in the record; "current" means active at
  screening, a window means used at any time within it (a washout), otherwise any use ever. Absence
  and every "not used" are unknown unless the medication list is stated complete, as for conditions.
* **Pregnancy, breastfeeding, contraception**: from a pregnancy-status observation within
  :data:`PREGNANCY_STATUS_DAYS`; men, and women over :data:`CHILDBEARING_AGE_LIMIT`, are neither
  pregnant nor breastfeeding and need no contraception (documented assumptions); other women are
  unknown until the screening visit.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from analytics.recruitment import units
from analytics.recruitment.criteria import EXCLUSION, STRUCTURED, ULN, Atom, Criterion
from analytics.recruitment.pool import ICD10CM, Pool
from analytics.recruitment.vocabulary import ACUTE_EVENTS, LABS_BY_KEY, PREGNANCY_LOINC

MET, NOT_MET, UNKNOWN = 1, 0, -1
DEFAULT_LAB_LOOKBACK_DAYS = 365
PREGNANCY_STATUS_DAYS = 42
CHILDBEARING_AGE_LIMIT = 55
RELATIVE_TOLERANCE = 1e-6  # unit conversions round-trip with float error; a value on the threshold stays on it
# Why a result is what it is (codes in MatchResult.reason).
REASONS = (
    "",  # a record decided it
    "no record",  # conditions and medications: absence means not present
    "no result",  # labs: nothing recorded
    "result outside the window",  # labs: only older results
    "unit cannot be converted",
    "ruled out (refuted record)",
    "outside the time window",
    "onset date missing",
    "assumed (sex or age)",
    "confirm at screening",
    "needs review",
    "confirmed at screening (not from records)",
    "sex not recorded",
    "age not recorded",
    "resolved",
    "diagnosed too recently",
    "list not stated complete",
)
R = {name: code for code, name in enumerate(REASONS)}


@dataclass
class AtomResult:
    """One atom over the pool: a status per patient and the evidence behind it."""

    status: np.ndarray  # int8: 1 true, 0 false, -1 unknown
    reason: np.ndarray  # int8 index into REASONS
    record: np.ndarray  # object: record id or None
    value: np.ndarray  # float64 (the value compared, in the criterion's unit)
    unit: np.ndarray  # object
    day: np.ndarray  # float64: the record's date (days since 1970), NaN when none

    @classmethod
    def blank(cls, n: int, status: int, reason: str) -> "AtomResult":
        return cls(np.full(n, status, dtype="int8"), np.full(n, R[reason], dtype="int8"), np.full(n, None, dtype=object),
                   np.full(n, np.nan), np.full(n, None, dtype=object), np.full(n, np.nan))

    def take(self, mask: np.ndarray, other: "AtomResult") -> None:
        """Copy ``other``'s values where ``mask`` holds."""
        for name in ("status", "reason", "record", "value", "unit", "day"):
            getattr(self, name)[mask] = getattr(other, name)[mask]


def compare(values: np.ndarray, atom: Atom) -> np.ndarray:
    tol = RELATIVE_TOLERANCE * max(abs(atom.value or 0.0), abs(atom.value_high or 0.0), 1.0)
    v, t = values, atom.value
    if atom.comparator == ">=":
        return v >= t - tol
    if atom.comparator == ">":
        return v > t + tol
    if atom.comparator == "<=":
        return v <= t + tol
    if atom.comparator == "<":
        return v < t - tol
    if atom.comparator == "between":
        return (v >= t - tol) & (v <= atom.value_high + tol)
    raise ValueError(f"atom {atom.describe()} has no comparator")


def _latest_per_patient(frame: pd.DataFrame, day_column: str, ascending_before: bool = True) -> pd.DataFrame:
    """The most recent row per patient (smallest days-before-screening)."""
    if frame.empty:
        return frame
    ordered = frame.sort_values(["pi", day_column], ascending=[True, ascending_before], kind="stable")
    return ordered.drop_duplicates("pi", keep="first")


def _fill(result: AtomResult, rows: pd.DataFrame, status: np.ndarray | int, reason: str, value_column: str | None,
          unit: str | None, day_column: str | None) -> None:
    if rows.empty:
        return
    pi = rows["pi"].to_numpy()
    result.status[pi] = status
    result.reason[pi] = R[reason]
    result.record[pi] = rows["record_id"].to_numpy(dtype=object)
    if value_column:
        result.value[pi] = rows[value_column].to_numpy(dtype="float64")
        result.unit[pi] = unit
    if day_column:
        result.day[pi] = rows[day_column].to_numpy(dtype="float64")


# --- atoms ----------------------------------------------------------------------------------------


def _age(pool: Pool, atom: Atom) -> AtomResult:
    n = len(pool)
    result = AtomResult.blank(n, UNKNOWN, "age not recorded")
    known = ~np.isnan(pool.age)
    result.status[known] = compare(pool.age[known], atom).astype("int8")
    result.reason[known] = R[""]
    result.value[known] = pool.age[known]
    result.unit[known] = "years"
    return result


def _sex(pool: Pool, atom: Atom) -> AtomResult:
    result = AtomResult.blank(len(pool), UNKNOWN, "sex not recorded")
    known = np.isin(pool.sex, ("F", "M"))
    result.status[known] = np.isin(pool.sex[known], atom.sexes).astype("int8")
    result.reason[known] = R[""]
    return result


def _lab_rows(pool: Pool, atom: Atom) -> pd.DataFrame:
    obs = pool.observation_records
    if obs.empty:
        return obs
    mask = obs["code_norm"].isin([c.upper() for c in atom.codes]).to_numpy() | (obs["lab"] == atom.concept).to_numpy()
    return obs.loc[mask]


def _converted(rows: pd.DataFrame, atom: Atom) -> np.ndarray:
    """Each result in the criterion's unit (or as a multiple of its upper limit of normal); NaN if impossible."""
    values = rows["value"].to_numpy(dtype="float64")
    if atom.unit == ULN:
        return values / rows["ref_high"].to_numpy(dtype="float64")
    term = LABS_BY_KEY.get(atom.concept)
    out = np.full(len(rows), np.nan)
    unit_of = rows["unit"].astype("string").fillna("").to_numpy(dtype=object)
    for source in pd.unique(unit_of):
        at = unit_of == source
        if atom.unit in (None, "1") and source in ("", "1", "{score}", "score", "points"):
            out[at] = values[at]
            continue
        out[at] = units.convert_values(values[at], source or (term.unit if term else ""), atom.unit or "",
                                       term.molar_mass if term else None, bool(term and term.hba1c))
    return out


def lab_results(pool: Pool, atom: Atom) -> pd.DataFrame:
    """The pool's results of the atom's test, each with ``converted``: the value in the criterion's unit (NaN when
    it cannot be converted) and ``effective_date_before``: days before that patient's screening."""
    rows = _lab_rows(pool, atom)
    return rows.assign(converted=_converted(rows, atom)) if not rows.empty else rows


def lab_window(atom: Atom) -> float:
    """How far back (days before screening) a result still counts for the atom."""
    return atom.within_days if atom.within_days is not None else DEFAULT_LAB_LOOKBACK_DAYS


def _lab(pool: Pool, atom: Atom) -> AtomResult:
    n = len(pool)
    result = AtomResult.blank(n, UNKNOWN, "no result")
    rows = lab_results(pool, atom)
    if rows.empty:
        return result
    window = lab_window(atom)
    before = rows["effective_date_before"].to_numpy()
    in_window = (before >= 0) & (before <= window)
    older = _latest_per_patient(rows.loc[(before > window)], "effective_date_before")
    _fill(result, older, UNKNOWN, "result outside the window", "value", None, "effective_date_before")
    if not older.empty:
        result.unit[older["pi"].to_numpy()] = older["unit"].to_numpy(dtype=object)
    recent = rows.loc[in_window]
    usable = recent.loc[recent["converted"].notna()]
    unusable = recent.loc[recent["converted"].isna()]
    unusable = _latest_per_patient(unusable, "effective_date_before")
    _fill(result, unusable, UNKNOWN, "unit cannot be converted", "value", None, "effective_date_before")
    if not unusable.empty:
        result.unit[unusable["pi"].to_numpy()] = unusable["unit"].to_numpy(dtype=object)
    latest = _latest_per_patient(usable, "effective_date_before")
    if not latest.empty:
        status = compare(latest["converted"].to_numpy(), atom).astype("int8")
        _fill(result, latest, status, "", "converted", atom.unit, "effective_date_before")
    _to_dates(result, pool)
    return result


def _to_dates(result: AtomResult, pool: Pool) -> None:
    """Evidence dates were carried as days before screening; store them as days since 1970."""
    has = ~np.isnan(result.day)
    result.day[has] = pool.screening_day[has] - result.day[has]


def _prefix_match(codes: pd.Series, prefixes: tuple[str, ...]) -> np.ndarray:
    if not prefixes:
        return np.zeros(len(codes), dtype=bool)
    return codes.astype(str).str.startswith(tuple(p.upper() for p in prefixes)).to_numpy()


def _condition(pool: Pool, atom: Atom) -> AtomResult:
    n = len(pool)
    result = AtomResult.blank(n, NOT_MET, "no record")
    cond = pool.condition_records
    if cond.empty:
        return result
    coded = cond["system_norm"].isin(("", ICD10CM, "ICD10CM", "ICD-10", "ICD10")).to_numpy()
    by_code = coded & _prefix_match(cond["code_norm"], atom.codes) & ~_prefix_match(cond["code_norm"], atom.except_codes)
    by_name = np.array([atom.concept in c for c in cond["concepts"]], dtype=bool) if atom.concept else False
    rows = cond.loc[by_code | (by_name & ~_prefix_match(cond["code_norm"], atom.except_codes))]
    if rows.empty:
        return result
    verification = rows["verification_status"].astype("string").fillna("").str.lower()
    refuted = verification.isin(("refuted", "entered-in-error")).to_numpy()
    _fill(result, _latest_per_patient(rows.loc[refuted], "onset_date_before"), NOT_MET, "ruled out (refuted record)",
          None, None, "onset_date_before")
    rows = rows.loc[~refuted]
    status = rows["clinical_status"].astype("string").fillna("active").str.lower()
    active = status.isin(("active", "recurrence", "relapse")).to_numpy() & rows["abatement_date_before"].isna().to_numpy()
    onset = rows["onset_date_before"].to_numpy()
    abated = rows["abatement_date_before"].to_numpy()
    qualifies = np.ones(len(rows), dtype=bool)
    unknown = np.zeros(len(rows), dtype=bool)
    near_reason = np.full(len(rows), "", dtype=object)
    if atom.current:
        near_reason[~active] = "resolved"
        qualifies &= active
    if atom.within_days is not None:
        in_window = (onset <= atom.within_days) | (abated <= atom.within_days)
        if atom.concept not in ACUTE_EVENTS:
            in_window |= active
        near_reason[~in_window & (near_reason == "")] = "outside the time window"
        unknown |= np.isnan(onset) & ~in_window & np.isnan(abated)
        qualifies &= in_window
    if atom.at_least_days is not None:
        long_enough = onset >= atom.at_least_days
        unknown |= np.isnan(onset)
        near_reason[~long_enough & ~np.isnan(onset) & (near_reason == "")] = "diagnosed too recently"
        qualifies &= long_enough
    near = rows.loc[~qualifies & ~unknown]
    for reason in ("resolved", "outside the time window", "diagnosed too recently"):
        _fill(result, _latest_per_patient(near.loc[near_reason[~qualifies & ~unknown] == reason], "onset_date_before"),
              NOT_MET, reason, None, None, "onset_date_before")
    _fill(result, _latest_per_patient(rows.loc[unknown & ~qualifies], "onset_date_before"), UNKNOWN, "onset date missing",
          None, None, "onset_date_before")
    _fill(result, _latest_per_patient(rows.loc[qualifies], "onset_date_before"), MET, "", None, None, "onset_date_before")
    _to_dates(result, pool)
    return result


def _medication(pool: Pool, atom: Atom) -> AtomResult:
    n = len(pool)
    result = AtomResult.blank(n, NOT_MET, "no record")
    meds = pool.medication_records
    if meds.empty:
        return result
    prefixes = tuple(p.upper() for p in atom.codes)
    excluded = tuple(p.upper() for p in atom.except_codes)
    match = np.array([any(c.startswith(prefixes) and not (excluded and c.startswith(excluded)) for c in codes)
                      for codes in meds["atc"]], dtype=bool)
    rows = meds.loc[match]
    if rows.empty:
        return result
    start = rows["start_date_before"].to_numpy()
    end = rows["end_date_before"].to_numpy()
    status = rows["status"].astype("string").fillna("active").str.lower()
    erroneous = status.isin(("entered-in-error", "not-taken", "intended")).to_numpy()
    started = np.isnan(start) | (start >= 0)
    ongoing = np.isnan(end) & ~status.isin(("completed", "stopped")).to_numpy()
    if atom.current:
        qualifies = started & (ongoing | (end <= 0))
    elif atom.within_days is not None:
        qualifies = started & (ongoing | (end <= atom.within_days))
        unknown = np.isnan(end) & ~ongoing  # stopped, date unknown
    else:
        qualifies = started
    qualifies &= ~erroneous
    near = rows.loc[~qualifies & ~erroneous]
    _fill(result, _latest_per_patient(near, "end_date_before"), NOT_MET, "outside the time window", None, None,
          "end_date_before")
    if atom.within_days is not None and not atom.current:
        _fill(result, _latest_per_patient(rows.loc[unknown & ~erroneous], "start_date_before"), UNKNOWN,
              "outside the time window", None, None, "start_date_before")
    _fill(result, _latest_per_patient(rows.loc[qualifies], "start_date_before"), MET, "", None, None, "start_date_before")
    _to_dates(result, pool)
    return result


def _reproductive(pool: Pool, atom: Atom) -> AtomResult:
    """Pregnancy from records; breastfeeding and contraception confirmed at screening; assumptions by sex and age."""
    n = len(pool)
    true_if_not_applicable = NOT_MET if atom.kind in ("pregnancy", "breastfeeding") else MET
    result = AtomResult.blank(n, UNKNOWN, "confirm at screening")
    not_applicable = (pool.sex == "M") | ((pool.sex == "F") & (pool.age > CHILDBEARING_AGE_LIMIT))
    result.status[not_applicable] = true_if_not_applicable
    result.reason[not_applicable] = R["assumed (sex or age)"]
    if atom.kind != "pregnancy":
        return result
    obs = pool.observation_records
    rows = obs.loc[(obs["code_norm"] == PREGNANCY_LOINC).to_numpy()] if not obs.empty else obs
    if rows.empty:
        return result
    before = rows["effective_date_before"].to_numpy()
    rows = rows.loc[(before >= 0) & (before <= PREGNANCY_STATUS_DAYS) & ~not_applicable[rows["pi"].to_numpy()]]
    latest = _latest_per_patient(rows, "effective_date_before")
    if not latest.empty:
        text = latest["value_text"].astype("string").fillna("").str.lower()
        pregnant = text.str.contains("pregnant").to_numpy() & ~text.str.contains("not|non|negative").to_numpy()
        _fill(result, latest, pregnant.astype("int8"), "", None, None, "effective_date_before")
    _to_dates(result, pool)
    return result


def _open_when_incomplete(evaluate, kind: str):
    """``evaluate`` with each "not present" turned unknown for patients whose ``kind`` list is not stated complete."""

    def evaluated(pool: Pool, atom: Atom) -> AtomResult:
        result = evaluate(pool, atom)
        opened = (result.status == NOT_MET) & ~pool.list_complete(kind)
        result.status[opened] = UNKNOWN
        result.reason[opened] = R["list not stated complete"]
        return result

    evaluated.__doc__ = evaluate.__doc__
    return evaluated


ATOM_EVALUATORS = {
    "age": _age, "sex": _sex, "lab": _lab, "ecog": _lab, "condition": _open_when_incomplete(_condition, "conditions"),
    "medication": _open_when_incomplete(_medication, "medications"),
    "pregnancy": _reproductive, "breastfeeding": _reproductive, "contraception": _reproductive,
}


def evaluate_atom(pool: Pool, atom: Atom) -> AtomResult:
    """One atom over the whole pool (a threshold without its numbers is unknown for everyone, never guessed)."""
    if atom.kind in ("age", "lab", "ecog") and (atom.comparator is None or atom.value is None or (
            atom.comparator == "between" and atom.value_high is None)):
        return AtomResult.blank(len(pool), UNKNOWN, "needs review")
    return ATOM_EVALUATORS[atom.kind](pool, atom)


# --- criteria ------------------------------------------------------------------------------------


@dataclass
class MatchResult:
    """Every patient x criterion: the statement, whether the criterion is passed, and the evidence."""

    pool: Pool
    criteria: tuple[Criterion, ...]
    statement: np.ndarray  # int8 (patients x criteria)
    passes: np.ndarray  # int8: 1 passed, 0 failed, -1 unknown
    reason: np.ndarray  # int8 into REASONS
    record: np.ndarray  # object
    value: np.ndarray  # float64
    unit: np.ndarray  # object
    day: np.ndarray  # float64 days since 1970
    decided_by: np.ndarray  # int16: which atom of the criterion gave the evidence (-1 none)
    chance: np.ndarray  # float64: chance the criterion passes (1/0 decided, estimate when unknown, NaN no records)

    @property
    def from_records(self) -> np.ndarray:
        """Which criteria records can decide (their unknowns are missing data, not visit questions)."""
        return np.array([c.from_records for c in self.criteria], dtype=bool)

    def long_frame(self, patients: np.ndarray | None = None) -> pd.DataFrame:
        """One row per patient x criterion (optionally for some patient positions), with readable evidence."""
        rows = np.arange(len(self.pool)) if patients is None else np.asarray(patients)
        k = len(self.criteria)
        pi = np.repeat(rows, k)
        ci = np.tile(np.arange(k), len(rows))
        days = self.day[pi, ci]
        dates = pd.to_datetime(np.where(np.isnan(days), np.datetime64("NaT"),
                                        np.nan_to_num(days).astype("int64").astype("datetime64[D]")))
        return pd.DataFrame({
            "patient_id": self.pool.patients["patient_id"].to_numpy()[pi],
            "number": np.array([c.number for c in self.criteria])[ci],
            "criterion_key": np.array([c.key for c in self.criteria], dtype=object)[ci],
            "section": np.array([c.section for c in self.criteria], dtype=object)[ci],
            "text": np.array([c.text for c in self.criteria], dtype=object)[ci],
            "statement": self.statement[pi, ci],
            "passes": self.passes[pi, ci],
            "reason": np.array(REASONS, dtype=object)[self.reason[pi, ci]],
            "record_id": self.record[pi, ci],
            "value": self.value[pi, ci],
            "unit": self.unit[pi, ci],
            "date": dates,
        })


def _combine(results: list[AtomResult], combine: str) -> tuple[np.ndarray, np.ndarray]:
    """The statement over atoms (three-valued), and which atom's evidence explains it."""
    stack = np.stack([r.status for r in results])  # atoms x patients
    if combine == "any":
        statement = np.where((stack == MET).any(0), MET, np.where((stack == NOT_MET).all(0), NOT_MET, UNKNOWN))
        decisive = np.where(statement == MET, MET, np.where(statement == NOT_MET, NOT_MET, UNKNOWN))
    else:
        statement = np.where((stack == NOT_MET).any(0), NOT_MET, np.where((stack == MET).all(0), MET, UNKNOWN))
        decisive = statement
    # The evidence: the first atom that decided it, preferring one with a record to show (a ruled-out
    # stroke explains "not present" better than "no record of infarction").
    reasons = np.stack([r.reason for r in results])
    agrees = stack == decisive[None, :]
    informative = agrees & (reasons != R["no record"])
    which = np.where(informative.any(0), np.argmax(informative, axis=0), np.argmax(agrees, axis=0)).astype("int16")
    return statement.astype("int8"), which


def match(pool: Pool, criteria: list[Criterion] | tuple[Criterion, ...]) -> MatchResult:
    """Evaluate every criterion for every patient of ``pool`` (vectorized; see the module docstring), with the
    chance each unknown passes for ranking (:mod:`analytics.recruitment.chance`)."""
    # Imported here: the chance module reads this module's lab results.
    from analytics.recruitment.chance import atom_chance, criterion_chance

    criteria = tuple(criteria)
    n, k = len(pool), len(criteria)
    statement = np.full((n, k), UNKNOWN, dtype="int8")
    reason = np.full((n, k), R["needs review"], dtype="int8")
    record = np.full((n, k), None, dtype=object)
    value = np.full((n, k), np.nan)
    unit = np.full((n, k), None, dtype=object)
    day = np.full((n, k), np.nan)
    decided_by = np.full((n, k), -1, dtype="int16")
    chance = np.full((n, k), np.nan)
    cache: dict[Atom, AtomResult] = {}
    chance_cache: dict[Atom, np.ndarray] = {}
    for j, criterion in enumerate(criteria):
        if criterion.status != STRUCTURED or not criterion.atoms:
            if criterion.kind == "administrative":
                reason[:, j] = R["confirmed at screening (not from records)"]
            continue
        results = []
        for atom in criterion.atoms:
            if atom not in cache:
                cache[atom] = evaluate_atom(pool, atom)
            results.append(cache[atom])
        combined, which = _combine(results, criterion.combine)
        if criterion.negated:
            combined = np.where(combined == UNKNOWN, UNKNOWN, 1 - combined).astype("int8")
        statement[:, j] = combined
        decided_by[:, j] = which
        for a, result in enumerate(results):
            chosen = which == a
            reason[chosen, j] = result.reason[chosen]
            record[chosen, j] = result.record[chosen]
            value[chosen, j] = result.value[chosen]
            unit[chosen, j] = result.unit[chosen]
            day[chosen, j] = result.day[chosen]
    sections = np.array([c.section == EXCLUSION for c in criteria], dtype=bool)
    passes = np.where(statement == UNKNOWN, UNKNOWN, np.where(sections[None, :], 1 - statement, statement)).astype("int8")
    for j, criterion in enumerate(criteria):
        if criterion.status != STRUCTURED or not criterion.atoms:
            continue
        for atom in criterion.atoms:
            if atom not in chance_cache:
                chance_cache[atom] = atom_chance(pool, atom, cache[atom])
        chance[:, j] = criterion_chance(criterion, [chance_cache[a] for a in criterion.atoms], passes[:, j])
    return MatchResult(pool, criteria, statement, passes, reason, record, value, unit, day, decided_by, chance)
