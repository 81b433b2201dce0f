"""Small helpers that turn numpy arrays into Arrow columns and write them to DuckDB.

Dates travel as float64 days since 1970-01-01 with NaN for "no date", which keeps the generator's
arithmetic vectorized; they become Arrow ``date32`` only at the edge.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import duckdb
import numpy as np
import pyarrow as pa

EPOCH = dt.date(1970, 1, 1)


def day_number(d: dt.date) -> int:
    """Days since 1970-01-01."""
    return (d - EPOCH).days


def date_column(days: np.ndarray) -> pa.Array:
    """Arrow date32 from float days (NaN becomes null)."""
    days = np.asarray(days, dtype="float64")
    missing = np.isnan(days)
    return pa.array(np.where(missing, 0, np.floor(days)).astype("int32"), type=pa.date32(), mask=missing)


def coded_column(codes: np.ndarray, labels: Sequence[str]) -> pa.Array:
    """Dictionary-encoded string column from integer codes into ``labels`` (negative = null)."""
    codes = np.asarray(codes, dtype="int32")
    indices = pa.array(codes, mask=codes < 0)
    return pa.DictionaryArray.from_arrays(indices, pa.array(list(labels), type=pa.string()))


def text_column(values: Sequence[str | None]) -> pa.Array:
    return pa.array(values, type=pa.string())


def nullable_float(values: np.ndarray) -> pa.Array:
    values = np.asarray(values, dtype="float64")
    return pa.array(values, mask=np.isnan(values))


def nullable_int(values: np.ndarray, missing: np.ndarray | None = None) -> pa.Array:
    values = np.asarray(values)
    if missing is None:
        return pa.array(values.astype("int64"))
    return pa.array(np.where(missing, 0, values).astype("int64"), mask=missing)


def insert(con: duckdb.DuckDBPyConnection, table: str, columns: dict[str, pa.Array]) -> int:
    """Append ``columns`` (by name) to ``table``; returns the rows written."""
    arrow_table = pa.table(columns)
    if arrow_table.num_rows == 0:
        return 0
    con.register("_generated_batch", arrow_table)
    try:
        con.execute(f"INSERT INTO {table} BY NAME SELECT * FROM _generated_batch")
    finally:
        con.unregister("_generated_batch")
    return arrow_table.num_rows


def choice_codes(rng: np.random.Generator, weights: Sequence[float], size: int) -> np.ndarray:
    """Codes 0..len(weights)-1 drawn with the given (unnormalized) weights."""
    p = np.asarray(weights, dtype="float64")
    return rng.choice(len(p), size=size, p=p / p.sum())


def lognormal_days(rng: np.random.Generator, median: np.ndarray | float, sigma: float, size: int) -> np.ndarray:
    """Skewed durations in days: log-normal with the given median (scalar or per row)."""
    return np.asarray(median) * np.exp(sigma * rng.standard_normal(size))


def group_ranges(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For counts per parent, the parent index of every child and the child's rank within its parent."""
    counts = np.asarray(counts, dtype="int64")
    parent = np.repeat(np.arange(len(counts)), counts)
    starts = np.cumsum(counts) - counts
    rank = np.arange(counts.sum()) - np.repeat(starts, counts)
    return parent, rank
