'use strict';
// Test helpers: start a real ipchubd on a temporary socket.

const { spawn } = require('child_process');
const fs = require('fs');
const os = require('os');
const path = require('path');

const BROKER = process.env.IPCHUBD || path.resolve(__dirname, '../../../build/broker/ipchubd');
// The C CLI: $IPCHUB_CLI, else where the build puts it next to the broker
// (BUILD/broker/ipchubd -> BUILD/client/cli/ipchub).
const CLI = process.env.IPCHUB_CLI || path.resolve(path.dirname(BROKER), '../client/cli/ipchub');

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
    }, 20000); // generous: CI machines are loaded
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

/**
 * Run the C CLI with `args`; resolves with { code, stdout, stderr } (never
 * rejects on a non-zero exit). Killed after `timeoutMs`.
 */
function runCli(args, { env, timeoutMs = 10000 } = {}) {
  if (!fs.existsSync(CLI)) {
    throw new Error(`ipchub CLI not found at ${CLI}: build it (cmake --build build --target ipchub) or set IPCHUB_CLI`);
  }
  return new Promise((resolve, reject) => {
    const proc = spawn(CLI, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
    let stdout = '';
    let stderr = '';
    const timer = setTimeout(() => proc.kill('SIGKILL'), timeoutMs);
    proc.stdout.on('data', (d) => { stdout += d; });
    proc.stderr.on('data', (d) => { stderr += d; });
    proc.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    proc.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
  });
}

function once(emitter, event) {
  return new Promise((resolve) => emitter.once(event, (...args) => resolve(args)));
}

module.exports = { startBroker, tmpSocket, once, runCli, BROKER, CLI };
