"""The warehouse as Parquet files partitioned by study, for engines beyond one machine (Spark) and
read-only replicas.

Layout of an export folder (``python -m analytics export --format parquet --out DIR``)::

    DIR/warehouse.json                      the manifest: format, schema version, generation, tables
    DIR/<generation>/main/subjects/study_id=ST001/data_0.parquet
    DIR/<generation>/main/countries/data_0.parquet       (tables without study_id: one folder)
    DIR/<generation>/derived/kri_cells/study_id=.../...
    DIR/<generation>/meta/derived_state/data_0.parquet   (meta is never partitioned)

Every table of the schema with a ``study_id`` column (trial data, derived results, ground truth) is
hive-partitioned by it (``study_id=<value>``, percent-encoded), so an engine reads one study by
listing one folder; the others are one folder each. Restricted tables (treatment arms, exposures)
are written only when asked, into a *separate* export folder with its own manifest, which the main
manifest names. A new export writes a new generation beside the old one and switches the manifest
with one rename, so readers of the previous generation keep working (the one before is removed).

Reading: :func:`attach_export` puts views over the files into a DuckDB connection as catalog ``wh``
(and ``restricted`` for unblinded readers), the same names a warehouse file has, so the scoped
relations of :mod:`analytics.core.scope`, the derived results' compute code and the pages run on an
export unchanged. A reader connection (:mod:`analytics.core.warehouse`) then switches external
access off except for the export's own generation folder (and, unblinded, the restricted one):
a blinded reader has no view of treatment arms and cannot open the restricted files by name.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote

import duckdb

from analytics.core import schema

MANIFEST = "warehouse.json"
FORMAT = "cro-warehouse-parquet"
FORMAT_VERSION = 1
PARTITION_COLUMN = "study_id"
RESTRICTED = "restricted"
_STAGING = ".building-"


class ExportError(RuntimeError):
    """An export folder that is missing, of another format or schema version, or misplaced."""


def partitioned(table: schema.Table) -> bool:
    """Whether ``table`` is hive-partitioned by study in an export (meta tables never are)."""
    return table.schema != "meta" and any(c.name == PARTITION_COLUMN for c in table.columns)


@dataclass(frozen=True)
class Export:
    """An export folder as its manifest describes it."""

    root: Path
    manifest: dict

    @property
    def generation_dir(self) -> Path:
        return self.root / self.manifest["generation"]

    @property
    def tables(self) -> dict[str, dict]:
        return self.manifest["tables"]

    def table_dir(self, table: schema.Table) -> Path:
        return self.generation_dir / ("main" if table.schema == RESTRICTED else table.schema) / table.name

    def restricted(self) -> "Export | None":
        """The restricted export this one names (None when it was exported without)."""
        where = self.manifest.get(RESTRICTED)
        return open_export(Path(where), kind=RESTRICTED) if where else None


def open_export(root: Path | str, kind: str = "warehouse") -> Export:
    """The export at ``root``; refuses another format, kind or schema version with a message."""
    root = Path(root)
    path = root / MANIFEST
    try:
        manifest = json.loads(path.read_text())
    except FileNotFoundError:
        raise ExportError(f"{root} is not a Parquet export (no {MANIFEST}); write one with "
                          f"`python -m analytics export --format parquet --out {root}`") from None
    except json.JSONDecodeError as error:
        raise ExportError(f"{path} is not valid JSON: {error}") from None
    if manifest.get("format") != FORMAT or manifest.get("kind") != kind:
        raise ExportError(f"{path} describes a {manifest.get('kind', '?')} export of format "
                          f"{manifest.get('format', '?')}, not a {kind} export of {FORMAT}")
    version = manifest.get("schema_version")
    if version != schema.SCHEMA_VERSION:
        raise ExportError(f"{root} holds schema version {version}, this release needs {schema.SCHEMA_VERSION}; "
                          "migrate the warehouse file and export it again")
    return Export(root, manifest)


# --- writing -----------------------------------------------------------------------------------


def _quoted(path: Path | str) -> str:
    return "'" + str(path).replace("'", "''") + "'"


def _copy_table(con: duckdb.DuckDBPyConnection, source: str, table: schema.Table, folder: Path) -> int:
    """Write one table's rows to ``folder`` (partitioned by study where it has study_id); rows written."""
    rows = con.execute(f"SELECT count(*) FROM {source}").fetchone()[0]
    if rows == 0:
        return 0  # no files: readers give an empty relation of the declared columns
    columns = ", ".join(c.name for c in table.columns)
    folder.parent.mkdir(parents=True, exist_ok=True)
    options = "FORMAT parquet, COMPRESSION zstd"
    if partitioned(table):
        options += f", PARTITION_BY ({PARTITION_COLUMN})"
    else:
        folder.mkdir()
        folder = folder / "data_0.parquet"
    con.execute(f"COPY (SELECT {columns} FROM {source}) TO {_quoted(folder)} ({options})")
    return int(rows)


def _write_generation(con: duckdb.DuckDBPyConnection, root: Path, kind: str, tables: list[schema.Table],
                      facts: dict) -> Path:
    """Write ``tables`` as a new generation under ``root`` and switch its manifest to it."""
    root.mkdir(parents=True, exist_ok=True)
    for stale in root.glob(f"*{_STAGING}*"):  # left by a killed export (we hold the lock)
        shutil.rmtree(stale, ignore_errors=True)
    generation = "g-" + dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:6]
    staging = root / (generation + _STAGING + uuid.uuid4().hex[:6])
    try:
        described = {}
        for table in tables:
            folder = staging / ("main" if table.schema == RESTRICTED else table.schema) / table.name
            source = (f"restricted.main.{table.name}" if table.schema == RESTRICTED else f"wh.{table.qualified_name}")
            described[table.qualified_name] = {
                "rows": _copy_table(con, source, table, folder),
                "partitioned_by": PARTITION_COLUMN if partitioned(table) else None,
                "columns": {c.name: c.type for c in table.columns},
            }
        os.replace(staging, root / generation)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    previous = None
    try:
        previous = json.loads((root / MANIFEST).read_text()).get("generation")
    except (FileNotFoundError, json.JSONDecodeError):
        pass
    manifest = {"format": FORMAT, "format_version": FORMAT_VERSION, "kind": kind,
                "schema_version": schema.SCHEMA_VERSION, "generation": generation,
                "exported_at": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"), **facts, "tables": described}
    temporary = root / (MANIFEST + _STAGING + uuid.uuid4().hex[:6])
    temporary.write_text(json.dumps(manifest, indent=1, sort_keys=True))
    os.replace(temporary, root / MANIFEST)  # the switch: readers opening the export see the new generation
    # Keep the previous generation for readers still on it; remove older ones.
    for old in root.iterdir():
        if old.is_dir() and old.name.startswith("g-") and old.name not in (generation, previous):
            shutil.rmtree(old, ignore_errors=True)
    return root / generation


def export(db: Path | str, out: Path | str, restricted_out: Path | str | None = None) -> Export:
    """Write every table of the warehouse at ``db`` to ``out`` (restricted tables to ``restricted_out``
    only when given, a folder outside ``out``); the export written.

    Reads one consistent version of the file (a writer swapping it meanwhile is not seen).
    """
    from analytics.core import warehouse

    out = Path(out).resolve()
    if restricted_out is not None:
        restricted_out = Path(restricted_out).resolve()
        if restricted_out == out or out in restricted_out.parents or restricted_out in out.parents:
            raise ExportError(f"the restricted export {restricted_out} must be a folder outside {out} (and not "
                              "containing it): blinded readers of the export may read only inside it")
    with warehouse.inspect(db) as con:
        if warehouse.current_version(con, "wh") != schema.SCHEMA_VERSION:
            raise ExportError(f"{db} is not at schema version {schema.SCHEMA_VERSION}; "
                              f"run `python -m analytics migrate --db {db}` first")
        info = dict(con.execute("SELECT key, value FROM meta.warehouse_info").fetchall())
        facts = {"source": str(Path(db).resolve()), "as_of_date": info.get("as_of_date")}
        with warehouse.writer_lock(out / MANIFEST, "export"):
            if restricted_out is not None:
                with warehouse.writer_lock(restricted_out / MANIFEST, "export"):
                    _write_generation(con, restricted_out, RESTRICTED,
                                      [t for t in schema.TABLES if t.schema == RESTRICTED], facts)
                facts[RESTRICTED] = str(restricted_out)
            _write_generation(con, out, "warehouse", [t for t in schema.TABLES if t.schema != RESTRICTED], facts)
    return open_export(out)


# --- reading -----------------------------------------------------------------------------------


def _empty_select(table: schema.Table) -> str:
    columns = ", ".join(f"CAST(NULL AS {c.type}) AS {c.name}" for c in table.columns)
    return f"SELECT {columns} WHERE false"


def study_files(folder: Path, study_ids: tuple[str, ...] | None) -> list[str]:
    """The Parquet files of a partitioned table's folder, of ``study_ids`` only when given."""
    if not folder.is_dir():
        return []
    wanted = None if study_ids is None else set(study_ids)
    files = []
    for part in sorted(folder.iterdir()):
        key, _, value = part.name.partition("=")
        if key == PARTITION_COLUMN and (wanted is None or unquote(value) in wanted):
            files += sorted(str(p) for p in part.glob("*.parquet"))
    return files


def table_select(export: Export, table: schema.Table, study_ids: tuple[str, ...] | None = None) -> str:
    """SQL reading ``table`` from ``export`` with its declared columns in order (``study_ids``: only those)."""
    return folder_select(export.table_dir(table), table, study_ids)


def folder_select(folder: Path, table: schema.Table, study_ids: tuple[str, ...] | None = None) -> str:
    """SQL reading ``table`` from its folder of an export (or of results Spark wrote in the same layout)."""
    columns = ", ".join(c.name for c in table.columns)
    if partitioned(table):
        if study_ids is None and folder.is_dir():
            files: list[str] | str = str(folder / "*" / "*.parquet")
        else:
            files = study_files(folder, study_ids)
        if not files:
            return _empty_select(table)
        listing = _quoted(files) if isinstance(files, str) else "[" + ", ".join(_quoted(f) for f in files) + "]"
        return (f"SELECT {columns} FROM read_parquet({listing}, hive_partitioning = true, "
                f"hive_types = {{'{PARTITION_COLUMN}': VARCHAR}})")
    if not (folder / "data_0.parquet").exists():
        return _empty_select(table)
    return f"SELECT {columns} FROM read_parquet({_quoted(folder / 'data_0.parquet')})"


def attach_export(con: duckdb.DuckDBPyConnection, root: Path | str, blinded: bool,
                  study_ids: tuple[str, ...] | None = None) -> list[Path]:
    """Views over the export at ``root`` as catalog ``wh`` (and ``restricted`` unless ``blinded``);
    the folders they read (a reader allows external access to these only).

    ``study_ids`` narrows the partitioned tables to those studies (a Spark task reads one study).
    """
    main = open_export(root)
    exports = [("wh", main, [t for t in schema.TABLES if t.schema != RESTRICTED])]
    if not blinded:
        restricted = main.restricted()
        if restricted is None:
            raise ExportError(f"the Parquet export at {root} was written without its restricted tables; unblinded "
                              "readers need them (`python -m analytics export ... --restricted-out FOLDER`)")
        exports.append((RESTRICTED, restricted, [t for t in schema.TABLES if t.schema == RESTRICTED]))
    for catalog, source, tables in exports:
        con.execute(f"ATTACH ':memory:' AS {catalog}")
        for name in {t.schema for t in tables} - {RESTRICTED, "main"}:
            con.execute(f"CREATE SCHEMA {catalog}.{name}")
        for table in tables:
            view_schema = "main" if table.schema == RESTRICTED else table.schema
            con.execute(f"CREATE VIEW {catalog}.{view_schema}.{table.name} AS {table_select(source, table, study_ids)}")
    con.execute("USE wh")
    return [source.generation_dir for _, source, _ in exports]
