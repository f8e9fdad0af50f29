"""Where a recipient is, for sending hours: the time zones to respect and the region.

The contact's own `timezone` and `region` win; otherwise both come from the phone number
(libphonenumber's time zone and geocoding data). A number whose prefix spans several zones
(an Australian mobile) yields all of them: the window must hold in each."""

from dataclasses import dataclass
from functools import lru_cache

import phonenumbers
import pycountry
from phonenumbers import geocoder
from phonenumbers import timezone as number_zones

UNKNOWN_ZONE = "Etc/Unknown"
# Numbers sharing their first characters ("+1305" and two more digits) share the zone and
# region derived from them: bulk paths group recipients by this prefix and decide each
# group once.
NUMBER_PREFIX = 7
FALLBACK_ZONE = "UTC"


@dataclass(frozen=True)
class Place:
    zones: tuple[str, ...]  # IANA names, at least one
    country: str  # ISO 3166-1 alpha-2 ("ZZ" unknown)
    region: str | None  # ISO 3166-2, when known


@lru_cache(maxsize=4096)
def _region_named(country: str, description: str) -> str | None:
    """ISO 3166-2 code of a geocoder description: "Florida" or "Miami, FL"."""
    if not description:
        return None
    head, _, tail = description.rpartition(", ")
    candidates = [f"{country}-{tail}"] if head and len(tail) <= 3 else []
    for code in candidates:
        if pycountry.subdivisions.get(code=code) is not None:
            return code
    for sub in pycountry.subdivisions.get(country_code=country) or ():
        if sub.name == description:
            return str(sub.code)
    return None


_BY_PREFIX: dict[str, tuple[tuple[str, ...], str | None]] = {}
_BY_PREFIX_MAX = 65536


def _from_number(phone: str) -> tuple[tuple[str, ...], str | None]:
    """The zones and region of the number, looked up once per NUMBER_PREFIX prefix (the
    first number seen of a prefix stands for all of them): a batch of a thousand distinct
    numbers then costs a few lookups, not a thousand (about 40-80 us each)."""
    prefix = phone[:NUMBER_PREFIX]
    found = _BY_PREFIX.get(prefix)
    if found is None:
        if len(_BY_PREFIX) >= _BY_PREFIX_MAX:
            _BY_PREFIX.clear()
        found = _BY_PREFIX[prefix] = _look_up(phone)
    return found


def _look_up(phone: str) -> tuple[tuple[str, ...], str | None]:
    try:
        parsed = phonenumbers.parse(phone)
    except phonenumbers.NumberParseException:
        return (FALLBACK_ZONE,), None
    zones = tuple(z for z in number_zones.time_zones_for_number(parsed) if z != UNKNOWN_ZONE)
    country = phonenumbers.region_code_for_number(parsed) or "ZZ"
    description = geocoder.description_for_number(parsed, "en")
    return zones or (FALLBACK_ZONE,), _region_named(country, description)


def place_of(phone: str, country: str, timezone: str | None, region: str | None) -> Place:
    """The zones and region of a recipient (contact fields first, then the number; a number
    without zone data counts as UTC)."""
    number_zone_set, number_region = _from_number(phone)
    zones = (timezone,) if timezone else number_zone_set
    return Place(zones=zones, country=country, region=region or number_region)
