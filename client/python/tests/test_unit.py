"""Unit tests: frame writer and bounded reader, body walker, batches, codec."""

import datetime
import struct

import msgpack
import pytest

from ipchub import codec, errors, frame
from ipchub.core import take_frame as _take_frame


def hdr(d):
    return msgpack.packb(d, use_bin_type=True)


def framed(h, body=b""):
    return struct.pack(">I", len(h) + len(body)) + h + body


def test_encode_hello_ascending_keys():
    f = frame.encode(1, {"ver_min": 1, "ver": 1})
    assert f == bytes.fromhex("00000007") + bytes([0x83, 0, 1, 9, 1, 10, 1])


def test_parse_ok_any_order_and_int_encodings():
    h = b"\x82" + b"\x01\xcf" + (5).to_bytes(8, "big") + b"\x00\xd0\x09"
    f, off = frame.parse_header(h, 0, len(h))
    assert f == {"id": 5, "kind": 9} and off == len(h)


@pytest.mark.parametrize("raw,why", [
    (hdr([9, 1]), "not a map"),
    (hdr({}), "entries"),
    (hdr({0: 9, 1: 1, 99: 1}), "unknown"),
    (hdr({0: 9, "id": 1}), "unknown"),
    (hdr({0: 9}), "required"),
    (hdr({0: 9, 1: -1}), "wrong type"),
    (hdr({0: 9, 1: 1, 2: "x"}), "may not"),
    (hdr({0: 5, 1: 1}), "not sent by a broker"),
    (hdr({0: 10, 1: 1, 7: "x"}), "wrong type"),
    (hdr({0: 11, 1: 1, 2: "a", 5: 1, 16: 1}), "flag"),
    (hdr({0: 9, 1: 1}) + b"\x01", "body"),
    (b"\x82\x00\x09\x00\x09", "duplicate"),
    (b"\x81\x00", "truncated"),
    (b"\x83\x00\x0b\x01\x01\x02\xa3ab", "truncated"),
])
def test_parse_rejects(raw, why):
    with pytest.raises(errors.BAD_FRAME):
        frame.parse_header(raw, 0, len(raw))


def test_parse_header_size_bounded():
    big = b"\x82\x00\x0a\x08\xdb" + struct.pack(">I", 5000) + b"a" * 5000
    with pytest.raises(errors.BAD_FRAME):
        frame.parse_header(big, 0, len(big))


def test_take_frame_lengths():
    with pytest.raises(errors.BAD_FRAME):
        _take_frame(bytearray(b"\x00\x00\x00\x02ab"), 100)
    with pytest.raises(errors.TOO_LARGE):
        _take_frame(bytearray(b"\x00\x00\x01\x00"), 100)
    assert _take_frame(bytearray(b"\x00\x00\x00\x05\x81"), 100) is None
    buf = bytearray(framed(hdr({0: 9, 1: 3})) + b"\x00")
    f, body = _take_frame(buf, 100)
    assert f == {"kind": 9, "id": 3} and body is None and buf == bytearray(b"\x00")


def test_skip_value_depth_and_garbage():
    ok = msgpack.packb([[[1, {"a": b"x"}]]])
    assert frame.skip_value(ok, 0, len(ok)) == len(ok)
    deep = b"\x91" * 33 + b"\x01"
    with pytest.raises(errors.BAD_BODY):
        frame.skip_value(deep, 0, len(deep))
    d32 = b"\x91" * 32 + b"\x01"
    assert frame.skip_value(d32, 0, len(d32)) == len(d32)
    for bad in (b"\xc1", b"\xdd\xff\xff\xff\xff", b"\xa5ab", b"\xc4\x10a"):
        with pytest.raises(errors.BAD_BODY):
            frame.skip_value(bad, 0, len(bad))


def test_batch_offsets():
    els = [msgpack.packb(v) for v in (1, "two", [3])]
    body = b"\xdd" + struct.pack(">I", 3) + b"".join(els)
    offs = frame.batch_offsets(body, 0, len(body))
    assert [body[a:b] for a, b in offs] == els
    for bad in (b"\x90", b"\x01", b"\x92\x01", b"\x91\x01\x02"):
        with pytest.raises(errors.BAD_BODY):
            frame.batch_offsets(bad, 0, len(bad))


def test_codec_ext_map_bytes_as_node():
    # PROTOCOL.md section 11 example: Map([[1, "a"]]), written by Node as ext 32.
    node = bytes.fromhex("c90000000401" "8101a161")
    assert codec.decode(node) == {1: "a"}
    enc = codec.encode({1: "a"})
    assert codec.decode(enc) == {1: "a"}
    assert codec.encode({"a": 1}) == b"\x81\xa1a\x01"


def test_codec_values_round_trip():
    t = datetime.datetime(2024, 5, 6, 7, 8, 9, 123000, tzinfo=datetime.timezone.utc)
    v = {"n": None, "b": True, "i": -5, "big": 2 ** 64 - 1, "f": 1.5, "s": "é",
         "bin": b"\x00\x01", "arr": [1, [2]], "t": t, "m": {b"k": {2: 3}}}
    assert codec.decode(codec.encode(v)) == v
    assert codec.encode(1.0)[0] == 0xCB


def test_codec_errors():
    with pytest.raises(errors.INVALID):
        codec.encode(object())
    with pytest.raises(errors.INVALID):
        codec.encode(2 ** 64)
    with pytest.raises(errors.BAD_BODY):
        codec.decode(bytes.fromhex("c7020101c0"))  # ext 1 whose payload is not a map
    with pytest.raises(errors.BAD_BODY):
        codec.decode(bytes.fromhex("c70301800102"))  # bytes after the map
    assert codec.decode(bytes.fromhex("d40705")) == msgpack.ExtType(7, b"\x05")


def test_error_classes():
    e = errors.make(8, "x", id=3)
    assert isinstance(e, errors.NO_SUCH_PEER) and isinstance(e, errors.IpchubError)
    assert e.code == "NO_SUCH_PEER" and e.code_number == 8 and e.id == 3
    assert errors.make("BAD_KEY").code_number == 71
    assert errors.make(200).code == "UNKNOWN"


def test_section_11_golden_bytes():
    from samples import SAMPLES
    for name, value, hx, _ in SAMPLES:
        assert codec.encode(value).hex() == hx, name
        assert codec.decode(bytes.fromhex(hx)) == value, name


def test_section_11_other_forms_accepted():
    # Any ext length form (the Node client writes ext 32), any int width, float 32.
    from samples import SAMPLES
    for name, value, _, node_hx in SAMPLES:
        if node_hx:
            assert codec.decode(bytes.fromhex(node_hx)) == value, name
    assert codec.decode(bytes.fromhex("cf0000000000000005")) == 5
    assert codec.decode(bytes.fromhex("d3ffffffffffffffff")) == -1
    assert codec.decode(bytes.fromhex("ca3fc00000")) == 1.5
    with pytest.raises(errors.BAD_BODY):
        codec.decode(bytes.fromhex("d6019101a161"))   # ext 1 whose payload is not a map
