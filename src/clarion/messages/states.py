"""The per-message delivery status machine, in one table.

    queued < sending < sent < delivered < read        (a receipt only ever moves forward)
    failed                                            (final; never overrides delivered/read)
    skipped                                           (final; cancelled before sending)

The dispatcher owns `queued -> sending -> sent | failed`; receipts own everything after
`sent`. A receipt for a message still `queued` or `sending` (a retried hand-off whose first
answer was lost, or the submit result is not recorded yet) is not applied: it stays parked
until the dispatcher records the message as `sent`, so the dispatcher's guarded transitions
(`WHERE status = 'sending' AND lease_owner = :me`) never race with a receipt.
"""

RANK: dict[str, int] = {"queued": 0, "sending": 1, "sent": 2, "delivered": 3, "read": 4}
"""Forward order of the non-final statuses."""

FINAL: frozenset[str] = frozenset({"failed", "skipped"})

RECEIPT_STATUSES: frozenset[str] = frozenset({"sent", "delivered", "read", "failed"})
"""What a normalized receipt may report."""

RECEIPT_TARGETS: frozenset[str] = frozenset({"sent", "delivered", "read", "failed"})
"""The statuses a message must be in for a receipt to apply to it (else it stays parked)."""

# (current status, receipt status) -> new status; a missing pair means "no change".
TRANSITIONS: dict[tuple[str, str], str] = {
    ("sent", "delivered"): "delivered",
    ("sent", "read"): "read",  # read implies delivered: a lost or late `delivered` is fine
    ("sent", "failed"): "failed",
    ("delivered", "read"): "read",
    # ("delivered", "failed"), ("read", *), ("failed", *), (*, "sent"): nothing changes.
}


def next_status(current: str, receipt_status: str) -> str | None:
    """The status a message moves to when a receipt arrives, or None when nothing changes
    (duplicate, late, out of order, or the message is final)."""
    return TRANSITIONS.get((current, receipt_status))


def fold(current: str, receipt_statuses: list[str]) -> str:
    """Apply receipts in arrival order. The machine is monotonic, so order only matters
    between `failed` and `delivered`/`read` for a message still `sent`: the first wins."""
    status = current
    for receipt_status in receipt_statuses:
        status = next_status(status, receipt_status) or status
    return status
