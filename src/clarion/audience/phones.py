"""Phone number normalization: anything a person types -> E.164 and its ISO country.

This is the floor of the import rate, so the common path does as little as possible:
a cheap character pre-filter rejects garbage before `phonenumbers` sees it, `parse` runs
with `keep_raw_input=False`, the region is looked up once and validity is checked for that
region (`is_valid_number` would look the region up a second time), and E.164 is assembled
from the parsed parts instead of going through the generic formatter.
"""

import re
from dataclasses import dataclass

import phonenumbers
from phonenumbers import NumberParseException, PhoneNumber, ValidationResult
from phonenumbers.phonenumberutil import (
    is_possible_number_with_reason,
    is_valid_number_for_region,
    national_significant_number,
    region_code_for_number,
)

SUPPORTED_REGIONS = frozenset(phonenumbers.SUPPORTED_REGIONS)
UNKNOWN_COUNTRY = "ZZ"  # non-geographic numbers (+800, +882, ...) have no ISO country

# Digits, a leading plus, and the punctuation people put in numbers. Letters (vanity numbers,
# extensions) are refused: a campaign needs a number a provider can dial as is.
_PLAUSIBLE = re.compile(r"\+?[0-9 ().\-/\u00a0]{3,40}")
_PUNCTUATION = str.maketrans("", "", " ().-/\u00a0")

_PARSE_REASONS = {
    NumberParseException.INVALID_COUNTRY_CODE: "unknown country calling code",
    NumberParseException.NOT_A_NUMBER: "not a phone number",
    NumberParseException.TOO_SHORT_AFTER_IDD: "too short after the international prefix",
    NumberParseException.TOO_SHORT_NSN: "too short",
    NumberParseException.TOO_LONG: "too long",
}
_LENGTH_REASONS = {
    ValidationResult.TOO_SHORT: "too short for {region}",
    ValidationResult.TOO_LONG: "too long for {region}",
    ValidationResult.INVALID_LENGTH: "wrong length for {region}",
    ValidationResult.INVALID_COUNTRY_CODE: "unknown country calling code",
}


class InvalidPhone(ValueError):
    """The input is not a valid phone number; `reason` says why in a short phrase."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Phone:
    e164: str
    country: str


def check_region(value: str | None) -> str | None:
    """Validate a `defaultCountry`: an ISO 3166 alpha-2 code (any case) -> upper case."""
    if value is None:
        return None
    region = value.strip().upper()
    if region not in SUPPORTED_REGIONS:
        raise ValueError(f"{value!r} is not an ISO 3166 alpha-2 country code with phone numbers")
    return region


def normalize(raw: str, default_country: str | None = None) -> Phone:
    """Parse `raw` (international, or national when `default_country` is given).

    Raises InvalidPhone with a reason. `default_country` must already be checked
    (`check_region`).
    """
    e164, country = normalize_fast(raw, default_country)
    return Phone(e164, country)


def normalize_fast(raw: str, default_country: str | None) -> tuple[str, str]:
    """`normalize` without the dataclass, for the bulk paths: (e164, country)."""
    text = raw.strip()
    if not text:
        raise InvalidPhone("empty phone number")
    if _PLAUSIBLE.fullmatch(text) is None:
        if len(text) > 40:
            raise InvalidPhone("too long")
        raise InvalidPhone("contains characters that are not part of a phone number")
    if text[0] != "+" and default_country is None:
        raise InvalidPhone(
            "national number without a country: write it with + and the country code, "
            "or give defaultCountry"
        )
    try:
        number = phonenumbers.parse(text, default_country, keep_raw_input=False)
    except NumberParseException as exc:
        raise InvalidPhone(_PARSE_REASONS.get(exc.error_type, "not a phone number")) from None
    region = region_code_for_number(number)
    if region is None or not is_valid_number_for_region(number, region):
        raise InvalidPhone(_invalid_reason(number, region))
    e164 = f"+{number.country_code}{national_significant_number(number)}"
    return e164, (region if len(region) == 2 else UNKNOWN_COUNTRY)


def _invalid_reason(number: PhoneNumber, region: str | None) -> str:
    where = region if region and len(region) == 2 else f"+{number.country_code}"
    result = is_possible_number_with_reason(number)
    template = _LENGTH_REASONS.get(result)
    if template is not None:
        return template.format(region=where)
    return f"not a valid number for {where}"


def digits_only(text: str) -> str:
    """The digits of a search string that looks like a phone number ("" when it does not)."""
    stripped = text.strip().translate(_PUNCTUATION).lstrip("+")
    return stripped if stripped.isdigit() else ""
