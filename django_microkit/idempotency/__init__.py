"""Idempotency keys: a ``POST`` or ``PATCH`` retried with the same
``Idempotency-Key`` is executed once.

A client that does not know whether its request arrived (a timeout, a dropped
connection) can send it again with the same key and get the first response back
instead of creating a second order. The behaviour follows the IETF
``Idempotency-Key`` header draft (draft-ietf-httpapi-idempotency-key-header) and
the way Stripe's API has applied it for years:

- the first request with a key claims it (an atomic ``cache.add()`` with a
  lease, so a crashed worker never blocks the key for good), runs, and its
  completed response is stored for ``MICROKIT["IDEMPOTENCY"]["TTL"]`` seconds;
- a retry with the same key and the same request gets the stored response with
  ``Idempotent-Replayed: true`` and, in ``Idempotent-Replayed-Request-ID``, the
  request ID of the first request, which its stored body names too;
- the same key with a different request is a 422 problem
  (``idempotency_key_reused``); a retry while the first is still running is a 409
  problem (``idempotency_key_in_progress``).

Keys are scoped to the caller (the authenticated principal, else the client
address), the method and the path. Storage is Django's cache framework (Redis in
production); when the cache cannot be reached the request is refused with a 503
problem rather than run without protection.

The caller is only known once Django REST framework has authenticated the
request, and problems are rendered by DRF's exception handler, so the feature is
a mixin for DRF views: :class:`IdempotentMixin`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import uuid
from collections.abc import Collection
from typing import Any, TypedDict, cast

from django.core.cache import BaseCache, caches
from django.http import HttpRequest, HttpResponse
from django.http.response import HttpResponseBase
from drf_spectacular.utils import OpenApiParameter
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from django_microkit.conf import microkit_settings
from django_microkit.errors.problem import Problem
from django_microkit.metrics.families import IDEMPOTENCY_CONFLICTS, IDEMPOTENCY_REPLAYS
from django_microkit.request_id import get_request_id

__all__ = [
    "IDEMPOTENCY_KEY_HEADER",
    "IDEMPOTENT_REPLAYED_HEADER",
    "IDEMPOTENT_REPLAYED_REQUEST_ID_HEADER",
    "IdempotentMixin",
    "openapi_parameters",
    "openapi_responses",
]

#: The request header carrying the client's key (the service client sends it too).
IDEMPOTENCY_KEY_HEADER = "Idempotency-Key"
#: The response header marking a stored response sent again.
IDEMPOTENT_REPLAYED_HEADER = "Idempotent-Replayed"
#: The response header of a replay naming the request that produced the stored
#: response: the ``request_id`` in a stored problem body, and the request whose
#: logs tell what happened. The replay's own ``X-Request-ID`` names the retry.
IDEMPOTENT_REPLAYED_REQUEST_ID_HEADER = "Idempotent-Replayed-Request-ID"

_META_KEY = "HTTP_IDEMPOTENCY_KEY"
_MAX_KEY_LENGTH = 255
# RFC 8941 §3.3.3: sf-string = DQUOTE *( unescaped / "\" ( DQUOTE / "\" ) ) DQUOTE
_SF_STRING = re.compile(r'"((?:[^"\\]|\\["\\])*)"')
_SF_ESCAPE = re.compile(r'\\(["\\])')
_VISIBLE_ASCII = re.compile(r"[!-~]+")
_CACHE_KEY_PREFIX = "microkit:idempotency:"
# How often a claim is tried again when the key vanished between a failed
# ``add()`` and the ``get()`` that followed it (the holder released it).
_CLAIM_ATTEMPTS = 3

# Response headers never stored: they describe one exchange, not the result
# (hop-by-hop and framing headers, cookies, caching negotiation, the request ID
# and trace context of the first request). Middleware outside the view sets its
# own headers on the replay as on any response.
_UNSTORED_HEADERS = frozenset(
    {
        "connection",
        "content-length",
        "date",
        "idempotent-replayed",
        "keep-alive",
        "server",
        "set-cookie",
        "traceparent",
        "tracestate",
        "transfer-encoding",
        "vary",
        "x-request-id",
    }
)

_logger = logging.getLogger(__name__)


class _Running(TypedDict):
    state: str  # "running"
    fingerprint: str
    token: str


class _Done(TypedDict):
    state: str  # "done"
    fingerprint: str
    status: int
    headers: list[tuple[str, str]]
    body: bytes
    request_id: str | None


class _Replay(Exception):
    """Raised from ``initial()`` to answer with a stored response."""

    def __init__(self, response: Response) -> None:
        super().__init__()
        self.response = response


def _unavailable() -> Problem:
    return Problem(
        503,
        "idempotency_unavailable",
        detail="Idempotency keys cannot be checked right now; try again later.",
    )


def _header_error(code: str, detail: str) -> list[Any]:
    return [{"code": code, "detail": detail, "header": IDEMPOTENCY_KEY_HEADER}]


def _parse_key(value: str) -> str | None:
    """The key in an ``Idempotency-Key`` header value, or ``None`` if invalid.

    A key is 1–255 visible ASCII characters. It may be sent bare
    (``Idempotency-Key: 4f1c…``, as Stripe's clients do) or as an RFC 8941 string
    (``Idempotency-Key: "4f1c…"``, as the IETF draft specifies); both name the
    same key.
    """
    if len(value) >= 2 and value[0] == value[-1] == '"':
        string = _SF_STRING.fullmatch(value)
        if string is None:
            return None
        value = _SF_ESCAPE.sub(r"\1", string[1])
    if 1 <= len(value) <= _MAX_KEY_LENGTH and _VISIBLE_ASCII.fullmatch(value):
        return value
    return None


def _counted(answer: Exception) -> Exception:
    """``answer`` (a replay or a refusal), counted in the metrics."""
    if isinstance(answer, Problem):
        IDEMPOTENCY_CONFLICTS.labels(answer.code).inc()
    else:
        IDEMPOTENCY_REPLAYS.inc()
    return answer


class _Claim:
    """A key this request holds while its view runs."""

    def __init__(self, cache: BaseCache, cache_key: str, fingerprint: str) -> None:
        self.cache = cache
        self.cache_key = cache_key
        self.fingerprint = fingerprint
        self.token = uuid.uuid4().hex

    def acquire(self) -> None:
        """Claim the key, or raise the answer for this request."""
        running: _Running = {
            "state": "running",
            "fingerprint": self.fingerprint,
            "token": self.token,
        }
        lease = microkit_settings.IDEMPOTENCY["LOCK_TIMEOUT"]
        for _attempt in range(_CLAIM_ATTEMPTS):
            try:
                if self.cache.add(self.cache_key, running, lease):
                    return
                record = self.cache.get(self.cache_key)
            except Exception as exc:
                raise _unavailable() from exc
            if record is not None:
                raise _counted(self._answer(record))
        # The key was released each time between add() and get(): another
        # request is taking it right now.
        raise _counted(self._in_progress())

    def _answer(self, record: _Running | _Done) -> Exception:
        if record["fingerprint"] != self.fingerprint:
            return Problem(
                422,
                "idempotency_key_reused",
                detail="This Idempotency-Key was already used with a different "
                "request. Use a new key for a new request.",
            )
        if record["state"] != "done":
            return self._in_progress()
        done = cast(_Done, record)
        # A DRF response whose content is already set is never rendered again.
        response = Response(status=done["status"])
        response.content = done["body"]
        del response["Content-Type"]
        for name, value in done["headers"]:
            response[name] = value
        response[IDEMPOTENT_REPLAYED_HEADER] = "true"
        # Absent from records stored before the request ID was kept.
        first_request_id = done.get("request_id")
        if first_request_id:
            response[IDEMPOTENT_REPLAYED_REQUEST_ID_HEADER] = first_request_id
            _logger.info("Replaying the response of request %s", first_request_id)
        return _Replay(response)

    @staticmethod
    def _in_progress() -> Problem:
        return Problem(
            409,
            "idempotency_key_in_progress",
            detail="A request with this Idempotency-Key is still being processed. "
            "Retry later to get its response.",
        )

    def finish(self, response: HttpResponseBase) -> None:
        """Store a completed response; release the key for any other."""
        if response.streaming or response.status_code >= 500:
            self.release()
            return
        response = cast(HttpResponse, response)
        render = getattr(response, "render", None)
        if callable(render):
            render()
        done: _Done = {
            "state": "done",
            "fingerprint": self.fingerprint,
            "status": response.status_code,
            "headers": [
                (name, value)
                for name, value in response.items()
                if name.lower() not in _UNSTORED_HEADERS
            ],
            "body": response.content,
            "request_id": get_request_id(),
        }
        try:
            self.cache.set(self.cache_key, done, microkit_settings.IDEMPOTENCY["TTL"])
        except Exception:
            # The view has run: its response goes out. A retry gets 409 until
            # the lease ends, then runs again.
            _logger.exception("Could not store the response of an idempotent request")

    def release(self) -> None:
        """Give the key up so that a retry runs the request again."""
        try:
            record = self.cache.get(self.cache_key)
            if record is not None and record.get("token") == self.token:
                self.cache.delete(self.cache_key)
        except Exception:
            # The lease ends on its own.
            _logger.exception("Could not release an idempotency key")


class IdempotentMixin(APIView):
    """Makes a DRF view honour ``Idempotency-Key`` on unsafe methods.

    Put it first among the view's bases::

        class OrderViewSet(IdempotentMixin, mixins.CreateModelMixin, GenericViewSet):
            ...

    A request whose method is in ``MICROKIT["IDEMPOTENCY"]["METHODS"]`` (``POST``
    and ``PATCH`` by default) and that carries the header is executed once per
    caller, method, path and key::

        POST /api/orders/ HTTP/1.1
        Idempotency-Key: 8e03978e-40d5-43e8-bc93-6894a57f9324

        HTTP/1.1 201 Created                 (first time, and on a retry:)
        Idempotent-Replayed: true

    Set ``idempotency_key_required = True`` (or the ``REQUIRED`` setting) to
    refuse such requests without a key, ``idempotency_methods`` to choose the
    methods of this view, and override :meth:`get_idempotency_caller` to scope
    keys differently.
    """

    #: Refuse requests without a key; ``None`` follows the ``REQUIRED`` setting.
    idempotency_key_required: bool | None = None
    #: Methods that honour keys here; ``None`` follows the ``METHODS`` setting.
    idempotency_methods: Collection[str] | None = None

    _idempotency_claim: _Claim | None = None

    def get_idempotency_caller(self, request: Request) -> str:
        """Who is calling: keys of different callers never meet.

        A service principal (an object with ``service_name``) is
        ``service:<name>``, a Django user ``user:<pk>``, an unauthenticated
        caller ``anonymous:<REMOTE_ADDR>``. Behind a proxy ``REMOTE_ADDR`` is the
        proxy's: anonymous callers then share one scope, so an endpoint open to
        them should scope by something better (override this method).
        """
        user = request.user
        if user is not None and user.is_authenticated:
            service_name = getattr(user, "service_name", None)
            if service_name:
                return f"service:{service_name}"
            pk = getattr(user, "pk", None)
            if pk is not None:
                return f"user:{pk}"
            name = getattr(user, "name", None)
            return f"service:{name}" if name else f"principal:{user}"
        return f"anonymous:{request.META.get('REMOTE_ADDR', '')}"

    def _idempotency_methods(self) -> Collection[str]:
        if self.idempotency_methods is None:
            return microkit_settings.IDEMPOTENCY["METHODS"]
        return self.idempotency_methods

    def _idempotency_key_required(self) -> bool:
        if self.idempotency_key_required is None:
            return bool(microkit_settings.IDEMPOTENCY["REQUIRED"])
        return self.idempotency_key_required

    def _idempotency_applies(self, request: Request) -> bool:
        method = request.method or ""
        return method in self._idempotency_methods() and hasattr(self, method.lower())

    def dispatch(
        self, request: HttpRequest, *args: Any, **kwargs: Any
    ) -> HttpResponseBase:
        # A view instance serves one request (``as_view()``), so the claim
        # made in ``initial()`` is this request's.
        try:
            response = super().dispatch(request, *args, **kwargs)
        except BaseException:
            if self._idempotency_claim is not None:
                self._idempotency_claim.release()
            raise
        if self._idempotency_claim is not None:
            self._idempotency_claim.finish(response)
        return response

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        applies = self._idempotency_applies(request)
        raw_key = request.META.get(_META_KEY) if applies else None
        if raw_key is not None:
            # Read the body before authentication or parsing can consume the
            # stream: Django keeps it, and it is hashed below.
            request._request.body  # noqa: B018
        super().initial(request, *args, **kwargs)
        if not applies:
            return
        if raw_key is None:
            if self._idempotency_key_required():
                raise Problem(
                    400,
                    "idempotency_key_missing",
                    detail=f"This request needs an {IDEMPOTENCY_KEY_HEADER} header.",
                    errors=_header_error(
                        "required", "Send a unique key, for example a UUID."
                    ),
                )
            return
        key = _parse_key(raw_key)
        if key is None:
            raise Problem(
                400,
                "invalid_idempotency_key",
                detail=f"The {IDEMPOTENCY_KEY_HEADER} header is not a valid key.",
                errors=_header_error(
                    "invalid",
                    f"A key is 1 to {_MAX_KEY_LENGTH} visible ASCII characters.",
                ),
            )
        # Parse the body before claiming: the parser's refusals (415, 400) are
        # refusals of how the request was sent, like those of content
        # negotiation and versioning above. They are never stored, so a
        # corrected retry with the same key runs.
        request.data  # noqa: B018
        claim = self._idempotency_claim_for(request, key)
        claim.acquire()
        self._idempotency_claim = claim

    def _idempotency_claim_for(self, request: Request, key: str) -> _Claim:
        django_request = request._request
        scope = json.dumps(
            [
                microkit_settings.SERVICE_NAME,
                self.get_idempotency_caller(request),
                django_request.method,
                django_request.path,
                key,
            ]
        )
        # What the body's bytes mean: their media type and charset, and the
        # API version the view reads them in.
        meaning = json.dumps(
            [
                django_request.method,
                django_request.get_full_path(),
                django_request.content_type,
                (django_request.content_params or {}).get("charset", "").lower(),
                request.version,
            ],
            default=str,
        )
        fingerprint = hashlib.sha256(
            meaning.encode() + b"\n" + django_request.body
        ).hexdigest()
        try:
            cache = caches[microkit_settings.IDEMPOTENCY["CACHE"]]
        except Exception as exc:
            raise _unavailable() from exc
        cache_key = _CACHE_KEY_PREFIX + hashlib.sha256(scope.encode()).hexdigest()
        return _Claim(cache, cache_key, fingerprint)

    def handle_exception(self, exc: Exception) -> Response:
        if isinstance(exc, _Replay):
            return exc.response
        return super().handle_exception(exc)


def _documented(view: Any, method: str) -> bool:
    return isinstance(view, IdempotentMixin) and method in view._idempotency_methods()


def openapi_parameters(view: Any, method: str) -> list[OpenApiParameter]:
    """The ``Idempotency-Key`` parameter of an operation that honours one
    (:class:`django_microkit.openapi.AutoSchema` adds it to the operation)."""
    if not _documented(view, method):
        return []
    return [
        OpenApiParameter(
            IDEMPOTENCY_KEY_HEADER,
            str,
            OpenApiParameter.HEADER,
            required=view._idempotency_key_required(),
            # The language of _parse_key: a bare key, or an RFC 8941 string.
            pattern=r'^(?:[!-~]|[!#-~][!-~]{0,254}|"[!-~]{0,253}[!#-~]'
            r'|"(?:[!#-\[\]-~]|\\["\\]){1,255}")$',
            description=f"A unique key (1 to {_MAX_KEY_LENGTH} visible ASCII "
            "characters, for example a UUID) that makes retrying this request safe: "
            "a retry with the same key and the same request gets the first response "
            f"again, with `{IDEMPOTENT_REPLAYED_HEADER}: true`. Keys are kept "
            f"{microkit_settings.IDEMPOTENCY['TTL']} seconds.",
        )
    ]


def openapi_responses(view: Any, method: str) -> dict[str, str]:
    """Problem responses an operation that honours keys may give, by status
    (:class:`django_microkit.openapi.AutoSchema` documents them)."""
    if not _documented(view, method):
        return {}
    codes = "`invalid_idempotency_key`"
    if view._idempotency_key_required():
        codes += " or `idempotency_key_missing`"
    return {
        "400": f"The {IDEMPOTENCY_KEY_HEADER} header is not valid ({codes}).",
        "409": "A request with this key is still running "
        "(`idempotency_key_in_progress`): retry later.",
        "422": "This key was used with a different request (`idempotency_key_reused`).",
        "503": "Idempotency keys cannot be checked right now "
        "(`idempotency_unavailable`).",
    }
