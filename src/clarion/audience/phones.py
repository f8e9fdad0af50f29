"""Phone number normalization: anything a person types -> E.164 and its ISO country.

Only the public API of `phonenumbers` is used, so its version (and numbering metadata) can
move within a compatible range. This is the floor of the import rate, so the common path
does as little as possible: a cheap character pre-filter rejects garbage before
`phonenumbers` sees it, `parse` runs with `keep_raw_input=False`, and validity and region are
decided together from the published metadata with patterns compiled once (see below).
"""

import re
from dataclasses import dataclass

import phonenumbers
from phonenumbers import (
    NumberParseException,
    PhoneMetadata,
    PhoneNumber,
    ValidationResult,
    is_possible_number_with_reason,
    national_significant_number,
    region_codes_for_country_code,
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
    number = _parse(text, default_country)
    code = number.country_code or 0
    nsn = national_significant_number(number)
    region = _valid_region(code, nsn)
    if region is None:
        raise InvalidPhone(_invalid_reason(number, _first_region(code)))
    return f"+{code}{nsn}", (region if len(region) == 2 else UNKNOWN_COUNTRY)


def _parse(text: str, default_country: str | None) -> PhoneNumber:
    try:
        return phonenumbers.parse(text, default_country, keep_raw_input=False)
    except NumberParseException as exc:
        raise InvalidPhone(_PARSE_REASONS.get(exc.error_type, "not a phone number")) from None


# -- validity ---------------------------------------------------------------------------------
# `region_code_for_number` + `is_valid_number_for_region` computed together, with the same
# answers, from the metadata phonenumbers publishes (`PhoneMetadata`): a number is valid for
# a region when it matches the region's general pattern and one of its type patterns.
# phonenumbers tries the rare types (premium, toll free, ...) first and looks every pattern
# string up in the `re` cache on each call; we try mobile and fixed line first (most numbers
# in a contact list) with patterns compiled once. tests/audience/test_phones.py checks the
# equivalence against phonenumbers on many numbers, so a metadata release that changed the
# rules would fail there instead of passing silently.


@dataclass(frozen=True, slots=True)
class _Desc:
    lengths: frozenset[int]
    pattern: "re.Pattern[str] | None"

    def matches(self, nsn: str) -> bool:
        if self.lengths and len(nsn) not in self.lengths:
            return False
        return self.pattern is not None and self.pattern.fullmatch(nsn) is not None


@dataclass(frozen=True, slots=True)
class _Region:
    code: str
    leading: "re.Pattern[str] | None"
    general: _Desc
    types: tuple[_Desc, ...]


_REGIONS: dict[int, tuple[_Region, ...]] = {}


def _desc(desc: object) -> _Desc | None:
    if desc is None:
        return None
    pattern = getattr(desc, "national_number_pattern", None)
    return _Desc(
        frozenset(getattr(desc, "possible_length", ()) or ()),
        re.compile(pattern) if pattern else None,
    )


def _regions(country_code: int) -> tuple[_Region, ...]:
    cached = _REGIONS.get(country_code)
    if cached is not None:
        return cached
    regions = []
    for code in region_codes_for_country_code(country_code):
        metadata = PhoneMetadata.metadata_for_region_or_calling_code(country_code, code)
        if metadata is None:
            continue
        general = _desc(metadata.general_desc)
        if general is None:
            continue
        ordered = [metadata.mobile] if not metadata.same_mobile_and_fixed_line_pattern else []
        ordered += [
            metadata.fixed_line,
            metadata.premium_rate,
            metadata.toll_free,
            metadata.shared_cost,
            metadata.voip,
            metadata.personal_number,
            metadata.pager,
            metadata.uan,
            metadata.voicemail,
        ]
        types = tuple(d for d in (_desc(x) for x in ordered) if d is not None)
        leading = re.compile(metadata.leading_digits) if metadata.leading_digits else None
        regions.append(_Region(code, leading, general, types))
    result = tuple(regions)
    _REGIONS[country_code] = result
    return result


def _is_valid(nsn: str, region: _Region) -> bool:
    if not region.general.matches(nsn):
        return False
    return any(desc.matches(nsn) for desc in region.types)


def _valid_region(country_code: int, nsn: str) -> str | None:
    """The region of a valid number, None when the number is not valid."""
    regions = _regions(country_code)
    if len(regions) == 1:  # as region_code_for_number: no leading-digits test then
        return regions[0].code if _is_valid(nsn, regions[0]) else None
    for region in regions:
        if region.leading is not None:
            if region.leading.match(nsn):
                return region.code if _is_valid(nsn, region) else None
        elif _is_valid(nsn, region):
            return region.code
    return None


def _first_region(country_code: int) -> str | None:
    codes = region_codes_for_country_code(country_code)
    return codes[0] if codes else None


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
