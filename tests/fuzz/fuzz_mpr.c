/*
 * fuzz_mpr.c - libFuzzer target for the bounded msgpack reader that guards
 * every unpack of untrusted bytes (mpr_validate / mpr_skip_value), with
 * msgpack-c as the oracle.
 *
 * Model: the whole input is one candidate body. mpr's verdict is computed
 * over contiguous memory and again over the same bytes cut into segments
 * (the broker reads iovecs over an evbuffer); the two must agree on the
 * status and on the bytes consumed. Depth limits are monotonic: a value
 * accepted at depth d is accepted at every deeper limit. Every proper
 * prefix of an accepted value is MPR_E_SHORT. Against msgpack-c:
 *  - accepted (depth <= 32, msgpack-c's own stack) => msgpack-c unpacks it,
 *    consuming exactly the input, and the object it builds packs again
 *    into bytes that mpr accepts and that pack to the same bytes once more
 *    (compared as bytes, not with msgpack_object_equal: NaN != NaN);
 *  - rejected for a reason other than MPR_E_SHORT => msgpack-c does not
 *    accept the input as exactly one value either.
 * msgpack-c allocates from the counts a value declares, so it only ever
 * sees inputs where every container it can open has been bounded by mpr
 * (count <= bytes left): both parse sequentially, and mpr stops at the
 * first container whose count exceeds the bytes left, reporting SHORT,
 * which is why SHORT inputs are never handed to msgpack-c.
 * No state survives between calls.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "limits.h"
#include "mpr.h"

#ifdef FUZZ_HAVE_MSGPACK
#include <msgpack.h>
#endif

#define FUZZ_CHECK(cond)                                                      \
	do {                                                                  \
		if (!(cond)) {                                                \
			fprintf(stderr, "fuzz_mpr: check failed: %s (%s:%d)\n", \
				#cond, __FILE__, __LINE__);                   \
			abort();                                              \
		}                                                             \
	} while (0)

/* msgpack-c's unpacker nests MSGPACK_EMBED_STACK_SIZE (32) containers. */
#define FUZZ_MSGPACK_DEPTH 32u

static int skip_segmented(const uint8_t *p, size_t len, uint32_t salt,
			  unsigned depth, uint64_t *left)
{
	struct iovec iov[4];
	struct mpr r;
	size_t c1 = len ? salt % (len + 1) : 0;
	size_t c2 = c1 + (len - c1 ? (salt >> 9) % (len - c1 + 1) : 0);
	int st;

	iov[0] = (struct iovec){ (void *)p, c1 };
	iov[1] = (struct iovec){ NULL, 0 };
	iov[2] = (struct iovec){ (void *)(p + c1), c2 - c1 };
	iov[3] = (struct iovec){ (void *)(p + c2), len - c2 };
	mpr_init(&r, iov, 4, len);
	st = mpr_skip_value(&r, depth);
	*left = mpr_left(&r);
	return st;
}

#ifdef FUZZ_HAVE_MSGPACK
static void check_msgpack_accepts(const uint8_t *p, size_t len)
{
	msgpack_unpacked u, u2;
	msgpack_sbuffer sb, sb2;
	msgpack_packer pk, pk2;
	size_t off = 0, off2 = 0;

	msgpack_unpacked_init(&u);
	FUZZ_CHECK(msgpack_unpack_next(&u, (const char *)p, len, &off) ==
		   MSGPACK_UNPACK_SUCCESS);
	FUZZ_CHECK(off == len);
	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	FUZZ_CHECK(msgpack_pack_object(&pk, u.data) == 0);
	FUZZ_CHECK(mpr_validate(sb.data, sb.size, FUZZ_MSGPACK_DEPTH) == MPR_OK);
	msgpack_unpacked_init(&u2);
	FUZZ_CHECK(msgpack_unpack_next(&u2, sb.data, sb.size, &off2) ==
		   MSGPACK_UNPACK_SUCCESS);
	FUZZ_CHECK(off2 == sb.size);
	msgpack_sbuffer_init(&sb2);
	msgpack_packer_init(&pk2, &sb2, msgpack_sbuffer_write);
	FUZZ_CHECK(msgpack_pack_object(&pk2, u2.data) == 0);
	FUZZ_CHECK(sb2.size == sb.size && memcmp(sb.data, sb2.data, sb.size) == 0);
	msgpack_sbuffer_destroy(&sb2);
	msgpack_unpacked_destroy(&u2);
	msgpack_sbuffer_destroy(&sb);
	msgpack_unpacked_destroy(&u);
}

static void check_msgpack_refuses(const uint8_t *p, size_t len)
{
	msgpack_unpacked u;
	size_t off = 0;
	msgpack_unpack_return ret;

	msgpack_unpacked_init(&u);
	ret = msgpack_unpack_next(&u, (const char *)p, len, &off);
	FUZZ_CHECK(ret != MSGPACK_UNPACK_SUCCESS || off != len);
	msgpack_unpacked_destroy(&u);
}
#endif

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint32_t salt = 2166136261u;
	int prev = -1;

	for (size_t k = 0; k < size && k < 64; k++)
		salt = (salt ^ data[k]) * 16777619u;

	for (unsigned depth = 0; depth <= IPCHUB_MAX_BODY_DEPTH; depth++) {
		int v = mpr_validate(data, size, depth);
		uint64_t left;
		int s = skip_segmented(data, size, salt + depth, depth, &left);

		FUZZ_CHECK(v >= MPR_OK && v <= MPR_E_RANGE);
		/* validate = skip_value + "nothing left over". */
		if (s == MPR_OK)
			FUZZ_CHECK(v == (left == 0 ? MPR_OK : MPR_E_INVALID));
		else
			FUZZ_CHECK(v == s);
		if (prev == MPR_OK)
			FUZZ_CHECK(v == MPR_OK); /* monotonic in depth */
		prev = v;
	}

	if (mpr_validate(data, size, IPCHUB_MAX_BODY_DEPTH) == MPR_OK) {
		/* Every proper prefix is short (a few, spread over the value). */
		for (size_t cut = 0; cut < size; cut += 1 + size / 8)
			FUZZ_CHECK(mpr_validate(data, cut, IPCHUB_MAX_BODY_DEPTH) ==
				   MPR_E_SHORT);
	}

#ifdef FUZZ_HAVE_MSGPACK
	{
		int v = mpr_validate(data, size, FUZZ_MSGPACK_DEPTH);

		if (v == MPR_OK)
			check_msgpack_accepts(data, size);
		else if (v != MPR_E_SHORT)
			check_msgpack_refuses(data, size);
	}
#endif
	return 0;
}
