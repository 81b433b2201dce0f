"""What the target warehouse already holds, read through the access-scoped query path.

Integrity checks (does this study already exist, from which source; which subjects belong to
another study; which keys are already loaded) must see the whole warehouse, whoever runs the load,
so they use a full-access scope; the caller's own scope is checked separately
(:func:`check_scope`). A warehouse that does not exist yet simply holds nothing.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from analytics.importers.report import ERROR, ImportReport
from analytics.importers.shrink import Counts, as_counts, count_sql
from analytics.core.scope import AccessScope
from analytics.core.warehouse import Warehouse

_INTEGRITY = AccessScope.full_access(blinded=True)
# Row counts only (the shrink guard counts restricted tables too; no value is read from them).
_COUNTING = AccessScope.full_access(blinded=False)


class WarehouseState:
    """Read-only look-ups into the warehouse a load targets."""

    def __init__(self, db_path: Path | str | None):
        self.db_path = Path(db_path) if db_path else None
        self._warehouse = Warehouse.open(self.db_path) if self.db_path and self.db_path.exists() else None

    @property
    def exists(self) -> bool:
        return self._warehouse is not None

    def studies(self, study_ids: list[str]) -> pd.DataFrame:
        """study_id, sponsor_id, data_source of the given studies that exist."""
        if not self._warehouse or not study_ids:
            return pd.DataFrame(columns=["study_id", "sponsor_id", "data_source"])
        return self._warehouse.query(
            _INTEGRITY,
            "SELECT study_id, sponsor_id, data_source FROM scoped_studies WHERE list_contains($ids, study_id)",
            {"ids": sorted(set(study_ids))},
        )

    def subject_studies(self, subject_ids: list[str]) -> pd.DataFrame:
        """subject_id, study_id of the given subjects that exist (in any study)."""
        if not self._warehouse or not subject_ids:
            return pd.DataFrame(columns=["subject_id", "study_id"])
        return self._warehouse.query(
            _INTEGRITY,
            "SELECT su.subject_id, su.study_id FROM subjects su JOIN scoped_studies USING (study_id) "
            "WHERE list_contains($ids, su.subject_id)",
            {"ids": sorted(set(subject_ids))},
        )

    def study_row_counts(self, study_ids: list[str]) -> Counts:
        """Rows per study table (per domain for measurements) of the given studies, now."""
        if not self._warehouse or not study_ids:
            return {}
        return as_counts(self._warehouse.query(_COUNTING, count_sql(scoped=True), {"ids": sorted(set(study_ids))}))

    def sponsors(self) -> pd.DataFrame:
        """sponsor_id, name of every sponsor (reference data)."""
        if not self._warehouse:
            return pd.DataFrame(columns=["sponsor_id", "name"])
        return self._warehouse.query(_INTEGRITY, "SELECT sponsor_id, name FROM sponsors ORDER BY sponsor_id")

    def site_studies(self, site_ids: list[str]) -> pd.DataFrame:
        """site_id, study_id, sponsor_id of every study using the given institutions (any sponsor)."""
        if not self._warehouse or not site_ids:
            return pd.DataFrame(columns=["site_id", "study_id", "sponsor_id"])
        return self._warehouse.query(
            _INTEGRITY,
            "SELECT DISTINCT ss.site_id, ss.study_id, st.sponsor_id FROM study_sites ss JOIN scoped_studies st "
            "USING (study_id) WHERE list_contains($ids, ss.site_id)",
            {"ids": sorted(set(site_ids))},
        )

    def keys(self, table: str) -> pd.DataFrame:
        """Key columns of an importable table as they exist now (used for reference checks)."""
        if not self._warehouse:
            return pd.DataFrame()
        return self._warehouse.query(_INTEGRITY, _KEY_QUERIES[table])


# Constant texts over the scoped relations (full access: integrity checks see every row).
_KEY_QUERIES = {
    "sponsors": "SELECT sponsor_id FROM sponsors",
    "countries": "SELECT country_code FROM countries",
    "sites": "SELECT site_id FROM sites",
    "studies": "SELECT study_id, sponsor_id, data_source FROM scoped_studies",
    "study_sites": "SELECT study_site_id, study_id FROM study_sites JOIN scoped_studies USING (study_id)",
    "subjects": "SELECT subject_id, study_id, study_site_id FROM subjects JOIN scoped_studies USING (study_id)",
    "visits": "SELECT visit_id, study_id, subject_id FROM visits JOIN scoped_studies USING (study_id)",
    "quality_events": "SELECT quality_event_id, study_id FROM quality_events JOIN scoped_studies USING (study_id)",
}


def in_scope(scope: AccessScope, sponsor_ids: pd.Series, study_ids: pd.Series) -> pd.Series:
    """Per row: whether the study (of that sponsor) is one ``scope`` may see."""
    keep = pd.Series(True, index=sponsor_ids.index)
    if scope.sponsor_ids is not None:
        keep &= sponsor_ids.isin(scope.sponsor_ids)
    if scope.study_ids is not None:
        keep &= study_ids.isin(scope.study_ids)
    return keep


def check_shared_rows(report: ImportReport, scope: AccessScope | None, tables: dict[str, pd.DataFrame],
                      state: WarehouseState) -> None:
    """Refuse a load by a user limited to some sponsors, studies or sites that would change rows others use.

    Sponsors' rows (``sponsors``) of sponsors outside the scope, institutions (``sites``) that a study
    outside the scope also uses, and study-site rows outside a site-limited scope are errors: changing
    them would change what other sponsors' studies show. A full-access loader (an administrator, the
    command line) may change them.
    """
    if scope is None or scope.is_full:
        return
    sponsors = tables.get("sponsors")
    if sponsors is not None and len(sponsors) and scope.sponsor_ids is not None:
        ids = sponsors["sponsor_id"].astype("string")
        report.add_rows(ERROR, sponsors, (~ids.isin(scope.sponsor_ids)).fillna(True),
                        "you may not add or change a sponsor outside your access", column="sponsor_id",
                        expected="one of " + ", ".join(sorted(scope.sponsor_ids)), found=ids)
    sites = tables.get("sites")
    if sites is not None and len(sites):
        ids = sites["site_id"].astype("string")
        users = state.site_studies(list(ids.dropna().unique()))
        foreign = users[~in_scope(scope, users["sponsor_id"], users["study_id"])]
        report.add_rows(ERROR, sites, ids.isin(foreign["site_id"]).fillna(False),
                        "this institution is also a site of studies outside your access; an administrator must "
                        "change it", column="site_id", expected="an institution only your studies use", found=ids)
    if scope.study_site_ids is not None:
        for name, frame in tables.items():
            if "study_site_id" in frame.columns and len(frame):
                ids = frame["study_site_id"].astype("string")
                report.add_rows(ERROR, frame, (ids.notna() & ~ids.isin(scope.study_site_ids)).fillna(False),
                                "you may not load data for this site", column="study_site_id",
                                expected="one of your sites", found=ids)


def check_scope(report: ImportReport, scope: AccessScope | None, sponsor_ids: set[str], study_ids: set[str]) -> None:
    """Refuse a load that would write studies or sponsors outside the user's access scope."""
    if scope is None:
        return
    if scope.sponsor_ids is not None:
        for sponsor in sorted(sponsor_ids - set(scope.sponsor_ids)):
            report.error("(load)", "you may not load data for this sponsor",
                         expected="one of " + ", ".join(sorted(scope.sponsor_ids)), found=sponsor)
    if scope.study_ids is not None:
        for study in sorted(study_ids - set(scope.study_ids)):
            report.error("(load)", "you may not load data for this study",
                         expected="one of " + ", ".join(sorted(scope.study_ids)), found=study)
