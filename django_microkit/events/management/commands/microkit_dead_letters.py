"""``manage.py microkit_dead_letters``: inspect, replay and purge dead letters.

``list`` shows the dead letters not yet replayed (``--replayed`` adds the
others), ``show ID`` one of them with its message, ``replay ID…`` (or
``--all``) hands each to its handler again through the inbox (an event handled
meanwhile has no second effect) and exits 1 if any is still dead, ``purge``
deletes the ones named or selected.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db.models import QuerySet

from django_microkit.events.consumer import Consumer
from django_microkit.events.models import DeadLetter

__all__ = ["Command"]


class Command(BaseCommand):
    help = "List, show, replay or purge the events this service could not handle."

    def add_arguments(self, parser: CommandParser) -> None:
        actions = parser.add_subparsers(dest="action", required=True)
        listing = actions.add_parser("list", help="List dead letters.")
        self._add_filters(listing)
        listing.add_argument(
            "--replayed", action="store_true", help="Include replayed ones."
        )
        listing.add_argument("--limit", type=int, default=100)
        show = actions.add_parser("show", help="Show one dead letter and its message.")
        show.add_argument("id", type=int)
        replay = actions.add_parser("replay", help="Handle dead letters again.")
        replay.add_argument("ids", type=int, nargs="*", metavar="ID")
        replay.add_argument(
            "--all", action="store_true", help="Every dead letter not yet replayed."
        )
        self._add_filters(replay)
        purge = actions.add_parser("purge", help="Delete dead letters.")
        purge.add_argument("ids", type=int, nargs="*", metavar="ID")
        purge.add_argument(
            "--replayed", action="store_true", help="Every replayed dead letter."
        )
        purge.add_argument(
            "--older-than",
            type=float,
            metavar="DAYS",
            help="Every dead letter received more than DAYS days ago.",
        )
        purge.add_argument("--all", action="store_true", help="Every dead letter.")

    @staticmethod
    def _add_filters(parser: CommandParser) -> None:
        parser.add_argument("--reason", choices=DeadLetter.Reason.values)
        parser.add_argument("--type", dest="event_type", metavar="TYPE")

    def handle(self, *args: Any, **options: Any) -> None:
        getattr(self, f"_{options['action']}")(options)

    def _filtered(self, options: dict[str, Any]) -> QuerySet[DeadLetter]:
        letters: QuerySet[DeadLetter] = DeadLetter.objects.order_by("id")
        if options.get("reason"):
            letters = letters.filter(reason=options["reason"])
        if options.get("event_type"):
            letters = letters.filter(type=options["event_type"])
        return letters

    def _list(self, options: dict[str, Any]) -> None:
        letters = self._filtered(options)
        if not options["replayed"]:
            letters = letters.filter(replayed_at__isnull=True)
        rows = [("ID", "RECEIVED", "REASON", "TYPE", "SOURCE", "EVENT", "ATTEMPTS")]
        for letter in letters[: max(options["limit"], 0)]:
            rows.append(
                (
                    str(letter.pk),
                    _time(letter.created_at),
                    letter.reason + (" (replayed)" if letter.replayed_at else ""),
                    letter.type or "-",
                    letter.source or "-",
                    letter.event_id or "-",
                    str(letter.attempts),
                )
            )
        widths = [max(len(row[column]) for row in rows) for column in range(7)]
        for row in rows:
            self.stdout.write(
                "  ".join(
                    cell.ljust(width) for cell, width in zip(row, widths, strict=True)
                ).rstrip()
            )
        if len(rows) == 1:
            self.stdout.write("(no dead letters)")

    def _show(self, options: dict[str, Any]) -> None:
        letter = DeadLetter.objects.filter(pk=options["id"]).first()
        if letter is None:
            raise CommandError(f"There is no dead letter {options['id']}.")
        fields = {
            "id": letter.pk,
            "received": _time(letter.created_at),
            "reason": letter.reason,
            "error": letter.error,
            "attempts": letter.attempts,
            "type": letter.type,
            "source": letter.source,
            "event_id": letter.event_id,
            "replayed": _time(letter.replayed_at) if letter.replayed_at else None,
        }
        for name, value in fields.items():
            self.stdout.write(f"{name}: {value if value not in ('', None) else '-'}")
        try:
            body = json.dumps(json.loads(letter.body), indent=2, ensure_ascii=False)
        except (ValueError, RecursionError):
            body = letter.body
        self.stdout.write("message:")
        self.stdout.write(body)

    def _replay(self, options: dict[str, Any]) -> None:
        letters = self._selected(options, everything=options["all"])
        letters = letters.filter(replayed_at__isnull=True)
        consumer = Consumer()
        dead = 0
        for letter in letters:
            outcome = consumer.replay(letter)
            if outcome.is_dead:
                dead += 1
                self.stdout.write(
                    f"{letter.pk}: still dead ({outcome.reason}: {outcome.error})"
                )
            else:
                self.stdout.write(f"{letter.pk}: {outcome.status}")
        if dead:
            raise CommandError(f"{dead} dead letters could not be handled.")

    def _purge(self, options: dict[str, Any]) -> None:
        letters = self._selected(
            options,
            everything=options["all"],
            replayed=options["replayed"],
            older_than=options["older_than"],
        )
        deleted, _ = letters.delete()
        self.stdout.write(f"Deleted {deleted} dead letters.")

    def _selected(
        self,
        options: dict[str, Any],
        *,
        everything: bool,
        replayed: bool = False,
        older_than: float | None = None,
    ) -> QuerySet[DeadLetter]:
        if not (options["ids"] or everything or replayed or older_than is not None):
            raise CommandError("Name dead letters by ID, or select them (see --help).")
        letters = self._filtered(options)
        if options["ids"]:
            letters = letters.filter(pk__in=options["ids"])
        if replayed:
            letters = letters.filter(replayed_at__isnull=False)
        if older_than is not None:
            cutoff = datetime.now(tz=timezone.utc) - timedelta(days=older_than)
            letters = letters.filter(created_at__lt=cutoff)
        return letters


def _time(value: datetime) -> str:
    return value.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
