"""A fake broker in Python sends malformed frames: every case must end in a
clean typed error (at connect, or from the next call), never a hang; for
the blocking client and for the asyncio one (ipchub.aio)."""

import asyncio
import os
import socket
import struct
import tempfile
import threading

import msgpack
import pytest

import ipchub
from ipchub import errors, frame

WELCOME = frame.encode(2, {})[:0] + (lambda h: struct.pack(">I", len(h)) + h)(
    msgpack.packb({0: 2, 9: 1, 11: 7, 13: "0" * 32, 14: 1 << 20}))


def h(d, body=b""):
    raw = msgpack.packb(d, use_bin_type=True)
    return struct.pack(">I", len(raw) + len(body)) + raw + body


class FakeBroker:
    """Accepts one client, reads its HELLO, writes `script` bytes, then
    (with close=True) closes, else keeps the socket open until stopped."""

    def __init__(self, script, close):
        self.dir = tempfile.mkdtemp(prefix="ipchub-py-fake-")
        self.path = os.path.join(self.dir, "s")
        self.ls = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.ls.bind(self.path)
        self.ls.listen(1)
        self.script, self.close = script, close
        self.stop = threading.Event()
        self.t = threading.Thread(target=self.run, daemon=True)
        self.t.start()

    def run(self):
        c, _ = self.ls.accept()
        self.conn = c
        c.recv(4096)
        for part in self.script:
            c.sendall(part)
        if not self.close:
            self.stop.wait(10)
        c.close()

    def done(self):
        self.stop.set()
        self.t.join(5)
        self.ls.close()
        os.unlink(self.path)
        os.rmdir(self.dir)


HANDSHAKE_CASES = [
    ("truncated then close", [b"\x00\x00\x00\x20\x85\x00"], errors.IO),
    ("welcome not a map", [h([2])], errors.BAD_FRAME),
    ("welcome missing keys", [h({0: 2, 9: 1})], errors.BAD_FRAME),
    ("close at once", [], errors.IO),
    ("huge before welcome", [b"\x01\x00\x00\x00"], errors.TOO_LARGE),
]
CASES = [
    ("bad length", [WELCOME, b"\x00\x00\x00\x01\x80"], errors.BAD_FRAME),
    ("header not a map", [WELCOME, h([6, 1])], errors.BAD_FRAME),
    ("unknown key", [WELCOME, h({0: 6, 1: 1, 31: 1})], errors.BAD_FRAME),
    ("oversized length", [WELCOME, b"\x7f\xff\xff\xff"], errors.TOO_LARGE),
    ("garbage body", [WELCOME, h({0: 11, 1: 1, 2: "a", 5: 1}, b"\xc1")], errors.BAD_BODY),
    ("truncated body", [WELCOME, h({0: 11, 1: 1, 2: "a", 5: 1}, b"\x92\x01")], errors.BAD_BODY),
    ("wrong direction", [WELCOME, h({0: 7, 1: 1, 6: "x"})], errors.BAD_FRAME),
    ("second welcome", [WELCOME, WELCOME], errors.PROTOCOL),
]


@pytest.mark.parametrize("name,script,exc", CASES, ids=[c[0] for c in CASES])
def test_malformed_after_welcome(name, script, exc):
    fb = FakeBroker(script, close=False)
    hub = None
    try:
        hub = ipchub.connect(socket=fb.path, key="", reconnect=False, timeout=5)
        with pytest.raises(exc):
            hub.recv(timeout=5)
        with pytest.raises(exc):
            hub.ping()
    finally:
        if hub:
            hub.close()
        fb.done()


@pytest.mark.parametrize("name,script,exc", HANDSHAKE_CASES, ids=[c[0] for c in HANDSHAKE_CASES])
def test_malformed_handshake(name, script, exc):
    fb = FakeBroker(script, close=True)
    try:
        with pytest.raises(exc):
            ipchub.connect(socket=fb.path, key="", reconnect=False, timeout=5)
    finally:
        fb.done()


def test_silent_broker_times_out():
    fb = FakeBroker([], close=False)
    try:
        with pytest.raises(errors.TIMEOUT):
            ipchub.connect(socket=fb.path, key="", reconnect=False, timeout=0.3)
    finally:
        fb.done()


def arun(coro):
    async def bounded():
        return await asyncio.wait_for(coro, 30)
    return asyncio.run(bounded())


@pytest.mark.parametrize("name,script,exc", CASES, ids=[c[0] for c in CASES])
def test_aio_malformed_after_welcome(name, script, exc):
    fb = FakeBroker(script, close=False)

    async def main():
        hub = await ipchub.aio.connect(socket=fb.path, key="", reconnect=False, timeout=5)
        try:
            with pytest.raises(exc):
                await hub.recv(timeout=5)
            with pytest.raises(exc):
                await hub.ping()
        finally:
            await hub.close()
    try:
        arun(main())
    finally:
        fb.done()


@pytest.mark.parametrize("name,script,exc", HANDSHAKE_CASES, ids=[c[0] for c in HANDSHAKE_CASES])
def test_aio_malformed_handshake(name, script, exc):
    fb = FakeBroker(script, close=True)

    async def main():
        with pytest.raises(exc):
            await ipchub.aio.connect(socket=fb.path, key="", reconnect=False, timeout=5)
    try:
        arun(main())
    finally:
        fb.done()


def test_aio_silent_broker_times_out():
    fb = FakeBroker([], close=False)

    async def main():
        with pytest.raises(errors.TIMEOUT):
            await ipchub.aio.connect(socket=fb.path, key="", reconnect=False, timeout=0.3)
    try:
        arun(main())
    finally:
        fb.done()


def test_aio_pending_call_fails_when_broker_goes_mad():
    # A call in flight when the bad frame arrives fails with the frame's error.
    fb = FakeBroker([WELCOME], close=False)

    async def main():
        hub = await ipchub.aio.connect(socket=fb.path, key="", reconnect=False, timeout=5)
        try:
            call = asyncio.ensure_future(hub.request("x", 1, timeout=20))
            await asyncio.sleep(0)
            fb.conn.sendall(h([1]))
            with pytest.raises(errors.BAD_FRAME):
                await call
        finally:
            await hub.close()
    try:
        arun(main())
    finally:
        fb.done()
