"""The frame: who the user is, the pages their role may open, and the global filters in the URL."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from analytics.frame import identity
from analytics.portfolio import overview as portfolio
from analytics.frame.navigation import pages_for
from analytics.core.scope import PortfolioFilter
from analytics.frame.session import PageContext, build_context, set_context
from analytics.core.warehouse import WarehouseError

MAX_SITE_OPTIONS = 1500  # beyond this a study must be chosen before sites (keeps the widget light)


def _legend(labels: dict[str, str], limit: int = 40) -> str:
    """Help text naming the ids (the URL carries ids, so the widgets show ids)."""
    lines = [f"- {key}: {value}" for key, value in list(labels.items())[:limit]]
    if len(labels) > limit:
        lines.append(f"- ... and {len(labels) - limit} more")
    return "\n".join(lines)


def _sidebar_filters(ctx: PageContext, options: pd.DataFrame) -> PortfolioFilter:
    """Filter widgets bound to the URL; options only ever contain what the user may see."""
    sb = st.sidebar
    sponsors = options.drop_duplicates("sponsor_id").set_index("sponsor_id")["sponsor_name"].to_dict()
    chosen_sponsors = sb.multiselect(
        "Sponsor", list(sponsors), key="sponsor", help=_legend(sponsors),
        bind="query-params", placeholder="All sponsors",
    )
    pool = options[options["sponsor_id"].isin(chosen_sponsors)] if chosen_sponsors else options
    studies = pool.drop_duplicates("study_id").set_index("study_id")["protocol_id"].to_dict()
    chosen_studies = sb.multiselect(
        "Study", list(studies), key="study", help=_legend(studies),
        bind="query-params", placeholder="All studies",
    )
    pool = pool[pool["study_id"].isin(chosen_studies)] if chosen_studies else pool
    countries = pool.dropna(subset=["country_code"]).drop_duplicates("country_code")
    country_names = countries.set_index("country_code")["country_name"].to_dict()
    chosen_countries = sb.multiselect(
        "Country", sorted(country_names), key="country", help=_legend(country_names),
        bind="query-params", placeholder="All countries",
    )
    pool = pool[pool["country_code"].isin(chosen_countries)] if chosen_countries else pool
    sites = pool.dropna(subset=["study_site_id"])
    too_many = len(sites) > MAX_SITE_OPTIONS and not chosen_studies
    if too_many:
        sites = sites[sites["study_site_id"].isin(ctx.filters.study_site_ids)]
    site_labels = sites.set_index("study_site_id")["site_name"].to_dict()
    chosen_sites = sb.multiselect(
        "Site", list(site_labels), key="site", help=_legend(site_labels),
        bind="query-params", placeholder="Choose a study to pick sites" if too_many else "All sites",
    )
    col_from, col_to = sb.columns(2)
    date_from = col_from.date_input("From", value=None, key="from", bind="query-params")
    date_to = col_to.date_input("To", value=None, key="to", bind="query-params")
    if date_from and date_to and date_from > date_to:
        sb.warning("The date range is reversed; it is ignored.")
        date_from = date_to = None
    return PortfolioFilter(
        tuple(chosen_sponsors), tuple(chosen_studies), tuple(chosen_countries), tuple(chosen_sites), date_from, date_to
    )


def main() -> None:
    st.set_page_config(page_title="CRO Workbench", page_icon=":material/monitoring:", layout="wide")
    try:
        ctx = build_context()
    except (WarehouseError, identity.IdentityError) as exc:
        st.error(str(exc))
        st.stop()
    options = portfolio.filter_options(ctx.warehouse, ctx.scope)
    filters = _sidebar_filters(ctx, options)
    ctx = PageContext(ctx.warehouse, ctx.user, filters, ctx.as_of, ctx.problems)
    set_context(ctx)
    for problem in ctx.problems:
        st.warning(problem, icon=":material/link_off:")

    st.sidebar.caption(
        f"Signed in as **{ctx.user.name}** · {ctx.user.role.label}"
        + (" · blinded" if ctx.scope.blinded else " · unblinded")
    )
    st.sidebar.caption(portfolio.as_of_label(ctx.as_of))
    allowed = pages_for(ctx.user.role)
    pages = [
        st.Page(p.path, title=p.title, icon=p.icon, url_path=p.url_path, default=(i == 0))
        for i, p in enumerate(allowed)
    ]
    st.navigation(pages, position="top").run()


if __name__ == "__main__":
    main()
