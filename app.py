"""The frame: who the user is, the pages their role may open, and the global filters in the URL.

Everything the frame does is in :mod:`analytics.frame.session` (identity, navigation, the page
declarations of :mod:`analytics.frame.pages`, URL validation and the filter panel), so pages and
tests share one implementation.
"""

from __future__ import annotations

from analytics.frame.session import run_frame

run_frame()
