"""Body samples for PROTOCOL.md section 11 with their exact msgpack bytes
(hex): every msgpack type and width, as the Python codec writes them. Used
by test_unit.py (golden encoding / decoding) and test_interop.py (the same
bytes must cross to the C and Node clients and back unchanged)."""

import datetime

import msgpack

UTC = datetime.timezone.utc


def _ts64(sec, ns):
    return "d7ff" + ((ns << 34) | sec).to_bytes(8, "big").hex()


# (name, value, hex as Python writes it, hex as Node writes it when it differs)
SAMPLES = [
    ("nil", None, "c0", None),
    ("true", True, "c3", None),
    ("false", False, "c2", None),
    ("fixint 0", 0, "00", None),
    ("fixint 127", 127, "7f", None),
    ("uint8", 128, "cc80", None),
    ("uint8 max", 255, "ccff", None),
    ("uint16", 256, "cd0100", None),
    ("uint16 max", 65535, "cdffff", None),
    ("uint32", 65536, "ce00010000", None),
    ("uint32 max", 2 ** 32 - 1, "ceffffffff", None),
    ("uint64", 2 ** 32, "cf0000000100000000", None),
    ("uint64 2^53-1", 2 ** 53 - 1, "cf001fffffffffffff", None),
    ("uint64 max", 2 ** 64 - 1, "cfffffffffffffffff", None),
    ("negative fixint -1", -1, "ff", None),
    ("negative fixint -32", -32, "e0", None),
    ("int8", -33, "d0df", None),
    ("int8 min", -128, "d080", None),
    ("int16", -129, "d1ff7f", None),
    ("int16 min", -32768, "d18000", None),
    ("int32", -32769, "d2ffff7fff", None),
    ("int32 min", -2 ** 31, "d280000000", None),
    ("int64", -2 ** 31 - 1, "d3ffffffff7fffffff", None),
    ("int64 min", -2 ** 63, "d38000000000000000", None),
    ("float 0.5", 0.5, "cb3fe0000000000000", None),
    ("float -1.25", -1.25, "cbbff4000000000000", None),
    ("float pi", 3.141592653589793, "cb400921fb54442d18", None),
    ("float 1e300", 1e300, "cb7e37e43c8800759c", None),
    ("fixstr empty", "", "a0", None),
    ("fixstr", "a", "a161", None),
    ("fixstr utf-8", "h\u00e9llo \u20ac", "aa68c3a96c6c6f20e282ac", None),
    ("str8", "x" * 40, "d928" + "78" * 40, None),
    ("str16", "y" * 300, "da012c" + "79" * 300, None),
    ("str32", "\u65e5\u672c\u8a9e" * 30000,
     "db00041eb0" + "e697a5e69cace8aa9e" * 30000, None),
    ("bin8 empty", b"", "c400", None),
    ("bin8", bytes([0, 1, 2, 0xFE, 0xFF]), "c405000102feff", None),
    ("bin32", b"\x07" * 70000, "c600011170" + "07" * 70000, None),
    ("fixarray empty", [], "90", None),
    ("nested arrays", [1, [2, [3, []]]], "920192029203" + "90", None),
    ("array16", list(range(16)), "dc0010" + "".join("%02x" % i for i in range(16)), None),
    ("fixmap empty", {}, "80", None),
    ("nested maps", {"a": 1, "nested": {"b": [True, None, "c"], "d": {"e": {}}}},
     "82a16101a66e657374656482a16293c3c0a163a16481a16580", None),
    ("map16", {"k%02d" % i: i for i in range(16)},
     "de0010" + "".join("a36b%02x%02x%02x" % (0x30 + i // 10, 0x30 + i % 10, i)
                        for i in range(16)), None),
    ("ext 1 typed keys", {1: "a"}, "d601" + "8101a161", "c90000000401" + "8101a161"),
    ("ext 1 mixed keys", {1: "one", "two": 2}, "c70b01" + "8201a36f6e65a374776f02",
     "c90000000b01" + "8201a36f6e65a374776f02"),
    ("timestamp 32", datetime.datetime.fromtimestamp(1700000000, UTC), "d6ff6553f100", None),
    ("timestamp 64", datetime.datetime.fromtimestamp(1700000000, UTC).replace(
        microsecond=123000), _ts64(1700000000, 123000000), None),
    ("unknown ext 5", msgpack.ExtType(5, b"ext"), "c70305657874", None),
]
