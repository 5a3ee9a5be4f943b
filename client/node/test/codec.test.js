'use strict';
// Body codec: the JS <-> msgpack mapping and the exact ext byte layouts of
// PROTOCOL.md section 10 (pinned here so a library upgrade cannot change them).

const test = require('node:test');
const assert = require('node:assert/strict');
const { encode, decode } = require('../lib/codec');

const hex = (v) => Buffer.from(encode(v)).toString('hex');
const fromHex = (h) => decode(Buffer.from(h, 'hex'));

test('scalars use the smallest msgpack forms', () => {
  assert.equal(hex(null), 'c0');
  assert.equal(hex(undefined), 'c0');
  assert.equal(hex(true), 'c3');
  assert.equal(hex(false), 'c2');
  assert.equal(hex(1), '01');
  assert.equal(hex(-1), 'ff');
  assert.equal(hex(300), 'cd012c');
  assert.equal(hex(2 ** 40), 'cf0000010000000000');
  assert.equal(hex(1.5), 'cb3ff8000000000000');
  assert.equal(hex('é'), 'a2c3a9');
  assert.equal(hex(Buffer.from([1, 2])), 'c4020102');
});

test('integers: number when safe, bigint beyond 2^53', () => {
  assert.equal(hex(5n), '05');
  assert.equal(fromHex('05'), 5);
  assert.equal(hex(2n ** 63n), 'cf8000000000000000');
  assert.equal(fromHex('cf8000000000000000'), 2n ** 63n);
  assert.equal(fromHex('cfffffffffffffffff'), 2n ** 64n - 1n);
  assert.equal(fromHex('d38000000000000000'), -(2n ** 63n));
  assert.equal(fromHex('cf001fffffffffffff'), Number.MAX_SAFE_INTEGER);
  assert.equal(fromHex('cf0020000000000000'), 2n ** 53n);
  assert.equal(fromHex('d3ffe0000000000001'), -Number.MAX_SAFE_INTEGER);
  assert.throws(() => encode(2n ** 64n), RangeError);
  assert.throws(() => encode(-(2n ** 63n) - 1n), RangeError);
});

test('Map is ext 1 (ext 32) around a msgpack map; keys keep their types', () => {
  assert.equal(hex(new Map([[1, 'a']])), 'c900000004' + '01' + '81' + '01' + 'a161');
  const m = new Map([[1, 'a'], ['k', new Map([[Buffer.from('x'), [true]]])], [null, 2n ** 60n]]);
  assert.deepEqual(decode(encode(m)), m);
  // Any ext length encoding is accepted on input (fixext 4 here).
  assert.deepEqual(fromHex('d601' + '8101a161'), new Map([[1, 'a']]));
  assert.throws(() => fromHex('d501' + '9100'), /not a msgpack map/);
  assert.throws(() => fromHex('d601' + '82010203'), /truncated|entry count/);
});

test('Date is the timestamp extension (-1)', () => {
  const d = new Date(1700000000123);
  assert.equal(hex(d), 'd7ff1d5353006553f100');
  assert.deepEqual(decode(encode(d)), d);
});

test('plain objects, arrays, nesting', () => {
  const v = { a: [1, { b: null }], s: 'x'.repeat(300), n: -0.25, t: true };
  assert.deepEqual(decode(encode(v)), v);
  assert.deepEqual(fromHex('81' + '01' + 'a161'), { 1: 'a' }); // int keys become property names
  assert.throws(() => fromHex('81' + 'c0' + '01'), /ext 1/); // nil key: only a Map can hold it
});

test('values with no encoding are refused, not mangled', () => {
  assert.throws(() => encode(new Set([1])), TypeError);
  assert.throws(() => encode({ f() {} }), TypeError);
  assert.throws(() => encode(Symbol('x')), TypeError);
});

test('depth is bounded, also through Maps', () => {
  let v = 1;
  for (let i = 0; i < 70; i++) v = new Map([[0, v]]);
  assert.throws(() => encode(v));
  let bytes = Buffer.from('01', 'hex');
  for (let i = 0; i < 70; i++) {
    const payload = Buffer.concat([Buffer.from('8100', 'hex'), bytes]);
    const head = Buffer.alloc(6);
    head[0] = 0xc9;
    head.writeUInt32BE(payload.length, 1);
    head[5] = 1;
    bytes = Buffer.concat([head, payload]);
  }
  assert.throws(() => decode(bytes), /deeper/);
});

test('bin decodes as a Buffer copy', () => {
  const src = Buffer.from('c403616263', 'hex');
  const out = decode(src);
  assert.ok(Buffer.isBuffer(out));
  src[2] = 0;
  assert.equal(out.toString(), 'abc');
});
