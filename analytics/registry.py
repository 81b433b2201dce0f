"""Every derived result of the workbench, in refresh order (see :mod:`analytics.core.derived`).

Adding a precomputed result is declaring its tables in :mod:`analytics.core.schema` and its
:class:`~analytics.core.derived.DerivedResult` in its area, then listing it here; build, import,
migrate and ``python -m analytics refresh`` then keep it current.
"""

from __future__ import annotations

from analytics.capa.results import CAPA_THEMES_RESULT
from analytics.core.derived import DerivedResult
from analytics.enrollment.results import ENROLLMENT_RESULT
from analytics.feasibility.results import FEASIBILITY_MODEL_RESULT
from analytics.kri.results import ATYPICAL_RESULT, KRI_RESULT
from analytics.quality.results import FINDINGS_RESULT, SIGNALS_RESULT
from analytics.recruitment.results import RECRUITMENT_CRITERIA_RESULT

REGISTRY: tuple[DerivedResult, ...] = (KRI_RESULT, ATYPICAL_RESULT, ENROLLMENT_RESULT, FINDINGS_RESULT, SIGNALS_RESULT,
                                     CAPA_THEMES_RESULT, FEASIBILITY_MODEL_RESULT,
                                     RECRUITMENT_CRITERIA_RESULT)


def result(name: str) -> DerivedResult:
    """The registered result called ``name``."""
    for entry in REGISTRY:
        if entry.name == name:
            return entry
    raise KeyError(f"unknown derived result {name!r}; known: {', '.join(r.name for r in REGISTRY)}")
