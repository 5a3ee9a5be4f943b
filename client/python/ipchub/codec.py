"""codec - message bodies (PROTOCOL.md section 11), on top of msgpack.

Encoding: None, bool, int, float (float 64), str, bytes, list/tuple,
msgpack.ExtType (as is: an unknown ext received can be sent on), dicts
whose keys are all str (native map), dicts with any other key (ext type 1:
one msgpack map inside the ext payload), datetime (timestamp ext -1).
Decoding: the same, native maps with non-str keys become dicts too
(Python can hold them), ext 1 becomes a dict, ext -1 a timezone-aware
datetime, any other ext type an msgpack.ExtType (surfaced, not an error).
Bodies reaching decode() have passed frame.skip_value; ext 1 payloads are
walked by it again (depth limit 64, section 11) before msgpack sees them.
"""

import datetime

import msgpack

from . import errors, frame

EXT_MAP = 1
EXT_DEPTH = 64


def _prep(v):
    if isinstance(v, dict):
        if all(isinstance(k, str) for k in v):
            return {k: _prep(x) for k, x in v.items()}
        inner = msgpack.packb({_prep(k): _prep(x) for k, x in v.items()},
                              use_bin_type=True, datetime=True)
        return msgpack.ExtType(EXT_MAP, inner)
    if isinstance(v, msgpack.ExtType):   # a namedtuple: must not become an array
        return v
    if isinstance(v, (list, tuple)):
        return [_prep(x) for x in v]
    if isinstance(v, (bytearray, memoryview)):
        return bytes(v)
    if isinstance(v, datetime.datetime) and v.tzinfo is None:
        raise errors.make("INVALID", "a naive datetime has no point in time; give it a tzinfo")
    return v


def encode(value):
    """The msgpack bytes of `value`. Raises errors.INVALID for a value with
    no encoding (and for an int outside -2**63 .. 2**64-1)."""
    try:
        return msgpack.packb(_prep(value), use_bin_type=True, datetime=True)
    except (TypeError, OverflowError, ValueError) as e:
        raise errors.make("INVALID", "no msgpack encoding: %s" % e) from None


def _ext_hook(code, data):
    if code == EXT_MAP:
        if not data or not (0x80 <= data[0] <= 0x8F or data[0] in (0xDE, 0xDF)):
            raise errors.make("BAD_BODY", "ext 1 payload is not a map")
        if frame.skip_value(data, 0, len(data), EXT_DEPTH) != len(data):
            raise errors.make("BAD_BODY", "ext 1 payload: bytes after the map")
        return _unpack(data)
    return msgpack.ExtType(code, data)


def _unpack(data):
    return msgpack.unpackb(data, raw=False, strict_map_key=False, ext_hook=_ext_hook,
                           timestamp=3)


def decode(data):
    """The value of one msgpack body. Raises errors.BAD_BODY."""
    try:
        return _unpack(data)
    except errors.IpchubError:
        raise
    except (ValueError, TypeError, msgpack.UnpackException, msgpack.ExtraData) as e:
        raise errors.make("BAD_BODY", "body does not decode: %s" % e) from None
