"""/health/ready names the database engine and the schema version; /metrics says which version runs;
on both engines."""

from __future__ import annotations

from importlib.metadata import version

import httpx
from prometheus_client.parser import text_string_to_metric_families

from promopool.storage import Store
from promopool.storage.migrations import load_migrations


async def test_readiness_names_the_engine_and_the_schema_version(
    client: httpx.AsyncClient, store: Store
) -> None:
    ready = await client.get("/health/ready")
    assert ready.status_code == 200
    assert ready.headers["Promopool-Database-Engine"] == store.engine
    folder = "sqlite" if store.engine == "sqlite" else "postgres"
    latest = max(migration.version for migration in load_migrations(folder))
    assert ready.headers["Promopool-Schema-Version"] == str(latest)


async def test_metrics_carry_the_build_info(client: httpx.AsyncClient) -> None:
    text = (await client.get("/metrics")).text
    families = {family.name: family for family in text_string_to_metric_families(text)}
    [sample] = families["promopool_build_info"].samples
    assert sample.labels == {"version": version("promopool")} and sample.value == 1
