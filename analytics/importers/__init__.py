"""Bring your own data: importers for CDISC SDTM, ClinicalTrials.gov exports and operational tables.

Every importer works in two steps so a user can look before anything changes:

1. ``prepare_*`` reads and validates the source files completely (nothing is written) and returns
   a :class:`~analytics.importers.staging.PreparedLoad`: typed rows per warehouse table plus an
   :class:`~analytics.importers.report.ImportReport` of every error, warning and rejected row.
2. :func:`~analytics.importers.staging.commit` loads a prepared load into a copy of the warehouse
   inside one transaction and swaps the copy in atomically; a refused or failing load leaves the
   warehouse file byte-for-byte as it was.

Nothing is lost silently: every finding is counted (the report keeps the first examples of each
rule), every source dataset's rows read, loaded, imputed and rejected are in
``ImportReport.datasets``, and a re-import that would cut a study's rows needs a confirmation
(:mod:`~analytics.importers.shrink`).
"""

from analytics import __version__ as _analytics_version

IMPORTER_VERSION = f"analytics-importers {_analytics_version}/2"  # /2: SV dates kept, AE onsets imputed
