// The cluster case: workers that message each other by name. Run with
// IPCHUB_SOCKET pointing at a running ipchubd: node examples/cluster.js
const cluster = require('node:cluster');
const { connect } = require('..') // in your app: require('ipchub');

if (cluster.isPrimary) {
  for (const name of ['worker-1', 'worker-2']) cluster.fork({ IPCHUB_NAME: name });
} else {
  (async () => {
    const me = process.env.IPCHUB_NAME;                 // connect() registers it
    const peer = me === 'worker-1' ? 'worker-2' : 'worker-1';
    const hub = await connect();
    const got = new Promise((resolve) => hub.on('message', (msg, from) => {
      console.log(`${me} got`, msg, 'from', from.name);
      resolve();
    }));
    hub.handle(async (body, from) => ({ sum: body.a + body.b }));

    while (!(await hub.peers()).some((p) => p.name === peer))  // wait for the sibling
      await new Promise((r) => setTimeout(r, 20));
    console.log(me, 'asked', peer, '->', await hub.request(peer, { a: 2, b: 3 }, { timeout: 1000 }));
    hub.send(peer, { hello: 'from ' + me });
    await got;
    setTimeout(() => hub.close().then(() => process.exit(0)), 100); // let the sibling finish
  })();
}
