"""client - the blocking ipchub client (Hub).

Model: one socket, one reader thread and one dispatch thread per Hub. The
reader thread owns the inbound side: it reads frames into a buffer bounded
by the broker's max_frame, validates each with frame.parse_header before
any byte reaches msgpack, and routes it: answers (OK, ERROR, PONG, REPLY)
complete the pending call with the same id; deliveries (SEND, REQUEST,
PUBLISH, GAP, PRESENCE) go to the dispatch queue, whose thread runs
handlers and callbacks (so a handler may itself call request()), or to the
inbox read by recv(). Callers write frames under a lock with blocking
writes; since the reader thread keeps reading meanwhile, a broker that
parks us (backpressure, PROTOCOL.md section 8) cannot deadlock us. A
malformed frame or a lost connection fails every pending call with a typed
error (BAD_FRAME / TOO_LARGE / IO) and, with reconnect on, the reader
thread connects again, re-registers the names and restores subscriptions
and watches (their objects stay valid), as the Node client does.
"""

import collections
import os
import queue
import socket
import struct
import threading
import time

from . import codec, errors, frame
from .frame import KIND, WF_BATCH, WF_NOWAIT

VERSION = "0.1.0"
POLICY = {"drop-oldest": 0, "drop-newest": 1, "disconnect": 2, "block": 3}
PRESENCE_EVENTS = {1: "owned", 2: "unowned", 3: "registered", 4: "released"}
RELEASE_REASONS = {1: "unregister", 2: "disconnect", 3: "revoked"}
RECONNECT_MIN, RECONNECT_MAX = 0.05, 5.0   # IPCHUB_CLIENT_RECONNECT_{MIN,MAX}_MS
REQUEST_GRACE = 0.5                        # IPCHUB_CLIENT_REQUEST_GRACE_MS
READ_CHUNK = 256 * 1024


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


def _addr(path):
    return "\0" + path[1:] if path.startswith("@") else path


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
    """One SEND delivered to this hub: `body`, `sender`, `id`, `to`."""
    __slots__ = ("body", "sender", "id", "to")

    def __init__(self, body, sender, id, to):
        self.body, self.sender, self.id, self.to = body, sender, id, to

    def __repr__(self):
        return "Message(%r, id=%r, to=%r, sender=%r)" % (self.body, self.id, self.to, self.sender)


class Publication:
    """One publication: `body`, `topic`, `sender`, `sub`, `id`; `gap` is the
    count of publications lost just before it (0 if none)."""
    __slots__ = ("body", "topic", "sender", "sub", "id", "gap")

    def __init__(self, body, topic, sender, sub, id, gap):
        self.body, self.topic, self.sender, self.sub, self.id, self.gap = \
            body, topic, sender, sub, id, gap


class Subscription:
    """A live subscription. Publications go to `callback(pub)` if given, else
    to `get(timeout)`. `drops` sums the GAP counts."""

    def __init__(self, hub, pattern, policy, callback):
        self.hub, self.pattern, self.policy, self.callback = hub, pattern, policy, callback
        self.id = None
        self.drops = 0
        self._pending_gap = 0
        self._q = queue.Queue()
        self.active = True

    def get(self, timeout=None):
        """Next publication; raises errors.TIMEOUT, or errors.CLOSED when the hub closed."""
        try:
            p = self._q.get(timeout=timeout)
        except queue.Empty:
            raise errors.make("TIMEOUT", "no publication within %rs" % timeout) from None
        if p is None:
            raise errors.make("CLOSED")
        return p

    def unsubscribe(self):
        if self.active:
            self.active = False
            self.hub._subs.pop(self.id, None)
            self.hub._call(KIND["UNSUBSCRIBE"], {"sub": self.id})


class Watch:
    """A live watch on a name. `owner` is the owner's connection id or None;
    `callback(event_dict)` sees every presence event."""

    def __init__(self, hub, name, callback):
        self.hub, self.name, self.callback = hub, name, callback
        self.id = None
        self.owner = None
        self.active = True
        self._cond = threading.Condition()

    def _event(self, ev):
        with self._cond:
            if ev["event"] in ("owned", "registered"):
                self.owner = ev.get("owner")
            else:
                self.owner = None
            self._cond.notify_all()

    def unwatch(self):
        if self.active:
            self.active = False
            self.hub._watches.pop(self.id, None)
            self.hub._call(KIND["UNWATCH"], {"sub": self.id})


class _Pending:
    __slots__ = ("event", "fields", "body", "error")

    def __init__(self):
        self.event = threading.Event()
        self.fields = self.body = self.error = None


class Hub:
    """A connection to ipchubd. Create with ipchub.connect()."""

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
        self._wlock = threading.Lock()
        self._plock = threading.Lock()
        self._pending = {}
        self._next_id = 1
        self._subs = {}
        self._watches = {}
        self._inbox = queue.Queue()
        self._dispatch = queue.Queue()
        self._sock = None
        self._buf = bytearray()
        self._up = threading.Event()

    # ------------------------------------------------------------ connection

    def _open(self):
        """Connect and handshake (and authenticate). Raises IpchubError."""
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
        s.settimeout(self.timeout)
        try:
            s.connect(_addr(self.socket_path))
        except (FileNotFoundError, ConnectionRefusedError) as e:
            s.close()
            raise errors.make("NO_BROKER", "no broker at %s: %s" % (self.socket_path, e)) from None
        except OSError as e:
            s.close()
            raise errors.make("IO", "connect %s: %s" % (self.socket_path, e)) from None
        buf = bytearray()
        try:
            s.sendall(frame.encode(KIND["HELLO"], {"ver": 1, "ver_min": 1, "agent": self.agent[:128],
                                                   "flags": WF_BATCH}))
            f, _ = self._read_frame_sync(s, buf, frame.MAX_PRE_WELCOME_FRAME)
            if f["kind"] == KIND["ERROR"] or f["kind"] == KIND["BYE"]:
                raise errors.make(f.get("code", 18), f.get("msg"))
            if f["kind"] != KIND["WELCOME"]:
                raise frame.bad("expected WELCOME, got kind %d" % f["kind"])
            if f["ver"] != 1:
                raise errors.make("UNSUPPORTED_VERSION", "broker chose version %d" % f["ver"])
            if self.key is not None:
                from . import key as keymod
                sk = keymod.load(self.key)
                s.sendall(keymod.auth_frame(sk, f))
                a, _ = self._read_frame_sync(s, buf, frame.MAX_PRE_WELCOME_FRAME)
                if a["kind"] == KIND["ERROR"]:
                    raise errors.make(a["code"], a.get("msg"))
                if a["kind"] != KIND["OK"]:
                    raise frame.bad("expected OK to AUTH")
                self.key_id = "ed25519:" + bytes(sk.verify_key).hex()
        except socket.timeout:
            s.close()
            raise errors.make("TIMEOUT", "handshake timed out") from None
        except OSError as e:
            s.close()
            raise errors.make("IO", "handshake: %s" % e) from None
        except errors.IpchubError:
            s.close()
            raise
        s.settimeout(None)
        self.conn_id, self.broker_id = f["conn"], f["broker"]
        self.max_frame = f["max_frame"]
        self.batch_ok = bool(f.get("flags", 0) & WF_BATCH)
        self._sock = s
        self._buf = buf

    @staticmethod
    def _read_frame_sync(s, buf, limit):
        while True:
            got = _take_frame(buf, limit)
            if got is not None:
                return got[0], got[1]
            data = s.recv(65536)
            if not data:
                raise errors.make("IO", "broker closed the connection in the handshake")
            buf += data

    def _start(self):
        self._up.set()
        self._reader = threading.Thread(target=self._read_loop, name="ipchub-reader", daemon=True)
        self._disp = threading.Thread(target=self._dispatch_loop, name="ipchub-dispatch",
                                      daemon=True)
        self._reader.start()
        self._disp.start()

    def _read_loop(self):
        while True:
            sock = self._sock
            err = None
            try:
                while True:
                    got = _take_frame(self._buf, self.max_frame)
                    if got is not None:
                        self._route(*got)
                        continue
                    data = sock.recv(READ_CHUNK)
                    if not data:
                        raise errors.make("IO", "broker closed the connection")
                    self._buf += data
            except errors.IpchubError as e:
                err = e
            except OSError as e:
                err = errors.make("IO", str(e))
            if self.closed:
                return
            self._drop(err)
            if not self.reconnect or err.code_number in (1, 2, 4, 14):
                self._finish(err)
                return
            if not self._reconnect():
                return

    def _drop(self, err):
        self._up.clear()
        try:
            self._sock.close()
        except OSError:
            pass
        with self._plock:
            pend, self._pending = self._pending, {}
        for p in pend.values():
            p.error = errors.make(err.code_number, str(err))
            p.event.set()

    def _reconnect(self):
        delay = RECONNECT_MIN
        while not self.closed:
            time.sleep(delay)
            try:
                self._open()
            except errors.IpchubError as e:
                if e.code in ("AUTH_FAILED", "BAD_KEY", "UNSUPPORTED_VERSION"):
                    self._finish(e)
                    return False
                delay = min(delay * 2, RECONNECT_MAX)
                continue
            self._up.set()
            threading.Thread(target=self._restore, daemon=True).start()
            return True
        return False

    def _restore(self):
        # Re-register names, re-subscribe and re-watch on the new connection.
        for n in list(self.names):
            try:
                self._call(KIND["REGISTER"], {"name": n})
            except errors.IpchubError:
                self.names.remove(n)
        for s in list(self._subs.values()):
            self._subscribe_on_wire(s)
        for w in list(self._watches.values()):
            self._watch_on_wire(w)

    def _finish(self, err):
        self.closed = True
        self.close_error = err
        self._up.set()
        self._dispatch.put(None)
        self._inbox.put(None)
        for s in list(self._subs.values()):
            s._q.put(None)

    # --------------------------------------------------------------- routing

    def _route(self, f, body_off, buf_frame):
        k = f["kind"]
        body = buf_frame[body_off:] if body_off < len(buf_frame) else None
        if k in (KIND["OK"], KIND["ERROR"], KIND["PONG"], KIND["REPLY"]):
            if k == KIND["ERROR"] and f["id"] == 0:
                self._async_error(f)
                return
            if k == KIND["ERROR"] and f.get("ref") in (KIND["SEND"], KIND["PUBLISH"]):
                n = f.get("count") or 1
                for i in range(n):
                    e = errors.make(f["code"], f.get("msg"), id=f["id"] + i, to=f.get("to"))
                    self._inbox.put(("send-error", e))
                return
            with self._plock:
                p = self._pending.pop(f["id"], None)
            if p is None:
                return  # an answer to a call that gave up (deadline): nothing waits for it
            p.fields, p.body = f, body
            p.event.set()
        elif k == KIND["SEND"]:
            sender = Sender(f)
            if f.get("flags", 0) & WF_BATCH:
                for i, (a, b) in enumerate(frame.batch_offsets(body, 0, len(body))):
                    self._inbox.put(("message", Message(codec.decode(body[a:b]), sender,
                                                        f["id"] + i, f["to"])))
            else:
                self._inbox.put(("message", Message(_decode_opt(body), sender, f["id"], f["to"])))
        elif k == KIND["REQUEST"]:
            self._dispatch.put(("request", f, body))
        elif k == KIND["PUBLISH"]:
            s = self._subs.get(f["sub"])
            if s is not None:
                g, s._pending_gap = s._pending_gap, 0
                p = Publication(_decode_opt(body), f["topic"], Sender(f), s, f["id"], g)
                if s.callback:
                    self._dispatch.put(("call", s.callback, p))
                else:
                    s._q.put(p)
        elif k == KIND["GAP"]:
            s = self._subs.get(f["sub"])
            if s is not None:
                s.drops += f["count"]
                s._pending_gap += f["count"]
        elif k == KIND["PRESENCE"]:
            w = self._watches.get(f["id"])
            if w is not None:
                ev = {"name": f["name"], "event": PRESENCE_EVENTS.get(f["event"], "unknown")}
                if "conn" in f:
                    ev["owner"] = f["conn"]
                if "reason" in f:
                    ev["reason"] = RELEASE_REASONS.get(f["reason"], "unknown")
                w._event(ev)
                if w.callback:
                    self._dispatch.put(("call", w.callback, ev))
        elif k == KIND["BYE"]:
            raise errors.make(f.get("code", 18), f.get("msg") or "broker said BYE")
        elif k == KIND["WELCOME"]:
            raise errors.make("PROTOCOL", "second WELCOME from the broker")
        # MONITOR copies only follow a MONITOR this client never sends.

    def _async_error(self, f):
        if f["code"] == 13 and "name" in f:
            if f["name"] in self.names:
                self.names.remove(f["name"])
            self._inbox.put(("name-lost", errors.make(13, f.get("msg"), name=f["name"])))
            return
        raise errors.make(f["code"], f.get("msg"))

    def _dispatch_loop(self):
        while True:
            item = self._dispatch.get()
            if item is None:
                return
            if item[0] == "call":
                try:
                    item[1](item[2])
                except Exception:  # a callback's failure is its own; the hub goes on
                    import traceback
                    traceback.print_exc()
                continue
            _, f, body = item
            self._serve(f, body)

    def _serve(self, f, body):
        rid, to_id = f["id"], f["from_id"]
        try:
            if self.handler is None:
                raise errors.make("REMOTE_ERROR", "no handler")
            val = self.handler(_decode_opt(body), Sender(f),
                               {"id": rid, "to": f["to"], "timeout": f.get("timeout", 0)})
            out, fields = codec.encode(val), {"id": rid, "to_id": to_id}
        except Exception as e:
            out = None
            fields = {"id": rid, "to_id": to_id, "code": errors.CODES["REMOTE_ERROR"],
                      "msg": (str(e) or type(e).__name__).encode()[:1024].decode("utf-8", "ignore")}
        try:
            self._write(frame.encode(KIND["REPLY"], fields, out))
        except errors.IpchubError:
            pass  # the connection is gone; the requester gets PEER_GONE from the broker

    # ----------------------------------------------------------------- calls

    def _alloc_id(self):
        with self._plock:
            i = self._next_id
            self._next_id += 1
            return i

    def _closed_error(self):
        # After a fatal error, every later call reports that error's code.
        e = self.close_error
        return errors.make(e.code_number, str(e)) if e is not None else errors.make("CLOSED")

    def _write(self, data):
        if self.closed:
            raise self._closed_error()
        if len(data) - 4 > self.max_frame:
            raise errors.make("TOO_LARGE", "frame of %d bytes over max_frame %d"
                              % (len(data) - 4, self.max_frame))
        with self._wlock:
            if not self._up.wait(self.timeout) or self.closed:
                raise errors.make("CLOSED" if self.closed else "IO", "not connected")
            try:
                self._sock.sendall(data)
            except OSError as e:
                raise errors.make("IO", str(e)) from None

    def _call(self, kind, fields, body=None, timeout=None, cancel_on_timeout=False):
        """Send a frame with a fresh id and wait for its answer: (fields, body).
        An ERROR answer raises its code."""
        rid = self._alloc_id()
        p = _Pending()
        with self._plock:
            self._pending[rid] = p
        try:
            self._write(frame.encode(kind, dict(fields, id=rid), body))
        except errors.IpchubError:
            with self._plock:
                self._pending.pop(rid, None)
            raise
        wait = self.timeout if timeout is None else timeout
        if not p.event.wait(wait if wait else None):
            with self._plock:
                self._pending.pop(rid, None)
            if cancel_on_timeout:
                try:
                    self._write(frame.encode(KIND["CANCEL"], {"id": rid}))
                except errors.IpchubError:
                    pass
            raise errors.make("TIMEOUT", "no answer within %.3fs" % wait, id=rid)
        if p.error is not None:
            raise p.error
        f = p.fields
        if f["kind"] == KIND["ERROR"]:
            raise errors.make(f["code"], f.get("msg"), id=rid, to=f.get("to"), name=f.get("name"))
        return f, p.body

    # ----------------------------------------------------------------- API

    def register(self, name):
        """Own `name`. Raises NAME_TAKEN, BAD_NAME, LIMIT, NOT_AUTHORIZED..."""
        self._call(KIND["REGISTER"], {"name": name})
        if name not in self.names:
            self.names.append(name)

    def unregister(self, name):
        """Release `name`. Raises NOT_OWNER, BAD_NAME."""
        self._call(KIND["UNREGISTER"], {"name": name})
        if name in self.names:
            self.names.remove(name)

    def send(self, to, value, nowait=False):
        """Send one message; returns its id. Blocks while the broker parks
        us (backpressure) unless nowait, in which case a full receiver gives
        a QUEUE_FULL send error. Delivery failures arrive from recv() as
        ('send-error', err) with err.id. Raises TOO_LARGE, INVALID, CLOSED, IO."""
        rid = self._alloc_id()
        self._write(frame.encode(KIND["SEND"], {"id": rid, "to": to,
                                                "flags": WF_NOWAIT if nowait else None},
                                 codec.encode(value)))
        return rid

    def request(self, to, value=None, timeout=5.0, nowait=False, with_sender=False):
        """Send a request and wait for its reply body (or (body, Sender) with
        with_sender). The broker enforces `timeout` (seconds; 0 = none); a
        local wait of timeout + 0.5 s backs it up. Raises TIMEOUT,
        NO_SUCH_PEER, PEER_GONE, REMOTE_ERROR (message = the responder's),
        QUEUE_FULL, LIMIT, BAD_BODY, BAD_NAME, IO, CLOSED."""
        ms = int(timeout * 1000) if timeout else 0
        body = codec.encode(value) if value is not None else None
        f, b = self._call(KIND["REQUEST"], {"to": to, "timeout": ms or None,
                                            "flags": WF_NOWAIT if nowait else None},
                          body, timeout=(timeout + REQUEST_GRACE) if timeout else 0,
                          cancel_on_timeout=True)
        if f.get("code"):
            raise errors.make(f["code"], f.get("msg"), id=f["id"], to=to)
        v = _decode_opt(b)
        return (v, Sender(f)) if with_sender else v

    def handle(self, fn):
        """Answer requests with fn(body, sender, ctx); its value is the reply,
        an exception becomes REMOTE_ERROR with its message. Runs on the
        hub's dispatch thread. Returns fn (usable as a decorator)."""
        self.handler = fn
        return fn

    def recv(self, timeout=None):
        """Next event: ('message', Message), ('send-error', IpchubError) or
        ('name-lost', IpchubError). Raises TIMEOUT, or CLOSED."""
        try:
            item = self._inbox.get(timeout=timeout)
        except queue.Empty:
            raise errors.make("TIMEOUT", "nothing received within %rs" % timeout) from None
        if item is None:
            self._inbox.put(None)
            raise self.close_error or errors.make("CLOSED")
        return item

    def publish(self, topic, value):
        """Publish; returns the id. Refusals arrive from recv() as send errors."""
        rid = self._alloc_id()
        self._write(frame.encode(KIND["PUBLISH"], {"id": rid, "topic": topic},
                                 codec.encode(value)))
        return rid

    def _subscribe_on_wire(self, s):
        rid = self._alloc_id()
        old = s.id
        s.id = rid
        self._subs[rid] = s
        if old is not None and old != rid:
            self._subs.pop(old, None)
        p = _Pending()
        with self._plock:
            self._pending[rid] = p
        self._write(frame.encode(KIND["SUBSCRIBE"], {"id": rid, "topic": s.pattern,
                                                     "policy": POLICY[s.policy]}))
        return rid, p

    def subscribe(self, pattern, policy="drop-oldest", callback=None):
        """Subscribe to `pattern` (section 10.1). Returns a Subscription once
        the broker accepted it. Raises BAD_NAME, LIMIT, INVALID."""
        if policy not in POLICY:
            raise errors.make("INVALID", "policy must be one of %s" % ", ".join(POLICY))
        s = Subscription(self, pattern, policy, callback)
        rid, p = self._subscribe_on_wire(s)
        self._await(rid, p, lambda: self._subs.pop(rid, None))
        return s

    def _await(self, rid, p, undo):
        if not p.event.wait(self.timeout):
            with self._plock:
                self._pending.pop(rid, None)
            undo()
            raise errors.make("TIMEOUT", "no answer", id=rid)
        if p.error is not None:
            undo()
            raise p.error
        if p.fields["kind"] == KIND["ERROR"]:
            undo()
            raise errors.make(p.fields["code"], p.fields.get("msg"), id=rid)

    def _watch_on_wire(self, w):
        rid = self._alloc_id()
        old = w.id
        w.id = rid
        self._watches[rid] = w
        if old is not None and old != rid:
            self._watches.pop(old, None)
        self._write(frame.encode(KIND["WATCH"], {"id": rid, "name": w.name}))
        return rid

    def watch(self, name, callback=None):
        """Watch `name`'s owner; returns a Watch after the broker's first
        answer (callback gets every event). Raises BAD_NAME, LIMIT."""
        w = Watch(self, name, callback)
        first = threading.Event()
        orig = w._event

        def ev(e):
            orig(e)
            first.set()
        w._event = ev
        # An ERROR answer (BAD_NAME, LIMIT) comes as a pending answer with the same id.
        rid = self._alloc_id()
        p = _Pending()
        with self._plock:
            self._pending[rid] = p
        w.id = rid
        self._watches[rid] = w
        self._write(frame.encode(KIND["WATCH"], {"id": rid, "name": name}))
        deadline = time.monotonic() + self.timeout
        while not first.is_set():
            if p.event.wait(0.01):
                self._watches.pop(rid, None)
                if p.error is not None:
                    raise p.error
                raise errors.make(p.fields["code"], p.fields.get("msg"), id=rid, name=name)
            if time.monotonic() > deadline:
                self._watches.pop(rid, None)
                raise errors.make("TIMEOUT", "no presence answer", id=rid)
        with self._plock:
            self._pending.pop(rid, None)
        w._event = orig
        return w

    def wait_for(self, name, timeout=None):
        """Block until `name` is owned; returns the owner's connection id.
        Raises TIMEOUT, CLOSED."""
        w = self.watch(name)
        try:
            deadline = None if timeout is None else time.monotonic() + timeout
            with w._cond:
                while w.owner is None:
                    if self.closed:
                        raise self.close_error or errors.make("CLOSED")
                    left = None if deadline is None else deadline - time.monotonic()
                    if left is not None and left <= 0:
                        raise errors.make("TIMEOUT", "%s not owned within %rs" % (name, timeout))
                    w._cond.wait(min(left, 0.1) if left is not None else 0.1)
                return w.owner
        finally:
            try:
                w.unwatch()
            except errors.IpchubError:
                pass

    def ping(self):
        """Round trip to the broker, in seconds."""
        t = time.monotonic()
        self._call(KIND["PING"], {})
        return time.monotonic() - t

    def peers(self):
        """[{name, conn, pid, uid, auth, key?}] from ipchub.peers ('key' as 'ed25519:HEX')."""
        out = self.request("ipchub.peers", None, timeout=self.timeout)
        for p in out:
            if isinstance(p.get("key"), bytes):
                p["key"] = "ed25519:" + p["key"].hex()
        return out

    def stats(self):
        """The broker's counters (ipchub.stats, section 10.5)."""
        return self.request("ipchub.stats", None, timeout=self.timeout)

    def close(self):
        """Send BYE and close; pending calls fail with CLOSED."""
        if self.closed:
            return
        try:
            self._write(frame.encode(KIND["BYE"], {}))
        except errors.IpchubError:
            pass
        self.closed = True
        try:
            self._sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self._sock.close()
        with self._plock:
            pend, self._pending = self._pending, {}
        for p in pend.values():
            p.error = errors.make("CLOSED")
            p.event.set()
        self._finish(errors.make("CLOSED"))
        if threading.current_thread() is not self._disp:
            self._disp.join(2)
        self._reader.join(2)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _decode_opt(body):
    return None if body is None else codec.decode(body)


def _take_frame(buf, limit):
    """Pop one complete frame off the front of buf: (fields, body offset,
    frame bytes after the length prefix), or None if incomplete. The length
    is checked before anything is read for the frame."""
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
    if off < n:
        if f.get("flags", 0) & WF_BATCH:
            frame.batch_offsets(fb, off, n)
        elif frame.skip_value(fb, off, n) != n:
            raise errors.make("BAD_BODY", "broker frame: bytes after the body")
        fb = fb[off:]
        off = 0
    else:
        fb, off = b"", 0
    return f, off, fb


def connect(name=None, names=(), socket=None, timeout=5.0, agent=None, reconnect=True, key=None):
    """Connect to ipchubd and register `name` (default $IPCHUB_NAME) and
    `names`. `key`: secret key file (default $IPCHUB_KEY; '' = none).
    Raises NO_BROKER, TIMEOUT, NAME_TAKEN, BAD_NAME, UNSUPPORTED_VERSION,
    BAD_KEY, AUTH_FAILED, NOT_AUTHORIZED."""
    if key is None:
        key = os.environ.get("IPCHUB_KEY") or None
    elif key == "":
        key = None
    hub = Hub(socket, timeout, agent, reconnect, key)
    hub._open()
    hub._start()
    if name is None:
        name = os.environ.get("IPCHUB_NAME") or None
    try:
        for n in ([name] if name else []) + list(names):
            hub.register(n)
    except errors.IpchubError:
        hub.close()
        raise
    return hub
