import asyncio
from typing import Any

import pytest
from sqlalchemy import update

from clarion.db.session import Database
from clarion.errors import Unprocessable
from clarion.pricing.models import Rate, RateRow
from clarion.pricing.rates import (
    RateCard,
    default_rate_card,
    load_rate_card,
    rcs_category,
    validate_rows,
)
from tests.conftest import AccountClient, Api

CARD = [
    {"channel": "sms", "country": "FR", "price": 0.07},
    {"channel": "sms", "country": "*", "price": 0.1},
    {"channel": "whatsapp", "country": "FR", "category": "marketing", "price": 0.0859},
    {"channel": "whatsapp", "country": "FR", "price": 0.05},
    {"channel": "whatsapp", "country": "*", "category": "marketing", "price": 0.08},
    {"channel": "whatsapp", "country": "*", "price": 0.04},
    {"channel": "rcs", "country": "*", "category": "basic", "price": 0.015},
]


async def put_card(api: Api, rates: list[dict[str, Any]]) -> Any:
    return await api.admin("PUT", "/admin/rates", json={"rates": rates})


async def card_in_db(db: Database) -> RateCard:
    async with db.transaction(write=False) as session:
        return await load_rate_card(session)


def row(channel: str, country: str, category: str, price: int) -> RateRow:
    return RateRow(channel, country, category, price)


class TestMostSpecificRowWins:
    card = RateCard(
        [
            row("whatsapp", "FR", "marketing", 1),
            row("whatsapp", "FR", "", 2),
            row("whatsapp", "*", "marketing", 3),
            row("whatsapp", "*", "", 4),
            row("sms", "DE", "", 5),
        ],
        "custom",
    )

    def test_order(self) -> None:
        assert self.card.unit_price("whatsapp", "FR", "marketing") == 1
        assert self.card.unit_price("whatsapp", "FR", "utility") == 2
        assert self.card.unit_price("whatsapp", "FR") == 2
        assert self.card.unit_price("whatsapp", "DE", "marketing") == 3
        assert self.card.unit_price("whatsapp", "DE", "utility") == 4
        assert self.card.unit_price("whatsapp", "DE") == 4

    def test_country_row_beats_wildcard_category_row(self) -> None:
        card = RateCard([row("rcs", "FR", "", 7), row("rcs", "*", "single", 9)], "custom")
        assert card.unit_price("rcs", "FR", "single") == 7
        assert card.unit_price("rcs", "GB", "single") == 9
        assert card.unit_price("rcs", "GB", "basic") is None

    def test_none_when_no_row_applies(self) -> None:
        assert self.card.unit_price("sms", "FR") is None
        assert self.card.unit_price("rcs", "FR", "basic") is None
        assert self.card.unit_price("sms", "DE") == 5

    def test_case_insensitive_lookup(self) -> None:
        assert self.card.unit_price("WhatsApp", "fr", "Marketing") == 1

    def test_fingerprint_follows_content(self) -> None:
        same = RateCard(list(reversed(self.card.rows)), "custom")
        assert same.fingerprint == self.card.fingerprint
        changed = RateCard([*self.card.rows[:-1], row("sms", "DE", "", 6)], "custom")
        assert changed.fingerprint != self.card.fingerprint


class TestRcsCategory:
    def test_basic_up_to_160_utf8_bytes(self) -> None:
        assert rcs_category("a" * 160, None, None) == "basic"
        assert rcs_category("a" * 161, None, None) == "single"
        assert rcs_category("é" * 80, None, None) == "basic"
        assert rcs_category("é" * 81, None, None) == "single"
        assert rcs_category("😀" * 40, None, None) == "basic"
        assert rcs_category("😀" * 40 + "a", None, None) == "single"

    def test_rich_content_is_single(self) -> None:
        assert rcs_category("hi", {"title": "T"}, None) == "single"
        assert rcs_category("hi", None, [{"type": "reply", "text": "Yes"}]) == "single"
        assert rcs_category(None, {"title": "T"}, []) == "single"

    def test_empty_rich_content_is_none(self) -> None:
        assert rcs_category("hi", {}, []) == "basic"
        assert rcs_category(None, None, None) == "basic"


class TestDefaultCard:
    def test_packaged_card_is_valid_and_complete(self) -> None:
        card = default_rate_card()
        assert card.source == "default"
        countries = {r.country for r in card.rows if r.country != "*"}
        assert len(countries) >= 20
        for channel, categories in (
            ("sms", [None]),
            ("whatsapp", ["marketing", "utility", "authentication"]),
            ("rcs", ["basic", "single"]),
        ):
            for category in categories:
                # Any country at all gets a price.
                assert card.unit_price(channel, "KZ", category) is not None
        assert card.unit_price("sms", "FR") == 700

    async def test_served_when_no_card_is_set(self, account: AccountClient) -> None:
        r = await account.get("/rates")
        assert r.status_code == 200
        body = r.json()
        assert body["source"] == "default"
        assert body["fingerprint"] == default_rate_card().fingerprint
        assert len(body["items"]) == len(default_rate_card().rows)
        assert {"channel": "sms", "country": "FR", "category": None, "price": 0.07} in (
            body["items"]
        )


class TestPutRates:
    async def test_replaces_the_whole_card(self, api: Api, account: AccountClient) -> None:
        r = await put_card(api, CARD)
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["source"] == "custom"
        assert len(body["items"]) == len(CARD)
        assert (await account.get("/rates")).json() == body
        r = await put_card(api, [{"channel": "sms", "country": "DE", "price": 0.08}])
        assert r.json()["items"] == [
            {"channel": "sms", "country": "DE", "category": None, "price": 0.08}
        ]
        card = await card_in_db(api.db)
        assert card.unit_price("sms", "FR") is None
        assert card.unit_price("sms", "DE") == 800

    async def test_normalizes_case(self, api: Api) -> None:
        r = await put_card(
            api,
            [
                {"channel": "WhatsApp", "country": "fr", "category": "Marketing", "price": 1},
                {"channel": "SMS", "country": "*", "category": None, "price": "0.0001"},
            ],
        )
        assert r.status_code == 200, r.text
        assert r.json()["items"] == [
            {"channel": "sms", "country": "*", "category": None, "price": 0.0001},
            {"channel": "whatsapp", "country": "FR", "category": "marketing", "price": 1},
        ]

    async def test_exact_prices(self, api: Api) -> None:
        r = await put_card(api, [{"channel": "sms", "country": "FR", "price": 0.0123}])
        assert r.json()["items"][0]["price"] == 0.0123
        assert (await card_in_db(api.db)).unit_price("sms", "FR") == 123

    async def test_takes_effect_at_once_in_this_process(self, api: Api) -> None:
        assert (await card_in_db(api.db)).source == "default"
        await put_card(api, CARD)
        first = await card_in_db(api.db)
        assert first.unit_price("sms", "FR") == 700
        await put_card(api, [{"channel": "sms", "country": "FR", "price": 0.09}])
        assert (await card_in_db(api.db)).unit_price("sms", "FR") == 900
        await put_card(api, CARD)
        again = await card_in_db(api.db)
        assert again.unit_price("sms", "FR") == 700
        assert again.fingerprint == first.fingerprint

    async def test_rows_written_directly_are_read_fresh(self, api: Api) -> None:
        # Without the stored fingerprint nothing is cached: the table is the truth.
        async with api.db.transaction() as session:
            session.add(Rate(channel="sms", country="FR", category="", price=5))
        assert (await card_in_db(api.db)).unit_price("sms", "FR") == 5
        async with api.db.transaction() as session:
            await session.execute(update(Rate).values(price=6))
        card = await card_in_db(api.db)
        assert card.source == "custom" and card.unit_price("sms", "FR") == 6

    async def test_empty_list_goes_back_to_default(self, api: Api, account: AccountClient) -> None:
        await put_card(api, CARD)
        r = await put_card(api, [])
        assert r.status_code == 200
        assert r.json()["source"] == "default"
        assert (await account.get("/rates")).json()["source"] == "default"

    async def test_needs_admin_token(self, api: Api, account: AccountClient) -> None:
        r = await account.put("/admin/rates", json={"rates": CARD})
        assert r.status_code == 401
        r = await api.client.put("/admin/rates", json={"rates": CARD})
        assert r.status_code == 401
        assert (await account.get("/rates")).json()["source"] == "default"

    async def test_get_rates_needs_api_key(self, api: Api) -> None:
        assert (await api.client.get("/rates")).status_code == 401
        r = await api.admin("GET", "/admin/rates")
        assert r.status_code == 200 and r.json()["source"] == "default"

    async def test_concurrent_replacements_never_mix(self, api: Api) -> None:
        cards = [
            [{"channel": "sms", "country": c, "price": p} for c in ("FR", "DE", "GB", "*")]
            for p in (0.01, 0.02, 0.03, 0.04)
        ]
        results = await asyncio.gather(*(put_card(api, c) for c in cards))
        assert [r.status_code for r in results] == [200] * 4
        card = await card_in_db(api.db)
        assert len(card.rows) == 4
        assert len({r.price for r in card.rows}) == 1


class TestPutRatesValidation:
    @pytest.mark.parametrize(
        ("rate", "field"),
        [
            ({"channel": "fax", "country": "FR", "price": 1}, "rates[0].channel"),
            ({"channel": "sms", "country": "XX", "price": 1}, "rates[0].country"),
            ({"channel": "sms", "country": "FRA", "price": 1}, "rates[0].country"),
            ({"channel": "sms", "country": "", "price": 1}, "rates[0].country"),
            ({"channel": "sms", "country": "**", "price": 1}, "rates[0].country"),
            (
                {"channel": "sms", "country": "FR", "category": "basic", "price": 1},
                "rates[0].category",
            ),
            (
                {"channel": "whatsapp", "country": "FR", "category": "promo", "price": 1},
                "rates[0].category",
            ),
            (
                {"channel": "rcs", "country": "FR", "category": "marketing", "price": 1},
                "rates[0].category",
            ),
            ({"channel": "sms", "country": "FR", "price": -0.0001}, "rates[0].price"),
            ({"channel": "sms", "country": "FR", "price": 0.00001}, "rates[0].price"),
            ({"channel": "sms", "country": "FR", "price": "abc"}, "rates[0].price"),
            ({"channel": "sms", "country": "FR", "price": True}, "rates[0].price"),
            ({"channel": "sms", "country": "FR", "price": 1e13}, "rates[0].price"),
            ({"channel": "sms", "country": "FR", "price": 5e9}, "rates[0].price"),
            ({"channel": "sms", "country": "F\x00", "price": 1}, "rates[0].country"),
            ({"channel": "sms", "country": "FR"}, "rates[0].price"),
            ({"channel": "sms", "price": 1}, "rates[0].country"),
            ({"channel": 5, "country": "FR", "price": 1}, "rates[0].channel"),
            ({"channel": "sms", "country": "FR", "price": 1, "extra": 1}, "rates[0].extra"),
        ],
    )
    async def test_bad_row_is_422_naming_the_field(
        self, api: Api, rate: dict[str, Any], field: str
    ) -> None:
        r = await put_card(api, [rate])
        assert r.status_code == 422, r.text
        assert r.headers["content-type"].startswith("application/problem+json")
        assert field in [e["field"] for e in r.json()["errors"]]

    async def test_duplicate_names_the_index(self, api: Api) -> None:
        rates = [
            {"channel": "sms", "country": "FR", "price": 1},
            {"channel": "whatsapp", "country": "FR", "category": "utility", "price": 1},
            {"channel": "WhatsApp", "country": "fr", "category": "Utility", "price": 2},
        ]
        r = await put_card(api, rates)
        assert r.status_code == 422
        errors = r.json()["errors"]
        assert errors == [{"field": "rates[2]", "message": errors[0]["message"]}]
        assert "rates[1]" in errors[0]["message"]

    async def test_same_country_other_category_is_no_duplicate(self, api: Api) -> None:
        rates = [
            {"channel": "whatsapp", "country": "FR", "price": 1},
            {"channel": "whatsapp", "country": "FR", "category": "utility", "price": 1},
            {"channel": "rcs", "country": "FR", "price": 1},
            {"channel": "sms", "country": "FR", "price": 1},
        ]
        assert (await put_card(api, rates)).status_code == 200

    async def test_a_bad_card_changes_nothing(self, api: Api, account: AccountClient) -> None:
        await put_card(api, CARD)
        before = (await account.get("/rates")).json()
        r = await put_card(api, [*CARD, {"channel": "sms", "country": "ZZ", "price": 1}])
        assert r.status_code == 422
        assert (await account.get("/rates")).json() == before

    @pytest.mark.parametrize("body", [{}, {"rates": None}, {"rates": {}}, [], {"rates": [1]}])
    async def test_bad_shapes_are_4xx(self, api: Api, body: Any) -> None:
        r = await api.admin("PUT", "/admin/rates", json=body)
        assert r.status_code == 422, r.text

    async def test_malformed_json_is_400(self, api: Api) -> None:
        r = await api.admin(
            "PUT", "/admin/rates", content=b"{", headers={"content-type": "application/json"}
        )
        assert r.status_code == 400

    def test_validate_rows_reports_every_error(self) -> None:
        with pytest.raises(Unprocessable) as caught:
            validate_rows(
                [
                    {"channel": "x", "country": "ZZ", "price": -1},
                    {"channel": "sms", "country": "FR", "price": 1},
                ]
            )
        fields = [e["field"] for e in caught.value.extra["errors"]]
        assert fields == ["rates[0].channel", "rates[0].country", "rates[0].price"]
