/*
 * limits.h - every limit ipchub enforces, in one place.
 *
 * Each limit is a named constant with the reason for its value. The broker
 * lets configuration override the ones marked "default" within the bounds
 * given by the matching _MIN/_MAX constants; the others are protocol
 * constants that both sides must agree on. Sizes read off the wire are
 * compared with these in 64-bit arithmetic before anything is allocated.
 */
#ifndef IPCHUB_PROTO_LIMITS_H
#define IPCHUB_PROTO_LIMITS_H

/* Protocol versions this code speaks. */
#define IPCHUB_PROTO_VERSION_MIN 1u
#define IPCHUB_PROTO_VERSION_MAX 1u

/* Bytes in the big-endian length prefix of every frame. */
#define IPCHUB_LEN_PREFIX 4u

/* Default maximum frame (header + body, not counting the prefix): large
 * enough for real payloads, small enough that one peer cannot pin much
 * broker memory with a single frame. */
#define IPCHUB_MAX_FRAME_DEFAULT (16u * 1024u * 1024u)
#define IPCHUB_MAX_FRAME_MIN (64u * 1024u)
#define IPCHUB_MAX_FRAME_MAX (256u * 1024u * 1024u)

/* Smallest legal frame: a header map with only the kind, 0x81 0x00 <kind>. */
#define IPCHUB_MIN_FRAME 3u

/* Maximum encoded header: room for three names, an error message and the
 * auth fields, with slack. Headers are decoded into a fixed struct, so this
 * also bounds the work done per frame before routing. */
#define IPCHUB_MAX_HEADER 4096u

/* Frames a connection may send before it has completed the handshake are
 * tiny: a HELLO or AUTH never needs more, and a pre-auth flood cannot pin
 * memory. */
#define IPCHUB_MAX_PREAUTH_FRAME 1024u

/* Header entries: each key at most once, and there are fewer than 32 keys. */
#define IPCHUB_MAX_HEADER_KEYS 32u

/* Names: 1..255 bytes of [A-Za-z0-9._-]. 255 fits a one-byte length. */
#define IPCHUB_MAX_NAME 255u

/* Error messages carried in ERROR and REPLY frames are truncated to this. */
#define IPCHUB_MAX_ERRMSG 1024u

/* Free-form client description in HELLO (e.g. "libipchub/0.1 pid=42"). */
#define IPCHUB_MAX_AGENT 128u

/* Broker instance id: 16 random bytes, sent as 32 hex characters. */
#define IPCHUB_BROKER_ID_LEN 32u

/* Nesting depth of a message body: msgpack-c's unpacker, which every C
 * receiver uses, handles 32 levels (MSGPACK_EMBED_STACK_SIZE), so a body
 * the broker accepts can always be unpacked. Also bounds the validator's
 * fixed stack (it is iterative). */
#define IPCHUB_MAX_BODY_DEPTH 32u

/* Default names one connection may hold: services register a handful. */
#define IPCHUB_MAX_NAMES_DEFAULT 64u
#define IPCHUB_MAX_NAMES_MAX 4096u

/* Remote names (`name@hub`, PROTOCOL.md 6.9) one bridge connection may
 * hold: every exported name of every other hub of the federation. */
#define IPCHUB_MAX_BRIDGE_NAMES 4096u

/* The hub part of a remote name: one NATS subject token of
 * [A-Za-z0-9_-], short enough to leave room for the local part. */
#define IPCHUB_MAX_HUB 64u

/* Default requests one connection may have awaiting replies at once: each
 * costs the broker one table entry (~64 bytes) until answered or timed out. */
#define IPCHUB_MAX_PENDING_DEFAULT 4096u
#define IPCHUB_MAX_PENDING_MAX 1048576u

/* Default high-water mark of a connection's outbound queue in the broker.
 * Above it, the broker stops reading from peers that send to it (and from
 * the connection itself) until the queue falls below the low-water mark. */
#define IPCHUB_QUEUE_HWM_DEFAULT (4u * 1024u * 1024u)
#define IPCHUB_QUEUE_HWM_MIN (64u * 1024u)
#define IPCHUB_QUEUE_HWM_MAX (1024u * 1024u * 1024u)
/* Resume reading at HWM / IPCHUB_QUEUE_LWM_DIV: hysteresis avoids flapping. */
#define IPCHUB_QUEUE_LWM_DIV 2u

/* Default cap on simultaneous connections: each costs an fd and ~1-2 KiB. */
#define IPCHUB_MAX_CONNS_DEFAULT 16384u

/* A connection that has not sent HELLO (and, with --require-auth, a
 * successful AUTH) within this time is closed (broker option
 * --handshake-timeout). */
#define IPCHUB_HANDSHAKE_TIMEOUT_MS_DEFAULT 5000u

/* Default cap on connections still in the handshake (no HELLO yet, or,
 * with --require-auth, no successful AUTH yet). When it is reached the
 * oldest of them is dropped for each new one: a flood of silent
 * connections only evicts itself, while a real client, which finishes
 * its handshake within a round trip, is not starved. */
#define IPCHUB_MAX_HANDSHAKES_DEFAULT 256u
#define IPCHUB_MAX_HANDSHAKES_MIN 1u

/* Policy file (broker --policy): read at most this many bytes, so a
 * wrong path (a log, a device) fails fast instead of eating memory. */
#define IPCHUB_POLICY_MAX_BYTES (1024u * 1024u)
/* Longest policy line: a pattern, a key and a uid fit with lots of room. */
#define IPCHUB_POLICY_MAX_LINE 1024u
/* Rules per policy file: matching is a linear scan per REGISTER. */
#define IPCHUB_POLICY_MAX_RULES 4096u

/* Client key file: a secret key line is 143 bytes; anything larger than
 * this is not a key file. */
#define IPCHUB_KEY_FILE_MAX 4096u

/* A frame whose first bytes have arrived after the handshake must be
 * complete within this time (measured from when it became the next frame
 * to read, and only while the broker is reading the connection: time
 * parked on backpressure does not count). Without it a peer could pin a
 * connection, and up to a frame's worth of buffer, by sending a length
 * header and then nothing, or by dribbling bytes. A local writer
 * finishes a 16 MiB frame in milliseconds; 30 s also covers a client
 * paused in a debugger for a moment. */
#define IPCHUB_FRAME_TIMEOUT_MS_DEFAULT 30000u

/* Request deadlines: 0 means none; larger values are clamped to this. */
#define IPCHUB_MAX_TIMEOUT_MS (24u * 3600u * 1000u)

/* Bytes the broker reads from one connection per read callback before
 * giving others a turn (fairness between producers). */
#define IPCHUB_READ_CHUNK (256u * 1024u)
/* Broker: a frame of at least this many bytes is read on its own (the
 * read ends at its last byte), so that its body fills whole input chains
 * and moves to the receiver's queue without a copy. Reading frame by
 * frame costs one peek per frame, which is cheap next to copying 16 KiB. */
#define IPCHUB_READ_ALIGN_MIN (16u * 1024u)

/* MONITOR filter text: a few terms (kind=..., name=..., topic=...); a
 * filter needing more is better split over several taps. */
#define IPCHUB_MAX_FILTER 255u

/* Subscriptions, presence watches and monitor taps one connection may
 * hold together: each costs a trie entry or list node (~100 bytes plus
 * its pattern); real clients hold a few dozen. */
#define IPCHUB_MAX_SUBS_DEFAULT 1024u
#define IPCHUB_MAX_SUBS_MAX 65536u

/* Publications queued in the broker for one subscription once its
 * connection's output is over the high-water mark, before its policy
 * drops one (or disconnects it). The queue is also capped at queue_hwm
 * bytes, so a subscription pins at most about 2 x queue_hwm. */
#define IPCHUB_SUB_QUEUE_DEFAULT 1024u
#define IPCHUB_SUB_QUEUE_MIN 1u
#define IPCHUB_SUB_QUEUE_MAX 1048576u

/* Presence events and monitor copies are not droppable/parkable like
 * publications: a watcher whose output exceeds this many times queue_hwm
 * is disconnected with BYE QUEUE_FULL rather than grow without bound. */
#define IPCHUB_WATCH_HWM_MULT 4u

/* Monitor filter terms of each key (kind, name, conn, topic): bounded so
 * a filter is a fixed-size struct. */
#define IPCHUB_MAX_FILTER_TERMS 8u

/* Broker: a forwarded body up to this size is copied into the receiver's
 * queue together with its header, in one append; a larger one moves
 * libevent chains (no copy when whole chains move). Bounds a stack buffer. */
#define IPCHUB_FWD_COPY_MAX (4u * 1024u)

/* Broker (glibc): free heap kept instead of trimmed, and the size from
 * which an allocation gets its own mmap. Buffers of a busy broker churn
 * through tens of MiB per second; trimming them costs a page fault per
 * 4 KiB when they are reused. The kept heap is bounded by this value. */
#define IPCHUB_BROKER_HEAP_KEEP (32u * 1024u * 1024u)
#define IPCHUB_BROKER_MMAP_MIN (4u * 1024u * 1024u)

/* Batches (PROTOCOL.md 6.3.1): messages per batched SEND frame. The
 * broker answers a batch body outside 1..IPCHUB_MAX_BATCH with BAD_BODY. */
#define IPCHUB_MAX_BATCH 65536u

/* File descriptors (PROTOCOL.md 6.6). At most this many travel with one
 * frame: one recvmsg() control buffer holds them, and it keeps a frame's
 * SCM_RIGHTS message far below the kernel's SCM_MAX_FD (253). */
#define IPCHUB_MAX_FDS_PER_FRAME 16u
/* Broker: descriptors queued to one receiver and not yet written to it;
 * a sender whose frame would pass it is parked (NOWAIT: QUEUE_FULL),
 * exactly like the byte high-water mark. Also the most a connection may
 * have received and not yet claimed by frames. Default; --max-fds-per-conn. */
#define IPCHUB_MAX_FDS_PER_CONN 1024u
/* Broker: descriptors it holds in flight for all connections together
 * (each is an open file of the broker: keep it well under RLIMIT_NOFILE).
 * A read that would pass it fails the sender with LIMIT. Default;
 * --max-fds-total. */
#define IPCHUB_MAX_FDS_TOTAL 16384u
/* Broker: the largest either fd setting accepts. */
#define IPCHUB_MAX_FDS_TOTAL_MAX 1048576u

/* Memfd bodies (PROTOCOL.md 6.10). Default size from which libipchub
 * sends a body as a sealed memfd instead of inline (ipchub_set_memfd_min):
 * below it the socket's copies cost less than creating, sealing and
 * mapping a memfd (a few page faults and five system calls). */
#define IPCHUB_MEMFD_MIN_DEFAULT (256u * 1024u)
/* Smallest threshold ipchub_set_memfd_min() accepts: a memfd is a whole
 * page at least, so tinier bodies only waste it. */
#define IPCHUB_MEMFD_MIN_MIN 4096u
/* Largest memfd body (WK_MEMFD; larger is BAD_FRAME): as large as the
 * largest queue high-water mark, so that the broker can charge one to any
 * receiver's queue in 64-bit arithmetic with a meaningful bound. */
#define IPCHUB_MAX_MEMFD_BODY (1024ull * 1024u * 1024u)
/* Broker: while senders are parked on a receiver that may not have read
 * the memfd bodies it was written, check its socket this often (ms): no
 * event says when a reader consumed bytes, and a few ms is below the
 * cost of mapping a body that large. */
#define IPCHUB_MEMFD_POLL_MS 2

/* Client library: consecutive sends to the same name are appended to the
 * SEND frame still waiting in the outbound queue (one header, one routing
 * decision in the broker) while the body is at most this big and the frame
 * stays under IPCHUB_CLIENT_BATCH_BYTES; a bigger body gets its own frame
 * (batching saves nothing there). */
#define IPCHUB_CLIENT_BATCH_BODY_MAX (4u * 1024u)
#define IPCHUB_CLIENT_BATCH_BYTES (64u * 1024u)

/* Client library: default outbound bytes buffered before an automatic
 * flush, and the high-water mark above which a send blocks (blocking API)
 * or reports IPCHUB_E_WOULD_BLOCK (event API). */
#define IPCHUB_CLIENT_FLUSH_AT (64u * 1024u)
#define IPCHUB_CLIENT_OUT_HWM (8u * 1024u * 1024u)
/* Client library: descriptors (duplicates, each an open file of the
 * process) queued and not yet written, above which a send blocks like
 * over IPCHUB_CLIENT_OUT_HWM. */
#define IPCHUB_CLIENT_OUT_FDS_MAX 256u

/* Client library: frames received but not yet taken by the application
 * (e.g. messages that arrive while waiting for a reply) are queued up to
 * this many bytes; beyond it the library stops reading the socket, which
 * in turn makes the broker slow the senders down. */
#define IPCHUB_CLIENT_IN_MAX (64u * 1024u * 1024u)

/* Client library: largest busy-poll time ipchub_set_spin() accepts (a
 * longer spin is a busy loop, not a wait). */
#define IPCHUB_CLIENT_SPIN_MAX_US 1000u

/* Client library: handshake deadline when the caller gives none. */
#define IPCHUB_CLIENT_CONNECT_TIMEOUT_MS 5000
/* Client library: a request waits this much longer than its own deadline,
 * because the broker's TIMEOUT error normally arrives first and carries
 * the real outcome. */
#define IPCHUB_CLIENT_REQUEST_GRACE_MS 500
/* Client library: ipchub_close() gives queued frames this long to leave. */
#define IPCHUB_CLIENT_CLOSE_FLUSH_MS 1000
/* Client library: while the listen backlog is full (connect() says
 * EAGAIN), retry at this interval until the handshake deadline. */
#define IPCHUB_CLIENT_CONNECT_RETRY_MS 10

/* Client event API: reconnection backoff starts here and doubles up to
 * the maximum; each wait is drawn uniformly from [0, delay] ("full
 * jitter") so that clients of a restarted broker do not return in step. */
#define IPCHUB_CLIENT_RECONNECT_MIN_MS 50
#define IPCHUB_CLIENT_RECONNECT_MAX_MS 5000
/* Client event API: bytes read from the socket per ipchub_async_process()
 * call, so that one busy connection does not starve the application's
 * other event sources (the fd stays readable; the next call goes on). */
#define IPCHUB_CLIENT_ASYNC_READ_BUDGET (1024u * 1024u)

#endif
