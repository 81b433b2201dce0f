"""Display tables of the CAPA trends page: readable column names, one format per kind of value."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pandas as pd

from analytics.capa.metrics import with_status
from analytics.capa.qtl import QTLS_BY_ID
from analytics.capa.rules import RULES_BY_ID
from analytics.capa.spc import ChartSpec, ControlChart
from analytics.display.formats import count, days, share

GROUP_LABELS = {"sponsor": "Sponsor", "study": "Study", "site": "Site", "process": "Process", "owner": "Owner"}


def _date(value: object) -> str:
    return "—" if value is None or pd.isna(value) else f"{pd.Timestamp(value):%d %b %Y}"


def _site(site: object, labels: Mapping[str, str]) -> str:
    if site is None or pd.isna(site):
        return "Study level"
    return labels.get(str(site), str(site))


def performance_table(perf: pd.DataFrame, grouping: str, labels: Mapping[str, str]) -> pd.DataFrame:
    """Backlog and performance per group."""
    names = perf["group"].map(lambda g: _site(g, labels)) if grouping == "site" else perf["group"].astype(str)
    return pd.DataFrame({
        GROUP_LABELS[grouping]: names,
        "CAPAs": perf["capas"].map(count),
        "Open": perf["open"].map(count),
        "Overdue (original date)": perf["overdue_original"].map(count),
        "Overdue (current date)": perf["overdue_current"].map(count),
        "Median age of open": perf["median_age_open"].map(days),
        "Closed on time": perf["on_time_share"].map(share),
        "Extended": perf["extension_rate"].map(share),
        "Effectiveness checks": perf["checks"].map(count),
        "Judged effective": perf["effective_share"].map(share),
    })


def capa_table(capas: pd.DataFrame, as_of, labels: Mapping[str, str]) -> pd.DataFrame:
    """Every CAPA with its status, dates and effectiveness (the export and drill-down list)."""
    frame = with_status(capas, as_of)
    status = frame.apply(lambda r: ("Open, overdue" if r["overdue_current"] else "Open") if r["is_open"]
                         else "Closed", axis=1) if len(frame) else pd.Series(dtype=str)
    return pd.DataFrame({
        "CAPA": frame["capa_id"].map(lambda i: f"CAPA-{int(i)}"),
        "Study": frame["study_id"],
        "Site": frame["study_site_id"].map(lambda s: _site(s, labels)),
        "Event": frame["quality_event_id"].map(lambda e: "—" if pd.isna(e) else f"QE-{int(e)}"),
        "Process": frame["process"],
        "Root cause": frame["root_cause_category"].fillna("—"),
        "Owner": frame["owner"].fillna("—"),
        "Status": status,
        "Opened": frame["opened_date"].map(_date),
        "Original due": frame["original_due_date"].map(_date),
        "Current due": frame["current_due_date"].map(_date),
        "Extensions": frame["extension_count"].map(count),
        "Closed": frame["closed_date"].map(_date),
        "Cycle time": frame["cycle_days"].map(days),
        "Effectiveness": frame["effectiveness_result"].fillna("Not checked"),
        "Description": frame["description"].fillna(""),
    })


def signals_table(chart: ControlChart) -> pd.DataFrame:
    """The months that break a rule in the direction of concern (signals and patterns), with the rules."""
    spec = chart.spec
    scale = 100.0 if spec.family == "p" else 1.0
    rows = chart.points[chart.points["concern_flag"] | chart.points["pattern_flag"]]
    return pd.DataFrame({
        "Month": rows["month"].map(lambda m: f"{m:%b %Y}"),
        "Kind": rows["concern_flag"].map(lambda s: "Signal" if s else "Pattern only"),
        spec.numerator_label: rows["numerator"].map(count),
        spec.denominator_label: rows["denominator"].map(count),
        "Value": rows["value"].map(lambda v: f"{v * scale:.2f}"),
        "Expected" if chart.risk_adjusted else "Centre": rows["centre"].map(lambda v: f"{v * scale:.2f}"),
        **({f"{spec.numerator_label} expected": rows["expected"].map(lambda v: f"{v:.1f}")}
           if chart.risk_adjusted else {}),
        "Rules broken": rows[f"rules_{spec.concern}"].map(
            lambda ids: "; ".join(RULES_BY_ID[i].name for i in ids.split(", ") if i)),
        "New signal": rows["signal_start"].map(lambda s: "yes" if s else ""),
    })


def rules_table(charts: Sequence[ChartSpec]) -> pd.DataFrame:
    """What each run rule looks for, and on each chart whether it raises a signal or marks a pattern."""
    return pd.DataFrame({"Rule": [r.name for r in RULES_BY_ID.values()],
                         "Breaks when": [r.description for r in RULES_BY_ID.values()],
                         **{c.name: ["Signal" if r.id in c.rules else "Pattern only" for r in RULES_BY_ID.values()]
                            for c in charts}})


def cycle_summary_table(summary: pd.DataFrame, by_label: str) -> pd.DataFrame:
    """Median (95% interval) and P90 of cycle time per group, from the curve and from closed CAPAs only."""
    if summary.empty:
        return pd.DataFrame()
    interval = [f"{days(m)} [{days(lo)}, {days(hi)}]" for m, lo, hi in
                zip(summary["median_days"], summary["median_low"], summary["median_high"])]
    return pd.DataFrame({
        by_label: summary["group"],
        "CAPAs": summary["capas"].map(count),
        "Still open": summary["open"].map(count),
        "Median (Kaplan-Meier, 95% interval)": interval,
        "P90 (Kaplan-Meier)": summary["p90_days"].map(lambda v: "not reached" if pd.isna(v) else days(v)),
        "Median, closed only": summary["median_closed_only"].map(days),
        "P90, closed only": summary["p90_closed_only"].map(days),
    })


def themes_table(themes: pd.DataFrame, study_labels: Mapping[str, str]) -> pd.DataFrame:
    return pd.DataFrame({
        "Study": themes["study_id"].map(lambda s: study_labels.get(s, s)),
        "Theme": themes["name"],
        "Top terms": themes["top_terms"],
        "Events": themes["events"].map(count),
        "Sites": themes["sites"].map(count),
        "Possible recurrences": themes["recurrences"].map(count),
        "First": themes["first_reported"].map(_date),
        "Latest": themes["last_reported"].map(_date),
    })


def recurrence_table(events: pd.DataFrame, labels: Mapping[str, str]) -> pd.DataFrame:
    """Events flagged as repeating an earlier event of the same theme and site within 12 months."""
    flagged = events[events["possible_recurrence"]]
    return pd.DataFrame({
        "Event": flagged["quality_event_id"].map(lambda e: f"QE-{int(e)}"),
        "Reported": flagged["reported_date"].map(_date),
        "Site": flagged["study_site_id"].map(lambda s: _site(s, labels)),
        "Theme": flagged["theme_name"].fillna("—"),
        "Repeats": flagged["repeats_event_id"].map(lambda e: "—" if pd.isna(e) else f"QE-{int(e)}"),
        "Days after": flagged["repeat_days"].map(days),
        "Text similarity": flagged["repeat_similarity"].map(lambda v: "—" if pd.isna(v) else f"{v:.2f}"),
        "Description": flagged["description"],
    })


def qtl_table(register: pd.DataFrame, linked: Mapping[str, list[str]], study_labels: Mapping[str, str]) -> pd.DataFrame:
    """The register: study, parameter, current value with interval, limit, status, linked CAPAs."""
    return pd.DataFrame({
        "Study": register["study_id"].map(lambda s: study_labels.get(s, s)),
        "Parameter": register["qtl"],
        "Current value (95% interval)": [f"{share(v, 1)} [{share(lo, 1)}, {share(hi, 1)}]" for v, lo, hi in
                                         zip(register["value"], register["low"], register["high"])],
        "Counted": [f"{int(n):,} of {int(d):,}" for n, d in zip(register["numerator"], register["denominator"])],
        "Limit": register["limit"].map(share),
        "Warning at": register["warning"].map(share),
        "Status": register["status"],
        "Linked CAPAs": register["signal_id"].map(lambda s: ", ".join(linked.get(s, [])) or "—"),
    })


def qtl_catalogue_table() -> pd.DataFrame:
    return pd.DataFrame({"Parameter": [q.name for q in QTLS_BY_ID.values()],
                         "Definition": [q.definition for q in QTLS_BY_ID.values()],
                         "Limit": [share(q.limit) for q in QTLS_BY_ID.values()],
                         "Why it matters": [q.rationale for q in QTLS_BY_ID.values()]})


def workbench_capas_table(capas: pd.DataFrame, labels: Mapping[str, str]) -> pd.DataFrame:
    """CAPAs opened in the workbench: state, due dates, linked events and the last effectiveness check."""
    if capas.empty:
        return pd.DataFrame()
    return pd.DataFrame({
        "CAPA": capas["capa_ref"],
        "Study": capas["study_id"],
        "Site": capas["study_site_id"].map(lambda s: _site(s, labels)),
        "Title": capas["title"],
        "Opened from": capas["signal_type"].str.replace("_", " ") + ": " + capas["signal_id"].fillna(""),
        "Owner": capas["owner"],
        "Status": capas["status"],
        "Original due": capas["original_due_date"].map(_date),
        "Current due": capas["current_due_date"].map(_date),
        "Extensions": capas["extension_count"].map(count),
        "Linked events": capas["events"].map(lambda ids: ", ".join(f"QE-{i}" for i in ids) or "—"),
        "Effectiveness": capas["result"].fillna("Not checked") if "result" in capas else "Not checked",
        "Last change by": capas["actor"],
        "Last change (UTC)": capas["recorded_at"].map(lambda t: f"{pd.Timestamp(t):%d %b %Y %H:%M}"),
    })


def history_table(timeline: pd.DataFrame) -> pd.DataFrame:
    """A CAPA's recorded history: what changed, who and when (UTC)."""
    if timeline.empty:
        return pd.DataFrame()

    def what(r: pd.Series) -> str:
        if r["record"] == "CAPA":
            return f"{r['status']}; due {_date(r['current_due_date'])}. {r['reason']}"
        if r["record"] == "Effectiveness check":
            return f"{r['result']} on {_date(r['check_date'])}: {r['method']}"
        state = "linked" if r["linked"] else "unlinked"
        return f"QE-{int(r['quality_event_id'])} {state}" + (f": {r['note']}" if isinstance(r.get("note"), str) else "")

    return pd.DataFrame({
        "When (UTC)": timeline["recorded_at"].map(lambda t: f"{pd.Timestamp(t):%d %b %Y %H:%M:%S}"),
        "Who": timeline["actor"],
        "Record": timeline["record"],
        "Version": timeline["version"].map(count),
        "What": timeline.apply(what, axis=1),
    })


def event_summary(event: pd.Series, labels: Mapping[str, str]) -> pd.DataFrame:
    """One quality event as field/value rows (the drill-down header)."""
    fields = {
        "Event": f"QE-{int(event['quality_event_id'])}",
        "Study": event["study_id"],
        "Site": _site(event["study_site_id"], labels),
        "Category (process)": event["category"],
        "Severity": event["severity"],
        "Reported": _date(event["reported_date"]),
        "Theme (from the text)": event["theme_name"] if isinstance(event["theme_name"], str) else "Not stored yet",
        "Possible recurrence of": "—" if pd.isna(event["repeats_event_id"]) or not event["possible_recurrence"]
        else f"QE-{int(event['repeats_event_id'])} ({days(event['repeat_days'])} earlier)",
        "Description": event["description"],
    }
    return pd.DataFrame({"Field": list(fields), "Value": [str(v) for v in fields.values()]})
