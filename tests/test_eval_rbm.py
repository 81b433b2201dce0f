"""A tiny run of the RBM evaluation: every method in one run, thresholds from calibration seeds, intervals."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from analytics.evaluation.rbm import EvalConfig, evaluate_rbm, summary_lines
from analytics.evaluation.rbm.metrics import thresholds, wilson
from analytics.evaluation.rbm.methods import METHODS


@pytest.fixture(scope="module")
def tiny_result(tmp_path_factory):
    config = EvalConfig(test_seeds=(31,), calibration_seeds=(32,), preset="tiny",
                        scenarios=("generator", "site_sd_0.30"), target_per_level=15, usability_seeds=(),
                        pilot_folder=None)
    return evaluate_rbm(config, workdir=tmp_path_factory.mktemp("eval"), log=lambda _: None)


def test_every_method_is_scored_on_every_scenario_with_intervals(tiny_result):
    assert set(tiny_result["methods"]) == set(METHODS)
    for name in ("generator", "site_sd_0.30"):
        scenario = tiny_result["scenarios"][name]
        assert scenario["test_sites"]["1"] > 0 and scenario["calibration_clean_sites"] > 0
        for method in METHODS:
            cell = scenario["methods"][method]["at_1pct_fpr"]["1"]
            assert cell["n"] == scenario["test_sites"]["1"]
            assert cell["low"] <= cell["rate"] <= cell["high"]


def test_the_engine_finds_full_removal_far_above_its_false_positive_rate(tiny_result):
    engine = tiny_result["scenarios"]["site_sd_0.30"]["methods"]["calibrated"]
    flags = engine["default_flags"]["amber_or_red"]
    assert flags["1"]["rate"] > 0.5 > 5 * flags["false_positive_rate"]["rate"]
    burden = tiny_result["scenarios"]["site_sd_0.30"]["null_burden"]["calibrated"]
    assert burden["any_red"]["rate"] <= 0.03 and burden["any_amber"]["rate"] <= 0.15


def test_summary_and_targets_are_reported(tiny_result):
    lines = summary_lines(tiny_result)
    assert any(line.startswith("  scenario generator") for line in lines)
    assert "null_burden_every_scenario" in tiny_result["targets"]["results"]
    assert tiny_result["seeds"]["test"] == [31] and tiny_result["seeds"]["calibration"] == [32]


def test_wilson_interval_matches_the_textbook_values():
    assert wilson(0, 10)["high"] == pytest.approx(0.2775, abs=1e-4)
    interval = wilson(50, 100)
    assert interval["low"] == pytest.approx(0.4038, abs=1e-4) and interval["high"] == pytest.approx(0.5962, abs=1e-4)


def test_thresholds_come_from_the_clean_sites_only():
    table = pd.DataFrame({"level": [np.nan] * 100 + [1.0] * 10, "fpr_sample": True,
                          "score_calibrated": np.r_[np.arange(100.0), np.full(10, 1000.0)]})
    cut = thresholds(table, ("calibrated",))["calibrated"]
    assert cut["0.01"] == 99.0 and cut["0.05"] == 95.0


def test_methods_are_also_compared_at_equal_false_positive_rate_with_paired_intervals(tiny_result):
    scenario = tiny_result["scenarios"]["site_sd_0.30"]
    equal = scenario["equal_fpr_comparison"]
    entry = equal["1"]
    assert entry["sites"] == scenario["test_sites"]["1"]
    assert set(entry["detection"]) == set(METHODS)
    for method, diff in entry["engine_minus"].items():
        assert diff["low"] <= diff["difference"] <= diff["high"]
        assert diff["difference"] == pytest.approx(entry["detection"]["calibrated"] - entry["detection"][method], abs=1e-3)
    target = tiny_result["targets"]["results"]["engine_matches_baselines_misspecified"]["site_sd_0.30"]["levels"]["1"]
    assert target["at_equal_test_fpr"]["best_baseline"] in METHODS


def test_equal_fpr_cut_lets_through_the_same_share_of_clean_sites_for_every_method():
    from analytics.evaluation.rbm.metrics import equal_fpr_comparison
    rng = np.random.default_rng(3)
    clean = pd.DataFrame({"level": np.nan, "fpr_sample": True, "score_a": rng.normal(size=2000),
                          "score_b": rng.normal(size=2000) * 10})
    injected = pd.DataFrame({"level": 1.0, "fpr_sample": True, "score_a": rng.normal(3, 1, 300),
                             "score_b": rng.normal(0, 10, 300)})
    out = equal_fpr_comparison(pd.concat([clean, injected], ignore_index=True), ("a", "b"), (1.0,), engine="a")
    # a separates (about 63% above the clean 99th percentile), b is noise (about 1%): whatever each scale.
    assert 0.5 < out["1"]["detection"]["a"] < 0.75 and out["1"]["detection"]["b"] < 0.04
    assert out["1"]["engine_minus"]["b"]["low"] > 0.4


def test_clean_cells_report_their_mean_z_by_site_size(tiny_result):
    tails = tiny_result["methods"]["calibrated"]["kri_tails_clean_cells"]
    by_size = tails["ae_rate"]["mean_z_by_size"]
    assert set(by_size) == {"1-4", "5-14", "15+"}
    assert sum(v["cells"] for v in by_size.values()) <= tails["ae_rate"]["cells"]
    assert any(v["cells"] > 1 and abs(v["mean"]) < 1.5 and 0.3 < v["sd"] < 3 for v in by_size.values())


def test_site_score_p_value_is_judged_on_the_planted_anomalies_too(tiny_result):
    # The tiny portfolio plants about a dozen anomalies; the site score should rank them above chance.
    found = tiny_result["methods"]["calibrated"]["site_score_p_anomalous_sites"]
    share = found["at_or_below_0.05"]
    assert share["n"] >= 5 and share["low"] <= share["rate"] <= share["high"]
    assert found["auc"] > 0.5


def test_the_atypical_part_runs_alone_and_gives_the_full_run_s_figures(tiny_result, tmp_path):
    from analytics.evaluation.rbm import evaluate_atypical_only
    from analytics.evaluation.rbm.atypical_eval import atypical_evaluation

    alone = atypical_evaluation((31,), "tiny", pilot_folder=None, workdir=tmp_path)
    full = tiny_result["atypical_data"]
    assert alone["seeds"]["test"] == [31] and "scenarios" not in alone
    assert alone["atypical_data"]["clean_sites"] == full["clean_sites"]
    assert alone["atypical_data"]["specificity"] == full["specificity"]
    for style, entry in full["styles"].items():
        assert alone["atypical_data"]["styles"][style]["auc"] == entry["auc"]
        interval = entry["auc_interval"]
        if interval["auc"] is not None:
            assert interval["low"] <= interval["auc"] <= interval["high"]
    # The command's wrapper adds the target and a summary that skips the parts not run.
    wrapped = evaluate_atypical_only((31,), "tiny", workdir=tmp_path, log=lambda _: None, pilot=False)
    assert "atypical_subtle" in wrapped["targets"]["results"]
    assert any("atypical data" in line for line in summary_lines(wrapped))


def test_the_auc_interval_covers_a_known_separation():
    from analytics.evaluation.rbm.metrics import auc_interval
    rng = np.random.default_rng(5)
    # Normal scores one SD apart: AUC = Phi(1 / sqrt(2)) = 0.760.
    out = auc_interval(pd.Series(rng.normal(size=2000)), pd.Series(rng.normal(1.0, 1.0, 200)), draws=300)
    assert out["low"] < 0.760 < out["high"] and out["high"] - out["low"] < 0.12


def test_only_atypical_on_the_command_line_runs_that_part_with_its_seeds(monkeypatch):
    import argparse

    import analytics.evaluation.rbm as rbm
    from analytics.commands import evaluate
    from analytics.evaluation.rbm.atypical_eval import ATYPICAL_CALIBRATION_SEEDS

    calls = []
    monkeypatch.setattr(rbm, "evaluate_atypical_only", lambda seeds, preset, quick, calibration: calls.append(
        (seeds, calibration)) or {"preset": preset, "seeds": {"test": [], "calibration": []}})
    parser = argparse.ArgumentParser()
    evaluate.register(parser.add_subparsers())
    for argv in (["eval", "rbm", "--only", "atypical"], ["eval", "rbm", "--only", "atypical", "--calibrate"],
                 ["eval", "rbm", "--only", "atypical", "--seeds", "5", "6"]):
        evaluate._rbm(parser.parse_args(argv))
    assert calls == [(None, False), (ATYPICAL_CALIBRATION_SEEDS, True), ((5, 6), False)]


def test_the_yardstick_is_compared_with_every_method_at_equal_false_positive_rate(tiny_result):
    from analytics.evaluation.rbm.methods import YARDSTICK

    entry = tiny_result["scenarios"]["site_sd_0.30"]["yardstick_comparison"]["1"]
    assert set(entry["detection"]) == {YARDSTICK, *METHODS}
    assert set(entry["engine_minus"]) == set(METHODS)
    # The engine's own figures are those of the main comparison (the same cut on the same sites).
    main = tiny_result["scenarios"]["site_sd_0.30"]["equal_fpr_comparison"]["1"]
    assert entry["detection"]["calibrated"] == main["detection"]["calibrated"]
    assert YARDSTICK in tiny_result["yardstick"]
    assert any("yardstick" in line for line in summary_lines(tiny_result))


def test_only_ae_on_the_command_line_skips_the_usability_grid_the_atypical_data_and_the_pilot(monkeypatch):
    import argparse

    import analytics.evaluation.rbm as rbm
    from analytics.commands import evaluate

    configs = []
    monkeypatch.setattr(rbm, "evaluate_rbm", lambda config: configs.append(config) or {
        "preset": config.preset, "seeds": {"test": [], "calibration": []}})
    parser = argparse.ArgumentParser()
    evaluate.register(parser.add_subparsers())
    evaluate._rbm(parser.parse_args(["eval", "rbm", "--only", "ae", "--seeds", "5", "6", "--scenarios", "generator"]))
    (config,) = configs
    assert config.test_seeds == (5, 6) and config.scenarios == ("generator",)
    assert config.usability_seeds == () and not config.atypical and config.pilot_folder is None
