"""System checks of MICROKIT["SERVICES"] and MICROKIT["CLIENT"]."""

from __future__ import annotations

import typing
from dataclasses import fields
from typing import Any

import pytest
from django.core.checks import ERROR, WARNING, run_checks
from django.core.exceptions import ImproperlyConfigured
from django.test import override_settings

from django_microkit.client import ServiceClient
from django_microkit.client.breaker import BreakerConfig
from django_microkit.client.checks import check_client
from django_microkit.conf import ClientSettings, ServiceSettings
from django_microkit.service_auth.keys import generate_key

SECRET, _ = generate_key("HS256")
SIGNING = {
    "SIGNING_KEYS": [{"kid": "orders-1", "alg": "HS256", "key": {"value": SECRET}}]
}


def found(**microkit: Any) -> list[tuple[str, str, str]]:
    microkit = {"SERVICE_NAME": "orders", "SERVICE_AUTH": SIGNING, **microkit}
    with override_settings(MICROKIT=microkit):
        return _found()


def _found() -> list[tuple[str, str, str]]:
    return [
        (m.id or "", m.msg, m.hint or "")
        for m in run_checks()
        if (m.id or "").startswith("django_microkit")
    ]


def found_and_refused(**microkit: Any) -> tuple[list[tuple[str, str, str]], str]:
    """The messages of the checks, and why a call to catalog is refused."""
    microkit = {"SERVICE_NAME": "orders", "SERVICE_AUTH": SIGNING, **microkit}
    with override_settings(MICROKIT=microkit):
        messages = _found()
        with pytest.raises(ImproperlyConfigured) as refused:
            ServiceClient("catalog").get("/")
    return messages, str(refused.value)


def ids(**microkit: Any) -> list[str]:
    return [found_id for found_id, _, _ in found(**microkit)]


def service(**entry: Any) -> dict[str, Any]:
    return {"SERVICES": {"catalog": {"BASE_URL": "http://catalog:8000", **entry}}}


def test_a_valid_configuration_is_clean() -> None:
    assert (
        ids(
            CLIENT={"TIMEOUT": 2, "BREAKER": {"RATIO": 0.5}},
            SERVICES={
                "catalog": {
                    "BASE_URL": "https://catalog.internal/api/",
                    "TIMEOUT": [0.5, 3],
                    "RETRIES": 0,
                    "BACKOFF": 0,
                    "BREAKER": {"FAILURES": 3, "COOL_DOWN": 5},
                    "SCOPES": ["products:read"],
                    "AUDIENCE": "catalog-v2",
                    "VERIFY": "/etc/ssl/internal.pem",
                    "HEADER_PROVIDERS": [
                        "django_microkit.client.headers.trace_headers"
                    ],
                },
                "search": {"BASE_URL": "http://[::1]:9200"},
            },
        )
        == []
    )


@pytest.mark.parametrize(
    "services",
    [
        {"catalog": "http://catalog:8000"},
        {"": {"BASE_URL": "http://catalog:8000"}},
        {5: {"BASE_URL": "http://catalog:8000"}},
    ],
)
def test_e060_entry_is_not_a_dict_of_settings(services: Any) -> None:
    assert ids(SERVICES=services) == ["django_microkit.E060"]


@pytest.mark.parametrize(
    ("base_url", "problem"),
    [
        ("catalog:8000", "needs an http:// or https:// scheme"),
        ("ftp://catalog", "needs an http:// or https:// scheme"),
        ("http://", "needs an http:// or https:// scheme"),
        ("http://catalog:port", "is malformed"),
        ("http://user:pw@catalog", "must not carry credentials"),
        ("http://catalog/?x=1", "must not have a query"),
        ("http://catalog/#top", "must not have a query"),
    ],
)
def test_e061_invalid_base_url(base_url: str, problem: str) -> None:
    (message,) = found(**service(BASE_URL=base_url))
    assert message[0] == "django_microkit.E061"
    assert problem in message[1]


def test_e061_missing_base_url() -> None:
    (message,) = found(SERVICES={"catalog": {"RETRIES": 1}})
    assert message[:2] == (
        "django_microkit.E061",
        "MICROKIT['SERVICES']['catalog'] has no 'BASE_URL'.",
    )


@pytest.mark.parametrize(
    ("microkit", "where", "suggestion"),
    [
        (service(RETRYS=3), "['catalog']['RETRYS']", "Did you mean 'RETRIES'?"),
        (
            service(BREAKER={"COOLDOWN": 3}),
            "['catalog']['BREAKER']['COOLDOWN']",
            "Did you mean 'COOL_DOWN'?",
        ),
        (
            {"CLIENT": {"BREAKER": {"FAILURE": 3}}},
            "['CLIENT']['BREAKER']['FAILURE']",
            "Did you mean 'FAILURES'?",
        ),
        (service(ZZZ=1), "['catalog']['ZZZ']", ""),
    ],
)
def test_e062_unknown_key(microkit: Any, where: str, suggestion: str) -> None:
    (message,) = found(**microkit)
    assert message[0] == "django_microkit.E062"
    assert where in message[1]
    assert suggestion in message[2]
    if not suggestion:
        assert "Did you mean" not in message[2]


def test_every_key_of_service_settings_is_a_checked_services_key() -> None:
    # ServiceSettings is what mypy sees of a merged entry; the checks must know
    # each of its keys (no E062) and check the value of each.
    keys = list(typing.get_type_hints(ServiceSettings))
    messages = found(SERVICES={"catalog": {key: object() for key in keys}})
    assert "django_microkit.E062" not in [id_ for id_, _, _ in messages]
    for key in keys:
        assert any(f"['catalog'][{key!r}]" in msg for _, msg, _ in messages), key


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"RETRIES": "3"}, "['RETRIES'] must be int, not str."),
        ({"RETRIES": True}, "['RETRIES'] must be int, not bool."),
        ({"BREAKER": 3}, "['BREAKER'] must be dict, not int."),
        ({"BREAKER": {"RATIO": "half"}}, "['RATIO'] must be int or float or None"),
        ({"SCOPES": "products:read"}, "['SCOPES'] must be list or tuple, not str."),
        ({"SCOPES": ["a", 1]}, "['SCOPES'] must be a list of str."),
        ({"VERIFY": None}, "['VERIFY'] must be bool or str, not NoneType."),
    ],
)
def test_e063_wrong_type_in_an_entry(entry: dict[str, Any], message: str) -> None:
    (issue,) = found(**service(**entry))
    assert issue[0] == "django_microkit.E063"
    assert message in issue[1]


def test_client_section_keys_and_types_are_left_to_e002_e003() -> None:
    assert ids(CLIENT={"RETRIES": "3"}) == ["django_microkit.E003"]
    assert ids(CLIENT={"RETRYS": 3}) == ["django_microkit.E002"]


@pytest.mark.parametrize(
    "timeout", [None, 0, -1, (1,), (1, 2, 3), (1, None), [0, 1], True]
)
def test_e064_invalid_timeout_in_an_entry(timeout: Any) -> None:
    assert ids(**service(TIMEOUT=timeout)) == ["django_microkit.E064"]


@pytest.mark.parametrize("timeout", [0, (0.5, -1)])
def test_e064_invalid_default_timeout(timeout: Any) -> None:
    (message,) = found(CLIENT={"TIMEOUT": timeout})
    assert message[0] == "django_microkit.E064"
    assert "MICROKIT['CLIENT']['TIMEOUT']" in message[1]
    assert "there is no 'no timeout'" in message[2]


@pytest.mark.parametrize(
    "entry",
    [
        {"RETRIES": -1},
        {"BACKOFF": -0.1},
        {"BACKOFF_MAX": -1},
        {"RETRY_AFTER_MAX": -1},
        {"RETRY_AFTER_CAP": -1},
        {"MAX_BODY_SIZE": -1},
        {"MAX_ERROR_BODY_SIZE": -1},
        {"MAX_REDIRECTS": -1},
        {"DEADLINE": 0},
        {"POOL_SIZE": 0},
        {"AUDIENCE": ""},
        {"BREAKER": {"FAILURES": 0}},
        {"BREAKER": {"RATIO": 0}},
        {"BREAKER": {"RATIO": 1.5}},
        {"BREAKER": {"WINDOW": 0}},
        {"BREAKER": {"COOL_DOWN": 0}},
    ],
)
def test_e065_value_out_of_range(entry: dict[str, Any]) -> None:
    assert ids(**service(**entry)) == ["django_microkit.E065"]


def test_e065_in_the_client_section() -> None:
    (message,) = found(CLIENT={"DEADLINE": -1})
    assert message[:2] == (
        "django_microkit.E065",
        "MICROKIT['CLIENT']['DEADLINE'] must be a number of seconds > 0, not -1.",
    )


@pytest.mark.parametrize(
    "providers",
    [["no.such.module.provider"], ["django_microkit.client.headers.nope"], [5]],
)
def test_e066_header_provider_is_not_importable(providers: list[Any]) -> None:
    assert ids(**service(HEADER_PROVIDERS=providers)) == ["django_microkit.E066"]
    assert ids(CLIENT={"HEADER_PROVIDERS": providers}) == ["django_microkit.E066"]


def test_e066_header_provider_is_not_callable() -> None:
    assert ids(**service(HEADER_PROVIDERS=["django_microkit.client.LOGGER"])) == [
        "django_microkit.E066"
    ]


@pytest.mark.parametrize(
    "microkit",
    [
        service(DEADLINE=3, TIMEOUT=(1, 5)),
        {**service(), "CLIENT": {"DEADLINE": 2, "TIMEOUT": 1.5}},
    ],
)
def test_w060_deadline_shorter_than_the_timeouts(microkit: Any) -> None:
    (message,) = found(**microkit)
    assert message[0] == "django_microkit.W060"
    assert "raise DEADLINE or lower TIMEOUT" in message[2]


def test_no_w060_while_the_entry_has_errors() -> None:
    assert ids(**service(DEADLINE=1, TIMEOUT=(1, 5), RETRIES=-1)) == [
        "django_microkit.E065"
    ]


def test_w061_no_signing_key_for_the_token_provider() -> None:
    (message,) = found(
        SERVICE_AUTH={},
        SERVICES={
            "catalog": {"BASE_URL": "http://catalog"},
            "search": {"BASE_URL": "http://search", "HEADER_PROVIDERS": []},
            "billing": {"BASE_URL": "http://billing"},
        },
    )
    assert message[:2] == (
        "django_microkit.W061",
        "Calls to catalog, billing carry no service token: "
        "MICROKIT['SERVICE_AUTH']['SIGNING_KEYS'] is empty.",
    )


@pytest.mark.parametrize(
    "microkit",
    [
        {"SERVICE_AUTH": {}, **service(HEADER_PROVIDERS=[])},
        {"SERVICE_AUTH": {}, "CLIENT": {"HEADER_PROVIDERS": []}, **service()},
        {"SERVICE_AUTH": {}},
        service(),
    ],
)
def test_no_w061_when_no_token_is_wanted_or_one_can_be_signed(microkit: Any) -> None:
    assert ids(**microkit) == []


def test_check_client_gives_each_message_the_level_of_its_id() -> None:
    microkit = {
        "SERVICE_NAME": "orders",
        "SERVICE_AUTH": SIGNING,
        "SERVICES": {
            "catalog": {"BASE_URL": "http://catalog", "DEADLINE": 3, "TIMEOUT": 5},
            "search": {},
        },
    }
    with override_settings(MICROKIT=microkit):
        messages = check_client()
    assert [(m.id, m.level) for m in messages] == [
        ("django_microkit.W060", WARNING),
        ("django_microkit.E061", ERROR),
    ]


# A bad value of every CLIENT key, and the ID it gets in CLIENT (where wrong
# types are check_settings' E003) and in a SERVICES entry.
BAD_VALUES: list[tuple[str, Any, str, str]] = [
    ("TIMEOUT", [1], "E064", "E064"),
    ("TIMEOUT", "abc", "E003", "E064"),
    ("TIMEOUT", None, "E003", "E064"),
    ("TIMEOUT", (1, 10**400), "E064", "E064"),
    ("RETRIES", "3", "E003", "E063"),
    ("RETRIES", -1, "E065", "E065"),
    ("BACKOFF", None, "E003", "E063"),
    ("BACKOFF", -0.5, "E065", "E065"),
    ("BACKOFF_MAX", "2", "E003", "E063"),
    ("BACKOFF_MAX", float("nan"), "E065", "E065"),
    ("RETRY_AFTER_MAX", [5], "E003", "E063"),
    ("RETRY_AFTER_MAX", -1, "E065", "E065"),
    ("RETRY_AFTER_CAP", True, "E003", "E063"),
    ("RETRY_AFTER_CAP", 10**400, "E065", "E065"),
    ("DEADLINE", "10", "E003", "E063"),
    ("DEADLINE", 0, "E065", "E065"),
    ("DEADLINE", float("inf"), "E065", "E065"),
    ("TIMEOUT", (1, float("inf")), "E064", "E064"),
    ("BREAKER", 3, "E003", "E063"),
    ("BREAKER", {"COOLDOWN": 3}, "E062", "E062"),
    ("BREAKER", {"FAILURES": "5"}, "E063", "E063"),
    ("BREAKER", {"FAILURES": 0}, "E065", "E065"),
    ("BREAKER", {"RATIO": "half"}, "E063", "E063"),
    ("BREAKER", {"RATIO": 2}, "E065", "E065"),
    ("BREAKER", {"WINDOW": 2.5}, "E063", "E063"),
    ("BREAKER", {"WINDOW": 0}, "E065", "E065"),
    ("BREAKER", {"COOL_DOWN": None}, "E063", "E063"),
    ("BREAKER", {"COOL_DOWN": 10**400}, "E065", "E065"),
    ("POOL_SIZE", 2.0, "E003", "E063"),
    ("POOL_SIZE", 0, "E065", "E065"),
    ("VERIFY", None, "E003", "E063"),
    ("VERIFY", 1, "E003", "E063"),
    (
        "HEADER_PROVIDERS",
        "django_microkit.client.headers.trace_headers",
        "E003",
        "E063",
    ),
    ("HEADER_PROVIDERS", 5, "E003", "E063"),
    ("HEADER_PROVIDERS", ["no.such.provider"], "E066", "E066"),
    ("MAX_BODY_SIZE", 1.5, "E003", "E063"),
    ("MAX_BODY_SIZE", -1, "E065", "E065"),
    ("MAX_ERROR_BODY_SIZE", "1", "E003", "E063"),
    ("MAX_ERROR_BODY_SIZE", -1, "E065", "E065"),
    ("MAX_REDIRECTS", None, "E003", "E063"),
    ("MAX_REDIRECTS", -1, "E065", "E065"),
]


def test_bad_values_cover_every_client_key() -> None:
    keys = {key for key, _, _, _ in BAD_VALUES}
    breaker_keys = {
        key for _, value, _, _ in BAD_VALUES if isinstance(value, dict) for key in value
    }
    assert keys == set(typing.get_type_hints(ClientSettings))
    assert breaker_keys >= {field.name.upper() for field in fields(BreakerConfig)}


@pytest.mark.parametrize(("key", "value", "expected", "_"), BAD_VALUES)
def test_a_bad_client_value_is_an_error_and_refused(
    key: str, value: Any, expected: str, _: str
) -> None:
    messages, refused = found_and_refused(CLIENT={key: value}, **service())
    ((found_id, msg, hint),) = messages
    assert (found_id, refused) == (f"django_microkit.{expected}", f"{msg} {hint}")
    assert msg.startswith("MICROKIT['CLIENT']")


@pytest.mark.parametrize(("key", "value", "_", "expected"), BAD_VALUES)
def test_a_bad_service_value_is_an_error_and_refused(
    key: str, value: Any, _: str, expected: str
) -> None:
    messages, refused = found_and_refused(**service(**{key: value}))
    ((found_id, msg, hint),) = messages
    assert (found_id, refused) == (f"django_microkit.{expected}", f"{msg} {hint}")
    assert msg.startswith("MICROKIT['SERVICES']['catalog']")


def test_a_client_section_that_is_not_a_dict_is_refused() -> None:
    messages, refused = found_and_refused(CLIENT=[("TIMEOUT", 1)], **service())
    assert messages == [
        (
            "django_microkit.E003",
            "MICROKIT['CLIENT'] must be dict, not list.",
            "Set MICROKIT['CLIENT'] to a value of type dict.",
        )
    ]
    assert refused == f"{messages[0][1]} {messages[0][2]}"


@pytest.mark.parametrize(
    "microkit",
    [
        service(HEADER_PROVIDERS=5),
        {"CLIENT": {"HEADER_PROVIDERS": 5}, **service()},
        service(HEADER_PROVIDERS="django_microkit.client.headers.service_token_header"),
    ],
)
def test_no_w061_from_header_providers_that_are_not_a_list(microkit: Any) -> None:
    # The wrong type is the error; no list of providers, no token to miss.
    assert "django_microkit.W061" not in ids(**microkit, SERVICE_AUTH={})
