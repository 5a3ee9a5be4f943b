'use strict';
// Reconnect across a broker restart on the same socket.

const test = require('node:test');
const assert = require('node:assert/strict');
const { connect } = require('..');
const { startBroker, once } = require('../testlib/helpers');

test('names come back after the broker restarts; in-flight requests fail with IO', { timeout: 30000 }, async () => {
  let broker = await startBroker();
  const socket = broker.socket;
  const a = await connect({ socket, name: 'rc-a', names: ['rc-a2'], reconnect: { initialDelay: 20, maxDelay: 200 } });
  const b = await connect({ socket, name: 'rc-b' });
  try {
    const firstConn = a.connId;
    b.handle(() => new Promise(() => {})); // holds requests forever
    const inflight = a.request('rc-b', 'stuck', { timeout: 20000 }).catch((e) => e);
    await a.ping(); // the request is on the wire
    const disc = once(a, 'disconnect');
    const recA = once(a, 'reconnect');
    const recB = once(b, 'reconnect');
    await broker.stop('SIGKILL');
    const [derr] = await disc;
    assert.equal(derr.code, 'IO');
    const err = await inflight;
    assert.equal(err.code, 'IO');
    // While the broker is down, sends are held (bounded by maxBuffered) and
    // go out after reconnect, once the names are restored: to a's own
    // alias here, so the order does not depend on when b is back.
    const selfMsg = once(a, 'message');
    const firstBroker = a.brokerId;
    a.send('rc-a2', { queued: true });
    broker = await startBroker(socket);
    const [gap, info] = await recA;
    await recB;
    assert.equal(typeof gap, 'number');
    assert.ok(gap > 0);
    assert.deepEqual(info.names, ['rc-a', 'rc-a2']);
    assert.deepEqual(info.lost, []);
    assert.notEqual(a.brokerId, firstBroker);
    assert.ok(a.connId > 0 && firstConn > 0);
    const peers = await b.peers();
    assert.deepEqual(peers.map((p) => p.name), ['rc-a', 'rc-a2', 'rc-b']);
    const [msg, from] = await selfMsg;
    assert.deepEqual(msg, { queued: true });
    assert.equal(from.name, 'rc-a');
    assert.equal(from.id, a.connId);
    b.handle((x) => x * 2);
    assert.equal(await a.request('rc-b', 21), 42);
    const got = once(a, 'message');
    b.send('rc-a2', 'to the alias');
    assert.equal((await got)[0], 'to the alias');
  } finally {
    await a.close();
    await b.close();
    await broker.stop();
  }
});

test('reconnect: false closes the hub when the broker goes away', { timeout: 15000 }, async () => {
  const broker = await startBroker();
  const a = await connect({ socket: broker.socket, name: 'nr-a', reconnect: false });
  const closed = once(a, 'close');
  await broker.stop('SIGKILL');
  await closed;
  assert.throws(() => a.send('x', 1), { code: 'CLOSED' });
  await assert.rejects(a.ping(), { code: 'CLOSED' });
});
