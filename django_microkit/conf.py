"""The one place where django-microkit reads its settings.

A service configures everything through one ``MICROKIT = {...}`` dict in its
Django settings. :data:`microkit_settings` merges it with :data:`DEFAULTS` the
first time a value is asked for, keeps the result, and forgets it when Django
sends ``setting_changed`` for ``MICROKIT`` (so ``override_settings`` works).
Nothing is read at import time and nothing is rebuilt per request.

Values computed *from* the settings (a compiled pattern, a key table, a pool of
threads) are made with :func:`derived`: computed once, dropped on the same
signal, and, where they hold threads or sockets, dropped in a forked child.
This is the only cache of settings-derived values in the library.

Values are not validated here: :mod:`django_microkit.checks` reports bad values
at start-up with a system-check ID and a hint.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Generic, TypedDict, TypeVar, overload

from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver

__all__ = [
    "DEFAULTS",
    "REST_FRAMEWORK_WIRING",
    "AccessLogSettings",
    "ClientSettings",
    "Derived",
    "DrainSettings",
    "ErrorsSettings",
    "EventsSettings",
    "HealthSettings",
    "IdempotencySettings",
    "MetricsSettings",
    "MicrokitSettings",
    "Option",
    "PaginationSettings",
    "RequestIDSettings",
    "SentrySettings",
    "ServiceAuthSettings",
    "ServiceInfoSettings",
    "ServiceSettings",
    "TracingSettings",
    "VersioningSettings",
    "derived",
    "microkit_settings",
    "rest_framework_defaults",
]

T = TypeVar("T")


@dataclass(frozen=True)
class Option:
    """One setting: its default and the types a service may give it."""

    default: Any
    types: tuple[type, ...]

    def accepts(self, value: Any) -> bool:
        # bool is an int subclass; an int option must not accept True.
        if isinstance(value, bool) and bool not in self.types:
            return False
        return isinstance(value, self.types)

    def describe(self) -> str:
        return " or ".join(
            "None" if t is type(None) else t.__name__ for t in self.types
        )


_STR = (str,)
_OPTIONAL_STR = (str, type(None))
_BOOL = (bool,)
_LIST = (list, tuple)
_NUMBER = (int, float)

#: Every ``MICROKIT`` key with its default. A value is either an :class:`Option`
#: or a section: a dict of options that a service may set one by one.
DEFAULTS: dict[str, Option | dict[str, Option]] = {
    # Names this service in logs, tokens, the User-Agent and service info.
    "SERVICE_NAME": Option("", _STR),
    # The deployed version of the service (not of django-microkit).
    "SERVICE_VERSION": Option("", _STR),
    # List endpoints: page sizes and how much counting a page may cost.
    "PAGINATION": {
        "PAGE_SIZE": Option(20, (int,)),
        "MAX_PAGE_SIZE": Option(100, (int,)),
        "MAX_OFFSET": Option(None, (int, type(None))),
        "COUNT": Option("exact", _STR),
        "COUNT_LIMIT": Option(None, (int, type(None))),
    },
    # API versions this service serves, the default and the retiring ones.
    "VERSIONING": {
        "VERSIONS": Option(("1",), (list, tuple)),
        "DEFAULT_VERSION": Option("1", _STR),
        "DEPRECATED": Option({}, (dict,)),
        "ENFORCE_SUNSET": Option(True, (bool,)),
    },
    # Request IDs and W3C trace context (django_microkit.request_id).
    "REQUEST_ID": {
        # The header carrying the request ID, in and out.
        "HEADER": Option("X-Request-ID", _STR),
        # A received ID is kept only if it matches this pattern in full.
        "PATTERN": Option(r"[A-Za-z0-9._:-]{1,128}", _STR),
        # Whose IDs to keep: "any", "proxies" (REMOTE_ADDR in TRUSTED_PROXIES),
        # "none", or the dotted path of a callable(request) -> bool.
        "TRUST": Option("any", _STR),
        # Networks (CIDR) whose requests are trusted under TRUST = "proxies".
        "TRUSTED_PROXIES": Option((), _LIST),
    },
    # The one access-log line per request (django_microkit.logging).
    "ACCESS_LOG": {
        "ENABLED": Option(True, _BOOL),
        # Paths starting with one of these prefixes are logged at DEBUG.
        "HEALTH_PATHS": Option(("/health/",), _LIST),
        # Log the query string (it may carry personal data).
        "QUERY_STRING": Option(False, _BOOL),
        # Log REMOTE_ADDR as client_address.
        "CLIENT_ADDRESS": Option(False, _BOOL),
    },
    # Error reporting to Sentry (django_microkit.sentry).
    "SENTRY": {
        # No DSN: Sentry stays off.
        "DSN": Option("", _STR),
        "ENVIRONMENT": Option("", _STR),
        # Empty: SERVICE_VERSION.
        "RELEASE": Option("", _STR),
        "SAMPLE_RATE": Option(1.0, _NUMBER),
        "TRACES_SAMPLE_RATE": Option(0.0, _NUMBER),
    },
    # Service-to-service authentication (django_microkit.service_auth).
    "SERVICE_AUTH": {
        # Keys this service signs its tokens with: [{"kid", "alg", "key"}, ...].
        "SIGNING_KEYS": Option((), (list, tuple)),
        # The kid of the signing key in use; "" when there is only one.
        "SIGNING_KEY_ID": Option("", _STR),
        # Services allowed to call this one: {"orders": [{"kid", "alg", "key"}]}.
        "PEERS": Option({}, (dict,)),
        # Seconds a minted token is valid, and the longest lifetime accepted.
        "TOKEN_LIFETIME": Option(60, (int,)),
        "MAX_TOKEN_LIFETIME": Option(300, (int,)),
        # Seconds of clock skew tolerated between services.
        "LEEWAY": Option(5, (int,)),
        # Algorithms keys may use (RFC 8725: an explicit allow-list).
        "ALGORITHMS": Option(
            ("EdDSA", "ES256", "PS256", "RS256", "HS256", "HS384", "HS512"),
            (list, tuple),
        ),
        # Refuse a token whose jti was already seen (needs a shared cache).
        "REPLAY_PROTECTION": Option(True, (bool,)),
        "REPLAY_CACHE": Option("default", _STR),
        # Audiences for which a minted token is reused until shortly before
        # it expires (only for targets that turned replay protection off).
        "REUSE_TOKENS_FOR": Option((), (list, tuple)),
    },
    # Problem-details error responses (django_microkit.errors).
    "ERRORS": {
        # The ExceptionHandler subclass every error goes through.
        "HANDLER_CLASS": Option("django_microkit.errors.ExceptionHandler", _STR),
        # Problem `type` is this + code when set; "about:blank" when empty.
        "TYPE_BASE_URI": Option("", _STR),
        # Clients preferring text/html get Django's HTML error pages.
        "HTML_FALLBACK": Option(False, _BOOL),
    },
    # Health probes: which checks each probe runs, their time budget, caching.
    "HEALTH": {
        "LIVENESS_CHECKS": Option((), _LIST),
        "READINESS_CHECKS": Option(("database", "cache"), _LIST),
        "STARTUP_CHECKS": Option((), _LIST),
        "TIMEOUT": Option(2.0, _NUMBER),
        "RESULT_TTL": Option(1.0, _NUMBER),
        "SHOW_DETAILS": Option(None, (bool, type(None))),
        "URL_PREFIX": Option("health/", _STR),
        "INCLUDE_IN_SCHEMA": Option(False, _BOOL),
        # Under WSGI, run sync checks known to be fast in the probe's request
        # thread instead of handing them to a pool thread.
        "INLINE_CHECKS": Option(True, _BOOL),
    },
    # What /.well-known/service-info says about the deployed service.
    "SERVICE_INFO": {
        "PATH": Option(".well-known/service-info", _STR),
        "BUILD": Option(None, _OPTIONAL_STR),
        "COMMIT": Option(None, _OPTIONAL_STR),
        "OPENAPI_URL": Option("", _OPTIONAL_STR),
        "SHOW_RUNTIME": Option(True, _BOOL),
        "EXTRA": Option({}, (dict,)),
    },
    # Idempotency-Key support of IdempotentMixin views (django_microkit.idempotency).
    "IDEMPOTENCY": {
        # The cache alias keys and stored responses live in (shared: Redis).
        "CACHE": Option("default", _STR),
        # Seconds a completed response is kept for replay.
        "TTL": Option(24 * 60 * 60, (int,)),
        # Seconds a running request holds its key before another may take it.
        "LOCK_TIMEOUT": Option(60, (int,)),
        # Methods that honour Idempotency-Key.
        "METHODS": Option(("POST", "PATCH"), (list, tuple)),
        # Refuse those methods without a key.
        "REQUIRED": Option(False, (bool,)),
    },
    # Calls to other services (django_microkit.client): the defaults of every
    # SERVICES entry, which may override any of them.
    "CLIENT": {
        # Seconds to connect and to wait for the answer: (connect, read) or one
        # number for both. Never None: every call has a timeout.
        "TIMEOUT": Option((1.0, 5.0), (int, float, list, tuple)),
        # Retries after the first attempt (idempotent calls only).
        "RETRIES": Option(2, (int,)),
        # Backoff before retry n: BACKOFF * 2 ** (n - 1) seconds, with jitter,
        # at most BACKOFF_MAX.
        "BACKOFF": Option(0.1, (int, float)),
        "BACKOFF_MAX": Option(2.0, (int, float)),
        # The longest Retry-After waited for; a longer one ends the retries.
        "RETRY_AFTER_MAX": Option(5.0, (int, float)),
        # Seconds a call may take in all, retries and waits included.
        "DEADLINE": Option(10.0, (int, float)),
        # Circuit breaker: FAILURES, RATIO, WINDOW, COOL_DOWN.
        "BREAKER": Option(
            {"FAILURES": 5, "RATIO": None, "WINDOW": 20, "COOL_DOWN": 30.0}, (dict,)
        ),
        # Connections kept open per target service.
        "POOL_SIZE": Option(10, (int,)),
        # TLS verification: True, False, or the path of a CA bundle.
        "VERIFY": Option(True, (bool, str)),
        # Callables adding headers to every attempt (trace context, token).
        "HEADER_PROVIDERS": Option(
            (
                "django_microkit.client.headers.trace_headers",
                "django_microkit.client.headers.service_token_header",
            ),
            (list, tuple),
        ),
        # A Retry-After further away than this many seconds counts as this many.
        "RETRY_AFTER_CAP": Option(3600.0, (int, float)),
        # Bytes of a success body, and of an error body, read at most
        # (decompressed); a longer body ends the call.
        "MAX_BODY_SIZE": Option(10 * 1024 * 1024, (int,)),
        "MAX_ERROR_BODY_SIZE": Option(1024 * 1024, (int,)),
        # Redirects followed per attempt, only under BASE_URL; 0: none.
        "MAX_REDIRECTS": Option(0, (int,)),
    },
    # The services this one calls: {"catalog": {"BASE_URL": "http://..."}}.
    "SERVICES": Option({}, (dict,)),
    # Events between services (django_microkit.events): the outbox, the relay
    # that sends it to the broker, and the worker that consumes.
    "EVENTS": {
        # kombu URL of the broker ("amqp://user:pass@host:5672/vhost"). Empty:
        # kombu's filesystem transport in FILESYSTEM_FOLDER, which needs no
        # server and is shared by the services of one machine (development).
        "BROKER_URL": Option("", _STR),
        # The folder of the filesystem transport; empty: a folder named
        # django-microkit-events in the system's temporary directory.
        "FILESYSTEM_FOLDER": Option("", _STR),
        # Producers publish to the topic exchange EXCHANGE_PREFIX + their name.
        "EXCHANGE_PREFIX": Option("events.", _STR),
        # The durable queue this service consumes from; empty: "<service>.events".
        "QUEUE": Option("", _STR),
        # Event types this service consumes, each with its handler:
        # {"orders.order.placed.v1": "catalog.events.OrderPlaced"}.
        "HANDLERS": Option({}, (dict,)),
        # The Transport class (dotted path) the relay and the worker use.
        "TRANSPORT_CLASS": Option("django_microkit.events.kombu.KombuTransport", _STR),
        # Send an event as soon as its transaction commits (the relay sends
        # whatever that left behind).
        "SEND_ON_COMMIT": Option(True, _BOOL),
        # Seconds a publish may wait for the broker's confirmation.
        "PUBLISH_TIMEOUT": Option(5.0, _NUMBER),
        # Relay: seconds between rounds, rows per round, and the backoff of a
        # row the broker refused: RETRY_BACKOFF * 2 ** (attempts - 1), at most
        # RETRY_BACKOFF_MAX seconds.
        "RELAY_INTERVAL": Option(1.0, _NUMBER),
        "RELAY_BATCH_SIZE": Option(100, (int,)),
        "RETRY_BACKOFF": Option(1.0, _NUMBER),
        "RETRY_BACKOFF_MAX": Option(60.0, _NUMBER),
        # Seconds a sent outbox row, and a handled inbox row, are kept.
        "OUTBOX_RETENTION": Option(7 * 24 * 3600, (int,)),
        "INBOX_RETENTION": Option(30 * 24 * 3600, (int,)),
        # Worker: attempts of a failing handler before the event is a dead
        # letter, and the backoff between them (as for the relay).
        "MAX_ATTEMPTS": Option(5, (int,)),
        "HANDLER_BACKOFF": Option(0.5, _NUMBER),
        "HANDLER_BACKOFF_MAX": Option(30.0, _NUMBER),
        # Messages the worker takes from the broker before acking any.
        "PREFETCH": Option(10, (int,)),
        # Bytes of an event's envelope, at most; a longer one is refused.
        "MAX_EVENT_SIZE": Option(256 * 1024, (int,)),
        # Readiness: the age in seconds of the oldest unsent event at which
        # the outbox check warns, and fails.
        "LAG_WARN": Option(30.0, _NUMBER),
        "LAG_FAIL": Option(300.0, _NUMBER),
    },
    # Prometheus metrics at /metrics (django_microkit.metrics).
    "METRICS": {
        "ENABLED": Option(True, _BOOL),
        # The route of the metrics endpoint, as Django routes are written.
        "PATH": Option("metrics", _STR),
        # Callers (REMOTE_ADDR) allowed without a token: loopback and private.
        "ALLOW_NETWORKS": Option(
            (
                "127.0.0.0/8",
                "::1/128",
                "10.0.0.0/8",
                "172.16.0.0/12",
                "192.168.0.0/16",
                "fc00::/7",
            ),
            _LIST,
        ),
        # A bearer token that lets any caller scrape; "" for none.
        "TOKEN": Option("", _STR),
        # prometheus_client's multiprocess directory; "" leaves it to the
        # PROMETHEUS_MULTIPROC_DIR environment variable.
        "MULTIPROCESS_DIR": Option("", _STR),
        # Upper bounds (seconds) of the duration histograms' buckets.
        "BUCKETS": Option(
            (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0),
            _LIST,
        ),
    },
    # Draining on SIGTERM (django_microkit.drain).
    "DRAIN": {
        # Seconds readiness answers 503 while requests are still served.
        "DELAY": Option(5.0, _NUMBER),
    },
    # OpenTelemetry spans on the request's own trace context
    # (django_microkit.tracing; the "otel" extra).
    "TRACING": {
        # Off: nothing from opentelemetry is imported.
        "ENABLED": Option(False, _BOOL),
        # The resource's service.name; empty: SERVICE_NAME.
        "SERVICE_NAME": Option("", _STR),
        # Dotted paths of callables returning a SpanProcessor (a class works).
        "SPAN_PROCESSORS": Option(
            ("django_microkit.tracing.otel.otlp_span_processor",), _LIST
        ),
        # The Tracing subclass that names spans and sets their attributes.
        "TRACING_CLASS": Option("django_microkit.tracing.otel.Tracing", _STR),
    },
}


# The sections as mypy sees them. ``DEFAULTS`` is the runtime table; a test
# keeps the two in step, key for key.
class PaginationSettings(TypedDict):
    PAGE_SIZE: int
    MAX_PAGE_SIZE: int
    MAX_OFFSET: int | None
    COUNT: str
    COUNT_LIMIT: int | None


class VersioningSettings(TypedDict):
    VERSIONS: Sequence[str]
    DEFAULT_VERSION: str
    DEPRECATED: Mapping[str, Any]
    ENFORCE_SUNSET: bool


class RequestIDSettings(TypedDict):
    HEADER: str
    PATTERN: str
    TRUST: str
    TRUSTED_PROXIES: Sequence[str]


class AccessLogSettings(TypedDict):
    ENABLED: bool
    HEALTH_PATHS: Sequence[str]
    QUERY_STRING: bool
    CLIENT_ADDRESS: bool


class SentrySettings(TypedDict):
    DSN: str
    ENVIRONMENT: str
    RELEASE: str
    SAMPLE_RATE: float
    TRACES_SAMPLE_RATE: float


class ServiceAuthSettings(TypedDict):
    SIGNING_KEYS: Sequence[Mapping[str, Any]]
    SIGNING_KEY_ID: str
    PEERS: Mapping[str, Any]
    TOKEN_LIFETIME: int
    MAX_TOKEN_LIFETIME: int
    LEEWAY: int
    ALGORITHMS: Sequence[str]
    REPLAY_PROTECTION: bool
    REPLAY_CACHE: str
    REUSE_TOKENS_FOR: Sequence[str]


class ErrorsSettings(TypedDict):
    HANDLER_CLASS: str
    TYPE_BASE_URI: str
    HTML_FALLBACK: bool


class HealthSettings(TypedDict):
    LIVENESS_CHECKS: Sequence[Any]
    READINESS_CHECKS: Sequence[Any]
    STARTUP_CHECKS: Sequence[Any]
    TIMEOUT: float
    RESULT_TTL: float
    SHOW_DETAILS: bool | None
    URL_PREFIX: str
    INCLUDE_IN_SCHEMA: bool
    INLINE_CHECKS: bool


class ServiceInfoSettings(TypedDict):
    PATH: str
    BUILD: str | None
    COMMIT: str | None
    OPENAPI_URL: str | None
    SHOW_RUNTIME: bool
    EXTRA: Mapping[str, Any]


class IdempotencySettings(TypedDict):
    CACHE: str
    TTL: int
    LOCK_TIMEOUT: int
    METHODS: Sequence[str]
    REQUIRED: bool


class ClientSettings(TypedDict):
    TIMEOUT: float | Sequence[float]
    RETRIES: int
    BACKOFF: float
    BACKOFF_MAX: float
    RETRY_AFTER_MAX: float
    DEADLINE: float
    BREAKER: Mapping[str, Any]
    POOL_SIZE: int
    VERIFY: bool | str
    HEADER_PROVIDERS: Sequence[str]
    RETRY_AFTER_CAP: float
    MAX_BODY_SIZE: int
    MAX_ERROR_BODY_SIZE: int
    MAX_REDIRECTS: int


class MetricsSettings(TypedDict):
    ENABLED: bool
    PATH: str
    ALLOW_NETWORKS: Sequence[str]
    TOKEN: str
    MULTIPROCESS_DIR: str
    BUCKETS: Sequence[float]


class DrainSettings(TypedDict):
    DELAY: float


class TracingSettings(TypedDict):
    ENABLED: bool
    SERVICE_NAME: str
    SPAN_PROCESSORS: Sequence[str]
    TRACING_CLASS: str


class ServiceSettings(ClientSettings):
    """One ``SERVICES`` entry merged over ``CLIENT``: also where it is, and the
    token's audience and scopes."""

    BASE_URL: str
    AUDIENCE: str
    SCOPES: Sequence[str]


class EventsSettings(TypedDict):
    BROKER_URL: str
    FILESYSTEM_FOLDER: str
    EXCHANGE_PREFIX: str
    QUEUE: str
    HANDLERS: Mapping[str, Any]
    TRANSPORT_CLASS: str
    SEND_ON_COMMIT: bool
    PUBLISH_TIMEOUT: float
    RELAY_INTERVAL: float
    RELAY_BATCH_SIZE: int
    RETRY_BACKOFF: float
    RETRY_BACKOFF_MAX: float
    OUTBOX_RETENTION: int
    INBOX_RETENTION: int
    MAX_ATTEMPTS: int
    HANDLER_BACKOFF: float
    HANDLER_BACKOFF_MAX: float
    PREFETCH: int
    MAX_EVENT_SIZE: int
    LAG_WARN: float
    LAG_FAIL: float


class MicrokitSettings:
    """Merged ``MICROKIT`` settings, looked up lazily and cached.

    ``microkit_settings.SERVICE_NAME`` gives a plain value;
    ``microkit_settings.ERRORS`` gives a read-only mapping of that section with
    the service's values laid over the defaults.
    """

    # What each name gives (each becomes a _Setting, defined below).
    SERVICE_NAME: str
    SERVICE_VERSION: str
    PAGINATION: PaginationSettings
    VERSIONING: VersioningSettings
    REQUEST_ID: RequestIDSettings
    ACCESS_LOG: AccessLogSettings
    SENTRY: SentrySettings
    SERVICE_AUTH: ServiceAuthSettings
    ERRORS: ErrorsSettings
    HEALTH: HealthSettings
    SERVICE_INFO: ServiceInfoSettings
    IDEMPOTENCY: IdempotencySettings
    CLIENT: ClientSettings
    SERVICES: Mapping[str, Mapping[str, Any]]
    EVENTS: EventsSettings
    METRICS: MetricsSettings
    DRAIN: DrainSettings
    TRACING: TracingSettings

    def __init__(self, defaults: Mapping[str, Option | dict[str, Option]]) -> None:
        self._defaults = defaults
        self._cache: dict[str, Any] = {}

    @staticmethod
    def user_settings() -> Mapping[str, Any]:
        """The raw ``MICROKIT`` dict of the service (empty if absent or malformed)."""
        value = getattr(settings, "MICROKIT", {})
        return value if isinstance(value, Mapping) else {}

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_") or name not in self._defaults:
            raise AttributeError(f"Unknown MICROKIT setting: {name!r}")
        cache = self._cache
        try:
            return cache[name]
        except KeyError:
            # Kept in the dict this lookup began with: a reload() meanwhile
            # replaced it, so a value read before the change is not kept.
            value = cache[name] = self._resolve(name)
            return value

    def _resolve(self, name: str) -> Any:
        spec = self._defaults[name]
        user_value = self.user_settings().get(name, _MISSING)
        if isinstance(spec, Option):
            return spec.default if user_value is _MISSING else user_value
        merged = {key: option.default for key, option in spec.items()}
        if isinstance(user_value, Mapping):
            merged.update(user_value)
        return MappingProxyType(merged)

    def reload(self) -> None:
        """Forget cached values; the next access reads Django settings again."""
        self._cache = {}


_MISSING: Any = object()


class _Setting:
    """A ``MICROKIT`` name as a class attribute of :class:`MicrokitSettings`.

    Read on every request, a name only ``__getattr__`` knows first fails the
    ordinary lookup, and that failure formats an ``AttributeError`` message
    that nobody reads: as an attribute of the class, the name is found at once
    and reads the same cache ``__getattr__`` fills.
    """

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def __get__(self, instance: MicrokitSettings | None, owner: type) -> Any:
        if instance is None:
            return self
        try:
            return instance._cache[self.name]
        except KeyError:
            return instance.__getattr__(self.name)


for _name in DEFAULTS:
    setattr(MicrokitSettings, _name, _Setting(_name))

#: The merged settings object every module of django-microkit reads.
microkit_settings = MicrokitSettings(DEFAULTS)


class Derived(Generic[T]):
    """A value computed from settings on first use and kept until they change.

    Made by :func:`derived`. Calling it returns the value, computing it once
    (under a lock, so two threads never build two of it); :meth:`reset` drops
    it. Every ``Derived`` is reset when Django sends ``setting_changed`` for
    one of its ``settings`` (``MICROKIT`` unless told otherwise), and, if
    ``fork_safe``, in the child after ``os.fork()`` (threads and sockets do not
    survive a fork: a gunicorn worker builds its own). A value computed while a
    reset happened is returned to its caller but not kept, so a settings change
    is never undone by a computation that started before it.
    """

    __slots__ = (
        "__wrapped__",
        "_generation",
        "_lock",
        "_value",
        "fork_safe",
        "settings",
    )

    def __init__(
        self,
        compute: Callable[[], T],
        *,
        settings: frozenset[str] = frozenset({"MICROKIT"}),
        fork_safe: bool = False,
    ) -> None:
        self.__wrapped__ = compute
        self.settings = settings
        self.fork_safe = fork_safe
        self._lock = threading.Lock()
        self._value: Any = _MISSING
        self._generation = 0
        _ALL_DERIVED.append(self)

    def __call__(self) -> T:
        value = self._value
        if value is _MISSING:
            with self._lock:
                value = self._value
                if value is _MISSING:
                    generation = self._generation
                    value = self.__wrapped__()
                    if generation == self._generation:
                        self._value = value
        return value  # type: ignore[no-any-return]

    def reset(self) -> None:
        """Forget the value: the next call computes it again."""
        self._generation += 1
        self._value = _MISSING

    def _after_fork(self) -> None:  # pragma: no cover - runs in a forked child
        # A lock some parent thread held at fork() stays held in the child:
        # every value gets a fresh one; only fork-unsafe contents are dropped.
        self._lock = threading.Lock()
        if self.fork_safe:
            self.reset()


_ALL_DERIVED: list[Derived[Any]] = []


@overload
def derived(compute: Callable[[], T], /) -> Derived[T]: ...
@overload
def derived(
    *, settings: Sequence[str] = ..., fork_safe: bool = ...
) -> Callable[[Callable[[], T]], Derived[T]]: ...
def derived(
    compute: Callable[[], T] | None = None,
    /,
    *,
    settings: Sequence[str] = ("MICROKIT",),
    fork_safe: bool = False,
) -> Derived[T] | Callable[[Callable[[], T]], Derived[T]]:
    """Decorate a function of no arguments computing a value from settings.

    ``@derived`` or ``@derived(settings=("MICROKIT", "CACHES"), fork_safe=True)``.
    """

    def wrap(function: Callable[[], T]) -> Derived[T]:
        return Derived(function, settings=frozenset(settings), fork_safe=fork_safe)

    return wrap if compute is None else wrap(compute)


@receiver(setting_changed)
def _reload_on_change(*, setting: str, **kwargs: Any) -> None:
    if setting == "MICROKIT":
        microkit_settings.reload()
    for value in _ALL_DERIVED:
        if setting in value.settings:
            value.reset()


def _after_fork() -> None:  # pragma: no cover - runs in a forked child
    for value in _ALL_DERIVED:
        value._after_fork()


if hasattr(os, "register_at_fork"):  # pragma: no branch - absent on Windows only
    os.register_at_fork(after_in_child=_after_fork)


#: REST_FRAMEWORK values a service needs for django-microkit to take effect:
#: the system checks report ``E005`` unless each is this class or a subclass.
REST_FRAMEWORK_WIRING: dict[str, str] = {
    "DEFAULT_SCHEMA_CLASS": "django_microkit.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "django_microkit.errors.exception_handler",
}


#: REST_FRAMEWORK values recommended but not required: a view or a service may
#: choose another paginator or versioning scheme.
_REST_FRAMEWORK_RECOMMENDED: dict[str, str | tuple[str, ...]] = {
    "DEFAULT_PAGINATION_CLASS": "django_microkit.pagination.PageNumberPagination",
    "DEFAULT_VERSIONING_CLASS": "django_microkit.versioning.NegotiatedVersioning",
    # DRF's default parsers, with a JSON parser that answers 400 (not 500) to
    # JSON nested too deeply to decode.
    "DEFAULT_PARSER_CLASSES": (
        "django_microkit.parsers.JSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ),
}


def rest_framework_defaults() -> dict[str, Any]:
    """The recommended ``REST_FRAMEWORK`` values, to merge into a service's own.

    ``REST_FRAMEWORK = {**django_microkit.rest_framework_defaults(), ...}``
    wires DRF to django-microkit in one line; keys the service sets after the
    merge win.
    """
    recommended = {
        key: list(value) if isinstance(value, tuple) else value
        for key, value in _REST_FRAMEWORK_RECOMMENDED.items()
    }
    return {**REST_FRAMEWORK_WIRING, **recommended}
