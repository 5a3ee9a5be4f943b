"""Shared fixtures: a real ipchubd (from $IPCHUBD, as ctest passes it) on a
temporary socket, started per test, killed (by its own pid) afterwards."""

import os
import socket
import subprocess
import sys
import tempfile
import time

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

HERE = os.path.dirname(os.path.abspath(__file__))
IPCHUBD = os.environ.get("IPCHUBD") or os.path.join(HERE, "..", "..", "..", "build", "broker",
                                                     "ipchubd")


class Broker:
    def __init__(self, *extra):
        self.dir = tempfile.mkdtemp(prefix="ipchub-py-")
        self.socket = os.path.join(self.dir, "hub.sock")
        if not os.path.exists(IPCHUBD):
            raise RuntimeError("ipchubd not found at %s: build it or set IPCHUBD" % IPCHUBD)
        self.proc = subprocess.Popen([IPCHUBD, "--socket", self.socket, "--log-level", "warn",
                                      *extra], stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        # Ready when a connect succeeds: the socket file exists from bind(),
        # a moment before listen() (connect gives ECONNREFUSED in between).
        while not self._accepts():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("ipchubd did not start")
            time.sleep(0.01)

    def _accepts(self):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            s.connect(self.socket)
            return True
        except OSError:
            return False
        finally:
            s.close()

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        for f in os.listdir(self.dir):
            try:
                os.unlink(os.path.join(self.dir, f))
            except OSError:
                pass
        os.rmdir(self.dir)


@pytest.fixture
def broker():
    b = Broker()
    yield b
    b.stop()
