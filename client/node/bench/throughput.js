'use strict';
/*
 * ipchub Node-to-Node pipelined throughput. This process is the producer;
 * it starts the consumer (this file, --role consumer) with ipchub's fork().
 * The producer sends --count messages whose body is a Buffer of --size
 * bytes, respecting send()'s false/'drain'; the consumer counts them and
 * tells the producer when the last has arrived. Broker: $IPCHUB_SOCKET.
 *
 *   IPCHUB_SOCKET=/tmp/hub.sock node bench/throughput.js --size 64 --count 500000
 */
const { connect, fork } = require('..');
const { args, report } = require('./common');

const opt = args({ size: 64, count: 200000, warmup: 20000, role: 'producer', tag: String(process.pid), socket: '' });
// --socket PATH, else $IPCHUB_SOCKET (which child roles inherit).
if (opt.socket) process.env.IPCHUB_SOCKET = opt.socket;

async function consumer() {
  const hub = await connect({ name: `tp-consumer-${opt.tag}`, reconnect: false });
  let n = 0;
  let target = opt.warmup;
  hub.on('message', (m, from) => {
    if (m && m.phase) { // control message: the next phase's size
      target = m.phase;
      n = 0;
      return;
    }
    if (++n === target) hub.send(from.name, { done: n });
  });
  hub.send(`tp-producer-${opt.tag}`, { ready: true });
}

async function producer() {
  const hub = await connect({ name: `tp-producer-${opt.tag}`, reconnect: false });
  const peer = `tp-consumer-${opt.tag}`;
  const child = fork(__filename, ['--role', 'consumer', '--warmup', String(opt.warmup), '--tag', opt.tag], { hub });
  const next = () => new Promise((resolve) => hub.once('message', resolve));
  await next(); // ready
  const payload = Buffer.alloc(opt.size, 0x5a);
  const blast = (n) => new Promise((resolve) => {
    let i = 0;
    const pump = () => {
      while (i < n) {
        i++;
        if (!hub.send(peer, payload)) {
          hub.once('drain', pump);
          return;
        }
      }
      resolve();
    };
    pump();
  });
  await blast(opt.warmup);
  await next();
  hub.send(peer, { phase: opt.count });
  const done = next();
  const t0 = process.hrtime.bigint();
  await blast(opt.count);
  await done;
  const secs = Number(process.hrtime.bigint() - t0) / 1e9;
  report('ipchub-node', 'throughput', opt.size, opt.count, secs, null);
  child.kill();
  await hub.close();
}

(opt.role === 'consumer' ? consumer() : producer()).catch((err) => {
  console.error(err);
  process.exit(1);
});
