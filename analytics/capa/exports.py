"""Exports of the CAPA trends page: the display tables as CSV and as one Excel workbook (openpyxl)."""

from __future__ import annotations

import io
import re
from collections.abc import Mapping

import pandas as pd

SHEET_NAME_MAX = 31  # Excel's limit
_NOT_IN_SHEET_NAMES = re.compile(r"[\[\]:*?/\\]")


def csv_bytes(table: pd.DataFrame) -> bytes:
    """UTF-8 CSV with a byte-order mark, so Excel opens accents and dashes correctly."""
    return table.to_csv(index=False).encode("utf-8-sig")


def excel_bytes(sheets: Mapping[str, pd.DataFrame]) -> bytes:
    """One workbook with a sheet per table (names cut to Excel's 31 characters, headers frozen)."""
    buffer = io.BytesIO()
    with pd.ExcelWriter(buffer, engine="openpyxl") as writer:
        for name, table in sheets.items():
            sheet = _NOT_IN_SHEET_NAMES.sub(" ", name)[:SHEET_NAME_MAX]
            table.to_excel(writer, sheet_name=sheet, index=False)
            worksheet = writer.sheets[sheet]
            worksheet.freeze_panes = "A2"
            for column in worksheet.columns:
                width = max((len(str(c.value)) for c in column if c.value is not None), default=8)
                worksheet.column_dimensions[column[0].column_letter].width = min(max(width + 2, 8), 60)
    return buffer.getvalue()
