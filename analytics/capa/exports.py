"""Exports of the CAPA trends page: the display tables as CSV and as one Excel workbook."""

from __future__ import annotations

import pandas as pd

from analytics.display.exports import EXCEL_MIME, to_csv, to_excel

__all__ = ["EXCEL_MIME", "csv_bytes", "excel_bytes"]

excel_bytes = to_excel


def csv_bytes(table: pd.DataFrame) -> bytes:
    """UTF-8 CSV with a byte-order mark: quality managers open these in Excel."""
    return to_csv(table, bom=True)
