"""Synthetic pre-screening pools: patients per site with known truth on every criterion of their study.

For each criterion of a generated protocol (:mod:`analytics.generator.protocols`) the simulator
decides each patient's true status and writes the records an EHR export would hold, including the
hard cases a matcher must get right:

* **missing data**: no result for a lab (the truth is the patient's unseen value);
* **stale results**: only a result older than the criterion's window (unseen current value, which the old
  result predicts through the patient's own course: see *Within-patient course* below);
* **units to convert**: results in the other unit some labs report (mmol/mol, µmol/L, g/L, /mm3, ...);
* **values on the threshold**, ages on the limits, medications stopped exactly at the washout;
* **outside the window**: an infarction years ago when the criterion asks for the last 6 months;
* **negated conditions**: a "refuted" (ruled-out) diagnosis on the problem list;
* **records by name only**: a medication coded in RxNorm or free text instead of ATC;
* background conditions, labs and medications that no criterion is about.

**Within-patient course.** A patient's results of one test are not independent draws: an old HbA1c,
eGFR or haemoglobin predicts the current one. Each test follows a stationary Gaussian AR(1) course in
continuous time (Ornstein-Uhlenbeck) around the population mean: two results ``gap`` days apart have
correlation ``rho_1y ** (gap / 365)``, with the one-year correlation :data:`ONE_YEAR_CORRELATION` set
per test from the literature on year-apart repeat measurements (sources in that table), before any
evaluation was run and never adjusted to a result. Given the value at screening ``v``, an older result
is drawn as ``mean + rho (v - mean) + sd sqrt(1 - rho^2) e``. Patients with only stale results get
their old result this way; :data:`HISTORY_SHARE` of the patients with a recent result also have an
earlier one (a real record holds a series), drawn the same way from the recent value.

The truth is computed here from the simulated values with this module's own arithmetic (conversion
factors from the analytes' molar masses, not pint), so the evaluation checks the matcher against an
independent implementation of the same rules (see :mod:`analytics.recruitment.matching`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from analytics.generator.protocols import LAB_PLANS, GeneratedCriterion, Protocol
from analytics.recruitment.criteria import EXCLUSION, STRUCTURED, ULN, Atom
from analytics.recruitment.vocabulary import ACUTE_EVENTS, CONDITIONS_BY_KEY, DRUGS, LABS_BY_KEY, PREGNANCY_LOINC

DEFAULT_LAB_LOOKBACK_DAYS = 365  # the matcher's default window for labs (analytics.recruitment.matching)
PREGNANCY_STATUS_DAYS = 42
CHILDBEARING_AGE_LIMIT = 55
MISSING_SHARE, STALE_SHARE, ALT_UNIT_SHARE, ON_THRESHOLD_SHARE = 0.07, 0.07, 0.15, 0.04
NEAR_MISS_SHARE = 0.35  # of patients for whom a condition or medication statement is false: a misleading record
NAME_ONLY_SHARE = 0.2  # medication records coded only by name (RxNorm or free text)
EPOCH = np.datetime64("1970-01-01", "D")
HISTORY_SHARE = 0.5  # of patients with a recent result: also an earlier result of the same test
# Correlation of two results of one patient a year apart (AR(1): rho ** (gap in years)). Set from the ranges
# reported for year-apart repeat measurements, not fitted to anything here:
# * HbA1c "tracks" within a person for years, year-to-year correlations significant up to 9 years (Diabetic
#   Medicine 2010, 15-year paediatric clinic series; THIN UK primary-care cohort of 4,525 people with type 1
#   diabetes): 0.7.
# * Fasting glucose: ICC 0.70 over 4-14 weeks (short-term repeatability, PMC6276677), lower over a year: 0.6.
# * Creatinine / eGFR: within-person CV about 5% (meta-analysis, Front Med 2022;9:1009358) against a much
#   wider between-person spread in kidney disease: 0.85.
# * Blood counts, liver tests, bilirubin, testosterone, LDL: indices of individuality well below 1
#   (HCHS/SOL biological variation, Clin Chim Acta 2016;463:129), drifting over a year: 0.6-0.75.
# * CRP: long-term reliability about 0.5 (Macy et al., Clin Chem 1997;43:52): 0.5.
# * Body-mass index 0.9; systolic pressure 0.55 (blood-pressure tracking); LVEF 0.6; MMSE 0.75; PSA 0.75;
#   ECOG performance status 0.5 (changes with the disease).
ONE_YEAR_CORRELATION: dict[str, float] = {
    "hba1c": 0.7, "fasting_glucose": 0.6, "creatinine": 0.85, "egfr": 0.85, "hemoglobin": 0.7, "platelets": 0.7,
    "anc": 0.6, "alt": 0.6, "ast": 0.6, "bilirubin": 0.7, "psa": 0.75, "testosterone": 0.7, "bmi": 0.9,
    "systolic_bp": 0.55, "lvef": 0.6, "mmse": 0.75, "crp": 0.5, "ldl": 0.75, "ecog": 0.5,
}

# canonical unit -> (other unit, factor or "hba1c", decimals in the other unit); factors from molar masses.
ALT_UNITS: dict[str, tuple[str, object, int]] = {
    "hba1c": ("mmol/mol", "hba1c", 0),
    "fasting_glucose": ("mmol/L", 10 / 180.16, 1),
    "creatinine": ("umol/L", 10_000 / 113.12, 0),
    "hemoglobin": ("g/L", 10.0, 0),
    "platelets": ("10^3/uL", 1.0, 0),
    "anc": ("/mm3", 1000.0, 0),
    "bilirubin": ("umol/L", 10_000 / 584.66, 0),
    "testosterone": ("nmol/L", 10 / 288.42, 2),
    "crp": ("mg/dL", 0.1, 2),
    "ldl": ("mmol/L", 10 / 386.65, 2),
}
# A representative full code under each criterion prefix (the pool's records use real-looking codes).
CONDITION_CODES = {"C": ("C34.90", "C50.919", "C18.9", "C61", "C67.9", "C64.9", "C43.9"), "C44": ("C44.91", "C44.310")}
BACKGROUND_CONDITIONS = (
    ("E78.5", "Hyperlipidemia, unspecified"), ("K21.9", "Gastro-esophageal reflux disease without esophagitis"),
    ("M17.9", "Osteoarthritis of knee, unspecified"), ("F41.1", "Generalized anxiety disorder"),
    ("M54.50", "Low back pain, unspecified"), ("E55.9", "Vitamin D deficiency, unspecified"),
    ("J30.9", "Allergic rhinitis, unspecified"), ("G47.00", "Insomnia, unspecified"), ("H52.4", "Presbyopia"),
    ("E03.9", "Hypothyroidism, unspecified"), ("I10", "Essential (primary) hypertension"),
    ("E66.9", "Obesity, unspecified"), ("J45.909", "Unspecified asthma, uncomplicated"),
)
BACKGROUND_MEDICATIONS = (
    ("C10AA05", "atorvastatin 20 mg oral tablet"), ("C09AA03", "lisinopril 10 mg oral tablet"),
    ("A02BC01", "omeprazole 20 mg capsule"), ("H03AA01", "levothyroxine 50 mcg tablet"),
    ("A11CC05", "colecalciferol 1000 IU"), ("N02BE01", "paracetamol 500 mg tablet"),
)
BACKGROUND_LABS = (("2951-2", "Sodium", 140.0, 3.0, "mmol/L"), ("2823-3", "Potassium", 4.3, 0.4, "mmol/L"),
                   ("8867-4", "Heart rate", 74.0, 10.0, "/min"), ("29463-7", "Body weight", 80.0, 16.0, "kg"))


@dataclass
class SimulatedPool:
    """The four pool tables, and the truth: passes (patients x criteria) and the hard case behind each."""

    patients: pd.DataFrame
    conditions: pd.DataFrame
    observations: pd.DataFrame
    medications: pd.DataFrame
    passes: np.ndarray  # bool (patients x criteria)
    hard_case: np.ndarray  # object: "" or the hard case's name

    def truth_frame(self, criteria: tuple[GeneratedCriterion, ...]) -> pd.DataFrame:
        """Long truth rows: patient, criterion number, passes, hard case."""
        n, k = self.passes.shape
        return pd.DataFrame({
            "patient_id": np.repeat(self.patients["patient_id"].to_numpy(), k),
            "study_id": np.repeat(self.patients["study_id"].to_numpy(), k),
            "study_site_id": np.repeat(self.patients["study_site_id"].to_numpy(), k),
            "number": np.tile(np.array([c.truth.number for c in criteria], dtype="int64"), n),
            "passes": self.passes.reshape(-1),
            "hard_case": self.hard_case.reshape(-1),
        })


class _Records:
    """Accumulates record columns for one table, then builds the frame once."""

    def __init__(self, prefix: str, columns: tuple[str, ...]) -> None:
        self.prefix, self.columns = prefix, columns
        self.parts: list[dict[str, np.ndarray]] = []

    def add(self, **columns: object) -> None:
        n = len(columns["patient"])
        if n == 0:
            return
        self.parts.append({k: (np.asarray(v) if np.ndim(v) else np.full(n, v, dtype=object)) for k, v in columns.items()})

    def frame(self, patient_ids: np.ndarray, screening: np.ndarray) -> pd.DataFrame:
        if not self.parts:
            return pd.DataFrame({c: pd.Series(dtype="object") for c in ("record_id", "patient_id") + self.columns})
        data = {k: np.concatenate([p[k] for p in self.parts]) for k in self.parts[0]}
        patient = data.pop("patient").astype("int64")
        out = {"record_id": [f"{patient_ids[p]}-{self.prefix}{i + 1}" for i, p in enumerate(patient)],
               "patient_id": patient_ids[patient]}
        for column in self.columns:
            values = data.get(column)
            if column.endswith("_date"):
                before = np.asarray(values, dtype="float64")
                days = screening[patient] - before
                out[column] = pd.to_datetime(np.where(np.isnan(days), np.datetime64("NaT"),
                                                      EPOCH + np.nan_to_num(days).astype("int64")))
            else:
                out[column] = values
        frame = pd.DataFrame(out)
        return frame


def _code_under(prefix: str, rng: np.random.Generator, n: int) -> np.ndarray:
    options = CONDITION_CODES.get(prefix)
    if options:
        return np.asarray(options, dtype=object)[rng.integers(len(options), size=n)]
    code = prefix if "." in prefix or len(prefix) > 3 else prefix + ".9"
    return np.full(n, code, dtype=object)


def _atc_under(prefix: str) -> tuple[str, str | None]:
    """A full ATC code under ``prefix`` and a drug name the vocabulary knows for it (None if none)."""
    for drug in DRUGS:
        if drug.atc[0].startswith(prefix):
            return drug.atc[0], drug.name.lower()
    return {3: prefix + "XA01", 4: prefix + "B01", 5: prefix + "01"}.get(len(prefix), prefix), None


def _compare(values: np.ndarray, atom: Atom) -> np.ndarray:
    t, tol = atom.value, 1e-6 * max(abs(atom.value or 0), abs(atom.value_high or 0), 1.0)
    return {">=": lambda v: v >= t - tol, ">": lambda v: v > t + tol, "<=": lambda v: v <= t + tol,
            "<": lambda v: v < t - tol,
            "between": lambda v: (v >= t - tol) & (v <= atom.value_high + tol)}[atom.comparator](values)


def _round(values: np.ndarray, decimals: int) -> np.ndarray:
    return np.round(values, decimals)


class _Simulator:
    """One study's pool: draws demographics, then each criterion's truth and records."""

    def __init__(self, rng: np.random.Generator, protocol: Protocol, female_share: float, age_mean: float,
                 age_sd: float, n: int) -> None:
        self.rng, self.protocol, self.n = rng, protocol, n
        female = {"MALE": 0.03, "FEMALE": 0.97}.get(protocol.sex, female_share)
        self.sex = np.where(rng.uniform(size=n) < female, "F", "M").astype(object)
        age = np.clip(np.round(rng.normal(age_mean, age_sd, n)), 18, 95)
        edge = rng.uniform(size=n)
        if protocol.min_age is not None:
            age = np.where(edge < 0.03, protocol.min_age, np.where(edge < 0.045, protocol.min_age - 1, age))
        if protocol.max_age is not None:
            age = np.where((edge >= 0.05) & (edge < 0.08), protocol.max_age,
                           np.where((edge >= 0.08) & (edge < 0.095), protocol.max_age + 1, age))
        self.age = np.clip(age, 16, 100).astype("int64")
        self.conditions = _Records("C", ("code", "code_system", "display", "onset_date", "abatement_date",
                                         "clinical_status", "verification_status"))
        self.observations = _Records("O", ("code", "code_system", "display", "value", "unit", "value_text", "ref_high",
                                           "effective_date"))
        self.medications = _Records("M", ("code", "code_system", "display", "start_date", "end_date", "status"))
        self.hard = np.full((n, len(protocol.criteria)), "", dtype=object)

    # -- conditions --
    def _condition_record(self, who: np.ndarray, atom: Atom, onset: np.ndarray, status: str = "active",
                          verification: str = "confirmed", code_prefix: str | None = None,
                          not_before: float | None = None) -> None:
        """Condition records; ``not_before``: the abatement stays at least this many days before screening."""
        rng = self.rng
        prefix = code_prefix or atom.codes[int(rng.integers(len(atom.codes)))]
        codes = _code_under(prefix, rng, len(who))
        term = CONDITIONS_BY_KEY.get(atom.concept)
        display = term.name if term else atom.label
        acute = atom.concept in ACUTE_EVENTS
        abatement = np.where(acute | (np.asarray(status) == "resolved"), onset - rng.integers(5, 30, len(who)), np.nan)
        if not_before is not None:
            abatement = np.where(np.isnan(abatement), abatement, np.maximum(abatement, not_before))
        clinical = np.where(np.isnan(abatement), status, "resolved")
        self.conditions.add(patient=who, code=codes, code_system="ICD-10-CM", display=display, onset_date=onset,
                            abatement_date=np.maximum(abatement, 0), clinical_status=clinical.astype(object),
                            verification_status=verification)

    def condition(self, j: int, criterion: GeneratedCriterion) -> np.ndarray:
        rng, n = self.rng, self.n
        atoms = criterion.truth.atoms
        true = rng.uniform(size=n) < criterion.statement_rate
        chosen = rng.integers(len(atoms), size=n)
        for a, atom in enumerate(atoms):
            who = np.flatnonzero(true & (chosen == a))
            if len(who):
                self._condition_record(who, atom, self._qualifying_onset(atom, len(who)))
        near = np.flatnonzero(~true & (rng.uniform(size=n) < NEAR_MISS_SHARE))
        for a, atom in enumerate(atoms):
            who = near[chosen[near] == a]
            if not len(who):
                continue
            kind = rng.integers(3, size=len(who))
            refuted = who[kind == 0]
            self._condition_record(refuted, atom, self._qualifying_onset(atom, len(refuted)), verification="refuted")
            self.hard[refuted, j] = "refuted diagnosis"
            other = who[kind != 0]
            if atom.at_least_days is not None:
                onset = rng.uniform(5, atom.at_least_days - 1, len(other)).round()
                self._condition_record(other, atom, onset)
                self.hard[other, j] = "diagnosed too recently"
            elif atom.within_days is not None:
                onset = atom.within_days + rng.uniform(1, 3000, len(other)).round()
                self._condition_record(other, atom, onset, status="resolved", not_before=atom.within_days + 1)
                self.hard[other, j] = "outside the time window"
            elif atom.current:
                self._condition_record(other, atom, rng.uniform(200, 4000, len(other)).round(), status="resolved")
                self.hard[other, j] = "resolved condition"
            elif atom.except_codes:
                self._condition_record(other, atom, rng.uniform(30, 900, len(other)).round(),
                                       code_prefix=atom.except_codes[0])
                self.hard[other, j] = "excepted diagnosis"
            else:
                self._condition_record(other, atom, self._qualifying_onset(atom, len(other)), verification="refuted")
                self.hard[other, j] = "refuted diagnosis"
        for a, atom in enumerate(atoms):  # excepted codes also appear as a near miss
            if atom.except_codes:
                who = near[(chosen[near] == a) & (rng.uniform(size=len(near)) < 0.3)]
                self._condition_record(who, atom, rng.uniform(30, 900, len(who)).round(), code_prefix=atom.except_codes[0])
                self.hard[who, j] = "excepted diagnosis"
        return true

    def _qualifying_onset(self, atom: Atom, n: int) -> np.ndarray:
        rng = self.rng
        if atom.within_days is not None:
            onset = rng.uniform(3, atom.within_days - 1, n).round()
            onset[rng.uniform(size=n) < ON_THRESHOLD_SHARE] = atom.within_days
            return onset
        if atom.at_least_days is not None:
            onset = atom.at_least_days + rng.uniform(1, 4000, n).round()
            onset[rng.uniform(size=n) < ON_THRESHOLD_SHARE] = atom.at_least_days
            return onset
        return rng.uniform(60, 6000, n).round()

    # -- labs --
    def lab(self, j: int, criterion: GeneratedCriterion) -> np.ndarray:
        statuses = [self._lab_atom(j, atom) for atom in criterion.truth.atoms]
        stack = np.stack(statuses)
        return stack.any(0) if criterion.truth.combine == "any" else stack.all(0)

    def _lab_atom(self, j: int, atom: Atom) -> np.ndarray:
        rng, n = self.rng, self.n
        term = LABS_BY_KEY[atom.concept]
        plan = LAB_PLANS[atom.concept]
        if atom.kind == "ecog":
            hidden = rng.choice(5, size=n, p=(0.35, 0.4, 0.17, 0.06, 0.02)).astype("float64")
        else:
            threshold = (atom.value * plan.uln) if atom.unit == ULN else atom.value
            hidden = np.where(rng.uniform(size=n) < 0.85, rng.normal(plan.mean, plan.sd, n),
                              threshold * rng.uniform(0.6, 1.4, n))
            hidden = np.clip(hidden, plan.low, plan.high)
            on = rng.uniform(size=n) < ON_THRESHOLD_SHARE
            edge = atom.value_high if (atom.comparator == "between" and rng.uniform() < 0.5) else atom.value
            hidden[on] = (edge * plan.uln) if atom.unit == ULN else edge
            hidden = _round(hidden, term.decimals)
        window = atom.within_days if atom.within_days is not None else DEFAULT_LAB_LOOKBACK_DAYS
        state = rng.uniform(size=n)
        missing = state < MISSING_SHARE
        stale = (state >= MISSING_SHARE) & (state < MISSING_SHARE + STALE_SHARE)
        recorded = ~missing & ~stale
        self.hard[missing, j] = np.where(self.hard[missing, j] == "", "missing result", self.hard[missing, j])
        self.hard[stale, j] = np.where(self.hard[stale, j] == "", "result outside the window", self.hard[stale, j])
        # What the record says decides the truth where there is a recent record.
        true_value = hidden.copy()
        who = np.flatnonzero(recorded)
        when = rng.uniform(0, window - 1, len(who)).round()
        when[rng.uniform(size=len(who)) < ON_THRESHOLD_SHARE / 2] = window
        value = hidden[who].astype("float64")
        unit = np.full(len(who), term.unit if atom.kind != "ecog" else "{score}", dtype=object)
        ref_scale = np.ones(len(who))  # the reference range is reported in the result's unit
        alt = ALT_UNITS.get(atom.concept)
        if alt is not None:
            converted = rng.uniform(size=len(who)) < ALT_UNIT_SHARE
            other_unit, factor, decimals = alt
            if factor == "hba1c":
                shown = np.round((value[converted] - 2.15) * 10.929, decimals)
                back = shown / 10.929 + 2.15
            else:
                shown = np.round(value[converted] * factor, decimals)
                back = shown / factor
            value[converted] = shown
            unit[converted] = other_unit
            ref_scale[converted] = factor if factor != "hba1c" else np.nan
            true_value[who[converted]] = back
            self.hard[who[converted], j] = np.where(self.hard[who[converted], j] == "", f"result in {other_unit}",
                                                    self.hard[who[converted], j])
        on_edge = np.isclose(hidden[who], atom.value * (plan.uln if atom.unit == ULN else 1.0)) | (
            atom.value_high is not None and np.isclose(hidden[who], atom.value_high))
        self.hard[who[on_edge], j] = np.where(self.hard[who[on_edge], j] == "", "value on the threshold",
                                              self.hard[who[on_edge], j])
        ref_high = plan.uln if plan.uln is not None else np.nan
        code = term.loinc[0] if term.loinc else ""
        self.observations.add(patient=who, code=code, code_system="LOINC" if code else "", display=term.name,
                              value=value, unit=unit, value_text=None, ref_high=ref_high * ref_scale,
                              effective_date=when)
        canonical_unit = term.unit if atom.kind != "ecog" else "{score}"
        old = np.flatnonzero(stale)
        old_when = window + rng.uniform(1, 500, len(old)).round()
        self.observations.add(patient=old, code=code, code_system="LOINC" if code else "", display=term.name,
                              value=self._earlier(atom, hidden[old], old_when), unit=canonical_unit, value_text=None,
                              ref_high=np.full(len(old), ref_high), effective_date=old_when)
        # A series: an earlier result for some of the patients with a recent one, from the same course.
        history = rng.uniform(size=len(who)) < HISTORY_SHARE
        earlier_when = when[history] + rng.uniform(30, 700, int(history.sum())).round()
        self.observations.add(patient=who[history], code=code, code_system="LOINC" if code else "", display=term.name,
                              value=self._earlier(atom, hidden[who[history]], earlier_when - when[history]),
                              unit=canonical_unit, value_text=None, ref_high=np.full(int(history.sum()), ref_high),
                              effective_date=earlier_when)
        compared = true_value / plan.uln if atom.unit == ULN else true_value
        return _compare(compared, atom)

    def _earlier(self, atom: Atom, later: np.ndarray, gap_days: np.ndarray) -> np.ndarray:
        """Results ``gap_days`` before values ``later`` of the same patients (the AR(1) course, module docstring)."""
        plan, term = LAB_PLANS[atom.concept], LABS_BY_KEY[atom.concept]
        rho = ONE_YEAR_CORRELATION[atom.concept] ** (np.asarray(gap_days, dtype="float64") / 365.0)
        drawn = plan.mean + rho * (later - plan.mean) + plan.sd * np.sqrt(1 - rho ** 2) * self.rng.normal(size=len(later))
        if atom.kind == "ecog":
            return np.clip(np.round(drawn), 0, 4) + 0.0  # + 0.0: no "-0" score
        return _round(np.clip(drawn, plan.low, plan.high), term.decimals)

    # -- medications --
    def medication(self, j: int, criterion: GeneratedCriterion) -> np.ndarray:
        rng, n = self.rng, self.n
        atom = criterion.truth.atoms[0]
        true = rng.uniform(size=n) < criterion.statement_rate
        code, name = _atc_under(atom.codes[0])
        who = np.flatnonzero(true)
        ongoing = rng.uniform(size=len(who)) < (1.0 if atom.current else 0.6)
        window = atom.within_days or 0
        end = np.where(ongoing, np.nan, rng.uniform(0, max(window, 1), len(who)).round())
        boundary = ~ongoing & (rng.uniform(size=len(who)) < 0.1)
        end[boundary] = window
        self.hard[who[boundary], j] = "stopped exactly at the washout"
        start = np.where(np.isnan(end), 0, end) + rng.uniform(30, 700, len(who)).round()
        self._medication_record(j, who, code, name, start, end)
        near = np.flatnonzero(~true & (rng.uniform(size=n) < NEAR_MISS_SHARE))
        gap = rng.uniform(1, 200, len(near)).round()
        gap[rng.uniform(size=len(near)) < 0.15] = 1
        stopped = window + gap
        self._medication_record(j, near, code, name, stopped + rng.uniform(30, 700, len(near)).round(), stopped)
        self.hard[near, j] = np.where(gap == 1, "stopped a day before the washout", "washout complete")
        return true

    def _medication_record(self, j: int, who: np.ndarray, code: str, name: str | None, start: np.ndarray,
                           end: np.ndarray) -> None:
        by_name = (self.rng.uniform(size=len(who)) < NAME_ONLY_SHARE) if name else np.zeros(len(who), dtype=bool)
        codes = np.where(by_name, "RX" + code, code).astype(object)
        systems = np.where(by_name, "RxNorm", "ATC").astype(object)
        display = np.where(by_name, f"{name} oral tablet" if name else "", name or code).astype(object)
        status = np.where(np.isnan(end), "active", "completed").astype(object)
        self.medications.add(patient=who, code=codes, code_system=systems, display=display, start_date=start,
                             end_date=end, status=status)
        self.hard[who[by_name], j] = np.where(self.hard[who[by_name], j] == "", "medication named, not coded",
                                              self.hard[who[by_name], j])

    # -- pregnancy --
    def pregnancy(self, j: int, criterion: GeneratedCriterion) -> np.ndarray:
        rng, n = self.rng, self.n
        fertile = (self.sex == "F") & (self.age <= CHILDBEARING_AGE_LIMIT)
        pregnant = fertile & (rng.uniform(size=n) < 0.02)
        breastfeeding = fertile & ~pregnant & (rng.uniform(size=n) < 0.015)
        recorded = np.flatnonzero(fertile & (rng.uniform(size=n) < 0.65))
        self.observations.add(patient=recorded, code=PREGNANCY_LOINC, code_system="LOINC", display="Pregnancy status",
                              value=np.full(len(recorded), np.nan), unit=None,
                              value_text=np.where(pregnant[recorded], "Pregnant", "Not pregnant").astype(object),
                              ref_high=np.full(len(recorded), np.nan),
                              effective_date=rng.uniform(0, PREGNANCY_STATUS_DAYS, len(recorded)).round())
        kinds = {a.kind for a in criterion.truth.atoms}
        return pregnant | (breastfeeding if "breastfeeding" in kinds else False)

    # -- background --
    def background(self, protocol: Protocol) -> None:
        rng, n = self.rng, self.n
        prefixes = tuple(code.upper() for c in protocol.criteria for a in c.truth.atoms for code in a.codes + a.except_codes)
        for code, display in BACKGROUND_CONDITIONS:
            if code.startswith(prefixes):
                continue
            who = np.flatnonzero(rng.uniform(size=n) < 0.15)
            self.conditions.add(patient=who, code=code, code_system="ICD-10-CM", display=display,
                                onset_date=rng.uniform(100, 5000, len(who)).round(), abatement_date=np.full(len(who), np.nan),
                                clinical_status="active", verification_status="confirmed")
        for code, display in BACKGROUND_MEDICATIONS:
            if code.startswith(prefixes):
                continue
            who = np.flatnonzero(rng.uniform(size=n) < 0.2)
            self.medications.add(patient=who, code=code, code_system="ATC", display=display,
                                 start_date=rng.uniform(30, 2000, len(who)).round(), end_date=np.full(len(who), np.nan),
                                 status="active")
        for code, display, mean, sd, unit in BACKGROUND_LABS:
            if code in prefixes:
                continue
            for _ in range(2):
                who = np.flatnonzero(rng.uniform(size=n) < 0.6)
                self.observations.add(patient=who, code=code, code_system="LOINC", display=display,
                                      value=np.round(rng.normal(mean, sd, len(who)), 1), unit=unit, value_text=None,
                                      ref_high=np.full(len(who), np.nan),
                                      effective_date=rng.uniform(0, 700, len(who)).round())


def simulate_pool(rng: np.random.Generator, protocol: Protocol, study_id: str, site_ids: list[str],
                  sizes: np.ndarray, screening_days: np.ndarray, female_share: float, age_mean: float,
                  age_sd: float) -> SimulatedPool:
    """Patients for each site of one study (``sizes[i]`` at ``site_ids[i]``, screened on ``screening_days[i]``,
    days since 1970), their records, and their true status on every criterion of ``protocol``."""
    n = int(np.sum(sizes))
    site = np.repeat(np.arange(len(site_ids)), sizes)
    rank = np.concatenate([np.arange(s) for s in sizes]) if n else np.zeros(0, dtype="int64")
    patient_ids = np.array([f"{site_ids[s]}-P{r + 1:04d}" for s, r in zip(site, rank)], dtype=object)
    screening = np.asarray(screening_days, dtype="float64")[site]
    sim = _Simulator(rng, protocol, female_share, age_mean, age_sd, n)
    k = len(protocol.criteria)
    passes = np.ones((n, k), dtype=bool)
    for j, criterion in enumerate(protocol.criteria):
        truth = criterion.truth
        if truth.status != STRUCTURED:
            passes[:, j] = rng.uniform(size=n) >= criterion.statement_rate
            continue
        kinds = {a.kind for a in truth.atoms}
        if kinds == {"age"}:
            statement = _compare(sim.age.astype("float64"), truth.atoms[0])
            sim.hard[(sim.age == protocol.min_age) | (sim.age == protocol.max_age), j] = "age on the limit"
        elif kinds == {"sex"}:
            statement = np.isin(sim.sex, truth.atoms[0].sexes)
        elif kinds == {"condition"}:
            statement = sim.condition(j, criterion)
        elif kinds <= {"lab", "ecog"}:
            statement = sim.lab(j, criterion)
        elif kinds == {"medication"}:
            statement = sim.medication(j, criterion)
        elif kinds & {"pregnancy", "breastfeeding"}:
            statement = sim.pregnancy(j, criterion)
        elif kinds == {"contraception"}:
            statement = np.ones(n, dtype=bool)  # women agree at the screening visit (an assumption of the truth)
        else:
            raise ValueError(f"no simulator for criterion kinds {sorted(kinds)}")
        if truth.negated:
            statement = ~statement
        passes[:, j] = ~statement if truth.section == EXCLUSION else statement
    sim.background(protocol)
    patients = pd.DataFrame({
        "patient_id": patient_ids, "study_id": study_id,
        "study_site_id": np.asarray(site_ids, dtype=object)[site] if n else np.zeros(0, dtype=object),
        "sex": sim.sex, "age": sim.age,
        "screening_date": pd.to_datetime(EPOCH + screening.astype("int64")) if n else pd.Series(dtype="datetime64[s]"),
        # The simulator writes every condition and medication a patient has: the lists are complete.
        "conditions_complete": np.ones(n, dtype=bool), "medications_complete": np.ones(n, dtype=bool),
    })
    frames = [records.frame(patient_ids, screening) for records in (sim.conditions, sim.observations, sim.medications)]
    return SimulatedPool(patients, *frames, passes=passes, hard_case=sim.hard)
