'use strict';
// Batched SENDs (PROTOCOL.md 6.3.1): the frame layer's checks and split of
// crafted batch frames, and the client against a scripted fake broker
// (HELLO flags, delivery of a batch as single messages, ERROR count,
// a malformed batch, and the coalescing of sends into batch frames).

const test = require('node:test');
const assert = require('node:assert/strict');
const net = require('net');
const { decodeMulti } = require('@msgpack/msgpack');
const frame = require('../lib/frame');
const codec = require('../lib/codec');
const { connect } = require('..');
const { tmpSocket, once } = require('../testlib/helpers');

const { KEY: K, KIND, WF_BATCH, WF_NOWAIT } = frame;
const strip = (f) => f.subarray(4);

// A batch body: array 32 (what the libraries write) or the smallest array.
function batchBody(values, array32 = true) {
  const parts = values.map((v) => Buffer.from(codec.encode(v)));
  const n = parts.length;
  let head;
  if (array32) head = Buffer.from([0xdd, n >>> 24, (n >> 16) & 0xff, (n >> 8) & 0xff, n & 0xff]);
  else if (n < 16) head = Buffer.from([0x90 | n]);
  else head = Buffer.from([0xdc, n >> 8, n & 0xff]);
  return Buffer.concat([head, ...parts]);
}

function batchSend(body, extra = []) {
  return frame.encodeFrame([K.kind, KIND.SEND, K.id, 40, K.to, 'b', K.from_id, 3, K.from, 'a', K.flags, WF_BATCH, ...extra], body);
}

// `depth` nested arrays around a nil.
function nested(depth) {
  return Buffer.concat([Buffer.alloc(depth, 0x91), Buffer.from([0xc0])]);
}

const SAMPLE = [0, -1, 2 ** 40, 0.5, 'héllo', Buffer.from([1, 2, 3]), null, true, [1, [2]], { k: 'v' },
  new Map([[1, 'one']]), new Date(1700000000000), 2n ** 63n];

test('a batched SEND is checked whole and split into its elements', () => {
  for (const array32 of [true, false]) {
    const f = frame.parseFrame(strip(batchSend(batchBody(SAMPLE, array32))));
    assert.equal(f.flags, WF_BATCH);
    assert.equal(f.batch.length, SAMPLE.length + 1);
    const got = [];
    for (let i = 0; i < SAMPLE.length; i++) got.push(codec.decode(f.body.subarray(f.batch[i], f.batch[i + 1])));
    assert.deepEqual(got, SAMPLE);
    assert.equal(f.batch[SAMPLE.length], f.body.length);
  }
  // array 16, and the deepest element allowed: 32 levels (the array does not count)
  const many = Array.from({ length: 300 }, (_, i) => i);
  assert.equal(frame.parseFrame(strip(batchSend(batchBody(many, false)))).batch.length, 301);
  const deep = Buffer.concat([Buffer.from([0x92]), nested(32), Buffer.from([0x01])]);
  assert.equal(frame.parseFrame(strip(batchSend(deep))).batch.length, 3);
  // the largest batch: 65,536 nils
  const max = Buffer.concat([Buffer.from([0xdd, 0, 1, 0, 0]), Buffer.alloc(65536, 0xc0)]);
  assert.equal(frame.parseFrame(strip(batchSend(max))).batch.length, 65537);
  // without flags, a SEND whose body is an array is one message
  const plain = frame.parseFrame(strip(frame.encodeFrame([K.kind, KIND.SEND, K.id, 1, K.to, 'b', K.from_id, 3], batchBody([1, 2]))));
  assert.equal(plain.batch, null);
});

test('malformed batches are BAD_FRAME', () => {
  const arr = (n, rest) => Buffer.concat([Buffer.from([0xdd, n >>> 24, (n >> 16) & 0xff, (n >> 8) & 0xff, n & 0xff]), Buffer.from(rest)]);
  const bad = [
    ['not an array', Buffer.from([0x81, 0x01, 0x02])],
    ['a plain value', Buffer.from([0x01])],
    ['empty array', Buffer.from([0x90])],
    ['empty array 32', arr(0, [])],
    ['more than 65,536', Buffer.concat([arr(65537, []), Buffer.alloc(65537, 0xc0)])],
    ['count beyond the bytes', arr(3, [1, 2])],
    ['trailing bytes', Buffer.from([0x92, 0x01, 0x02, 0x03])],
    ['truncated element', Buffer.from([0x92, 0x01, 0xcd, 0x01])],
    ['truncated str', Buffer.from([0x91, 0xa5, 0x61])],
    ['truncated bin 32', Buffer.from([0x91, 0xc6, 0xff, 0xff, 0xff, 0xff, 0x00])],
    ['truncated ext', Buffer.from([0x91, 0xd6, 0x01, 0x00])],
    ['element map declares too many', Buffer.from([0x91, 0xdf, 0x7f, 0xff, 0xff, 0xff, 0x01])],
    ['invalid byte 0xc1', Buffer.from([0x92, 0x01, 0xc1])],
    ['element nested 33 deep', Buffer.concat([Buffer.from([0x91]), nested(33)])],
    ['array header truncated', Buffer.from([0xdd, 0x00, 0x00])],
  ];
  for (const [what, b] of bad) {
    assert.throws(() => frame.parseFrame(strip(batchSend(b))), { code: 'BAD_FRAME' }, what);
  }
  assert.throws(() => frame.parseFrame(strip(batchSend(null))), { code: 'BAD_FRAME' }, 'no body');
  assert.throws(() => frame.splitBatch(nested(40)), /nested more than 32/);
});

test('flag bits and ERROR count follow the per-kind rules of proto/frame.c', () => {
  const welcome = (flags) => frame.encodeFrame([K.kind, KIND.WELCOME, K.ver, 1, K.conn, 7, K.broker, 'ab', K.max_frame, 65536, K.flags, flags], null);
  assert.equal(frame.parseFrame(strip(welcome(WF_BATCH))).flags, WF_BATCH);
  assert.equal(frame.parseFrame(strip(welcome(0))).flags, 0);
  const err = frame.parseFrame(strip(frame.encodeFrame([K.kind, KIND.ERROR, K.id, 40, K.code, 12, K.ref, KIND.SEND, K.to, 'b', K.count, 3], null)));
  assert.equal(err.count, 3);
  const bad = [
    ['WELCOME NOWAIT', [K.kind, KIND.WELCOME, K.ver, 1, K.conn, 7, K.broker, 'ab', K.max_frame, 65536, K.flags, WF_NOWAIT]],
    ['WELCOME unknown bit', [K.kind, KIND.WELCOME, K.ver, 1, K.conn, 7, K.broker, 'ab', K.max_frame, 65536, K.flags, 4]],
    ['SEND NOWAIT to a receiver', [K.kind, KIND.SEND, K.id, 1, K.to, 'b', K.from_id, 3, K.flags, WF_NOWAIT]],
    ['REQUEST with flags', [K.kind, KIND.REQUEST, K.id, 1, K.to, 'b', K.from_id, 3, K.flags, WF_BATCH]],
    ['PUBLISH with flags', [K.kind, KIND.PUBLISH, K.id, 9, K.topic, 'a', K.sub, 5, K.from_id, 3, K.flags, WF_BATCH]],
    ['OK with flags', [K.kind, KIND.OK, K.id, 1, K.flags, 0]],
    ['OK with count', [K.kind, KIND.OK, K.id, 1, K.count, 1]],
    ['ERROR count 0', [K.kind, KIND.ERROR, K.id, 1, K.code, 12, K.count, 0]],
    ['ERROR count 65537', [K.kind, KIND.ERROR, K.id, 1, K.code, 12, K.count, 65537]],
    ['ERROR count 2^40', [K.kind, KIND.ERROR, K.id, 1, K.code, 12, K.count, 2 ** 40]],
  ];
  for (const [what, fields] of bad) {
    assert.throws(() => frame.parseFrame(strip(frame.encodeFrame(fields, fields[1] === KIND.SEND || fields[1] === KIND.REQUEST || fields[1] === KIND.PUBLISH ? Buffer.from([1]) : null))),
      { code: 'BAD_FRAME' }, what);
  }
});

/* ---------------------------------------------------------- fake broker */

// A scripted broker: WELCOME (flags BATCH unless batch is false), OK for
// every REGISTER; every frame the client sends after its REGISTERs is
// decoded into `frames` ({hdr, body, raw}); `conn` resolves with the socket.
async function fakeBroker({ batch = true } = {}) {
  const socket = tmpSocket();
  const state = { socket, hello: null, frames: [], conn: null, waiters: [] };
  let gotConn;
  state.conn = new Promise((resolve) => { gotConn = resolve; });
  state.batch = batch; // read at each connection: a test may change it
  state.srv = net.createServer((c) => {
    const r = new frame.FrameReader((b) => {
      const [hdr, ...rest] = [...decodeMulti(b, { useBigInt64: true })];
      const kind = hdr[K.kind];
      if (kind === KIND.HELLO) {
        state.hello = hdr;
        const w = [K.kind, KIND.WELCOME, K.ver, 1, K.conn, 1, K.broker, '0'.repeat(32), K.max_frame, 1 << 20];
        if (state.batch) w.push(K.flags, WF_BATCH);
        c.write(frame.encodeFrame(w, null));
      } else if (kind === KIND.REGISTER) {
        c.write(frame.encodeFrame([K.kind, KIND.OK, K.id, hdr[K.id]], null));
        gotConn(c);
      } else {
        state.frames.push({ hdr, body: rest.length ? rest[0] : undefined, raw: Buffer.from(b) });
        for (const w of state.waiters.splice(0)) w();
      }
    });
    r.maxFrame = 1 << 24;
    c.on('data', (d) => r.push(d));
    c.on('error', () => {});
  });
  await new Promise((resolve) => state.srv.listen(socket, resolve));
  // Resolves once `n` frames have arrived.
  state.waitFrames = async (n) => {
    while (state.frames.length < n) await new Promise((resolve) => state.waiters.push(resolve));
    return state.frames;
  };
  return state;
}

// Collects `event` into an array; wait(n) resolves once it holds n.
function collect(emitter, event, map = (...a) => a) {
  const got = [];
  let waiter = null;
  emitter.on(event, (...a) => {
    got.push(map(...a));
    if (waiter && got.length >= waiter.n) waiter.resolve();
  });
  Object.defineProperty(got, 'wait', { value: (n) => (got.length >= n ? Promise.resolve() : new Promise((resolve) => { waiter = { n, resolve }; })) });
  return got;
}

async function withHub(opts, fn) {
  const fb = await fakeBroker(opts);
  const hub = await connect({ name: 'a', socket: fb.socket, reconnect: false });
  const c = await fb.conn;
  try {
    await fn(hub, fb, c);
  } finally {
    await hub.close();
    fb.srv.close();
  }
}

test('HELLO announces BATCH; a batch arrives as single messages with their own ids', { timeout: 10000 }, async () => {
  await withHub({}, async (hub, fb, c) => {
    assert.equal(fb.hello[K.flags], WF_BATCH);
    const got = collect(hub, 'message', (v, from, meta) => ({ v, from, meta }));
    // A batch of every type, then a single SEND: order and ids kept.
    c.write(frame.encodeFrame([K.kind, KIND.SEND, K.id, 2 ** 53 - 3, K.to, 'a', K.from_id, 9, K.from, 'p', K.uid, 1000, K.flags, WF_BATCH],
      batchBody(SAMPLE.slice(0, 5))));
    c.write(frame.encodeFrame([K.kind, KIND.SEND, K.id, 7, K.to, 'a', K.from_id, 9, K.from, 'p'], Buffer.from(codec.encode('last'))));
    await got.wait(6);
    assert.deepEqual(got.map((m) => m.v), [...SAMPLE.slice(0, 5), 'last']);
    // ids id + i, past 2^53 - 1 as BigInt
    assert.deepEqual(got.map((m) => m.meta.id), [2 ** 53 - 3, 2 ** 53 - 2, 2 ** 53 - 1, 2n ** 53n, 2n ** 53n + 1n, 7]);
    for (const m of got) {
      assert.equal(m.meta.to, 'a');
      assert.deepEqual(m.from, { name: 'p', id: 9, uid: m.v === 'last' ? null : 1000, key: null });
    }
    assert.notEqual(got[0].from, got[1].from); // each message its own sender object
  });
});

test('an element that does not decode is one message-error; the others arrive', { timeout: 10000 }, async () => {
  await withHub({}, async (hub, fb, c) => {
    const got = collect(hub, 'message', (v, from, meta) => [v, meta.id]);
    const errs = collect(hub, 'message-error', (e) => e);
    // element 1 is a map with a nil key: valid msgpack, no JavaScript value
    const body = Buffer.from([0x93, 0x01, 0x81, 0xc0, 0x01, 0x03]);
    c.write(frame.encodeFrame([K.kind, KIND.SEND, K.id, 10, K.to, 'a', K.from_id, 9, K.flags, WF_BATCH], body));
    await got.wait(2);
    await errs.wait(1);
    assert.deepEqual(got, [[1, 10], [3, 12]]);
    assert.equal(errs.length, 1);
    assert.equal(errs[0].code, 'BAD_BODY');
    assert.equal(errs[0].id, 11);
    assert.deepEqual([...errs[0].raw], [0x81, 0xc0, 0x01]);
  });
});

test('a malformed batch from the broker is fatal and delivers nothing', { timeout: 10000 }, async () => {
  await withHub({}, async (hub, fb, c) => {
    let delivered = 0;
    hub.on('message', () => delivered++);
    const closed = once(hub, 'close');
    // two good elements, then a truncated one
    c.write(frame.encodeFrame([K.kind, KIND.SEND, K.id, 10, K.to, 'a', K.from_id, 9, K.flags, WF_BATCH], Buffer.from([0x93, 0x01, 0x02, 0xcd, 0x01])));
    const [err] = await closed;
    assert.equal(err.code, 'BAD_FRAME');
    assert.match(err.message, /batched body truncated/);
    assert.equal(delivered, 0);
  });
});

test('ERROR with count is one send-error per message of the batch', { timeout: 10000 }, async () => {
  await withHub({}, async (hub, fb, c) => {
    const errs = collect(hub, 'send-error', (e) => e);
    c.write(frame.encodeFrame([K.kind, KIND.ERROR, K.id, 40, K.code, 11, K.ref, KIND.SEND, K.to, 'b', K.count, 3, K.msg, 'full'], null));
    c.write(frame.encodeFrame([K.kind, KIND.ERROR, K.id, 50, K.code, 8, K.ref, KIND.SEND, K.to, 'c'], null));
    await errs.wait(4);
    assert.deepEqual(errs.map((e) => [e.code, e.id, e.to]),
      [['QUEUE_FULL', 40, 'b'], ['QUEUE_FULL', 41, 'b'], ['QUEUE_FULL', 42, 'b'], ['NO_SUCH_PEER', 50, 'c']]);
    assert.match(errs[1].message, /full/);
  });
});

/* ------------------------------------------------------------ coalescing */

const isBatch = (f) => f.hdr[K.flags] !== undefined && (f.hdr[K.flags] & WF_BATCH) !== 0;

test('sends to one name in one tick are written as one batch frame, ids consecutive', { timeout: 10000 }, async () => {
  await withHub({}, async (hub, fb) => {
    const values = Array.from({ length: 100 }, (_, i) => ({ i, s: 'x'.repeat(i) }));
    for (const v of values) assert.equal(hub.send('b', v), true);
    const [f] = await fb.waitFrames(1);
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(fb.frames.length, 1);
    assert.equal(f.hdr[K.kind], KIND.SEND);
    assert.equal(f.hdr[K.to], 'b');
    assert.equal(f.hdr[K.flags], WF_BATCH);
    assert.deepEqual(f.body, values);
    // the body is array 32 followed by each value's own encoding
    const expect = batchBody(values);
    assert.ok(f.raw.subarray(f.raw.length - expect.length).equals(expect));
    // the next tick's sends start a new frame with the next ids
    hub.send('b', 1);
    hub.send('b', 2);
    const frames = await fb.waitFrames(2);
    assert.equal(frames[1].hdr[K.id], f.hdr[K.id] + 100);
    assert.deepEqual(frames[1].body, [1, 2]);
  });
});

test('a single send stays a plain SEND; name, nowait and big bodies start new frames', { timeout: 10000 }, async () => {
  await withHub({}, async (hub, fb) => {
    hub.send('b', 'alone');
    await fb.waitFrames(1);
    assert.equal(fb.frames[0].hdr[K.flags], undefined);
    assert.equal(fb.frames[0].body, 'alone');
    fb.frames.length = 0;
    const big = Buffer.alloc(4094, 1);   // encoded: bin 16, 4097 bytes
    const small = Buffer.alloc(4093, 2); // encoded: 4096 bytes
    hub.send('b', 1);
    hub.send('b', 2);
    hub.send('c', 3);                    // other name
    hub.send('c', 4, { nowait: true });  // other option
    hub.send('c', 5, { nowait: true });
    hub.send('c', big, { nowait: true });// over 4 KiB: its own frame
    hub.send('c', 6, { nowait: true });  // cannot join the big one
    hub.send('c', small, { nowait: true });
    const p = hub.request('c', 7).catch(() => {}); // another kind ends the batch
    hub.send('c', 8, { nowait: true });
    const frames = await fb.waitFrames(7);
    const summary = frames.map((f) => [f.hdr[K.kind], f.hdr[K.to], f.hdr[K.flags] || 0, isBatch(f) ? f.body.length : 1]);
    assert.deepEqual(summary, [
      [KIND.SEND, 'b', WF_BATCH, 2],
      [KIND.SEND, 'c', 0, 1],
      [KIND.SEND, 'c', WF_NOWAIT | WF_BATCH, 2],
      [KIND.SEND, 'c', WF_NOWAIT, 1],
      [KIND.SEND, 'c', WF_NOWAIT | WF_BATCH, 2],
      [KIND.REQUEST, 'c', 0, 1],
      [KIND.SEND, 'c', WF_NOWAIT, 1],
    ]);
    assert.equal(frames.length, 7);
    assert.ok(frames[3].body.equals(big));
    assert.ok(frames[4].body[1].equals(small));
    // ids: each message its own, consecutive across frames
    const ids = frames.map((f) => f.hdr[K.id]);
    assert.deepEqual(ids.map((id) => id - ids[0]), [0, 2, 3, 5, 6, 8, 9]);
    hub.close();
    await p;
  });
});

test('a batch frame stays within 64 KiB', { timeout: 10000 }, async () => {
  await withHub({}, async (hub, fb) => {
    const n = 3000;
    for (let i = 0; i < n; i++) hub.send('b', Buffer.alloc(100, i & 0xff));
    let total = 0;
    while (total < n) {
      const frames = await fb.waitFrames(fb.frames.length + 1);
      total = frames.reduce((s, f) => s + (isBatch(f) ? f.body.length : 1), 0);
    }
    assert.ok(fb.frames.length >= 5, `${fb.frames.length} frames`);
    let next = fb.frames[0].hdr[K.id];
    for (const f of fb.frames) {
      assert.ok(f.raw.length <= 64 * 1024, `frame of ${f.raw.length} bytes`);
      assert.equal(f.hdr[K.id], next);
      next += isBatch(f) ? f.body.length : 1;
    }
  });
});

test('without BATCH in WELCOME every send is its own frame', { timeout: 10000 }, async () => {
  await withHub({ batch: false }, async (hub, fb) => {
    for (let i = 0; i < 5; i++) hub.send('b', i);
    const frames = await fb.waitFrames(5);
    assert.deepEqual(frames.map((f) => [f.hdr[K.flags], f.body]), [0, 1, 2, 3, 4].map((i) => [undefined, i]));
  });
});

test('batched sends still queued when the hub closes are reported one per message', { timeout: 10000 }, async () => {
  const fb = await fakeBroker();
  const hub = await connect({ name: 'a', socket: fb.socket, reconnect: false });
  await fb.conn;
  const errs = [];
  hub.on('send-error', (e) => errs.push(e));
  hub.send('b', 1);
  hub.send('b', 2);
  hub.send('b', 3);
  const first = errs.length;
  // Break the hub before the flush: the queued batch is reported, per id.
  hub._socket.destroy();
  await once(hub, 'close');
  fb.srv.close();
  assert.equal(first, 0);
  assert.equal(errs.length, 3);
  for (const e of errs) assert.ok(['IO', 'CLOSED'].includes(e.code), e.code);
  assert.deepEqual(errs.map((e) => e.id - errs[0].id), [0, 1, 2]);
});

test('batches queued for a broker that took them are split for one that does not', { timeout: 10000 }, async () => {
  const fb = await fakeBroker();
  const hub = await connect({ name: 'a', socket: fb.socket, reconnect: { initialDelay: 10, maxDelay: 20 } });
  await fb.conn;
  const errs = collect(hub, 'send-error', (e) => e);
  hub.send('b', 1);
  hub.send('b', 2);
  hub.send('b', 3, { nowait: true });
  hub.send('b', 4, { nowait: true });
  hub.send('c', 5);
  // The connection drops before the flush (its 'close' handled in the same
  // turn, as when it arrives in the same poll phase as the sends); the
  // broker comes back without BATCH.
  fb.batch = false;
  const sock = hub._socket;
  sock.destroy();
  hub._onSocketClose(sock);
  await once(hub, 'reconnect');
  const frames = (await fb.waitFrames(5)).slice(); // not the BYE that close() adds
  await hub.close();
  fb.srv.close();
  assert.equal(errs.length, 0);
  assert.deepEqual(frames.map((f) => [f.hdr[K.to], f.hdr[K.flags], f.body]),
    [['b', undefined, 1], ['b', undefined, 2], ['b', WF_NOWAIT, 3], ['b', WF_NOWAIT, 4], ['c', undefined, 5]]);
  const ids = frames.map((f) => f.hdr[K.id]);
  assert.deepEqual(ids, ids.map((_, i) => ids[0] + i));
});
