"""``python -m analytics records upgrade|verify|log|bench``: upkeep of the app's records store."""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

from analytics.core.records import RecordsError, RecordsStore, upgrade_to_head
from analytics.core.settings import load_settings, sqlite_url

LOG_COLUMNS = ("seq", "recorded_at", "actor", "action", "object_type", "object_id", "record_hash")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("records", help="the app's records store: upgrade, verify the audit chain, show the log")
    actions = p.add_subparsers(dest="records_command", required=True, metavar="ACTION")
    url_help = "records database URL (default: $CRO_RECORDS_URL, [connections.records] url, data/records.sqlite)"

    up = actions.add_parser("upgrade", help="upgrade the records database to this release's newest revision")
    up.add_argument("--url", help=url_help)
    up.set_defaults(func=run_upgrade)

    verify = actions.add_parser("verify", help="check the audit chain; exit code 1 when it is broken")
    verify.add_argument("--url", help=url_help)
    verify.set_defaults(func=run_verify)

    log = actions.add_parser("log", help="show the latest audit records")
    log.add_argument("--url", help=url_help)
    log.add_argument("--last", type=int, default=20, help="how many records (default 20)")
    log.set_defaults(func=run_log)

    bench = actions.add_parser("bench", help="appends per second with concurrent writers (writes test records)")
    bench.add_argument("--url", help="an EMPTY records database to fill with test records "
                                     "(default: a temporary SQLite file)")
    bench.add_argument("--writers", type=int, default=20, help="concurrent writers (default 20)")
    bench.add_argument("--appends", type=int, default=25, help="appends per writer (default 25)")
    bench.add_argument("--processes", action="store_true", help="writers are processes, not threads")
    bench.set_defaults(func=run_bench)


def _url(args: argparse.Namespace) -> tuple[str, str]:
    if args.url:
        return args.url, "--url"
    settings = load_settings()
    return settings.records_url, settings.records_url_source


def _open(args: argparse.Namespace, upgrade: bool = True) -> RecordsStore | None:
    url, source = _url(args)
    try:
        store = RecordsStore(url, upgrade=upgrade)
    except RecordsError as error:
        print(f"error: {error}", file=sys.stderr)
        return None
    print(f"records store: {store.display_url} (from {source})")
    return store


def run_upgrade(args: argparse.Namespace) -> int:
    store = _open(args, upgrade=False)
    if store is None:
        return 2
    with store:
        before, after = upgrade_to_head(store.engine)
    print(f"revision {before or '(empty)'} -> {after}")
    return 0


def run_verify(args: argparse.Namespace) -> int:
    store = _open(args)
    if store is None:
        return 2
    with store:
        result = store.verify_audit()
    print(result.describe())
    return 0 if result.ok else 1


def run_log(args: argparse.Namespace) -> int:
    store = _open(args)
    if store is None:
        return 2
    with store:
        frame = store.audit_log(last=args.last)
    if frame.empty:
        print("the audit log is empty")
        return 0
    shown = frame.loc[:, list(LOG_COLUMNS)].copy()
    shown["record_hash"] = shown["record_hash"].str.slice(0, 12)
    print(shown.to_string(index=False))
    return 0


def run_bench(args: argparse.Namespace) -> int:
    from analytics.evaluation.records_throughput import measure_appends

    with tempfile.TemporaryDirectory(prefix="cro-records-bench-") as folder:
        url = args.url or sqlite_url(Path(folder) / "records.sqlite")
        try:
            store = RecordsStore(url)
        except RecordsError as error:
            print(f"error: {error}", file=sys.stderr)
            return 2
        with store:
            if not store.audit_log(last=1).empty:
                print(f"error: {store.display_url} already holds audit records; the benchmark writes test "
                      "records, so point it at an empty database", file=sys.stderr)
                return 2
            result = measure_appends(store, args.writers, args.appends, processes=args.processes)
            check = store.verify_audit()
        print(f"records store: {store.display_url}")
        print(f"{result.appends} appends by {result.writers} concurrent writer {result.mode} in "
              f"{result.seconds:.2f} s: {result.appends_per_second:.0f} appends/s "
              f"(each append: one area row + one audit record, one transaction)")
        print(check.describe())
        print(json.dumps(result.as_dict()))
        return 0 if check.ok and check.records == result.appends else 1
