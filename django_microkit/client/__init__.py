"""Calling other services: :class:`ServiceClient`.

``ServiceClient("catalog").get("/api/products/7/")`` sends a GET to the catalog
service configured in ``MICROKIT["SERVICES"]["catalog"]`` and returns the parsed
JSON body. Every call

- has a connect and a read timeout and a deadline for all its attempts;
- retries, with exponential backoff and jitter, on connection errors, timeouts,
  429, 502, 503 and 504 (honouring ``Retry-After``), for idempotent methods or
  calls carrying an ``Idempotency-Key``;
- goes through the circuit breaker of its target, shared by every client of that
  service in the process;
- carries the headers of the configured header providers (request ID, trace
  context, service token) and a ``User-Agent`` naming this service;
- turns an error answer into a typed exception (:mod:`.errors`);
- reads the status line, headers and at most ``MAX_BODY_SIZE``
  (``MAX_ERROR_BODY_SIZE`` for an error) bytes of a body within the deadline,
  and follows no redirect unless ``MAX_REDIRECTS`` allows it, and then only
  under ``BASE_URL``, without credentials;
- writes one log line (logger ``django_microkit.client``).

The retry loop is this module's own rather than urllib3's ``Retry``: urllib3
replays the very same request, so a retry would resend a service token whose
``jti`` the target has already seen (and refuses as a replay); it has no
deadline spanning attempts (each attempt gets the full timeout and a
``Retry-After`` is slept up to ``retry_after_max`` whatever time is left); and
the circuit breaker must see every attempt's outcome, which urllib3 keeps to
itself.
"""

from __future__ import annotations

import http.client
import io
import logging
import math
import random
import socket
import time
import uuid
from collections.abc import Iterable, Iterator, Mapping
from contextvars import ContextVar
from http.cookiejar import DefaultCookiePolicy
from typing import Any, Literal, cast, overload
from urllib.parse import urljoin, urlsplit

import requests
import urllib3
from requests.adapters import BaseAdapter, HTTPAdapter
from requests.cookies import RequestsCookieJar
from requests.models import REDIRECT_STATI
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

from django_microkit.client.breaker import CircuitBreaker
from django_microkit.client.config import ServiceConfig
from django_microkit.client.errors import (
    CircuitOpenError,
    ClientError,
    ConflictError,
    InvalidResponseError,
    NotFoundError,
    ServiceConnectionError,
    ServiceError,
    ServiceTimeoutError,
    ServiceUnavailableError,
    error_from_response,
    parse_retry_after,
)
from django_microkit.client.headers import HeaderProvider, OutgoingCall, user_agent
from django_microkit.conf import derived
from django_microkit.idempotency import IDEMPOTENCY_KEY_HEADER
from django_microkit.logging import log_event, milliseconds
from django_microkit.metrics.families import observe_client_call
from django_microkit.tracing import start_client_span

__all__ = [
    "CircuitOpenError",
    "ClientError",
    "ConflictError",
    "HeaderProvider",
    "InvalidResponseError",
    "LOGGER",
    "NotFoundError",
    "OutgoingCall",
    "ServiceClient",
    "ServiceConnectionError",
    "ServiceError",
    "ServiceTimeoutError",
    "ServiceUnavailableError",
    "Timeout",
    "set_transport",
]

_IDEMPOTENCY_KEY = IDEMPOTENCY_KEY_HEADER.lower()
#: RFC 9110 §9.2.2: repeating these has the effect of sending them once.
_IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE"})
#: Answers meaning "not now, try again": rate limited, or a gateway/the service
#: is (momentarily) unable to answer.
_RETRY_STATUSES = frozenset({429, 502, 503, 504})

#: The logger of the one line written per call.
LOGGER = "django_microkit.client"
_logger = logging.getLogger(LOGGER)

_UNSET: Any = object()
# The least time worth starting an attempt with.
_MIN_ATTEMPT_TIME = 0.01
# Bytes asked for per read of a body: one socket read at most (read1).
_CHUNK = 64 * 1024
#: A call's ``timeout``: seconds to connect and to read, or one number for both.
Timeout = float | tuple[float, float]

# Adapters standing in for the network, by service (set_transport). Not
# settings: they outlive a change of MICROKIT.
_transports: dict[str, BaseAdapter] = {}


# When the attempt being sent must end (time.monotonic()); None: no call's.
_deadline_at: ContextVar[float | None] = ContextVar("deadline_at", default=None)


class _UntilDeadline(io.RawIOBase):
    """A socket's reads, each waiting at most for the time left.

    A socket timeout bounds one read, not the answer: a peer sending a header
    line, or a byte of body, just within it each time would hold a call for
    ever. Cutting each read's timeout to the time left bounds them all; the
    normal path pays one comparison a read."""

    def __init__(self, raw: io.RawIOBase, sock: socket.socket, at: float) -> None:
        self._raw, self._sock, self._at = raw, sock, at
        self._timeout = sock.gettimeout() or float("inf")

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int | None:
        remaining = self._at - time.monotonic()
        if remaining < self._timeout:
            if remaining <= 0:
                raise TimeoutError("The deadline ran out.")
            self._sock.settimeout(remaining)
        return self._raw.readinto(buffer)

    def close(self) -> None:
        super().close()
        self._raw.close()


class _UntilDeadlineSocket:
    """What :class:`_Answer` hands ``http.client`` in place of the socket,
    whose ``makefile("rb")`` is all an answer asks of it: the socket's reads
    through :class:`_UntilDeadline`, in the one buffer (``makefile``'s own,
    wrapped again, would cost a second)."""

    __slots__ = ("_at", "_sock")

    def __init__(self, sock: socket.socket, at: float) -> None:
        self._sock, self._at = sock, at

    def makefile(self, mode: Literal["rb"]) -> io.BufferedReader:
        sock = self._sock
        # buffering=0: the socket's raw reader, counted as the socket's own.
        return io.BufferedReader(_UntilDeadline(sock.makefile(mode, 0), sock, self._at))


class _Answer(http.client.HTTPResponse):
    """An answer whose status line, headers and body are read until the
    deadline of the attempt sending it (:class:`_UntilDeadline`)."""

    def __init__(self, sock: socket.socket, *args: Any, **kwargs: Any) -> None:
        at = _deadline_at.get()
        if at is not None:  # else the session is used without ServiceClient
            sock = cast("socket.socket", _UntilDeadlineSocket(sock, at))
        super().__init__(sock, *args, **kwargs)


class _Connection(HTTPConnection):
    response_class = _Answer


class _TLSConnection(HTTPSConnection):
    response_class = _Answer


class _Pool(HTTPConnectionPool):
    ConnectionCls = _Connection


class _TLSPool(HTTPSConnectionPool):
    ConnectionCls = _TLSConnection


class _Adapter(HTTPAdapter):
    """requests' adapter, its connections reading within the deadline."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {"http": _Pool, "https": _TLSPool}


class _Session(requests.Session):
    """requests' session, leaving redirects to :meth:`_Call._attempt`.

    Even with ``allow_redirects=False`` a session parses the ``Location`` of
    a redirect to prepare the next request, and raises ValueError for one
    that is no URL (``http://[bad/``)."""

    def get_redirect_target(self, resp: requests.Response) -> None:
        return None


class _RefusingJar(RequestsCookieJar):
    """A session's cookie jar keeping no cookie: its policy allows no domain.

    While such a policy is in place an answer's ``Set-Cookie`` fields are not
    even parsed: ``http.cookiejar`` would parse each only to refuse it, on
    every call."""

    def __init__(self) -> None:
        super().__init__(policy=DefaultCookiePolicy(allowed_domains=[]))

    def extract_cookies(self, response: Any, request: Any) -> None:
        policy = self.get_policy()
        # DefaultCookiePolicy.set_ok_domain refuses a domain not allowed.
        if type(policy) is not DefaultCookiePolicy or policy.allowed_domains() != ():
            super().extract_cookies(response, request)


class _Target:
    """A service this process calls: its settings, its connection pool and its
    circuit breaker, shared by every client of it."""

    __slots__ = ("base_headers", "breaker", "config", "session")

    def __init__(self, name: str) -> None:
        config = self.config = ServiceConfig.from_settings(name)
        self.breaker = CircuitBreaker(name, config.breaker)
        # What every attempt sends before the providers' and the call's own
        # headers; the User-Agent holds until MICROKIT changes, as this does.
        self.base_headers = _by_name(
            (("User-Agent", user_agent()), ("Accept", "application/json"))
        )
        session = self.session = _Session()
        # No proxies or credentials from the environment or ~/.netrc: service
        # calls go where BASE_URL says, with the headers this module sets. TLS
        # roots come from VERIFY.
        session.trust_env = False
        session.verify = config.verify
        # Service calls carry no cookies; a jar shared by threads would also be
        # the one piece of a Session that is not safe to share.
        session.cookies = _RefusingJar()
        adapter = _Adapter(pool_maxsize=config.pool_size, max_retries=0)
        session.mount("http://", adapter)
        session.mount("https://", adapter)
        transport = _transports.get(name)
        if transport is not None:
            session.mount(f"{config.base_url}/", transport)


class _Targets(dict[str, _Target]):
    """Every service this process calls, each set up at its first call."""

    def __missing__(self, name: str) -> _Target:
        # Two threads may both build one: the first stored is the one kept.
        return self.setdefault(name, _Target(name))


#: Kept until MICROKIT changes; a forked worker opens its own connections.
_targets = derived(fork_safe=True)(_Targets)


def set_transport(name: str, adapter: BaseAdapter | None) -> None:
    """Send the calls to service ``name`` through ``adapter``, a ``requests``
    transport adapter, instead of the network (``None``: the network again).

    The service gets a new session and a closed breaker either way.
    :func:`django_microkit.testing.fake_service` is made of it; so can be a
    service's own fake, or a recording proxy.
    """
    if adapter is None:
        _transports.pop(name, None)
    else:
        _transports[name] = adapter
    target = _targets().pop(name, None)
    if target is not None:
        target.session.close()


class ServiceClient:
    """Calls to one service named in ``MICROKIT["SERVICES"]``.

    Cheap to create and safe to share between threads: the connection pool and
    the circuit breaker belong to the target service, not to the instance, and
    the settings are read at call time, so a module-level
    ``catalog = ServiceClient("catalog")`` is fine.
    """

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return f"ServiceClient({self.name!r})"

    @property
    def config(self) -> ServiceConfig:
        """The merged settings of the target (``ImproperlyConfigured`` if none)."""
        return _targets()[self.name].config

    @property
    def breaker(self) -> CircuitBreaker:
        """The target's circuit breaker, shared by all its clients."""
        return _targets()[self.name].breaker

    @property
    def session(self) -> requests.Session:
        """The target's pooled ``requests.Session``, shared by all its clients."""
        return _targets()[self.name].session

    # ----------------------------------------------------------------------
    # Verbs
    # ----------------------------------------------------------------------

    def get(
        self, path: str, *, params: Mapping[str, Any] | None = None, **kwargs: Any
    ) -> Any:
        """GET ``path``; the parsed JSON body (the response with ``raw=True``)."""
        return self.request("GET", path, params=params, **kwargs)

    def post(self, path: str, json: Any = _UNSET, **kwargs: Any) -> Any:
        """POST ``json``; retried only with ``idempotent=True`` or an
        ``Idempotency-Key`` header."""
        return self.request("POST", path, json=json, **kwargs)

    def put(self, path: str, json: Any = _UNSET, **kwargs: Any) -> Any:
        """PUT ``json`` (idempotent: retried)."""
        return self.request("PUT", path, json=json, **kwargs)

    def patch(self, path: str, json: Any = _UNSET, **kwargs: Any) -> Any:
        """PATCH ``json``; retried only with ``idempotent=True`` or an
        ``Idempotency-Key`` header."""
        return self.request("PATCH", path, json=json, **kwargs)

    def delete(self, path: str, **kwargs: Any) -> Any:
        """DELETE ``path`` (idempotent: retried)."""
        return self.request("DELETE", path, **kwargs)

    @overload
    def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = ...,
        json: Any = ...,
        data: Any = ...,
        headers: Mapping[str, str] | None = ...,
        timeout: Timeout = ...,
        deadline: float | None = ...,
        retries: int | None = ...,
        idempotent: bool | None = ...,
        raw: Literal[False] = ...,
    ) -> Any: ...

    @overload
    def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = ...,
        json: Any = ...,
        data: Any = ...,
        headers: Mapping[str, str] | None = ...,
        timeout: Timeout = ...,
        deadline: float | None = ...,
        retries: int | None = ...,
        idempotent: bool | None = ...,
        raw: Literal[True],
    ) -> requests.Response: ...

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = _UNSET,
        data: Any = None,
        headers: Mapping[str, str] | None = None,
        timeout: Timeout = _UNSET,
        deadline: float | None = None,
        retries: int | None = None,
        idempotent: bool | None = None,
        raw: bool = False,
    ) -> Any:
        """Send ``method`` to ``path`` (relative to the service's ``BASE_URL``,
        or an absolute URL under it) and return the parsed JSON body, ``None``
        for an empty one, or the ``requests.Response`` with ``raw=True``.

        ``timeout`` (seconds, or a ``(connect, read)`` pair), ``deadline`` and
        ``retries`` override the settings for this call. ``idempotent=True``
        lets a POST or PATCH be retried, sending a generated
        ``Idempotency-Key`` (the same for every attempt) unless ``headers`` has
        one; ``idempotent=False`` turns retries off.

        An error answer (status >= 400) or a failed call raises a
        :class:`ServiceError` subclass, with or without ``raw``.
        """
        target = _targets()[self.name]
        config = target.config
        method = method.upper()
        url = config.url(path)
        # The settings' timeout was validated when the config was made.
        connect, read = config.timeout if timeout is _UNSET else _timeout(timeout)
        budget = config.deadline if deadline is None else deadline
        if not 0 < budget < math.inf:  # NaN fails too
            raise ValueError(f"deadline must be > 0 seconds, not {budget!r}")
        if retries is not None and retries < 0:
            raise ValueError(f"retries must be >= 0, not {retries!r}")
        call_headers = _by_name(headers.items()) if headers else {}
        attempts_allowed = 1
        if _may_retry(method, call_headers, idempotent):
            attempts_allowed += config.retries if retries is None else retries
        send: dict[str, Any] = {"params": params, "data": data}
        if json is not _UNSET:
            send["json"] = json
        call = _Call(self.name, method, urlsplit(url).path)
        try:
            response = call.run(
                target,
                url,
                send,
                call_headers,
                timeout=(connect, read),
                deadline_at=call.started + budget,
                attempts_allowed=attempts_allowed,
            )
        finally:
            call.log()
        if response.status_code >= 400:
            raise error_from_response(
                self.name,
                method,
                call.path,
                response,
                retry_after_cap=config.retry_after_cap,
            )
        if response.status_code in REDIRECT_STATI and response.is_redirect:
            raise InvalidResponseError(
                self.name,
                method,
                call.path,
                status=response.status_code,
                code="redirect",
                detail="The answer is a redirect, not followed (MAX_REDIRECTS, "
                "or it leaves the service's BASE_URL).",
                response=response,
            )
        if raw:
            return response
        return _parse(self.name, method, call.path, response)

    def paginate(
        self, path: str, *, params: Mapping[str, Any] | None = None, **kwargs: Any
    ) -> Iterator[Any]:
        """Every item of a paginated list, page after page.

        Follows ``next`` of the ``{"results", "next", "previous", "count"}``
        envelope until it is null. A ``next`` outside the service's
        ``BASE_URL`` (another host, scheme or base path) is refused with
        :class:`InvalidResponseError`: the service token is never sent
        elsewhere. So is a link that is no URL (``http://[bad/``). A plain
        JSON list is taken as a single page.
        """
        url = self.config.url(path)
        seen = {url}
        while True:
            page = self.get(url, params=params, **kwargs)
            params = None  # the next link carries the query
            if isinstance(page, list):
                yield from page
                return
            if not isinstance(page, dict) or not isinstance(page.get("results"), list):
                raise InvalidResponseError(
                    self.name,
                    "GET",
                    urlsplit(url).path,
                    detail="The answer is not a paginated list.",
                )
            yield from page["results"]
            link = page.get("next")
            if not link:
                return
            next_url = _join(url, link)
            if not self.config.owns(next_url) or next_url in seen:
                raise InvalidResponseError(
                    self.name,
                    "GET",
                    urlsplit(url).path,
                    detail="The next page link leaves the service's BASE_URL "
                    "or repeats a page.",
                )
            seen.add(next_url)
            url = next_url


def _join(url: str, link: object) -> str:
    """``link`` resolved against ``url``; ``""`` (owned by no service) for a
    link that is no URL, which ``urljoin`` refuses with ValueError."""
    try:
        return urljoin(url, link) if isinstance(link, str) else ""
    except ValueError:
        return ""


def _timeout(value: Timeout) -> tuple[float, float]:
    if value is None:
        raise TypeError("A service call needs a timeout; None is not allowed.")
    connect, read = value if isinstance(value, tuple) else (value, value)
    if not 0 < connect < math.inf or not 0 < read < math.inf:  # NaN fails too
        raise ValueError(f"Timeouts must be > 0 seconds, not {value!r}.")
    return float(connect), float(read)


#: Header fields that carry credentials: never sent on a redirect hop.
_CREDENTIALS = ("authorization", "proxy-authorization", "cookie")

_Headers = dict[str, tuple[str, str]]
"""Header fields by lowercase name: (name as given, value)."""


def _by_name(fields: Iterable[tuple[str, str]]) -> _Headers:
    return {name.lower(): (name, value) for name, value in fields}


def _may_retry(method: str, headers: _Headers, idempotent: bool | None) -> bool:
    """Whether attempts after the first are allowed; adds the key they need."""
    if idempotent is False:
        return False
    if method in _IDEMPOTENT_METHODS or _IDEMPOTENCY_KEY in headers:
        return True
    if idempotent:
        headers[_IDEMPOTENCY_KEY] = (IDEMPOTENCY_KEY_HEADER, str(uuid.uuid4()))
        return True
    return False


def _parse(service: str, method: str, path: str, response: requests.Response) -> Any:
    if not response.content:
        return None
    try:
        return response.json()
    except (ValueError, RecursionError):  # RecursionError: [[[[... nested deep
        raise InvalidResponseError(
            service,
            method,
            path,
            status=response.status_code,
            detail="The answer is not JSON.",
            response=response,
        ) from None


class _Call:
    """One call: its attempts and its log line."""

    def __init__(self, service: str, method: str, path: str) -> None:
        self.service = service
        self.method = method
        self.path = path
        self.started = time.monotonic()
        self.attempts = 0
        self.status: int | None = None
        self.error: str | None = None

    def run(
        self,
        target: _Target,
        url: str,
        send: dict[str, Any],
        call_headers: _Headers,
        *,
        timeout: tuple[float, float],
        deadline_at: float,
        attempts_allowed: int,
    ) -> requests.Response:
        config, breaker, base_headers = (
            target.config,
            target.breaker,
            target.base_headers,
        )
        while True:
            try:
                permit = breaker.before_attempt()
            except CircuitOpenError as exc:
                self.error = exc.code
                raise
            self.attempts += 1
            remaining = max(deadline_at - time.monotonic(), _MIN_ATTEMPT_TIME)
            attempt_timeout = (min(timeout[0], remaining), min(timeout[1], remaining))
            span = start_client_span(self.service, self.method, url, self.attempts)
            try:
                response = self._attempt(
                    target,
                    url,
                    send,
                    (base_headers, call_headers),
                    attempt_timeout,
                    deadline_at,
                )
            except requests.Timeout as exc:
                cut = attempt_timeout != timeout or time.monotonic() >= deadline_at
                failure: ServiceError = ServiceTimeoutError(
                    self.service,
                    self.method,
                    self.path,
                    code="deadline_exceeded" if cut else None,
                )
                outcome: requests.Response | ServiceError = failure.with_cause(exc)
            except (
                requests.ConnectionError,
                requests.exceptions.ChunkedEncodingError,
            ) as exc:
                failure = ServiceConnectionError(self.service, self.method, self.path)
                outcome = failure.with_cause(exc)
            except InvalidResponseError as exc:  # a body too large or undecodable
                outcome = exc
            except BaseException as exc:
                breaker.release(permit)
                if span is not None:
                    span.end(None, type(exc).__qualname__)
                raise
            else:
                outcome = response
            if isinstance(outcome, requests.Response):
                self.status, self.error = outcome.status_code, None
                breaker.record(permit, failed=outcome.status_code >= 500)
            else:
                self.status, self.error = None, outcome.code
                breaker.record(permit, failed=True)
            if span is not None:
                span.end(self.status, self.error)
            delay = (
                None
                if self.attempts >= attempts_allowed
                else self._retry_delay(config, outcome)
            )
            if (
                delay is None
                or time.monotonic() + delay + _MIN_ATTEMPT_TIME >= deadline_at
            ):
                if isinstance(outcome, ServiceError):
                    raise outcome
                return outcome
            time.sleep(delay)

    def _attempt(
        self,
        target: _Target,
        url: str,
        send: dict[str, Any],
        headers: tuple[_Headers, _Headers],
        timeout: tuple[float, float],
        deadline_at: float,
    ) -> requests.Response:
        """One attempt: the request, its redirects if allowed, each body read.

        requests would follow any redirect, to any host, with the headers of
        the first request; a hop here goes only under ``BASE_URL`` and carries
        no credentials: no ``Authorization``, the providers' (a service token)
        or the call's own. RFC 9110 §15.4: 303, and 301/302 after a POST, turn
        into a GET without a body."""
        config, method = target.config, self.method
        hops = 0
        until = _deadline_at.set(deadline_at)
        try:
            while True:
                response = target.session.request(
                    method,
                    url,
                    headers=self._headers(config, method, url, headers, hops),
                    timeout=timeout,
                    stream=True,
                    allow_redirects=False,
                    **send,
                )
                self._read_body(response, config, deadline_at)
                if (
                    # The status first: is_redirect looks the header up.
                    response.status_code not in REDIRECT_STATI
                    or not response.is_redirect
                    or hops == config.max_redirects
                ):
                    return response
                url = _join(url, response.headers["Location"])
                if not config.owns(url):
                    return response
                hops += 1
                status = response.status_code
                if (
                    status == 303
                    and method != "HEAD"
                    or status < 303
                    and method == "POST"
                ):
                    method, send = "GET", {}
                send = {key: value for key, value in send.items() if key != "params"}
        finally:
            _deadline_at.reset(until)

    def _read_body(
        self,
        response: requests.Response,
        config: ServiceConfig,
        deadline_at: float,
    ) -> None:
        """Read the body into ``response.content``, decompressed, within the
        deadline (:class:`_UntilDeadline` for a socket; between reads for any
        other transport) and at most the configured size; otherwise close the
        connection and raise.

        ``requests`` would read the whole body into memory however long it
        is, inflate any gzip into it, and give a trickling peer the read
        timeout per byte."""
        limit = (
            config.max_error_body_size
            if response.status_code >= 300
            else config.max_body_size
        )
        raw = response.raw  # None: an adapter that built the content itself
        from_urllib3 = isinstance(raw, urllib3.BaseHTTPResponse)
        chunks: list[bytes] = []
        size = 0
        try:
            while raw is not None:
                if time.monotonic() >= deadline_at:
                    raise requests.ReadTimeout("The deadline ran out in the body.")
                try:
                    chunk = (
                        raw.read1(_CHUNK, decode_content=True)
                        if from_urllib3
                        else raw.read(_CHUNK)
                    )
                except urllib3.exceptions.ReadTimeoutError as exc:
                    raise requests.ReadTimeout(exc) from exc
                except urllib3.exceptions.DecodeError as exc:
                    raise self._invalid(
                        response, None, "The body does not match its Content-Encoding."
                    ) from exc
                except (urllib3.exceptions.HTTPError, OSError) as exc:
                    raise requests.ConnectionError(exc) from exc
                if not chunk:
                    break
                size += len(chunk)
                if size > limit:
                    raise self._invalid(
                        response,
                        "response_too_large",
                        f"The body is longer than {limit} bytes.",
                    )
                chunks.append(chunk)
        except BaseException:
            response.close()  # not back to the pool with a body half read
            raise
        # What requests itself stores once it has read a body: .content,
        # .text and .json() then work as on any response.
        response._content = b"".join(chunks)
        response._content_consumed = True  # type: ignore[attr-defined]

    def _invalid(
        self, response: requests.Response, code: str | None, detail: str
    ) -> InvalidResponseError:
        return InvalidResponseError(
            self.service,
            self.method,
            self.path,
            status=response.status_code,
            code=code,
            detail=detail,
        )

    def _headers(
        self,
        config: ServiceConfig,
        method: str,
        url: str,
        given: tuple[_Headers, _Headers],
        hop: int,
    ) -> dict[str, str]:
        """Every header of the attempt; a name given again, in any case,
        replaces the earlier field: the providers' over the defaults, the
        call's own over all. A redirect ``hop`` carries no ``Authorization``."""
        base_headers, call_headers = given
        headers = base_headers.copy()
        outgoing = OutgoingCall(
            self.service,
            config.audience,
            config.scopes,
            method,
            url,
            self.attempts,
        )
        for provider in config.header_providers:
            for name, value in provider(outgoing).items():
                headers[name.lower()] = (name, value)
        headers.update(call_headers)
        if hop:
            for name in _CREDENTIALS:
                headers.pop(name, None)
        return dict(headers.values())

    def _retry_delay(
        self, config: ServiceConfig, outcome: requests.Response | ServiceError
    ) -> float | None:
        """Seconds to wait before the next attempt, one more being allowed;
        ``None``: no next attempt."""
        if isinstance(outcome, InvalidResponseError):
            return None
        response = outcome if isinstance(outcome, requests.Response) else None
        if response is not None and response.status_code not in _RETRY_STATUSES:
            return None
        backoff = min(config.backoff_max, config.backoff * 2 ** (self.attempts - 1))
        delay = random.uniform(backoff / 2, backoff)
        if response is not None:
            retry_after = parse_retry_after(response.headers.get("Retry-After"))
            if retry_after is not None:
                if retry_after > config.retry_after_max:
                    return None
                delay = max(delay, retry_after)
        return delay

    def log(self) -> None:
        elapsed = time.monotonic() - self.started
        observe_client_call(self.service, self.method, self.status, self.error, elapsed)
        failed = self.error is not None or (self.status or 0) >= 500
        level = logging.WARNING if failed else logging.INFO
        if not _logger.isEnabledFor(level):
            return
        fields: dict[str, Any] = {
            # "service" names the service writing the line (see logging).
            "peer_service": self.service,
            "method": self.method,
            "path": self.path,
            "status": self.status,
            "duration_ms": milliseconds(elapsed),
            "attempts": self.attempts,
        }
        if self.error is not None:
            fields["error"] = self.error
        log_event(_logger, level, "service_call", **fields)
