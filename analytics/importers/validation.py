"""Schema-driven checks shared by every importer: types, required values, allowed values, keys.

The same :mod:`analytics.core.schema` specs that create the warehouse decide what a loadable row is, so
the import contract, the DDL and these checks cannot disagree. Frames passed here carry two
bookkeeping columns, ``_file`` and ``_row``, so every finding points at its source record.
"""

from __future__ import annotations

import pandas as pd
import pyarrow as pa

from analytics.importers.dates import parse_iso_dates
from analytics.importers.report import ERROR, FILE, ROW, WARNING, ImportReport
from analytics.core.schema import Column, Table

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


CONTROL_OR_SEPARATOR = r"[\x00-\x1f\x7f/\\]"  # refused in identifiers (NUL, ESC, "../", "a\\b")


def check_text(frame: pd.DataFrame, column: Column, report: ImportReport, shown: str) -> None:
    """Refuse text over the column's length limit, and identifiers with control characters or slashes."""
    limit = column.text_limit
    if limit is None or column.name not in frame.columns:
        return
    values = frame[column.name]
    if not pd.api.types.is_string_dtype(values):
        values = values.astype("string")
    lengths = values.str.len()
    too_long = (lengths > limit).fillna(False).to_numpy(dtype=bool)
    report.add_rows(ERROR, frame, too_long, "text is longer than the column allows", column=shown,
                    expected=f"at most {limit:,} characters", found=lengths.astype("string") + " characters")
    if column.is_identifier:
        unsafe = values.str.contains(CONTROL_OR_SEPARATOR, regex=True).fillna(False).to_numpy(dtype=bool)
        report.add_rows(ERROR, frame, unsafe & ~too_long, "identifier contains a control character or a path "
                        "separator", column=shown, expected="letters, digits and punctuation other than / and \\",
                        found=values)


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
    blanked. Missing required values, values outside the allowed list, text over its length limit,
    unsafe identifiers and duplicate keys are errors. Every check is a vectorized mask; the report
    keeps the first examples of each and counts the rest. ``source_columns`` maps warehouse
    columns to the source column names shown in messages.
    """
    names = source_columns or {}
    frame = frame.copy(deep=False)
    for column in table.columns:
        if column.name not in frame.columns:
            continue
        shown = names.get(column.name, column.name)
        if convert:
            original = frame[column.name]
            typed, bad = coerce(original, column)
            if column.required or column.primary_key:
                report.add_rows(ERROR, frame, bad, "value has the wrong type", column=shown,
                                expected=type_words(column.type), found=original)
            else:
                report.add_rows(WARNING, frame, bad, "value has the wrong type; left empty", column=shown,
                                expected=type_words(column.type), found=original)
            frame[column.name] = typed
        if column.allowed:
            canonical = {v.lower(): v for v in column.allowed}
            lowered = frame[column.name].astype("string").str.lower()
            mapped = lowered.map(canonical, na_action="ignore")
            outside = frame[column.name].notna() & mapped.isna()
            report.add_rows(ERROR, frame, outside, "value is not allowed", column=shown,
                            expected="one of " + ", ".join(column.allowed), found=frame[column.name])
            frame[column.name] = mapped.astype("string").where(~outside, frame[column.name].astype("string"))
        check_text(frame, column, report, shown)
    for column in table.columns:
        if not (column.required or column.primary_key):
            continue
        shown = names.get(column.name, column.name)
        if column.name not in frame.columns:
            report.error(frame[FILE].iloc[0] if len(frame) else table.name, "required column is missing",
                         column=shown, expected=f"a column {shown!r} ({type_words(column.type)})",
                         found=", ".join(c for c in frame.columns if not c.startswith("_")))
            continue
        report.add_rows(ERROR, frame, frame[column.name].isna(), "required value is missing", column=shown,
                        expected=type_words(column.type), found=pd.Series("", index=frame.index))
    _check_duplicate_keys(frame, table, report, names)
    return frame


def _check_duplicate_keys(frame: pd.DataFrame, table: Table, report: ImportReport, names: dict[str, str]) -> None:
    """Every repeat of a primary key after its first row is an error naming that first row."""
    key = [c for c in table.primary_key if c in frame.columns]
    if not key or len(key) != len(table.primary_key) or not len(frame):
        return
    duplicated = frame.duplicated(key, keep=False) & frame[key].notna().all(axis=1)
    if not duplicated.any():
        return
    repeated = frame.loc[duplicated]
    first_row = repeated.groupby(key, dropna=False)[ROW].transform("min")
    later = repeated[ROW] != first_row
    repeated, first_row = repeated.loc[later], first_row.loc[later]
    value = None
    for k in key:
        part = f"{names.get(k, k)}=" + repeated[k].astype("string")
        value = part if value is None else value + ", " + part
    report.add_rows(ERROR, repeated, pd.Series(True, index=repeated.index), "duplicate key",
                    column=", ".join(names.get(k, k) for k in key),
                    expected="a unique key (first seen on row " + first_row.astype("string") + ")", found=value)


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
