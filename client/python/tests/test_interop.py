"""Byte-exact interop (PROTOCOL.md section 11) between the Python client and
the C client (tests/interop/c_peer, libipchub + msgpack-c) and the Node
client (tests/node_peer.js, client/node), both directions, through a real
ipchubd. The receiver of each body reports its exact bytes (the C peer as
a bin echo, Python from Message.raw); on a mismatch the hex is printed."""

import os
import subprocess

import pytest

import ipchub
from ipchub import codec
from samples import SAMPLES

HERE = os.path.dirname(os.path.abspath(__file__))
BUILD = os.path.dirname(os.path.dirname(os.environ.get("IPCHUBD") or os.path.join(
    HERE, "..", "..", "..", "build", "broker", "ipchubd")))
C_PEER = os.environ.get("IPCHUB_C_PEER") or os.path.join(BUILD, "tests", "interop", "c_peer")
NODE = os.environ.get("IPCHUB_NODE") or "/usr/bin/node"
WAIT = 20   # seconds for any one answer, however loaded the machine


def same(what, got, want):
    assert got == want, "%s: got %s, want %s" % (what, got.hex()[:200], want.hex()[:200])


def start(argv):
    p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE)
    line = p.stdout.readline()   # "... ready", or '' if it died
    if b"ready" not in line:
        p.kill()
        p.wait()
        pytest.fail("%s did not start (%r)" % (argv[0], line))
    return p


def stop(p, hub, bye):
    try:
        if hub:
            bye(hub)
        assert p.wait(WAIT) == 0, "%s exited with %s" % (p.args[0], p.returncode)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
        p.stdout.close()
        if hub:
            hub.close()


def next_message(hub):
    kind, m = hub.recv(timeout=WAIT)
    assert kind == "message", (kind, m)
    return m


def test_python_and_c_byte_exact_both_ways(broker):
    assert os.path.exists(C_PEER), "c_peer not built at %s" % C_PEER
    p = start([C_PEER, broker.socket, "py-peer"])
    hub = None
    try:
        hub = ipchub.connect(socket=broker.socket, key="", name="py-peer", reconnect=False,
                             timeout=WAIT)
        # Python -> C: the C peer answers / sends back a bin of the bytes it got.
        for name, value, hx, _ in SAMPLES:
            want = bytes.fromhex(hx)
            # request(to, None) sends no body (PROTOCOL.md: a REQUEST's body is optional).
            same("request " + name, hub.request("c-peer", value, timeout=WAIT),
                 want if value is not None else b"")
            hub.send("c-peer", value)
            same("send " + name, next_message(hub).body, want)
        # C -> Python: c_peer requests (our handler answers with the decoded
        # value, re-encoded), then sends its sample, which we send back
        # re-encoded; c_peer compares both with the bytes msgpack-c wrote.
        hub.handle(lambda body, sender, ctx: body)
        hub.send("c-peer", "c-go")
        m = next_message(hub)
        print("C sample:", m.raw.hex())
        assert m.body["u64max"] == 2 ** 64 - 1 and m.body["i64min"] == -2 ** 63
        assert m.body["ext5"] == codec.msgpack.ExtType(5, b"ext")
        assert m.body["time"].timestamp() == 0x6553F100
        same("C sample re-encoded", codec.encode(m.body), m.raw)
        hub.send("c-peer", m.body)
        assert next_message(hub).body == "c-ok"
    finally:
        stop(p, hub, lambda h: h.send("c-peer", "c-bye"))


def test_python_and_node_byte_exact_both_ways(broker):
    assert os.path.exists(NODE), "node not found at %s (set IPCHUB_NODE)" % NODE
    p = start([NODE, os.path.join(HERE, "node_peer.js"), broker.socket])
    hub = None
    try:
        hub = ipchub.connect(socket=broker.socket, key="", name="py-peer", reconnect=False,
                             timeout=WAIT)
        # Python -> Node: Node decodes and answers with its own encoding,
        # which must be Python's bytes (Node writes ext 1 always as ext 32).
        for name, value, hx, node_hx in SAMPLES:
            if name == "unknown ext 5":
                continue   # Node surfaces it as ExtData; checked from Node's side below
            same("Node re-encoding " + name, hub.request("js-peer", value, timeout=WAIT),
                 bytes.fromhex(node_hx or hx))
        # Node -> Python: the bytes that arrive are the bytes Node wrote, and
        # Python writes the decoded value back the same (ext 1: same value).
        i = 0
        while True:
            want = hub.request("js-peer", ["js-sample", i], timeout=WAIT)
            if want is None:
                break
            m = next_message(hub)
            same("Node sample %d as received" % i, m.raw, want)
            if want[0] == 0xC9 and want[5] == 1:
                assert codec.decode(codec.encode(m.body)) == m.body
            else:
                same("Node sample %d re-encoded" % i, codec.encode(m.body), want)
            i += 1
        assert i >= 40
    finally:
        stop(p, hub, lambda h: h.request("js-peer", ["js-bye"], timeout=WAIT))
