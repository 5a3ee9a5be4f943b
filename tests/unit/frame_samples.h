/*
 * frame_samples.h - sample headers for every legal kind and direction, and
 * a field-by-field header comparison. Shared by test_frame.c, the fuzz
 * target and the corpus generator.
 *
 * The kind table here is written again from PROTOCOL.md on purpose rather
 * than taken from frame.c, so the tests check frame.c's table against an
 * independent statement of the rules.
 */
#ifndef IPCHUB_TESTS_FRAME_SAMPLES_H
#define IPCHUB_TESTS_FRAME_SAMPLES_H

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "frame.h"

struct sample_kind {
	int kind;
	enum frame_dir dir;
	uint64_t req; /* beyond WK_KIND */
	uint64_t opt;
};

#define SK(x) FH(WK_##x)
#define SK_FED_C2B (SK(ORIGIN) | SK(CLAIM_UID) | SK(CLAIM_KEY))
#define SK_FED_B2C (SK(CLAIM_UID) | SK(CLAIM_KEY))
static const struct sample_kind sample_kinds[] = {
	{ WIRE_HELLO, FRAME_C2B, SK(VER) | SK(VER_MIN), SK(AGENT) | SK(FLAGS) },
	{ WIRE_WELCOME, FRAME_B2C, SK(VER) | SK(CONN) | SK(BROKER) | SK(MAX_FRAME),
	  SK(CHALLENGE) | SK(FLAGS) },
	{ WIRE_AUTH, FRAME_C2B, SK(PK) | SK(NONCE) | SK(SIG), 0 },
	{ WIRE_BYE, FRAME_C2B, 0, SK(CODE) | SK(MSG) },
	{ WIRE_BYE, FRAME_B2C, 0, SK(CODE) | SK(MSG) },
	{ WIRE_PING, FRAME_C2B, SK(ID), 0 },
	{ WIRE_PONG, FRAME_B2C, SK(ID), 0 },
	{ WIRE_REGISTER, FRAME_C2B, SK(ID) | SK(NAME), 0 },
	{ WIRE_UNREGISTER, FRAME_C2B, SK(ID) | SK(NAME), 0 },
	{ WIRE_OK, FRAME_B2C, SK(ID), 0 },
	{ WIRE_ERROR, FRAME_B2C, SK(ID) | SK(CODE),
	  SK(MSG) | SK(REF) | SK(TO) | SK(NAME) | SK(COUNT) },
	{ WIRE_SEND, FRAME_C2B, SK(ID) | SK(TO),
	  SK(FLAGS) | SK(FDS) | SK(MEMFD) | SK_FED_C2B },
	{ WIRE_SEND, FRAME_B2C, SK(ID) | SK(TO) | SK(FROM_ID),
	  SK(FROM) | SK(UID) | SK(KEY) | SK(FLAGS) | SK(FDS) | SK(MEMFD) | SK_FED_B2C },
	{ WIRE_REQUEST, FRAME_C2B, SK(ID) | SK(TO),
	  SK(TIMEOUT) | SK(FLAGS) | SK(FDS) | SK(MEMFD) | SK_FED_C2B },
	{ WIRE_REQUEST, FRAME_B2C, SK(ID) | SK(TO) | SK(FROM_ID),
	  SK(FROM) | SK(TIMEOUT) | SK(UID) | SK(KEY) | SK(FDS) | SK(MEMFD) | SK_FED_B2C },
	{ WIRE_REPLY, FRAME_C2B, SK(ID) | SK(TO_ID),
	  SK(CODE) | SK(MSG) | SK(FDS) | SK(MEMFD) | SK_FED_C2B },
	{ WIRE_REPLY, FRAME_B2C, SK(ID) | SK(FROM_ID),
	  SK(FROM) | SK(CODE) | SK(MSG) | SK(UID) | SK(KEY) | SK(FDS) | SK(MEMFD) | SK_FED_B2C },
	{ WIRE_CANCEL, FRAME_C2B, SK(ID), 0 },
	{ WIRE_SUBSCRIBE, FRAME_C2B, SK(ID) | SK(TOPIC), SK(POLICY) },
	{ WIRE_UNSUBSCRIBE, FRAME_C2B, SK(ID) | SK(SUB), 0 },
	{ WIRE_PUBLISH, FRAME_C2B, SK(ID) | SK(TOPIC), SK(FLAGS) },
	{ WIRE_PUBLISH, FRAME_B2C, SK(ID) | SK(TOPIC) | SK(SUB) | SK(FROM_ID),
	  SK(FROM) | SK(UID) | SK(KEY) | SK(FLAGS) },
	{ WIRE_GAP, FRAME_B2C, SK(SUB) | SK(COUNT), 0 },
	{ WIRE_WATCH, FRAME_C2B, SK(ID) | SK(NAME), 0 },
	{ WIRE_UNWATCH, FRAME_C2B, SK(ID) | SK(SUB), 0 },
	{ WIRE_PRESENCE, FRAME_B2C, SK(ID) | SK(NAME) | SK(EVENT),
	  SK(CONN) | SK(REASON) },
	{ WIRE_MONITOR, FRAME_C2B, SK(ID), SK(FILTER) },
	{ WIRE_MONITOR, FRAME_B2C, SK(SUB) | SK(CONN) | SK(EVENT), SK(COUNT) },
};
#define N_SAMPLE_KINDS (sizeof(sample_kinds) / sizeof(sample_kinds[0]))

/* Whether a sample's kind may carry a body in the sample's direction
 * (MONITOR carries one only from the broker). */
static inline bool sample_has_body(const struct sample_kind *sk)
{
	return frame_kind_has_body(sk->kind) &&
	       !(sk->kind == WIRE_MONITOR && sk->dir == FRAME_C2B);
}

/* The same for a header built from mask: a memfd body (WK_MEMFD) is
 * never inline. */
static inline bool sample_mask_has_body(const struct sample_kind *sk,
					uint64_t mask)
{
	return sample_has_body(sk) && !(mask & FH(WK_MEMFD));
}

/* Sample value variants: typical values, the largest values and strings
 * the fields hold, and the smallest ones. */
enum sample_variant { SV_TYPICAL, SV_MAX, SV_MIN, SV_COUNT_ };

static inline void sample_fill_str(struct frame_hdr *h, enum wire_key key,
				   const char *typical, size_t cap,
				   enum sample_variant v)
{
	char buf[IPCHUB_MAX_ERRMSG + 1];

	if (v == SV_TYPICAL) {
		frame_set_str(h, key, typical, strlen(typical));
		return;
	}
	if (v == SV_MIN) {
		frame_set_str(h, key, "a", 1);
		return;
	}
	for (size_t k = 0; k < cap; k++)
		buf[k] = (char)('a' + (k % 26));
	frame_set_str(h, key, buf, cap);
}

static inline void sample_fill_bytes(uint8_t *p, size_t n, unsigned seed)
{
	for (size_t k = 0; k < n; k++)
		p[k] = (uint8_t)(seed * 31u + k * 7u + 1u);
}

/* Set key in h to a sample value (and its bit in h->has). */
static inline void sample_set_key(struct frame_hdr *h, enum wire_key key,
				  enum sample_variant v)
{
	const bool mx = v == SV_MAX, mn = v == SV_MIN;

	switch (key) {
	case WK_KIND:
		return;
	case WK_ID: h->id = mx ? UINT64_MAX : mn ? 0 : 0x0102030405060708u; break;
	case WK_TO: sample_fill_str(h, key, "svc.echo", IPCHUB_MAX_NAME, v); return;
	case WK_TO_ID: h->to_id = mx ? UINT64_MAX : mn ? 0 : 77; break;
	case WK_FROM: sample_fill_str(h, key, "client-1", IPCHUB_MAX_NAME, v); return;
	case WK_FROM_ID: h->from_id = mx ? UINT64_MAX - 1 : mn ? 0 : 300; break;
	case WK_NAME: sample_fill_str(h, key, "svc.name", IPCHUB_MAX_NAME, v); return;
	case WK_CODE: h->code = mx ? WIRE_E_CODE_MAX_ - 1 : mn ? 0 : WIRE_E_REMOTE_ERROR; break;
	case WK_MSG: sample_fill_str(h, key, "something failed", IPCHUB_MAX_ERRMSG, v); return;
	case WK_VER: h->ver = mx ? UINT32_MAX : 1; break;
	case WK_VER_MIN: h->ver_min = mx ? UINT32_MAX : mn ? 0 : 1; break;
	case WK_CONN: h->conn = mx ? UINT64_MAX : mn ? 0 : 42; break;
	case WK_AGENT: sample_fill_str(h, key, "test/1.0 pid=1", IPCHUB_MAX_AGENT, v); return;
	case WK_BROKER:
		sample_fill_str(h, key, "0123456789abcdef0123456789abcdef",
				IPCHUB_BROKER_ID_LEN, v);
		return;
	case WK_MAX_FRAME: h->max_frame = mx ? UINT32_MAX : mn ? 0 : IPCHUB_MAX_FRAME_DEFAULT; break;
	case WK_TIMEOUT: h->timeout = mx ? UINT32_MAX : mn ? 0 : 5000; break;
	case WK_FLAGS: h->flags = mn ? 0 : h->kind == WIRE_REQUEST ? WF_NOWAIT : WF_BATCH; break;
	case WK_UID: h->uid = mx ? UINT32_MAX : mn ? 0 : 1000; break;
	case WK_KEY:
		h->key_len = mx ? 32 : mn ? 1 : 20;
		sample_fill_bytes(h->key, h->key_len, 1);
		break;
	case WK_REF: h->ref = mx ? UINT32_MAX : mn ? 0 : WIRE_SEND; break;
	case WK_CHALLENGE: sample_fill_bytes(h->challenge, 32, 2); break;
	case WK_PK: sample_fill_bytes(h->pk, 32, 3); break;
	case WK_NONCE: sample_fill_bytes(h->nonce, 32, 4); break;
	case WK_SIG: h->sig_len = 64; sample_fill_bytes(h->sig, 64, 5); break;
	case WK_TOPIC: sample_fill_str(h, key, "news.sport", IPCHUB_MAX_NAME, v); return;
	case WK_POLICY: h->policy = mx ? WIRE_POLICY_MAX_ - 1 : mn ? 0 : 1; break;
	case WK_COUNT: h->count = mx ? UINT64_MAX : 5; break;
	case WK_SUB: h->sub = mx ? UINT64_MAX : mn ? 0 : 7; break;
	case WK_EVENT: h->event = mx ? UINT32_MAX : 1; break;
	case WK_REASON: h->reason = mx ? UINT32_MAX : 2; break;
	case WK_FILTER: sample_fill_str(h, key, "kind=SEND name=a", IPCHUB_MAX_FILTER, v); return;
	case WK_FDS:
		h->fds = mx ? IPCHUB_MAX_FDS_PER_FRAME : mn ? 1 : 3;
		h->flags &= ~(uint32_t)WF_BATCH; /* a batch carries none */
		break;
	case WK_MEMFD:
		/* A memfd body is the frame's one descriptor. */
		h->memfd = mx ? IPCHUB_MAX_MEMFD_BODY : mn ? 1 : 1048576;
		h->fds = 1;
		h->has |= FH(WK_FDS);
		h->flags &= ~(uint32_t)WF_BATCH;
		break;
	case WK_ORIGIN: sample_fill_str(h, key, "client-2@hub-b", IPCHUB_MAX_NAME, v); return;
	case WK_CLAIM_UID: h->claim_uid = mx ? UINT32_MAX : mn ? 0 : 1001; break;
	case WK_CLAIM_KEY:
		h->claim_key_len = mx ? 32 : mn ? 1 : 32;
		sample_fill_bytes(h->claim_key, h->claim_key_len, 6);
		break;
	default:
		return;
	}
	h->has |= FH(key);
}

/* Build a header of the sample's kind with the keys in mask set. */
static inline void sample_build(struct frame_hdr *h, int kind, uint64_t mask,
				enum sample_variant v)
{
	frame_init(h, (enum wire_kind)kind);
	for (unsigned k = 1; k < WK_KEY_MAX_; k++)
		if (mask & FH(k))
			sample_set_key(h, (enum wire_key)k, v);
}

/* Field-by-field equality of two headers (only fields present in has). */
static inline bool frame_hdr_equal(const struct frame_hdr *a,
				   const struct frame_hdr *b)
{
#define HAS(k) (a->has & FH(WK_##k))
#define EQ_U(k, f) if (HAS(k) && a->f != b->f) return false
#define EQ_S(k, f) \
	if (HAS(k) && (a->f##_len != b->f##_len || \
		       memcmp(a->f, b->f, a->f##_len) != 0 || b->f[b->f##_len])) \
		return false
#define EQ_B(k, f) if (HAS(k) && memcmp(a->f, b->f, sizeof(a->f)) != 0) return false
	if (a->has != b->has || a->kind != b->kind)
		return false;
	EQ_U(ID, id); EQ_U(TO_ID, to_id); EQ_U(FROM_ID, from_id);
	EQ_U(CONN, conn); EQ_U(COUNT, count); EQ_U(CODE, code);
	EQ_U(VER, ver); EQ_U(VER_MIN, ver_min); EQ_U(MAX_FRAME, max_frame);
	EQ_U(TIMEOUT, timeout); EQ_U(FLAGS, flags); EQ_U(UID, uid);
	EQ_U(REF, ref); EQ_U(POLICY, policy); EQ_U(SUB, sub);
	EQ_U(EVENT, event); EQ_U(REASON, reason); EQ_S(FILTER, filter);
	EQ_U(FDS, fds); EQ_U(MEMFD, memfd);
	EQ_U(CLAIM_UID, claim_uid); EQ_S(ORIGIN, origin);
	EQ_S(TO, to); EQ_S(FROM, from); EQ_S(NAME, name); EQ_S(TOPIC, topic);
	EQ_S(MSG, msg); EQ_S(AGENT, agent); EQ_S(BROKER, broker);
	EQ_B(CHALLENGE, challenge); EQ_B(PK, pk); EQ_B(NONCE, nonce);
	if (HAS(SIG) && (a->sig_len != b->sig_len ||
			 memcmp(a->sig, b->sig, a->sig_len) != 0))
		return false;
	if (HAS(CLAIM_KEY) && (a->claim_key_len != b->claim_key_len ||
			       memcmp(a->claim_key, b->claim_key, a->claim_key_len) != 0))
		return false;
	if (HAS(KEY) && (a->key_len != b->key_len ||
			 memcmp(a->key, b->key, a->key_len) != 0))
		return false;
	return true;
#undef HAS
#undef EQ_U
#undef EQ_S
#undef EQ_B
}

#endif
