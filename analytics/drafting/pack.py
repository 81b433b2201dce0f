"""The sponsor review pack's charts (the enrollment figures the Overview and the enrollment engine
draw, for the studies of a status update) as PNG images, and the export view of a recorded draft.

Images are rendered by kaleido on the system Chromium (``/usr/bin/chromium`` on Debian), with one
browser kept open for all charts of a pack.
"""

from __future__ import annotations

import os
import shutil
import warnings
from collections.abc import Sequence

import plotly.graph_objects as go

from analytics.core.scope import AccessScope, PortfolioFilter
from analytics.core.warehouse import Warehouse
from analytics.drafting.export import ExportDocument
from analytics.drafting.facts import FactSet
from analytics.drafting.store import DraftState
from analytics.enrollment.figures import fan_chart
from analytics.portfolio.figures import enrollment_figure, query_aging_figure
from analytics.portfolio.overview import query_aging, study_overview

SYSTEM_CHROMIUM = "/usr/bin/chromium"
MAX_FAN_CHARTS = 3
IMAGE_SIZE = (1000, 460)
IMAGE_ATTEMPTS = 3  # fresh browsers tried for the chart images before the export fails


def review_pack_figures(wh: Warehouse, scope: AccessScope, study_ids: Sequence[str]) -> list[tuple[str, go.Figure]]:
    """(title, figure) for a status update: enrollment against plan, open-query aging, forecast fans."""
    filters = PortfolioFilter(study_ids=tuple(study_ids))
    overview = study_overview(wh, scope, filters)
    figures = [("Enrollment against plan", enrollment_figure(overview)),
               ("Open queries by age", query_aging_figure(query_aging(wh, scope, filters), overview))]
    forecast = wh.query(scope, "SELECT * FROM enrollment_forecast WHERE list_contains($s, study_id) ORDER BY date",
                        {"s": list(study_ids)})
    summary = wh.query(scope, "SELECT * FROM enrollment_study_summary WHERE list_contains($s, study_id)",
                       {"s": list(study_ids)}).set_index("study_id")
    protocols = dict(zip(overview["study_id"], overview["protocol_id"]))
    for study_id in list(study_ids)[:MAX_FAN_CHARTS]:
        rows = forecast[forecast["study_id"] == study_id]
        if rows.empty:
            continue
        title = f"Enrollment forecast: {protocols.get(study_id, study_id)}"
        figures.append((title, fan_chart(rows, summary.loc[study_id] if study_id in summary.index else None, title)))
    return figures


def figure_images(figures: Sequence[tuple[str, go.Figure]]) -> list[tuple[str, bytes]]:
    """PNG images of the figures (kaleido on the system Chromium; one browser for all of them)."""
    import kaleido

    if not os.environ.get("BROWSER_PATH") and os.path.exists(SYSTEM_CHROMIUM):
        os.environ["BROWSER_PATH"] = SYSTEM_CHROMIUM  # kaleido's choreographer reads it
    if not os.environ.get("BROWSER_PATH") and not shutil.which("chromium"):
        raise RuntimeError("no Chromium for the chart images (Debian: apt-get install chromium)")
    width, height = IMAGE_SIZE
    for attempt in range(1, IMAGE_ATTEMPTS + 1):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "kopts is ignored if using a server": expected with one browser
            kaleido.start_sync_server(silence_warnings=True)
            try:
                return [(title, fig.to_image(format="png", width=width, height=height, scale=2))
                        for title, fig in figures]
            except RuntimeError:
                # kaleido's JavascriptError: on a busy machine the browser tab can be asked to draw before
                # its scripts have loaded ("kaleido_scopes is not defined"); a fresh browser draws it.
                if attempt == IMAGE_ATTEMPTS:
                    raise
            finally:
                kaleido.stop_sync_server(silence_warnings=True)
    raise AssertionError("unreachable")


def export_view(state: DraftState, printed_names: dict[str, str] | None = None,
                charts: Sequence[tuple[str, bytes]] = ()) -> ExportDocument:
    """The export of a recorded draft's current text, with its facts, verdict and signatures."""
    draft = state.draft
    checker = state.checker
    verdict = ("Faithfulness check passed: every number, date and identifier matches a cited fact."
               if not checker.get("hard") else
               f"Faithfulness check: {checker.get('hard')} hard violation(s) open in this text.")
    if checker.get("soft"):
        verdict += f" {checker.get('soft')} soft finding(s)."
    if checker.get("readability_grade") is not None:
        verdict += f" Reading level: grade {checker.get('readability_grade')}."
    signatures = [{"printed_name": r.printed_name, "signer_id": r.signer_id, "meaning": r.meaning,
                   "when": r.recorded_at.strftime("%Y-%m-%d %H:%M"), "text_sha256": r.text_sha256}
                  for r in state.signatures_of_current_text().itertuples()]
    metadata = {
        "Document": str(draft["document_type"]),
        "Draft": state.draft_id,
        "Written by": {"model": "a language model, checked against the facts",
                       "template": "the template (no model)",
                       "template_fallback": "the template (the model could not be used)"}[str(draft["origin"])],
        "Template version": str(draft["template_version"]),
        "Facts SHA-256": str(draft["facts_sha256"]),
        "Text SHA-256": state.text_sha256,
        "Edits": str(len(state.edits)),
    }
    return ExportDocument(str(draft["title"]), state.text, metadata, FactSet.from_snapshot(state.facts).table(),
                          verdict, signatures, tuple(charts))
