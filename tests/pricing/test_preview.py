"""POST /preview: the composer's live counter, from the same segment rules as the estimate."""

from tests.conftest import AccountClient


async def _preview(account: AccountClient, **body: object) -> dict:  # type: ignore[type-arg]
    r = await account.post("/preview", json=body)
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


class TestPreview:
    async def test_gsm7_text(self, account: AccountClient) -> None:
        out = await _preview(account, channel="SMS", text="Hello {{firstName}} €")
        assert out == {
            "text": "Hello {{firstName}} €",
            "encoding": "GSM-7",
            "parts": 1,
            "units": 1,
            "characters": 21,
            "replaced": [],
            "ucs2Characters": [],
        }

    async def test_an_emoji_makes_it_ucs2_and_is_named(self, account: AccountClient) -> None:
        text = "Soldes 😀 à ne pas rater \u2019" + "x" * 60
        out = await _preview(account, channel="sms", text=text)
        assert out["encoding"] == "UCS-2"
        assert out["ucs2Characters"] == ["😀", "\u2019"]  # à is GSM-7
        assert out["characters"] == len(text)
        assert out["parts"] == out["units"] == 2  # 86 UTF-16 units > 70

    async def test_part_boundaries(self, account: AccountClient) -> None:
        assert (await _preview(account, channel="sms", text="a" * 160))["parts"] == 1
        assert (await _preview(account, channel="sms", text="a" * 161))["parts"] == 2
        # An extension character is never split: 152 + € + 152 is three parts.
        out = await _preview(account, channel="sms", text="a" * 152 + "€" + "a" * 152)
        assert out["parts"] == 3

    async def test_other_channels_price_one_unit(self, account: AccountClient) -> None:
        out = await _preview(account, channel="whatsapp", text="a" * 400)
        assert out["units"] == 1 and out["parts"] == 3
        assert (await _preview(account, channel="rcs", text="hi", smartEncoding=True))[
            "replaced"
        ] == []

    async def test_bad_input_is_422(self, account: AccountClient) -> None:
        for body in (
            {"channel": "fax", "text": "x"},
            {"channel": "sms"},
            {"text": "x"},
            {"channel": "sms", "text": 5},
            {"channel": "sms", "text": "x" * 10_001},
            {"channel": "sms", "text": "x", "other": 1},
        ):
            r = await account.post("/preview", json=body)
            assert r.status_code == 422, (body, r.text)
