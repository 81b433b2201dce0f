"""A pre-screening pool as the matcher reads it: patients and their conditions, observations and medications.

The warehouse keeps a pool in four tables (``prescreen_patients``, ``prescreen_conditions``,
``prescreen_observations``, ``prescreen_medications``, see :mod:`analytics.core.schema`); the
generator and the importers produce the same shapes. :class:`Pool` holds them as DataFrames and
precomputes, once per pool, what every criterion needs: each record's patient position, days before
that patient's screening date, normalized codes, and the vocabulary concepts its free-text name
mentions (a medication coded in RxNorm or written only as text still matches a criterion on its ATC
class through its name).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import pandas as pd

from analytics.recruitment.vocabulary import LAB_BY_LOINC, find_terms, lexicon

PATIENT_COLUMNS = ("patient_id", "study_id", "study_site_id", "sex", "age", "screening_date", "conditions_complete",
                   "medications_complete")
COMPLETENESS_COLUMNS = {"conditions": "conditions_complete", "medications": "medications_complete"}
CONDITION_COLUMNS = ("record_id", "patient_id", "code", "code_system", "display", "onset_date", "abatement_date",
                     "clinical_status", "verification_status")
OBSERVATION_COLUMNS = ("record_id", "patient_id", "code", "code_system", "display", "value", "unit", "value_text",
                       "ref_high", "effective_date")
MEDICATION_COLUMNS = ("record_id", "patient_id", "code", "code_system", "display", "start_date", "end_date", "status")
ATC = "ATC"
ICD10CM = "ICD-10-CM"
LOINC = "LOINC"


def _empty(columns: tuple[str, ...]) -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype="object") for c in columns})


def _days(values: pd.Series) -> np.ndarray:
    """Dates as float days since 1970 (NaN when missing), whatever the input type."""
    stamps = pd.to_datetime(values, errors="coerce")
    out = np.full(len(stamps), np.nan)
    ok = stamps.notna().to_numpy()
    out[ok] = (stamps[ok].to_numpy().astype("datetime64[D]").astype("int64")).astype("float64")
    return out


@dataclass
class Pool:
    """Patients and records of one or more pre-screening pools (the frames keep their declared columns)."""

    patients: pd.DataFrame
    conditions: pd.DataFrame = field(default_factory=lambda: _empty(CONDITION_COLUMNS))
    observations: pd.DataFrame = field(default_factory=lambda: _empty(OBSERVATION_COLUMNS))
    medications: pd.DataFrame = field(default_factory=lambda: _empty(MEDICATION_COLUMNS))

    def __post_init__(self) -> None:
        self.patients = self.patients.reset_index(drop=True)

    def __len__(self) -> int:
        return len(self.patients)

    @cached_property
    def screening_day(self) -> np.ndarray:
        return _days(self.patients["screening_date"])

    @cached_property
    def age(self) -> np.ndarray:
        return pd.to_numeric(self.patients["age"], errors="coerce").to_numpy(dtype="float64")

    def list_complete(self, kind: str) -> np.ndarray:
        """Per patient, whether the ``kind`` ("conditions" or "medications") list is stated complete.

        A pool whose patients frame has no such column holds complete lists (the generator's, hand-made
        ones); where the column exists, only an explicit true counts (false or not stated: incomplete).
        """
        column = COMPLETENESS_COLUMNS[kind]
        if column not in self.patients.columns:
            return np.ones(len(self), dtype=bool)
        values = self.patients[column].astype("boolean")
        return values.fillna(False).to_numpy(dtype=bool)

    @cached_property
    def sex(self) -> np.ndarray:
        return self.patients["sex"].astype("string").fillna("U").str.upper().str[:1].to_numpy(dtype=object)

    def _records(self, frame: pd.DataFrame, date_columns: tuple[str, ...]) -> pd.DataFrame:
        index = pd.Index(self.patients["patient_id"].astype(str))
        position = index.get_indexer(frame["patient_id"].astype(str))
        out = frame.loc[position >= 0].copy()
        out["pi"] = position[position >= 0]
        screening = self.screening_day[out["pi"].to_numpy()]
        for column in date_columns:
            out[f"{column}_before"] = screening - _days(out[column])  # days before screening (negative: after)
        out["code_norm"] = out["code"].astype("string").fillna("").str.strip().str.upper().to_numpy(dtype=object)
        out["system_norm"] = out["code_system"].astype("string").fillna("").str.strip().str.upper().to_numpy(dtype=object)
        return out.reset_index(drop=True)

    @cached_property
    def condition_records(self) -> pd.DataFrame:
        out = self._records(self.conditions, ("onset_date", "abatement_date"))
        out["concepts"] = _concepts(out["display"], lexicon().conditions)
        return out

    @cached_property
    def observation_records(self) -> pd.DataFrame:
        out = self._records(self.observations, ("effective_date",))
        out["value"] = pd.to_numeric(out["value"], errors="coerce")
        out["ref_high"] = pd.to_numeric(out["ref_high"], errors="coerce")
        by_code = out["code_norm"].map(lambda c: LAB_BY_LOINC[c].key if c in LAB_BY_LOINC else None)
        by_name = _concepts(out["display"], lexicon().labs)
        out["lab"] = [code if code else (next(iter(names)) if len(names) == 1 else None)
                      for code, names in zip(by_code, by_name)]
        return out

    @cached_property
    def medication_records(self) -> pd.DataFrame:
        out = self._records(self.medications, ("start_date", "end_date"))
        named = _medication_codes(out["display"])
        out["atc"] = [(code,) if system == ATC and code else names
                      for code, system, names in zip(out["code_norm"], out["system_norm"], named)]
        return out


def _concepts(names: pd.Series, entries: tuple) -> list[frozenset[str]]:
    """Per record, the vocabulary keys its display text names (computed once per distinct text)."""
    text = names.astype("string").fillna("")
    found = {value: frozenset(term.key for _, _, term in find_terms(value, entries)) for value in text.unique()}
    return [found[value] for value in text]


def _medication_codes(names: pd.Series) -> list[tuple[str, ...]]:
    """ATC codes of the drugs a medication's name mentions (for records coded in another system or not at all)."""
    text = names.astype("string").fillna("")
    found = {value: tuple(dict.fromkeys(code for _, _, term in find_terms(value, lexicon().medications)
                                        for code in term.atc)) for value in text.unique()}
    return [found[value] for value in text]


def empty_pool() -> Pool:
    return Pool(_empty(PATIENT_COLUMNS))
