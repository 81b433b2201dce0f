"""Data: load your own data (SDTM, ClinicalTrials.gov, operational tables) and see where data came from.

Loading is two steps: *Validate* reads the files and shows every finding (nothing is written);
*Confirm load* commits atomically. Only roles allowed to load data see the loading tab.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import streamlit as st

from analytics.importers import provenance
from analytics.importers.report import ImportRefused
from analytics.importers.sources import DEFAULT_MAX_FILE_MB, Limits, is_inside
from analytics.importers.staging import PreparedLoad, commit
from analytics.importers.uploads import new_upload_dir, unsafe_upload_name
from analytics.frame import access
from analytics.frame.session import current_context

IMPORT_ROOT_ENV = "CRO_IMPORT_ROOT"
DEFAULT_IMPORT_ROOT = Path(__file__).resolve().parent.parent / "data" / "incoming"
KINDS = {
    "sdtm": "CDISC SDTM study (XPORT, CSV or Dataset-JSON)",
    "ctgov": "ClinicalTrials.gov export (Download CSV, Download JSON zip, or API v2 JSON)",
    "tables": "Operational tables (CSV or Parquet, see the import contract)",
}
UPLOAD_TYPES = {"sdtm": ["xpt", "csv", "json"], "ctgov": ["csv", "json", "zip"], "tables": ["csv", "parquet"]}
STATE_LOAD, STATE_DIR = "data_page_prepared_load", "data_page_upload_dir"


def import_root() -> Path:
    """The only server folder users may pick sources from (``$CRO_IMPORT_ROOT``)."""
    return Path(os.environ.get(IMPORT_ROOT_ENV) or DEFAULT_IMPORT_ROOT)


def _forget_upload() -> None:
    folder = st.session_state.pop(STATE_DIR, None)
    if folder:
        shutil.rmtree(folder, ignore_errors=True)


def _stage_uploads(files: list, limits: Limits) -> tuple[Path | None, list[str]]:
    """Write uploaded files to a private temporary folder; refuse unsafe names and oversize files."""
    problems = []
    _forget_upload()
    folder = new_upload_dir(st.session_state)
    st.session_state[STATE_DIR] = str(folder)
    for upload in files:
        name = upload.name
        reason = unsafe_upload_name(name)
        if reason:
            problems.append(f"{name.encode('unicode_escape').decode('ascii')[:80]}: {reason}; refused")
            continue
        data = upload.getvalue()
        if len(data) > limits.max_file_bytes:
            problems.append(f"{name}: {len(data) / 1048576:,.1f} MB is over the {limits.max_file_bytes / 1048576:,.0f} "
                            "MB limit; refused")
            continue
        (folder / name).write_bytes(data)
    return (None if problems else folder), problems


def _prepare(kind: str, source: Path, options: dict, limits: Limits, db_path: str) -> PreparedLoad:
    from analytics.importers.ctgov import prepare_ctgov
    from analytics.importers.sdtm import SdtmOptions, prepare_sdtm
    from analytics.importers.tables import prepare_tables

    ctx = current_context()
    if kind == "sdtm":
        sdtm_options = SdtmOptions(study_id=options["study_id"] or None, sponsor=options["sponsor"] or "Imported",
                                   therapeutic_area=options["therapeutic_area"] or None, limits=limits,
                                   scope=ctx.scope)
        return prepare_sdtm(source, db_path, sdtm_options)
    if kind == "ctgov":
        if source.is_dir():
            files = sorted(p for p in source.iterdir() if p.suffix.lower() in (".csv", ".json", ".zip"))
            source = files[0] if len(files) == 1 else source
        return prepare_ctgov(source, options["therapeutic_area"] or None, limits, scope=ctx.scope)
    return prepare_tables(source, db_path, limits, ctx.scope)


def _show_report(ctx, load: PreparedLoad) -> None:
    report = load.report
    cols = st.columns(4)
    cols[0].metric("Errors", f"{report.count('error'):,}", help="Any error refuses the whole load")
    cols[1].metric("Warnings", f"{report.count('warning'):,}")
    cols[2].metric("Rows left out", f"{report.rejected_rows():,}", help="Rows left out of the load (listed below)")
    cols[3].metric("Rows to load", f"{sum(report.rows_staged.values()):,}")
    if report.refused:
        st.error("This load is refused: fix the errors below and validate again. Nothing was written.",
                 icon=":material/block:")
    if report.datasets:
        st.markdown("**Per source dataset**")
        st.dataframe(provenance.dataset_table(report), hide_index=True, key="dataset_counts")
    if report.rows_staged:
        st.dataframe(provenance.staged_table(report), hide_index=True, key="staged_rows")
    findings = provenance.findings_table(report)
    if len(findings):
        st.markdown("**Findings** (the first examples of each rule; the last column counts them all)")
        st.dataframe(findings, hide_index=True, key="validation_issues")
        access.download_button(ctx, "Download the report (CSV)", lambda: findings.to_csv(index=False),
                               "import_report.csv", "text/csv", key="download_report")


def _audit_load(ctx, load: PreparedLoad, outcome: str, seconds: float | None = None) -> None:
    access.audit_load(ctx.user.user_id, ctx.scope, ctx.warehouse.path, load, outcome, seconds)


def _load_tab() -> None:
    ctx = current_context()
    kind = st.radio("What are you loading?", list(KINDS), format_func=KINDS.get, key="import_kind")
    how = st.radio("Files", ["Upload files", "Folder on the server"], horizontal=True, key="import_how")
    limit_mb = st.number_input("Largest file accepted (MB)", min_value=1, value=DEFAULT_MAX_FILE_MB,
                               key="import_limit_mb")
    limits = Limits.from_megabytes(limit_mb)
    options = {"study_id": "", "sponsor": "Imported", "therapeutic_area": ""}
    if kind == "sdtm":
        cols = st.columns(3)
        options["study_id"] = cols[0].text_input("Study id", help="Default: STUDYID from DM", key="import_study")
        options["sponsor"] = cols[1].text_input("Sponsor", value="Imported", key="import_sponsor",
                                                help="An existing sponsor id or name, or a new sponsor's name")
        options["therapeutic_area"] = cols[2].text_input("Therapeutic area", key="import_ta")
    elif kind == "ctgov":
        options["therapeutic_area"] = st.text_input("Therapeutic area of these trials", key="import_ta")

    source: Path | None = None
    problems: list[str] = []
    if how == "Upload files":
        uploads = st.file_uploader("Files", type=UPLOAD_TYPES[kind], accept_multiple_files=True,
                                   key=f"import_upload_{kind}")
        ready = bool(uploads)
    else:
        root = import_root()
        typed = st.text_input(f"Folder (inside {root})", key="import_folder")
        ready = bool(typed.strip())
        if ready:
            candidate = Path(typed.strip())
            candidate = candidate if candidate.is_absolute() else root / candidate
            if not is_inside(root, candidate):
                problems.append(f"{typed}: outside the import folder {root}; choose a folder inside it")
            elif not candidate.exists():
                problems.append(f"{typed}: no such folder or file")
            else:
                source = candidate
    if st.button("Validate", type="secondary", disabled=not ready, key="import_validate"):
        st.session_state.pop(STATE_LOAD, None)
        if how == "Upload files":
            source, upload_problems = _stage_uploads(uploads, limits)
            problems += upload_problems
        for problem in problems:
            st.error(problem)
        if source is not None and not problems:
            with st.spinner("Reading and validating…"):
                st.session_state[STATE_LOAD] = _prepare(kind, source, options, limits, ctx.warehouse.path)

    load: PreparedLoad | None = st.session_state.get(STATE_LOAD)
    if load is None:
        return
    st.subheader("Validation report")
    st.caption(load.description or "")
    _show_report(ctx, load)
    if load.report.refused:
        return
    if load.needs_confirmation:
        st.warning("This re-import removes more than a tenth of a study's rows in some tables: "
                   + "; ".join(shrink.text() for shrink in load.shrinks)
                   + ". Check that the delivery is complete; confirm below to load it anyway.", icon=":material/warning:")
        if st.button("I checked: remove these rows and load", key="import_confirm_shrink"):
            load.confirm_shrink()
            st.rerun()
        return
    if st.button("Confirm load", type="primary", key="import_confirm"):
        with st.status("Loading into the warehouse…", expanded=True) as status:
            try:
                result = commit(load, Path(ctx.warehouse.path), progress=status.write)
            except ImportRefused as refused:
                _audit_load(ctx, load, "refused")
                status.update(label="Load refused; the warehouse is unchanged", state="error")
                st.error(str(refused))
                return
            _audit_load(ctx, load, "loaded", result.seconds)
            status.update(label=f"Loaded in {result.seconds:.1f} s", state="complete")
        st.session_state.pop(STATE_LOAD, None)
        _forget_upload()
        st.success(f"Loaded {load.description}. Other pages show the new data on their next refresh.")


def _loaded_tab() -> None:
    ctx = current_context()
    studies = provenance.study_provenance(ctx.warehouse, ctx.scope)
    st.subheader("Studies and where their data came from")
    st.dataframe(studies, hide_index=True, key="loaded_studies")
    imported = studies[studies["Files"] > 0]
    if len(imported):
        chosen = st.selectbox("Source files of study", list(imported["Study"]), key="provenance_study",
                              format_func=dict(zip(imported["Study"], imported["Protocol"])).get)
        st.dataframe(provenance.source_files(ctx.warehouse, ctx.scope, chosen), hide_index=True,
                     key="provenance_files")
        if (studies.loc[studies["Study"] == chosen, "Source"] == provenance.SOURCE_NAMES["sdtm"]).any():
            st.info("This study comes from SDTM, which carries no eCRF entry dates, queries, monitoring visits, "
                    "quality events or CAPAs: pages show those facts as absent for it, not as zero.",
                    icon=":material/info:")
    trials = provenance.benchmark_files(ctx.warehouse, ctx.scope)
    st.subheader("ClinicalTrials.gov benchmark files")
    if trials.empty:
        st.caption("No ClinicalTrials.gov export loaded yet.")
    else:
        st.dataframe(trials, hide_index=True, key="ctgov_files")


ctx = current_context()
st.title("Data")
can_load = ctx.user.role.allows("load_data")
if can_load:
    load_tab, loaded_tab = st.tabs(["Load data", "Loaded data"])
    with load_tab:
        _load_tab()
    with loaded_tab:
        _loaded_tab()
else:
    st.warning("Your role may not load data; this page only lists where the data came from.",
               icon=":material/lock:")
    _loaded_tab()
