'use strict';
// fork(): a child that joins the hub itself; and two siblings talking.

const test = require('node:test');
const assert = require('node:assert/strict');
const path = require('path');
const { spawn } = require('child_process');
const { connect, fork } = require('..');
const { startBroker, once } = require('../testlib/helpers');

let broker;
test.before(async () => {
  broker = await startBroker();
});
test.after(async () => {
  await broker.stop();
});

test('a child started with fork() exchanges messages with its parent by name', { timeout: 15000 }, async () => {
  const parent = await connect({ socket: broker.socket, name: 'fork-parent' });
  try {
    const child = fork(path.join(__dirname, '../testlib/fixtures/forked-child.js'), ['fork-parent'], { hub: parent, name: 'fork-child-1' });
    const exited = once(child, 'exit');
    const [hello, from] = await once(parent, 'message');
    assert.deepEqual(hello, { hello: 'parent', from: 'fork-child-1' });
    assert.equal(from.name, 'fork-child-1');
    parent.send('fork-child-1', { foo: 'bar' });
    const [echo] = await once(parent, 'message');
    assert.deepEqual(echo, { echo: { foo: 'bar' }, me: 'fork-child-1', pid: child.pid });
    const [code] = await exited;
    assert.equal(code, 0);
  } finally {
    await parent.close();
  }
});

test('Node IPC docs example, peer-to-peer between two siblings', { timeout: 15000 }, async () => {
  const script = path.join(__dirname, '../testlib/fixtures/sibling.js');
  const env = { ...process.env, IPCHUB_SOCKET: broker.socket };
  const run = (args) => {
    const p = spawn(process.execPath, [script, ...args], { env, stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    p.stdout.on('data', (d) => { out += d; });
    return new Promise((resolve) => p.on('exit', (code) => resolve({ code, out })));
  };
  const [a, b] = await Promise.all([
    run(['sib-parentish', 'sib-childish', JSON.stringify({ hello: 'world' })]),
    run(['sib-childish', 'sib-parentish', JSON.stringify({ foo: 'bar' })]),
  ]);
  assert.equal(a.code, 0);
  assert.equal(b.code, 0);
  assert.deepEqual(JSON.parse(a.out), { me: 'sib-parentish', got: { foo: 'bar' }, from: 'sib-childish' });
  assert.deepEqual(JSON.parse(b.out), { me: 'sib-childish', got: { hello: 'world' }, from: 'sib-parentish' });
});
