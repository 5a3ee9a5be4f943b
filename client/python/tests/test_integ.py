"""Integration tests against a real ipchubd on a temporary socket."""

import os
import threading
import time

import pytest

import ipchub
from ipchub import errors


# What a hub may hold beyond held_max: one read's worth of frames and a partial one.
READ_BOUND = ipchub.core.READ_CHUNK + 2 * 16384 + 1024


def conn(broker, **kw):
    return ipchub.connect(socket=broker.socket, key="", **kw)


def test_send_recv_and_stamps(broker):
    a, b = conn(broker, name="a"), conn(broker, name="b")
    try:
        mid = a.send("b", {"hello": "world", 1: 2})
        kind, m = b.recv(timeout=5)
        assert kind == "message" and m.body == {"hello": "world", 1: 2}
        assert m.id == mid and m.to == "b"
        assert m.sender.name == "a" and m.sender.id == a.conn_id and m.sender.uid == os.getuid()
        a.send("nobody", 1)
        kind, e = a.recv(timeout=5)
        assert kind == "send-error" and isinstance(e, errors.NO_SUCH_PEER) and e.id > mid
    finally:
        a.close()
        b.close()


def test_register_errors(broker):
    a, b = conn(broker, name="svc"), conn(broker)
    try:
        with pytest.raises(errors.NAME_TAKEN):
            b.register("svc")
        with pytest.raises(errors.BAD_NAME):
            b.register("ipchub.x")
        with pytest.raises(errors.NOT_OWNER):
            b.unregister("svc")
        b.register("other")
        b.unregister("other")
        assert b.names == []
        with pytest.raises(errors.NAME_TAKEN) as ei:
            conn(broker, name="svc")
        assert ei.value.code == "NAME_TAKEN"
    finally:
        a.close()
        b.close()


def test_request_reply_and_errors(broker):
    s, c = conn(broker, name="calc"), conn(broker)
    try:
        @s.handle
        def h(body, sender, ctx):
            if body == "fail":
                raise ValueError("bad input")
            if body == "slow":
                time.sleep(0.5)
            return {"sum": body["a"] + body["b"], "from": sender.id}
        assert c.request("calc", {"a": 1, "b": 2}) == {"sum": 3, "from": c.conn_id}
        v, who = c.request("calc", {"a": 1, "b": 1}, with_sender=True)
        assert who.name == "calc" and who.id == s.conn_id
        with pytest.raises(errors.REMOTE_ERROR) as ei:
            c.request("calc", "fail")
        assert "bad input" in str(ei.value) and ei.value.code_number == 16
        with pytest.raises(errors.NO_SUCH_PEER):
            c.request("nobody", 1)
        with pytest.raises(errors.TIMEOUT):
            c.request("calc", "slow", timeout=0.1)
        assert c.request("calc", {"a": 2, "b": 2}) == {"sum": 4, "from": c.conn_id}
    finally:
        s.close()
        c.close()


def test_peer_gone(broker):
    s, c = conn(broker, name="svc"), conn(broker)
    s.reconnect = False
    s.handle(lambda body, sender, ctx: time.sleep(1))
    try:
        t = threading.Timer(0.2, s._sock.shutdown, args=(2,))
        t.start()
        with pytest.raises(errors.PEER_GONE):
            c.request("svc", 1, timeout=5)
    finally:
        s.reconnect = False
        s.close()
        c.close()


def test_ping_peers_stats(broker):
    a = conn(broker, name="alpha")
    try:
        assert a.ping() >= 0
        peers = a.peers()
        assert [p["name"] for p in peers] == ["alpha"] and peers[0]["conn"] == a.conn_id
        st = a.stats()
        assert st["connections"] >= 1 and "messages_routed" in st
        assert a.request("ipchub.ping", [1, "x"]) == [1, "x"]
    finally:
        a.close()


def test_pubsub_and_callback(broker):
    p, s = conn(broker), conn(broker)
    try:
        sub = s.subscribe("sensors.*.temp")
        got = []
        ev = threading.Event()
        s.subscribe("sensors.>", callback=lambda pub: (got.append(pub), ev.set()))
        p.publish("sensors.kitchen.temp", 21.5)
        pub = sub.get(timeout=5)
        assert pub.body == 21.5 and pub.topic == "sensors.kitchen.temp" and pub.gap == 0
        assert pub.sender.id == p.conn_id
        assert ev.wait(5) and got[0].body == 21.5
        with pytest.raises(errors.BAD_NAME):
            s.subscribe("a..b")
        with pytest.raises(errors.INVALID):
            s.subscribe("a", policy="nope")
        sub.unsubscribe()
        p.publish("ipchub.x", 1)
        kind, e = p.recv(timeout=5)
        assert kind == "send-error" and isinstance(e, errors.BAD_NAME)
    finally:
        p.close()
        s.close()


def _stall_reader(h):
    """Make h's reader thread stop at its next frame until the event is set."""
    go = threading.Event()
    orig = h._route

    def slow(*a):
        go.wait()
        return orig(*a)
    h._route = slow
    return go


def test_gap_notice_drop_oldest():
    from conftest import Broker
    b = Broker("--sub-queue", "1", "--queue-hwm", "65536")
    p = s = None
    try:
        p, s = ipchub.connect(socket=b.socket, key=""), ipchub.connect(socket=b.socket, key="")
        # Nothing is read until all is published: past held_max the hub
        # stops reading, so the broker's policy drops (and says so with GAP).
        s.held_max = 64 * 1024
        sub = s.subscribe("t", policy="drop-oldest")
        for i in range(300):
            p.publish("t", [i, b"x" * 16384])
        p.publish("t", ["end", b""])
        p.ping()
        assert s._held <= s.held_max + READ_BOUND
        got, gaps = [], 0
        while True:
            pub = sub.get(timeout=5)
            gaps += pub.gap
            if pub.body[0] == "end":
                break
            got.append(pub.body[0])
        assert gaps > 0 and sub.drops == gaps
        assert len(got) + gaps == 300 and got == sorted(got)
    finally:
        for h in (p, s):
            if h:
                h.close()
        b.stop()


def test_watch_and_wait_for(broker):
    w, o = conn(broker), conn(broker)
    try:
        evs = []
        watch = w.watch("svc.db", callback=evs.append)
        assert watch.owner is None
        t = threading.Timer(0.2, o.register, args=("svc.db",))
        t.start()
        assert w.wait_for("svc.db", timeout=5) == o.conn_id
        o.unregister("svc.db")
        deadline = time.monotonic() + 5
        while len(evs) < 3 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert [e["event"] for e in evs] == ["unowned", "registered", "released"]
        assert evs[2]["reason"] == "unregister"
        with pytest.raises(errors.TIMEOUT):
            w.wait_for("never", timeout=0.2)
        with pytest.raises(errors.BAD_NAME):
            w.watch("bad..name")
        watch.unwatch()
    finally:
        w.close()
        o.close()


def test_batch_received_and_split(broker):
    # A raw client sends a batch; the Python receiver (HELLO with BATCH) splits it.
    import socket as so
    import struct
    import msgpack
    from ipchub import frame
    r = conn(broker, name="rcv")
    raw = so.socket(so.AF_UNIX, so.SOCK_STREAM)
    try:
        raw.connect(broker.socket)
        raw.sendall(frame.encode(1, {"ver": 1, "ver_min": 1, "flags": 2}))
        buf = bytearray()
        while True:
            buf += raw.recv(4096)
            if len(buf) >= 4 and len(buf) >= 4 + struct.unpack(">I", buf[:4])[0]:
                break
        els = [msgpack.packb(v) for v in ("m0", {"k": 1}, [2])]
        body = b"\xdd" + struct.pack(">I", 3) + b"".join(els)
        raw.sendall(frame.encode(11, {"id": 40, "to": "rcv", "flags": 2}, body))
        got = [r.recv(timeout=5)[1] for _ in range(3)]
        assert [(m.id, m.body) for m in got] == [(40, "m0"), (41, {"k": 1}), (42, [2])]
        assert r.stats()["batches_routed"] == 1
    finally:
        raw.close()
        r.close()


def test_backpressure_nowait_queue_full_and_blocking():
    from conftest import Broker
    b = Broker("--queue-hwm", "65536")
    p = s = None
    try:
        s = ipchub.connect(socket=b.socket, key="", name="sink")
        p = ipchub.connect(socket=b.socket, key="")
        go = _stall_reader(s)
        ids = [p.send("sink", [i, b"y" * 16384], nowait=True) for i in range(300)]
        p.ping()
        errs = []
        while True:
            try:
                kind, e = p.recv(timeout=0.5)
            except errors.TIMEOUT:
                break
            errs.append(e)
        assert errs and all(isinstance(e, errors.QUEUE_FULL) for e in errs)
        # Without NOWAIT a send is parked, not refused: a thread blocks until we read.
        done = threading.Event()
        threading.Thread(target=lambda: ([p.send("sink", [i, b"z" * 16384])
                                          for i in range(300, 600)], done.set()),
                         daemon=True).start()
        time.sleep(0.3)
        assert not done.is_set()
        go.set()
        assert done.wait(10)
        failed = {e.id for e in errs}
        seen = set()
        while len(seen) < 600 - len(failed):
            kind, m = s.recv(timeout=5)
            seen.add(m.body[0])
        assert seen.isdisjoint({ids.index(i) for i in failed})
    finally:
        for h in (p, s):
            if h:
                h.close()
        b.stop()


def test_reconnect_reregisters_and_resubscribes():
    from conftest import Broker
    b = Broker()
    a = p = None
    try:
        a = ipchub.connect(socket=b.socket, key="", name="keeper")
        sub = a.subscribe("news")
        first = a.conn_id
        # Restart the broker on the same socket.
        b.proc.terminate()
        b.proc.wait(5)
        os.unlink(b.socket) if os.path.exists(b.socket) else None
        import subprocess
        from conftest import IPCHUBD
        b.proc = subprocess.Popen([IPCHUBD, "--socket", b.socket, "--log-level", "warn"])
        deadline = time.monotonic() + 10
        p = None
        while time.monotonic() < deadline:
            try:
                p = ipchub.connect(socket=b.socket, key="", reconnect=False)
                if any(x["name"] == "keeper" for x in p.peers()):
                    break
                p.close()
                p = None
            except errors.IpchubError:
                pass
            time.sleep(0.05)
        assert p is not None and a.conn_id != first or a.broker_id
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            p.publish("news", "again")
            try:
                assert sub.get(timeout=0.2).body == "again"
                break
            except errors.TIMEOUT:
                continue
        else:
            pytest.fail("subscription not restored")
        assert p.request("ipchub.peers")[0]["name"] == "keeper"
    finally:
        for h in (a, p):
            if h:
                h.close()
        b.stop()


def test_closed_and_no_broker(tmp_path):
    with pytest.raises(errors.NO_BROKER):
        ipchub.connect(socket=str(tmp_path / "none.sock"), key="")


def test_close_fails_calls(broker):
    a = conn(broker)
    a.close()
    with pytest.raises(errors.CLOSED):
        a.send("x", 1)
    with pytest.raises(errors.CLOSED):
        a.recv(timeout=1)
