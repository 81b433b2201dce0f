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
