// Type definitions for ipchub (Node.js client). Hand-written; keep in step
// with lib/client.js, lib/errors.js and lib/fork.js.

/// <reference types="node" />

import { EventEmitter } from 'events';
import { ChildProcess, StdioOptions } from 'child_process';

/** Wire codes (PROTOCOL.md section 7) and local codes (64..). */
export type WireErrorCode =
  | 'OK' | 'BAD_FRAME' | 'TOO_LARGE' | 'UNSUPPORTED_VERSION' | 'PROTOCOL' | 'BAD_NAME'
  | 'NAME_TAKEN' | 'NOT_OWNER' | 'NO_SUCH_PEER' | 'PEER_GONE' | 'TIMEOUT' | 'QUEUE_FULL'
  | 'LIMIT' | 'NOT_AUTHORIZED' | 'AUTH_FAILED' | 'NO_SUCH_REQUEST' | 'REMOTE_ERROR'
  | 'CANCELLED' | 'SHUTTING_DOWN' | 'INTERNAL' | 'BAD_BODY' | 'BAD_FILTER' | 'FDS_UNSUPPORTED';
export type LocalErrorCode = 'IO' | 'CLOSED' | 'NOMEM' | 'INVALID' | 'WOULD_BLOCK' | 'NO_BROKER' | 'INTERRUPTED' | 'BAD_KEY' | 'WRONG_THREAD';
export type ErrorCode = WireErrorCode | LocalErrorCode | 'UNKNOWN';

export const codes: Readonly<Record<WireErrorCode | LocalErrorCode, number>>;

export class IpchubError extends Error {
  constructor(code: ErrorCode | number, message?: string, props?: Record<string, unknown>);
  name: 'IpchubError';
  /** Upper-case name, e.g. 'NO_SUCH_PEER'. */
  code: ErrorCode;
  /** The number of the code (8 for NO_SUCH_PEER; 64.. for local codes; -1 if unknown). */
  codeNumber: number;
  /** Id of the frame the error is about (send-error, request errors). */
  id?: number;
  /** Destination name of the failed send or request. */
  to?: string;
  /** The name concerned by a REGISTER/UNREGISTER error or a BAD_NAME. */
  hubName?: string;
  /** The responder, for errors carried by a REPLY (REMOTE_ERROR). */
  from?: Sender;
  /** True when the error was reported by the responder in its REPLY. */
  remote?: boolean;
  /** Undecodable body bytes (BAD_BODY). */
  raw?: Buffer;
}

/**
 * A message body: what codec.js encodes (PROTOCOL.md section 11).
 * Integers decode as number when |v| <= 2^53-1, else bigint; bin decodes
 * as Buffer; ext 1 as Map; ext -1 as Date; undefined is sent as nil.
 */
export type Body =
  | null | undefined | boolean | number | bigint | string | Date
  | Buffer | Uint8Array | ArrayBufferView
  | Body[] | { [key: string]: Body } | Map<Body, Body>;

/** Who sent a message, stamped by the broker (trustworthy). */
export interface Sender {
  /** Sender's primary name, or null for a connection without names. */
  name: string | null;
  /** Sender's connection id (unique for the broker's lifetime). */
  id: number | bigint;
  /** The sender's uid (SO_PEERCRED at its connect), or null if the kernel gave none. */
  uid: number | null;
  /** The key the sender proved, 'ed25519:' + 64 hex digits, or null if it did not authenticate. */
  key: string | null;
}

/** What request() resolves with when `withSender` is set. */
export interface ReplyWithSender<T = any> {
  value: T;
  /** The responder, as the broker stamped it. */
  from: Sender;
}

export interface MessageInfo {
  /** The sender's id for this message. */
  id: number | bigint;
  /** The name it was addressed to (one of ours). */
  to: string;
}

export interface RequestContext {
  /** The requester's id for this request. */
  id: number | bigint;
  /** The name it was addressed to (one of ours). */
  to: string;
  /** Remaining budget in ms when it was delivered, or null for none. */
  timeout: number | null;
  /** Date.now() value of the deadline, or null. */
  deadline: number | null;
}

export interface ReconnectOptions {
  /** First delay in ms (default 50); doubles per failed attempt, with jitter. */
  initialDelay?: number;
  /** Largest delay in ms (default 5000). */
  maxDelay?: number;
}

export interface ConnectOptions {
  /** Primary name; default $IPCHUB_NAME; omit for an anonymous connection. */
  name?: string;
  /** More names to register after `name`. */
  names?: string[];
  /** Broker socket; default $IPCHUB_SOCKET, $XDG_RUNTIME_DIR/ipchub.sock, /tmp/ipchub-<uid>/ipchub.sock. '@x' = abstract. */
  socket?: string;
  /** Handshake and broker-operation timeout in ms (default 5000). */
  timeout?: number;
  /** Client description sent in HELLO (at most 128 bytes). */
  agent?: string;
  /**
   * Secret key file to authenticate with (PROTOCOL.md section 6.7); default
   * $IPCHUB_KEY; '' = do not authenticate even if $IPCHUB_KEY is set.
   * The file is read at each (re)connection and must be a regular file
   * owned by this uid with mode 0600 or stricter (else BAD_KEY).
   */
  key?: string;
  /** Automatic reconnect (default true). */
  reconnect?: boolean | ReconnectOptions;
  /** Backlog in bytes above which send() returns false (default 1 MiB). */
  highWaterMark?: number;
  /** Hard bound on the outbound backlog in bytes (default 64 MiB): beyond it send() throws WOULD_BLOCK. */
  maxBuffered?: number;
  /** Running handle() calls at which the hub stops reading the socket (default 1024). */
  maxConcurrentHandlers?: number;
}

export interface SendOptions {
  /** Set NOWAIT: fail with QUEUE_FULL (send-error) rather than be slowed down. */
  nowait?: boolean;
}

export interface RequestOptions {
  /** Deadline in ms (default 5000); 0 or Infinity = none. */
  timeout?: number;
  /** Abort -> CANCEL frame and rejection with code 'CANCELLED'. */
  signal?: AbortSignal;
  /** Set NOWAIT: QUEUE_FULL instead of waiting for a slow responder. */
  nowait?: boolean;
  /** Resolve with { value, from } (the responder's name, id, uid, key) instead of the value. */
  withSender?: boolean;
}

export interface ReconnectInfo {
  /** Names held again, primary first. */
  names: string[];
  /** Names another connection took meanwhile (dropped from `names`). */
  lost: { name: string; error: IpchubError }[];
  /** Subscriptions and watches restored (same handles, new broker-side ids). */
  subscriptions: number;
  watches: number;
  /** Ones the new broker refused (LIMIT, ...): those handles ended. */
  lostSubscriptions: { handle: Subscription; error: IpchubError }[];
  lostWatches: { handle: Watch; error: IpchubError }[];
}

/** Slow-subscriber policy (PROTOCOL.md section 10.2). */
export type Policy = 'drop-oldest' | 'drop-newest' | 'disconnect' | 'block';

export interface SubscribeOptions {
  /** Default 'drop-oldest'. */
  policy?: Policy;
}

export interface PublicationMeta {
  /** The topic it was published on. */
  topic: string;
  /** The publisher, stamped by the broker. */
  from: Sender;
  /** The subscription it matched (the same object across reconnects). */
  sub: Subscription;
  /** The publisher's frame id. */
  id: number | bigint;
  /** Publications lost right before this one (GAP notices since the last delivery). */
  gap?: number | bigint;
}

export interface GapInfo {
  sub: Subscription;
  count: number | bigint;
}

export type PublicationCallback = (value: any, meta: PublicationMeta) => void;

export class Subscription extends EventEmitter {
  readonly hub: Hub;
  readonly pattern: string;
  readonly policy: Policy;
  /** Broker-side id on the current connection; changes on reconnect. */
  readonly id: number | bigint;
  /** False once unsubscribed (or the hub closed). */
  readonly active: boolean;
  /** Publications lost so far (sum of the GAP counts). */
  readonly drops: number;
  unsubscribe(): Promise<void>;
  on(event: 'publication', listener: PublicationCallback): this;
  on(event: 'gap', listener: (info: GapInfo) => void): this;
  on(event: string | symbol, listener: (...args: any[]) => void): this;
}

export interface PresenceEvent {
  name: string;
  /** owned/unowned: the current state (first answer, and after a reconnect); registered/released: a change. */
  event: 'owned' | 'unowned' | 'registered' | 'released';
  /** released only. */
  reason?: 'unregister' | 'disconnect' | 'revoked';
  /** Connection id of the owner (owned, registered) or of the one releasing it (released). */
  owner?: number | bigint;
}

export class Watch extends EventEmitter {
  readonly hub: Hub;
  readonly name: string;
  readonly id: number | bigint;
  readonly active: boolean;
  /** Connection id owning the name, or null. */
  readonly owner: number | bigint | null;
  unwatch(): Promise<void>;
  on(event: 'presence', listener: (ev: PresenceEvent) => void): this;
  on(event: string | symbol, listener: (...args: any[]) => void): this;
}

export interface WaitForOptions {
  /** ms; default none. Rejects with TIMEOUT. */
  timeout?: number;
  /** Abort -> rejection with CANCELLED. */
  signal?: AbortSignal;
}

export interface PeerInfo {
  name: string;
  conn: number;
  pid: number;
  uid: number;
  /** Whether the owner authenticated. */
  auth: boolean;
  /** The owner's key, 'ed25519:' + 64 hex digits, when it authenticated. */
  key?: string;
}

export type Handler = (body: any, from: Sender, ctx: RequestContext) => Body | Promise<Body>;

export class Hub extends EventEmitter {
  /** Use connect(). */
  constructor(options?: ConnectOptions);
  /** This connection's id (from WELCOME); changes on reconnect. */
  readonly connId: number | bigint | null;
  /** Broker instance id (32 hex digits); changes when the broker restarts. */
  readonly brokerId: string | null;
  /** This hub's public key ('ed25519:HEX') once it authenticated, else null. */
  readonly keyId: string | null;
  /** Largest frame the broker accepts. */
  readonly maxFrame: number;
  readonly socketPath: string;
  /** Names held, primary first. */
  readonly names: string[];
  readonly connected: boolean;

  send(to: string, value: Body, options?: SendOptions): boolean;
  request<T = any>(to: string, value: Body, options: RequestOptions & { withSender: true }): Promise<ReplyWithSender<T>>;
  request<T = any>(to: string, value: Body, options?: RequestOptions): Promise<T>;
  handle(fn: Handler | null): this;
  register(name: string): Promise<void>;
  unregister(name: string): Promise<void>;
  /** Round trip to the broker in ms. */
  ping(): Promise<number>;
  peers(options?: RequestOptions): Promise<PeerInfo[]>;
  close(): Promise<void>;
  ref(): this;
  unref(): this;
  /** Publish on a topic; false = over highWaterMark (wait for 'drain'). Broker refusals: 'send-error'. */
  publish(topic: string, value: Body): boolean;
  subscribe(pattern: string, options?: SubscribeOptions, callback?: PublicationCallback): Promise<Subscription>;
  subscribe(pattern: string, callback: PublicationCallback): Promise<Subscription>;
  watch(name: string, callback?: (ev: PresenceEvent) => void): Promise<Watch>;
  /** Resolves with the owner's connection id once `name` is owned. */
  waitFor(name: string, options?: WaitForOptions): Promise<number | bigint>;
  /** Run at each (re)connection: re-sends subscriptions and watches; resolves with the refused ones. */
  restoreState(): Promise<{ handle: Subscription | Watch; error: IpchubError }[]>;

  on(event: 'message', listener: (msg: any, from: Sender, info: MessageInfo) => void): this;
  on(event: 'message-error', listener: (err: IpchubError) => void): this;
  on(event: 'send-error', listener: (err: IpchubError) => void): this;
  on(event: 'reply-error', listener: (err: IpchubError) => void): this;
  on(event: 'name-lost', listener: (err: IpchubError) => void): this;
  on(event: 'drain', listener: () => void): this;
  on(event: 'disconnect', listener: (err: IpchubError) => void): this;
  on(event: 'reconnect', listener: (gapMs: number, info: ReconnectInfo) => void): this;
  on(event: 'close', listener: (err?: IpchubError) => void): this;
  on(event: 'publication', listener: PublicationCallback): this;
  on(event: 'gap', listener: (info: GapInfo) => void): this;
  on(event: 'presence', listener: (ev: PresenceEvent, watch: Watch) => void): this;
  on(event: string | symbol, listener: (...args: any[]) => void): this;
  once(event: 'message', listener: (msg: any, from: Sender, info: MessageInfo) => void): this;
  once(event: 'message-error', listener: (err: IpchubError) => void): this;
  once(event: 'send-error', listener: (err: IpchubError) => void): this;
  once(event: 'reply-error', listener: (err: IpchubError) => void): this;
  once(event: 'name-lost', listener: (err: IpchubError) => void): this;
  once(event: 'drain', listener: () => void): this;
  once(event: 'disconnect', listener: (err: IpchubError) => void): this;
  once(event: 'reconnect', listener: (gapMs: number, info: ReconnectInfo) => void): this;
  once(event: 'close', listener: (err?: IpchubError) => void): this;
  once(event: 'publication', listener: PublicationCallback): this;
  once(event: 'gap', listener: (info: GapInfo) => void): this;
  once(event: 'presence', listener: (ev: PresenceEvent, watch: Watch) => void): this;
  once(event: string | symbol, listener: (...args: any[]) => void): this;
}

export function connect(options?: ConnectOptions): Promise<Hub>;

/**
 * Create an Ed25519 key pair and write the secret to `path` in the C
 * library's format (mode 0600, never overwrites: BAD_KEY if it exists).
 * Resolves with the public key, 'ed25519:' + 64 hex digits, for the
 * broker's policy file.
 */
export function keygen(path: string): Promise<string>;

export interface ForkOptions {
  /** Name for the child: its environment gets IPCHUB_NAME. */
  name?: string;
  /** Hub whose socket the child joins (else `socket`, else the default path). */
  hub?: Hub;
  socket?: string;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  execPath?: string;
  execArgv?: string[];
  silent?: boolean;
  stdio?: StdioOptions;
  detached?: boolean;
  uid?: number;
  gid?: number;
}

/** Like child_process.fork() but with no IPC channel: the child joins the hub. */
export function fork(modulePath: string, args?: readonly string[], options?: ForkOptions): ChildProcess;
export function fork(modulePath: string, options?: ForkOptions): ChildProcess;

/** The socket path connect() would use (PROTOCOL.md section 1). */
export function resolveSocketPath(explicit?: string): string;

/** Encode a body as msgpack (the codec hub.send uses). */
export function encode(value: Body): Uint8Array;
/** Decode one msgpack value with the hub's rules. */
export function decode(bytes: Uint8Array): any;
