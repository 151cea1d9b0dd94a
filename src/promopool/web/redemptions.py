"""The admin page of a pool's redemptions: newest first, filtered by date range (UTC), profile, order
reference and rolled back or not, a page at a time; and the filtered list as a CSV download. Reading only."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlencode

from litestar import Controller, Response, get
from litestar.response import Stream

from promopool import service
from promopool.api.deps import PoolId, StoreDep
from promopool.domain import Account, Redemption
from promopool.domain.errors import InvalidInput, PromopoolError
from promopool.domain.redemptions import RedemptionFilter
from promopool.service.paging import MAX_PAGE
from promopool.storage import Store
from promopool.web.forms import utc_moment, whole_number
from promopool.web.pages import AnyRequest, handle_admin_error, signed_in
from promopool.web.render import render
from promopool.web.session import COOKIE_PATH

PAGE = 50
FIELDS = ("since", "until", "profile", "order_ref", "rolled_back")
ROLLED_BACK = {"": None, "yes": True, "no": False}
CSV_COLUMNS = ("id", "created_at", "code", "profile", "order_ref", "amount", "rolled_back_at")


def _typed(request: AnyRequest) -> dict[str, str]:
    return {field: request.query_params.get(field, "").strip() for field in FIELDS}


def _filter(typed: dict[str, str]) -> RedemptionFilter:
    if typed["rolled_back"] not in ROLLED_BACK:
        raise InvalidInput("rolled back must be yes, no or blank", field="rolled_back")
    return RedemptionFilter(
        since=utc_moment(typed, "since"),
        until=utc_moment(typed, "until", end_of_day=True),  # a date range includes its last day
        profile=typed["profile"] or None,
        order_ref=typed["order_ref"] or None,
        rolled_back=ROLLED_BACK[typed["rolled_back"]],
    )


def _csv(redemptions: list[Redemption]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    for r in redemptions:
        writer.writerow(
            (
                r.id,
                r.created_at.isoformat(),
                r.code,
                r.profile or "",
                r.order_ref or "",
                "" if r.amount is None else str(r.amount),
                r.rolled_back_at.isoformat() if r.rolled_back_at else "",
            )
        )
    return out.getvalue().encode()


async def _rows(
    store: Store, account: Account, pool_id: int, where: RedemptionFilter
) -> AsyncIterator[bytes]:
    yield (",".join(CSV_COLUMNS) + "\n").encode()
    before = None
    while True:
        page = await service.pool_redemptions(
            store, account=account, pool_id=pool_id, where=where, before=before, limit=MAX_PAGE
        )
        yield _csv(page)
        if len(page) < MAX_PAGE:
            return
        before = page[-1].id


class AdminRedemptionsController(Controller):
    path = f"{COOKIE_PATH}/pools/{{pool_id:int}}"
    include_in_schema = False
    exception_handlers = {PromopoolError: handle_admin_error}

    @get("/redemptions")
    async def redemptions(self, request: AnyRequest, store: StoreDep, pool_id: PoolId) -> Response[str]:
        admin = await signed_in(request, store)
        pool = await service.get_pool(store, account=admin.account, pool_id=pool_id)
        typed = _typed(request)
        context: dict[str, Any] = {"admin": admin, "pool": pool, "typed": typed, "query": ""}
        try:
            where = _filter(typed)
            before = whole_number(dict(request.query_params), "before", low=1)
            page = await service.pool_redemptions(
                store, account=admin.account, pool_id=pool_id, where=where, before=before, limit=PAGE
            )
        except InvalidInput as exc:  # the filter form as typed, with the reason
            return render("redemptions.html", status_code=400, redemptions=[], error=exc.message, **context)
        query = {field: value for field, value in typed.items() if value}
        older = urlencode({**query, "before": page[-1].id}) if len(page) == PAGE else None
        context["query"] = urlencode(query)
        return render("redemptions.html", redemptions=page, older=older, paged=before is not None, **context)

    @get("/redemptions.csv")
    async def redemptions_csv(self, request: AnyRequest, store: StoreDep, pool_id: PoolId) -> Stream:
        admin = await signed_in(request, store)
        where = _filter(_typed(request))
        await service.get_pool(store, account=admin.account, pool_id=pool_id)  # an error, not a broken file
        disposition = f'attachment; filename="pool-{pool_id}-redemptions.csv"'
        return Stream(
            _rows(store, admin.account, pool_id, where),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": disposition},
        )
