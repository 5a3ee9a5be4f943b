'use strict';
/*
 * fork.js - start a Node child that joins the hub itself.
 *
 * child_process.fork() gives the child an IPC channel to its parent only
 * (NODE_CHANNEL_FD). ipchub's fork() spawns `node modulePath` with no such
 * channel; instead the child's environment carries IPCHUB_SOCKET (the
 * parent's broker) and, when options.name is given, IPCHUB_NAME, so that
 * `await connect()` in the child joins the same hub under that name and can
 * talk to any process there, its parent included.
 */

const { spawn } = require('child_process');
const { resolveSocketPath, checkName } = require('./client');
const { IpchubError } = require('./errors');

/**
 * @param {string} modulePath  script to run with process.execPath
 * @param {string[]} [args]    arguments for the script
 * @param {object} [options]   name, hub (a Hub: its socket is used), socket,
 *   env, cwd, execPath, execArgv, silent, stdio, detached, uid, gid,
 *   serialization is not supported (there is no channel)
 * @returns {import('child_process').ChildProcess}
 */
function fork(modulePath, args, options) {
  if (args && !Array.isArray(args)) {
    options = args;
    args = [];
  }
  args = args || [];
  options = options || {};
  if (typeof modulePath !== 'string') throw new IpchubError('INVALID', 'ipchub: fork() needs a module path');
  if (options.name !== undefined) checkName(options.name, true);
  const socket = options.hub ? options.hub.socketPath : resolveSocketPath(options.socket);
  const env = { ...(options.env || process.env), IPCHUB_SOCKET: socket };
  if (options.name !== undefined) env.IPCHUB_NAME = options.name;
  else delete env.IPCHUB_NAME; // the child must not inherit the parent's name
  let stdio = options.stdio || (options.silent ? 'pipe' : 'inherit');
  if (Array.isArray(stdio) && stdio.includes('ipc')) {
    throw new IpchubError('INVALID', "ipchub: fork() has no 'ipc' channel; the child talks through the hub");
  }
  const execArgv = options.execArgv || process.execArgv;
  return spawn(options.execPath || process.execPath, [...execArgv, modulePath, ...args], {
    cwd: options.cwd,
    env,
    stdio,
    detached: options.detached,
    uid: options.uid,
    gid: options.gid,
    windowsHide: true,
  });
}

module.exports = { fork };
