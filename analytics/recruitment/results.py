"""Each study's parsed eligibility criteria, stored as a derived result (``derived.recruitment_criteria``).

Parsing is fast, but its rules are code: storing the parse keeps every page, export and decision on
the same reading of the same text, and a change to the parser marks the result stale (its version
hashes the parser's modules) so ``refresh`` reparses every study. Age and sex limits that a study
states only in its structured fields (``study_eligibility.min_age_years`` ...) are added as criteria
when the text has none of its own.
"""

from __future__ import annotations

import json

import pandas as pd

from analytics.core.derived import DerivedResult, RefreshRun
from analytics.recruitment.criteria import Criterion
from analytics.recruitment.parser import demographic_criteria, parse_criteria

TABLE = "recruitment_criteria"
COLUMNS = ("study_id", "number", "criterion_key", "section", "criterion_text", "status", "kind", "structure", "reading")


def study_criteria(text: str, min_age: float | None, max_age: float | None, sex: str | None) -> list[Criterion]:
    """The parsed criteria of one study, numbered in order, with the structured limits the text lacks."""
    parsed = parse_criteria(text or "")
    kinds = {a.kind for c in parsed if c.status == "structured" for a in c.atoms}
    extra = [c for c in demographic_criteria(min_age if "age" not in kinds else None,
                                             max_age if "age" not in kinds else None,
                                             sex if "sex" not in kinds else None)]
    numbered = []
    for number, criterion in enumerate(parsed + extra, start=1):
        numbered.append(Criterion(number, criterion.section, criterion.text, criterion.status, criterion.atoms,
                                  criterion.combine, criterion.negated, criterion.note, criterion.source))
    return numbered


def criteria_rows(study_id: str, criteria: list[Criterion]) -> pd.DataFrame:
    return pd.DataFrame([{
        "study_id": study_id, "number": c.number, "criterion_key": c.key, "section": c.section,
        "criterion_text": c.text, "status": c.status, "kind": c.kind,
        "structure": json.dumps(c.to_dict(), sort_keys=True), "reading": c.describe(),
    } for c in criteria], columns=list(COLUMNS))


def compute_recruitment_criteria(run: RefreshRun) -> dict[str, pd.DataFrame]:
    """Parse the eligibility text of ``run.study_ids`` (studies without criteria get no rows)."""
    texts = run.warehouse.query(run.scope, "SELECT study_id, criteria_text, min_age_years, max_age_years, sex "
                                           "FROM study_eligibility ORDER BY study_id")
    frames = []
    for row in texts.itertuples(index=False):
        run.progress(f"parsing the criteria of {row.study_id}")
        criteria = study_criteria(row.criteria_text, None if pd.isna(row.min_age_years) else float(row.min_age_years),
                                  None if pd.isna(row.max_age_years) else float(row.max_age_years),
                                  None if pd.isna(row.sex) else str(row.sex))
        frames.append(criteria_rows(row.study_id, criteria))
    rows = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=list(COLUMNS))
    return {TABLE: rows}


RECRUITMENT_CRITERIA_RESULT = DerivedResult(
    name="recruitment_criteria",
    description="eligibility criteria parsed per study (structure, or why a criterion needs review)",
    tables=(TABLE,),
    compute=compute_recruitment_criteria,
    code=("analytics.recruitment.results", "analytics.recruitment.parser", "analytics.recruitment.patterns",
          "analytics.recruitment.vocabulary", "analytics.recruitment.text", "analytics.recruitment.criteria",
          "analytics.recruitment.units", "analytics.recruitment.icd10"),
)
