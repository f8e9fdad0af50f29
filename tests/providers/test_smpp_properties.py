"""Property tests of the SMPP codec and text encoding (hypothesis)."""

import contextlib

from hypothesis import given, settings
from hypothesis import strategies as st

from clarion.pricing.segments import split_parts
from clarion.providers.smpp import pdu as p
from clarion.providers.smpp.encoding import decode_text, encode_text

cstr = st.text(alphabet=st.characters(min_codepoint=1, max_codepoint=255), max_size=15)
octet = st.integers(0, 255)
tlvs = st.dictionaries(st.integers(0, 0xFFFF), st.binary(max_size=300), max_size=4)


@st.composite
def submit_sms(draw: st.DrawFn) -> p.SubmitSm:
    cls = draw(st.sampled_from([p.SubmitSm, p.DeliverSm]))
    return cls(
        sequence=draw(st.integers(1, 0x7FFFFFFF)),
        service_type=draw(st.text(alphabet="ABCDEF", max_size=5)),
        source_addr_ton=draw(octet),
        source_addr_npi=draw(octet),
        source_addr=draw(cstr),
        dest_addr_ton=draw(octet),
        dest_addr_npi=draw(octet),
        destination_addr=draw(cstr),
        esm_class=draw(octet),
        registered_delivery=draw(octet),
        data_coding=draw(octet),
        short_message=draw(st.binary(max_size=254)),
        tlvs=draw(tlvs),
    )


class TestCodecProperties:
    @given(submit_sms())
    @settings(max_examples=300, deadline=None)
    def test_submit_and_deliver_round_trip(self, pdu: p.SubmitSm) -> None:
        assert p.decode(pdu.encode()) == pdu

    @given(st.binary(min_size=16, max_size=400))
    @settings(max_examples=500, deadline=None)
    def test_garbage_is_a_pdu_error_never_a_crash(self, data: bytes) -> None:
        frame = len(data).to_bytes(4, "big") + data[4:]
        with contextlib.suppress(p.PduError):
            p.decode(frame)

    @given(submit_sms(), st.integers(1, 60))
    @settings(max_examples=200, deadline=None)
    def test_truncated_frames_are_refused(self, pdu: p.SubmitSm, cut: int) -> None:
        frame = pdu.encode()
        if cut >= len(frame) - 16:
            return
        short = frame[:-cut]
        short = len(short).to_bytes(4, "big") + short[4:]
        try:
            decoded = p.decode(short)
        except p.PduError:
            return
        assert decoded != pdu  # a shorter frame can only decode to something else


class TestTextProperties:
    @given(st.text(max_size=700))
    @settings(max_examples=400, deadline=None)
    def test_parts_rebuild_the_text_within_limits(self, text: str) -> None:
        encoded = encode_text(text)
        _, parts = split_parts(text)
        assert len(encoded.parts) == len(parts)
        rebuilt = "".join(decode_text(part, encoded.data_coding) for part in encoded.parts)
        assert rebuilt == text
        limit = 140 if len(parts) == 1 else 134  # octets (153 septets = 153 octets unpacked)
        if encoded.data_coding == p.DC_DEFAULT:
            limit = 160 if len(parts) == 1 else 153
        assert all(len(part) <= limit for part in encoded.parts)
        assert all(not part.endswith(b"\x1b") for part in encoded.parts if encoded.data_coding == 0)
