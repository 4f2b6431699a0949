"""Where each target service is and how to call it, from ``MICROKIT`` settings.

``MICROKIT["SERVICES"]`` names the services this one calls; each entry gives
at least a ``BASE_URL`` and may override any default of ``MICROKIT["CLIENT"]``.
:meth:`ServiceConfig.from_settings` merges and validates the entry of one
service (:class:`~django_microkit.client.ServiceClient` keeps the result until
``MICROKIT`` changes). The same validation feeds the system checks
(``django_microkit.E060``–``E066``, ``W060``, ``W061``, :mod:`.checks`), so a
mistake is reported at start-up and, if ignored, refused with
``ImproperlyConfigured`` at the first call.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import SplitResult, urlsplit

from django.core.exceptions import ImproperlyConfigured
from django.utils.module_loading import import_string

from django_microkit.checks import Issue, did_you_mean, is_number
from django_microkit.client.breaker import BreakerConfig
from django_microkit.conf import DEFAULTS, Option, ServiceSettings, microkit_settings

if TYPE_CHECKING:
    from django_microkit.client import HeaderProvider

__all__ = ["ServiceConfig", "settings_issues"]

_CLIENT_SPEC = cast("dict[str, Option]", DEFAULTS["CLIENT"])
#: Keys a SERVICES entry may have: every CLIENT key, plus its own.
_SERVICE_SPEC: dict[str, Option] = {
    "BASE_URL": Option("", (str,)),
    "AUDIENCE": Option("", (str,)),
    "SCOPES": Option((), (list, tuple)),
    **_CLIENT_SPEC,
}
#: Keys a BREAKER dict may have, with MICROKIT["CLIENT"]["BREAKER"]'s defaults.
_BREAKER_SPEC: dict[str, Option] = {
    key: Option(_CLIENT_SPEC["BREAKER"].default[key], types)
    for key, types in (
        ("FAILURES", (int,)),
        ("RATIO", (int, float, type(None))),
        ("WINDOW", (int,)),
        ("COOL_DOWN", (int, float)),
    )
}
_DEFAULT_PORTS = {"http": 80, "https": 443}


@dataclass(frozen=True)
class ServiceConfig:
    """Everything a call to one service needs, merged and validated."""

    name: str
    base_url: str
    timeout: tuple[float, float]
    retries: int
    backoff: float
    backoff_max: float
    retry_after_max: float
    retry_after_cap: float
    deadline: float
    breaker: BreakerConfig
    pool_size: int
    verify: bool | str
    audience: str
    scopes: tuple[str, ...]
    max_body_size: int
    max_error_body_size: int
    max_redirects: int
    header_providers: tuple[HeaderProvider, ...] = field(repr=False)

    @classmethod
    def from_settings(cls, name: str) -> ServiceConfig:
        """The merged configuration of service ``name``, read from the settings
        now (not cached).

        Raises ``ImproperlyConfigured`` when the service is not in
        ``MICROKIT["SERVICES"]`` or its settings have an error.
        """
        services = microkit_settings.SERVICES
        if not isinstance(services, Mapping) or name not in services:
            raise ImproperlyConfigured(
                f"MICROKIT['SERVICES'] has no entry {name!r}: add one with its "
                "BASE_URL."
            )
        client = _client_issues()
        errors = [
            issue
            for issue in client + _service_issues(name, services[name], client)
            if issue.is_error
        ]
        if errors:
            raise ImproperlyConfigured(f"{errors[0].msg} {errors[0].hint}")
        merged = _merged(name, services[name])
        return cls(
            name=name,
            base_url=merged["BASE_URL"].rstrip("/"),
            timeout=_timeouts(merged["TIMEOUT"]),
            retries=merged["RETRIES"],
            backoff=float(merged["BACKOFF"]),
            backoff_max=float(merged["BACKOFF_MAX"]),
            retry_after_max=float(merged["RETRY_AFTER_MAX"]),
            retry_after_cap=float(merged["RETRY_AFTER_CAP"]),
            deadline=float(merged["DEADLINE"]),
            breaker=BreakerConfig.from_settings(merged["BREAKER"]),
            pool_size=merged["POOL_SIZE"],
            verify=merged["VERIFY"],
            audience=merged["AUDIENCE"],
            scopes=tuple(merged["SCOPES"]),
            max_body_size=merged["MAX_BODY_SIZE"],
            max_error_body_size=merged["MAX_ERROR_BODY_SIZE"],
            max_redirects=merged["MAX_REDIRECTS"],
            header_providers=tuple(
                import_string(path) for path in merged["HEADER_PROVIDERS"]
            ),
        )

    def url(self, path: str) -> str:
        """The absolute URL of ``path`` (relative to ``base_url``), or ``path``
        itself when it is already an absolute URL; either way under
        ``base_url`` (``../admin/`` is refused), or ``ValueError``."""
        url = path if urlsplit(path).scheme else f"{self.base_url}/{path.lstrip('/')}"
        if not self.owns(url):
            raise ValueError(f"{path!r} is not under {self.name}'s {self.base_url}")
        return url

    def owns(self, url: str) -> bool:
        """Whether ``url`` is under ``base_url``: same scheme, host and port, and
        a path below the base path. Credentials are never sent anywhere else."""
        base_parts, base = self._base
        try:
            parts = urlsplit(url)
        except ValueError:
            return False
        if parts.netloc == base_parts.netloc and parts.scheme == base_parts.scheme:
            # The base's scheme, host and port: every call's URL is built on
            # base_url, so its netloc need not be parsed again.
            origin = None if base is None else (*base[:3], parts.path)
        else:
            origin = _origin_and_path(url)
        return _under(origin, base)

    @cached_property
    def _base(self) -> tuple[SplitResult, _Origin | None]:
        """``base_url`` split, and its origin and path: parsed once, not per
        call (the settings do not change under a config)."""
        return urlsplit(self.base_url), _origin_and_path(self.base_url)


_Origin = tuple[str, str, int, str]
"""(scheme, host, port, path) of a URL."""


def _origin_and_path(url: str) -> _Origin | None:
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS or not parts.hostname:
        return None
    return scheme, parts.hostname, port or _DEFAULT_PORTS[scheme], parts.path


def _under(url: _Origin | None, base: _Origin | None) -> bool:
    if url is None or base is None or url[:3] != base[:3]:
        return False
    base_path = base[3].rstrip("/")
    path = _without_dot_segments(url[3])
    return path == base_path or path.startswith(base_path + "/")


def _without_dot_segments(path: str) -> str:
    """``path`` with its ``.`` and ``..`` segments resolved (RFC 3986 §5.2.4),
    ``%2E`` taken as a dot: as the peer or a proxy on the way resolves them,
    so ``/api/../admin/`` is not under ``/api``."""
    if "." not in path and "%2" not in path:  # no dot segment, plain or encoded
        return path
    kept: list[str] = []
    segments = path.replace("%2E", ".").replace("%2e", ".").split("/")
    for segment in segments:
        if segment == "..":
            if len(kept) > 1:
                kept.pop()
        elif segment != ".":
            kept.append(segment)
    if segments[-1] in (".", ".."):
        kept.append("")
    return "/".join(kept)


# --------------------------------------------------------------------------
# Validation, shared by the system checks and the first call
# --------------------------------------------------------------------------


def _timeout_issue(value: Any, where: str) -> Issue | None:
    parts = value if isinstance(value, (list, tuple)) else (value, value)
    if len(parts) == 2 and all(is_number(p) and _float(p) > 0 for p in parts):
        return None
    return Issue(
        "django_microkit.E064",
        f"{where} must be a number of seconds > 0 or a (connect, read) pair of "
        f"them, not {value!r}.",
        "Every call needs a connect and a read timeout; there is no 'no timeout'.",
    )


def _float(value: float) -> float:
    """``value`` as the float a call uses, NaN (in no range) for an infinity
    or an int too large to be one: every time a call waits is bounded."""
    try:
        number = float(value)
    except OverflowError:
        return math.nan
    return number if math.isfinite(number) else math.nan


def _range_issue(where: str, value: Any, expected: str) -> Issue:
    return Issue(
        "django_microkit.E065",
        f"{where} must be {expected}, not {value!r}.",
        f"Set {where} to {expected}.",
    )


_Range = tuple[Callable[[Any], bool], str]  # (test, what the value must be)
_INT_AT_LEAST_0: _Range = (lambda v: v >= 0, "an int >= 0")
_INT_AT_LEAST_1: _Range = (lambda v: v >= 1, "an int >= 1")
_BYTES: _Range = (lambda v: v >= 0, "a number of bytes >= 0")
_SECONDS_AT_LEAST_0: _Range = (lambda v: _float(v) >= 0, "a number of seconds >= 0")
_SECONDS_ABOVE_0: _Range = (lambda v: _float(v) > 0, "a number of seconds > 0")
_RANGES: dict[str, _Range] = {
    "RETRIES": _INT_AT_LEAST_0,
    "BACKOFF": _SECONDS_AT_LEAST_0,
    "BACKOFF_MAX": _SECONDS_AT_LEAST_0,
    "RETRY_AFTER_MAX": _SECONDS_AT_LEAST_0,
    "RETRY_AFTER_CAP": _SECONDS_AT_LEAST_0,
    "MAX_BODY_SIZE": _BYTES,
    "MAX_ERROR_BODY_SIZE": _BYTES,
    "MAX_REDIRECTS": _INT_AT_LEAST_0,
    "DEADLINE": _SECONDS_ABOVE_0,
    "POOL_SIZE": _INT_AT_LEAST_1,
    "AUDIENCE": (lambda v: v != "", "a non-empty service name"),
    "FAILURES": _INT_AT_LEAST_1,
    "RATIO": (lambda v: v is None or 0 < v <= 1, "None or a number in (0, 1]"),
    "WINDOW": _INT_AT_LEAST_1,
    "COOL_DOWN": _SECONDS_ABOVE_0,
}


def _provider_issues(paths: Any, where: str) -> list[Issue]:
    issues = []
    for path in paths:
        try:
            provider = import_string(path) if isinstance(path, str) else None
        except ImportError:
            provider = None
        if not callable(provider):
            issues.append(
                Issue(
                    "django_microkit.E066",
                    f"{where} entry {path!r} is not the dotted path of a callable.",
                    "Give 'package.module.function' paths of header providers: "
                    "callables taking an OutgoingCall and returning headers.",
                )
            )
    return issues


def _entry_issues(
    values: Mapping[Any, Any], spec: Mapping[str, Option], where: str, *, own: bool
) -> list[Issue]:
    """Issues in one dict of settings. ``own``: the dict is not covered by the
    generic checks, so unknown keys are reported here and wrong types are E063
    (a SERVICES entry, a BREAKER dict); otherwise unknown keys are left to E002
    and wrong types are E003, the generic check's ID and words, so that the
    first call refuses what ``check_settings`` reported."""
    issues: list[Issue] = []
    for key, value in values.items():
        path = f"{where}[{key!r}]"
        option = spec.get(key)
        if option is None:
            if own:
                issues.append(
                    Issue(
                        "django_microkit.E062",
                        f"{path} is not a service client setting.",
                        "Remove it or correct the spelling."
                        + did_you_mean(str(key), spec),
                    )
                )
        elif (key == "TIMEOUT" and own) or option.accepts(value):
            # An entry's None, True...: reported as a timeout problem.
            issues.extend(_value_issues(key, value, path))
        else:
            issues.append(
                _type_issue(path, option.describe(), value, "E063" if own else "E003")
            )
    return issues


def _type_issue(path: str, expected: str, value: Any, number: str) -> Issue:
    return Issue(
        f"django_microkit.{number}",
        f"{path} must be {expected}, not {type(value).__name__}.",
        f"Set {path} to a value of type {expected}.",
    )


def _value_issues(key: str, value: Any, path: str) -> list[Issue]:
    if key == "TIMEOUT":
        issue = _timeout_issue(value, path)
        return [issue] if issue else []
    if key == "BREAKER":
        return _entry_issues(value, _BREAKER_SPEC, path, own=True)
    if key == "HEADER_PROVIDERS":
        return _provider_issues(value, path)
    if key == "SCOPES" and not all(isinstance(s, str) for s in value):
        return [
            Issue(
                "django_microkit.E063",
                f"{path} must be a list of str.",
                f"Set {path} to scope names such as ['products:read'].",
            )
        ]
    if key == "BASE_URL":
        issue = _base_url_issue(value, path)
        return [issue] if issue else []
    if key in _RANGES:
        test, expected = _RANGES[key]
        if not test(value):
            return [_range_issue(path, value, expected)]
    return []


def _base_url_issue(value: str, where: str) -> Issue | None:
    problem = None
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises ValueError for a malformed port
    except ValueError:
        problem = "is malformed"
    else:
        if parts.scheme not in _DEFAULT_PORTS or not parts.hostname:
            problem = "needs an http:// or https:// scheme and a host"
        elif parts.username is not None or parts.password is not None:
            problem = "must not carry credentials"
        elif parts.query or parts.fragment:
            problem = "must not have a query or a fragment"
    if problem is None:
        return None
    return Issue(
        "django_microkit.E061",
        f"{where} {problem}: {value!r}.",
        "Give the service's root, for example 'http://catalog:8000' or "
        "'https://catalog.internal/api'.",
    )


def _timeouts(value: float | Sequence[float]) -> tuple[float, float]:
    if isinstance(value, (int, float)):
        return float(value), float(value)
    return float(value[0]), float(value[1])


def settings_issues() -> list[Issue]:
    """Every mistake in ``MICROKIT["CLIENT"]`` and ``MICROKIT["SERVICES"]``,
    but for the wrong types in ``CLIENT``: ``check_settings`` reports those
    (E003) for every section."""
    client = _client_issues()
    issues = [issue for issue in client if issue.id != "django_microkit.E003"]
    services = microkit_settings.user_settings().get("SERVICES")
    if isinstance(services, Mapping):
        for name, entry in services.items():
            issues.extend(_service_issues(name, entry, client))
        issues.extend(_token_issues(services))
    return issues


_TOKEN_PROVIDER = "django_microkit.client.headers.service_token_header"


def _token_issues(services: Mapping[Any, Any]) -> list[Issue]:
    """W061: calls meant to carry a service token, and nothing to sign it with."""
    if microkit_settings.SERVICE_AUTH["SIGNING_KEYS"]:
        return []
    default = microkit_settings.CLIENT["HEADER_PROVIDERS"]
    names = [
        str(name)
        for name, entry in services.items()
        if isinstance(entry, Mapping)
        and isinstance(paths := entry.get("HEADER_PROVIDERS", default), list | tuple)
        and _TOKEN_PROVIDER in paths
    ]
    if not names:
        return []
    return [
        Issue(
            "django_microkit.W061",
            f"Calls to {', '.join(names)} carry no service token: "
            "MICROKIT['SERVICE_AUTH']['SIGNING_KEYS'] is empty.",
            "Give this service a signing key (manage.py microkit_service_key), or "
            "drop service_token_header from HEADER_PROVIDERS of the services that "
            "need no token.",
        )
    ]


def _client_issues() -> list[Issue]:
    where = "MICROKIT['CLIENT']"
    client = microkit_settings.user_settings().get("CLIENT", {})
    if not isinstance(client, Mapping):
        return [_type_issue(where, "dict", client, "E003")]
    return _entry_issues(client, _CLIENT_SPEC, where, own=False)


def _service_issues(name: Any, entry: Any, client: list[Issue]) -> list[Issue]:
    """The issues of one SERVICES entry, and W060 when neither it nor
    ``CLIENT`` (whose issues are ``client``) has an error: only then can the
    two be merged."""
    where = f"MICROKIT['SERVICES'][{name!r}]"
    if not isinstance(name, str) or not name or not isinstance(entry, Mapping):
        return [
            Issue(
                "django_microkit.E060",
                f"{where} must map a service name to a dict of settings.",
                "Write SERVICES = {'catalog': {'BASE_URL': 'http://catalog:8000'}}.",
            )
        ]
    issues = _entry_issues(entry, _SERVICE_SPEC, where, own=True)
    if "BASE_URL" not in entry:
        issues.append(
            Issue(
                "django_microkit.E061",
                f"{where} has no 'BASE_URL'.",
                "Say where the service answers, for example 'http://catalog:8000'.",
            )
        )
    if not any(issue.is_error for issue in client + issues):
        merged = _merged(name, entry)
        connect, read = _timeouts(merged["TIMEOUT"])
        if merged["DEADLINE"] < connect + read:
            issues.append(
                Issue(
                    "django_microkit.W060",
                    f"{where}: the DEADLINE ({merged['DEADLINE']} s) is shorter than "
                    f"the connect and read timeouts together ({connect + read} s).",
                    "A slow answer is cut by the deadline before its read timeout: "
                    "raise DEADLINE or lower TIMEOUT.",
                )
            )
    return issues


def _merged(name: str, entry: Mapping[str, Any]) -> ServiceSettings:
    """The entry of service ``name`` over ``CLIENT``, once both are valid."""
    client = microkit_settings.CLIENT
    merged = cast(
        "ServiceSettings", {"AUDIENCE": name, "SCOPES": (), **client, **entry}
    )
    merged["BREAKER"] = {**client["BREAKER"], **entry.get("BREAKER", {})}
    return merged
