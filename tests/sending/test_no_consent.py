"""requireConsent at the moment of sending: a recipient whose consent is withdrawn after
the audience was materialized is skipped (NO_CONSENT) by the claim's compliance gate,
never handed to a provider and charged nothing; contacts without consent are not
materialized at all; transactional campaigns ignore consent."""

from collections.abc import Callable

from sqlalchemy import select

from clarion.accounts.models import CreditLedger
from clarion.audience.consent import Wanted, set_consents
from clarion.audience.history import Cause
from clarion.audience.models import Contact
from clarion.campaigns.models import Campaign
from clarion.db.base import utcnow
from clarion.db.session import Database
from clarion.messages.models import Message
from clarion.sending.dispatcher import Dispatcher
from clarion.sending.scheduler import tick
from tests.compliance.test_require_consent import require_consent
from tests.conftest import AccountClient, Api, assert_ledger_consistent
from tests.sending.conftest import (
    assert_partition,
    campaign,
    drain,
    phones,
    seed_campaign,
    seed_contacts,
    set_rates,
)


async def consent_of(db: Database, account_id: int, numbers: list[str], status: str) -> None:
    async with db.transaction() as s:
        ids = (
            await s.execute(
                select(Contact.id).where(
                    Contact.account_id == account_id, Contact.phone.in_(numbers)
                )
            )
        ).scalars()
        await set_consents(
            s, [Wanted(cid, "sms", status) for cid in ids], Cause.system("api", "test"), utcnow()
        )


class TestAtSendTime:
    async def test_withdrawn_after_materializing_is_skipped_and_costs_nothing(
        self,
        api: Api,
        account: AccountClient,
        db: Database,
        make_dispatcher: Callable[..., Dispatcher],
    ) -> None:
        await set_rates(db, [("sms", "FR", "", 700)])
        numbers = phones(4)
        list_id = await seed_contacts(db, account.id, numbers)
        await consent_of(db, account.id, numbers[:3], "granted")  # numbers[3]: never asked
        await require_consent(account)
        campaign_id = await seed_campaign(db, account.id, [list_id], text="Hi", reserve=4 * 700)
        await tick(db, 50_000)  # materialized: the three that granted consent
        async with db.session(write=False) as s:
            queued = (
                await s.execute(select(Message.phone).where(Message.campaign_id == campaign_id))
            ).scalars()
            assert sorted(queued) == numbers[:3]
        await consent_of(db, account.id, [numbers[0]], "denied")
        await drain(db, make_dispatcher(), [campaign_id])
        async with db.session(write=False) as s:
            rows = {
                m.phone: m
                for m in (
                    await s.execute(select(Message).where(Message.campaign_id == campaign_id))
                ).scalars()
            }
            movements = (
                await s.execute(
                    select(CreditLedger.kind, CreditLedger.balance_delta).where(
                        CreditLedger.campaign_id == campaign_id
                    )
                )
            ).all()
        skipped = rows[numbers[0]]
        assert (skipped.status, skipped.error_code, skipped.price) == ("skipped", "NO_CONSENT", 0)
        assert skipped.provider_message_id is None
        assert {rows[n].status for n in numbers[1:3]} == {"sent"}
        c = await assert_partition(db, campaign_id)
        assert (c.recipients, c.skipped, c.sent, c.spent) == (3, 1, 2, 2 * 700)
        # Only the two sent were paid for; the rest of the reservation went back.
        assert sum(delta for kind, delta in movements if kind == "charge") == -2 * 700
        await assert_ledger_consistent(db, account.id)
        assert (await campaign(db, campaign_id)).reserved == 0

    async def test_transactional_campaigns_ignore_consent(
        self,
        api: Api,
        account: AccountClient,
        db: Database,
        make_dispatcher: Callable[..., Dispatcher],
    ) -> None:
        await set_rates(db, [("sms", "FR", "", 700)])
        numbers = phones(2)
        list_id = await seed_contacts(db, account.id, numbers)
        await require_consent(account)
        campaign_id = await seed_campaign(db, account.id, [list_id], text="Code", reserve=1400)
        async with db.transaction() as s:
            row = await s.get(Campaign, campaign_id)
            assert row is not None
            row.purpose = "transactional"
        await drain(db, make_dispatcher(), [campaign_id])
        c = await assert_partition(db, campaign_id)
        assert (c.recipients, c.sent, c.skipped) == (2, 2, 0)
