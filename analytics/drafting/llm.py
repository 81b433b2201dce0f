"""The model endpoint: any OpenAI-compatible server (OpenAI, vLLM, Ollama, llama.cpp, LM Studio)
through the ``openai`` client's chat completions API, streamed.

Only ``client.chat.completions.create`` with common parameters is used, so the same code works on
every such server; the token limit's name is a setting (``max_tokens`` or
``max_completion_tokens``). Each attempt has a timeout (the client's, between bytes, and an overall
deadline checked between chunks, so a server that trickles forever is cut off too); failed
attempts are retried a bounded number of times with a short backoff, but only before the first
chunk arrived (text already shown is never silently replaced). The call never raises: its
:class:`CallResult` says how it ended, in words with no key and no traceback, and the caller falls
back to the template.
"""

from __future__ import annotations

import ipaddress
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from analytics.core.settings import LlmSettings

if TYPE_CHECKING:
    import openai

TEMPERATURE = 0.2
MAX_OUTPUT_TOKENS = 2000
BACKOFF_S = 0.5
BACKOFF_CAP_S = 4.0
LOCAL_PLACEHOLDER_KEY = "not-needed"  # local servers accept any key; the client insists on one


def _retriable() -> tuple[type[Exception], ...]:
    import openai  # imported on first use: it takes seconds to load, and most page runs call no model

    return (openai.APITimeoutError, openai.APIConnectionError, openai.InternalServerError, openai.RateLimitError)


@dataclass(frozen=True)
class Endpoint:
    """Where requests go: host and port for the audit trail (never the key), and whether it is loopback."""

    base_url: str
    host: str
    port: int | None
    loopback: bool

    @property
    def display(self) -> str:
        return f"{self.host}:{self.port}" if self.port else self.host


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and literal loopback addresses (127.0.0.0/8, ::1); names are not resolved,
    so a name that happens to resolve to loopback still counts as remote."""
    host = host.strip("[]").lower()
    if host in ("localhost", "localhost.localdomain"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def endpoint_of(settings: LlmSettings) -> Endpoint | None:
    """The configured endpoint, or None when no base URL is set."""
    if not settings.configured:
        return None
    parts = urlsplit(settings.base_url.strip())
    host = parts.hostname or ""
    return Endpoint(settings.base_url.strip(), host, parts.port, is_loopback(host))


@dataclass
class CallResult:
    """How one model call ended.

    Attributes:
        outcome: ``ok``, ``http_error``, ``timeout``, ``connection_error``, ``malformed`` or ``empty``.
        text: everything the model returned (possibly partial when it failed mid-stream).
        model_reported: the model name in the endpoint's response.
        error: what went wrong, in words.
        attempts: requests made.
        seconds: wall time.
    """

    outcome: str = "empty"
    text: str = ""
    model_reported: str | None = None
    error: str | None = None
    attempts: int = 0
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.outcome == "ok"


def request_parameters(settings: LlmSettings) -> dict[str, object]:
    """The sampling and limit parameters sent (and recorded in the audit trail)."""
    return {"temperature": TEMPERATURE, settings.token_parameter: MAX_OUTPUT_TOKENS, "stream": True,
            "timeout_s": settings.timeout_s, "max_retries": settings.max_retries}


def _describe(error: Exception) -> tuple[str, str]:
    import openai

    if isinstance(error, openai.APITimeoutError):
        return "timeout", "the endpoint did not answer in time"
    if isinstance(error, openai.APIStatusError):
        return "http_error", f"the endpoint answered HTTP {error.status_code}"
    if isinstance(error, openai.APIConnectionError):
        return "connection_error", "the endpoint could not be reached"
    return "malformed", f"the endpoint's answer could not be read ({type(error).__name__})"


@dataclass
class ModelCall:
    """One streaming chat completion. Iterate :meth:`stream` (e.g. with ``st.write_stream``); then
    read :attr:`result`."""

    settings: LlmSettings
    messages: list[dict[str, str]]
    result: CallResult = field(default_factory=CallResult)

    def _client(self) -> "openai.OpenAI":
        import openai

        return openai.OpenAI(base_url=self.settings.base_url, api_key=self.settings.api_key or LOCAL_PLACEHOLDER_KEY,
                             timeout=self.settings.timeout_s, max_retries=0)

    def stream(self) -> Iterator[str]:
        """The draft's text as it arrives. Never raises; failures end the stream and set :attr:`result`."""
        import openai

        started = time.monotonic()
        parameters = request_parameters(self.settings)
        sampling = {k: v for k, v in parameters.items() if k not in ("timeout_s", "max_retries")}
        client = self._client()
        try:
            for attempt in range(1, self.settings.max_retries + 2):
                self.result.attempts = attempt
                received = False
                deadline = time.monotonic() + self.settings.timeout_s
                try:
                    response = client.chat.completions.create(model=self.settings.model, messages=self.messages,
                                                              **sampling)
                    for chunk in response:
                        if time.monotonic() > deadline:
                            response.close()
                            raise openai.APITimeoutError(request=None)  # type: ignore[arg-type]
                        self.result.model_reported = getattr(chunk, "model", None) or self.result.model_reported
                        choices = getattr(chunk, "choices", None) or []
                        piece = choices[0].delta.content if choices and choices[0].delta else None
                        if piece:
                            received = True
                            self.result.text += piece
                            yield piece
                    if not self.result.text.strip():
                        self.result.outcome, self.result.error = "empty", "the endpoint returned no text"
                    else:
                        self.result.outcome, self.result.error = "ok", None
                    return
                except Exception as error:  # noqa: BLE001 - every failure becomes a result, never a traceback
                    self.result.outcome, self.result.error = _describe(error)
                    if received or not isinstance(error, _retriable()) or attempt > self.settings.max_retries:
                        if received:
                            self.result.error += " after part of the draft had arrived"
                        return
                    time.sleep(min(BACKOFF_CAP_S, BACKOFF_S * 2 ** (attempt - 1)))
        finally:
            client.close()
            self.result.seconds = round(time.monotonic() - started, 3)

    def run(self) -> CallResult:
        """The whole call without a page (the CLI, tests)."""
        for _ in self.stream():
            pass
        return self.result
