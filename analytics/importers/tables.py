"""Operational exports (CTMS / EDC reports) following the import contract: one CSV or Parquet per table.

The contract is :data:`CONTRACT_TABLES` (the ``importable`` tables of :mod:`analytics.core.schema`) and
is published in ``data/IMPORT_CONTRACT.md`` by ``python -m analytics contract``. Rows are upserted
by primary key, so re-importing the same files changes nothing; rows absent from a file are kept.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from analytics.core import schema
from analytics.importers.countries import country_rows, to_alpha2
from analytics.importers.existing import WarehouseState, check_scope, check_shared_rows
from analytics.importers.report import ERROR, DatasetCounts, ImportReport
from analytics.importers.sources import Dataset, Limits, list_folder, read_csv, read_parquet
from analytics.importers.staging import KEEP_EXISTING, UPSERT, PreparedLoad, Progress, _silent
from analytics.importers.uploads import remove_stale_upload_dirs
from analytics.importers.validation import FILE, ROW, validate_frame
from analytics.core.scope import AccessScope

# Load order: a table only refers to tables before it.
CONTRACT_ORDER = (
    "sponsors", "studies", "enrollment_targets", "sites", "study_sites", "subjects", "visits", "queries", "protocol_deviations",
    "monitoring_visits", "quality_events", "capas", "milestones", "study_eligibility",
)
CONTRACT_TABLES: tuple[schema.Table, ...] = tuple(
    schema.table(name) for name in CONTRACT_ORDER if schema.table(name).importable
)
SET_BY_IMPORTER = {("studies", "data_source"): "tables"}  # columns the importer fills in itself
DATA_EXTENSIONS = {"csv", "parquet"}

# column -> (table it refers to, key column there). Checked against the files and the warehouse.
REFERENCES = {
    "sponsor_id": ("sponsors", "sponsor_id"),
    "study_id": ("studies", "study_id"),
    "site_id": ("sites", "site_id"),
    "study_site_id": ("study_sites", "study_site_id"),
    "subject_id": ("subjects", "subject_id"),
    "quality_event_id": ("quality_events", "quality_event_id"),
}
SINGULAR = {"sponsors": "sponsor", "studies": "study", "sites": "site", "study_sites": "study site",
            "subjects": "subject", "quality_events": "quality event"}


def contract_columns(table: schema.Table) -> list[schema.Column]:
    """The columns a file for ``table`` may carry (all but those the importer sets)."""
    return [c for c in table.columns if (table.name, c.name) not in SET_BY_IMPORTER]


def _read(folder: Path, limits: Limits, report: ImportReport, progress: Progress) -> dict[str, Dataset]:
    datasets: dict[str, Dataset] = {}
    known = {t.name for t in CONTRACT_TABLES}
    for source in list_folder(folder, DATA_EXTENSIONS, limits, report):
        name = source.path.stem.lower()
        if name not in known:
            report.error(source.name, "unknown table file", expected="one of " + ", ".join(
                f"{t}.csv" for t in CONTRACT_ORDER) + " (or .parquet)", found=source.name)
            continue
        if name in datasets:
            report.error(source.name, "table supplied twice", expected="one file per table",
                         found=f"also {datasets[name].source.name}")
            continue
        progress(f"reading {source.name} ({source.size / 1048576:,.1f} MB)")
        dataset = read_csv(source, report) if source.extension == "csv" else read_parquet(source, report)
        if dataset is not None:
            datasets[name] = dataset
    return datasets


def _shape(dataset: Dataset, table: schema.Table, report: ImportReport) -> pd.DataFrame:
    """The file's contract columns (lower-cased names), with location columns; unknown columns noted."""
    frame = dataset.frame.copy(deep=False)  # columns are replaced, never changed in place
    frame.columns = [str(c).strip().lower() for c in frame.columns]
    allowed = {c.name for c in contract_columns(table)}
    for column in frame.columns:
        if column in allowed:
            continue
        if (table.name, column) in SET_BY_IMPORTER:
            report.warning(dataset.source.name, "column is set by the importer; the file's values are ignored",
                           column=column, found=column)
        else:
            report.warning(dataset.source.name, "column is not in the import contract; ignored", column=column,
                           expected="one of " + ", ".join(sorted(allowed)), found=column)
    frame = frame[[c for c in frame.columns if c in allowed]].copy()
    frame[FILE] = dataset.source.name
    frame[ROW] = np.arange(1, len(frame) + 1)
    if len(frame) == 0:
        report.warning(dataset.source.name, "file has a header but no rows")
    return frame


def _check_references(tables: dict[str, pd.DataFrame], state: WarehouseState, report: ImportReport) -> None:
    """Every id must exist in the files of this load or in the warehouse; study ids must agree."""
    known: dict[str, pd.DataFrame] = {}
    for target in {t for t, _ in REFERENCES.values()}:
        existing = state.keys(target)
        loaded = tables.get(target)
        parts = [f for f in (existing, loaded) if f is not None and len(f)]
        key = next(k for t, k in REFERENCES.values() if t == target)
        columns = [key] + (["study_id"] if target in ("study_sites", "subjects") else [])
        known[target] = (pd.concat([p[[c for c in columns if c in p.columns]] for p in parts], ignore_index=True)
                         .drop_duplicates(key, keep="last") if parts else pd.DataFrame(columns=columns))
    for name, frame in tables.items():
        for column, (target, key) in REFERENCES.items():
            if column not in frame.columns or target == name:
                continue
            values = frame[column].astype("string")
            present = values.notna()
            matched = values.isin(known[target][key].astype("string"))
            report.add_rows(ERROR, frame, present & ~matched,
                            f"refers to a {SINGULAR[target]} that does not exist", column=column,
                            expected=f"a {key} in {target} (this load or the warehouse)", found=values)
            if "study_id" in frame.columns and target in ("study_sites", "subjects") and column != "study_id":
                owner = known[target].dropna(subset=["study_id"]).set_index(key)["study_id"].astype("string")
                owners = values.map(owner, na_action="ignore").astype("string")
                study = frame["study_id"].astype("string")
                mismatch = (present & matched & owners.notna() & (owners != study)).fillna(False)
                report.add_rows(ERROR, frame, mismatch, f"{column} belongs to another study", column=column,
                                expected=f"a {column} of study " + study.fillna(""),
                                found=values + " (study " + owners.fillna("") + ")")


def _complete(table: schema.Table, frame: pd.DataFrame) -> bool:
    """True when the file has every key and required column (the validation reported any missing one)."""
    return all(c.name in frame.columns for c in table.columns if c.required or c.primary_key)


def prepare_tables(folder: Path | str, db_path: Path | str | None, limits: Limits = Limits(),
                   scope: AccessScope | None = None, progress: Progress = _silent) -> PreparedLoad:
    """Read and validate a folder of contract files into a :class:`PreparedLoad` (nothing is written)."""
    remove_stale_upload_dirs(keep=Path(folder))
    report = ImportReport("tables")
    load = PreparedLoad("tables", report)
    datasets = _read(Path(folder), limits, report, progress)
    load.files = [d.source for d in datasets.values()]
    tables: dict[str, pd.DataFrame] = {}
    for table in CONTRACT_TABLES:
        if table.name not in datasets:
            continue
        progress(f"checking {datasets[table.name].source.name}")
        frame = _shape(datasets[table.name], table, report)
        validated = validate_frame(frame, table, report, convert=True)
        if _complete(table, validated):  # an incomplete file is refused; its rows are not cross-checked
            tables[table.name] = validated
            report.rows_staged[table.qualified_name] = len(frame)
    if "studies" in tables:
        tables["studies"]["data_source"] = "tables"
    state = WarehouseState(db_path)
    if "studies" in tables:
        studies = tables["studies"]
        existing = state.studies(list(studies["study_id"].dropna().unique()))
        sources = studies["study_id"].map(dict(zip(existing["study_id"], existing["data_source"])))
        other = sources.notna() & (sources != "tables")
        report.add_rows(ERROR, studies, other, "a study with this id already exists from another source",
                        column="study_id", expected="a new study id or one loaded from tables",
                        found=studies["study_id"].astype("string") + " (" + sources.astype("string") + ")")
    if "sites" in tables:
        codes = tables["sites"]["country_code"].astype("string")
        distinct = codes.dropna().unique()
        lookup = {c: to_alpha2(c) if len(c) == 2 else None for c in distinct}
        alpha2 = codes.map(lookup, na_action="ignore").astype("string")
        report.add_rows(ERROR, tables["sites"], codes.notna() & alpha2.isna(), "not an ISO 3166-1 alpha-2 country code",
                        column="country_code", expected="a two-letter code such as US or DE", found=codes)
        tables["sites"]["country_code"] = alpha2.where(alpha2.notna(), codes)
    _check_references(tables, state, report)
    sponsors = set(tables["studies"]["sponsor_id"].dropna()) if "studies" in tables else set()
    studies_touched = set().union(*[set(f["study_id"].dropna().unique()) for f in tables.values()
                                    if "study_id" in f.columns])
    known_studies = state.studies(sorted(studies_touched))
    sponsors |= set(known_studies["sponsor_id"].dropna())
    check_scope(report, scope, sponsors, studies_touched)
    check_shared_rows(report, scope, tables, state)
    _count_datasets(datasets, tables, report)
    if report.refused:
        return load
    if "sites" in tables:
        tables = {"countries": country_rows(list(tables["sites"]["country_code"].dropna())), **tables}
        tables["countries"][FILE] = datasets["sites"].source.name
        tables["countries"][ROW] = None
    load.tables = tables
    load.policies = {name: UPSERT for name in tables} | {"countries": KEEP_EXISTING}
    load.provenance = _provenance(datasets, tables, report)
    load.description = f"{sum(len(f) for f in tables.values()):,} rows in {len(datasets)} operational table file(s)"
    return load


def _count_datasets(datasets: dict[str, Dataset], tables: dict[str, pd.DataFrame], report: ImportReport) -> None:
    """Rows read and loaded per file (a refused load loads nothing)."""
    for name, dataset in datasets.items():
        file = dataset.source.name
        loaded = 0 if report.refused or name not in tables else len(tables[name])
        report.datasets[file] = DatasetCounts(file, name, report.rows_read.get(file, 0), loaded, 0,
                                              report.rejected_rows(file),
                                              f"{schema.table(name).qualified_name} (upserted by key)")


def _provenance(datasets: dict[str, Dataset], tables: dict[str, pd.DataFrame], report: ImportReport
                ) -> list[dict[str, object]]:
    """One row per (study, file); files without a study column are recorded as reference data."""
    rows = []
    for name, dataset in datasets.items():
        frame = tables.get(name)
        if frame is None:
            continue
        counts = (frame["study_id"].value_counts().to_dict() if "study_id" in frame.columns
                  else {"(reference data)": len(frame)})
        for study, count in counts.items():
            rows.append({
                "study_id": str(study),
                "file_name": dataset.source.name,
                "source_type": "tables",
                "sha256": dataset.source.sha256,
                "row_count": int(count),
                "rejected_rows": report.problem_rows(dataset.source.name),
                "notes": f"Upserted into {schema.table(name).qualified_name} by primary key.",
            })
    return rows
