'use strict';
// The default broker path on Windows is the named pipe the broker listens
// on (PROTOCOL.md section 1). Checked by pretending to be on win32: no
// Windows node.exe runs in this suite (none is available offline).
const test = require('node:test');
const assert = require('node:assert');
const os = require('node:os');
const { resolveSocketPath } = require('../lib/client');

test('on win32 the default path is \\\\.\\pipe\\ipchub-<user>; explicit and IPCHUB_SOCKET win', () => {
  const saved = Object.getOwnPropertyDescriptor(process, 'platform');
  const env = process.env.IPCHUB_SOCKET;
  delete process.env.IPCHUB_SOCKET;
  try {
    Object.defineProperty(process, 'platform', { value: 'win32' });
    assert.strictEqual(resolveSocketPath(), `\\\\.\\pipe\\ipchub-${os.userInfo().username}`);
    assert.strictEqual(resolveSocketPath('\\\\.\\pipe\\other'), '\\\\.\\pipe\\other');
    process.env.IPCHUB_SOCKET = '\\\\.\\pipe\\env';
    assert.strictEqual(resolveSocketPath(), '\\\\.\\pipe\\env');
  } finally {
    Object.defineProperty(process, 'platform', saved);
    if (env === undefined) delete process.env.IPCHUB_SOCKET;
    else process.env.IPCHUB_SOCKET = env;
  }
});
