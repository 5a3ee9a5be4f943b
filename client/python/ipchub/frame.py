"""frame - ipchub wire frames (PROTOCOL.md sections 2-4), no sockets.

Writing: `encode(kind, fields, body)` builds a whole frame (length prefix,
header map with the keys in ascending order, body bytes as given).

Reading: `parse_header(buf, start, end)` is the bounded reader for frames
the broker sends. It walks the header map byte by byte (never trusting a
declared count for allocation), checks every key is known, appears once and
has its one allowed msgpack type and size, then checks the kind's direction
table (required / optional keys, body allowed, flag bits). `skip_value()`
walks one msgpack value without allocating or recursing (depth bounded by
MAX_BODY_DEPTH), which validates bodies and finds batch elements. Any
violation raises errors.BAD_FRAME (or TOO_LARGE); the caller treats it as
fatal for the connection. Only bytes that passed these checks go to msgpack.
"""

import struct

import msgpack

from . import errors

# Limits (proto/limits.h).
LEN_PREFIX = 4
MIN_FRAME = 3
MAX_HEADER = 4096
MAX_HEADER_KEYS = 32
MAX_FRAME_DEFAULT = 16 * 1024 * 1024
MAX_BODY_DEPTH = 32
MAX_BATCH = 65536
# Before WELCOME only WELCOME/ERROR/BYE can arrive: all tiny (as the Node client).
MAX_PRE_WELCOME_FRAME = 64 * 1024

KIND = dict(HELLO=1, WELCOME=2, AUTH=3, BYE=4, PING=5, PONG=6, REGISTER=7, UNREGISTER=8,
            OK=9, ERROR=10, SEND=11, REQUEST=12, REPLY=13, CANCEL=14, SUBSCRIBE=20,
            UNSUBSCRIBE=21, PUBLISH=22, GAP=23, WATCH=24, UNWATCH=25, PRESENCE=26,
            MONITOR=27)
KIND_NAMES = {v: k for k, v in KIND.items()}
KEY_NAMES = ("kind", "id", "to", "to_id", "from", "from_id", "name", "code", "msg", "ver",
             "ver_min", "conn", "agent", "broker", "max_frame", "timeout", "flags", "uid",
             "key", "ref", "challenge", "pk", "nonce", "sig", "topic", "policy", "count",
             "sub", "event", "reason", "filter")
KEY = {n: i for i, n in enumerate(KEY_NAMES)}
U8, U32, U64 = 0xFF, 0xFFFFFFFF, 0xFFFFFFFFFFFFFFFF
# Type of each key: ('u', min, max) | ('s', min bytes, max bytes) | ('b', min, max).
KEY_TYPES = (
    ("u", 1, U8), ("u", 0, U64), ("s", 1, 255), ("u", 0, U64), ("s", 1, 255), ("u", 0, U64),
    ("s", 1, 255), ("u", 0, U64), ("s", 0, 1024), ("u", 0, U64), ("u", 0, U64), ("u", 0, U64),
    ("s", 0, 128), ("s", 0, 32), ("u", 0, U32), ("u", 0, U32), ("u", 0, U32), ("u", 0, U32),
    ("b", 1, 32), ("u", 0, U64), ("b", 32, 32), ("b", 32, 32), ("b", 32, 32), ("b", 64, 64),
    ("s", 1, 255), ("u", 0, 3), ("u", 0, U64), ("u", 0, U64), ("u", 0, U8), ("u", 0, U8),
    ("s", 0, 255),
)
WF_NOWAIT = 1
WF_BATCH = 2


def _bits(*names):
    m = 0
    for n in names:
        m |= 1 << KEY[n]
    return m


# Broker-to-client frames: (required, optional, body allowed, flag bits allowed)
# as proto/frame.c's kind rules and client/node/lib/frame.js.
B2C = {
    KIND["WELCOME"]: (_bits("kind", "ver", "conn", "broker", "max_frame"),
                      _bits("challenge", "flags"), False, WF_BATCH),
    KIND["BYE"]: (_bits("kind"), _bits("code", "msg"), False, 0),
    KIND["PONG"]: (_bits("kind", "id"), 0, False, 0),
    KIND["OK"]: (_bits("kind", "id"), 0, False, 0),
    KIND["ERROR"]: (_bits("kind", "id", "code"), _bits("msg", "ref", "to", "name", "count"),
                    False, 0),
    KIND["SEND"]: (_bits("kind", "id", "to", "from_id"), _bits("from", "uid", "key", "flags"),
                   True, WF_BATCH),
    KIND["REQUEST"]: (_bits("kind", "id", "to", "from_id"),
                      _bits("from", "timeout", "uid", "key"), True, 0),
    KIND["REPLY"]: (_bits("kind", "id", "from_id"), _bits("from", "code", "msg", "uid", "key"),
                    True, 0),
    KIND["PUBLISH"]: (_bits("kind", "id", "topic", "sub", "from_id"), _bits("from", "uid", "key"),
                      True, 0),
    KIND["GAP"]: (_bits("kind", "sub", "count"), 0, False, 0),
    KIND["PRESENCE"]: (_bits("kind", "id", "name", "event"), _bits("conn", "reason"), False, 0),
    KIND["MONITOR"]: (_bits("kind", "sub", "conn", "event"), _bits("count"), True, 0),
}


def bad(msg):
    return errors.make("BAD_FRAME", "broker frame: " + msg)


def encode(kind, fields, body=None):
    """A whole client frame. `fields` maps key names to values (None skipped);
    `body` is the encoded body bytes or None (no body)."""
    hdr = {0: kind}
    for name, v in fields.items():
        if v is not None:
            hdr[KEY[name]] = v
    h = msgpack.packb(dict(sorted(hdr.items())), use_bin_type=True)
    n = len(h) + (len(body) if body is not None else 0)
    if body is None:
        return struct.pack(">I", n) + h
    return b"".join((struct.pack(">I", n), h, body))


_UINT_SIZES = {0xCC: 1, 0xCD: 2, 0xCE: 4, 0xCF: 8, 0xD0: 1, 0xD1: 2, 0xD2: 4, 0xD3: 8}
_UNPACK = {1: ">B", 2: ">H", 4: ">I", 8: ">Q"}
_SUNPACK = {1: ">b", 2: ">h", 4: ">i", 8: ">q"}


def _need(end, pos, n):
    if n > end - pos:
        raise bad("truncated header")


def parse_header(buf, start, end):
    """Validate the header of the frame in buf[start:end] (after the length
    prefix). Returns (fields dict keyed by name, body start offset). Raises
    errors.BAD_FRAME on any violation."""
    pos = start
    hend = min(end, start + MAX_HEADER)
    _need(hend, pos, 1)
    b = buf[pos]
    pos += 1
    if 0x80 <= b <= 0x8F:
        n = b & 0x0F
    elif b == 0xDE:
        _need(hend, pos, 2)
        n = struct.unpack_from(">H", buf, pos)[0]
        pos += 2
    elif b == 0xDF:
        _need(hend, pos, 4)
        n = struct.unpack_from(">I", buf, pos)[0]
        pos += 4
    else:
        raise bad("header is not a map")
    if n < 1 or n > MAX_HEADER_KEYS:
        raise bad("header has %d entries (1..%d)" % (n, MAX_HEADER_KEYS))
    fields = {}
    seen = 0
    for _ in range(n):
        k, pos = _read_uint(buf, pos, hend)
        if k is None or k >= len(KEY_TYPES):
            raise bad("unknown or non-integer header key")
        if seen & (1 << k):
            raise bad("duplicate key %s" % KEY_NAMES[k])
        seen |= 1 << k
        t, lo, hi = KEY_TYPES[k]
        if t == "u":
            v, pos = _read_uint(buf, pos, hend)
            if v is None or v < lo or v > hi:
                raise bad("key %s: wrong type or out of range" % KEY_NAMES[k])
        else:
            _need(hend, pos, 1)
            c = buf[pos]
            pos += 1
            if t == "s":
                if 0xA0 <= c <= 0xBF:
                    ln = c & 0x1F
                elif c in (0xD9, 0xDA, 0xDB):
                    sz = {0xD9: 1, 0xDA: 2, 0xDB: 4}[c]
                    _need(hend, pos, sz)
                    ln = struct.unpack_from(_UNPACK[sz], buf, pos)[0]
                    pos += sz
                else:
                    raise bad("key %s: not a str" % KEY_NAMES[k])
            else:
                if c in (0xC4, 0xC5, 0xC6):
                    sz = {0xC4: 1, 0xC5: 2, 0xC6: 4}[c]
                    _need(hend, pos, sz)
                    ln = struct.unpack_from(_UNPACK[sz], buf, pos)[0]
                    pos += sz
                else:
                    raise bad("key %s: not a bin" % KEY_NAMES[k])
            if ln < lo or ln > hi:
                raise bad("key %s: %d bytes (%d..%d)" % (KEY_NAMES[k], ln, lo, hi))
            _need(hend, pos, ln)
            raw = bytes(buf[pos:pos + ln])
            pos += ln
            if t == "s":
                try:
                    v = raw.decode("ascii") if k != KEY["msg"] and k != KEY["agent"] \
                        else raw.decode("utf-8", "replace")
                except UnicodeDecodeError:
                    raise bad("key %s: not ASCII" % KEY_NAMES[k]) from None
            else:
                v = raw
        fields[KEY_NAMES[k]] = v
    if not seen & 1:
        raise bad("no kind")
    kind = fields["kind"]
    rule = B2C.get(kind)
    if rule is None:
        raise bad("kind %d not sent by a broker" % kind)
    req, opt, body_ok, flag_bits = rule
    if seen & req != req:
        raise bad("%s lacks a required key" % KIND_NAMES[kind])
    if seen & ~(req | opt):
        raise bad("%s carries a key it may not" % KIND_NAMES[kind])
    if fields.get("flags", 0) & ~flag_bits:
        raise bad("%s: flag bits not allowed" % KIND_NAMES[kind])
    if pos < end and not body_ok:
        raise bad("%s carries a body" % KIND_NAMES[kind])
    return fields, pos


def _read_uint(buf, pos, end):
    """(value, new pos); value None when the next value is not a non-negative int."""
    _need(end, pos, 1)
    c = buf[pos]
    pos += 1
    if c <= 0x7F:
        return c, pos
    sz = _UINT_SIZES.get(c)
    if sz is None:
        return None, pos
    _need(end, pos, sz)
    if c >= 0xD0:
        v = struct.unpack_from(_SUNPACK[sz], buf, pos)[0]
        if v < 0:
            return None, pos + sz
    else:
        v = struct.unpack_from(_UNPACK[sz], buf, pos)[0]
    return v, pos + sz


# skip_value: bytes of payload after the type byte, by type byte.
_FIXED = {0xC0: 0, 0xC2: 0, 0xC3: 0, 0xCA: 4, 0xCB: 8, 0xCC: 1, 0xCD: 2, 0xCE: 4, 0xCF: 8,
          0xD0: 1, 0xD1: 2, 0xD2: 4, 0xD3: 8, 0xD4: 2, 0xD5: 3, 0xD6: 5, 0xD7: 9, 0xD8: 17}
# length-prefixed: (size of the length, extra bytes after it: ext type)
_LENGTHED = {0xC4: (1, 0), 0xC5: (2, 0), 0xC6: (4, 0), 0xC7: (1, 1), 0xC8: (2, 1),
             0xC9: (4, 1), 0xD9: (1, 0), 0xDA: (2, 0), 0xDB: (4, 0)}
# containers: (size of the count, items per count)
_CONTAINERS = {0xDC: (2, 1), 0xDD: (4, 1), 0xDE: (2, 2), 0xDF: (4, 2)}


def skip_value(buf, pos, end, max_depth=MAX_BODY_DEPTH):
    """End offset of the one msgpack value at buf[pos:end]. No allocation
    beyond a stack of at most max_depth counters, no recursion. Raises
    errors.BAD_BODY when the bytes are not one well-formed value."""
    stack = [1]
    while stack:
        if stack[-1] == 0:
            stack.pop()
            continue
        stack[-1] -= 1
        if pos >= end:
            raise errors.make("BAD_BODY", "body truncated")
        c = buf[pos]
        pos += 1
        if c <= 0x7F or c >= 0xE0:
            continue
        n = 0
        if c <= 0x8F:
            n = (c & 0x0F) * 2
        elif c <= 0x9F:
            n = c & 0x0F
        elif c <= 0xBF:
            pos += c & 0x1F
        elif c in _FIXED:
            pos += _FIXED[c]
        elif c in _LENGTHED:
            sz, extra = _LENGTHED[c]
            if end - pos < sz:
                raise errors.make("BAD_BODY", "body truncated")
            pos += sz + extra + struct.unpack_from(_UNPACK[sz], buf, pos)[0]
        elif c in _CONTAINERS:
            sz, per = _CONTAINERS[c]
            if end - pos < sz:
                raise errors.make("BAD_BODY", "body truncated")
            n = struct.unpack_from(_UNPACK[sz], buf, pos)[0] * per
            pos += sz
        else:
            raise errors.make("BAD_BODY", "byte 0xc1 is not msgpack")
        if pos > end:
            raise errors.make("BAD_BODY", "body truncated")
        if c in (0xDC, 0xDD, 0xDE, 0xDF) or 0x80 <= c <= 0x9F:
            if len(stack) > max_depth:
                raise errors.make("BAD_BODY", "body nested deeper than %d" % max_depth)
            if n:
                stack.append(n)
    return pos


def batch_offsets(buf, pos, end):
    """Start/end offsets of the elements of a batch body (one array of
    1..MAX_BATCH bodies) at buf[pos:end]. Raises errors.BAD_BODY."""
    if pos >= end:
        raise errors.make("BAD_BODY", "batch without a body")
    c = buf[pos]
    if 0x90 <= c <= 0x9F:
        n, p = c & 0x0F, pos + 1
    elif c in (0xDC, 0xDD):
        sz = 2 if c == 0xDC else 4
        if end - pos - 1 < sz:
            raise errors.make("BAD_BODY", "batch truncated")
        n, p = struct.unpack_from(_UNPACK[sz], buf, pos + 1)[0], pos + 1 + sz
    else:
        raise errors.make("BAD_BODY", "batch body is not an array")
    if n < 1 or n > MAX_BATCH:
        raise errors.make("BAD_BODY", "batch of %d messages (1..%d)" % (n, MAX_BATCH))
    out = []
    for _ in range(n):
        q = skip_value(buf, p, end)
        out.append((p, q))
        p = q
    if p != end:
        raise errors.make("BAD_BODY", "bytes after the batch")
    return out
