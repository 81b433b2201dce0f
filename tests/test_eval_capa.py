"""A small run of the CAPA evaluation: every part is measured against the generator's ground truth."""

from __future__ import annotations

from analytics.capa.rules import RULES
from analytics.evaluation.capa import CALIBRATION_SEEDS, TEST_SEEDS, evaluate_capa, summary_lines


def test_capa_evaluation_measures_shifts_themes_and_recurrences_on_a_small_seed(tmp_path) -> None:
    result = evaluate_capa(seeds=(5,), preset="tiny", workdir=tmp_path, log=lambda _: None)
    deviations = result["charts"]["deviations"]
    assert deviations["shifts"] >= 1 and deviations["stable_points"] > 30
    assert 0 <= deviations["false_signals"]["per_100"] <= deviations["false_flagged_points"]["per_100"]
    breaks = deviations["false_breaks_by_rule"]
    assert deviations["signal_rules"] == ["we1", "we2", "cusum"] and set(breaks) == {r.id for r in RULES}
    # a flagged stable month breaks at least one signal rule
    assert deviations["false_flagged_points"]["per_100"] <= sum(breaks[r]["per_100"] for r in ("we1", "we2", "cusum"))
    assert result["themes"]["studies"] >= 1 and 0.4 <= result["themes"]["adjusted_rand"] <= 1.0
    assert result["themes"]["low"] <= result["themes"]["adjusted_rand"] <= result["themes"]["high"]
    recurrence = result["recurrence"]
    assert recurrence["true_recurrences"] > 0 and recurrence["precision"]["share"] >= 0.5
    assert any(line.startswith("themes: adjusted Rand") for line in summary_lines(result))
    sizes = [r["shift_sigma"] for r in result["chart_rows"] if r["chart"] == "deviations" and r["magnitude"]]
    assert all(s is None or s > 0 for s in sizes)  # an upward shift moves the chart up


def test_settings_are_chosen_on_seeds_apart_from_the_held_out_ones() -> None:
    assert len(CALIBRATION_SEEDS) >= 2 and not set(CALIBRATION_SEEDS) & set(TEST_SEEDS)
