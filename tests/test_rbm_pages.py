"""The RBM heatmap and Site Performance pages render, drill down from the URL and reject bad ids."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from analytics.evaluation.rbm import build_portfolio

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def warehouse_env(tmp_path_factory):
    path = tmp_path_factory.mktemp("pages") / "demo.duckdb"
    build_portfolio(path, "demo", 77)
    mp = pytest.MonkeyPatch()
    mp.setenv("CRO_WAREHOUSE", str(path))
    yield path
    mp.undo()


def _page(name: str) -> AppTest:
    return AppTest.from_file(str(ROOT / "pages" / name), default_timeout=120)


def test_heatmap_renders_and_drills_down(warehouse_env):
    at = _page("rbm_heatmap.py")
    at.run()
    assert not at.exception
    assert len(at.get("plotly_chart")) == 1
    assert any("Sites flagged" in m.label for m in at.metric)
    site = at.selectbox[0].options[0]
    site_id = site.split(" · ")[0]
    at.query_params["focus"] = site_id
    at.query_params["kri"] = "ae_rate"
    at.run()
    assert not at.exception
    assert len(at.get("plotly_chart")) == 3  # heatmap, funnel, cumulative O - E


def test_heatmap_funnel_method_and_unknown_ids(warehouse_env):
    at = _page("rbm_heatmap.py")
    at.query_params["method"] = "funnel"
    at.query_params["focus"] = "NO-SUCH-SITE"
    at.query_params["kri"] = "bogus"
    at.run()
    assert not at.exception
    warnings = " ".join(w.value for w in at.warning)
    assert "NO-SUCH-SITE" in warnings and "bogus" in warnings


def test_site_performance_renders_with_export(warehouse_env):
    at = _page("site_performance.py")
    at.run()
    assert not at.exception
    assert len(at.dataframe) >= 2
    at.query_params["perf_study"] = "ST999"
    at.run()
    assert not at.exception and any("ST999" in w.value for w in at.warning)
