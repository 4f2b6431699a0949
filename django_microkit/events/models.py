"""The three tables of events: what this service must still send (the outbox),
what it has already handled (the inbox) and what it could not handle (dead
letters).

They live in the service's own database, so an event is written in the same
transaction as the change it reports, and a handler's effect is committed in
the same transaction as the inbox row that makes a redelivery a no-op.
"""

from __future__ import annotations

from django.db import models

__all__ = ["DeadLetter", "DeliveryAttempt", "InboxEvent", "OutboxEvent"]


class OutboxEvent(models.Model):
    """An event written by :func:`~django_microkit.events.publish.publish`, kept until
    the broker confirmed it and for ``OUTBOX_RETENTION`` seconds after.

    The primary key is the order of writing: the relay sends the rows of one
    ``key`` in that order.
    """

    id = models.BigAutoField(primary_key=True)
    #: The CloudEvents ``id``.
    event_id = models.UUIDField(unique=True)
    type = models.CharField(max_length=255)
    #: The ordering key, sent as the CloudEvents ``subject``.
    key = models.CharField(max_length=255)
    #: The signed envelope exactly as it is sent (structured JSON).
    body = models.TextField()
    created_at = models.DateTimeField()
    #: When the broker confirmed the event; ``None`` while it is unsent.
    sent_at = models.DateTimeField(null=True, blank=True)
    #: Attempts to send that failed, the earliest time of the next, and why
    #: the last one failed.
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    last_error = models.CharField(max_length=500, blank=True, default="")

    class Meta:
        ordering = ["id"]
        indexes = [
            # What the relay reads: unsent rows, by key, in order.
            models.Index(
                fields=["key", "id"],
                condition=models.Q(sent_at__isnull=True),
                name="microkit_outbox_unsent",
            ),
            models.Index(fields=["sent_at"], name="microkit_outbox_sent_at"),
        ]

    def __str__(self) -> str:
        return f"{self.type} {self.event_id}"


class InboxEvent(models.Model):
    """An event this service has handled: a redelivery of the same ``(source,
    event_id)`` finds its row and has no second effect."""

    source = models.CharField(max_length=255)
    event_id = models.CharField(max_length=255)
    type = models.CharField(max_length=255)
    handled_at = models.DateTimeField(db_index=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["source", "event_id"], name="microkit_inbox_unique_event"
            )
        ]

    def __str__(self) -> str:
        return f"{self.source} {self.event_id}"


class DeadLetter(models.Model):
    """An event this service received and will not handle without help: why
    (``reason``, ``error``), after how many attempts, and the message as it
    arrived, so it can be inspected and replayed."""

    class Reason(models.TextChoices):
        TOO_LARGE = "too_large"
        NOT_JSON = "not_json"
        INVALID_ENVELOPE = "invalid_envelope"
        UNKNOWN_PRODUCER = "unknown_producer"
        BAD_SIGNATURE = "bad_signature"
        UNKNOWN_TYPE = "unknown_type"
        INVALID_DATA = "invalid_data"
        HANDLER_FAILED = "handler_failed"

    reason = models.CharField(max_length=32, choices=Reason)
    #: What went wrong, in words (never a stack trace or a secret).
    error = models.TextField(blank=True, default="")
    attempts = models.PositiveIntegerField(default=0)
    #: The envelope's attributes when they could be read, else empty.
    event_id = models.CharField(max_length=255, blank=True, default="")
    source = models.CharField(max_length=255, blank=True, default="")
    type = models.CharField(max_length=255, blank=True, default="")
    #: The message body as received (decoded as UTF-8, bad bytes replaced).
    body = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(db_index=True)
    #: Set when the dead letter was handed to the handler again.
    replayed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.reason} {self.type or '?'} {self.event_id or '?'}"


class DeliveryAttempt(models.Model):
    """An event the broker delivered again before any worker settled it: a
    worker took it and stopped (crashed, was killed) while handling it.

    Counted so that an event which keeps stopping its worker becomes a dead
    letter after ``MAX_ATTEMPTS`` deliveries instead of stopping every worker
    that takes it; the row goes once the event is settled.
    """

    source = models.CharField(max_length=255)
    event_id = models.CharField(max_length=255)
    #: Deliveries after the first.
    redeliveries = models.PositiveIntegerField(default=0)
    last_at = models.DateTimeField(db_index=True)

    objects: models.Manager[DeliveryAttempt] = models.Manager()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["source", "event_id"], name="microkit_delivery_unique_event"
            )
        ]

    def __str__(self) -> str:
        return f"{self.source} {self.event_id} ({self.redeliveries})"
