"""What an import found: errors (the load is refused), warnings and rejected rows, with locations.

Every problem names the file, the row (1 = first record after the header) and the column, what
was expected and what was found, so a user can fix the source without guessing.

The report stays small whatever the input: findings are grouped by rule (severity, file, message,
column); every occurrence is counted but only the first :data:`MAX_EXAMPLES_PER_RULE` of a rule
are kept as :class:`Issue` objects. Checks hand over whole masks (:meth:`ImportReport.add_rows`),
so a file with millions of bad rows costs a count, not millions of Python objects.

For a blinded loader the report never carries arm-revealing values: :meth:`ImportReport.redact`
hides what was expected and found for the files and columns it names (messages are constant texts).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

ERROR = "error"  # the load is refused
WARNING = "warning"  # loaded, but a value was blanked or a row rejected
INFO = "info"  # a fact worth knowing (decoding, estimates, skipped files)

FILE, ROW = "_file", "_row"  # bookkeeping columns: every staged row points at its source record
MAX_EXAMPLES_PER_RULE = 20  # issues kept per (severity, file, message, column); all are counted
REDACTED = "(hidden: treatment-revealing value, you are blinded)"

RuleKey = tuple[str, str, str, str | None]


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

    @property
    def rule(self) -> RuleKey:
        return (self.severity, self.file, self.message, self.column)

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
class DatasetCounts:
    """Rows of one source dataset, as a data manager counts them in their own system."""

    file: str
    domain: str  # SDTM domain, warehouse table or "ClinicalTrials.gov"
    read: int
    loaded: int | None  # source rows that reached the warehouse (None: used as attributes, not rows)
    imputed: int
    rejected: int
    into: str  # where the rows went, in words


@dataclass
class ImportReport:
    """All findings of one prepared load, plus rows read, loaded and rejected per dataset and table."""

    source_type: str
    issues: list[Issue] = field(default_factory=list)  # the first examples of every rule
    totals: Counter = field(default_factory=Counter)  # rule -> occurrences (all of them)
    rows_read: dict[str, int] = field(default_factory=dict)  # file name -> records read
    rows_staged: dict[str, int] = field(default_factory=dict)  # table -> rows to load
    rejected: Counter = field(default_factory=Counter)  # file -> rows left out of the load
    imputed: Counter = field(default_factory=Counter)  # file -> rows with an imputed value
    datasets: dict[str, DatasetCounts] = field(default_factory=dict)  # file -> counts
    _redacted_files: set[str] = field(default_factory=set)
    _redacted_columns: set[str] = field(default_factory=set)
    _redact_all: int = 0

    # --- recording ---------------------------------------------------------------------------

    def redact(self, files: Iterable[str] = (), columns: Iterable[str] = ()) -> None:
        """From now on, hide expected/found values of findings in these files or columns."""
        self._redacted_files |= set(files)
        self._redacted_columns |= {c.upper() for c in columns}

    @contextmanager
    def redacting(self, active: bool = True) -> Iterator[None]:
        """Hide expected/found values of every finding recorded inside the block (when ``active``)."""
        self._redact_all += int(active)
        try:
            yield
        finally:
            self._redact_all -= int(active)

    def _hidden(self, file: str, column: str | None) -> bool:
        if self._redact_all or file in self._redacted_files:
            return True
        return bool(column) and any(part.strip().upper() in self._redacted_columns for part in column.split(","))

    def _keep(self, issue: Issue) -> None:
        if self._hidden(issue.file, issue.column):
            issue = replace(issue, expected=None if issue.expected is None else REDACTED,
                            found=None if issue.found is None else REDACTED)
        self.issues.append(issue)

    def add(self, severity: str, file: str, message: str, **details: object) -> None:
        issue = Issue(severity, file, message, **details)  # type: ignore[arg-type]
        self.totals[issue.rule] += 1
        if issue.rejected:
            self.rejected[file] += 1
        if self.totals[issue.rule] <= MAX_EXAMPLES_PER_RULE:
            self._keep(issue)

    def error(self, file: str, message: str, **details: object) -> None:
        self.add(ERROR, file, message, **details)

    def warning(self, file: str, message: str, **details: object) -> None:
        self.add(WARNING, file, message, **details)

    def info(self, file: str, message: str, **details: object) -> None:
        self.add(INFO, file, message, **details)

    def reject(self, file: str, row: int | None, message: str, **details: object) -> None:
        """A row left out of the load (counted and listed, never silently dropped)."""
        self.add(WARNING, file, message, row=row, rejected=True, **details)

    def add_rows(self, severity: str, frame: pd.DataFrame, mask: pd.Series | np.ndarray, message: str, *,
                 column: str | None = None, expected: str | pd.Series | None = None,
                 found: pd.Series | None = None, rejected: bool = False) -> int:
        """One finding for every row of ``frame`` where ``mask`` holds, grouped by source file.

        ``frame`` carries the :data:`FILE` and :data:`ROW` columns; ``found`` (and ``expected``, when
        it differs per row) are aligned with it by position. Only the first examples per rule
        become :class:`Issue` objects; the rest are counted. Returns the number of rows flagged.
        """
        flags = np.asarray(mask, dtype=bool)
        total = int(flags.sum())
        if not total:
            return 0
        positions = np.flatnonzero(flags)
        files = frame[FILE].iloc[positions] if FILE in frame.columns else pd.Series("(load)", index=positions)
        for file in files.unique():
            picked = positions[(files == file).to_numpy(dtype=bool)]
            file = str(file)
            key: RuleKey = (severity, file, message, column)
            already = self.totals[key]
            self.totals[key] += len(picked)
            if rejected:
                self.rejected[file] += len(picked)
            # Only the examples kept become Python objects; the rest is a count.
            shown = picked[: max(MAX_EXAMPLES_PER_RULE - already, 0)]
            if not len(shown):
                continue
            rows = _take(frame[ROW], shown) if ROW in frame.columns else [None] * len(shown)
            values = None if found is None else _take(found, shown)
            wanted = _take(expected, shown) if isinstance(expected, pd.Series) else None
            for k in range(len(shown)):
                value = None if values is None else values[k]
                self._keep(Issue(severity, file, message, row=None if pd.isna(rows[k]) else int(rows[k]), column=column,
                                 expected=str(wanted[k]) if wanted is not None else expected,  # type: ignore[arg-type]
                                 found=None if values is None else ("" if pd.isna(value) else str(value)),
                                 rejected=rejected))
        return total

    def count_imputed(self, frame: pd.DataFrame, mask: pd.Series | np.ndarray) -> None:
        """Count rows of ``frame`` (per source file) whose value was imputed where ``mask`` holds."""
        flags = np.asarray(mask, dtype=bool)
        if flags.any():
            for file, n in pd.Series(frame[FILE].to_numpy()[flags]).value_counts().items():
                self.imputed[str(file)] += int(n)

    # --- reading ------------------------------------------------------------------------------

    @property
    def errors(self) -> list[Issue]:
        """The kept examples of every error rule (see :meth:`count` for totals)."""
        return [i for i in self.issues if i.severity == ERROR]

    @property
    def warnings(self) -> list[Issue]:
        return [i for i in self.issues if i.severity == WARNING]

    def count(self, severity: str) -> int:
        """All findings of a severity, including those not kept as examples."""
        return sum(n for (s, *_), n in self.totals.items() if s == severity)

    @property
    def refused(self) -> bool:
        """True when at least one error makes the load unsafe."""
        return self.count(ERROR) > 0

    def rejected_rows(self, file: str | None = None) -> int:
        """Rows rejected (left out of the load) in ``file`` or overall."""
        return self.rejected[file] if file is not None else sum(self.rejected.values())

    def problem_rows(self, file: str) -> int:
        """Rows of ``file`` left out of the load (recorded in provenance)."""
        return self.rejected_rows(file)

    def to_frame(self) -> pd.DataFrame:
        """The kept findings as a table (for the app and ``--report`` files); ``rule_total`` counts them all."""
        columns = ["severity", "file", "row", "column", "message", "expected", "found", "rejected", "rule_total"]
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
                    "rule_total": self.totals[i.rule],
                }
                for i in self.issues
            ],
            columns=columns,
        ).astype({"row": "Int64"})

    def dataset_frame(self) -> pd.DataFrame:
        """Rows read, loaded, imputed and rejected per source dataset (what the data manager checks)."""
        columns = ["file", "domain", "read", "loaded", "imputed", "rejected", "into"]
        rows = [[d.file, d.domain, d.read, d.loaded, d.imputed, d.rejected, d.into] for d in self.datasets.values()]
        return pd.DataFrame(rows, columns=columns).astype({"loaded": "Int64"})

    def _dataset_lines(self) -> list[str]:
        if not self.datasets:
            return []
        frame = self.dataset_frame()
        shown = frame.assign(loaded=frame["loaded"].map(lambda n: "-" if pd.isna(n) else f"{n:,}"))
        header = ["file", "domain", "read", "loaded", "imputed", "rejected", "into"]
        cells = [[str(r.file), str(r.domain), f"{r.read:,}", r.loaded, f"{r.imputed:,}", f"{r.rejected:,}",
                  str(r.into)] for r in shown.itertuples()]
        widths = [max(len(h), *(len(c[k]) for c in cells)) for k, h in enumerate(header)]
        align = ["<", "<", ">", ">", ">", ">", "<"]
        lines = ["rows per dataset (read = loaded + rejected, unless 'into' says otherwise):"]
        for row in [header, *cells]:
            lines.append("  " + "  ".join(f"{v:{a}{w}}" for v, a, w in zip(row, align, widths)).rstrip())
        return lines

    def summary_lines(self, examples_per_rule: int = 5, max_rules: int = 40) -> list[str]:
        """Human summary: rows per dataset and table, counts, then each rule's first examples and total."""
        lines = self._dataset_lines()
        if self.rows_staged:
            lines.append("rows per table:")
            width = max(len(t) for t in self.rows_staged)
            lines += [f"  {t:<{width}}  {n:>9,}" for t, n in self.rows_staged.items()]
        lines.append(
            f"{self.count(ERROR)} error(s), {self.count(WARNING)} warning(s), "
            f"{self.rejected_rows()} rejected row(s), {self.count(INFO)} note(s)"
        )
        for severity in (ERROR, WARNING, INFO):
            rules = list(dict.fromkeys(i.rule for i in self.issues if i.severity == severity))
            if not rules:
                continue
            lines.append(f"{severity}s:")
            for rule in rules[:max_rules]:
                examples = [i for i in self.issues if i.rule == rule][:examples_per_rule]
                lines += ["  " + i.text() for i in examples]
                more = self.totals[rule] - len(examples)
                if more > 0:
                    lines.append(f"    ... and {more:,} more like this ({self.totals[rule]:,} in all)")
            if len(rules) > max_rules:
                hidden = sum(self.totals[r] for r in rules[max_rules:])
                lines.append(f"  ... and {hidden:,} more {severity}(s) of {len(rules) - max_rules} other kind(s) "
                             "(see --report FILE)")
        return lines


def _take(values: pd.Series | np.ndarray | list, positions: np.ndarray) -> np.ndarray:
    """The values at ``positions`` (by position), as Python objects, without converting the rest."""
    if isinstance(values, pd.Series):
        return values.iloc[positions].to_numpy(dtype=object)
    return np.asarray(values, dtype=object)[positions]


class ImportRefused(Exception):
    """Raised when a load cannot be committed; carries the report that says why."""

    def __init__(self, report: ImportReport):
        self.report = report
        first = report.errors[0].text() if report.errors else "load refused"
        more = report.count(ERROR) - 1
        super().__init__(first + (f" (and {more:,} more error(s))" if more > 0 else ""))
