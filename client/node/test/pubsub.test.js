'use strict';
// Publish/subscribe and presence (PROTOCOL.md section 10) against a real ipchubd.

const test = require('node:test');
const assert = require('node:assert/strict');
const path = require('path');
const { spawnSync } = require('child_process');
const { connect } = require('..');
const { startBroker, once } = require('../testlib/helpers');

let broker;
const hubs = [];
async function hub(opts) {
  const h = await connect({ socket: broker.socket, ...opts });
  hubs.push(h);
  return h;
}

// Resolves once pred(ev) holds for an event pushed to `events` (already or later).
function until(events, pred) {
  return new Promise((resolve) => {
    const check = () => {
      const ev = events.find(pred);
      if (ev) resolve(ev);
      else setImmediate(check);
    };
    check();
  });
}

test.before(async () => {
  // A small high-water mark, so a stalled subscriber overflows quickly.
  broker = await startBroker(undefined, ['--queue-hwm', '65536']);
});
test.afterEach(async () => {
  await Promise.all(hubs.splice(0).map((h) => h.close()));
});
test.after(async () => {
  await broker.stop();
});

test('wildcard subscription receives matching publications in order, with topic and sender', { timeout: 10000 }, async () => {
  const pub = await hub({ name: 'ps-pub' });
  const s = await hub({});
  const got = [];
  const viaEvent = [];
  s.on('publication', (v, meta) => viaEvent.push(meta.topic));
  const sub = await s.subscribe('sensors.*.temp', { policy: 'drop-newest' }, (v, meta) => got.push({ v, meta }));
  assert.equal(sub.pattern, 'sensors.*.temp');
  assert.equal(sub.policy, 'drop-newest');
  const tail = await s.subscribe('sensors.>');
  const tailGot = [];
  tail.on('publication', (v, meta) => tailGot.push(meta.topic));
  for (let i = 0; i < 50; i++) assert.equal(pub.publish(`sensors.room${i % 3}.temp`, { i }), true);
  pub.publish('sensors.kitchen.humidity', 'not for the * subscription');
  pub.publish('other.kitchen.temp', 'no match');
  pub.publish('sensors.last.temp', 'end');
  await until(got, (x) => x.v === 'end');
  assert.deepEqual(got.slice(0, 50).map((x) => x.v.i), [...Array(50).keys()]);
  assert.equal(got.length, 51);
  const m = got[1].meta;
  assert.equal(m.topic, 'sensors.room1.temp');
  assert.equal(m.sub, sub);
  assert.equal(m.gap, undefined);
  assert.deepEqual({ name: m.from.name, id: m.from.id, uid: m.from.uid, key: m.from.key },
    { name: 'ps-pub', id: pub.connId, uid: process.getuid(), key: null });
  await until(tailGot, (t) => t === 'sensors.last.temp');
  assert.equal(tailGot.length, 52);
  assert.ok(tailGot.includes('sensors.kitchen.humidity'));
  assert.equal(viaEvent.length, 51 + 52);
});

test('unsubscribe stops delivery; bad patterns, policies and topics are refused', { timeout: 10000 }, async () => {
  const pub = await hub({});
  const s = await hub({});
  const got = [];
  const sub = await s.subscribe('u.>', (v) => got.push(v));
  const other = await s.subscribe('u.x', () => {});
  pub.publish('u.x', 1);
  await until(got, (v) => v === 1);
  await sub.unsubscribe();
  assert.equal(sub.active, false);
  await sub.unsubscribe(); // ended already: no-op
  const after = [];
  other.on('publication', (v) => after.push(v));
  pub.publish('u.x', 2);
  await until(after, (v) => v === 2); // same publisher, later in order: sub would have had it first
  assert.deepEqual(got, [1]);
  await assert.rejects(s.subscribe('a..b'), { code: 'BAD_NAME' });
  await assert.rejects(s.subscribe('a.>.b'), { code: 'BAD_NAME' });
  await assert.rejects(s.subscribe('a', { policy: 'lossy' }), { code: 'INVALID' });
  assert.throws(() => pub.publish('a.*', 1), { code: 'BAD_NAME' });
  const errs = once(pub, 'send-error');
  pub.publish('ipchub.stats', 1); // well-formed but reserved: the broker refuses it
  const [err] = await errs;
  assert.equal(err.code, 'BAD_NAME');
  assert.equal(typeof err.id, 'number');
});

test('a stalled drop-oldest subscriber is told of the loss with a count', { timeout: 20000 }, async () => {
  const s = await hub({});
  const got = [];
  const gaps = [];
  s.on('gap', (g) => gaps.push(g));
  const sub = await s.subscribe('flood.x', { policy: 'drop-oldest' }, (v, meta) => got.push({ v, gap: meta.gap }));
  const N = 400;
  // A publisher in another process; spawnSync blocks this whole process
  // (so the subscriber reads nothing) until it has published everything
  // and a ping proved the broker routed it all.
  const script = `
    const { connect } = require(${JSON.stringify(path.resolve(__dirname, '..'))});
    (async () => {
      const p = await connect({ socket: ${JSON.stringify(broker.socket)} });
      const pad = 'x'.repeat(8192);
      for (let i = 0; i < ${N}; i++) if (!p.publish('flood.x', { i, pad })) await new Promise((r) => p.once('drain', r));
      await p.ping();
      await p.close();
    })().catch((e) => { console.error(e); process.exit(1); });`;
  const r = spawnSync(process.execPath, ['-e', script], { timeout: 15000, encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  await until(got, (x) => x.v.i === N - 1); // drop-oldest keeps the newest
  assert.ok(gaps.length > 0);
  const lost = gaps.reduce((a, g) => a + g.count, 0);
  assert.ok(gaps.every((g) => g.sub === sub && g.count > 0));
  assert.equal(sub.drops, lost);
  assert.equal(got.length + lost, N);
  const seq = got.map((x) => x.v.i);
  assert.deepEqual(seq, [...seq].sort((a, b) => a - b));
  // Each loss shows on the next delivery: meta.gap = the publications skipped.
  let prev = -1;
  let shown = 0;
  for (const x of got) {
    assert.equal(x.v.i - prev - 1, x.gap || 0);
    shown += x.gap || 0;
    prev = x.v.i;
  }
  assert.equal(shown, lost);
});

test('watch sees owned, released, registered; unwatch stops it', { timeout: 10000 }, async () => {
  const owner = await hub({ name: 'w-svc' });
  const w1 = await hub({});
  const events = [];
  const w = await w1.watch('w-svc', (ev) => events.push(ev));
  assert.deepEqual(events, [{ name: 'w-svc', event: 'owned', owner: owner.connId }]);
  assert.equal(w.owner, owner.connId);
  await owner.unregister('w-svc');
  const other = await hub({ name: 'w-svc' });
  await until(events, (e) => e.event === 'registered');
  assert.deepEqual(events.slice(1), [
    { name: 'w-svc', event: 'released', reason: 'unregister', owner: owner.connId },
    { name: 'w-svc', event: 'registered', owner: other.connId },
  ]);
  assert.equal(w.owner, other.connId);
  await other.close();
  await until(events, (e) => e.reason === 'disconnect');
  assert.equal(w.owner, null);
  await w.unwatch();
  await hub({ name: 'w-svc' });
  await w1.ping();
  assert.equal(events.length, 4);
  const fresh = await w1.watch('w-nobody');
  assert.equal(fresh.owner, null);
  await assert.rejects(w1.watch('ipchub.x'), { code: 'BAD_NAME' });
});

test('waitFor resolves when the name appears, at once if it exists, TIMEOUT otherwise', { timeout: 10000 }, async () => {
  const a = await hub({});
  const waiting = a.waitFor('late-svc', { timeout: 8000 });
  await a.ping(); // the WATCH is in place
  const svc = await hub({ name: 'late-svc' });
  assert.equal(await waiting, svc.connId);
  assert.equal(await a.waitFor('late-svc'), svc.connId);
  await assert.rejects(a.waitFor('never-svc', { timeout: 50 }), { code: 'TIMEOUT' });
});

test('subscriptions and watches survive a broker restart', { timeout: 30000 }, async () => {
  let b = await startBroker();
  const socket = b.socket;
  const rc = { initialDelay: 20, maxDelay: 200 };
  const s = await connect({ socket, reconnect: rc });
  const p = await connect({ socket, name: 'rs-pub', reconnect: rc });
  try {
    const got = [];
    const events = [];
    const sub = await s.subscribe('rs.>', (v, meta) => got.push({ v, meta }));
    const w = await s.watch('rs-pub', (ev) => events.push(ev));
    p.publish('rs.a', 'before');
    await until(got, (x) => x.v === 'before');
    const firstId = sub.id;
    const recS = once(s, 'reconnect');
    const recP = once(p, 'reconnect');
    await b.stop('SIGKILL');
    b = await startBroker(socket);
    const [, info] = await recS;
    await recP;
    assert.equal(info.subscriptions, 1);
    assert.equal(info.watches, 1);
    assert.deepEqual(info.lostSubscriptions, []);
    assert.notEqual(sub.id, firstId);
    // The restored watch reported the state again, then p's name came back.
    await until(events, (e, i) => i > 0 && (e.event === 'owned' || e.event === 'registered') && e.owner === p.connId);
    assert.equal(w.owner, p.connId);
    p.publish('rs.b', 'after');
    await until(got, (x) => x.v === 'after');
    assert.equal(got[got.length - 1].meta.sub, sub);
    assert.equal(got[got.length - 1].meta.from.id, p.connId);
    await sub.unsubscribe();
    await w.unwatch();
  } finally {
    await s.close();
    await p.close();
    await b.stop();
  }
});
