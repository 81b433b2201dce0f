"""Exports a user expects beside a table: CSV for tools, Excel (one sheet per table) for people.

Every page's files come from here, so a workbook looks the same whichever page made it.
"""

from __future__ import annotations

import io
import re
from collections.abc import Mapping

import pandas as pd

EXCEL_MIME = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
MAX_SHEET_NAME = 31  # Excel's limit
MAX_COLUMN_WIDTH = 60  # characters
_NOT_IN_SHEET_NAMES = re.compile(r"[\[\]:*?/\\]")


def to_csv(frame: pd.DataFrame, bom: bool = False) -> bytes:
    """The table as UTF-8 CSV with a header row; ``bom`` adds the byte-order mark Excel needs to
    read accents and dashes when the file is opened by double-click."""
    return frame.to_csv(index=False).encode("utf-8-sig" if bom else "utf-8")


def to_excel(sheets: Mapping[str, pd.DataFrame]) -> bytes:
    """An .xlsx workbook with one sheet per table (openpyxl): names Excel accepts, the header row
    frozen, columns sized to their contents."""
    buffer = io.BytesIO()
    with pd.ExcelWriter(buffer, engine="openpyxl") as writer:
        for name, frame in sheets.items():
            sheet = _NOT_IN_SHEET_NAMES.sub(" ", name)[:MAX_SHEET_NAME]
            frame.to_excel(writer, sheet_name=sheet, index=False)
            worksheet = writer.sheets[sheet]
            worksheet.freeze_panes = "A2"
            for index, column in enumerate(frame.columns, start=1):
                width = max([len(str(column))] + [len(str(v)) for v in frame[column].head(500)])
                letter = worksheet.cell(row=1, column=index).column_letter
                worksheet.column_dimensions[letter].width = min(max(width + 2, 8), MAX_COLUMN_WIDTH)
    return buffer.getvalue()
