"""A hypothesis fuzz of every parameter each vendor dialect reads, in process, on both engines.

For every route of the SuperSaaS, PersonaClick and Altcraft dialects (each Altcraft method in JSON and
XML), the strategies in dialect_strategies.py draw each parameter valid, hostile or absent, wherever the
vendor lets it travel (query, form, JSON fields, XML elements, path, headers). Each answer must be one the
dialect documents: never a 5xx, an error only with a documented status and in the vendor's own envelope
(dialects.py), and a refused request must leave every table as it was (dumped after every request).

Each route gets a freshly seeded database of each engine; its examples share it, so accepted requests pile
up (codes imported, claimed, attached, detached) and later examples meet the state earlier ones left, as a
long-lived server does. Each route must see both answers, accepted and refused, or its fuzz would prove
little. Derandomized, 100 examples per route and engine (PROMOPOOL_FUZZ_EXAMPLES); for a deeper hunt:
PROMOPOOL_FUZZ_EXAMPLES=500 PROMOPOOL_FUZZ_RANDOM=1 pytest tests/reliability/test_fuzz_dialects.py
"""

from __future__ import annotations

import asyncio
import difflib
import os
import uuid
import zlib
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st

from promopool import service
from promopool.api.app import create_app
from promopool.config import Settings
from promopool.domain import PoolSettings
from promopool.domain.profiles import identity
from promopool.storage import Store, open_store
from tests.conftest import drop_schema, make_tenant, with_schema
from tests.reliability import dialect_strategies as s
from tests.reliability.conftest import Tally
from tests.reliability.dialects import Call, altcraft_answer, personaclick_answer, supersaas_answer
from tests.reliability.integrity import TableDumper

pytestmark = [pytest.mark.reliability]

MAX_EXAMPLES = int(os.environ.get("PROMOPOOL_FUZZ_EXAMPLES", "100"))
RANDOM = bool(os.environ.get("PROMOPOOL_FUZZ_RANDOM"))

Answer = Callable[[httpx.Response], bool]

# (dialect, route's strategy, the dialect's answer check), by test id.
ROUTES: dict[str, tuple[str, s.Route, Answer]] = {
    "supersaas-list": ("supersaas", s.supersaas_list, supersaas_answer),
    "supersaas-duplicate": ("supersaas", s.supersaas_duplicate, supersaas_answer),
    "personaclick-lists": ("personaclick", s.personaclick_lists, personaclick_answer),
    "personaclick-upload": ("personaclick", s.personaclick_upload, personaclick_answer),
    "personaclick-fetch": ("personaclick", s.personaclick_fetch, personaclick_answer),
    "personaclick-purge": ("personaclick", s.personaclick_purge, personaclick_answer),
    "personaclick-delete": ("personaclick", s.personaclick_delete, personaclick_answer),
    **{
        f"altcraft-{method}": ("altcraft", lambda seed, m=method: s.altcraft_call(seed, m), altcraft_answer)
        for method in s.ALTCRAFT_METHODS
    },
    "altcraft-any-method": ("altcraft", lambda seed: s.altcraft_call(seed, None), altcraft_answer),
}


async def seed_database(store: Store) -> s.Seed:
    owner = await make_tenant(store, "fuzz", [f"FZ-{i:03d}" for i in range(200)])
    account = owner.account
    # Multi-use, so that activations and their rollbacks keep being accepted all through the fuzz.
    await service.update_pool(store, account=account, pool_id=owner.pool.id, public_fetch=True, max_uses=1000)
    spare = await service.create_pool(store, account=account, name="spare", settings=PoolSettings())
    await service.import_codes(
        store, account=account, pool_id=spare.id, values=[f"SP-{i:02d}" for i in range(20)]
    )
    other = await make_tenant(store, "bystander", ["BY-000", "BY-001"])
    database = await service.create_profile_database(store, account=account, name="customers")
    theirs = await service.create_profile_database(store, account=other.account, name="theirs")
    ann = identity(
        matching="email",
        email="ann@example.com",
        phone="+7 (900) 000-00-01",
        profile_id="p-1",
        field_name="card",
        field_value="C-1",
    )
    attached = [f"FZ-{i}" for i in range(199, 189, -1)]  # enough for many detaches to be accepted
    for code in attached:
        await service.attach_code(
            store, account=account, pool_id=owner.pool.id, database_id=database.id, identity=ann, code=code
        )
    await service.activate_code(store, account=account, pool_id=owner.pool.id, code="FZ-199")
    return s.Seed(
        name=account.name,
        api_key=owner.api_key,
        public_key=account.public_key,
        pools=[owner.pool.id, spare.id],
        other_pool=other.pool.id,
        other_key=other.api_key,
        other_public_key=other.account.public_key,
        codes=[*attached, "FZ-000", "SP-00", "BY-000"],
        database=database.id,
        other_database=theirs.id,
    )


class Target:
    """The app on a freshly seeded database, driven from a synchronous hypothesis test through one event
    loop."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.runner = asyncio.Runner()
        self.requests = 0
        self.outcomes: Counter[str] = Counter()  # "accepted", "refused"
        self.last_dump: str | None = None
        self.runner.run(self._open())

    async def _open(self) -> None:
        self.store = open_store(self.url)
        await self.store.connect()
        await self.store.migrate()
        self.seed = await seed_database(self.store)
        # The front-end fetch's per-address limit is off: every fetch would come from one address, and
        # the fuzz is after what the parameters do, not the 429.
        app = create_app(
            Settings(database_url=self.url, max_body_mib=1, public_fetch_per_minute=0), store=self.store
        )
        transport = httpx.ASGITransport(app=app)
        self.client = httpx.AsyncClient(transport=transport, base_url="http://promopool.test")
        self.dumper = await TableDumper(self.url).__aenter__()

    def exercise(self, call: Call, answer: Answer) -> None:
        """Send ``call``, check the answer and, when it is a refusal, that nothing changed."""
        before = self.last_dump if self.last_dump is not None else self.runner.run(self.dumper.dump())
        self.last_dump = None  # unknown until dumped again
        response = self.runner.run(call.send(self.client))
        self.requests += 1
        where = f"{call}\n-> {response.status_code} {response.headers} {response.content[:500]!r}"
        assert response.status_code < 500, where
        try:
            refused = answer(response)
        except AssertionError as exc:
            raise AssertionError(f"not the dialect's documented answer: {exc}\n{where}") from None
        after = self.runner.run(self.dumper.dump())
        if refused and after != before:
            diff = "\n".join(
                list(difflib.unified_diff(before.splitlines(), after.splitlines(), lineterm=""))[:40]
            )
            raise AssertionError(f"a refused request changed the database:\n{where}\n{diff}")
        self.last_dump = after
        self.outcomes["refused" if refused else "accepted"] += 1

    def close(self) -> None:
        async def close() -> None:
            await self.dumper.__aexit__(None, None, None)
            await self.client.aclose()
            await self.store.close()

        self.runner.run(close())
        self.runner.close()


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def target(request: pytest.FixtureRequest, tmp_path: Path, engine: str, tally: Tally) -> Iterator[Target]:
    """A database of its own per route: what one route's fuzz leaves behind (codes deleted, detached,
    claimed) does not decide what the next one can reach."""
    schema, server = None, ""
    if engine == "sqlite":
        url = f"sqlite:///{tmp_path}/fuzz.db"
    else:
        server = request.getfixturevalue("postgres_server_url")
        schema = "df_" + uuid.uuid4().hex[:12]
        url = with_schema(server, schema)
    fuzzed = Target(url)
    try:
        yield fuzzed
    finally:
        fuzzed.close()
        dialect = ROUTES[request.node.callspec.params["route"]][0]
        tally.add(f"fuzz ({engine}): {dialect} requests", fuzzed.requests)
        tally.add(f"fuzz ({engine}): {dialect} requests accepted", fuzzed.outcomes["accepted"])
        if schema is not None:
            asyncio.run(drop_schema(server, schema))


@pytest.mark.parametrize("route", list(ROUTES))
def test_dialect_route(target: Target, route: str) -> None:
    _, strategy, answer = ROUTES[route]

    # Derandomized: the same cases on every run, so CI does not flake on a rare draw; seeded by the route,
    # or every route would draw the same sequence of choices.
    @settings(
        max_examples=MAX_EXAMPLES, deadline=None, database=None, suppress_health_check=list(HealthCheck)
    )
    @given(data=st.data())
    def fuzz(data: st.DataObject) -> None:
        target.exercise(data.draw(strategy(target.seed), label="request"), answer)

    if not RANDOM:
        fuzz = seed(zlib.crc32(route.encode()))(fuzz)
    fuzz()
    # A fuzz that never got past the refusals, or never met one, would prove little about the route. (No
    # method the vendor lacks can be accepted.)
    if MAX_EXAMPLES >= 100:
        expected = ("refused",) if route == "altcraft-any-method" else ("accepted", "refused")
        assert all(target.outcomes[o] for o in expected), target.outcomes
