"""core - what the blocking and the asyncio clients share, without I/O.

Model: HubCore holds a connection's protocol state (names, pending call
ids, subscriptions, watches, the WELCOME's facts) and turns validated
frames into events; the two clients (client.Hub with threads, aio.Hub with
asyncio) only move bytes and wake waiters. Everything here is
deterministic and never blocks: `take_frame` pops one bounded, validated
frame off a read buffer, `HubCore._route` classifies a frame from the
broker and calls the client's hooks (`_answer`, `_inbox_put`,
`_serve_later`, `_deliver`, `_notify`), the `*_frame` helpers build what
the calls write and `*_result` helpers interpret their answers.
"""

import asyncio
import os
import socket
import struct

from . import codec, errors, frame
from .frame import KIND, WF_BATCH, WF_NOWAIT

VERSION = "0.1.0"
POLICY = {"drop-oldest": 0, "drop-newest": 1, "disconnect": 2, "block": 3}
PRESENCE_EVENTS = {1: "owned", 2: "unowned", 3: "registered", 4: "released"}
RELEASE_REASONS = {1: "unregister", 2: "disconnect", 3: "revoked"}
RECONNECT_MIN, RECONNECT_MAX = 0.05, 5.0   # IPCHUB_CLIENT_RECONNECT_{MIN,MAX}_MS
REQUEST_GRACE = 0.5                        # IPCHUB_CLIENT_REQUEST_GRACE_MS
READ_CHUNK = 256 * 1024
# Bytes of deliveries read from the socket but not yet taken by the
# application (recv(), Subscription.get(), handlers and callbacks still to
# run) at which the reader stops reading until they fall to half of it:
# past that the broker holds what comes for us and applies its backpressure
# and subscription policies (PROTOCOL.md section 8), instead of this process
# growing without bound. Hub.held_max overrides it per hub.
HELD_MAX = 8 * 1024 * 1024
HELD_ITEM = 128   # what one held delivery counts beyond its body bytes (its objects)
# After these the broker closes the connection and reconnecting cannot help.
NO_RETRY = frozenset(("BAD_FRAME", "TOO_LARGE", "PROTOCOL", "AUTH_FAILED"))
NO_RETRY_CONNECT = frozenset(("AUTH_FAILED", "BAD_KEY", "UNSUPPORTED_VERSION"))


def resolve_socket(explicit=None):
    """Socket path by PROTOCOL.md section 1."""
    if explicit:
        return explicit
    env = os.environ
    if env.get("IPCHUB_SOCKET"):
        return env["IPCHUB_SOCKET"]
    if env.get("XDG_RUNTIME_DIR"):
        return os.path.join(env["XDG_RUNTIME_DIR"], "ipchub.sock")
    return "/tmp/ipchub-%d/ipchub.sock" % os.getuid()


def sock_addr(path):
    """The AF_UNIX address of a socket path ('@name' = abstract)."""
    return "\0" + path[1:] if path.startswith("@") else path


def key_option(key):
    """The key file to use: `key`, else $IPCHUB_KEY; '' = none."""
    if key is None:
        return os.environ.get("IPCHUB_KEY") or None
    return key or None


def open_error(stage, path, exc):
    """The IpchubError for exception exc while connecting (stage 'connect')
    to `path` or in the handshake: NO_BROKER, TIMEOUT, IO, or exc itself."""
    if isinstance(exc, errors.IpchubError):
        return exc
    if isinstance(exc, (socket.timeout, asyncio.TimeoutError)):
        return errors.make("TIMEOUT", "%s %s timed out" % (stage, path))
    if stage == "connect" and isinstance(exc, (FileNotFoundError, ConnectionRefusedError)):
        return errors.make("NO_BROKER", "no broker at %s: %s" % (path, exc))
    return errors.make("IO", "%s %s: %s" % (stage, path, exc))


def initial_names(name, names):
    if name is None:
        name = os.environ.get("IPCHUB_NAME") or None
    return ([name] if name else []) + list(names)


class Sender:
    """Who sent a delivery, as stamped by the broker (trustworthy)."""
    __slots__ = ("name", "id", "uid", "key")

    def __init__(self, f):
        self.name = f.get("from")
        self.id = f.get("from_id")
        self.uid = f.get("uid")
        k = f.get("key")
        self.key = "ed25519:" + k.hex() if k else None

    def __repr__(self):
        return "Sender(name=%r, id=%r, uid=%r)" % (self.name, self.id, self.uid)


class Message:
    """One SEND delivered to this hub: `body`, `sender`, `id`, `to`; `raw`
    is the body's msgpack bytes as they arrived (b'' for no body)."""
    __slots__ = ("body", "sender", "id", "to", "raw")

    def __init__(self, body, sender, id, to, raw=b""):
        self.body, self.sender, self.id, self.to, self.raw = body, sender, id, to, raw

    def __repr__(self):
        return "Message(%r, id=%r, to=%r, sender=%r)" % (self.body, self.id, self.to, self.sender)


class Publication:
    """One publication: `body`, `topic`, `sender`, `sub`, `id`; `gap` is the
    count of publications lost just before it (0 if none)."""
    __slots__ = ("body", "topic", "sender", "sub", "id", "gap")

    def __init__(self, body, topic, sender, sub, id, gap):
        self.body, self.topic, self.sender, self.sub, self.id, self.gap = \
            body, topic, sender, sub, id, gap


class SubscriptionCore:
    """A subscription's state: `pattern`, `policy`, `callback`, `id` (the
    SUBSCRIBE's id on the current connection), `drops` (sum of GAP counts)."""

    def __init__(self, hub, pattern, policy, callback):
        if policy not in POLICY:
            raise errors.make("INVALID", "policy must be one of %s" % ", ".join(POLICY))
        self.hub, self.pattern, self.policy, self.callback = hub, pattern, policy, callback
        self.id = None
        self.drops = 0
        self._pending_gap = 0
        self.active = True

    def _gap(self, count):
        self.drops += count
        self._pending_gap += count

    def _publication(self, f, body):
        g, self._pending_gap = self._pending_gap, 0
        return Publication(decode_opt(body), f["topic"], Sender(f), self, f["id"], g)


class WatchCore:
    """A watch's state: `name`, `owner` (the owner's connection id or None),
    `callback`, `id` (the WATCH's id on the current connection)."""

    def __init__(self, hub, name, callback):
        self.hub, self.name, self.callback = hub, name, callback
        self.id = None
        self.owner = None
        self.active = True
        self.seen = False   # the broker's first answer arrived

    def _apply(self, ev):
        self.seen = True
        self.owner = ev.get("owner") if ev["event"] in ("owned", "registered") else None


def held_size(body):
    return HELD_ITEM + (len(body) if body else 0)


def decode_opt(body):
    return None if body is None else codec.decode(body)


def take_frame(buf, limit):
    """Pop one complete frame off the front of bytearray buf: (fields, body
    or None), or None if incomplete. The length is checked against `limit`
    before anything else is read; header and body go through frame's
    bounded readers. Raises BAD_FRAME, TOO_LARGE, BAD_BODY."""
    if len(buf) < 4:
        return None
    n = struct.unpack_from(">I", buf, 0)[0]
    if n < frame.MIN_FRAME:
        raise errors.make("BAD_FRAME", "broker frame of length %d (< %d)" % (n, frame.MIN_FRAME))
    if n > limit:
        raise errors.make("TOO_LARGE", "broker frame of %d bytes over %d" % (n, limit))
    if len(buf) < 4 + n:
        return None
    fb = bytes(buf[4:4 + n])
    del buf[:4 + n]
    f, off = frame.parse_header(fb, 0, n)
    if off == n:
        return f, None
    if f.get("flags", 0) & WF_BATCH:
        frame.batch_offsets(fb, off, n)
    elif frame.skip_value(fb, off, n) != n:
        raise errors.make("BAD_BODY", "broker frame: bytes after the body")
    return f, fb[off:]


def hello_frame(agent):
    return frame.encode(KIND["HELLO"], {"ver": 1, "ver_min": 1, "agent": agent[:128],
                                        "flags": WF_BATCH})


def check_welcome(f):
    """Raise unless f is an acceptable WELCOME (an ERROR/BYE raises its code)."""
    if f["kind"] in (KIND["ERROR"], KIND["BYE"]):
        raise errors.make(f.get("code", 18), f.get("msg"))
    if f["kind"] != KIND["WELCOME"]:
        raise frame.bad("expected WELCOME, got kind %d" % f["kind"])
    if f["ver"] != 1:
        raise errors.make("UNSUPPORTED_VERSION", "broker chose version %d" % f["ver"])


def check_auth_answer(a):
    if a["kind"] == KIND["ERROR"]:
        raise errors.make(a["code"], a.get("msg"))
    if a["kind"] != KIND["OK"]:
        raise frame.bad("expected OK to AUTH")


def answer_error(f, rid, **kw):
    """The IpchubError an ERROR answer (fields f) to call rid stands for."""
    return errors.make(f["code"], f.get("msg"), id=rid, to=f.get("to"), name=f.get("name"), **kw)


def reply_fields(f, value=None, exc=None):
    """(fields, body) of the REPLY to request f: `value` encoded, or `exc`
    (any exception) as REMOTE_ERROR with its message."""
    fields = {"id": f["id"], "to_id": f["from_id"]}
    if exc is None:
        try:
            return fields, codec.encode(value)
        except errors.IpchubError as e:
            exc = e
    fields["code"] = errors.CODES["REMOTE_ERROR"]
    fields["msg"] = (str(exc) or type(exc).__name__).encode()[:1024].decode("utf-8", "ignore")
    return fields, None


def request_ctx(f):
    return {"id": f["id"], "to": f["to"], "timeout": f.get("timeout", 0)}


def presence_event(f):
    ev = {"name": f["name"], "event": PRESENCE_EVENTS.get(f["event"], "unknown")}
    if "conn" in f:
        ev["owner"] = f["conn"]
    if "reason" in f:
        ev["reason"] = RELEASE_REASONS.get(f["reason"], "unknown")
    return ev


class HubCore:
    """Protocol state shared by client.Hub and aio.Hub (see the module doc).
    Subclasses implement the hooks named in _route."""

    def __init__(self, socket_path, timeout, agent, reconnect, key):
        self.socket_path = resolve_socket(socket_path)
        self.timeout = timeout
        self.agent = agent or "ipchub-python/" + VERSION
        self.reconnect = reconnect
        self.key = key
        self.names = []
        self.conn_id = self.broker_id = None
        self.key_id = None
        self.max_frame = frame.MAX_FRAME_DEFAULT
        self.batch_ok = False
        self.closed = False
        self.close_error = None
        self.handler = None
        self._pending = {}
        self._next_id = 1
        self._subs = {}
        self._watches = {}
        self.held_max = HELD_MAX
        self._held = 0          # bytes held for the application (see HELD_MAX)
        self._paused = False    # the reader waits for the application to take them

    def _hold(self, n):
        """Count n more bytes held for the application; past held_max the
        reader pauses (the subclass's _wait_room)."""
        self._held += n
        if self._held > self.held_max:
            self._paused = True

    def _release(self, n):
        """The application took a delivery counted n; True when the reader
        may read again (held fell to half of held_max)."""
        self._held -= n
        if self._paused and self._held <= self.held_max // 2:
            self._paused = False
            return True
        return False

    def _auth_frame(self, welcome):
        """The AUTH frame answering `welcome` with this hub's key (BAD_KEY)."""
        from . import key as keymod
        sk = keymod.load(self.key)
        self._key_pending = "ed25519:" + bytes(sk.verify_key).hex()
        return keymod.auth_frame(sk, welcome)

    def _welcomed(self, f):
        self.conn_id, self.broker_id = f["conn"], f["broker"]
        self.max_frame = f["max_frame"]
        self.batch_ok = bool(f.get("flags", 0) & WF_BATCH)
        if self.key is not None:
            self.key_id = self._key_pending

    def _new_id(self):
        i = self._next_id
        self._next_id += 1
        return i

    def _closed_error(self):
        # After a fatal error, every later call reports that error's code.
        e = self.close_error
        return errors.make(e.code_number, str(e)) if e is not None else errors.make("CLOSED")

    def _check_out(self, data):
        if self.closed:
            raise self._closed_error()
        if len(data) - 4 > self.max_frame:
            raise errors.make("TOO_LARGE", "frame of %d bytes over max_frame %d"
                              % (len(data) - 4, self.max_frame))

    @staticmethod
    def _send_frame(rid, to, value, nowait):
        return frame.encode(KIND["SEND"], {"id": rid, "to": to,
                                           "flags": WF_NOWAIT if nowait else None},
                            codec.encode(value))

    @staticmethod
    def _publish_frame(rid, topic, value):
        return frame.encode(KIND["PUBLISH"], {"id": rid, "topic": topic}, codec.encode(value))

    @staticmethod
    def _request_args(to, value, timeout, nowait):
        """(fields, body, local wait) of a request; the broker enforces
        `timeout`, the local wait of timeout + REQUEST_GRACE backs it up."""
        ms = int(timeout * 1000) if timeout else 0
        body = codec.encode(value) if value is not None else None
        return ({"to": to, "timeout": ms or None, "flags": WF_NOWAIT if nowait else None},
                body, (timeout + REQUEST_GRACE) if timeout else 0)

    @staticmethod
    def _request_result(f, b, to, with_sender):
        if f.get("code"):
            raise errors.make(f["code"], f.get("msg"), id=f["id"], to=to)
        v = decode_opt(b)
        return (v, Sender(f)) if with_sender else v

    def _sub_frame(self, s):
        """Give subscription s a fresh id (on this connection) and return
        (id, SUBSCRIBE frame)."""
        rid = self._new_id()
        if s.id is not None:
            self._subs.pop(s.id, None)
        s.id = rid
        self._subs[rid] = s
        return rid, frame.encode(KIND["SUBSCRIBE"], {"id": rid, "topic": s.pattern,
                                                     "policy": POLICY[s.policy]})

    def _watch_frame(self, w):
        rid = self._new_id()
        if w.id is not None:
            self._watches.pop(w.id, None)
        w.id = rid
        self._watches[rid] = w
        return rid, frame.encode(KIND["WATCH"], {"id": rid, "name": w.name})

    @staticmethod
    def _peers_result(out):
        for p in out:
            if isinstance(p.get("key"), bytes):
                p["key"] = "ed25519:" + p["key"].hex()
        return out

    def _feed(self, data):
        """Append bytes read from the broker (b'' = end of stream: IO) and
        route every complete frame in the read buffer."""
        if not data:
            raise errors.make("IO", "broker closed the connection")
        self._buf += data
        self._route_buffered()

    def _route_buffered(self):
        while True:
            got = take_frame(self._buf, self.max_frame)
            if got is None:
                return
            self._route(*got)

    def _lost(self, err):
        """The connection failed with err: fail what waits on it (_drop);
        True if a reconnect should follow, else the hub is finished."""
        if self.closed:
            return False
        self._drop(err)
        if not self.reconnect or err.code in NO_RETRY:
            self._finish(err)
            return False
        return True

    def _route(self, f, body):
        """Classify one validated frame from the broker and call the hook:
        _answer(id, f, body) for OK/ERROR/PONG/REPLY, _inbox_put(item, n)
        for messages / send errors / lost names, _serve_later(f, body, n) for
        a REQUEST, _deliver(sub, pub, n) for a publication, _notify(watch,
        ev) for presence (n: what the delivery counts toward held_max, to
        _hold until the application took it, then _release). Raises for
        frames that end the connection."""
        k = f["kind"]
        if k in (KIND["OK"], KIND["ERROR"], KIND["PONG"], KIND["REPLY"]):
            if k == KIND["ERROR"] and f["id"] == 0:
                if f["code"] == 13 and "name" in f:
                    if f["name"] in self.names:
                        self.names.remove(f["name"])
                    self._inbox_put(("name-lost", errors.make(13, f.get("msg"), name=f["name"])),
                                    HELD_ITEM)
                    return
                raise errors.make(f["code"], f.get("msg"))
            if k == KIND["ERROR"] and f.get("ref") in (KIND["SEND"], KIND["PUBLISH"]):
                for i in range(f.get("count") or 1):
                    self._inbox_put(("send-error", errors.make(
                        f["code"], f.get("msg"), id=f["id"] + i, to=f.get("to"))), HELD_ITEM)
                return
            self._answer(f["id"], f, body)
        elif k == KIND["SEND"]:
            sender = Sender(f)
            if f.get("flags", 0) & WF_BATCH:
                for i, (a, b) in enumerate(frame.batch_offsets(body, 0, len(body))):
                    self._inbox_put(("message", Message(codec.decode(body[a:b]), sender,
                                                        f["id"] + i, f["to"], body[a:b])),
                                    HELD_ITEM + b - a)
            else:
                self._inbox_put(("message", Message(decode_opt(body), sender, f["id"], f["to"],
                                                    body or b"")), held_size(body))
        elif k == KIND["REQUEST"]:
            self._serve_later(f, body, held_size(body))
        elif k == KIND["PUBLISH"]:
            s = self._subs.get(f["sub"])
            if s is not None:
                self._deliver(s, s._publication(f, body), held_size(body))
        elif k == KIND["GAP"]:
            s = self._subs.get(f["sub"])
            if s is not None:
                s._gap(f["count"])
        elif k == KIND["PRESENCE"]:
            w = self._watches.get(f["id"])
            if w is not None:
                self._notify(w, presence_event(f))
        elif k == KIND["BYE"]:
            raise errors.make(f.get("code", 18), f.get("msg") or "broker said BYE")
        elif k == KIND["WELCOME"]:
            raise errors.make("PROTOCOL", "second WELCOME from the broker")
        # MONITOR copies only follow a MONITOR this client never sends.
