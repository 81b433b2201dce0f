"""What a facts query is given: the warehouse, the user's scope, the document's subject and period."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import pandas as pd

from analytics.core.scope import AccessScope
from analytics.core.warehouse import Warehouse


class SubjectUnavailable(LookupError):
    """The subject (site, study, CAPA, ...) is unknown or outside the user's scope."""


@dataclass(frozen=True)
class FactContext:
    """One facts query's inputs.

    Attributes:
        warehouse, scope: where to read and what the user may see (every query is scoped).
        subject: what the document is about (a study-site id, study id, ``sponsor:SP01``, CAPA id or
            therapeutic area; the document type says which).
        period_days: the reporting period, ending at the as-of date.
        as_of: the data's as-of date.
    """

    warehouse: Warehouse
    scope: AccessScope
    subject: str
    period_days: int
    as_of: dt.date

    @property
    def period_start(self) -> dt.date:
        return self.as_of - dt.timedelta(days=self.period_days)

    def query(self, sql: str, **params: object) -> pd.DataFrame:
        """A scoped query with the period's dates as ``$as_of`` and ``$period_start``."""
        return self.warehouse.query(self.scope, sql, {"as_of": self.as_of, "period_start": self.period_start,
                                                      **params})

    def one(self, sql: str, **params: object) -> pd.Series:
        """The single row of a scoped query, or :class:`SubjectUnavailable` when there is none."""
        frame = self.query(sql, **params)
        if frame.empty:
            raise SubjectUnavailable(f"'{self.subject}' is not available to you")
        return frame.iloc[0]
