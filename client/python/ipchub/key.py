"""key - Ed25519 key files and the AUTH frame (PROTOCOL.md section 6.7), with PyNaCl.

The key file format and checks are client/key.c's: the file is opened once
with O_NOFOLLOW (a symlink is refused), checked with fstat on that
descriptor (a regular file, owned by this euid, no group/other bits), read
up to IPCHUB_KEY_FILE_MAX bytes; it holds '#' comments and exactly one line
'ed25519-secret:' + 64 hex digits (the seed). Every failure is BAD_KEY.
"""

import os
import stat
import struct

from . import errors, frame

KEY_FILE_MAX = 4096
SECRET_PREFIX = "ed25519-secret:"
LABEL = b"ipchub auth v1 client".ljust(32, b"\0")


def _nacl():
    try:
        import nacl.signing
        return nacl.signing
    except ImportError:
        raise errors.make("BAD_KEY", "key authentication needs PyNaCl (Debian python3-nacl)") \
            from None


def load(path):
    """The nacl.signing.SigningKey in key file `path`. Raises errors.BAD_KEY."""
    def fail(why):
        return errors.make("BAD_KEY", "key file %s: %s" % (path, why))
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NOCTTY)
    except OSError as e:
        import errno
        raise fail("it is a symbolic link" if e.errno == errno.ELOOP else e.strerror) from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise fail("not a regular file")
        if st.st_mode & 0o077:
            raise fail("accessible by group or others (mode %04o); run chmod 600 %s"
                       % (st.st_mode & 0o7777, path))
        if st.st_uid != os.geteuid():
            raise fail("belongs to uid %d, not to this process (uid %d)"
                       % (st.st_uid, os.geteuid()))
        data = b""
        while True:
            chunk = os.read(fd, KEY_FILE_MAX + 1 - len(data))
            if not chunk:
                break
            data += chunk
            if len(data) > KEY_FILE_MAX:
                raise fail("larger than %d bytes" % KEY_FILE_MAX)
    finally:
        os.close(fd)
    seed = None
    try:
        text = data.decode("ascii")
    except UnicodeDecodeError:
        raise fail("not ASCII") from None
    for line in text.split("\n"):
        line = line.rstrip("\r")
        if not line or line.startswith("#"):
            continue
        if not line.startswith(SECRET_PREFIX):
            raise fail("a line is neither a comment nor the secret key")
        if seed is not None:
            raise fail("more than one secret key line")
        h = line[len(SECRET_PREFIX):]
        try:
            seed = bytes.fromhex(h) if len(h) == 64 else None
        except ValueError:
            seed = None
        if seed is None:
            raise fail("the secret key is not 64 hex digits")
    if seed is None:
        raise fail("no '%s' line" % SECRET_PREFIX)
    return _nacl().SigningKey(seed)


def transcript(ver, broker, conn, challenge, nonce, uid, pk):
    """The 176-byte transcript the AUTH signature covers (proto/transcript.c)."""
    return b"".join((LABEL, struct.pack(">I", ver), broker.encode("ascii"),
                     struct.pack(">Q", conn), challenge, nonce, struct.pack(">I", uid), pk))


def auth_frame(sk, welcome):
    """The AUTH frame answering `welcome` (its validated fields) with key sk."""
    if "challenge" not in welcome or len(welcome["broker"]) != 32:
        raise frame.bad("WELCOME without a challenge or a 32-digit broker id")
    pk = bytes(sk.verify_key)
    nonce = os.urandom(32)
    t = transcript(welcome["ver"], welcome["broker"], welcome["conn"], welcome["challenge"],
                   nonce, os.geteuid(), pk)
    sig = sk.sign(t).signature
    return frame.encode(frame.KIND["AUTH"], {"pk": pk, "nonce": nonce, "sig": sig})
