"""Display tables for the Feasibility page: readable column names, one number format per kind."""

from __future__ import annotations

import numpy as np
import pandas as pd

from analytics.display.formats import count, share
from analytics.feasibility.model import TARGETS
from analytics.feasibility.selection import METHOD_LABELS


def _fmt(value: object, digits: int) -> str:
    if value is None or (isinstance(value, float) and not np.isfinite(value)):
        return "n/a"
    return f"{float(value):,.{digits}f}"


def benchmark_display(bench: pd.DataFrame) -> pd.DataFrame:
    """The benchmark table: P10/P50/P90 with the number of trials behind each figure."""
    rows = []
    for b in bench.itertuples(index=False):
        digits = 2 if b.measure == "rate" else (1 if b.measure == "duration" else 0)
        p = {k: _fmt(getattr(b, k), digits) for k in ("p10", "p50", "p90")}
        if b.measure == "duration" and isinstance(b.beyond, str) and b.beyond:
            for k in ("p10", "p50", "p90"):
                if p[k] == "n/a" and b.trials:
                    p[k] = f"> {getattr(b, 'longest', float('nan')):,.0f}"
        note = b.basis
        if b.measure == "duration":
            note += f" ({b.completed:,} completed, {b.censored:,} censored)"
        rows.append({"Measure": b.label, "Unit": b.unit, "P10": p["p10"], "P50": p["p50"], "P90": p["p90"],
                     "Trials": count(b.trials), "Basis": note})
    return pd.DataFrame(rows)


def trials_display(trials: pd.DataFrame) -> pd.DataFrame:
    """Comparable trials with links; without the link column when none has a registry page (generated
    trials), rather than a column of empty cells."""
    display = pd.DataFrame({
        "NCT number": trials["nct_id"], "Link": trials["url"], "Title": trials["title"], "Phase": trials["phase"],
        "Condition group": trials["group"], "Status": trials["status"], "Sponsor class": trials["sponsor_class"],
        "Start": pd.to_datetime(trials["start_date"]).dt.date,
        # A running trial's duration is censored here: the record says nothing later.
        "Record last updated": pd.to_datetime(trials["last_update_date"]).dt.date,
        # ... and never later than its export's date (the export's records know nothing after it).
        "Export as of": pd.to_datetime(trials["as_of_date"]).dt.date,
        "Enrollment": trials["enrollment"].map(count),
        "Duration (months)": trials["duration_months"].round(1),
        "Duration": np.where(trials["completed"], "completed", np.where(trials["censored"], "censored", "")),
        "Sites": trials["n_sites"].map(count), "Countries": trials["n_countries"].map(count),
        "Rate (per site-month)": trials["rate"].round(2),
    })
    return display if display["Link"].notna().any() else display.drop(columns="Link")


def complexity_display(association: pd.DataFrame, unit: str) -> pd.DataFrame:
    return pd.DataFrame({
        "Feature": association["label"], "Trials carrying it": association["trials"].map(count),
        "Spearman correlation": association["spearman"].round(2), "Split": association["split"],
        f"Median, lower half ({unit})": association["low_median"].round(2),
        f"Median, upper half ({unit})": association["high_median"].round(2),
    })


def countries_display(countries: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame({"Country": countries["country"], "Recruiting now": countries["recruiting"].map(count),
                         "Not yet recruiting": countries["starting"].map(count),
                         "Their sites in the country": countries["sites"].map(count),
                         "Trials without listed sites": countries["without_locations"].map(count)})


def sites_display(sites: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame({"Candidate site": sites["name"], "City": sites["city"], "Country": sites["country_code"],
                         "Competing trials recruiting": sites["recruiting"].map(count),
                         "Not yet recruiting": sites["starting"].map(count),
                         "NCT numbers": sites["trials"]})


def metrics_display(metrics: pd.DataFrame, chosen: dict[str, str] | None = None) -> pd.DataFrame:
    """Cross-validated figures per target and method; ``chosen`` (target -> method) marks what the user gets."""
    chosen = chosen or {}
    return pd.DataFrame({
        "Target": metrics["target"].map(lambda t: TARGETS[t][1]), "Method": metrics["method"].map(METHOD_LABELS),
        "You get": ["yes" if chosen.get(t) == m else "" for t, m in zip(metrics["target"], metrics["method"])],
        "Trials (out of fold)": metrics["trials"].map(count),
        "Median abs. error (log)": metrics["median_abs_log_error"].round(2),
        "Typical error (x or /)": np.exp(metrics["median_abs_log_error"]).round(2),
        "80% interval coverage": metrics["coverage_80"].map(lambda v: share(v, 1)),
        "Median interval width (hi / lo)": metrics["median_width_ratio"].round(1),
    })


def prediction_display(prediction: pd.DataFrame) -> pd.DataFrame:
    method = prediction["method"] if "method" in prediction else pd.Series("model", index=prediction.index)
    return pd.DataFrame({"Target": prediction["label"], "From": method.map(METHOD_LABELS), "Unit": prediction["unit"],
                         **{label: [_fmt(v, 1 if t == "duration" else 2) for v, t in zip(prediction[k], prediction["target"])]
                            for k, label in (("lo", "Low (80% interval)"), ("mid", "Median"),
                                             ("hi", "High (80% interval)"))}})


def resources_display(resources: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame({"Item": resources["item"],
                         "Value": [_fmt(v, 1 if u in ("FTE", "months") else 0) for v, u in
                                   zip(resources["value"], resources["unit"])],
                         "Unit": resources["unit"]})
