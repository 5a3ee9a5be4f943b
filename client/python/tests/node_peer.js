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
const { SAMPLES } = require(path.join(NODE_CLIENT, 'testlib/samples'));


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
