"""A sign-in proxy for the browser tests: it forwards every request to the app, the websocket's too, and
adds the identity header, as an SSO proxy in front of the workbench does (oauth2-proxy, a load balancer).

The browser cannot stand in for the proxy: Chromium 150 with Playwright sends a context's extra headers
on page requests but not on the websocket's upgrade, where Streamlit reads who the user is.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import uvicorn
import websockets
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket

from analytics.evaluation.app_server import free_port

# Hop-by-hop headers end at the proxy; httpx decodes bodies, so their encoding and length go too.
NOT_FORWARDED = {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailers",
                 "transfer-encoding", "upgrade", "host", "content-length", "content-encoding"}
# What the app needs of the browser's websocket upgrade: the session cookie (its XSRF check) and languages.
WEBSOCKET_HEADERS = ("cookie", "accept-language", "user-agent")
START_TIMEOUT_SECONDS = 30.0


def _proxy_app(upstream: str, header: str, identity: str) -> Starlette:
    upstream = upstream.rstrip("/")
    client = httpx.AsyncClient(base_url=upstream, follow_redirects=False, timeout=120.0)

    async def forward(request: Request) -> Response:
        headers = [(k, v) for k, v in request.headers.items() if k.lower() not in NOT_FORWARDED
                   and k.lower() != header.lower()]  # whatever the browser claims is replaced, as a proxy must
        upstream_response = await client.request(
            request.method, request.url.path, params=request.query_params, content=await request.body(),
            headers=headers + [(header, identity)])
        kept = {k: v for k, v in upstream_response.headers.items() if k.lower() not in NOT_FORWARDED}
        return Response(upstream_response.content, status_code=upstream_response.status_code, headers=kept)

    async def relay(browser: WebSocket) -> None:
        protocols = [p.strip() for p in browser.headers.get("sec-websocket-protocol", "").split(",") if p.strip()]
        headers = [(k, v) for k, v in browser.headers.items() if k.lower() in WEBSOCKET_HEADERS]
        url = "ws" + upstream.removeprefix("http") + browser.url.path + (f"?{browser.url.query}" if browser.url.query else "")
        async with websockets.connect(url, subprotocols=protocols or None, origin=upstream,
                                      additional_headers=headers + [(header, identity)], max_size=None,
                                      compression=None) as app:
            await browser.accept(subprotocol=app.subprotocol)

            async def app_to_browser() -> None:
                async for message in app:
                    if isinstance(message, bytes):
                        await browser.send_bytes(message)
                    else:
                        await browser.send_text(message)

            async def browser_to_app() -> None:
                while True:
                    message = await browser.receive()
                    if message["type"] == "websocket.disconnect":
                        return
                    await app.send(message["bytes"] if message.get("bytes") is not None else message["text"])

            tasks = [asyncio.create_task(app_to_browser()), asyncio.create_task(browser_to_app())]
            _, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            for task in pending:
                task.cancel()

    return Starlette(routes=[
        Route("/{path:path}", forward, methods=["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]),
        WebSocketRoute("/{path:path}", relay),
    ])


@contextmanager
def sign_in_proxy(upstream: str, header: str, identity: str) -> Iterator[str]:
    """A proxy on loopback in front of ``upstream`` that names ``identity`` in ``header`` on every request;
    yields the proxy's base URL."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(_proxy_app(upstream, header, identity), host="127.0.0.1", port=port,
                                           log_level="warning", ws="websockets-sansio", lifespan="off"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError(f"the sign-in proxy did not start on port {port}")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
