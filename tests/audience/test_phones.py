import random

import phonenumbers
import pytest
from phonenumbers import PhoneNumberFormat, PhoneNumberType

from clarion.audience.phones import InvalidPhone, check_region, digits_only, normalize


class TestNormalize:
    @pytest.mark.parametrize(
        ("raw", "country", "e164", "iso"),
        [
            ("+33612345678", None, "+33612345678", "FR"),
            ("+33 6 12 34 56 78", None, "+33612345678", "FR"),
            ("06 12 34 56 78", "FR", "+33612345678", "FR"),
            ("(650) 253-0000", "US", "+16502530000", "US"),
            ("+1 650-253-0000", "GB", "+16502530000", "US"),
            ("0049 1512 3456789", "FR", "+4915123456789", "DE"),
            ("+39 02 1234 5678", None, "+390212345678", "IT"),
            ("+80012345678", None, "+80012345678", "ZZ"),
        ],
    )
    def test_valid(self, raw: str, country: str | None, e164: str, iso: str) -> None:
        phone = normalize(raw, country)
        assert (phone.e164, phone.country) == (e164, iso)

    @pytest.mark.parametrize(
        ("raw", "country", "reason"),
        [
            ("", None, "empty"),
            ("   ", None, "empty"),
            ("0612345678", None, "national number without a country"),
            ("call me", None, "characters"),
            ("+33 6 12", None, "too short"),
            ("+3361234567890123", None, "too long"),
            ("+999 123456789", None, "unknown country calling code"),
            ("+33 1", None, "too short"),
            ("1-800-FLOWERS", "US", "characters"),
            ("+1 555 0100 999", None, "not a valid number"),
            ("9" * 50, "FR", "too long"),
        ],
    )
    def test_invalid_has_reason(self, raw: str, country: str | None, reason: str) -> None:
        with pytest.raises(InvalidPhone) as caught:
            normalize(raw, country)
        assert reason in caught.value.reason

    def test_region_check(self) -> None:
        assert check_region("fr") == "FR"
        assert check_region(None) is None
        for bad in ("XX", "France", "", "12"):
            with pytest.raises(ValueError):
                check_region(bad)

    def test_digits_only(self) -> None:
        assert digits_only("+33 6 12") == "33612"
        assert digits_only("john") == ""


class TestSameAnswersAsPhonenumbers:
    """normalize() computes region and validity its own (faster) way: it must agree with
    phonenumbers' region_code_for_number + is_valid_number on every number."""

    def test_random_numbers_of_every_country_code(self) -> None:
        rng = random.Random(1234)
        codes = sorted(phonenumbers.COUNTRY_CODE_TO_REGION_CODE)
        checked = valid = 0
        for code in codes:
            for _ in range(150):
                length = rng.randint(2, 14)
                raw = f"+{code}{rng.randrange(10**length):0{length}d}"
                if rng.random() < 0.3:
                    raw = f"{raw[:4]} {raw[4:7]} {raw[7:]}".strip()
                try:
                    number = phonenumbers.parse(raw, "FR")
                except phonenumbers.NumberParseException:
                    with pytest.raises(InvalidPhone):
                        normalize(raw, "FR")
                    continue
                checked += 1
                expected = None
                if phonenumbers.is_valid_number(number):
                    region = phonenumbers.region_code_for_number(number)
                    e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
                    expected = (e164, region if len(region) == 2 else "ZZ")
                    valid += 1
                try:
                    phone = normalize(raw, "FR")
                    got: tuple[str, str] | None = (phone.e164, phone.country)
                except InvalidPhone:
                    got = None
                assert got == expected, raw
        assert checked > 20_000 and valid > 1_000

    def test_example_numbers_of_every_region_and_type(self) -> None:
        seen = 0
        for region in phonenumbers.SUPPORTED_REGIONS:
            for kind in (
                PhoneNumberType.MOBILE,
                PhoneNumberType.FIXED_LINE,
                PhoneNumberType.TOLL_FREE,
            ):
                example = phonenumbers.example_number_for_type(region, kind)
                if example is None:
                    continue
                e164 = phonenumbers.format_number(example, PhoneNumberFormat.E164)
                national = phonenumbers.format_number(example, PhoneNumberFormat.NATIONAL)
                assert normalize(e164).e164 == e164
                assert normalize(national, region).e164 == e164
                assert normalize(e164).country == phonenumbers.region_code_for_number(example)
                seen += 1
        assert seen > 500
