"""A small, fast run of the RBM evaluation: the engine beats the gsm-style funnel on fresh data."""

from __future__ import annotations

from analytics.evaluation.rbm import evaluate_rbm, summary_lines


def test_engine_beats_funnel_baseline_on_a_small_seed(tmp_path):
    result = evaluate_rbm(seeds=(31,), preset="eval", workdir=tmp_path, log=lambda _: None)
    engine, funnel = result["methods"]["calibrated"], result["methods"]["funnel"]
    assert engine["ae_under_reporting_auc"] > funnel["ae_under_reporting_auc"]
    assert engine["null_alert_burden"]["any_red"] < funnel["null_alert_burden"]["any_red"]
    assert engine["null_alert_burden"]["any_amber"] <= 0.15
    full_removal = engine["ae_under_reporting_detection"]["fpr_0.05"]["1.0"]["detected"]
    assert full_removal is not None and full_removal >= 0.7
    assert result["atypical_data"]["auc"] >= 0.9
    assert any("AE under-reporting" in line for line in summary_lines(result))
