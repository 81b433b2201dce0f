"""Feasibility: benchmarks from historical trials, competition, complexity, the model, the scenario calculator."""

from __future__ import annotations

import datetime as dt
import hashlib

import numpy as np
import pandas as pd
import streamlit as st

from analytics.feasibility import figures, service, tables
from analytics.feasibility.benchmarks import MEASURES, MEASURES_BY_KEY, trial_list
from analytics.feasibility.competition import status_date_note
from analytics.feasibility.complexity import complexity_association
from analytics.feasibility.model import TARGETS
from analytics.feasibility.resources import ASSUMPTIONS, resource_estimate
from analytics.feasibility.saved import comparison_table, save_scenario, saved_scenarios, withdraw_scenario
from analytics.feasibility.scenario import ScenarioInputs
from analytics.feasibility.summary import facts_csv, summary_docx, summary_facts
from analytics.frame import widgets
from analytics.frame.access import download_button
from analytics.frame.session import current_context

ctx = current_context()
wh = ctx.warehouse
st.title("Feasibility")
choices = ctx.choices
if not choices.get("source"):
    st.info("The warehouse holds no historical trials. Import ClinicalTrials.gov exports on the Data page "
            "(or `python -m analytics import ctgov FILE`), or build the demo portfolio, which generates them.")
    st.stop()

selection = service.selection_from(ctx.params)
source = selection.source
as_of_text, undated = service.source_as_of(wh, source)
st.caption(f"Comparable trials from {service.SOURCE_LABELS.get(source, source)}; {as_of_text}. "
           "Durations of trials still running are censored at their export's date, or at the record's last update "
           "when that is earlier, never taken at their anticipated dates."
           + (f" {undated:,} records were loaded before exports were dated and are read as of the warehouse's date "
              f"({ctx.as_of:%d %b %Y}); importing their export again dates them." if undated else ""))

with st.expander("Comparable trials: filters", expanded=True):
    c1, c2, c3, c4 = st.columns(4)
    widgets.selectbox(ctx, "source", c1)
    widgets.selectbox(ctx, "study_type", c2, placeholder="All study types")
    widgets.multiselect(ctx, "phase", c3, placeholder="All phases")
    widgets.multiselect(ctx, "group", c4, placeholder="All condition groups")
    c1, c2, c3, c4 = st.columns(4)
    widgets.text_input(ctx, "condition", c1, placeholder="e.g. Alzheimer")
    widgets.multiselect(ctx, "countries", c2, placeholder="All countries")
    widgets.multiselect(ctx, "sponsor_class", c3, placeholder="All sponsor classes")
    widgets.multiselect(ctx, "status", c4, placeholder="All statuses")
    c1, c2, _, _ = st.columns(4)
    widgets.selectbox(ctx, "from_year", c1, placeholder="Earliest")
    widgets.selectbox(ctx, "to_year", c2, placeholder="Latest")
    st.caption(f"Link to this view: `{ctx.share_link()}`")

trials = service.comparable(wh, selection)
bench = service.benchmarks(wh, selection)
m1, m2, m3, m4 = st.columns(4)
m1.metric("Comparable trials", f"{len(trials):,}")
m2.metric("Completed", f"{int(trials['completed'].sum()):,}")
m3.metric("Running (censored)", f"{int((trials['censored'] & ~trials['status'].isin(['TERMINATED'])).sum()):,}")
m4.metric("Recruiting now", f"{int(trials['status'].isin(['RECRUITING', 'ENROLLING_BY_INVITATION']).sum()):,}")
if trials.empty:
    st.info("No historical trial matches these filters; widen them (fewer phases, groups or countries, more years).")
    st.stop()

# --- benchmarks ------------------------------------------------------------------------------------
st.subheader("Benchmarks")
st.dataframe(tables.benchmark_display(bench), hide_index=True, width="stretch")
duration_row = bench.set_index("measure").loc["duration"]
left, right = st.columns(2)
left.plotly_chart(figures.km_figure(service.duration_curve(wh, selection), float(duration_row["completed_only_p50"])),
                  width="stretch", key="km")
shown_measure = right.selectbox("Distribution of", [m.key for m in MEASURES if m.key != "duration"],
                                format_func=lambda k: MEASURES_BY_KEY[k].label, key="feas_distribution")
right.plotly_chart(figures.distribution_figure(trials, MEASURES_BY_KEY[shown_measure],
                                               bench.set_index("measure").loc[shown_measure]),
                   width="stretch", key="distribution")

behind_key = st.selectbox("Trials behind the figure", [m.key for m in MEASURES],
                          format_func=lambda k: MEASURES_BY_KEY[k].label, key="feas_behind")
behind = trial_list(trials, MEASURES_BY_KEY[behind_key])
st.caption(f"{len(behind):,} trials behind {MEASURES_BY_KEY[behind_key].label.lower()} "
           f"({MEASURES_BY_KEY[behind_key].basis}).")
shown_trials = tables.trials_display(behind)
st.dataframe(shown_trials, hide_index=True, width="stretch", height=260,
             column_config={"Link": st.column_config.LinkColumn("Link", display_text="ClinicalTrials.gov")}
             if "Link" in shown_trials else None)
all_trials = tables.trials_display(trial_list(trials))
download_button(ctx, "Download the comparable trials (CSV)", lambda: all_trials.to_csv(index=False).encode(),
                "comparable_trials.csv", "text/csv", key="download_trials")

# --- competition -------------------------------------------------------------------------------------
st.subheader("Competition for patients")
if not (selection.groups or selection.condition):
    st.info("Choose a condition group or a condition to see the trials recruiting the same patients.")
else:
    found = service.competition(wh, ctx.scope, selection)
    st.caption(f"{len(found['trials']):,} trials of the same condition group{'s' if len(selection.groups) > 1 else ''}"
               f"{' and condition' if selection.condition else ''} are recruiting or about to"
               f"{' in the chosen countries' if selection.countries else ''}, whatever their phase or sponsor. "
               + status_date_note(found["trials"], pd.Timestamp(wh.as_of())))
    left, right = st.columns(2)
    left.plotly_chart(figures.competition_figure(found["countries"]), width="stretch", key="competition")
    with right:
        st.markdown("**Per candidate site** (the portfolio's institutions you may see"
                    f"{' in the chosen countries' if selection.countries else ''})")
        if found["sites"].empty:
            st.info("No candidate institution in these countries.")
        else:
            st.dataframe(tables.sites_display(found["sites"]), hide_index=True, width="stretch", height=300)
            st.caption("Matched by facility name in the registry's locations; a site listed under another spelling "
                       "is missed, so counts are a floor.")
    with st.expander("Per country"):
        st.dataframe(tables.countries_display(found["countries"]), hide_index=True, width="stretch")

# --- complexity ---------------------------------------------------------------------------------------
st.subheader("Protocol complexity")
features_trials = trials.assign(log_duration=np.log(trials["duration_months"].where(trials["completed"])),
                                log_rate=np.log(trials["rate"]))
outcome = st.segmented_control("Compared with", ["duration", "rate"], default="duration", key="feas_complexity",
                               format_func=lambda k: {"duration": "Duration (completed trials)", "rate": "Rate"}[k])
outcome = outcome or "duration"
column, unit = ("duration_months", "months") if outcome == "duration" else ("rate", "per site-month")
association = complexity_association(features_trials.assign(outcome=features_trials[column]
                                                            .where(features_trials["completed"] if outcome == "duration"
                                                                   else features_trials[column].notna())), "outcome")
st.plotly_chart(figures.complexity_figure(association, "Duration" if outcome == "duration" else "Rate", unit),
                width="stretch", key="complexity")
with st.expander("Complexity features of the comparable trials"):
    st.dataframe(tables.complexity_display(association, unit), hide_index=True, width="stretch")
    st.caption("Criteria are counted in the registry's eligibility text (JSON records carry it, CSV exports do not); "
               "arms only from JSON records. Associations are not effects: bigger trials have longer criteria lists.")

# --- the model -------------------------------------------------------------------------------------------
st.subheader("Duration and rate model")
fresh = service.model_freshness(wh)
if not fresh.ok:
    st.warning(fresh.message(wh.path), icon=":material/update:")
metrics = service.model_metrics(wh, source)
left, right = st.columns([3, 2])
left.plotly_chart(figures.model_figure(metrics), width="stretch", key="model")
with right:
    if metrics.empty:
        st.info("No stored model for these trials: too few have a known outcome (completed, with sites).")
    else:
        choices = service.model_choices(wh, source)
        st.dataframe(tables.metrics_display(metrics, dict(zip(choices["target"], choices["method"]))),
                     hide_index=True, width="stretch")
        for choice in choices.itertuples(index=False):
            st.caption(f"**{TARGETS[choice.target][1]}**: you get the {choice.reason[0].lower()}{choice.reason[1:]}")
        st.caption("Five-fold cross-validation on every trial of this source with a known outcome. The model's 80% "
                   "intervals are calibrated by split conformal prediction; the baseline is the phase's median "
                   "and 10th-90th percentiles. `python -m analytics eval feasibility` splits by start year instead.")

# --- the scenario calculator ---------------------------------------------------------------------------------
st.subheader("Scenario calculator")
key = hashlib.sha256(repr(selection).encode()).hexdigest()[:8]  # new filters pre-fill the inputs again
rates = bench.set_index("measure").loc["rate"]
bench_sites = bench.set_index("measure").loc["sites"]
bench_countries = bench.set_index("measure").loc["countries"]
bench_enrollment = bench.set_index("measure").loc["enrollment"]
sf_default, sf_studies = service.portfolio_screen_failure(wh, ctx.scope, selection.groups)


def _num(value: object, fallback: float) -> float:
    return float(value) if value is not None and np.isfinite(float(value)) and float(value) > 0 else fallback


with st.expander("Protocol features for the model", expanded=False):
    p1, p2, p3, p4 = st.columns(4)
    phase_options = list(choices.get("phase", {})) or ["PHASE3"]
    phase = p1.selectbox("Phase", phase_options, index=phase_options.index(selection.phases[0])
                         if len(selection.phases) == 1 and selection.phases[0] in phase_options else 0,
                         format_func=lambda v: choices.get("phase", {}).get(v, v), key=f"pf_phase_{key}")
    group_options = list(choices.get("group", {})) or ["Other"]
    group = p2.selectbox("Condition group", group_options, index=group_options.index(selection.groups[0])
                         if len(selection.groups) == 1 and selection.groups[0] in group_options else 0,
                         key=f"pf_group_{key}")
    class_options = list(choices.get("sponsor_class", {})) or ["INDUSTRY"]
    sponsor_class = p3.selectbox("Sponsor class", class_options,
                                 index=class_options.index("INDUSTRY") if "INDUSTRY" in class_options else 0,
                                 key=f"pf_class_{key}")
    healthy = p4.toggle("Healthy volunteers", value=False, key=f"pf_hv_{key}")
    p1, p2, p3, p4 = st.columns(4)
    medians = trials[["n_inclusion", "n_exclusion", "n_arms", "n_secondary_outcomes"]].median()
    n_inclusion = p1.number_input("Inclusion criteria", 0, 100, int(_num(medians["n_inclusion"], 6)), key=f"pf_inc_{key}")
    n_exclusion = p2.number_input("Exclusion criteria", 0, 200, int(_num(medians["n_exclusion"], 10)), key=f"pf_exc_{key}")
    n_arms = p3.number_input("Arms", 1, 20, int(_num(medians["n_arms"], 2)), key=f"pf_arms_{key}")
    upper_65 = p4.toggle("Upper age limit 65 or less", value=False, key=f"pf_age_{key}")

s1, s2, s3, s4 = st.columns(4)
target = s1.number_input("Target randomized", 1, 100_000, int(_num(bench_enrollment["p50"], 200)), key=f"sc_target_{key}")
n_sites = s2.number_input("Sites", 1, 2_000, int(_num(bench_sites["p50"], 20)), key=f"sc_sites_{key}")
n_countries = s3.number_input("Countries", 1, 100, int(_num(bench_countries["p50"], 3)), key=f"sc_countries_{key}")
start = s4.date_input("First site activation", ctx.as_of + dt.timedelta(days=180), key="sc_start")

protocol = {"phase": phase, "group": group, "sponsor_class": sponsor_class, "enrollment": target, "n_sites": n_sites,
            "n_countries": n_countries, "start_year": start.year, "n_inclusion": n_inclusion, "n_exclusion": n_exclusion,
            "n_arms": n_arms, "n_interventions": n_arms, "healthy_volunteers": float(healthy),
            "upper_age_65": float(upper_65), "single_sex": 0.0, "n_primary_outcomes": 1.0,
            "age_span_years": 47.0 if upper_65 else 82.0}
prediction = service.predict(wh, source if not metrics.empty else None, protocol)
model_rate = prediction.set_index("target").loc["rate"] if "rate" in set(prediction.get("target", [])) else None

basis_options = ["benchmark"] + (["model"] if model_rate is not None else [])
s1, s2, s3, s4 = st.columns(4)
basis = s1.segmented_control("Rate from", basis_options, default="benchmark", key=f"sc_basis_{key}",
                             format_func=lambda b: {"benchmark": "Comparable trials",
                                                    "model": "Model" if model_rate is None or model_rate["method"] == "model"
                                                    else "Phase median (prediction)"}[b]) or "benchmark"
source_rate = (model_rate["mid"], model_rate["lo"], model_rate["hi"]) if basis == "model" else (
    _num(rates["p50"], 0.5), _num(rates["p10"], 0.2), _num(rates["p90"], 1.2))
screen_failure = s2.slider("Screen-failure rate", 0.0, 0.9, float(round(sf_default, 2)), 0.01, key="sc_sf",
                           help=f"Pre-filled from {sf_studies} visible studies of the condition group" if sf_studies
                           else "No visible study of the condition group screened enough subjects: a default of 25%.")
keep = max(1 - screen_failure, 0.05)
rate_key = f"{key}_{basis}"
screening = s3.number_input("Screened per site-month (median)", 0.001, 1_000.0, round(float(source_rate[0]) / keep, 3),
                            format="%.3f", key=f"sc_rate_{rate_key}")
low_high = s4.slider("Its 10th-90th percentile", 0.001, max(float(source_rate[2]) / keep * 3, screening * 3),
                     (min(round(float(source_rate[1]) / keep, 3), screening), max(round(float(source_rate[2]) / keep, 3),
                                                                                  screening)),
                     key=f"sc_range_{rate_key}")
s1, s2, s3, _ = st.columns(4)
ramp = s1.number_input("Activation ramp (months, first to last site)", 0.0, 60.0, 6.0, 0.5, key="sc_ramp")
planned = s2.number_input("Planned enrollment period (months)", 1.0, 240.0,
                          float(round(_num(duration_row["p50"], 24) * 0.6)), 1.0, key=f"sc_planned_{key}")
never = s3.slider("Sites that never activate", 0.0, 0.5, 0.10, 0.01, key="sc_never")
st.caption("Rates from registry records count enrollment over start to primary completion, which includes the last "
           "participant's primary follow-up and the sites' ramp: a conservative rate. The range becomes the Gamma "
           "prior on the study's mean rate; screening times (1 - screen failure) gives randomization.")

inputs = ScenarioInputs(target=int(target), sites=int(n_sites), countries=int(n_countries), start=start,
                        ramp_months=float(ramp), planned_months=float(planned), screening_rate=float(screening),
                        screening_rate_p10=float(low_high[0]), screening_rate_p90=float(low_high[1]),
                        screen_failure=float(screen_failure), never_activate=float(never))
problems = inputs.problems()
result = None
if problems:
    for problem in problems:
        st.error(problem)
else:
    result = service.scenario(inputs)
    r1, r2, r3, r4 = st.columns(4)
    months = result.completion_months
    r1.metric("Enrollment period, median (months)", f"{months[0.5]:.1f}" if months[0.5] is not None else "> 120",
              help="From the first activation to the last participant randomized.")
    r2.metric("80% band (months)", " to ".join(f"{months[q]:.0f}" if months[q] is not None else "> 120"
                                               for q in (0.1, 0.9)))
    r3.metric("P(target by the planned date)", f"{result.p_on_time:.0%}")
    r4.metric("Sites for P(on time) ≥ 0.8", f"{result.sites_needed:,}" if result.sites_needed is not None
              else f"more than {3 * inputs.sites:,}")
    left, right = st.columns([3, 2])
    left.plotly_chart(figures.scenario_figure(result), width="stretch", key="scenario")
    right.plotly_chart(figures.sites_figure(result), width="stretch", key="sites_curve")
    if not prediction.empty:
        st.markdown("**The prediction for this protocol** (80% interval and median; from the model, or the phase "
                    "median where the model did not beat it)")
        st.dataframe(tables.prediction_display(prediction), hide_index=True, width="stretch")

    st.markdown("**Resource estimate**")
    a_cols = st.columns(4)
    assumptions = {a.key: float(a_cols[i % 4].number_input(f"{a.label} ({a.unit})", float(a.low), float(a.high),
                                                          float(a.default), float(a.step), key=f"ra_{a.key}"))
                   for i, a in enumerate(ASSUMPTIONS)}
    resources = resource_estimate(result, assumptions)
    st.dataframe(tables.resources_display(resources), hide_index=True, width="stretch")

    # --- save and compare ---
    store, store_problem = service.open_store()
    with st.expander("Save this scenario"):
        if store is None:
            st.warning(f"Saved scenarios are unavailable: {store_problem}")
        else:
            n1, n2 = st.columns(2)
            name = n1.text_input("Scenario name", key="sc_name")
            proposal = n2.text_input("Proposal or opportunity", key="sc_proposal")
            if st.button("Save scenario", key="sc_save", disabled=not name.strip()):
                by_item = dict(zip(resources["item"], resources["value"]))
                saved_id = save_scenario(store, ctx.user.user_id, ctx.scope, name, proposal, ctx.url_params(),
                                         inputs, assumptions, result.summary() | {
                                             "cra_days": float(by_item["CRA effort"]),
                                             "fte": float(by_item["Average CRA staffing"])})
                ctx.navigate(compare=tuple(dict.fromkeys((*(ctx.param("compare") or ()), saved_id))))

st.subheader("Saved scenarios side by side")
store, store_problem = service.open_store()
if store is None:
    st.warning(f"Saved scenarios are unavailable: {store_problem}")
else:
    widgets.multiselect(ctx, "compare", placeholder="Choose saved scenarios")
    chosen = ctx.param("compare") or ()
    saved = saved_scenarios(store)
    picked = saved[saved["scenario_id"].isin(chosen)] if not saved.empty else saved
    if picked.empty:
        st.info("No saved scenario chosen. Save one above, or choose from the saved ones.")
    else:
        table = comparison_table(picked).astype(str)
        st.dataframe(table, hide_index=True, width="stretch")
        download_button(ctx, "Download the comparison (CSV)", lambda: table.to_csv(index=False).encode(),
                        "scenarios.csv", "text/csv", key="download_comparison")
        remove = st.selectbox("Remove a scenario from the saved ones", [None, *picked["scenario_id"]],
                              format_func=lambda s: "Choose one" if s is None else
                              picked.set_index("scenario_id").loc[s, "name"], key="sc_remove")
        if remove and st.button("Remove", key="sc_remove_go"):
            withdraw_scenario(store, ctx.user.user_id, ctx.scope, remove)
            ctx.navigate(compare=tuple(c for c in chosen if c != remove))

# --- the one-page summary ---------------------------------------------------------------------------------------
st.subheader("Feasibility summary")
model_rows = None
if not prediction.empty:
    model_rows = pd.DataFrame({"label": prediction["label"], "unit": prediction["unit"],
                               "value": [f"{r.lo:.2f}-{r.hi:.2f} (median {r.mid:.2f})" for r in prediction.itertuples()],
                               "basis": ["conformal quantile boosting on this source's trials" if m == "model" else
                                         "phase median and 10th-90th percentiles (the model did not beat it)"
                                         for m in prediction["method"]]})
facts = summary_facts(selection.describe(), service.SOURCE_LABELS.get(source, source), bench, len(trials), model_rows,
                      result, resources if result is not None else None,
                      assumptions if result is not None else None, as_of_text)
d1, d2 = st.columns(2)
download_button(ctx, "Download the one-page summary (Word)", lambda: summary_docx(facts, trial_list(trials)),
                "feasibility_summary.docx",
                "application/vnd.openxmlformats-officedocument.wordprocessingml.document", key="download_docx",
                container=d1)
download_button(ctx, "Download the summary facts (CSV)", lambda: facts_csv(facts), "feasibility_summary.csv",
                "text/csv", key="download_facts", container=d2)
with st.expander("What the summary says"):
    st.dataframe(facts, hide_index=True, width="stretch")
