"""The smart-encoding table and what it replaces."""

from clarion.pricing.segments import count_segments, is_gsm7
from clarion.pricing.smart import LOOK_ALIKES, replacements, smart_encode, ucs2_characters


class TestTable:
    def test_every_entry_replaces_a_ucs2_character_by_gsm7(self):
        assert len(LOOK_ALIKES) >= 30
        for ch, to in LOOK_ALIKES.items():
            assert not is_gsm7(ch), hex(ord(ch))
            assert is_gsm7(to), hex(ord(ch))

    def test_typography_becomes_gsm7(self):
        text = "It\u2019s \u201cfree\u201d \u2013 10\u00a0% off\u2026 \u2018now\u2019"
        out = smart_encode(text)
        assert out == "It's \"free\" - 10 % off... 'now'"
        assert count_segments(text).encoding == "UCS-2"
        assert count_segments(out).encoding == "GSM-7"

    def test_replacements_in_order_of_appearance_with_counts(self):
        got = replacements("a\u2019b\u2014c\u2019\u200bd")
        assert [(r.from_, r.to, r.count) for r in got] == [
            ("\u2019", "'", 2),
            ("\u2014", "-", 1),
            ("\u200b", "", 1),
        ]

    def test_gsm7_text_and_other_characters_are_left_alone(self):
        text = "Caf\u00e9 \u20ac5 [ok] \u00c7a \u00e7a \U0001f600"
        assert smart_encode(text) == text
        assert ucs2_characters(text) == ["\u00e7", "\U0001f600"]
        assert ucs2_characters("plain") == []
