'use strict';
/*
 * The baseline Node users have today for "any process to any process":
 * a parent that child_process.fork()s two children and relays
 * process.send() messages between them. Measures the same two workloads
 * as throughput.js and rtt.js and prints the same JSON lines.
 *
 * Bodies are Buffers of --size bytes; the channels use
 * serialization 'advanced' (structured clone, keeps Buffers binary);
 * --serialization json measures the default channel with a string body.
 *
 *   node bench/node_ipc_relay.js --workload throughput --size 64 --count 200000
 *   node bench/node_ipc_relay.js --workload rtt --size 64 --count 50000
 */
const { fork } = require('child_process');
const { args, report } = require('./common');

const opt = args({ workload: 'throughput', size: 64, count: 200000, warmup: 20000, role: 'parent', serialization: 'advanced' });

function makePayload() {
  return opt.serialization === 'json' ? 'Z'.repeat(opt.size) : Buffer.alloc(opt.size, 0x5a);
}

// Child A: the producer / requester. Child B: the consumer / responder.
function childA() {
  const payload = makePayload();
  // process.send() returns false when the channel is backed up; then wait
  // for that send's callback before going on (there is no 'drain' event).
  const blast = (n) => new Promise((resolve) => {
    let i = 0;
    const pump = () => {
      while (i < n) {
        i++;
        let waiting = false;
        const ok = process.send(payload, undefined, {}, () => {
          if (waiting) pump();
        });
        if (!ok) {
          waiting = true;
          return;
        }
      }
      resolve();
    };
    pump();
  });
  process.on('message', async (m) => {
    if (m.cmd === 'blast') {
      await blast(m.n);
    } else if (m.cmd === 'rtt') {
      const lat = [];
      let pending = null;
      process.on('message', (r) => { if (r.reply !== undefined && pending) pending(); });
      for (let i = 0; i < m.warmup + m.n; i++) {
        const s = process.hrtime.bigint();
        await new Promise((resolve) => {
          pending = resolve;
          process.send({ req: i, body: payload });
        });
        if (i >= m.warmup) lat.push(Number(process.hrtime.bigint() - s) / 1e3);
      }
      process.send({ lat });
    }
  });
}

function childB() {
  let n = 0;
  let target = 0;
  process.on('message', (m) => {
    if (m && m.cmd === 'count') {
      target = m.n;
      n = 0;
      return;
    }
    if (m && m.req !== undefined) {
      process.send({ reply: m.req, body: m.body });
      return;
    }
    if (++n === target) process.send({ done: n });
  });
}

async function parent() {
  const opts = { serialization: opt.serialization };
  // The children build the payload themselves: they need the size too.
  const childArgs = ['--serialization', opt.serialization, '--size', String(opt.size)];
  const a = fork(__filename, ['--role', 'a', ...childArgs], opts);
  const b = fork(__filename, ['--role', 'b', ...childArgs], opts);
  let onDone = null;
  let onLat = null;
  // The relay: A -> parent -> B for data and requests, B -> parent -> A for replies.
  a.on('message', (m) => {
    if (m && m.lat) onLat(m.lat);
    else b.send(m);
  });
  b.on('message', (m) => {
    if (m && m.done !== undefined) onDone();
    else a.send(m);
  });
  const phase = (n) => new Promise((resolve) => {
    onDone = resolve;
    b.send({ cmd: 'count', n });
    a.send({ cmd: 'blast', n });
  });
  if (opt.workload === 'throughput') {
    await phase(opt.warmup);
    const t0 = process.hrtime.bigint();
    await phase(opt.count);
    const secs = Number(process.hrtime.bigint() - t0) / 1e9;
    report('node-ipc', 'throughput', opt.size, opt.count, secs, null);
  } else {
    const t0 = process.hrtime.bigint();
    const lat = await new Promise((resolve) => {
      onLat = resolve;
      a.send({ cmd: 'rtt', n: opt.count, warmup: Math.min(opt.warmup, 5000) });
    });
    const secs = Number(process.hrtime.bigint() - t0) / 1e9;
    report('node-ipc', 'rtt', opt.size, opt.count, secs * opt.count / (opt.count + Math.min(opt.warmup, 5000)), lat);
  }
  a.kill();
  b.kill();
}

const roles = { parent, a: childA, b: childB };
Promise.resolve(roles[opt.role]()).catch((err) => {
  console.error(err);
  process.exit(1);
});
