"""Exports a user expects beside a table: CSV for tools, Excel (one sheet per table) for people."""

from __future__ import annotations

import io
from collections.abc import Mapping

import pandas as pd

EXCEL_MIME = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
MAX_SHEET_NAME = 31  # Excel's limit


def to_csv(frame: pd.DataFrame) -> bytes:
    return frame.to_csv(index=False).encode("utf-8")


def to_excel(sheets: Mapping[str, pd.DataFrame]) -> bytes:
    """An .xlsx workbook with one sheet per table (openpyxl), columns sized to their contents."""
    buffer = io.BytesIO()
    with pd.ExcelWriter(buffer, engine="openpyxl") as writer:
        for name, frame in sheets.items():
            sheet = name[:MAX_SHEET_NAME]
            frame.to_excel(writer, sheet_name=sheet, index=False)
            worksheet = writer.sheets[sheet]
            for index, column in enumerate(frame.columns, start=1):
                width = max([len(str(column))] + [len(str(v)) for v in frame[column].head(500)])
                worksheet.column_dimensions[worksheet.cell(row=1, column=index).column_letter].width = min(width + 2, 60)
    return buffer.getvalue()
