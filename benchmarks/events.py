"""What publishing events costs: the outbox write inside a request's
transaction, and the relay's throughput against raw kombu.

1. **The outbox write.** One transaction writing a row (``benchapp.Item``), as a
   view would, against the same transaction that also calls
   ``publish()`` (``SEND_ON_COMMIT`` off: the signed envelope and the outbox
   row only), and with ``SEND_ON_COMMIT`` on (plus the send after commit, to
   the filesystem transport or, with a broker, waiting for its confirm).
   Interleaved batches in a fresh random order each round; µs per
   transaction, median over rounds, and the paired difference per round.
2. **Relay throughput** (needs RabbitMQ: ``RABBITMQ_URL``, default the local
   one): events per second the relay sends from the outbox (lock a batch,
   publish each with confirms, mark sent), against raw kombu
   ``Producer.publish`` with publisher confirms of the same bodies to the same
   exchange and queue, one connection, nothing else: rounds alternate, and
   the ratio is taken within each round (target >= 0.5x).

The database is SQLite in memory (a file's fsync per commit would hide the
figures), or ``DATABASE_URL``. Names on
the broker carry a prefix of this run and are deleted at the end.

    python benchmarks/events.py [--rounds 7] [--batch 200] [--events 1000]
        [--output -]
"""

from __future__ import annotations

import sys
from pathlib import Path

# Run as a script, this directory would come first on sys.path, where
# benchmarks/http.py shadows the standard library's http.
sys.path[0] = str(Path(__file__).resolve().parent.parent)

import argparse
import os
import random
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from typing import Any

import django
from django.conf import settings

from benchmarks.results import RESULTS, environment, load, publish


def configure(folder: str) -> None:
    database = os.environ.get("DATABASE_URL", "")
    if database:
        import dj_database_url

        databases = {"default": dj_database_url.parse(database)}
    else:
        databases = {
            "default": {
                "ENGINE": "django.db.backends.sqlite3",
                # In memory: a file's fsync per commit would swamp the µs.
                "NAME": ":memory:",
            }
        }
    settings.configure(
        DEBUG=False,
        USE_TZ=True,
        SECRET_KEY="bench-only",
        DATABASES=databases,
        INSTALLED_APPS=[
            "django.contrib.contenttypes",
            "django_microkit",
            "django_microkit.events",
            "benchmarks.benchapp",
        ],
        DEFAULT_AUTO_FIELD="django.db.models.BigAutoField",
        LOGGING_CONFIG=None,
        MICROKIT={
            "SERVICE_NAME": "bench",
            "EVENTS": {"FILESYSTEM_FOLDER": os.path.join(folder, "events")},
        },
    )
    # Settings are configured: the key helpers can be imported now.
    from django_microkit.service_auth.keys import generate_key

    private, _public = generate_key("EdDSA")
    settings.MICROKIT["SERVICE_AUTH"] = {
        "SIGNING_KEYS": [{"kid": "bench-1", "alg": "EdDSA", "key": {"value": private}}]
    }
    django.setup()
    from django.core.management import call_command

    call_command("migrate", run_syncdb=True, verbosity=0)


def _events(**events: Any) -> Any:
    from django.test import override_settings

    return override_settings(
        MICROKIT={
            **settings.MICROKIT,
            "EVENTS": {**settings.MICROKIT["EVENTS"], **events},
        }
    )


# --- 1. the outbox write ----------------------------------------------------


def outbox_write(rounds: int, batch: int) -> str:
    from django.db import transaction

    from benchmarks.benchapp.models import Item
    from django_microkit.events.models import OutboxEvent
    from django_microkit.events.publish import publish as publish_event

    data = {"id": 1, "items": [{"sku": "A-1", "quantity": 2}], "total": "19.90"}

    def plain() -> None:
        with transaction.atomic():
            Item.objects.create(name="x", size=1)

    def with_event() -> None:
        with transaction.atomic():
            item = Item.objects.create(name="x", size=1)
            publish_event("bench.order.placed.v1", data, key=str(item.pk))

    variants: dict[str, tuple[Callable[[], None], dict[str, Any]]] = {
        "row": (plain, {}),
        "row + publish()": (with_event, {"SEND_ON_COMMIT": False}),
        "row + publish() + send on commit": (with_event, {"SEND_ON_COMMIT": True}),
    }
    times: dict[str, list[float]] = {name: [] for name in variants}
    for round_ in range(rounds + 1):
        order = list(variants)
        random.shuffle(order)
        for name in order:
            function, events = variants[name]
            with _events(**events):
                started = time.perf_counter()
                for _ in range(batch):
                    function()
                elapsed = (time.perf_counter() - started) / batch * 1e6
            if round_:  # the first round warms up
                times[name].append(elapsed)
        Item.objects.all().delete()
        OutboxEvent.objects.all().delete()
    base = times["row"]
    lines = [
        "| transaction | µs, median "
        "| + µs over the row alone (paired, min / median / max) |",
        "|---|---|---|",
    ]
    for name, values in times.items():
        extra = [value - b for value, b in zip(values, base, strict=True)]
        spread = (
            "—"
            if name == "row"
            else f"{min(extra):.0f} / {statistics.median(extra):.0f} / {max(extra):.0f}"
        )
        lines.append(f"| {name} | {statistics.median(values):.0f} | {spread} |")
    return "\n".join(lines)


# --- 2. relay throughput ------------------------------------------------------


def relay_throughput(rounds: int, count: int, url: str) -> str:
    from kombu.connection import Connection
    from kombu.entity import Exchange, Queue
    from kombu.messaging import Producer

    from django_microkit.events.kombu import KombuTransport
    from django_microkit.events.models import OutboxEvent
    from django_microkit.events.publish import publish as publish_event
    from django_microkit.events.relay import Relay
    from django_microkit.events.transport import OutgoingEvent, get_transport

    prefix = f"microkit-bench-{uuid.uuid4().hex[:8]}."
    queue_name = f"{prefix}events"
    exchange = Exchange(f"{prefix}bench", "topic", durable=True)
    queue = Queue(
        queue_name, exchange, routing_key="bench.order.placed.v1", durable=True
    )
    relay_rates: list[float] = []
    raw_rates: list[float] = []
    with (
        _events(
            BROKER_URL=url,
            EXCHANGE_PREFIX=prefix,
            SEND_ON_COMMIT=False,
            RELAY_BATCH_SIZE=100,
        ),
        Connection(url, transport_options={"confirm_publish": True}) as raw,
    ):
        channel = raw.channel()
        queue(channel).declare()
        try:
            for round_ in range(rounds + 1):
                OutboxEvent.objects.all().delete()
                for n in range(count):
                    publish_event("bench.order.placed.v1", {"n": n}, key=str(n % 10))
                rows = list(OutboxEvent.objects.order_by("id"))
                relay = Relay()
                transport = get_transport()
                assert isinstance(transport, KombuTransport)
                transport.publish(OutgoingEvent("warm", rows[0].type, "w", "{}"))
                started = time.perf_counter()
                while relay.send_round().sent:
                    pass
                relay_elapsed = time.perf_counter() - started
                assert not OutboxEvent.objects.filter(sent_at__isnull=True).exists()

                producer = Producer(channel, exchange=exchange)
                started = time.perf_counter()
                for row in rows:
                    producer.publish(
                        row.body,
                        routing_key=row.type,
                        content_type="application/cloudevents+json",
                        content_encoding="utf-8",
                        delivery_mode=2,
                        message_id=str(row.event_id),
                        mandatory=True,
                    )
                raw_elapsed = time.perf_counter() - started
                channel.queue_purge(queue_name)
                if round_:
                    relay_rates.append(count / relay_elapsed)
                    raw_rates.append(count / raw_elapsed)
        finally:
            channel.queue_delete(queue_name)
            channel.exchange_delete(exchange.name)
            get_transport().close()
    ratios = [r / w for r, w in zip(relay_rates, raw_rates, strict=True)]
    return "\n".join(
        [
            "| sender | events/s, median | min / max |",
            "|---|---|---|",
            f"| raw kombu publish with confirms | {statistics.median(raw_rates):.0f} "
            f"| {min(raw_rates):.0f} / {max(raw_rates):.0f} |",
            f"| relay (lock, publish with confirms, mark sent) | "
            f"{statistics.median(relay_rates):.0f} "
            f"| {min(relay_rates):.0f} / {max(relay_rates):.0f} |",
            "",
            f"Relay / raw within a round: min {min(ratios):.2f}×, median "
            f"{statistics.median(ratios):.2f}×, max {max(ratios):.2f}× "
            "(target ≥ 0.5×).",
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--batch", type=int, default=200)
    parser.add_argument("--events", type=int, default=1000)
    parser.add_argument("--output", default=str(RESULTS))
    args = parser.parse_args()
    url = os.environ.get("RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672//")
    with tempfile.TemporaryDirectory() as folder:
        configure(folder)
        from django.db import connection

        write = outbox_write(args.rounds, args.batch)
        throughput = relay_throughput(args.rounds, args.events, url)
        vendor = connection.vendor
    text = (
        "## Events: publishing\n\n"
        f"{environment('kombu', 'amqp')} Database: {vendor}; broker RabbitMQ on "
        f"loopback. {args.rounds} rounds (after one warm-up).\n\n"
        "The outbox write inside a request's transaction "
        f"({args.batch} transactions per batch; the send on commit goes to the "
        "filesystem transport):\n\n"
        f"{write}\n\n"
        f"Relay throughput, {args.events} events per round:\n\n"
        f"{throughput}\n\n"
        f"Load average at the end: {load()}.\n"
    )
    publish("events", text, args.output)


if __name__ == "__main__":
    main()
