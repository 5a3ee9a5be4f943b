'use strict';
// Authentication (PROTOCOL.md section 6.7, SECURITY.md) against real
// brokers started with --policy (one with --require-auth, one without), and
// key files exchanged with the C CLI in both directions.

const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('fs');
const os = require('os');
const path = require('path');
const { connect, keygen, IpchubError } = require('..');
const keys = require('../lib/key');
const { startBroker, once, runCli } = require('../testlib/helpers');

const PK_RE = /^ed25519:[0-9a-f]{64}$/;

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ipchub-node-auth-'));
const kf = (name) => path.join(dir, name);

// Keys, made before the brokers so the policy can name them.
const K = {};
let strict; // --policy --require-auth
let open;   // --policy only

test.before(async () => {
  K.svc = await keygen(kf('svc.key'));          // owns auth.svc
  K.rx = await keygen(kf('rx.key'));            // a receiver under --require-auth
  K.node2 = await keygen(kf('node2.key'));      // Node-written, used by the C CLI
  K.stranger = await keygen(kf('stranger.key')); // in no policy: AUTH_FAILED
  const cli = await runCli(['keygen', '-o', kf('cli.key')]);
  assert.equal(cli.code, 0, cli.stderr);
  K.cli = cli.stdout.trim();                    // C-written, used by Node
  const policy = [
    '# test policy',
    `allow auth.svc key ${K.svc}`,
    `allow auth.only key ${K.svc}`,
    `allow auth.rx key ${K.rx}`,
    `allow auth.node key ${K.node2}`,
    `allow auth.cli key ${K.cli}`,
    '',
  ].join('\n');
  fs.writeFileSync(kf('policy'), policy, { mode: 0o600 });
  strict = await startBroker(null, ['--policy', kf('policy'), '--require-auth']);
  open = await startBroker(null, ['--policy', kf('policy')]);
});

test.after(async () => {
  if (strict) await strict.stop();
  if (open) await open.stop();
  fs.rmSync(dir, { recursive: true, force: true });
});

test('keygen writes the C format, 0600, and never overwrites', async () => {
  const st = fs.statSync(kf('svc.key'));
  assert.equal(st.mode & 0o777, 0o600);
  assert.match(K.svc, PK_RE);
  const text = fs.readFileSync(kf('svc.key'), 'latin1');
  const lines = text.split('\n');
  assert.equal(lines[0], '# ipchub secret key (Ed25519 seed). Keep it private: mode 0600.');
  assert.equal(lines[1], `# public key: ${K.svc}`);
  assert.match(lines[2], /^ed25519-secret:[0-9a-f]{64}$/);
  assert.deepEqual(lines.slice(3), ['']);
  await assert.rejects(keygen(kf('svc.key')), (err) => {
    assert.ok(err instanceof IpchubError);
    assert.equal(err.code, 'BAD_KEY');
    assert.equal(err.codeNumber, 71);
    assert.match(err.message, /never overwritten/);
    return true;
  });
  assert.equal(fs.readFileSync(kf('svc.key'), 'latin1'), text);
  fs.symlinkSync(kf('nowhere.key'), kf('link-new.key'));
  await assert.rejects(keygen(kf('link-new.key')), { code: 'BAD_KEY' });
  assert.equal(fs.existsSync(kf('nowhere.key')), false);
  await assert.rejects(keygen(''), { code: 'INVALID' });
});

test('the transcript has the 176-byte layout of section 6.7 and the proof verifies', async () => {
  const sodium = await keys.loadSodium();
  const w = { ver: 0x01020304, broker: '0123456789abcdef0123456789abcdef', conn: 0x1122334455667788n, challenge: Buffer.alloc(32, 0xc1) };
  const t = keys.buildTranscript(w, Buffer.alloc(32, 0x4e), 0xa0b0c0d0, Buffer.alloc(32, 0x9b));
  assert.equal(t.length, 176);
  const label = Buffer.alloc(32);
  label.write('ipchub auth v1 client', 'latin1');
  assert.deepEqual(t.subarray(0, 32), label);
  assert.deepEqual(t.subarray(32, 36), Buffer.from([1, 2, 3, 4]));
  assert.equal(t.toString('latin1', 36, 68), w.broker);
  assert.deepEqual(t.subarray(68, 76), Buffer.from([0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88]));
  assert.deepEqual(t.subarray(76, 108), Buffer.alloc(32, 0xc1));
  assert.deepEqual(t.subarray(108, 140), Buffer.alloc(32, 0x4e));
  assert.deepEqual(t.subarray(140, 144), Buffer.from([0xa0, 0xb0, 0xc0, 0xd0]));
  assert.deepEqual(t.subarray(144, 176), Buffer.alloc(32, 0x9b));

  const seed = keys.readSeed(kf('svc.key'));
  const proof = keys.makeProof(sodium, seed, { ...w, ver: 1, conn: 7 });
  assert.equal(keys.pkText(proof.pk), K.svc);
  assert.equal(proof.sig.length, 64);
  const signed = keys.buildTranscript({ ...w, ver: 1, conn: 7 }, proof.nonce, process.geteuid(), proof.pk);
  assert.ok(sodium.crypto_sign_verify_detached(proof.sig, signed, proof.pk));
  assert.throws(() => keys.makeProof(sodium, seed, { ...w, challenge: null }), { code: 'PROTOCOL' });
});

test('a key authenticates: protected name, from.key and from.uid on messages, requests and replies', { timeout: 15000 }, async () => {
  const svc = await connect({ socket: open.socket, key: kf('svc.key'), name: 'auth.svc', reconnect: false });
  const anon = await connect({ socket: open.socket, key: '', name: 'anon-1', reconnect: false });
  try {
    assert.equal(svc.keyId, K.svc);
    assert.equal(anon.keyId, null);
    const uid = process.geteuid();

    const got = once(anon, 'message');
    svc.send('anon-1', { hi: 1 });
    const [msg, from] = await got;
    assert.deepEqual(msg, { hi: 1 });
    assert.deepEqual(from, { name: 'auth.svc', id: svc.connId, uid, key: K.svc });

    const back = once(svc, 'message');
    anon.send('auth.svc', 'plain');
    const [, from2] = await back;
    assert.deepEqual(from2, { name: 'anon-1', id: anon.connId, uid, key: null });

    svc.handle((body, f) => ({ echo: body, sawKey: f.key, sawUid: f.uid }));
    const r = await anon.request('auth.svc', 5, { withSender: true });
    assert.deepEqual(r.value, { echo: 5, sawKey: null, sawUid: uid });
    assert.deepEqual(r.from, { name: 'auth.svc', id: svc.connId, uid, key: K.svc });
    assert.deepEqual(await anon.request('auth.svc', 6), { echo: 6, sawKey: null, sawUid: uid });
    anon.handle(() => { throw new Error('nope'); });
    await assert.rejects(svc.request('anon-1', 1), (err) => {
      assert.equal(err.code, 'REMOTE_ERROR');
      assert.deepEqual(err.from, { name: 'anon-1', id: anon.connId, uid, key: null });
      return true;
    });

    const peers = await anon.peers();
    const p = peers.find((x) => x.name === 'auth.svc');
    assert.equal(p.auth, true);
    assert.equal(p.key, K.svc);
    assert.equal(peers.find((x) => x.name === 'anon-1').auth, false);

    // A covered name stays closed to a connection without its key.
    await assert.rejects(anon.register('auth.only'), { code: 'NOT_AUTHORIZED' });
    await svc.register('auth.only');
  } finally {
    await svc.close();
    await anon.close();
  }
});

test('IPCHUB_KEY is the default key; key: "" opts out', { timeout: 10000 }, async () => {
  const saved = process.env.IPCHUB_KEY;
  process.env.IPCHUB_KEY = kf('svc.key');
  try {
    const a = await connect({ socket: open.socket, reconnect: false });
    assert.equal(a.keyId, K.svc);
    await a.close();
    const b = await connect({ socket: open.socket, key: '', reconnect: false });
    assert.equal(b.keyId, null);
    await b.close();
  } finally {
    if (saved === undefined) delete process.env.IPCHUB_KEY;
    else process.env.IPCHUB_KEY = saved;
  }
});

test('a key the policy does not list gets AUTH_FAILED', { timeout: 10000 }, async () => {
  for (const broker of [open, strict]) {
    await assert.rejects(connect({ socket: broker.socket, key: kf('stranger.key'), name: 'x1', reconnect: false }), (err) => {
      assert.equal(err.code, 'AUTH_FAILED');
      assert.equal(err.codeNumber, 14);
      assert.ok(err.message.includes(K.stranger), err.message);
      return true;
    });
  }
});

test('bad key files are refused with BAD_KEY before connecting', async () => {
  const good = fs.readFileSync(kf('svc.key'));
  const write = (name, data, mode = 0o600) => {
    const p = kf(name);
    fs.writeFileSync(p, data, { mode });
    fs.chmodSync(p, mode);
    return p;
  };
  const refused = async (p, re) => {
    // A socket nobody listens on: BAD_KEY must come before any connection attempt.
    await assert.rejects(connect({ socket: kf('no.sock'), key: p, reconnect: false }), (err) => {
      assert.ok(err instanceof IpchubError);
      assert.equal(err.code, 'BAD_KEY', err.message);
      assert.match(err.message, re);
      return true;
    });
  };
  const p644 = write('644.key', good, 0o644);
  await refused(p644, new RegExp(`key file ${p644} is accessible by group or others \\(mode 0644\\); refusing it: run chmod 600`));
  await refused(write('640.key', good, 0o640), /mode 0640/);
  await refused(write('604.key', good, 0o604), /mode 0604/);
  fs.symlinkSync(kf('svc.key'), kf('link.key'));
  await refused(kf('link.key'), /it is a symbolic link/);
  await refused(kf('missing.key'), /cannot open key file .*missing\.key: No such file or directory/);
  await refused(dir, /is not a regular file/);
  await refused(write('empty.key', ''), /malformed: no 'ed25519-secret:' line/);
  await refused(write('junk.key', 'hello\n'), /malformed: a line is neither a comment nor the secret key/);
  await refused(write('short.key', 'ed25519-secret:abcd\n'), /malformed: the secret key is not 64 hex digits/);
  await refused(write('nothex.key', `ed25519-secret:${'zz'.repeat(32)}\n`), /not 64 hex digits/);
  const line = good.toString('latin1').split('\n')[2];
  await refused(write('two.key', `${line}\n${line}\n`), /more than one secret key line/);
  await refused(write('nul.key', Buffer.concat([good, Buffer.from([0])])), /is not a text file/);
  await refused(write('big.key', '#'.repeat(keys.KEY_FILE_MAX) + '\n'), /larger than 4096 bytes/);
  // Another owner: the check compares with the effective uid.
  const geteuid = process.geteuid;
  process.geteuid = () => geteuid() + 1;
  try {
    await refused(kf('svc.key'), new RegExp(`belongs to uid ${geteuid()}, not to this process \\(uid ${geteuid() + 1}\\)`));
  } finally {
    process.geteuid = geteuid;
  }
  // Accepted variants of the format: CRLF lines, comments, blank lines, upper-case hex.
  const ok = write('crlf.key', `# c\r\n\r\ned25519-secret:${line.slice(15).toUpperCase()}\r\n`);
  const hub = await connect({ socket: open.socket, key: ok, reconnect: false });
  assert.equal(hub.keyId, K.svc);
  await hub.close();
  await assert.rejects(connect({ socket: open.socket, key: 42 }), { code: 'INVALID' });
});

test('--require-auth: no key is refused; a good key works', { timeout: 10000 }, async () => {
  await assert.rejects(connect({ socket: strict.socket, key: '', name: 'noauth', reconnect: false }),
    (err) => err.code === 'AUTH_FAILED' && /requires authentication/.test(err.message));
  // Anonymous: HELLO/WELCOME succeed, the first frame is refused and the hub ends.
  const anon = await connect({ socket: strict.socket, key: '' });
  const closed = once(anon, 'close');
  await assert.rejects(anon.ping(), { code: 'AUTH_FAILED' });
  const [cerr] = await closed;
  assert.equal(cerr.code, 'AUTH_FAILED');
  assert.equal(anon.connected, false);

  const rx = await connect({ socket: strict.socket, key: kf('rx.key'), name: 'auth.rx', reconnect: false });
  const svc = await connect({ socket: strict.socket, key: kf('svc.key'), name: 'auth.svc', reconnect: false });
  try {
    const got = once(rx, 'message');
    svc.send('auth.rx', 'hello');
    const [, from] = await got;
    assert.equal(from.key, K.svc);
    assert.equal(from.uid, process.geteuid());
  } finally {
    await svc.close();
    await rx.close();
  }
});

test('a key written by the C CLI works in Node; a Node-written key works with the C CLI', { timeout: 15000 }, async () => {
  const st = fs.statSync(kf('cli.key'));
  assert.equal(st.mode & 0o777, 0o600);
  const fromCli = await connect({ socket: strict.socket, key: kf('cli.key'), name: 'auth.cli', reconnect: false });
  const rx = await connect({ socket: strict.socket, key: kf('rx.key'), name: 'auth.rx', reconnect: false });
  try {
    assert.equal(fromCli.keyId, K.cli);
    const got = once(rx, 'message');
    fromCli.send('auth.rx', 'from a C-made key');
    const [, from] = await got;
    assert.equal(from.key, K.cli);

    // The C CLI with the Node-written key: it authenticates (else
    // --require-auth refuses it) and may register auth.node.
    const got2 = once(rx, 'message');
    const r = await runCli(['--socket', strict.socket, '--key', kf('node2.key'), '--name', 'auth.node', 'send', 'auth.rx', '{"via":"cli"}']);
    assert.equal(r.code, 0, r.stderr);
    const [msg2, from2] = await got2;
    assert.deepEqual(msg2, { via: 'cli' });
    assert.deepEqual({ name: from2.name, key: from2.key, uid: from2.uid }, { name: 'auth.node', key: K.node2, uid: process.geteuid() });

    // And the C library applies the same file checks to what Node wrote.
    fs.copyFileSync(kf('node2.key'), kf('node2-644.key'));
    fs.chmodSync(kf('node2-644.key'), 0o644);
    const r2 = await runCli(['--socket', strict.socket, '--key', kf('node2-644.key'), 'ping']);
    assert.equal(r2.code, 1);
    assert.match(r2.stderr, /BAD_KEY/);
  } finally {
    await fromCli.close();
    await rx.close();
  }
});

test('reconnect authenticates again (new challenge) and gets the protected name back', { timeout: 30000 }, async () => {
  let broker = await startBroker(null, ['--policy', kf('policy'), '--require-auth']);
  const socket = broker.socket;
  const svc = await connect({ socket, key: kf('svc.key'), name: 'auth.svc', reconnect: { initialDelay: 20, maxDelay: 200 } });
  let rx = null;
  try {
    const firstBroker = svc.brokerId;
    const disc = once(svc, 'disconnect');
    const rec = once(svc, 'reconnect');
    await broker.stop('SIGKILL');
    await disc;
    broker = await startBroker(socket, ['--policy', kf('policy'), '--require-auth']);
    const [, info] = await rec;
    assert.deepEqual(info.names, ['auth.svc']);
    assert.deepEqual(info.lost, []);
    assert.notEqual(svc.brokerId, firstBroker);
    assert.equal(svc.keyId, K.svc);
    rx = await connect({ socket, key: kf('rx.key'), name: 'auth.rx', reconnect: false });
    const peers = await rx.peers();
    assert.deepEqual(peers.filter((p) => p.name === 'auth.svc').map((p) => [p.auth, p.key]), [[true, K.svc]]);
    const got = once(rx, 'message');
    svc.send('auth.rx', 'back');
    const [, from] = await got;
    assert.deepEqual({ name: from.name, key: from.key }, { name: 'auth.svc', key: K.svc });
  } finally {
    await svc.close();
    if (rx) await rx.close();
    await broker.stop();
  }
});

test('reconnect ends the hub with AUTH_FAILED when the broker no longer accepts the key', { timeout: 30000 }, async () => {
  let broker = await startBroker(null, ['--policy', kf('policy'), '--require-auth']);
  const socket = broker.socket;
  const svc = await connect({ socket, key: kf('svc.key'), name: 'auth.svc', reconnect: { initialDelay: 20, maxDelay: 200 } });
  const other = kf('policy-other');
  fs.writeFileSync(other, `allow auth.rx key ${K.rx}\n`, { mode: 0o600 });
  try {
    const closed = once(svc, 'close');
    await broker.stop('SIGKILL');
    broker = await startBroker(socket, ['--policy', other, '--require-auth']);
    const [err] = await closed;
    assert.equal(err.code, 'AUTH_FAILED');
    assert.equal(svc.connected, false);
  } finally {
    await svc.close();
    await broker.stop();
  }
});

test('a hub without a key never loads libsodium', { timeout: 15000 }, async () => {
  const { execFile } = require('child_process');
  const script = `
    const { connect } = require(${JSON.stringify(path.resolve(__dirname, '..'))});
    (async () => {
      const hub = await connect({ socket: ${JSON.stringify(open.socket)}, key: '', name: 'nolib' });
      await hub.ping();
      await hub.close();
      const loaded = Object.keys(require.cache).filter((k) => k.includes('libsodium'));
      process.stdout.write(JSON.stringify(loaded));
    })().catch((e) => { console.error(e); process.exit(1); });`;
  const out = await new Promise((resolve, reject) => {
    execFile(process.execPath, ['-e', script], { env: { ...process.env, IPCHUB_KEY: '' } }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${err.message}: ${stderr}`));
      else resolve(stdout);
    });
  });
  assert.deepEqual(JSON.parse(out), []);
});

test('a policy reload that takes a name away emits name-lost and drops the name', { timeout: 15000 }, async () => {
  const pol = kf('policy-reload');
  fs.writeFileSync(pol, `allow auth.svc key ${K.svc}\n`, { mode: 0o600 });
  const broker = await startBroker(null, ['--policy', pol]);
  const svc = await connect({ socket: broker.socket, key: kf('svc.key'), name: 'auth.svc', names: ['free-name'], reconnect: false });
  try {
    const lost = once(svc, 'name-lost');
    fs.writeFileSync(pol, `allow auth.svc key ${K.rx}\n`, { mode: 0o600 });
    broker.proc.kill('SIGHUP');
    const [err] = await lost;
    assert.equal(err.code, 'NOT_AUTHORIZED');
    assert.equal(err.hubName, 'auth.svc');
    assert.deepEqual(svc.names, ['free-name']);
    assert.equal(svc.connected, true);
    await svc.ping();
  } finally {
    await svc.close();
    await broker.stop();
  }
});
