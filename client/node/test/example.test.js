'use strict';
// The README's cluster example runs as written: two cluster workers find
// each other, make a request each way and exchange one message each.

const test = require('node:test');
const assert = require('node:assert/strict');
const path = require('path');
const { execFile } = require('child_process');
const { startBroker } = require('../testlib/helpers');

test('examples/cluster.js: workers talk to each other by name', { timeout: 20000 }, async () => {
  const broker = await startBroker();
  try {
    const out = await new Promise((resolve, reject) => {
      execFile(process.execPath, [path.join(__dirname, '../examples/cluster.js')],
        { env: { ...process.env, IPCHUB_SOCKET: broker.socket }, timeout: 15000 },
        (err, stdout, stderr) => (err ? reject(new Error(`${err.message}\n${stderr}`)) : resolve(stdout)));
    });
    for (const me of ['worker-1', 'worker-2']) {
      const peer = me === 'worker-1' ? 'worker-2' : 'worker-1';
      assert.match(out, new RegExp(`${me} asked ${peer} -> \\{ sum: 5 \\}`));
      assert.match(out, new RegExp(`${me} got \\{ hello: 'from ${peer}' \\} from ${peer}`));
    }
  } finally {
    await broker.stop();
  }
});
