"""Lease rules: how long a reservation may last, and what confirming or releasing an ended one answers."""

from __future__ import annotations

from datetime import datetime

from promopool.domain.errors import Conflict, InvalidInput, LeaseExpired, LeaseReleased
from promopool.domain.models import Lease, LeaseState

MAX_LEASE_SECONDS = 7 * 24 * 3600


def check_lease_seconds(seconds: int) -> int:
    if not 1 <= seconds <= MAX_LEASE_SECONDS:
        raise InvalidInput(f"lease_seconds must be 1-{MAX_LEASE_SECONDS}", field="lease_seconds")
    return seconds


def ran_out(lease: Lease, now: datetime) -> bool:
    """A lease past its time has ended, even before the sweep has put its code back."""
    return lease.state is LeaseState.EXPIRED or (lease.state is LeaseState.ACTIVE and lease.expires_at <= now)


def settled(lease: Lease, wanted: LeaseState, now: datetime) -> Lease:
    """After a conditional update of an active, running lease to ``wanted`` changed nothing: the lease when
    it already is ``wanted`` (a repeated confirm or release is harmless), otherwise the error saying why."""
    if lease.state is wanted:
        return lease
    if ran_out(lease, now):
        raise LeaseExpired(lease.id)
    if lease.state is LeaseState.RELEASED:
        raise LeaseReleased(lease.id)
    if lease.state is LeaseState.CONFIRMED:
        raise Conflict(f"lease {lease.id} was confirmed: its code stays issued", lease_id=lease.id)
    raise Conflict(f"lease {lease.id} changed meanwhile; try again", lease_id=lease.id)


def replayable(lease: Lease, now: datetime) -> Lease:
    """The lease an Idempotency-Key replay may show with its code: never one that has ended by running out or
    by release, since its code may since have gone to someone else."""
    if ran_out(lease, now):
        raise LeaseExpired(lease.id)
    if lease.state is LeaseState.RELEASED:
        raise LeaseReleased(lease.id)
    return lease
