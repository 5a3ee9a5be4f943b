/*
 * test_sendbuf.c - ipchub_send_buf(): bodies written from the caller's
 * memory (writev) against a real ipchubd.
 *
 * Checked: sends from the caller's buffers of 100 KiB to 3 MiB (so writes
 * stop mid-body and resume), interleaved with batched ipchub_send()s and
 * a send with a descriptor, arrive complete and in order with
 * consecutive ids, and the descriptor rides on its own message; every
 * buffer's free callback runs exactly once, only after its last byte was
 * written (at the latest when ipchub_flush returns); a send that is
 * refused (no body, a malformed body, a frame over the broker's maximum)
 * leaves the buffer with the caller and never calls the callback; a
 * handle closed while its receiver does not read still calls every
 * callback once. Waits are on conditions with generous deadlines.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "harness.h"

#define WAIT_MS 20000

/* A bin body of exactly total bytes (bin 32 header + a pattern). */
static uint8_t *bin_body(size_t total, uint8_t seed)
{
	uint8_t *p = malloc(total);

	assert_non_null(p);
	assert_true(total > 5);
	p[0] = 0xc6;
	p[1] = (uint8_t)((total - 5) >> 24);
	p[2] = (uint8_t)((total - 5) >> 16);
	p[3] = (uint8_t)((total - 5) >> 8);
	p[4] = (uint8_t)(total - 5);
	for (size_t i = 5; i < total; i++)
		p[i] = (uint8_t)(i * 31 + seed);
	return p;
}

/* Free callbacks: which buffers were released, how often. */
struct freed {
	void *buf[8];
	int n, calls;
};

static void on_free(void *buf, void *arg)
{
	struct freed *f = arg;

	f->calls++;
	if (f->n < 8)
		f->buf[f->n++] = buf;
	free(buf);
}

static void expect_body(ipchub *h, uint64_t id, const void *body,
			size_t len, int nfds)
{
	const ipchub_msg *m;
	const int *fds;
	const void *p;
	size_t got;

	assert_int_equal(ipchub_recv_lent(h, WAIT_MS, &m), IPCHUB_OK);
	assert_int_equal(ipchub_msg_kind(m), IPCHUB_KIND_SEND);
	assert_int_equal(ipchub_msg_id(m), id);
	p = ipchub_msg_body(m, &got);
	assert_int_equal(got, len);
	assert_memory_equal(p, body, len);
	assert_int_equal(ipchub_msg_fds(m, &fds), nfds);
}

static void test_order_and_callbacks(void **state)
{
	struct hub hub;
	struct freed fr = {0};
	static const uint8_t small[3][2] = { {0x01}, {0xa1, 'x'}, {0xc0} };
	const size_t sz[3] = { 100 * 1024, 3 * 1024 * 1024, 700 * 1024 };
	uint8_t *big[3], *copy[3];
	uint64_t id0, id;
	int p[2];

	(void)state;
	hub_start(&hub, NULL);
	ipchub *a = hub_client(&hub, "sb.a");
	ipchub *b = hub_client(&hub, "sb.b");
	for (int i = 0; i < 3; i++) {
		big[i] = bin_body(sz[i], (uint8_t)i);
		copy[i] = malloc(sz[i]);
		assert_non_null(copy[i]);
		memcpy(copy[i], big[i], sz[i]);
	}
	assert_int_equal(pipe(p), 0);
	assert_int_equal(ipchub_send(a, "sb.b", small[0], 1, &id0), IPCHUB_OK);
	assert_int_equal(ipchub_send_buf(a, "sb.b", big[0], sz[0], on_free, &fr,
					 &id), IPCHUB_OK);
	assert_int_equal(id, id0 + 1);
	/* Two sends that batch with each other, not with the body before. */
	assert_int_equal(ipchub_send(a, "sb.b", small[1], 2, NULL), IPCHUB_OK);
	assert_int_equal(ipchub_send(a, "sb.b", small[2], 1, NULL), IPCHUB_OK);
	assert_int_equal(ipchub_send_buf(a, "sb.b", big[1], sz[1], on_free, &fr,
					 NULL), IPCHUB_OK);
	/* A descriptor right after a body from the caller's memory. */
	assert_int_equal(ipchub_send_fds(a, "sb.b", small[0], 1, &p[1], 1, NULL),
			 IPCHUB_OK);
	assert_int_equal(ipchub_send_buf(a, "sb.b", big[2], sz[2], on_free, &fr,
					 &id), IPCHUB_OK);
	assert_int_equal(id, id0 + 6);
	assert_int_equal(ipchub_flush(a, WAIT_MS), IPCHUB_OK);
	/* Everything was written: every buffer released once, in order. */
	assert_int_equal(fr.calls, 3);
	for (int i = 0; i < 3; i++)
		assert_ptr_equal(fr.buf[i], big[i]);

	expect_body(b, id0, small[0], 1, 0);
	expect_body(b, id0 + 1, copy[0], sz[0], 0);
	expect_body(b, id0 + 2, small[1], 2, 0);
	expect_body(b, id0 + 3, small[2], 1, 0);
	expect_body(b, id0 + 4, copy[1], sz[1], 0);
	expect_body(b, id0 + 5, small[0], 1, 1);
	expect_body(b, id0 + 6, copy[2], sz[2], 0);
	close(p[0]);
	close(p[1]);
	for (int i = 0; i < 3; i++)
		free(copy[i]);
	ipchub_close(a);
	ipchub_close(b);
	assert_int_equal(hub_stop(&hub), 0);
}

static void test_refused(void **state)
{
	static const char *const args[] = { "--max-frame", "65536", NULL };
	struct hub hub;
	struct freed fr = {0};
	uint8_t bad[2] = { 0xc1, 0x00 };
	uint8_t *big;

	(void)state;
	hub_start(&hub, args);
	ipchub *a = hub_client(&hub, "sb.a");
	big = bin_body(65536, 1); /* with its header, over max_frame */
	assert_int_equal(ipchub_send_buf(a, "sb.b", NULL, 0, on_free, &fr, NULL),
			 IPCHUB_E_INVALID);
	assert_int_equal(ipchub_send_buf(a, "sb.b", big, 0, on_free, &fr, NULL),
			 IPCHUB_E_INVALID);
	assert_int_equal(ipchub_send_buf(a, "sb.b", bad, 1, on_free, &fr, NULL),
			 IPCHUB_E_BAD_BODY);
	assert_int_equal(ipchub_send_buf(a, "bad name!", big, 65536, on_free,
					 &fr, NULL), IPCHUB_E_BAD_NAME);
	assert_int_equal(ipchub_send_buf(a, "sb.b", big, 65536, on_free, &fr,
					 NULL), IPCHUB_E_TOO_LARGE);
	assert_int_equal(ipchub_flush(a, WAIT_MS), IPCHUB_OK);
	assert_int_equal(fr.calls, 0); /* every buffer is still ours */
	free(big);
	ipchub_close(a);
	assert_int_equal(hub_stop(&hub), 0);
}

static void test_close_pending(void **state)
{
	enum { N = 3 };
	const size_t sz = 2 * 1024 * 1024;
	struct hub hub;
	struct freed fr = {0};

	(void)state;
	hub_start(&hub, NULL);
	ipchub *a = hub_client(&hub, "sb.a");
	ipchub *c = hub_client(&hub, "sb.c"); /* never reads */
	/* 6 MB for a receiver that does not read: more than its socket
	 * and the broker's queue for it take, less than a's own mark, so
	 * the sends return with bodies still queued. */
	for (int i = 0; i < N; i++)
		assert_int_equal(ipchub_send_buf(a, "sb.c", bin_body(sz, 7), sz,
						 on_free, &fr, NULL),
				 IPCHUB_OK);
	ipchub_close(a); /* flushes for a short while, then frees */
	assert_int_equal(fr.calls, N);
	ipchub_close(c);
	assert_int_equal(hub_stop(&hub), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_order_and_callbacks),
		cmocka_unit_test(test_refused),
		cmocka_unit_test(test_close_pending),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
