/*
 * fuzz_frame.c - libFuzzer target for the frame codec.
 *
 * Model: the input is a stream of frames (4-byte length prefix, then the
 * frame), as the broker and the client read it off a socket; the whole
 * input is also tried as the content of a single frame so the fuzzer can
 * reach header parsing without first guessing a prefix. Each frame is
 * decoded in both directions, contiguous and split into segments at
 * offsets derived from the data, and the results must agree. A decoded
 * header must re-encode (canonically, no longer than it came in) and decode
 * back to an equal header; a body's verdict must match mpr_validate's.
 * With msgpack-c available, every body the validator accepts (within
 * msgpack-c's nesting limit) must also unpack with msgpack-c. Any
 * disagreement aborts. No state survives between calls.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "frame.h"
#include "frame_samples.h"

#ifdef FUZZ_HAVE_MSGPACK
#include <msgpack.h>

/* msgpack-c's unpacker keeps a fixed stack of MSGPACK_EMBED_STACK_SIZE
 * (32) containers; deeper bodies pass our validator (64) but not it. */
#define FUZZ_MSGPACK_DEPTH 32u

/* Whatever mpr_validate accepts, msgpack-c must unpack, consuming exactly
 * the same bytes: mpr is the guard in front of it. */
static void check_msgpack(const uint8_t *p, size_t len)
{
	msgpack_unpacked u;
	size_t off = 0;

	if (mpr_validate(p, len, FUZZ_MSGPACK_DEPTH) != MPR_OK)
		return;
	msgpack_unpacked_init(&u);
	if (msgpack_unpack_next(&u, (const char *)p, len, &off) !=
		    MSGPACK_UNPACK_SUCCESS ||
	    off != len) {
		fprintf(stderr, "fuzz_frame: msgpack-c rejects a validated body\n");
		abort();
	}
	msgpack_unpacked_destroy(&u);
}
#else
static void check_msgpack(const uint8_t *p, size_t len)
{
	(void)p;
	(void)len;
}
#endif

#define FUZZ_CHECK(cond)                                                  \
	do {                                                              \
		if (!(cond)) {                                            \
			fprintf(stderr, "fuzz_frame: check failed: %s (%s:%d)\n", \
				#cond, __FILE__, __LINE__);               \
			abort();                                          \
		}                                                         \
	} while (0)

struct outcome {
	int rc;          /* frame_decode's result */
	int body_rc;     /* frame_body_check's, or -1 if not run */
	int batch_rc;    /* frame_batch_check's (flags BATCH), or -1 */
	uint32_t batch_n;
	bool has_body;
	uint64_t hdr_len;
	struct frame_hdr h;
};

static void run(struct mpr *r, enum frame_dir dir, struct outcome *o)
{
	const char *why = NULL;
	uint64_t total = mpr_left(r);

	o->body_rc = -1;
	o->batch_rc = -1;
	o->batch_n = 0;
	o->has_body = false;
	o->rc = frame_decode(r, dir, &o->h, &o->has_body, &why);
	FUZZ_CHECK(o->rc == WIRE_E_OK || o->rc == WIRE_E_BAD_FRAME);
	if (o->rc != WIRE_E_OK) {
		FUZZ_CHECK(why != NULL);
		return;
	}
	o->hdr_len = total - mpr_left(r);
	FUZZ_CHECK(o->hdr_len <= IPCHUB_MAX_HEADER);
	FUZZ_CHECK(o->has_body == (mpr_left(r) > 0));
	FUZZ_CHECK(!o->has_body || frame_kind_has_body(o->h.kind));
	if (o->has_body && (o->h.has & FH(WK_FLAGS)) &&
	    (o->h.flags & WF_BATCH)) {
		struct mpr rb = *r; /* same position, the iovecs are shared */

		why = NULL;
		o->batch_rc = frame_batch_check(&rb, &o->batch_n, &why);
		FUZZ_CHECK(o->batch_rc == WIRE_E_OK || o->batch_rc == WIRE_E_BAD_BODY);
		FUZZ_CHECK(o->batch_rc == WIRE_E_OK
				   ? mpr_left(&rb) == 0 && o->batch_n >= 1 &&
					     o->batch_n <= IPCHUB_MAX_BATCH
				   : why != NULL);
	}
	if (o->has_body) {
		why = NULL;
		o->body_rc = frame_body_check(r, &why);
		FUZZ_CHECK(o->body_rc == WIRE_E_OK || o->body_rc == WIRE_E_BAD_BODY);
		FUZZ_CHECK(o->body_rc == WIRE_E_OK ? mpr_left(r) == 0 : why != NULL);
	}
}

static void check_reencode(const struct frame_hdr *h, enum frame_dir dir,
			   uint64_t hdr_len)
{
	uint8_t enc[FRAME_ENC_MAX], enc2[FRAME_ENC_MAX];
	struct frame_hdr back;
	struct iovec iov;
	struct mpr r;
	bool hb = true;
	size_t n, n2;

	n = frame_encode(h, 0, enc, sizeof(enc));
	FUZZ_CHECK(n - IPCHUB_LEN_PREFIX <= hdr_len); /* shortest forms */
	FUZZ_CHECK(frame_get_len(enc) == n - IPCHUB_LEN_PREFIX);
	mpr_init_buf(&r, &iov, enc + IPCHUB_LEN_PREFIX, n - IPCHUB_LEN_PREFIX);
	FUZZ_CHECK(frame_decode(&r, dir, &back, &hb, NULL) == WIRE_E_OK);
	FUZZ_CHECK(!hb);
	FUZZ_CHECK(frame_hdr_equal(h, &back));
	n2 = frame_encode_hdr(&back, enc2, sizeof(enc2));
	FUZZ_CHECK(n2 == n - IPCHUB_LEN_PREFIX);
	FUZZ_CHECK(memcmp(enc2, enc + IPCHUB_LEN_PREFIX, n2) == 0);
}

/* A checked batch splits into exactly n elements that are each a valid
 * body on their own and together cover the bytes after the array header:
 * the walk receivers use to split a batch. */
static void check_batch_split(const uint8_t *p, size_t len, uint32_t n)
{
	struct iovec iov;
	struct mpr r;
	uint32_t count = 0;
	size_t at;

	mpr_init_buf(&r, &iov, p, len);
	FUZZ_CHECK(mpr_read_array(&r, &count) == MPR_OK && count == n);
	for (uint32_t i = 0; i < n; i++) {
		at = len - (size_t)mpr_left(&r);
		FUZZ_CHECK(mpr_skip_value(&r, IPCHUB_MAX_BODY_DEPTH) == MPR_OK);
		FUZZ_CHECK(mpr_validate(p + at, len - (size_t)mpr_left(&r) - at,
					IPCHUB_MAX_BODY_DEPTH) == MPR_OK);
	}
	FUZZ_CHECK(mpr_left(&r) == 0);
}

/* p[0..len) is one frame's content; rest[0..rest_len) whatever follows it
 * in the input (the reader must not look at it). */
static void check_frame(const uint8_t *p, size_t len, const uint8_t *rest,
			size_t rest_len, uint32_t salt)
{
	for (int d = 0; d < 2; d++) {
		enum frame_dir dir = (enum frame_dir)d;
		struct outcome a, b;
		struct iovec iov[5];
		struct mpr r;
		size_t c1, c2;

		mpr_init_buf(&r, iov, p, len);
		run(&r, dir, &a);
		if (a.rc == WIRE_E_OK) {
			check_reencode(&a.h, dir, a.hdr_len);
			if (a.has_body) {
				int v = mpr_validate(p + a.hdr_len, len - a.hdr_len,
						     IPCHUB_MAX_BODY_DEPTH);
				FUZZ_CHECK((v == MPR_OK) == (a.body_rc == WIRE_E_OK));
				check_msgpack(p + a.hdr_len, len - a.hdr_len);
			}
			if (a.batch_rc == WIRE_E_OK)
				check_batch_split(p + a.hdr_len, len - a.hdr_len,
						  a.batch_n);
		}

		/* Same bytes in segments: cut points from the salt, an empty
		 * segment, and the following input beyond the limit. */
		c1 = len ? salt % (len + 1) : 0;
		c2 = c1 + (len - c1 ? (salt >> 11) % (len - c1 + 1) : 0);
		iov[0] = (struct iovec){ (void *)p, c1 };
		iov[1] = (struct iovec){ NULL, 0 };
		iov[2] = (struct iovec){ (void *)(p + c1), c2 - c1 };
		iov[3] = (struct iovec){ (void *)(p + c2), len - c2 };
		iov[4] = (struct iovec){ (void *)rest, rest_len };
		mpr_init(&r, iov, 5, len);
		run(&r, dir, &b);
		FUZZ_CHECK(a.rc == b.rc);
		if (a.rc == WIRE_E_OK) {
			FUZZ_CHECK(a.has_body == b.has_body);
			FUZZ_CHECK(a.body_rc == b.body_rc);
			FUZZ_CHECK(a.batch_rc == b.batch_rc);
			FUZZ_CHECK(a.batch_n == b.batch_n);
			FUZZ_CHECK(a.hdr_len == b.hdr_len);
			FUZZ_CHECK(frame_hdr_equal(&a.h, &b.h));
		}
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint32_t salt = 2166136261u;
	size_t pos = 0;

	for (size_t k = 0; k < size && k < 64; k++)
		salt = (salt ^ data[k]) * 16777619u;

	/* The whole input as one frame's content. */
	check_frame(data, size, NULL, 0, salt);

	/* The input as a stream of frames. */
	while (size - pos >= IPCHUB_LEN_PREFIX) {
		uint32_t len = frame_get_len(data + pos);
		int rc = frame_len_check(len, IPCHUB_MAX_FRAME_DEFAULT);

		FUZZ_CHECK(rc == WIRE_E_OK || rc == WIRE_E_BAD_FRAME ||
			   rc == WIRE_E_TOO_LARGE);
		if (rc != WIRE_E_OK)
			break;
		pos += IPCHUB_LEN_PREFIX;
		if (len > size - pos) {
			/* Truncated stream: a reader given less than the
			 * frame's length must fail cleanly, never overrun. */
			check_frame(data + pos, size - pos, NULL, 0, salt);
			break;
		}
		check_frame(data + pos, len, data + pos + len, size - pos - len,
			    salt + (uint32_t)pos);
		pos += len;
	}
	return 0;
}
