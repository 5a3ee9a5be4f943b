/*
 * wire.h - the constants of ipchub wire protocol v1 (see PROTOCOL.md).
 *
 * A frame is a 4-byte big-endian length L, then L bytes: a msgpack map (the
 * header) whose keys are the small integers below, then optionally a body
 * that is exactly one msgpack value. Only header fields are interpreted by
 * the broker; the body is forwarded byte for byte.
 *
 * Numbers here are part of the protocol: never renumber, only append.
 */
#ifndef IPCHUB_PROTO_WIRE_H
#define IPCHUB_PROTO_WIRE_H

/* Frame kinds (header key WK_KIND). */
enum wire_kind {
	WIRE_HELLO = 1,       /* c->b  first frame: versions the client speaks */
	WIRE_WELCOME = 2,     /* b->c  chosen version, connection id, limits */
	WIRE_AUTH = 3,        /* c->b  key proof (authentication issue) */
	WIRE_BYE = 4,         /* both  orderly close, optional code + message */
	WIRE_PING = 5,        /* c->b  liveness / round-trip probe */
	WIRE_PONG = 6,        /* b->c  answer to PING, same id */
	WIRE_REGISTER = 7,    /* c->b  claim a name */
	WIRE_UNREGISTER = 8,  /* c->b  release a name */
	WIRE_OK = 9,          /* b->c  success of a broker operation, same id */
	WIRE_ERROR = 10,      /* b->c  failure of the frame with the same id */
	WIRE_SEND = 11,       /* both  one-way message to a name */
	WIRE_REQUEST = 12,    /* both  message that expects one REPLY */
	WIRE_REPLY = 13,      /* both  answer to a REQUEST */
	WIRE_CANCEL = 14,     /* c->b  requester gives up a pending request */
	/* 20..39 reserved for pub/sub, presence and monitor. */
	WIRE_SUBSCRIBE = 20,
	WIRE_UNSUBSCRIBE = 21,
	WIRE_PUBLISH = 22,
	WIRE_GAP = 23,
	WIRE_WATCH = 24,
	WIRE_UNWATCH = 25,
	WIRE_PRESENCE = 26,
	WIRE_MONITOR = 27,
	WIRE_KIND_MAX_ = 40
};

/* Header keys. Each has exactly one msgpack type (see frame.c's table). */
enum wire_key {
	WK_KIND = 0,       /* uint   frame kind, always present */
	WK_ID = 1,         /* uint64 sender-chosen id / correlation id */
	WK_TO = 2,         /* str    destination name */
	WK_TO_ID = 3,      /* uint64 destination connection id (REPLY) */
	WK_FROM = 4,       /* str    sender's name, stamped by the broker */
	WK_FROM_ID = 5,    /* uint64 sender's connection id, stamped */
	WK_NAME = 6,       /* str    name to (un)register */
	WK_CODE = 7,       /* uint   error code (enum wire_code) */
	WK_MSG = 8,        /* str    human-readable error text */
	WK_VER = 9,        /* uint   HELLO: highest version; WELCOME: chosen */
	WK_VER_MIN = 10,   /* uint   HELLO: lowest version */
	WK_CONN = 11,      /* uint64 WELCOME: the connection's id */
	WK_AGENT = 12,     /* str    HELLO: client description */
	WK_BROKER = 13,    /* str    WELCOME: broker instance id (hex) */
	WK_MAX_FRAME = 14, /* uint   WELCOME: broker's maximum frame */
	WK_TIMEOUT = 15,   /* uint   REQUEST: deadline in ms from now, 0 none */
	WK_FLAGS = 16,     /* uint   SEND/REQUEST/HELLO/WELCOME: WF_* bits */
	WK_UID = 17,       /* uint   stamped: sender's uid (authentication) */
	WK_KEY = 18,       /* bin    stamped: sender's key id (authentication) */
	WK_REF = 19,       /* uint   ERROR: kind of the frame it answers */
	WK_CHALLENGE = 20, /* bin32  WELCOME: auth challenge */
	WK_PK = 21,        /* bin32  AUTH: public key */
	WK_NONCE = 22,     /* bin32  AUTH: client nonce */
	WK_SIG = 23,       /* bin    AUTH: signature, 1..64 bytes (64 valid) */
	WK_TOPIC = 24,     /* str    PUBLISH topic / SUBSCRIBE pattern */
	WK_POLICY = 25,    /* uint   SUBSCRIBE: slow-consumer policy */
	WK_COUNT = 26,     /* uint64 GAP: messages lost; MONITOR: length of a
	                    *        tapped frame cut to its header; ERROR:
	                    *        messages of a batch it answers */
	WK_SUB = 27,       /* uint64 id of the SUBSCRIBE/WATCH/MONITOR a frame
	                    *        belongs to (deliveries, GAP, UN*) */
	WK_EVENT = 28,     /* uint   PRESENCE: enum wire_presence_event;
	                    *        MONITOR: enum wire_monitor_dir */
	WK_REASON = 29,    /* uint   PRESENCE released: enum wire_presence_reason */
	WK_FILTER = 30,    /* str    MONITOR: which frames to tap */
	WK_FDS = 31,       /* uint   SEND/REQUEST/REPLY: descriptors passed
	                    *        with the frame (SCM_RIGHTS on its first
	                    *        byte), 1..IPCHUB_MAX_FDS_PER_FRAME */
	WK_MEMFD = 32,     /* uint64 SEND/REQUEST/REPLY: the body is not inline
	                    *        but the whole content of the frame's one
	                    *        descriptor, a sealed memfd of this many
	                    *        bytes, 1..IPCHUB_MAX_MEMFD_BODY (6.10) */
	/* 33..38: allotted to other work, not used by this version. */
	WK_ORIGIN = 39,    /* str    SEND/REQUEST/REPLY C->B from a bridge
	                    *        connection: the remote sender `name@hub`,
	                    *        stamped as `from` */
	WK_CLAIM_UID = 40, /* uint   SEND/REQUEST/REPLY from a bridge: the uid
	                    *        the origin hub stamped (a claim) */
	WK_CLAIM_KEY = 41, /* bin    same, the origin hub's verified key id */
	WK_KEY_MAX_ = 42
};

/* WK_POLICY: what the broker does when a subscriber falls behind. */
enum wire_policy {
	WIRE_POLICY_DROP_OLDEST = 0, /* drop the oldest queued publication */
	WIRE_POLICY_DROP_NEWEST = 1, /* drop the publication that arrives */
	WIRE_POLICY_DISCONNECT = 2,  /* close the subscriber (BYE QUEUE_FULL) */
	WIRE_POLICY_BLOCK = 3,       /* park the publisher (backpressure) */
	WIRE_POLICY_MAX_ = 4
};

/* WK_EVENT of PRESENCE. */
enum wire_presence_event {
	WIRE_PRESENCE_OWNED = 1,      /* answer to WATCH: the name has an owner */
	WIRE_PRESENCE_UNOWNED = 2,    /* answer to WATCH: nobody owns the name */
	WIRE_PRESENCE_REGISTERED = 3, /* change: the name was registered */
	WIRE_PRESENCE_RELEASED = 4,   /* change: the name was released */
	WIRE_PRESENCE_EVENT_MAX_ = 5
};

/* WK_REASON of PRESENCE RELEASED. */
enum wire_presence_reason {
	WIRE_REASON_UNREGISTER = 1, /* the owner sent UNREGISTER */
	WIRE_REASON_DISCONNECT = 2, /* the owner's connection closed */
	WIRE_REASON_REVOKED = 3,    /* the broker took it away (policy) */
	WIRE_REASON_MAX_ = 4
};

/* WK_EVENT of a tapped (B->C) MONITOR frame: which way the frame went. */
enum wire_monitor_dir {
	WIRE_MONITOR_IN = 1,  /* the broker read it from `conn` */
	WIRE_MONITOR_OUT = 2  /* the broker wrote it to `conn` */
};

/* WK_FLAGS bits. */
enum wire_flag {
	/* SEND/REQUEST: if the receiver's queue is over its high-water mark,
	 * answer QUEUE_FULL at once instead of slowing the sender down. */
	WF_NOWAIT = 1u << 0,
	/* SEND (both ways): the body is a batch, an array of 1 to
	 * IPCHUB_MAX_BATCH message bodies with consecutive ids starting at the
	 * frame's id (PROTOCOL.md 6.3.1). HELLO: the client accepts batched
	 * deliveries. WELCOME: the broker accepts batched SENDs. */
	WF_BATCH = 1u << 1,
	/* HELLO: the client reads with recvmsg() and accepts frames that
	 * carry descriptors (WK_FDS). WELCOME: the broker accepts them. */
	WF_FDS = 1u << 2,
	/* HELLO (with FDS): the client maps memfd bodies (WK_MEMFD).
	 * WELCOME: the broker accepts and forwards them (PROTOCOL.md 6.10). */
	WF_MEMFD = 1u << 3,
	/* HELLO: the client accepts batched PUBLISH deliveries (a PUBLISH
	 * with flags BATCH, PROTOCOL.md 10.2.1). WELCOME: the broker accepts
	 * batched PUBLISHes. BATCH alone covers SEND only, so that clients
	 * older than batched publications never receive one. */
	WF_PUB_BATCH = 1u << 4,
	/* HELLO: this connection is a federation bridge (ipchub-bridge,
	 * docs/FEDERATION.md): it may register remote names (`name@hub`) and
	 * carry origin and claims. Only the broker's own uid or root.
	 * WELCOME: accepted. */
	WF_BRIDGE = 1u << 6,
	WF_ALL_ = WF_NOWAIT | WF_BATCH | WF_FDS | WF_MEMFD | WF_PUB_BATCH |
		  WF_BRIDGE
};

/* Error codes (WK_CODE). A closed set: every code is documented in
 * PROTOCOL.md and has a name in frame.c. Never renumber. */
enum wire_code {
	WIRE_E_OK = 0,
	WIRE_E_BAD_FRAME = 1,           /* fatal: malformed frame or header */
	WIRE_E_TOO_LARGE = 2,           /* fatal: length over the maximum */
	WIRE_E_UNSUPPORTED_VERSION = 3, /* fatal: no common version */
	WIRE_E_PROTOCOL = 4,            /* fatal: valid frame, wrong time/side */
	WIRE_E_BAD_NAME = 5,            /* name breaks the grammar / reserved */
	WIRE_E_NAME_TAKEN = 6,          /* another connection owns the name */
	WIRE_E_NOT_OWNER = 7,           /* unregister of a name not held */
	WIRE_E_NO_SUCH_PEER = 8,        /* nobody owns the destination */
	WIRE_E_PEER_GONE = 9,           /* destination left before answering */
	WIRE_E_TIMEOUT = 10,            /* request deadline passed */
	WIRE_E_QUEUE_FULL = 11,         /* receiver over HWM and WF_NOWAIT */
	WIRE_E_LIMIT = 12,              /* a per-connection limit was reached */
	WIRE_E_NOT_AUTHORIZED = 13,     /* policy forbids this */
	WIRE_E_AUTH_FAILED = 14,        /* fatal: authentication failed */
	WIRE_E_NO_SUCH_REQUEST = 15,    /* REPLY/CANCEL for no pending request */
	WIRE_E_REMOTE_ERROR = 16,       /* the responder reported a failure */
	WIRE_E_CANCELLED = 17,          /* the requester cancelled */
	WIRE_E_SHUTTING_DOWN = 18,      /* broker is stopping */
	WIRE_E_INTERNAL = 19,           /* broker-side failure (e.g. memory) */
	WIRE_E_BAD_BODY = 20,           /* body is not exactly one valid value */
	WIRE_E_BAD_FILTER = 21,         /* MONITOR filter is malformed */
	WIRE_E_FDS_UNSUPPORTED = 22,    /* receiver did not announce FDS */
	WIRE_E_MEMFD_UNSEALED = 23,     /* memfd body lacks its seals */
	WIRE_E_MEMFD_SIZE = 24,         /* memfd size != WK_MEMFD */
	WIRE_E_MEMFD_INLINE = 25,       /* inline fallback over max_frame */
	WIRE_E_CODE_MAX_ = 26
};

/* The broker answers requests addressed to names with this prefix itself;
 * clients may not register them. "ipchub" alone is reserved too. */
#define WIRE_RESERVED_PREFIX "ipchub."
#define WIRE_BROKER_NAME "ipchub"
#define WIRE_SVC_PEERS "ipchub.peers"
#define WIRE_SVC_PING "ipchub.ping"
#define WIRE_SVC_STATS "ipchub.stats"

#endif
