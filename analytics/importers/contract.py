"""The operational import contract as Markdown, generated from the warehouse schema.

Written to ``data/IMPORT_CONTRACT.md`` by ``python -m analytics contract``; a test checks the
committed file matches, so the document cannot drift from what the importer enforces.
"""

from __future__ import annotations

from analytics.core import schema
from analytics.importers.report import MAX_EXAMPLES_PER_RULE
from analytics.importers.tables import CONTRACT_TABLES, REFERENCES, SET_BY_IMPORTER, contract_columns
from analytics.importers.validation import type_words

CONTRACT_PATH = "data/IMPORT_CONTRACT.md"


def contract_markdown() -> str:
    """The full contract document."""
    lines = [
        "# Operational data import contract",
        "",
        f"Generated from `analytics/core/schema.py` (schema version {schema.SCHEMA_VERSION}) by "
        "`python -m analytics contract`. Do not edit by hand.",
        "",
        "Load with `python -m analytics import tables FOLDER --db PATH` or on the Data page.",
        "",
        "## Files",
        "",
        "- One file per table, named `<table>.csv` (UTF-8, header row, comma separated; Windows-1252 is "
        "accepted and reported) or `<table>.parquet`, directly in the chosen folder. Any subset of the tables "
        "may be loaded; unknown file names refuse the load.",
        "- Column names are case-insensitive. Columns not listed below are ignored with a warning.",
        "- Empty cells are missing values. Dates are `YYYY-MM-DD`; booleans are true/false "
        "(also yes/no, y/n, 1/0); allowed values match case-insensitively.",
        "- Row numbers in messages count records after the header (row 1 is the first record).",
        "",
        "## Rules",
        "",
        "- **Refused** (nothing is loaded, the warehouse is unchanged): a missing key or required column, a "
        "missing or mistyped key/required value, a value outside the allowed list, a duplicate key, an id "
        "that refers to nothing (in this load or the warehouse), a study-site or subject of another study, "
        "an unknown country code, an empty file, a file over the size limit, a file that is not CSV/Parquet, "
        "text longer than its column's maximum length, an identifier (`*_id`) containing a control character "
        "(NUL, ESC, ...) or a path separator (`/`, `\\`).",
        "- Findings are counted in full; the report keeps the first "
        f"{MAX_EXAMPLES_PER_RULE} examples of each rule (file, message, column).",
        "- **Warned** (loaded, cell left empty and listed with its row): a mistyped value in an optional column.",
        "- Rows are **upserted by key**: loading the same files twice changes nothing; columns a file does not "
        "carry keep their current values; rows absent from a file are kept.",
        "- Tables are loaded in this order, so a file may refer to rows of any earlier file: "
        + ", ".join(f"`{t.name}`" for t in CONTRACT_TABLES) + ".",
        "",
    ]
    references = {column: f"{target}.{key}" for column, (target, key) in REFERENCES.items()}
    for table in CONTRACT_TABLES:
        lines += [f"## `{table.name}.csv`", "", table.description, ""]
        key = ", ".join(f"`{k}`" for k in table.primary_key)
        lines += [f"Key: {key}.", ""]
        set_here = [c for (t, c) in SET_BY_IMPORTER if t == table.name]
        if set_here:
            lines += ["Set by the importer: " + ", ".join(f"`{c}` = `{SET_BY_IMPORTER[(table.name, c)]}`"
                                                           for c in set_here) + ".", ""]
        lines += ["| column | type | required | allowed values | refers to | max length | meaning |",
                  "|---|---|---|---|---|---|---|"]
        for column in contract_columns(table):
            required = "key" if column.primary_key else ("yes" if column.required else "")
            refers = references.get(column.name, "")
            if refers.startswith(table.name + "."):
                refers = ""
            lines.append(
                f"| `{column.name}` | {type_words(column.type)} | {required} | {', '.join(column.allowed)} | "
                f"{refers} | {'' if column.text_limit is None else f'{column.text_limit:,}'} | {column.description} |"
            )
        lines.append("")
    return "\n".join(lines)
