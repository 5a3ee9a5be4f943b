"""Key authentication (PROTOCOL.md section 6.7) against a real ipchubd
started with --policy: the Python clients (blocking and asyncio) prove an
Ed25519 key with PyNaCl (Debian python3-nacl), own a key-bound name, and
receivers see the broker's stamps (uid, key); a key bound to another name
is refused NOT_AUTHORIZED, a key in no policy AUTH_FAILED, a badly kept
key file BAD_KEY - all typed errors with .code. One key file is written by
the C CLI (`ipchub keygen`), one by Python, so both formats are the same."""

import asyncio
import os
import shutil
import subprocess
import tempfile

import nacl.signing
import pytest

import ipchub
from ipchub import aio, errors
from conftest import Broker, IPCHUBD

CLI = os.environ.get("IPCHUB_CLI") or os.path.join(os.path.dirname(os.path.dirname(IPCHUBD)),
                                                   "client", "cli", "ipchub")


def py_keygen(path):
    """A key file in client/key.c's format, written here; returns 'ed25519:HEX'."""
    sk = nacl.signing.SigningKey.generate()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write("# ipchub secret key\ned25519-secret:%s\n" % bytes(sk).hex())
    return "ed25519:" + bytes(sk.verify_key).hex()


@pytest.fixture(scope="module")
def keyed():
    d = tempfile.mkdtemp(prefix="ipchub-py-auth-")
    k = {n: os.path.join(d, n + ".key") for n in ("svc", "other", "stranger")}
    out = subprocess.run([CLI, "keygen", "-o", k["svc"]], capture_output=True, text=True,
                         timeout=30)
    assert out.returncode == 0, out.stderr
    pk = {"svc": out.stdout.strip(), "other": py_keygen(k["other"]),
          "stranger": py_keygen(k["stranger"])}
    pol = os.path.join(d, "policy")
    with open(pol, "w") as f:
        f.write("allow auth.py key %s\nallow auth.other key %s\n" % (pk["svc"], pk["other"]))
    b = Broker("--policy", pol)
    yield b, k, pk, d
    b.stop()
    shutil.rmtree(d)


def test_blocking_key_auth_stamps_and_refusals(keyed):
    b, k, pk, d = keyed
    svc = ipchub.connect(socket=b.socket, key=k["svc"], name="auth.py", reconnect=False)
    anon = ipchub.connect(socket=b.socket, key="", name="anon-py", reconnect=False)
    try:
        assert svc.key_id == pk["svc"] and anon.key_id is None
        svc.send("anon-py", {"hi": 1})
        kind, m = anon.recv(timeout=20)
        assert m.body == {"hi": 1} and m.sender.name == "auth.py"
        assert m.sender.key == pk["svc"] and m.sender.uid == os.geteuid()
        svc.handle(lambda body, s, ctx: {"echo": body, "saw_key": s.key, "saw_uid": s.uid})
        v, who = anon.request("auth.py", 5, timeout=20, with_sender=True)
        assert v == {"echo": 5, "saw_key": None, "saw_uid": os.geteuid()}
        assert who.key == pk["svc"] and who.id == svc.conn_id
        peers = {p["name"]: p for p in anon.peers()}
        assert peers["auth.py"]["auth"] is True and peers["auth.py"]["key"] == pk["svc"]
        assert peers["anon-py"]["auth"] is False
        # A key-bound name stays closed without its key, and to another listed key.
        with pytest.raises(errors.NOT_AUTHORIZED) as ei:
            anon.register("auth.other")
        assert ei.value.code == "NOT_AUTHORIZED" and ei.value.code_number == 13
    finally:
        svc.close()
        anon.close()
    with pytest.raises(errors.NOT_AUTHORIZED):
        ipchub.connect(socket=b.socket, key=k["other"], name="auth.py", reconnect=False)
    with pytest.raises(errors.AUTH_FAILED) as ei:
        ipchub.connect(socket=b.socket, key=k["stranger"], reconnect=False)
    assert ei.value.code == "AUTH_FAILED" and ei.value.code_number == 14


def test_aio_key_auth_stamps_and_refusals(keyed):
    b, k, pk, d = keyed

    async def main():
        svc = await aio.connect(socket=b.socket, key=k["svc"], name="auth.py", reconnect=False)
        anon = await aio.connect(socket=b.socket, key="", name="anon-aio", reconnect=False)
        try:
            assert svc.key_id == pk["svc"]
            await svc.send("anon-aio", "hello")
            kind, m = await anon.recv(timeout=20)
            assert m.sender.key == pk["svc"] and m.sender.uid == os.geteuid()
            other = await aio.connect(socket=b.socket, key=k["other"], name="auth.other",
                                      reconnect=False)
            try:
                assert other.key_id == pk["other"]   # the Python-written key works too
                with pytest.raises(errors.NOT_AUTHORIZED):
                    await other.register("auth.py")
            finally:
                await other.close()
        finally:
            await svc.close()
            await anon.close()
        with pytest.raises(errors.AUTH_FAILED) as ei:
            await aio.connect(socket=b.socket, key=k["stranger"], reconnect=False)
        assert ei.value.code == "AUTH_FAILED"
    asyncio.run(asyncio.wait_for(main(), 30))


def test_bad_key_files(keyed):
    b, k, pk, d = keyed
    loose = os.path.join(d, "loose.key")
    shutil.copy(k["svc"], loose)
    os.chmod(loose, 0o640)
    link = os.path.join(d, "link.key")
    os.symlink(k["svc"], link)
    garbage = os.path.join(d, "garbage.key")
    fd = os.open(garbage, os.O_WRONLY | os.O_CREAT, 0o600)
    os.write(fd, b"ed25519-secret:nothex\n")
    os.close(fd)
    for path, why in ((loose, "group or others"), (link, "symbolic link"),
                      (garbage, "64 hex"), (os.path.join(d, "none.key"), "")):
        with pytest.raises(errors.BAD_KEY, match=why):
            ipchub.connect(socket=b.socket, key=path, reconnect=False)
        with pytest.raises(errors.BAD_KEY, match=why):
            asyncio.run(aio.connect(socket=b.socket, key=path, reconnect=False))
