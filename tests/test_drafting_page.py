"""The Drafting page through the frame (AppTest): draft, check, edit, sign as two people, the trail,
and a failing endpoint's visible fallback."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from tests.llm_server import Reply, scripted_server

APP = str(Path(__file__).resolve().parents[1] / "app.py")


def open_drafting(monkeypatch: pytest.MonkeyPatch, user: str, params: dict | None = None) -> AppTest:
    monkeypatch.setenv("CRO_USER", user)
    at = AppTest.from_file(APP, default_timeout=120)
    for key, value in (params or {}).items():
        at.query_params[key] = value
    at.switch_page("pages/drafting.py")
    return at.run()


def meaning(at: AppTest):
    """The signature's meaning (the sidebar has selectboxes of its own)."""
    return next(s for s in at.selectbox if s.label == "Meaning of the signature")


def texts(elements) -> list[str]:
    return [e.value for e in elements]


def button(at: AppTest, label: str):
    return next(b for b in at.button if b.label == label)


def test_draft_edit_and_sign_by_two_people(app_env, monkeypatch) -> None:
    at = open_drafting(monkeypatch, "local")
    assert not at.exception and any("No model endpoint is configured" in m for m in texts(at.info))
    assert at.dataframe[0].value["Fact"].iloc[0] == "F1"  # the fact table is shown before drafting
    at.button(key="draft_button").click().run()
    assert not at.exception, texts(at.exception)
    draft_id = at.query_params["draft"]
    draft_id = draft_id[0] if isinstance(draft_id, list) else draft_id
    assert draft_id.startswith("D-")
    assert any("Faithfulness check passed" in m for m in texts(at.success))
    assert any("Trail verified" in m for m in texts(at.success))

    # An edit with a fabricated number: saved, re-checked, highlighted.
    edited = at.text_area[0].value + "\nThe site also has 98765 open queries [F1].\n"
    at.text_area[0].set_value(edited)
    at.text_input[0].set_value("added the query backlog")
    button(at, "Save the edit").click().run()
    assert not at.exception, texts(at.exception)
    assert any("1 hard" in m for m in texts(at.error)), texts(at.error)
    assert any("98765" in m and "<mark" in m for m in texts(at.markdown))

    # The author may not approve; the administrator may, with a justification for the open violation.
    meaning(at).set_value("approved")
    at.text_input[1].set_value("local")
    button(at, "Sign").click().run()
    assert any("author cannot sign as approved" in m for m in texts(at.error)), texts(at.error)

    at = open_drafting(monkeypatch, "admin", {"draft": draft_id})
    meaning(at).set_value("approved")
    at.text_input[1].set_value("admin")
    button(at, "Sign").click().run()
    assert any("justification" in m or "write why" in m for m in texts(at.error)), texts(at.error)
    at.text_area[-1].set_value("Checked against the EDC: the backlog figure is a placeholder for the visit.")
    button(at, "Sign").click().run()
    assert not at.exception
    assert any("Workbench administrator" in m and "approved" in m for m in texts(at.markdown))
    assert any("Trail verified: 3 audit records" in m for m in texts(at.success)), texts(at.success)


def test_a_failing_endpoint_shows_why_the_template_was_used(app_env, monkeypatch) -> None:
    with scripted_server(Reply(status=500)) as server:
        monkeypatch.setenv("CRO_LLM_BASE_URL", server.base_url)
        monkeypatch.setenv("CRO_LLM_TIMEOUT_S", "2")
        monkeypatch.setenv("CRO_LLM_MAX_RETRIES", "0")
        at = open_drafting(monkeypatch, "local", {"doc": "meeting_summary"})
        assert any("127.0.0.1" in m for m in texts(at.success))
        at.button(key="draft_button").click().run()
    assert not at.exception, texts(at.exception)
    assert any("HTTP 500" in m and "template" in m for m in texts(at.warning)), texts(at.warning)
    assert len(server.requests) == 1


def test_a_blinded_role_gets_no_arm_figures_in_the_ae_overview(app_env, monkeypatch) -> None:
    at = open_drafting(monkeypatch, "local", {"doc": "csr_ae_overview", "about_study": "ST001"})
    assert not at.exception
    facts = at.dataframe[0].value
    assert not facts["What"].str.contains("arm", case=False).any()
    assert any("only to unblinded roles" in c for c in texts(at.caption))
    at = open_drafting(monkeypatch, "statistician", {"doc": "csr_ae_overview", "about_study": "ST001"})
    assert at.dataframe[0].value["What"].str.contains("Treatment arm").any()
