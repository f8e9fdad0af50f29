"""Sending hours as pure functions of a recipient's place and an instant (no clock, no
database): whether a message may go now, and the next instant it may.

A constraint gives, for each local date, the minutes of that day when sending is allowed:
the account's rows for the recipient (the most specific scope: region, then country, then
"*"; several rows of that scope add up; `holidays: false` removes the country's public
holidays) and the campaign's `sendWindow`. Each constraint holds in each of the recipient's
zones; the allowed instants are the intersection of all of them, in UTC."""

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

import holidays

from clarion.compliance.places import Place
from clarion.compliance.settings import DAYS, MINUTES_PER_DAY, SendingHours, minutes_of

Interval = tuple[datetime, datetime]  # [start, end) in UTC

HORIZON_DAYS = 400  # beyond this nothing is looked for: a rule that never opens holds forever


@dataclass(frozen=True)
class Window:
    """Days and minutes of the local day when sending is allowed (a campaign's
    `sendWindow`, or one account row)."""

    days: frozenset[str]
    start: int  # minutes after local midnight, included
    end: int  # excluded; up to 1440
    holidays_country: str | None = None  # excluded on this country's holidays, if set
    holidays_region: str | None = None

    @classmethod
    def of(cls, days: Iterable[str], start: str, end: str) -> "Window":
        return cls(frozenset(days), minutes_of(start), minutes_of(end))


@lru_cache(maxsize=1024)
def _holidays(country: str, region: str | None, year: int) -> frozenset[date]:
    subdiv = region.split("-", 1)[1] if region else None
    try:
        found = holidays.country_holidays(country, subdiv=subdiv, years=year)
    except NotImplementedError:  # a country the package does not know: no holidays
        return frozenset()
    except ValueError:  # a region it does not know: the country's holidays
        if subdiv is None:
            return frozenset()
        return _holidays(country, None, year)
    return frozenset(found.keys())


def is_holiday(day: date, country: str, region: str | None) -> bool:
    return day in _holidays(country, region, day.year)


def applicable_rows(rows: Sequence[SendingHours], place: Place) -> list[Window]:
    """The windows of the most specific rows matching the place (empty: no restriction)."""
    scopes = [
        [r for r in rows if r.region is not None and r.region == place.region],
        [r for r in rows if r.region is None and r.country == place.country],
        [r for r in rows if r.country == "*"],
    ]
    for scope in scopes:
        if scope:
            return [
                Window(
                    r.days,
                    r.start_minute,
                    r.end_minute,
                    holidays_country=None if r.holidays else place.country,
                    holidays_region=None if r.holidays else place.region,
                )
                for r in scope
            ]
    return []


def _local_intervals(windows: Sequence[Window], zone: ZoneInfo, day: date) -> list[Interval]:
    """The UTC intervals of one local date the windows allow (a union)."""
    out: list[Interval] = []
    weekday = DAYS[day.weekday()]
    for w in windows:
        if weekday not in w.days:
            continue
        if w.holidays_country and is_holiday(day, w.holidays_country, w.holidays_region):
            continue
        out.append((_instant(day, w.start, zone), _instant(day, w.end, zone)))
    return _union(out)


def _instant(day: date, minute: int, zone: ZoneInfo) -> datetime:
    """The first instant (UTC) whose wall time in `zone` is at or after `minute` of `day`.
    A wall time skipped by a DST change (02:30 on the last Sunday of March in Paris) is
    reached when the clocks jump past it (03:00 CEST); a repeated one (autumn) at its
    first occurrence."""
    if minute >= MINUTES_PER_DAY:
        day, minute = day + timedelta(days=1), minute - MINUTES_PER_DAY
    wall = datetime.combine(day, time(minute // 60, minute % 60))
    first = wall.replace(tzinfo=zone, fold=0).astimezone(UTC)
    if first.astimezone(zone).replace(tzinfo=None) == wall:
        return first
    # In a gap: fold=1 reads it with the offset after the change (an instant before the
    # jump), fold=0 with the one before (after the jump). The jump is between: find it.
    lo, hi = wall.replace(tzinfo=zone, fold=1).astimezone(UTC), first
    lo, hi = min(lo, hi), max(lo, hi)
    while hi - lo > timedelta(minutes=1):
        mid = lo + (hi - lo) / 2
        if mid.astimezone(zone).replace(tzinfo=None) >= wall:
            hi = mid
        else:
            lo = mid
    return hi.replace(second=0, microsecond=0)


def _union(intervals: list[Interval]) -> list[Interval]:
    out: list[Interval] = []
    for start, end in sorted(intervals):
        if start >= end:
            continue
        if out and start <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], end))
        else:
            out.append((start, end))
    return out


def _intersect(a: list[Interval], b: list[Interval]) -> list[Interval]:
    out: list[Interval] = []
    i = j = 0
    while i < len(a) and j < len(b):
        start, end = max(a[i][0], b[j][0]), min(a[i][1], b[j][1])
        if start < end:
            out.append((start, end))
        if a[i][1] < b[j][1]:
            i += 1
        else:
            j += 1
    return out


def _allowed(
    constraints: Sequence[Sequence[Window]], zones: Sequence[str], first: date, days: int
) -> list[Interval] | None:
    """The allowed UTC intervals over local dates [first - 1, first + days], or None when
    nothing constrains."""
    result: list[Interval] | None = None
    for windows in constraints:
        for name in zones:
            zone = ZoneInfo(name)
            span: list[Interval] = []
            for k in range(-1, days + 1):
                span.extend(_local_intervals(windows, zone, first + timedelta(days=k)))
            span = _union(span)
            result = span if result is None else _intersect(result, span)
    return result


def constraints_for(
    rows: Sequence[SendingHours], send_window: Window | None, place: Place
) -> list[list[Window]]:
    """What a marketing message to this place must satisfy (an empty list: nothing)."""
    out: list[list[Window]] = []
    account = applicable_rows(rows, place)
    if account:
        out.append(account)
    if send_window is not None:
        out.append([send_window])
    return out


def next_allowed(
    constraints: Sequence[Sequence[Window]], place: Place, now: datetime
) -> datetime | None:
    """`now` when sending is allowed now, else the next instant it is (UTC); None when
    it never is within HORIZON_DAYS."""
    if not constraints:
        return now
    now = now.astimezone(UTC)
    first = now.date()
    step = 8  # look a week ahead first (almost always enough), then further
    looked = 0
    while looked < HORIZON_DAYS:
        allowed = _allowed(constraints, place.zones, first + timedelta(days=looked), step)
        for start, end in allowed or []:
            if end > now:
                return max(start, now)
        looked += step
        step = min(step * 4, HORIZON_DAYS)
    return None
