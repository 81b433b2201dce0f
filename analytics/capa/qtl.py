"""The quality tolerance limit register (ICH E6(R3)): study-level parameters with limits, declared once.

E6(R3) asks the sponsor to pre-specify, for the factors critical to quality, acceptable ranges at
the study level (quality tolerance limits), to watch them during the trial, evaluate every breach
(root cause, CAPA) and summarize them in the clinical study report. Each parameter here is a
:class:`QTLSpec` (a share of subjects: numerator and denominator in SQL over the scoped relations,
a limit and a warning level) run by one engine, :func:`qtl_register`. The current value carries a
Wilson 95% interval; a parameter is *breached* when the value exceeds the limit, *approaching* when
it exceeds the warning level. The limits are the CRO's defaults for studies whose protocol has not
set its own.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from statsmodels.stats.proportion import proportion_confint

from analytics.core.caching import cached
from analytics.core.scope import AccessScope, PortfolioFilter
from analytics.core.warehouse import Warehouse

MIN_SUBJECTS = 10  # fewer subjects in the denominator: not judged


@dataclass(frozen=True)
class QTLSpec:
    """One quality tolerance limit.

    Attributes:
        id: stable id (signal ids, URLs), e.g. ``important_deviations``.
        name: display name.
        definition: what is measured, for the register.
        numerator_label, denominator_label: what is counted.
        limit: the tolerance limit (share, 0-1); above it the QTL is breached.
        warning: the warning level (share); above it the QTL is approaching its limit.
        sql: a SELECT over the scoped relations giving ``study_id``, ``numerator``, ``denominator``.
        rationale: why it is critical to quality.
    """

    id: str
    name: str
    definition: str
    numerator_label: str
    denominator_label: str
    limit: float
    warning: float
    sql: str
    rationale: str

    def __post_init__(self) -> None:
        if not 0 < self.warning <= self.limit < 1:
            raise ValueError(f"{self.id}: need 0 < warning <= limit < 1")


QTLS: tuple[QTLSpec, ...] = (
    QTLSpec(
        "important_deviations", "Subjects with an important protocol deviation",
        "Randomized subjects with at least one important protocol deviation, of all randomized subjects.",
        "Subjects with an important deviation", "Randomized subjects", 0.15, 0.12,
        """
        SELECT s.study_id, count(DISTINCT d.subject_id) AS numerator, count(DISTINCT s.subject_id) AS denominator
        FROM subjects s LEFT JOIN protocol_deviations d ON d.subject_id = s.subject_id AND d.important
        WHERE s.randomization_date IS NOT NULL GROUP BY 1
        """,
        "Important deviations can change the reliability of the results or the safety of subjects."),
    QTLSpec(
        "discontinuation", "Early discontinuation",
        "Randomized subjects who discontinued the study early, of all randomized subjects.",
        "Discontinued subjects", "Randomized subjects", 0.20, 0.16,
        """
        SELECT study_id, count(*) FILTER (WHERE discontinuation_date IS NOT NULL) AS numerator,
               count(*) AS denominator
        FROM subjects WHERE randomization_date IS NOT NULL GROUP BY 1
        """,
        "Dropouts reduce power and can bias the treatment comparison."),
    QTLSpec(
        "missing_primary_endpoint", "Missing primary endpoint data",
        "Randomized subjects whose end-of-treatment visit (the study's last scheduled treatment visit, where "
        "the primary endpoint is assessed) is due by the as-of date but was not completed.",
        "Subjects without the endpoint visit", "Subjects whose endpoint visit is due", 0.20, 0.15,
        """
        SELECT s.study_id,
               count(*) FILTER (WHERE v.visit_id IS NULL) AS numerator, count(*) AS denominator
        FROM subjects s JOIN studies st USING (study_id)
        LEFT JOIN visits v ON v.subject_id = s.subject_id AND v.visit_number = st.planned_visits
             AND v.status = 'Completed'
        WHERE s.randomization_date IS NOT NULL AND st.treatment_duration_days IS NOT NULL
          AND s.randomization_date + st.treatment_duration_days::INTEGER <= $as_of
        GROUP BY 1
        """,
        "The primary analysis needs the endpoint; missing data weaken and may bias it."),
)
QTLS_BY_ID = {q.id: q for q in QTLS}
STATUS_ORDER = ("Breached", "Approaching", "Within limit", "Too few subjects")


def qtl_signal_id(study_id: str, qtl_id: str) -> str:
    """How a CAPA opened from this QTL names its signal (the register links CAPAs by it)."""
    return f"qtl:{study_id}:{qtl_id}"


def _status(value: float, denominator: int, spec: QTLSpec) -> str:
    if denominator < MIN_SUBJECTS:
        return "Too few subjects"
    if value > spec.limit:
        return "Breached"
    return "Approaching" if value > spec.warning else "Within limit"


@cached
def qtl_register(wh: Warehouse, scope: AccessScope, filters: PortfolioFilter) -> pd.DataFrame:
    """One row per study and QTL: value, Wilson 95% interval, limit, warning, status.

    Study-level parameters ignore the country and site filters (a QTL is judged on the whole study).
    """
    frames = []
    study_filters = filters.study_level()
    for spec in QTLS:
        frame = wh.query(scope, spec.sql, {"as_of": wh.as_of()}, study_filters)
        frame = frame.assign(qtl_id=spec.id, qtl=spec.name, limit=spec.limit, warning=spec.warning)
        frames.append(frame)
    register = pd.concat(frames, ignore_index=True)
    register["numerator"] = register["numerator"].astype("int64")
    register["denominator"] = register["denominator"].astype("int64")
    register["value"] = np.where(register["denominator"] > 0, register["numerator"] / register["denominator"].clip(1),
                                 np.nan)
    low, high = proportion_confint(register["numerator"], register["denominator"].clip(lower=1), alpha=0.05,
                                   method="wilson")
    register["low"], register["high"] = np.asarray(low), np.asarray(high)
    register["status"] = [_status(v, d, QTLS_BY_ID[q]) for v, d, q in
                          zip(register["value"], register["denominator"], register["qtl_id"])]
    register["signal_id"] = [qtl_signal_id(s, q) for s, q in zip(register["study_id"], register["qtl_id"])]
    order = {s: i for i, s in enumerate(STATUS_ORDER)}
    return register.sort_values(["status", "study_id", "qtl_id"], key=lambda c: c.map(order) if c.name == "status"
                                else c, ignore_index=True)
