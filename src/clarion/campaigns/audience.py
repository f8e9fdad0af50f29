"""Who a campaign targets, as the estimate and the materializer both read it.

The audience is the union of the members of `listIds` and the contacts matching the filters
of `segmentIds` (snapshotted on the campaign), intersected with the campaign's own `filter`,
minus the members of `excludeListIds` (and, when sending, minus the contacts opted out of
the channel). A campaign with a `filter` and neither lists nor segments targets the matching
part of all the account's contacts, as a segment would. `campaigns.repository.audience_where`
turns this into the one WHERE clause both use.
"""

from dataclasses import dataclass
from typing import Any

from clarion.campaigns.models import Campaign
from clarion.segments.filters import Node
from clarion.segments.service import stored_filter


@dataclass(frozen=True)
class Audience:
    account_id: int
    list_ids: tuple[int, ...]
    exclude_ids: tuple[int, ...]
    segments: tuple[Node, ...] = ()
    narrow: Node | None = None

    @property
    def empty(self) -> bool:
        """Nothing targeted at all (no list, no segment, no filter)."""
        return not (self.list_ids or self.segments or self.narrow is not None)

    @property
    def lists_only(self) -> bool:
        """Lists without segments or filter: the list-driven statements apply as they are."""
        return not self.segments and self.narrow is None


def snapshot(segment_id: int, raw_filter: Any) -> dict[str, Any]:
    """What a campaign keeps of a segment it targets."""
    return {"segmentId": segment_id, "filter": raw_filter}


def audience_of(
    campaign: Campaign,
    list_ids: list[int] | None = None,
    exclude_ids: list[int] | None = None,
) -> Audience:
    """The campaign's audience (`list_ids`/`exclude_ids`: the lists as checked by the
    caller, default the campaign's own)."""
    lists = (campaign.list_ids or []) if list_ids is None else list_ids
    excluded = (campaign.exclude_list_ids or []) if exclude_ids is None else exclude_ids
    return Audience(
        account_id=campaign.account_id,
        list_ids=tuple(lists),
        exclude_ids=tuple(excluded),
        segments=tuple(stored_filter(s["filter"]) for s in campaign.segment_filters or []),
        narrow=None
        if campaign.audience_filter is None
        else stored_filter(campaign.audience_filter),
    )
