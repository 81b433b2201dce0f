"""``python -m analytics import sdtm|ctgov|tables``: validate source files and load them atomically.

Progress goes to stderr; the summary (rows per table, errors, warnings, rejected rows) to stdout.
Exit codes: 0 loaded, 1 refused (the warehouse is unchanged), 2 usage error.
"""

from __future__ import annotations

import argparse
import getpass
import resource
import sys
import time
from datetime import date
from pathlib import Path

from analytics.importers.report import ImportRefused
from analytics.importers.shrink import MAX_SHRINK_SHARE
from analytics.importers.sources import DEFAULT_MAX_FILE_MB, Limits
from analytics.importers.staging import PreparedLoad, commit
from analytics.core.warehouse import default_db_path

EXIT_REFUSED = 1


def _progress(message: str) -> None:
    print(f"  … {message}", file=sys.stderr, flush=True)


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--db", type=Path, default=None, help="warehouse file (default: $CRO_WAREHOUSE or "
                                                              "data/warehouse.duckdb)")
    parser.add_argument("--max-file-mb", type=float, default=DEFAULT_MAX_FILE_MB,
                        help=f"refuse files larger than this (default {DEFAULT_MAX_FILE_MB} MB)")
    parser.add_argument("--dry-run", action="store_true", help="validate and report only; write nothing")
    parser.add_argument("--report", type=Path, default=None, help="also write every finding to this CSV file")


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("import", help="load SDTM, ClinicalTrials.gov or operational files",
                                   description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    kinds = parser.add_subparsers(dest="kind", required=True, metavar="KIND")

    sdtm = kinds.add_parser("sdtm", help="a folder of SDTM datasets (XPORT v5/v8, CSV, Dataset-JSON) as one study")
    sdtm.add_argument("folder", type=Path)
    sdtm.add_argument("--study-id", default=None, help="warehouse study id (default: DM.STUDYID)")
    sdtm.add_argument("--sponsor", default="Imported", help="existing sponsor id or name, or a new sponsor's name")
    sdtm.add_argument("--therapeutic-area", default=None, help="therapeutic area to record (SDTM has none)")
    sdtm.add_argument("--default-country", default=None, help="country for subjects without DM.COUNTRY")
    sdtm.add_argument("--skip-foreign-rows", action="store_true",
                      help="leave out (and count) rows whose STUDYID is not DM's or whose USUBJID DM does not list, "
                           "instead of refusing the load")
    sdtm.add_argument("--allow-shrink", action="store_true",
                      help="confirm a re-import that removes more than "
                           f"{MAX_SHRINK_SHARE:.0%} of the study's rows in a table or domain")
    _common(sdtm)
    sdtm.set_defaults(func=_run_sdtm)

    ctgov = kinds.add_parser("ctgov", help="a ClinicalTrials.gov Download-CSV or API v2 JSON file")
    ctgov.add_argument("file", type=Path)
    ctgov.add_argument("--therapeutic-area", default=None, help="therapeutic area to record for these trials")
    _common(ctgov)
    ctgov.set_defaults(func=_run_ctgov)

    prescreen = kinds.add_parser("prescreen", help="a site's pre-screening list: FHIR R4 bundles (.json) or CSV files "
                                                   "(see data/PRESCREEN_CONTRACT.md), de-identified on import")
    prescreen.add_argument("source", type=Path, help="a FHIR bundle, or a folder of bundles or of CSV files")
    prescreen.add_argument("--study-site-id", required=True, help="the study-site whose pool this is (replaced)")
    prescreen.add_argument("--screening-date", type=date.fromisoformat, default=date.today(),
                           help="the date the list was drawn, YYYY-MM-DD (ages and time windows count from it)")
    _common(prescreen)
    prescreen.set_defaults(func=_run_prescreen)

    tables = kinds.add_parser("tables", help="a folder of operational CSV/Parquet files (see data/IMPORT_CONTRACT.md)")
    tables.add_argument("folder", type=Path)
    _common(tables)
    tables.set_defaults(func=_run_tables)


def _peak_mib() -> float:
    """Peak resident memory of this process so far (MiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _finish(load: PreparedLoad, args: argparse.Namespace, started: float) -> int:
    db = args.db or default_db_path()
    if args.report:
        load.report.to_frame().to_csv(args.report, index=False)
    for line in load.report.summary_lines():
        print(line)
    checked = f"validated in {time.perf_counter() - started:.1f} s, peak memory {_peak_mib():,.0f} MiB"
    if load.report.refused:
        print(f"REFUSED: nothing was loaded; {db} is unchanged ({checked}).")
        return EXIT_REFUSED
    if getattr(args, "allow_shrink", False):
        load.confirm_shrink()
    if args.dry_run:
        print(f"dry run: {load.description} would be loaded into {db} ({checked}).")
        return 0
    if load.needs_confirmation:
        print("REFUSED: the re-import would remove more than "
              f"{MAX_SHRINK_SHARE:.0%} of the study's rows in:")
        for shrink in load.shrinks:
            print(f"  {shrink.text()}")
        print(f"nothing was loaded; {db} is unchanged. Re-run with --allow-shrink to confirm.")
        return EXIT_REFUSED
    from analytics.core.records import RecordsError
    from analytics.frame.access import records_store

    try:
        records_store()  # a load that cannot be recorded is not made
    except RecordsError as error:
        print(f"REFUSED: {error}; every load is recorded in the audit trail, so {db} is unchanged.")
        return EXIT_REFUSED
    try:
        result = commit(load, db, _progress)
    except ImportRefused as refused:
        _audit(load, db, "refused")
        print(f"REFUSED: {refused}; {db} is unchanged.")
        return EXIT_REFUSED
    _audit(load, db, "loaded", result.seconds)
    print(f"loaded {load.description} into {db} in {time.perf_counter() - started:.1f} s "
          f"(commit {result.seconds:.1f} s), peak memory {_peak_mib():,.0f} MiB.")
    for outcome in result.refreshed:
        print(f"  derived {outcome.describe()}")
    return 0


def _audit(load: PreparedLoad, db: Path, outcome: str, seconds: float | None = None) -> None:
    """Every load from the command line is an audit record too (the actor is the operating-system user)."""
    from analytics.core.scope import AccessScope
    from analytics.frame.access import audit_load

    audit_load(f"cli:{getpass.getuser()}", AccessScope.full_access(), db, load, outcome, seconds)


def _run_sdtm(args: argparse.Namespace) -> int:
    from analytics.importers.sdtm import SdtmOptions, prepare_sdtm

    started = time.perf_counter()
    options = SdtmOptions(study_id=args.study_id, sponsor=args.sponsor, therapeutic_area=args.therapeutic_area,
                          default_country=args.default_country, limits=Limits.from_megabytes(args.max_file_mb),
                          skip_foreign_rows=args.skip_foreign_rows)
    load = prepare_sdtm(args.folder, args.db or default_db_path(), options, _progress)
    return _finish(load, args, started)


def _run_ctgov(args: argparse.Namespace) -> int:
    from analytics.importers.ctgov import prepare_ctgov

    started = time.perf_counter()
    load = prepare_ctgov(args.file, args.therapeutic_area, Limits.from_megabytes(args.max_file_mb), _progress)
    return _finish(load, args, started)


def _run_tables(args: argparse.Namespace) -> int:
    from analytics.importers.tables import prepare_tables

    started = time.perf_counter()
    load = prepare_tables(args.folder, args.db or default_db_path(), Limits.from_megabytes(args.max_file_mb),
                          None, _progress)
    return _finish(load, args, started)


def _run_prescreen(args: argparse.Namespace) -> int:
    from analytics.importers.prescreen import prepare_prescreen

    started = time.perf_counter()
    load = prepare_prescreen(args.source, args.db or default_db_path(), args.study_site_id, args.screening_date,
                             Limits.from_megabytes(args.max_file_mb), _progress)
    return _finish(load, args, started)
