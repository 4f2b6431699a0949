from __future__ import annotations

import asyncio
import http.client
import io
import json
import logging
import os
import re
import sys
import threading
import time
from collections.abc import Iterator
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
import structlog
from django.core.exceptions import ImproperlyConfigured
from django.core.handlers.wsgi import WSGIHandler
from django.core.servers.basehttp import ThreadedWSGIServer, WSGIRequestHandler
from django.http import HttpResponse
from django.test import AsyncClient, Client, RequestFactory, override_settings
from structlog.contextvars import bind_contextvars, clear_contextvars

from django_microkit import logging as microkit_logging
from django_microkit.conf import MicrokitSettings, microkit_settings
from django_microkit.logging import (
    MicrokitFormatter,
    check_logging_deploy,
    configure_logging,
    configure_structlog,
    log_access,
    log_event,
    logging_config,
    milliseconds,
)
from tests.conftest import LogLines, applied_logging_config, restored_logging
from tests.test_checks import messages

TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
ISO = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z")
COMMON = {"request_id", "trace_id", "service", "level", "logger", "timestamp", "event"}


def get(path: str, **headers: str) -> Any:
    return Client(raise_request_exception=False).get(path, headers=headers)


def assert_common_fields(line: dict[str, Any], request_id: str) -> None:
    assert set(line) >= COMMON
    assert line["request_id"] == request_id
    assert line["trace_id"] == "4bf92f3577b34da6a3ce929d0e0e4736"
    assert line["service"] == "tests"
    assert ISO.fullmatch(line["timestamp"])
    stamp = datetime.strptime(line["timestamp"], "%Y-%m-%dT%H:%M:%S.%fZ")
    age = datetime.now(timezone.utc) - stamp.replace(tzinfo=timezone.utc)
    assert 0 <= age.total_seconds() < 60


# --- every line carries the same fields, whoever emits it --------------------


def test_lines_from_structlog_and_a_third_party_logger(log_lines: LogLines) -> None:
    get(
        "/request-id/echo?marker=m1",
        **{"X-Request-ID": "rid-1"},
        traceparent=TRACEPARENT,
    )

    (app,) = log_lines.of("tests.app")
    assert_common_fields(app, "rid-1")
    assert (app["event"], app["level"], app["marker"]) == ("in view", "info", "m1")
    assert app["bound_in_view"] == "m1"

    (library,) = log_lines.of("thirdparty.client")
    assert_common_fields(library, "rid-1")
    assert (library["event"], library["level"]) == ("third party says m1", "warning")


def test_django_logs_a_server_error_once_with_the_request_id() -> None:
    with applied_logging_config(logging_config()) as log_lines:
        response = get(
            "/request-id/fail", **{"X-Request-ID": "rid-500"}, traceparent=TRACEPARENT
        )
    assert response.status_code == 500
    (error,) = log_lines.of("django.request")
    assert_common_fields(error, "rid-500")
    assert error["level"] == "error"
    assert error["event"] == "Internal Server Error: /request-id/fail"
    assert "RuntimeError: boom in view" in error["exception"]
    (access,) = log_lines.of("django_microkit.access")
    assert access["status"] == 500


def test_django_not_found_warning_stays_out_of_the_logs() -> None:
    with applied_logging_config(logging_config()) as log_lines:
        response = get("/request-id/not-found", **{"X-Request-ID": "rid-404"})
        get("/no/such/url")
    assert response.status_code == 404
    assert log_lines.of("django.request") == []
    assert [line["status"] for line in log_lines.of("django_microkit.access")] == [
        404,
        404,
    ]


# --- lines Django writes after the middleware chain has returned --------------


def verbose_django_config() -> dict[str, Any]:
    """``logging_config()`` with Django's own request lines let through."""
    config = logging_config()
    config["loggers"]["django.request"]["level"] = "WARNING"
    config["loggers"]["django.server"]["level"] = "INFO"
    return config


@pytest.mark.parametrize("status", [503, 409])
def test_django_request_lines_of_a_problem_carry_the_ids(status: int) -> None:
    with applied_logging_config(verbose_django_config()) as log_lines:
        response = get(
            f"/request-id/problem/{status}/p",
            **{"X-Request-ID": "rid-problem"},
            traceparent=TRACEPARENT,
        )
    assert response.status_code == status
    (line,) = log_lines.of("django.request")
    assert line["event"].endswith(f": /request-id/problem/{status}/p")
    assert line["level"] == ("error" if status == 503 else "warning")
    for line in log_lines.all():
        assert_common_fields(line, "rid-problem")


def test_django_request_lines_of_an_unhandled_exception_carry_the_ids() -> None:
    with applied_logging_config(verbose_django_config()) as log_lines:
        get("/request-id/fail", **{"X-Request-ID": "rid-boom"}, traceparent=TRACEPARENT)
        get("/request-id/not-found", **{"X-Request-ID": "rid-404"})
    assert [line["level"] for line in log_lines.of("django.request")] == [
        "error",
        "warning",
    ]
    assert [line["request_id"] for line in log_lines.all()] == [
        "rid-boom",
        "rid-boom",
        "rid-404",
        "rid-404",
    ]


def assert_lines_keep_their_request(log_lines: LogLines, expected: int) -> None:
    # The marker in the path names the request whose line it is.
    lines = log_lines.of("django.request")
    assert expected == len(lines)
    for line in lines:
        assert line["event"].endswith(f"/{line['request_id']}"), line
    assert expected == len({line["trace_id"] for line in lines})


def test_django_request_lines_never_cross_threads() -> None:
    def worker(n: int) -> None:
        client = Client()
        for i in range(5):
            marker = f"thread-{n}-{i}"
            client.get(
                f"/request-id/problem/503/{marker}", headers={"X-Request-ID": marker}
            )

    with applied_logging_config(verbose_django_config()) as log_lines:
        threads = [threading.Thread(target=worker, args=(n,)) for n in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert_lines_keep_their_request(log_lines, 30)


def test_django_request_lines_never_cross_async_tasks() -> None:
    async def one(client: AsyncClient, n: int) -> None:
        marker = f"task-{n}"
        await client.get(
            f"/request-id/problem/503/{marker}", headers={"X-Request-ID": marker}
        )

    async def scenario() -> None:
        client = AsyncClient()
        await asyncio.gather(*(one(client, n) for n in range(20)))

    with applied_logging_config(verbose_django_config()) as log_lines:
        asyncio.run(scenario())
    assert_lines_keep_their_request(log_lines, 20)


class JoiningServer(ThreadedWSGIServer):
    """runserver's server, waiting on close for the threads that log."""

    daemon_threads = False


def test_runserver_lines_carry_the_ids_of_their_request() -> None:
    server = JoiningServer(("127.0.0.1", 0), WSGIRequestHandler)
    server.set_app(WSGIHandler())
    serving = threading.Thread(target=server.serve_forever)
    with applied_logging_config(verbose_django_config()) as log_lines:
        serving.start()
        try:
            # Two requests on one connection: one handler thread serves both.
            connection = http.client.HTTPConnection(
                "127.0.0.1", server.server_port, timeout=5
            )
            for marker, status in [("srv-1", 503), ("srv-2", 409)]:
                connection.request(
                    "GET",
                    f"/request-id/problem/{status}/{marker}",
                    headers={"X-Request-ID": marker, "traceparent": TRACEPARENT},
                )
                assert connection.getresponse().read()
            connection.close()
        finally:
            server.shutdown()
            server.server_close()
            serving.join()
    lines = log_lines.all()
    assert [(line["logger"], line["request_id"]) for line in lines] == [
        ("django_microkit.access", "srv-1"),
        ("django.request", "srv-1"),
        ("django.server", "srv-1"),
        ("django_microkit.access", "srv-2"),
        ("django.request", "srv-2"),
        ("django.server", "srv-2"),
    ]
    for line in lines:
        assert_common_fields(line, line["request_id"])


def test_lines_outside_a_request_have_no_request_fields(log_lines: LogLines) -> None:
    structlog.get_logger("tests.batch").info("nightly job", rows=3)
    logging.getLogger("tests.batch").error("stdlib says %d", 4)
    first, second = log_lines.of("tests.batch")
    assert "request_id" not in first and "trace_id" not in first
    assert first["rows"] == 3
    assert (second["event"], second["level"]) == ("stdlib says 4", "error")
    assert second["service"] == "tests"


def test_exceptions_become_a_plain_traceback(log_lines: LogLines) -> None:
    log = structlog.get_logger("tests.app")
    try:
        raise ValueError("secret_local_value stays out")
    except ValueError:
        secret = "do-not-log-me"  # noqa: F841
        log.exception("failed")
        logging.getLogger("thirdparty.client").exception("also failed")
    structlog_line, stdlib_line = log_lines.all()
    for line in (structlog_line, stdlib_line):
        assert line["level"] == "error"
        assert "ValueError: secret_local_value stays out" in line["exception"]
        assert "do-not-log-me" not in json.dumps(line)


# --- the access line ---------------------------------------------------------


def test_access_line_shape(log_lines: LogLines) -> None:
    response = get(
        "/request-id/echo?token=abc",
        **{"X-Request-ID": "rid-2"},
        traceparent=TRACEPARENT,
        Authorization="Bearer secret-token-value",
        Cookie="sessionid=secret-cookie-value",
    )
    (access,) = log_lines.of("django_microkit.access")
    assert set(access) == COMMON | {"method", "path", "status", "duration_ms"} | {
        "bound_in_view"
    }
    assert_common_fields(access, "rid-2")
    assert access["event"] == "request"
    assert access["level"] == "info"
    assert (access["method"], access["path"], access["status"]) == (
        "GET",
        "/request-id/echo",
        response.status_code,
    )
    assert 0 < access["duration_ms"] < 10_000
    text = log_lines.text()
    assert "secret" not in text
    assert "token=abc" not in text


def test_access_line_is_the_last_line_of_the_request(log_lines: LogLines) -> None:
    get("/request-id/echo")
    assert [line["logger"] for line in log_lines.all()] == [
        "tests.app",
        "thirdparty.client",
        "django_microkit.access",
    ]


@pytest.mark.parametrize(
    ("options", "extra"),
    [
        ({"QUERY_STRING": True}, {"query": "a=1&b=x%20y&c=%1B%5B31m"}),
        ({"CLIENT_ADDRESS": True}, {"client_address": "127.0.0.1"}),
    ],
)
def test_access_line_options(
    options: dict[str, Any], extra: dict[str, Any], log_lines: LogLines
) -> None:
    with override_settings(MICROKIT={"SERVICE_NAME": "tests", "ACCESS_LOG": options}):
        Client().get("/request-id/echo", QUERY_STRING="a=1&b=x y&c=\x1b[31m")
    (access,) = log_lines.of("django_microkit.access")
    assert {key: access[key] for key in extra} == extra


def test_access_line_options_without_values(log_lines: LogLines) -> None:
    options = {"QUERY_STRING": True, "CLIENT_ADDRESS": True}
    with override_settings(MICROKIT={"SERVICE_NAME": "tests", "ACCESS_LOG": options}):
        Client().get("/request-id/echo", REMOTE_ADDR="")
    (access,) = log_lines.of("django_microkit.access")
    assert "query" not in access
    assert "client_address" not in access


@pytest.mark.parametrize(
    ("address", "logged"),
    [("2001:db8::1", "2001:db8::1"), ("evil\n\x1b[0m", "evil\\n\\x1b[0m")],
)
def test_client_address_is_checked(
    address: str, logged: str, log_lines: LogLines
) -> None:
    with override_settings(
        MICROKIT={"SERVICE_NAME": "tests", "ACCESS_LOG": {"CLIENT_ADDRESS": True}}
    ):
        Client().get("/request-id/echo", REMOTE_ADDR=address)
    (access,) = log_lines.of("django_microkit.access")
    assert access["client_address"] == logged


def test_hostile_path_and_method_are_escaped(log_lines: LogLines) -> None:
    Client().get("/no/such/\x1b[31m\u00e9")
    Client().get("/", PATH_INFO="/no/such/line\nbreak\r")
    Client().generic("GET\x1b[2J", "/request-id/echo")
    first, second, third = log_lines.of("django_microkit.access")
    assert first["path"] == "/no/such/%1B%5B31m%C3%A9"
    assert second["path"] == "/no/such/line%0Abreak%0D"
    assert third["method"] == "GET\\x1b[2J"
    assert "\x1b" not in log_lines.text()


def test_health_paths_log_at_debug(log_lines: LogLines) -> None:
    with override_settings(
        MICROKIT={
            "SERVICE_NAME": "tests",
            "ACCESS_LOG": {"HEALTH_PATHS": ["/request-id/health/"]},
        }
    ):
        get("/request-id/health/live")
        get("/request-id/echo")
        logging.getLogger().setLevel(logging.INFO)
        get("/request-id/health/live")
    levels = [
        (line["path"], line["level"]) for line in log_lines.of("django_microkit.access")
    ]
    assert levels == [
        ("/request-id/health/live", "debug"),
        ("/request-id/echo", "info"),
    ]


def test_default_health_prefix_is_health() -> None:
    assert microkit_settings.ACCESS_LOG["HEALTH_PATHS"] == ("/health/",)


def test_access_line_can_be_turned_off(log_lines: LogLines) -> None:
    with override_settings(
        MICROKIT={"SERVICE_NAME": "tests", "ACCESS_LOG": {"ENABLED": False}}
    ):
        get("/request-id/echo")
    assert log_lines.of("django_microkit.access") == []
    assert len(log_lines.of("tests.app")) == 1


def test_access_logger_level_is_honoured(log_lines: LogLines) -> None:
    logger = logging.getLogger("django_microkit.access")
    logger.setLevel(logging.WARNING)
    try:
        get("/request-id/echo")
    finally:
        logger.setLevel(logging.NOTSET)
    assert log_lines.of("django_microkit.access") == []


def test_peer_service_is_logged_once_authenticated(log_lines: LogLines) -> None:
    get("/request-id/service", **{"X-Test-Service": "orders"})
    get("/request-id/service")
    with_caller, anonymous = log_lines.of("django_microkit.access")
    assert with_caller["peer_service"] == "orders"
    assert "peer_service" not in anonymous


def test_lazy_user_is_never_evaluated_for_the_log(log_lines: LogLines) -> None:
    lazy = get("/request-id/lazy-user")
    evaluated = get("/request-id/lazy-user?evaluate=1")
    assert lazy.json() == {"evaluated": False}
    assert evaluated.json() == {"evaluated": True}
    first, second = log_lines.of("django_microkit.access")
    assert "peer_service" not in first
    assert second["peer_service"] == "should-not-appear"


# --- lines written on every request: log_event ------------------------------


def _without_time(line: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in line.items() if key != "timestamp"}


def test_log_event_writes_what_structlog_writes(log_lines: LogLines) -> None:
    logger = logging.getLogger("tests.app")
    bind_contextvars(request_id="rid-s", trace_id="t" * 32, n=0)
    try:
        structlog.get_logger("tests.app").info("same", n=1, path="/x")
        log_event(logger, logging.INFO, "same", n=1, path="/x")
    finally:
        clear_contextvars()
    via_structlog, direct = log_lines.all()
    # The event's own fields win over the bound context, as with structlog.
    assert direct["n"] == 1
    assert _without_time(direct) == _without_time(via_structlog)
    assert list(direct) == list(via_structlog)


def test_log_event_keeps_the_logging_machinery(log_lines: LogLines) -> None:
    seen: list[logging.LogRecord] = []

    def remember(record: logging.LogRecord) -> bool:
        seen.append(record)
        return record.msg["n"] != 2  # type: ignore[index]

    logger = logging.getLogger("tests.short")
    logger.addFilter(remember)
    try:
        for n in (1, 2):
            log_event(logger, logging.WARNING, "filtered", n=n)
        logger.setLevel(logging.ERROR)
        log_event(logger, logging.WARNING, "below the level", n=4)
        logger.setLevel(logging.NOTSET)
        logger.disabled = True
        log_event(logger, logging.WARNING, "disabled", n=3)
    finally:
        logger.removeFilter(remember)
        logger.disabled = False
    assert [line["n"] for line in log_lines.all()] == [1]
    # The filter saw the line it dropped; below the level or disabled, no record.
    assert [record.msg["n"] for record in seen] == [1, 2]  # type: ignore[index]
    record = seen[0]
    # The caller is the function that asked for the line; no stack walk.
    assert record.funcName == "test_log_event_keeps_the_logging_machinery"
    assert record.pathname == __file__
    assert (record.levelname, record.name) == ("WARNING", "tests.short")


def test_log_event_uses_the_record_factory(log_lines: LogLines) -> None:
    default = logging.getLogRecordFactory()

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = default(*args, **kwargs)
        assert isinstance(record.msg, dict)
        record.msg["from_factory"] = True
        return record

    logging.setLogRecordFactory(factory)
    try:
        log_event(logging.getLogger("tests.app"), logging.INFO, "f")
    finally:
        logging.setLogRecordFactory(default)
    (line,) = log_lines.all()
    assert line["from_factory"] is True


def test_log_event_honours_the_structlog_level(log_lines: LogLines) -> None:
    configure_structlog("WARNING")
    logger = logging.getLogger("tests.app")
    log_event(logger, logging.INFO, "dropped")
    log_event(logger, logging.ERROR, "kept")
    assert [line["event"] for line in log_lines.all()] == ["kept"]


def test_log_event_follows_another_structlog_configuration(
    log_lines: LogLines,
) -> None:
    logger = logging.getLogger("tests.app")
    with structlog.testing.capture_logs() as captured:
        log_event(logger, logging.INFO, "captured", n=1)
    assert captured == [{"event": "captured", "n": 1, "log_level": "info"}]
    assert log_lines.all() == []
    structlog.configure(
        processors=[structlog.processors.KeyValueRenderer(key_order=["event"])]
    )
    log_event(logger, logging.DEBUG, "rendered", n=2)
    assert log_lines.all()[0]["event"] == "event='rendered' n=2"


def test_log_access_for_a_middleware_of_ones_own(log_lines: LogLines) -> None:
    request = RequestFactory().post("/orders/", REMOTE_ADDR="10.0.0.1")
    started = time.perf_counter()
    log_access(request, HttpResponse(status=201), started, "bad\nid")
    log_access(request, HttpResponse(status=202), started)
    first, second = log_lines.of("django_microkit.access")
    assert (first["method"], first["path"], first["status"]) == (
        "POST",
        "/orders/",
        201,
    )
    assert first["rejected_request_id"] == "bad\\nid"
    assert second["status"] == 202
    assert "rejected_request_id" not in second


def test_milliseconds_are_cut_to_the_microsecond() -> None:
    assert milliseconds(0.0123456789) == 12.345
    assert milliseconds(2) == 2000.0


class _Kept(logging.Handler):
    """Keeps the records it is given, for formatters to render afterwards."""

    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def kept(log_lines: LogLines) -> Iterator[list[logging.LogRecord]]:
    """The records written to ``tests.kept`` while structlog is configured by
    the formatter, as a service has it."""
    handler = _Kept()
    logger = logging.getLogger("tests.kept")
    logger.addHandler(handler)
    try:
        yield handler.records
    finally:
        logger.removeHandler(handler)


def test_formatter_renders_log_event_lines_as_its_processors(
    kept: list[logging.LogRecord], log_lines: LogLines
) -> None:
    class EveryProcessor(MicrokitFormatter):
        """The same processors, run one by one (a list of its own)."""

        def __init__(self) -> None:
            super().__init__(configure_structlog=False)
            self.processors = list(self.processors)

    logger = logging.getLogger("tests.kept")
    bind_contextvars(request_id="rid-f")
    try:
        log_event(logger, logging.INFO, "e", n=1)
        try:
            raise RuntimeError("boom")
        except RuntimeError:
            log_event(logger, logging.ERROR, "failed", exc_info=True)
    finally:
        clear_contextvars()
    record, failed = kept
    one_step = MicrokitFormatter(configure_structlog=False).format(record)
    assert one_step == EveryProcessor().format(record)
    assert one_step == log_lines.text().splitlines()[0]
    assert json.loads(one_step)["request_id"] == "rid-f"
    # An event with an exception takes the processors' way (traceback).
    assert "RuntimeError: boom" in log_lines.all()[1]["exception"]
    assert failed.msg["exc_info"] is True  # type: ignore[index]


def test_formatter_applies_another_format(kept: list[logging.LogRecord]) -> None:
    log_event(logging.getLogger("tests.kept"), logging.INFO, "direct")
    structlog.get_logger("tests.kept").warning("through structlog")
    formatter = MicrokitFormatter(fmt="%(levelname)s %(message)s")
    direct, via_structlog = (formatter.format(record) for record in kept)
    assert direct.startswith('INFO {"event":"direct",')
    assert via_structlog.startswith('WARNING {"event":"through structlog",')


def test_a_filter_replacing_the_event_is_honoured(log_lines: LogLines) -> None:
    def redact(record: logging.LogRecord) -> bool:
        record.msg = {**record.msg, "card": "***"}  # type: ignore[dict-item]
        return True

    logger = logging.getLogger("tests.app")
    logger.addFilter(redact)
    try:
        log_event(logger, logging.INFO, "paid", card="4111")
    finally:
        logger.removeFilter(redact)
    (line,) = log_lines.all()
    assert (line["event"], line["card"]) == ("paid", "***")


def test_log_event_follows_the_structlog_level_of_another_configuration(
    log_lines: LogLines,
) -> None:
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger("ERROR"))
    logger = logging.getLogger("tests.app")
    log_event(logger, logging.INFO, "dropped")
    log_event(logger, logging.ERROR, "kept", n=1)
    (line,) = log_lines.all()
    assert (line["event"], line["n"], line["level"]) == ("kept", 1, "error")


def test_service_name_follows_the_settings(log_lines: LogLines) -> None:
    logger = logging.getLogger("tests.app")
    log_event(logger, logging.INFO, "before")
    with override_settings(MICROKIT={"SERVICE_NAME": "renamed"}):
        log_event(logger, logging.INFO, "during")
    log_event(logger, logging.INFO, "after")
    assert [line["service"] for line in log_lines.all()] == [
        "tests",
        "renamed",
        "tests",
    ]


# --- configuration -----------------------------------------------------------


def test_service_is_left_out_when_unnamed(log_lines: LogLines) -> None:
    with override_settings(MICROKIT={}):
        structlog.get_logger("tests.app").info("nameless")
    (line,) = log_lines.all()
    assert "service" not in line


def test_lines_logged_before_django_is_configured(
    log_lines: LogLines, monkeypatch: pytest.MonkeyPatch
) -> None:
    def unconfigured() -> None:
        raise ImproperlyConfigured("settings are not configured")

    monkeypatch.setattr(MicrokitSettings, "user_settings", staticmethod(unconfigured))
    microkit_settings.reload()
    try:
        logging.getLogger("early").warning("starting")
    finally:
        monkeypatch.undo()
        microkit_settings.reload()
    (line,) = log_lines.all()
    assert (line["event"], line["logger"]) == ("starting", "early")
    assert "service" not in line


def test_console_renderer_for_development() -> None:
    buffer = io.StringIO()
    handler = logging.StreamHandler(buffer)
    handler.setFormatter(MicrokitFormatter(renderer="console", level="DEBUG"))
    root = logging.getLogger()
    with restored_logging():
        root.addHandler(handler)
        root.setLevel(logging.DEBUG)
        get("/request-id/echo?marker=dev", **{"X-Request-ID": "rid-console"})
    text = buffer.getvalue()
    assert "in view" in text
    assert "rid-console" in text
    assert len(text.splitlines()) == 3
    assert not text.lstrip().startswith("{")


def test_without_orjson_the_standard_library_renders(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    event = {
        "event": "x",
        "n": 1,
        "when": datetime(2024, 1, 1, 12, 30, 1, 5, tzinfo=timezone.utc),
        "day": date(2024, 1, 1),
        "id": UUID("12345678-1234-5678-1234-567812345678"),
        "other": object,
        3: "non-str key",
    }
    fast = microkit_logging._json_serializer()(event)
    monkeypatch.setitem(sys.modules, "orjson", None)
    plain = microkit_logging._json_serializer()(event)
    assert json.loads(plain) == json.loads(fast)
    assert ", " not in plain and '": ' not in plain
    assert json.loads(plain)["when"] == "2024-01-01T12:30:01.000005+00:00"


def test_logging_config_shape() -> None:
    config = logging_config(renderer="console", level=logging.WARNING)
    assert config["root"] == {"handlers": ["django_microkit"], "level": "WARNING"}
    assert config["formatters"]["django_microkit"]["renderer"] == "console"
    assert config["loggers"]["django.request"]["level"] == "ERROR"
    assert config["handlers"]["django_microkit"]["stream"] == "ext://sys.stdout"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"renderer": "xml"}, "renderer"), ({"level": "LOUD"}, "LOUD")],
)
def test_logging_config_refuses_bad_values(
    kwargs: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        MicrokitFormatter(**kwargs)
    with pytest.raises(ValueError, match=message):
        logging_config(**kwargs)


def test_configure_logging_in_one_call() -> None:
    with restored_logging():
        configure_logging(
            renderer="console", level="warning", stream="ext://sys.stderr"
        )
        (handler,) = logging.getLogger().handlers
        assert isinstance(handler.formatter, MicrokitFormatter)
        assert isinstance(handler, logging.StreamHandler)
        assert handler.stream is sys.stderr
        assert logging.getLogger().level == logging.WARNING


def test_structlog_drops_events_below_the_level_before_processing() -> None:
    with restored_logging():
        configure_structlog("INFO")
        config = structlog.get_config()
        assert config["cache_logger_on_first_use"] is True
        logger = structlog.get_logger("tests.app").bind()
        assert not logger.is_enabled_for(logging.DEBUG)
        assert logger.is_enabled_for(logging.INFO)


def test_formatter_can_leave_structlog_alone() -> None:
    with restored_logging():
        structlog.configure(processors=[structlog.processors.KeyValueRenderer()])
        MicrokitFormatter(configure_structlog=False)
        assert len(structlog.get_config()["processors"]) == 1


def test_a_record_seen_by_two_handlers_is_left_intact(log_lines: LogLines) -> None:
    other = io.StringIO()
    handler = logging.StreamHandler(other)
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        structlog.get_logger("tests.app").warning("twice", n=1)
    finally:
        root.removeHandler(handler)
    (line,) = log_lines.all()
    assert line["event"] == "twice"
    assert other.getvalue().startswith("WARNING {")


# --- checks ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("paths", "expected"),
    [
        (["/health/", "/ready"], []),
        (["health/"], ["django_microkit.E025"]),
        (["/ok/", 5], ["django_microkit.E025"]),
        ("/health/", ["django_microkit.E003"]),
    ],
)
def test_e025_health_paths(paths: Any, expected: list[str]) -> None:
    found = messages(
        MICROKIT={"SERVICE_NAME": "x", "ACCESS_LOG": {"HEALTH_PATHS": paths}}
    )
    assert sorted(found) == expected


def test_logging_config_can_be_built_in_a_settings_module() -> None:
    """Settings modules run before Django is configured: building the dict
    must not touch Django settings."""
    import subprocess

    code = (
        "import django_microkit, json;"
        "print(json.dumps(django_microkit.logging_config()['root']))"
    )
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env=env,
        check=True,
        cwd=Path(__file__).resolve().parent.parent,
    )
    assert json.loads(result.stdout) == {
        "handlers": ["django_microkit"],
        "level": "INFO",
    }


@pytest.mark.parametrize(
    ("logging_setting", "expected"),
    [
        ({}, ["django_microkit.W023"]),
        ("not a dict", ["django_microkit.W023"]),
        ({"version": 1, "formatters": "x"}, ["django_microkit.W023"]),
        (
            {"version": 1, "formatters": {"plain": {"format": "%(message)s"}}},
            ["django_microkit.W023"],
        ),
        (logging_config(), []),
        (logging_config(renderer="console"), []),
        (
            {
                "version": 1,
                "formatters": {
                    "json": {"()": "django_microkit.logging.MicrokitFormatter"}
                },
            },
            [],
        ),
        (
            {"version": 1, "formatters": {"json": {"class": MicrokitFormatter}}},
            [],
        ),
    ],
)
def test_w023_logging_without_microkit_lines(
    logging_setting: Any, expected: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Set without setting_changed: Django 6 applies a changed LOGGING at once,
    # and these values are what the check must catch before anything applies.
    from django.conf import settings

    monkeypatch.setattr(settings, "LOGGING", logging_setting)
    found = check_logging_deploy()
    assert [message.id for message in found] == expected
    if found:
        assert "LOGGING = django_microkit.logging_config()" in (found[0].hint or "")


def test_w023_not_raised_when_logging_is_configured_elsewhere() -> None:
    with override_settings(LOGGING={}, LOGGING_CONFIG=None):
        assert check_logging_deploy() == []


def test_w023_is_a_deploy_check() -> None:
    from django.core.checks import run_checks

    with override_settings(LOGGING={}):
        plain = [m.id for m in run_checks()]
        deploy = [m.id for m in run_checks(include_deployment_checks=True)]
    assert "django_microkit.W023" not in plain
    assert "django_microkit.W023" in deploy


def test_logging_config_to_a_file(tmp_path: Path) -> None:
    log_file = tmp_path / "service.log"
    config = logging_config(filename=str(log_file))
    assert config["handlers"]["django_microkit"] == {
        "class": "logging.handlers.WatchedFileHandler",
        "filename": str(log_file),
        "formatter": "django_microkit",
    }
    with restored_logging():
        logging.config.dictConfig(config)
        logging.getLogger("orders").warning("to the file")
        (handler,) = logging.getLogger().handlers
        handler.close()
    line = json.loads(log_file.read_text())
    assert (line["event"], line["level"]) == ("to the file", "warning")


def test_logging_config_to_a_handler_of_your_own() -> None:
    stream = io.StringIO()
    config = logging_config(
        handler={"class": "logging.StreamHandler", "stream": stream, "formatter": "x"}
    )
    # The handler always gets django-microkit's formatter.
    assert config["handlers"]["django_microkit"]["formatter"] == "django_microkit"
    with restored_logging():
        logging.config.dictConfig(config)
        logging.getLogger("orders").warning("to my handler")
    assert json.loads(stream.getvalue())["event"] == "to my handler"


@pytest.mark.parametrize(
    "destinations",
    [
        {"stream": "ext://sys.stderr", "filename": "x.log"},
        {"filename": "x.log", "handler": {"class": "logging.NullHandler"}},
        {"stream": "ext://sys.stderr", "handler": {"class": "logging.NullHandler"}},
    ],
)
def test_logging_config_writes_to_one_destination(destinations: Any) -> None:
    with pytest.raises(ValueError, match="one destination"):
        logging_config(**destinations)


def test_logging_config_to_another_stream() -> None:
    config = logging_config(stream="ext://sys.stderr")
    assert config["handlers"]["django_microkit"] == {
        "class": "logging.StreamHandler",
        "stream": "ext://sys.stderr",
        "formatter": "django_microkit",
    }


@pytest.mark.parametrize("level", ["WARNING", logging.ERROR, 0])
def test_logging_config_takes_a_level_by_name_or_number(level: int | str) -> None:
    import logging.config

    config = microkit_logging.logging_config(level=level)
    logging.config.dictConfig(config)
    try:
        expected = level if isinstance(level, int) else logging.WARNING
        assert logging.getLogger().level == expected
    finally:
        logging.config.dictConfig(microkit_logging.logging_config())


@pytest.mark.parametrize("level", [25, 5, "LOUD"])
def test_logging_config_refuses_an_unknown_level(level: int | str) -> None:
    with pytest.raises(ValueError, match="Unknown log level"):
        microkit_logging.logging_config(level=level)
