'use strict';
// Integration: a real ipchubd on a temporary socket, driven through the API.

const test = require('node:test');
const assert = require('node:assert/strict');
const { connect, IpchubError } = require('..');
const { startBroker, tmpSocket, once } = require('../testlib/helpers');

let broker;
const hubs = [];
async function hub(opts) {
  const h = await connect({ socket: broker.socket, ...opts });
  hubs.push(h);
  return h;
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

test('connect, register, NAME_TAKEN, unregister, peers, ping', { timeout: 10000 }, async () => {
  const a = await hub({ name: 'svc-a', names: ['svc-a.alias'] });
  assert.ok(a.connId > 0);
  assert.match(a.brokerId, /^[0-9a-f]{32}$/);
  assert.deepEqual(a.names, ['svc-a', 'svc-a.alias']);
  await assert.rejects(connect({ socket: broker.socket, name: 'svc-a' }), (e) => e instanceof IpchubError && e.code === 'NAME_TAKEN' && e.codeNumber === 6);
  const b = await hub({});
  await assert.rejects(b.register('svc-a'), { code: 'NAME_TAKEN' });
  await assert.rejects(b.register('ipchub.x'), { code: 'BAD_NAME' });
  await assert.rejects(b.register('bad..name'), { code: 'BAD_NAME' });
  await assert.rejects(b.unregister('svc-a'), { code: 'NOT_OWNER' });
  await b.register('svc-b');
  const peers = await b.peers();
  assert.deepEqual(peers.map((p) => p.name), ['svc-a', 'svc-a.alias', 'svc-b']);
  assert.equal(peers[0].conn, a.connId);
  assert.equal(peers[0].pid, process.pid);
  await a.unregister('svc-a.alias');
  assert.deepEqual(a.names, ['svc-a']);
  assert.equal(typeof (await a.ping()), 'number');
});

test('NO_BROKER when nothing listens', { timeout: 10000 }, async () => {
  await assert.rejects(connect({ socket: tmpSocket(), name: 'x' }), { code: 'NO_BROKER', codeNumber: 69 });
});

test('send delivers the message with its sender', { timeout: 10000 }, async () => {
  const a = await hub({ name: 'snd-a' });
  const b = await hub({ name: 'snd-b' });
  const got = once(b, 'message');
  assert.equal(a.send('snd-b', { hello: 'world' }), true);
  const [msg, from] = await got;
  assert.deepEqual(msg, { hello: 'world' });
  assert.deepEqual({ name: from.name, id: from.id }, { name: 'snd-a', id: a.connId });
  // An anonymous sender has no name, only its connection id.
  const anon = await hub({});
  const got2 = once(b, 'message');
  anon.send('snd-b', 1);
  const [, from2] = await got2;
  assert.equal(from2.name, null);
  assert.equal(from2.id, anon.connId);
});

test('every body type round-trips through the broker', { timeout: 10000 }, async () => {
  const a = await hub({ name: 'rt-a' });
  const b = await hub({ name: 'rt-b' });
  b.handle((body) => body); // echo by request too
  const values = [
    0, 1, -1, 127, 128, -33, 255, 65535, 65536, 2 ** 32, -(2 ** 31) - 1, Number.MAX_SAFE_INTEGER, -Number.MAX_SAFE_INTEGER,
    2n ** 53n, 2n ** 63n, 2n ** 64n - 1n, -(2n ** 63n), 1.5, -0.1, 1e300, Infinity, NaN,
    'héllo wörld ✓ 🎉', '', 'x'.repeat(70000), Buffer.from([0, 1, 2, 255]), Buffer.alloc(100000, 7),
    null, true, false, new Date(Date.UTC(2024, 1, 29, 12, 0, 0, 5)), new Date(-1),
    [1, 'two', [3, [4]]], { a: 1, b: { c: [null, true] }, 'ü': 'k' },
    new Map([[1, 'int key'], ['s', new Map([[Buffer.from('bin'), { nested: [new Map()] }]])], [2n ** 60n, null]]),
    { list: [new Map([[true, 1]]), { d: new Date(0) }] },
  ];
  const received = [];
  b.on('message', (m) => received.push(m));
  for (const v of values) a.send('rt-b', v);
  a.send('rt-b', 'end');
  while (received[received.length - 1] !== 'end') await once(b, 'message');
  assert.equal(received.length, values.length + 1);
  values.forEach((v, i) => assert.deepEqual(received[i], v, `value ${i}`));
  for (const v of values.slice(0, 12)) assert.deepEqual(await a.request('rt-b', v), v);
  // undefined is sent as nil
  assert.equal(await a.request('rt-b', undefined), null);
});

test('request/handle: reply, REMOTE_ERROR from a throwing handler, no handler', { timeout: 10000 }, async () => {
  const a = await hub({ name: 'rq-a' });
  const b = await hub({ name: 'rq-b' });
  const c = await hub({ name: 'rq-c' });
  b.handle(async (body, from, ctx) => {
    if (body.fail) throw new Error('database is on fire');
    return { sum: body.x + body.y, from: from.name, timeout: ctx.timeout };
  });
  assert.deepEqual(await a.request('rq-b', { x: 2, y: 3 }, { timeout: 1000 }), { sum: 5, from: 'rq-a', timeout: 1000 });
  await assert.rejects(a.request('rq-b', { fail: true }), (e) => e.code === 'REMOTE_ERROR' && e.message === 'database is on fire' && e.remote === true);
  await assert.rejects(a.request('rq-c', 1), (e) => e.code === 'REMOTE_ERROR' && e.message === 'no handler');
  // many concurrent requests each settle with their own answer
  const answers = await Promise.all(Array.from({ length: 500 }, (_, i) => a.request('rq-b', { x: i, y: 1 })));
  answers.forEach((r, i) => assert.equal(r.sum, i + 1));
});

test('request TIMEOUT, CANCELLED, NO_SUCH_PEER; send-error for send', { timeout: 10000 }, async () => {
  const a = await hub({ name: 'to-a' });
  const b = await hub({ name: 'to-b' });
  b.handle(() => new Promise(() => {})); // never answers
  await assert.rejects(a.request('to-b', 1, { timeout: 100 }), { code: 'TIMEOUT', codeNumber: 10 });
  const ac = new AbortController();
  const p = a.request('to-b', 1, { timeout: 5000, signal: ac.signal });
  setTimeout(() => ac.abort(), 20);
  await assert.rejects(p, { code: 'CANCELLED' });
  await assert.rejects(a.request('to-b', 1, { signal: AbortSignal.abort() }), { code: 'CANCELLED' });
  await assert.rejects(a.request('nobody-here', 1), (e) => e.code === 'NO_SUCH_PEER' && e.to === 'nobody-here');
  const errP = once(a, 'send-error');
  a.send('nobody-here', { lost: true });
  const [err] = await errP;
  assert.equal(err.code, 'NO_SUCH_PEER');
  assert.equal(err.to, 'nobody-here');
  assert.ok(err.id > 0);
  // local argument errors are thrown at once
  assert.throws(() => a.send('bad name', 1), { code: 'BAD_NAME' });
  assert.throws(() => a.send('to-b', new Set()), TypeError);
  assert.throws(() => a.send('to-b', Buffer.alloc(a.maxFrame)), { code: 'TOO_LARGE' });
  // the connection is still fine
  assert.equal(typeof (await a.ping()), 'number');
});

test('backpressure: send() returns false, then drain, and nothing is lost', { timeout: 60000 }, async () => {
  const consumer = await hub({ name: 'bp-consumer' });
  const producer = await hub({ name: 'bp-producer' });
  const N = 30000;
  const payload = Buffer.alloc(1024, 0xab);
  let next = 0;
  let bad = 0;
  consumer.on('message', (m) => {
    if (m.seq !== next) bad++;
    next++;
  });
  consumer._socket.pause(); // a consumer that does not read
  let sawFalse = false;
  let drains = 0;
  producer.on('drain', () => drains++);
  const done = new Promise((resolve) => {
    const tick = () => {
      let seq = sendNext.seq;
      while (seq < N) {
        const ok = producer.send('bp-consumer', { seq, payload });
        seq++;
        if (!ok) {
          if (!sawFalse) {
            sawFalse = true;
            consumer._socket.resume(); // now let it catch up
          }
          sendNext.seq = seq;
          producer.once('drain', tick);
          return;
        }
      }
      resolve();
    };
    const sendNext = { seq: 0 };
    tick();
  });
  await done;
  while (next < N) await once(consumer, 'message');
  assert.ok(sawFalse, 'send() never returned false');
  assert.ok(drains >= 1, "'drain' never fired");
  assert.equal(next, N);
  assert.equal(bad, 0, 'messages out of order');
});

test('close() flushes queued sends before BYE', { timeout: 10000 }, async () => {
  const b = await hub({ name: 'cl-b' });
  const a = await connect({ socket: broker.socket, name: 'cl-a' });
  let n = 0;
  b.on('message', () => n++);
  for (let i = 0; i < 1000; i++) a.send('cl-b', i);
  await a.close();
  while (n < 1000) await once(b, 'message');
  assert.equal(n, 1000);
  await assert.rejects(a.request('cl-b', 1), { code: 'CLOSED' });
});
