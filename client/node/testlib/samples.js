'use strict';
// The msgpack samples of the interop tests (test/interop.test.js against
// the C client, client/python/tests/node_peer.js against the Python one).
// Every msgpack type, as JavaScript values (Map for a map with non-string
// keys travels as ext 1; see PROTOCOL.md section 11).
const SAMPLES = [
  0, 127, 128, 255, 256, 65535, 65536, 2 ** 32 - 1, 2 ** 32, Number.MAX_SAFE_INTEGER,
  2n ** 64n - 1n, -1, -32, -33, -128, -129, -32768, -32769, -(2 ** 31), -(2n ** 63n),
  0.5, -1.25, 3.141592653589793, 1e300,
  '', 'a', 'héllo €', 'x'.repeat(40), 'y'.repeat(300), '日本語'.repeat(30000),
  Buffer.alloc(0), Buffer.from([0, 1, 2, 0xfe, 0xff]), Buffer.alloc(70000, 7),
  null, true, false,
  [], [1, [2, [3, []]]], {}, { a: 1, nested: { b: [true, null, 'c'], d: { e: {} } } },
  new Map([[1, 'one'], ['two', 2]]),
  new Date(1700000000000), new Date(1700000000123),
  { all: [1, -1, 2n ** 63n, 0.25, 'str', Buffer.from('bin'), null, true, { k: 'v' }] },
];

module.exports = { SAMPLES };
