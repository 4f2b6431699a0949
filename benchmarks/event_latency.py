"""Commit → handler latency of an event, under a bounded load, with the real
worker (``manage.py microkit_consume``) on RabbitMQ and PostgreSQL.

Each round publishes ``--events`` events at ``--rate`` per second, each in a
transaction of its own (``publish()`` inside ``atomic()``, sent on commit),
to a worker process handling them through the inbox (with a relay thread
for what the send on commit leaves); an event's latency is from its commit to
the moment the worker's transaction takes it (the inbox row's ``handled_at``;
the handler does nothing else, so that transaction commits right after). The
baseline, in the same interleaved rounds, is the same load through raw
kombu: a publish with confirms to the same RabbitMQ and a consumer process
that acks each message, from before the publish to the receipt. The ratio
is taken per round.

    python benchmarks/event_latency.py [--rounds 3] [--events 300] [--rate 100]

Needs ``RABBITMQ_URL`` (default ``amqp://guest:guest@127.0.0.1:5672//``) and a
PostgreSQL server (``DATABASE_URL``'s, default the local one), on which it
makes a database of its own and drops it at the end; its exchanges and queues
have names of their own and are deleted too.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[0] = str(ROOT)

import argparse
import json
import os
import secrets
import signal
import statistics
import subprocess
import time
import uuid
from typing import Any

from benchmarks.results import RESULTS, environment, publish

RABBITMQ_URL = os.environ.get("RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672//")
SERVER_URL = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/test")
TYPE = "bench.item.created.v1"
#: Seconds each publishing transaction took, with the send on commit.
SEND_TIMES: list[float] = []
_TIMEOUT = 60.0


def _database_url(name: str) -> str:
    return SERVER_URL.rsplit("/", 1)[0] + f"/{name}"


def _settings(config: dict[str, Any]) -> None:
    import dj_database_url
    from django.conf import settings

    settings.configure(
        SECRET_KEY="bench",
        USE_TZ=True,
        INSTALLED_APPS=[
            "django.contrib.contenttypes",
            "rest_framework",
            "django_microkit",
            "django_microkit.events",
        ],
        DATABASES={"default": dj_database_url.parse(_database_url(config["db"]))},
        DEFAULT_AUTO_FIELD="django.db.models.BigAutoField",
        LOGGING_CONFIG=None,
        MICROKIT=config["microkit"],
    )
    import django

    django.setup()


def handle(event: Any, data: Any) -> None:
    """The benchmark's handler: nothing beyond the inbox row."""


# --- the two consumers, each in a process of its own ---------------------------


def _worker(config: dict[str, Any]) -> None:
    _settings(config)
    from django.core.management import call_command

    call_command("microkit_consume", "--health-file", config["health"])


def _raw_consumer(config: dict[str, Any]) -> None:
    import kombu

    received: list[float] = []
    stopping = []
    signal.signal(signal.SIGTERM, lambda *args: stopping.append(True))
    with kombu.Connection(RABBITMQ_URL) as connection:
        queue = kombu.Queue(
            config["queue"],
            [kombu.binding(kombu.Exchange(config["exchange"], "topic"), TYPE)],
        )

        def on_message(message: Any) -> None:
            received.append(time.time() - json.loads(message.body)["sent"])
            message.ack()

        with kombu.Consumer(
            connection, [queue], on_message=on_message, prefetch_count=10
        ):
            Path(config["health"]).touch()
            while not stopping:
                try:
                    connection.drain_events(timeout=0.5)
                except TimeoutError:
                    continue
    sys.stdout.write(json.dumps(received))


# --- the producer side ---------------------------------------------------------


def _start(mode: str, config: dict[str, Any]) -> subprocess.Popen[str]:
    Path(config["health"]).unlink(missing_ok=True)
    process = subprocess.Popen(
        [sys.executable, __file__, mode, json.dumps(config)],
        stdout=subprocess.PIPE,
        stderr=None if os.environ.get("BENCH_VERBOSE") else subprocess.DEVNULL,
        text=True,
    )
    deadline = time.monotonic() + _TIMEOUT
    while not Path(config["health"]).exists():
        if time.monotonic() > deadline or process.poll() is not None:
            process.kill()
            raise RuntimeError(f"the {mode} process did not start")
        time.sleep(0.05)
    time.sleep(0.5)  # the queue is declared and bound
    return process


def _stop(process: subprocess.Popen[str]) -> str:
    process.send_signal(signal.SIGTERM)
    try:
        out, _ = process.communicate(timeout=_TIMEOUT)
    finally:
        if process.poll() is None:
            process.kill()
    return out


def _paced(events: int, rate: float) -> Any:
    start = time.monotonic()
    for index in range(events):
        delay = start + index / rate - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        yield index


def _microkit_round(config: dict[str, Any], events: int, rate: float) -> list[float]:
    import threading

    from django.db import transaction

    from django_microkit.events.models import InboxEvent
    from django_microkit.events.publish import publish as publish_event
    from django_microkit.events.relay import Relay

    committed: dict[str, float] = {}
    worker = _start("--worker", config)
    # What the send on commit leaves behind (a key whose earlier event is
    # still being sent) goes with the relay, as in a service.
    done = threading.Event()
    relay = threading.Thread(target=Relay().run, kwargs={"should_stop": done.is_set})
    relay.start()
    try:
        for index in _paced(events, rate):
            started = time.perf_counter()
            with transaction.atomic():
                marker: list[float] = []
                # Registered first, so it runs at commit, before the send.
                transaction.on_commit(lambda m=marker: m.append(time.time()))
                row = publish_event(TYPE, {"n": index}, key=str(index % 16))
            committed[str(row.event_id)] = marker[0]
            SEND_TIMES.append(time.perf_counter() - started)
        deadline = time.monotonic() + _TIMEOUT
        while InboxEvent.objects.filter(event_id__in=committed).count() < events:
            if time.monotonic() > deadline:
                raise RuntimeError("the worker did not handle every event")
            time.sleep(0.1)
    finally:
        done.set()
        relay.join(_TIMEOUT)
        _stop(worker)
    rows = InboxEvent.objects.filter(event_id__in=committed)
    latencies = [row.handled_at.timestamp() - committed[row.event_id] for row in rows]
    InboxEvent.objects.all().delete()
    return latencies


def _raw_round(config: dict[str, Any], events: int, rate: float) -> list[float]:
    import kombu

    consumer = _start("--raw-consumer", config)
    try:
        with kombu.Connection(
            RABBITMQ_URL, transport_options={"confirm_publish": True}
        ) as connection:
            producer = connection.Producer(
                exchange=kombu.Exchange(config["exchange"], "topic")
            )
            for index in _paced(events, rate):
                body = json.dumps({"n": index, "sent": time.time()})
                producer.publish(body, routing_key=TYPE, delivery_mode=2)
        time.sleep(1.0)
    finally:
        out = _stop(consumer)
    latencies: list[float] = json.loads(out or "[]")
    if len(latencies) < events:
        raise RuntimeError(f"the raw consumer got {len(latencies)} of {events}")
    return latencies


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _keys() -> tuple[dict[str, Any], dict[str, Any]]:
    """The producer's signing key and the consumer's view of it (HS256: the
    signature is a negligible share of the latency either way)."""
    secret = secrets.token_urlsafe(48)
    key = {"kid": "bench-1", "alg": "HS256", "key": {"value": secret}}
    return {"SIGNING_KEYS": [key]}, {"PEERS": {"bench": [key]}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--events", type=int, default=300)
    parser.add_argument("--rate", type=float, default=100.0)
    parser.add_argument("--output", default=str(RESULTS))
    args = parser.parse_args()

    import psycopg

    run = uuid.uuid4().hex[:10]
    db = f"microkit_bench_events_{run}"
    prefix = f"microkit-bench-{run}."
    auth_producer, auth_consumer = _keys()
    events = {"BROKER_URL": RABBITMQ_URL, "EXCHANGE_PREFIX": prefix}
    producer_settings = {
        "SERVICE_NAME": "bench",
        "SERVICE_AUTH": auth_producer,
        "EVENTS": events,
    }
    health = f"/tmp/{prefix}alive"
    worker_config = {
        "db": db,
        "health": health,
        "microkit": {
            "SERVICE_NAME": "benchc",
            "SERVICE_AUTH": auth_consumer,
            "EVENTS": {
                **events,
                "QUEUE": f"{prefix}benchc.events",
                "HANDLERS": {TYPE: "benchmarks.event_latency.handle"},
            },
        },
    }
    raw_config = {
        "health": health,
        "exchange": f"{prefix}raw",
        "queue": f"{prefix}raw.events",
    }
    admin = psycopg.connect(_database_url("postgres"), autocommit=True)
    admin.execute(f'CREATE DATABASE "{db}"')
    rounds: list[dict[str, list[float]]] = []
    try:
        _settings({"db": db, "microkit": producer_settings})
        from django.core.management import call_command
        from django.db import connections

        call_command("migrate", verbosity=0)
        for number in range(args.rounds):
            order = ["raw", "microkit"] if number % 2 else ["microkit", "raw"]
            result: dict[str, list[float]] = {}
            for name in order:
                if name == "raw":
                    result[name] = _raw_round(raw_config, args.events, args.rate)
                else:
                    result[name] = _microkit_round(
                        worker_config, args.events, args.rate
                    )
            rounds.append(result)
        connections.close_all()
    finally:
        _cleanup(prefix, worker_config, raw_config)
        admin.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
        admin.close()
    publish("event_latency", _report(rounds, args), args.output)


def _cleanup(prefix: str, worker: dict[str, Any], raw: dict[str, Any]) -> None:
    import kombu

    with kombu.Connection(RABBITMQ_URL) as connection:
        channel = connection.default_channel
        for queue in (worker["microkit"]["EVENTS"]["QUEUE"], raw["queue"]):
            kombu.Queue(queue, channel=channel).delete()
        for exchange in (f"{prefix}bench", raw["exchange"]):
            kombu.Exchange(exchange, channel=channel).delete()


def _report(rounds: list[dict[str, list[float]]], args: argparse.Namespace) -> str:
    def ms(value: float) -> str:
        return f"{value * 1000:.1f} ms"

    lines = [
        "## Events: commit → handler latency",
        "",
        f"{args.rounds} interleaved rounds of {args.events} events at "
        f"{args.rate:g}/s, one transaction each; the real worker on RabbitMQ "
        "and PostgreSQL (inbox, signature check, ack after commit) against raw "
        "kombu publish-with-confirms → consume → ack on the same broker.",
        "",
        "| round | microkit p50 | microkit p99 | raw kombu p50 | raw kombu p99 "
        "| p50 ratio | p99 ratio |",
        "|---|---|---|---|---|---|---|",
    ]
    for number, result in enumerate(rounds, 1):
        mine, raw = result["microkit"], result["raw"]
        p50, p99 = _percentile(mine, 0.5), _percentile(mine, 0.99)
        r50, r99 = _percentile(raw, 0.5), _percentile(raw, 0.99)
        lines.append(
            f"| {number} | {ms(p50)} | {ms(p99)} | {ms(r50)} | {ms(r99)} "
            f"| {p50 / r50:.1f}× | {p99 / r99:.1f}× |"
        )
    every = [value for result in rounds for value in result["microkit"]]
    lines += [
        "",
        f"All rounds: p50 {ms(statistics.median(every))}, "
        f"p99 {ms(_percentile(every, 0.99))}, max {ms(max(every))}. "
        "The publishing transaction itself (outbox row, commit, send on commit "
        f"with the broker's confirm): p50 {ms(statistics.median(SEND_TIMES))}, "
        f"p99 {ms(_percentile(SEND_TIMES, 0.99))}.",
        "",
        environment("kombu", "psycopg"),
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    if sys.argv[1:2] == ["--worker"]:
        _worker(json.loads(sys.argv[2]))
    elif sys.argv[1:2] == ["--raw-consumer"]:
        _raw_consumer(json.loads(sys.argv[2]))
    else:
        main()
