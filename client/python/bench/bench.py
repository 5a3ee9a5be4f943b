"""bench.py - the ipchub-python rows of bench/run: the blocking Python client
(ipchub.connect) through a real ipchubd, one JSON result line on stdout in
the form of client/node/bench/common.js's report().

  /usr/bin/python3 bench.py thru --socket S --size 64 --count 200000
  /usr/bin/python3 bench.py rtt  --socket S --size 64 --count 20000

thru: this process is the producer; it starts the consumer (this file,
--role consumer) as a child process, sends --warmup messages, then --count
messages whose body is a bin of --size bytes (send() blocks while the
broker parks us: backpressure, nothing dropped); the consumer tells the
producer when the last one arrived; msgs_per_s = count / that time.
rtt: the child answers requests with their body; this process does
--count sequential requests and reports p50/p99/p99.9 in microseconds.
"""

import argparse
import contextlib
import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import ipchub  # noqa: E402

WAIT = 120   # seconds for any one message; bench/run kills the whole run sooner


def report(workload, size, count, secs, lat=None):
    def pct(p):
        i = min(len(lat) - 1, max(0, -(-int(p * len(lat)) // 100) - 1))
        return round(lat[i], 1)
    mps = count / secs
    if lat:
        lat.sort()
    print(json.dumps({"system": "ipchub-python", "workload": workload, "size_bytes": size,
                      "msgs_per_s": round(mps), "mb_per_s": round(mps * size / 1e6, 2),
                      "p50_us": pct(50) if lat else None, "p99_us": pct(99) if lat else None,
                      "p999_us": pct(99.9) if lat else None}), flush=True)


def hub(opt, role):
    return ipchub.connect(socket=opt.socket, name="%s-%s" % (role, opt.tag), key="",
                          reconnect=False, timeout=WAIT)


def control(h):
    """The next message's body (the peer's control messages)."""
    kind, m = h.recv(timeout=WAIT)
    if kind != "message":
        raise m
    return m


@contextlib.contextmanager
def with_peer(opt, me, role):
    """This process's hub (name me) and the peer child (this file, --role
    role), which says it is ready; both ended on the way out."""
    h = hub(opt, me)
    c = subprocess.Popen([sys.executable, os.path.abspath(__file__), opt.workload, "--role",
                          role, "--socket", opt.socket, "--tag", opt.tag,
                          "--warmup", str(opt.warmup)], stdin=subprocess.DEVNULL)
    try:
        control(h)   # ready
        yield h, b"\x5a" * opt.size
        c.wait(WAIT)
    finally:
        if c.poll() is None:
            c.kill()
            c.wait()
        h.close()


def consumer(opt):
    h = hub(opt, "py-tp-consumer")
    h.send("py-tp-producer-" + opt.tag, {"ready": True})
    target, n = opt.warmup, 0
    while True:
        m = control(h)
        if isinstance(m.body, dict):
            if "phase" in m.body:
                target, n = m.body["phase"], 0
                continue
            break   # {"stop": True}
        n += 1
        if n == target:
            h.send(m.sender.name, {"done": n})
    h.close()


def producer(opt):
    peer = "py-tp-consumer-" + opt.tag
    with with_peer(opt, "py-tp-producer", "consumer") as (h, payload):
        for _ in range(opt.warmup):
            h.send(peer, payload)
        control(h)
        h.send(peer, {"phase": opt.count})
        t0 = time.perf_counter()
        for _ in range(opt.count):
            h.send(peer, payload)
        control(h)
        report("throughput", opt.size, opt.count, time.perf_counter() - t0)
        h.send(peer, {"stop": True})


def responder(opt):
    h = hub(opt, "py-rtt-responder")
    h.handle(lambda body, sender, ctx: body)
    h.send("py-rtt-requester-" + opt.tag, {"ready": True})
    control(h)   # {"stop": True}
    h.close()


def requester(opt):
    peer = "py-rtt-responder-" + opt.tag
    with with_peer(opt, "py-rtt-requester", "responder") as (h, payload):
        for _ in range(opt.warmup):
            h.request(peer, payload, timeout=WAIT)
        lat = []
        clock = time.perf_counter_ns
        t0 = clock()
        for _ in range(opt.count):
            s = clock()
            h.request(peer, payload, timeout=WAIT)
            lat.append((clock() - s) / 1e3)
        report("rtt", opt.size, opt.count, (clock() - t0) / 1e9, lat)
        h.send(peer, {"stop": True})


def main():
    ap = argparse.ArgumentParser(description="ipchub-python benchmark (bench/run)")
    ap.add_argument("workload", choices=("thru", "rtt"))
    ap.add_argument("--socket", default=None)
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--count", type=int, default=100000)
    ap.add_argument("--warmup", type=int, default=None)
    ap.add_argument("--samples", default=None, help="accepted for bench/run; not written")
    ap.add_argument("--role", default=None)
    ap.add_argument("--tag", default=str(os.getpid()))
    opt = ap.parse_args()
    if opt.warmup is None:
        opt.warmup = max(1, min(5000, opt.count // 10))
    roles = {("thru", None): producer, ("thru", "consumer"): consumer,
             ("rtt", None): requester, ("rtt", "responder"): responder}
    roles[(opt.workload, opt.role)](opt)


if __name__ == "__main__":
    main()
