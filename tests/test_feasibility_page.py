"""The Feasibility page through the frame: its filters live in the URL, scenarios are saved and compared."""

from __future__ import annotations

from pathlib import Path

import pytest

from analytics.core.warehouse import Warehouse
from analytics.feasibility.trials import TrialSelection, select, trial_table
from tests.import_helpers import open_page

PAGE = "pages/feasibility.py"


@pytest.fixture
def feasibility_env(app_env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("CRO_RECORDS_URL", f"sqlite:///{tmp_path / 'records.sqlite'}")
    return app_env


def _open(params: dict[str, str | list[str]]):
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(Path(__file__).resolve().parents[1] / "app.py"), default_timeout=120)
    at.switch_page(PAGE)
    for key, value in params.items():
        at.query_params[key] = value
    return at.run()


def _metric(at, label: str) -> str:
    return next(m.value for m in at.metric if m.label == label)


def test_the_url_filters_choose_the_comparable_trials(feasibility_env: Path) -> None:
    at = _open({"phase": "PHASE3", "group": "Oncology", "condition": "lung"})
    assert not at.exception, [e.value for e in at.exception]
    expected = select(trial_table(Warehouse.open(feasibility_env)),
                      TrialSelection(source="synthetic", study_type="INTERVENTIONAL", phases=("PHASE3",),
                                     groups=("Oncology",), condition="lung"))
    assert 0 < len(expected) and _metric(at, "Comparable trials") == f"{len(expected):,}"
    assert at.query_params["phase"] in ("PHASE3", ["PHASE3"]) and at.query_params["condition"] in ("lung", ["lung"])
    assert any("Link to this view" in c.value and "condition=lung" in c.value for c in at.caption)


def test_a_value_the_data_do_not_have_is_refused_with_a_message(feasibility_env: Path) -> None:
    at = _open({"phase": "PHASE9"})
    assert any("Phase 'PHASE9' is not available" in w.value for w in at.warning)
    assert "phase" not in at.query_params


def test_a_saved_scenario_is_compared_from_the_url(feasibility_env: Path) -> None:
    at = open_page(PAGE)
    assert not at.exception, [e.value for e in at.exception]
    at.text_input(key="sc_name").input("Base case")
    at.text_input(key="sc_proposal").input("RFP 2026-14")
    at.run()
    at.button(key="sc_save").click()
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    compare = at.query_params["compare"]
    scenario_id = compare if isinstance(compare, str) else compare[0]
    names = [df.value for df in at.dataframe if "Figure" in df.value.columns]
    assert names and any(c.startswith("Base case (v1") for c in names[0].columns)
    assert names[0].set_index("Figure").filter(like="Base case").iloc[:, 0]["Proposal"] == "RFP 2026-14"
    again = _open({"compare": scenario_id})  # the link alone reproduces the comparison
    assert any("Figure" in df.value.columns for df in again.dataframe)


def test_the_page_says_whether_a_user_gets_the_model_or_the_phase_median(feasibility_env: Path) -> None:
    at = _open({})
    assert not at.exception, [e.value for e in at.exception]
    said = [c.value for c in at.caption if "you get the" in c.value]
    assert len(said) == 2 and all("bootstrap resamples" in c for c in said)  # duration and rate, with the evidence
    metrics = next(df.value for df in at.dataframe if "You get" in df.value.columns)
    assert (metrics["You get"] == "yes").sum() == 2  # one method per target
    benchmark = next(df.value for df in at.dataframe if "P50" in df.value.columns)
    assert benchmark["Trials"].str.fullmatch(r"\d{1,3}(,\d{3})*").all()  # counts with thousands separators
