"""Recruitment criteria: units, the eligibility text as registries write it, the parser's structures, and
the vocabulary's codes against the official ICD-10-CM code set."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from analytics.generator.protocols import INDICATION_CONDITION, make_protocol
from analytics.recruitment import units
from analytics.recruitment.criteria import ADMINISTRATIVE, NEEDS_REVIEW, STRUCTURED, ULN, Criterion, criteria_from_json, \
    criteria_json
from analytics.recruitment.parser import parse_criteria
from analytics.recruitment.text import split_criteria, unassigned_lines

LABELS = Path(__file__).parent / "data" / "recruitment_ctgov_labels.json"


def one(text: str, section: str = "Exclusion") -> Criterion:
    parsed = parse_criteria(f"{section} Criteria:\n* {text}")
    assert len(parsed) == 1
    return parsed[0]


# --- units -------------------------------------------------------------------------------------------


def test_units_convert_the_way_labs_report_them() -> None:
    assert units.conversion_factor("mg/dL", "mmol/L", 180.16) == pytest.approx(0.0555, rel=1e-3)  # glucose
    assert units.conversion_factor("mg/dl", "µmol/L", 113.12) == pytest.approx(88.40, rel=1e-3)  # creatinine
    assert units.conversion_factor("x10^9/L", "/mm3") == pytest.approx(1000)
    assert units.conversion_factor("10³/µL", "10^9/L") == pytest.approx(1.0)
    assert units.conversion_factor("g/dL", "g/L") == pytest.approx(10)
    assert units.conversion_factor("mL/min/1.73 m²", "ml/min/1.73m2") == pytest.approx(1.0)
    assert units.convert_values(np.array([53.0]), "mmol/mol", "%", hba1c=True)[0] == pytest.approx(7.0, abs=0.1)
    with pytest.raises(units.UnitError):
        units.conversion_factor("%", "mg/dL")
    assert np.isnan(units.convert_values(np.array([1.0]), "furlongs", "mg/dL")[0])


# --- text --------------------------------------------------------------------------------------------


def test_registry_text_is_split_into_sections_and_criteria_without_losing_a_line() -> None:
    text = ("Inclusion Criteria:\n\n1. Age \\>= 18 years\n2. Localized disease defined as:\n\n   * PSA \\<=10 ng/mL\n"
            "   * Gleason score &lt;= 7\n3. Diagnosis of type 2 diabetes for at least\n   six months\n\n"
            "Key Exclusion Criteria:\n\n* Pregnant or breastfeeding women\n* Any of the following within 6 months: "
            "\n    * myocardial infarction\n    * stroke")
    items = split_criteria(text)
    assert [i.section for i in items] == ["inclusion"] * 4 + ["exclusion"] * 2
    assert items[0].text == "Age >= 18 years"
    assert items[1].text == "Localized disease defined as: PSA <=10 ng/mL"  # nested: the parent is kept as context
    assert items[2].text.endswith("Gleason score <= 7")
    assert items[3].text == "Diagnosis of type 2 diabetes for at least six months"  # a wrapped line continues
    assert items[5].text.startswith("Any of the following") and "stroke" in items[5].text  # alternatives stay one
    assert unassigned_lines(text, items) == []


def test_a_list_written_on_one_line_is_split() -> None:
    items = split_criteria("Inclusion Criteria:- Males 18 and older.- Heterosexual relationship. Exclusion Criteria:- "
                           "Nitrate use- Other exclusion criteria apply")
    assert [(i.section, i.text) for i in items] == [
        ("inclusion", "Males 18 and older."), ("inclusion", "Heterosexual relationship."),
        ("exclusion", "Nitrate use"), ("exclusion", "Other exclusion criteria apply")]


# --- the parser --------------------------------------------------------------------------------------


def test_ages_sex_and_ranges() -> None:
    age = one("Aged 18 to 75 years, inclusive", "Inclusion")
    assert age.status == STRUCTURED and (age.atoms[0].comparator, age.atoms[0].value, age.atoms[0].value_high) == (
        "between", 18, 75)
    both = one("The patient is a man at least 18 years old and less than 80 years old", "Inclusion")
    assert [(a.kind, a.comparator, a.value) for a in both.atoms] == [("sex", None, None), ("age", ">=", 18), ("age", "<", 80)]
    assert both.combine == "all"
    outside = one("Age <18 years or> 60 years")
    assert outside.combine == "any" and {a.comparator for a in outside.atoms} == {"<", ">"}


def test_lab_thresholds_with_comparator_value_unit_and_window() -> None:
    hba1c = one("HbA1c between 7.0% and 10.5% at screening", "Inclusion")
    assert (hba1c.atoms[0].concept, hba1c.atoms[0].comparator, hba1c.atoms[0].value, hba1c.atoms[0].value_high,
            hba1c.atoms[0].unit) == ("hba1c", "between", 7.0, 10.5, "%")
    anc = one("Absolute neutrophil count >= 1500/mm3", "Inclusion").atoms[0]
    assert (anc.concept, anc.comparator, anc.value, anc.unit) == ("anc", ">=", 1500, "/mm3")
    liver = one("ALT or AST greater than 3 times the upper limit of normal")
    assert {(a.concept, a.comparator, a.value, a.unit) for a in liver.atoms} == {("alt", ">", 3, ULN), ("ast", ">", 3, ULN)}
    psa = one("PSA >= 1 ng/mL within 3 months before screening", "Inclusion").atoms[0]
    assert psa.within_days == 91
    words = one("Testosterone level is less than 200ng/dl").atoms[0]
    assert (words.comparator, words.value, words.unit) == ("<", 200, "ng/dL")
    bracketed = one("Castrate level of testosterone (< 50 ng/dL)", "Inclusion")
    assert bracketed.status == STRUCTURED and (bracketed.atoms[0].comparator, bracketed.atoms[0].value) == ("<", 50)
    two_bounds = one("Glycated haemoglobin (HbA1c) >= 7.0% and <= 10.0%", "Inclusion").atoms[0]
    assert (two_bounds.comparator, two_bounds.value, two_bounds.value_high) == ("between", 7.0, 10.0)
    assert one("HbA1c >= 7% and < 10%", "Inclusion").status == NEEDS_REVIEW  # a strict upper bound is no inclusive range
    assert one("Histologically confirmed breast cancer", "Inclusion").atoms[0].codes == ("C50",)


def test_conditions_with_codes_windows_durations_exceptions_and_negation() -> None:
    recent = one("History of myocardial infarction or stroke within 6 months before screening")
    assert recent.combine == "any" and {a.concept for a in recent.atoms} == {"myocardial_infarction", "stroke"}
    assert all(a.within_days == 183 for a in recent.atoms) and "I21" in recent.atoms[0].codes
    cancer = one("History of malignancy within 5 years, other than non-melanoma skin cancer")
    assert cancer.atoms[0].codes == ("C",) and cancer.atoms[0].except_codes == ("C44",)
    chronic = one("Diagnosis of type 2 diabetes for at least 6 months before screening", "Inclusion").atoms[0]
    assert (chronic.codes, chronic.at_least_days, chronic.within_days) == (("E11",), 183, None)
    negated = one("No previous statin use", "Inclusion")
    assert negated.negated and negated.atoms[0].codes == ("C10AA",)
    washout = one("Treatment with systemic corticosteroids within 4 weeks before screening").atoms[0]
    assert (washout.kind, washout.codes, washout.within_days) == ("medication", ("H02",), 28)
    assert one("Current use of warfarin").atoms[0].codes == ("B01AA03",)  # a named drug, not its class



def test_conditions_and_medications_in_free_prose() -> None:
    ed = one("History of erectile dysfunction (ED) for at least 3 months duration", "Inclusion")
    assert ed.status == STRUCTURED and ed.atoms[0].codes == ("N52",) and ed.atoms[0].at_least_days == 91
    assert one("history of ED").atoms[0].codes == ("N52",)
    assert one("Patients who were treated (ed. note: see appendix)").status == NEEDS_REVIEW  # "ed." is no diagnosis
    pde5 = one("You have received previous or current treatment with tadalafil or any other PDE5 inhibitor.")
    assert pde5.status == STRUCTURED and not any(a.current for a in pde5.atoms)  # previous or current: ever
    assert {c for a in pde5.atoms for c in a.codes} >= {"G04BE08", "G04BE03"}
    assert one("May not participate in the study if you have taken tadalafil previously.").atoms[0].codes == ("G04BE08",)
    chemo = one("Currently receiving treatment with cancer chemotherapy or antiandrogens")
    assert [a.kind for a in chemo.atoms] == ["medication", "medication"] and all(a.current for a in chemo.atoms)
    abuse = one("Have a history of drug, alcohol, or substance abuse within the past 6 months.")
    assert {a.concept for a in abuse.atoms} == {"drug_abuse", "alcohol_abuse"} and abuse.combine == "any"
    assert one("Patients with continuing history of alcohol and / or drug abuse.").atoms[0].current
    assert one("Alcohol intake of more than 3 units per day").status == NEEDS_REVIEW  # alcohol alone is no disorder
    assert one("Patient with known diagnosis to AIDS or with a positive HIV result").atoms[0].codes == ("B20", "Z21")
    assert one("Body Mass Index (BMI) >35 kilograms per square meter (kg/m\\^2)").atoms[0].value == 35



def test_conditions_outside_the_vocabulary_are_read_by_their_icd10cm_names_only() -> None:
    assert one("Have retinitis pigmentosa.").atoms[0].codes == ("H35.52",)  # an inclusion term of H35.52
    hypotension = one("History of hypotension within 6 months")
    assert hypotension.atoms[0].codes == ("I95",) and hypotension.atoms[0].within_days == 183
    # "Psychosis NOS" is F29's inclusion term, but a criterion's psychosis means every kind: not guessed.
    assert one("Psychosis").status == NEEDS_REVIEW
    assert one("Klinefelter syndrome").status == NEEDS_REVIEW  # only "Klinefelter syndrome, unspecified" names one
    assert one("History of sudden cardiac arrest").status == NEEDS_REVIEW  # "sudden" is left unexplained


def test_pregnancy_contraception_and_ecog() -> None:
    pregnancy = one("Pregnant or breastfeeding women")
    assert {a.kind for a in pregnancy.atoms} == {"pregnancy", "breastfeeding"} and pregnancy.combine == "any"
    contraception = one("Women of childbearing potential must agree to use highly effective contraception", "Inclusion")
    assert [a.kind for a in contraception.atoms] == ["contraception"]
    ecog = one("Eastern Cooperative Oncology Group (ECOG) performance status 0-1", "Inclusion").atoms[0]
    assert (ecog.kind, ecog.value, ecog.value_high) == ("ecog", 0, 1)


def test_what_cannot_be_read_is_kept_for_review_never_guessed() -> None:
    assert one("Participation in another clinical trial within 30 days").status == ADMINISTRATIVE
    judged = one("Any condition that, in the opinion of the investigator, would compromise safety")
    assert judged.status == NEEDS_REVIEW and "judgement" in judged.note
    unknown_term = one("History of life-threatening arrhythmia or myocardial infarction")
    assert unknown_term.status == NEEDS_REVIEW and "life-threatening" in unknown_term.note
    assert one("Testosterone greater than 300ng/dL or 1000ng/dL").status == NEEDS_REVIEW  # 1000 is unexplained
    assert one("Other active malignancy").status == NEEDS_REVIEW  # relative to the studied disease
    assert one("Men with normal testosterone levels (300 ng/dl)", "Inclusion").status == NEEDS_REVIEW
    assert one("History of diabetes requiring insulin").status == NEEDS_REVIEW  # which qualifies which?


def test_criteria_round_trip_as_json_with_stable_keys() -> None:
    parsed = parse_criteria("Inclusion Criteria:\n* Age >= 18 years\nExclusion Criteria:\n* ALT > 3 x ULN")
    again = criteria_from_json(criteria_json(parsed))
    assert again == parsed and parsed[0].key != parsed[1].key
    assert parse_criteria("Inclusion Criteria:\n* Age   >= 18 years")[0].key == parsed[0].key


@pytest.mark.parametrize("indication", sorted(INDICATION_CONDITION))
def test_generated_protocols_lose_no_criterion_and_mostly_read_back_as_written(indication: str) -> None:
    protocol = make_protocol(np.random.default_rng(11), indication, "Phase 3")
    parsed = parse_criteria(protocol.text)
    assert len(parsed) == len(protocol.criteria)
    assert unassigned_lines(protocol.text, split_criteria(protocol.text)) == []
    agree = sum(p.status == t.truth.status for p, t in zip(parsed, protocol.criteria))
    assert agree >= len(parsed) - 2


# --- vocabulary and the labelled sample -----------------------------------------------------------


def test_every_icd10cm_code_of_the_vocabulary_is_in_the_official_code_set() -> None:
    simple_icd_10_cm = pytest.importorskip("simple_icd_10_cm")
    from analytics.recruitment.vocabulary import CONDITIONS

    bad = [(t.key, code) for t in CONDITIONS for code in t.icd10cm
           if code != "C" and not simple_icd_10_cm.is_valid_item(code)]
    assert bad == []
    # The broadest prefix, "C", stands for chapter 2's malignant neoplasms C00-C96.
    assert simple_icd_10_cm.get_description("C61") == "Malignant neoplasm of prostate"


def test_the_labelled_sample_still_points_at_the_registry_texts(shared_data: Path) -> None:
    from analytics.evaluation.recruitment import evaluate_registry

    result = evaluate_registry(shared_data / "ctgov" / "urology_ctg-studies.json.zip", LABELS)
    sample = result["labelled_sample"]
    assert sample["criteria"] == len(json.loads(LABELS.read_text())["labels"]) == 162
    assert sample["split_differently_from_the_labels"] == 0
    assert result["lines_not_assigned_to_a_criterion"] == 0 and result["studies"] == 300
    # The figures the README reports (measured with this parser): a wrong structure is the harmful error. Of the two,
    # one is "Have retinitis pigmentosa." read as ICD-10-CM H35.52 (its inclusion term), which the scorer counts wrong
    # because that label names no code (a concept outside the vocabulary when the sample was labelled).
    assert sample["wrong_structure"] <= 2 and sample["accuracy"] >= 0.65
    # The second sample, labelled after the free-prose rules were written, is scored on its own.
    new = result["labelled_sample_new"]
    assert new["criteria"] == 69 and new["split_differently_from_the_labels"] == 0
    assert new["wrong_structure"] <= 1 and new["accuracy"] >= 0.5


def test_a_threshold_of_zero_survives_the_round_trip() -> None:
    ecog = one("ECOG performance status of 0 to 1", "Inclusion")
    assert criteria_from_json(criteria_json([ecog]))[0].atoms[0].value == 0.0
