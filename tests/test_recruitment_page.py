"""The Recruitment page and its loaders: scope, criteria stored per study, decisions and accepted structures in
the records store, and the optional model's proposals checked against their sentence."""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from analytics.core.records import RecordsStore
from analytics.core.scope import NO_FILTER, AccessScope
from analytics.core.warehouse import Warehouse
from analytics.recruitment import decisions, funnel, proposals, service
from analytics.recruitment.criteria import Atom, Criterion
from analytics.recruitment.matching import match

APP = str(Path(__file__).resolve().parents[1] / "app.py")


def test_every_generated_study_has_its_criteria_parsed_and_stored(demo_db: Path) -> None:
    wh = Warehouse.open(demo_db)
    studies = service.recruitment_studies(wh, AccessScope(), NO_FILTER)
    assert len(studies) == 12 and (studies["patients"] > 0).all()
    criteria = service.stored_criteria(wh, AccessScope(), NO_FILTER, "ST001")
    assert [c.number for c in criteria] == list(range(1, len(criteria) + 1))
    assert {c.status for c in criteria} >= {"structured", "administrative", "needs_review"}
    assert service.freshness(wh, AccessScope(), NO_FILTER).ok


def test_a_monitor_sees_only_their_sites_pools(demo_db: Path) -> None:
    wh = Warehouse.open(demo_db)
    everything = service.load_pool(wh, AccessScope(), NO_FILTER, "ST002")
    sites = sorted(everything.patients["study_site_id"].unique())
    monitor = AccessScope(study_ids=frozenset({"ST002"}), study_site_ids=frozenset(sites[:2]))
    theirs = service.load_pool(wh, monitor, NO_FILTER, "ST002")
    assert set(theirs.patients["study_site_id"]) == set(sites[:2]) and len(theirs) < len(everything)
    assert set(theirs.conditions["patient_id"]) <= set(theirs.patients["patient_id"])
    assert len(service.load_pool(wh, AccessScope(study_ids=frozenset({"ST001"})), NO_FILTER, "ST002")) == 0


def test_pools_are_refused_to_a_scope_limited_to_aggregates(demo_db: Path) -> None:
    @dataclass(frozen=True)
    class AggregateScope(AccessScope):
        subject_level: bool = False

    wh = Warehouse.open(demo_db)
    scope = AggregateScope()
    criteria = service.stored_criteria(wh, scope, NO_FILTER, "ST001")
    with pytest.raises(service.PatientLevelRefused):
        service.matches(wh, scope, NO_FILTER, "ST001", criteria)
    steps, counts = service.waterfall(wh, scope, NO_FILTER, "ST001", criteria)  # counts stay available
    assert steps["before"].iloc[0] == sum(counts.values()) > 0
    assert service.patient_labels(wh, scope, NO_FILTER) == {}


def test_the_page_shows_a_patients_evidence_and_records_the_coordinators_decision(app_env: Path, monkeypatch) -> None:
    wh = Warehouse.open(app_env)
    criteria = service.stored_criteria(wh, AccessScope(), NO_FILTER, "ST001")
    summary = funnel.patient_summary(match(service.load_pool(wh, AccessScope(), NO_FILTER, "ST001"), criteria))
    patient = summary["patient_id"].iloc[0]
    monkeypatch.setenv("CRO_USER", "local")
    at = AppTest.from_file(APP, default_timeout=120)
    at.query_params["recruit_study"] = "ST001"
    at.query_params["patient"] = patient
    at.switch_page("pages/recruitment.py")
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    evidence = next(t.value for t in at.dataframe if "Value compared" in t.value.columns)
    assert len(evidence) == len(criteria) and set(evidence["Result"]) <= {"Passes", "Fails", "Unknown"}
    candidates = next(t.value for t in at.dataframe if "Pre-screen result" in t.value.columns)
    assert candidates["Patient"].iloc[0] == patient and candidates["Rank"].tolist() == sorted(candidates["Rank"])
    # A coordinator reads every row's chance: an estimate where something is unknown, never a blank cell.
    chance = candidates["Chance the unknowns pass (estimate)"]
    assert (chance != "").all()
    assert (chance[candidates["Unknown from records"] == 0] == "nothing unknown").all()
    at.text_input[0].input("Seen in clinic; interested")
    next(b for b in at.button if b.label == "Record the decision").click()
    at.run()
    assert any("Recorded" in s.value for s in at.success)
    stored = decisions.current_decisions(decisions.records_store(), ["ST001"])
    row = stored.set_index("patient_id").loc[patient]
    assert (row["decision"], row["reason"], row["actor"]) == (decisions.CONFIRMED, "Seen in clinic; interested", "local")


def test_an_accepted_structure_changes_matching_and_a_decision_needs_a_reason(demo_db: Path, tmp_path: Path) -> None:
    wh = Warehouse.open(demo_db)
    criteria = service.stored_criteria(wh, AccessScope(), NO_FILTER, "ST001")
    review = next(c for c in criteria if c.status == "needs_review")
    with RecordsStore(f"sqlite:///{tmp_path / 'records.sqlite'}") as store:
        with pytest.raises(decisions.DecisionError):
            decisions.record_decision(store, study_id="ST001", study_site_id="x", patient_id="p", decision=decisions.CONFIRMED,
                                      reason=" ", prescreen_result="", unknown_criteria=0, criteria_version="v",
                                      actor="me", allowed_studies={"ST001"})
        with pytest.raises(decisions.DecisionError):
            decisions.record_review(store, study_id="ST009", criterion=review, atoms=(Atom("age", comparator=">=", value=1),),
                                    combine="any", negated=False, decision=decisions.ACCEPTED, source="person",
                                    reason=None, actor="me", allowed_studies={"ST001"})
        atom = Atom("age", "age", "Age", comparator=">=", value=200.0, unit="years")  # nobody: everyone fails it
        decisions.record_review(store, study_id="ST001", criterion=review, atoms=(atom,), combine="any",
                                negated=False, decision=decisions.ACCEPTED, source="person", reason="checked",
                                actor="me", allowed_studies={"ST001"})
        applied = decisions.apply_reviews(criteria, decisions.current_reviews(store, "ST001"))
    changed = next(c for c in applied if c.key == review.key)
    assert changed.status == "structured" and changed.source == "person" and "me" in changed.note
    pool = service.load_pool(wh, AccessScope(), NO_FILTER, "ST001")
    position = [c.key for c in applied].index(review.key)
    result = match(pool, applied)
    expected = 1 if review.section == "exclusion" else 0  # the statement is false for everyone
    assert (result.passes[:, position] == expected).all()


# --- the optional model -------------------------------------------------------------------------------


CRITERION = Criterion(1, "exclusion", "History of myocardial infarction within 6 months, or ALT > 3 x ULN",
                      "needs_review")


def test_a_proposal_keeps_only_what_the_sentence_supports() -> None:
    part = {"kind": "condition", "concept": "myocardial infarction", "comparator": None, "value": None,
            "value_high": None, "unit": None, "window_amount": 6, "window_unit": "months", "duration_amount": None,
            "duration_unit": None, "current": False, "sexes": []}
    lab = {**part, "kind": "lab", "concept": "ALT", "comparator": ">", "value": 3, "unit": "x ULN", "window_amount": None,
           "window_unit": None}
    invented = {**lab, "value": 5}
    wrong_unit = {**lab, "unit": "mg/dL"}
    uncoded = {**part, "concept": "left bundle branch block"}
    proposal = proposals.verify(CRITERION, {"parts": [part, lab, invented, wrong_unit, uncoded], "combine": "any",
                                            "negated": False, "why_not": ""}, "test-model")
    assert [(a.kind, a.concept, a.within_days) for a in proposal.atoms] == [
        ("condition", "myocardial_infarction", 183), ("lab", "alt", None)]
    assert proposal.atoms[0].codes == ("I21", "I22", "I25.2")  # codes from the vocabulary, not the model
    assert len(proposal.refused) == 3 and not proposal.usable
    assert "5 not in the sentence" in proposal.refused[0] and "mg/dL" in proposal.refused[1]


def test_without_an_endpoint_the_model_path_is_off() -> None:
    endpoint = proposals.llm_endpoint({})
    assert not endpoint.configured
    with pytest.raises(proposals.ProposalError, match="no model endpoint"):
        proposals.propose(CRITERION, endpoint)


def test_a_proposal_from_an_openai_compatible_endpoint(monkeypatch) -> None:
    answer = {"parts": [{"kind": "condition", "concept": "myocardial infarction", "comparator": None, "value": None,
                         "value_high": None, "unit": None, "window_amount": 6, "window_unit": "months",
                         "duration_amount": None, "duration_unit": None, "current": False, "sexes": []}],
              "combine": "any", "negated": False, "why_not": ""}
    seen: list[dict] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 (http.server's name)
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            seen.append(body)
            reply = {"id": "x", "object": "chat.completion", "created": 0, "model": body["model"],
                     "choices": [{"index": 0, "finish_reason": "stop",
                                  "message": {"role": "assistant", "content": json.dumps(answer)}}]}
            data = json.dumps(reply).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args) -> None:
            return None

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        endpoint = proposals.llm_endpoint({"CRO_LLM_BASE_URL": f"http://127.0.0.1:{server.server_port}/v1",
                                           "CRO_LLM_MODEL": "local-test", "CRO_LLM_API_KEY": "k"})
        proposal = proposals.propose(CRITERION, endpoint)
    finally:
        server.shutdown()
        thread.join()
    assert proposal.usable and proposal.atoms[0].concept == "myocardial_infarction" and proposal.model == "local-test"
    request = seen[0]
    assert request["response_format"]["type"] == "json_schema" and CRITERION.text in request["messages"][1]["content"]
