'use strict';
// The Node side of client/python/tests/test_interop.py: registers "js-peer"
// with the Node client (client/node) and answers requests from py-peer:
// - ["js-sample", i]: sends SAMPLES[i] to the requester (encoded by the Node
//   client) and replies with a bin of those exact bytes (null past the end),
//   so Python can compare what arrived with what Node wrote;
// - ["js-bye"]: replies "bye" and exits 0;
// - any other body: replies with a bin of Node's encoding of the value it
//   decoded, so Python can compare Node's bytes with its own.
// Usage: node node_peer.js SOCKET; prints "ready" once registered.

const path = require('path');
const NODE_CLIENT = process.env.IPCHUB_NODE_CLIENT || path.resolve(__dirname, '../../node');
const { connect } = require(NODE_CLIENT);
const { encode } = require(path.join(NODE_CLIENT, 'lib/codec'));

// Every msgpack type the Node client writes (Map travels as ext 1).
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

async function main() {
  const hub = await connect({ socket: process.argv[2], name: 'js-peer', reconnect: false });
  hub.handle(async (body, from) => {
    if (Array.isArray(body) && body[0] === 'js-sample') {
      const i = body[1];
      if (i >= SAMPLES.length) return null;
      hub.send(from.name, SAMPLES[i]);
      return Buffer.from(encode(SAMPLES[i]));
    }
    if (Array.isArray(body) && body[0] === 'js-bye') {
      setImmediate(async () => { await hub.close(); process.exit(0); });
      return 'bye';
    }
    return Buffer.from(encode(body));
  });
  process.stdout.write('ready\n');
}

main().catch((e) => { console.error('node_peer:', e); process.exit(1); });
