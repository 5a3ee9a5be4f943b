"""The asyncio client (ipchub.aio) against a real ipchubd on a temporary
socket. Each test is one asyncio.run() bounded by an overall timeout; waits
are on conditions (answers, events), never fixed sleeps."""

import asyncio
import os
import socket as so
import struct
import subprocess

import msgpack
import pytest

import ipchub
from ipchub import aio, errors, frame
from conftest import IPCHUBD, Broker

LIMIT = 30   # seconds, per test, however loaded the machine


def run(coro):
    async def bounded():
        return await asyncio.wait_for(coro, LIMIT)
    return asyncio.run(bounded())


async def conn(broker, **kw):
    return await aio.connect(socket=broker.socket, key="", **kw)


def test_send_recv_and_stamps(broker):
    async def main():
        a, b = await conn(broker, name="a"), await conn(broker, name="b")
        try:
            mid = await a.send("b", {"hello": "world", 1: 2})
            kind, m = await b.recv(timeout=10)
            assert kind == "message" and m.body == {"hello": "world", 1: 2}
            assert m.id == mid and m.to == "b" and m.raw == ipchub.codec.encode(m.body)
            assert m.sender.name == "a" and m.sender.id == a.conn_id
            assert m.sender.uid == os.getuid()
            await a.send("nobody", 1)
            kind, e = await a.recv(timeout=10)
            assert kind == "send-error" and isinstance(e, errors.NO_SUCH_PEER) and e.id > mid
            with pytest.raises(errors.TIMEOUT):
                await b.recv(timeout=0.05)
        finally:
            await a.close()
            await b.close()
    run(main())


def test_register_errors(broker):
    async def main():
        a, b = await conn(broker, name="svc"), await conn(broker)
        try:
            with pytest.raises(errors.NAME_TAKEN) as ei:
                await b.register("svc")
            assert ei.value.code == "NAME_TAKEN" and ei.value.code_number == 6
            with pytest.raises(errors.BAD_NAME):
                await b.register("ipchub.x")
            with pytest.raises(errors.NOT_OWNER):
                await b.unregister("svc")
            await b.register("other")
            await b.unregister("other")
            assert b.names == []
            with pytest.raises(errors.NAME_TAKEN):
                await conn(broker, name="svc")
        finally:
            await a.close()
            await b.close()
    run(main())


def test_request_reply_handlers_and_errors(broker):
    async def main():
        s, c = await conn(broker, name="calc"), await conn(broker)
        gate = asyncio.Event()
        try:
            async def h(body, sender, ctx):
                if body == "fail":
                    raise ValueError("bad input")
                if body == "slow":
                    await gate.wait()
                if body == "nested":   # a handler may itself await a request
                    return await s.request("ipchub.ping", "inner")
                return {"sum": body["a"] + body["b"], "from": sender.id, "to": ctx["to"]}
            s.handle(h)
            assert await c.request("calc", {"a": 1, "b": 2}) == \
                {"sum": 3, "from": c.conn_id, "to": "calc"}
            v, who = await c.request("calc", {"a": 1, "b": 1}, with_sender=True)
            assert who.name == "calc" and who.id == s.conn_id
            assert await c.request("calc", "nested") == "inner"
            with pytest.raises(errors.REMOTE_ERROR) as ei:
                await c.request("calc", "fail")
            assert "bad input" in str(ei.value) and ei.value.code_number == 16
            with pytest.raises(errors.NO_SUCH_PEER):
                await c.request("nobody", 1)
            with pytest.raises(errors.TIMEOUT) as ei:
                await c.request("calc", "slow", timeout=0.1)
            assert ei.value.code == "TIMEOUT"
            gate.set()
            # Requests run concurrently; a plain function handler works too.
            s.handle(lambda body, sender, ctx: body * 2)
            got = await asyncio.gather(*(c.request("calc", i) for i in range(20)))
            assert got == [i * 2 for i in range(20)]
        finally:
            await s.close()
            await c.close()
    run(main())


def test_ping_peers_stats(broker):
    async def main():
        a = await conn(broker, name="alpha")
        try:
            assert await a.ping() >= 0
            peers = await a.peers()
            assert [p["name"] for p in peers] == ["alpha"] and peers[0]["conn"] == a.conn_id
            st = await a.stats()
            assert st["connections"] >= 1 and "messages_routed" in st
        finally:
            await a.close()
    run(main())


def test_pubsub_callback_and_policy_errors(broker):
    async def main():
        p, s = await conn(broker), await conn(broker)
        try:
            sub = await s.subscribe("sensors.*.temp")
            got = asyncio.Queue()

            async def cb(pub):
                await got.put(pub)
            await s.subscribe("sensors.>", callback=cb)
            await p.publish("sensors.kitchen.temp", 21.5)
            pub = await sub.get(timeout=10)
            assert pub.body == 21.5 and pub.topic == "sensors.kitchen.temp" and pub.gap == 0
            assert pub.sender.id == p.conn_id
            assert (await asyncio.wait_for(got.get(), 10)).body == 21.5
            with pytest.raises(errors.BAD_NAME):
                await s.subscribe("a..b")
            with pytest.raises(errors.INVALID):
                await s.subscribe("a", policy="nope")
            await sub.unsubscribe()
            await p.publish("ipchub.x", 1)
            kind, e = await p.recv(timeout=10)
            assert kind == "send-error" and isinstance(e, errors.BAD_NAME)
        finally:
            await p.close()
            await s.close()
    run(main())


def test_gap_notice_drop_oldest():
    b = Broker("--sub-queue", "1", "--queue-hwm", "65536")

    async def main():
        p, s = await conn(b), await conn(b)
        try:
            # Nothing is taken until all is published: past held_max the hub
            # stops reading, so the broker's policy drops (and says so with GAP).
            s.held_max = 64 * 1024
            sub = await s.subscribe("t", policy="drop-oldest")
            for i in range(300):
                await p.publish("t", [i, b"x" * 16384])
            await p.publish("t", ["end", b""])
            await p.ping()
            assert s._held <= s.held_max + ipchub.core.READ_CHUNK + 2 * 16384 + 1024
            got, gaps = [], 0
            async for pub in sub:
                gaps += pub.gap
                if pub.body[0] == "end":
                    break
                got.append(pub.body[0])
            assert gaps > 0 and sub.drops == gaps
            assert len(got) + gaps == 300 and got == sorted(got)
        finally:
            await p.close()
            await s.close()
    try:
        run(main())
    finally:
        b.stop()


def test_watch_and_wait_for(broker):
    async def main():
        w, o = await conn(broker), await conn(broker)
        try:
            evs = asyncio.Queue()
            watch = await w.watch("svc.db", callback=evs.put_nowait)
            assert watch.owner is None
            waiter = asyncio.ensure_future(w.wait_for("svc.db", timeout=20))
            await o.register("svc.db")
            assert await waiter == o.conn_id
            await o.unregister("svc.db")
            seen = [(await asyncio.wait_for(evs.get(), 10))["event"] for _ in range(3)]
            assert seen == ["unowned", "registered", "released"] and watch.owner is None
            with pytest.raises(errors.TIMEOUT):
                await w.wait_for("never", timeout=0.1)
            with pytest.raises(errors.BAD_NAME):
                await w.watch("bad..name")
            await watch.unwatch()
        finally:
            await w.close()
            await o.close()
    run(main())


def test_batch_received_and_split(broker):
    async def main():
        r = await conn(broker, name="rcv")
        raw = so.socket(so.AF_UNIX, so.SOCK_STREAM)
        try:
            raw.connect(broker.socket)
            raw.sendall(frame.encode(1, {"ver": 1, "ver_min": 1, "flags": 2}))
            buf = bytearray()
            while len(buf) < 4 or len(buf) < 4 + struct.unpack(">I", buf[:4])[0]:
                buf += raw.recv(4096)
            els = [msgpack.packb(v) for v in ("m0", {"k": 1}, [2])]
            body = b"\xdd" + struct.pack(">I", 3) + b"".join(els)
            raw.sendall(frame.encode(11, {"id": 40, "to": "rcv", "flags": 2}, body))
            got = [(await r.recv(timeout=10))[1] for _ in range(3)]
            assert [(m.id, m.body, m.raw) for m in got] == \
                [(40, "m0", els[0]), (41, {"k": 1}, els[1]), (42, [2], els[2])]
        finally:
            raw.close()
            await r.close()
    run(main())


def test_unread_messages_fill_the_broker_queue_not_ours():
    # A receiver that does not take its messages stops reading past
    # held_max: the broker queues for it and refuses a NOWAIT send with
    # QUEUE_FULL (section 8); nothing is lost, the hub holds a bounded amount.
    b = Broker("--queue-hwm", "65536")

    async def main():
        r = await conn(b, name="slow")
        r.held_max = 64 * 1024
        p = await conn(b)
        try:
            for i in range(300):
                await p.send("slow", [i, b"z" * 16384], nowait=True)
            await p.ping()
            refused = set()
            while True:
                try:
                    kind, e = await p.recv(timeout=0.5)
                except errors.TIMEOUT:
                    break
                assert kind == "send-error" and isinstance(e, errors.QUEUE_FULL)
                refused.add(e.id)
            assert refused
            assert r._held <= r.held_max + ipchub.core.READ_CHUNK + 2 * 16384 + 1024
            got = [(await r.recv(timeout=20))[1].body[0] for _ in range(300 - len(refused))]
            assert got == sorted(got) and len(set(got)) == len(got)
        finally:
            await r.close()
            await p.close()
    try:
        run(main())
    finally:
        b.stop()


def test_blocking_and_aio_talk(broker):
    # The two clients share the protocol code; each answers the other.
    blocking = ipchub.connect(socket=broker.socket, key="", name="sync")
    blocking.handle(lambda body, sender, ctx: ["sync", body])

    async def main():
        a = await conn(broker, name="async")
        a.handle(lambda body, sender, ctx: ["async", body])
        try:
            assert await a.request("sync", 1) == ["sync", 1]
            r = await asyncio.get_running_loop().run_in_executor(
                None, lambda: blocking.request("async", 2, timeout=10))
            assert r == ["async", 2]
        finally:
            await a.close()
    try:
        run(main())
    finally:
        blocking.close()


def test_reconnect_reregisters_and_resubscribes():
    b = Broker()

    async def main():
        a = await conn(b, name="keeper")
        seen = asyncio.Queue()
        await a.watch("other", callback=seen.put_nowait)
        assert (await seen.get())["event"] == "unowned"
        sub = await a.subscribe("news")
        first = a.conn_id
        b.proc.terminate()
        b.proc.wait(10)
        if os.path.exists(b.socket):
            os.unlink(b.socket)
        b.proc = subprocess.Popen([IPCHUBD, "--socket", b.socket, "--log-level", "warn"])
        p = None
        try:
            while True:   # until the broker is up and "keeper" is registered again
                try:
                    p = await conn(b, reconnect=False, name="other")
                    if any(x["name"] == "keeper" for x in await p.peers()):
                        break
                    await p.close()
                    p = None
                except errors.IpchubError:
                    pass
                await asyncio.sleep(0.05)
            assert a.conn_id is not None and (a.conn_id != first or a.broker_id)
            # The watch was restored: "other" may be registered before or after it.
            while (await asyncio.wait_for(seen.get(), 20))["event"] not in ("owned", "registered"):
                pass
            while True:   # the subscription may be restored a moment after the name
                await p.publish("news", "again")
                try:
                    assert (await sub.get(timeout=0.2)).body == "again"
                    break
                except errors.TIMEOUT:
                    continue
        finally:
            await a.close()
            if p:
                await p.close()
    try:
        run(main())
    finally:
        b.stop()


def test_closed_and_no_broker(broker, tmp_path):
    async def main():
        with pytest.raises(errors.NO_BROKER):
            await aio.connect(socket=str(tmp_path / "none.sock"), key="")
        a = await conn(broker)
        await a.close()
        with pytest.raises(errors.CLOSED):
            await a.send("x", 1)
        with pytest.raises(errors.CLOSED):
            await a.recv(timeout=1)
    run(main())
