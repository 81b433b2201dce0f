"""A load test of the app server: many concurrent sessions driven by a light websocket client.

``python -m analytics bench load --db PATH --sessions 20`` starts ``streamlit run app.py`` on the
warehouse (a file or a Parquet export folder) and opens ``sessions`` websocket sessions speaking
Streamlit's own protocol (the protobuf ``BackMsg``/``ForwardMsg`` messages a browser exchanges over
``/_stcore/stream``), all in one asyncio loop in this process. Each session opens every page the
user may see, ``rounds`` times, starting at a different page; a page's time runs from the request
to the server's ``script_finished`` message (the server has run the page and sent every element).
No browser renders anything, so the figures are the server's: twenty real browsers on a two-core
machine would measure the browsers.

Measured: errors (an exception element, a page that did not finish successfully, a dropped
connection, no answer within the timeout), page times (p50/p95, per page and overall; the first
visit of each page, before the sessions start, reported apart as cold), the server process's CPU
seconds per page served (user + system, children included, from psutil) and its peak resident
memory, and the machine's load average before and after (the machine is shared).
"""

from __future__ import annotations

import asyncio
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from analytics.evaluation.app_server import app_server
from analytics.evaluation.process_usage import TreeMonitor

PAGE_TIMEOUT_SECONDS = 300.0


@dataclass
class PageLoad:
    session: int
    page: str
    seconds: float
    error: str = ""


async def _open_page(ws, page: str) -> str:
    """Ask the server to run ``page`` in this session; '' or what went wrong."""
    from streamlit.proto.BackMsg_pb2 import BackMsg
    from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

    request = BackMsg()
    request.rerun_script.query_string = ""
    request.rerun_script.page_name = page
    await ws.send(request.SerializeToString())
    error = ""
    while True:
        message = ForwardMsg()
        message.ParseFromString(await ws.recv())
        kind = message.WhichOneof("type")
        if kind == "delta" and message.delta.WhichOneof("type") == "new_element":
            element = message.delta.new_element
            if element.WhichOneof("type") == "exception" and not error:
                error = f"exception: {element.exception.type}: {element.exception.message[:200]}"
        elif kind == "script_finished":
            if message.script_finished == ForwardMsg.FINISHED_EARLY_FOR_RERUN:
                continue  # the page asked for a rerun (the frame settling its URL): the run goes on
            if message.script_finished == ForwardMsg.FINISHED_WITH_COMPILE_ERROR and not error:
                error = "the page did not compile"
            return error


async def _session(base: str, index: int, pages: list[str], rounds: int, loads: list[PageLoad]) -> None:
    import websockets

    order = pages[index % len(pages):] + pages[:index % len(pages)]  # sessions start on different pages
    try:
        async with websockets.connect(base.replace("http://", "ws://", 1) + "/_stcore/stream", subprotocols=["streamlit"],
                                      max_size=None, open_timeout=PAGE_TIMEOUT_SECONDS) as ws:
            for _ in range(rounds):
                for page in order:
                    started = time.perf_counter()
                    try:
                        error = await asyncio.wait_for(_open_page(ws, page), PAGE_TIMEOUT_SECONDS)
                    except TimeoutError:
                        error = f"no answer within {PAGE_TIMEOUT_SECONDS:.0f} s"
                    loads.append(PageLoad(index, page, time.perf_counter() - started, error))
                    if error.startswith("no answer"):
                        return
    except (OSError, websockets.exceptions.WebSocketException) as exc:
        loads.append(PageLoad(index, "(connection)", 0.0, f"connection: {exc}"))


def _percentiles(seconds: list[float]) -> dict[str, float]:
    if not seconds:
        return {"n": 0}
    values = np.asarray(seconds)
    return {"n": len(values), "p50": float(np.percentile(values, 50)), "p95": float(np.percentile(values, 95)),
            "max": float(values.max())}


def run_load(db: Path, sessions: int = 20, rounds: int = 3, user: str = "local") -> dict:
    """Run the load test; the figures (see the module docstring)."""
    from analytics.frame.identity import resolve_user
    from analytics.frame.pages import PAGES

    role = resolve_user(user).role
    pages = [p.url_path for p in PAGES if role.allows(p.needs)]
    load_before = os.getloadavg()
    with app_server(db, user) as (base, proc), TreeMonitor(proc.pid) as server:
        cold: list[PageLoad] = []
        asyncio.run(_session(base, 0, pages, 1, cold))  # every page once, caches empty
        server.sample()
        cpu_start = server.cpu_seconds
        loads: list[PageLoad] = []
        started = time.perf_counter()

        async def all_sessions() -> None:
            await asyncio.gather(*[_session(base, i, pages, rounds, loads) for i in range(sessions)])

        asyncio.run(all_sessions())
        wall = time.perf_counter() - started
        server.sample()
        cpu_end = server.cpu_seconds
    served = [load for load in loads if load.page != "(connection)"]
    errors = [load for load in loads if load.error]
    return {
        "db": str(db), "user": user, "sessions": sessions, "rounds": rounds, "pages": pages,
        "page_loads": len(served), "errors": len(errors) + sum(1 for c in cold if c.error),
        "error_examples": sorted({e.error for e in errors + [c for c in cold if c.error]})[:10],
        "wall_seconds": wall, "pages_per_second": len(served) / wall if wall else 0.0,
        "cold": {c.page: c.seconds for c in cold},
        "overall": _percentiles([load.seconds for load in served if not load.error]),
        "per_page": {page: _percentiles([load.seconds for load in served if load.page == page and not load.error])
                     for page in pages},
        "server_cpu_seconds_per_page": (cpu_end - cpu_start) / len(served) if served else None,
        "server_cpu_share": (cpu_end - cpu_start) / wall / (os.cpu_count() or 1) if wall else None,
        "server_peak_rss_mib": server.peak_rss / 2**20,
        "load_average_before": load_before, "load_average_after": os.getloadavg(),
        "cpu_count": os.cpu_count(),
    }


def format_load(report: dict) -> str:
    """The figures as a short text table."""
    overall = report["overall"]
    lines = [
        f"{report['sessions']} sessions x {report['rounds']} rounds x {len(report['pages'])} pages as "
        f"{report['user']!r} on {report['db']}",
        f"page loads {report['page_loads']}, errors {report['errors']}"
        + (f" ({'; '.join(report['error_examples'])})" if report["error_examples"] else ""),
        f"page time p50 {overall.get('p50', float('nan')):.2f} s, p95 {overall.get('p95', float('nan')):.2f} s, "
        f"max {overall.get('max', float('nan')):.2f} s; {report['pages_per_second']:.2f} pages/s over "
        f"{report['wall_seconds']:.0f} s",
        f"server CPU {report['server_cpu_seconds_per_page']:.2f} s per page "
        f"({100 * report['server_cpu_share']:.0f}% of {report['cpu_count']} cores); "
        f"server peak memory {report['server_peak_rss_mib']:,.0f} MiB",
        "load average before {:.1f} / {:.1f} / {:.1f}, after {:.1f} / {:.1f} / {:.1f}".format(
            *report["load_average_before"], *report["load_average_after"]),
        "",
        f"{'page':<22} {'cold':>7} {'p50':>7} {'p95':>7} {'n':>5}",
    ]
    for page, stats in report["per_page"].items():
        lines.append(f"{page:<22} {report['cold'].get(page, float('nan')):>6.2f}s "
                     f"{stats.get('p50', float('nan')):>6.2f}s {stats.get('p95', float('nan')):>6.2f}s {stats['n']:>5}")
    return "\n".join(lines)
