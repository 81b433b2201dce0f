"""Findings and queries as files for the EDC team: CSV (UTF-8) and Excel."""

from __future__ import annotations

from analytics.display.exports import EXCEL_MIME, to_csv as csv_bytes, to_excel as excel_bytes

__all__ = ["EXCEL_MIME", "csv_bytes", "excel_bytes"]
