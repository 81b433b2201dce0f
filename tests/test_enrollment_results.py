"""Enrollment results as derived tables, demographics, figures, the pilot's real history and the back-test."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest

from analytics.core import schema, warehouse
from analytics.core.scope import AccessScope, PortfolioFilter
from analytics.enrollment import figures
from analytics.enrollment.data import read_subjects
from analytics.enrollment.funnel import screen_failure_reasons, screening_funnel
from analytics.enrollment.results import RESULT_TABLES, compute_enrollment_results


def _sql(db: Path, query: str, params: list | None = None) -> pd.DataFrame:
    with warehouse.inspect(db) as con:
        return con.execute(query, params or []).df()


@pytest.fixture(scope="module")
def demo_results(demo_db: Path):
    wh = warehouse.Warehouse.open(demo_db)
    ids = _sql(demo_db, "SELECT study_id FROM main.studies ORDER BY 1")["study_id"].tolist()
    yield wh, ids, compute_enrollment_results(wh, AccessScope.full_access(), ids, n_sims=2_000)
    warehouse.close_all()


def test_results_are_tidy_declared_and_deterministic(demo_results) -> None:
    wh, ids, results = demo_results
    assert set(results) == set(RESULT_TABLES)
    for name, frame in results.items():
        declared = schema.table(name)
        assert declared.schema == "derived"
        assert list(frame.columns) == [c.name for c in declared.columns], name
        assert frame["study_id"].notna().all() and set(frame["study_id"]) <= set(ids), name
        if declared.primary_key:
            assert not frame.duplicated(list(declared.primary_key)).any(), name
    again = compute_enrollment_results(wh, AccessScope.full_access(), ids[:4], n_sims=2_000)
    first = results["enrollment_study_summary"].set_index("study_id").loc[ids[:4]]
    pd.testing.assert_frame_equal(first, again["enrollment_study_summary"].set_index("study_id"))


def test_results_stay_inside_the_scope(demo_db: Path) -> None:
    wh = warehouse.Warehouse.open(demo_db)
    sponsor = _sql(demo_db, "SELECT min(sponsor_id) AS s FROM main.studies")["s"][0]
    own = set(_sql(demo_db, "SELECT study_id FROM main.studies WHERE sponsor_id = ?", [sponsor])["study_id"])
    every = _sql(demo_db, "SELECT study_id FROM main.studies")["study_id"].tolist()
    scope = AccessScope(sponsor_ids=frozenset({sponsor}))
    results = compute_enrollment_results(wh, scope, every, n_sims=500)
    for frame in results.values():
        assert set(frame["study_id"]) <= own


def test_enrolling_studies_get_a_fan_p_on_time_and_timeline(demo_results) -> None:
    _, _, results = demo_results
    summary = results["enrollment_study_summary"]
    enrolling = summary[summary["randomized"] < summary["target"]]
    assert len(enrolling) >= 3
    assert enrolling["p_on_time"].between(0, 1).all()
    assert (enrolling["lpi_p50"] >= enrolling["as_of_date"]).all()
    fan = results["enrollment_forecast"]
    pg = fan[fan["series"] == "poisson_gamma"]
    assert (pg["q05"] <= pg["q50"]).all() and (pg["q50"] <= pg["q95"]).all()
    assert set(fan["series"]) >= {"actual", "plan", "poisson_gamma", "linear", "prophet"}
    timeline = results["enrollment_timeline"].set_index(["study_id", "milestone"])
    for study_id in enrolling["study_id"]:
        lpi, lplv = timeline.loc[(study_id, "Last patient in")], timeline.loc[(study_id, "Last patient last visit")]
        if pd.notna(lpi["p50"]) and pd.notna(lplv["p50"]):
            assert lplv["p50"] > lpi["p50"]
    sites = results["enrollment_site_forecast"]
    assert sites["p_enrolls_nobody"].between(0, 1).all()
    assert (sites.loc[sites["randomized"] > 0, "p_enrolls_nobody"] == 0).all()


def test_demographics_add_up_and_forecast_the_end(demo_results) -> None:
    wh, _, results = demo_results
    demo = results["enrollment_demographics"]
    summary = results["enrollment_study_summary"].set_index("study_id")
    study_level = demo[(demo["level"] == "study") & (demo["dimension"] == "sex")].groupby("study_id")
    for study_id, rows in study_level:
        assert rows["randomized"].sum() == summary.loc[study_id, "randomized"]
        if summary.loc[study_id, "randomized"] < summary.loc[study_id, "target"] and pd.notna(summary.loc[study_id, "lpi_p50"]):
            assert rows["forecast_count_p50"].sum() == pytest.approx(summary.loc[study_id, "target"], rel=0.02)
    planned = demo[demo["target_share"].notna() & (demo["level"] == "study")]
    assert len(planned) and planned["p_meets_target"].between(0, 1).all()
    assert demo.loc[demo["level"] == "country", "population_share"].notna().any()


def _legend_colors(fig: go.Figure) -> tuple[set[str], set[str]]:
    """(colours drawn by visible traces, colours of traces that have a legend entry)."""
    drawn, legend = set(), set()
    for trace in fig.data:
        colors = set()
        for attr in ("line", "marker"):
            obj = getattr(trace, attr, None)
            color = getattr(obj, "color", None) if obj is not None else None
            if isinstance(color, str) and color != figures.INVISIBLE:
                colors.add(color)
        fill = getattr(trace, "fillcolor", None)
        if fill:
            colors.add(fill)
        drawn |= colors
        if trace.showlegend is not False and trace.name:
            legend |= colors
    return drawn, legend


def test_figures_have_a_legend_entry_for_every_colour_and_titled_axes(demo_results, demo_db: Path) -> None:
    wh, _, results = demo_results
    summary = results["enrollment_study_summary"]
    study_id = summary.loc[summary["randomized"] < summary["target"], "study_id"].iloc[0]
    fan = results["enrollment_forecast"]
    subjects = read_subjects(wh, AccessScope.full_access(), PortfolioFilter(study_ids=(study_id,)))
    built = [
        figures.fan_chart(fan[fan["study_id"] == study_id], summary.set_index("study_id").loc[study_id]),
        figures.site_contribution_chart(results["enrollment_site_forecast"].query("study_id == @study_id")),
        figures.funnel_chart(screening_funnel(subjects), screen_failure_reasons(subjects), study_id),
        figures.timeline_chart(results["enrollment_timeline"].query("study_id == @study_id")),
        figures.demographics_chart(results["enrollment_demographics"], study_id, "race"),
    ]
    for fig in built:
        drawn, legend = _legend_colors(fig)
        assert drawn and drawn <= legend, fig.layout.title.text
        assert fig.layout.xaxis.title.text or fig.layout.xaxis2.title.text
    names = {t.name for t in built[0].data if t.showlegend is not False}
    assert {"Actual", "Plan", "Poisson-Gamma median", "Poisson-Gamma 80% interval", "Poisson-Gamma 90% interval",
            "Prophet median", "Linear extrapolation median"} <= names
    assert "(cumulative count)" in built[0].layout.yaxis.title.text


def test_funnel_counts_are_nested(demo_results) -> None:
    wh, ids, _ = demo_results
    subjects = read_subjects(wh, AccessScope.full_access(), PortfolioFilter(study_ids=tuple(ids)))
    funnel = screening_funnel(subjects).fillna({"study_site_id": "(whole study)"}).pivot_table(
        index=["study_id", "study_site_id"], columns="stage", values="count", observed=True)
    assert len(funnel) == subjects["study_site_id"].nunique() + subjects["study_id"].nunique()
    assert (funnel["Screened"] >= funnel["Consented"]).all() and (funnel["Consented"] >= funnel["Randomized"]).all()
    reasons = screen_failure_reasons(subjects)
    study_failures = reasons[reasons["study_site_id"].isna()].groupby("study_id")["count"].sum()
    assert study_failures.sum() == (subjects["status"] == "Screen failure").sum()


def test_the_pilots_real_history_forecasts_from_each_cut(shared_data: Path, tmp_path: Path) -> None:
    from analytics.evaluation.enrollment import backtest_pilot

    result = backtest_pilot(shared_data / "sdtm" / "cdiscpilot01", workdir=tmp_path)
    assert result["randomized"] == 254 and result["sites"] == 17
    assert [row["cut"] for row in result["cuts"]] == ["10%", "20%", "30%", "50%", "70%"]
    for row in result["cuts"]:
        assert row["actual_days_to_go"] > 0
        pg = row["poisson_gamma"]
        assert pg["interval_80_days"][0] <= pg["median_days"] <= pg["interval_80_days"][1]
        assert {"prophet", "linear"} <= set(row)
    # Later cuts see more of the history: the last cut's error is smaller than the first's.
    first, last = result["cuts"][0]["poisson_gamma"], result["cuts"][-1]["poisson_gamma"]
    assert abs(last["error_days"]) < abs(first["error_days"]) or abs(last["error_days"]) < 30


def test_the_pilot_imported_into_the_warehouse_gets_results(pilot_db: Path) -> None:
    wh = warehouse.Warehouse.open(pilot_db)
    results = compute_enrollment_results(wh, AccessScope.full_access(), ["CDISCPILOT01"], n_sims=1_000)
    summary = results["enrollment_study_summary"].iloc[0]
    assert summary["randomized"] == 254 and summary["target"] == 300
    demographics = results["enrollment_demographics"]
    race = demographics[(demographics["level"] == "study") & (demographics["dimension"] == "race")]
    assert race.set_index("category").loc["WHITE", "randomized"] > 200
    warehouse.close_all()


def test_back_test_runs_on_a_tiny_configuration() -> None:
    from analytics.evaluation.enrollment import METHODS, evaluate_enrollment, summary_lines

    result = evaluate_enrollment(seeds=(31,), max_studies=3, include_pilot=False, log=lambda _: None, bootstrap=20)
    assert set(result["summary"]) <= set(METHODS) and "poisson_gamma" in result["summary"]
    pg = result["summary"]["poisson_gamma"]
    assert set(pg) == {"10%", "20%", "30%", "50%", "70%"}
    for entry in pg.values():
        assert 0 <= entry["coverage_80"]["value"] <= 1
        low, high = entry["median_abs_error_days"]["ci95"]
        assert low <= entry["median_abs_error_days"]["value"] <= high
    assert set(result["targets"]) == {"coverage_within_5_points_at_every_cut",
                                      "mae_at_30pct_at_least_30pct_below_best_baseline", "brier_better_than_plan"}
    assert any("poisson_gamma" in line for line in summary_lines(result))
    assert np.isfinite(result["seconds"])


def test_back_test_seeds_are_fresh_and_apart_from_calibration() -> None:
    from analytics.evaluation.enrollment import CALIBRATION_SEEDS, TEST_SEEDS

    assert len(TEST_SEEDS) >= 6 and not set(CALIBRATION_SEEDS) & set(TEST_SEEDS)
    # Held out in earlier rounds and measured (8301-8303 also used to compare variants): retired.
    assert not {8301, 8302, 8303, 8401, 8402, 8403} & set(TEST_SEEDS)
    assert not set(range(8501, 8507)) & set(TEST_SEEDS)  # measured once; retired when the walk changed


def test_prophet_gives_portfolio_and_country_weekly_baselines(demo_results) -> None:
    from analytics.enrollment.prophet_baseline import portfolio_baseline

    wh, ids, _ = demo_results
    subjects = read_subjects(wh, AccessScope.full_access(), PortfolioFilter(study_ids=tuple(ids)))
    cut = pd.Timestamp(wh.as_of())
    portfolio = portfolio_baseline(subjects, cut, horizon_weeks=12)
    forecast = portfolio[portfolio["kind"] == "forecast"]
    assert len(forecast) == 12 and (forecast["ds"] > cut).all()
    assert (forecast["yhat_lower"] <= forecast["yhat"]).all() and (forecast["yhat"] <= forecast["yhat_upper"]).all()
    history = portfolio[portfolio["kind"] == "history"]
    assert history["y"].sum() == (subjects["randomization_date"] <= cut).sum()
    by_country = portfolio_baseline(subjects, cut, horizon_weeks=4, by="country_code")
    assert by_country["group"].nunique() > 5


def test_a_date_beyond_the_simulated_horizon_reads_after_the_horizon(demo_results) -> None:
    """Where a forecast quantile lies past the last simulated date, planners read "after <that date>", not a dash."""
    from analytics.enrollment.tables import portfolio_table, timeline_table
    from analytics.portfolio.overview import milestone_table

    _, _, results = demo_results
    summary = results["enrollment_study_summary"]
    forecast = summary[summary["randomized"] < summary["target"]]
    assert forecast["horizon_date"].notna().all()
    assert (forecast["lpi_p50"].isna() | (forecast["lpi_p50"] <= forecast["horizon_date"])).all()
    row = forecast.iloc[[0]].copy().assign(protocol_id="P-1", sponsor="S", lpi_p80=pd.NaT,
                                           horizon_date=pd.Timestamp("2031-03-04"))
    shown = portfolio_table(row).iloc[0]
    assert shown["80% sure by"] == "after 04 Mar 2031"
    assert shown["Forecast (median)"] != "—"
    timeline = results["enrollment_timeline"]
    lpi = timeline[(timeline["study_id"] == row["study_id"].iloc[0])].copy()
    lpi[["p50", "p90"]] = pd.NaT
    shown = timeline_table(lpi)
    assert shown["Forecast (median)"].str.startswith("after ").all()
    assert shown["10-90%"].str.contains("after ").all()
    milestones = pd.DataFrame({"protocol_id": ["P-1"], "milestone": ["Database lock"], "planned_date": [pd.Timestamp("2027-01-01")],
                               "days_late": [-400], "forecast_date": [pd.NaT], "forecast_horizon": [pd.Timestamp("2032-05-06")],
                               "p_by_planned": [0.1], "study_id": ["ST001"]})
    assert milestone_table(milestones)["Forecast (median)"].iloc[0] == "after 06 May 2032"


def test_counts_in_the_enrollment_tables_show_thousands_separators(demo_results) -> None:
    """A target of 1078 reads "1,078": every whole-number column of the study and site tables is formatted so."""
    from analytics.enrollment.tables import PORTFOLIO_CONFIG, SITE_CONFIG, portfolio_table, site_table

    _, _, results = demo_results
    summary = results["enrollment_study_summary"].assign(protocol_id="P-1", sponsor="S")
    sites = results["enrollment_site_forecast"].assign(site_number="1001", site_name="Clinic")
    for table, config in ((portfolio_table(summary), PORTFOLIO_CONFIG), (site_table(sites), SITE_CONFIG)):
        counts = [c for c in table.columns if pd.api.types.is_integer_dtype(table[c])]
        assert counts
        for column in counts:
            assert config[column]["type_config"]["format"] == "%,d", column
