"""/v1/pools/{id}/export: a pool's codes as CSV or JSON lines, streamed from the database."""

from __future__ import annotations

from typing import Annotated, Literal

from litestar import Controller, get
from litestar.params import QueryParameter
from litestar.response import Stream

from promopool import service
from promopool.api.deps import AccountDep, PoolId, StoreDep
from promopool.api.native.openapi import ExportOperation, error_responses
from promopool.domain import Account, CodeState
from promopool.domain.export import ExportFormat
from promopool.formats.export import MEDIA_TYPES, encode_export
from promopool.storage import Store

ExportState = Literal["all", "available", "issued", "redeemed"]

EXPORT_DESCRIPTION = """\
The pool's codes in code order with the columns `code`, `state`, `issued_at`, `profile` (the profile's own
id, when the code is attached to one) and `usage_count`: CSV with a header row (`format=csv`, the default;
the import endpoint reads it back) or one JSON object per line (`format=jsonl`). `state` picks one state,
default `all`. Streamed from the database page by page, so any size costs the server the same memory.
"""


class ExportController(Controller):
    path = "/v1/pools/{pool_id:int}"
    tags = ["codes"]

    @get(
        "/export",
        summary="Export codes (streamed)",
        description=EXPORT_DESCRIPTION,
        operation_class=ExportOperation,
        responses=error_responses(400, 404),
    )
    async def export_codes(
        self,
        store: StoreDep,
        account: AccountDep,
        pool_id: PoolId,
        state_filter: Annotated[ExportState, QueryParameter(name="state")] = "all",
        export_format: Annotated[ExportFormat, QueryParameter(name="format")] = ExportFormat.CSV,
    ) -> Stream:
        return await export_stream(store, account, pool_id, state_filter, export_format)


async def export_stream(
    store: Store, account: Account, pool_id: int, state_filter: ExportState, export_format: ExportFormat
) -> Stream:
    """The download of a pool's codes (the API's and the admin page's): checked before it starts."""
    state = None if state_filter == "all" else CodeState(state_filter)
    batches = await service.export_codes(store, account=account, pool_id=pool_id, state=state)
    filename = f"pool-{pool_id}-{state_filter}.{export_format.value}"
    return Stream(
        encode_export(batches, export_format),
        media_type=MEDIA_TYPES[export_format],
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )
