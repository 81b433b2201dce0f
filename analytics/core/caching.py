"""The cache every page-facing analytics function uses.

``st.cache_data`` pickles results and shares them across users and sessions, so a cached function's
arguments must include everything that decides its result: the :class:`~analytics.core.warehouse.Warehouse`
handle (whose token changes when the file is replaced), the :class:`~analytics.core.scope.AccessScope`
and the :class:`~analytics.core.scope.PortfolioFilter`. Outside a Streamlit server (CLI, tests) the same
decorator still caches in memory.

Every function decorated here is *page-facing*: it is listed in :data:`PAGE_FUNCTIONS` (the access
sweep in ``tests/test_access_sweep.py`` calls each one for every kind of user), and for a scope
without subject-level access (``AccessScope.subject_level`` false: a sponsor viewer) it refuses to
return a table that carries subject ids (:class:`SubjectLevelRefused`).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any, TypeVar

import pandas as pd
import streamlit as st

from analytics.core.scope import AccessScope

F = TypeVar("F", bound=Callable[..., object])

CACHE_TTL_SECONDS = 3600
CACHE_MAX_ENTRIES = 512

# Streamlit warns once per call outside a running app; the CLI and tests call these functions directly.
logging.getLogger("streamlit.runtime.caching.cache_data_api").setLevel(logging.ERROR)
logging.getLogger("streamlit.runtime.scriptrunner_utils.script_run_context").setLevel(logging.ERROR)


# Columns that identify one subject: a table carrying any of them is subject-level.
SUBJECT_COLUMNS = frozenset({"subject_id", "usubjid"})
PAGE_FUNCTIONS: list[Callable[..., Any]] = []  # every cached (page-facing) function, in import order


class SubjectLevelRefused(PermissionError):
    """A page-facing function would hand subject-level rows to a scope limited to aggregates."""


def _tables(result: object) -> list[pd.DataFrame]:
    if isinstance(result, pd.DataFrame):
        return [result]
    if isinstance(result, (tuple, list)):
        return [t for item in result for t in _tables(item)]
    if isinstance(result, dict):
        return [t for item in result.values() for t in _tables(item)]
    return []


def check_subject_level(scope: AccessScope | None, result: object, where: str) -> None:
    """Raise :class:`SubjectLevelRefused` when ``scope`` sees aggregates only and ``result`` lists subjects."""
    if scope is None or scope.subject_level:
        return
    for table in _tables(result):
        columns = {str(c).lower() for c in table.columns} | {str(n).lower() for n in table.index.names if n}
        if columns & SUBJECT_COLUMNS:
            raise SubjectLevelRefused(f"{where} returns subject-level rows, which this role may not see")


def _scope_argument(args: tuple, kwargs: dict) -> AccessScope | None:
    for value in (*args, *kwargs.values()):
        if isinstance(value, AccessScope):
            return value
    return None


def cached(func: F) -> F:
    """Cache ``func``'s DataFrame/figure result keyed on all its (small, hashable) arguments.

    The function becomes page-facing (:data:`PAGE_FUNCTIONS`) and honours the scope's
    subject-level rule on whatever it returns.
    """

    @functools.wraps(func)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        result = func(*args, **kwargs)
        check_subject_level(_scope_argument(args, kwargs), result, f"{func.__module__}.{func.__qualname__}")
        return result

    wrapped = st.cache_data(ttl=CACHE_TTL_SECONDS, max_entries=CACHE_MAX_ENTRIES, show_spinner=False)(guarded)
    PAGE_FUNCTIONS.append(wrapped)
    return wrapped  # type: ignore[return-value]
