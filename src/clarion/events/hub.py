"""One change feed per process for every open event stream.

While at least one stream is open, the hub reads the change markers of the accounts that
have streams, in one round per `events_poll_seconds` whatever the number of streams:
`campaign.updated_at` and `contact_import.updated_at` (both indexed), and the campaigns'
counter changes not folded yet (`campaign_tally`: the engine appends them, and a campaign
whose set of them grew has new counters). These move with every change whichever process
made it, so a stream sees changes made anywhere within about a poll. With no stream open
the hub does nothing.

Each object is sent at most once per `MIN_GAP` (coalesced: a stream gets its latest state).
A change is read again for `LOOKBACK` seconds after it was stamped, so one whose transaction
committed after a poll had passed its stamp, or whose process's clock is a little behind,
is still seen; what was already sent is not sent again.
"""

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, literal, select, union_all
from sqlalchemy.ext.asyncio import AsyncSession

from clarion.audience.models import ContactImport
from clarion.audience.schemas import ImportOut
from clarion.campaigns import counters
from clarion.campaigns.models import Campaign
from clarion.campaigns.presenter import campaign_out
from clarion.db.base import utcnow
from clarion.db.session import Database
from clarion.messages.models import CampaignTally

log = logging.getLogger(__name__)

MIN_GAP = 0.5  # seconds between two events about one object: at most 2 a second
LOOKBACK = timedelta(seconds=5)
RESUME_LIMIT = 500  # objects per kind sent on a Last-Event-ID resume

CAMPAIGN = "campaign.updated"
IMPORT = "import.updated"


def event_id(at: datetime) -> str:
    """Events are numbered by the time of the state they carry, in microseconds (a resume
    point: everything changed before it is in this event or an earlier one)."""
    return str(int(at.timestamp() * 1_000_000))


def parse_event_id(value: str | None) -> datetime | None:
    if not value or not value.strip().isdigit() or len(value.strip()) > 19:
        return None
    return datetime.fromtimestamp(int(value) / 1_000_000, tz=UTC)


@dataclass(frozen=True)
class Event:
    name: str
    at: datetime  # the time of the state it carries (its id)
    data: dict[str, Any]
    key: tuple[str, int]
    marker: datetime  # the object's updated_at

    @property
    def id(self) -> str:
        return event_id(self.at)


@dataclass(eq=False)
class Subscriber:
    """One open stream: the latest event per object not yet written, and a wake-up."""

    account_id: int
    campaign_id: int | None = None
    pending: dict[tuple[str, int], Event] = field(default_factory=dict)
    wake: asyncio.Event = field(default_factory=asyncio.Event)

    def offer(self, event: Event) -> None:
        if self.campaign_id is not None and event.key != ("campaign", self.campaign_id):
            return
        self.pending[event.key] = event
        self.wake.set()

    def take(self) -> list[Event]:
        events = sorted(self.pending.values(), key=lambda e: e.at)
        self.pending.clear()
        self.wake.clear()
        return events


def campaign_event(
    row: Campaign,
    unfolded: dict[str, int] | None,
    at: datetime | None = None,
    clicks: tuple[int, int] = (0, 0),
) -> Event:
    data = campaign_out(row, unfolded, clicks=clicks).model_dump(mode="json", by_alias=True)
    when = max(row.updated_at, at or row.updated_at)
    return Event(CAMPAIGN, when, data, ("campaign", row.id), row.updated_at)


async def campaign_events(
    session: AsyncSession, rows: list[Campaign], at: datetime | None = None
) -> list[Event]:
    """The campaigns as GET /campaigns/{id} shows them (counters not folded yet added in)."""
    unfolded = await counters.pending(session, (r.id for r in rows))
    clicks = await counters.clicks(session, rows)
    return [campaign_event(r, unfolded.get(r.id), at, clicks.get(r.id, (0, 0))) for r in rows]


def import_event(row: ContactImport, at: datetime | None = None) -> Event:
    data = ImportOut.model_validate(row).model_dump(mode="json", by_alias=True)
    when = max(row.updated_at, at or row.updated_at)
    return Event(IMPORT, when, data, ("import", row.id), row.updated_at)


class EventHub:
    def __init__(self, db: Database, *, poll_seconds: float) -> None:
        self.db = db
        self.poll_seconds = poll_seconds
        self.subscribers: dict[int, set[Subscriber]] = {}
        self._task: asyncio.Task[None] | None = None
        self._sent: dict[tuple[str, int], datetime] = {}  # last updated_at sent
        self._tallies: dict[int, tuple[int, int]] = {}  # campaign -> (max id, count) seen
        self._sent_at: dict[tuple[str, int], float] = {}  # loop time it was sent
        self._waiting: dict[tuple[str, int], int] = {}  # changed, held by MIN_GAP: account
        self.polls = 0

    def subscribe(self, account_id: int, campaign_id: int | None = None) -> Subscriber:
        sub = Subscriber(account_id, campaign_id)
        self.subscribers.setdefault(account_id, set()).add(sub)
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(utcnow()), name="clarion-events")
        return sub

    def unsubscribe(self, sub: Subscriber) -> None:
        subs = self.subscribers.get(sub.account_id)
        if subs is not None:
            subs.discard(sub)
            if not subs:
                del self.subscribers[sub.account_id]

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self, opened: datetime) -> None:
        since = opened - LOOKBACK
        # What was stamped before the first stream opened is news to nobody (a campaign
        # stream starts with the current state anyway); what came after is sent.
        prime: datetime | None = opened
        while self.subscribers:
            started = utcnow()
            try:
                await self._poll(since, started, prime=prime)
                since = started - LOOKBACK
                prime = None
            except Exception:  # a database hiccup: try again next round
                log.warning("event poll failed", exc_info=True)
            await asyncio.sleep(self.poll_seconds)
        self._sent.clear()
        self._sent_at.clear()
        self._waiting.clear()
        self._tallies.clear()

    async def _poll(
        self, since: datetime, started: datetime, *, prime: datetime | None = None
    ) -> None:
        self.polls += 1
        accounts = list(self.subscribers)
        c, i = Campaign, ContactImport
        query = union_all(
            select(literal("campaign").label("kind"), c.id, c.account_id, c.updated_at).where(
                c.updated_at > since, c.account_id.in_(accounts)
            ),
            select(literal("import").label("kind"), i.id, i.account_id, i.updated_at).where(
                i.updated_at > since, i.account_id.in_(accounts)
            ),
        )
        tallies = (
            select(
                CampaignTally.campaign_id, c.account_id, func.max(CampaignTally.id), func.count()
            )
            .join(c, c.id == CampaignTally.campaign_id)
            .where(c.account_id.in_(accounts))
            .group_by(CampaignTally.campaign_id, c.account_id)
        )
        async with self.db.session(write=False) as session:
            rows = (await session.execute(query)).all()
            tally_rows = (await session.execute(tallies)).all()
        loop_now = asyncio.get_running_loop().time()
        current: dict[int, tuple[int, int]] = {}
        for campaign_id, account_id, top, count in tally_rows:
            current[campaign_id] = (top, count)
            if self._tallies.get(campaign_id) != (top, count):
                self._waiting[("campaign", campaign_id)] = account_id
        self._tallies = current
        for kind, object_id, account_id, updated_at in rows:
            key = (kind, object_id)
            if prime is not None and updated_at <= prime:
                self._sent[key], self._sent_at[key] = updated_at, loop_now - MIN_GAP
            elif self._sent.get(key) != updated_at:
                self._waiting[key] = account_id
        loop_now = asyncio.get_running_loop().time()
        due = [k for k in self._waiting if loop_now - self._sent_at.get(k, -MIN_GAP) >= MIN_GAP]
        if due:
            await self._send(due, loop_now, started)
        cutoff = since - LOOKBACK
        for key in [k for k, at in self._sent.items() if at < cutoff]:
            del self._sent[key], self._sent_at[key]

    async def _send(self, due: list[tuple[str, int]], loop_now: float, at: datetime) -> None:
        campaign_ids = [i for k, i in due if k == "campaign"]
        import_ids = [i for k, i in due if k == "import"]
        events: list[tuple[int, Event]] = []
        async with self.db.session(write=False) as session:
            if campaign_ids:
                rows = await session.execute(
                    select(Campaign).where(
                        Campaign.id.in_(campaign_ids), Campaign.deleted_at.is_(None)
                    )
                )
                found = list(rows.scalars())
                events += [
                    (r.account_id, e)
                    for r, e in zip(found, await campaign_events(session, found, at), strict=True)
                ]
            if import_ids:
                rows2 = await session.execute(
                    select(ContactImport).where(ContactImport.id.in_(import_ids))
                )
                events += [(r.account_id, import_event(r, at)) for r in rows2.scalars()]
        for key in due:
            self._waiting.pop(key, None)
        for account_id, event in events:
            self._sent[event.key] = event.marker
            self._sent_at[event.key] = loop_now
            for sub in list(self.subscribers.get(account_id, ())):
                sub.offer(event)

    async def changed_since(
        self, account_id: int, since: datetime, campaign_id: int | None = None
    ) -> list[Event]:
        """The current state of the account's objects (or one campaign) changed since: a
        campaign stamped since, or with counter changes not folded yet."""
        since = since - LOOKBACK
        events: list[Event] = []
        async with self.db.session(write=False) as session:
            moving = select(CampaignTally.campaign_id)
            query = select(Campaign).where(
                Campaign.account_id == account_id,
                (Campaign.updated_at > since) | Campaign.id.in_(moving),
                Campaign.deleted_at.is_(None),
            )
            if campaign_id is not None:
                query = query.where(Campaign.id == campaign_id)
            rows = await session.execute(
                query.order_by(Campaign.updated_at.desc()).limit(RESUME_LIMIT)
            )
            events += await campaign_events(session, list(rows.scalars()))
            if campaign_id is None:
                rows2 = await session.execute(
                    select(ContactImport)
                    .where(ContactImport.account_id == account_id, ContactImport.updated_at > since)
                    .order_by(ContactImport.updated_at.desc())
                    .limit(RESUME_LIMIT)
                )
                events += [import_event(r) for r in rows2.scalars()]
        return sorted(events, key=lambda e: e.at)
