'use strict';
// Batched SENDs end to end (PROTOCOL.md 6.3.1): Node clients against a real
// ipchubd. A burst of sends travels as batch frames (the broker's
// batches_routed counts them) and arrives as single messages in order with
// consecutive ids; a batch to a missing name comes back as one send-error
// per message; NOWAIT and plain sends interleave without reordering.

const test = require('node:test');
const assert = require('node:assert/strict');
const { connect } = require('..');
const { startBroker } = require('../testlib/helpers');

let broker;
const hubs = [];
async function hub(opts) {
  const h = await connect({ socket: broker.socket, reconnect: false, ...opts });
  hubs.push(h);
  return h;
}

// Collects `event` into an array; wait(n) resolves once it holds n.
function collect(emitter, event, map) {
  const got = [];
  let waiter = null;
  emitter.on(event, (...a) => {
    got.push(map(...a));
    if (waiter && got.length >= waiter.n) waiter.resolve();
  });
  Object.defineProperty(got, 'wait', {
    value: (n) => (got.length >= n ? Promise.resolve() : new Promise((resolve) => { waiter = { n, resolve }; })),
  });
  return got;
}

test.before(async () => {
  broker = await startBroker();
});
test.afterEach(async () => {
  await Promise.all(hubs.splice(0).map((h) => h.close()));
});
test.after(async () => {
  await broker.stop();
});

test('a burst of sends travels in batches and arrives in order, one message per send', { timeout: 10000 }, async () => {
  const a = await hub({ name: 'bat-a' });
  const b = await hub({ name: 'bat-b' });
  const before = await a.request('ipchub.stats', null);
  const got = collect(b, 'message', (v, from, meta) => ({ v, from, meta }));
  const n = 2000;
  const values = Array.from({ length: n }, (_, i) => (i % 3 === 0 ? { i, s: 'x'.repeat(i % 50) } : i % 3 === 1 ? i : Buffer.alloc(i % 200, i & 0xff)));
  for (const v of values) a.send('bat-b', v);
  await got.wait(n);
  assert.deepEqual(got.map((m) => m.v), values);
  for (let i = 1; i < n; i++) assert.equal(got[i].meta.id, got[0].meta.id + i);
  for (const m of got) {
    assert.equal(m.from.name, 'bat-a');
    assert.equal(m.from.id, a.connId);
    assert.equal(m.meta.to, 'bat-b');
  }
  const after = await a.request('ipchub.stats', null);
  assert.equal(after.messages_routed - before.messages_routed, n); // a batch of k counts k
  // 2,000 small messages, 64 KiB per batch at most: a few frames, not 2,000
  const batches = after.batches_routed - before.batches_routed;
  assert.ok(batches >= 1 && batches <= 50, `${batches} batch frames`);
});

test('a batch to a missing name is one send-error per message, with its id', { timeout: 10000 }, async () => {
  const a = await hub({ name: 'bat-c' });
  const errs = collect(a, 'send-error', (e) => e);
  for (let i = 0; i < 100; i++) a.send('bat-nobody', i);
  await errs.wait(100);
  assert.ok(errs.every((e) => e.code === 'NO_SUCH_PEER' && e.to === 'bat-nobody'));
  const ids = errs.map((e) => e.id);
  assert.deepEqual(ids, ids.map((_, i) => ids[0] + i));
});

test('NOWAIT and plain sends, names and requests interleave in order', { timeout: 10000 }, async () => {
  const a = await hub({ name: 'bat-d' });
  const b = await hub({ name: 'bat-e' });
  const c = await hub({ name: 'bat-f' });
  b.handle((v) => v * 2);
  const gotB = collect(b, 'message', (v) => v);
  const gotC = collect(c, 'message', (v) => v);
  const expectB = [];
  const expectC = [];
  const replies = [];
  const asked = [];
  for (let i = 0; i < 300; i++) {
    if (i % 7 === 0) {
      a.send('bat-f', i);
      expectC.push(i);
    } else if (i % 11 === 0) {
      replies.push(a.request('bat-e', i));
      asked.push(i);
    } else {
      a.send('bat-e', i, { nowait: i % 2 === 0 });
      expectB.push(i);
    }
  }
  await gotB.wait(expectB.length);
  await gotC.wait(expectC.length);
  assert.deepEqual(gotB, expectB);
  assert.deepEqual(gotC, expectC);
  assert.deepEqual(await Promise.all(replies), asked.map((i) => i * 2));
});
