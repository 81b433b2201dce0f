"""Competition for patients: trials recruiting now in the same condition group and countries.

A trial competes when it is recruiting (or enrolling by invitation) at the as-of date, or about to
(not yet recruiting), shares the chosen condition groups (or matches the condition text), and has
a site in one of the chosen countries. Other filters (phase, sponsor class, years) do not narrow
competition: a Phase 2 trial recruits the same patients as a Phase 3 one.

Per country: competing trials and their sites there (from the records' locations; a record
without locations counts in its listed countries with unknown sites). Per candidate site (an
institution of the portfolio the user may see, in the chosen countries): the competing trials that
list it as a location, matched by facility name (the location text starts with the institution's
name, accents and punctuation aside) in the same country. Registry facility names are written by
each sponsor, so a candidate site can be missed under another spelling: the figure is a floor.
"""

from __future__ import annotations

import pandas as pd

from analytics.feasibility.places import country_code, country_name, facility_key
from analytics.feasibility.trials import TrialSelection, as_of_label, select

RECRUITING_NOW = ("RECRUITING", "ENROLLING_BY_INVITATION")
STARTING = ("NOT_YET_RECRUITING",)
SITE_ACTIVE = ("RECRUITING", "NOT_YET_RECRUITING", "ENROLLING_BY_INVITATION", "ACTIVE_NOT_RECRUITING")
STATUS_AGE_DAYS = 90  # a record's status older than this, against the warehouse's date, is said to be dated


def competing_trials(trials: pd.DataFrame, selection: TrialSelection) -> pd.DataFrame:
    """Trials competing for the selection's patients (see the module docstring)."""
    narrowed = TrialSelection(source=selection.source, groups=selection.groups, condition=selection.condition,
                              countries=selection.countries)
    chosen = select(trials, narrowed)
    return chosen[chosen["status"].isin(RECRUITING_NOW + STARTING)]


def status_date_note(competing: pd.DataFrame, warehouse_as_of: pd.Timestamp) -> str:
    """When the competing trials' statuses were true, for the page: "recruiting" is what each record said
    on its export's date (``as_of_date``), and a trial can have stopped recruiting since an old export."""
    if competing.empty:
        return ""
    dates = pd.to_datetime(competing["as_of_date"])
    note = f"Statuses {as_of_label(dates)}."
    dated = int((dates < pd.Timestamp(warehouse_as_of) - pd.Timedelta(days=STATUS_AGE_DAYS)).sum())
    if dated:
        which = "All of them come" if dated == len(dates) else f"{dated:,} of them come"
        note += (f" {which} from exports over {STATUS_AGE_DAYS} days older than the data ({warehouse_as_of:%d %b %Y}) "
                 "and may have stopped recruiting since: import a current export to refresh them.")
    return note


def competing_sites(sites: pd.DataFrame, competing: pd.DataFrame) -> pd.DataFrame:
    """Locations of competing trials with their country code (sites the record shows closed are left out)."""
    located = sites[sites["nct_id"].isin(competing["nct_id"])].copy()
    status = located["recruitment_status"].astype("string")
    located = located[status.isna() | status.isin(SITE_ACTIVE)]
    located["country_code"] = located["country"].map(country_code)
    return located


def by_country(competing: pd.DataFrame, located: pd.DataFrame, countries: tuple[str, ...]) -> pd.DataFrame:
    """Per country (the chosen ones, or every country with competition): trials and sites competing."""
    pairs = competing[["nct_id", "status", "country_list"]].explode("country_list").dropna(subset=["country_list"])
    pairs = pairs.rename(columns={"country_list": "country_code"})
    if countries:
        pairs = pairs[pairs["country_code"].isin(countries)]
    site_counts = located.groupby(["nct_id", "country_code"]).size().rename("sites").reset_index()
    pairs = pairs.merge(site_counts, on=["nct_id", "country_code"], how="left")
    out = pairs.groupby("country_code").agg(
        recruiting=("status", lambda s: int(s.isin(RECRUITING_NOW).sum())),
        starting=("status", lambda s: int(s.isin(STARTING).sum())),
        sites=("sites", lambda s: int(s.fillna(0).sum())),
        without_locations=("sites", lambda s: int(s.isna().sum())),
    ).reset_index()
    out["country"] = out["country_code"].map(country_name)
    return out.sort_values(["recruiting", "starting"], ascending=False).reset_index(drop=True)


def by_candidate_site(candidates: pd.DataFrame, located: pd.DataFrame, competing: pd.DataFrame) -> pd.DataFrame:
    """Per candidate institution: competing trials listing it (recruiting now, starting) and their NCT numbers.

    ``candidates`` has ``site_id``, ``name``, ``city``, ``country_code``.
    """
    columns = ["site_id", "name", "city", "country_code", "recruiting", "starting", "trials"]
    if candidates.empty:
        return pd.DataFrame(columns=columns)
    status = competing.set_index("nct_id")["status"]
    # Every word prefix of a location's key points at its trial: a candidate matches by one lookup.
    index: dict[tuple[str, str], set[str]] = {}
    for nct, country, facility in zip(located["nct_id"], located["country_code"], located["facility"]):
        words = facility_key(facility).split()
        for end in range(1, len(words) + 1):
            index.setdefault((country, " ".join(words[:end])), set()).add(nct)
    rows = []
    for cand in candidates.itertuples(index=False):
        ncts = sorted(index.get((cand.country_code, facility_key(cand.name)), ()))
        statuses = status.reindex(ncts)
        rows.append({"site_id": cand.site_id, "name": cand.name, "city": cand.city, "country_code": cand.country_code,
                     "recruiting": int(statuses.isin(RECRUITING_NOW).sum()), "starting": int(statuses.isin(STARTING).sum()),
                     "trials": ", ".join(ncts)})
    out = pd.DataFrame(rows, columns=columns)
    return out.sort_values(["recruiting", "starting", "name"], ascending=[False, False, True]).reset_index(drop=True)
