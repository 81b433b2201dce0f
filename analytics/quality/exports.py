"""Findings and queries as files for the EDC team: CSV (UTF-8) and Excel (openpyxl)."""

from __future__ import annotations

import io

import pandas as pd

EXCEL_MIME = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def csv_bytes(frame: pd.DataFrame) -> bytes:
    """The frame as UTF-8 CSV with a header row."""
    return frame.to_csv(index=False).encode("utf-8")


def excel_bytes(sheets: dict[str, pd.DataFrame]) -> bytes:
    """One workbook with a sheet per frame (names cut to Excel's 31 characters), header row frozen."""
    buffer = io.BytesIO()
    with pd.ExcelWriter(buffer, engine="openpyxl") as writer:
        for name, frame in sheets.items():
            frame.to_excel(writer, sheet_name=name[:31], index=False, freeze_panes=(1, 0))
            sheet = writer.sheets[name[:31]]
            for column in sheet.columns:  # readable widths: the longest value, at most 60 characters
                width = max((len(str(cell.value)) for cell in column if cell.value is not None), default=8)
                sheet.column_dimensions[column[0].column_letter].width = min(max(width + 2, 8), 60)
    return buffer.getvalue()
