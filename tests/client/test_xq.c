/*
 * test_xq.c - the queue of bodies written from the caller's memory
 * (client/xq.h): write layouts around buffer bytes, partial writes of any
 * length (down to one byte at a time) advancing bodies and buffer bytes
 * in stream order, callbacks exactly once in order, unpush, and clear.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "xq.h"

struct calls {
	const void *buf[16];
	int n;
};

static void on_free(void *buf, void *arg)
{
	struct calls *c = arg;

	assert_true(c->n < 16);
	c->buf[c->n++] = buf;
}

/* Stream: out "AB" | body "xyz" | out "CDE" | body "uv" | out "F". */
static const uint8_t out[] = "ABCDEF";
static const uint8_t b1[] = "xyz", b2[] = "uv";
static const char want[] = "ABxyzCDEuvF";

static void setup_q(struct xq *q, struct calls *c, uint64_t base)
{
	xq_init(q);
	assert_int_equal(xq_push(q, base + 2, b1, 3, on_free, c), 0);
	assert_int_equal(xq_push(q, base + 5, b2, 2, on_free, c), 0);
}

/* Write the whole stream in steps of at most `step` bytes, as a socket
 * taking that much per call would, and check the bytes and callbacks. */
static void drain(size_t step, uint64_t base)
{
	struct xq q;
	struct calls c = {0};
	char got[sizeof(want)] = {0};
	size_t gl = 0, done = 0;
	struct iovec iov[XQ_IOV_MAX];

	setup_q(&q, &c, base);
	while (done < 6 || q.n) {
		int n = xq_iov(&q, base + done, out + done, 6 - done, iov,
			       XQ_IOV_MAX);
		size_t room = step, wrote = 0;

		assert_true(n > 0);
		for (int i = 0; i < n && room; i++) {
			size_t k = iov[i].iov_len < room ? iov[i].iov_len : room;

			memcpy(got + gl, iov[i].iov_base, k);
			gl += k;
			wrote += k;
			room -= k;
		}
		done += xq_advance(&q, base + done, wrote);
	}
	assert_int_equal(gl, strlen(want));
	assert_memory_equal(got, want, gl);
	assert_int_equal(c.n, 2);
	assert_ptr_equal(c.buf[0], b1);
	assert_ptr_equal(c.buf[1], b2);
	assert_int_equal(q.bytes, 0);
	xq_clear(&q);
	assert_int_equal(c.n, 2); /* nothing left to release */
}

static void test_layout_and_partial_writes(void **state)
{
	(void)state;
	for (size_t step = 1; step <= 12; step++) {
		drain(step, 0);
		drain(step, 1000000007ull); /* offsets are absolute */
	}
}

static void test_iov_limit_and_due(void **state)
{
	struct xq q;
	struct calls c = {0};
	struct iovec iov[2];

	(void)state;
	setup_q(&q, &c, 0);
	assert_false(xq_due(&q, 0));
	assert_true(xq_due(&q, 2)); /* the first body follows byte 1 */
	/* Two iovecs: the first buffer run and the first body only. */
	assert_int_equal(xq_iov(&q, 0, out, 6, iov, 2), 2);
	assert_int_equal(iov[0].iov_len, 2);
	assert_int_equal(iov[1].iov_len, 3);
	assert_int_equal(xq_advance(&q, 0, 5), 2);
	assert_int_equal(c.n, 1);
	/* Now the second body is due after three more buffer bytes. */
	assert_int_equal(xq_advance(&q, 2, 3), 3);
	assert_true(xq_due(&q, 5));
	xq_clear(&q); /* releases the unwritten body */
	assert_int_equal(c.n, 2);
	assert_ptr_equal(c.buf[1], b2);
}

static void on_count(void *buf, void *arg)
{
	(void)buf;
	(*(int *)arg)++;
}

static void test_unpush_and_growth(void **state)
{
	struct xq q;
	int freed = 0;

	(void)state;
	xq_init(&q);
	for (uint64_t i = 0; i < 100; i++)
		assert_int_equal(xq_push(&q, 10 * i + 1, b1, 3, NULL, NULL), 0);
	assert_int_equal(q.bytes, 300);
	assert_int_equal(xq_push(&q, 2000, b2, 2, on_count, &freed), 0);
	xq_unpush(&q); /* taken back: never released */
	assert_int_equal(q.bytes, 300);
	/* Write the first 50 bodies and their buffer bytes; the rest
	 * compacts when the array fills again. */
	assert_int_equal(xq_advance(&q, 0, 50 * 13), 500);
	assert_int_equal(q.bytes, 150);
	for (uint64_t i = 0; i < 100; i++)
		assert_int_equal(xq_push(&q, 1000 + 10 * i + 1, b1, 3, on_count,
					 &freed), 0);
	assert_int_equal(q.bytes, 450);
	xq_clear(&q);
	assert_int_equal(freed, 100); /* the 100 counted ones, once each */
	assert_int_equal(q.n, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_layout_and_partial_writes),
		cmocka_unit_test(test_iov_limit_and_due),
		cmocka_unit_test(test_unpush_and_growth),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
