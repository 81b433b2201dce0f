"""The page registry: every page of the workbench, its URL and the key roles refer to.

``app.py`` builds ``st.navigation`` from the pages the user's role allows; pages link to each other
through :func:`links_for`, so a link never points at a page the user cannot open.
"""

from __future__ import annotations

from dataclasses import dataclass

from analytics.frame.identity import Role


@dataclass(frozen=True)
class PageSpec:
    key: str  # the page key roles refer to (analytics.frame.identity.ALL_PAGES)
    path: str
    title: str
    icon: str
    url_path: str
    has_charts: bool = True  # the page always shows at least one chart (browser tests check them)


PAGES: tuple[PageSpec, ...] = (
    PageSpec("overview", "pages/overview.py", "Overview", ":material/dashboard:", "overview"),
    PageSpec("site_performance", "pages/site_performance.py", "Site performance", ":material/leaderboard:",
             "site_performance"),
    PageSpec("rbm", "pages/rbm_heatmap.py", "RBM heatmap", ":material/grid_on:", "rbm_heatmap"),
    PageSpec("data", "pages/data.py", "Data", ":material/database_upload:", "data", has_charts=False),
)


def pages_for(role: Role) -> list[PageSpec]:
    """The pages ``role`` may open, in menu order."""
    return [p for p in PAGES if p.key in role.pages]


def links_for(role: Role, exclude: str) -> list[PageSpec]:
    """Pages to link to from page ``exclude`` for ``role``."""
    return [p for p in pages_for(role) if p.key != exclude]
