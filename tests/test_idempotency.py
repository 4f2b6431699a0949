from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from django.conf import settings
from django.core.cache import cache
from django.core.checks import run_checks
from django.test import AsyncClient, override_settings
from django.urls import include, path
from drf_spectacular.generators import SchemaGenerator
from openapi_spec_validator import validate
from rest_framework.test import APIClient

from django_microkit.idempotency.checks import (
    check_idempotency,
    check_idempotency_deploy,
)
from tests.testapp.idempotency_views import executions

COUNTER = "/idempotency/counter/"


@pytest.fixture
def client() -> APIClient:
    return APIClient()


def new_key() -> str:
    return str(uuid.uuid4())


def call(
    path: str = COUNTER,
    data: dict[str, Any] | None = None,
    *,
    key: str | None = None,
    caller: str | None = None,
    method: str = "post",
    client: APIClient | None = None,
) -> Any:
    headers = {}
    if key is not None:
        headers["Idempotency-Key"] = key
    if caller is not None:
        headers["X-Test-Caller"] = caller
    client = client or APIClient()
    return getattr(client, method)(path, data, format="json", headers=headers)


def counter() -> str:
    return uuid.uuid4().hex


def problem_code(response: Any) -> tuple[int, str]:
    """Status and problem code of an error response."""
    return response.status_code, response.json()["code"]


def problem(
    status: int, code: str, detail: str, path: str = COUNTER, **members: Any
) -> dict[str, Any]:
    """The problem document expected for an error of this feature."""
    titles = {
        400: "Bad Request",
        409: "Conflict",
        422: "Unprocessable Content",
        503: "Service Unavailable",
    }
    return {
        "type": "about:blank",
        "title": titles[status],
        "status": status,
        "detail": detail,
        "code": code,
        "instance": path,
        **members,
    }


IN_PROGRESS = problem(
    409,
    "idempotency_key_in_progress",
    "A request with this Idempotency-Key is still being processed. "
    "Retry later to get its response.",
)
REUSED = problem(
    422,
    "idempotency_key_reused",
    "This Idempotency-Key was already used with a different request. "
    "Use a new key for a new request.",
)
INVALID = problem(
    400,
    "invalid_idempotency_key",
    "The Idempotency-Key header is not a valid key.",
    errors=[
        {
            "code": "invalid",
            "detail": "A key is 1 to 255 visible ASCII characters.",
            "header": "Idempotency-Key",
        }
    ],
)
MISSING = problem(
    400,
    "idempotency_key_missing",
    "This request needs an Idempotency-Key header.",
    errors=[
        {
            "code": "required",
            "detail": "Send a unique key, for example a UUID.",
            "header": "Idempotency-Key",
        }
    ],
)
UNAVAILABLE = problem(
    503,
    "idempotency_unavailable",
    "Idempotency keys cannot be checked right now; try again later.",
)


def assert_problem(response: Any, expected: dict[str, Any]) -> None:
    assert response.status_code == expected["status"]
    assert response["Content-Type"] == "application/problem+json"
    body = response.json()
    assert body.pop("request_id") == response["X-Request-ID"]
    assert body == expected


# Replay ---------------------------------------------------------------------


@pytest.mark.parametrize("method", ["post", "patch"])
def test_retry_gets_the_stored_response(method: str) -> None:
    name, key = counter(), new_key()
    first = call(data={"counter": name}, key=key, method=method)
    second = call(data={"counter": name}, key=key, method=method)
    assert first.status_code == 201
    assert "Idempotent-Replayed" not in first
    assert (first.status_code, first.content) == (second.status_code, second.content)
    assert second["Idempotent-Replayed"] == "true"
    for header in ("Content-Type", "Location", "X-Custom"):
        assert first[header] == second[header]
    assert "session" in first.cookies
    assert "session" not in second.cookies
    assert executions(name) == 1


def test_replay_carries_its_own_request_id() -> None:
    name, key = counter(), new_key()
    first = call(data={"counter": name}, key=key)
    second = call(data={"counter": name}, key=key)
    assert second["Idempotent-Replayed"] == "true"
    assert first["X-Request-ID"] != second["X-Request-ID"]
    assert len(second["X-Request-ID"]) == 32


def test_problems_carry_the_request_id() -> None:
    name, key = counter(), new_key()
    call(data={"counter": name}, key=key)
    reused = call(data={"counter": "other"}, key=key)
    assert reused.json()["request_id"] == reused["X-Request-ID"]


# A 415 answered by the handler, unlike the parser's, is stored.
@pytest.mark.parametrize("status", [400, 415])
def test_replay_of_a_client_error_is_stored_too(status: int) -> None:
    name, key = counter(), new_key()
    first = call(data={"counter": name, "status": status}, key=key)
    second = call(data={"counter": name, "status": status}, key=key)
    assert (first.status_code, second.status_code) == (status, status)
    assert second.content == first.content
    assert second["Idempotent-Replayed"] == "true"
    assert executions(name) == 1


def test_replayed_problem_names_the_first_request(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, "django_microkit.idempotency")
    name, key = counter(), new_key()
    first = call(data={"counter": name, "invalid": True}, key=key)
    second = call(data={"counter": name, "invalid": True}, key=key)
    assert (400, first.content) == (second.status_code, second.content)
    assert executions(name) == 1
    original = first["X-Request-ID"]
    assert first.json()["request_id"] == original
    assert second["Idempotent-Replayed-Request-ID"] == original
    assert second["X-Request-ID"] != original
    assert "Idempotent-Replayed-Request-ID" not in first
    assert [
        r.getMessage()
        for r in caplog.records
        if r.name == "django_microkit.idempotency"
    ] == [f"Replaying the response of request {original}"]


def test_replay_without_request_ids_names_no_request() -> None:
    middleware = [
        m for m in settings.MIDDLEWARE if not m.endswith("RequestIDMiddleware")
    ]
    name, key = counter(), new_key()
    with override_settings(MIDDLEWARE=middleware):
        call(data={"counter": name}, key=key)
        replay = call(data={"counter": name}, key=key)
    assert replay["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed-Request-ID" not in replay


def test_replay_without_body() -> None:
    name, key = counter(), new_key()
    first = call("/idempotency/no-content/", {"counter": name}, key=key)
    second = call("/idempotency/no-content/", {"counter": name}, key=key)
    assert (second.status_code, second.content) == (204, b"")
    assert first.get("Content-Type") == second.get("Content-Type")
    assert executions(name) == 1


def test_replay_of_a_django_response() -> None:
    name, key = counter(), new_key()
    path = "/idempotency/django-response/"
    first = call(path, {"counter": name}, key=key)
    second = call(path, {"counter": name}, key=key)
    assert (second.status_code, second.content) == (201, first.content)
    assert second["Content-Type"] == "application/json"
    assert second["Idempotent-Replayed"] == "true"
    assert executions(name) == 1


def test_replay_through_asgi() -> None:
    name, key = counter(), new_key()

    async def post_twice() -> list[Any]:
        client = AsyncClient()
        return [
            await client.post(
                COUNTER,
                {"counter": name},
                content_type="application/json",
                headers={"Idempotency-Key": key},
            )
            for _ in range(2)
        ]

    first, second = async_to_sync(post_twice)()
    assert (201, first.content) == (second.status_code, second.content)
    assert second["Idempotent-Replayed"] == "true"
    assert executions(name) == 1


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("plain-key", '"plain-key"'),
        ('"a\\"b"', 'a"b'),
        ('"back\\\\slash"', "back\\slash"),
    ],
)
def test_bare_and_quoted_keys_are_the_same_key(first: str, second: str) -> None:
    name = counter()
    call(data={"counter": name}, key=first, caller="service:quoted")
    replay = call(data={"counter": name}, key=second, caller="service:quoted")
    assert replay["Idempotent-Replayed"] == "true"
    assert executions(name) == 1


# What runs every time -------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "key"),
    [
        ("post", COUNTER, None),  # no key
        ("put", COUNTER, "k"),  # PUT is not in METHODS by default
        ("post", "/idempotency/put-only/", "k"),  # the view chose PUT only
        ("post", "/idempotency/plain/", "k"),  # a view without the mixin
    ],
)
def test_requests_outside_the_feature_run_each_time(
    method: str, path: str, key: str | None
) -> None:
    name = counter()
    responses = [call(path, {"counter": name}, key=key, method=method) for _ in "ab"]
    assert [r.status_code for r in responses] == [201, 201]
    assert [r.get("Idempotent-Replayed", "") for r in responses] == ["", ""]
    assert executions(name) == 2


def test_view_methods_setting_applies() -> None:
    name, key = counter(), new_key()
    call("/idempotency/put-only/", {"counter": name}, key=key, method="put")
    replay = call("/idempotency/put-only/", {"counter": name}, key=key, method="put")
    assert replay["Idempotent-Replayed"] == "true"
    assert executions(name) == 1


@override_settings(MICROKIT={"IDEMPOTENCY": {"METHODS": ["PUT"]}})
def test_methods_setting_applies() -> None:
    name, key = counter(), new_key()
    assert call(data={"counter": name}, key=key).status_code == 201
    assert call(data={"counter": name}, key=key).status_code == 201
    call(data={"counter": name}, key=key, method="put")
    replay = call(data={"counter": name}, key=key, method="put")
    assert replay["Idempotent-Replayed"] == "true"
    assert executions(name) == 3


def test_method_without_handler_is_not_claimed() -> None:
    key = new_key()
    responses = [
        call("/idempotency/streaming/", {}, key=key, method="patch") for _ in "ab"
    ]
    assert [r.status_code for r in responses] == [405, 405]
    assert "Idempotent-Replayed" not in responses[1]


# Keys reused, in progress, scoped --------------------------------------------


@pytest.mark.parametrize(
    ("changed", "path_suffix"),
    [
        ({"counter": "other"}, ""),  # another body
        ({}, "?page=2"),  # another query string
    ],
)
def test_key_reused_for_another_request_is_422(
    changed: dict[str, Any], path_suffix: str
) -> None:
    name, key = counter(), new_key()
    call(data={"counter": name}, key=key)
    reused = call(COUNTER + path_suffix, {"counter": name, **changed}, key=key)
    assert_problem(reused, REUSED)
    assert "Idempotent-Replayed" not in reused
    assert executions(name) == 1


def send(
    body: bytes, key: str, content_type: str, path: str = COUNTER, **headers: str
) -> Any:
    """POST ``body`` as it is, with ``content_type`` and other headers."""
    return APIClient().post(
        path,
        body,
        content_type=content_type,
        headers={"Idempotency-Key": key, **headers},
    )


@pytest.mark.parametrize(
    ("first", "second", "same"),
    [
        ({"content_type": "text/plain"}, {"content_type": "application/json"}, False),
        (
            {"content_type": "application/json"},
            {"content_type": "application/json; charset=latin-1"},
            False,
        ),
        (
            {"content_type": "application/json; charset=UTF-8"},
            {"content_type": "Application/JSON; Charset=utf-8"},
            True,
        ),
        (
            {"content_type": "application/json", "X-API-Version": "1"},
            {"content_type": "application/json", "X-API-Version": "2"},
            False,
        ),
        (
            {"content_type": "application/json"},
            {"content_type": "application/json", "X-API-Version": "1"},
            True,  # the default version, named or not
        ),
        (
            {"content_type": "application/json"},
            {"content_type": "application/json", "Accept": "application/json"},
            True,
        ),
    ],
)
@override_settings(
    MICROKIT={"VERSIONING": {"VERSIONS": ["1", "2"], "DEFAULT_VERSION": "1"}}
)
def test_what_the_body_means_is_part_of_the_request(
    first: dict[str, str], second: dict[str, str], same: bool
) -> None:
    name, key = counter(), new_key()
    body = json.dumps({"counter": name}).encode()
    # A view that reads any body as JSON, so that every request runs.
    path = "/idempotency/any-body/"
    assert send(body, key, path=path, **first).status_code == 201
    retry = send(body, key, path=path, **second)
    if same:
        assert retry["Idempotent-Replayed"] == "true"
    else:
        assert_problem(retry, {**REUSED, "instance": path})
    assert executions(name) == 1


@pytest.mark.parametrize(
    ("refused", "status"),
    [
        ({"content_type": "text/plain"}, 415),  # no parser for it
        ({"content_type": "application/json", "body": b'{"counter": '}, 400),
        ({"content_type": "application/json", "Accept": "text/csv"}, 406),
        ({"content_type": "application/json", "X-API-Version": "9"}, 400),
        ({"content_type": "application/json", "Accept": "*/*; version=9"}, 406),
    ],
)
def test_refusals_before_the_handler_are_not_stored(
    refused: dict[str, Any], status: int
) -> None:
    name, key = counter(), new_key()
    body = json.dumps({"counter": name}).encode()
    first = send(refused.pop("body", body), key, **refused)
    corrected = send(body, key, "application/json")
    again = send(body, key, "application/json")
    assert first.status_code == status
    assert "Idempotent-Replayed" not in first
    assert corrected.status_code == 201
    assert "Idempotent-Replayed" not in corrected
    assert again["Idempotent-Replayed"] == "true"
    assert executions(name) == 1


@pytest.mark.parametrize(
    ("first", "second"),
    [
        (("post", COUNTER), ("patch", COUNTER)),
        (("post", COUNTER), ("post", "/idempotency/required/")),
    ],
)
def test_key_is_scoped_by_method_and_path(
    first: tuple[str, str], second: tuple[str, str]
) -> None:
    name, key = counter(), new_key()
    call(first[1], {"counter": name}, key=key, method=first[0])
    other = call(second[1], {"counter": name}, key=key, method=second[0])
    assert other.status_code == 201
    assert "Idempotent-Replayed" not in other
    assert executions(name) == 2


@pytest.mark.parametrize(
    ("caller_a", "caller_b", "shared"),
    [
        ("service:billing", "service:shipping", False),
        ("service:billing", "service:billing", True),
        ("name:billing", "service:billing", True),  # a principal named by `name`
        ("user:1", "user:2", False),
        ("user:1", "user:1", True),
        ("user:1", "service:1", False),
        (None, "service:billing", False),
        (None, None, True),  # anonymous callers from one address
        ("bare", "bare", True),
        ("bare", None, False),
    ],
)
def test_keys_are_scoped_per_caller(
    caller_a: str | None, caller_b: str | None, shared: bool
) -> None:
    name, key = counter(), new_key()
    call(data={"counter": name}, key=key, caller=caller_a)
    second = call(data={"counter": name}, key=key, caller=caller_b)
    assert shared == ("Idempotent-Replayed" in second)
    assert (1 if shared else 2) == executions(name)


def test_anonymous_callers_are_scoped_by_address() -> None:
    name, key = counter(), new_key()
    for address in ("10.0.0.1", "10.0.0.2"):
        APIClient(REMOTE_ADDR=address).post(
            COUNTER, {"counter": name}, format="json", headers={"Idempotency-Key": key}
        )
    assert executions(name) == 2


@override_settings(MICROKIT={"SERVICE_NAME": "orders"})
def test_services_sharing_a_cache_do_not_share_keys() -> None:
    name, key = counter(), new_key()
    call(data={"counter": name}, key=key)
    with override_settings(MICROKIT={"SERVICE_NAME": "catalog"}):
        other = call(data={"counter": name}, key=key)
    assert "Idempotent-Replayed" not in other
    assert executions(name) == 2


def wait_for(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.01)


@pytest.fixture
def background() -> Iterator[Callable[..., threading.Thread]]:
    threads: list[threading.Thread] = []

    def start(target: Callable[[], Any]) -> threading.Thread:
        thread = threading.Thread(target=target)
        thread.start()
        threads.append(thread)
        return thread

    yield start
    for thread in threads:
        thread.join(10)


def test_retry_while_running_is_409_and_another_body_422(
    background: Callable[..., threading.Thread],
) -> None:
    name, key = counter(), new_key()
    body = {"counter": name, "sleep": 0.5}
    results: list[Any] = []
    first = background(lambda: results.append(call(data=body, key=key)))
    wait_for(lambda: executions(name) == 1)
    running = call(data=body, key=key)
    reused = call(data={**body, "sleep": 0}, key=key)
    first.join(10)
    assert_problem(running, IN_PROGRESS)
    assert_problem(reused, REUSED)
    assert results[0].status_code == 201
    assert call(data=body, key=key)["Idempotent-Replayed"] == "true"
    assert executions(name) == 1


def test_concurrent_duplicates_run_once() -> None:
    name, key = counter(), new_key()
    body = {"counter": name, "sleep": 0.3}
    barrier = threading.Barrier(6)
    results: list[Any] = []

    def post() -> None:
        barrier.wait(5)
        results.append(call(data=body, key=key))

    threads = [threading.Thread(target=post) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert executions(name) == 1
    executed = [
        r for r in results if r.status_code == 201 and "Idempotent-Replayed" not in r
    ]
    assert len(executed) == 1
    for response in results:
        if response.status_code == 201:
            assert executed[0].content == response.content
        else:
            assert problem_code(response) == (409, "idempotency_key_in_progress")


@override_settings(MICROKIT={"IDEMPOTENCY": {"LOCK_TIMEOUT": 1}})
def test_lease_ends_so_a_stuck_request_does_not_block_the_key(
    background: Callable[..., threading.Thread],
) -> None:
    name, key = counter(), new_key()
    # Each request outlives the 1 s lease, then fails with a 5xx and releases
    # the key, unless another request has taken it since.
    body = {"counter": name, "sleep": 1.5, "status": 503}
    stuck = background(lambda: call(data=body, key=key))
    wait_for(lambda: executions(name) == 1)
    assert problem_code(call(data=body, key=key)) == (
        409,
        "idempotency_key_in_progress",
    )

    def retry_until_run() -> None:
        deadline = time.monotonic() + 5
        while call(data=body, key=key).status_code == 409:
            assert time.monotonic() < deadline
            time.sleep(0.05)

    background(retry_until_run)
    wait_for(lambda: executions(name) == 2)
    stuck.join(10)
    assert problem_code(call(data=body, key=key)) == (
        409,
        "idempotency_key_in_progress",
    )


# Failures release the key ------------------------------------------------------


@pytest.mark.parametrize("key", [new_key(), None])
@pytest.mark.parametrize(
    "handler",
    [
        "django_microkit.errors.exception_handler",
        # A handler that lets unexpected exceptions through, as DRF's does.
        "rest_framework.views.exception_handler",
    ],
)
def test_exception_in_the_view_releases_the_key(key: str | None, handler: str) -> None:
    name = counter()
    rest_framework = {**settings.REST_FRAMEWORK, "EXCEPTION_HANDLER": handler}
    body = {"counter": name, "fail": True}
    with override_settings(REST_FRAMEWORK=rest_framework):
        for _ in "ab":
            with pytest.raises(RuntimeError):
                call(data=body, key=key)
    assert executions(name) == 2


def test_unhandled_exception_answered_500_releases_the_key() -> None:
    name, key = counter(), new_key()
    client = APIClient(raise_request_exception=False)
    body = {"counter": name, "fail": True}
    responses = [call(data=body, key=key, client=client) for _ in "ab"]
    assert [r.status_code for r in responses] == [500, 500]
    assert responses[1].json()["code"] == "server_error"
    assert executions(name) == 2


@pytest.mark.parametrize("status", [500, 503])
def test_server_errors_are_not_stored(status: int) -> None:
    name, key = counter(), new_key()
    body = {"counter": name, "status": status}
    responses = [call(data=body, key=key) for _ in "ab"]
    assert [status, status] == [r.status_code for r in responses]
    assert "Idempotent-Replayed" not in responses[1]
    assert executions(name) == 2


def test_streaming_responses_are_not_stored() -> None:
    name, key = counter(), new_key()
    responses = [
        call("/idempotency/streaming/", {"counter": name}, key=key) for _ in "ab"
    ]
    assert [b"".join(r.streaming_content) for r in responses] == [
        b"chunk 1",
        b"chunk 2",
    ]
    assert executions(name) == 2


# Key validation ---------------------------------------------------------------


@pytest.mark.parametrize(
    "key",
    [
        "",
        "a" * 256,
        "two words",
        "tab\there",
        "caf\u00e9",
        '""',
        '"a"b"',
        '"bad\\escape"',
        '"trailing\\"',
    ],
)
def test_invalid_key_is_400(key: str) -> None:
    name = counter()
    response = call(data={"counter": name}, key=key)
    assert_problem(response, INVALID)
    assert executions(name) == 0


@pytest.mark.parametrize(
    "key", ["a" * 255, "!~", "8e03978e-40d5-43e8-bc93-6894a57f9324"]
)
def test_valid_keys(key: str) -> None:
    name = counter()
    call(data={"counter": name}, key=key)
    assert call(data={"counter": name}, key=key)["Idempotent-Replayed"] == "true"


@pytest.mark.parametrize(
    ("path", "microkit"),
    [
        ("/idempotency/required/", {}),
        (COUNTER, {"IDEMPOTENCY": {"REQUIRED": True}}),
    ],
)
def test_required_key_missing_is_400(path: str, microkit: dict[str, Any]) -> None:
    name = counter()
    with override_settings(MICROKIT=microkit):
        response = call(path, {"counter": name})
        assert call(path, {"counter": name}, key=new_key()).status_code == 201
    assert_problem(response, {**MISSING, "instance": path})
    assert executions(name) == 1


@pytest.mark.parametrize("key", [None, "two words"])
def test_authentication_comes_before_the_key(key: str | None) -> None:
    name = counter()
    response = call(
        "/idempotency/required/", {"counter": name}, key=key, caller="invalid"
    )
    assert response.status_code == 403
    assert executions(name) == 0


# Cache failures ---------------------------------------------------------------


def failing_cache(*operations: str, miss: bool = False) -> Any:
    caches = {
        **settings.CACHES,
        "idempotency": {
            "BACKEND": "tests.testapp.idempotency_caches.FailingCache",
            "LOCATION": f"failing-{uuid.uuid4().hex}",
            "OPTIONS": {"FAIL": list(operations), "MISS": miss},
        },
    }
    return override_settings(
        CACHES=caches, MICROKIT={"IDEMPOTENCY": {"CACHE": "idempotency"}}
    )


@pytest.mark.parametrize("operations", [("add",), ("get",), ("add", "get")])
def test_cache_failure_before_the_view_is_503(operations: tuple[str, ...]) -> None:
    name, key = counter(), new_key()
    with failing_cache(*operations):
        if operations == ("get",):
            # add() succeeds the first time: only a retry needs get().
            assert call(data={"counter": name}, key=key).status_code == 201
        response = call(data={"counter": name}, key=key)
    assert_problem(response, UNAVAILABLE)
    assert (1 if operations == ("get",) else 0) == executions(name)


def test_key_released_again_and_again_while_claiming_is_409() -> None:
    name, key = counter(), new_key()
    with failing_cache(miss=True):
        first = call(data={"counter": name}, key=key)
        retry = call(data={"counter": name}, key=key)
    assert first.status_code == 201
    assert problem_code(retry) == (409, "idempotency_key_in_progress")
    assert executions(name) == 1


@override_settings(MICROKIT={"IDEMPOTENCY": {"CACHE": "missing"}})
def test_unknown_cache_alias_is_503() -> None:
    response = call(data={"counter": counter()}, key=new_key())
    assert_problem(response, UNAVAILABLE)


def test_cache_failure_after_the_view_returns_its_response(
    caplog: pytest.LogCaptureFixture,
) -> None:
    name, key = counter(), new_key()
    with failing_cache("set"):
        first = call(data={"counter": name}, key=key)
        retry = call(data={"counter": name}, key=key)
    assert first.status_code == 201
    assert problem_code(retry) == (409, "idempotency_key_in_progress")
    assert [
        r.getMessage()
        for r in caplog.records
        if r.name == "django_microkit.idempotency"
    ] == ["Could not store the response of an idempotent request"]


def test_cache_failure_while_releasing_is_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    name, key = counter(), new_key()
    with failing_cache("get"):
        response = call(data={"counter": name, "status": 503}, key=key)
    assert response.status_code == 503
    assert [
        r.getMessage()
        for r in caplog.records
        if r.name == "django_microkit.idempotency"
    ] == ["Could not release an idempotency key"]


# System checks ----------------------------------------------------------------


def check_ids(include_deployment_checks: bool = False, **overrides: Any) -> list[str]:
    with override_settings(**overrides):
        return sorted(
            m.id
            for m in run_checks(include_deployment_checks=include_deployment_checks)
            if m.id is not None and m.id.startswith("django_microkit")
        )


@pytest.mark.parametrize(
    ("idempotency", "expected"),
    [
        ({"CACHE": "nope"}, ["django_microkit.E070"]),
        ({"TTL": 0}, ["django_microkit.E071"]),
        ({"LOCK_TIMEOUT": -1}, ["django_microkit.E072"]),
        (
            {"TTL": -5, "LOCK_TIMEOUT": 0},
            ["django_microkit.E071", "django_microkit.E072"],
        ),
        ({"METHODS": ["POST", "get"]}, ["django_microkit.E073"]),
        ({"METHODS": ("GET",)}, ["django_microkit.E073"]),
        ({"TTL": 30, "LOCK_TIMEOUT": 60}, ["django_microkit.W071"]),
        ({"TTL": "1d", "METHODS": "POST", "CACHE": 5}, ["django_microkit.E003"] * 3),
        ({"METHODS": ["POST", "PUT", "PATCH", "DELETE"], "TTL": 60}, []),
    ],
)
def test_idempotency_checks(idempotency: dict[str, Any], expected: list[str]) -> None:
    assert expected == check_ids(
        MICROKIT={"SERVICE_NAME": "tests", "IDEMPOTENCY": idempotency}
    )


def test_the_check_functions_report_alone() -> None:
    caches = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    microkit = {"IDEMPOTENCY": {"TTL": 0, "METHODS": ["GET"]}}
    with override_settings(CACHES=caches, MICROKIT=microkit):
        assert [m.id for m in check_idempotency()] == [
            "django_microkit.E071",
            "django_microkit.E073",
        ]
        assert [m.id for m in check_idempotency_deploy()] == ["django_microkit.W070"]


def test_e070_suggests_the_near_alias() -> None:
    with override_settings(
        MICROKIT={"SERVICE_NAME": "x", "IDEMPOTENCY": {"CACHE": "defualt"}}
    ):
        (message,) = [m for m in run_checks() if m.id == "django_microkit.E070"]
    assert message.hint is not None
    assert "Did you mean 'default'?" in message.hint


def test_e074_dummy_cache() -> None:
    caches = {"default": {"BACKEND": "django.core.cache.backends.dummy.DummyCache"}}
    assert check_ids(CACHES=caches) == ["django_microkit.E074"]


@pytest.mark.parametrize(
    ("backend", "expected"),
    [
        ("django.core.cache.backends.locmem.LocMemCache", ["django_microkit.W070"]),
        (
            "django.core.cache.backends.filebased.FileBasedCache",
            ["django_microkit.W070"],
        ),
        ("tests.testapp.idempotency_caches.FailingCache", ["django_microkit.W070"]),
        ("django.core.cache.backends.redis.RedisCache", []),
        ("django.core.cache.backends.db.DatabaseCache", []),
    ],
)
def test_w070_per_process_cache_in_production(
    backend: str, expected: list[str]
) -> None:
    caches = {"default": {"BACKEND": backend, "LOCATION": "/tmp/unused"}}
    found = check_ids(include_deployment_checks=True, CACHES=caches)
    assert expected == [i for i in found if i.startswith("django_microkit.W07")]


def test_w070_not_raised_for_an_unknown_alias() -> None:
    found = check_ids(
        include_deployment_checks=True,
        MICROKIT={"SERVICE_NAME": "x", "IDEMPOTENCY": {"CACHE": "nope"}},
    )
    assert "django_microkit.W070" not in found


def test_viewset_create_is_idempotent() -> None:
    name, key = counter(), new_key()
    first = call("/idempotency/things/", {"counter": name}, key=key)
    second = call("/idempotency/things/", {"counter": name}, key=key)
    assert (second.status_code, second.content) == (201, first.content)
    assert second["Idempotent-Replayed"] == "true"
    assert executions(name) == 1


# OpenAPI ------------------------------------------------------------------------


def openapi() -> dict[str, Any]:
    generator = SchemaGenerator(
        patterns=[path("idempotency/", include("tests.testapp.idempotency_views"))]
    )
    schema: dict[str, Any] = generator.get_schema(request=None, public=True)
    validate(json.loads(json.dumps(schema, default=str)))
    return schema


def key_parameter(operation: dict[str, Any]) -> dict[str, Any] | None:
    found = [
        p
        for p in operation.get("parameters", [])
        if (p["in"], p["name"]) == ("header", "Idempotency-Key")
    ]
    return found[0] if found else None


@pytest.mark.parametrize(
    ("path", "method", "required"),
    [
        ("/idempotency/counter/", "post", False),
        ("/idempotency/counter/", "patch", False),
        ("/idempotency/required/", "post", True),
        ("/idempotency/put-only/", "put", False),
        ("/idempotency/things/", "post", False),
    ],
)
def test_openapi_documents_the_key_and_its_problems(
    path: str, method: str, required: bool
) -> None:
    operation = openapi()["paths"][path][method]
    parameter = key_parameter(operation)
    assert parameter is not None
    assert (parameter["name"], parameter.get("required", False)) == (
        "Idempotency-Key",
        required,
    )
    assert {"400", "409", "422", "503"} <= set(operation["responses"])
    conflict = operation["responses"]["409"]
    assert "idempotency_key_in_progress" in conflict["description"]
    assert conflict["content"]["application/problem+json"]["schema"] == {
        "$ref": "#/components/schemas/Problem"
    }
    assert (
        "idempotency_key_missing" in operation["responses"]["400"]["description"]
    ) is required


def test_openapi_adds_the_key_problems_to_a_documented_400() -> None:
    operation = openapi()["paths"]["/idempotency/things/"]["post"]
    description = operation["responses"]["400"]["description"]
    assert description.startswith("Invalid input")
    assert description.endswith(
        "The Idempotency-Key header is not valid (`invalid_idempotency_key`)."
    )


@pytest.mark.parametrize(
    ("path", "method"),
    [
        ("/idempotency/counter/", "get"),
        ("/idempotency/counter/", "put"),
        ("/idempotency/put-only/", "post"),
        ("/idempotency/things/", "get"),
        ("/idempotency/plain/", "post"),
    ],
)
def test_openapi_leaves_other_operations_alone(path: str, method: str) -> None:
    operation = openapi()["paths"][path][method]
    assert key_parameter(operation) is None
    assert "409" not in operation["responses"]


@override_settings(MICROKIT={"IDEMPOTENCY": {"METHODS": ["POST"], "REQUIRED": True}})
def test_openapi_follows_the_settings() -> None:
    paths = openapi()["paths"]
    assert key_parameter(paths["/idempotency/counter/"]["patch"]) is None
    parameter = key_parameter(paths["/idempotency/counter/"]["post"])
    assert parameter is not None
    assert parameter["required"] is True


# Processes racing on Redis ----------------------------------------------------


@pytest.mark.integration
@pytest.mark.skipif(not os.environ.get("REDIS_URL"), reason="needs REDIS_URL")
def test_processes_racing_on_one_key_run_it_once() -> None:
    run, name, key = f"race-{uuid.uuid4().hex}", counter(), new_key()
    root = Path(__file__).resolve().parent.parent
    contenders = [
        subprocess.Popen(
            [sys.executable, "-m", "tests.testapp.idempotency_race", run, name, key],
            cwd=root,
            env={**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings"},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(3)
    ]
    try:
        wait_for(lambda: cache.get(f"{run}:ready") == 3, timeout=30)
        cache.set(f"{run}:go", True, 60)
        outputs = [process.communicate(timeout=30) for process in contenders]
    finally:
        for process in contenders:
            process.kill()
    assert [process.returncode for process in contenders] == [0, 0, 0], outputs
    results = [json.loads(stdout) for stdout, _ in outputs]
    assert executions(name) == 1
    executed = [r for r in results if r["status"] == 201 and not r["replayed"]]
    assert len(executed) == 1
    for result in results:
        assert result["status"] in (201, 409)
        if result["status"] == 201:
            assert result["body"] == executed[0]["body"]


# The example orders service -----------------------------------------------------

ORDERS_SCRIPT = """
import json
from django.test import Client
from drf_spectacular.generators import SchemaGenerator

client = Client(HTTP_HOST="localhost")
responses = [
    client.post(
        "/api/orders/",
        {"items": []},
        content_type="application/json",
        headers={"Idempotency-Key": "order-1"},
    )
    for _ in range(2)
]
operation = SchemaGenerator().get_schema(None, True)["paths"]["/api/orders/"]["post"]
print(json.dumps({
    "responses": [
        [r.status_code, r.get("Idempotent-Replayed"), r.content.decode()]
        for r in responses
    ],
    "parameters": [p["name"] for p in operation.get("parameters", [])],
    "statuses": sorted(operation["responses"]),
}))
"""


def test_example_orders_create_is_idempotent(tmp_path: Path) -> None:
    from tests.test_example_service import manage

    result = manage("orders", "shell", "-c", ORDERS_SCRIPT, tmp_path=tmp_path)
    assert result.returncode == 0, result.stderr
    found = json.loads(result.stdout.strip().splitlines()[-1])
    (status, replayed, body), (status_2, replayed_2, body_2) = found["responses"]
    # An order without items is refused before it is placed: that answer is
    # stored too, and the retry gets it back.
    assert (status, replayed) == (400, None)
    assert (status_2, replayed_2, body_2) == (400, "true", body)
    assert "Idempotency-Key" in found["parameters"]
    assert {"409", "422"} <= set(found["statuses"])
