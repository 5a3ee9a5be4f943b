/*
 * ipchub.h - the ipchub client library (libipchub), public API.
 *
 * An `ipchub` handle is one connection to the broker (ipchubd). Through it
 * a process registers names, sends one-way messages to names, makes
 * requests with deadlines and answers requests addressed to its names.
 * Message bodies are exactly one msgpack value, passed as encoded bytes;
 * ipchub_msg_unpack() and the ipchub_pack_*() helpers bridge to msgpack-c.
 *
 * Errors: every function that can fail returns an int that is IPCHUB_OK (0)
 * or one of the IPCHUB_E_* codes below; ipchub_strerror() describes a code
 * and ipchub_code_name() gives its stable upper-case name. Codes 1..63 are
 * the protocol's own (the broker sent them); 64 and up arise locally. A
 * function that fails leaves its output parameters untouched.
 *
 * Blocking model: calls block at most for their timeout. Sends are queued
 * in the handle and written in batches: a send returns once the frame is
 * queued, the queue is written when it passes IPCHUB_CLIENT_FLUSH_AT bytes,
 * on ipchub_flush(), and automatically before any call that waits (recv,
 * request, register). A send blocks (writing, and reading what arrives
 * meanwhile) only while more than the outbound high-water mark is queued.
 *
 * Ownership: ipchub_connect() gives the caller an `ipchub *` to free with
 * ipchub_close(). Every `ipchub_msg *` handed out belongs to the caller,
 * who frees it with ipchub_msg_free(); pointers returned by ipchub_msg_*()
 * accessors borrow from the message and live as long as it does. Strings
 * and body buffers passed in are copied before the call returns.
 *
 * Threads: no global state. A handle is not thread-safe: use one handle
 * from one thread at a time (distinct handles are independent, so one
 * handle per thread is fine). Messages may be passed between threads.
 *
 * Signals: calls that wait return IPCHUB_E_INTERRUPTED when a signal
 * handler interrupts them (EINTR), so a program can stop on SIGINT. The
 * library never changes signal dispositions (it writes with MSG_NOSIGNAL).
 *
 * Connection loss: once the connection has failed every call returns the
 * same code: IPCHUB_E_CLOSED after EOF or a BYE without a code, the code a
 * BYE or fatal ERROR carried (e.g. IPCHUB_E_SHUTTING_DOWN when the broker
 * stops), IPCHUB_E_BAD_FRAME/IPCHUB_E_PROTOCOL when the broker sent
 * something malformed or out of place, IPCHUB_E_IO for socket errors.
 * ipchub_recv() still hands out what was received before that.
 */
#ifndef IPCHUB_H
#define IPCHUB_H

#include <stddef.h>
#include <stdint.h>

#include <msgpack.h>

#ifdef __cplusplus
extern "C" {
#endif

#define IPCHUB_VERSION_STRING "0.1.0"

enum ipchub_code {
	IPCHUB_OK = 0,
	/* Protocol codes (same numbers on the wire; see PROTOCOL.md). */
	IPCHUB_E_BAD_FRAME = 1,
	IPCHUB_E_TOO_LARGE = 2,
	IPCHUB_E_UNSUPPORTED_VERSION = 3,
	IPCHUB_E_PROTOCOL = 4,
	IPCHUB_E_BAD_NAME = 5,
	IPCHUB_E_NAME_TAKEN = 6,
	IPCHUB_E_NOT_OWNER = 7,
	IPCHUB_E_NO_SUCH_PEER = 8,
	IPCHUB_E_PEER_GONE = 9,
	IPCHUB_E_TIMEOUT = 10,
	IPCHUB_E_QUEUE_FULL = 11,
	IPCHUB_E_LIMIT = 12,
	IPCHUB_E_NOT_AUTHORIZED = 13,
	IPCHUB_E_AUTH_FAILED = 14,
	IPCHUB_E_NO_SUCH_REQUEST = 15,
	IPCHUB_E_REMOTE_ERROR = 16,
	IPCHUB_E_CANCELLED = 17,
	IPCHUB_E_SHUTTING_DOWN = 18,
	IPCHUB_E_INTERNAL = 19,
	IPCHUB_E_BAD_BODY = 20,
	IPCHUB_E_BAD_FILTER = 21,  /* ipchub_monitor(): malformed filter */
	/* Local codes: never sent on the wire. */
	IPCHUB_E_IO = 64,          /* socket error; connection is unusable */
	IPCHUB_E_CLOSED = 65,      /* broker closed the connection */
	IPCHUB_E_NOMEM = 66,       /* allocation failed */
	IPCHUB_E_INVALID = 67,     /* bad argument from the caller */
	IPCHUB_E_WOULD_BLOCK = 68, /* outbound queue full (non-blocking use) */
	IPCHUB_E_NO_BROKER = 69,   /* no broker listening at the socket path */
	IPCHUB_E_INTERRUPTED = 70, /* a signal interrupted the wait */
	IPCHUB_E_BAD_KEY = 71      /* key file missing, malformed or not 0600 */
};

/* Stable upper-case name of a code ("NO_SUCH_PEER"); "UNKNOWN" otherwise. */
const char *ipchub_code_name(int code);
/* One-sentence description of a code. Never NULL. */
const char *ipchub_strerror(int code);

/* Message kinds as delivered. */
enum ipchub_kind {
	IPCHUB_KIND_SEND = 11,    /* one-way message */
	IPCHUB_KIND_REQUEST = 12, /* expects ipchub_reply() */
	IPCHUB_KIND_REPLY = 13,   /* answer to our request */
	IPCHUB_KIND_PUBLISH = 22, /* publication matching a subscription */
	IPCHUB_KIND_GAP = 23,     /* publications lost: ipchub_msg_gap_count() */
	IPCHUB_KIND_PRESENCE = 26, /* owner of a watched name (changed) */
	IPCHUB_KIND_MONITOR = 27  /* copy of a frame (ipchub_monitor) */
};

typedef struct ipchub ipchub;
typedef struct ipchub_msg ipchub_msg;

/* ---- connection ---------------------------------------------------- */

struct ipchub_opts {
	/* Socket path; NULL: $IPCHUB_SOCKET, $XDG_RUNTIME_DIR/ipchub.sock,
	 * /tmp/ipchub-<uid>/ipchub.sock. "@name" is an abstract socket. */
	const char *socket;
	/* Handshake deadline in ms; 0 means 5000. */
	int timeout_ms;
	/* Free-form description sent to the broker (shown by operators'
	 * tools); NULL for "libipchub/<version>". */
	const char *agent;
	/* Secret key file to authenticate with (written by `ipchub keygen`;
	 * see SECURITY.md); NULL: $IPCHUB_KEY if set and non-empty, else no
	 * authentication. The file must be owned by the caller's uid and
	 * have no group/other permission bits. The secret is read, used for
	 * one signature during the handshake and wiped; it is not kept. */
	const char *key;
};

/* Connect and complete the handshake. opts may be NULL for defaults.
 * Returns IPCHUB_OK and a handle in *out, IPCHUB_E_NO_BROKER when nothing
 * listens at the path, IPCHUB_E_UNSUPPORTED_VERSION, IPCHUB_E_TIMEOUT,
 * IPCHUB_E_IO, IPCHUB_E_NOMEM or IPCHUB_E_INVALID. With a key:
 * IPCHUB_E_BAD_KEY when the key file cannot be used (checked before
 * connecting), IPCHUB_E_AUTH_FAILED when the broker refused the proof
 * (its key is not in the broker's policy, or the proof was wrong). */
int ipchub_connect(const struct ipchub_opts *opts, ipchub **out);

/* Flush what is queued (bounded by a short deadline), say BYE, close the
 * socket and free the handle. Messages not yet received are freed.
 * NULL is accepted. */
void ipchub_close(ipchub *h);

/* The connection id the broker gave us, and the resolved socket path. */
uint64_t ipchub_conn_id(const ipchub *h);
const char *ipchub_socket_path(const ipchub *h);
/* Largest frame the broker accepts (header + body). */
size_t ipchub_max_frame(const ipchub *h);

/* The socket fd, for poll()ing readability before ipchub_recv(h, 0, ..).
 * Owned by the handle: do not close or read it. Messages already queued
 * in the handle (e.g. those that arrived during ipchub_request()) do not
 * make the fd readable: call ipchub_recv(h, 0, ..) until it returns
 * IPCHUB_E_TIMEOUT before polling. */
int ipchub_fd(const ipchub *h);

/* Round trip to the broker (PING/PONG). *rtt_us (may be NULL) receives
 * the measured round-trip time in microseconds. */
int ipchub_ping(ipchub *h, int timeout_ms, uint64_t *rtt_us);

/* ---- names --------------------------------------------------------- */

/* Claim a name; waits for the broker's answer (at most timeout_ms, -1 for
 * no limit). IPCHUB_E_BAD_NAME, IPCHUB_E_NAME_TAKEN, IPCHUB_E_LIMIT,
 * IPCHUB_E_NOT_AUTHORIZED, IPCHUB_E_TIMEOUT, or a connection error.
 * Messages arriving meanwhile are queued for ipchub_recv(). */
int ipchub_register(ipchub *h, const char *name, int timeout_ms);
/* Release a name held by this connection (IPCHUB_E_NOT_OWNER otherwise). */
int ipchub_unregister(ipchub *h, const char *name, int timeout_ms);

/* ---- one-way messages -------------------------------------------- */

/* Queue a one-way message for `to`. body/len must be exactly one msgpack
 * value (validated here: IPCHUB_E_BAD_BODY) or NULL/0 for none. When more
 * than the outbound high-water mark is queued, waits (without deadline,
 * reading meanwhile; IPCHUB_E_INTERRUPTED on a signal, nothing queued)
 * until the broker has taken enough. Reserved names (ipchub.*) may be
 * addressed. Delivery
 * failures (e.g. IPCHUB_E_NO_SUCH_PEER) arrive later through ipchub_recv()
 * as an error message carrying this send's id, stored in *id_out if not
 * NULL. Returns IPCHUB_E_TOO_LARGE if the frame exceeds the broker's
 * maximum, IPCHUB_E_BAD_NAME for a malformed name. */
int ipchub_send(ipchub *h, const char *to, const void *body, size_t len,
		uint64_t *id_out);

/* Write everything queued; waits at most timeout_ms (-1: no limit). */
int ipchub_flush(ipchub *h, int timeout_ms);

/* ---- request / reply --------------------------------------------- */

/* Send a request and wait for its reply. The deadline travels with the
 * request: the broker answers IPCHUB_E_TIMEOUT when it passes and drops a
 * late reply. timeout_ms > 0 required (clamped to 24 h); the library
 * itself gives up 500 ms after the deadline (IPCHUB_E_TIMEOUT) and then
 * cancels the request. On IPCHUB_OK *reply is the reply message (kind
 * IPCHUB_KIND_REPLY); reply may be NULL to discard it. Whenever an answer
 * arrived, *reply receives it even if the call fails: an error reply from
 * the responder (returns its code, normally IPCHUB_E_REMOTE_ERROR) or the
 * broker's error (kind 10, e.g. IPCHUB_E_NO_SUCH_PEER, IPCHUB_E_TIMEOUT),
 * so ipchub_msg_error_text() can explain it; initialise *reply to NULL
 * and free it if set. Local failures leave *reply untouched. Other
 * messages that arrive meanwhile are queued for ipchub_recv(). */
int ipchub_request(ipchub *h, const char *to, const void *body, size_t len,
		   int timeout_ms, ipchub_msg **reply);

/* Answer a request message. Returns IPCHUB_E_INVALID if req is not a
 * request. The reply is queued like a send. */
int ipchub_reply(ipchub *h, const ipchub_msg *req, const void *body,
		 size_t len);
/* Answer a request with a failure: code (a protocol code 1..63, usually
 * IPCHUB_E_REMOTE_ERROR; else IPCHUB_E_INVALID) and a message (NULL for
 * none; truncated to 1024 bytes at a UTF-8 character boundary). */
int ipchub_reply_error(ipchub *h, const ipchub_msg *req, int code,
		       const char *message);

/* ---- receiving ----------------------------------------------------- */

/* Take the next message: a send or request addressed to one of our
 * names, or an asynchronous error (kind 10, ipchub_msg_error() != 0: a
 * send or reply that could not be delivered; ipchub_msg_id() is that
 * frame's id and ipchub_msg_to() its destination when the broker said).
 * Answers to calls that already gave up (timed out or interrupted) are
 * dropped, never delivered here. Waits at most timeout_ms (0: poll, -1:
 * no limit). Returns IPCHUB_OK with *out set, IPCHUB_E_TIMEOUT,
 * IPCHUB_E_INTERRUPTED, or a connection error (see above). */
int ipchub_recv(ipchub *h, int timeout_ms, ipchub_msg **out);

/* ---- messages ------------------------------------------------------ */

int ipchub_msg_kind(const ipchub_msg *m); /* IPCHUB_KIND_*, or 10 (error) */
uint64_t ipchub_msg_id(const ipchub_msg *m);
/* Sender's name as stamped by the broker, or NULL if it had none. */
const char *ipchub_msg_from(const ipchub_msg *m);
/* Sender's connection id as stamped by the broker (always set). */
uint64_t ipchub_msg_from_id(const ipchub_msg *m);
/* Name the message was addressed to (sends and requests). */
const char *ipchub_msg_to(const ipchub_msg *m);
/* Encoded body (one msgpack value) and its length; NULL/0 if none. */
const void *ipchub_msg_body(const ipchub_msg *m, size_t *len);
/* For errors and error replies: the code (0 if not an error) and text. */
int ipchub_msg_error(const ipchub_msg *m);
const char *ipchub_msg_error_text(const ipchub_msg *m);
/* Request deadline in ms as the broker forwarded it (0: none). */
uint32_t ipchub_msg_timeout(const ipchub_msg *m);
/* Sender's uid as the kernel told the broker (SO_PEERCRED, read when the
 * sender connected), or UINT32_MAX when the message carries none (the
 * broker's own replies, errors). */
uint32_t ipchub_msg_uid(const ipchub_msg *m);
/* Sender's verified key id - the Ed25519 public key (32 bytes) it proved
 * during the handshake - or NULL when the sender did not authenticate.
 * *len (may be NULL) receives its length (0 when NULL). Borrowed from m.
 * Its text form is "ed25519:" + lowercase hex, as `ipchub keygen`
 * prints it. */
const uint8_t *ipchub_msg_key_id(const ipchub_msg *m, size_t *len);
void ipchub_msg_free(ipchub_msg *m); /* NULL accepted */

/* Unpack the body into msgpack-c objects after validating it with
 * ipchub's bounded reader (ipchub decodes it itself: msgpack-c's unpacker
 * nests only 32 levels, bodies may nest 64). *out must be initialised
 * with msgpack_unpacked_init(); the caller destroys it. Strings, bin and
 * ext payloads in the tree point into the message's body, so m must
 * outlive the use of *out. IPCHUB_E_BAD_BODY if the body is malformed or
 * absent, IPCHUB_E_NOMEM; *out is untouched on failure. */
int ipchub_msg_unpack(const ipchub_msg *m, msgpack_unpacked *out);

/* Same for body bytes held by the caller (e.g. before sending them);
 * the tree points into buf, which must outlive its use. */
int ipchub_body_unpack(const void *buf, size_t len, msgpack_unpacked *out);

/* Validate that buf[0..len) is exactly one msgpack value as the broker
 * requires (nesting at most 32 deep). IPCHUB_OK or IPCHUB_E_BAD_BODY. */
int ipchub_body_check(const void *buf, size_t len);

/* ---- publish / subscribe ------------------------------------------- */

/* What the broker does when a subscriber falls behind (its queue in the
 * broker is full). Loss is never silent: the subscriber receives an
 * IPCHUB_KIND_GAP message with the count, where the loss happened. */
enum ipchub_policy {
	IPCHUB_POLICY_DROP_OLDEST = 0, /* drop the oldest queued publication */
	IPCHUB_POLICY_DROP_NEWEST = 1, /* drop the incoming publication */
	IPCHUB_POLICY_DISCONNECT = 2,  /* broker closes us (QUEUE_FULL) */
	IPCHUB_POLICY_BLOCK = 3        /* slow the publishers down instead */
};

/* Subscribe to topics matching pattern: dot-separated segments where "*"
 * matches exactly one segment and a final ">" one or more ("a.*.c",
 * "a.>" - that is, a ">" segment). Waits for the broker's answer (timeout_ms, -1: none). On
 * success *sub (may be NULL) receives the subscription id, which every
 * delivery (ipchub_msg_sub) and gap notice carries. IPCHUB_E_BAD_NAME
 * (malformed pattern), IPCHUB_E_INVALID (unknown policy), IPCHUB_E_LIMIT,
 * IPCHUB_E_TIMEOUT, or a connection error. Deliveries come through
 * ipchub_recv() as IPCHUB_KIND_PUBLISH (and IPCHUB_KIND_GAP). */
int ipchub_subscribe(ipchub *h, const char *pattern, int policy,
		     int timeout_ms, uint64_t *sub);
/* End a subscription (or a monitor tap). IPCHUB_E_NO_SUCH_REQUEST if
 * there is none with this id. Publications already queued to us may
 * still arrive. */
int ipchub_unsubscribe(ipchub *h, uint64_t sub, int timeout_ms);

/* Publish body (one msgpack value, or NULL/0) on topic (a name: no
 * wildcards). Queued like ipchub_send(): no acknowledgement; a refusal
 * (IPCHUB_E_BAD_NAME for a reserved topic, IPCHUB_E_BAD_BODY) arrives
 * through ipchub_recv() as an error carrying the publication's id. With
 * no subscriber the publication is simply not delivered (not an error). */
int ipchub_publish(ipchub *h, const char *topic, const void *body,
		   size_t len);

/* ---- presence ------------------------------------------------------- */

/* Event and reason of IPCHUB_KIND_PRESENCE messages. */
enum ipchub_presence_event {
	IPCHUB_PRESENCE_OWNED = 1,      /* first answer: the name has an owner */
	IPCHUB_PRESENCE_UNOWNED = 2,    /* first answer: nobody owns it */
	IPCHUB_PRESENCE_REGISTERED = 3, /* change: now owned by ..._owner() */
	IPCHUB_PRESENCE_RELEASED = 4    /* change: ..._owner() let it go */
};
enum ipchub_presence_reason {
	IPCHUB_REASON_NONE = 0,
	IPCHUB_REASON_UNREGISTER = 1, /* the owner unregistered it */
	IPCHUB_REASON_DISCONNECT = 2, /* the owner's connection closed */
	IPCHUB_REASON_REVOKED = 3     /* the broker's policy took it away */
};

/* Watch a name: waits for the broker's first answer, the current state
 * (IPCHUB_PRESENCE_OWNED or _UNOWNED), which is also queued for
 * ipchub_recv(), followed there by every later change, in order, with
 * nothing missed in between. *watch (may be NULL) receives the watch id
 * (ipchub_msg_id() of its PRESENCE messages). IPCHUB_E_BAD_NAME,
 * IPCHUB_E_LIMIT, IPCHUB_E_TIMEOUT or a connection error. */
int ipchub_watch(ipchub *h, const char *name, int timeout_ms,
		 uint64_t *watch);
/* Stop a watch. IPCHUB_E_NO_SUCH_REQUEST if there is none with this id. */
int ipchub_unwatch(ipchub *h, uint64_t watch, int timeout_ms);

/* ---- monitor --------------------------------------------------------- */

/* Tap copies of the broker's traffic (frames it reads and writes, except
 * this connection's own), filtered by filter (NULL or "" for all; see
 * PROTOCOL.md section 10.4: space-separated terms such as
 * "kind=REQUEST,REPLY name=svc topic=sensors.*"). Allowed to root and to
 * the broker's own user (and whom its policy allows); others get
 * IPCHUB_E_NOT_AUTHORIZED. IPCHUB_E_BAD_FILTER, IPCHUB_E_LIMIT.
 * Copies come through ipchub_recv() as IPCHUB_KIND_MONITOR; a monitor
 * that falls behind loses copies, told by IPCHUB_KIND_GAP. *tap (may be
 * NULL) receives the tap id, to pass to ipchub_unsubscribe(). */
int ipchub_monitor(ipchub *h, const char *filter, int timeout_ms,
		   uint64_t *tap);

/* ---- accessors for pub/sub, presence and monitor messages ----------- */

/* PUBLISH: the topic it was published on; else NULL. */
const char *ipchub_msg_topic(const ipchub_msg *m);
/* PUBLISH, GAP, MONITOR: the subscription (or tap) id; else 0. */
uint64_t ipchub_msg_sub(const ipchub_msg *m);
/* GAP: how many publications (or monitor copies) were lost here. */
uint64_t ipchub_msg_gap_count(const ipchub_msg *m);
/* PRESENCE: the watched name, the event (enum ipchub_presence_event),
 * the reason (enum ipchub_presence_reason, RELEASED only) and the
 * owner's connection id (0 when UNOWNED). */
const char *ipchub_msg_presence_name(const ipchub_msg *m);
int ipchub_msg_presence_event(const ipchub_msg *m);
int ipchub_msg_presence_reason(const ipchub_msg *m);
uint64_t ipchub_msg_presence_owner(const ipchub_msg *m);
/* MONITOR: the tapped frame (its bytes after the length prefix: header,
 * then body) in *frame and *len; the direction (1: the broker read it from
 * the connection, 2: wrote it to it) is returned and the connection id
 * stored in *conn (may be NULL). When the frame was too large to copy
 * whole, only its header is given and *full_len (may be NULL) receives
 * its real length, else 0. Returns 0 (and leaves outputs untouched) if
 * m is not a monitor copy. */
int ipchub_msg_monitor_frame(const ipchub_msg *m, const void **frame,
			     size_t *len, uint64_t *conn, uint64_t *full_len);

/* ---- packing helpers --------------------------------------------- */

/* A growable buffer with a msgpack-c packer writing into it:
 *   ipchub_pack pk; ipchub_pack_init(&pk);
 *   msgpack_pack_map(&pk.pk, 1); ...;
 *   ipchub_send(h, "svc", pk.buf.data, pk.buf.size, NULL);
 *   ipchub_pack_destroy(&pk);
 */
typedef struct ipchub_pack {
	msgpack_sbuffer buf;
	msgpack_packer pk;
} ipchub_pack;

void ipchub_pack_init(ipchub_pack *p);
void ipchub_pack_reset(ipchub_pack *p); /* empty it for reuse */
void ipchub_pack_destroy(ipchub_pack *p);
/* Shorthand for a body that is a single string. */
int ipchub_pack_str(ipchub_pack *p, const char *s);

#ifdef __cplusplus
}
#endif

#endif
