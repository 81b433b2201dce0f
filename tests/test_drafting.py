"""The drafting assistant on the demo warehouse: facts and templates of every document type, a real
OpenAI-compatible server on 127.0.0.1 (streaming) scripted to answer well and badly, de-identification,
the records trail and its tamper checks, signing rules and exports."""

from __future__ import annotations

import io
import re
import shutil
from pathlib import Path

import pytest
import sqlalchemy as sa

from analytics.core.records import RecordsStore
from analytics.core.scope import AccessScope
from analytics.core.settings import LlmSettings, SettingsError, load_llm_settings
from analytics.core.warehouse import Warehouse
from analytics.drafting import export, pack, service, store, workflow
from analytics.drafting.context import SubjectUnavailable
from analytics.drafting.deid import leaks
from analytics.drafting.facts import fact, number_facts
from analytics.drafting.llm import Endpoint
from analytics.drafting.specs import CATALOGUE, FEASIBILITY_SUMMARY
from analytics.drafting.templates import render_section
from tests.llm_server import MODEL, Reply, scripted_server

BLINDED = AccessScope(blinded=True)
UNBLINDED = AccessScope(blinded=False)


@pytest.fixture(scope="module")
def wh(demo_db: Path) -> Warehouse:
    return Warehouse.open(demo_db)


@pytest.fixture
def records(tmp_path: Path):
    with RecordsStore(f"sqlite:///{tmp_path / 'records.sqlite'}") as s:
        yield s


def busy_site(wh: Warehouse) -> str:
    """A site with open queries, randomized subjects and a last monitoring visit."""
    rows = wh.query(BLINDED, "SELECT q.study_site_id, count(*) AS n FROM queries q JOIN subjects s USING (study_site_id) "
                             "WHERE q.status <> 'Closed' GROUP BY 1 ORDER BY n DESC LIMIT 1")
    return rows["study_site_id"].iloc[0]


@pytest.fixture(scope="module")
def site_facts(wh: Warehouse) -> service.Facts:
    return service.document_facts(wh, BLINDED, "monitoring_visit_report", busy_site(wh), 90)


@pytest.mark.parametrize("spec", CATALOGUE, ids=lambda s: s.key)
@pytest.mark.parametrize("scope", [BLINDED, UNBLINDED], ids=["blinded", "unblinded"])
def test_every_document_type_renders_from_its_template_and_passes_the_check(wh, spec, scope) -> None:
    choices = list(service.subject_choices(wh, scope, spec.subject_kind))
    rendered = 0
    for subject in choices[:: max(1, len(choices) // 4)][:4]:
        try:
            facts = service.document_facts(wh, scope, spec.key, subject, 90)
        except SubjectUnavailable:
            continue
        text = service.render_template(facts)
        result = service.check(text, facts, service.known_identifiers(wh, scope, facts.study_ids), scope.blinded)
        assert result.passed and not result.soft, (text, [v.message for v in result.violations])
        assert all(f"## {name}" in text for name in spec.required_sections)
        cited = set(re.findall(r"F\d+", text))
        assert cited <= set(facts.facts.by_id()) and cited, text
        assert not ONE_AND_A_PLURAL.search(text), ONE_AND_A_PLURAL.search(text)
        rendered += 1
    assert rendered >= 1


ONE_AND_A_PLURAL = re.compile(r"(?<![\d.,])1 (subjects|studies|sites|queries|visits|trials|institutions|events|"
                              r"findings|extensions|participants|open queries|active sites|study visits|CAPAs)\b|There are 1\b")


def test_a_count_of_one_takes_the_singular() -> None:
    institution = "institution:Hospital A"
    facts = number_facts([
        fact("ranked", "Institutions ranked", 1, "sites", "site_selection_ranking"),
        fact("name", "Institution", "Hospital A", "text", "sites", group=institution),
        fact("country", "Country", "DE", "text", "sites", group=institution),
        fact("studies", "Studies in the area", 1, "studies", "site_selection_ranking", group=institution),
        fact("randomized", "Subjects randomized", 12, "subjects randomized", "site_selection_ranking",
             group=institution),
        fact("rate", "Expected rate", 0.8, "per site-month", "site_selection_ranking", group=institution, decimals=2),
        fact("lower", "Lower", 0.5, "per site-month", "site_selection_ranking", group=institution, decimals=2),
        fact("upper", "Upper", 1.1, "per site-month", "site_selection_ranking", group=institution, decimals=2),
    ])
    section = next(s for s in FEASIBILITY_SUMMARY.sections if s.name == "Candidate institutions")
    text = "\n".join(render_section(section, facts))
    assert "1 institution leads [F1]:" in text, text  # the citation before the colon that opens the list
    assert "Hospital A (DE): 1 study, 12 subjects randomized," in text, text
    assert not ONE_AND_A_PLURAL.search(text), text


def test_arm_level_figures_only_for_unblinded_roles(wh) -> None:
    blinded = service.document_facts(wh, BLINDED, "csr_ae_overview", "ST001", 90)
    unblinded = service.document_facts(wh, UNBLINDED, "csr_ae_overview", "ST001", 90)
    assert not blinded.facts.groups("arm:") and blinded.facts.notes
    arms = unblinded.facts.groups("arm:")
    assert len(arms) >= 2
    assert "not included" in service.render_template(blinded)
    assert all(arm.split(":", 1)[1] in service.render_template(unblinded) for arm in arms)
    randomized = unblinded.facts.get("randomized").value
    assert sum(unblinded.facts.get("randomized", arm).value for arm in arms) == randomized


def test_a_subject_outside_the_scope_is_refused_like_an_unknown_one(wh) -> None:
    sponsor = AccessScope(sponsor_ids=frozenset({"SP01"}), blinded=True)
    other = wh.query(BLINDED, "SELECT study_site_id FROM study_sites JOIN studies USING (study_id) "
                              "WHERE sponsor_id <> 'SP01' LIMIT 1")["study_site_id"].iloc[0]
    with pytest.raises(SubjectUnavailable, match="not available to you"):
        service.document_facts(wh, sponsor, "monitoring_visit_report", other, 90)
    with pytest.raises(SubjectUnavailable, match="not available to you"):
        service.document_facts(wh, sponsor, "monitoring_visit_report", "NO-SUCH-SITE", 90)


# --- a real OpenAI-compatible server on loopback ------------------------------------------------


def model_reply(facts: service.Facts) -> str:
    """A faithful draft as a model would answer: the sections without the title, reworded a little."""
    body = service.render_template(facts).split("\n", 2)[2]
    return body.replace("This summary covers", "This report summarizes").replace("The site has screened",
                                                                                "So far the site has screened")


def settings_for(url: str, **kw) -> LlmSettings:
    return LlmSettings(base_url=url, model="local-model", timeout_s=kw.pop("timeout_s", 2.0),
                       max_retries=kw.pop("max_retries", 1), **kw)


def run_draft(records, facts, settings, wh):
    identifiers = service.known_identifiers(wh, BLINDED, facts.study_ids)
    return workflow.draft_document(records, facts, settings, identifiers, actor="author@cro.example", scope=BLINDED,
                                   blinded=True), identifiers


def test_a_faithful_streamed_draft_from_a_local_server_passes_and_is_recorded(wh, records, site_facts) -> None:
    with scripted_server(Reply(text=model_reply(site_facts))) as server:
        drafted, _ = run_draft(records, site_facts, settings_for(server.base_url), wh)
    assert drafted.origin == "model" and drafted.check.passed, [v.message for v in drafted.check.violations]
    (request,) = server.requests
    assert request["path"] == "/v1/chat/completions" and request["body"]["stream"] is True
    assert request["body"]["model"] == "local-model" and request["body"]["max_tokens"] > 0
    assert "F1 |" in server.sent_text()  # the numbered facts were sent
    assert drafted.text.startswith(f"# {site_facts.title}\n")
    state = store.load_draft(records, drafted.draft_id)
    call = state.calls.iloc[0]
    assert (call["outcome"], call["model_reported"], call["loopback"], call["deidentified"]) == ("ok", MODEL, True,
                                                                                                False)
    assert call["raw_output"] == model_reply(site_facts) and "api_key" not in str(call["parameters"])
    assert state.draft["origin"] == "model" and state.draft["call_id"] == call["call_id"]
    assert store.verify_document(records, drafted.draft_id).ok


def _replace_first_number(text: str, sentence_word: str, old: str, new: str) -> str:
    """Change ``old`` to ``new`` in the first line that contains ``sentence_word``."""
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if sentence_word in line and re.search(rf"\b{re.escape(old)}\b", line):
            lines[i] = re.sub(rf"\b{re.escape(old)}\b", new, line, count=1)
            return "\n".join(lines)
    raise AssertionError(f"no line with {sentence_word!r} and {old!r}")


def test_unfaithful_model_drafts_are_flagged_not_hidden(wh, records, site_facts) -> None:
    facts = site_facts.facts
    open_q, randomized = facts.get("open_queries").value, facts.get("randomized").value
    other = facts.get("screened").value  # a value that belongs to another sentence's fact
    assert len({open_q, randomized, other}) == 3
    good = model_reply(site_facts)
    subject = next(iter(service.known_identifiers(wh, BLINDED, site_facts.study_ids).subject_ids))
    study_site = site_facts.subject
    cases = {
        "number_not_in_facts": _replace_first_number(good, "open queries", str(open_q), str(open_q + 1000)),
        "number_from_uncited_fact": _replace_first_number(good, "open queries", str(open_q), str(other)),
        "unit_mismatch": _replace_first_number(good, "open queries", f"{open_q} open queries", f"{open_q}% of queries"),
        "personal_identifier": good.replace("## Enrollment\n\n", f"## Enrollment\n\nSubject {study_site}-999 withdrew "
                                                                 "consent. "),
    }
    cases["unit_mismatch_trap"] = good + (f"\nThe study has a sample size of {open_q} and a duration of "
                                          f"{randomized} days [{facts.get('open_queries').fact_id}, "
                                          f"{facts.get('randomized').fact_id}].\n")
    for expected, reply in cases.items():
        with scripted_server(Reply(text=reply)) as server:
            drafted, _ = run_draft(records, site_facts, settings_for(server.base_url), wh)
        assert drafted.origin == "model"
        assert expected.removesuffix("_trap") in {v.code for v in drafted.check.hard}, (expected, drafted.check.hard)
        state = store.load_draft(records, drafted.draft_id)
        assert state.hard_violations == len(drafted.check.hard) > 0
    assert subject  # known subject ids exist for the study (used by the checker and de-identification)


@pytest.mark.parametrize(("reply", "reason", "outcome", "attempts"), [
    (Reply(status=500), "HTTP 500", "http_error", 2),
    (Reply(delay_s=3.0), "did not answer in time", "timeout", 2),
    (Reply(malformed=True), "could not be read", "malformed", 1),
    (Reply(text=""), "no text", "empty", 1),
], ids=["http500", "timeout", "malformed", "empty"])
def test_a_failing_endpoint_falls_back_to_the_template_with_a_reason(wh, records, site_facts, reply, reason, outcome,
                                                                     attempts) -> None:
    with scripted_server(reply) as server:
        drafted, _ = run_draft(records, site_facts, settings_for(server.base_url, timeout_s=0.6), wh)
    assert drafted.origin == "template_fallback" and reason in drafted.notice
    assert drafted.text == service.render_template(site_facts) and drafted.check.passed
    assert len(server.requests) == attempts  # a bounded retry for retriable failures only
    call = store.load_draft(records, drafted.draft_id).calls.iloc[0]
    assert call["outcome"] == outcome and call["attempts"] == attempts


def test_retry_recovers_from_one_server_error(wh, records, site_facts) -> None:
    with scripted_server(Reply(status=500), Reply(text=model_reply(site_facts))) as server:
        drafted, _ = run_draft(records, site_facts, settings_for(server.base_url), wh)
    assert drafted.origin == "model" and len(server.requests) == 2 and drafted.check.passed


def test_no_endpoint_renders_the_template_labelled_as_such(wh, records, site_facts) -> None:
    drafted, _ = run_draft(records, site_facts, LlmSettings(), wh)
    assert drafted.origin == "template" and "template" in drafted.notice and drafted.call is None
    assert store.load_draft(records, drafted.draft_id).calls.empty


def test_a_non_loopback_endpoint_gets_de_identified_text_only_when_allowed(wh, records, site_facts,
                                                                          monkeypatch) -> None:
    investigator = site_facts.facts.get("investigator").value
    reply = model_reply(site_facts).replace(investigator, "[PERSON_1]")
    with scripted_server(Reply(text=reply)) as server:
        remote = Endpoint(server.base_url, "llm.example.net", 443, loopback=False)
        monkeypatch.setattr(workflow, "endpoint_of", lambda settings: remote)  # requests still go to 127.0.0.1
        refused, _ = run_draft(records, site_facts, settings_for(server.base_url), wh)
        assert refused.origin == "template_fallback" and "not allowed" in refused.notice and not server.requests
        drafted, identifiers = run_draft(records, site_facts, settings_for(server.base_url, allow_remote=True), wh)
    sent = server.sent_text()
    assert investigator not in sent and "[PERSON_1]" in sent and leaks(sent, identifiers) == []
    assert drafted.origin == "model" and investigator in drafted.text and "[PERSON_1]" not in drafted.text
    assert drafted.check.passed, [v.message for v in drafted.check.violations]
    call = store.load_draft(records, drafted.draft_id).calls.iloc[0]
    assert call["deidentified"] and not call["loopback"] and call["endpoint_host"] == "llm.example.net:443"
    assert investigator not in str(call["prompt"])


# --- the trail, signatures, exports -------------------------------------------------------------


def signed_draft(records, site_facts, wh):
    drafted, identifiers = run_draft(records, site_facts, LlmSettings(), wh)
    state = store.load_draft(records, drafted.draft_id)
    edited = state.text.replace("## Open actions", "## Open actions\n\nThe monitor will follow up at the next visit.")
    result = service.check(edited, site_facts, identifiers, True)
    store.record_edit(records, state, text=edited, reason="added the follow-up", check=result.as_json(),
                      actor="author@cro.example", scope=BLINDED)
    state = store.load_draft(records, drafted.draft_id)
    store.sign(records, state, signer_id="author@cro.example", printed_name="Ann Author",
               entered_id="author@cro.example", meaning="authored", may_approve=False)
    return store.load_draft(records, drafted.draft_id)


def test_signing_rules(wh, records, site_facts) -> None:
    state = signed_draft(records, site_facts, wh)
    assert list(state.signatures_of_current_text()["meaning"]) == ["authored"]
    common = dict(printed_name="Bo Approver", meaning="approved", may_approve=True)
    with pytest.raises(store.SigningRefused, match="not the signed-in user"):
        store.sign(records, state, signer_id="approver@cro.example", entered_id="someone@cro.example", **common)
    with pytest.raises(store.SigningRefused, match="author cannot sign"):
        store.sign(records, state, signer_id="author@cro.example", entered_id="author@cro.example", **common)
    with pytest.raises(store.SigningRefused, match="approve_document"):
        store.sign(records, state, signer_id="cra@cro.example", entered_id="cra@cro.example",
                   **(common | {"may_approve": False}))
    store.sign(records, state, signer_id="approver@cro.example", entered_id="approver@cro.example", **common)
    state = store.load_draft(records, state.draft_id)
    assert list(state.signatures_of_current_text()["meaning"]) == ["authored", "approved"]
    # an edit after signing: the signatures stay recorded but no longer apply to the new text
    bad = state.text + "\nThe site has 99999 open queries [F1].\n"
    result = service.check(bad, site_facts, service.known_identifiers(wh, BLINDED, site_facts.study_ids), True)
    store.record_edit(records, state, text=bad, reason="typo", check=result.as_json(), actor="author@cro.example",
                      scope=BLINDED)
    state = store.load_draft(records, state.draft_id)
    assert state.signatures_of_current_text().empty and len(state.signatures) == 2 and state.hard_violations == 1
    with pytest.raises(store.SigningRefused, match="justification|write why"):
        store.sign(records, state, signer_id="approver@cro.example", entered_id="approver@cro.example", **common)
    store.sign(records, state, signer_id="approver@cro.example", entered_id="approver@cro.example",
               justification="Reviewed: the count is corrected in the source system.", **common)
    assert store.load_draft(records, state.draft_id).signatures.iloc[-1]["hard_violations"] == 1


def _sqlite_path(records) -> str:
    return records.engine.url.database


@pytest.mark.parametrize("tampering", ["edit_row", "delete_row", "edit_audit", "delete_audit", "reorder_audit"])
def test_the_trail_detects_tampering(wh, records, site_facts, tampering) -> None:
    state = signed_draft(records, site_facts, wh)
    assert store.verify_document(records, state.draft_id).ok
    audit = store.document_audit(records, state.draft_id)
    assert list(audit["object_type"]) == ["drafts", "draft_edits", "draft_signatures"]
    import sqlite3

    con = sqlite3.connect(_sqlite_path(records))
    try:
        for trigger in [r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'")]:
            con.execute(f"DROP TRIGGER {trigger}")  # what someone with full rights to the file could do
        seqs = list(audit["seq"])
        if tampering == "edit_row":
            con.execute("UPDATE drafts SET text = replace(text, 'open', 'closed') WHERE draft_id = ?", (state.draft_id,))
        elif tampering == "delete_row":
            con.execute("DELETE FROM draft_signatures WHERE draft_id = ?", (state.draft_id,))
        elif tampering == "edit_audit":
            con.execute("UPDATE audit_log SET actor = 'intruder' WHERE seq = ?", (seqs[0],))
        elif tampering == "delete_audit":
            con.execute("DELETE FROM audit_log WHERE seq = ?", (seqs[1],))
        else:
            con.execute("UPDATE audit_log SET seq = -1 WHERE seq = ?", (seqs[0],))
            con.execute("UPDATE audit_log SET seq = ? WHERE seq = ?", (seqs[0], seqs[1]))
            con.execute("UPDATE audit_log SET seq = ? WHERE seq = -1", (seqs[1],))
        con.commit()
    finally:
        con.close()
    result = store.verify_document(records, state.draft_id)
    assert not result.ok
    expected = {"edit_row": "edited", "delete_row": "deleted", "edit_audit": "BROKEN", "delete_audit": "BROKEN",
                "reorder_audit": "BROKEN"}[tampering]
    assert expected in result.describe(), result.describe()


def test_the_append_only_tables_refuse_changes(records, wh, site_facts) -> None:
    drafted, _ = run_draft(records, site_facts, LlmSettings(), wh)
    with records.engine.begin() as conn, pytest.raises(sa.exc.DatabaseError, match="append-only"):
        conn.execute(sa.text("UPDATE drafts SET text = 'x' WHERE draft_id = :d"), {"d": drafted.draft_id})


def test_exports_carry_the_text_facts_check_and_signatures(wh, records, site_facts) -> None:
    from docx import Document

    state = signed_draft(records, site_facts, wh)
    view = pack.export_view(state)
    markdown = export.to_markdown(view)
    assert "## Facts" in markdown and "| F1 |" in markdown and "Ann Author" in markdown and "authored" in markdown
    assert "The monitor will follow up" in markdown and state.text_sha256 in markdown
    word = Document(io.BytesIO(export.to_docx(view)))
    paragraphs = "\n".join(p.text for p in word.paragraphs)
    assert site_facts.title in paragraphs and "Open actions" in paragraphs and "Ann Author" in paragraphs
    assert word.tables[-1].rows[1].cells[0].text == "F1"
    pdf = export.to_pdf(view)
    assert pdf.startswith(b"%PDF-") and len(pdf) > 5_000


@pytest.mark.skipif(shutil.which("chromium") is None, reason="no Chromium for kaleido (apt-get install chromium)")
def test_the_sponsor_review_pack_embeds_its_charts(wh, records) -> None:
    facts = service.document_facts(wh, BLINDED, "sponsor_status_update", "sponsor:SP01", 90)
    drafted, _ = run_draft(records, facts, LlmSettings(), wh)
    state = store.load_draft(records, drafted.draft_id)
    figures = pack.review_pack_figures(wh, BLINDED, facts.study_ids)
    assert [t for t, _ in figures][:2] == ["Enrollment against plan", "Open queries by age"]
    charts = pack.figure_images(figures)
    assert all(png.startswith(b"\x89PNG") for _, png in charts)
    from docx import Document

    word = Document(io.BytesIO(export.to_docx(pack.export_view(state, charts=charts))))
    assert len(word.inline_shapes) == len(charts) >= 2
    assert export.to_pdf(pack.export_view(state, charts=charts)).count(b"/Subtype /Image") >= len(charts)


def test_chart_images_try_a_fresh_browser_when_one_was_not_ready(monkeypatch) -> None:
    """On a busy machine kaleido's tab can be asked to draw before its scripts loaded (a JavascriptError,
    "kaleido_scopes is not defined", failed CI once): the export tries a fresh browser, then gives up."""
    import plotly.graph_objects as go

    real, calls = go.Figure.to_image, []

    def not_ready_once(self, *args, **kwargs):
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("ReferenceError: kaleido_scopes is not defined")
        return real(self, *args, **kwargs)

    monkeypatch.setattr(go.Figure, "to_image", not_ready_once)
    images = pack.figure_images([("Enrollment against plan", go.Figure(go.Bar(x=[1, 2], y=[3, 4])))])
    assert len(calls) == 2 and images[0][1].startswith(b"\x89PNG")

    def never_ready(self, *args, **kwargs):
        raise RuntimeError("ReferenceError: kaleido_scopes is not defined")

    monkeypatch.setattr(go.Figure, "to_image", never_ready)
    with pytest.raises(RuntimeError, match="kaleido_scopes"):
        pack.figure_images([("Enrollment against plan", go.Figure())])


def test_llm_settings_come_from_the_environment_then_secrets() -> None:
    secrets = {"llm": {"base_url": "http://127.0.0.1:8000/v1", "model": "qwen", "allow_remote": True}}
    from_secrets = load_llm_settings({}, secrets)
    assert (from_secrets.base_url, from_secrets.model, from_secrets.allow_remote) == ("http://127.0.0.1:8000/v1",
                                                                                       "qwen", True)
    env = load_llm_settings({"OPENAI_BASE_URL": "http://10.0.0.5/v1", "CRO_LLM_BASE_URL": "http://[::1]:9/v1",
                             "OPENAI_API_KEY": "sk-secret"}, secrets)
    assert env.base_url == "http://[::1]:9/v1" and env.api_key == "sk-secret" and "sk-secret" not in repr(env)
    assert not load_llm_settings({}, {}).configured and not load_llm_settings({}, {}).allow_remote
    with pytest.raises(SettingsError, match="token_parameter"):
        load_llm_settings({"CRO_LLM_TOKEN_PARAMETER": "tokens"}, {})
    with pytest.raises(SettingsError, match="timeout_s"):
        load_llm_settings({"CRO_LLM_TIMEOUT_S": "soon"}, {})


def test_the_evaluation_meets_its_targets_on_a_small_corpus() -> None:
    from analytics.evaluation.drafting import CORRUPTIONS, evaluate_drafting

    result = evaluate_drafting(seed=4242, scenarios=8)
    assert result["drafts"] == 8 * (2 + len(CORRUPTIONS))
    assert result["targets"] == {"every_corruption_caught": True, "no_false_alarm": True, "no_identifier_sent": True}
    assert result["deidentification"]["restored_exactly"] == 8


def test_the_feasibility_summary_states_the_feasibility_pages_benchmarks(wh) -> None:
    """The drafted proposal's figures are the Feasibility page's: actual enrollment of trials that ended,
    and a Kaplan-Meier duration with running trials censored (never their anticipated completion dates)."""
    from analytics.feasibility.benchmarks import benchmark_table
    from analytics.feasibility.trials import trial_table

    facts = service.document_facts(wh, BLINDED, "feasibility_summary", "Oncology", 90).facts
    trials = trial_table(wh)
    oncology = trials[(trials["therapeutic_area"] == "Oncology") & (trials["study_type"] != "OBSERVATIONAL")]
    bench = benchmark_table(oncology).set_index("measure")
    assert facts.get("trials").value == len(oncology)
    assert facts.get("median_months").value == pytest.approx(bench.at["duration", "p50"], abs=0.05)
    assert facts.get("median_enrollment").value == round(oncology["actual_enrollment"].median())
    # Counting the running trials as censored makes the median longer than the completed trials' alone.
    assert facts.get("median_months").value > oncology.loc[oncology["completed"], "duration_months"].median()
