'use strict';
// Deadlines: many timeouts on one timer (lib/deadlines.js).

const test = require('node:test');
const assert = require('node:assert/strict');
const { performance } = require('perf_hooks');
const { Deadlines } = require('../lib/deadlines');

const clock = () => performance.now();

test('items fire once, not before their deadline, in deadline order across durations', { timeout: 5000 }, async () => {
  const d = new Deadlines(clock);
  const fired = [];
  const items = [];
  const arm = (name, ms) => {
    const it = { name };
    items.push(it);
    d.arm(it, ms, () => fired.push([name, clock() >= it.dlAt]));
    return it;
  };
  arm('a30', 30);
  const b = arm('b10', 10);
  arm('c10', 10);
  arm('d1', 1);
  arm('e20', 20);
  d.cancel(b);
  d.cancel(b); // idempotent
  await new Promise((resolve) => {
    const poll = setInterval(() => {
      if (fired.length === 4) {
        clearInterval(poll);
        resolve();
      }
    }, 5);
  });
  assert.deepEqual(fired, [['d1', true], ['c10', true], ['e20', true], ['a30', true]]);
  assert.ok(items.every((it) => it.dlFn === null));
  assert.equal(d._qs.size, 0);
  assert.equal(d._timer, null);
});

test('sequential arm/cancel keeps one item per FIFO; clear() drops everything', () => {
  const d = new Deadlines(clock);
  for (let i = 0; i < 10000; i++) {
    const it = {};
    d.arm(it, 5000, () => assert.fail('cancelled item fired'));
    d.cancel(it);
  }
  assert.equal(d._qs.get(5000).items.length - d._qs.get(5000).head, 1);
  const kept = {};
  d.arm(kept, 60000, () => assert.fail('cleared item fired'));
  d.clear();
  assert.equal(kept.dlFn, null);
  assert.equal(d._timer, null);
  assert.equal(d._qs.size, 0);
});

test('a cancelled head does not hold back the items behind it', { timeout: 5000 }, async () => {
  const d = new Deadlines(clock);
  const first = {};
  d.arm(first, 5, () => assert.fail('cancelled item fired'));
  const done = new Promise((resolve) => d.arm({}, 5, resolve));
  d.cancel(first);
  const keepAlive = setInterval(() => {}, 1000); // the timer is unref()'d
  await done;
  clearInterval(keepAlive);
});

test('a late timer fires every due item in deadline order, whatever FIFO it is in', () => {
  let now = 0;
  const d = new Deadlines(() => now);
  const fired = [];
  for (const [name, ms] of [['c10', 10], ['d1', 1], ['a30', 30], ['e20', 20]]) {
    d.arm({ name }, ms, () => fired.push(name));
  }
  now = 25; // the timer ran 24 ms late: d1, c10 and e20 are all due
  d._fire();
  assert.deepEqual(fired, ['d1', 'c10', 'e20']);
  d.clear();
});
