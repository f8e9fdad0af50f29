"""A small SMPP 3.4 PDU codec (the subset Clarion speaks), shared by the client and the SMSC
simulator.

Why our own: smpplib is synchronous (a thread per bind) and aiosmpplib is client-only with its
own persistence and correlation machinery; we need both ends (client and an SMSC simulator for
tests and benchmarks) over asyncio, and the subset below is a few hundred lines.

A PDU is a 16-byte header (command_length, command_id, command_status, sequence_number, all
big-endian u32) and a body. Bodies of bind/submit/deliver are fixed fields (C-strings and
octets) followed by optional TLVs (tag u16, length u16, value).
"""

import struct
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any, ClassVar

HEADER = struct.Struct(">IIII")
MAX_PDU = 64 * 1024  # a sane upper bound; real PDUs are a few hundred bytes


class Cmd(IntEnum):
    GENERIC_NACK = 0x80000000
    BIND_RECEIVER = 0x00000001
    BIND_RECEIVER_RESP = 0x80000001
    BIND_TRANSMITTER = 0x00000002
    BIND_TRANSMITTER_RESP = 0x80000002
    SUBMIT_SM = 0x00000004
    SUBMIT_SM_RESP = 0x80000004
    DELIVER_SM = 0x00000005
    DELIVER_SM_RESP = 0x80000005
    UNBIND = 0x00000006
    UNBIND_RESP = 0x80000006
    BIND_TRANSCEIVER = 0x00000009
    BIND_TRANSCEIVER_RESP = 0x80000009
    ENQUIRE_LINK = 0x00000015
    ENQUIRE_LINK_RESP = 0x80000015


class Status(IntEnum):
    ESME_ROK = 0x00
    ESME_RINVMSGLEN = 0x01
    ESME_RINVCMDLEN = 0x02
    ESME_RINVCMDID = 0x03
    ESME_RINVBNDSTS = 0x04
    ESME_RALYBND = 0x05
    ESME_RSYSERR = 0x08
    ESME_RINVSRCADR = 0x0A
    ESME_RINVDSTADR = 0x0B
    ESME_RBINDFAIL = 0x0D
    ESME_RINVPASWD = 0x0E
    ESME_RINVSYSID = 0x0F
    ESME_RMSGQFUL = 0x14
    ESME_RINVESMCLASS = 0x43
    ESME_RTHROTTLED = 0x58
    ESME_RUNKNOWNERR = 0xFF


STATUS_TEXT = {
    Status.ESME_ROK: "ok",
    Status.ESME_RINVMSGLEN: "message length is invalid",
    Status.ESME_RINVCMDLEN: "command length is invalid",
    Status.ESME_RINVCMDID: "invalid command id",
    Status.ESME_RINVBNDSTS: "incorrect bind status for this command",
    Status.ESME_RALYBND: "already bound",
    Status.ESME_RSYSERR: "system error",
    Status.ESME_RINVSRCADR: "invalid source address",
    Status.ESME_RINVDSTADR: "invalid destination address",
    Status.ESME_RBINDFAIL: "bind failed",
    Status.ESME_RINVPASWD: "invalid password",
    Status.ESME_RINVSYSID: "invalid system_id",
    Status.ESME_RMSGQFUL: "message queue full",
    Status.ESME_RINVESMCLASS: "invalid esm_class",
    Status.ESME_RTHROTTLED: "throttling error (the ESME exceeded its allowed message limits)",
    Status.ESME_RUNKNOWNERR: "unknown error",
}


def status_name(code: int) -> str:
    """`ESME_RTHROTTLED (0x00000058): throttling error ...` for logs and error messages."""
    try:
        known = Status(code)
    except ValueError:
        return f"0x{code:08X}"
    return f"{known.name} (0x{code:08X}): {STATUS_TEXT.get(known, '')}".rstrip(": ")


class Tag(IntEnum):
    RECEIPTED_MESSAGE_ID = 0x001E
    SAR_MSG_REF_NUM = 0x020C
    SAR_TOTAL_SEGMENTS = 0x020E
    SAR_SEGMENT_SEQNUM = 0x020F
    SC_INTERFACE_VERSION = 0x0210
    NETWORK_ERROR_CODE = 0x0423
    MESSAGE_PAYLOAD = 0x0424
    MESSAGE_STATE = 0x0427


class MessageState(IntEnum):
    ENROUTE = 1
    DELIVERED = 2
    EXPIRED = 3
    DELETED = 4
    UNDELIVERABLE = 5
    ACCEPTED = 6
    UNKNOWN = 7
    REJECTED = 8


ESM_DELIVERY_RECEIPT = 0x04  # esm_class message type bits (2-5) for an SMSC delivery receipt
ESM_UDHI = 0x40  # short_message starts with a user data header
DC_DEFAULT = 0x00  # SMSC default alphabet (GSM-7, one septet per octet on the wire)
DC_UCS2 = 0x08


class PduError(ValueError):
    """A malformed PDU: the peer is answered generic_nack (or the connection dropped)."""

    def __init__(self, message: str, status: int = Status.ESME_RINVCMDLEN) -> None:
        super().__init__(message)
        self.status = status


class _Reader:
    __slots__ = ("data", "pos")

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def cstring(self, max_len: int) -> str:
        end = self.data.find(b"\x00", self.pos)
        if end < 0:
            raise PduError("C-octet string without its NUL terminator")
        if end - self.pos >= max_len:
            raise PduError(f"C-octet string longer than {max_len - 1} octets")
        value = self.data[self.pos : end].decode("latin-1")
        self.pos = end + 1
        return value

    def u8(self) -> int:
        if self.pos >= len(self.data):
            raise PduError("PDU body truncated")
        value = self.data[self.pos]
        self.pos += 1
        return value

    def octets(self, n: int) -> bytes:
        if self.pos + n > len(self.data):
            raise PduError("PDU body truncated")
        value = self.data[self.pos : self.pos + n]
        self.pos += n
        return value

    def tlvs(self) -> dict[int, bytes]:
        found: dict[int, bytes] = {}
        while self.pos < len(self.data):
            if self.pos + 4 > len(self.data):
                raise PduError("truncated TLV header")
            tag, length = struct.unpack_from(">HH", self.data, self.pos)
            self.pos += 4
            found[tag] = self.octets(length)
        return found


def _cstr(value: str) -> bytes:
    return value.encode("latin-1") + b"\x00"


def _tlv_bytes(tlvs: dict[int, bytes]) -> bytes:
    return b"".join(struct.pack(">HH", tag, len(v)) + v for tag, v in tlvs.items())


@dataclass(slots=True)
class Pdu:
    """Base of every PDU. `status` and `sequence` live in the header."""

    command: ClassVar[Cmd]
    sequence: int = 0
    status: int = 0

    def body(self) -> bytes:
        return b""

    def encode(self) -> bytes:
        body = self.body()
        return HEADER.pack(HEADER.size + len(body), self.command, self.status, self.sequence) + body

    @classmethod
    def decode_body(cls, r: _Reader, sequence: int, status: int) -> "Pdu":
        return cls(sequence=sequence, status=status)


@dataclass(slots=True)
class GenericNack(Pdu):
    command = Cmd.GENERIC_NACK


@dataclass(slots=True)
class EnquireLink(Pdu):
    command = Cmd.ENQUIRE_LINK


@dataclass(slots=True)
class EnquireLinkResp(Pdu):
    command = Cmd.ENQUIRE_LINK_RESP


@dataclass(slots=True)
class Unbind(Pdu):
    command = Cmd.UNBIND


@dataclass(slots=True)
class UnbindResp(Pdu):
    command = Cmd.UNBIND_RESP


@dataclass(slots=True)
class BindTransceiver(Pdu):
    command = Cmd.BIND_TRANSCEIVER
    system_id: str = ""
    password: str = ""
    system_type: str = ""
    interface_version: int = 0x34
    addr_ton: int = 0
    addr_npi: int = 0
    address_range: str = ""

    def body(self) -> bytes:
        return (
            _cstr(self.system_id)
            + _cstr(self.password)
            + _cstr(self.system_type)
            + bytes((self.interface_version, self.addr_ton, self.addr_npi))
            + _cstr(self.address_range)
        )

    @classmethod
    def decode_body(cls, r: _Reader, sequence: int, status: int) -> "Pdu":
        return cls(
            sequence=sequence,
            status=status,
            system_id=r.cstring(16),
            password=r.cstring(9),
            system_type=r.cstring(13),
            interface_version=r.u8(),
            addr_ton=r.u8(),
            addr_npi=r.u8(),
            address_range=r.cstring(41),
        )


@dataclass(slots=True)
class BindTransceiverResp(Pdu):
    command = Cmd.BIND_TRANSCEIVER_RESP
    system_id: str = ""
    tlvs: dict[int, bytes] = field(default_factory=dict)

    def body(self) -> bytes:
        # An error response may omit the body entirely (SMPP 3.4, 4.1.6).
        if self.status and not self.system_id:
            return b""
        return _cstr(self.system_id) + _tlv_bytes(self.tlvs)

    @classmethod
    def decode_body(cls, r: _Reader, sequence: int, status: int) -> "Pdu":
        if not r.data:
            return cls(sequence=sequence, status=status)
        return cls(sequence=sequence, status=status, system_id=r.cstring(16), tlvs=r.tlvs())


@dataclass(slots=True)
class SubmitSm(Pdu):
    """submit_sm; deliver_sm has the same layout (see DeliverSm)."""

    command = Cmd.SUBMIT_SM
    service_type: str = ""
    source_addr_ton: int = 0
    source_addr_npi: int = 0
    source_addr: str = ""
    dest_addr_ton: int = 1
    dest_addr_npi: int = 1
    destination_addr: str = ""
    esm_class: int = 0
    protocol_id: int = 0
    priority_flag: int = 0
    schedule_delivery_time: str = ""
    validity_period: str = ""
    registered_delivery: int = 0
    replace_if_present_flag: int = 0
    data_coding: int = 0
    sm_default_msg_id: int = 0
    short_message: bytes = b""
    tlvs: dict[int, bytes] = field(default_factory=dict)

    def body(self) -> bytes:
        if len(self.short_message) > 254:
            raise PduError("short_message longer than 254 octets", Status.ESME_RINVMSGLEN)
        return b"".join(
            (
                _cstr(self.service_type),
                bytes((self.source_addr_ton, self.source_addr_npi)),
                _cstr(self.source_addr),
                bytes((self.dest_addr_ton, self.dest_addr_npi)),
                _cstr(self.destination_addr),
                bytes((self.esm_class, self.protocol_id, self.priority_flag)),
                _cstr(self.schedule_delivery_time),
                _cstr(self.validity_period),
                bytes(
                    (
                        self.registered_delivery,
                        self.replace_if_present_flag,
                        self.data_coding,
                        self.sm_default_msg_id,
                        len(self.short_message),
                    )
                ),
                self.short_message,
                _tlv_bytes(self.tlvs),
            )
        )

    @classmethod
    def decode_body(cls, r: _Reader, sequence: int, status: int) -> "Pdu":
        values: dict[str, Any] = {
            "service_type": r.cstring(6),
            "source_addr_ton": r.u8(),
            "source_addr_npi": r.u8(),
            "source_addr": r.cstring(21),
            "dest_addr_ton": r.u8(),
            "dest_addr_npi": r.u8(),
            "destination_addr": r.cstring(21),
            "esm_class": r.u8(),
            "protocol_id": r.u8(),
            "priority_flag": r.u8(),
            "schedule_delivery_time": r.cstring(17),
            "validity_period": r.cstring(17),
            "registered_delivery": r.u8(),
            "replace_if_present_flag": r.u8(),
            "data_coding": r.u8(),
            "sm_default_msg_id": r.u8(),
        }
        sm_length = r.u8()
        values["short_message"] = r.octets(sm_length)
        values["tlvs"] = r.tlvs()
        return cls(sequence=sequence, status=status, **values)


@dataclass(slots=True)
class DeliverSm(SubmitSm):
    command = Cmd.DELIVER_SM


@dataclass(slots=True)
class SubmitSmResp(Pdu):
    command = Cmd.SUBMIT_SM_RESP
    message_id: str = ""

    def body(self) -> bytes:
        if self.status and not self.message_id:
            return b""
        return _cstr(self.message_id)

    @classmethod
    def decode_body(cls, r: _Reader, sequence: int, status: int) -> "Pdu":
        if not r.data:
            return cls(sequence=sequence, status=status)
        return cls(sequence=sequence, status=status, message_id=r.cstring(65))


@dataclass(slots=True)
class DeliverSmResp(SubmitSmResp):
    command = Cmd.DELIVER_SM_RESP


PDU_TYPES: dict[int, type[Pdu]] = {
    cls.command: cls
    for cls in (
        GenericNack,
        EnquireLink,
        EnquireLinkResp,
        Unbind,
        UnbindResp,
        BindTransceiver,
        BindTransceiverResp,
        SubmitSm,
        SubmitSmResp,
        DeliverSm,
        DeliverSmResp,
    )
}


def decode(frame: bytes) -> Pdu:
    """Decode one whole PDU (header included). Raises PduError for anything malformed."""
    if len(frame) < HEADER.size:
        raise PduError("PDU shorter than its header")
    length, command_id, status, sequence = HEADER.unpack_from(frame)
    if length != len(frame):
        raise PduError("command_length does not match the PDU")
    cls = PDU_TYPES.get(command_id)
    if cls is None:
        raise PduError(f"unsupported command_id 0x{command_id:08X}", Status.ESME_RINVCMDID)
    return cls.decode_body(_Reader(frame[HEADER.size :]), sequence, status)


def peek_header(frame: bytes) -> tuple[int, int, int, int]:
    """(length, command_id, status, sequence) of a frame, without decoding its body."""
    return HEADER.unpack_from(frame)


async def read_frame(reader: Any) -> bytes:
    """Read one PDU frame from an asyncio StreamReader (IncompleteReadError at EOF)."""
    head = await reader.readexactly(4)
    (length,) = struct.unpack(">I", head)
    if length < HEADER.size or length > MAX_PDU:
        raise PduError(f"absurd command_length {length}")
    return head + await reader.readexactly(length - 4)


def tlv_u8(value: int) -> bytes:
    return bytes((value,))


def tlv_u16(value: int) -> bytes:
    return struct.pack(">H", value)


def tlv_cstr(value: str) -> bytes:
    return _cstr(value)


def tlv_text(value: bytes) -> str:
    """A C-string TLV value (tolerates a missing terminator, as some SMSCs send)."""
    return value.rstrip(b"\x00").decode("latin-1")
