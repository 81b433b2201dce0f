"""Page benchmark: server-side render time per page (cold and warm), slowest analytics calls, memory.

Pages are rendered with Streamlit's AppTest against a given warehouse, as the default user would
see them. "Cold" clears every cache and connection before the page's run; "warm" re-runs the
page with caches filled (what a monitor clicking around a meeting experiences). Each figure is the
median of several runs. Nothing is built: the warehouse must exist.
"""

from __future__ import annotations

import os
import resource
import statistics
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import streamlit as st

from analytics.core import warehouse

APP_PATH = Path(__file__).resolve().parents[2] / "app.py"
WARM_TARGET_SECONDS = 0.5
COLD_TARGET_SECONDS = 1.5
BROWSER_TARGET_SECONDS = 2.5  # navigation to the last chart drawn, deep link on a warm server
BROWSER_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                "--disable-sync", "--no-first-run"]


@dataclass
class PageResult:
    page: str
    title: str
    cold_seconds: float
    warm_seconds: float
    cold_runs: list[float]
    warm_runs: list[float]
    errors: list[str] = field(default_factory=list)
    cold_cpu_seconds: float = 0.0  # process CPU time (all threads): less sensitive to other load than wall time
    warm_cpu_seconds: float = 0.0

    @property
    def meets_targets(self) -> bool:
        return not self.errors and self.warm_seconds < WARM_TARGET_SECONDS and self.cold_seconds < COLD_TARGET_SECONDS


def _views(db: Path) -> list[tuple[str, str, dict[str, str]]]:
    """(page path, label, query parameters): every page, plus the RBM drill-down monitors open."""
    from analytics.frame.pages import PAGES
    from analytics.core.scope import AccessScope

    views = [(p.path, p.title, {}) for p in PAGES]  # every declared page, with no edit here
    busiest = warehouse.Warehouse.open(db).query(
        AccessScope.full_access(),
        "SELECT s.study_site_id FROM subjects s JOIN scoped_sites USING (study_site_id) "
        "GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT 1",
    )
    rbm = next((p for p in PAGES if p.key == "rbm"), None)
    if rbm and len(busiest):
        views.append((rbm.path, f"{rbm.title} drill-down", {"focus": busiest["study_site_id"][0], "kri": "ae_rate"}))
    return views


CPU_TIMES: list[float] = []  # process CPU seconds of each timed run (all threads), beside the wall time


def _timed_run(at, log: Callable[[str], None]) -> tuple[float, list[str]]:
    started, cpu = time.perf_counter(), time.process_time()
    at.run()
    seconds = time.perf_counter() - started
    CPU_TIMES.append(time.process_time() - cpu)
    errors = [str(e.value)[:300] for e in at.exception]
    errors += [f"error element: {e.value}"[:300] for e in at.error]
    if errors:
        log(f"    errors: {errors}")
    return seconds, errors


def bench_pages(db: Path, runs: int = 5, user: str | None = None, log: Callable[[str], None] = print) -> dict:
    """Render every page of the frame ``runs`` times cold and warm; return the figures as a dict."""
    from streamlit.logger import set_log_level
    from streamlit.testing.v1 import AppTest

    set_log_level("error")  # AppTest outside a server logs a line per cache call otherwise

    saved_env = {k: os.environ.get(k) for k in (warehouse.DB_ENV_VAR, "CRO_USER")}
    os.environ[warehouse.DB_ENV_VAR] = str(db)
    if user:
        os.environ["CRO_USER"] = user
    calls: dict[str, list[float]] = defaultdict(list)
    warehouse.QUERY_TIMINGS = calls
    results: list[PageResult] = []
    try:
        warehouse.Warehouse.open(db)  # fail early with the build instruction if absent
        for path, title, params in _views(db):
            log(f"{title} ({path}{'?' if params else ''}{'&'.join(f'{k}={v}' for k, v in params.items())})")
            cold, warm, errors = [], [], []
            CPU_TIMES.clear()
            for _ in range(runs):
                at = AppTest.from_file(str(APP_PATH), default_timeout=300)
                at.run()
                at.switch_page(path)
                for key, value in params.items():
                    at.query_params[key] = value
                st.cache_data.clear()
                warehouse.close_all()
                seconds, errs = _timed_run(at, log)
                cold.append(seconds)
                errors += errs
            for _ in range(runs):
                seconds, errs = _timed_run(at, log)
                warm.append(seconds)
                errors += errs
            result = PageResult(path, title, statistics.median(cold), statistics.median(warm), cold, warm,
                                sorted(set(errors)), statistics.median(CPU_TIMES[:runs]),
                                statistics.median(CPU_TIMES[runs:]))
            log(f"    cold {result.cold_seconds:.3f} s, warm {result.warm_seconds:.3f} s "
                f"(CPU {result.cold_cpu_seconds:.3f} / {result.warm_cpu_seconds:.3f} s)")
            results.append(result)
    finally:
        warehouse.QUERY_TIMINGS = None
        for key, value in saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    slowest = sorted(
        ({"call": name, "calls": len(t), "max_seconds": max(t), "median_seconds": statistics.median(t)}
         for name, t in calls.items()),
        key=lambda r: r["max_seconds"], reverse=True,
    )[:10]
    info = warehouse.Warehouse.open(db).info()
    return {
        "load_average": os.getloadavg(),
        "warehouse": str(db),
        "preset": info.get("preset"),
        "runs_per_figure": runs,
        "targets": {"warm_seconds": WARM_TARGET_SECONDS, "cold_seconds": COLD_TARGET_SECONDS},
        "pages": [asdict(r) | {"meets_targets": r.meets_targets} for r in results],
        "slowest_analytics_calls": slowest,
        "peak_memory_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def bench_browser(db: Path, user: str | None, runs: int = 3, log: Callable[[str], None] = print) -> list[dict]:
    """Per view: seconds from navigation to idle with every chart drawn, in headless Chromium.

    A real ``streamlit run`` serves the app; each view is opened once to warm the server's caches,
    then ``runs`` times as a deep link in a fresh tab (the median is reported).
    """
    import shutil
    import urllib.parse

    from analytics.evaluation.app_server import app_server

    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        log("no chromium found: browser timings skipped")
        return []
    from playwright.sync_api import sync_playwright

    results = []
    with app_server(db, user or None) as (base, _):
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=chromium, args=BROWSER_ARGS)
            from analytics.frame.pages import PAGES

            for path, title, params in _views(db):
                spec = next(s for s in PAGES if s.path == path)
                url = f"{base}/{spec.url_path}" + (f"?{urllib.parse.urlencode(params)}" if params else "")
                times = []
                for attempt in range(runs + 1):  # the first load warms the server
                    page = browser.new_page(viewport={"width": 1440, "height": 900})
                    started = time.perf_counter()
                    page.goto(url)
                    page.wait_for_function(
                        """() => {
                            const app = document.querySelector('[data-testid="stApp"]');
                            if (!app || app.getAttribute('data-test-script-state') !== 'notRunning') return false;
                            if (document.querySelector('[data-testid="stSkeleton"]')) return false;
                            const charts = [...document.querySelectorAll('[data-testid="stPlotlyChart"]')];
                            return charts.every(c => c.querySelector('.main-svg'));
                        }""", timeout=120_000)
                    if attempt:
                        times.append(time.perf_counter() - started)
                    page.close()
                median = statistics.median(times)
                log(f"{title}: {median:.2f} s in the browser (deep link, warm server)")
                results.append({"page": path, "title": title, "browser_seconds": median, "browser_runs": times,
                                "meets_target": median < BROWSER_TARGET_SECONDS})
            browser.close()
    return results


def format_report(report: dict) -> str:
    """The benchmark as a readable table."""
    lines = [
        f"Warehouse {report['warehouse']} (preset {report['preset']}), median of {report['runs_per_figure']} runs, "
        f"load average {', '.join(f'{x:.1f}' for x in report.get('load_average', ()))} at the end",
        f"{'page':<28} {'cold s':>8} {'warm s':>8} {'cold CPU':>9} {'warm CPU':>9}  targets (cold < "
        f"{COLD_TARGET_SECONDS:g} s, warm < {WARM_TARGET_SECONDS:g} s)",
    ]
    for p in report["pages"]:
        verdict = "ok" if p["meets_targets"] else ("ERRORS" if p["errors"] else "MISSED")
        lines.append(f"{p['title']:<28} {p['cold_seconds']:>8.3f} {p['warm_seconds']:>8.3f} "
                     f"{p.get('cold_cpu_seconds', 0):>9.3f} {p.get('warm_cpu_seconds', 0):>9.3f}  {verdict}")
    if report.get("browser"):
        lines.append("")
        lines.append(f"{'page (headless Chromium)':<36} {'seconds':>8}  target < {BROWSER_TARGET_SECONDS:g} s "
                     "(deep link, warm server, to the last chart drawn)")
        for b in report["browser"]:
            lines.append(f"{b['title']:<36} {b['browser_seconds']:>8.2f}  {'ok' if b['meets_target'] else 'MISSED'}")
    lines.append("")
    lines.append(f"{'slowest analytics calls':<48} {'calls':>6} {'max s':>8} {'median s':>9}")
    for c in report["slowest_analytics_calls"]:
        lines.append(f"{c['call'][:48]:<48} {c['calls']:>6} {c['max_seconds']:>8.3f} {c['median_seconds']:>9.3f}")
    lines.append("")
    lines.append(f"peak memory {report['peak_memory_mib']:,.0f} MiB")
    return "\n".join(lines)
