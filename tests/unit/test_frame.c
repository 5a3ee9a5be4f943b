/*
 * test_frame.c - unit tests of the frame codec: every kind round-trips in
 * its legal direction, and every class of malformed frame is rejected with
 * the right code, contiguous or split into segments at any byte.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "frame.h"
#include "frame_samples.h"
#include "mpw.h"

/* A frame's bytes after the length prefix. */
struct fbuf {
	uint8_t p[FRAME_ENC_MAX + 256];
	size_t len;
};

static int decode(const void *p, size_t len, enum frame_dir dir,
		  struct frame_hdr *h, bool *has_body, const char **why)
{
	struct iovec iov;
	struct mpr r;

	mpr_init_buf(&r, &iov, p, len);
	return frame_decode(&r, dir, h, has_body, why);
}

/* Decode and then check the body if there is one. */
static int decode_all(const void *p, size_t len, enum frame_dir dir,
		      struct frame_hdr *h, bool *has_body, const char **why)
{
	struct iovec iov;
	struct mpr r;
	int rc;

	mpr_init_buf(&r, &iov, p, len);
	rc = frame_decode(&r, dir, h, has_body, why);
	if (rc == WIRE_E_OK && *has_body)
		rc = frame_body_check(&r, why);
	return rc;
}

/* Encode h (+ body) as frame content, checking the length prefix. */
static void encode(const struct frame_hdr *h, const void *body,
		   size_t body_len, struct fbuf *f)
{
	uint8_t out[FRAME_ENC_MAX];
	size_t n = frame_encode(h, body_len, out, sizeof(out));

	assert_true(n > IPCHUB_LEN_PREFIX);
	assert_int_equal(frame_get_len(out), n - IPCHUB_LEN_PREFIX + body_len);
	assert_true(n - IPCHUB_LEN_PREFIX + body_len <= sizeof(f->p));
	memcpy(f->p, out + IPCHUB_LEN_PREFIX, n - IPCHUB_LEN_PREFIX);
	if (body_len)
		memcpy(f->p + n - IPCHUB_LEN_PREFIX, body, body_len);
	f->len = n - IPCHUB_LEN_PREFIX + body_len;
}

static void expect_bad(const void *p, size_t len, enum frame_dir dir,
		       int code, const char *why_part)
{
	struct frame_hdr h;
	bool has_body = false;
	const char *why = NULL;

	assert_int_equal(decode_all(p, len, dir, &h, &has_body, &why), code);
	assert_non_null(why);
	if (why_part && !strstr(why, why_part))
		fail_msg("why \"%s\" lacks \"%s\"", why, why_part);
}

static const uint8_t sample_body[] = { 0x82, 0xa1, 'a', 0x01, 0xa1, 'b',
				       0x92, 0xc3, 0xc0 };

/* ---- length prefix ---- */

static void test_len_check(void **state)
{
	const uint32_t max = IPCHUB_MAX_FRAME_DEFAULT;

	assert_int_equal(frame_len_check(0, max), WIRE_E_BAD_FRAME);
	assert_int_equal(frame_len_check(IPCHUB_MIN_FRAME - 1, max),
			 WIRE_E_BAD_FRAME);
	assert_int_equal(frame_len_check(IPCHUB_MIN_FRAME, max), WIRE_E_OK);
	assert_int_equal(frame_len_check(max, max), WIRE_E_OK);
	assert_int_equal(frame_len_check(max + 1, max), WIRE_E_TOO_LARGE);
	assert_int_equal(frame_len_check(0xFFFFFFFFu, max), WIRE_E_TOO_LARGE);
	assert_int_equal(frame_len_check(IPCHUB_MAX_PREAUTH_FRAME + 1,
					 IPCHUB_MAX_PREAUTH_FRAME),
			 WIRE_E_TOO_LARGE);
}

/* ---- round trips ---- */

static void test_roundtrip_every_kind(void **state)
{
	for (size_t s = 0; s < N_SAMPLE_KINDS; s++) {
		const struct sample_kind *sk = &sample_kinds[s];
		uint64_t masks[2] = { sk->req, sk->req | sk->opt };

		for (int v = 0; v < SV_COUNT_; v++) {
			for (int m = 0; m < 2; m++) {
				struct frame_hdr in, out;
				struct fbuf f, f2;
				bool body = sample_mask_has_body(sk, masks[m]);
				bool has_body = !body;
				const char *why = NULL;
				int rc;

				sample_build(&in, sk->kind, masks[m],
					     (enum sample_variant)v);
				encode(&in, sample_body, body ? sizeof(sample_body) : 0,
				       &f);
				rc = decode_all(f.p, f.len, sk->dir, &out,
						&has_body, &why);
				if (rc != WIRE_E_OK)
					fail_msg("%s dir %d variant %d: %s",
						 frame_kind_name(sk->kind),
						 sk->dir, v, why);
				assert_int_equal(has_body, body);
				assert_true(frame_hdr_equal(&in, &out));
				/* Canonical: re-encoding gives the same bytes. */
				encode(&out, sample_body,
				       body ? sizeof(sample_body) : 0, &f2);
				assert_int_equal(f.len, f2.len);
				assert_memory_equal(f.p, f2.p, f.len);
			}
		}
	}
}

static void test_encode_canonical(void **state)
{
	struct frame_hdr h;
	uint8_t out[FRAME_ENC_MAX];
	size_t n;

	frame_init(&h, WIRE_PING);
	h.id = 300;
	h.has |= FH(WK_ID);
	n = frame_encode(&h, 0, out, sizeof(out));
	/* prefix 00 00 00 07, {0: 5, 1: uint16 300} */
	const uint8_t want[] = { 0, 0, 0, 7, 0x82, 0x00, 0x05, 0x01, 0xcd, 0x01, 0x2c };
	assert_int_equal(n, sizeof(want));
	assert_memory_equal(out, want, sizeof(want));
	assert_int_equal(frame_encode_hdr(&h, out, IPCHUB_MAX_HEADER), 7);

	/* Body length goes into the prefix only. */
	n = frame_encode(&h, 1000, out, sizeof(out));
	assert_int_equal(frame_get_len(out), 7 + 1000);
	assert_int_equal(n, 11);
}

static void test_set_str_truncates(void **state)
{
	struct frame_hdr h;
	char big[600];

	memset(big, 'x', sizeof(big));
	frame_init(&h, WIRE_SEND);
	frame_set_str(&h, WK_TO, big, sizeof(big));
	assert_int_equal(h.to_len, IPCHUB_MAX_NAME);
	assert_int_equal(h.to[IPCHUB_MAX_NAME], '\0');
	assert_true(h.has & FH(WK_TO));
	frame_set_str(&h, WK_BROKER, big, sizeof(big));
	assert_int_equal(h.broker_len, IPCHUB_BROKER_ID_LEN);
	frame_set_str(&h, WK_MSG, "", 0);
	assert_int_equal(h.msg_len, 0);
	assert_string_equal(h.msg, "");
}

/* ---- kind / direction / key-set rules ---- */

static bool sample_legal(int kind, enum frame_dir dir)
{
	for (size_t s = 0; s < N_SAMPLE_KINDS; s++)
		if (sample_kinds[s].kind == kind && sample_kinds[s].dir == dir)
			return true;
	return false;
}

static void test_wrong_direction(void **state)
{
	int checked = 0;

	for (size_t s = 0; s < N_SAMPLE_KINDS; s++) {
		const struct sample_kind *sk = &sample_kinds[s];
		enum frame_dir other = sk->dir == FRAME_C2B ? FRAME_B2C : FRAME_C2B;
		struct frame_hdr h;
		struct fbuf f;

		if (sample_legal(sk->kind, other))
			continue;
		sample_build(&h, sk->kind, sk->req, SV_TYPICAL);
		encode(&h, NULL, 0, &f);
		expect_bad(f.p, f.len, other, WIRE_E_BAD_FRAME,
			   other == FRAME_C2B ? "kind not allowed from client"
					      : "kind not allowed from broker");
		checked++;
	}
	assert_true(checked >= 10);
}

static void test_unsupported_kind(void **state)
{
	const int kinds[] = { 0, 15, 19, 28, 39, 40, 128, 255 };

	for (size_t k = 0; k < sizeof(kinds) / sizeof(kinds[0]); k++) {
		uint8_t b[8];
		struct mpw w;

		mpw_init(&w, b, sizeof(b));
		mpw_map(&w, 2);
		mpw_uint(&w, WK_KIND);
		mpw_uint(&w, (uint64_t)kinds[k]);
		mpw_uint(&w, WK_ID);
		mpw_uint(&w, 1);
		for (int d = 0; d < 2; d++)
			expect_bad(b, w.len, (enum frame_dir)d, WIRE_E_BAD_FRAME,
				   "kind not supported");
	}
}

static void test_missing_required(void **state)
{
	int checked = 0;

	for (size_t s = 0; s < N_SAMPLE_KINDS; s++) {
		const struct sample_kind *sk = &sample_kinds[s];

		for (unsigned k = 1; k < WK_KEY_MAX_; k++) {
			struct frame_hdr h;
			struct fbuf f;

			if (!(sk->req & FH(k)))
				continue;
			sample_build(&h, sk->kind, (sk->req | sk->opt) & ~FH(k),
				     SV_TYPICAL);
			encode(&h, NULL, 0, &f);
			expect_bad(f.p, f.len, sk->dir, WIRE_E_BAD_FRAME,
				   "missing required header key");
			checked++;
		}
	}
	assert_true(checked > 20);

	/* No kind at all. */
	const uint8_t nokind[] = { 0x81, WK_ID, 0x01 };
	expect_bad(nokind, sizeof(nokind), FRAME_C2B, WIRE_E_BAD_FRAME,
		   "missing required header key 'kind'");
}

static void test_disallowed_key(void **state)
{
	int checked = 0;

	for (size_t s = 0; s < N_SAMPLE_KINDS; s++) {
		const struct sample_kind *sk = &sample_kinds[s];

		for (unsigned k = 1; k < WK_KEY_MAX_; k++) {
			struct frame_hdr h;
			struct fbuf f;

			if ((sk->req | sk->opt) & FH(k))
				continue;
			if (k > WK_FDS && k < WK_ORIGIN)
				continue; /* unallotted: test_unknown_or_bad_key */
			sample_build(&h, sk->kind, sk->req | FH(k), SV_TYPICAL);
			encode(&h, NULL, 0, &f);
			expect_bad(f.p, f.len, sk->dir, WIRE_E_BAD_FRAME,
				   "not allowed for this kind");
			checked++;
		}
	}
	assert_true(checked > 300);
}

static void test_hello_versions(void **state)
{
	struct frame_hdr h;
	struct fbuf f;

	sample_build(&h, WIRE_HELLO, FH(WK_VER) | FH(WK_VER_MIN), SV_TYPICAL);
	h.ver = 1;
	h.ver_min = 2;
	encode(&h, NULL, 0, &f);
	expect_bad(f.p, f.len, FRAME_C2B, WIRE_E_BAD_FRAME, "ver_min");
	h.ver = 2;
	encode(&h, NULL, 0, &f);
	struct frame_hdr out;
	bool hb;
	assert_int_equal(decode(f.p, f.len, FRAME_C2B, &out, &hb, NULL), WIRE_E_OK);
}

static void test_flags_and_code_values(void **state)
{
	struct frame_hdr h;
	struct fbuf f;

	sample_build(&h, WIRE_SEND, FH(WK_ID) | FH(WK_TO) | FH(WK_FLAGS), SV_TYPICAL);
	h.flags = WF_ALL_ + 1;
	encode(&h, NULL, 0, &f);
	expect_bad(f.p, f.len, FRAME_C2B, WIRE_E_BAD_FRAME, "flags");
	h.flags = 0x80000000u;
	encode(&h, NULL, 0, &f);
	expect_bad(f.p, f.len, FRAME_C2B, WIRE_E_BAD_FRAME, "flags");

	/* Each kind and direction allows its own flag bits. */
	h.flags = WF_NOWAIT | WF_BATCH;
	encode(&h, NULL, 0, &f);
	assert_int_equal(decode_all(f.p, f.len, FRAME_C2B, &h, &(bool){0}, NULL),
			 WIRE_E_OK);
	sample_build(&h, WIRE_SEND, FH(WK_ID) | FH(WK_TO) | FH(WK_FROM_ID) |
					 FH(WK_FLAGS), SV_TYPICAL);
	h.flags = WF_NOWAIT; /* NOWAIT is the sender's business only */
	encode(&h, NULL, 0, &f);
	expect_bad(f.p, f.len, FRAME_B2C, WIRE_E_BAD_FRAME, "flags");
	sample_build(&h, WIRE_REQUEST, FH(WK_ID) | FH(WK_TO) | FH(WK_FLAGS),
		     SV_TYPICAL);
	h.flags = WF_BATCH; /* requests are never batched */
	encode(&h, NULL, 0, &f);
	expect_bad(f.p, f.len, FRAME_C2B, WIRE_E_BAD_FRAME, "flags");
	sample_build(&h, WIRE_HELLO, FH(WK_VER) | FH(WK_VER_MIN) | FH(WK_FLAGS),
		     SV_TYPICAL);
	h.flags = WF_NOWAIT;
	encode(&h, NULL, 0, &f);
	expect_bad(f.p, f.len, FRAME_C2B, WIRE_E_BAD_FRAME, "flags");

	sample_build(&h, WIRE_ERROR, FH(WK_ID) | FH(WK_CODE), SV_TYPICAL);
	h.code = WIRE_E_CODE_MAX_;
	encode(&h, NULL, 0, &f);
	expect_bad(f.p, f.len, FRAME_B2C, WIRE_E_BAD_FRAME, "code");
	h.code = UINT32_MAX;
	encode(&h, NULL, 0, &f);
	expect_bad(f.p, f.len, FRAME_B2C, WIRE_E_BAD_FRAME, "code");
}

/* ---- malformed headers, byte by byte ---- */

static void test_truncated_header_every_offset(void **state)
{
	for (size_t s = 0; s < N_SAMPLE_KINDS; s++) {
		const struct sample_kind *sk = &sample_kinds[s];
		struct frame_hdr h;
		struct fbuf f;

		sample_build(&h, sk->kind, sk->req | sk->opt, SV_TYPICAL);
		encode(&h, NULL, 0, &f);
		for (size_t cut = 0; cut < f.len; cut++)
			expect_bad(f.p, cut, sk->dir, WIRE_E_BAD_FRAME, NULL);
	}
}

static void test_header_not_a_map(void **state)
{
	const uint8_t arr[] = { 0x92, 0x00, 0x05 };
	const uint8_t num[] = { 0x05, 0x00, 0x00 };
	const uint8_t str[] = { 0xa2, 'h', 'i' };
	const uint8_t nil[] = { 0xc0, 0xc0, 0xc0 };
	const uint8_t bad[] = { 0xc1, 0x00, 0x05 };

	expect_bad(arr, sizeof(arr), FRAME_C2B, WIRE_E_BAD_FRAME, "not a map");
	expect_bad(num, sizeof(num), FRAME_C2B, WIRE_E_BAD_FRAME, "not a map");
	expect_bad(str, sizeof(str), FRAME_C2B, WIRE_E_BAD_FRAME, "not a map");
	expect_bad(nil, sizeof(nil), FRAME_C2B, WIRE_E_BAD_FRAME, "not a map");
	expect_bad(bad, sizeof(bad), FRAME_C2B, WIRE_E_BAD_FRAME, "0xc1");
}

static void test_empty_and_oversized_map(void **state)
{
	const uint8_t empty[] = { 0x80, 0xc0, 0xc0 };
	const uint8_t empty16[] = { 0xde, 0x00, 0x00 };
	uint8_t big[512];
	struct mpw w;

	expect_bad(empty, sizeof(empty), FRAME_C2B, WIRE_E_BAD_FRAME, "empty");
	expect_bad(empty16, sizeof(empty16), FRAME_C2B, WIRE_E_BAD_FRAME, "empty");

	mpw_init(&w, big, sizeof(big));
	mpw_map(&w, IPCHUB_MAX_HEADER_KEYS + 1);
	for (unsigned k = 0; k <= IPCHUB_MAX_HEADER_KEYS; k++) {
		mpw_uint(&w, k);
		mpw_uint(&w, 1);
	}
	expect_bad(big, w.len, FRAME_C2B, WIRE_E_BAD_FRAME, "too many keys");

	/* A map declaring more entries than bytes follow. */
	const uint8_t liar[] = { 0xdf, 0x00, 0x01, 0x00, 0x00, 0x00, 0x05 };
	expect_bad(liar, sizeof(liar), FRAME_C2B, WIRE_E_BAD_FRAME, "truncated");
}

static void test_duplicate_key(void **state)
{
	const uint8_t dup[] = { 0x83, 0x00, WIRE_PING, 0x01, 0x01, 0x01, 0x02 };
	const uint8_t dupkind[] = { 0x83, 0x00, WIRE_PING, 0x01, 0x01, 0x00, WIRE_PING };

	expect_bad(dup, sizeof(dup), FRAME_C2B, WIRE_E_BAD_FRAME,
		   "duplicate header key 'id'");
	expect_bad(dupkind, sizeof(dupkind), FRAME_C2B, WIRE_E_BAD_FRAME,
		   "duplicate header key 'kind'");
}

/* Key order is free (PROTOCOL.md section 2): the same header in reverse
 * and shuffled order decodes to the same fields. Decoding into a struct
 * that held a richer header leaves nothing of it behind (frame_decode
 * clears the scalars and string lengths, not the 2.4 KB of arrays). */
static void test_any_key_order(void **state)
{
	/* C2B SEND {to: "ab", id: 300, kind: SEND} + body 0xc0 (nil). */
	const uint8_t rev[] = { 0x83, 0x02, 0xa2, 'a', 'b', 0x01, 0xcd, 0x01,
				0x2c, 0x00, WIRE_SEND, 0xc0 };
	/* B2C SEND {uid: 7, from_id: 9, kind, from: "x.y", to: "ab", id: 1}. */
	const uint8_t shuf[] = { 0x86, 0x11, 0x07, 0x05, 0x09, 0x00, WIRE_SEND,
				 0x04, 0xa3, 'x', '.', 'y', 0x02, 0xa2, 'a',
				 'b', 0x01, 0x01 };
	/* B2C SEND {kind, id: 2, to: "c", from_id: 3}: no from, no uid. */
	const uint8_t lean[] = { 0x84, 0x00, WIRE_SEND, 0x01, 0x02, 0x02, 0xa1,
				 'c', 0x05, 0x03 };
	struct frame_hdr h;
	bool has_body = false;

	(void)state;
	assert_int_equal(decode_all(rev, sizeof(rev), FRAME_C2B, &h, &has_body,
				    NULL), WIRE_E_OK);
	assert_true(has_body);
	assert_int_equal(h.kind, WIRE_SEND);
	assert_int_equal(h.id, 300);
	assert_int_equal(h.to_len, 2);
	assert_string_equal(h.to, "ab");

	assert_int_equal(decode(shuf, sizeof(shuf), FRAME_B2C, &h, &has_body,
				NULL), WIRE_E_OK);
	assert_false(has_body);
	assert_int_equal(h.uid, 7);
	assert_int_equal(h.from_id, 9);
	assert_string_equal(h.from, "x.y");
	assert_string_equal(h.to, "ab");
	assert_int_equal(h.id, 1);

	assert_int_equal(decode(lean, sizeof(lean), FRAME_B2C, &h, &has_body,
				NULL), WIRE_E_OK);
	assert_int_equal(h.has, FH(WK_KIND) | FH(WK_ID) | FH(WK_TO) |
				     FH(WK_FROM_ID));
	assert_int_equal(h.uid, 0);
	assert_int_equal(h.from_len, 0);
	assert_string_equal(h.from, "");
	assert_string_equal(h.to, "c");
	assert_int_equal(h.from_id, 3);
}

static void test_unknown_or_bad_key(void **state)
{
	const uint8_t k27[] = { 0x83, 0x00, WIRE_PING, 0x01, 0x01, WK_KEY_MAX_, 0x00 };
	/* Below the maximum but allotted to no key of this version. */
	const uint8_t k31[] = { 0x83, 0x00, WIRE_PING, 0x01, 0x01, 33, 0x00 };
	const uint8_t k38[] = { 0x83, 0x00, WIRE_PING, 0x01, 0x01, 38, 0x00 };
	const uint8_t kbig[] = { 0x82, 0x00, WIRE_PING, 0xcf, 1, 0, 0, 0, 0, 0, 0, 1, 0x00 };
	const uint8_t kstr[] = { 0x82, 0x00, WIRE_PING, 0xa1, 'x', 0x00 };
	const uint8_t kneg[] = { 0x82, 0x00, WIRE_PING, 0xff, 0x00 };
	const uint8_t kneg8[] = { 0x82, 0x00, WIRE_PING, 0xd0, 0x80, 0x00 };

	expect_bad(k27, sizeof(k27), FRAME_C2B, WIRE_E_BAD_FRAME, "unknown header key");
	expect_bad(k31, sizeof(k31), FRAME_C2B, WIRE_E_BAD_FRAME, "unknown header key");
	expect_bad(k38, sizeof(k38), FRAME_C2B, WIRE_E_BAD_FRAME, "unknown header key");
	expect_bad(kbig, sizeof(kbig), FRAME_C2B, WIRE_E_BAD_FRAME, "unknown header key");
	expect_bad(kstr, sizeof(kstr), FRAME_C2B, WIRE_E_BAD_FRAME, "not an unsigned");
	expect_bad(kneg, sizeof(kneg), FRAME_C2B, WIRE_E_BAD_FRAME, "not an unsigned");
	expect_bad(kneg8, sizeof(kneg8), FRAME_C2B, WIRE_E_BAD_FRAME, "not an unsigned");
}

static void test_wrong_value_type(void **state)
{
	const uint8_t kind_str[] = { 0x82, 0x00, 0xa1, 'x', 0x01, 0x01 };
	const uint8_t id_str[] = { 0x82, 0x00, WIRE_PING, 0x01, 0xa1, '1' };
	const uint8_t id_neg[] = { 0x82, 0x00, WIRE_PING, 0x01, 0xff };
	const uint8_t id_nil[] = { 0x82, 0x00, WIRE_PING, 0x01, 0xc0 };
	const uint8_t id_float[] = { 0x82, 0x00, WIRE_PING, 0x01, 0xca, 0, 0, 0, 0 };
	const uint8_t to_uint[] = { 0x83, 0x00, WIRE_SEND, 0x01, 0x01, 0x02, 0x07 };
	const uint8_t to_bin[] = { 0x83, 0x00, WIRE_SEND, 0x01, 0x01, 0x02, 0xc4, 0x01, 'a' };
	const uint8_t id_c1[] = { 0x82, 0x00, WIRE_PING, 0x01, 0xc1 };

	expect_bad(kind_str, sizeof(kind_str), FRAME_C2B, WIRE_E_BAD_FRAME,
		   "header key 'kind' has wrong type");
	expect_bad(id_str, sizeof(id_str), FRAME_C2B, WIRE_E_BAD_FRAME,
		   "header key 'id' has wrong type");
	expect_bad(id_neg, sizeof(id_neg), FRAME_C2B, WIRE_E_BAD_FRAME,
		   "header key 'id' has wrong type");
	expect_bad(id_nil, sizeof(id_nil), FRAME_C2B, WIRE_E_BAD_FRAME, "wrong type");
	expect_bad(id_float, sizeof(id_float), FRAME_C2B, WIRE_E_BAD_FRAME, "wrong type");
	expect_bad(to_uint, sizeof(to_uint), FRAME_C2B, WIRE_E_BAD_FRAME,
		   "header key 'to' has wrong type");
	expect_bad(to_bin, sizeof(to_bin), FRAME_C2B, WIRE_E_BAD_FRAME,
		   "header key 'to' has wrong type");
	expect_bad(id_c1, sizeof(id_c1), FRAME_C2B, WIRE_E_BAD_FRAME, "0xc1");

	/* Byte fields must be bin, not str. */
	uint8_t b[256];
	struct mpw w;
	char s32[32];
	memset(s32, 'p', sizeof(s32));
	mpw_init(&w, b, sizeof(b));
	mpw_map(&w, 4);
	mpw_uint(&w, WK_KIND); mpw_uint(&w, WIRE_AUTH);
	mpw_uint(&w, WK_PK); mpw_str(&w, s32, 32);
	mpw_uint(&w, WK_NONCE); mpw_bin(&w, s32, 32);
	mpw_uint(&w, WK_SIG); mpw_bin(&w, s32, 32);
	expect_bad(b, w.len, FRAME_C2B, WIRE_E_BAD_FRAME,
		   "header key 'pk' has wrong type");
}

/* Non-shortest encodings are legal msgpack and must be accepted. */
static void test_non_shortest_accepted(void **state)
{
	const uint8_t hdr[] = { 0xde, 0x00, 0x02, 0xcf, 0, 0, 0, 0, 0, 0, 0, 0,
				0xd3, 0, 0, 0, 0, 0, 0, 0, WIRE_PING,
				0xd0, 0x01, 0xcd, 0x00, 0x07 };
	struct frame_hdr h;
	bool hb = true;

	assert_int_equal(decode(hdr, sizeof(hdr), FRAME_C2B, &h, &hb, NULL),
			 WIRE_E_OK);
	assert_int_equal(h.kind, WIRE_PING);
	assert_int_equal(h.id, 7);
	assert_false(hb);
}

static void test_uint_range(void **state)
{
	const uint8_t kind256[] = { 0x82, 0x00, 0xcd, 0x01, 0x05, 0x01, 0x01 };
	const uint8_t code_big[] = { 0x83, 0x00, WIRE_ERROR, 0x01, 0x01, 0x07,
				     0xcf, 0, 0, 0, 1, 0, 0, 0, 1 };
	const uint8_t ver_big[] = { 0x83, 0x00, WIRE_HELLO, 0x09,
				    0xcf, 0, 0, 0, 1, 0, 0, 0, 0, 0x0a, 0x01 };

	expect_bad(kind256, sizeof(kind256), FRAME_C2B, WIRE_E_BAD_FRAME,
		   "header key 'kind' value out of range");
	expect_bad(code_big, sizeof(code_big), FRAME_B2C, WIRE_E_BAD_FRAME,
		   "header key 'code' value out of range");
	expect_bad(ver_big, sizeof(ver_big), FRAME_C2B, WIRE_E_BAD_FRAME,
		   "header key 'ver' value out of range");
}

/* A frame {kind: k, id: 1, <key>: str of n bytes} plus whatever else the
 * kind requires, encoded by hand so lengths beyond the caps can be sent. */
static size_t build_with_str(uint8_t *b, size_t cap, int kind, uint32_t req,
			     enum wire_key key, size_t n)
{
	static char s[IPCHUB_MAX_HEADER];
	struct mpw w;
	unsigned cnt = 1;

	memset(s, 'n', sizeof(s));
	for (unsigned k = 1; k < WK_KEY_MAX_; k++)
		cnt += ((req | FH(key)) >> k) & 1u;
	mpw_init(&w, b, cap);
	mpw_map(&w, cnt);
	mpw_uint(&w, WK_KIND);
	mpw_uint(&w, (uint64_t)kind);
	for (unsigned k = 1; k < WK_KEY_MAX_; k++) {
		if (!((req | FH(key)) & FH(k)))
			continue;
		mpw_uint(&w, k);
		if (k == (unsigned)key)
			mpw_str(&w, s, n);
		else if (k == WK_TO || k == WK_NAME)
			mpw_str(&w, "x", 1);
		else
			mpw_uint(&w, 1);
	}
	assert_false(w.overflow);
	return w.len;
}

static void test_string_caps(void **state)
{
	static const struct {
		int kind;
		enum frame_dir dir;
		uint32_t req;
		enum wire_key key;
		size_t cap;
	} cases[] = {
		{ WIRE_SEND, FRAME_C2B, FH(WK_ID) | FH(WK_TO), WK_TO, IPCHUB_MAX_NAME },
		{ WIRE_REGISTER, FRAME_C2B, FH(WK_ID) | FH(WK_NAME), WK_NAME, IPCHUB_MAX_NAME },
		{ WIRE_SEND, FRAME_B2C, FH(WK_ID) | FH(WK_TO) | FH(WK_FROM_ID), WK_FROM, IPCHUB_MAX_NAME },
		{ WIRE_ERROR, FRAME_B2C, FH(WK_ID) | FH(WK_CODE), WK_MSG, IPCHUB_MAX_ERRMSG },
		{ WIRE_HELLO, FRAME_C2B, FH(WK_VER) | FH(WK_VER_MIN), WK_AGENT, IPCHUB_MAX_AGENT },
		{ WIRE_WELCOME, FRAME_B2C, FH(WK_VER) | FH(WK_CONN) | FH(WK_MAX_FRAME), WK_BROKER, IPCHUB_BROKER_ID_LEN },
	};
	uint8_t b[FRAME_ENC_MAX];

	for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
		struct frame_hdr h;
		bool hb;
		const char *why = NULL;
		size_t n;

		n = build_with_str(b, sizeof(b), cases[c].kind, cases[c].req,
				   cases[c].key, cases[c].cap);
		if (decode(b, n, cases[c].dir, &h, &hb, &why) != WIRE_E_OK)
			fail_msg("case %zu at cap: %s", c, why);
		n = build_with_str(b, sizeof(b), cases[c].kind, cases[c].req,
				   cases[c].key, cases[c].cap + 1);
		expect_bad(b, n, cases[c].dir, WIRE_E_BAD_FRAME, "too long");
		n = build_with_str(b, sizeof(b), cases[c].kind, cases[c].req,
				   cases[c].key, 4000);
		expect_bad(b, n, cases[c].dir, WIRE_E_BAD_FRAME, "too long");
	}
}

static size_t build_auth(uint8_t *b, size_t cap, size_t pk, size_t nonce,
			 size_t sig)
{
	uint8_t bytes[128] = { 0 };
	struct mpw w;

	mpw_init(&w, b, cap);
	mpw_map(&w, 4);
	mpw_uint(&w, WK_KIND); mpw_uint(&w, WIRE_AUTH);
	mpw_uint(&w, WK_PK); mpw_bin(&w, bytes, pk);
	mpw_uint(&w, WK_NONCE); mpw_bin(&w, bytes, nonce);
	mpw_uint(&w, WK_SIG); mpw_bin(&w, bytes, sig);
	return w.len;
}

static size_t build_send_key(uint8_t *b, size_t cap, size_t keylen)
{
	uint8_t bytes[64] = { 0 };
	struct mpw w;

	mpw_init(&w, b, cap);
	mpw_map(&w, 5);
	mpw_uint(&w, WK_KIND); mpw_uint(&w, WIRE_SEND);
	mpw_uint(&w, WK_ID); mpw_uint(&w, 1);
	mpw_uint(&w, WK_TO); mpw_str(&w, "a", 1);
	mpw_uint(&w, WK_FROM_ID); mpw_uint(&w, 1);
	mpw_uint(&w, WK_KEY); mpw_bin(&w, bytes, keylen);
	return w.len;
}

static void test_bin_sizes(void **state)
{
	uint8_t b[512];
	struct frame_hdr h;
	bool hb;
	size_t n;

	n = build_auth(b, sizeof(b), 32, 32, 64);
	assert_int_equal(decode(b, n, FRAME_C2B, &h, &hb, NULL), WIRE_E_OK);
	n = build_auth(b, sizeof(b), 31, 32, 64);
	expect_bad(b, n, FRAME_C2B, WIRE_E_BAD_FRAME, "'pk' has wrong length");
	n = build_auth(b, sizeof(b), 33, 32, 64);
	expect_bad(b, n, FRAME_C2B, WIRE_E_BAD_FRAME, "'pk' has wrong length");
	n = build_auth(b, sizeof(b), 32, 0, 64);
	expect_bad(b, n, FRAME_C2B, WIRE_E_BAD_FRAME, "'nonce' has wrong length");
	/* A short signature decodes (the broker answers it AUTH_FAILED,
	 * like any other bad proof); an empty or over-long one does not. */
	n = build_auth(b, sizeof(b), 32, 32, 63);
	assert_int_equal(decode(b, n, FRAME_C2B, &h, &hb, NULL), WIRE_E_OK);
	assert_int_equal(h.sig_len, 63);
	n = build_auth(b, sizeof(b), 32, 32, 0);
	expect_bad(b, n, FRAME_C2B, WIRE_E_BAD_FRAME, "'sig' has wrong length");
	n = build_auth(b, sizeof(b), 32, 32, 65);
	expect_bad(b, n, FRAME_C2B, WIRE_E_BAD_FRAME, "'sig' has wrong length");

	for (size_t k = 1; k <= 32; k++) {
		n = build_send_key(b, sizeof(b), k);
		assert_int_equal(decode(b, n, FRAME_B2C, &h, &hb, NULL), WIRE_E_OK);
		assert_int_equal(h.key_len, k);
	}
	n = build_send_key(b, sizeof(b), 0);
	expect_bad(b, n, FRAME_B2C, WIRE_E_BAD_FRAME, "'key' has wrong length");
	n = build_send_key(b, sizeof(b), 33);
	expect_bad(b, n, FRAME_B2C, WIRE_E_BAD_FRAME, "'key' has wrong length");
}

/* ---- bodies ---- */

/* SEND c2b header followed by body bytes, as frame content. */
static size_t send_with_body(uint8_t *out, size_t cap, const void *body,
			     size_t blen)
{
	struct frame_hdr h;
	uint8_t enc[FRAME_ENC_MAX];
	size_t n;

	sample_build(&h, WIRE_SEND, FH(WK_ID) | FH(WK_TO), SV_TYPICAL);
	n = frame_encode_hdr(&h, enc, sizeof(enc));
	assert_true(n + blen <= cap);
	memcpy(out, enc, n);
	memcpy(out + n, body, blen);
	return n + blen;
}

static void test_body_not_allowed(void **state)
{
	for (size_t s = 0; s < N_SAMPLE_KINDS; s++) {
		const struct sample_kind *sk = &sample_kinds[s];
		struct frame_hdr h;
		struct fbuf f;

		if (sample_has_body(sk))
			continue;
		sample_build(&h, sk->kind, sk->req, SV_TYPICAL);
		encode(&h, "\xc0", 1, &f);
		expect_bad(f.p, f.len, sk->dir, WIRE_E_BAD_FRAME, "body not allowed");
	}
	assert_true(frame_kind_has_body(WIRE_SEND));
	assert_true(frame_kind_has_body(WIRE_REQUEST));
	assert_true(frame_kind_has_body(WIRE_REPLY));
	assert_true(frame_kind_has_body(WIRE_PUBLISH));
	assert_true(frame_kind_has_body(WIRE_MONITOR));
	assert_false(frame_kind_has_body(WIRE_GAP));
	assert_false(frame_kind_has_body(-1));
}

static void test_body_errors(void **state)
{
	static uint8_t b[200000];
	static uint8_t body[150000];
	size_t n;

	/* trailing bytes */
	n = send_with_body(b, sizeof(b), "\x01\x02", 2);
	expect_bad(b, n, FRAME_C2B, WIRE_E_BAD_BODY, "trailing");
	/* truncated */
	n = send_with_body(b, sizeof(b), "\x92\x01", 2);
	expect_bad(b, n, FRAME_C2B, WIRE_E_BAD_BODY, "truncated");
	n = send_with_body(b, sizeof(b), "\xdb\x00\x00\x10\x00xyz", 8);
	expect_bad(b, n, FRAME_C2B, WIRE_E_BAD_BODY, "truncated");
	/* 0xc1 anywhere */
	n = send_with_body(b, sizeof(b), "\xc1", 1);
	expect_bad(b, n, FRAME_C2B, WIRE_E_BAD_BODY, "0xc1");
	n = send_with_body(b, sizeof(b), "\x92\x01\xc1", 3);
	expect_bad(b, n, FRAME_C2B, WIRE_E_BAD_BODY, "0xc1");
	/* array / map counts far beyond the bytes */
	n = send_with_body(b, sizeof(b), "\xdd\xff\xff\xff\xff\x01\x02", 7);
	expect_bad(b, n, FRAME_C2B, WIRE_E_BAD_BODY, NULL);
	n = send_with_body(b, sizeof(b), "\xdf\x80\x00\x00\x00\x01\x02", 7);
	expect_bad(b, n, FRAME_C2B, WIRE_E_BAD_BODY, NULL);
	n = send_with_body(b, sizeof(b), "\xdc\x00\x03\x01\x02", 5);
	expect_bad(b, n, FRAME_C2B, WIRE_E_BAD_BODY, NULL);

	/* nesting: exactly MAX accepted, MAX+1 rejected */
	memset(body, 0x91, IPCHUB_MAX_BODY_DEPTH);
	body[IPCHUB_MAX_BODY_DEPTH] = 0x07;
	n = send_with_body(b, sizeof(b), body, IPCHUB_MAX_BODY_DEPTH + 1);
	{
		struct frame_hdr h;
		bool hb = false;
		const char *why = NULL;
		int rc = decode_all(b, n, FRAME_C2B, &h, &hb, &why);
		if (rc != WIRE_E_OK)
			fail_msg("depth %u rejected: %s", IPCHUB_MAX_BODY_DEPTH, why);
		assert_true(hb);
	}
	memset(body, 0x81, IPCHUB_MAX_BODY_DEPTH + 1); /* maps this time */
	for (unsigned d = 0; d <= IPCHUB_MAX_BODY_DEPTH; d++) {
		body[2 * d] = 0x81;
		body[2 * d + 1] = 0x00; /* key */
	}
	body[2 * (IPCHUB_MAX_BODY_DEPTH + 1)] = 0xc0;
	n = send_with_body(b, sizeof(b), body, 2 * (IPCHUB_MAX_BODY_DEPTH + 1) + 1);
	expect_bad(b, n, FRAME_C2B, WIRE_E_BAD_BODY, "nested");
	memset(body, 0x91, IPCHUB_MAX_BODY_DEPTH + 1);
	body[IPCHUB_MAX_BODY_DEPTH + 1] = 0x07;
	n = send_with_body(b, sizeof(b), body, IPCHUB_MAX_BODY_DEPTH + 2);
	expect_bad(b, n, FRAME_C2B, WIRE_E_BAD_BODY, "nested");

	/* 100,000 levels: rejected, and fast */
	memset(body, 0x91, 100000);
	body[100000] = 0x00;
	n = send_with_body(b, sizeof(b), body, 100001);
	clock_t t0 = clock();
	for (int i = 0; i < 100; i++)
		expect_bad(b, n, FRAME_C2B, WIRE_E_BAD_BODY, "nested");
	double secs = (double)(clock() - t0) / CLOCKS_PER_SEC;
	assert_true(secs < 1.0);
	memset(body, 0xdd, 100000); /* array32 of huge counts, nested */
	n = send_with_body(b, sizeof(b), body, 100000);
	expect_bad(b, n, FRAME_C2B, WIRE_E_BAD_BODY, NULL);
}

static void test_large_body_budget(void **state)
{
	static uint8_t b[200000];
	static uint8_t body[100005];
	struct iovec iov;
	struct mpr r;
	struct frame_hdr h;
	bool hb = false;
	size_t n;

	/* A 100000-byte bin body: the header's 4096-byte budget must not
	 * leak into the body, and the reader must end at the body start. */
	body[0] = 0xc6;
	body[1] = 0x00; body[2] = 0x01; body[3] = 0x86; body[4] = 0xa0;
	n = send_with_body(b, sizeof(b), body, 100005);
	mpr_init_buf(&r, &iov, b, n);
	assert_int_equal(frame_decode(&r, FRAME_C2B, &h, &hb, NULL), WIRE_E_OK);
	assert_true(hb);
	assert_int_equal(mpr_left(&r), 100005);
	assert_int_equal(frame_body_check(&r, NULL), WIRE_E_OK);
	assert_int_equal(mpr_left(&r), 0);

	/* A header string declared longer than the frame. */
	const uint8_t liar[] = { 0x83, 0x00, WIRE_SEND, 0x01, 0x01, 0x02, 0xa5, 'a', 'b' };
	expect_bad(liar, sizeof(liar), FRAME_C2B, WIRE_E_BAD_FRAME, "truncated");
}

/* ---- batches ---- */

static int batch_check(const void *p, size_t len, uint32_t *count,
		       const char **why)
{
	struct iovec iov;
	struct mpr r;

	mpr_init_buf(&r, &iov, p, len);
	return frame_batch_check(&r, count, why);
}

static void expect_bad_batch(const void *p, size_t len, const char *why_part)
{
	uint32_t n = 99;
	const char *why = NULL;

	assert_int_equal(batch_check(p, len, &n, &why), WIRE_E_BAD_BODY);
	assert_non_null(why);
	if (!strstr(why, why_part))
		fail_msg("why \"%s\" lacks \"%s\"", why, why_part);
}

static void test_batch_check(void **state)
{
	uint32_t n;
	/* [1, "ab", {}] as fixarray and as the array32 clients write. */
	const uint8_t fix[] = { 0x93, 0x01, 0xa2, 'a', 'b', 0x80 };
	const uint8_t a32[] = { 0xdd, 0, 0, 0, 3, 0x01, 0xa2, 'a', 'b', 0x80 };
	const uint8_t a16[] = { 0xdc, 0, 1, 0xc0 };

	assert_int_equal(batch_check(fix, sizeof(fix), &n, NULL), WIRE_E_OK);
	assert_int_equal(n, 3);
	assert_int_equal(batch_check(a32, sizeof(a32), &n, NULL), WIRE_E_OK);
	assert_int_equal(n, 3);
	assert_int_equal(batch_check(a16, sizeof(a16), &n, NULL), WIRE_E_OK);
	assert_int_equal(n, 1);

	const uint8_t empty[] = { 0x90 };
	expect_bad_batch(empty, sizeof(empty), "no message");
	const uint8_t scalar[] = { 0x01 };
	expect_bad_batch(scalar, sizeof(scalar), "not an array");
	const uint8_t map[] = { 0x80 };
	expect_bad_batch(map, sizeof(map), "not an array");
	const uint8_t c1[] = { 0xc1 };
	expect_bad_batch(c1, sizeof(c1), "0xc1");
	/* Declares more elements than bytes, or more than it carries. */
	const uint8_t liar[] = { 0xdd, 0, 0, 0x10, 0, 0x01 };
	expect_bad_batch(liar, sizeof(liar), "truncated");
	const uint8_t shortv[] = { 0x92, 0x01, 0xa3, 'a' };
	expect_bad_batch(shortv, sizeof(shortv), "malformed or truncated");
	const uint8_t trail[] = { 0x91, 0x01, 0x02 };
	expect_bad_batch(trail, sizeof(trail), "trailing");
	const uint8_t bad_elem[] = { 0x92, 0x01, 0xc1 };
	expect_bad_batch(bad_elem, sizeof(bad_elem), "malformed");

	/* Over IPCHUB_MAX_BATCH elements (each a one-byte nil). */
	size_t big = 5 + IPCHUB_MAX_BATCH + 1;
	uint8_t *b = malloc(big);
	assert_non_null(b);
	b[0] = 0xdd;
	b[1] = 0; b[2] = 1; b[3] = 0; b[4] = 1; /* 65537 */
	memset(b + 5, 0xc0, big - 5);
	n = 0;
	assert_int_equal(batch_check(b, big, &n, NULL), WIRE_E_BAD_BODY);
	b[4] = 0; /* exactly 65536 */
	assert_int_equal(batch_check(b, big - 1, &n, NULL), WIRE_E_OK);
	assert_int_equal(n, IPCHUB_MAX_BATCH);
	free(b);

	/* Each element may nest 32 levels; the batch array does not count. */
	uint8_t deep[1 + 32 + 1 + 1];
	size_t k = 0;
	deep[k++] = 0x91;
	for (int i = 0; i < 32; i++)
		deep[k++] = 0x91;
	deep[k++] = 0xc0;
	assert_int_equal(batch_check(deep, k, &n, NULL), WIRE_E_OK);
	uint8_t deeper[1 + 33 + 1];
	k = 0;
	deeper[k++] = 0x91;
	for (int i = 0; i < 33; i++)
		deeper[k++] = 0x91;
	deeper[k++] = 0xc0;
	expect_bad_batch(deeper, k, "32 levels");
}

/* ---- segmented input ---- */

static int decode_segs(const uint8_t *p, size_t len, const size_t *cuts,
		       size_t ncuts, uint64_t limit, enum frame_dir dir,
		       struct frame_hdr *h, bool *hb)
{
	struct iovec iov[8];
	struct mpr r;
	size_t prev = 0, n = 0;
	int rc;

	for (size_t c = 0; c < ncuts; c++) {
		iov[n].iov_base = (void *)(p + prev);
		iov[n++].iov_len = cuts[c] - prev;
		prev = cuts[c];
	}
	iov[n].iov_base = (void *)(p + prev);
	iov[n++].iov_len = len - prev;
	mpr_init(&r, iov, n, limit);
	rc = frame_decode(&r, dir, h, hb, NULL);
	if (rc == WIRE_E_OK && *hb)
		rc = frame_body_check(&r, NULL);
	return rc;
}

static void test_segmented_every_offset(void **state)
{
	unsigned long runs = 0;

	for (size_t s = 0; s < N_SAMPLE_KINDS; s++) {
		const struct sample_kind *sk = &sample_kinds[s];
		bool body = sample_mask_has_body(sk, sk->req | sk->opt);

		for (int v = SV_TYPICAL; v <= SV_MAX; v++) {
			struct frame_hdr in, ref, out;
			struct fbuf f;
			bool hb_ref, hb;

			sample_build(&in, sk->kind, sk->req | sk->opt,
				     (enum sample_variant)v);
			encode(&in, sample_body, body ? sizeof(sample_body) : 0, &f);
			assert_int_equal(decode_all(f.p, f.len, sk->dir, &ref,
						    &hb_ref, NULL), WIRE_E_OK);
			for (size_t i = 0; i <= f.len; i++) {
				size_t c2[1] = { i };
				assert_int_equal(decode_segs(f.p, f.len, c2, 1, f.len,
							     sk->dir, &out, &hb),
						 WIRE_E_OK);
				assert_true(frame_hdr_equal(&ref, &out));
				assert_int_equal(hb, hb_ref);
				runs++;
				if (v == SV_MAX)
					continue; /* 3-way splits: typical sizes */
				for (size_t j = i; j <= f.len; j++) {
					size_t c3[2] = { i, j };
					assert_int_equal(decode_segs(f.p, f.len, c3, 2,
								     f.len, sk->dir,
								     &out, &hb),
							 WIRE_E_OK);
					assert_true(frame_hdr_equal(&ref, &out));
					assert_int_equal(hb, hb_ref);
					runs++;
				}
			}
		}
	}
	assert_true(runs > 10000);
}

static void test_segmented_limit(void **state)
{
	/* Two frames back to back in segments; the reader sees only the
	 * first (limit = its length), so no body and nothing of the next. */
	struct frame_hdr h, out;
	struct fbuf f;
	uint8_t two[2 * sizeof(f.p)];
	bool hb = true;

	sample_build(&h, WIRE_PING, FH(WK_ID), SV_TYPICAL);
	encode(&h, NULL, 0, &f);
	memcpy(two, f.p, f.len);
	memcpy(two + f.len, f.p, f.len);
	for (size_t i = 0; i <= 2 * f.len; i++) {
		size_t c[1] = { i };
		assert_int_equal(decode_segs(two, 2 * f.len, c, 1, f.len,
					     FRAME_C2B, &out, &hb), WIRE_E_OK);
		assert_false(hb);
		assert_true(frame_hdr_equal(&h, &out));
	}
	/* Truncated frames split anywhere stay rejected. */
	for (size_t cut = 0; cut < f.len; cut++)
		for (size_t i = 0; i <= cut; i++) {
			size_t c[1] = { i };
			assert_int_equal(decode_segs(f.p, cut, c, 1, f.len,
						     FRAME_C2B, &out, &hb),
					 WIRE_E_BAD_FRAME);
		}
}

/* ---- names and texts ---- */

static void test_names_and_texts(void **state)
{
	static const char *const codes[] = {
		"OK", "BAD_FRAME", "TOO_LARGE", "UNSUPPORTED_VERSION", "PROTOCOL",
		"BAD_NAME", "NAME_TAKEN", "NOT_OWNER", "NO_SUCH_PEER", "PEER_GONE",
		"TIMEOUT", "QUEUE_FULL", "LIMIT", "NOT_AUTHORIZED", "AUTH_FAILED",
		"NO_SUCH_REQUEST", "REMOTE_ERROR", "CANCELLED", "SHUTTING_DOWN",
		"INTERNAL", "BAD_BODY", "BAD_FILTER", "FDS_UNSUPPORTED",
		"MEMFD_UNSEALED", "MEMFD_SIZE", "MEMFD_INLINE",
	};

	assert_int_equal(sizeof(codes) / sizeof(codes[0]), WIRE_E_CODE_MAX_);
	for (int c = 0; c < WIRE_E_CODE_MAX_; c++) {
		assert_string_equal(frame_code_name(c), codes[c]);
		assert_true(strlen(frame_code_text(c)) > 10);
		bool fatal = c == WIRE_E_BAD_FRAME || c == WIRE_E_TOO_LARGE ||
			     c == WIRE_E_UNSUPPORTED_VERSION ||
			     c == WIRE_E_PROTOCOL || c == WIRE_E_AUTH_FAILED;
		assert_int_equal(frame_code_is_fatal(c), fatal);
	}
	assert_string_equal(frame_code_name(-1), "UNKNOWN");
	assert_string_equal(frame_code_name(WIRE_E_CODE_MAX_), "UNKNOWN");
	assert_non_null(frame_code_text(9999));
	assert_false(frame_code_is_fatal(9999));

	assert_string_equal(frame_kind_name(WIRE_HELLO), "HELLO");
	assert_string_equal(frame_kind_name(WIRE_SEND), "SEND");
	assert_string_equal(frame_kind_name(WIRE_CANCEL), "CANCEL");
	assert_string_equal(frame_kind_name(WIRE_MONITOR), "MONITOR");
	assert_string_equal(frame_kind_name(0), "UNKNOWN");
	assert_string_equal(frame_kind_name(15), "UNKNOWN");
	assert_string_equal(frame_kind_name(WIRE_KIND_MAX_), "UNKNOWN");
	assert_string_equal(frame_kind_name(-5), "UNKNOWN");
	for (size_t s = 0; s < N_SAMPLE_KINDS; s++)
		assert_string_not_equal(frame_kind_name(sample_kinds[s].kind),
					"UNKNOWN");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_len_check),
		cmocka_unit_test(test_roundtrip_every_kind),
		cmocka_unit_test(test_encode_canonical),
		cmocka_unit_test(test_any_key_order),
		cmocka_unit_test(test_set_str_truncates),
		cmocka_unit_test(test_wrong_direction),
		cmocka_unit_test(test_unsupported_kind),
		cmocka_unit_test(test_missing_required),
		cmocka_unit_test(test_disallowed_key),
		cmocka_unit_test(test_hello_versions),
		cmocka_unit_test(test_flags_and_code_values),
		cmocka_unit_test(test_batch_check),
		cmocka_unit_test(test_truncated_header_every_offset),
		cmocka_unit_test(test_header_not_a_map),
		cmocka_unit_test(test_empty_and_oversized_map),
		cmocka_unit_test(test_duplicate_key),
		cmocka_unit_test(test_unknown_or_bad_key),
		cmocka_unit_test(test_wrong_value_type),
		cmocka_unit_test(test_non_shortest_accepted),
		cmocka_unit_test(test_uint_range),
		cmocka_unit_test(test_string_caps),
		cmocka_unit_test(test_bin_sizes),
		cmocka_unit_test(test_body_not_allowed),
		cmocka_unit_test(test_body_errors),
		cmocka_unit_test(test_large_body_budget),
		cmocka_unit_test(test_segmented_every_offset),
		cmocka_unit_test(test_segmented_limit),
		cmocka_unit_test(test_names_and_texts),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
