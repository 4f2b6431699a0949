"""The relay: sends the outbox to the broker, in order per key, and marks each
event sent only once the broker confirmed it.

A round locks a batch of due, unsent rows (``SELECT … FOR UPDATE SKIP LOCKED``
where the database has it, so several relays share the work without waiting
on each other), sends each row that is the next unsent one of its key, and
marks the sent rows in the same transaction. A row whose key has an earlier
unsent row that this relay does not hold waits for the relay that holds it: the
events of one key reach the broker in the order they were written. A failure
records the error and backs the row off (``RETRY_BACKOFF``, doubling, at most
``RETRY_BACKOFF_MAX``) and ends the round; nothing is ever deleted unsent.

If the relay dies between the broker's confirmation and its commit, the event
is sent again by the next round: consumers absorb the duplicate (their inbox).
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import timedelta

from django.db import connections, router, transaction
from django.db.models import F, Q, QuerySet
from django.utils import timezone

from django_microkit.conf import microkit_settings
from django_microkit.events.models import OutboxEvent
from django_microkit.events.transport import (
    OutgoingEvent,
    Transport,
    TransportError,
    get_transport,
    sleep_unless_stopped,
)
from django_microkit.metrics.families import EVENTS_PUBLISHED

__all__ = ["Relay", "RoundResult"]

logger = logging.getLogger("django_microkit.events")

# Seconds between two prunings of sent rows, and rows deleted at most per query.
_PRUNE_EVERY = 60.0
_PRUNE_BATCH = 1000
_MAX_ERROR = 500


@dataclass(frozen=True)
class RoundResult:
    """What one round of the relay did."""

    #: Events the broker confirmed and that are now marked sent.
    sent: int = 0
    #: Events the broker did not confirm (backed off, to be sent again).
    failed: int = 0
    #: Rows locked but left for later: an earlier row of their key was not
    #: this relay's to send, or failed.
    deferred: int = 0


class Relay:
    """Sends unsent outbox rows through the transport.

    ``Relay().run(should_stop=...)`` is the loop of ``manage.py microkit_relay``
    (and of a worker's relay thread); :meth:`send_round` is one round;
    :meth:`send_events` is what :func:`~django_microkit.events.publish.publish` calls
    after commit. Subclass it to change :meth:`backoff`.
    """

    def __init__(
        self, *, transport: Transport | None = None, using: str | None = None
    ) -> None:
        self._transport = transport
        self.using = using or router.db_for_write(OutboxEvent)
        self._last_prune = float("-inf")

    @property
    def transport(self) -> Transport:
        return self._transport or get_transport()

    def backoff(self, attempts: int) -> float:
        """Seconds before a row that failed ``attempts`` times is tried again."""
        settings = microkit_settings.EVENTS
        base = float(settings["RETRY_BACKOFF"])
        doubled = base * float(2 ** min(attempts - 1, 62))
        return min(doubled, float(settings["RETRY_BACKOFF_MAX"]))

    # --- rounds -----------------------------------------------------------

    def send_round(self) -> RoundResult:
        """Send one batch of due rows (``RELAY_BATCH_SIZE``)."""
        now = timezone.now()
        due = OutboxEvent.objects.using(self.using).filter(
            Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now),
            sent_at__isnull=True,
        )
        return self._send(due, int(microkit_settings.EVENTS["RELAY_BATCH_SIZE"]))

    def send_events(self, ids: Iterable[int]) -> RoundResult:
        """Send the rows ``ids`` now, if each is the next of its key and no
        other relay holds it (else they are left to the relay's rounds)."""
        ids = list(ids)
        rows = OutboxEvent.objects.using(self.using).filter(
            id__in=ids, sent_at__isnull=True
        )
        return self._send(rows, len(ids))

    def _send(self, rows: QuerySet[OutboxEvent], limit: int) -> RoundResult:
        connection = connections[self.using]
        skip_locked = connection.features.has_select_for_update_skip_locked
        with transaction.atomic(using=self.using):
            locked = list(
                rows.select_for_update(skip_locked=skip_locked).order_by("id")[:limit]
            )
            if not locked:
                return RoundResult()
            unsent = self._unsent_ids(locked)
            sent: list[int] = []
            sent_types: list[str] = []
            blocked: set[str] = set()
            failed = deferred = 0
            transport = self.transport
            for row in locked:
                pending = unsent[row.key]
                if row.key in blocked or not pending or pending[0] != row.id:
                    blocked.add(row.key)
                    deferred += 1
                    continue
                pending.popleft()
                if failed:
                    deferred += 1
                    continue
                try:
                    transport.publish(
                        OutgoingEvent(str(row.event_id), row.type, row.key, row.body)
                    )
                except TransportError as error:
                    # The broker is likely down: end the round, back this row off.
                    failed = 1
                    blocked.add(row.key)
                    self._failed(row, str(error))
                else:
                    sent.append(row.id)
                    sent_types.append(row.type)
            if sent:
                OutboxEvent.objects.using(self.using).filter(id__in=sent).update(
                    sent_at=timezone.now()
                )
                for event_type in sent_types:
                    EVENTS_PUBLISHED.labels(event_type).inc()
        result = RoundResult(len(sent), failed, deferred)
        logger.debug("Relay round: %s", result)
        return result

    def _unsent_ids(self, locked: list[OutboxEvent]) -> dict[str, deque[int]]:
        """Per key of ``locked``, the ids of its unsent rows up to the last one
        locked, in order: a locked row is sent only when it is the next."""
        last = max(row.id for row in locked)
        unsent: dict[str, deque[int]] = defaultdict(deque)
        rows = (
            OutboxEvent.objects.using(self.using)
            .filter(sent_at__isnull=True, key__in={row.key for row in locked})
            .filter(id__lte=last)
            .order_by("id")
            .values_list("key", "id")
        )
        for key, id in rows:
            unsent[key].append(id)
        return unsent

    def _failed(self, row: OutboxEvent, error: str) -> None:
        attempts = row.attempts + 1
        logger.warning(
            "Sending the event %s failed (attempt %d): %s",
            row.event_id,
            attempts,
            error,
        )
        OutboxEvent.objects.using(self.using).filter(id=row.id).update(
            attempts=F("attempts") + 1,
            next_attempt_at=timezone.now() + timedelta(seconds=self.backoff(attempts)),
            last_error=error[:_MAX_ERROR],
        )

    # --- pruning and the loop ---------------------------------------------

    def prune(self) -> int:
        """Delete rows sent more than ``OUTBOX_RETENTION`` seconds ago (at most
        a thousand per call); the number deleted."""
        retention = int(microkit_settings.EVENTS["OUTBOX_RETENTION"])
        cutoff = timezone.now() - timedelta(seconds=retention)
        manager = OutboxEvent.objects.using(self.using)
        ids = list(
            manager.filter(sent_at__lt=cutoff)
            .order_by("id")
            .values_list("id", flat=True)[:_PRUNE_BATCH]
        )
        if not ids:
            return 0
        deleted, _ = manager.filter(id__in=ids).delete()
        return int(deleted)

    def run(self, *, should_stop: Callable[[], bool]) -> None:
        """Send rounds until ``should_stop()`` is true (asked at least once a
        second): at once after a full round, else every ``RELAY_INTERVAL``
        seconds; prune sent rows once a minute. Never raises for a broker or
        database outage: it logs and tries again."""
        try:
            while not should_stop():
                busy = self.run_once()
                if not busy:
                    sleep_unless_stopped(
                        float(microkit_settings.EVENTS["RELAY_INTERVAL"]), should_stop
                    )
        finally:
            # The loop's own connection (of its thread or process); not one a
            # caller's transaction still uses.
            database = connections[self.using]
            if not database.in_atomic_block:
                database.close()
            if self._transport is None:
                get_transport().close()

    def run_once(self) -> bool:
        """One step of :meth:`run`: a round (and pruning when due). True when
        the round was full and another should follow at once."""
        database = connections[self.using]
        if not database.in_atomic_block:
            # As at the end of a request: a connection broken by a database
            # restart, or past CONN_MAX_AGE, is replaced rather than failing
            # every round.
            database.close_if_unusable_or_obsolete()
        try:
            result = self.send_round()
            if time.monotonic() - self._last_prune >= _PRUNE_EVERY:
                self._last_prune = time.monotonic()
                pruned = self.prune()
                if pruned:
                    logger.info("Pruned %d sent events from the outbox.", pruned)
        except Exception:
            # The database is down, or a bug: the loop must go on.
            logger.exception("A relay round failed.")
            return False
        batch = int(microkit_settings.EVENTS["RELAY_BATCH_SIZE"])
        return (
            result.failed == 0
            and result.sent > 0
            and result.sent + result.deferred >= batch
        )
