'use strict';
// Frames: header encoding, strict validation of broker frames, stream
// splitting, and a fake broker that breaks the protocol.

const test = require('node:test');
const assert = require('node:assert/strict');
const net = require('net');
const frame = require('../lib/frame');
const { connect } = require('..');
const { tmpSocket } = require('../testlib/helpers');

const { KEY: K, KIND } = frame;
const body = (f) => f.subarray(4);

test('header encoding uses integer keys and smallest ints', () => {
  const f = frame.encodeFrame([K.kind, KIND.SEND, K.id, 300, K.to, 'b'], Buffer.from([0xc0]));
  assert.equal(f.toString('hex'), '0000000b' + '83' + '000b' + '01cd012c' + '02a162' + 'c0');
});

test('valid broker frames parse', () => {
  const w = frame.parseFrame(body(frame.encodeFrame([K.kind, KIND.WELCOME, K.ver, 1, K.conn, 7, K.broker, 'ab', K.max_frame, 65536], null)));
  assert.equal(w.kind, KIND.WELCOME);
  assert.equal(w.conn, 7);
  assert.equal(w.max_frame, 65536);
  const s = frame.parseFrame(body(frame.encodeFrame([K.kind, KIND.SEND, K.id, 1, K.to, 'b', K.from_id, 2 ** 60, K.from, 'a'], Buffer.from([1]))));
  assert.equal(s.from_id, 2n ** 60n);
  assert.deepEqual([...s.body], [1]);
});

test('malformed broker frames are BAD_FRAME', () => {
  const bad = [
    ['unknown key', '8200010c' + '7f01'],
    ['duplicate key', '83' + '0009' + '0101' + '0102'],
    ['wrong type', '82' + '0009' + '01a131'],
    ['negative int', '82' + '0009' + '01d0ff'],
    ['body on OK', '82' + '0009' + '0101' + 'c0'],
    ['client-only kind', '81' + '0001'],
    ['missing required key', '81' + '0009'],
    ['key not allowed for kind', '83' + '0009' + '0101' + '02a162'],
    ['not a map', '930009' + '01'],
    ['truncated', '82' + '0009' + '01cd01'],
    ['kind out of range', '81' + '00cd0100'],
  ];
  for (const [what, h] of bad) {
    assert.throws(() => frame.parseFrame(Buffer.from(h, 'hex')), (e) => e.code === 'BAD_FRAME', what);
  }
});

test('FrameReader reassembles frames split anywhere and checks lengths first', () => {
  const frames = [];
  const r = new frame.FrameReader((b) => frames.push(Buffer.from(b).toString('hex')));
  const a = frame.encodeFrame([K.kind, KIND.OK, K.id, 1], null);
  const b = frame.encodeFrame([K.kind, KIND.SEND, K.id, 2, K.to, 'x', K.from_id, 1], Buffer.alloc(1000, 1));
  const all = Buffer.concat([a, b, a]);
  for (let i = 0; i < all.length; i++) r.push(all.subarray(i, i + 1));
  assert.equal(frames.length, 3);
  assert.equal(frames[0], body(a).toString('hex'));
  assert.equal(frames[1], body(b).toString('hex'));
  const r2 = new frame.FrameReader(() => {});
  assert.throws(() => r2.push(Buffer.from('00100000', 'hex')), (e) => e.code === 'TOO_LARGE');
  assert.throws(() => r2.push(Buffer.from('00000002', 'hex')), (e) => e.code === 'BAD_FRAME');
});

// A fake broker: WELCOME, OK for REGISTER, then garbage.
function fakeBroker(socket, afterRegister) {
  return new Promise((resolve) => {
    const srv = net.createServer((c) => {
      const r = new frame.FrameReader((b) => {
        const kind = b[2];
        if (kind === KIND.HELLO) {
          c.write(frame.encodeFrame([K.kind, KIND.WELCOME, K.ver, 1, K.conn, 1, K.broker, '0'.repeat(32), K.max_frame, 65536], null));
        } else if (kind === KIND.REGISTER) {
          c.write(frame.encodeFrame([K.kind, KIND.OK, K.id, b[4]], null));
          setImmediate(() => afterRegister(c));
        }
      });
      c.on('data', (d) => r.push(d));
      c.on('error', () => {});
    });
    srv.listen(socket, () => resolve(srv));
  });
}

test('a malformed frame from the broker closes the hub with BAD_FRAME', { timeout: 10000 }, async () => {
  const socket = tmpSocket();
  const srv = await fakeBroker(socket, (c) => c.write(Buffer.from('00000003' + '81' + '7f' + '01', 'hex')));
  try {
    const hub = await connect({ name: 'x', socket });
    const pending = hub.request('y', 1, { timeout: 0 }).catch((e) => e);
    const [err] = await new Promise((resolve) => hub.once('close', (...a) => resolve(a)));
    assert.equal(err.code, 'BAD_FRAME');
    assert.match(err.message, /malformed frame/);
    const perr = await pending;
    assert.ok(['IO', 'CLOSED', 'BAD_FRAME'].includes(perr.code), perr.code);
    assert.throws(() => hub.send('y', 1), (e) => e.code === 'CLOSED');
  } finally {
    srv.close();
  }
});

test('pub/sub and presence frames (PROTOCOL.md section 10) parse and are checked', () => {
  const p = frame.parseFrame(body(frame.encodeFrame([K.kind, KIND.PUBLISH, K.id, 9, K.topic, 'a.b', K.sub, 5, K.from_id, 3, K.from, 'p', K.uid, 1000], Buffer.from([0xc0]))));
  assert.deepEqual([p.topic, p.sub, p.from_id, p.from, p.uid, p.body.length], ['a.b', 5, 3, 'p', 1000, 1]);
  const g = frame.parseFrame(body(frame.encodeFrame([K.kind, KIND.GAP, K.sub, 5, K.count, 2 ** 40], null)));
  assert.deepEqual([g.sub, g.count], [5, 2 ** 40]);
  const r = frame.parseFrame(body(frame.encodeFrame([K.kind, KIND.PRESENCE, K.id, 7, K.name, 'svc', K.event, 4, K.conn, 12, K.reason, 2], null)));
  assert.deepEqual([r.id, r.name, r.event, r.conn, r.reason], [7, 'svc', 4, 12, 2]);
  const bad = [
    [K.kind, KIND.PUBLISH, K.id, 9, K.topic, 'a', K.from_id, 3],              // no sub
    [K.kind, KIND.GAP, K.sub, 5],                                             // no count
    [K.kind, KIND.GAP, K.sub, 5, K.count, 1, K.topic, 'a'],                   // key not allowed
    [K.kind, KIND.PRESENCE, K.id, 7, K.name, 'svc', K.event, 5],              // event out of range
    [K.kind, KIND.PRESENCE, K.id, 7, K.name, 'svc', K.event, 3],              // REGISTERED without conn
    [K.kind, KIND.PRESENCE, K.id, 7, K.name, 'svc', K.event, 4, K.conn, 1],   // RELEASED without reason
    [K.kind, KIND.PRESENCE, K.id, 7, K.name, 'svc', K.event, 4, K.conn, 1, K.reason, 9],
    [K.kind, KIND.PRESENCE, K.id, 7, K.name, 'svc', K.event, 2, K.conn, 1],   // UNOWNED with conn
    [K.kind, KIND.SUBSCRIBE, K.id, 1, K.topic, 'a'],                          // client-only kind
  ];
  for (const fields of bad) assert.throws(() => frame.parseFrame(body(frame.encodeFrame(fields, null))), { code: 'BAD_FRAME' }, JSON.stringify(fields));
  // policy is a uint 0..3
  assert.throws(() => frame.parseFrame(Buffer.from('83' + '0009' + '0101' + '1904', 'hex')), { code: 'BAD_FRAME' });
});
