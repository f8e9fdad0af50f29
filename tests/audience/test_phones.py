import pytest

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
