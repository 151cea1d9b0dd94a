"""Webhook delivery: a background task in every server process sends due events, with backoff.

Events are rows written by the claim transactions (``TakeCodes`` in ``storage/driver.py``) or queued by
``send_test_event`` (service/alerts.py). A sender leases
due rows (several processes and servers lease disjoint ones), POSTs each as JSON signed per Standard Webhooks
under the account's secret (``webhook-id`` is the delivery's id, the same on every retry), and records the
outcome: delivered on a 2xx answer, otherwise retried after the next delay of ``RETRY_DELAYS`` and given up
(``failed``) after the last. Delivery is at least once: a receiver that answered but whose answer was lost
(crash, timeout) gets the same event again and dedupes on its ``id``. Claims never wait for any of this.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from datetime import timedelta

import httpx
import msgspec

from promopool import __version__, metrics
from promopool.domain.alerts import (
    RETRY_DELAYS,
    Delivery,
    new_webhook_secret,
    retry_delay,
    signature_headers,
)
from promopool.outages import OUTAGES, background_failure
from promopool.storage import Store

log = logging.getLogger("promopool.webhooks")

LEASE = timedelta(seconds=60)  # longer than a send can take (TIMEOUT), so a lease never runs out mid-send
TIMEOUT_SECONDS = 10.0
ROUND_SIZE = 20
KEEP_DELIVERIES = timedelta(days=30)
PURGE_EVERY_ROUNDS = 3600
MAX_ERROR = 500


def webhook_body(delivery: Delivery) -> bytes:
    """The POSTed bytes (the signed ones): the same for every attempt of a delivery."""
    return msgspec.json.encode(delivery.envelope())


class WebhookSender:
    def __init__(
        self,
        store: Store,
        *,
        poll_seconds: float = 1.0,
        retry_delays: Sequence[timedelta] = RETRY_DELAYS,
        timeout_seconds: float = TIMEOUT_SECONDS,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        self._store = store
        self._poll = poll_seconds
        self._delays = retry_delays
        self._timeout = timeout_seconds
        self._client = client

    async def run(self) -> None:
        """Send due deliveries until cancelled; a failing database is waited out."""
        rounds = 0
        async with contextlib.AsyncExitStack() as stack:
            client = self._client or await stack.enter_async_context(self._new_client())
            while True:
                sent = 0
                try:
                    sent = await self.deliver_due(client)
                    if rounds % PURGE_EVERY_ROUNDS == 0:
                        await self._store.purge_deliveries(older_than=self._store.clock() - KEEP_DELIVERIES)
                except Exception as exc:
                    background_failure("webhook round failed", exc)
                else:
                    OUTAGES.succeeded()
                rounds += 1
                if sent < ROUND_SIZE:  # a full round: more may be due right away
                    await asyncio.sleep(self._poll)

    def _new_client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            timeout=self._timeout, follow_redirects=False, headers={"User-Agent": f"promopool/{__version__}"}
        )

    async def deliver_due(self, client: httpx.AsyncClient | None = None) -> int:
        """One round: lease the deliveries due now and attempt each once. Returns how many were attempted."""
        now = self._store.clock()
        leased = await self._store.lease_deliveries(now=now, lease_until=now + LEASE, limit=ROUND_SIZE)
        if not leased:
            return 0
        client = client or self._client
        if client is None:
            async with self._new_client() as own:
                await asyncio.gather(*(self._attempt(own, d) for d in leased))
        else:
            await asyncio.gather(*(self._attempt(client, d) for d in leased))
        return len(leased)

    async def _attempt(self, client: httpx.AsyncClient, delivery: Delivery) -> None:
        secret = delivery.secret or await self._store.webhook_secret(
            account_id=delivery.account_id, new_secret=new_webhook_secret()
        )
        body = webhook_body(delivery)
        headers = {
            "Content-Type": "application/json",
            "X-Promopool-Event": delivery.event,
            "X-Promopool-Delivery": str(delivery.id),
            **signature_headers(secret, str(delivery.id), self._store.clock(), body),
        }
        status: int | None = None
        error: str | None = None
        try:
            response = await client.post(delivery.url, content=body, headers=headers, timeout=self._timeout)
            status = response.status_code
            if not 200 <= status < 300:
                error = f"HTTP {status}"
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {exc}"[:MAX_ERROR]
        now = self._store.clock()
        delay = None if error is None else retry_delay(delivery.attempts, self._delays)
        await self._store.finish_attempt(
            delivery_id=delivery.id,
            now=now,
            delivered=error is None,
            status=status,
            error=error,
            retry_at=None if delay is None else now + delay,
        )
        result = "delivered" if error is None else "retry" if delay is not None else "failed"
        metrics.count_webhook(delivery.event, result)
        log.log(
            logging.INFO if error is None else logging.WARNING,
            "webhook %s %s",
            delivery.id,
            result,
            extra={
                "fields": {
                    "delivery": delivery.id,
                    "event": delivery.event,
                    "pool_id": delivery.pool_id,
                    "attempt": delivery.attempts,
                    "status": status,
                    "error": error,
                }
            },
        )
