'use strict';
/*
 * ipchub Node-to-Node request/reply round trip. This process is the
 * requester; it starts the responder (this file, --role responder) with
 * ipchub's fork(), then does --count sequential requests with a Buffer
 * body of --size bytes (echoed back) and prints p50/p99/p99.9 in us.
 * Broker: $IPCHUB_SOCKET.
 *
 *   IPCHUB_SOCKET=/tmp/hub.sock node bench/rtt.js --size 64 --count 50000
 */
const { connect, fork } = require('..');
const { args, report } = require('./common');

const opt = args({ size: 64, count: 50000, warmup: 5000, role: 'requester', tag: String(process.pid), socket: '' });
// --socket PATH, else $IPCHUB_SOCKET (which child roles inherit).
if (opt.socket) process.env.IPCHUB_SOCKET = opt.socket;

async function responder() {
  const hub = await connect({ name: `rtt-responder-${opt.tag}`, reconnect: false });
  hub.handle((body) => body);
  hub.send(`rtt-requester-${opt.tag}`, { ready: true });
}

async function requester() {
  const hub = await connect({ name: `rtt-requester-${opt.tag}`, reconnect: false });
  const peer = `rtt-responder-${opt.tag}`;
  const child = fork(__filename, ['--role', 'responder', '--tag', opt.tag], { hub });
  await new Promise((resolve) => hub.once('message', resolve));
  const payload = Buffer.alloc(opt.size, 0x5a);
  for (let i = 0; i < opt.warmup; i++) await hub.request(peer, payload);
  const lat = new Float64Array(opt.count);
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < opt.count; i++) {
    const s = process.hrtime.bigint();
    await hub.request(peer, payload);
    lat[i] = Number(process.hrtime.bigint() - s) / 1e3;
  }
  const secs = Number(process.hrtime.bigint() - t0) / 1e9;
  report('ipchub-node', 'rtt', opt.size, opt.count, secs, lat);
  child.kill();
  await hub.close();
}

(opt.role === 'responder' ? responder() : requester()).catch((err) => {
  console.error(err);
  process.exit(1);
});
