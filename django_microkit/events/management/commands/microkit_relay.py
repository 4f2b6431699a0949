"""``manage.py microkit_relay``: send the outbox to the broker until told to
stop (SIGTERM or SIGINT end the current round, then the command exits 0).

Several relays may run at once; ``--once`` sends what is due and exits.
"""

from __future__ import annotations

import signal
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from django_microkit.events.relay import Relay

__all__ = ["Command"]


class Command(BaseCommand):
    help = "Send the events of the outbox to the broker, until SIGTERM."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--once",
            action="store_true",
            help="Send what is due (full rounds while there is more) and exit.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        relay = Relay()
        if options["once"]:
            sent = 0
            while True:
                result = relay.send_round()
                sent += result.sent
                if result.failed or not result.sent:
                    break
            relay.prune()
            self.stdout.write(f"Sent {sent} events.")
            return
        # A plain flag: a signal handler must take no lock (a second signal
        # arriving while the first handler holds one would deadlock).
        stopping = False

        def request_stop(signum: int, frame: Any) -> None:
            nonlocal stopping
            stopping = True

        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, request_stop)
        relay.run(should_stop=lambda: stopping)
