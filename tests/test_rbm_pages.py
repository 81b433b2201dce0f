"""The RBM heatmap and Site performance pages through the frame: URL state, drill-down, bad ids."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

APP = str(Path(__file__).resolve().parent.parent / "app.py")


@pytest.fixture(scope="module")
def warehouse_env(demo_db: Path):
    """The session's demo warehouse (read-only here)."""
    mp = pytest.MonkeyPatch()
    mp.setenv("CRO_WAREHOUSE", str(demo_db))
    mp.setenv("CRO_USER", "admin")
    yield demo_db
    mp.undo()


def _page(page: str, params: dict | None = None) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=120)
    for key, value in (params or {}).items():
        at.query_params[key] = value
    at.switch_page(page)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def test_heatmap_renders_and_drills_down_from_the_url(warehouse_env):
    at = _page("pages/rbm_heatmap.py")
    assert len(at.get("plotly_chart")) == 1
    assert any("flagged" in m.label for m in at.metric)
    site = at.selectbox(key="url_focus").options[0]
    focus = next(v for v, label in at.session_state["_cro_page_context"].choices["focus"].items() if label == site)
    at = _page("pages/rbm_heatmap.py", {"focus": focus, "kri": "sae_rate", "method": "funnel"})
    assert len(at.get("plotly_chart")) == 3, ([i.value for i in at.info], [w.value for w in at.warning], dict(at.query_params))  # heatmap, funnel, cumulative
    share = next(c.value for c in at.caption if "Link to this view" in c.value)
    assert f"focus={focus}" in share and "kri=sae_rate" in share and "method=funnel" in share
    assert at.segmented_control(key="url_method").value == "funnel"
    assert at.selectbox(key="url_kri").value == "sae_rate"
    funnel = json.loads(at.get("plotly_chart")[1].proto.spec)
    assert "SAE rate" in funnel["layout"]["title"]["text"] and funnel["layout"]["xaxis"]["title"]["text"]


def test_changing_the_drill_down_site_writes_its_id_to_the_url(warehouse_env):
    at = _page("pages/rbm_heatmap.py")
    box = at.selectbox(key="url_focus")
    choices = at.session_state["_cro_page_context"].choices["focus"]
    for label in box.options[1:4]:
        at.selectbox(key="url_focus").select(label).run()
        site = next(v for v, text in choices.items() if text == label)
        assert at.query_params["focus"] in (site, [site])
        assert len(at.get("plotly_chart")) == 3


def test_unknown_ids_and_methods_in_a_link_are_refused_by_name(warehouse_env):
    at = _page("pages/rbm_heatmap.py", {"method": "gsm-style funnel", "focus": "NO-SUCH-SITE", "kri": "bogus"})
    warnings = " ".join(w.value for w in at.warning)
    assert "NO-SUCH-SITE" in warnings and "bogus" in warnings and "gsm-style funnel" in warnings
    assert at.segmented_control(key="url_method").value == "calibrated"
    assert "focus" not in at.query_params and "kri" not in at.query_params


def test_site_performance_renders_with_one_study_selector(warehouse_env):
    at = _page("pages/site_performance.py", {"study": "ST003"})
    table = at.dataframe[0].value
    assert set(table["Study"]) == {"ST003"}
    assert not [s for s in at.selectbox if s.label == "Study"]  # the sidebar's study filter is the only one
    at = _page("pages/site_performance.py", {"study": "ST999"})
    assert any("ST999" in w.value for w in at.warning)


def test_a_site_without_enrollment_ranks_below_every_enrolling_site_of_its_study(warehouse_env):
    at = _page("pages/site_performance.py")
    table = at.dataframe[0].value
    for _, study in table.groupby("Study", sort=False):
        order = study.reset_index(drop=True)
        enrolling = order.index[order["Randomized"] > 0]
        silent = order.index[order["Randomized"] == 0]
        if len(enrolling) and len(silent):
            assert silent.min() > enrolling.max()
            assert order.loc[silent, "Overall percentile"].isna().all()
            assert (order.loc[silent, "Assessment"] == "No enrollment yet").all()


def test_the_heatmap_exports_as_csv_and_an_excel_workbook(warehouse_env):
    import io

    import pandas as pd

    at = _page("pages/rbm_heatmap.py")
    buttons = {b.key: b for b in at.get("download_button")}
    assert {"download_heatmap_csv", "download_heatmap_xlsx"} <= set(buttons)
    ctx = at.session_state["_cro_page_context"]
    from analytics.kri import service, tables

    cells, sites = service.kri_tables(ctx.warehouse, ctx.scope, ctx.filters, "calibrated")
    labels = service.site_labels(ctx.warehouse, ctx.scope, ctx.filters)
    grid = tables.heatmap_table(cells, list(sites["study_site_id"]), labels)
    assert list(grid.columns[:2]) == ["Site", "AE rate"] and len(grid) == len(sites)
    assert set(grid["AE rate"]) <= {"Red", "Amber", "No signal", "Insufficient data", "—"}
    from analytics.display.exports import to_excel

    workbook = pd.read_excel(io.BytesIO(to_excel({"Heatmap": grid})), sheet_name=None)
    assert list(workbook) == ["Heatmap"] and workbook["Heatmap"].shape == grid.shape


def test_the_drill_down_reads_the_site_level_posterior(warehouse_env):
    at = _page("pages/rbm_heatmap.py")
    site = at.selectbox(key="url_focus").options[0]
    focus = next(v for v, label in at.session_state["_cro_page_context"].choices["focus"].items() if label == site)
    at = _page("pages/rbm_heatmap.py", {"focus": focus, "kri": "ae_rate", "method": "calibrated"})
    sentence = next(c.value for c in at.caption if c.value.startswith("Site-level posterior"))
    assert "times its study's (90% interval" in sentence and "P(below 75% of the study's) = " in sentence
