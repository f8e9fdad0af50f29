"""`GET /metrics`: the Prometheus exposition of this process (HTTP only)."""

from fastapi import APIRouter, Request, Response

from clarion import metrics
from clarion.auth import MetricsTokenDep, get_db, request_now
from clarion.operations import gauges

router = APIRouter(tags=["operations"])

METRICS_DESCRIPTION = (
    "Prometheus text exposition of this process: `clarion_messages_total`, "
    "`clarion_provider_request_seconds`, `clarion_queue_depth`, `clarion_leases_expired_total`, "
    "`clarion_receipts_total`, `clarion_hook_deliveries_total`, `clarion_campaigns`, "
    '`clarion_credits_reserved`, `process_*` (docs/integration.md, "Metrics"). Open only '
    "with `Authorization: Bearer {CLARION_METRICS_TOKEN}`; 404 while that setting is unset, "
    "401 for a missing or wrong token."
)


@router.get(
    "/metrics",
    dependencies=[MetricsTokenDep],
    response_class=Response,
    summary="Prometheus metrics",
    description=METRICS_DESCRIPTION,
    responses={
        200: {
            "description": "The exposition (text format 0.0.4)",
            "content": {"text/plain": {"schema": {"type": "string"}}},
        }
    },
)
async def metrics_exposition(request: Request) -> Response:
    settings = request.app.state.settings
    body = await gauges.exposition(
        get_db(request), request_now(request), settings.metrics_queue_cap
    )
    return Response(content=body, media_type=metrics.CONTENT_TYPE)
