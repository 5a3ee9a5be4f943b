'use strict';
/*
 * key.js - Ed25519 key files and the authentication proof (PROTOCOL.md
 * section 6.7, SECURITY.md), the Node.js twin of client/key.c.
 *
 * Model: a key file is read once per handshake (so the secret is in memory
 * only while a connection authenticates) through one descriptor opened with
 * O_NOFOLLOW, checked with fstat on that descriptor (regular file, owned by
 * the effective uid, no group/other permission bit: no race between check
 * and read) and parsed byte by byte, without ever turning the secret into a
 * JavaScript string (strings cannot be wiped). Every buffer that held the
 * seed, the secret key or the file's bytes is wiped with sodium.memzero
 * before the function returns; the caller wipes the seed it gets back once
 * it has signed. Errors are IpchubError BAD_KEY (or IO for keygen) with the
 * same reasons as the C library. libsodium-wrappers (WebAssembly) is loaded
 * on first use only, so a hub without a key never pays for it.
 *
 * Secret key file format (as client/key.h): lines starting with '#' are
 * comments, blank lines are ignored, exactly one line is
 * "ed25519-secret:<64 hex digits>", the 32-byte seed from which
 * crypto_sign_seed_keypair derives the key pair.
 */

const fs = require('fs');
const { IpchubError } = require('./errors');

const SECRET_PREFIX = Buffer.from('ed25519-secret:', 'latin1');
const PK_PREFIX = 'ed25519:';
const SEED_LEN = 32;
const PK_LEN = 32;
const SIG_LEN = 64;
const NONCE_LEN = 32;
const CHALLENGE_LEN = 32;
const BROKER_ID_LEN = 32;
// proto/limits.h IPCHUB_KEY_FILE_MAX: a secret line is 79 bytes, keygen's
// whole file about 170; anything this large is not a key file.
const KEY_FILE_MAX = 4096;

// Transcript layout (PROTOCOL.md section 6.7, proto/transcript.h).
const TRANSCRIPT_LABEL = 'ipchub auth v1 client';
const T_OFF_VER = 32;
const T_OFF_BROKER = 36;
const T_OFF_CONN = 68;
const T_OFF_CHALLENGE = 76;
const T_OFF_NONCE = 108;
const T_OFF_UID = 140;
const T_OFF_PK = 144;
const TRANSCRIPT_LEN = 176;

let sodiumPromise = null;

/** libsodium-wrappers, loaded and initialized on first call. */
function loadSodium() {
  if (!sodiumPromise) {
    sodiumPromise = (async () => {
      const sodium = require('libsodium-wrappers');
      await sodium.ready;
      return sodium;
    })();
  }
  return sodiumPromise;
}

function badKey(msg) {
  return new IpchubError('BAD_KEY', 'ipchub: ' + msg);
}

// The strerror() text of a Node fs error ("ENOENT: no such file or
// directory, open 'x'" -> "No such file or directory").
function sysText(err) {
  const m = /^[A-Z0-9_]+: ([^,]+),/.exec(err && err.message ? err.message : '');
  if (!m) return err && err.code ? err.code : String(err);
  return m[1][0].toUpperCase() + m[1].slice(1);
}

function hexVal(c) {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  if (c >= 0x61 && c <= 0x66) return c - 0x61 + 10;
  if (c >= 0x41 && c <= 0x46) return c - 0x41 + 10;
  return -1;
}

/**
 * Find the secret line in the file bytes and decode its seed into `seed`.
 * Returns null, or the reason the file is malformed.
 */
function parseSecret(buf, len, seed) {
  const pl = SECRET_PREFIX.length;
  let found = 0;
  let start = 0;
  while (start < len) {
    let end = buf.indexOf(0x0a, start);
    if (end < 0 || end > len) end = len;
    const next = end + 1;
    let stop = end;
    if (stop > start && buf[stop - 1] === 0x0d) stop--;
    const n = stop - start;
    if (n === 0 || buf[start] === 0x23) {
      start = next;
      continue;
    }
    if (n < pl || buf.compare(SECRET_PREFIX, 0, pl, start, start + pl) !== 0) {
      return 'a line is neither a comment nor the secret key';
    }
    if (found++) return 'more than one secret key line';
    if (n - pl !== 2 * SEED_LEN) return 'the secret key is not 64 hex digits';
    for (let i = 0; i < SEED_LEN; i++) {
      const hi = hexVal(buf[start + pl + 2 * i]);
      const lo = hexVal(buf[start + pl + 2 * i + 1]);
      if (hi < 0 || lo < 0) {
        seed.fill(0);
        return 'the secret key is not 64 hex digits';
      }
      seed[i] = (hi << 4) | lo;
    }
    start = next;
  }
  if (!found) return `no '${SECRET_PREFIX.toString('latin1')}' line`;
  return null;
}

/**
 * Read and check the key file at `path`; returns its 32-byte seed (the
 * caller wipes it with wipe()). Synchronous: a few small syscalls. Throws
 * IpchubError BAD_KEY with the reason (same texts as client/key.c).
 */
function readSeed(path) {
  if (typeof path !== 'string' || path === '') throw badKey('no key file given');
  let fd;
  try {
    fd = fs.openSync(path, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW | fs.constants.O_NOCTTY);
  } catch (err) {
    throw new IpchubError('BAD_KEY', `ipchub: cannot open key file ${path}: ${err.code === 'ELOOP' ? 'it is a symbolic link' : sysText(err)}`,
      { cause: err });
  }
  const buf = Buffer.alloc(KEY_FILE_MAX); // never pooled: wiped below
  const seed = new Uint8Array(SEED_LEN);
  let got = 0;
  try {
    let st;
    try {
      st = fs.fstatSync(fd);
    } catch (err) {
      throw badKey(`key file ${path}: ${sysText(err)}`);
    }
    if (!st.isFile()) throw badKey(`key file ${path} is not a regular file`);
    if (st.mode & 0o077) {
      const mode = (st.mode & 0o7777).toString(8).padStart(4, '0');
      throw badKey(`key file ${path} is accessible by group or others (mode ${mode}); refusing it: run chmod 600 ${path}`);
    }
    const euid = process.geteuid();
    if (st.uid !== euid) {
      throw badKey(`key file ${path} belongs to uid ${st.uid}, not to this process (uid ${euid})`);
    }
    for (;;) {
      let n;
      try {
        n = fs.readSync(fd, buf, got, KEY_FILE_MAX - got, null);
      } catch (err) {
        throw badKey(`read ${path}: ${sysText(err)}`);
      }
      if (n === 0) break;
      got += n;
      if (got === KEY_FILE_MAX) throw badKey(`key file ${path} is larger than ${KEY_FILE_MAX} bytes`);
    }
    if (buf.subarray(0, got).indexOf(0) >= 0) throw badKey(`key file ${path} is not a text file`);
    const why = parseSecret(buf, got, seed);
    if (why) throw badKey(`key file ${path} is malformed: ${why}`);
    return seed;
  } catch (err) {
    seed.fill(0);
    throw err;
  } finally {
    buf.fill(0);
    fs.closeSync(fd);
  }
}

/** The text form of a public key: "ed25519:" + 64 lowercase hex digits. */
function pkText(pk) {
  return PK_PREFIX + Buffer.from(pk.buffer, pk.byteOffset, pk.length).toString('hex');
}

/**
 * The 176-byte transcript a client signs (PROTOCOL.md section 6.7).
 * w: { ver, broker (32 ASCII hex), conn (number|bigint), challenge }.
 */
function buildTranscript(w, nonce, uid, pk) {
  const t = Buffer.alloc(TRANSCRIPT_LEN); // zero-filled: the label's padding
  t.write(TRANSCRIPT_LABEL, 0, 'latin1');
  t.writeUInt32BE(w.ver, T_OFF_VER);
  t.write(w.broker, T_OFF_BROKER, BROKER_ID_LEN, 'latin1');
  t.writeBigUInt64BE(BigInt(w.conn), T_OFF_CONN);
  t.set(w.challenge, T_OFF_CHALLENGE);
  t.set(nonce, T_OFF_NONCE);
  t.writeUInt32BE(uid >>> 0, T_OFF_UID);
  t.set(pk, T_OFF_PK);
  return t;
}

/**
 * Prove the key whose seed is `seed` to the broker that sent WELCOME `w`:
 * returns { pk, nonce, sig } for the AUTH frame. Wipes the derived secret
 * key and the transcript (the caller wipes the seed). Throws PROTOCOL when
 * the WELCOME cannot be authenticated against (no challenge).
 */
function makeProof(sodium, seed, w) {
  if (!w.challenge || w.challenge.length !== CHALLENGE_LEN || typeof w.broker !== 'string' ||
      w.broker.length !== BROKER_ID_LEN || !/^[\x20-\x7e]+$/.test(w.broker)) {
    throw new IpchubError('PROTOCOL', 'ipchub: the broker sent no authentication challenge: it cannot check keys');
  }
  const kp = sodium.crypto_sign_seed_keypair(seed);
  const nonce = sodium.randombytes_buf(NONCE_LEN);
  // SO_PEERCRED records the effective uid at connect().
  const t = buildTranscript(w, nonce, process.geteuid(), kp.publicKey);
  try {
    const sig = sodium.crypto_sign_detached(t, kp.privateKey);
    if (sig.length !== SIG_LEN) throw new IpchubError('INTERNAL', 'ipchub: libsodium returned a signature of the wrong size');
    return { pk: kp.publicKey, nonce, sig };
  } finally {
    sodium.memzero(kp.privateKey);
    sodium.memzero(t);
  }
}

/**
 * Create a key pair and write its secret to `path` in the C library's
 * format (created 0600 with O_EXCL: an existing file is never overwritten;
 * a symlink at path is refused). Resolves with the public key text.
 * Rejects with BAD_KEY (the file exists) or IO.
 */
async function keygen(path) {
  if (typeof path !== 'string' || path === '') {
    throw new IpchubError('INVALID', 'ipchub: keygen needs the path of the key file to create');
  }
  const sodium = await loadSodium();
  const c = fs.constants;
  let fd;
  try {
    fd = fs.openSync(path, c.O_WRONLY | c.O_CREAT | c.O_EXCL | c.O_NOFOLLOW, 0o600);
  } catch (err) {
    const exists = err.code === 'EEXIST';
    throw new IpchubError(exists ? 'BAD_KEY' : 'IO',
      `ipchub: cannot create ${path}: ${sysText(err)}${exists ? ' (a key file is never overwritten)' : ''}`, { cause: err });
  }
  const seed = sodium.randombytes_buf(SEED_LEN);
  const kp = sodium.crypto_sign_seed_keypair(seed);
  const pkt = pkText(kp.publicKey);
  sodium.memzero(kp.privateKey);
  const head = Buffer.from('# ipchub secret key (Ed25519 seed). Keep it private: mode 0600.\n' +
    `# public key: ${pkt}\n`, 'latin1');
  // The text goes into one buffer built byte by byte so it can be wiped.
  const text = Buffer.alloc(head.length + SECRET_PREFIX.length + 2 * SEED_LEN + 1);
  const HEX = '0123456789abcdef';
  let off = head.copy(text, 0);
  off += SECRET_PREFIX.copy(text, off);
  for (let i = 0; i < SEED_LEN; i++) {
    text[off++] = HEX.charCodeAt(seed[i] >> 4);
    text[off++] = HEX.charCodeAt(seed[i] & 15);
  }
  text[off] = 0x0a;
  sodium.memzero(seed);
  let failure = null;
  try {
    // The umask may have removed bits, never added any: make it exact.
    fs.fchmodSync(fd, 0o600);
    let w = 0;
    while (w < text.length) w += fs.writeSync(fd, text, w, text.length - w);
    fs.fsyncSync(fd);
  } catch (err) {
    failure = new IpchubError('IO', `ipchub: writing ${path}: ${sysText(err)}`, { cause: err });
  } finally {
    text.fill(0);
    try {
      fs.closeSync(fd);
    } catch (err) {
      if (!failure) failure = new IpchubError('IO', `ipchub: close ${path}: ${sysText(err)}`, { cause: err });
    }
  }
  if (failure) {
    try {
      fs.unlinkSync(path);
    } catch (_) {
      // nothing more to undo
    }
    throw failure;
  }
  return pkt;
}

module.exports = {
  loadSodium, readSeed, makeProof, buildTranscript, keygen, pkText,
  PK_LEN, SIG_LEN, NONCE_LEN, TRANSCRIPT_LEN, KEY_FILE_MAX,
};
