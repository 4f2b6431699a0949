"""One contender in a race between processes for one idempotency key.

``python -m tests.testapp.idempotency_race <run> <counter> <key>`` configures
Django with the test settings (so the cache is the Redis of ``REDIS_URL``),
reports itself ready, waits for the starting signal of run ``<run>`` in the
cache, posts to the counting view once and prints the outcome as JSON.
"""

from __future__ import annotations

import json
import os
import sys
import time


def main(run: str, counter: str, key: str) -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")
    import django

    django.setup()
    from django.core.cache import cache
    from rest_framework.test import APIClient

    cache.add(f"{run}:ready", 0, 60)
    cache.incr(f"{run}:ready")
    deadline = time.monotonic() + 30
    while not cache.get(f"{run}:go"):
        if time.monotonic() > deadline:
            raise SystemExit("no starting signal")
        time.sleep(0.005)
    response = APIClient().post(
        "/idempotency/counter/",
        {"counter": counter, "sleep": 0.5},
        format="json",
        headers={"Idempotency-Key": key},
    )
    print(
        json.dumps(
            {
                "status": response.status_code,
                "replayed": response.get("Idempotent-Replayed"),
                "body": response.content.decode(),
            }
        )
    )


if __name__ == "__main__":
    main(*sys.argv[1:4])
