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
 * Batching (PROTOCOL.md 6.3.1): when the broker accepts batches, a send
 * (ipchub_send, ipchub_async_send) to the same name as the SEND still
 * waiting, unwritten, at the end of the queue is appended to that frame
 * (bodies up to IPCHUB_CLIENT_BATCH_BODY_MAX, frames up to
 * IPCHUB_CLIENT_BATCH_BYTES). This only merges what is already waiting;
 * when the queue is written does not change, so it never delays a
 * message. Batched deliveries are split on arrival. Nothing else changes
 * for the application: each message keeps its own id, is received as its
 * own ipchub_msg, and each undelivered one gets its own error.
 *
 * Ownership: ipchub_connect() gives the caller an `ipchub *` to free with
 * ipchub_close(). Every `ipchub_msg *` handed out belongs to the caller,
 * who frees it with ipchub_msg_free(); pointers returned by ipchub_msg_*()
 * accessors borrow from the message and live as long as it does. The one
 * exception is ipchub_recv_lent(), which lends a `const ipchub_msg *`
 * that the handle owns until its next call (see there). Strings
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
	IPCHUB_E_FDS_UNSUPPORTED = 22, /* receiver takes no descriptors */
	IPCHUB_E_MEMFD_UNSEALED = 23, /* memfd body not sealed / not a memfd */
	IPCHUB_E_MEMFD_SIZE = 24,  /* memfd body size differs from its frame */
	IPCHUB_E_MEMFD_INLINE = 25, /* receiver without MEMFD, body > max_frame */
	/* Local codes: never sent on the wire. */
	IPCHUB_E_IO = 64,          /* socket error; connection is unusable */
	IPCHUB_E_CLOSED = 65,      /* broker closed the connection */
	IPCHUB_E_NOMEM = 66,       /* allocation failed */
	IPCHUB_E_INVALID = 67,     /* bad argument from the caller */
	IPCHUB_E_WOULD_BLOCK = 68, /* outbound queue full (non-blocking use) */
	IPCHUB_E_NO_BROKER = 69,   /* no broker listening at the socket path */
	IPCHUB_E_INTERRUPTED = 70, /* a signal interrupted the wait */
	IPCHUB_E_BAD_KEY = 71,     /* key file missing, malformed or not 0600 */
	IPCHUB_E_WRONG_THREAD = 72 /* event API: called from a non-owner thread */
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
 * or buffered in the handle (e.g. those that arrived during
 * ipchub_request()) do not make the fd readable: call ipchub_recv(h, 0,
 * ..) (or ipchub_recv_lent) until it returns IPCHUB_E_TIMEOUT before
 * polling. */
int ipchub_fd(const ipchub *h);

/* Busy-polling: while a call waits for the broker (ipchub_recv,
 * ipchub_request, ...), check the socket without blocking for up to
 * spin_us microseconds before going to sleep in poll(). 0, the default,
 * never spins. It trades CPU for latency: an answer that arrives within
 * the spin is taken without the wake-up of a sleeping process, which on a
 * VM can cost tens of microseconds (BENCHMARKS.md, round trip: 100 us
 * took a 64 B round trip from about 65 to 45 us on an idle 2-CPU
 * machine). It helps only with a CPU to spare: a spinning client takes
 * the CPU from the broker and its peers on a busy machine. Returns
 * IPCHUB_OK, or IPCHUB_E_INVALID above IPCHUB_CLIENT_SPIN_MAX_US (1000). */
int ipchub_set_spin(ipchub *h, unsigned spin_us);

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
 * request. The reply is queued like a send; when req is lent by
 * ipchub_recv_lent() it is queued before the call waits for room in the
 * outbound queue (so an IPCHUB_E_INTERRUPTED there leaves it queued). */
int ipchub_reply(ipchub *h, const ipchub_msg *req, const void *body,
		 size_t len);
/* Answer a request with a failure: code (a protocol code 1..63, usually
 * IPCHUB_E_REMOTE_ERROR; else IPCHUB_E_INVALID) and a message (NULL for
 * none; truncated to 1024 bytes at a UTF-8 character boundary). */
int ipchub_reply_error(ipchub *h, const ipchub_msg *req, int code,
		       const char *message);

/* ---- sending from the caller's memory ------------------------------ */

/* Called once when the library no longer needs a buffer handed to
 * ipchub_send_buf(): buf is that buffer, arg the argument given with it. */
typedef void (*ipchub_free_fn)(void *buf, void *arg);

/* ipchub_send() without a copy: the body is written to the socket from
 * the caller's buffer (writev, after the frame's header), never copied
 * into the outbound queue. On IPCHUB_OK the library owns body: the caller
 * must neither change nor free it until free_fn(body, arg) is called
 * (free_fn may be NULL when the caller tracks the buffer otherwise), which
 * happens exactly once, when its last byte has been written or, at the
 * latest, in ipchub_close() (then maybe unwritten). On any error the
 * buffer stays the caller's and free_fn is not called. The body is
 * validated as for ipchub_send() and must not be empty (IPCHUB_E_INVALID
 * for body NULL or len 0); the message is never batched. It pays off for
 * large bodies (tens of KiB and more), where the copy is what a send
 * costs; returns as ipchub_send(). Bytes queued this way count towards
 * the outbound high-water mark. */
int ipchub_send_buf(ipchub *h, const char *to, void *body, size_t len,
		    ipchub_free_fn free_fn, void *arg, uint64_t *id_out);

/* ---- file descriptors (PROTOCOL.md 6.6) ----------------------------- */

/* ipchub_send(), ipchub_request() and ipchub_reply() with 1..16
 * (IPCHUB_MAX_FDS_PER_FRAME) open file descriptors passed along
 * (SCM_RIGHTS through the broker). The caller keeps its descriptors: the
 * library duplicates them (close-on-exec) when the frame is queued and
 * closes its duplicates once they are written. The receiver gets its own
 * descriptors for the same open files (ipchub_msg_fds()). A receiver
 * that does not take descriptors (it did not announce FDS: the Node
 * client, the event API) never gets the message: the sender gets
 * IPCHUB_E_FDS_UNSUPPORTED (asynchronously for a send, as the answer for
 * a request) and the broker closes the descriptors. A receiver with
 * --max-fds-per-conn descriptors queued slows its senders down like a
 * full queue. nfds 0 is the call without descriptors. Extra returns:
 * IPCHUB_E_INVALID (nfds over 16, fds NULL with nfds > 0, a descriptor
 * that is not open), IPCHUB_E_NOMEM. On Windows (named pipes carry no
 * descriptors) nfds > 0 returns IPCHUB_E_FDS_UNSUPPORTED at once, and the
 * library announces no FDS. */
int ipchub_send_fds(ipchub *h, const char *to, const void *body, size_t len,
		    const int *fds, size_t nfds, uint64_t *id_out);
int ipchub_request_fds(ipchub *h, const char *to, const void *body,
		       size_t len, const int *fds, size_t nfds, int timeout_ms,
		       ipchub_msg **reply);
int ipchub_reply_fds(ipchub *h, const ipchub_msg *req, const void *body,
		     size_t len, const int *fds, size_t nfds);

/* The descriptors that came with m: returns their count (0 if none) and
 * sets *fds (may be NULL) to them. The message owns them: they are
 * closed by ipchub_msg_free() (for a lent message, at the handle's next
 * call) unless taken with ipchub_msg_take_fd(), which hands descriptor i
 * to the caller (it stays in the array as -1) and returns it, or -1 if i
 * is out of range or already taken. Received descriptors are
 * close-on-exec. */
size_t ipchub_msg_fds(const ipchub_msg *m, const int **fds);
int ipchub_msg_take_fd(ipchub_msg *m, size_t i);

/* ---- memfd bodies (PROTOCOL.md 6.10) ----------------------------------- */

/* Large bodies skip the socket: a body of at least the connection's memfd
 * threshold (default IPCHUB_MEMFD_MIN_DEFAULT, 256 KiB) that ipchub_send(),
 * ipchub_request() or ipchub_reply() queue without descriptors is copied
 * once into a sealed memfd (F_SEAL_WRITE|SHRINK|GROW|SEAL), which travels
 * as the frame's one descriptor; the receiver maps it read-only and
 * ipchub_msg_body() returns the mapping. Such bodies may exceed the
 * broker's max_frame, up to IPCHUB_MAX_MEMFD_BODY (1 GiB). This happens
 * only when the broker announced MEMFD; a receiver that did not (the
 * Node client, the event API, older clients) gets the body inline from
 * the broker, or, when it is over max_frame, the sender gets
 * IPCHUB_E_MEMFD_INLINE. A memfd whose seals or size are wrong is closed
 * and answered with IPCHUB_E_MEMFD_UNSEALED / IPCHUB_E_MEMFD_SIZE: by the
 * broker to the sender; by libipchub, should the broker pass one on, as
 * the message turned into an error (kind 10, or a REPLY with the code).
 *
 * Set the threshold in bytes (at least IPCHUB_MEMFD_MIN_MIN, 4096), or 0
 * to send every body inline. IPCHUB_OK or IPCHUB_E_INVALID. */
int ipchub_set_memfd_min(ipchub *h, size_t min);

/* No copy at all: a writable buffer of len bytes for a body that the
 * caller writes in place (one msgpack value, e.g. a bin header then the
 * data) and sends with ipchub_send_body(). At or above the threshold (and
 * with a broker that takes memfd bodies) it is a shared mapping of a new
 * memfd; below it, heap memory sent inline. The handle owns the buffer;
 * the caller may write it until it passes it to ipchub_send_body() or
 * ipchub_body_free(), or closes the handle (which frees it). Returns
 * IPCHUB_OK with *out set, IPCHUB_E_INVALID (len 0, out NULL),
 * IPCHUB_E_TOO_LARGE (inline and over max_frame), IPCHUB_E_NOMEM, or the
 * connection's error. */
int ipchub_body_alloc(ipchub *h, size_t len, void **out);

/* Send the whole buffer body (from ipchub_body_alloc() on h) to `to` as a
 * one-way message, like ipchub_send(): a memfd buffer is unmapped, sealed
 * and passed on without a copy. The buffer is consumed whatever the
 * result (do not touch it afterwards). IPCHUB_E_INVALID if body is not a
 * live allocation of h; IPCHUB_E_BAD_BODY if it is not exactly one
 * msgpack value; otherwise as ipchub_send(). */
int ipchub_send_body(ipchub *h, const char *to, void *body, uint64_t *id_out);

/* Give back a buffer from ipchub_body_alloc() unsent. NULL, or a pointer
 * that is not a live allocation of h, is ignored. */
void ipchub_body_free(ipchub *h, void *body);

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

/* Same as ipchub_recv() - same messages, order, waiting and return codes
 * - but the message is lent, not given: a message that comes straight
 * from the socket is not allocated or copied; it points into the
 * handle's receive buffer (header fields from the decoded frame, the
 * body in place in the received frame). Messages the handle had already
 * queued (those that arrived during ipchub_request() or another call,
 * asynchronous errors) are lent from its queue.
 *
 * The message and everything its accessors return stay valid until the
 * next call on h (any ipchub_* function taking h, including
 * ipchub_close()); the accessors and ipchub_msg_unpack() work on it as on
 * any message. The one use allowed inside that next call: the message may
 * be the req of ipchub_reply()/ipchub_reply_error() on h, and the body
 * and text passed there may point into it (e.g. echoing its body); they
 * are copied before the loan ends. For any other use (sending its body
 * elsewhere with ipchub_send(), keeping it) take a copy first with
 * ipchub_msg_dup(). Do not free it: ipchub_msg_free() on a lent message
 * is ignored while it is lent (the handle frees it); after the next call
 * the pointer must not be used at all. Mixing ipchub_recv() and
 * ipchub_recv_lent() on one handle is fine. */
int ipchub_recv_lent(ipchub *h, int timeout_ms, const ipchub_msg **out);

/* An owned copy of any message (lent or not), freed with
 * ipchub_msg_free(). Returns IPCHUB_OK, IPCHUB_E_NOMEM or
 * IPCHUB_E_INVALID (m or out NULL); *out is untouched on failure. */
int ipchub_msg_dup(const ipchub_msg *m, ipchub_msg **out);

/* ---- messages ------------------------------------------------------ */

int ipchub_msg_kind(const ipchub_msg *m); /* IPCHUB_KIND_*, or 10 (error) */
uint64_t ipchub_msg_id(const ipchub_msg *m);
/* Sender's name as stamped by the broker, or NULL if it had none. */
const char *ipchub_msg_from(const ipchub_msg *m);
/* Sender's connection id as stamped by the broker (always set). */
uint64_t ipchub_msg_from_id(const ipchub_msg *m);
/* Name the message was addressed to (sends and requests). */
const char *ipchub_msg_to(const ipchub_msg *m);
/* Encoded body (one msgpack value) and its length; NULL/0 if none. A
 * memfd body (PROTOCOL.md 6.10) is a read-only mapping of the sender's
 * sealed memfd, owned by m and unmapped by ipchub_msg_free() (for a lent
 * message, when the loan ends); its descriptor is already closed, so
 * ipchub_msg_fds() reports none. ipchub_msg_dup() copies it to the heap. */
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
/* Federation (docs/FEDERATION.md): a message from another hub (`from` is
 * `name@hub`) that came over an authenticated bridge link may carry the
 * uid and key id its origin hub stamped, as claims of the local bridge
 * (whose own uid/key are ipchub_msg_uid/ipchub_msg_key_id). Returns 1
 * and sets *uid (UINT32_MAX if absent), *key (NULL if absent) and
 * *key_len, each pointer optional, when the message carries claims;
 * returns 0 and sets nothing otherwise. *key lives as long as m. */
int ipchub_msg_claims(const ipchub_msg *m, uint32_t *uid,
		      const uint8_t **key, size_t *key_len);
/* NULL accepted; a message lent by ipchub_recv_lent() is left alone. */
void ipchub_msg_free(ipchub_msg *m);

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

/* ==== Event-driven API (ipchub_async) ===============================
 *
 * An `ipchub_async` handle is a connection to the broker that never
 * blocks: it is driven by the application's event loop and reports
 * through callbacks. Two ways to drive it:
 *
 * - libevent: ipchub_async_attach(a, base) from <ipchub_event.h>
 *   (library libipchub-event, `pkg-config ipchub-event`). Nothing else
 *   to do.
 * - any other loop (epoll, poll, libuv, GLib): before each wait, poll
 *   ipchub_async_fd() for reading, and for writing when
 *   ipchub_async_wants_write(); wait at most ipchub_async_next_timeout_ms();
 *   then call ipchub_async_process(a, revents). The fd changes on
 *   reconnection and is -1 while there is no connection: query all three
 *   again after every call into the handle, or set a watch callback
 *   (ipchub_async_set_watch) that says when they may have changed. Use
 *   level-triggered readiness: process() reads at most
 *   IPCHUB_CLIENT_ASYNC_READ_BUDGET bytes per call and leaves the rest.
 *
 * Connection: ipchub_async_new() connects at once (IPCHUB_E_NO_BROKER if
 * nothing listens, unless IPCHUB_ASYNC_WAIT_FOR_BROKER) and completes the
 * handshake in process(); on_state reports CONNECTED. When the connection
 * is lost (broker restart, socket error, EOF, BYE SHUTTING_DOWN) the
 * handle reconnects with exponential backoff (50 ms doubling to 5 s, full
 * jitter), re-registers its names, subscriptions and watches in their
 * original order, then sends what was queued meanwhile. on_state reports
 * DISCONNECTED(code) once per outage and RECONNECTED(gap, records
 * restored, records refused, e.g. names lost to another process).
 * Subscriptions and watches keep the ids the application got. Publications
 * sent while the subscription was down are not replayed (the broker keeps
 * none): DISCONNECTED .. RECONNECTED is the gap. A restored watch's first
 * answer comes to on_presence as OWNED/UNOWNED with the current owner, so
 * the name's state after the gap is always known. A
 * fatal protocol error (BAD_FRAME, PROTOCOL, TOO_LARGE,
 * UNSUPPORTED_VERSION, AUTH_FAILED), IPCHUB_ASYNC_NO_RECONNECT or
 * ipchub_async_close() ends it: CLOSED(code).
 *
 * Delivery across a loss: frames not yet handed to the kernel are kept
 * and sent on the next connection (requests among them stay pending;
 * their deadlines keep running). Requests and name operations whose
 * frames had been (even partly) written fail with IPCHUB_E_IO: whether
 * the broker or the responder acted on them is unknown. A SEND cut in the
 * middle of a write is reported to on_error with IPCHUB_E_IO (each
 * message of a cut batch, with its id); unwritten batches are kept as
 * single SENDs, since the next broker may not accept batches. SENDs the
 * kernel had fully accepted but the broker had not routed when it died
 * cannot be told apart from delivered ones and are neither retried nor
 * reported; DISCONNECTED marks that moment. Replies to requests that
 * arrived on a lost connection are refused (IPCHUB_E_CLOSED): the broker
 * has already told their requesters PEER_GONE.
 *
 * Backpressure: the backlog is every byte queued and not yet written
 * (including while disconnected). ipchub_async_send(), _publish(),
 * _request() and _reply() refuse a frame that would take a non-empty backlog over the
 * high-water mark (opts.hwm, default IPCHUB_CLIENT_OUT_HWM): they return
 * IPCHUB_E_WOULD_BLOCK and queue NOTHING (unlike the Node client's send(),
 * which queues and returns false: in C a failing call has no effect). A
 * frame is always accepted into an empty backlog, so any frame up to the
 * broker's maximum can be sent. After a refusal, on_drain runs once the
 * backlog has fallen to half the mark; retry then. Control frames
 * (REGISTER, SUBSCRIBE, WATCH and their opposites, CANCEL, BYE,
 * restores) are small and bypass the mark.
 *
 * Callbacks run only inside ipchub_async_process() (or the libevent
 * callbacks, which call it), except the ones a call documents as
 * synchronous (cancel, close, free). They may call any ipchub_async_*
 * function except process() (IPCHUB_E_INVALID), including
 * ipchub_async_free() on the handle itself: the free is deferred until
 * the outermost call into the handle returns, and no callback runs after
 * it. Messages passed to callbacks belong to the callee
 * (ipchub_msg_free()); structs passed by pointer are borrowed for the
 * call.
 *
 * Threads: the handle belongs to the thread that created it. Every
 * function that returns a code, called from another thread, returns
 * IPCHUB_E_WRONG_THREAD and does nothing (the getters fd, wants_write,
 * next_timeout_ms, state, backlog and conn_id are for the owner only) (ipchub_async_free() from another thread does nothing, so
 * the handle leaks rather than races). To send from worker threads, hand
 * the work to the owner thread (e.g. with an eventfd or a libevent
 * event_active()). Distinct handles are independent.
 */

typedef struct ipchub_async ipchub_async;

enum ipchub_async_state {
	IPCHUB_ASYNC_CONNECTED = 1,    /* first handshake completed */
	IPCHUB_ASYNC_DISCONNECTED = 2, /* connection lost; reconnecting */
	IPCHUB_ASYNC_RECONNECTED = 3,  /* back, state restored */
	IPCHUB_ASYNC_CLOSED = 4        /* finished; no more callbacks but free */
};

/* A restored record the broker refused after a reconnection (e.g. a name
 * another process registered during the outage). It is dropped from the
 * restore list. */
struct ipchub_async_lost {
	int kind;         /* wire kind of the record: 7 = REGISTER (a name),
			   * 20 = SUBSCRIBE (a pattern), 24 = WATCH (a name) */
	const char *name; /* the name (or pattern) */
	int code;         /* the broker's answer, e.g. IPCHUB_E_NAME_TAKEN */
};

struct ipchub_async_event {
	enum ipchub_async_state state;
	int code;          /* DISCONNECTED, CLOSED: why (IPCHUB_E_IO,
			    * IPCHUB_E_CLOSED, IPCHUB_E_SHUTTING_DOWN, ...);
			    * CLOSED after ipchub_async_close(): IPCHUB_OK */
	uint64_t gap_ms;   /* RECONNECTED: time since the loss */
	unsigned restored; /* RECONNECTED: records (names, subscriptions,
			    * watches) restored */
	size_t n_lost;     /* RECONNECTED: records refused, described in */
	const struct ipchub_async_lost *lost; /* lost[0..n_lost) */
};

/* A SEND, REPLY or PUBLISH of ours that was not delivered (a PUBLISH is
 * reported only when refused, e.g. IPCHUB_E_BAD_BODY, or lost unsent). */
struct ipchub_async_error {
	int code;         /* e.g. IPCHUB_E_NO_SUCH_PEER, IPCHUB_E_IO (lost in
			   * a failed write), IPCHUB_E_CLOSED (never written
			   * before close/free) */
	uint64_t id;      /* the frame's id (ipchub_async_send's *id_out) */
	int kind;         /* IPCHUB_KIND_SEND, IPCHUB_KIND_REPLY,
			   * IPCHUB_KIND_PUBLISH, or 0 when the broker did
			   * not say */
	const char *to;   /* destination when known, else NULL */
	const char *text; /* the broker's explanation, or NULL */
};

/* A presence event of a watch (ipchub_async_watch). */
struct ipchub_async_presence {
	uint64_t watch;   /* the id ipchub_async_watch() gave */
	const char *name; /* the watched name (borrowed for the call) */
	int event;        /* enum ipchub_presence_event: OWNED/UNOWNED answer
			   * the watch (and its restoration after every
			   * reconnection), REGISTERED/RELEASED follow */
	int reason;       /* RELEASED: enum ipchub_presence_reason, else 0 */
	uint64_t owner;   /* the owner's connection id; 0 when UNOWNED */
};

struct ipchub_async_callbacks {
	/* A SEND addressed to one of our names, or a publication
	 * (ipchub_msg_kind() == IPCHUB_KIND_PUBLISH; ipchub_msg_sub() is
	 * the id ipchub_async_subscribe() gave, ipchub_msg_topic() the
	 * topic); m is the callee's. NULL: such messages are freed unread. */
	void (*on_message)(ipchub_async *a, ipchub_msg *m, void *ud);
	/* A REQUEST; m is the callee's, to answer now or later with
	 * ipchub_async_reply() and then free. NULL: every request is
	 * answered REMOTE_ERROR "no handler". */
	void (*on_request)(ipchub_async *a, ipchub_msg *m, void *ud);
	/* A SEND or REPLY of ours failed (see struct ipchub_async_error). */
	void (*on_error)(ipchub_async *a, const struct ipchub_async_error *e,
			 void *ud);
	/* Connection state changes (see struct ipchub_async_event). */
	void (*on_state)(ipchub_async *a, const struct ipchub_async_event *e,
			 void *ud);
	/* The backlog fell to half the high-water mark after a send,
	 * publish, request or reply was refused with IPCHUB_E_WOULD_BLOCK. */
	void (*on_drain)(ipchub_async *a, void *ud);
	/* The broker dropped count publications of subscription sub (the
	 * id ipchub_async_subscribe() gave) at this point of its stream
	 * (its policy, the subscriber was too slow). NULL: not reported. */
	void (*on_gap)(ipchub_async *a, uint64_t sub, uint64_t count,
		       void *ud);
	/* A watched name's state or change (struct ipchub_async_presence).
	 * NULL: watches are answered and restored, events are dropped. */
	void (*on_presence)(ipchub_async *a,
			    const struct ipchub_async_presence *p, void *ud);
};

/* ipchub_async_opts.flags */
#define IPCHUB_ASYNC_NO_RECONNECT 0x1u     /* a lost connection is CLOSED */
#define IPCHUB_ASYNC_WAIT_FOR_BROKER 0x2u  /* no broker yet: keep trying */

struct ipchub_async_opts {
	const char *socket; /* as struct ipchub_opts; NULL: the default */
	const char *agent;  /* NULL: "libipchub/<version>" */
	/* Handshake and name-operation deadline in ms; 0: 5000. */
	int timeout_ms;
	/* Outbound high-water mark in bytes; 0: IPCHUB_CLIENT_OUT_HWM. */
	size_t hwm;
	unsigned flags;     /* IPCHUB_ASYNC_* */
};

/* Create a handle and start connecting. opts may be NULL; cbs is copied
 * (NULL: no callbacks); ud is passed to every callback. Returns
 * IPCHUB_OK and *out, IPCHUB_E_NO_BROKER (unless
 * IPCHUB_ASYNC_WAIT_FOR_BROKER), IPCHUB_E_IO, IPCHUB_E_NOMEM or
 * IPCHUB_E_INVALID. The calling thread becomes the owner. */
int ipchub_async_new(const struct ipchub_async_opts *opts,
		     const struct ipchub_async_callbacks *cbs, void *ud,
		     ipchub_async **out);

/* Say BYE after what is queued, then close (at most
 * IPCHUB_CLIENT_CLOSE_FLUSH_MS later). Pending requests and name
 * operations fail with IPCHUB_E_CLOSED, unsent SENDs are reported to
 * on_error with IPCHUB_E_CLOSED, then on_state reports CLOSED; when no
 * connection is up all this happens before close returns. The handle
 * must still be freed. */
int ipchub_async_close(ipchub_async *a);

/* Free the handle. If it is not CLOSED yet, BYE is attempted without
 * waiting and the close callbacks run synchronously, as for
 * ipchub_async_close(). Inside a callback the free is deferred (see
 * above). If a watch is set, it receives IPCHUB_ASYNC_WATCH_FREE.
 * NULL accepted. */
void ipchub_async_free(ipchub_async *a);

/* ---- loop-neutral driving ---- */

/* The socket to poll, or -1 while there is none (waiting to reconnect).
 * Owned by the handle: never close or read it. */
int ipchub_async_fd(const ipchub_async *a);
/* Whether to poll the fd for writing as well (bytes are queued). */
int ipchub_async_wants_write(const ipchub_async *a);
/* Milliseconds until the next timer (request deadline, reconnection,
 * handshake), 0 if one is due, -1 if none. Rounded up. */
int ipchub_async_next_timeout_ms(const ipchub_async *a);
/* Do what is ready: read and dispatch (at most the read budget), write,
 * run due timers; callbacks run here. revents: poll(2) bits seen on the
 * fd (POLLIN, POLLOUT, POLLHUP, POLLERR), 0 after a timeout. Returns
 * IPCHUB_OK, or IPCHUB_E_CLOSED once the handle is closed (the reason
 * went to on_state); connection losses are not errors here.
 * IPCHUB_E_INVALID when called from a callback. */
int ipchub_async_process(ipchub_async *a, int revents);

/* Watch: called (outside callbacks' nesting, once per outermost call)
 * whenever the fd, wants_write or next timeout may have changed, and
 * with what = IPCHUB_ASYNC_WATCH_FREE when the handle is freed. One
 * watch per handle (NULL removes it); ipchub_async_attach() uses it. */
#define IPCHUB_ASYNC_WATCH_UPDATE 0
#define IPCHUB_ASYNC_WATCH_FREE 1
typedef void (*ipchub_async_watch_fn)(ipchub_async *a, int what, void *ctx);
int ipchub_async_set_watch(ipchub_async *a, ipchub_async_watch_fn fn,
			   void *ctx);

/* ---- state ---- */

/* IPCHUB_ASYNC_CONNECTED (also after a reconnection), _DISCONNECTED
 * (connecting, or waiting to reconnect) or _CLOSED. */
int ipchub_async_state(const ipchub_async *a);
/* Bytes queued and not yet written (the backlog). */
size_t ipchub_async_backlog(const ipchub_async *a);
/* Connection id of the current connection (0 while there is none). */
uint64_t ipchub_async_conn_id(const ipchub_async *a);

/* ---- names ---- */

/* Completion of a name operation: IPCHUB_OK or the failure
 * (IPCHUB_E_NAME_TAKEN, IPCHUB_E_TIMEOUT, IPCHUB_E_IO, IPCHUB_E_CLOSED,
 * ...). */
typedef void (*ipchub_async_done_fn)(ipchub_async *a, int code, void *ud);

/* Claim a name; cb (may be NULL) reports the broker's answer within
 * opts.timeout_ms. Once registered, the name is restored after every
 * reconnection. May be called before the first connection is up.
 * Returns IPCHUB_OK (cb will run exactly once), IPCHUB_E_BAD_NAME,
 * IPCHUB_E_INVALID, IPCHUB_E_NOMEM, IPCHUB_E_CLOSED (after close). */
int ipchub_async_register(ipchub_async *a, const char *name,
			  ipchub_async_done_fn cb, void *ud);
/* Release a name; it is no longer restored once the broker said OK. */
int ipchub_async_unregister(ipchub_async *a, const char *name,
			    ipchub_async_done_fn cb, void *ud);

/* ---- messages ---- */

/* Queue a one-way message (body as ipchub_send). IPCHUB_OK: queued,
 * *id_out (may be NULL) its id; delivery failures go to on_error.
 * IPCHUB_E_WOULD_BLOCK: over the high-water mark, NOT queued; wait for
 * on_drain. Also IPCHUB_E_BAD_NAME, IPCHUB_E_BAD_BODY, IPCHUB_E_TOO_LARGE,
 * IPCHUB_E_INVALID, IPCHUB_E_NOMEM, IPCHUB_E_CLOSED. While disconnected,
 * sends are queued (up to the mark) for the next connection. */
int ipchub_async_send(ipchub_async *a, const char *to, const void *body,
		      size_t len, uint64_t *id_out);

/* Outcome of a request: IPCHUB_OK and the reply, or a failure: the
 * responder's error reply (code from it, usually IPCHUB_E_REMOTE_ERROR;
 * reply set), the broker's ERROR (NO_SUCH_PEER, TIMEOUT, PEER_GONE, ...;
 * reply set, kind 10), or a local one (IPCHUB_E_TIMEOUT when no answer
 * came 500 ms after the deadline, IPCHUB_E_CANCELLED, IPCHUB_E_IO when
 * the connection was lost after the request was written,
 * IPCHUB_E_CLOSED, IPCHUB_E_TOO_LARGE; reply NULL). reply (may be NULL)
 * is the callee's. */
typedef void (*ipchub_async_reply_fn)(ipchub_async *a, int code,
				      ipchub_msg *reply, void *ud);

/* Send a request with a deadline (timeout_ms > 0, clamped to 24 h) that
 * travels with it: the broker answers TIMEOUT when it passes and drops a
 * late reply. cb (required) runs exactly once, never before this call
 * returns. *req_id (may be NULL) receives the id for
 * ipchub_async_cancel(). Returns IPCHUB_OK, IPCHUB_E_WOULD_BLOCK (not
 * queued, cb will not run), or the argument errors of send. */
int ipchub_async_request(ipchub_async *a, const char *to, const void *body,
			 size_t len, int timeout_ms, ipchub_async_reply_fn cb,
			 void *ud, uint64_t *req_id);

/* Give up a pending request: its callback runs now with
 * IPCHUB_E_CANCELLED and the broker is told (CANCEL) so that it drops the
 * entry and the responder's late reply. IPCHUB_E_NO_SUCH_REQUEST if the
 * request is not pending (already answered). */
int ipchub_async_cancel(ipchub_async *a, uint64_t req_id);

/* Answer a request message received by on_request (as ipchub_reply /
 * ipchub_reply_error). IPCHUB_E_CLOSED when the request arrived on a
 * connection that has since been lost; IPCHUB_E_WOULD_BLOCK as send. */
int ipchub_async_reply(ipchub_async *a, const ipchub_msg *req,
		       const void *body, size_t len);
int ipchub_async_reply_error(ipchub_async *a, const ipchub_msg *req,
			     int code, const char *message);

/* ---- publish / subscribe and presence ---- */

/* Subscribe to pattern (as ipchub_subscribe) with policy (enum
 * ipchub_policy). *sub_id (may be NULL) receives the subscription's id
 * at once; cb (may be NULL) reports the broker's answer within
 * opts.timeout_ms: IPCHUB_OK, IPCHUB_E_BAD_NAME (malformed pattern),
 * IPCHUB_E_LIMIT, IPCHUB_E_TIMEOUT, IPCHUB_E_IO, IPCHUB_E_CLOSED.
 * Publications then arrive at on_message (IPCHUB_KIND_PUBLISH) and losses
 * at on_gap, both with this id, which stays the same across
 * reconnections (the subscription is restored with the names). May be
 * called before the first connection is up. Returns IPCHUB_OK (cb will
 * run exactly once), IPCHUB_E_BAD_NAME (empty or too long),
 * IPCHUB_E_INVALID (unknown policy, NULL pattern), IPCHUB_E_NOMEM,
 * IPCHUB_E_CLOSED. */
int ipchub_async_subscribe(ipchub_async *a, const char *pattern, int policy,
			   ipchub_async_done_fn cb, void *ud, uint64_t *sub_id);
/* End a subscription the broker has confirmed (its cb reported OK);
 * IPCHUB_E_NO_SUCH_REQUEST otherwise or when it is already being ended.
 * cb (may be NULL) reports the answer; after IPCHUB_OK no publication of
 * it arrives any more and it is no longer restored. Ended during an
 * outage, it is simply not restored. */
int ipchub_async_unsubscribe(ipchub_async *a, uint64_t sub_id,
			     ipchub_async_done_fn cb, void *ud);

/* Publish body (one msgpack value, or NULL/0) on topic (a name, not
 * reserved). Queued like ipchub_async_send(), with the same backpressure:
 * IPCHUB_E_WOULD_BLOCK queues nothing, retry after on_drain. No
 * acknowledgement; a refusal (IPCHUB_E_BAD_BODY, ...) goes to on_error
 * with kind IPCHUB_KIND_PUBLISH. Also IPCHUB_E_BAD_NAME,
 * IPCHUB_E_TOO_LARGE, IPCHUB_E_INVALID, IPCHUB_E_NOMEM, IPCHUB_E_CLOSED. */
int ipchub_async_publish(ipchub_async *a, const char *topic,
			 const void *body, size_t len);

/* Watch a name (as ipchub_watch). *watch_id (may be NULL) receives the
 * watch's id at once; cb (may be NULL) reports the answer: IPCHUB_OK
 * when the first presence event arrived (it goes to on_presence right
 * after cb), IPCHUB_E_BAD_NAME, IPCHUB_E_LIMIT, IPCHUB_E_TIMEOUT, ...
 * The watch is restored after every reconnection, keeping its id; its
 * new first answer (OWNED with the owner, or UNOWNED) reaches
 * on_presence. Returns as ipchub_async_subscribe(). */
int ipchub_async_watch(ipchub_async *a, const char *name,
		       ipchub_async_done_fn cb, void *ud, uint64_t *watch_id);
/* Stop a confirmed watch; as ipchub_async_unsubscribe(). */
int ipchub_async_unwatch(ipchub_async *a, uint64_t watch_id,
			 ipchub_async_done_fn cb, void *ud);

#ifdef __cplusplus
}
#endif

#endif
