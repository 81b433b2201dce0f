"""Finding and reading source files safely: folder confinement, size limits, content sniffing.

Readers never trust a file name: an ``.xpt`` must start with a SAS XPORT library header and its
bytes must match its headers (:mod:`analytics.importers.xport`: a file cut short is refused), a
Dataset-JSON file must hold the number of records it declares, an HTML page saved under any name
is recognised and refused, and text is decoded as UTF-8 with a
Windows-1252 fallback that is reported. Every string cell is stripped and empty cells become
missing values, so "", "  " and a real missing value mean the same thing downstream.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pyreadstat

from analytics.importers.report import ImportReport
from analytics.importers.xport import XportLayoutError, read_layout

DEFAULT_MAX_FILE_MB = 1024
_XPORT_MAGIC = b"HEADER RECORD*******LIB"  # LIBRARY (v5) or LIBV8 (v8) follows
_TEXT_ENCODINGS = ("utf-8-sig", "cp1252")


@dataclass(frozen=True)
class Limits:
    """Safety limits of one load (configurable from the command line and the app)."""

    max_file_bytes: int = DEFAULT_MAX_FILE_MB * 1024 * 1024

    @classmethod
    def from_megabytes(cls, megabytes: float) -> "Limits":
        return cls(int(megabytes * 1024 * 1024))


@dataclass(frozen=True)
class SourceFile:
    """A file accepted for reading: where it is, its name as the user sees it, size and checksum."""

    path: Path
    name: str
    size: int
    sha256: str

    @property
    def extension(self) -> str:
        return self.path.suffix.lower().lstrip(".")


def sha256_of(path: Path) -> str:
    """SHA-256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def is_inside(folder: Path, candidate: Path) -> bool:
    """True when ``candidate`` (after resolving links and ``..``) lies inside ``folder``."""
    try:
        candidate.resolve().relative_to(folder.resolve())
    except ValueError:
        return False
    return True


def accept_file(folder: Path, path: Path, limits: Limits, report: ImportReport) -> SourceFile | None:
    """Check one file (confinement, emptiness, size) and return it, or record why it was refused."""
    name = path.name
    if not is_inside(folder, path):
        report.error(name, "path lies outside the chosen folder (a link or '..' escapes it)",
                     expected=f"a file inside {folder}", found=str(path.resolve()))
        return None
    if not path.is_file():
        report.error(name, "not a regular file", found=str(path))
        return None
    size = path.stat().st_size
    if size == 0:
        report.error(name, "file is empty (0 bytes)", expected="a dataset with a header and rows")
        return None
    if size > limits.max_file_bytes:
        report.error(
            name,
            "file is larger than the import size limit",
            expected=f"at most {limits.max_file_bytes / 1048576:,.1f} MB (raise --max-file-mb to allow it)",
            found=f"{size / 1048576:,.1f} MB",
        )
        return None
    return SourceFile(path, name, size, sha256_of(path))


def list_folder(folder: Path, extensions: set[str], limits: Limits, report: ImportReport) -> list[SourceFile]:
    """The data files directly in ``folder`` with one of ``extensions`` (others are noted, not read)."""
    folder = Path(folder)
    if not folder.is_dir():
        report.error(str(folder), "folder does not exist or is not a folder")
        return []
    accepted: list[SourceFile] = []
    for path in sorted(folder.iterdir()):
        if path.name.startswith("."):
            continue
        if path.is_dir() and not path.is_symlink():
            report.info(path.name, "sub-folder ignored (only files directly in the folder are read)")
            continue
        if path.suffix.lower().lstrip(".") not in extensions:
            report.info(path.name, "not a dataset file; ignored", expected=", ".join(sorted(extensions)))
            continue
        source = accept_file(folder, path, limits, report)
        if source:
            accepted.append(source)
    if not accepted and not report.refused:
        report.error(str(folder), "no data files found", expected=f"files ending in {', '.join(sorted(extensions))}")
    return accepted


def _looks_like_html(head: bytes) -> bool:
    lowered = head.lstrip().lower()
    return lowered.startswith((b"<!doctype html", b"<html", b"<?xml", b"<head", b"<body")) or b"<html" in lowered[:512]


def describe_head(head: bytes) -> str:
    """A short printable rendering of a file's first bytes for error messages."""
    text = head[:40].decode("latin-1")
    return "".join(ch if ch.isprintable() else "." for ch in text)


def _tidy_strings(frame: pd.DataFrame) -> pd.DataFrame:
    """Strip every text cell; empty text becomes missing."""
    for name in frame.columns:
        column = frame[name]
        if pd.api.types.is_string_dtype(column) or column.dtype == object:
            stripped = column.astype("string").str.strip()
            frame[name] = stripped.mask(stripped == "")
    return frame


@dataclass
class Dataset:
    """A dataset read from one source file: its declared name (if any) and its records."""

    source: SourceFile
    name: str | None
    frame: pd.DataFrame


def read_xport(source: SourceFile, report: ImportReport) -> Dataset | None:
    """Read a SAS XPORT v5 or v8 file with pyreadstat; refuse anything that is not XPORT."""
    with open(source.path, "rb") as fh:
        head = fh.read(1024)
    if not head.startswith(_XPORT_MAGIC):
        what = "an HTML/XML page (e.g. a saved error page)" if _looks_like_html(head) else "not a SAS XPORT file"
        report.error(source.name, f"file is {what}, not a SAS XPORT transport file",
                     expected="a SAS XPORT header ('HEADER RECORD*******LIBRARY HEADER RECORD')",
                     found=describe_head(head))
        return None
    try:
        layout = read_layout(source.path)
    except XportLayoutError as exc:
        report.error(source.name, "file is not a complete SAS XPORT file; refused",
                     expected="a transport file whose size and records match its headers", found=str(exc))
        return None
    last_problem: Exception | None = None
    for encoding in (None, "cp1252"):
        try:
            frame, meta = pyreadstat.read_xport(str(source.path), encoding=encoding) if encoding else \
                pyreadstat.read_xport(str(source.path))
        except UnicodeDecodeError as exc:
            last_problem = exc
            continue
        except Exception as exc:  # pyreadstat raises its own ReadstatError types
            report.error(source.name, "could not be read as SAS XPORT", expected="a valid XPORT v5 or v8 file",
                         found=str(exc))
            return None
        if encoding:
            report.info(source.name, "text is not UTF-8; decoded as Windows-1252 (cp1252)")
        promised = layout.declared_observations
        if not layout.fewest_rows <= len(frame) <= layout.observations or promised not in (None, len(frame)):
            report.error(source.name, "rows read do not match the file layout; refused",
                         expected=f"{promised if promised is not None else layout.fewest_rows:,} observations "
                                  f"of {layout.observation_length:,} bytes", found=f"{len(frame):,} rows read")
            return None
        report.rows_read[source.name] = len(frame)
        return Dataset(source, (meta.table_name or "").strip() or None, _tidy_strings(frame))
    report.error(source.name, "text could not be decoded", expected="UTF-8 or Windows-1252", found=str(last_problem))
    return None


def _decode_text(source: SourceFile, report: ImportReport) -> str | None:
    raw = source.path.read_bytes()
    if _looks_like_html(raw[:1024]):
        report.error(source.name, "file is an HTML/XML page (e.g. a saved error page), not data",
                     found=describe_head(raw))
        return None
    for encoding in _TEXT_ENCODINGS:
        try:
            text = raw.decode(encoding)
        except UnicodeDecodeError:
            continue
        if encoding != _TEXT_ENCODINGS[0]:
            report.info(source.name, f"text is not UTF-8; decoded as {encoding}")
        return text
    report.error(source.name, "text could not be decoded", expected="UTF-8 or Windows-1252")
    return None


def read_csv(source: SourceFile, report: ImportReport) -> Dataset | None:
    """Read a CSV file as text columns (types are checked later, cell by cell)."""
    import io

    text = _decode_text(source, report)
    if text is None:
        return None
    try:
        frame = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False, skipinitialspace=False)
    except pd.errors.EmptyDataError:
        report.error(source.name, "file has no header row", expected="a header row naming the columns")
        return None
    except pd.errors.ParserError as exc:
        report.error(source.name, "malformed CSV", expected="one record per line with the header's column count",
                     found=str(exc).strip())
        return None
    frame.columns = [str(c).strip() for c in frame.columns]
    report.rows_read[source.name] = len(frame)
    return Dataset(source, None, _tidy_strings(frame))


def read_parquet(source: SourceFile, report: ImportReport) -> Dataset | None:
    """Read a Parquet file (its column types are checked later like CSV text)."""
    with open(source.path, "rb") as fh:
        head = fh.read(4)
    if head != b"PAR1":
        report.error(source.name, "file is not Parquet", expected="a Parquet file (starts with 'PAR1')",
                     found=describe_head(head))
        return None
    try:
        frame = pd.read_parquet(source.path)
    except Exception as exc:
        report.error(source.name, "could not be read as Parquet", found=str(exc))
        return None
    frame.columns = [str(c).strip() for c in frame.columns]
    report.rows_read[source.name] = len(frame)
    return Dataset(source, None, _tidy_strings(frame))


def read_dataset_json(source: SourceFile, report: ImportReport) -> Dataset | None:
    """Read CDISC Dataset-JSON, version 1.1 (``columns``/``rows``) or 1.0 (``itemGroupData``)."""
    text = _decode_text(source, report)
    if text is None:
        return None
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        report.error(source.name, "invalid JSON", row=exc.lineno, expected="CDISC Dataset-JSON",
                     found=f"{exc.msg} at line {exc.lineno}, column {exc.colno}")
        return None
    if not isinstance(document, dict):
        report.error(source.name, "not a Dataset-JSON document", expected="a JSON object",
                     found=type(document).__name__)
        return None
    if "columns" in document and "rows" in document:  # Dataset-JSON 1.1
        names = [c.get("name") for c in document["columns"]]
        rows, label, promised = document["rows"], document.get("name"), document.get("records")
    else:  # Dataset-JSON 1.0: clinicalData / referenceData -> itemGroupData -> {OID: group}
        body = document.get("clinicalData") or document.get("referenceData") or {}
        groups = list((body.get("itemGroupData") or {}).values())
        if len(groups) != 1:
            report.error(source.name, "not a Dataset-JSON document",
                         expected="'columns' and 'rows' (v1.1) or one itemGroupData dataset (v1.0)",
                         found=f"top-level keys {sorted(document)[:8]}")
            return None
        group = groups[0]
        names = [item.get("name") for item in group.get("items", [])]
        rows, label, promised = group.get("itemData", []), group.get("name"), group.get("records")
    if isinstance(promised, int) and promised != len(rows):
        report.error(source.name, "the number of records does not match the document's 'records' count; refused",
                     expected=f"{promised:,} records", found=f"{len(rows):,} records")
        return None
    bad = [i for i, row in enumerate(rows, start=1) if not isinstance(row, list) or len(row) != len(names)]
    for row in bad:
        report.error(source.name, "record has the wrong number of values", row=row,
                     expected=f"{len(names)} values")
    if bad:
        return None
    frame = pd.DataFrame(rows, columns=names)
    frame = frame.drop(columns=[c for c in ("ITEMGROUPDATASEQ",) if c in frame.columns])
    report.rows_read[source.name] = len(frame)
    return Dataset(source, label, _tidy_strings(frame))
