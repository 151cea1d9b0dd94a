"""The storage interface every engine implements, and what they share.

Engines are chosen by URL scheme (``open_store``) and import their driver only in their own module. Business
rules live in ``promopool.service``; a store only keeps data consistent and atomic.
"""

from __future__ import annotations

import abc
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import resources
from typing import Any

from promopool.domain import (
    Account,
    Claimed,
    Code,
    CodeState,
    Lease,
    Pool,
    PoolSettings,
    Profile,
    ProfileDatabase,
    Redeemed,
    Redemption,
)
from promopool.domain.alerts import ActivityPoint, Delivery, InventoryRow, PoolAlert
from promopool.domain.errors import Conflict, IdempotencyKeyReused, PoolExhausted, PromopoolError
from promopool.domain.export import ExportRow
from promopool.domain.jobs import Job, JobKind
from promopool.domain.profiles import Identity
from promopool.domain.redemptions import CodeUse, NewRedemption
from promopool.storage.coalesce import ClaimCoalescer

Clock = Callable[[], datetime]

# Seconds a statement waits for a lock (a pool's row; SQLite's write lock) before StorageBusy: a claim must
# not hang behind a transaction that holds its pool (settings: lock_timeout_seconds).
DEFAULT_LOCK_TIMEOUT = 5.0


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    sql: str


def load_migrations(engine: str) -> list[Migration]:
    """The engine's versioned SQL files, ``NNNN_name.sql``, in order."""
    folder = resources.files("promopool.storage.migrations").joinpath(engine)
    found = []
    for entry in folder.iterdir():
        if entry.name.endswith(".sql"):
            number, _, rest = entry.name.partition("_")
            found.append(Migration(int(number), rest.removesuffix(".sql"), entry.read_text("utf-8")))
    return sorted(found, key=lambda m: m.version)


ClaimResult = Claimed | PromopoolError

# A position in an account-wide listing: (pool id, code value).
CodeKey = tuple[int, str]


class Store(abc.ABC):
    """One database holding every account's data; every method is scoped by the caller's account."""

    engine: str

    def __init__(
        self,
        url: str,
        *,
        clock: Clock = utc_now,
        pool_size: int = 10,
        lock_timeout: float = DEFAULT_LOCK_TIMEOUT,
    ) -> None:
        self.url = url
        self.clock = clock
        self.pool_size = pool_size  # database connections this store may hold open
        self.lock_timeout = lock_timeout
        self._claims = ClaimCoalescer(self.claim_batch)

    # -- lifecycle ---------------------------------------------------------------------------------------
    @abc.abstractmethod
    async def connect(self) -> None: ...

    @abc.abstractmethod
    async def close(self) -> None: ...

    @abc.abstractmethod
    async def migrate(self) -> list[int]:
        """Apply pending migrations; return the versions applied now."""

    @abc.abstractmethod
    async def ping(self) -> None:
        """Raise StorageUnavailable unless the database answers."""

    # -- accounts ----------------------------------------------------------------------------------------
    @abc.abstractmethod
    async def create_account(self, *, name: str, public_key: str, key_hash: str) -> Account: ...

    @abc.abstractmethod
    async def add_api_key(self, *, account_id: int, key_hash: str) -> None: ...

    @abc.abstractmethod
    async def account_by_key_hash(self, key_hash: str) -> Account | None: ...

    @abc.abstractmethod
    async def account_by_public_key(self, public_key: str) -> Account | None: ...

    @abc.abstractmethod
    async def account_by_name(self, name: str) -> Account | None: ...

    @abc.abstractmethod
    async def count_accounts(self) -> int: ...

    # -- pools -------------------------------------------------------------------------------------------
    @abc.abstractmethod
    async def create_pool(
        self, *, account_id: int, name: str, settings: PoolSettings, idempotency_key: str | None = None
    ) -> tuple[Pool, bool]:
        """A new pool, and False; with a key used before to create a pool, that pool and True (replayed),
        PoolNotFound when it has been deleted since, IdempotencyKeyReused when the key was used for
        another kind of request. The key is recorded in the pool's transaction."""

    @abc.abstractmethod
    async def list_pools(self, *, account_id: int) -> list[Pool]: ...

    @abc.abstractmethod
    async def get_pool(self, *, account_id: int, pool_id: int) -> Pool | None: ...

    @abc.abstractmethod
    async def update_pool(
        self, *, account_id: int, pool_id: int, name: str, settings: PoolSettings
    ) -> Pool | None: ...

    @abc.abstractmethod
    async def delete_pool(self, *, account_id: int, pool_id: int) -> bool: ...

    # -- codes -------------------------------------------------------------------------------------------
    @abc.abstractmethod
    async def insert_codes(
        self, *, pool_id: int, values: Sequence[str], expect_duplicates: bool = False
    ) -> int:
        """Insert valid, stripped values into the pool as available codes, skipping any value the pool
        already holds (or that repeats within ``values``); return how many were inserted.
        ``expect_duplicates`` is a hint (earlier batches of the upload held some): an engine may then skip
        a way that is faster only without duplicates. The outcome is the same either way."""

    @abc.abstractmethod
    async def list_codes(
        self, *, pool_id: int, state: CodeState | None, after: str | None, limit: int
    ) -> list[Code]:
        """Codes of the pool ordered by value, those after ``after`` (a cursor) only."""

    @abc.abstractmethod
    async def get_code(self, *, pool_id: int, value: str) -> Code | None: ...

    @abc.abstractmethod
    async def delete_code(self, *, pool_id: int, value: str) -> bool: ...

    # -- claims ------------------------------------------------------------------------------------------
    async def claim(self, *, account_id: int, pool_id: int, idempotency_key: str | None) -> Claimed:
        """Hand out the pool's next available code exactly once (coalesced with concurrent claims)."""
        return await self._claims.claim(account_id, pool_id, idempotency_key)

    @abc.abstractmethod
    async def claim_batch(
        self, account_id: int, pool_id: int, keys: Sequence[str | None]
    ) -> list[ClaimResult]:
        """Claim one code for each entry of ``keys`` in one transaction.

        An entry with an idempotency key whose earlier claim (same pool) exists gets that claim back,
        ``replayed``; same key on another scope gets IdempotencyKeyReused; when the pool runs dry the
        remaining entries get PoolExhausted. Raises PoolNotFound or PoolExpired for the whole batch.
        Durable (committed) before it returns.
        """

    @abc.abstractmethod
    async def purge_idempotency_keys(self, *, older_than: datetime) -> int: ...

    # -- promotions: an account's codes across its pools (the SuperSaaS dialect) --------------------------
    @abc.abstractmethod
    async def list_account_codes(
        self, *, account_id: int, after: CodeKey | None = None, offset: int = 0, limit: int
    ) -> list[Code]:
        """The account's codes ordered by (pool id, value): those after the cursor ``after`` when given,
        else from the start skipping ``offset``; at most ``limit``. One consistent snapshot per call."""

    @abc.abstractmethod
    async def find_account_code(self, *, account_id: int, value: str) -> Code | None:
        """The code with this value in the account's pool of lowest id that holds it."""

    @abc.abstractmethod
    async def duplicate_code(self, *, account_id: int, template_id: int, value: str) -> Code | None:
        """Add ``value`` as a new available code to the pool of the account's code ``template_id``, with the
        template's description and expiry, at the pool's tail. AlreadyExists when any pool of the account
        holds ``value``; None when the template is gone."""

    @abc.abstractmethod
    async def set_key_checksum(self, *, key_hash: str, checksum_hash: str) -> None:
        """Record the digest of the API key's checksum credential beside the key's own digest."""

    @abc.abstractmethod
    async def key_checksums(self, *, account_id: int) -> list[str]:
        """The checksum digests recorded for the account's API keys."""

    # -- alerts, webhook deliveries, activity (operators: admin page, metrics) ---------------------------
    @abc.abstractmethod
    async def get_pool_alert(self, *, pool_id: int) -> PoolAlert | None: ...

    @abc.abstractmethod
    async def set_pool_alert(self, *, pool_id: int, threshold: int | None, webhook_url: str | None) -> None:
        """Set the pool's low-stock threshold and webhook URL; ``threshold=None`` removes the alert."""

    @abc.abstractmethod
    async def webhook_secret(self, *, account_id: int, new_secret: str) -> str:
        """The account's webhook signing secret, stored as ``new_secret`` if it has none yet."""

    @abc.abstractmethod
    async def replace_webhook_secret(self, *, account_id: int, secret: str) -> None: ...

    @abc.abstractmethod
    async def list_deliveries(self, *, pool_id: int, limit: int) -> list[Delivery]:
        """The pool's webhook deliveries, newest first."""

    @abc.abstractmethod
    async def lease_deliveries(self, *, now: datetime, lease_until: datetime, limit: int) -> list[Delivery]:
        """Take up to ``limit`` pending deliveries due at ``now`` for sending, with their account's secret:
        each counts one more attempt and is hidden from other senders until ``lease_until``."""

    @abc.abstractmethod
    async def finish_attempt(
        self,
        *,
        delivery_id: int,
        now: datetime,
        delivered: bool,
        status: int | None,
        error: str | None,
        retry_at: datetime | None,
    ) -> None:
        """Record an attempt's outcome: delivered, to be retried at ``retry_at``, or (neither) failed."""

    @abc.abstractmethod
    async def purge_deliveries(self, *, older_than: datetime) -> int: ...

    @abc.abstractmethod
    async def pool_activity(self, *, pool_id: int, since: datetime) -> list[ActivityPoint]:
        """Hourly claims and redemptions of the pool from ``since`` on, oldest first (hours with any)."""

    @abc.abstractmethod
    async def pool_inventory(self) -> list[InventoryRow]:
        """Every pool's counters, across accounts (one cheap query: the counters live in the pool row)."""

    # -- redemptions -------------------------------------------------------------------------------------
    # A typed value means the code of the account matching it under its pool's normalization
    # (domain.normalization.best_match); `request.pool_id` narrows the search to one pool. A profile is named
    # by its key (external id) in the account's `default` profile database.

    @abc.abstractmethod
    async def code_use(self, *, account_id: int, request: NewRedemption) -> CodeUse | None:
        """The code ``request.value`` means, its pool, and the profile's standing (the profile is looked
        up, never created); None when no code matches. Reads only: validate's answer."""

    @abc.abstractmethod
    async def redeem(
        self, *, account_id: int, request: NewRedemption, idempotency_key: str | None
    ) -> Redeemed:
        """Record one use of the code ``request.value`` means, in one transaction whose conditional updates
        are the checks (domain.redemptions.refusal lists them): code usage below the pool's max_uses, not
        expired, the holder when the pool is holder_only, the profile's uses below per_profile_limit. The
        profile is created when new. A refusal raises domain.redemptions.refused(reason). The same key for
        the same code returns the first redemption, ``replayed``; for another code IdempotencyKeyReused."""

    @abc.abstractmethod
    async def rollback_redemption(
        self, *, account_id: int, redemption_id: int, idempotency_key: str | None
    ) -> Redeemed:
        """Give the redemption's use back, exactly once (AlreadyRolledBack after that, RedemptionNotFound
        for another account's). A code back to no uses returns to ``issued``, or when it was never handed
        out to ``available`` at the pool's tail."""

    @abc.abstractmethod
    async def get_redemption(self, *, account_id: int, redemption_id: int) -> Redemption | None: ...

    @abc.abstractmethod
    async def list_redemptions(self, *, code_id: int, after: int | None, limit: int) -> list[Redemption]:
        """The code's redemptions in id order, those after ``after`` only."""

    # -- leases ------------------------------------------------------------------------------------------
    @abc.abstractmethod
    async def lease(
        self, *, account_id: int, pool_id: int, seconds: int, idempotency_key: str | None
    ) -> Claimed:
        """Claim the pool's next code (like ``claim``) and reserve it for ``seconds``: its Claimed carries
        the lease. A replayed key whose lease has ended raises LeaseExpired or LeaseReleased instead of
        showing a code that may since belong to someone else."""

    @abc.abstractmethod
    async def confirm_lease(self, *, account_id: int, lease_id: int) -> Lease:
        """Keep the code issued. Confirming again is harmless; a lease that ran out raises LeaseExpired
        (even before the sweep has put its code back), a released one LeaseReleased."""

    @abc.abstractmethod
    async def release_lease(self, *, account_id: int, lease_id: int) -> Lease:
        """Put the code back at the pool's tail. Releasing again is harmless; LeaseExpired or a Conflict for a
        confirmed lease."""

    @abc.abstractmethod
    async def get_lease(self, *, account_id: int, lease_id: int) -> Lease | None: ...

    @abc.abstractmethod
    async def expire_leases(self) -> int:
        """Put the codes of every lease that has run out back at their pools' tails; return how many leases
        ended."""

    # -- generation jobs and export -----------------------------------------------------------------------
    @abc.abstractmethod
    async def create_job(
        self, *, account_id: int, kind: JobKind, pool_id: int, total: int, params: dict[str, Any]
    ) -> Job:
        """Record a new running job, owned by this process (which runs it). Conflict when the pool already
        has a running job."""

    @abc.abstractmethod
    async def get_job(self, *, account_id: int, job_id: int) -> Job | None: ...

    @abc.abstractmethod
    async def insert_job_codes(self, *, job_id: int, pool_id: int, values: Sequence[str]) -> int:
        """``insert_codes`` for a running job: in the same transaction, add the number inserted to the job's
        ``done`` and move its heartbeat (``updated_at``). When the job is no longer running, stores nothing
        and raises Conflict."""

    @abc.abstractmethod
    async def finish_job(self, *, job_id: int, error: str | None) -> Job | None:
        """End a running job: ``succeeded``, or ``failed`` with ``error``. None when it was not running."""

    @abc.abstractmethod
    async def fail_stale_jobs(self, *, silent_since: datetime, error: str) -> int:
        """Mark ``failed`` every running job whose owner is gone (the process that created and runs it: told
        at once and exactly, never a live process's job), or whose heartbeat is older than ``silent_since``;
        its error is ``error`` with how far it got (``stopped_error``). Return how many."""

    @abc.abstractmethod
    def export_codes(
        self, *, pool_id: int, state: CodeState | None, batch_size: int
    ) -> AsyncIterator[list[ExportRow]]:
        """The pool's codes (of one state, or all) in value order, a batch at a time, read page by page
        (keyset on the value) so memory stays constant however large the pool."""

    # -- device codes and bulk removal (the PersonaClick dialect) -----------------------------------------
    @abc.abstractmethod
    async def device_claim(self, *, account_id: int, pool_id: int, did: str) -> Claimed:
        """The code bound to device ``did`` in the pool while it has no use (``replayed``); otherwise claim
        the pool's next code (as ``claim``, not coalesced) and bind it to the device, in one transaction under
        the pool's lock, so that concurrent first calls of one device take one code. PoolNotFound,
        PoolExpired, PoolExhausted."""

    @abc.abstractmethod
    async def purge_available(self, *, account_id: int, pool_id: int) -> int | None:
        """Delete the pool's available codes (those not handed out); how many, or None for no such pool."""

    @abc.abstractmethod
    async def delete_codes(self, *, account_id: int, pool_id: int, values: Sequence[str]) -> int | None:
        """Delete the pool's codes with these exact (distinct, valid) values, counters adjusted; how many were
        deleted, or None for no such pool."""

    # -- profiles: profile databases, find-or-create by an identity, codes attached to profiles ------------
    # Codes are named by their exact value in one pool of the account (PoolNotFound otherwise).
    @abc.abstractmethod
    async def create_profile_database(self, *, account_id: int, name: str) -> ProfileDatabase:
        """A new profile database; AlreadyExists when the account has one of that name."""

    @abc.abstractmethod
    async def get_profile_database(self, *, account_id: int, database_id: int) -> ProfileDatabase | None: ...

    @abc.abstractmethod
    async def find_profile(self, *, database_id: int, identity: Identity) -> Profile | None:
        """The profile of the database whose matching identifier equals the identity's (the oldest if
        several)."""

    @abc.abstractmethod
    async def ensure_profile(self, *, database_id: int, identity: Identity, external_id: str) -> Profile:
        """The matching profile, or a new one with every identifier of ``identity`` (``external_id`` when it
        has none), atomically: concurrent calls for one identity get one profile. Conflict when the new
        profile's external id is another profile's."""

    @abc.abstractmethod
    async def get_profile(self, *, profile_id: int) -> Profile | None: ...

    @abc.abstractmethod
    async def attach_code(
        self,
        *,
        account_id: int,
        pool_id: int,
        value: str | None,
        database_id: int,
        identity: Identity,
        external_id: str,
    ) -> Code:
        """Attach ``value`` (imported first when the pool lacks it) or, without a value, the pool's next
        free code (the claim path, under the pool's lock) to the profile of ``database_id`` matching
        ``identity``, created as ``ensure_profile`` does in the same transaction (so a refused attach
        creates no profile). Conflict when the code is attached already (to anyone, in a single-use pool;
        to another profile otherwise) or the new profile's external id is taken; PoolExhausted when no code
        is free."""

    @abc.abstractmethod
    async def detach_code(self, *, account_id: int, pool_id: int, value: str, profile_id: int | None) -> Code:
        """Detach the code (from ``profile_id`` when given); an unused code goes back to the pool's tail.
        CodeNotFound when missing, Conflict when not attached (to that profile)."""

    @abc.abstractmethod
    async def set_code_expiry(
        self, *, account_id: int, pool_id: int, value: str, expires_at: datetime | None
    ) -> Code:
        """Set the code's expiry; a free code moves to the pool's tail (a later expiry makes it claimable
        again). CodeNotFound when missing."""


def claim_scope(pool_id: int) -> str:
    return f"claim:{pool_id}"


def key_reused(key: str) -> IdempotencyKeyReused:
    return IdempotencyKeyReused(f"Idempotency-Key {key!r} was already used for another request", key=key)


class ClaimPlan:
    """Who in a claim batch gets a fresh code, who gets a replay, and what each finally receives.

    Shared by the engines so that the idempotency rules are written once: the first entry with a key decides
    for every later entry with the same key in the batch.
    """

    def __init__(self, keys: Sequence[str | None]) -> None:
        self._keys = list(keys)
        self._first: dict[str, int] = {}
        for index, key in enumerate(self._keys):
            if key is not None:
                self._first.setdefault(key, index)
        self._results: dict[int, ClaimResult] = {}

    def keyed(self) -> list[str]:
        return list(self._first)

    def replay(self, key: str, result: ClaimResult) -> None:
        self._results[self._first[key]] = result

    def decided(self, key: str) -> bool:
        return self._first[key] in self._results

    def unserved_keys(self) -> list[str]:
        """Keys that got no code (pool exhausted): their records must not outlive this batch."""
        return [
            key for key, index in self._first.items() if isinstance(self._results.get(index), PoolExhausted)
        ]

    def _fresh(self) -> list[int]:
        return [
            index
            for index, key in enumerate(self._keys)
            if index not in self._results and (key is None or self._first[key] == index)
        ]

    def needed(self) -> int:
        return len(self._fresh())

    def assign(self, codes: Sequence[Code], pool_id: int) -> list[tuple[str, Code]]:
        """Give out ``codes`` in order; return the (key, code) pairs to record as idempotency keys."""
        fresh = self._fresh()
        recorded = []
        for index, code in zip(fresh, codes, strict=False):
            self._results[index] = Claimed(code)
            key = self._keys[index]
            if key is not None:
                recorded.append((key, code))
        for index in fresh[len(codes) :]:
            self._results[index] = PoolExhausted(pool_id)
        return recorded

    def results(self) -> list[ClaimResult]:
        out: list[ClaimResult] = []
        for index, key in enumerate(self._keys):
            if key is not None and self._first[key] != index:
                first = self._results[self._first[key]]
                out.append(Claimed(first.code, replayed=True) if isinstance(first, Claimed) else first)
            else:
                out.append(self._results[index])
        return out


def redeem_scope(code_id: int) -> str:
    return f"redeem:{code_id}"


def rollback_scope(redemption_id: int) -> str:
    return f"rollback:{redemption_id}"


def lease_scope(pool_id: int) -> str:
    return f"lease:{pool_id}"


CREATE_POOL_SCOPE = "create_pool"


# A replay follows the id its idempotency record keeps, and checks that the row found there is one the
# recorded request could have answered with: should the id ever stand for another row (SQLite gave a deleted
# last row's id to the next one before migration 0009), the replay answers "gone", never someone else's code.


def replays_claim(scope: str, code: Code) -> bool:
    """Whether ``code`` may be what the claim recorded under ``scope`` handed out (a code of its pool)."""
    return scope == claim_scope(code.pool_id)


def replays_lease(scope: str, pool_id: int) -> bool:
    """Whether a lease on a code of ``pool_id`` may be what the lease recorded under ``scope`` took."""
    return scope == lease_scope(pool_id)


def replays_redemption(scope: str, redemption: Redemption) -> bool:
    """Whether ``redemption`` may be what the redeem or rollback recorded under ``scope`` answered."""
    return scope in (redeem_scope(redemption.code_id), rollback_scope(redemption.id))


def job_running(pool_id: int) -> Conflict:
    return Conflict(f"a job is already running on pool {pool_id}", pool_id=pool_id)


def job_stopped(job_id: int) -> Conflict:
    return Conflict(f"job {job_id} is no longer running", job_id=job_id)
