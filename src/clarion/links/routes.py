"""The redirect of short links (no auth) and a campaign's links (the account's)."""

from typing import Annotated

from fastapi import APIRouter, BackgroundTasks, Depends, Path, Request
from fastapi.responses import RedirectResponse

from clarion.auth import CurrentAccountId
from clarion.campaigns.service import require_campaign
from clarion.db.deps import ReadSessionDep
from clarion.db.session import Database
from clarion.errors import NotFound
from clarion.links import repository, service
from clarion.links.clicks import ClickIn, ClickWriter
from clarion.links.schemas import LinkStatsOut
from clarion.schemas import Page, PageParams, PathId, page_params

router = APIRouter(tags=["links"])
# The redirect alone, included before every other router: routes are matched in order, and
# a path that only matches last pays for a regex test of each route before it.
redirect_router = APIRouter(tags=["links"])

# No length limit here: any code that is not a link's is a 404, whatever its shape.
Code = Annotated[str, Path(description="the short code (7 URL-safe characters)")]


async def _record(writer: ClickWriter, db: Database, click: ClickIn) -> None:
    try:
        await writer.record(db, click)
    except Exception:  # the visitor has the redirect already; the writer logged the loss
        return


@redirect_router.get(
    "/l/{code}",
    status_code=302,
    response_class=RedirectResponse,
    responses={302: {"description": "to the original URL"}, 404: {"description": "unknown"}},
)
async def follow_link(code: Code, request: Request, background: BackgroundTasks) -> object:
    """Follow a tracked link (no authentication: recipients click it).

    One primary-key read answers the 302; the click (time, user agent, the visitor's address
    hashed with the server's secret) is written after the response has gone, by the same
    request (`BackgroundTasks`), in a transaction shared with the clicks of concurrent
    redirects (group commit, `links/clicks.py`) that also counts it on its link atomically.
    A stopping server finishes its requests first, so a click is lost only if the process
    dies in the milliseconds between the redirect and that commit. An unknown or malformed
    code is 404."""
    db: Database = request.app.state.db
    found = await service.resolve(db, code)
    if found is None:
        raise NotFound("Unknown link.")
    url, campaign_id = found
    client = request.client.host if request.client is not None else None
    click = service.click(
        code,
        campaign_id,
        request.app.state.clock(),
        request.headers.get("user-agent"),
        service.ip_hash(request.app.state.link_secret, client),
    )
    background.add_task(_record, request.app.state.click_writer, db, click)
    return RedirectResponse(url, status_code=302, headers={"Cache-Control": "no-store"})


@router.get("/campaigns/{campaign_id}/links", response_model=Page[LinkStatsOut], tags=["campaigns"])
async def campaign_links(
    campaign_id: PathId,
    account_id: CurrentAccountId,
    session: ReadSessionDep,
    page: Annotated[PageParams, Depends(page_params)],
) -> Page[LinkStatsOut]:
    """Each original URL of a campaign with trackLinks: its clicks and the recipients who
    clicked it, most clicked first (then by URL). Another account's campaign is 404."""
    await require_campaign(session, account_id, campaign_id)
    rows, total = await repository.links_of_campaign(session, campaign_id, page.limit, page.offset)
    return Page[LinkStatsOut](
        items=[LinkStatsOut(url=u, clicks=c, unique_clicks=n) for u, c, n in rows],
        total=total,
        limit=page.limit,
        offset=page.offset,
    )
