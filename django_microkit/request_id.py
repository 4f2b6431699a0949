"""The request ID and trace context of the request being handled.

:class:`RequestIDMiddleware` gives every request an ID (the caller's, when it
sends a valid one and is trusted, otherwise a fresh one) and a W3C trace
context (https://www.w3.org/TR/trace-context-2/, Level 2), echoes the ID in
the response, binds both into every log line and writes the one access-log line.

Both are readable from anywhere while the request is served, including code
that has no request object (a model method, a signal handler), through context
variables: each thread and each asyncio task sees only its own request's values.
They last until the response is closed (``request_finished``), so that the lines
Django writes after the middleware returns (``django.request`` for a 4xx or 5xx
response, ``runserver``'s ``django.server`` line) are correlated too.
:func:`outgoing_headers` gives what a call to another service must carry.
"""

from __future__ import annotations

import ipaddress
import os
import re
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from functools import lru_cache
from time import perf_counter
from typing import Any, NamedTuple, cast

import sentry_sdk
from django.conf import settings as django_settings
from django.core.checks import CheckMessage, Error, Warning
from django.core.signals import request_finished
from django.http import HttpRequest
from django.http.response import HttpResponseBase
from django.utils.module_loading import import_string
from structlog.contextvars import (
    bind_contextvars,
    bound_contextvars,
    clear_contextvars,
)

# The module, not its name: django_microkit.tracing imports this module while
# it loads, and either may be imported first.
from django_microkit import tracing as _tracing
from django_microkit._middleware import Middleware
from django_microkit.checks import is_subclass_path
from django_microkit.conf import RequestIDSettings, derived, microkit_settings
from django_microkit.logging import log_access
from django_microkit.metrics.families import observe_request

__all__ = [
    "TRACEPARENT_HEADER",
    "TRACESTATE_HEADER",
    "RequestIDMiddleware",
    "TraceContext",
    "check_request_id",
    "continued_context",
    "get_request_id",
    "get_trace_context",
    "is_valid_request_id",
    "new_request_id",
    "outgoing_headers",
    "parse_traceparent",
    "parse_tracestate",
]

#: Header names of W3C Trace Context, sent in lowercase as the standard asks.
TRACEPARENT_HEADER = "traceparent"
TRACESTATE_HEADER = "tracestate"

_request_id: ContextVar[str | None] = ContextVar("microkit_request_id", default=None)
_trace_context: ContextVar[TraceContext | None] = ContextVar(
    "microkit_trace_context", default=None
)


def get_request_id() -> str | None:
    """The ID of the request being handled, or ``None`` outside a request."""
    return _request_id.get()


def get_trace_context() -> TraceContext | None:
    """The trace context of the request being handled, or ``None`` outside one."""
    return _trace_context.get()


def outgoing_headers() -> dict[str, str]:
    """The headers a call to another service carries to continue this request.

    The request ID (under the configured header name), a child ``traceparent``
    (same trace-id, a fresh parent-id, same flags) and the kept ``tracestate``.
    Outside a request: a ``traceparent`` starting a new trace, and no request ID.
    """
    trace = _trace_context.get()
    tracing = _tracing.get_tracing()
    current = tracing.outgoing_trace(trace) if tracing is not None else None
    if current is not None:  # the current span is the parent
        headers = current[0].outgoing_headers(current[1])
    else:
        headers = (trace or TraceContext.new()).outgoing_headers()
    request_id = _request_id.get()
    if request_id is not None:
        headers[_settings().header] = request_id
    return headers


# --------------------------------------------------------------------------
# W3C Trace Context, Level 2
# --------------------------------------------------------------------------


def new_request_id() -> str:
    """A fresh request ID: 32 lowercase hex characters, 128 random bits (as
    unique as a UUID4, for a fifth of the work)."""
    return os.urandom(16).hex()


def _random_id(size: int) -> str:
    """``size`` random bytes in hex, never all zero (an invalid W3C ID)."""
    value = os.urandom(size)
    return value.hex() if any(value) else _random_id(size)


class TraceContext(NamedTuple):
    """Where the request being handled stands in a distributed trace.

    ``parent_id`` is the caller's span (``None`` when the trace started here);
    ``tracestate`` is the validated vendor state to pass on (``None`` if none);
    ``random`` the Level 2 random-trace-id flag: the trace-id's right-most 7
    bytes are random, which samplers and shards downstream may rely on.
    """

    trace_id: str
    parent_id: str | None
    sampled: bool
    tracestate: str | None = None
    random: bool = False

    @classmethod
    def new(cls) -> TraceContext:
        """A trace started by this service: not sampled (W3C's default), and
        flagged ``random`` since its trace-id is 16 bytes of ``os.urandom``."""
        return cls(_random_id(16), None, False, random=True)

    @property
    def trace_flags(self) -> str:
        """The flags to send on: ``sampled`` and ``random``; unknown bits are 0."""
        return f"{self.sampled | self.random << 1:02x}"

    def child_traceparent(self, parent_id: str | None = None) -> str:
        """A ``traceparent`` for an outgoing call: same trace, a new parent-id
        (or ``parent_id``, the span sending the call, while tracing)."""
        return f"00-{self.trace_id}-{parent_id or _random_id(8)}-{self.trace_flags}"

    def outgoing_headers(self, parent_id: str | None = None) -> dict[str, str]:
        """``traceparent`` and, when kept, ``tracestate`` for an outgoing call."""
        headers = {TRACEPARENT_HEADER: self.child_traceparent(parent_id)}
        if self.tracestate:
            headers[TRACESTATE_HEADER] = self.tracestate
        return headers


def _agree_with_sentry(trace: TraceContext, *, continued: bool) -> TraceContext:
    """One trace-id for W3C Trace Context and Sentry while Sentry is on.

    sentry-sdk starts its transaction before any middleware runs, from its own
    ``sentry-trace`` header, and ignores ``traceparent``; it then adds
    ``sentry-trace`` and ``baggage`` to every outgoing HTTP request, beside the
    ``traceparent`` of the service client. Both must name the same trace: a
    trace started here takes Sentry's trace-id (a UUID4's hex, so still
    ``random``: its right-most 7 bytes are random) and sampling decision; a
    continued W3C trace is carried into Sentry's transaction and propagation
    context.
    """
    if not sentry_sdk.get_client().is_active():
        return trace
    scope = sentry_sdk.get_current_scope()
    span = scope.span
    if not continued:
        if span is not None:
            return trace._replace(trace_id=span.trace_id, sampled=bool(span.sampled))
        return trace._replace(trace_id=scope.get_active_propagation_context().trace_id)
    for traced in (span, scope.transaction):
        if traced is not None:
            traced.trace_id = trace.trace_id
    propagation = scope.get_active_propagation_context()
    propagation.trace_id = trace.trace_id
    baggage = propagation.baggage
    if baggage is not None and baggage.sentry_items.get("trace_id") != trace.trace_id:
        propagation.baggage = None  # rebuilt from the trace-id when next needed
    return trace


# version "-" trace-id "-" parent-id "-" trace-flags, lowercase hex only. Matched
# as a prefix: later versions may add fields after another dash.
_TRACEPARENT = re.compile(r"([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})")
_TRACEPARENT_LENGTH = 55

# list-member = key "=" value; Level 2's key is ( lcalpha / DIGIT ) followed
# by up to 255 of lcalpha, DIGIT, "_", "-", "*", "/" and "@".
_TRACESTATE_MEMBER = re.compile(
    r"([a-z0-9][a-z0-9_\-*/@]{0,255})"
    r"=[\x20-\x2b\x2d-\x3c\x3e-\x7e]{0,255}[\x21-\x2b\x2d-\x3c\x3e-\x7e]"
)
_TRACESTATE_MAX_MEMBERS = 32
_OWS = " \t"


def parse_traceparent(value: str) -> TraceContext | None:
    """The trace context in a ``traceparent`` header, ``None`` if it is invalid.

    Follows Trace Context Level 2: version ``ff`` is invalid; version ``00`` is
    exactly 55 characters; a later version is read for its first four fields
    when they are followed by the end of the value or a dash; an all-zero
    trace-id or parent-id is invalid. The ``sampled`` and ``random`` flags are
    kept, other bits are not sent on.
    """
    value = value.strip(_OWS)
    match = _TRACEPARENT.match(value)
    if match is None:
        return None
    version, trace_id, parent_id, flags = match.groups()
    if version == "ff":
        return None
    if len(value) != _TRACEPARENT_LENGTH and (
        version == "00" or value[_TRACEPARENT_LENGTH] != "-"
    ):
        return None
    if not trace_id.strip("0") or not parent_id.strip("0"):
        return None
    bits = int(flags, 16)
    return TraceContext(trace_id, parent_id, bits & 1 == 1, random=bits & 2 == 2)


def parse_tracestate(value: str) -> str | None:
    """The ``tracestate`` to keep, normalised, or ``None`` to drop it.

    Empty list members are skipped. A repeated key keeps its first, left-most
    (most recent) member, the others are dropped (Level 2 allows either).
    More than 32 members or an invalid member makes the whole header invalid,
    and it is dropped.
    """
    members: dict[str, str] = {}
    count = 0
    for raw in value.split(","):
        member = raw.strip(_OWS)
        if not member:
            continue
        match = _TRACESTATE_MEMBER.fullmatch(member)
        count += 1
        if match is None or count > _TRACESTATE_MAX_MEMBERS:
            return None
        members.setdefault(match[1], member)
    return ",".join(members.values()) or None


# --------------------------------------------------------------------------
# Settings, derived once and dropped when MICROKIT changes
# --------------------------------------------------------------------------

_TrustPolicy = Callable[[HttpRequest], bool]


class _ProxyTrust:
    """Trusts requests whose REMOTE_ADDR is in one of the configured networks."""

    def __init__(self, networks: list[str]) -> None:
        self._networks = [ipaddress.ip_network(n, strict=False) for n in networks]
        self._trusts_address = lru_cache(maxsize=1024)(self._in_networks)

    def _in_networks(self, address: str) -> bool:
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip in network for network in self._networks)

    def __call__(self, request: HttpRequest) -> bool:
        return self._trusts_address(request.META.get("REMOTE_ADDR", ""))


def _trust_policy(name: str, proxies: list[str]) -> _TrustPolicy | None:
    """The callable deciding whom to trust; ``None`` means everyone."""
    if name == "any":
        return None
    if name == "none":
        return lambda request: False
    if name == "proxies":
        return _ProxyTrust(proxies)
    return cast(_TrustPolicy, import_string(name))


class _Settings(NamedTuple):
    header: str
    meta_key: str
    pattern: re.Pattern[str]
    trust: _TrustPolicy | None


def is_valid_request_id(value: str) -> bool:
    """Whether ``value`` matches ``MICROKIT["REQUEST_ID"]["PATTERN"]`` and is
    printable ASCII of at most 1024 characters, however permissive the pattern:
    the one rule for a caller's ID and for a called service's."""
    return (
        len(value) <= 1024
        and value.isascii()
        and value.isprintable()
        and _settings().pattern.fullmatch(value) is not None
    )


@derived
def _settings() -> _Settings:
    section = microkit_settings.REQUEST_ID
    header = section["HEADER"]
    return _Settings(
        header=header,
        meta_key="HTTP_" + header.upper().replace("-", "_"),
        pattern=re.compile(section["PATTERN"]),
        trust=_trust_policy(section["TRUST"], list(section["TRUSTED_PROXIES"])),
    )


# --------------------------------------------------------------------------
# Middleware
# --------------------------------------------------------------------------


class _RequestState(NamedTuple):
    header: str
    request_id: str
    rejected: str | None
    started: float
    # The server span while tracing (django_microkit.tracing.otel.ServerSpan).
    span: Any = None


def _end_context(**kwargs: Any) -> None:
    """Ends the context of the request this thread or task last handled.

    Django's ``django.request`` and runserver's ``django.server`` lines are
    written after the middleware returns but before the response is closed:
    the values last until ``request_finished``, and are also dropped when the
    middleware begins the next request, should a response never be closed. An
    ASGI request's task, and its context, end with the request.
    """
    if _request_id.get() is not None:
        _request_id.set(None)
        _trace_context.set(None)
        clear_contextvars()


@contextmanager
def continued_context(
    request_id: str | None, trace: TraceContext | None
) -> Iterator[TraceContext]:
    """Continue, outside a request, the request and trace a message came from.

    For a worker handling an event or a task: inside the block,
    :func:`get_request_id`, :func:`get_trace_context`, :func:`outgoing_headers`
    and every log line see ``request_id`` (kept only if it is a valid request
    ID; otherwise a new one) and ``trace`` (a new trace when ``None``), exactly
    as in a request. The previous context is restored afterwards.
    """
    if request_id is None or not is_valid_request_id(request_id):
        request_id = new_request_id()
    trace = trace or TraceContext.new()
    id_token = _request_id.set(request_id)
    trace_token = _trace_context.set(trace)
    with bound_contextvars(request_id=request_id, trace_id=trace.trace_id):
        try:
            yield trace
        finally:
            _request_id.reset(id_token)
            _trace_context.reset(trace_token)


request_finished.connect(_end_context, dispatch_uid=__name__)


class RequestIDMiddleware(Middleware[_RequestState]):
    """Request ID, trace context and the access-log line of every request.

    Put it first in ``MIDDLEWARE`` so that it wraps everything that logs::

        MIDDLEWARE = ["django_microkit.request_id.RequestIDMiddleware", ...]

    A request ``X-Request-ID: 9f1c2b7e`` (from a trusted caller) is answered with
    ``X-Request-ID: 9f1c2b7e``; without one, or with an invalid one, the answer
    carries a new 32-hex-character ID. ``request.request_id`` and
    ``request.trace_context`` hold the values for the view.
    """

    def before(self, request: HttpRequest) -> _RequestState:
        started = perf_counter()
        _end_context()
        config = _settings()
        meta = request.META
        received = meta.get(config.meta_key)
        traceparent = meta.get("HTTP_TRACEPARENT")
        trusted = config.trust is None or (
            (received is not None or traceparent is not None) and config.trust(request)
        )
        upstream = rejected = None

        if received is None:
            request_id = new_request_id()
        elif not is_valid_request_id(received):
            # Never echoed nor logged as is: it may hold newlines, terminal
            # escapes or kilobytes of anything.
            request_id = new_request_id()
            rejected = received
        elif trusted:
            request_id = received
        else:
            request_id = new_request_id()
            upstream = received

        # An untrusted caller cannot join our traces: the trace restarts.
        trace = None
        if traceparent is not None and trusted:
            trace = parse_traceparent(traceparent)
            tracestate = meta.get("HTTP_TRACESTATE")
            if trace is not None and tracestate is not None:
                trace = trace._replace(tracestate=parse_tracestate(tracestate))
        trace = _agree_with_sentry(
            trace or TraceContext.new(), continued=trace is not None
        )
        tracing = _tracing.get_tracing()
        span = None
        if tracing is not None:
            span, trace = tracing.start_server_span(request, trace)

        request.__dict__.update(request_id=request_id, trace_context=trace)
        _request_id.set(request_id)
        _trace_context.set(trace)
        bind_contextvars(request_id=request_id, trace_id=trace.trace_id)
        if upstream is not None:
            bind_contextvars(upstream_request_id=upstream)
        return _RequestState(config.header, request_id, rejected, started, span)

    def after(
        self, request: HttpRequest, response: HttpResponseBase, state: _RequestState
    ) -> HttpResponseBase:
        response.headers[state.header] = state.request_id
        if state.span is not None:
            state.span.finish(request, response)
        log_access(request, response, state.started, state.rejected)
        observe_request(request, response, state.started)
        return response

    def end(self, state: _RequestState) -> None:
        if state.span is not None:
            state.span.end()
        # Raised past Django's own handling (KeyboardInterrupt, a cancelled
        # task): no response will be closed, the context ends here.
        if sys.exc_info()[0] is not None:
            _end_context()


# --------------------------------------------------------------------------
# System checks (registered in django_microkit.checks)
# --------------------------------------------------------------------------

_MIDDLEWARE_PATH = "django_microkit.request_id.RequestIDMiddleware"
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_TRUST_NAMES = ("any", "none", "proxies")


def _check_middleware(middleware: list[str]) -> list[CheckMessage]:
    found = [is_subclass_path(path, _MIDDLEWARE_PATH) for path in middleware]
    if not any(found):
        return [
            Warning(
                f"{_MIDDLEWARE_PATH} is not in MIDDLEWARE.",
                hint="Add it first in MIDDLEWARE: without it requests have no ID, "
                "log lines no request_id and there is no access log.",
                id="django_microkit.W020",
            )
        ]
    before = middleware[: found.index(True)]
    ours = [path for path in before if path.startswith("django_microkit.")]
    if ours:
        return [
            Error(
                f"{_MIDDLEWARE_PATH} comes after {', '.join(ours)} in MIDDLEWARE.",
                hint="Move it before every other django-microkit middleware, "
                "which rely on the request ID it sets.",
                id="django_microkit.E020",
            )
        ]
    if before:
        return [
            Warning(
                f"{_MIDDLEWARE_PATH} is not first in MIDDLEWARE "
                f"({', '.join(before)} come before it).",
                hint="Move it first so that it wraps everything that logs or "
                "answers: lines and responses from middleware before it have no "
                "request ID and no access line.",
                id="django_microkit.W021",
            )
        ]
    return []


def _check_settings(section: RequestIDSettings) -> list[CheckMessage]:
    # The values are the service's, not yet checked (E003 reports a wrong type):
    # each is looked at as an object until isinstance says what it is.
    where = "MICROKIT['REQUEST_ID']"
    messages: list[CheckMessage] = []
    header: object = section["HEADER"]
    if isinstance(header, str) and not _TOKEN.fullmatch(header):
        messages.append(
            Error(
                f"{where}['HEADER'] {header!r} is not a valid HTTP header name.",
                hint="Use letters, digits and dashes, e.g. 'X-Request-ID'.",
                id="django_microkit.E022",
            )
        )
    pattern: object = section["PATTERN"]
    if isinstance(pattern, str):
        try:
            re.compile(pattern)
        except re.error as exc:
            messages.append(
                Error(
                    f"{where}['PATTERN'] is not a valid regular expression: {exc}.",
                    hint="Fix the pattern; it must match a whole request ID.",
                    id="django_microkit.E021",
                )
            )
    trust: object = section["TRUST"]
    if isinstance(trust, str) and trust not in _TRUST_NAMES:
        problem: str | None
        try:
            policy = import_string(trust)
        except ImportError as exc:
            problem = f"cannot be imported ({exc})"
        else:
            problem = None if callable(policy) else "is not callable"
        if problem is not None:
            messages.append(
                Error(
                    f"{where}['TRUST'] {trust!r} {problem}.",
                    hint='Use "any", "none", "proxies" or the dotted path of a '
                    "function taking the request and returning a bool.",
                    id="django_microkit.E023",
                )
            )
    proxies: object = section["TRUSTED_PROXIES"]
    if isinstance(proxies, list | tuple):
        for network in proxies:
            try:
                ipaddress.ip_network(str(network), strict=False)
            except ValueError:
                valid = False
            else:
                valid = isinstance(network, str)
            if not valid:
                messages.append(
                    Error(
                        f"{where}['TRUSTED_PROXIES'] holds {network!r}, "
                        "which is not an IP network.",
                        hint="Give addresses or networks in CIDR notation, "
                        "e.g. '10.0.0.0/8' or '2001:db8::1'.",
                        id="django_microkit.E024",
                    )
                )
        if trust == "proxies" and not proxies:
            messages.append(
                Warning(
                    f"{where}['TRUST'] is 'proxies' but TRUSTED_PROXIES is empty: "
                    "no request ID from a caller will ever be kept.",
                    hint="List the networks of your proxies in TRUSTED_PROXIES, "
                    "or set TRUST to 'none' if that is what you mean.",
                    id="django_microkit.W022",
                )
            )
    return messages


def check_request_id(**kwargs: Any) -> list[CheckMessage]:
    """``W020``–``W022``, ``E020``–``E024``: the middleware's place in
    ``MIDDLEWARE`` and the ``MICROKIT["REQUEST_ID"]`` values."""
    return [
        *_check_middleware(list(getattr(django_settings, "MIDDLEWARE", None) or [])),
        *_check_settings(microkit_settings.REQUEST_ID),
    ]
