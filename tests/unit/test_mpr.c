/*
 * test_mpr.c - unit tests of the bounded msgpack reader: each typed read,
 * the validator on every msgpack type, hostile lengths and counts, depth
 * limits, and values split across segments at every byte.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "limits.h"
#include "mpr.h"

#define B(...) ((const uint8_t[]){ __VA_ARGS__ }), sizeof((const uint8_t[]){ __VA_ARGS__ })

static void rd_init(struct mpr *r, struct iovec *iov, const uint8_t *p, size_t n)
{
	mpr_init_buf(r, iov, p, n);
}

static int read_uint(const uint8_t *p, size_t n, uint64_t *v, uint64_t *left)
{
	struct iovec iov;
	struct mpr r;
	int st;

	rd_init(&r, &iov, p, n);
	st = mpr_read_uint(&r, v);
	*left = mpr_left(&r);
	return st;
}

static void test_read_uint(void **state)
{
	uint64_t v = 0, left;

	assert_int_equal(read_uint(B(0x00), &v, &left), MPR_OK); assert_int_equal(v, 0);
	assert_int_equal(read_uint(B(0x7f), &v, &left), MPR_OK); assert_int_equal(v, 127);
	assert_int_equal(read_uint(B(0xcc, 0xff), &v, &left), MPR_OK); assert_int_equal(v, 255);
	assert_int_equal(read_uint(B(0xcd, 0x12, 0x34), &v, &left), MPR_OK); assert_int_equal(v, 0x1234);
	assert_int_equal(read_uint(B(0xce, 0xde, 0xad, 0xbe, 0xef), &v, &left), MPR_OK);
	assert_int_equal(v, 0xdeadbeef);
	assert_int_equal(read_uint(B(0xcf, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01), &v, &left), MPR_OK);
	assert_true(v == UINT64_MAX);
	assert_int_equal(left, 1);
	/* signed forms >= 0 */
	assert_int_equal(read_uint(B(0xd0, 0x7f), &v, &left), MPR_OK); assert_int_equal(v, 127);
	assert_int_equal(read_uint(B(0xd1, 0x7f, 0xff), &v, &left), MPR_OK); assert_int_equal(v, 32767);
	assert_int_equal(read_uint(B(0xd2, 0x00, 0x00, 0x00, 0x05), &v, &left), MPR_OK); assert_int_equal(v, 5);
	assert_int_equal(read_uint(B(0xd3, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff), &v, &left), MPR_OK);
	assert_true(v == INT64_MAX);
	/* negatives */
	v = 99;
	assert_int_equal(read_uint(B(0xff), &v, &left), MPR_E_TYPE);
	assert_int_equal(read_uint(B(0xe0), &v, &left), MPR_E_TYPE);
	assert_int_equal(read_uint(B(0xd0, 0x80), &v, &left), MPR_E_TYPE);
	assert_int_equal(read_uint(B(0xd1, 0xff, 0xff), &v, &left), MPR_E_TYPE);
	assert_int_equal(read_uint(B(0xd2, 0x80, 0, 0, 0), &v, &left), MPR_E_TYPE);
	assert_int_equal(read_uint(B(0xd3, 0x80, 0, 0, 0, 0, 0, 0, 0), &v, &left), MPR_E_TYPE);
	assert_int_equal(v, 99); /* untouched */
	/* other types, invalid, short */
	assert_int_equal(read_uint(B(0xc0), &v, &left), MPR_E_TYPE);
	assert_int_equal(read_uint(B(0xa1, 'x'), &v, &left), MPR_E_TYPE);
	assert_int_equal(read_uint(B(0xca, 0, 0, 0, 0), &v, &left), MPR_E_TYPE);
	assert_int_equal(read_uint(B(0xc1), &v, &left), MPR_E_INVALID);
	assert_int_equal(read_uint(B(0xcf, 1, 2, 3), &v, &left), MPR_E_SHORT);
	assert_int_equal(read_uint(NULL, 0, &v, &left), MPR_E_SHORT);
	assert_int_equal(v, 99);
}

static void test_read_map(void **state)
{
	struct iovec iov;
	struct mpr r;
	uint32_t n = 7;

	rd_init(&r, &iov, B(0x80));
	assert_int_equal(mpr_read_map(&r, &n), MPR_OK);
	assert_int_equal(n, 0);
	rd_init(&r, &iov, B(0x81, 0x01, 0x02));
	assert_int_equal(mpr_read_map(&r, &n), MPR_OK);
	assert_int_equal(n, 1);
	rd_init(&r, &iov, B(0xde, 0x00, 0x01, 0x01, 0x02));
	assert_int_equal(mpr_read_map(&r, &n), MPR_OK);
	assert_int_equal(n, 1);
	rd_init(&r, &iov, B(0xdf, 0x00, 0x00, 0x00, 0x01, 0x01, 0x02));
	assert_int_equal(mpr_read_map(&r, &n), MPR_OK);
	assert_int_equal(n, 1);
	/* counts beyond the bytes */
	rd_init(&r, &iov, B(0x81, 0x01));
	assert_int_equal(mpr_read_map(&r, &n), MPR_E_SHORT);
	rd_init(&r, &iov, B(0xdf, 0xff, 0xff, 0xff, 0xff, 0x01, 0x02));
	assert_int_equal(mpr_read_map(&r, &n), MPR_E_SHORT);
	rd_init(&r, &iov, B(0xde, 0x00));
	assert_int_equal(mpr_read_map(&r, &n), MPR_E_SHORT);
	/* not maps */
	rd_init(&r, &iov, B(0x91, 0x01));
	assert_int_equal(mpr_read_map(&r, &n), MPR_E_TYPE);
	rd_init(&r, &iov, B(0xc1));
	assert_int_equal(mpr_read_map(&r, &n), MPR_E_INVALID);
}

static void test_read_str(void **state)
{
	struct iovec iov;
	struct mpr r;
	char buf[8];
	size_t len = 99;

	rd_init(&r, &iov, B(0xa3, 'a', 'b', 'c'));
	assert_int_equal(mpr_read_str(&r, buf, sizeof(buf), &len), MPR_OK);
	assert_int_equal(len, 3);
	assert_string_equal(buf, "abc");
	rd_init(&r, &iov, B(0xa0));
	assert_int_equal(mpr_read_str(&r, buf, sizeof(buf), &len), MPR_OK);
	assert_int_equal(len, 0);
	assert_string_equal(buf, "");
	rd_init(&r, &iov, B(0xd9, 7, '1', '2', '3', '4', '5', '6', '7'));
	assert_int_equal(mpr_read_str(&r, buf, sizeof(buf), &len), MPR_OK);
	assert_string_equal(buf, "1234567");
	rd_init(&r, &iov, B(0xda, 0, 2, 'h', 'i'));
	assert_int_equal(mpr_read_str(&r, buf, sizeof(buf), &len), MPR_OK);
	assert_string_equal(buf, "hi");
	rd_init(&r, &iov, B(0xdb, 0, 0, 0, 1, 'z'));
	assert_int_equal(mpr_read_str(&r, buf, sizeof(buf), &len), MPR_OK);
	assert_string_equal(buf, "z");
	/* cap - 1 bytes max */
	memcpy(buf, "XXXXXXX", 8);
	len = 99;
	rd_init(&r, &iov, B(0xa8, '1', '2', '3', '4', '5', '6', '7', '8'));
	assert_int_equal(mpr_read_str(&r, buf, sizeof(buf), &len), MPR_E_RANGE);
	assert_string_equal(buf, "XXXXXXX");
	assert_int_equal(len, 99);
	rd_init(&r, &iov, B(0xa0));
	assert_int_equal(mpr_read_str(&r, buf, 0, &len), MPR_E_RANGE);
	/* declared longer than the data */
	rd_init(&r, &iov, B(0xa5, 'a', 'b'));
	assert_int_equal(mpr_read_str(&r, buf, sizeof(buf), &len), MPR_E_SHORT);
	assert_string_equal(buf, "XXXXXXX");
	rd_init(&r, &iov, B(0xdb, 0xff, 0xff, 0xff, 0xff, 'a'));
	assert_int_equal(mpr_read_str(&r, buf, sizeof(buf), &len), MPR_E_RANGE);
	/* bin is not str */
	rd_init(&r, &iov, B(0xc4, 1, 'a'));
	assert_int_equal(mpr_read_str(&r, buf, sizeof(buf), &len), MPR_E_TYPE);
}

static void test_read_bin(void **state)
{
	struct iovec iov;
	struct mpr r;
	uint8_t buf[4] = { 9, 9, 9, 9 };
	size_t len = 99;

	rd_init(&r, &iov, B(0xc4, 2, 1, 2));
	assert_int_equal(mpr_read_bin_exact(&r, buf, 2), MPR_OK);
	assert_int_equal(buf[0], 1);
	assert_int_equal(buf[1], 2);
	rd_init(&r, &iov, B(0xc5, 0, 3, 1, 2, 3));
	assert_int_equal(mpr_read_bin_exact(&r, buf, 2), MPR_E_RANGE);
	rd_init(&r, &iov, B(0xc6, 0, 0, 0, 3, 1, 2, 3));
	assert_int_equal(mpr_read_bin_exact(&r, buf, 3), MPR_OK);
	rd_init(&r, &iov, B(0xc4, 4, 1, 2));
	assert_int_equal(mpr_read_bin_exact(&r, buf, 4), MPR_E_SHORT);
	rd_init(&r, &iov, B(0xa2, 1, 2));
	assert_int_equal(mpr_read_bin_exact(&r, buf, 2), MPR_E_TYPE);

	rd_init(&r, &iov, B(0xc4, 3, 7, 8, 9));
	assert_int_equal(mpr_read_bin(&r, buf, sizeof(buf), &len), MPR_OK);
	assert_int_equal(len, 3);
	assert_int_equal(buf[2], 9);
	rd_init(&r, &iov, B(0xc4, 0));
	assert_int_equal(mpr_read_bin(&r, buf, sizeof(buf), &len), MPR_OK);
	assert_int_equal(len, 0);
	len = 99;
	rd_init(&r, &iov, B(0xc4, 5, 1, 2, 3, 4, 5));
	assert_int_equal(mpr_read_bin(&r, buf, sizeof(buf), &len), MPR_E_RANGE);
	rd_init(&r, &iov, B(0xc6, 0x7f, 0xff, 0xff, 0xff));
	assert_int_equal(mpr_read_bin(&r, buf, UINT32_MAX, &len), MPR_E_SHORT);
	assert_int_equal(len, 99);
}

static void test_byte_copy_skip(void **state)
{
	struct iovec iov;
	struct mpr r;
	uint8_t b = 0, out[4];

	rd_init(&r, &iov, B(1, 2, 3, 4, 5));
	assert_int_equal(mpr_byte(&r, &b), MPR_OK);
	assert_int_equal(b, 1);
	assert_int_equal(mpr_copy(&r, out, 2), MPR_OK);
	assert_int_equal(out[1], 3);
	assert_int_equal(mpr_skip(&r, 3), MPR_E_SHORT);
	assert_int_equal(mpr_copy(&r, out, 3), MPR_E_SHORT);
	assert_int_equal(mpr_left(&r), 2);
	assert_int_equal(mpr_skip(&r, 2), MPR_OK);
	assert_int_equal(mpr_byte(&r, &b), MPR_E_SHORT);
	assert_int_equal(mpr_skip(&r, 0), MPR_OK);
	assert_int_equal(mpr_skip(&r, UINT64_MAX), MPR_E_SHORT);
}

/* Every msgpack type: the validator accepts it and consumes it exactly. */
static void test_skip_all_types(void **state)
{
	static const struct {
		uint8_t b[24];
		size_t n;
	} v[] = {
		{ { 0x00 }, 1 }, { { 0x7f }, 1 }, { { 0xe0 }, 1 }, { { 0xff }, 1 },
		{ { 0xc0 }, 1 }, { { 0xc2 }, 1 }, { { 0xc3 }, 1 },
		{ { 0xcc, 1 }, 2 }, { { 0xcd, 1, 2 }, 3 }, { { 0xce, 1, 2, 3, 4 }, 5 },
		{ { 0xcf, 1, 2, 3, 4, 5, 6, 7, 8 }, 9 },
		{ { 0xd0, 1 }, 2 }, { { 0xd1, 1, 2 }, 3 }, { { 0xd2, 1, 2, 3, 4 }, 5 },
		{ { 0xd3, 1, 2, 3, 4, 5, 6, 7, 8 }, 9 },
		{ { 0xca, 0x3f, 0x80, 0, 0 }, 5 },
		{ { 0xcb, 0x3f, 0xf0, 0, 0, 0, 0, 0, 0 }, 9 },
		{ { 0xa0 }, 1 }, { { 0xa2, 'h', 'i' }, 3 },
		{ { 0xd9, 1, 'x' }, 3 }, { { 0xda, 0, 1, 'x' }, 4 },
		{ { 0xdb, 0, 0, 0, 1, 'x' }, 6 },
		{ { 0xc4, 0 }, 2 }, { { 0xc4, 1, 9 }, 3 }, { { 0xc5, 0, 1, 9 }, 4 },
		{ { 0xc6, 0, 0, 0, 1, 9 }, 6 },
		{ { 0xd4, 1, 0xaa }, 3 }, { { 0xd5, 1, 1, 2 }, 4 },
		{ { 0xd6, 1, 1, 2, 3, 4 }, 6 },
		{ { 0xd7, 0xff, 1, 2, 3, 4, 5, 6, 7, 8 }, 10 },
		{ { 0xd8, 1, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16 }, 18 },
		{ { 0xc7, 0, 5 }, 3 }, { { 0xc7, 2, 5, 1, 2 }, 5 },
		{ { 0xc8, 0, 1, 5, 1 }, 5 }, { { 0xc9, 0, 0, 0, 1, 5, 1 }, 7 },
		{ { 0x90 }, 1 }, { { 0x80 }, 1 }, { { 0x92, 0x01, 0xa1, 'a' }, 4 },
		{ { 0xdc, 0, 2, 1, 2 }, 5 }, { { 0xdd, 0, 0, 0, 1, 0xc0 }, 6 },
		{ { 0x81, 0xa1, 'k', 0x91, 0x80 }, 5 },
		{ { 0xde, 0, 1, 1, 2 }, 5 }, { { 0xdf, 0, 0, 0, 1, 1, 0x90 }, 7 },
		{ { 0x93, 0x90, 0x80, 0x91, 0x90 }, 5 },
	};
	uint8_t buf[32];

	for (size_t k = 0; k < sizeof(v) / sizeof(v[0]); k++) {
		struct iovec iov;
		struct mpr r;

		if (mpr_validate(v[k].b, v[k].n, IPCHUB_MAX_BODY_DEPTH) != MPR_OK)
			fail_msg("value %zu (0x%02x) rejected", k, v[k].b[0]);
		/* trailing byte: skip stops before it, validate refuses it */
		memcpy(buf, v[k].b, v[k].n);
		buf[v[k].n] = 0x00;
		rd_init(&r, &iov, buf, v[k].n + 1);
		assert_int_equal(mpr_skip_value(&r, IPCHUB_MAX_BODY_DEPTH), MPR_OK);
		assert_int_equal(mpr_left(&r), 1);
		assert_int_equal(mpr_validate(buf, v[k].n + 1, IPCHUB_MAX_BODY_DEPTH),
				 MPR_E_INVALID);
		/* every proper prefix is short */
		for (size_t cut = 0; cut < v[k].n; cut++)
			assert_int_equal(mpr_validate(v[k].b, cut, IPCHUB_MAX_BODY_DEPTH),
					 MPR_E_SHORT);
	}
}

static void test_skip_hostile(void **state)
{
	assert_int_equal(mpr_validate(B(0xc1), 8), MPR_E_INVALID);
	assert_int_equal(mpr_validate(B(0x92, 0x01, 0xc1), 8), MPR_E_INVALID);
	assert_int_equal(mpr_validate(B(0x81, 0xc1, 0x01), 8), MPR_E_INVALID);
	/* counts and lengths far beyond the bytes are refused up front */
	assert_int_equal(mpr_validate(B(0xdd, 0xff, 0xff, 0xff, 0xff, 0, 0), 8), MPR_E_SHORT);
	assert_int_equal(mpr_validate(B(0xdf, 0xff, 0xff, 0xff, 0xff, 0, 0), 8), MPR_E_SHORT);
	assert_int_equal(mpr_validate(B(0x82, 0x01, 0x02, 0x03), 8), MPR_E_SHORT);
	assert_int_equal(mpr_validate(B(0xdb, 0xff, 0xff, 0xff, 0xff, 'a'), 8), MPR_E_SHORT);
	assert_int_equal(mpr_validate(B(0xc6, 0xff, 0xff, 0xff, 0xff, 'a'), 8), MPR_E_SHORT);
	assert_int_equal(mpr_validate(B(0xc9, 0xff, 0xff, 0xff, 0xff, 1, 'a'), 8), MPR_E_SHORT);
	assert_int_equal(mpr_validate(B(0xc9, 0xff, 0xff, 0xff, 0xff), 8), MPR_E_SHORT);
	/* an empty buffer holds no value */
	assert_int_equal(mpr_validate(NULL, 0, 8), MPR_E_SHORT);
}

static void test_skip_depth(void **state)
{
	static uint8_t deep[200001];

	/* scalar depth 0, [] depth 1, [[1]] depth 2 */
	assert_int_equal(mpr_validate(B(0x01), 0), MPR_OK);
	assert_int_equal(mpr_validate(B(0x90), 0), MPR_E_DEPTH);
	assert_int_equal(mpr_validate(B(0x90), 1), MPR_OK);
	assert_int_equal(mpr_validate(B(0x91, 0x91, 0x01), 1), MPR_E_DEPTH);
	assert_int_equal(mpr_validate(B(0x91, 0x91, 0x01), 2), MPR_OK);
	assert_int_equal(mpr_validate(B(0x81, 0x01, 0x81, 0x01, 0x80), 2), MPR_E_DEPTH);
	assert_int_equal(mpr_validate(B(0x81, 0x01, 0x81, 0x01, 0x80), 3), MPR_OK);
	/* siblings do not add depth */
	assert_int_equal(mpr_validate(B(0x93, 0x91, 0x01, 0x91, 0x01, 0x91, 0x01), 2), MPR_OK);

	for (unsigned d = IPCHUB_MAX_BODY_DEPTH; d <= IPCHUB_MAX_BODY_DEPTH + 1; d++) {
		memset(deep, 0x91, d);
		deep[d] = 0xc0;
		assert_int_equal(mpr_validate(deep, d + 1, IPCHUB_MAX_BODY_DEPTH),
				 d <= IPCHUB_MAX_BODY_DEPTH ? MPR_OK : MPR_E_DEPTH);
	}
	/* a max_depth above the stack is clamped, never overflows it */
	memset(deep, 0x91, 100000);
	deep[100000] = 0xc0;
	assert_int_equal(mpr_validate(deep, 100001, 1000000), MPR_E_DEPTH);
	/* map keys nest too */
	for (size_t k = 0; k < 100000; k++)
		deep[k] = 0x81;
	assert_int_equal(mpr_validate(deep, 100000, IPCHUB_MAX_BODY_DEPTH), MPR_E_DEPTH);
	/* wide, not deep: 100000 siblings */
	deep[0] = 0xdd; deep[1] = 0; deep[2] = 0x01; deep[3] = 0x86; deep[4] = 0xa0;
	memset(deep + 5, 0x90, 100000);
	assert_int_equal(mpr_validate(deep, 100005, 1), MPR_E_DEPTH);
	assert_int_equal(mpr_validate(deep, 100005, 2), MPR_OK);
}

/* Read a value split over segments at every offset (2 and 3 pieces, and
 * with empty segments in between), including inside multi-byte lengths. */
static void test_segments(void **state)
{
	/* {"ab": [uint32 0xdeadbeef, str16 "xyz", float64, fixext4]} + a str */
	static const uint8_t v[] = {
		0x82, 0xa2, 'a', 'b', 0x94, 0xce, 0xde, 0xad, 0xbe, 0xef,
		0xda, 0x00, 0x03, 'x', 'y', 'z',
		0xcb, 1, 2, 3, 4, 5, 6, 7, 8, 0xd6, 1, 9, 9, 9, 9,
		0xcf, 0, 0, 0, 0, 0, 0, 1, 0,
		0xa1, 'q',
	};
	const size_t n = sizeof(v);

	for (size_t i = 0; i <= n; i++) {
		for (size_t j = i; j <= n; j++) {
			struct iovec iov[5] = {
				{ (void *)v, i }, { NULL, 0 }, { (void *)(v + i), j - i },
				{ NULL, 0 }, { (void *)(v + j), n - j },
			};
			struct mpr r;
			uint32_t cnt;
			char s[8];
			size_t len;
			uint64_t u;

			mpr_init(&r, iov, 5, UINT64_MAX);
			assert_int_equal(mpr_left(&r), n);
			assert_int_equal(mpr_skip_value(&r, 4), MPR_OK);
			assert_int_equal(mpr_left(&r), 0);

			mpr_init(&r, iov, 5, n);
			assert_int_equal(mpr_read_map(&r, &cnt), MPR_OK);
			assert_int_equal(cnt, 2);
			assert_int_equal(mpr_read_str(&r, s, sizeof(s), &len), MPR_OK);
			assert_string_equal(s, "ab");
			assert_int_equal(mpr_skip(&r, 1), MPR_OK); /* 0x94 */
			assert_int_equal(mpr_read_uint(&r, &u), MPR_OK);
			assert_int_equal(u, 0xdeadbeef);
			assert_int_equal(mpr_read_str(&r, s, sizeof(s), &len), MPR_OK);
			assert_string_equal(s, "xyz");
			assert_int_equal(mpr_skip_value(&r, 0), MPR_OK); /* float */
			assert_int_equal(mpr_skip_value(&r, 0), MPR_OK); /* fixext */
			assert_int_equal(mpr_read_uint(&r, &u), MPR_OK);
			assert_int_equal(u, 256);
			assert_int_equal(mpr_read_str(&r, s, sizeof(s), &len), MPR_OK);
			assert_string_equal(s, "q");
			assert_int_equal(mpr_left(&r), 0);
			/* a limit short of the data is honoured anywhere */
			mpr_init(&r, iov, 5, j);
			if (j < n)
				assert_int_equal(mpr_skip_value(&r, 4), MPR_E_SHORT);
		}
	}
}

static void test_init_clamps(void **state)
{
	const uint8_t d[3] = { 1, 2, 3 };
	struct iovec iov[2] = { { (void *)d, 1 }, { (void *)(d + 1), 2 } };
	struct mpr r;
	uint8_t out[8];

	mpr_init(&r, iov, 2, 1000);
	assert_int_equal(mpr_left(&r), 3);
	assert_int_equal(mpr_copy(&r, out, 4), MPR_E_SHORT);
	assert_int_equal(mpr_copy(&r, out, 3), MPR_OK);
	assert_memory_equal(out, d, 3);
	mpr_init(&r, iov, 2, 2);
	assert_int_equal(mpr_left(&r), 2);
	mpr_init(&r, NULL, 0, 10);
	assert_int_equal(mpr_left(&r), 0);
	assert_int_equal(mpr_byte(&r, out), MPR_E_SHORT);
	for (int st = MPR_OK; st <= MPR_E_RANGE + 1; st++)
		assert_non_null(mpr_strerror(st));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_read_uint),
		cmocka_unit_test(test_read_map),
		cmocka_unit_test(test_read_str),
		cmocka_unit_test(test_read_bin),
		cmocka_unit_test(test_byte_copy_skip),
		cmocka_unit_test(test_skip_all_types),
		cmocka_unit_test(test_skip_hostile),
		cmocka_unit_test(test_skip_depth),
		cmocka_unit_test(test_segments),
		cmocka_unit_test(test_init_clamps),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
