/*
 * frame.c - frame codec of wire protocol v1.
 *
 * Model: two static tables drive everything. frame_keys[] says, for each
 * header key, its one msgpack type and where it lives in struct frame_hdr
 * (offset and size of the field, and of its length field for strings and
 * the variable-length key id); from the size the decoder knows the largest
 * value or string that fits. kind_rules[kind][dir] says whether a kind may
 * be sent in a direction and which keys it requires and allows there.
 * Decoding is a single pass over the header map under a byte budget capped
 * at IPCHUB_MAX_HEADER, followed by the per-kind checks; it never
 * allocates and never reads past the reader's budget. Failure reasons are
 * static strings, built at compile time per key from FRAME_KEYS below, so
 * the codec is reentrant and holds no mutable state.
 */
#include "frame.h"

#include <assert.h>
#include <stddef.h>
#include <string.h>

#include "mpw.h"

/* X(key, name, type, field): the header keys, their names in messages and
 * their msgpack type. U = unsigned int sized by the field, STR = str of at
 * most sizeof(field) - 1 bytes, BIN = bin of exactly sizeof(field) bytes,
 * BINV = bin of 1..sizeof(field) bytes. */
#define FRAME_KEYS(X)                                   \
	X(WK_KIND, "kind", U, kind)                     \
	X(WK_ID, "id", U, id)                           \
	X(WK_TO, "to", STR, to)                         \
	X(WK_TO_ID, "to_id", U, to_id)                  \
	X(WK_FROM, "from", STR, from)                   \
	X(WK_FROM_ID, "from_id", U, from_id)            \
	X(WK_NAME, "name", STR, name)                   \
	X(WK_CODE, "code", U, code)                     \
	X(WK_MSG, "msg", STR, msg)                      \
	X(WK_VER, "ver", U, ver)                        \
	X(WK_VER_MIN, "ver_min", U, ver_min)            \
	X(WK_CONN, "conn", U, conn)                     \
	X(WK_AGENT, "agent", STR, agent)                \
	X(WK_BROKER, "broker", STR, broker)             \
	X(WK_MAX_FRAME, "max_frame", U, max_frame)      \
	X(WK_TIMEOUT, "timeout", U, timeout)            \
	X(WK_FLAGS, "flags", U, flags)                  \
	X(WK_UID, "uid", U, uid)                        \
	X(WK_KEY, "key", BINV, key)                     \
	X(WK_REF, "ref", U, ref)                        \
	X(WK_CHALLENGE, "challenge", BIN, challenge)    \
	X(WK_PK, "pk", BIN, pk)                         \
	X(WK_NONCE, "nonce", BIN, nonce)                \
	X(WK_SIG, "sig", BINV, sig)                      \
	X(WK_TOPIC, "topic", STR, topic)                \
	X(WK_POLICY, "policy", U, policy)               \
	X(WK_COUNT, "count", U, count)                  \
	X(WK_SUB, "sub", U, sub)                        \
	X(WK_EVENT, "event", U, event)                  \
	X(WK_REASON, "reason", U, reason)               \
	X(WK_FILTER, "filter", STR, filter)             \
	X(WK_FDS, "fds", U, fds)                        \
	X(WK_MEMFD, "memfd", U, memfd)                  \
	X(WK_ORIGIN, "origin", STR, origin)             \
	X(WK_CLAIM_UID, "claim_uid", U, claim_uid)      \
	X(WK_CLAIM_KEY, "claim_key", BINV, claim_key)

enum fk_type { FT_U, FT_STR, FT_BIN, FT_BINV };

struct fkey {
	uint8_t type;    /* enum fk_type */
	uint16_t off;    /* offset of the field in struct frame_hdr */
	uint16_t size;   /* sizeof the field */
	uint16_t len_off; /* offset of its uint16_t length (STR, BINV) */
};

#define FIELD_SIZE(f) sizeof(((struct frame_hdr *)0)->f)
#define LEN_OFF_U(f) 0
#define LEN_OFF_BIN(f) 0
#define LEN_OFF_STR(f) offsetof(struct frame_hdr, f##_len)
#define LEN_OFF_BINV(f) offsetof(struct frame_hdr, f##_len)
#define FKEY_ENTRY(k, n, t, f)                                          \
	[k] = { FT_##t, offsetof(struct frame_hdr, f), FIELD_SIZE(f),   \
		LEN_OFF_##t(f) },

static const struct fkey frame_keys[WK_KEY_MAX_] = { FRAME_KEYS(FKEY_ENTRY) };

/* Failure reasons naming the key, one table per failure class. */
#define RANGE_WHY_U "value out of range"
#define RANGE_WHY_STR "too long"
#define RANGE_WHY_BIN "has wrong length"
#define RANGE_WHY_BINV "has wrong length"
#define WHY_DUP(k, n, t, f) [k] = "duplicate header key '" n "'",
#define WHY_TYPE(k, n, t, f) [k] = "header key '" n "' has wrong type",
#define WHY_RANGE(k, n, t, f) [k] = "header key '" n "' " RANGE_WHY_##t,
#define WHY_MISSING(k, n, t, f) [k] = "missing required header key '" n "'",
#define WHY_DENIED(k, n, t, f) [k] = "header key '" n "' not allowed for this kind",

static const char *const why_dup[WK_KEY_MAX_] = { FRAME_KEYS(WHY_DUP) };
static const char *const why_type[WK_KEY_MAX_] = { FRAME_KEYS(WHY_TYPE) };
static const char *const why_range[WK_KEY_MAX_] = { FRAME_KEYS(WHY_RANGE) };
static const char *const why_missing[WK_KEY_MAX_] = { FRAME_KEYS(WHY_MISSING) };
static const char *const why_denied[WK_KEY_MAX_] = { FRAME_KEYS(WHY_DENIED) };

/* Which keys a kind requires and allows, per direction. WK_KIND is always
 * required and is not listed. */
struct kind_rule {
	bool legal;     /* the kind may be sent in this direction */
	uint64_t req;   /* keys that must be present */
	uint64_t opt;   /* keys that may be present */
	uint32_t flags; /* WF_* bits allowed in WK_FLAGS */
};

#define K(x) FH(WK_##x)
#define RULE(r, o, f) { true, (r), (o), (f) }
#define C2B(kind, r, o) [WIRE_##kind][FRAME_C2B] = RULE(r, o, 0)
#define B2C(kind, r, o) [WIRE_##kind][FRAME_B2C] = RULE(r, o, 0)
#define C2BF(kind, r, o, f) [WIRE_##kind][FRAME_C2B] = RULE(r, (o) | K(FLAGS), f)
#define B2CF(kind, r, o, f) [WIRE_##kind][FRAME_B2C] = RULE(r, (o) | K(FLAGS), f)

/* Federation (PROTOCOL.md 6.9): a bridge connection may add the remote
 * origin and claims; the broker checks who sent them (route.c) and
 * delivers the claims, never the origin (it becomes `from`). */
#define FED_C2B (K(ORIGIN) | K(CLAIM_UID) | K(CLAIM_KEY))
#define FED_B2C (K(CLAIM_UID) | K(CLAIM_KEY))

static const struct kind_rule kind_rules[WIRE_KIND_MAX_][2] = {
	C2BF(HELLO, K(VER) | K(VER_MIN), K(AGENT),
	     WF_BATCH | WF_FDS | WF_MEMFD | WF_PUB_BATCH | WF_BRIDGE),
	B2CF(WELCOME, K(VER) | K(CONN) | K(BROKER) | K(MAX_FRAME), K(CHALLENGE),
	     WF_BATCH | WF_FDS | WF_MEMFD | WF_PUB_BATCH | WF_BRIDGE),
	C2B(AUTH, K(PK) | K(NONCE) | K(SIG), 0),
	C2B(BYE, 0, K(CODE) | K(MSG)),
	B2C(BYE, 0, K(CODE) | K(MSG)),
	C2B(PING, K(ID), 0),
	B2C(PONG, K(ID), 0),
	C2B(REGISTER, K(ID) | K(NAME), 0),
	C2B(UNREGISTER, K(ID) | K(NAME), 0),
	B2C(OK, K(ID), 0),
	B2C(ERROR, K(ID) | K(CODE), K(MSG) | K(REF) | K(TO) | K(NAME) | K(COUNT)),
	C2BF(SEND, K(ID) | K(TO), K(FDS) | K(MEMFD) | FED_C2B,
	     WF_NOWAIT | WF_BATCH),
	B2CF(SEND, K(ID) | K(TO) | K(FROM_ID),
	     K(FROM) | K(UID) | K(KEY) | K(FDS) | K(MEMFD) | FED_B2C, WF_BATCH),
	C2BF(REQUEST, K(ID) | K(TO), K(TIMEOUT) | K(FDS) | K(MEMFD) | FED_C2B,
	     WF_NOWAIT),
	B2C(REQUEST, K(ID) | K(TO) | K(FROM_ID),
	    K(FROM) | K(TIMEOUT) | K(UID) | K(KEY) | K(FDS) | K(MEMFD) | FED_B2C),
	C2B(REPLY, K(ID) | K(TO_ID),
	    K(CODE) | K(MSG) | K(FDS) | K(MEMFD) | FED_C2B),
	B2C(REPLY, K(ID) | K(FROM_ID),
	    K(FROM) | K(CODE) | K(MSG) | K(UID) | K(KEY) | K(FDS) | K(MEMFD) |
		    FED_B2C),
	C2B(CANCEL, K(ID), 0),
	C2B(SUBSCRIBE, K(ID) | K(TOPIC), K(POLICY)),
	C2B(UNSUBSCRIBE, K(ID) | K(SUB), 0),
	C2BF(PUBLISH, K(ID) | K(TOPIC), 0, WF_BATCH),
	B2CF(PUBLISH, K(ID) | K(TOPIC) | K(SUB) | K(FROM_ID),
	     K(FROM) | K(UID) | K(KEY), WF_BATCH),
	B2C(GAP, K(SUB) | K(COUNT), 0),
	C2B(WATCH, K(ID) | K(NAME), 0),
	C2B(UNWATCH, K(ID) | K(SUB), 0),
	B2C(PRESENCE, K(ID) | K(NAME) | K(EVENT), K(CONN) | K(REASON)),
	C2B(MONITOR, K(ID), K(FILTER)),
	B2C(MONITOR, K(SUB) | K(CONN) | K(EVENT), K(COUNT)),
};

static const char *const kind_names[WIRE_KIND_MAX_] = {
	[WIRE_HELLO] = "HELLO",         [WIRE_WELCOME] = "WELCOME",
	[WIRE_AUTH] = "AUTH",           [WIRE_BYE] = "BYE",
	[WIRE_PING] = "PING",           [WIRE_PONG] = "PONG",
	[WIRE_REGISTER] = "REGISTER",   [WIRE_UNREGISTER] = "UNREGISTER",
	[WIRE_OK] = "OK",               [WIRE_ERROR] = "ERROR",
	[WIRE_SEND] = "SEND",           [WIRE_REQUEST] = "REQUEST",
	[WIRE_REPLY] = "REPLY",         [WIRE_CANCEL] = "CANCEL",
	[WIRE_SUBSCRIBE] = "SUBSCRIBE", [WIRE_UNSUBSCRIBE] = "UNSUBSCRIBE",
	[WIRE_PUBLISH] = "PUBLISH",     [WIRE_GAP] = "GAP",
	[WIRE_WATCH] = "WATCH",         [WIRE_UNWATCH] = "UNWATCH",
	[WIRE_PRESENCE] = "PRESENCE",   [WIRE_MONITOR] = "MONITOR",
};

struct code_info {
	const char *name;
	const char *text;
	bool fatal;
};

static const struct code_info code_info[WIRE_E_CODE_MAX_] = {
	[WIRE_E_OK] = { "OK", "The operation succeeded.", false },
	[WIRE_E_BAD_FRAME] = { "BAD_FRAME",
		"The frame or its header is malformed.", true },
	[WIRE_E_TOO_LARGE] = { "TOO_LARGE",
		"The frame is longer than the broker accepts.", true },
	[WIRE_E_UNSUPPORTED_VERSION] = { "UNSUPPORTED_VERSION",
		"Client and broker have no protocol version in common.", true },
	[WIRE_E_PROTOCOL] = { "PROTOCOL",
		"The frame is valid but not allowed at this point of the "
		"conversation.", true },
	[WIRE_E_BAD_NAME] = { "BAD_NAME",
		"The name breaks the name grammar or is reserved for the "
		"broker.", false },
	[WIRE_E_NAME_TAKEN] = { "NAME_TAKEN",
		"Another connection already owns this name.", false },
	[WIRE_E_NOT_OWNER] = { "NOT_OWNER",
		"This connection does not own the name it tried to release.",
		false },
	[WIRE_E_NO_SUCH_PEER] = { "NO_SUCH_PEER",
		"No connection owns the destination name.", false },
	[WIRE_E_PEER_GONE] = { "PEER_GONE",
		"The destination disconnected before answering.", false },
	[WIRE_E_TIMEOUT] = { "TIMEOUT",
		"The request's deadline passed without a reply.", false },
	[WIRE_E_QUEUE_FULL] = { "QUEUE_FULL",
		"The receiver's queue is full and the sender asked not to "
		"wait.", false },
	[WIRE_E_LIMIT] = { "LIMIT",
		"A per-connection limit of the broker was reached.", false },
	[WIRE_E_NOT_AUTHORIZED] = { "NOT_AUTHORIZED",
		"The broker's policy does not allow this operation.", false },
	[WIRE_E_AUTH_FAILED] = { "AUTH_FAILED",
		"Authentication failed.", true },
	[WIRE_E_NO_SUCH_REQUEST] = { "NO_SUCH_REQUEST",
		"There is no pending request with this id.", false },
	[WIRE_E_REMOTE_ERROR] = { "REMOTE_ERROR",
		"The responder reported that the request failed.", false },
	[WIRE_E_CANCELLED] = { "CANCELLED",
		"The requester cancelled the request.", false },
	[WIRE_E_SHUTTING_DOWN] = { "SHUTTING_DOWN",
		"The broker is shutting down.", false },
	[WIRE_E_INTERNAL] = { "INTERNAL",
		"The broker failed internally (for example, out of memory).",
		false },
	[WIRE_E_BAD_BODY] = { "BAD_BODY",
		"The body is not exactly one valid msgpack value.", false },
	[WIRE_E_BAD_FILTER] = { "BAD_FILTER",
		"The monitor filter is malformed.", false },
	[WIRE_E_FDS_UNSUPPORTED] = { "FDS_UNSUPPORTED",
		"The receiver does not accept file descriptors; they were closed.",
		false },
	[WIRE_E_MEMFD_UNSEALED] = { "MEMFD_UNSEALED",
		"The memfd body is not a memfd sealed against writing, shrinking, "
		"growing and further sealing; it was closed.", false },
	[WIRE_E_MEMFD_SIZE] = { "MEMFD_SIZE",
		"The memfd body's size differs from the length the frame "
		"declares; it was closed.", false },
	[WIRE_E_MEMFD_INLINE] = { "MEMFD_INLINE",
		"The receiver takes no memfd bodies and the body is too large "
		"to be sent to it inline.", false },
};

int frame_len_check(uint32_t len, uint32_t max_frame)
{
	if (len < IPCHUB_MIN_FRAME)
		return WIRE_E_BAD_FRAME;
	if (len > max_frame)
		return WIRE_E_TOO_LARGE;
	return WIRE_E_OK;
}

/* Zero what a reader may look at without checking `has`: every field up
 * to the first array (the scalars and the string lengths) and each string's
 * first byte. The arrays themselves (2.4 KB) are valid only under their
 * `has` bit, and clearing them per frame was a tenth of the broker's
 * instructions per small message. */
static void frame_reset(struct frame_hdr *h)
{
	memset(h, 0, offsetof(struct frame_hdr, to));
	h->to[0] = h->from[0] = h->name[0] = h->topic[0] = '\0';
	h->msg[0] = h->agent[0] = h->broker[0] = '\0';
	h->origin[0] = '\0';
}

void frame_init(struct frame_hdr *h, enum wire_kind kind)
{
	frame_reset(h);
	h->kind = (uint8_t)kind;
	h->has = FH(WK_KIND);
}

void frame_set_str(struct frame_hdr *h, enum wire_key key, const char *s,
		   size_t len)
{
	assert((unsigned)key < WK_KEY_MAX_);
	const struct fkey *fk = &frame_keys[key];
	char *dst = (char *)h + fk->off;
	uint16_t n;

	assert(fk->type == FT_STR);
	if (len > (size_t)fk->size - 1)
		len = (size_t)fk->size - 1;
	n = (uint16_t)len;
	if (n > 0)
		memcpy(dst, s, n);
	dst[n] = '\0';
	memcpy((char *)h + fk->len_off, &n, sizeof(n));
	h->has |= FH(key);
}

static void fk_put_uint(struct frame_hdr *h, const struct fkey *fk,
			uint64_t v)
{
	char *p = (char *)h + fk->off;

	switch (fk->size) {
	case 1: { uint8_t x = (uint8_t)v; memcpy(p, &x, 1); break; }
	case 4: { uint32_t x = (uint32_t)v; memcpy(p, &x, 4); break; }
	default: memcpy(p, &v, 8); break;
	}
}

static uint64_t fk_get_uint(const struct frame_hdr *h, const struct fkey *fk)
{
	const char *p = (const char *)h + fk->off;

	switch (fk->size) {
	case 1: { uint8_t x; memcpy(&x, p, 1); return x; }
	case 4: { uint32_t x; memcpy(&x, p, 4); return x; }
	default: { uint64_t x; memcpy(&x, p, 8); return x; }
	}
}

static uint64_t fk_uint_max(const struct fkey *fk)
{
	return fk->size >= 8 ? UINT64_MAX : (UINT64_C(1) << (8 * fk->size)) - 1;
}

static uint16_t fk_get_len(const struct frame_hdr *h, const struct fkey *fk)
{
	uint16_t n;

	memcpy(&n, (const char *)h + fk->len_off, sizeof(n));
	return n;
}

/* Why for a reader failure that is not about a particular key's value. */
static const char *why_mpr(int st, bool budget_capped)
{
	switch (st) {
	case MPR_E_SHORT:
		return budget_capped ? "header larger than 4096 bytes"
				     : "header truncated";
	case MPR_E_INVALID:
		return "invalid msgpack byte 0xc1 in header";
	default:
		return "malformed header";
	}
}

/* Read the value of key k into h. */
static int frame_read_value(struct mpr *r, struct frame_hdr *h, unsigned k,
			    bool capped, const char **why)
{
	const struct fkey *fk = &frame_keys[k];
	char *field = (char *)h + fk->off;
	uint64_t v;
	size_t len = 0;
	uint16_t len16;
	int st;

	switch (fk->type) {
	case FT_U:
		st = mpr_read_uint(r, &v);
		if (st == MPR_OK && v > fk_uint_max(fk))
			st = MPR_E_RANGE;
		if (st == MPR_OK)
			fk_put_uint(h, fk, v);
		break;
	case FT_STR:
		st = mpr_read_str(r, field, fk->size, &len);
		break;
	case FT_BIN:
		st = mpr_read_bin_exact(r, field, fk->size);
		break;
	default: /* FT_BINV */
		st = mpr_read_bin(r, field, fk->size, &len);
		if (st == MPR_OK && len == 0)
			st = MPR_E_RANGE;
		break;
	}
	if ((fk->type == FT_STR || fk->type == FT_BINV) && st == MPR_OK) {
		len16 = (uint16_t)len;
		memcpy((char *)h + fk->len_off, &len16, sizeof(len16));
	}
	if (st == MPR_E_TYPE)
		*why = why_type[k];
	else if (st == MPR_E_RANGE)
		*why = why_range[k];
	else if (st != MPR_OK)
		*why = why_mpr(st, capped);
	return st;
}

/* Lowest key set in mask (mask != 0). */
static unsigned lowest_key(uint64_t mask)
{
	unsigned k = 0;

	while (!(mask & 1u)) {
		mask >>= 1;
		k++;
	}
	return k;
}

/* Checks that need the whole header: kind, direction, key sets, values. */
static int frame_check_kind(const struct frame_hdr *h, enum frame_dir dir,
			    const char **why)
{
	const struct kind_rule *rule;
	uint64_t missing, extra;

	if (!(h->has & FH(WK_KIND))) {
		*why = why_missing[WK_KIND];
		return WIRE_E_BAD_FRAME;
	}
	if (h->kind >= WIRE_KIND_MAX_ || (!kind_rules[h->kind][0].legal &&
					   !kind_rules[h->kind][1].legal)) {
		*why = "kind not supported";
		return WIRE_E_BAD_FRAME;
	}
	rule = &kind_rules[h->kind][dir];
	if (!rule->legal) {
		*why = dir == FRAME_C2B ? "kind not allowed from client"
					: "kind not allowed from broker";
		return WIRE_E_BAD_FRAME;
	}
	missing = rule->req & ~h->has;
	if (missing) {
		*why = why_missing[lowest_key(missing)];
		return WIRE_E_BAD_FRAME;
	}
	extra = h->has & ~(rule->req | rule->opt | FH(WK_KIND));
	if (extra) {
		*why = why_denied[lowest_key(extra)];
		return WIRE_E_BAD_FRAME;
	}
	if ((h->has & FH(WK_FLAGS)) && (h->flags & ~rule->flags)) {
		*why = "header key 'flags' has bits this kind does not allow";
		return WIRE_E_BAD_FRAME;
	}
	if ((h->has & FH(WK_CODE)) && h->code >= WIRE_E_CODE_MAX_) {
		*why = "header key 'code' is not a known error code";
		return WIRE_E_BAD_FRAME;
	}
	if ((h->has & FH(WK_FDS)) &&
	    (h->fds == 0 || h->fds > IPCHUB_MAX_FDS_PER_FRAME)) {
		*why = "header key 'fds' is not 1..IPCHUB_MAX_FDS_PER_FRAME";
		return WIRE_E_BAD_FRAME;
	}
	if ((h->has & FH(WK_FDS)) && (h->has & FH(WK_FLAGS)) &&
	    (h->flags & WF_BATCH)) {
		*why = "a batch (flags BATCH) cannot carry descriptors";
		return WIRE_E_BAD_FRAME;
	}
	if ((h->has & FH(WK_MEMFD)) &&
	    (h->memfd == 0 || h->memfd > IPCHUB_MAX_MEMFD_BODY)) {
		*why = "header key 'memfd' is not 1..IPCHUB_MAX_MEMFD_BODY";
		return WIRE_E_BAD_FRAME;
	}
	if ((h->has & FH(WK_MEMFD)) && (!(h->has & FH(WK_FDS)) || h->fds != 1)) {
		*why = "a memfd body (key 'memfd') travels as the frame's one descriptor (fds: 1)";
		return WIRE_E_BAD_FRAME;
	}
	if ((h->has & FH(WK_FLAGS)) && (h->flags & WF_MEMFD) &&
	    !(h->flags & WF_FDS)) {
		*why = "flag MEMFD needs flag FDS (memfd bodies are descriptors)";
		return WIRE_E_BAD_FRAME;
	}
	if ((h->has & FH(WK_POLICY)) && h->policy >= WIRE_POLICY_MAX_) {
		*why = "header key 'policy' is not a known policy";
		return WIRE_E_BAD_FRAME;
	}
	if (h->kind == WIRE_HELLO && h->ver_min > h->ver) {
		*why = "HELLO ver_min is above ver";
		return WIRE_E_BAD_FRAME;
	}
	return WIRE_E_OK;
}

static int frame_decode_hdr(struct mpr *r, enum frame_dir dir,
			    struct frame_hdr *h, bool capped,
			    const char **why)
{
	uint32_t n;
	uint64_t key;
	int st;

	st = mpr_read_map(r, &n);
	if (st != MPR_OK) {
		*why = st == MPR_E_TYPE ? "header is not a map"
					: why_mpr(st, capped);
		return WIRE_E_BAD_FRAME;
	}
	if (n == 0) {
		*why = "header map is empty";
		return WIRE_E_BAD_FRAME;
	}
	if (n > IPCHUB_MAX_HEADER_KEYS) {
		*why = "header has too many keys";
		return WIRE_E_BAD_FRAME;
	}
	for (uint32_t e = 0; e < n; e++) {
		st = mpr_read_uint(r, &key);
		if (st != MPR_OK) {
			*why = st == MPR_E_TYPE
				       ? "header key is not an unsigned integer"
				       : why_mpr(st, capped);
			return WIRE_E_BAD_FRAME;
		}
		/* Numbers below the maximum that this version does not
		 * define (allotted elsewhere) have no table entry. */
		if (key >= WK_KEY_MAX_ || frame_keys[key].size == 0) {
			*why = "unknown header key";
			return WIRE_E_BAD_FRAME;
		}
		if (h->has & FH(key)) {
			*why = why_dup[key];
			return WIRE_E_BAD_FRAME;
		}
		if (frame_read_value(r, h, (unsigned)key, capped, why) != MPR_OK)
			return WIRE_E_BAD_FRAME;
		h->has |= FH(key);
	}
	return frame_check_kind(h, dir, why);
}

int frame_decode(struct mpr *r, enum frame_dir dir, struct frame_hdr *h,
		 bool *has_body, const char **why)
{
	const char *dummy;
	uint64_t total = mpr_left(r);
	bool capped = total > IPCHUB_MAX_HEADER;
	uint64_t budget = capped ? IPCHUB_MAX_HEADER : total;
	int rc;

	if (why == NULL)
		why = &dummy;
	frame_reset(h);
	/* The header may use at most IPCHUB_MAX_HEADER bytes of the frame. */
	r->left = budget;
	rc = frame_decode_hdr(r, dir, h, capped, why);
	r->left = total - (budget - r->left);
	if (rc != WIRE_E_OK)
		return rc;
	if (r->left > 0 && (!frame_kind_has_body(h->kind) ||
			    (h->kind == WIRE_MONITOR && dir == FRAME_C2B))) {
		*why = "body not allowed for this kind";
		return WIRE_E_BAD_FRAME;
	}
	if (r->left > 0 && (h->has & FH(WK_MEMFD))) {
		*why = "a frame with a memfd body (key 'memfd') has no inline body";
		return WIRE_E_BAD_FRAME;
	}
	*has_body = r->left > 0;
	return WIRE_E_OK;
}

int frame_body_check(struct mpr *r, const char **why)
{
	const char *dummy;
	int st = mpr_skip_value(r, IPCHUB_MAX_BODY_DEPTH);

	if (why == NULL)
		why = &dummy;
	switch (st) {
	case MPR_OK:
		if (mpr_left(r) == 0)
			return WIRE_E_OK;
		*why = "trailing bytes after the body's value";
		break;
	case MPR_E_SHORT:
		*why = "body truncated or declares more bytes than it has";
		break;
	case MPR_E_DEPTH:
		*why = "body nested more than 32 levels deep";
		break;
	case MPR_E_INVALID:
		*why = "invalid msgpack byte 0xc1 in body";
		break;
	default:
		*why = "malformed body";
		break;
	}
	return WIRE_E_BAD_BODY;
}

int frame_batch_check(struct mpr *r, uint32_t *count, const char **why)
{
	const char *dummy;
	uint32_t n, i;
	int st;

	if (why == NULL)
		why = &dummy;
	*count = 0;
	st = mpr_read_array(r, &n);
	if (st == MPR_E_TYPE) {
		*why = "batch body is not an array";
		return WIRE_E_BAD_BODY;
	}
	if (st != MPR_OK) {
		*why = st == MPR_E_INVALID ? "invalid msgpack byte 0xc1 in body"
					   : "batch truncated or declares more elements than it has";
		return WIRE_E_BAD_BODY;
	}
	if (n == 0 || n > IPCHUB_MAX_BATCH) {
		*why = "batch holds no message or more than 65536";
		return WIRE_E_BAD_BODY;
	}
	*count = n;
	for (i = 0; i < n; i++) {
		st = mpr_skip_value(r, IPCHUB_MAX_BODY_DEPTH);
		if (st != MPR_OK) {
			*why = st == MPR_E_DEPTH
				       ? "batched body nested more than 32 levels deep"
				       : "batched body malformed or truncated";
			return WIRE_E_BAD_BODY;
		}
	}
	if (mpr_left(r) != 0) {
		*why = "trailing bytes after the batch";
		return WIRE_E_BAD_BODY;
	}
	return WIRE_E_OK;
}

/* Set bits of a key mask; open-coded, since without -mpopcnt
 * __builtin_popcount is a libgcc call. */
static uint32_t frame_popcount(uint64_t x)
{
	x = x - ((x >> 1) & UINT64_C(0x5555555555555555));
	x = (x & UINT64_C(0x3333333333333333)) +
	    ((x >> 2) & UINT64_C(0x3333333333333333));
	x = (x + (x >> 4)) & UINT64_C(0x0f0f0f0f0f0f0f0f);
	return (uint32_t)((x * UINT64_C(0x0101010101010101)) >> 56);
}

size_t frame_encode_hdr(const struct frame_hdr *h, uint8_t *out, size_t cap)
{
	struct mpw w;
	uint64_t left = h->has;

	assert(h->has & FH(WK_KIND));
	assert((h->has >> WK_KEY_MAX_) == 0);
	mpw_init(&w, out, cap);
	mpw_map(&w, frame_popcount(h->has));
	/* Ascending key order: lowest set bit first. */
	for (; left; left &= left - 1) {
		unsigned k = (unsigned)__builtin_ctzll(left);
		const struct fkey *fk = &frame_keys[k];
		const char *field = (const char *)h + fk->off;

		mpw_uint(&w, k);
		switch (fk->type) {
		case FT_U:
			mpw_uint(&w, fk_get_uint(h, fk));
			break;
		case FT_STR:
			assert(fk_get_len(h, fk) < fk->size);
			mpw_str(&w, field, fk_get_len(h, fk));
			break;
		case FT_BIN:
			mpw_bin(&w, field, fk->size);
			break;
		default: /* FT_BINV */
			assert(fk_get_len(h, fk) <= fk->size);
			mpw_bin(&w, field, fk_get_len(h, fk));
			break;
		}
	}
	assert(!w.overflow);
	assert(w.len <= IPCHUB_MAX_HEADER);
	return w.len;
}

size_t frame_encode(const struct frame_hdr *h, size_t body_len, uint8_t *out,
		    size_t cap)
{
	size_t hlen;

	assert(cap >= IPCHUB_LEN_PREFIX);
	hlen = frame_encode_hdr(h, out + IPCHUB_LEN_PREFIX,
				cap - IPCHUB_LEN_PREFIX);
	assert(body_len <= UINT32_MAX - hlen);
	frame_put_len(out, (uint32_t)(hlen + body_len));
	return IPCHUB_LEN_PREFIX + hlen;
}

bool frame_kind_has_body(int kind)
{
	return kind == WIRE_SEND || kind == WIRE_REQUEST || kind == WIRE_REPLY ||
	       kind == WIRE_PUBLISH || kind == WIRE_MONITOR;
}

const char *frame_kind_name(int kind)
{
	if (kind < 0 || kind >= WIRE_KIND_MAX_ || kind_names[kind] == NULL)
		return "UNKNOWN";
	return kind_names[kind];
}

const char *frame_code_name(int code)
{
	if (code < 0 || code >= WIRE_E_CODE_MAX_)
		return "UNKNOWN";
	return code_info[code].name;
}

const char *frame_code_text(int code)
{
	if (code < 0 || code >= WIRE_E_CODE_MAX_)
		return "Unknown error code.";
	return code_info[code].text;
}

bool frame_code_is_fatal(int code)
{
	if (code < 0 || code >= WIRE_E_CODE_MAX_)
		return false;
	return code_info[code].fatal;
}
