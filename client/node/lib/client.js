'use strict';
/*
 * client.js - the Hub: one connection to ipchubd, its names, and the
 * conversations on it (PROTOCOL.md section 6).
 *
 * Model:
 * - Outbound frames are written into a batch buffer and flushed to the
 *   socket once per event-loop turn (setImmediate), or at once when the
 *   batch passes FLUSH_AT bytes, so thousands of send() calls in one tick
 *   cost a few write syscalls. The backlog (unflushed batch + the socket's
 *   writableLength) is compared with highWaterMark: send() returns false
 *   above it and 'drain' is emitted when it falls to half. maxBuffered is a
 *   hard bound: above it send()/request() fail with WOULD_BLOCK.
 * - Every frame with an id that expects an answer (REQUEST, REGISTER,
 *   UNREGISTER, PING) has one entry in `pending`, and every path that ends
 *   an entry (answer, local timer, abort, disconnect, close) goes through
 *   settle(), which deletes it first: each settles exactly once.
 * - Connections are numbered by `epoch`. A pending entry records the epoch
 *   its frame was flushed on; when that connection drops, those entries are
 *   rejected with IO (the broker's fate for them is unknown), while frames
 *   still in the batch wait for the next connection. SEND frames in socket
 *   writes that failed are reported as 'send-error' IO.
 * - Authentication (PROTOCOL.md section 6.7): with a key, each connection
 *   (the first and every reconnect) reads the key file, answers WELCOME's
 *   challenge with AUTH and waits for OK {id: 0} before it counts as up;
 *   the seed and secret key exist only during that handshake (key.js).
 *   AUTH_FAILED and BAD_KEY end the hub: retrying cannot fix them.
 * - Reconnect: exponential backoff with jitter; on success, HELLO (and
 *   AUTH), then the names are re-registered in their original order (so the primary name
 *   is unchanged) before the batch is flushed, then 'reconnect' is emitted.
 *   restoreState() re-sends the subscriptions and watches (pubsub.js)
 *   right after the REGISTERs, also ahead of the batch, under new ids that
 *   are re-mapped to the same handles.
 * - Pub/sub (PROTOCOL.md section 10): `_subs` and `_watches` map the ids
 *   of the current connection to their handles; `_subList`/`_watchList`
 *   hold the established ones in creation order (what restoreState()
 *   re-sends). A handle enters its map when its SUBSCRIBE/WATCH is queued
 *   and its list when the broker accepts it, so one queued during an
 *   outage is sent once, after the restored ones.
 */

const net = require('net');
const os = require('os');
const path = require('path');
const { EventEmitter } = require('events');
const { performance } = require('perf_hooks');

const codec = require('./codec');
const frame = require('./frame');
const keys = require('./key');
const { IpchubError, FATAL, codeName } = require('./errors');
const { Subscription, Watch, checkPattern } = require('./pubsub');
const { Deadlines } = require('./deadlines');

const { KIND, KEY, WF_NOWAIT, WF_BATCH, LEN_PREFIX } = frame;
const VERSION = require('../package.json').version;

const DEFAULTS = Object.freeze({
  timeout: 5000,                    // connect/handshake and broker operations (ms)
  requestTimeout: 5000,             // request() default (ms)
  highWaterMark: 1024 * 1024,       // send() returns false above this backlog (bytes)
  maxBuffered: 64 * 1024 * 1024,    // hard bound on the outbound backlog (bytes)
  maxConcurrentHandlers: 1024,      // running handle() calls before we stop reading
  reconnect: { initialDelay: 50, maxDelay: 5000 },
});
const FLUSH_AT = 256 * 1024;        // flush mid-tick once the batch is this large
const CHUNK = 64 * 1024;            // batch buffers are allocated in this size (or a frame's)
const TIMER_GRACE = 1000;           // local backup timer = request timeout + this (ms)
const MAX_TIMEOUT = 24 * 3600 * 1000;
const MAX_ERRMSG = 1024;
const CLOSE_WAIT = 2000;            // close(): wait this long for the broker to hang up
// Batches (PROTOCOL.md 6.3.1; proto/limits.h IPCHUB_CLIENT_BATCH_*): a send
// is appended to the SEND frame still queued for the same name while its
// body is at most BATCH_BODY_MAX (bigger bodies gain nothing) and the
// frame stays within BATCH_BYTES (a receiver's read buffer's worth).
const BATCH_BODY_MAX = 4 * 1024;
const BATCH_BYTES = 64 * 1024;
const ARRAY32 = 5;                  // 0xdd + u32 count: patched in place as messages join

const NAME_RE = /^[A-Za-z0-9._-]{1,255}$/;
// Failures of a control operation that mean "the connection is gone": the
// broker-side state went with it, so there is nothing left to end.
const GONE = new Set(['IO', 'CLOSED']);

/**
 * Check a name against PROTOCOL.md section 5. `forRegister` also refuses
 * the reserved names. Throws IpchubError INVALID or BAD_NAME.
 */
function checkName(name, forRegister) {
  if (typeof name !== 'string') throw new IpchubError('INVALID', `ipchub: name must be a string, not ${typeof name}`);
  if (!NAME_RE.test(name) || name[0] === '.' || name[name.length - 1] === '.' || name.includes('..')) {
    throw new IpchubError('BAD_NAME', `ipchub: malformed name ${JSON.stringify(name)}`, { hubName: name });
  }
  if (forRegister && (name === 'ipchub' || name.startsWith('ipchub.'))) {
    throw new IpchubError('BAD_NAME', `ipchub: name ${JSON.stringify(name)} is reserved for the broker`, { hubName: name });
  }
}

/**
 * The broker socket path per PROTOCOL.md section 1, in user form ('@name'
 * for an abstract socket). On Windows the broker listens on a named pipe,
 * \\.\pipe\ipchub-<user name>, which net.connect({path}) opens as it is.
 */
function resolveSocketPath(explicit) {
  if (explicit) return explicit;
  const env = process.env;
  if (env.IPCHUB_SOCKET) return env.IPCHUB_SOCKET;
  if (process.platform === 'win32') return `\\\\.\\pipe\\ipchub-${os.userInfo().username}`;
  if (env.XDG_RUNTIME_DIR) return path.join(env.XDG_RUNTIME_DIR, 'ipchub.sock');
  const uid = typeof process.getuid === 'function' ? process.getuid() : os.userInfo().uid;
  return `/tmp/ipchub-${uid}/ipchub.sock`;
}

function toNetPath(p) {
  return p[0] === '@' ? '\0' + p.slice(1) : p;
}

function truncateUtf8(s, max) {
  s = String(s);
  if (Buffer.byteLength(s) <= max) return s;
  let b = Buffer.from(s).subarray(0, max);
  // drop a cut multi-byte sequence
  let s2 = b.toString('utf8');
  while (Buffer.byteLength(s2) > max || s2.endsWith('\ufffd')) s2 = s2.slice(0, -1);
  b = null;
  return s2;
}

function now() {
  return performance.now();
}

// Reads kind, id, to and the number of messages from each frame this
// client wrote (for reporting SENDs lost in a failed write). Our headers
// start kind, id[, to][, flags]; a batch body starts with an array 32.
// cb(kind, id, to, n, flags, bodyStart, frameBytes) with bodyStart an
// offset into frameBytes (the bytes after the length prefix).
function scanOwnFrames(buf, cb) {
  let off = 0;
  while (off + LEN_PREFIX <= buf.length) {
    const len = buf.readUInt32BE(off);
    const start = off + LEN_PREFIX;
    off = start + len;
    if (off > buf.length) break;
    try {
      const h = buf.subarray(start, off);
      const keys = h[0] & 0x0f;
      let p = 1;
      const kind = h[p + 1];
      p += 2;
      let id = null;
      let to = null;
      let flags = 0;
      let seen = 1;
      if (seen < keys && h[p] === KEY.id) {
        seen++;
        p++;
        const b = h[p++];
        if (b < 0x80) id = b;
        else if (b === 0xcc) { id = h[p]; p += 1; }
        else if (b === 0xcd) { id = h.readUInt16BE(p); p += 2; }
        else if (b === 0xce) { id = h.readUInt32BE(p); p += 4; }
        else { id = Number(h.readBigUInt64BE(p)); p += 8; }
      }
      if (seen < keys && (h[p] === KEY.to || h[p] === KEY.topic)) {
        seen++;
        p++;
        const b = h[p++];
        let n;
        if (b >= 0xa0 && b <= 0xbf) n = b & 0x1f;
        else { n = h[p]; p += 1; }
        to = h.toString('utf8', p, p + n);
        p += n;
      }
      if (kind === KIND.SEND && seen < keys && h[p] === KEY.flags) {
        flags = h[p + 1]; // NOWAIT|BATCH < 0x80: one byte
        p += 2;
      }
      const n = flags & WF_BATCH ? h.readUInt32BE(p + 1) : 1;
      cb(kind, id, to, n, flags, p, h);
    } catch (_) {
      // our own bytes: cannot be malformed; never let reporting throw
    }
  }
}

// Id `i` places after `id` (ids of a batch), a BigInt past 2^53 - 1.
function idPlus(id, i) {
  if (typeof id === 'bigint') return id + BigInt(i);
  return id + i <= Number.MAX_SAFE_INTEGER ? id + i : BigInt(id) + BigInt(i);
}

class Hub extends EventEmitter {
  /** Use connect(); the constructor does no I/O. */
  constructor(options = {}) {
    super();
    const o = options;
    const name = o.name !== undefined ? o.name : process.env.IPCHUB_NAME || undefined;
    const names = [];
    for (const n of [name, ...(o.names || [])]) {
      if (n === undefined || n === null || n === '') continue;
      checkName(n, true);
      if (!names.includes(n)) names.push(n);
    }
    let reconnect = null;
    if (o.reconnect === undefined || o.reconnect === true) reconnect = { ...DEFAULTS.reconnect };
    else if (o.reconnect && typeof o.reconnect === 'object') reconnect = { ...DEFAULTS.reconnect, ...o.reconnect };
    const keyPath = o.key !== undefined && o.key !== null ? o.key : process.env.IPCHUB_KEY || '';
    if (typeof keyPath !== 'string') throw new IpchubError('INVALID', `ipchub: key must be a file path, not ${typeof keyPath}`);
    this._keyPath = keyPath; // '' = do not authenticate
    this._sodium = null;     // libsodium-wrappers, loaded on the first handshake with a key
    this._authed = false;    // the current connection authenticated
    this._path = resolveSocketPath(o.socket);
    this._names = names;
    this._agent = truncateUtf8(o.agent || `ipchub-node/${VERSION} node/${process.version} pid=${process.pid}`, 128);
    this._timeout = o.timeout || DEFAULTS.timeout;
    this._reconnectOpts = reconnect;
    this._hwm = o.highWaterMark || DEFAULTS.highWaterMark;
    this._maxBuffered = Math.max(o.maxBuffered || DEFAULTS.maxBuffered, this._hwm);
    this._maxHandlers = o.maxConcurrentHandlers || DEFAULTS.maxConcurrentHandlers;

    this._state = 'idle'; // idle | handshake | welcomed | open | reconnecting | closing | closed
    this._socket = null;
    this._epoch = 0;
    this._nextId = 1;
    this._pending = new Map();
    this._deadlines = new Deadlines(now); // requests' local backup timers
    this._batchEntries = []; // pending entries whose frames are in the unflushed batch
    this._chunks = [];       // full batch buffers not yet flushed
    this._cur = null;        // batch buffer being filled, from _curStart to _curLen
    this._curStart = 0;
    this._curLen = 0;
    this._unflushed = 0;
    this._flushScheduled = false;
    this._flushSoon = () => { // one closure for every scheduled flush
      this._flushScheduled = false;
      this._flush();
    };
    // The SEND frame at the end of _cur that the next send() may join (a
    // batch, PROTOCOL.md 6.3.1), or null: {start (its length prefix in
    // _cur), bodyAt (its body, or its array header once a batch), to,
    // nowait, next (the id the next message must have), count (messages
    // in the batch; 0 while it is still a plain SEND)}. Any other frame,
    // a new buffer or a flush ends it.
    this._tail = null;
    this._batchOk = false;   // the current broker's WELCOME announced BATCH
    this._needDrain = false;
    this._handler = null;
    this._activeHandlers = 0;
    this._readPaused = false;
    this._welcome = null;    // {resolve, reject} while waiting for WELCOME
    this._reconnectTimer = null;
    this._closeErr = null;
    this._closePromise = null;
    this._warnedNoListener = false;
    this._unref = false;
    this._everUp = false;
    // Messages and requests that arrive while connect() is resolving (in
    // the same read as the last REGISTER's OK) are held until the turn
    // after it resolved, so listeners attached right after `await connect()`
    // see them. Bounded by what one event-loop turn reads.
    this._held = [];
    this._outageStart = null;
    this._subs = new Map();     // id on the current connection -> Subscription
    this._subList = [];         // established subscriptions, oldest first
    this._watches = new Map();  // id on the current connection -> Watch
    this._watchList = [];       // established watches, oldest first

    this.connId = null;
    this.brokerId = null;
    this.keyId = null;
    this.maxFrame = frame.MAX_FRAME_DEFAULT;
  }

  /** The socket path this hub connects to (user form, '@x' for abstract). */
  get socketPath() {
    return this._path;
  }

  /** Names currently held, oldest (the primary name) first. */
  get names() {
    return this._names.slice();
  }

  /** True while a connection to the broker is established. */
  get connected() {
    return this._state === 'open';
  }

  /* ------------------------------------------------------------ connection */

  // Open a connection and complete HELLO/WELCOME, then with `seed` (the
  // key's seed, owned and wiped here on every path; this._sodium is loaded
  // whenever there is one) AUTH. Resolves once
  // the handshake is done; rejects with NO_BROKER, TIMEOUT, IO,
  // UNSUPPORTED_VERSION, AUTH_FAILED, ...
  _openSocket(seed) {
    return new Promise((resolve, reject) => {
      const wipeSeed = () => {
        if (seed) this._sodium.memzero(seed);
        seed = null;
      };
      const sock = net.createConnection({ path: toNetPath(this._path) });
      const reader = new frame.FrameReader((buf) => this._onFrame(sock, buf));
      let done = false;
      const fail = (err) => {
        wipeSeed();
        if (done) return;
        done = true;
        clearTimeout(timer);
        this._welcome = null;
        if (this._socket === sock) this._socket = null;
        sock.destroy();
        reject(err);
      };
      this._closeErr = null;
      this._authed = false;
      const timer = setTimeout(() => {
        fail(new IpchubError('TIMEOUT', `ipchub: no ${this._welcome && this._welcome.authing ? 'answer to AUTH' : 'WELCOME'} from ${this._path} within ${this._timeout} ms`));
      }, this._timeout);
      this._socket = sock;
      this._state = 'handshake';
      sock.on('connect', () => {
        const hello = frame.encodeFrame([KEY.kind, KIND.HELLO, KEY.ver, 1, KEY.ver_min, 1, KEY.agent, this._agent,
          KEY.flags, WF_BATCH], null);
        sock.write(hello);
      });
      sock.on('data', (chunk) => {
        if (sock !== this._socket) return;
        try {
          reader.push(chunk);
        } catch (err) {
          this._protocolError(sock, err);
        }
      });
      sock.on('error', (err) => {
        if (!done) {
          const code = err.code === 'ENOENT' || err.code === 'ECONNREFUSED' ? 'NO_BROKER' : 'IO';
          fail(new IpchubError(code, code === 'NO_BROKER'
            ? `ipchub: no broker listening at ${this._path} (${err.code})`
            : `ipchub: connecting to ${this._path}: ${err.message}`, { cause: err }));
          return;
        }
        sock._ipchubErr = err;
      });
      sock.on('close', () => {
        if (!done) {
          fail(this._closeErr || new IpchubError('CLOSED', `ipchub: broker at ${this._path} closed the connection during the handshake`));
          return;
        }
        this._onSocketClose(sock);
      });
      sock.on('drain', () => this._checkDrain());
      // WELCOME accepted and, with a key, AUTH answered OK: the connection is up.
      const up = (f) => {
        done = true;
        clearTimeout(timer);
        this._welcome = null;
        this._epoch++;
        this.connId = f.conn;
        this.brokerId = f.broker;
        this.maxFrame = f.max_frame;
        this._batchOk = f.flags !== null && (f.flags & WF_BATCH) !== 0;
        // Batches queued for a broker that accepted them, still unsent
        // when it went away, are split for one that does not.
        if (!this._batchOk) this._unbatchQueued();
        // Delivered frames may exceed max_frame by what the broker stamps.
        reader.maxFrame = f.max_frame + frame.MAX_HEADER;
        this._state = 'welcomed'; // 'open' once the names are re-registered
        if (this._unref) sock.unref();
        resolve();
      };
      this._welcome = {
        authing: false, // AUTH sent, waiting for its OK
        welcome: null,
        keyId: null,
        resolve: (f) => {
          if (done) return;
          if (f.ver !== 1) {
            fail(new IpchubError('UNSUPPORTED_VERSION', `ipchub: broker chose version ${f.ver}`));
            return;
          }
          if (!seed) {
            up(f);
            return;
          }
          let proof;
          try {
            proof = keys.makeProof(this._sodium, seed, f);
          } catch (err) {
            fail(err);
            return;
          } finally {
            wipeSeed();
          }
          const w = this._welcome;
          w.authing = true;
          w.welcome = f;
          w.keyId = keys.pkText(proof.pk);
          sock.write(frame.encodeFrame([KEY.kind, KIND.AUTH, KEY.pk, proof.pk, KEY.nonce, proof.nonce, KEY.sig, proof.sig], null));
        },
        authOk: () => {
          if (done) return;
          const w = this._welcome;
          this._authed = true;
          this.keyId = w.keyId;
          up(w.welcome);
        },
        reject: (err) => fail(err),
      };
    });
  }

  // Called by connect() and by the reconnect loop: open, then restore names.
  // On the first connection a failed REGISTER fails the whole connect.
  async _establish(first) {
    let seed = null;
    if (this._keyPath) {
      if (!this._sodium) this._sodium = await keys.loadSodium();
      seed = keys.readSeed(this._keyPath); // BAD_KEY before any connection
    }
    await this._openSocket(seed);
    const names = this._names.slice();
    const ops = names.map((n) => this._op(KIND.REGISTER, n, true));
    // The REGISTERs (then SUBSCRIBEs and WATCHes) went straight to the
    // socket, ahead of what was queued while disconnected; the broker
    // handles frames in order.
    const restoring = this.restoreState();
    this._state = 'open';
    this._flush();
    const results = await Promise.allSettled(ops);
    const lost = [];
    results.forEach((r, i) => {
      if (r.status === 'rejected') lost.push({ name: names[i], error: r.reason });
    });
    if (lost.length && (first || lost.some((l) => ['IO', 'CLOSED', 'AUTH_FAILED'].includes(l.error.code)))) {
      throw lost[0].error;
    }
    if (lost.length) this._names = this._names.filter((n) => !lost.some((l) => l.name === n));
    const restored = await restoring;
    const gone = restored.find((r) => GONE.has(r.error.code) || r.error.code === 'TIMEOUT');
    if (gone) throw gone.error;
    const lostSubscriptions = [];
    const lostWatches = [];
    for (const r of restored) {
      // The new broker refused it (LIMIT, INTERNAL, ...): the handle ends.
      if (!this._forget(r.handle)) continue; // unsubscribe()d meanwhile
      (r.handle instanceof Subscription ? lostSubscriptions : lostWatches).push({ handle: r.handle, error: r.error });
    }
    return {
      names: this._names.slice(), lost,
      subscriptions: this._subList.length, watches: this._watchList.length, lostSubscriptions, lostWatches,
    };
  }

  /**
   * Run on each (re)connection right after the REGISTERs were written:
   * re-sends every established subscription and watch, in creation order,
   * under new ids mapped to the same handles (a restored watch reports the
   * current owner again). Resolves with the failures, [{handle, error}].
   */
  restoreState() {
    const ops = [];
    const redo = (handle, map, fields, kind, what) => {
      if (map.get(handle.id) === handle) map.delete(handle.id);
      const id = this._newId();
      handle.id = id;
      handle.epoch = this._epoch;
      map.set(id, handle);
      fields.splice(2, 0, KEY.id, id);
      ops.push(this._ctl(fields, kind, what, true, id).then(() => null, (error) => ({ handle, error })));
    };
    for (const sub of this._subList) {
      redo(sub, this._subs, [KEY.kind, KIND.SUBSCRIBE, KEY.topic, sub.pattern, KEY.policy, frame.POLICY[sub.policy]],
        KIND.SUBSCRIBE, `SUBSCRIBE ${sub.pattern}`);
    }
    for (const w of this._watchList) {
      redo(w, this._watches, [KEY.kind, KIND.WATCH, KEY.name, w.name], KIND.WATCH, `WATCH ${w.name}`);
    }
    return Promise.all(ops).then((rs) => rs.filter((r) => r !== null));
  }

  // End a handle locally: nothing more is delivered to it, and a reconnect
  // does not restore it.
  _forget(handle) {
    if (!handle.active) return false;
    handle.active = false;
    const sub = handle instanceof Subscription;
    const map = sub ? this._subs : this._watches;
    if (map.get(handle.id) === handle) map.delete(handle.id);
    if (sub) this._subList = this._subList.filter((x) => x !== handle);
    else this._watchList = this._watchList.filter((x) => x !== handle);
    return true;
  }

  _onSocketClose(sock) {
    if (sock !== this._socket) return;
    this._socket = null;
    if (this._readPaused) this._readPaused = false;
    const err = this._closeErr || new IpchubError('IO', `ipchub: connection to the broker at ${this._path} was lost` +
      (sock._ipchubErr ? `: ${sock._ipchubErr.message}` : ''), sock._ipchubErr ? { cause: sock._ipchubErr } : undefined);
    const lostEpoch = this._epoch;
    // AUTH_FAILED on a connection that did not authenticate comes from a
    // broker with --require-auth, which refused every frame of it: their
    // fate is known, so they fail with that code rather than IO.
    const refused = err.code === 'AUTH_FAILED' && !this._authed;
    for (const [id, e] of this._pending) {
      if (e.epoch === lostEpoch) {
        if (refused) {
          this._settle(id, e, new IpchubError('AUTH_FAILED', `ipchub: ${e.what} refused: the broker requires authentication ` +
            '(give a key file: the key option or $IPCHUB_KEY)', { id, to: e.to, cause: err }));
          continue;
        }
        this._settle(id, e, new IpchubError(err.code === 'CLOSED' ? 'CLOSED' : 'IO',
          `ipchub: connection lost before ${e.what} was answered`, { id, to: e.to, cause: err }));
      }
    }
    if (this._state === 'closing' || this._state === 'closed') {
      this._finish(err);
      return;
    }
    if (!this._everUp) return; // connect() is still running: it reports the failure
    const fatal = this._closeErr && this._closeErr.fatal;
    this._closeErr = null;
    if (!this._reconnectOpts || fatal) {
      this._emitSafe('disconnect', err);
      this._finish(err);
      return;
    }
    this._state = 'reconnecting';
    // A connection that drops while names are being restored is the same
    // outage: one 'disconnect', one 'reconnect', gap measured from the first.
    if (this._outageStart === null) {
      this._outageStart = now();
      this._emitSafe('disconnect', err);
    }
    this._reconnectLoop();
  }

  async _reconnectLoop() {
    const { initialDelay, maxDelay } = this._reconnectOpts;
    let delay = initialDelay;
    for (;;) {
      const wait = delay / 2 + Math.random() * delay / 2;
      await new Promise((resolve) => {
        this._reconnectTimer = setTimeout(resolve, wait);
        this._reconnectWake = resolve;
      });
      this._reconnectTimer = null;
      this._reconnectWake = null;
      if (this._state !== 'reconnecting') return;
      try {
        const info = await this._establish(false);
        if (this._state !== 'open') return;
        const gap = now() - this._outageStart;
        this._outageStart = null;
        this._emitSafe('reconnect', gap, info);
        this._checkDrain();
        return;
      } catch (err) {
        if (this._state === 'closing' || this._state === 'closed') return;
        if (err.code === 'BAD_KEY' || err.code === 'AUTH_FAILED') {
          // The key file went bad or the broker no longer accepts the key:
          // retrying cannot help. 'disconnect' was emitted at the outage.
          if (this._socket) this._socket.destroy();
          this._socket = null;
          this._finish(err);
          return;
        }
        if (this._socket) {
          // Failed after WELCOME: closing the socket restarts this loop
          // through _onSocketClose.
          this._socket.destroy();
          return;
        }
        this._state = 'reconnecting';
        delay = Math.min(delay * 2, maxDelay);
      }
    }
  }

  // The broker broke the protocol (or told us we did): fatal, no reconnect.
  _protocolError(sock, err) {
    if (sock !== this._socket) return;
    err.fatal = true;
    this._closeErr = err;
    if (this._welcome) this._welcome.reject(err);
    sock.destroy();
  }

  // Final teardown: everything still waiting fails with `err`.
  _finish(err) {
    if (this._state === 'closed') return;
    this._state = 'closed';
    if (this._reconnectTimer) clearTimeout(this._reconnectTimer);
    if (this._reconnectWake) this._reconnectWake();
    const code = err && err.code === 'IO' ? 'CLOSED' : (err ? err.code : 'CLOSED');
    for (const [id, e] of this._pending) {
      this._settle(id, e, new IpchubError(code, `ipchub: hub closed before ${e.what} was answered`, { id, to: e.to, cause: err }));
    }
    this._deadlines.clear();
    const unsent = this._takeBatch();
    for (const b of unsent) {
      scanOwnFrames(b, (kind, id, to, n) => {
        if (kind === KIND.SEND) {
          for (let i = 0; i < n; i++) {
            const mid = idPlus(id, i);
            this._emitSafe('send-error', new IpchubError('CLOSED', `ipchub: hub closed before the message to ${to} was sent`, { id: mid, to }));
          }
        } else if (kind === KIND.PUBLISH) {
          this._emitSafe('send-error', new IpchubError('CLOSED', `ipchub: hub closed before the publication on ${to} was sent`, { id, topic: to }));
        }
      });
    }
    this._batchEntries = [];
    for (const h of [...this._subs.values(), ...this._subList, ...this._watches.values(), ...this._watchList]) this._forget(h);
    this.emit('close', err && err.code !== 'CLOSED' ? err : undefined);
  }

  /* ---------------------------------------------------------------- output */

  _backlog() {
    return this._unflushed + (this._socket && this._state === 'open' ? this._socket.writableLength : 0);
  }

  // Append one frame to the batch. Throws TOO_LARGE / WOULD_BLOCK / CLOSED.
  // Returns the offset of the frame's length prefix in _cur, or -1 if the
  // frame was flushed at once.
  _queue(fields, body, entry) {
    this._tail = null;
    if (this._state === 'closed' || this._state === 'closing') {
      throw new IpchubError('CLOSED', 'ipchub: the hub is closed');
    }
    const hlen = frame.headerSize(fields);
    const blen = body ? body.length : 0;
    if (hlen + blen > this.maxFrame) {
      throw new IpchubError('TOO_LARGE', `ipchub: frame of ${hlen + blen} bytes exceeds the broker's maximum of ${this.maxFrame}`);
    }
    const total = LEN_PREFIX + hlen + blen;
    if (this._backlog() + total > this._maxBuffered) {
      throw new IpchubError('WOULD_BLOCK', `ipchub: outbound backlog would exceed maxBuffered (${this._maxBuffered} bytes); wait for 'drain'`);
    }
    if (!this._cur || this._cur.length - this._curLen < total) {
      if (this._curLen > this._curStart) this._chunks.push(this._cur.subarray(this._curStart, this._curLen));
      this._cur = Buffer.allocUnsafe(Math.max(CHUNK, total));
      this._curStart = 0;
      this._curLen = 0;
    }
    const buf = this._cur;
    let off = this._curLen;
    buf.writeUInt32BE(hlen + blen, off);
    off = frame.writeHeader(buf, off + LEN_PREFIX, fields);
    if (body) {
      buf.set(body, off);
      off += blen;
    }
    const start = this._curLen;
    this._curLen = off;
    this._unflushed += total;
    if (entry) this._batchEntries.push(entry);
    if (this._unflushed >= FLUSH_AT) {
      this._flush();
      return this._curLen > this._curStart ? start : -1;
    }
    if (!this._flushScheduled) {
      this._flushScheduled = true;
      setImmediate(this._flushSoon);
    }
    return start;
  }

  // Append a message to the SEND frame at the end of the unflushed batch
  // when it goes to the same name with the same NOWAIT and the next id
  // (PROTOCOL.md 6.3.1); a plain SEND becomes a batch of 1 first. Nothing
  // waits for this: the frame is flushed when it would have been anyway.
  // Returns false (and changes nothing) when the message needs its own frame.
  _joinBatch(id, to, nowait, body) {
    const t = this._tail;
    if (t === null || t.next !== id || t.to !== to || t.nowait !== nowait || body.length > BATCH_BODY_MAX ||
        t.count >= frame.MAX_BATCH) {
      return false;
    }
    // A plain SEND gains flags BATCH (2 bytes, or NOWAIT's value turns
    // into NOWAIT|BATCH in place) and an array 32 header before its body.
    const grow = (t.count === 0 ? ARRAY32 + (nowait ? 0 : 2) : 0) + body.length;
    const buf = this._cur;
    const frameLen = this._curLen - t.start - LEN_PREFIX + grow;
    if (frameLen > BATCH_BYTES || frameLen > this.maxFrame || buf.length - this._curLen < grow ||
        this._backlog() + grow > this._maxBuffered) {
      return false;
    }
    if (t.count === 0) {
      let at = t.bodyAt;
      const shift = grow - body.length;
      buf.copyWithin(at + shift, at, this._curLen);
      if (nowait) {
        buf[at - 1] = WF_NOWAIT | WF_BATCH; // the header ends with flags: NOWAIT
      } else {
        buf[t.start + LEN_PREFIX]++; // fixmap: one more key
        buf[at++] = KEY.flags;
        buf[at++] = WF_BATCH;
      }
      buf[at] = 0xdd;
      t.bodyAt = at;
      t.count = 1;
      this._curLen += shift;
    }
    buf.set(body, this._curLen);
    this._curLen += body.length;
    t.count++;
    t.next = id + 1;
    buf.writeUInt32BE(t.count, t.bodyAt + 1);
    buf.writeUInt32BE(frameLen, t.start);
    this._unflushed += grow;
    if (this._unflushed >= FLUSH_AT) this._flush();
    return true;
  }

  // The broker we reconnected to does not take batches (its WELCOME has no
  // BATCH): rewrite the batches still queued as one SEND per message, in
  // order. A message that no longer fits under maxBuffered is reported.
  _unbatchQueued() {
    let batched = false;
    const bufs = this._takeBatch();
    for (const b of bufs) {
      scanOwnFrames(b, (kind, id, to, n, flags) => {
        if (kind === KIND.SEND && (flags & WF_BATCH)) batched = true;
      });
    }
    if (!batched) {
      this._chunks = bufs;
      for (const b of bufs) this._unflushed += b.length;
      return;
    }
    for (const b of bufs) {
      let off = 0;
      scanOwnFrames(b, (kind, id, to, n, flags, bodyStart, h) => {
        const len = LEN_PREFIX + h.length;
        if (kind !== KIND.SEND || !(flags & WF_BATCH)) {
          this._requeueRaw(b.subarray(off, off + len));
        } else {
          const body = h.subarray(bodyStart);
          const at = frame.splitBatch(body);
          for (let i = 0; i < n; i++) {
            const mid = idPlus(id, i);
            const fields = [KEY.kind, KIND.SEND, KEY.id, mid, KEY.to, to];
            if (flags & WF_NOWAIT) fields.push(KEY.flags, WF_NOWAIT);
            try {
              this._queue(fields, body.subarray(at[i], at[i + 1]), null);
            } catch (err) {
              this._emitSafe('send-error', new IpchubError(err.code, `ipchub: message to ${to} not sent: ${err.message}`, { id: mid, to, cause: err }));
            }
          }
        }
        off += len;
      });
    }
  }

  // Put back one frame taken from the batch, as it was.
  _requeueRaw(bytes) {
    this._tail = null;
    if (!this._cur || this._cur.length - this._curLen < bytes.length) {
      if (this._curLen > this._curStart) this._chunks.push(this._cur.subarray(this._curStart, this._curLen));
      this._cur = Buffer.allocUnsafe(Math.max(CHUNK, bytes.length));
      this._curStart = 0;
      this._curLen = 0;
    }
    this._cur.set(bytes, this._curLen);
    this._curLen += bytes.length;
    this._unflushed += bytes.length;
  }

  // Detach the unflushed batch as a list of buffers.
  _takeBatch() {
    this._tail = null;
    const out = this._chunks;
    if (this._curLen > this._curStart) out.push(this._cur.subarray(this._curStart, this._curLen));
    this._chunks = [];
    this._curStart = this._curLen;
    this._unflushed = 0;
    return out;
  }

  _flush() {
    if (this._state !== 'open' || !this._socket || this._unflushed === 0) return;
    const sock = this._socket;
    const epoch = this._epoch;
    for (const e of this._batchEntries) e.epoch = epoch;
    this._batchEntries = [];
    const bufs = this._takeBatch();
    if (bufs.length > 1) sock.cork();
    for (const b of bufs) {
      sock.write(b, (err) => {
        if (err) this._writeFailed(b);
        else this._checkDrain();
      });
    }
    if (bufs.length > 1) sock.uncork();
  }

  _writeFailed(buf) {
    scanOwnFrames(buf, (kind, id, to, n) => {
      if (kind === KIND.SEND) {
        for (let i = 0; i < n; i++) {
          const mid = idPlus(id, i);
          this._emitSafe('send-error', new IpchubError('IO', `ipchub: connection lost while sending to ${to}; the message may not have been delivered`, { id: mid, to }));
        }
      } else if (kind === KIND.PUBLISH) {
        this._emitSafe('send-error', new IpchubError('IO', `ipchub: connection lost while publishing on ${to}; the publication may not have been delivered`, { id, topic: to }));
      }
    });
  }

  _checkDrain() {
    if (this._needDrain && this._state === 'open' && this._backlog() <= this._hwm / 2) {
      this._needDrain = false;
      this._emitSafe('drain');
    }
  }

  // Emit without letting a throwing listener corrupt our state: the
  // exception is rethrown on the next tick, as an uncaught exception.
  _emitSafe(event, ...args) {
    try {
      return this.emit(event, ...args);
    } catch (err) {
      process.nextTick(() => {
        throw err;
      });
      return true;
    }
  }

  _newId() {
    const id = this._nextId++;
    if (this._nextId > Number.MAX_SAFE_INTEGER) this._nextId = 1;
    return id;
  }

  /* ----------------------------------------------------------- public API */

  /**
   * Send `value` to the connection owning `to`. Returns false when the
   * outbound backlog is over highWaterMark (wait for 'drain'), like
   * stream.write(). Delivery failures arrive as 'send-error'. Throws
   * IpchubError INVALID/BAD_NAME/TOO_LARGE/WOULD_BLOCK/CLOSED and
   * TypeError/RangeError for values with no msgpack encoding.
   */
  send(to, value, options) {
    checkName(to, false);
    const nowait = !!(options && options.nowait);
    const body = codec.encodeShared(value);
    const id = this._newId();
    if (!this._joinBatch(id, to, nowait, body)) {
      const fields = [KEY.kind, KIND.SEND, KEY.id, id, KEY.to, to];
      if (nowait) fields.push(KEY.flags, WF_NOWAIT);
      const start = this._queue(fields, body, null);
      // Later sends may join this frame while it waits for the flush.
      if (start >= 0 && this._batchOk && this._state === 'open' && body.length <= BATCH_BODY_MAX) {
        this._tail = { start, bodyAt: this._curLen - body.length, to, nowait, next: id + 1, count: 0 };
      }
    }
    if (this._backlog() > this._hwm) {
      this._needDrain = true;
      return false;
    }
    return true;
  }

  /**
   * Send a REQUEST and resolve with the decoded reply body. Rejects with an
   * IpchubError: TIMEOUT, NO_SUCH_PEER, PEER_GONE, REMOTE_ERROR (message =
   * the responder's), CANCELLED (signal), IO (connection lost after the
   * request was written), CLOSED, LIMIT, QUEUE_FULL (nowait), ...
   */
  request(to, value, options = {}) {
    return this._request(to, value, options, false);
  }

  _request(to, value, options, noBody) {
    return new Promise((resolve, reject) => {
      const timeout = options.timeout === undefined ? DEFAULTS.requestTimeout : options.timeout;
      const signal = options.signal;
      let id;
      try {
        checkName(to, false);
        if (typeof timeout !== 'number' || !(timeout >= 0)) {
          throw new IpchubError('INVALID', `ipchub: timeout must be a non-negative number of ms, not ${timeout}`);
        }
        if (signal && signal.aborted) {
          throw new IpchubError('CANCELLED', 'ipchub: request aborted before it was sent', { to, cause: signal.reason });
        }
        const ms = timeout === Infinity || timeout === 0 ? 0 : Math.min(Math.max(1, Math.ceil(timeout)), MAX_TIMEOUT);
        id = this._newId();
        const entry = { what: `the request to ${to}`, to, resolve, reject, epoch: null, timer: null, signal: null, onAbort: null, kind: KIND.REQUEST,
          withSender: !!options.withSender, dlAt: 0, dlFn: null };
        const fields = [KEY.kind, KIND.REQUEST, KEY.id, id, KEY.to, to];
        if (ms) fields.push(KEY.timeout, ms);
        if (options.nowait) fields.push(KEY.flags, WF_NOWAIT);
        this._queue(fields, noBody ? null : codec.encodeShared(value), entry);
        this._pending.set(id, entry);
        if (ms) {
          this._deadlines.arm(entry, ms + TIMER_GRACE, () => {
            this._cancel(id, entry, new IpchubError('TIMEOUT', `ipchub: request to ${to} timed out after ${ms} ms (no answer from the broker)`, { id, to }));
          });
        }
        if (signal) {
          entry.signal = signal;
          entry.onAbort = () => {
            this._cancel(id, entry, new IpchubError('CANCELLED', `ipchub: request to ${to} cancelled`, { id, to, cause: signal.reason }));
          };
          signal.addEventListener('abort', entry.onAbort, { once: true });
        }
      } catch (err) {
        reject(err);
      }
    });
  }

  // Give up a pending request locally and tell the broker (CANCEL), whose
  // answer (CANCELLED or the late REPLY's fate) then matches nothing.
  _cancel(id, entry, err) {
    if (!this._settle(id, entry, err)) return;
    if (entry.epoch === this._epoch && this._state === 'open') {
      try {
        this._queue([KEY.kind, KIND.CANCEL, KEY.id, id], null, null);
      } catch (_) {
        // closing or over maxBuffered: the broker's own timeout frees it
      }
    }
  }

  // End a pending entry once; returns false if it had already ended.
  _settle(id, entry, err, value) {
    if (this._pending.get(id) !== entry) return false;
    this._pending.delete(id);
    if (entry.timer) clearTimeout(entry.timer);
    if (entry.dlFn) this._deadlines.cancel(entry);
    if (entry.signal) entry.signal.removeEventListener('abort', entry.onAbort);
    if (err) entry.reject(err);
    else entry.resolve(value);
    return true;
  }

  // REGISTER / UNREGISTER / PING. `direct` writes to the socket at once
  // (used during reconnect, ahead of the batch).
  _op(kind, name, direct) {
    return new Promise((resolve, reject) => {
      const id = this._newId();
      const what = kind === KIND.PING ? 'the ping' : `${kind === KIND.REGISTER ? 'REGISTER' : 'UNREGISTER'} ${name}`;
      const entry = { what, to: undefined, name, resolve, reject, epoch: null, timer: null, signal: null, onAbort: null, kind, t0: now() };
      const fields = [KEY.kind, kind, KEY.id, id];
      if (name !== undefined) fields.push(KEY.name, name);
      try {
        if (direct) {
          entry.epoch = this._epoch;
          this._socket.write(frame.encodeFrame(fields, null));
        } else {
          this._queue(fields, null, entry);
        }
      } catch (err) {
        reject(err);
        return;
      }
      this._pending.set(id, entry);
      entry.timer = setTimeout(() => {
        this._settle(id, entry, new IpchubError('TIMEOUT', `ipchub: no answer to ${what} within ${this._timeout} ms`, { id }));
      }, this._timeout);
      if (entry.timer.unref) entry.timer.unref();
    });
  }

  /** Claim another name (resolves when the broker says OK). */
  async register(name) {
    checkName(name, true);
    await this._op(KIND.REGISTER, name, false);
    if (!this._names.includes(name)) this._names.push(name);
  }

  /** Release a name this connection holds. */
  async unregister(name) {
    checkName(name, true);
    await this._op(KIND.UNREGISTER, name, false);
    this._names = this._names.filter((n) => n !== name);
  }

  /** Round trip to the broker (PING/PONG); resolves with the time in ms. */
  async ping() {
    const t0 = now();
    await this._op(KIND.PING, undefined, false);
    return now() - t0;
  }

  /** The broker's list of registered names (ipchub.peers); `key` as text. */
  async peers(options = {}) {
    const list = await this._request('ipchub.peers', undefined, { ...options, withSender: false }, true);
    if (Array.isArray(list)) {
      for (const p of list) {
        if (p && Buffer.isBuffer(p.key)) p.key = keys.pkText(p.key);
      }
    }
    return list;
  }

  /**
   * Answer REQUESTs with fn(body, from, ctx); its (awaited) result is the
   * reply, a throw becomes REMOTE_ERROR with the error's message. Pass null
   * to remove the handler (requests then get REMOTE_ERROR "no handler").
   */
  handle(fn) {
    if (fn !== null && typeof fn !== 'function') throw new IpchubError('INVALID', 'ipchub: handle() needs a function');
    this._handler = fn;
    return this;
  }

  /* ------------------------------------------------------- publish/subscribe */

  // A control operation answered by OK (SUBSCRIBE, UNSUBSCRIBE, UNWATCH)
  // or by its first PRESENCE (WATCH): a pending entry under `id`, which is
  // in `fields`. `direct` writes to the socket at once (restoreState()).
  // A SUBSCRIBE/WATCH that times out locally is ended on the broker side
  // with a fire-and-forget UNSUBSCRIBE/UNWATCH queued behind it, so a late
  // acceptance cannot leave an orphan the hub no longer routes.
  _ctl(fields, kind, what, direct, id) {
    return new Promise((resolve, reject) => {
      const entry = { what, to: undefined, resolve, reject, epoch: null, timer: null, signal: null, onAbort: null, kind, t0: now() };
      try {
        if (direct) {
          entry.epoch = this._epoch;
          this._socket.write(frame.encodeFrame(fields, null));
        } else {
          this._queue(fields, null, entry);
        }
      } catch (err) {
        reject(err);
        return;
      }
      this._pending.set(id, entry);
      entry.timer = setTimeout(() => {
        if (!this._settle(id, entry, new IpchubError('TIMEOUT', `ipchub: no answer to ${what} within ${this._timeout} ms`, { id }))) return;
        if (kind === KIND.SUBSCRIBE || kind === KIND.WATCH) {
          try {
            this._queue([KEY.kind, kind === KIND.SUBSCRIBE ? KIND.UNSUBSCRIBE : KIND.UNWATCH, KEY.id, this._newId(), KEY.sub, id], null, null);
          } catch (_) {
            // closed or over maxBuffered: the connection's end frees it
          }
        }
      }, this._timeout);
      if (entry.timer.unref) entry.timer.unref();
    });
  }

  /**
   * Publish `value` on `topic` to every matching subscription. Returns
   * false when the outbound backlog is over highWaterMark (wait for
   * 'drain'), like send(). A publication nobody subscribed to is not an
   * error; the broker's refusals (BAD_NAME for a reserved ipchub.* topic,
   * BAD_BODY, INTERNAL) arrive as 'send-error'. Throws IpchubError
   * INVALID/BAD_NAME (malformed topic)/TOO_LARGE/WOULD_BLOCK/CLOSED.
   */
  publish(topic, value) {
    checkName(topic, false);
    const id = this._newId();
    this._queue([KEY.kind, KIND.PUBLISH, KEY.id, id, KEY.topic, topic], codec.encodeShared(value), null);
    if (this._backlog() > this._hwm) {
      this._needDrain = true;
      return false;
    }
    return true;
  }

  /**
   * Subscribe to topics matching `pattern` ("a.*.c", "a.>").
   * options.policy: 'drop-oldest' (default), 'drop-newest', 'disconnect'
   * or 'block' (PROTOCOL.md section 10.2). callback(value, meta) runs for
   * each publication, meta = { topic, from, sub, id, gap? }; gap is how
   * many were lost just before this one. Resolves with the Subscription
   * once the broker accepted it. Rejects BAD_NAME, LIMIT, INVALID, IO, ...
   */
  async subscribe(pattern, options, callback) {
    if (typeof options === 'function' && callback === undefined) {
      callback = options;
      options = undefined;
    }
    const opts = options || {};
    checkPattern(pattern);
    const policy = opts.policy === undefined ? 'drop-oldest' : opts.policy;
    if (!Object.prototype.hasOwnProperty.call(frame.POLICY, policy)) {
      throw new IpchubError('INVALID', `ipchub: policy must be one of ${Object.keys(frame.POLICY).join(', ')}, not ${JSON.stringify(policy)}`);
    }
    if (callback !== undefined && callback !== null && typeof callback !== 'function') {
      throw new IpchubError('INVALID', 'ipchub: the subscribe() callback must be a function');
    }
    const sub = new Subscription(this, pattern, policy, callback || null);
    const id = this._newId();
    sub.id = id;
    this._subs.set(id, sub);
    try {
      await this._ctl([KEY.kind, KIND.SUBSCRIBE, KEY.id, id, KEY.topic, pattern, KEY.policy, frame.POLICY[policy]],
        KIND.SUBSCRIBE, `SUBSCRIBE ${pattern}`, false, id);
    } catch (err) {
      sub.active = false;
      if (this._subs.get(id) === sub) this._subs.delete(id);
      throw err;
    }
    if (!sub.active) return sub; // the hub closed meanwhile
    sub.epoch = this._epoch;
    this._subList.push(sub);
    return sub;
  }

  /**
   * Watch the owner of `name`: callback(ev) with ev = { name, event:
   * 'owned'|'unowned'|'registered'|'released', reason?, owner? } for the
   * current state (resolving the returned Watch), then for every change,
   * and for the current state again after each reconnect.
   */
  async watch(name, callback) {
    checkName(name, true);
    if (callback !== undefined && callback !== null && typeof callback !== 'function') {
      throw new IpchubError('INVALID', 'ipchub: the watch() callback must be a function');
    }
    const w = new Watch(this, name, callback || null);
    const id = this._newId();
    w.id = id;
    this._watches.set(id, w);
    try {
      await this._ctl([KEY.kind, KIND.WATCH, KEY.id, id, KEY.name, name], KIND.WATCH, `WATCH ${name}`, false, id);
    } catch (err) {
      w.active = false;
      if (this._watches.get(id) === w) this._watches.delete(id);
      throw err;
    }
    if (!w.active) return w;
    w.epoch = this._epoch;
    this._watchList.push(w);
    return w;
  }

  /**
   * Resolve with the owner's connection id as soon as `name` is owned (at
   * once if it already is). options.timeout (ms, default: none) rejects
   * with TIMEOUT; options.signal (AbortSignal) with CANCELLED; the hub's
   * close with CLOSED.
   */
  waitFor(name, options = {}) {
    return new Promise((resolve, reject) => {
      const { timeout, signal } = options;
      if (timeout !== undefined && (typeof timeout !== 'number' || !(timeout >= 0))) {
        reject(new IpchubError('INVALID', `ipchub: timeout must be a non-negative number of ms, not ${timeout}`));
        return;
      }
      if (signal && signal.aborted) {
        reject(new IpchubError('CANCELLED', `ipchub: waitFor(${name}) aborted`, { cause: signal.reason }));
        return;
      }
      let w = null;
      let done = false;
      let timer = null;
      const onClose = () => finish(new IpchubError('CLOSED', `ipchub: hub closed while waiting for ${name}`));
      const onAbort = () => finish(new IpchubError('CANCELLED', `ipchub: waitFor(${name}) aborted`, { cause: signal.reason }));
      const finish = (err, owner) => {
        if (done) return;
        done = true;
        if (timer) clearTimeout(timer);
        this.removeListener('close', onClose);
        if (signal) signal.removeEventListener('abort', onAbort);
        if (w) w.unwatch().catch(() => {});
        if (err) reject(err);
        else resolve(owner);
      };
      this.once('close', onClose);
      if (signal) signal.addEventListener('abort', onAbort, { once: true });
      if (timeout !== undefined && timeout !== Infinity) {
        timer = setTimeout(() => finish(new IpchubError('TIMEOUT', `ipchub: ${name} not owned within ${timeout} ms`, { hubName: name })), timeout);
      }
      this.watch(name, (ev) => {
        if (ev.event === 'owned' || ev.event === 'registered') finish(null, ev.owner);
      }).then((watch) => {
        w = watch;
        if (done) watch.unwatch().catch(() => {});
      }, (err) => finish(err));
    });
  }

  // End a Subscription or Watch: locally at once, then on the broker if
  // its id belongs to the current connection (an outage already ended it
  // there, and the reconnect will not restore it).
  async _end(handle, kind, what) {
    const epoch = handle.epoch;
    const oldId = handle.id;
    if (!this._forget(handle)) return;
    if (epoch !== this._epoch || (this._state !== 'open' && this._state !== 'welcomed')) return;
    const id = this._newId();
    try {
      await this._ctl([KEY.kind, kind, KEY.id, id, KEY.sub, oldId], kind, what, false, id);
    } catch (err) {
      if (GONE.has(err.code) || err.code === 'NO_SUCH_REQUEST') return;
      throw err;
    }
  }

  _unsubscribe(sub) {
    return this._end(sub, KIND.UNSUBSCRIBE, `UNSUBSCRIBE ${sub.pattern}`);
  }

  _unwatch(w) {
    return this._end(w, KIND.UNWATCH, `UNWATCH ${w.name}`);
  }

  /** Stop the hub from keeping the process alive (like socket.unref()). */
  unref() {
    this._unref = true;
    if (this._socket) this._socket.unref();
    return this;
  }

  ref() {
    this._unref = false;
    if (this._socket) this._socket.ref();
    return this;
  }

  /**
   * Flush what is queued, say BYE and close. Pending requests are rejected
   * with CLOSED; resolves after 'close' has been emitted.
   */
  close() {
    if (this._closePromise) return this._closePromise;
    this._closePromise = new Promise((resolve) => {
      this.once('close', () => resolve());
      if (this._state === 'closed') {
        resolve();
        return;
      }
      const sock = this._socket;
      const wasOpen = this._state === 'open';
      if (wasOpen) {
        try {
          this._queue([KEY.kind, KIND.BYE], null, null);
        } catch (_) {
          // over maxBuffered: close anyway
        }
        this._flush();
      }
      this._state = 'closing';
      if (this._reconnectTimer) clearTimeout(this._reconnectTimer);
      if (this._reconnectWake) this._reconnectWake();
      if (sock && wasOpen) {
        sock.end();
        const t = setTimeout(() => sock.destroy(), CLOSE_WAIT);
        if (t.unref) t.unref();
      } else {
        if (sock) sock.destroy();
        this._socket = null;
        this._finish(new IpchubError('CLOSED', 'ipchub: hub closed'));
      }
    });
    return this._closePromise;
  }

  /* ---------------------------------------------------------------- input */

  _onFrame(sock, buf) {
    if (sock !== this._socket) return;
    let f;
    try {
      f = frame.parseFrame(buf);
    } catch (err) {
      this._protocolError(sock, err);
      return;
    }
    if (this._state === 'handshake' && this._welcome && this._welcome.authing) {
      const w = this._welcome;
      if (f.kind === KIND.OK && f.id === 0) w.authOk();
      else if (f.kind === KIND.ERROR || f.kind === KIND.BYE) {
        const code = f.code === null ? 'CLOSED' : codeName(f.code);
        this._protocolError(sock, new IpchubError(code, `ipchub: the broker refused key ${w.keyId} ` +
          `(file ${this._keyPath}): ${f.msg || code}`));
      } else {
        this._protocolError(sock, new IpchubError('PROTOCOL', `ipchub: broker sent ${frame.KIND_NAMES[f.kind]} before answering AUTH`));
      }
      return;
    }
    if (this._state === 'handshake') {
      if (f.kind === KIND.WELCOME) this._welcome.resolve(f);
      else if (f.kind === KIND.ERROR || f.kind === KIND.BYE) {
        const code = f.code === null ? 'CLOSED' : codeName(f.code);
        this._protocolError(sock, new IpchubError(code, `ipchub: broker refused the connection: ${f.msg || code}`));
      } else {
        this._protocolError(sock, new IpchubError('PROTOCOL', `ipchub: broker sent ${frame.KIND_NAMES[f.kind]} before WELCOME`));
      }
      return;
    }
    switch (f.kind) {
      case KIND.SEND:
      case KIND.REQUEST:
        if (this._held) this._held.push(f);
        else if (f.kind === KIND.SEND) this._onSend(f);
        else this._onRequest(f);
        break;
      case KIND.REPLY: this._onReply(f); break;
      case KIND.PUBLISH: this._onPublish(f); break;
      case KIND.GAP: this._onGap(f); break;
      case KIND.PRESENCE: this._onPresence(f); break;
      case KIND.ERROR: this._onError(sock, f); break;
      case KIND.OK:
      case KIND.PONG: {
        // No entry: the operation already ended locally (its timer fired).
        const e = this._pending.get(f.id);
        if (e && (e.kind === KIND.PING) === (f.kind === KIND.PONG) && e.kind !== KIND.REQUEST) {
          this._settle(f.id, e, null, undefined);
        }
        break;
      }
      case KIND.BYE: {
        const code = f.code === null ? 'CLOSED' : codeName(f.code);
        const err = new IpchubError(code, `ipchub: broker said goodbye${f.msg ? ': ' + f.msg : ''}`);
        // SHUTTING_DOWN (or a plain BYE) is a restart we can ride out; a fatal code is not.
        if (f.code !== null && FATAL.has(f.code)) err.fatal = true;
        this._closeErr = err;
        break;
      }
      case KIND.WELCOME:
      default:
        this._protocolError(sock, new IpchubError('PROTOCOL', `ipchub: unexpected ${frame.KIND_NAMES[f.kind]} from broker`));
    }
  }

  // The sender as the broker stamped it: uid from SO_PEERCRED (null if the
  // kernel gave none), key = its verified public key as text, or null for
  // a sender that did not authenticate.
  _from(f) {
    return { name: f.from, id: f.from_id, uid: f.uid, key: f.key !== null ? keys.pkText(f.key) : null };
  }

  _onSend(f) {
    const from = this._from(f);
    if (f.batch === null) {
      this._deliver(f.body, from, f.id, f.to);
      return;
    }
    // A batch (PROTOCOL.md 6.3.1), checked whole by parseFrame: one
    // message per element, in order, ids f.id + i, each with its own copy
    // of the sender. All elements are decoded before any is emitted (a
    // listener cannot disturb the decoder); one that cannot be decoded is
    // one 'message-error', not the whole batch.
    const at = f.batch;
    const { values, errors } = codec.decodeBatch(f.body, at);
    for (let i = 0; i < values.length; i++) {
      const id = idPlus(f.id, i);
      const who = i === 0 ? from : { ...from };
      if (errors !== null && errors.has(i)) this._undecodable(f.body.subarray(at[i], at[i + 1]), who, id, errors.get(i));
      else this._emitMessage(values[i], who, id, f.to);
    }
  }

  _deliver(body, from, id, to) {
    let value;
    try {
      value = body ? codec.decode(body) : undefined;
    } catch (err) {
      this._undecodable(body, from, id, err);
      return;
    }
    this._emitMessage(value, from, id, to);
  }

  _undecodable(body, from, id, err) {
    const e = new IpchubError('BAD_BODY', `ipchub: cannot decode a message from ${from.name || from.id}: ${err.message}`,
      { id, from, raw: Buffer.from(body), cause: err });
    if (!this._emitSafe('message-error', e)) process.emitWarning(e.message, 'IpchubWarning');
  }

  _emitMessage(value, from, id, to) {
    if (!this._emitSafe('message', value, from, { id, to }) && !this._warnedNoListener) {
      this._warnedNoListener = true;
      process.emitWarning(`ipchub: a message for ${to} arrived with no 'message' listener and was dropped`, 'IpchubWarning');
    }
  }

  async _onRequest(f) {
    const epoch = this._epoch;
    const from = this._from(f);
    const ctx = {
      id: f.id,
      to: f.to,
      timeout: f.timeout || null,
      deadline: f.timeout ? Date.now() + f.timeout : null,
    };
    let code = 0;
    let msg = null;
    let reply;
    if (!this._handler) {
      code = 16;
      msg = 'no handler';
    } else {
      let body;
      let decoded = false;
      try {
        body = f.body ? codec.decode(f.body) : undefined;
        decoded = true;
      } catch (err) {
        code = 16;
        msg = `cannot decode the request body: ${err.message}`;
      }
      if (decoded) {
        this._activeHandlers++;
        if (this._activeHandlers >= this._maxHandlers && !this._readPaused && this._socket) {
          this._readPaused = true;
          this._socket.pause();
        }
        try {
          reply = await this._handler(body, from, ctx);
        } catch (err) {
          code = 16;
          msg = err && err.message !== undefined ? String(err.message) : String(err);
        }
        this._activeHandlers--;
        if (this._readPaused && this._activeHandlers < this._maxHandlers / 2) {
          this._readPaused = false;
          if (this._socket) this._socket.resume();
        }
      }
    }
    // A request from an earlier connection cannot be answered on this one.
    if (this._epoch !== epoch || (this._state !== 'open' && this._state !== 'reconnecting')) return;
    const fields = [KEY.kind, KIND.REPLY, KEY.id, f.id, KEY.to_id, f.from_id];
    let body = null;
    if (code) {
      fields.push(KEY.code, code, KEY.msg, truncateUtf8(msg, MAX_ERRMSG));
    } else {
      try {
        body = codec.encodeShared(reply);
      } catch (err) {
        fields.push(KEY.code, 16, KEY.msg, truncateUtf8(`cannot encode the reply: ${err.message}`, MAX_ERRMSG));
      }
    }
    try {
      this._queue(fields, body, null);
    } catch (err) {
      if (err.code === 'TOO_LARGE' || err.code === 'WOULD_BLOCK') {
        try {
          this._queue([KEY.kind, KIND.REPLY, KEY.id, f.id, KEY.to_id, f.from_id, KEY.code, 16,
            KEY.msg, truncateUtf8(`reply not sent: ${err.message}`, MAX_ERRMSG)], null, null);
        } catch (_) {
          // the requester's timeout covers it
        }
      }
    }
  }

  _onReply(f) {
    const e = this._pending.get(f.id);
    if (!e || e.kind !== KIND.REQUEST) return; // cancelled or timed out locally
    const from = this._from(f);
    if (f.code) {
      const name = codeName(f.code);
      this._settle(f.id, e, new IpchubError(name, f.msg ? `${f.msg}` : `ipchub: ${from.name || 'responder'} answered ${name}`,
        { id: f.id, to: e.to, from, remote: true }));
      return;
    }
    let value;
    try {
      value = f.body ? codec.decode(f.body) : undefined;
    } catch (err) {
      this._settle(f.id, e, new IpchubError('BAD_BODY', `ipchub: cannot decode the reply from ${e.to}: ${err.message}`,
        { id: f.id, to: e.to, from, raw: Buffer.from(f.body), cause: err }));
      return;
    }
    this._settle(f.id, e, null, e.withSender ? { value, from } : value);
  }

  _onPublish(f) {
    const sub = this._subs.get(f.sub);
    if (!sub || !sub.active) return; // unsubscribe()d: it was in flight
    const from = this._from(f);
    let value;
    try {
      value = f.body ? codec.decode(f.body) : undefined;
    } catch (err) {
      const e = new IpchubError('BAD_BODY', `ipchub: cannot decode a publication on ${f.topic} from ${from.name || from.id}: ${err.message}`,
        { id: f.id, from, topic: f.topic, sub, raw: Buffer.from(f.body), cause: err });
      if (!this._emitSafe('message-error', e)) process.emitWarning(e.message, 'IpchubWarning');
      return;
    }
    const meta = { topic: f.topic, from, sub, id: f.id };
    sub._deliver(value, meta);
    this._emitSafe('publication', value, meta);
  }

  _onGap(f) {
    const sub = this._subs.get(f.sub);
    if (!sub || !sub.active) return;
    this._emitSafe('gap', sub._lost(f.count));
  }

  _onPresence(f) {
    const w = this._watches.get(f.id);
    if (!w || !w.active) return;
    const ev = { name: f.name, event: frame.PRESENCE_EVENTS[f.event] };
    if (f.reason !== null) ev.reason = frame.RELEASE_REASONS[f.reason];
    if (f.conn !== null) ev.owner = f.conn;
    w._deliver(ev);
    this._emitSafe('presence', ev, w);
    const e = this._pending.get(f.id);
    if (e && e.kind === KIND.WATCH) this._settle(f.id, e, null, undefined);
  }

  _onError(sock, f) {
    const name = codeName(f.code);
    if (FATAL.has(f.code)) {
      this._protocolError(sock, new IpchubError(name, `ipchub: broker closed the connection: ${f.msg || name}`));
      return;
    }
    const props = { id: f.id };
    if (f.to !== null) props.to = f.to;
    if (f.name !== null) props.hubName = f.name;
    if (f.ref === KIND.REPLY) {
      // Our REPLY could not be delivered (requester gone, request timed out).
      this._emitSafe('reply-error', new IpchubError(name, `ipchub: reply not delivered: ${f.msg || name}`, props));
      return;
    }
    if (f.ref === KIND.CANCEL) return; // the request had already ended
    if (f.id === 0 && f.ref === null && f.name !== null && name === 'NOT_AUTHORIZED') {
      // A policy reload took a name away (PROTOCOL.md section 6.7, Reload):
      // forget it, so a reconnect does not try to claim it back.
      this._names = this._names.filter((n) => n !== f.name);
      const e = new IpchubError(name, `ipchub: the broker took the name ${f.name} away (policy reloaded)${f.msg ? ': ' + f.msg : ''}`, props);
      if (!this._emitSafe('name-lost', e)) process.emitWarning(e.message, 'IpchubWarning');
      return;
    }
    const e = this._pending.get(f.id);
    if (e && (f.ref === null || f.ref === e.kind)) {
      if (e.to !== undefined) props.to = e.to;
      this._settle(f.id, e, new IpchubError(name, `ipchub: ${e.what} failed: ${name}${f.msg ? ': ' + f.msg : ''}`, props));
      return;
    }
    if (f.ref === KIND.PUBLISH) {
      // PUBLISH is answered only when refused (PROTOCOL.md section 10.2).
      const e2 = new IpchubError(name, `ipchub: publication not accepted: ${name}${f.msg ? ': ' + f.msg : ''}`, props);
      if (!this._emitSafe('send-error', e2)) process.emitWarning(`${e2.message} (no 'send-error' listener)`, 'IpchubWarning');
      return;
    }
    if (f.ref === KIND.SEND || f.ref === null) {
      // With count, the ERROR answers a batch: one error per message (6.3.1).
      const n = f.count === null ? 1 : f.count;
      for (let i = 0; i < n; i++) {
        const p = i === 0 ? props : { ...props, id: idPlus(f.id, i) };
        const e2 = new IpchubError(name, `ipchub: message to ${f.to} not delivered: ${name}${f.msg ? ': ' + f.msg : ''}`, p);
        if (!this._emitSafe('send-error', e2)) process.emitWarning(`${e2.message} (no 'send-error' listener)`, 'IpchubWarning');
      }
      return;
    }
    if (f.code === 18) return; // SHUTTING_DOWN notice without a matching frame; BYE/close follow
  }
}

/**
 * Connect to the broker, complete the handshake (authenticating with the
 * key file in options.key or $IPCHUB_KEY, if any) and register the names.
 * Rejects with IpchubError NO_BROKER, TIMEOUT, NAME_TAKEN, BAD_NAME,
 * BAD_KEY, AUTH_FAILED, NOT_AUTHORIZED, ...
 */
async function connect(options = {}) {
  const hub = new Hub(options);
  try {
    await hub._establish(true);
    hub._everUp = true;
    setImmediate(() => {
      const held = hub._held;
      hub._held = null;
      for (const f of held) {
        if (f.kind === KIND.SEND) hub._onSend(f);
        else hub._onRequest(f);
      }
    });
  } catch (err) {
    hub._state = 'closed';
    if (hub._socket) hub._socket.destroy();
    hub._socket = null;
    for (const [id, e] of hub._pending) hub._settle(id, e, err);
    throw err;
  }
  return hub;
}

module.exports = { Hub, connect, resolveSocketPath, checkName, DEFAULTS };
