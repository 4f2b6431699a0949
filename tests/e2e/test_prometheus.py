"""A real Prometheus (Debian's ``prometheus``) scrapes both example services,
catalog under gunicorn with two workers and orders under uvicorn, and a PromQL
query over its HTTP API returns the count of requests this test sent: the
counts of catalog's two workers add up."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.conftest import Stack
from tests.e2e.servers import ServiceProcess, free_port

PROMETHEUS = os.environ.get("PROMETHEUS", "prometheus")
SENT = 30
ROUTE = "health/live"


@pytest.fixture(scope="module")
def prometheus(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Prometheus on a free 127.0.0.1 port, scraping both services every
    second; stopped by its PID at the end."""
    if shutil.which(PROMETHEUS) is None:
        message = f"{PROMETHEUS} is not installed (apt-get install prometheus)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    directory = tmp_path_factory.mktemp("prometheus")
    jobs = "".join(
        f"""
  - job_name: {service.name}
    static_configs: [{{targets: ["{urlsplit(service.url).netloc}"]}}]"""
        for service in (stack.catalog, stack.orders)
    )
    config = directory / "prometheus.yml"
    config.write_text(
        "global: {scrape_interval: 1s, scrape_timeout: 1s}\nscrape_configs:" + jobs
    )
    port = free_port()
    log = (directory / "prometheus.log").open("wb")
    process = subprocess.Popen(
        [
            PROMETHEUS,
            f"--config.file={config}",
            f"--web.listen-address=127.0.0.1:{port}",
            f"--storage.tsdb.path={directory / 'data'}",
            "--log.level=warn",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        _until(lambda: _value(url, "sum(up)") == 2.0, Path(log.name))
        yield url
    finally:
        process.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=20)
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)
        log.close()


def _value(url: str, query: str) -> float | None:
    with contextlib.suppress(requests.RequestException, ValueError):
        answer = requests.get(
            url + "/api/v1/query", params={"query": query}, timeout=5
        ).json()
        if answer["status"] == "success" and answer["data"]["result"]:
            return float(answer["data"]["result"][0]["value"][1])
    return None


def _until(condition: object, log: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError("Prometheus never saw it:\n" + log.read_text())
        time.sleep(0.5)


def _query(job: str) -> str:
    return (
        f'sum(http_server_request_duration_seconds_count{{job="{job}",'
        f'http_route="{ROUTE}",http_response_status_code="200"}})'
    )


def _served(process: ServiceProcess) -> float:
    """The service's own count, read from its /metrics (any worker)."""
    text = requests.get(process.url + "/metrics", timeout=10).text
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if (
                sample.name == "http_server_request_duration_seconds_count"
                and sample.labels["http_route"] == ROUTE
                and sample.labels["http_response_status_code"] == "200"
            ):
                return sample.value
    return 0.0


def _until_prometheus_sees(url: str, query: str, expected: float) -> None:
    deadline = time.monotonic() + 30
    seen = None
    while time.monotonic() < deadline:
        seen = _value(url, query)
        if seen == expected:
            return
        time.sleep(0.5)
    raise AssertionError(f"{query} is {seen}, not {expected}")


@pytest.mark.parametrize("service", ["catalog", "orders"])
def test_prometheus_counts_the_requests_sent(
    stack: Stack, prometheus: str, service: str
) -> None:
    process: ServiceProcess = getattr(stack, service)
    # What came before (the harness's probes), as Prometheus has it too.
    before = _served(process)
    if before:
        _until_prometheus_sees(prometheus, _query(service), before)
    for _ in range(SENT):
        # A fresh connection each: gunicorn's two workers share the requests.
        assert requests.get(process.url + "/" + ROUTE, timeout=10).status_code == 200
    assert _served(process) == before + SENT
    _until_prometheus_sees(prometheus, _query(service), before + SENT)
