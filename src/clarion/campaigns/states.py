"""The campaign state machine, as data.

`TRANSITIONS[action][current]` is the set of statuses the action may lead to from `current`;
an action absent for a status is illegal there and answers 409 naming the current status.
The request path (service.py) and the engine's transitions (lifecycle.py) both go through
this table; nothing else writes a campaign's status.
"""

from clarion.errors import Conflict

DRAFT = "draft"
AWAITING_APPROVAL = "awaiting_approval"
SCHEDULED = "scheduled"
SENDING = "sending"
PAUSED = "paused"
COMPLETED = "completed"
CANCELLED = "cancelled"

STATUSES = (DRAFT, AWAITING_APPROVAL, SCHEDULED, SENDING, PAUSED, COMPLETED, CANCELLED)

TRANSITIONS: dict[str, dict[str, frozenset[str]]] = {
    # PUT /campaigns/{id}: edits keep the status (a scheduled edit re-prices and re-reserves).
    "update": {DRAFT: frozenset({DRAFT}), SCHEDULED: frozenset({SCHEDULED})},
    # PUT /campaigns/{id}/confirm: now -> sending, with a future scheduledAt -> scheduled.
    "confirm": {DRAFT: frozenset({SENDING, SCHEDULED})},
    # Maker/checker: a submitted draft can no longer be edited; approving confirms it as
    # confirm would (now -> sending, future -> scheduled); rejecting returns it to draft.
    "submit": {DRAFT: frozenset({AWAITING_APPROVAL})},
    "approve": {AWAITING_APPROVAL: frozenset({SENDING, SCHEDULED})},
    "reject": {AWAITING_APPROVAL: frozenset({DRAFT})},
    "pause": {SENDING: frozenset({PAUSED})},
    "resume": {PAUSED: frozenset({SENDING})},
    "cancel": {
        SCHEDULED: frozenset({CANCELLED}),
        SENDING: frozenset({CANCELLED}),
        PAUSED: frozenset({CANCELLED}),
    },
    # DELETE keeps the row (soft delete); a scheduled campaign is cancelled first.
    "delete": {
        DRAFT: frozenset({DRAFT}),
        SCHEDULED: frozenset({CANCELLED}),
        COMPLETED: frozenset({COMPLETED}),
        CANCELLED: frozenset({CANCELLED}),
    },
    # PUT /campaigns/{id}/abTest/winner: an A/B decision keeps the status; it is made while
    # the test runs (sending) or is held (paused), never before the start nor after the end.
    "decide": {SENDING: frozenset({SENDING}), PAUSED: frozenset({PAUSED})},
    # Engine transitions: a due scheduled campaign starts; a campaign with nothing queued or
    # in flight completes.
    "start": {SCHEDULED: frozenset({SENDING})},
    "complete": {SENDING: frozenset({COMPLETED})},
}

# Words for the 409 detail: "Cannot pause a campaign that is draft."
_VERBS = {
    "update": "edit",
    "confirm": "confirm",
    "submit": "submit",
    "approve": "approve",
    "reject": "reject",
    "pause": "pause",
    "resume": "resume",
    "cancel": "cancel",
    "delete": "delete",
    "decide": "decide the A/B test of",
    "start": "start",
    "complete": "complete",
}


class CampaignStateConflict(Conflict):
    """An action that the campaign's current status does not allow (409)."""

    title = "Campaign status conflict"


def allowed(action: str, current: str) -> frozenset[str]:
    """The statuses `action` may lead to from `current` (empty: not allowed)."""
    return TRANSITIONS[action].get(current, frozenset())


def sources(action: str, target: str) -> tuple[str, ...]:
    """The statuses from which `action` may lead to `target` (for guarded UPDATEs)."""
    return tuple(sorted(s for s, targets in TRANSITIONS[action].items() if target in targets))


def require(action: str, current: str, target: str | None = None) -> None:
    """Raise a 409 naming the current status unless `action` is legal from `current` (and,
    when given, may lead to `target`)."""
    targets = allowed(action, current)
    if not targets or (target is not None and target not in targets):
        legal = sorted(s for s, t in TRANSITIONS[action].items() if t)
        raise CampaignStateConflict(
            f"Cannot {_VERBS[action]} a campaign that is {current}"
            f" (allowed when {', '.join(legal)}).",
            currentStatus=current,
        )
