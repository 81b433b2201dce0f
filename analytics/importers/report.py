"""What an import found: errors (the load is refused), warnings and rejected rows, with locations.

Every problem names the file, the row (1 = first record after the header) and the column, what
was expected and what was found, so a user can fix the source without guessing.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import pandas as pd

ERROR = "error"  # the load is refused
WARNING = "warning"  # loaded, but a value was blanked or a row rejected
INFO = "info"  # a fact worth knowing (decoding, estimates, skipped files)


@dataclass(frozen=True)
class Issue:
    """One finding about the source data."""

    severity: str
    file: str
    message: str
    row: int | None = None
    column: str | None = None
    expected: str | None = None
    found: str | None = None
    rejected: bool = False  # the row was left out of the load

    def location(self) -> str:
        """``file, row 12, column AESTDTC`` (the parts that are known)."""
        parts = [self.file or "(load)"]
        if self.row is not None:
            parts.append(f"row {self.row}")
        if self.column:
            parts.append(f"column {self.column}")
        return ", ".join(parts)

    def text(self) -> str:
        """One readable line: location, message, expected and found."""
        line = f"{self.location()}: {self.message}"
        if self.expected is not None:
            line += f"; expected {self.expected}"
        if self.found is not None:
            line += f", found {self.found!r}"
        return line


@dataclass
class ImportReport:
    """All findings of one prepared load, plus rows read and rows staged per table."""

    source_type: str
    issues: list[Issue] = field(default_factory=list)
    rows_read: dict[str, int] = field(default_factory=dict)  # file name -> records read
    rows_staged: dict[str, int] = field(default_factory=dict)  # table -> rows to load

    def add(self, severity: str, file: str, message: str, **details: object) -> None:
        self.issues.append(Issue(severity, file, message, **details))  # type: ignore[arg-type]

    def error(self, file: str, message: str, **details: object) -> None:
        self.add(ERROR, file, message, **details)

    def warning(self, file: str, message: str, **details: object) -> None:
        self.add(WARNING, file, message, **details)

    def info(self, file: str, message: str, **details: object) -> None:
        self.add(INFO, file, message, **details)

    def reject(self, file: str, row: int | None, message: str, **details: object) -> None:
        """A row left out of the load (counted and listed, never silently dropped)."""
        self.add(WARNING, file, message, row=row, rejected=True, **details)

    @property
    def errors(self) -> list[Issue]:
        return [i for i in self.issues if i.severity == ERROR]

    @property
    def warnings(self) -> list[Issue]:
        return [i for i in self.issues if i.severity == WARNING]

    @property
    def refused(self) -> bool:
        """True when at least one error makes the load unsafe."""
        return any(i.severity == ERROR for i in self.issues)

    def rejected_rows(self, file: str | None = None) -> int:
        """Distinct rows rejected (in ``file`` or overall)."""
        rows = {(i.file, i.row) for i in self.issues if i.rejected and (file is None or i.file == file)}
        return len(rows)

    def problem_rows(self, file: str) -> int:
        """Distinct rows of ``file`` with a warning or a rejection (for provenance)."""
        return len({i.row for i in self.issues if i.file == file and i.row is not None and i.severity != INFO})

    def to_frame(self) -> pd.DataFrame:
        """The findings as a table (for the app and ``--report`` files)."""
        columns = ["severity", "file", "row", "column", "message", "expected", "found", "rejected"]
        if not self.issues:
            return pd.DataFrame({c: pd.Series(dtype="object") for c in columns})
        return pd.DataFrame(
            [
                {
                    "severity": i.severity,
                    "file": i.file,
                    "row": i.row,
                    "column": i.column,
                    "message": i.message,
                    "expected": i.expected,
                    "found": i.found,
                    "rejected": i.rejected,
                }
                for i in self.issues
            ],
            columns=columns,
        ).astype({"row": "Int64"})

    def summary_lines(self, max_per_kind: int = 20) -> list[str]:
        """Human summary: rows per table, counts, then the first findings of each kind."""
        lines = []
        if self.rows_staged:
            lines.append("rows per table:")
            width = max(len(t) for t in self.rows_staged)
            lines += [f"  {t:<{width}}  {n:>9,}" for t, n in self.rows_staged.items()]
        counts = Counter(i.severity for i in self.issues)
        lines.append(
            f"{counts[ERROR]} error(s), {counts[WARNING]} warning(s), "
            f"{self.rejected_rows()} rejected row(s), {counts[INFO]} note(s)"
        )
        for severity in (ERROR, WARNING, INFO):
            found = [i for i in self.issues if i.severity == severity]
            if not found:
                continue
            lines.append(f"{severity}s:")
            shown = 0
            for issue in found:
                if shown >= max_per_kind:
                    lines.append(f"  ... and {len(found) - shown} more {severity}(s) (use --report FILE for all)")
                    break
                lines.append("  " + issue.text())
                shown += 1
        return lines


class ImportRefused(Exception):
    """Raised when a load cannot be committed; carries the report that says why."""

    def __init__(self, report: ImportReport):
        self.report = report
        first = report.errors[0].text() if report.errors else "load refused"
        more = len(report.errors) - 1
        super().__init__(first + (f" (and {more} more error(s))" if more > 0 else ""))
