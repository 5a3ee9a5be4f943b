'use strict';
/*
 * frame.js - ipchub wire frames (PROTOCOL.md sections 2-4), no sockets.
 *
 * A frame is a u32 big-endian length, a header (a msgpack map with small
 * integer keys) and an optional body (one msgpack value, passed through as
 * bytes here). This module writes headers for frames a client sends and
 * strictly validates frames the broker sends: the direction table of
 * section 4, required/optional keys per kind, exactly one msgpack type per
 * key, each key once, size limits. Anything else throws an IpchubError
 * with code BAD_FRAME (or TOO_LARGE), which the caller treats as fatal for
 * the connection. Bodies are not inspected here; codec.js decodes them.
 */

const { IpchubError } = require('./errors');

const KIND = Object.freeze({
  HELLO: 1, WELCOME: 2, AUTH: 3, BYE: 4, PING: 5, PONG: 6, REGISTER: 7, UNREGISTER: 8,
  OK: 9, ERROR: 10, SEND: 11, REQUEST: 12, REPLY: 13, CANCEL: 14,
  SUBSCRIBE: 20, UNSUBSCRIBE: 21, PUBLISH: 22, GAP: 23, WATCH: 24, UNWATCH: 25, PRESENCE: 26,
  MONITOR: 27,
});
const KIND_NAMES = Object.fromEntries(Object.entries(KIND).map(([k, v]) => [v, k]));

const KEY = Object.freeze({
  kind: 0, id: 1, to: 2, to_id: 3, from: 4, from_id: 5, name: 6, code: 7, msg: 8, ver: 9,
  ver_min: 10, conn: 11, agent: 12, broker: 13, max_frame: 14, timeout: 15, flags: 16,
  uid: 17, key: 18, ref: 19, challenge: 20, pk: 21, nonce: 22, sig: 23, topic: 24,
  policy: 25, count: 26, sub: 27, event: 28, reason: 29, filter: 30,
});
const KEY_NAMES = Object.keys(KEY); // index = key number

// Type of each key: u = uint (max), s = str (max bytes), b = bin (min..max bytes).
const U8 = 0xff;
const U32 = 0xffffffff;
const U64 = -1; // marker: any uint64
const KEY_TYPES = [
  ['u', 1, U8], ['u', 0, U64], ['s', 1, 255], ['u', 0, U64], ['s', 1, 255], ['u', 0, U64],
  ['s', 1, 255], ['u', 0, U64], ['s', 0, 1024], ['u', 0, U64], ['u', 0, U64], ['u', 0, U64],
  ['s', 0, 128], ['s', 0, 32], ['u', 0, U32], ['u', 0, U32], ['u', 0, U32], ['u', 0, U32],
  ['b', 1, 32], ['u', 0, U64], ['b', 32, 32], ['b', 32, 32], ['b', 32, 32], ['b', 64, 64],
  ['s', 1, 255], ['u', 0, 3], ['u', 0, U64], ['u', 0, U64], ['u', 0, U8], ['u', 0, U8],
  ['s', 0, 255],
];

const WF_NOWAIT = 1;
const LEN_PREFIX = 4;
const MIN_FRAME = 3;
const MAX_HEADER = 4096;
const MAX_HEADER_KEYS = 32;
const MAX_FRAME_DEFAULT = 16 * 1024 * 1024;
// Before WELCOME only WELCOME/ERROR/BYE can arrive: all tiny.
const MAX_PRE_WELCOME_FRAME = 64 * 1024;

function bit(...keys) {
  let m = 0;
  for (const k of keys) m |= 1 << KEY[k];
  return m;
}

// Broker-to-client frames: required and optional keys (bit masks), body allowed.
const B2C = new Map([
  [KIND.WELCOME, { req: bit('kind', 'ver', 'conn', 'broker', 'max_frame'), opt: bit('challenge', 'flags'), body: false }],
  [KIND.BYE, { req: bit('kind'), opt: bit('code', 'msg'), body: false }],
  [KIND.PONG, { req: bit('kind', 'id'), opt: 0, body: false }],
  [KIND.OK, { req: bit('kind', 'id'), opt: 0, body: false }],
  [KIND.ERROR, { req: bit('kind', 'id', 'code'), opt: bit('msg', 'ref', 'to', 'name'), body: false }],
  [KIND.SEND, { req: bit('kind', 'id', 'to', 'from_id'), opt: bit('from', 'uid', 'key'), body: true }],
  [KIND.REQUEST, { req: bit('kind', 'id', 'to', 'from_id'), opt: bit('from', 'timeout', 'uid', 'key'), body: true }],
  [KIND.REPLY, { req: bit('kind', 'id', 'from_id'), opt: bit('from', 'code', 'msg', 'uid', 'key'), body: true }],
  // Section 10: a delivered publication, lost publications, a watched name's owner, a tap copy.
  [KIND.PUBLISH, { req: bit('kind', 'id', 'topic', 'sub', 'from_id'), opt: bit('from', 'uid', 'key'), body: true }],
  [KIND.GAP, { req: bit('kind', 'sub', 'count'), opt: 0, body: false }],
  [KIND.PRESENCE, { req: bit('kind', 'id', 'name', 'event'), opt: bit('conn', 'reason'), body: false }],
  [KIND.MONITOR, { req: bit('kind', 'sub', 'conn', 'event'), opt: bit('count'), body: true }],
]);

// PRESENCE event and reason values (PROTOCOL.md section 3, keys 28 and 29).
const PRESENCE_EVENTS = Object.freeze({ 1: 'owned', 2: 'unowned', 3: 'registered', 4: 'released' });
const RELEASE_REASONS = Object.freeze({ 1: 'unregister', 2: 'disconnect', 3: 'revoked' });
// SUBSCRIBE policy values (section 10.2).
const POLICY = Object.freeze({ 'drop-oldest': 0, 'drop-newest': 1, disconnect: 2, block: 3 });

/* ------------------------------------------------------------------ writing */

function uintSize(v) {
  if (typeof v === 'bigint') return v < 0x100000000n ? uintSize(Number(v)) : 9;
  if (v < 0x80) return 1;
  if (v < 0x100) return 2;
  if (v < 0x10000) return 3;
  if (v < 0x100000000) return 5;
  return 9;
}

function writeUint(buf, off, v) {
  if (typeof v === 'bigint') {
    if (v < 0x100000000n) return writeUint(buf, off, Number(v));
    buf[off] = 0xcf;
    buf.writeBigUInt64BE(v, off + 1);
    return off + 9;
  }
  if (v < 0x80) {
    buf[off] = v;
    return off + 1;
  }
  if (v < 0x100) {
    buf[off] = 0xcc;
    buf[off + 1] = v;
    return off + 2;
  }
  if (v < 0x10000) {
    buf[off] = 0xcd;
    buf.writeUInt16BE(v, off + 1);
    return off + 3;
  }
  if (v < 0x100000000) {
    buf[off] = 0xce;
    buf.writeUInt32BE(v, off + 1);
    return off + 5;
  }
  buf[off] = 0xcf;
  buf.writeBigUInt64BE(BigInt(v), off + 1);
  return off + 9;
}

function strHeadSize(n) {
  return n < 32 ? 1 : n < 0x100 ? 2 : 3;
}

/**
 * Size in bytes of a header built from `fields`, a flat array
 * [key, value, key, value, ...] of client-side keys (numbers from KEY).
 * Values: non-negative integer Number or BigInt for uint keys, string for
 * str keys (UTF-8), Uint8Array for bin keys. The caller guarantees the
 * values are in range (the client validates user input before this).
 */
function headerSize(fields) {
  let n = 1;
  for (let i = 0; i < fields.length; i += 2) {
    const k = fields[i];
    const v = fields[i + 1];
    n += 1; // keys are < 0x80: one byte
    const t = KEY_TYPES[k][0];
    if (t === 'u') n += uintSize(v);
    else if (t === 's') {
      const len = Buffer.byteLength(v, 'utf8');
      n += strHeadSize(len) + len;
    } else n += 2 + v.length;
  }
  return n;
}

/** Write the header for `fields` at buf[off]; returns the offset after it. */
function writeHeader(buf, off, fields) {
  buf[off++] = 0x80 | (fields.length >> 1);
  for (let i = 0; i < fields.length; i += 2) {
    const k = fields[i];
    const v = fields[i + 1];
    buf[off++] = k;
    const t = KEY_TYPES[k][0];
    if (t === 'u') {
      off = writeUint(buf, off, v);
    } else if (t === 's') {
      const len = Buffer.byteLength(v, 'utf8');
      if (len < 32) {
        buf[off++] = 0xa0 | len;
      } else if (len < 0x100) {
        buf[off++] = 0xd9;
        buf[off++] = len;
      } else {
        buf[off++] = 0xda;
        buf.writeUInt16BE(len, off);
        off += 2;
      }
      off += buf.write(v, off, len, 'utf8');
    } else {
      buf[off++] = 0xc4;
      buf[off++] = v.length;
      buf.set(v, off);
      off += v.length;
    }
  }
  return off;
}

/**
 * A complete frame (length prefix, header, optional body) as a new Buffer.
 * body: Uint8Array of one encoded msgpack value, or null for "no body".
 */
function encodeFrame(fields, body) {
  const hlen = headerSize(fields);
  const blen = body ? body.length : 0;
  const buf = Buffer.allocUnsafe(LEN_PREFIX + hlen + blen);
  buf.writeUInt32BE(hlen + blen, 0);
  const off = writeHeader(buf, LEN_PREFIX, fields);
  if (body) buf.set(body, off);
  return buf;
}

/* ------------------------------------------------------------------ reading */

/** A decoded broker frame. Absent keys are null; `body` is null for no body. */
class Frame {
  constructor() {
    this.kind = 0;
    this.id = null;
    this.to = null;
    this.to_id = null;
    this.from = null;
    this.from_id = null;
    this.name = null;
    this.code = null;
    this.msg = null;
    this.ver = null;
    this.ver_min = null;
    this.conn = null;
    this.agent = null;
    this.broker = null;
    this.max_frame = null;
    this.timeout = null;
    this.flags = null;
    this.uid = null;
    this.key = null;
    this.ref = null;
    this.challenge = null;
    this.pk = null;
    this.nonce = null;
    this.sig = null;
    this.topic = null;
    this.policy = null;
    this.count = null;
    this.sub = null;
    this.event = null;
    this.reason = null;
    this.filter = null;
    this.body = null;
  }
}

function bad(msg) {
  return new IpchubError('BAD_FRAME', 'ipchub: malformed frame from broker: ' + msg);
}

/**
 * Parse one frame (the bytes after the length prefix) sent by the broker.
 * Returns a Frame whose body (if any) is a view into `buf`. Throws an
 * IpchubError BAD_FRAME on any violation of sections 2-4.
 */
function parseFrame(buf) {
  const end = buf.length;
  if (end < MIN_FRAME) throw bad(`length ${end} below ${MIN_FRAME}`);
  let p = 0;
  const m = buf[p++];
  let count;
  if (m >= 0x80 && m <= 0x8f) {
    count = m & 0x0f;
  } else if (m === 0xde) {
    if (end < 3) throw bad('truncated header');
    count = buf.readUInt16BE(1);
    p = 3;
  } else {
    throw bad(`header is not a map (0x${m.toString(16)})`);
  }
  if (count < 1 || count > MAX_HEADER_KEYS) throw bad(`header has ${count} entries`);
  const f = new Frame();
  let seen = 0;
  for (let i = 0; i < count; i++) {
    if (p >= end) throw bad('truncated header');
    const k = buf[p++];
    if (k > 0x7f || k >= KEY_TYPES.length) throw bad(`unknown header key 0x${k.toString(16)}`);
    if (seen & (1 << k)) throw bad(`duplicate header key ${KEY_NAMES[k]}`);
    seen |= 1 << k;
    const [t, min, max] = KEY_TYPES[k];
    let v;
    if (t === 'u') {
      if (p >= end) throw bad('truncated header');
      const b = buf[p++];
      let need = 0;
      if (b <= 0x7f) v = b;
      else if (b === 0xcc || b === 0xd0) need = 1;
      else if (b === 0xcd || b === 0xd1) need = 2;
      else if (b === 0xce || b === 0xd2) need = 4;
      else if (b === 0xcf || b === 0xd3) need = 8;
      else throw bad(`header key ${KEY_NAMES[k]} is not an unsigned integer`);
      if (need) {
        if (p + need > end) throw bad('truncated header');
        const signed = b >= 0xd0;
        if (need === 1) v = signed ? buf.readInt8(p) : buf[p];
        else if (need === 2) v = signed ? buf.readInt16BE(p) : buf.readUInt16BE(p);
        else if (need === 4) v = signed ? buf.readInt32BE(p) : buf.readUInt32BE(p);
        else {
          v = signed ? buf.readBigInt64BE(p) : buf.readBigUInt64BE(p);
          if (v >= 0n && v <= BigInt(Number.MAX_SAFE_INTEGER)) v = Number(v);
        }
        p += need;
        if (v < 0) throw bad(`header key ${KEY_NAMES[k]} is negative`);
      }
      if (max !== U64 && (typeof v === 'bigint' || v > max)) throw bad(`header key ${KEY_NAMES[k]} out of range`);
      if (v < min) throw bad(`header key ${KEY_NAMES[k]} out of range`);
    } else {
      if (p >= end) throw bad('truncated header');
      const b = buf[p++];
      let len;
      if (t === 's') {
        if (b >= 0xa0 && b <= 0xbf) len = b & 0x1f;
        else if (b === 0xd9) { if (p + 1 > end) throw bad('truncated header'); len = buf[p]; p += 1; }
        else if (b === 0xda) { if (p + 2 > end) throw bad('truncated header'); len = buf.readUInt16BE(p); p += 2; }
        else if (b === 0xdb) { if (p + 4 > end) throw bad('truncated header'); len = buf.readUInt32BE(p); p += 4; }
        else throw bad(`header key ${KEY_NAMES[k]} is not a string`);
      } else {
        if (b === 0xc4) { if (p + 1 > end) throw bad('truncated header'); len = buf[p]; p += 1; }
        else if (b === 0xc5) { if (p + 2 > end) throw bad('truncated header'); len = buf.readUInt16BE(p); p += 2; }
        else if (b === 0xc6) { if (p + 4 > end) throw bad('truncated header'); len = buf.readUInt32BE(p); p += 4; }
        else throw bad(`header key ${KEY_NAMES[k]} is not binary`);
      }
      if (len < min || len > max) throw bad(`header key ${KEY_NAMES[k]} has length ${len}`);
      if (p + len > end) throw bad('truncated header');
      v = t === 's' ? buf.toString('utf8', p, p + len) : Buffer.from(buf.subarray(p, p + len));
      p += len;
    }
    if (p > MAX_HEADER) throw bad(`header longer than ${MAX_HEADER} bytes`);
    f[KEY_NAMES[k]] = v;
  }
  const rule = B2C.get(f.kind);
  if (f.kind === null || !(seen & 1)) throw bad('header has no kind');
  if (!rule) throw bad(`kind ${KIND_NAMES[f.kind] || f.kind} is not sent by a broker`);
  if ((seen & rule.req) !== rule.req) {
    const missing = KEY_NAMES.filter((_, i) => (rule.req & (1 << i)) && !(seen & (1 << i)));
    throw bad(`${KIND_NAMES[f.kind]} lacks ${missing.join(', ')}`);
  }
  const extra = seen & ~(rule.req | rule.opt);
  if (extra) {
    const names = KEY_NAMES.filter((_, i) => extra & (1 << i));
    throw bad(`${KIND_NAMES[f.kind]} may not carry ${names.join(', ')}`);
  }
  // Key ids are Ed25519 public keys in protocol version 1 (section 6.7).
  if (f.key !== null && f.key.length !== 32) throw bad(`key of ${f.key.length} bytes (version 1 key ids are 32)`);
  if (f.kind === KIND.PRESENCE) {
    if (!PRESENCE_EVENTS[f.event]) throw bad(`PRESENCE event ${f.event} is not 1..4`);
    const owned = f.event === 1 || f.event === 3 || f.event === 4;
    if (owned !== (f.conn !== null)) throw bad(`PRESENCE ${PRESENCE_EVENTS[f.event]} ${owned ? 'lacks' : 'may not carry'} conn`);
    if ((f.event === 4) !== (f.reason !== null)) throw bad(`PRESENCE ${PRESENCE_EVENTS[f.event]} ${f.event === 4 ? 'lacks' : 'may not carry'} reason`);
    if (f.reason !== null && !RELEASE_REASONS[f.reason]) throw bad(`PRESENCE reason ${f.reason} is not 1..3`);
  }
  if (f.kind === KIND.MONITOR && (f.event < 1 || f.event > 2)) throw bad(`MONITOR event ${f.event} is not 1 or 2`);
  if (p < end) {
    if (!rule.body) throw bad(`${KIND_NAMES[f.kind]} carries a body`);
    f.body = buf.subarray(p, end);
  }
  return f;
}

/**
 * Splits a byte stream into frames. push() each chunk read from the socket;
 * onFrame(buf) is called synchronously for each complete frame with the
 * bytes after the length prefix (a view: valid only during the call).
 * A length outside [MIN_FRAME, maxFrame] throws before anything is
 * buffered for that frame, so a bad peer cannot make us allocate.
 */
class FrameReader {
  constructor(onFrame) {
    this.onFrame = onFrame;
    this.maxFrame = MAX_PRE_WELCOME_FRAME;
    this.chunks = [];  // partial data, concatenated only when a frame is complete
    this.have = 0;
    this.need = -1;    // length of the frame being assembled, -1 while unknown
  }

  checkLength(len) {
    if (len < MIN_FRAME) throw bad(`frame length ${len} below ${MIN_FRAME}`);
    if (len > this.maxFrame) {
      throw new IpchubError('TOO_LARGE', `ipchub: frame from broker of ${len} bytes exceeds ${this.maxFrame}`);
    }
  }

  push(chunk) {
    if (this.have > 0) {
      this.chunks.push(chunk);
      this.have += chunk.length;
      if (this.need < 0) {
        if (this.have < LEN_PREFIX) return;
        const head = this.chunks.length === 1 ? this.chunks[0] : Buffer.concat(this.chunks);
        this.need = head.readUInt32BE(0);
        this.checkLength(this.need);
        this.chunks = [head];
      }
      if (this.have < LEN_PREFIX + this.need) return;
      chunk = Buffer.concat(this.chunks, this.have);
      this.chunks = [];
      this.have = 0;
      this.need = -1;
    }
    let off = 0;
    const n = chunk.length;
    while (n - off >= LEN_PREFIX) {
      const len = chunk.readUInt32BE(off);
      this.checkLength(len);
      if (n - off - LEN_PREFIX < len) break;
      this.onFrame(chunk.subarray(off + LEN_PREFIX, off + LEN_PREFIX + len));
      off += LEN_PREFIX + len;
    }
    if (off < n) {
      const rest = chunk.subarray(off);
      this.chunks = [rest];
      this.have = rest.length;
      this.need = rest.length >= LEN_PREFIX ? rest.readUInt32BE(0) : -1;
    }
  }
}

module.exports = {
  KIND, KIND_NAMES, KEY, WF_NOWAIT, LEN_PREFIX, MIN_FRAME, MAX_HEADER, MAX_FRAME_DEFAULT,
  MAX_PRE_WELCOME_FRAME, PRESENCE_EVENTS, RELEASE_REASONS, POLICY, headerSize, writeHeader, encodeFrame, parseFrame, FrameReader, Frame,
};
