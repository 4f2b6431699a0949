"""``manage.py microkit_consume``: the worker of this service's events.

Consumes the service's queue until SIGTERM or SIGINT (the current message is
finished first, then the command exits 0). ``--relay`` also runs the outbox
relay in a thread, so one process per service both sends and receives;
``--health-file PATH`` keeps a heartbeat file that
``manage.py microkit_health --health-file PATH`` reads (a liveness probe).
"""

from __future__ import annotations

import threading
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from django_microkit.events.consumer import Worker
from django_microkit.events.relay import Relay

__all__ = ["Command"]

#: Seconds the worker waits for its relay thread to finish its round on exit.
_RELAY_JOIN_TIMEOUT = 30.0


class Command(BaseCommand):
    help = "Handle this service's events until SIGTERM (--relay: send its outbox too)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--relay",
            action="store_true",
            help="Also run the outbox relay (as manage.py microkit_relay) in a thread.",
        )
        parser.add_argument(
            "--health-file",
            metavar="PATH",
            help="Touch PATH at least every few seconds while the worker is alive.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        worker = Worker(health_file=options["health_file"])
        if not worker.consumer.handlers.handlers:
            raise CommandError(
                "MICROKIT['EVENTS']['HANDLERS'] is empty: this service consumes no "
                "events (run manage.py microkit_relay to only send them)."
            )
        worker.install_signal_handlers()
        relay = None
        if options["relay"]:
            relay = threading.Thread(
                target=Relay().run,
                kwargs={"should_stop": lambda: worker.stopping},
                name="microkit-relay",
                daemon=True,
            )
            relay.start()
        try:
            worker.run()
        finally:
            worker.stop()
            if relay is not None:
                relay.join(_RELAY_JOIN_TIMEOUT)
