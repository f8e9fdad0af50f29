"""The sender: claim a batch, render and price it, submit it, record and charge it.

One batch = one claim transaction + provider submits + one recording transaction. Several
lanes run batches at once so that claiming, submitting and recording overlap; the number of
provider calls in flight (each up to the provider's max_batch messages) is bounded by
CLARION_WORKER_CONCURRENCY.
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from clarion import metrics
from clarion.accounts import ledger
from clarion.config import Settings
from clarion.db.base import utcnow
from clarion.db.session import Database
from clarion.db.transactions import RetryTransaction, in_transaction
from clarion.delivery.service import apply_parked
from clarion.links import service as links
from clarion.messages import tally, transitions
from clarion.pricing.rates import RateCard, load_rate_card
from clarion.pricing.replies import price_reply
from clarion.providers.base import OutboundMessage, Provider, SelfPaced, SubmitResult
from clarion.providers.base import Outcome as Wire
from clarion.sending import repository as repo
from clarion.sending.context import CampaignContext, Priced, load_contacts, load_context
from clarion.sending.gate import ComplianceGate
from clarion.sending.ratelimit import LimiterPacer, RateLimiter, build_rate_limiter

log = logging.getLogger(__name__)

RATE_CARD_TTL = 2.0  # load_rate_card is itself cached; this saves its query
CLAIM_ROUNDS = 20  # claims in a row that may come back all held before a lane rests


@dataclass(slots=True)
class Pending:
    """One claimed message on its way through a batch."""

    claimed: transitions.Claimed
    ctx: CampaignContext | None
    contact: dict[str, Any] | None = None
    link_codes: list[str] | None = None
    priced: Priced | None = None
    outcome: transitions.Outcome | None = None


class Dispatcher:
    def __init__(
        self,
        settings: Settings,
        db: Database,
        providers: dict[str, Provider],
        owner: str,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.settings = settings
        self.clock = clock
        self.gate = ComplianceGate()
        self.db = db
        self.providers = providers
        self.owner = owner
        self._contexts: dict[int, CampaignContext] = {}
        self._rates: RateCard | None = None
        self._rates_at = 0.0
        self._limiters: dict[tuple[str, str | None], RateLimiter] = {}
        # Provider calls in flight at once, over all lanes (each call up to max_batch).
        self._in_flight = asyncio.Semaphore(settings.worker_concurrency)
        # One recording transaction at a time per process, for every batch ready (`record`).
        self._recording = asyncio.Lock()
        self._to_record: list[
            tuple[Sequence[Pending], asyncio.Future[list[transitions.Recorded]]]
        ] = []
        self._turn = 0
        # Whether the last claim found campaigns sending (an empty claim then means "nothing
        # due yet", not "nothing to do").
        self.saw_active = False
        self.active_ids: list[int] = []
        self._share_limiters()

    def _share_limiters(self) -> None:
        """Providers that pace their own wire requests (SMPP: one per part) do it through
        this dispatcher's limiters, so parts and messages slow down together."""
        for provider in self.providers.values():
            if isinstance(provider, SelfPaced):
                provider.use_pacer(LimiterPacer(partial(self._limiter, provider)))

    # --- claim ----------------------------------------------------------------------------

    async def claim(self, n: int | None = None) -> list[transitions.Claimed]:
        """Claim up to `n` messages that may go now. A claim whose every message was held
        or skipped by the compliance gate is tried again at once (a campaign's first pass
        over recipients outside their hours), a bounded number of times."""
        for _ in range(CLAIM_ROUNDS):
            passing, claimed = await self._claim_once(n)
            if passing or not claimed:
                return passing
        return []

    async def _claim_once(self, n: int | None) -> tuple[list[transitions.Claimed], int]:
        """Claim up to `n` messages: the due messages of no campaign (keyword replies, few
        and awaited) first, then campaign messages shared fairly: first between accounts,
        then between each account's campaigns, starting from a different campaign each
        time. Returns those that passed the compliance gate and how many were claimed."""
        want_all = n or self.settings.worker_batch_size
        now = self.clock()
        until = now + timedelta(seconds=self.settings.lease_seconds)
        self._turn += 1
        turn = self._turn

        async def work(session: AsyncSession) -> tuple[list[transitions.Claimed], int]:
            replies = await transitions.claim_replies(session, self.owner, want_all, now, until)
            active = [
                c for c in await repo.active_campaigns(session) if c.channel in self.providers
            ]
            self.saw_active = bool(active)
            self.active_ids = [c.id for c in active]
            n = want_all - len(replies)
            if not active or n <= 0:
                return replies, len(replies)
            by_account: dict[int, list[repo.ActiveCampaign]] = defaultdict(list)
            for c in active:
                by_account[c.account_id].append(c)
            account_share = math.ceil(n / len(by_account))
            quota = {
                c.id: max(1, math.ceil(account_share / len(camps)))
                for camps in by_account.values()
                for c in camps
            }
            start = turn % len(active)
            order = active[start:] + active[:start]
            claimed: list[transitions.Claimed] = []
            full: list[repo.ActiveCampaign] = []  # gave all we asked: may have more
            for c in order:
                want = min(quota[c.id], n - len(claimed))
                if want <= 0:
                    break
                got = await transitions.claim_batch(session, self.owner, c.id, want, now, until)
                claimed.extend(got)
                if len(got) == want:
                    full.append(c)
            for c in full:  # campaigns that ran dry leave room for the others
                want = n - len(claimed)
                if want <= 0:
                    break
                claimed.extend(
                    await transitions.claim_batch(session, self.owner, c.id, want, now, until)
                )
            # Held (outside sending hours) and skipped (expired, capped) messages leave the
            # batch here, in the claim's transaction: no provider ever sees them.
            passing = await self.gate.screen(session, self.owner, claimed, now)
            return replies + passing, len(replies) + len(claimed)

        return await in_transaction(self.db, work)

    async def next_due(self) -> datetime | None:
        """When the next queued message of the campaigns last seen sending becomes due (a
        retry's time, or the opening of a held message's window)."""
        if not self.active_ids:
            return None
        async with self.db.session(write=False) as session:
            return await repo.next_due(session, self.active_ids)

    # --- prepare --------------------------------------------------------------------------

    async def _rate_card(self, session: AsyncSession) -> RateCard:
        if self._rates is None or time.monotonic() - self._rates_at > RATE_CARD_TTL:
            self._rates = await load_rate_card(session)
            self._rates_at = time.monotonic()
        return self._rates

    async def prepare(self, batch: Sequence[transitions.Claimed]) -> list[Pending]:
        """Render and price every message (one read transaction for the batch)."""
        if len(self._contexts) > 1000:  # finished campaigns' contexts are not needed
            self._contexts.clear()
        async with self.db.session(write=False) as session:
            campaign_ids = {m.campaign_id for m in batch if m.campaign_id is not None}
            for cid in campaign_ids - self._contexts.keys():
                ctx = await load_context(session, cid)
                if ctx is not None:
                    self._contexts[cid] = ctx
            rates = await self._rate_card(session)
            need = [
                m.contact_id
                for m in batch
                if m.contact_id is not None
                and (c := self._context_of(m)) is not None
                and c.for_variant(m.variant).needs_contact
            ]
            contacts = await load_contacts(session, need) if need else {}
            replies = [m.id for m in batch if m.campaign_id is None]
            written = await repo.reply_contents(session, replies) if replies else {}
            tracked = [
                (m.campaign_id, m.id)
                for m in batch
                if m.campaign_id is not None
                and (c := self._context_of(m)) is not None
                and c.link_base
            ]
            codes = await links.codes_for(session, tracked) if tracked else {}
        pending = []
        for m in batch:
            ctx = self._context_of(m)
            p = Pending(m, None if ctx is None else ctx.for_variant(m.variant))
            if m.campaign_id is None:
                p.priced = self._price_reply(m, written.get(m.id), rates)
                if p.priced.unit_price is None:
                    p.outcome = self._fail(
                        p, "no_rate", f"No {m.channel} rate for country {m.country}: not sent."
                    )
            elif p.ctx is None:
                p.outcome = self._fail(p, "campaign_missing", "The campaign no longer exists.")
            else:
                p.contact = contacts.get(m.contact_id) if m.contact_id is not None else None
                p.link_codes = codes.get(m.id)
                p.priced = p.ctx.render(
                    m.id, m.channel, m.phone, m.country, p.contact, rates, p.link_codes
                )
                if p.priced.unit_price is None:
                    p.outcome = self._fail(
                        p,
                        "no_rate",
                        f"No {m.channel} rate for country {m.country}: not sent.",
                        channel=m.channel,
                    )
            pending.append(p)
        return pending

    def _context_of(self, m: transitions.Claimed) -> CampaignContext | None:
        return None if m.campaign_id is None else self._contexts.get(m.campaign_id)

    @staticmethod
    def _price_reply(
        m: transitions.Claimed, written: repo.ReplyContent | None, rates: RateCard
    ) -> Priced:
        """A message of no campaign goes out as written, priced at the channel's rate."""
        text = written.text if written is not None else ""
        sender = written.sender if written is not None else None
        out = OutboundMessage(id=m.id, channel=m.channel, to=m.phone, sender=sender, text=text)
        units, unit_price = price_reply(rates, m.channel, m.country, text)
        return Priced(out, units, unit_price)

    # --- outcomes -------------------------------------------------------------------------

    def _fail(
        self, p: Pending, code: str, message: str | None, *, channel: str | None = None
    ) -> transitions.Outcome:
        return transitions.Outcome(
            id=p.claimed.id,
            status="failed",
            channel=channel or p.claimed.channel,
            attempts=p.claimed.attempts,
            error_code=code,
            error_message=message,
        )

    def _backoff(self, attempts: int) -> float:
        base = self.settings.retry_base_seconds * (2 ** max(attempts - 1, 0))
        return min(self.settings.retry_max_seconds, base) * random.uniform(0.5, 1.0)

    def _apply(self, p: Pending, provider: Provider, result: SubmitResult | None) -> None:
        assert p.priced is not None
        channel = p.priced.outbound.channel
        attempts = p.claimed.attempts
        if result is None:  # the provider gave no answer for it: a transient failure
            result = SubmitResult(p.claimed.id, Wire.RETRY, error_code="no_result")
        if result.outcome == Wire.ACCEPTED:
            p.outcome = transitions.Outcome(
                id=p.claimed.id,
                status="sent",
                channel=channel,
                provider=provider.name,
                provider_message_id=result.provider_message_id,
                units=p.priced.units,
                price=p.priced.price,
                attempts=attempts + 1,
            )
        elif result.outcome == Wire.REFUSED:
            p.outcome = self._fail(
                p, result.error_code or "refused", result.error_message, channel=channel
            )
            p.outcome.attempts = attempts + 1
            p.outcome.provider = provider.name
        elif result.outcome == Wire.THROTTLED:
            self._limiter(provider, p.priced.outbound.sender).on_throttle()
            delay = result.retry_after or self.settings.retry_base_seconds * random.uniform(
                0.5, 1.5
            )
            p.outcome = self._requeue(p, channel, attempts, delay, result)
        elif result.outcome == Wire.NO_CAPABILITY:
            p.outcome = self._fail(
                p,
                "rcs_unavailable" if channel == "rcs" else "no_capability",
                result.error_message or f"The phone cannot receive {channel} messages.",
                channel=channel,
            )
        else:  # RETRY
            if attempts + 1 >= self.settings.worker_max_attempts:
                p.outcome = self._fail(
                    p,
                    result.error_code or "provider_error",
                    result.error_message or "The provider kept failing; gave up.",
                    channel=channel,
                )
                p.outcome.attempts = attempts + 1
            else:
                delay = result.retry_after or self._backoff(attempts + 1)
                p.outcome = self._requeue(p, channel, attempts + 1, delay, result)

    def _requeue(
        self, p: Pending, channel: str, attempts: int, delay: float, result: SubmitResult
    ) -> transitions.Outcome:
        return transitions.Outcome(
            id=p.claimed.id,
            status="queued",
            channel=channel,
            attempts=attempts,
            next_attempt_at=self.clock() + timedelta(seconds=delay),
            error_code=result.error_code,
            error_message=result.error_message,
        )

    # --- submit ---------------------------------------------------------------------------

    def _limiter(self, provider: Provider, sender: str | None) -> RateLimiter:
        """The token bucket of one provider sender (shared through Redis when configured), at
        the provider's own rate (`rate_limit` messages/s, e.g. SMPP throughput), if any."""
        key = (provider.name + ":" + provider.channel, sender)
        limiter = self._limiters.get(key)
        if limiter is None:
            limiter = self._limiters[key] = build_rate_limiter(
                self.settings,
                f"{provider.name}:{provider.channel}:{sender or ''}",
                getattr(provider, "rate_limit", None),
            )
        return limiter

    async def _submit_chunk(
        self, provider: Provider, chunk: list[OutboundMessage]
    ) -> list[SubmitResult]:
        async with self._in_flight:
            by_sender: dict[str | None, int] = Counter(m.sender for m in chunk)
            if not isinstance(provider, SelfPaced):
                for sender, k in by_sender.items():
                    await self._limiter(provider, sender).acquire(k)
            started = time.perf_counter()
            try:
                results = await provider.submit(chunk)
            except Exception as exc:  # a provider bug must not lose the batch: retry it
                metrics.provider_request_seconds.labels(
                    provider.name, metrics.provider_outcome(raised=True, throttled=False)
                ).observe(time.perf_counter() - started)
                log.exception("provider %s failed a whole submit", provider.name)
                return [
                    SubmitResult(
                        m.id,
                        Wire.RETRY,
                        error_code="provider_exception",
                        error_message=str(exc)[:500],
                    )
                    for m in chunk
                ]
            throttled = any(r.outcome == Wire.THROTTLED for r in results)
            metrics.provider_request_seconds.labels(
                provider.name, metrics.provider_outcome(raised=False, throttled=throttled)
            ).observe(time.perf_counter() - started)
            if any(r.outcome == Wire.ACCEPTED for r in results):
                for sender in by_sender:
                    self._limiter(provider, sender).on_success()
            return results

    async def _submit(self, provider: Provider, items: list[Pending]) -> None:
        size = max(1, provider.capabilities.max_batch)
        chunks = [items[i : i + size] for i in range(0, len(items), size)]
        answers = await asyncio.gather(
            *(
                self._submit_chunk(provider, [p.priced.outbound for p in c if p.priced])
                for c in chunks
            )
        )
        for chunk, results in zip(chunks, answers, strict=True):
            by_id = {r.message_id: r for r in results}
            for p in chunk:
                self._apply(p, provider, by_id.get(p.claimed.id))

    async def submit(self, pending: list[Pending]) -> None:
        """Submit every message without an outcome yet; RCS recipients without RCS go by SMS
        when the campaign falls back to it."""
        todo = [p for p in pending if p.outcome is None]
        by_channel: dict[str, list[Pending]] = defaultdict(list)
        for p in todo:
            assert p.priced is not None
            by_channel[p.priced.outbound.channel].append(p)
        fallback: list[Pending] = []
        rcs = self.providers.get("rcs")
        if rcs is not None and by_channel.get("rcs") and rcs.capabilities.rcs_capability_check:
            items = by_channel["rcs"]
            capable = await rcs.check_capability(sorted({p.claimed.phone for p in items}))
            by_channel["rcs"] = [p for p in items if capable.get(p.claimed.phone, True)]
            for p in items:
                if not capable.get(p.claimed.phone, True):
                    fallback.append(p)
        await asyncio.gather(
            *(self._submit_channel(channel, items) for channel, items in by_channel.items())
        )
        for p in pending:
            if (
                p.outcome is not None
                and p.outcome.error_code == "rcs_unavailable"
                and p.priced is not None
                and p.priced.outbound.channel == "rcs"
            ):
                fallback.append(p)
        if fallback:
            await self._fall_back(fallback)

    async def _submit_channel(self, channel: str, items: list[Pending]) -> None:
        provider = self.providers.get(channel)
        if provider is None:
            for p in items:
                p.outcome = self._fail(p, "no_provider", f"No provider for {channel}.")
            return
        await self._submit(provider, items)

    async def _fall_back(self, items: Iterable[Pending]) -> None:
        todo = []
        for p in items:
            if p.ctx is None or p.ctx.fallback_channel != "sms" or "sms" not in self.providers:
                p.outcome = self._fail(
                    p, "rcs_unavailable", "The phone cannot receive RCS messages.", channel="rcs"
                )
                continue
            assert self._rates is not None
            c = p.claimed
            p.priced = p.ctx.render(
                c.id, "sms", c.phone, c.country, p.contact, self._rates, p.link_codes
            )
            if p.priced.unit_price is None:
                p.outcome = self._fail(
                    p, "no_rate", f"No sms rate for country {p.claimed.country}.", channel="sms"
                )
                continue
            p.outcome = None
            todo.append(p)
        if todo:
            await self._submit(self.providers["sms"], todo)

    # --- record ---------------------------------------------------------------------------

    async def record(self, pending: Sequence[Pending]) -> list[transitions.Recorded]:
        """Write a batch's outcomes, charge them and move the counters.

        A process records in one transaction at a time, and that transaction takes every
        batch whose lane is waiting for it (group commit). Every recording locks its
        accounts' rows, so recordings of one account queue there anyway: a lane that waits
        here holds no lock, no connection and no leased row, where one waiting in PostgreSQL
        holds the 1,000 message rows it has just updated (receipts for them wait too), and
        each account row is taken once for the batches recorded together. The other lanes
        keep claiming and submitting meanwhile."""
        done: asyncio.Future[list[transitions.Recorded]] = (
            asyncio.get_running_loop().create_future()
        )
        self._to_record.append((pending, done))
        async with self._recording:
            if not done.done():  # no earlier transaction took this batch: take what waits
                group, self._to_record = self._to_record, []
                try:
                    recorded = await self._record_now([p for batch, _ in group for p in batch])
                except BaseException as exc:
                    # The batches taken along fail with it, as their own recording would
                    # have: each lane then gives its batch's leases back. (This task being
                    # cancelled does not cancel theirs.)
                    failed = (
                        exc if isinstance(exc, Exception) else RuntimeError("recording stopped")
                    )
                    for _, other in group:
                        if other is not done:
                            other.set_exception(failed)
                    raise
                for batch, waiting in group:
                    ids = {p.claimed.id for p in batch}
                    waiting.set_result([r for r in recorded if r.id in ids])
        return await done

    async def _record_now(self, pending: Sequence[Pending]) -> list[transitions.Recorded]:
        outcomes = [p.outcome for p in pending if p.outcome is not None]
        final: dict[int, transitions.Outcome] = {}

        async def work(session: AsyncSession) -> list[transitions.Recorded]:
            # The outcomes as the providers gave them are never changed here: a change
            # replaces the entry with a changed copy, so a transaction run again starts from
            # them (copying every outcome up front cost 7% of a worker's CPU).
            by_id = {o.id: o for o in outcomes}
            now = self.clock()
            await self._skip_if_cancelled(session, pending, by_id)
            recorded = await transitions.record_outcomes(
                session, self.owner, list(by_id.values()), now
            )
            await self._settle(session, recorded, by_id, now)
            # Receipts that arrived before this transaction (parked) apply now; a message
            # that could not be paid is `failed`, and a receipt does not revive it.
            sent_ids: dict[str, list[str]] = defaultdict(list)
            for r in recorded:
                o = by_id[r.id]
                if o.status == "sent" and o.provider and o.provider_message_id:
                    sent_ids[o.provider].append(o.provider_message_id)
            for provider, ids in sorted(sent_ids.items()):
                await apply_parked(session, provider, ids)
            final.clear()
            final.update(by_id)
            return recorded

        recorded = await in_transaction(self.db, work)
        for p in pending:  # what was written (an unpaid message became `failed`)
            if p.outcome is not None and p.outcome.id in final:
                p.outcome = final[p.outcome.id]
        # Committed: count what was written (a message whose lease was lost is not).
        metrics.count_messages(
            (o.channel, o.provider, o.status) for r in recorded if (o := final.get(r.id))
        )
        return recorded

    async def _skip_if_cancelled(
        self,
        session: AsyncSession,
        pending: Sequence[Pending],
        by_id: dict[int, transitions.Outcome],
    ) -> None:
        """A message coming back to the queue (throttled, transient error) of a campaign
        cancelled meanwhile is not requeued: it becomes `skipped` (`CANCELLED`). (What slips
        past this check, the cancel committing just after it, the scheduler's `finalize`
        skips.)"""
        campaign_of = {p.claimed.id: p.claimed.campaign_id for p in pending}
        requeued = [o for o in by_id.values() if o.status == "queued"]
        if not requeued:
            return
        cancelled = await repo.cancelled_ids(
            session, [cid for o in requeued if (cid := campaign_of[o.id]) is not None]
        )
        for o in requeued:
            if campaign_of[o.id] in cancelled:
                by_id[o.id] = replace(
                    o,
                    status="skipped",
                    next_attempt_at=None,
                    error_code="CANCELLED",
                    error_message="The campaign was cancelled before this was sent.",
                )

    async def _settle(
        self,
        session: AsyncSession,
        recorded: list[transitions.Recorded],
        by_id: dict[int, transitions.Outcome],
        now: datetime,
    ) -> None:
        """Charge the accepted messages and append the counters' changes.

        A campaign's messages are paid from this worker's slice of its reservation when the
        slice covers them: that locks the slice's row, of this worker alone, and not the
        account's (`ledger.charge_from_slice`). Otherwise the account's row is locked, the
        slice opened again (`ledger.open_slice`: what the campaign still holds for this
        worker, others' idle slices taken back when short) and refilled for the next
        batches. Test sends (no contact) and messages of no campaign (replies) are paid from
        the account's available credits, with its row locked, and are outside any
        campaign's stats. Lock order: the account rows first, ascending, then slices; no
        campaign row at all. A slice read without a lock and found taken back when spent
        runs the transaction again (`RetryTransaction`)."""
        by_account: dict[int, dict[int | None, list[transitions.Recorded]]] = defaultdict(
            lambda: defaultdict(list)
        )
        for r in recorded:
            by_account[r.account_id][r.campaign_id].append(r)
        due = {  # (account, campaign) -> what its recipients' sent messages cost
            (account_id, campaign_id): sum(
                o.price
                for r in rows
                if r.contact_id is not None and (o := by_id[r.id]).status == "sent"
            )
            for account_id, by_campaign in by_account.items()
            for campaign_id, rows in by_campaign.items()
            if campaign_id is not None and any(r.contact_id is not None for r in rows)
        }
        sliced = await ledger.slice_amounts(session, self.owner, (c for _, c in due))
        from_slice = {
            key for key, cost in due.items() if cost == 0 or sliced.get(key[1], -1) >= cost
        }
        await ledger.lock_accounts(
            session,
            {
                account_id
                for account_id, by_campaign in by_account.items()
                for campaign_id, rows in by_campaign.items()
                if (account_id, campaign_id) not in from_slice
                or any(r.contact_id is None for r in rows)
            },
        )
        changes: dict[int, tally.Change] = defaultdict(tally.Change)
        unpaid: list[int] = []
        with session.no_autoflush:
            for account_id in sorted(by_account):
                for campaign_id, rows in sorted(
                    by_account[account_id].items(), key=lambda kv: kv[0] or 0
                ):
                    counted = [r for r in rows if r.contact_id is not None]
                    tests = [r for r in rows if r.contact_id is None]
                    if counted and campaign_id is not None:
                        key = (account_id, campaign_id)
                        paid, held, lost = await self._pay_campaign(
                            session, key, counted, by_id, due[key], key in from_slice
                        )
                        unpaid += lost
                        changes[campaign_id].add("spent", paid)
                        changes[campaign_id].add("reserved", -held)
                    if tests:
                        _paid, _held, lost = await self._charge(
                            session, account_id, campaign_id, tests, by_id, 0
                        )
                        unpaid += lost
        if unpaid:
            message = "Not enough credits to pay for this message."
            await transitions.fail_unpaid(session, unpaid, now, "insufficient_credits", message)
            for mid in unpaid:
                by_id[mid] = replace(
                    by_id[mid],
                    status="failed",
                    price=0,
                    error_code="insufficient_credits",
                    error_message=message,
                )
        for r in recorded:
            if r.contact_id is not None and r.campaign_id is not None:
                changes[r.campaign_id].move("sending", by_id[r.id].status)
        await tally.record(session, changes)

    async def _pay_campaign(
        self,
        session: AsyncSession,
        account_and_campaign: tuple[int, int],
        rows: list[transitions.Recorded],
        by_id: dict[int, transitions.Outcome],
        cost: int,
        from_slice: bool,
    ) -> tuple[int, int, list[int]]:
        """Charge a campaign's sent messages among `rows` (`cost` in all): from this
        worker's slice when `from_slice` (the slice was read to cover them), else with the
        account locked. Returns (paid, paid from the reservation, unpaid ids)."""
        account_id, campaign_id = account_and_campaign
        if from_slice:
            if not await ledger.charge_from_slice(
                session, self.owner, account_id, campaign_id, cost
            ):
                raise RetryTransaction(f"campaign {campaign_id}'s slice was taken back")
            return cost, cost, []
        pool = await ledger.open_slice(session, self.owner, account_id, campaign_id, cost)
        paid, held, lost = await self._charge(session, account_id, campaign_id, rows, by_id, pool)
        await ledger.keep_slice(
            session,
            self.owner,
            account_id,
            campaign_id,
            min(pool - held, ledger.SLICE_BATCHES * cost),
        )
        return paid, held, lost

    async def _charge(
        self,
        session: AsyncSession,
        account_id: int,
        campaign_id: int | None,
        rows: list[transitions.Recorded],
        by_id: dict[int, transitions.Outcome],
        hold: int,
    ) -> tuple[int, int, list[int]]:
        """Charge the sent messages among `rows`, up to `hold` of it from the reservation.
        When the credits are short, pay as many as fit; the others are returned as unpaid.
        Returns (paid, paid from the reservation, unpaid ids)."""
        sent = [by_id[r.id] for r in rows if by_id[r.id].status == "sent"]
        total = sum(o.price for o in sent)
        if await ledger.charge(
            session, account_id, campaign_id, total, from_reserved=min(total, hold)
        ):
            return total, min(total, hold), []
        budget = hold + max(0, await repo.available_credits(session, account_id))
        paid, unpaid = 0, []
        for o in sent:
            if paid + o.price <= budget:
                paid += o.price
            else:
                unpaid.append(o.id)
        ok = await ledger.charge(
            session, account_id, campaign_id, paid, from_reserved=min(paid, hold)
        )
        if not ok:  # pragma: no cover - we hold the account's lock; cannot happen
            raise RuntimeError("charge refused under lock")
        return paid, min(paid, hold), unpaid

    # --- the batch ------------------------------------------------------------------------

    async def run_batch(self, batch: Sequence[transitions.Claimed]) -> list[transitions.Recorded]:
        pending = await self.prepare(batch)
        await self.submit(pending)
        return await self.record(pending)
