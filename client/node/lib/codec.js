'use strict';
/*
 * codec.js - message bodies: JavaScript values <-> one msgpack value.
 *
 * Built on @msgpack/msgpack (version pinned exactly in package.json, because
 * the two subclasses below override a few of its internal methods; the
 * codec tests pin the resulting bytes so an upgrade that breaks them fails).
 * The mapping, and the byte layout of the extension types, is the contract
 * in PROTOCOL.md section 11:
 *
 *   null, undefined      -> nil                    -> null
 *   boolean              -> bool                   -> boolean
 *   number (safe int)    -> smallest int           -> number
 *   number (other)       -> float64                -> number
 *   bigint               -> smallest int (RangeError outside int64/uint64)
 *   msgpack int          -> number if |v| <= 2^53-1, else bigint
 *   string               -> str (UTF-8)            -> string
 *   Buffer / TypedArray  -> bin                    -> Buffer (a copy)
 *   Array                -> array                  -> Array
 *   plain object         -> map, string keys       -> plain object
 *   Date                 -> ext -1 (timestamp)     -> Date
 *   Map                  -> ext 1 (a msgpack map, any key types) -> Map
 *
 * A msgpack map (not ext 1) decodes to a plain object; its keys must be str
 * or int (ints become property names). Set, functions and symbols are
 * refused with a TypeError rather than encoded lossily. Ext nesting (a Map
 * inside a Map ...) is bounded by MAX_DEPTH like ordinary nesting.
 */

const { Encoder, Decoder, ExtensionCodec, DecodeError } = require('@msgpack/msgpack');

const EXT_MAP = 1;
const MAX_DEPTH = 32; // PROTOCOL.md section 2: body nesting (msgpack-c's limit)
const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);
const MIN_SAFE = -MAX_SAFE;
const U64_MAX = (1n << 64n) - 1n;
const I64_MIN = -(1n << 63n);

let extDepth = 0; // ext decoding is synchronous and reentrant: one counter suffices

const extensionCodec = new ExtensionCodec(); // has the timestamp (-1) built in
extensionCodec.register({
  type: EXT_MAP,
  encode: () => null, // Maps are written inline by BodyEncoder.doEncode
  decode: decodeMapExt,
});

class BodyEncoder extends Encoder {
  constructor() {
    super({ extensionCodec, useBigInt64: false, maxDepth: MAX_DEPTH });
  }

  // Internal override (see the file comment): bigint and Map support.
  doEncode(object, depth) {
    if (typeof object === 'bigint') {
      this.encodeBigInt(object);
    } else if (object instanceof Map) {
      if (depth > MAX_DEPTH) throw new RangeError(`ipchub: body nested deeper than ${MAX_DEPTH}`);
      this.encodeMapExt(object, depth);
    } else if (object instanceof Set || typeof object === 'function' || typeof object === 'symbol' ||
               object instanceof WeakMap || object instanceof WeakSet || object instanceof Promise) {
      throw new TypeError(`ipchub: cannot encode ${Object.prototype.toString.call(object)} in a body`);
    } else {
      super.doEncode(object, depth);
    }
  }

  encodeBigInt(v) {
    if (v >= MIN_SAFE && v <= MAX_SAFE) {
      this.encodeNumber(Number(v));
    } else if (v > MAX_SAFE && v <= U64_MAX) {
      this.ensureBufferSizeToWrite(9);
      this.writeU8(0xcf);
      this.writeBigUint64(v);
    } else if (v < MIN_SAFE && v >= I64_MIN) {
      this.ensureBufferSizeToWrite(9);
      this.writeU8(0xd3);
      this.writeBigInt64(v);
    } else {
      throw new RangeError(`ipchub: bigint ${v} does not fit a 64-bit msgpack integer`);
    }
  }

  // ext 32, type 1, payload = a msgpack map of the entries (section 11).
  // Always ext 32 so the length can be patched in after the entries.
  encodeMapExt(map, depth) {
    this.ensureBufferSizeToWrite(6 + 5);
    this.writeU8(0xc9);
    const lenPos = this.pos;
    this.writeU32(0);
    this.writeI8(EXT_MAP);
    const start = this.pos;
    const n = map.size;
    if (n < 16) {
      this.writeU8(0x80 + n);
    } else if (n < 0x10000) {
      this.writeU8(0xde);
      this.writeU16(n);
    } else {
      this.writeU8(0xdf);
      this.writeU32(n);
    }
    for (const [k, v] of map) {
      this.doEncode(k, depth + 1);
      this.doEncode(v, depth + 1);
    }
    this.view.setUint32(lenPos, this.pos - start); // view may have been replaced by a resize
  }
}

function mapKeyConverter(key) {
  if (typeof key === 'string' || typeof key === 'number') return key;
  if (typeof key === 'bigint') return String(key);
  throw new DecodeError('ipchub: a msgpack map with ' + (key === null ? 'nil' : typeof key) +
    ' keys decodes only as ext 1 (Map); plain maps need str or int keys');
}

class BodyDecoder extends Decoder {
  constructor() {
    super({ extensionCodec, useBigInt64: true, mapKeyConverter });
  }

  // Internal overrides (see the file comment).
  readU64AsBigInt() {
    const v = super.readU64AsBigInt();
    return v <= MAX_SAFE ? Number(v) : v;
  }

  readI64AsBigInt() {
    const v = super.readI64AsBigInt();
    return v >= MIN_SAFE && v <= MAX_SAFE ? Number(v) : v;
  }

  decodeBinary(byteLength, headOffset) {
    const view = super.decodeBinary(byteLength, headOffset);
    return Buffer.from(view); // a copy: never pins the socket's read buffer
  }

  // Decode the elements of a checked batch (frame.splitBatch offsets `at`)
  // with one buffer setup: a decode() per element costs more in setup than
  // in decoding small bodies. Element i's failure is errors.get(i); the
  // others still decode. Never calls user code, so it is not re-entered.
  decodeBatch(bytes, at) {
    const n = at.length - 1;
    const values = new Array(n);
    let errors = null;
    this.entered = true;
    try {
      this.setBuffer(bytes);
      for (let i = 0; i < n; i++) {
        this.reinitializeState();
        this.pos = at[i];
        try {
          values[i] = this.doDecodeSync();
          if (this.pos !== at[i + 1]) throw new DecodeError('ipchub: batched body has trailing bytes');
        } catch (err) {
          if (!errors) errors = new Map();
          errors.set(i, err);
        }
      }
    } finally {
      this.entered = false;
    }
    return { values, errors };
  }

  decodeExtension(size, headOffset) {
    const extType = this.view.getInt8(this.pos + headOffset);
    const view = super.decodeBinary.call(this, size, headOffset + 1);
    return this.extensionCodec.decode(view, extType, this.context);
  }
}

const decoders = []; // one per ext nesting level, created on first use

function decodeMapExt(data) {
  if (extDepth >= MAX_DEPTH) throw new DecodeError(`ipchub: body nested deeper than ${MAX_DEPTH}`);
  if (data.length < 1) throw new DecodeError('ipchub: ext 1 (Map) payload is empty');
  const b = data[0];
  let n;
  let off;
  const dv = new DataView(data.buffer, data.byteOffset, data.byteLength);
  if (b >= 0x80 && b <= 0x8f) {
    n = b - 0x80; off = 1;
  } else if (b === 0xde && data.length >= 3) {
    n = dv.getUint16(1); off = 3;
  } else if (b === 0xdf && data.length >= 5) {
    n = dv.getUint32(1); off = 5;
  } else {
    throw new DecodeError('ipchub: ext 1 (Map) payload is not a msgpack map');
  }
  // Each entry takes at least 2 bytes: a declared count cannot make us loop past the payload.
  if (n * 2 > data.length - off) throw new DecodeError('ipchub: ext 1 (Map) entry count exceeds its payload');
  extDepth++;
  try {
    const dec = decoders[extDepth] || (decoders[extDepth] = new BodyDecoder());
    const out = new Map();
    let key;
    let i = 0;
    for (const v of dec.decodeMulti(data.subarray(off))) {
      if (i >= 2 * n) throw new DecodeError('ipchub: ext 1 (Map) payload has trailing bytes');
      if (i & 1) out.set(key, v); else key = v;
      i++;
    }
    if (i !== 2 * n) throw new DecodeError('ipchub: ext 1 (Map) payload is truncated');
    return out;
  } finally {
    extDepth--;
  }
}

const encoder = new BodyEncoder();
const decoder = new BodyDecoder();
const batchDecoder = new BodyDecoder();

/**
 * Encode a value as one msgpack value. Returns a Uint8Array the caller owns.
 * Throws TypeError/RangeError for values with no encoding (see above).
 */
function encode(value) {
  return encoder.encode(value);
}

/**
 * Like encode(), but returns a view of the encoder's internal buffer that is
 * valid only until the next call: for copying straight into a frame.
 */
function encodeShared(value) {
  return encoder.encodeSharedRef(value);
}

/**
 * Decode exactly one msgpack value from bytes (a Uint8Array view; not
 * retained). Throws on malformed input, trailing bytes or excess depth.
 */
function decode(bytes) {
  return decoder.decode(bytes);
}

/**
 * Decode each element of a batch body: `at` are the n + 1 element offsets
 * frame.splitBatch() returned for `bytes`. Returns {values, errors}: the n
 * values (undefined where decoding failed) and null or a Map from element
 * index to its Error.
 */
function decodeBatch(bytes, at) {
  return batchDecoder.decodeBatch(bytes, at);
}

module.exports = { encode, encodeShared, decode, decodeBatch, EXT_MAP, MAX_DEPTH };
