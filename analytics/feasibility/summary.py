"""The one-page feasibility summary: the benchmark, the comparable trials, the scenario and its assumptions.

:func:`summary_facts` is the one source: a tidy table of facts (section, item, value, unit, basis)
that the CSV export is, that the Word document (python-docx) is laid out from, and that the
Drafting assistant can reuse. Numbers are written with the display formats of the page.
"""

from __future__ import annotations

import datetime as dt
import io

import numpy as np
import pandas as pd
from docx import Document
from docx.shared import Pt

from analytics.feasibility.resources import ASSUMPTIONS
from analytics.feasibility.scenario import ScenarioResult

FACT_COLUMNS = ("section", "item", "value", "unit", "basis")
TRIALS_LISTED = 20  # comparable trials named on the page (the CSV of trials lists all)


def _number(value: object, digits: int = 1) -> str:
    if value is None or (isinstance(value, float) and not np.isfinite(value)):
        return "n/a"
    if isinstance(value, (int, np.integer)) or (isinstance(value, float) and float(value).is_integer() and digits == 0):
        return f"{int(value):,}"
    return f"{float(value):,.{digits}f}"


def summary_facts(selection: list[tuple[str, str]], source_label: str, benchmarks: pd.DataFrame, comparable: int,
                  model_rows: pd.DataFrame | None, result: ScenarioResult | None, resources: pd.DataFrame | None,
                  assumptions: dict[str, float] | None, as_of: dt.date | str) -> pd.DataFrame:
    """Every fact of the summary as rows of :data:`FACT_COLUMNS`.

    ``as_of``: one date for every trial, or the text naming each record's export dates
    (:func:`~analytics.feasibility.trials.as_of_label`).
    """
    rows: list[tuple[str, str, str, str, str]] = [
        ("Benchmark", "Source", source_label, "", as_of if isinstance(as_of, str) else f"as of {as_of.isoformat()}"),
        ("Benchmark", "Comparable trials", _number(comparable, 0), "trials", "the filters below"),
    ]
    rows += [("Benchmark", f"Filter: {name}", value, "", "") for name, value in selection]
    for b in benchmarks.itertuples(index=False):
        digits = 2 if b.measure == "rate" else (1 if b.measure == "duration" else 0)
        values = " / ".join(_number(getattr(b, p), digits) for p in ("p10", "p50", "p90"))
        basis = f"{b.trials:,} trials; {b.basis}"
        if b.measure == "duration" and isinstance(b.beyond, str) and b.beyond:
            basis += f"; {b.beyond} beyond the longest follow-up ({_number(getattr(b, 'longest', np.nan))} months)"
        rows.append(("Benchmark", f"{b.label} P10 / P50 / P90", values, b.unit, basis))
    if model_rows is not None:
        for m in model_rows.itertuples(index=False):
            rows.append(("Model", f"{m.label}: 80% interval and median", m.value, m.unit, m.basis))
    if result is not None:
        i = result.inputs
        rows += [
            ("Scenario", "Target randomized", _number(i.target, 0), "participants", ""),
            ("Scenario", "Sites / countries", f"{i.sites:,} / {i.countries:,}", "", ""),
            ("Scenario", "First activation; activation ramp", f"{i.start.isoformat()}; {_number(i.ramp_months)}", "months", ""),
            ("Scenario", "Planned enrollment period", _number(i.planned_months), "months", "first activation to last in"),
            ("Scenario", "Screening rate, median (10th-90th percentile)",
             f"{i.screening_rate:.2f} ({i.screening_rate_p10:.2f}-{i.screening_rate_p90:.2f})", "per site-month",
             f"Gamma prior on the mean rate, shape {result.prior_shape:.1f}"),
            ("Scenario", "Screen-failure rate", f"{i.screen_failure:.0%}", "", ""),
            ("Scenario", "Enrollment period P10 / P50 / P90",
             " / ".join(_number(result.completion_months.get(q)) for q in (0.1, 0.5, 0.9)), "months",
             "Poisson-Gamma simulation, first activation to last participant in"),
            ("Scenario", "P(target by the planned date)", f"{result.p_on_time:.0%}", "", ""),
            ("Scenario", "Sites for P(on time) >= 0.8",
             _number(result.sites_needed, 0) if result.sites_needed is not None else
             f"more than {3 * i.sites:,}", "sites", "added sites open when the planned ones do on average"),
        ]
    if resources is not None:
        rows += [("Resources", r.item, _number(r.value, 1 if r.unit in ("FTE", "months") else 0), r.unit, "")
                 for r in resources.itertuples(index=False)]
    if assumptions:
        labels = {a.key: (a.label, a.unit) for a in ASSUMPTIONS}
        rows += [("Assumptions", labels[k][0], _number(v), labels[k][1], "editable on the page")
                 for k, v in assumptions.items() if k in labels]
    return pd.DataFrame(rows, columns=list(FACT_COLUMNS))


def facts_csv(facts: pd.DataFrame) -> bytes:
    return facts.to_csv(index=False).encode("utf-8")


def summary_docx(facts: pd.DataFrame, trials: pd.DataFrame, title: str = "Feasibility summary") -> bytes:
    """The summary as a Word document: facts by section, then the comparable trials (first :data:`TRIALS_LISTED`)."""
    doc = Document()
    style = doc.styles["Normal"]
    style.font.name = "Calibri"
    style.font.size = Pt(9)
    doc.add_heading(title, level=1)
    for section, rows in facts.groupby("section", sort=False):
        doc.add_heading(str(section), level=2)
        table = doc.add_table(rows=1, cols=3)
        table.style = "Light Grid Accent 1"
        for cell, text in zip(table.rows[0].cells, ("Item", "Value", "Basis")):
            cell.text = text
        for r in rows.itertuples(index=False):
            cells = table.add_row().cells
            cells[0].text = r.item
            cells[1].text = f"{r.value} {r.unit}".strip() if r.unit not in ("", "date") else str(r.value)
            cells[2].text = r.basis
    doc.add_heading("Comparable trials", level=2)
    shown = trials.head(TRIALS_LISTED)
    doc.add_paragraph(f"{len(trials):,} comparable trials; the first {len(shown):,} by start date (newest first) "
                      "are listed; the CSV of comparable trials lists all, with links to ClinicalTrials.gov.")
    for t in shown.itertuples(index=False):
        link = f" ({t.url})" if isinstance(t.url, str) else ""
        doc.add_paragraph(f"{t.nct_id}{link}: {t.title} - {t.phase}, {t.status}", style="List Bullet")
    buffer = io.BytesIO()
    doc.save(buffer)
    return buffer.getvalue()
