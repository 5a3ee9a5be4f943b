'use strict';
/*
 * ipchub - Node.js client for the ipchub local message hub.
 * See README.md; the wire protocol is proto/PROTOCOL.md in the repository.
 */

const { Hub, connect, resolveSocketPath } = require('./lib/client');
const { fork } = require('./lib/fork');
const { IpchubError, CODES } = require('./lib/errors');
const codec = require('./lib/codec');
const { keygen } = require('./lib/key');
const { Subscription, Watch } = require('./lib/pubsub');

module.exports = {
  connect,
  fork,
  Hub,
  Subscription,
  Watch,
  IpchubError,
  codes: CODES,
  resolveSocketPath,
  keygen,
  encode: codec.encode,
  decode: codec.decode,
};
