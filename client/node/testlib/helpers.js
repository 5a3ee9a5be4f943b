'use strict';
// Test helpers: start a real ipchubd on a temporary socket.

const { spawn } = require('child_process');
const fs = require('fs');
const os = require('os');
const path = require('path');

const BROKER = process.env.IPCHUBD || path.resolve(__dirname, '../../../build/broker/ipchubd');

function tmpSocket() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ipchub-node-'));
  return path.join(dir, 'hub.sock');
}

/**
 * Start ipchubd on `socket` (a new temporary path if omitted); resolves
 * once it prints "listening". Returns { socket, proc, stop() }.
 */
function startBroker(socket, extraArgs = []) {
  if (!fs.existsSync(BROKER)) {
    throw new Error(`ipchubd not found at ${BROKER}: build it (cmake --build build --target ipchubd) or set IPCHUBD`);
  }
  socket = socket || tmpSocket();
  return new Promise((resolve, reject) => {
    const proc = spawn(BROKER, ['--socket', socket, '--log-level', 'warn', ...extraArgs], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    const timer = setTimeout(() => {
      proc.kill('SIGKILL');
      reject(new Error(`ipchubd did not start: ${err}`));
    }, 5000);
    proc.stderr.on('data', (d) => { err += d; });
    proc.stdout.on('data', (d) => {
      out += d;
      if (out.includes('listening')) {
        clearTimeout(timer);
        resolve({
          socket,
          proc,
          stop(signal = 'SIGTERM') {
            return new Promise((res) => {
              if (proc.exitCode !== null || proc.signalCode !== null) return res();
              proc.once('exit', () => res());
              proc.kill(signal);
            });
          },
        });
      }
    });
    proc.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`ipchubd exited (${code}): ${err}`));
    });
  });
}

function once(emitter, event) {
  return new Promise((resolve) => emitter.once(event, (...args) => resolve(args)));
}

module.exports = { startBroker, tmpSocket, once, BROKER };
