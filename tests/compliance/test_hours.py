"""The pure sending-hours rules, edge by edge (no database, no clock)."""

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from clarion.compliance.hours import Window, constraints_for, next_allowed
from clarion.compliance.places import Place, place_of
from clarion.compliance.settings import SendingHours

EVERY_DAY = frozenset({"mon", "tue", "wed", "thu", "fri", "sat", "sun"})
PARIS = ZoneInfo("Europe/Paris")
NEW_YORK = ZoneInfo("America/New_York")

FR = SendingHours("FR", None, EVERY_DAY - {"sun"}, "08:00", "20:00", holidays=False)
US = SendingHours("US", None, EVERY_DAY, "08:00", "21:00", holidays=False)
US_FL = SendingHours("US", "US-FL", EVERY_DAY, "08:00", "20:00", holidays=False)
ANY = SendingHours("*", None, EVERY_DAY, "08:00", "20:00", holidays=True)

PARIS_PHONE = place_of("+33612345678", "FR", None, None)
NY_PHONE = place_of("+12125550100", "US", None, None)
FL_PHONE = place_of("+13055550100", "US", None, None)


def at(zone: ZoneInfo, *parts: int) -> datetime:
    return datetime(*parts, tzinfo=zone).astimezone(UTC)  # type: ignore[misc]


def nxt(rows: list[SendingHours], place: Place, now: datetime, window: Window | None = None):
    return next_allowed(constraints_for(rows, window, place), place, now)


class TestPlaces:
    def test_zone_and_region_come_from_the_number(self) -> None:
        assert Place(("Europe/Paris",), "FR", None) == PARIS_PHONE
        assert FL_PHONE.region == "US-FL" and FL_PHONE.zones == ("America/New_York",)
        assert NY_PHONE.region == "US-NY"
        assert place_of("+14155550100", "US", None, None).region == "US-CA"

    def test_the_contact_fields_win(self) -> None:
        place = place_of("+13055550100", "US", "America/Chicago", "US-TX")
        assert place == Place(("America/Chicago",), "US", "US-TX")

    def test_a_mobile_of_a_country_with_many_zones_has_them_all(self) -> None:
        place = place_of("+61412345678", "AU", None, None)
        assert {"Australia/Perth", "Australia/Sydney"} <= set(place.zones)


class TestNextAllowed:
    def test_no_rows_no_restriction(self) -> None:
        now = at(PARIS, 2026, 12, 6, 3, 0)
        assert nxt([], PARIS_PHONE, now) == now

    def test_friday_evening_in_paris_waits_for_saturday_morning(self) -> None:
        friday_evening = at(PARIS, 2026, 12, 4, 20, 30)
        assert nxt([FR], PARIS_PHONE, friday_evening) == at(PARIS, 2026, 12, 5, 8, 0)

    def test_saturday_evening_in_paris_waits_for_monday(self) -> None:
        assert nxt([FR], PARIS_PHONE, at(PARIS, 2026, 12, 5, 20, 0)) == at(PARIS, 2026, 12, 7, 8, 0)

    def test_the_window_includes_start_and_excludes_end(self) -> None:
        minute_before = at(PARIS, 2026, 12, 4, 7, 59)
        assert nxt([FR], PARIS_PHONE, minute_before) == at(PARIS, 2026, 12, 4, 8, 0)
        opening = at(PARIS, 2026, 12, 4, 8, 0)
        assert nxt([FR], PARIS_PHONE, opening) == opening
        last = at(PARIS, 2026, 12, 4, 19, 59)
        assert nxt([FR], PARIS_PHONE, last) == last
        assert nxt([FR], PARIS_PHONE, at(PARIS, 2026, 12, 4, 20, 0)) == at(PARIS, 2026, 12, 5, 8, 0)

    def test_a_french_public_holiday_is_skipped_when_the_row_says_so(self) -> None:
        christmas = at(PARIS, 2026, 12, 25, 10, 0)  # a Friday
        assert nxt([FR], PARIS_PHONE, christmas) == at(PARIS, 2026, 12, 26, 8, 0)

    def test_a_us_public_holiday(self) -> None:
        thanksgiving = at(NEW_YORK, 2026, 11, 26, 10, 0)
        assert nxt([US], NY_PHONE, thanksgiving) == at(NEW_YORK, 2026, 11, 27, 8, 0)
        allowed = SendingHours("US", None, EVERY_DAY, "08:00", "21:00", holidays=True)
        assert nxt([allowed], NY_PHONE, thanksgiving) == thanksgiving

    def test_the_most_specific_row_wins(self) -> None:
        evening = at(NEW_YORK, 2026, 12, 2, 20, 30)
        assert nxt([US, US_FL], NY_PHONE, evening) == evening
        assert nxt([US, US_FL], FL_PHONE, evening) == at(NEW_YORK, 2026, 12, 3, 8, 0)
        # A country row beats "*", and "*" covers every other country.
        assert nxt([ANY, US], NY_PHONE, evening) == evening
        assert nxt([ANY, US], PARIS_PHONE, at(PARIS, 2026, 12, 2, 21, 0)) == at(
            PARIS, 2026, 12, 3, 8, 0
        )

    def test_rows_of_one_scope_add_up(self) -> None:
        morning = SendingHours("FR", None, EVERY_DAY, "08:00", "12:00", holidays=True)
        afternoon = SendingHours("FR", None, EVERY_DAY, "14:00", "18:00", holidays=True)
        lunch = at(PARIS, 2026, 12, 2, 12, 30)
        assert nxt([morning, afternoon], PARIS_PHONE, lunch) == at(PARIS, 2026, 12, 2, 14, 0)

    def test_dst_change_last_sunday_of_march_in_paris(self) -> None:
        # 2027-03-28: clocks go from 02:00 CET to 03:00 CEST.
        saturday_night = at(PARIS, 2027, 3, 27, 21, 0)
        opens = nxt([ANY], PARIS_PHONE, saturday_night)
        assert opens == datetime(2027, 3, 28, 6, 0, tzinfo=UTC)  # 08:00 CEST (UTC+2)
        # 07:30 UTC on the Sunday is 09:30 CEST: open (it would be 08:30 in CET too).
        # 06:30 UTC the day before is 07:30 CET: closed.
        assert nxt([ANY], PARIS_PHONE, datetime(2027, 3, 27, 6, 30, tzinfo=UTC)) == datetime(
            2027, 3, 27, 7, 0, tzinfo=UTC
        )
        # A window starting at a wall time that does not exist that day opens when the
        # clocks jump past it.
        night = SendingHours("FR", None, EVERY_DAY, "02:30", "05:00", holidays=True)
        assert nxt([night], PARIS_PHONE, datetime(2027, 3, 27, 23, 0, tzinfo=UTC)) == datetime(
            2027, 3, 28, 1, 0, tzinfo=UTC
        )

    def test_a_number_with_two_zones_must_be_inside_both(self) -> None:
        both = Place(("America/New_York", "America/Los_Angeles"), "US", None)
        nine_in_new_york = at(NEW_YORK, 2026, 12, 2, 9, 0)  # 06:00 in Los Angeles
        assert nxt([US], both, nine_in_new_york) == datetime(2026, 12, 2, 16, 0, tzinfo=UTC)
        # 21:00 in New York closes it for both, though Los Angeles is at 18:00.
        late = datetime(2026, 12, 3, 2, 30, tzinfo=UTC)
        assert nxt([US], both, late) == datetime(2026, 12, 3, 16, 0, tzinfo=UTC)

    def test_a_send_window_narrows_the_rows_and_applies_alone(self) -> None:
        window = Window.of(["mon", "tue", "wed", "thu", "fri"], "09:00", "18:00")
        friday_evening = at(PARIS, 2026, 12, 4, 18, 30)
        assert nxt([FR], PARIS_PHONE, friday_evening, window) == at(PARIS, 2026, 12, 7, 9, 0)
        assert nxt([], PARIS_PHONE, friday_evening, window) == at(PARIS, 2026, 12, 7, 9, 0)

    def test_a_window_that_never_opens(self) -> None:
        never = Window.of(["sun"], "09:00", "18:00")
        weekdays = SendingHours("FR", None, EVERY_DAY - {"sun"}, "08:00", "20:00", True)
        assert nxt([weekdays], PARIS_PHONE, at(PARIS, 2026, 12, 2, 9, 0), never) is None
