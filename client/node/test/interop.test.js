'use strict';
// Cross-language: a C peer (tests/interop/c_peer.c, built with libipchub)
// and this Node peer exchange sends, requests and replies in both
// directions, and every msgpack type round-trips byte-exact:
// - Node -> C: the C peer answers with a bin holding the exact bytes it
//   received, compared with what codec.encode() produced here;
// - C -> Node: the C peer sends a body holding every type, packed by
//   msgpack-c; Node decodes it and sends it back re-encoded; the C peer
//   compares the bytes and reports "c-ok" or "c-fail: why".

const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('fs');
const path = require('path');
const { spawn } = require('child_process');
const { connect } = require('..');
const { encode } = require('../lib/codec');
const { startBroker, BROKER, once } = require('../testlib/helpers');
const { SAMPLES } = require('../testlib/samples');

// BUILD/broker/ipchubd -> BUILD/tests/interop/c_peer
const C_PEER = process.env.IPCHUB_C_PEER || path.resolve(path.dirname(BROKER), '../tests/interop/c_peer');

// A broker, c_peer on it and a Node hub "node-peer"; fn(hub, next,
// exited) runs the exchange (next() waits for the C peer's next message
// to node-peer, exited resolves when c_peer exits); all is stopped after.
async function withCPeer(fn) {
  assert.ok(fs.existsSync(C_PEER), `c_peer not built at ${C_PEER} (cmake --build build)`);
  const broker = await startBroker();
  const cpeer = spawn(C_PEER, [broker.socket], { stdio: ['ignore', 'pipe', 'inherit'] });
  const exited = once(cpeer, 'exit');
  let hub;
  try {
    await new Promise((resolve, reject) => {
      cpeer.stdout.on('data', (d) => { if (String(d).includes('ready')) resolve(); });
      cpeer.on('exit', (code) => reject(new Error(`c_peer exited early (${code})`)));
    });
    hub = await connect({ socket: broker.socket, name: 'node-peer', reconnect: false });
    const inbox = [];
    let waiter = null;
    hub.on('message', (msg, from) => {
      assert.equal(from.name, 'c-peer');
      inbox.push(msg);
      if (waiter) waiter();
    });
    const next = async () => {
      while (!inbox.length) await new Promise((r) => { waiter = r; });
      waiter = null;
      return inbox.shift();
    };
    await fn(hub, next, exited);
  } finally {
    if (hub) await hub.close();
    cpeer.kill();
    await broker.stop();
  }
}

test('a C peer and a Node peer exchange every msgpack type byte-exact, both ways', { timeout: 30000 }, async () => {
  await withCPeer(async (hub, next, exited) => {
    // What the C peer sends us: its echoes of our sends, its own sample
    // (to be sent back as decoded), and its verdict.
    for (const v of SAMPLES) {
      const want = Buffer.from(encode(v));
      // Node -> C request, C replies with the bytes it got.
      const got = await hub.request('c-peer', v, { timeout: 5000 });
      assert.ok(Buffer.isBuffer(got), 'the C peer answers with a bin');
      assert.deepEqual(got, want, `request bytes for ${String(v).slice(0, 40)}`);
      // Node -> C send, C sends the bytes back.
      hub.send('c-peer', v);
      assert.deepEqual(await next(), want, `send bytes for ${String(v).slice(0, 40)}`);
    }

    // C -> Node: a request (answered by the handler with the decoded
    // value, re-encoded) and a send (sent back re-encoded).
    hub.handle(async (body) => body);
    hub.send('c-peer', 'c-go');
    const sample = await next();
    assert.equal(typeof sample, 'object');
    assert.equal(sample.u64max, 2n ** 64n - 1n);
    assert.equal(sample.i64min, -(2n ** 63n));
    assert.ok(sample.time instanceof Date);
    hub.send('c-peer', sample);
    assert.equal(await next(), 'c-ok');

    hub.send('c-peer', 'c-bye');
    const [code] = await exited;
    assert.equal(code, 0);
  });
});

// Descriptors towards Node (PROTOCOL.md 6.8): the Node client announces no
// FDS, so a C sender's ipchub_send_fds()/ipchub_request_fds() to it is
// answered FDS_UNSUPPORTED with the id (c_peer checks that, and that the
// broker closed its copies). Nothing reaches the Node side: the next
// message is c_peer's verdict, no descriptor was installed in this
// process (its /proc/self/fd count is unchanged) and the connection goes
// on working.
test('descriptors sent to a Node receiver come back FDS_UNSUPPORTED; Node gets nothing broken', { timeout: 30000 }, async () => {
  await withCPeer(async (hub, next, exited) => {
    hub.handle(async () => { throw new Error('no request may reach node-peer'); });
    const fdsBefore = fs.readdirSync('/proc/self/fd').length;
    hub.send('c-peer', 'c-fds');
    assert.equal(await next(), 'c-fds-ok');
    assert.equal(fs.readdirSync('/proc/self/fd').length, fdsBefore);
    const echoed = await hub.request('c-peer', 'still here', { timeout: 5000 });
    assert.deepEqual(echoed, Buffer.from(encode('still here')));
    hub.send('c-peer', 'c-bye');
    const [code] = await exited;
    assert.equal(code, 0);
  });
});
