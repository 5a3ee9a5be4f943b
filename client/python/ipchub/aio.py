"""aio - the asyncio ipchub client: `hub = await ipchub.aio.connect(...)`.

Model: one asyncio stream connection and one reader task per Hub, on the
event loop that called connect(); every method is a coroutine to await on
that loop (the Hub is not thread-safe). The protocol state and the routing
of frames are core.HubCore's, shared with the blocking client: the reader
task reads into a buffer bounded by the broker's max_frame, validates each
frame (core.take_frame) before any byte reaches msgpack and routes it:
answers resolve the future of the pending call with the same id; SENDs go
to the inbox read by recv(); each REQUEST runs the handler in its own task
(a handler may be a plain function or a coroutine, and may itself await
request()); publications go to their Subscription's queue or callback
(function or coroutine, run in a task), presence events to their Watch.
Writes are serialised by a lock and await the transport's drain, so a
broker that parks us (backpressure, PROTOCOL.md section 8) suspends the
writer, not the reader. A malformed frame or a lost connection fails every
pending call with a typed error (BAD_FRAME / TOO_LARGE / IO); with
reconnect on, the reader task connects again with backoff, re-registers
the names and restores subscriptions and watches (their objects stay
valid), as the blocking and the Node clients do.
"""

import asyncio
import inspect
import sys
import time
import traceback

from . import core, errors, frame
from .core import KIND, Sender


class Subscription(core.SubscriptionCore):
    """A live subscription. Publications go to `callback(pub)` (function or
    coroutine) if given, else to `await get(timeout)` / `async for`.
    `drops` sums the GAP counts."""

    def __init__(self, hub, pattern, policy, callback):
        super().__init__(hub, pattern, policy, callback)
        self._q = asyncio.Queue()

    async def get(self, timeout=None):
        """Next publication; raises errors.TIMEOUT, or errors.CLOSED when the hub closed."""
        try:
            p = await asyncio.wait_for(self._q.get(), timeout)
        except asyncio.TimeoutError:
            raise errors.make("TIMEOUT", "no publication within %rs" % timeout) from None
        if p is None:
            self._q.put_nowait(None)
            raise errors.make("CLOSED")
        self.hub._release(p[0])
        return p[1]

    def __aiter__(self):
        return self

    async def __anext__(self):
        try:
            return await self.get()
        except errors.CLOSED:
            raise StopAsyncIteration from None

    async def unsubscribe(self):
        if self.active:
            self.active = False
            self.hub._subs.pop(self.id, None)
            await self.hub._call(KIND["UNSUBSCRIBE"], {"sub": self.id})


class Watch(core.WatchCore):
    """A live watch on a name. `owner` is the owner's connection id or None;
    `callback(event_dict)` (function or coroutine) sees every presence event."""

    def __init__(self, hub, name, callback):
        super().__init__(hub, name, callback)
        self._changed = asyncio.Event()

    def _event(self, ev):
        self._apply(ev)
        self._changed.set()

    async def unwatch(self):
        if self.active:
            self.active = False
            self.hub._watches.pop(self.id, None)
            await self.hub._call(KIND["UNWATCH"], {"sub": self.id})


class Hub(core.HubCore):
    """A connection to ipchubd. Create with `await ipchub.aio.connect()`."""

    def __init__(self, socket_path, timeout, agent, reconnect, key):
        super().__init__(socket_path, timeout, agent, reconnect, key)
        self._wlock = asyncio.Lock()
        self._inbox = asyncio.Queue()
        self._up = asyncio.Event()
        self._room = asyncio.Event()   # set while the reader may read (see core.HELD_MAX)
        self._room.set()
        self._reader = self._writer = None
        self._buf = bytearray()
        self._tasks = set()     # handler / callback / restore tasks, kept referenced
        self._read_task = None

    # ------------------------------------------------------------ connection

    async def _open(self):
        """Connect and handshake (and authenticate). Raises IpchubError."""
        try:
            r, w = await asyncio.wait_for(asyncio.open_unix_connection(
                core.sock_addr(self.socket_path), limit=core.READ_CHUNK), self.timeout)
        except (OSError, asyncio.TimeoutError) as e:
            raise core.open_error("connect", self.socket_path, e) from None
        buf = bytearray()
        try:
            f = await asyncio.wait_for(self._handshake(r, w, buf), self.timeout)
        except (OSError, asyncio.TimeoutError, errors.IpchubError) as e:
            w.close()
            raise core.open_error("handshake with", self.socket_path, e) from None
        self._welcomed(f)
        self._reader, self._writer, self._buf = r, w, buf

    async def _handshake(self, r, w, buf):
        w.write(core.hello_frame(self.agent))
        await w.drain()
        f = await self._read_frame_pre(r, buf)
        core.check_welcome(f)
        if self.key is not None:
            w.write(self._auth_frame(f))
            await w.drain()
            core.check_auth_answer(await self._read_frame_pre(r, buf))
        return f

    @staticmethod
    async def _read_frame_pre(r, buf):
        while True:
            got = core.take_frame(buf, frame.MAX_PRE_WELCOME_FRAME)
            if got is not None:
                return got[0]
            data = await r.read(65536)
            if not data:
                raise errors.make("IO", "broker closed the connection in the handshake")
            buf += data

    def _start(self):
        self._up.set()
        self._read_task = asyncio.get_running_loop().create_task(self._read_loop())

    async def _read_loop(self):
        while True:
            try:
                self._route_buffered()
                while True:
                    if self._paused:
                        await self._room.wait()
                    self._feed(await self._reader.read(core.READ_CHUNK))
            except errors.IpchubError as e:
                err = e
            except OSError as e:
                err = errors.make("IO", str(e))
            if not self._lost(err) or not await self._reconnect():
                return

    def _fail_pending(self, err):
        pend, self._pending = self._pending, {}
        for fut in pend.values():
            if not fut.done():
                fut.set_exception(errors.make(err.code_number, str(err)))

    def _drop(self, err):
        self._up.clear()
        self._writer.close()
        self._fail_pending(err)

    async def _reconnect(self):
        delay = core.RECONNECT_MIN
        while not self.closed:
            await asyncio.sleep(delay)
            try:
                await self._open()
            except errors.IpchubError as e:
                if e.code in core.NO_RETRY_CONNECT:
                    self._finish(e)
                    return False
                delay = min(delay * 2, core.RECONNECT_MAX)
                continue
            self._up.set()
            self._spawn(self._restore())
            return True
        return False

    async def _restore(self):
        # Re-register names, re-subscribe and re-watch on the new connection.
        try:
            for n in list(self.names):
                try:
                    await self._call(KIND["REGISTER"], {"name": n})
                except errors.IpchubError as e:
                    if e.code in ("IO", "CLOSED"):
                        return   # lost again: the next reconnect restores
                    self.names.remove(n)
            for s in list(self._subs.values()):
                rid, data = self._sub_frame(s)
                await self._write(data)
            for w in list(self._watches.values()):
                await self._write(self._watch_frame(w)[1])
        except errors.IpchubError:
            pass   # lost again or closed: the next reconnect restores

    def _finish(self, err):
        self.closed = True
        self.close_error = err
        self._up.set()
        self._inbox.put_nowait(None)
        for s in list(self._subs.values()):
            s._q.put_nowait(None)
        for w in list(self._watches.values()):
            w._changed.set()

    def _spawn(self, coro):
        t = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(t)
        t.add_done_callback(self._tasks.discard)
        return t

    # ------------------------------------------------- core.HubCore's hooks

    def _answer(self, rid, f, body):
        fut = self._pending.pop(rid, None)
        if fut is not None and not fut.done():  # else the call gave up (deadline)
            fut.set_result((f, body))

    def _hold(self, n):
        core.HubCore._hold(self, n)
        if self._paused:
            self._room.clear()

    def _release(self, n):
        if core.HubCore._release(self, n):
            self._room.set()

    def _held_task(self, coro, n):
        self._hold(n)
        self._spawn(coro).add_done_callback(lambda t: self._release(n))

    def _inbox_put(self, item, n):
        self._hold(n)
        self._inbox.put_nowait((n, item))

    def _serve_later(self, f, body, n):
        self._held_task(self._serve(f, body), n)

    def _deliver(self, s, pub, n):
        if s.callback:
            self._held_task(_run_callback(s.callback, pub), n)
        else:
            self._hold(n)
            s._q.put_nowait((n, pub))

    def _notify(self, w, ev):
        w._event(ev)
        if w.callback:
            self._held_task(_run_callback(w.callback, ev), core.HELD_ITEM)

    async def _serve(self, f, body):
        try:
            if self.handler is None:
                raise errors.make("REMOTE_ERROR", "no handler")
            v = self.handler(core.decode_opt(body), Sender(f), core.request_ctx(f))
            if inspect.isawaitable(v):
                v = await v
            fields, out = core.reply_fields(f, v)
        except Exception as e:
            fields, out = core.reply_fields(f, exc=e)
        try:
            await self._write(frame.encode(KIND["REPLY"], fields, out))
        except errors.IpchubError:
            pass  # the connection is gone; the requester gets PEER_GONE from the broker

    # ----------------------------------------------------------------- calls

    async def _write(self, data):
        self._check_out(data)
        async with self._wlock:
            if not self._up.is_set():
                try:
                    await asyncio.wait_for(self._up.wait(), self.timeout)
                except asyncio.TimeoutError:
                    raise errors.make("IO", "not connected") from None
            if self.closed:
                raise self._closed_error()
            try:
                self._writer.write(data)
                await self._writer.drain()
            except (OSError, RuntimeError) as e:   # RuntimeError: transport closed under us
                raise errors.make("IO", str(e)) from None

    def _expect(self, rid):
        fut = asyncio.get_running_loop().create_future()
        self._pending[rid] = fut
        return fut

    async def _call(self, kind, fields, body=None, timeout=None, cancel_on_timeout=False):
        """Send a frame with a fresh id and await its answer: (fields, body).
        An ERROR answer raises its code."""
        rid = self._new_id()
        fut = self._expect(rid)
        try:
            await self._write(frame.encode(kind, dict(fields, id=rid), body))
        except errors.IpchubError:
            self._pending.pop(rid, None)
            raise
        wait = self.timeout if timeout is None else timeout
        try:
            f, b = await asyncio.wait_for(fut, wait or None)
        except asyncio.TimeoutError:
            self._pending.pop(rid, None)
            if cancel_on_timeout:
                try:
                    await self._write(frame.encode(KIND["CANCEL"], {"id": rid}))
                except errors.IpchubError:
                    pass
            raise errors.make("TIMEOUT", "no answer within %.3fs" % wait, id=rid) from None
        if f["kind"] == KIND["ERROR"]:
            raise core.answer_error(f, rid)
        return f, b

    # ----------------------------------------------------------------- API

    async def register(self, name):
        """Own `name`. Raises NAME_TAKEN, BAD_NAME, LIMIT, NOT_AUTHORIZED..."""
        await self._call(KIND["REGISTER"], {"name": name})
        if name not in self.names:
            self.names.append(name)

    async def unregister(self, name):
        """Release `name`. Raises NOT_OWNER, BAD_NAME."""
        await self._call(KIND["UNREGISTER"], {"name": name})
        if name in self.names:
            self.names.remove(name)

    async def send(self, to, value, nowait=False):
        """Send one message; returns its id once written. Suspends while the
        broker parks us (backpressure) unless nowait, in which case a full
        receiver gives a QUEUE_FULL send error. Delivery failures arrive from
        recv() as ('send-error', err) with err.id. Raises TOO_LARGE, INVALID,
        CLOSED, IO."""
        rid = self._new_id()
        await self._write(self._send_frame(rid, to, value, nowait))
        return rid

    async def request(self, to, value=None, timeout=5.0, nowait=False, with_sender=False):
        """Send a request and await its reply body (or (body, Sender) with
        with_sender). The broker enforces `timeout` (seconds; 0 = none); a
        local wait of timeout + 0.5 s backs it up (then a CANCEL is sent).
        Raises TIMEOUT, NO_SUCH_PEER, PEER_GONE, REMOTE_ERROR (message = the
        responder's), QUEUE_FULL, LIMIT, BAD_BODY, BAD_NAME, IO, CLOSED."""
        fields, body, wait = self._request_args(to, value, timeout, nowait)
        f, b = await self._call(KIND["REQUEST"], fields, body, timeout=wait,
                                cancel_on_timeout=True)
        return self._request_result(f, b, to, with_sender)

    def handle(self, fn):
        """Answer requests with fn(body, sender, ctx) (a function or a
        coroutine function); its value is the reply, an exception becomes
        REMOTE_ERROR with its message. Each request runs in its own task.
        Returns fn (usable as a decorator)."""
        self.handler = fn
        return fn

    async def recv(self, timeout=None):
        """Next event: ('message', Message), ('send-error', IpchubError) or
        ('name-lost', IpchubError). Raises TIMEOUT, or CLOSED (or the error
        that ended the connection)."""
        try:
            item = await asyncio.wait_for(self._inbox.get(), timeout)
        except asyncio.TimeoutError:
            raise errors.make("TIMEOUT", "nothing received within %rs" % timeout) from None
        if item is None:
            self._inbox.put_nowait(None)
            raise self._closed_error()
        self._release(item[0])
        return item[1]

    async def publish(self, topic, value):
        """Publish; returns the id. Refusals arrive from recv() as send errors."""
        rid = self._new_id()
        await self._write(self._publish_frame(rid, topic, value))
        return rid

    async def subscribe(self, pattern, policy="drop-oldest", callback=None):
        """Subscribe to `pattern` (section 10.1). Returns a Subscription once
        the broker accepted it. Raises BAD_NAME, LIMIT, INVALID."""
        s = Subscription(self, pattern, policy, callback)
        rid, data = self._sub_frame(s)
        fut = self._expect(rid)
        try:
            await self._write(data)
            f, _ = await asyncio.wait_for(fut, self.timeout)
            if f["kind"] == KIND["ERROR"]:
                raise core.answer_error(f, rid)
        except asyncio.TimeoutError:
            self._subs.pop(rid, None)
            self._pending.pop(rid, None)
            raise errors.make("TIMEOUT", "no answer", id=rid) from None
        except errors.IpchubError:
            self._subs.pop(rid, None)
            self._pending.pop(rid, None)
            raise
        return s

    async def watch(self, name, callback=None):
        """Watch `name`'s owner; returns a Watch after the broker's first
        answer (callback gets every event). Raises BAD_NAME, LIMIT."""
        w = Watch(self, name, callback)
        rid, data = self._watch_frame(w)
        # An ERROR answer (BAD_NAME, LIMIT) comes as a pending answer with the same id.
        fut = self._expect(rid)
        try:
            await self._write(data)
            seen = asyncio.ensure_future(w._changed.wait())
            done, _ = await asyncio.wait({fut, seen}, timeout=self.timeout,
                                         return_when=asyncio.FIRST_COMPLETED)
            seen.cancel()
            if fut in done:
                f, _ = fut.result()
                raise core.answer_error(f, rid)
            if not w.seen:
                if self.closed:
                    raise self._closed_error()
                raise errors.make("TIMEOUT", "no presence answer", id=rid)
        except errors.IpchubError:
            self._watches.pop(rid, None)
            raise
        finally:
            self._pending.pop(rid, None)
        return w

    async def wait_for(self, name, timeout=None):
        """Await until `name` is owned; returns the owner's connection id.
        Raises TIMEOUT, CLOSED."""
        w = await self.watch(name)
        try:
            deadline = None if timeout is None else time.monotonic() + timeout
            while w.owner is None:
                if self.closed:
                    raise self._closed_error()
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    raise errors.make("TIMEOUT", "%s not owned within %rs" % (name, timeout))
                w._changed.clear()
                try:
                    await asyncio.wait_for(w._changed.wait(), left)
                except asyncio.TimeoutError:
                    pass
            return w.owner
        finally:
            try:
                await w.unwatch()
            except errors.IpchubError:
                pass

    async def ping(self):
        """Round trip to the broker, in seconds."""
        t = time.monotonic()
        await self._call(KIND["PING"], {})
        return time.monotonic() - t

    async def peers(self):
        """[{name, conn, pid, uid, auth, key?}] from ipchub.peers ('key' as 'ed25519:HEX')."""
        return self._peers_result(await self.request("ipchub.peers", None, timeout=self.timeout))

    async def stats(self):
        """The broker's counters (ipchub.stats, section 10.5)."""
        return await self.request("ipchub.stats", None, timeout=self.timeout)

    async def close(self):
        """Send BYE and close; pending calls fail with CLOSED; handler and
        callback tasks still running are cancelled."""
        if self.closed:
            return
        if self._up.is_set():
            try:
                await asyncio.wait_for(self._write(frame.encode(KIND["BYE"], {})), self.timeout)
            except (errors.IpchubError, asyncio.TimeoutError):
                pass
        self.closed = True
        self._read_task.cancel()
        self._writer.close()
        try:
            # A broker that parks us never takes what is still buffered: drop it.
            await asyncio.wait_for(self._writer.wait_closed(), self.timeout)
        except (OSError, asyncio.TimeoutError):
            self._writer.transport.abort()
        self._fail_pending(errors.make("CLOSED"))
        self._finish(errors.make("CLOSED"))
        me = asyncio.current_task()
        others = [t for t in list(self._tasks) + [self._read_task] if t is not me]
        for t in others:
            t.cancel()
        await asyncio.gather(*others, return_exceptions=True)

    async def __aenter__(self):
        return self

    async def __aexit__(self, *exc):
        await self.close()


async def _run_callback(fn, arg):
    try:
        v = fn(arg)
        if inspect.isawaitable(v):
            await v
    except Exception:  # a callback's failure is its own; the hub goes on
        traceback.print_exc(file=sys.stderr)


async def connect(name=None, names=(), socket=None, timeout=5.0, agent=None, reconnect=True,
                  key=None):
    """Connect to ipchubd and register `name` (default $IPCHUB_NAME) and
    `names`, as ipchub.connect() does. Raises NO_BROKER, TIMEOUT,
    NAME_TAKEN, BAD_NAME, UNSUPPORTED_VERSION, BAD_KEY, AUTH_FAILED,
    NOT_AUTHORIZED."""
    hub = Hub(socket, timeout, agent, reconnect, core.key_option(key))
    await hub._open()
    hub._start()
    try:
        for n in core.initial_names(name, names):
            await hub.register(n)
    except errors.IpchubError:
        await hub.close()
        raise
    return hub
