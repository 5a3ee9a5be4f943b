"""bench/bench.py (the ipchub-python rows of bench/run) runs both workloads
to the end with tiny counts and prints one well-formed result line each;
nothing about speed is asserted."""

import json
import os
import subprocess
import sys

import pytest

BENCH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "bench", "bench.py")


@pytest.mark.parametrize("workload,count", [("thru", 2000), ("rtt", 200)])
def test_bench_script_reports(broker, workload, count):
    out = subprocess.run([sys.executable, BENCH, workload, "--socket", broker.socket,
                          "--size", "64", "--count", str(count)],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    r = json.loads(out.stdout.strip().splitlines()[-1])
    assert r["system"] == "ipchub-python" and r["size_bytes"] == 64 and r["msgs_per_s"] > 0
    if workload == "rtt":
        assert 0 < r["p50_us"] <= r["p99_us"] <= r["p999_us"]
