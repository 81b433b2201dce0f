"""The cache every page-facing analytics function uses.

``st.cache_data`` pickles results and shares them across users and sessions, so a cached function's
arguments must include everything that decides its result: the :class:`~analytics.core.warehouse.Warehouse`
handle (whose token changes when the file is replaced), the :class:`~analytics.core.scope.AccessScope`
and the :class:`~analytics.core.scope.PortfolioFilter`. Outside a Streamlit server (CLI, tests) the same
decorator still caches in memory.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TypeVar

import streamlit as st

F = TypeVar("F", bound=Callable[..., object])

CACHE_TTL_SECONDS = 3600
CACHE_MAX_ENTRIES = 512

# Streamlit warns once per call outside a running app; the CLI and tests call these functions directly.
logging.getLogger("streamlit.runtime.caching.cache_data_api").setLevel(logging.ERROR)
logging.getLogger("streamlit.runtime.scriptrunner_utils.script_run_context").setLevel(logging.ERROR)


def cached(func: F) -> F:
    """Cache ``func``'s DataFrame/figure result keyed on all its (small, hashable) arguments."""
    return st.cache_data(ttl=CACHE_TTL_SECONDS, max_entries=CACHE_MAX_ENTRIES, show_spinner=False)(func)  # type: ignore[return-value]
