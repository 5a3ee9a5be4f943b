"""client - the blocking ipchub client (Hub).

Model: one socket, one reader thread and one dispatch thread per Hub; the
protocol state and the routing of frames are core.HubCore's, shared with
the asyncio client. The reader thread owns the inbound side: it reads
frames into a buffer bounded by the broker's max_frame, validates each
(core.take_frame) before any byte reaches msgpack, and routes it: answers
(OK, ERROR, PONG, REPLY) complete the pending call with the same id;
deliveries (SEND, REQUEST, PUBLISH, GAP, PRESENCE) go to the dispatch
queue, whose thread runs handlers and callbacks (so a handler may itself
call request()), or to the inbox read by recv(). Callers write frames under
a lock with blocking writes; since the reader thread keeps reading
meanwhile, a broker that parks us (backpressure, PROTOCOL.md section 8)
cannot deadlock us. A malformed frame or a lost connection fails every
pending call with a typed error (BAD_FRAME / TOO_LARGE / IO) and, with
reconnect on, the reader thread connects again, re-registers the names and
restores subscriptions and watches (their objects stay valid), as the Node
client does.
"""

import queue
import socket
import threading
import time

from . import core, errors, frame
from .core import KIND, Sender


class Subscription(core.SubscriptionCore):
    """A live subscription. Publications go to `callback(pub)` if given, else
    to `get(timeout)`. `drops` sums the GAP counts."""

    def __init__(self, hub, pattern, policy, callback):
        super().__init__(hub, pattern, policy, callback)
        self._q = queue.Queue()

    def get(self, timeout=None):
        """Next publication; raises errors.TIMEOUT, or errors.CLOSED when the hub closed."""
        try:
            p = self._q.get(timeout=timeout)
        except queue.Empty:
            raise errors.make("TIMEOUT", "no publication within %rs" % timeout) from None
        if p is None:
            raise errors.make("CLOSED")
        self.hub._release(p[0])
        return p[1]

    def unsubscribe(self):
        if self.active:
            self.active = False
            self.hub._subs.pop(self.id, None)
            self.hub._call(KIND["UNSUBSCRIBE"], {"sub": self.id})


class Watch(core.WatchCore):
    """A live watch on a name. `owner` is the owner's connection id or None;
    `callback(event_dict)` sees every presence event."""

    def __init__(self, hub, name, callback):
        super().__init__(hub, name, callback)
        self._cond = threading.Condition()

    def _event(self, ev):
        with self._cond:
            self._apply(ev)
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


class Hub(core.HubCore):
    """A connection to ipchubd. Create with ipchub.connect()."""

    def __init__(self, socket_path, timeout, agent, reconnect, key):
        super().__init__(socket_path, timeout, agent, reconnect, key)
        self._wlock = threading.Lock()
        self._plock = threading.Lock()
        self._inbox = queue.Queue()
        self._dispatch = queue.Queue()
        self._sock = None
        self._buf = bytearray()
        self._up = threading.Event()
        self._room = threading.Condition()   # guards _held; the reader waits on it

    # ------------------------------------------------------------ connection

    def _open(self):
        """Connect and handshake (and authenticate). Raises IpchubError."""
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
        s.settimeout(self.timeout)
        try:
            s.connect(core.sock_addr(self.socket_path))
        except OSError as e:
            s.close()
            raise core.open_error("connect", self.socket_path, e) from None
        buf = bytearray()
        try:
            s.sendall(core.hello_frame(self.agent))
            f = self._read_frame_sync(s, buf)
            core.check_welcome(f)
            if self.key is not None:
                s.sendall(self._auth_frame(f))
                core.check_auth_answer(self._read_frame_sync(s, buf))
        except (OSError, errors.IpchubError) as e:
            s.close()
            raise core.open_error("handshake with", self.socket_path, e) from None
        s.settimeout(None)
        self._welcomed(f)
        self._sock = s
        self._buf = buf

    @staticmethod
    def _read_frame_sync(s, buf):
        while True:
            got = core.take_frame(buf, frame.MAX_PRE_WELCOME_FRAME)
            if got is not None:
                return got[0]
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
            try:
                self._route_buffered()
                while True:
                    self._wait_room()
                    self._feed(self._sock.recv(core.READ_CHUNK))
            except errors.IpchubError as e:
                err = e
            except OSError as e:
                err = errors.make("IO", str(e))
            if not self._lost(err) or not self._reconnect():
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
        delay = core.RECONNECT_MIN
        while not self.closed:
            time.sleep(delay)
            try:
                self._open()
            except errors.IpchubError as e:
                if e.code in core.NO_RETRY_CONNECT:
                    self._finish(e)
                    return False
                delay = min(delay * 2, core.RECONNECT_MAX)
                continue
            self._up.set()
            threading.Thread(target=self._restore, daemon=True).start()
            return True
        return False

    def _restore(self):
        # Re-register names, re-subscribe and re-watch on the new connection.
        try:
            for n in list(self.names):
                try:
                    self._call(KIND["REGISTER"], {"name": n})
                except errors.IpchubError as e:
                    if e.code in ("IO", "CLOSED"):
                        return   # lost again: the next reconnect restores
                    self.names.remove(n)
            for s in list(self._subs.values()):
                self._subscribe_on_wire(s)
            for w in list(self._watches.values()):
                self._write(self._watch_frame(w)[1])
        except errors.IpchubError:
            pass   # lost again or closed: the next reconnect restores

    def _finish(self, err):
        self.closed = True
        self.close_error = err
        self._up.set()
        with self._room:
            self._room.notify_all()
        self._dispatch.put(None)
        self._inbox.put(None)
        for s in list(self._subs.values()):
            s._q.put(None)

    # ------------------------------------------------- core.HubCore's hooks

    def _answer(self, rid, f, body):
        with self._plock:
            p = self._pending.pop(rid, None)
        if p is None:
            return  # an answer to a call that gave up (deadline): nothing waits for it
        p.fields, p.body = f, body
        p.event.set()

    def _hold(self, n):
        with self._room:
            core.HubCore._hold(self, n)

    def _release(self, n):
        with self._room:
            if core.HubCore._release(self, n):
                self._room.notify_all()

    def _wait_room(self):
        # Past held_max, stop reading until the application took half of it.
        with self._room:
            while self._paused and not self.closed:
                self._room.wait(0.5)

    def _inbox_put(self, item, n):
        self._hold(n)
        self._inbox.put((n, item))

    def _serve_later(self, f, body, n):
        self._hold(n)
        self._dispatch.put(("request", n, f, body))

    def _deliver(self, s, pub, n):
        self._hold(n)
        if s.callback:
            self._dispatch.put(("call", n, s.callback, pub))
        else:
            s._q.put((n, pub))

    def _notify(self, w, ev):
        w._event(ev)
        if w.callback:
            self._hold(core.HELD_ITEM)
            self._dispatch.put(("call", core.HELD_ITEM, w.callback, ev))

    def _dispatch_loop(self):
        while True:
            item = self._dispatch.get()
            if item is None:
                return
            what, n, a, b = item
            if what == "call":
                try:
                    a(b)
                except Exception:  # a callback's failure is its own; the hub goes on
                    import traceback
                    traceback.print_exc()
            else:
                self._serve(a, b)
            self._release(n)

    def _serve(self, f, body):
        try:
            if self.handler is None:
                raise errors.make("REMOTE_ERROR", "no handler")
            fields, out = core.reply_fields(f, self.handler(core.decode_opt(body), Sender(f),
                                                            core.request_ctx(f)))
        except Exception as e:
            fields, out = core.reply_fields(f, exc=e)
        try:
            self._write(frame.encode(KIND["REPLY"], fields, out))
        except errors.IpchubError:
            pass  # the connection is gone; the requester gets PEER_GONE from the broker

    # ----------------------------------------------------------------- calls

    def _alloc_id(self):
        with self._plock:
            return self._new_id()

    def _write(self, data):
        self._check_out(data)
        with self._wlock:
            if not self._up.wait(self.timeout) or self.closed:
                raise errors.make("CLOSED" if self.closed else "IO", "not connected")
            try:
                self._sock.sendall(data)
            except OSError as e:
                raise errors.make("IO", str(e)) from None

    def _expect(self, rid):
        p = _Pending()
        with self._plock:
            self._pending[rid] = p
        return p

    def _unexpect(self, rid):
        with self._plock:
            self._pending.pop(rid, None)

    def _call(self, kind, fields, body=None, timeout=None, cancel_on_timeout=False):
        """Send a frame with a fresh id and wait for its answer: (fields, body).
        An ERROR answer raises its code."""
        rid = self._alloc_id()
        p = self._expect(rid)
        try:
            self._write(frame.encode(kind, dict(fields, id=rid), body))
        except errors.IpchubError:
            self._unexpect(rid)
            raise
        wait = self.timeout if timeout is None else timeout
        if not p.event.wait(wait if wait else None):
            self._unexpect(rid)
            if cancel_on_timeout:
                try:
                    self._write(frame.encode(KIND["CANCEL"], {"id": rid}))
                except errors.IpchubError:
                    pass
            raise errors.make("TIMEOUT", "no answer within %.3fs" % wait, id=rid)
        if p.error is not None:
            raise p.error
        if p.fields["kind"] == KIND["ERROR"]:
            raise core.answer_error(p.fields, rid)
        return p.fields, p.body

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
        self._write(self._send_frame(rid, to, value, nowait))
        return rid

    def request(self, to, value=None, timeout=5.0, nowait=False, with_sender=False):
        """Send a request and wait for its reply body (or (body, Sender) with
        with_sender). The broker enforces `timeout` (seconds; 0 = none); a
        local wait of timeout + 0.5 s backs it up. Raises TIMEOUT,
        NO_SUCH_PEER, PEER_GONE, REMOTE_ERROR (message = the responder's),
        QUEUE_FULL, LIMIT, BAD_BODY, BAD_NAME, IO, CLOSED."""
        fields, body, wait = self._request_args(to, value, timeout, nowait)
        f, b = self._call(KIND["REQUEST"], fields, body, timeout=wait, cancel_on_timeout=True)
        return self._request_result(f, b, to, with_sender)

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
        self._release(item[0])
        return item[1]

    def publish(self, topic, value):
        """Publish; returns the id. Refusals arrive from recv() as send errors."""
        rid = self._alloc_id()
        self._write(self._publish_frame(rid, topic, value))
        return rid

    def _subscribe_on_wire(self, s):
        with self._plock:
            rid, data = self._sub_frame(s)
        p = self._expect(rid)
        self._write(data)
        return rid, p

    def subscribe(self, pattern, policy="drop-oldest", callback=None):
        """Subscribe to `pattern` (section 10.1). Returns a Subscription once
        the broker accepted it. Raises BAD_NAME, LIMIT, INVALID."""
        s = Subscription(self, pattern, policy, callback)
        rid, p = self._subscribe_on_wire(s)
        fail = None
        if not p.event.wait(self.timeout):
            self._unexpect(rid)
            fail = errors.make("TIMEOUT", "no answer", id=rid)
        elif p.error is not None:
            fail = p.error
        elif p.fields["kind"] == KIND["ERROR"]:
            fail = core.answer_error(p.fields, rid)
        if fail is not None:
            self._subs.pop(rid, None)
            raise fail
        return s

    def watch(self, name, callback=None):
        """Watch `name`'s owner; returns a Watch after the broker's first
        answer (callback gets every event). Raises BAD_NAME, LIMIT."""
        w = Watch(self, name, callback)
        with self._plock:
            rid, data = self._watch_frame(w)
        # An ERROR answer (BAD_NAME, LIMIT) comes as a pending answer with the same id.
        p = self._expect(rid)
        self._write(data)
        deadline = time.monotonic() + self.timeout
        with w._cond:
            while not w.seen:
                if p.event.is_set():
                    self._watches.pop(rid, None)
                    raise p.error or core.answer_error(p.fields, rid)
                if time.monotonic() > deadline:
                    self._watches.pop(rid, None)
                    self._unexpect(rid)
                    raise errors.make("TIMEOUT", "no presence answer", id=rid)
                w._cond.wait(0.01)
        self._unexpect(rid)
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
        return self._peers_result(self.request("ipchub.peers", None, timeout=self.timeout))

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


def connect(name=None, names=(), socket=None, timeout=5.0, agent=None, reconnect=True, key=None):
    """Connect to ipchubd and register `name` (default $IPCHUB_NAME) and
    `names`. `key`: secret key file (default $IPCHUB_KEY; '' = none).
    Raises NO_BROKER, TIMEOUT, NAME_TAKEN, BAD_NAME, UNSUPPORTED_VERSION,
    BAD_KEY, AUTH_FAILED, NOT_AUTHORIZED."""
    hub = Hub(socket, timeout, agent, reconnect, core.key_option(key))
    hub._open()
    hub._start()
    try:
        for n in core.initial_names(name, names):
            hub.register(n)
    except errors.IpchubError:
        hub.close()
        raise
    return hub
