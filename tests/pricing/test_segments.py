"""SMS segmentation, checked against a slow reference that packs characters one by one.

The reference tables below are written out independently of `clarion.pricing.segments`
(from 3GPP TS 23.038), so a wrong character in the module's tables shows up here.
"""

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from clarion.pricing.segments import (
    SegmentCount,
    count_segments,
    gsm7_decode,
    gsm7_encode,
    is_gsm7,
    split_parts,
)

REF_BASIC = set(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
REF_EXTENSION = set("^{}\\[~]|€\f")


def ref_cost(ch: str, gsm: bool) -> int:
    if gsm:
        return 2 if ch in REF_EXTENSION else 1
    return 2 if ord(ch) > 0xFFFF else 1


def ref_pack(text: str) -> tuple[str, int, list[str]]:
    """(encoding, length, parts): fill each part character by character."""
    gsm = all(ch in REF_BASIC or ch in REF_EXTENSION for ch in text)
    single, multi = (160, 153) if gsm else (70, 67)
    length = sum(ref_cost(ch, gsm) for ch in text)
    encoding = "GSM-7" if gsm else "UCS-2"
    if length <= single:
        return encoding, length, [text]
    parts: list[str] = []
    current = ""
    used = 0
    for ch in text:
        cost = ref_cost(ch, gsm)
        if used + cost > multi:
            parts.append(current)
            current, used = "", 0
        current += ch
        used += cost
    parts.append(current)
    return encoding, length, parts


GSM_BASIC_CHARS = sorted(REF_BASIC)
EXTENSION_CHARS = sorted(REF_EXTENSION)
UCS2_CHARS = ["ç", "ж", "ü", "\u2019", "\u00a0", "你", "`", "\x1b", "\ufffd"]
ASTRAL_CHARS = ["😀", "𝄞", "👍", "\U0010ffff"]

gsm_texts = st.text(
    alphabet=st.one_of(st.sampled_from(GSM_BASIC_CHARS), st.sampled_from(EXTENSION_CHARS)),
    max_size=1200,
)
# Few distinct characters, mostly 1-wide, so that 2-wide ones land on every boundary.
ext_heavy = st.text(alphabet=st.sampled_from(["a", "a", "a", "€", "{"]), max_size=1000)
ucs2_texts = st.text(
    alphabet=st.one_of(
        st.sampled_from(GSM_BASIC_CHARS),
        st.sampled_from(UCS2_CHARS),
        st.sampled_from(ASTRAL_CHARS),
    ),
    min_size=1,
    max_size=600,
).filter(lambda t: not all(c in REF_BASIC or c in REF_EXTENSION for c in t))
# Latin-1 only (no €, no Greek): the bytes fast path, with escapes on the boundaries.
latin1_ext_heavy = st.text(alphabet=st.sampled_from(["a", "é", "Ø", "{", "\f", "["]), max_size=900)
astral_heavy = st.text(alphabet=st.sampled_from(["ж", "ж", "😀"]), max_size=500)
# Lone surrogates cannot come through the API, but the counter must still be consistent.
lone_surrogates = st.text(
    alphabet=st.one_of(st.sampled_from(["ж", "😀", "a"]), st.characters(categories=["Cs"])),
    max_size=300,
)
any_text = st.one_of(
    gsm_texts,
    ext_heavy,
    latin1_ext_heavy,
    ucs2_texts,
    astral_heavy,
    lone_surrogates,
    st.text(max_size=400),
)


class TestAgainstReference:
    @settings(max_examples=600, deadline=None)
    @given(any_text)
    @example("a" * 152 + "€" + "a" * 152)
    @example("ж" * 66 + "😀" + "ж" * 66)
    def test_count_matches_reference(self, text: str) -> None:
        encoding, length, parts = ref_pack(text)
        assert count_segments(text) == SegmentCount(encoding, len(parts), length)

    @settings(max_examples=400, deadline=None)
    @given(any_text)
    def test_split_matches_reference(self, text: str) -> None:
        encoding, _, parts = ref_pack(text)
        assert split_parts(text) == (encoding, parts)

    @settings(max_examples=300, deadline=None)
    @given(any_text)
    def test_parts_fit_and_rebuild_the_text(self, text: str) -> None:
        encoding, parts = split_parts(text)
        assert "".join(parts) == text
        counted = count_segments(text)
        assert len(parts) == counted.parts
        if counted.parts > 1:
            limit = 153 if encoding == "GSM-7" else 67
            for part in parts:
                assert 0 < count_segments(part).length <= limit
                # Each part keeps the whole message's encoding.
                assert encoding == "UCS-2" or is_gsm7(part)

    @settings(max_examples=300, deadline=None)
    @given(gsm_texts)
    def test_encode_is_one_byte_per_septet_and_round_trips(self, text: str) -> None:
        data = gsm7_encode(text)
        assert len(data) == count_segments(text).length
        assert all(b < 0x80 for b in data)
        assert gsm7_decode(data) == text


class TestGsm7Alphabet:
    def test_every_basic_character_is_one_septet(self) -> None:
        for ch in GSM_BASIC_CHARS:
            assert count_segments(ch) == SegmentCount("GSM-7", 1, 1), repr(ch)

    def test_every_extension_character_is_two_septets(self) -> None:
        for ch in EXTENSION_CHARS:
            assert count_segments(ch) == SegmentCount("GSM-7", 1, 2), repr(ch)
            assert gsm7_encode(ch)[0] == 0x1B

    @pytest.mark.parametrize("ch", ["ç", "`", "\x1b", "\t", "á", "Ä\u0308", "€\u200b", "\u2019"])
    def test_outside_gsm7_is_ucs2(self, ch: str) -> None:
        assert not is_gsm7(ch)
        assert count_segments(ch).encoding == "UCS-2"

    def test_only_capital_c_cedilla(self) -> None:
        assert count_segments("Ça va").encoding == "GSM-7"
        assert count_segments("ça va").encoding == "UCS-2"

    def test_known_codes(self) -> None:
        assert gsm7_encode("@£$Ç\nà€^") == bytes(
            [0x00, 0x01, 0x02, 0x09, 0x0A, 0x7F, 0x1B, 0x65, 0x1B, 0x14]
        )
        escaped = [0x0A, 0x28, 0x29, 0x2F, 0x3C, 0x3D, 0x3E, 0x40]
        assert gsm7_encode("\f{}\\[~]|") == bytes(b for code in escaped for b in (0x1B, code))

    def test_encode_refuses_non_gsm(self) -> None:
        with pytest.raises(ValueError, match="index 2"):
            gsm7_encode("abç")

    def test_decode_unknown_escape_is_space(self) -> None:
        assert gsm7_decode(bytes([0x41, 0x1B, 0x01, 0x42, 0x1B])) == "A B"


def seg(encoding: str, parts: int, length: int) -> SegmentCount:
    return SegmentCount(encoding, parts, length)  # type: ignore[arg-type]


class TestGsm7Boundaries:
    @pytest.mark.parametrize(
        ("length", "parts"),
        [(0, 1), (1, 1), (160, 1), (161, 2), (306, 2), (307, 3), (459, 3), (460, 4)]
        + [(153 * k, k) for k in range(2, 12)]
        + [(153 * k + 1, k + 1) for k in range(2, 12)],
    )
    def test_plain_lengths(self, length: int, parts: int) -> None:
        assert count_segments("a" * length) == seg("GSM-7", parts, length)

    def test_empty_is_one_part(self) -> None:
        assert count_segments("") == seg("GSM-7", 1, 0)
        assert split_parts("") == ("GSM-7", [""])

    def test_extension_char_at_single_part_limit(self) -> None:
        assert count_segments("a" * 158 + "€") == seg("GSM-7", 1, 160)
        assert count_segments("a" * 159 + "€") == seg("GSM-7", 2, 161)
        assert count_segments("€" * 80) == seg("GSM-7", 1, 160)

    def test_extension_char_never_split(self) -> None:
        text = "a" * 152 + "€" + "a" * 152
        assert count_segments(text) == seg("GSM-7", 3, 306)
        assert split_parts(text) == ("GSM-7", ["a" * 152, "€" + "a" * 151, "a"])

    def test_extension_char_ending_a_part_exactly(self) -> None:
        text = "a" * 151 + "€" + "a" * 153
        assert count_segments(text) == seg("GSM-7", 2, 306)
        assert split_parts(text) == ("GSM-7", ["a" * 151 + "€", "a" * 153])

    def test_extension_chars_on_every_boundary(self) -> None:
        # 76 euros fill 152 septets; the 77th would straddle, so each part holds 76.
        assert count_segments("€" * 81) == seg("GSM-7", 2, 162)
        assert count_segments("€" * 152) == seg("GSM-7", 2, 304)
        assert count_segments("€" * 153) == seg("GSM-7", 3, 306)
        assert count_segments("\f" * 153) == seg("GSM-7", 3, 306)

    def test_line_breaks_are_single_septets(self) -> None:
        assert count_segments("\r\n" * 80) == seg("GSM-7", 1, 160)


class TestUcs2Boundaries:
    @pytest.mark.parametrize(
        ("length", "parts"),
        [(1, 1), (70, 1), (71, 2), (134, 2), (135, 3), (201, 3), (202, 4)]
        + [(67 * k, k) for k in range(2, 12)]
        + [(67 * k + 1, k + 1) for k in range(2, 12)],
    )
    def test_plain_lengths(self, length: int, parts: int) -> None:
        assert count_segments("ж" * length) == seg("UCS-2", parts, length)

    def test_one_non_gsm_char_makes_everything_ucs2(self) -> None:
        assert count_segments("a" * 69 + "ç") == seg("UCS-2", 1, 70)
        assert count_segments("a" * 200 + "ç") == seg("UCS-2", 3, 201)
        # Extension characters cost one unit in UCS-2.
        assert count_segments("€" * 69 + "ç") == seg("UCS-2", 1, 70)

    def test_emoji_costs_two_units(self) -> None:
        assert count_segments("😀") == seg("UCS-2", 1, 2)
        assert count_segments("😀" * 35) == seg("UCS-2", 1, 70)
        assert count_segments("ж" * 69 + "😀") == seg("UCS-2", 2, 71)
        assert count_segments("a" * 159 + "😀") == seg("UCS-2", 3, 161)

    def test_emoji_never_split(self) -> None:
        text = "ж" * 66 + "😀" + "ж" * 66
        assert count_segments(text) == seg("UCS-2", 3, 134)
        assert split_parts(text) == ("UCS-2", ["ж" * 66, "😀" + "ж" * 65, "ж"])

    def test_emoji_ending_a_part_exactly(self) -> None:
        text = "ж" * 65 + "😀" + "ж" * 67
        assert count_segments(text) == seg("UCS-2", 2, 134)
        assert split_parts(text) == ("UCS-2", ["ж" * 65 + "😀", "ж" * 67])

    def test_all_emoji(self) -> None:
        # 33 emoji fill 66 units; the 34th would straddle.
        assert count_segments("😀" * 36) == seg("UCS-2", 2, 72)
        assert count_segments("😀" * 66) == seg("UCS-2", 2, 132)
        assert count_segments("😀" * 67) == seg("UCS-2", 3, 134)
