"""Schema-driven checks shared by every importer: types, required values, allowed values, keys.

The same :mod:`analytics.core.schema` specs that create the warehouse decide what a loadable row is, so
the import contract, the DDL and these checks cannot disagree. Frames passed here carry two
bookkeeping columns, ``_file`` and ``_row``, so every finding points at its source record.
"""

from __future__ import annotations

import pandas as pd
import pyarrow as pa

from analytics.importers.dates import parse_iso_dates
from analytics.importers.report import ImportReport
from analytics.core.schema import Column, Table

FILE, ROW = "_file", "_row"

_ARROW_TYPES: dict[str, pa.DataType] = {
    "VARCHAR": pa.string(),
    "INTEGER": pa.int32(),
    "BIGINT": pa.int64(),
    "DOUBLE": pa.float64(),
    "DATE": pa.date32(),
    "BOOLEAN": pa.bool_(),
    "TIMESTAMP": pa.timestamp("us"),
}
_TYPE_WORDS = {
    "VARCHAR": "text",
    "INTEGER": "a whole number",
    "BIGINT": "a whole number",
    "DOUBLE": "a number",
    "DATE": "a date YYYY-MM-DD",
    "BOOLEAN": "true/false (also yes/no, y/n, 1/0)",
    "TIMESTAMP": "a timestamp YYYY-MM-DD HH:MM:SS",
}
_TRUE = {"true", "t", "yes", "y", "1"}
_FALSE = {"false", "f", "no", "n", "0"}


def type_words(sql_type: str) -> str:
    """How the contract and error messages describe a column type."""
    return _TYPE_WORDS[sql_type]


def coerce(values: pd.Series, column: Column) -> tuple[pd.Series, pd.Series]:
    """Convert ``values`` to the column's type; returns (typed values, mask of unconvertible cells)."""
    present = values.notna()
    if column.type == "VARCHAR":
        return values.astype("string"), pd.Series(False, index=values.index)
    if column.type in ("INTEGER", "BIGINT", "DOUBLE"):
        numbers = pd.to_numeric(values, errors="coerce").astype("Float64")
        bad = present & numbers.isna()
        if column.type != "DOUBLE":
            fractional = numbers.notna() & (numbers % 1 != 0)
            bad |= fractional.fillna(False)
            numbers = numbers.mask(bad).round().astype("Int64")
        return numbers.mask(bad), bad.astype(bool)
    if column.type == "DATE":
        if pd.api.types.is_datetime64_any_dtype(values):
            return values.dt.normalize(), pd.Series(False, index=values.index)
        if values.dtype == object and values.dropna().map(lambda v: hasattr(v, "year")).all():
            dates = pd.to_datetime(values, errors="coerce")
            return dates, (present & dates.isna()).astype(bool)
        parsed = parse_iso_dates(values.astype("string"))
        dates = parsed["date"].where(parsed["precision"] == "day")
        return dates, (present & dates.isna()).astype(bool)
    if column.type == "BOOLEAN":
        if pd.api.types.is_bool_dtype(values):
            return values.astype("boolean"), pd.Series(False, index=values.index)
        text = values.astype("string").str.lower()
        flags = pd.Series(pd.NA, index=values.index, dtype="boolean")
        flags = flags.mask(text.isin(_TRUE).fillna(False), True).mask(text.isin(_FALSE).fillna(False), False)
        return flags, (present & flags.isna()).astype(bool)
    if column.type == "TIMESTAMP":
        stamps = pd.to_datetime(values, errors="coerce")
        return stamps, (present & stamps.isna()).astype(bool)
    raise ValueError(f"no coercion for type {column.type}")


def _rows(frame: pd.DataFrame, mask: pd.Series) -> list[tuple[str, int | None, object]]:
    picked = frame.loc[mask]
    return list(zip(picked[FILE], picked[ROW], picked.index))


def validate_frame(
    frame: pd.DataFrame,
    table: Table,
    report: ImportReport,
    *,
    convert: bool,
    source_columns: dict[str, str] | None = None,
) -> pd.DataFrame:
    """Check ``frame`` against ``table`` and return the loadable rows, typed.

    With ``convert`` the values are text (or loosely typed) and are converted column by column:
    an unconvertible value in a required column is an error, elsewhere a warning and the cell is
    blanked. Missing required values, values outside the allowed list and duplicate keys are errors.
    ``source_columns`` maps warehouse columns to the source column names shown in messages.
    """
    names = source_columns or {}
    frame = frame.copy()
    for column in table.columns:
        if column.name not in frame.columns:
            continue
        shown = names.get(column.name, column.name)
        if convert:
            typed, bad = coerce(frame[column.name], column)
            strict = column.required or column.primary_key
            for file, row, index in _rows(frame, bad):
                found = str(frame.at[index, column.name])
                if strict:
                    report.error(file, "value has the wrong type", row=row, column=shown,
                                 expected=type_words(column.type), found=found)
                else:
                    report.warning(file, "value has the wrong type; left empty", row=row, column=shown,
                                   expected=type_words(column.type), found=found)
            frame[column.name] = typed
        if column.allowed:
            canonical = {v.lower(): v for v in column.allowed}
            lowered = frame[column.name].astype("string").str.lower()
            mapped = lowered.map(canonical, na_action="ignore")
            outside = frame[column.name].notna() & mapped.isna()
            for file, row, index in _rows(frame, outside):
                report.error(file, "value is not allowed", row=row, column=shown,
                             expected="one of " + ", ".join(column.allowed), found=str(frame.at[index, column.name]))
            frame[column.name] = mapped.astype("string").where(~outside, frame[column.name].astype("string"))
    for column in table.columns:
        if not (column.required or column.primary_key):
            continue
        shown = names.get(column.name, column.name)
        if column.name not in frame.columns:
            report.error(frame[FILE].iloc[0] if len(frame) else table.name, "required column is missing",
                         column=shown, expected=f"a column {shown!r} ({type_words(column.type)})",
                         found=", ".join(c for c in frame.columns if not c.startswith("_")))
            continue
        for file, row, _ in _rows(frame, frame[column.name].isna()):
            report.error(file, "required value is missing", row=row, column=shown,
                         expected=type_words(column.type), found="")
    key = [c for c in table.primary_key if c in frame.columns]
    if key and len(key) == len(table.primary_key) and len(frame):
        duplicated = frame.duplicated(key, keep=False) & frame[key].notna().all(axis=1)
        if duplicated.any():
            first_row = frame.loc[duplicated].groupby(key, dropna=False)[ROW].transform("min")
            for (file, row, index), first in zip(_rows(frame, duplicated), first_row):
                if row == first:
                    continue
                value = ", ".join(f"{names.get(k, k)}={frame.at[index, k]}" for k in key)
                report.error(file, "duplicate key", row=row, column=", ".join(names.get(k, k) for k in key),
                             expected=f"a unique key (first seen on row {first})", found=value)
    return frame


def to_arrow(frame: pd.DataFrame, table: Table) -> pa.Table:
    """The frame's warehouse columns as an Arrow table typed exactly like the warehouse table."""
    arrays, fields = [], []
    for column in table.columns:
        if column.name not in frame.columns:
            continue
        target = _ARROW_TYPES[column.type]
        series = frame[column.name]
        if column.type == "VARCHAR":
            array = pa.array(series.astype("string").astype(object).where(series.notna(), None), type=pa.string())
        elif column.type == "DATE":
            stamps = pd.to_datetime(series, errors="coerce")
            array = pa.array(stamps.dt.date.astype(object).where(stamps.notna(), None), type=pa.date32())
        else:
            array = pa.Array.from_pandas(series.astype(object).where(series.notna(), None)).cast(target)
        arrays.append(array)
        fields.append(pa.field(column.name, target))
    return pa.Table.from_arrays(arrays, schema=pa.schema(fields))
