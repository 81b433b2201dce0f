"""The faithfulness checker, de-identification and plain-language rules on hand-made facts (no warehouse)."""

from __future__ import annotations

import pytest

from analytics.drafting.checker import Requirements, check_draft
from analytics.drafting.deid import Identifiers, Pseudonymizer, leaks
from analytics.drafting.facts import fact, number_facts, percent
from analytics.drafting.plain_language import ETHICS_MARK, readability_grade

FACTS = number_facts([
    fact("open_queries", "Open queries", 37, "open queries", "queries"),                      # F1
    fact("old_queries", "Queries open more than 30 days", 9, "queries", "queries"),           # F2
    percent("old_pct", "Queries open more than 30 days, % of open", 9, 37, "queries"),        # F3 24.3%
    fact("last_visit", "Last monitoring visit", "2026-03-03", "date", "monitoring_visits"),   # F4
    fact("entry_lag", "Median days from visit to entry", 14, "days", "visits"),               # F5
    fact("site_name", "Site", "Clinic 12 de Octubre", "text", "sites"),                       # F6
    fact("protocol", "Protocol", "GEM-ONC-201", "id", "studies"),                             # F7
    fact("randomized", "Subjects randomized", 120, "subjects randomized", "subjects"),        # F8
    fact("investigator", "Principal investigator", "Dr. Olga Tanaka", "text", "study_sites"), # F9
])
IDS = Identifiers(frozenset({"ST001-1008-001", "ST001-1008-002"}), frozenset({"Dr. Olga Tanaka", "Samir Jensen"}))


def check(text: str, sections: tuple[str, ...] = ()):
    return check_draft(text, FACTS, Requirements(sections=sections), IDS)


def codes(text: str) -> set[str]:
    return {v.code for v in check(text).hard}


FAITHFUL = [
    "The site has 37 open queries [F1].",
    "Of the 37 open queries, 9 have been open for more than 30 days [F1, F2].",
    "That is 24.3% of open queries [F3].",
    "About 24% of the open queries are older than 30 days. [F3]",
    "The last monitoring visit took place on 3 March 2026 [F4].",
    "Monitoring last visited on March 3, 2026 [F4].",
    "Visits were entered a median of 14 days after they took place [F5].",
    "Clinic 12 de Octubre takes part in protocol GEM-ONC-201 [F6, F7].",
    "The principal investigator is Dr. Olga Tanaka [F9].",
    "So far 120 subjects have been randomized [F8].",
    "In 2026 the site was last visited in March [F4].",
]


@pytest.mark.parametrize("sentence", FAITHFUL)
def test_faithful_sentences_pass(sentence: str) -> None:
    result = check(sentence)
    assert result.passed and not result.violations, [v.message for v in result.violations]


def test_the_trap_a_number_reused_with_another_meaning_is_caught() -> None:
    # The small model's sentence: both numbers exist in the facts, with other meanings.
    result = check("The study has a sample size of 37 and a study duration of 9 days [F1, F2].")
    assert [v.code for v in result.hard] == ["unit_mismatch", "unit_mismatch"]
    assert "'37'" in result.hard[0].message and "'9'" in result.hard[1].message
    assert "Open queries" in result.hard[0].message


def test_the_trap_a_number_of_another_sentences_fact_is_caught() -> None:
    result = check("The site has 37 open queries [F1]. There are 9 open queries with an answer pending [F1].")
    hard = result.hard
    assert [v.code for v in hard] == ["number_from_uncited_fact"]
    assert "F2" in hard[0].message and hard[0].sentence == 1  # the second sentence, not the first


def test_swapped_values_between_two_cited_facts_are_caught() -> None:
    assert codes("There are 9 open queries, of which 37 queries have been open for more than 30 days [F1, F2].") \
        == {"number_swapped"}


@pytest.mark.parametrize(("sentence", "code"), [
    ("The site has 40 open queries [F1].", "number_not_in_facts"),
    ("The site has 37 open queries.", "number_from_uncited_fact"),
    ("37% of queries are open [F1].", "unit_mismatch"),
    ("Visits were entered a median of 14 weeks after the visit [F5].", "unit_mismatch"),
    ("That is 24.3 days of open queries [F3].", "unit_mismatch"),
    ("There are 37 open sites [F1].", "unit_mismatch"),
    ("The site has 37 open queries [F12].", "unknown_fact_id"),
    ("The last visit was on 4 March 2026 [F4].", "date_not_in_facts"),
    ("The last visit was on 3 March 2026.", "date_from_uncited_fact"),
    ("Subject ST001-1008-001 had 37 open queries [F1].", "personal_identifier"),
    ("Subject ST001-1008-999 had 37 open queries [F1].", "personal_identifier"),
    ("Contact j.smith@example.org about the 37 open queries [F1].", "personal_identifier"),
    ("Call +44 20 7946 0958 about the 37 open queries [F1].", "personal_identifier"),
    ("Samir Jensen follows up the 37 open queries [F1].", "personal_identifier"),
    ("Protocol GEM-ONC-999 has 37 open queries [F1, F7].", "identifier_not_in_facts"),
    ("Placebo subjects had 37 open queries [F1].", "arm_in_blinded_document"),
])
def test_each_kind_of_unfaithful_statement_is_a_hard_violation(sentence: str, code: str) -> None:
    assert code in codes(sentence)


def test_a_citation_after_the_full_stop_belongs_to_its_sentence_and_violations_point_at_it() -> None:
    text = "# Report\n\n## Queries\n\nThe site has 37 open queries. [F1] Of them, 40 are old. [F2]\n"
    result = check(text)
    (violation,) = result.hard
    assert text[violation.start:violation.end] == "Of them, 40 are old. [F2]"


def test_required_sections_are_checked() -> None:
    text = "# Report\n\n## Data quality\n\nThe site has 37 open queries [F1].\n"
    result = check(text, sections=("Data quality", "Safety reporting"))
    assert [v.token for v in result.hard] == ["Safety reporting"]


def test_deidentification_is_consistent_and_restored_locally() -> None:
    text = ("Dr. Olga Tanaka saw ST001-1008-001 (DOB 1961-04-02) and ST001-1008-001 again; Dr. Tanaka wrote to "
            "o.tanaka@clinic.org, +1 415 555 0100. Samir Jensen owns the CAPA.")
    p = Pseudonymizer(IDS)
    sent = p.replace(text)
    assert leaks(sent, IDS) == []
    assert sent.count("[SUBJECT_1]") == 2 and sent.count("[PERSON_1]") == 2  # same value, same placeholder
    assert "[PERSON_2]" in sent and "[EMAIL_1]" in sent and "[PHONE_1]" in sent and "[DOB_1]" in sent
    assert p.restore(sent).replace("Dr. Olga Tanaka wrote", "Dr. Tanaka wrote") == text
    assert p.restore("[PERSON_2] and PERSON_1 agreed.") == "Samir Jensen and Dr. Olga Tanaka agreed."


def test_patient_facing_wording_and_readability() -> None:
    plain = (f"# Notice\n\n*{ETHICS_MARK}.*\n\n## About\n\nWe are doing a study. You can say no. You can stop at any "
             "time.\n")
    result = check_draft(plain, FACTS, Requirements(patient_facing=True, max_grade=9))
    assert result.passed and result.readability_grade is not None and result.readability_grade < 8
    pushy = plain.replace("You can say no.", "This new drug will cure you. Act now, you must join.")
    found = check_draft(pushy, FACTS, Requirements(patient_facing=True, max_grade=9))
    assert {v.token.lower() for v in found.hard if v.code == "wording"} >= {"will cure", "act now", "you must"}
    unmarked = check_draft(plain.replace(ETHICS_MARK, "Notice"), FACTS, Requirements(patient_facing=True))
    assert "missing_section" in unmarked.codes()
    dense = ("Participation necessitates comprehensive pharmacokinetic characterization, electrocardiographic "
             "surveillance and longitudinal immunogenicity assessments throughout the investigational period.")
    assert readability_grade(dense) > 14


def test_a_quoted_record_with_full_stops_and_numbers_is_one_claim_of_its_fact() -> None:
    facts = number_facts([fact("event", "Quality event description", "Could not verify 5 visits. Notes not filed.",
                               "text", "quality_events")])
    quoted = 'The event was recorded as: "Could not verify 5 visits. Notes not filed." [F1].'
    assert check_draft(quoted, facts).passed
    altered = 'The event was recorded as: "Could not verify 6 visits. Notes not filed." [F1].'
    assert {v.code for v in check_draft(altered, facts).hard} == {"number_not_in_facts"}
