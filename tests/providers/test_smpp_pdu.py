"""The SMPP PDU codec: byte-exact encodings, round trips, malformed input."""

import pytest

from clarion.providers.smpp import pdu as p
from clarion.providers.smpp.encoding import decode_text, encode_text, gsm7_decode


class TestHeader:
    def test_enquire_link_is_the_16_byte_header_of_the_spec(self) -> None:
        assert p.EnquireLink(sequence=1).encode() == bytes.fromhex(
            "00000010000000150000000000000001"
        )

    def test_generic_nack_carries_its_status(self) -> None:
        frame = p.GenericNack(sequence=7, status=p.Status.ESME_RINVCMDID).encode()
        assert frame == bytes.fromhex("00000010800000000000000300000007")
        decoded = p.decode(frame)
        assert isinstance(decoded, p.GenericNack) and decoded.status == 3

    def test_bind_transceiver_bytes(self) -> None:
        frame = p.BindTransceiver(sequence=2, system_id="smppclient1", password="password").encode()
        body = b"smppclient1\x00password\x00\x00\x34\x00\x00\x00"
        assert (
            frame
            == (16 + len(body)).to_bytes(4, "big")
            + bytes.fromhex("000000090000000000000002")
            + body
        )


class TestRoundTrip:
    def test_submit_sm_with_tlvs(self) -> None:
        pdu = p.SubmitSm(
            sequence=99,
            source_addr_ton=5,
            source_addr="Clarion",
            destination_addr="33612345678",
            esm_class=p.ESM_UDHI,
            registered_delivery=1,
            data_coding=p.DC_UCS2,
            short_message=b"\x05\x00\x03\x2a\x02\x01" + "é".encode("utf-16-be"),
            tlvs={p.Tag.SAR_MSG_REF_NUM: p.tlv_u16(300), p.Tag.MESSAGE_PAYLOAD: b"x" * 300},
        )
        decoded = p.decode(pdu.encode())
        assert decoded == pdu

    def test_deliver_sm_receipt(self) -> None:
        pdu = p.DeliverSm(
            sequence=3,
            esm_class=p.ESM_DELIVERY_RECEIPT,
            short_message=b"id:1 stat:DELIVRD err:000",
            tlvs={p.Tag.RECEIPTED_MESSAGE_ID: p.tlv_cstr("0A1B"), p.Tag.MESSAGE_STATE: b"\x02"},
        )
        decoded = p.decode(pdu.encode())
        assert isinstance(decoded, p.DeliverSm)
        assert p.tlv_text(decoded.tlvs[p.Tag.RECEIPTED_MESSAGE_ID]) == "0A1B"
        assert decoded.tlvs[p.Tag.MESSAGE_STATE] == b"\x02"

    def test_error_submit_sm_resp_has_no_body(self) -> None:
        frame = p.SubmitSmResp(sequence=4, status=p.Status.ESME_RTHROTTLED).encode()
        assert len(frame) == 16
        decoded = p.decode(frame)
        assert isinstance(decoded, p.SubmitSmResp)
        assert decoded.status == 0x58 and decoded.message_id == ""

    def test_bind_resp_with_interface_version(self) -> None:
        resp = p.BindTransceiverResp(
            sequence=1, system_id="smsc", tlvs={p.Tag.SC_INTERFACE_VERSION: b"\x34"}
        )
        assert p.decode(resp.encode()) == resp


class TestMalformed:
    def test_length_mismatch(self) -> None:
        frame = bytearray(p.EnquireLink(sequence=1).encode())
        frame[3] = 0x20
        with pytest.raises(p.PduError):
            p.decode(bytes(frame))

    def test_unknown_command(self) -> None:
        frame = bytes.fromhex("00000010000000ff0000000000000001")
        with pytest.raises(p.PduError) as info:
            p.decode(frame)
        assert info.value.status == p.Status.ESME_RINVCMDID

    def test_missing_terminator(self) -> None:
        body = b"abc"
        frame = (
            (16 + len(body)).to_bytes(4, "big") + bytes.fromhex("000000090000000000000001") + body
        )
        with pytest.raises(p.PduError):
            p.decode(frame)

    def test_truncated_tlv(self) -> None:
        frame = p.SubmitSm(sequence=1, destination_addr="1").encode() + b"\x04\x24\x00"
        frame = len(frame).to_bytes(4, "big") + frame[4:]
        with pytest.raises(p.PduError):
            p.decode(frame)

    def test_short_message_over_254_octets_is_refused(self) -> None:
        with pytest.raises(p.PduError):
            p.SubmitSm(short_message=b"x" * 255).encode()

    def test_status_names_are_readable(self) -> None:
        assert p.status_name(0x0E).startswith("ESME_RINVPASWD (0x0000000E)")
        assert p.status_name(0x1234) == "0x00001234"


class TestText:
    def test_gsm7_with_extension_characters(self) -> None:
        encoded = encode_text("Price: 5€ [ok]")
        assert encoded.data_coding == p.DC_DEFAULT
        assert b"\x1b\x65" in encoded.whole and b"\x1b\x3c" in encoded.whole
        assert gsm7_decode(encoded.whole) == "Price: 5€ [ok]"

    def test_one_non_gsm_character_makes_it_ucs2(self) -> None:
        encoded = encode_text("Привет")
        assert encoded.data_coding == p.DC_UCS2
        assert decode_text(encoded.whole, p.DC_UCS2) == "Привет"

    def test_gsm7_160_is_one_part_161_is_two_of_153_max(self) -> None:
        assert len(encode_text("a" * 160).parts) == 1
        parts = encode_text("a" * 161).parts
        assert [len(x) for x in parts] == [153, 8]

    def test_extension_character_is_never_split(self) -> None:
        parts = encode_text("a" * 152 + "€" + "b" * 10).parts
        assert parts[0] == b"a" * 152  # the escape pair moved whole to the next part
        assert parts[1].startswith(b"\x1b\x65")
        assert all(not x.endswith(b"\x1b") for x in parts)

    def test_ucs2_70_is_one_part_71_is_two(self) -> None:
        assert len(encode_text("é" * 10 + "ж" * 60).parts) == 1
        parts = encode_text("ж" * 71).parts
        assert [len(x) // 2 for x in parts] == [67, 4]

    def test_surrogate_pair_is_never_split(self) -> None:
        text = "ж" * 66 + "😀" + "ж" * 5
        parts = encode_text(text).parts
        assert len(parts[0]) == 66 * 2  # the emoji (2 units) did not fit in 67
        assert all(len(x) <= 134 for x in parts)
        assert "".join(x.decode("utf-16-be") for x in parts) == text
