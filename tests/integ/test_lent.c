/*
 * test_lent.c - ipchub_recv_lent() end to end against a real ipchubd.
 *
 * A lent message must look exactly like the owned one ipchub_recv()
 * would give (kind, id, names, stamps, every body byte), for messages
 * from single frames, from every element of batches, with bodies from one
 * byte to 200 KiB (so the receive buffer grows between loans), from the
 * handle's queue (messages that arrived during ipchub_request, errors),
 * mixed with ipchub_recv() on the same handle, answered with
 * ipchub_reply() echoing the lent body, copied with ipchub_msg_dup(),
 * "freed" by the caller (ignored), and while the connection dies.
 * Bodies are bin values whose every byte depends on the message's index
 * and position, so a byte moved or overwritten under a loan shows. Run
 * under valgrind or the ASan build, the same tests show that no lent
 * message is freed twice, leaked, or read after the library moved it.
 * Loops are bounded in time only so that a broken build fails instead of
 * hanging.
 */
#include <pthread.h>
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

#include "frame.h"
#include "harness.h"
#include "limits.h"

#define WAIT_MS 10000

/* Body sizes cycled through: small ones batch; 70,000 and 200,000 are
 * over IPCHUB_CLIENT_BATCH_BODY_MAX and over the 64 KiB read chunk. */
static const size_t sizes[] = {1, 17, 300, 1000, 5000, 70000, 3, 200000};
#define N_SIZES (sizeof(sizes) / sizeof(sizes[0]))

static size_t size_of(uint64_t i) { return sizes[i % N_SIZES]; }

/* Message i's body: bin 32 of size_of(i) bytes depending on i and j. */
static uint8_t *make_body(uint64_t i, size_t *len)
{
	size_t n = size_of(i);
	uint8_t *b = malloc(n + 5);

	assert_non_null(b);
	b[0] = 0xc6;
	frame_put_len(b + 1, (uint32_t)n);
	for (size_t j = 0; j < n; j++)
		b[5 + j] = (uint8_t)(i * 131 + j * 31 + (j >> 8));
	*len = n + 5;
	return b;
}

static bool body_is(const ipchub_msg *m, uint64_t i)
{
	size_t len, want;
	const uint8_t *p = ipchub_msg_body(m, &len);
	uint8_t *b = make_body(i, &want);
	bool ok = p && len == want && memcmp(p, b, len) == 0;

	free(b);
	return ok;
}

static void send_i(ipchub *h, const char *to, uint64_t i, uint64_t *id)
{
	size_t len;
	uint8_t *b = make_body(i, &len);

	assert_int_equal(ipchub_send(h, to, b, len, id), IPCHUB_OK);
	free(b);
}


static void check_send(const ipchub_msg *m, uint64_t id, uint64_t i)
{
	assert_int_equal(ipchub_msg_kind(m), IPCHUB_KIND_SEND);
	assert_int_equal(ipchub_msg_id(m), id);
	assert_string_equal(ipchub_msg_from(m), "a");
	assert_string_equal(ipchub_msg_to(m), "b");
	assert_int_equal(ipchub_msg_uid(m), (uint32_t)geteuid());
	assert_int_equal(ipchub_msg_error(m), 0);
	assert_true(body_is(m, i));
}

/* Single frames (each send flushed on its own), every size; the caller's
 * ipchub_msg_free() of a lent message is ignored. */
static void test_single(void **state)
{
	struct hub hub;
	ipchub *a, *b;
	const ipchub_msg *m;

	(void)state;
	hub_start(&hub, NULL);
	a = hub_client(&hub, "a");
	b = hub_client(&hub, "b");
	for (uint64_t i = 0; i < 2 * N_SIZES; i++) {
		uint64_t id;

		send_i(a, "b", i, &id);
		assert_int_equal(ipchub_flush(a, WAIT_MS), IPCHUB_OK);
		m = NULL;
		assert_int_equal(ipchub_recv_lent(b, WAIT_MS, &m), IPCHUB_OK);
		check_send(m, id, i);
		ipchub_msg_free((ipchub_msg *)m); /* ignored */
		check_send(m, id, i);
	}
	assert_int_equal(ipchub_recv_lent(b, 0, &m), IPCHUB_E_TIMEOUT);
	ipchub_close(a);
	ipchub_close(b);
	assert_int_equal(hub_stop(&hub), 0);
}

struct tx {
	const struct hub *hub;
	uint64_t n;
	uint64_t id0;
};

static void *tx_thread(void *arg)
{
	struct tx *t = arg;
	ipchub *a = hub_client(t->hub, "a");

	for (uint64_t i = 0; i < t->n; i++) {
		uint64_t id;

		send_i(a, "b", i, &id);
		if (i == 0)
			t->id0 = id;
		if (id != t->id0 + i)
			t->id0 = UINT64_MAX; /* checked by the receiver */
	}
	assert_int_equal(ipchub_flush(a, WAIT_MS * 3), IPCHUB_OK);
	ipchub_close(a);
	return NULL;
}

/* Thousands of messages, mostly batched, every size: each element of
 * each batch lent, the receive buffer growing for 200 KiB bodies between
 * loans. Every third lent message is kept with ipchub_msg_dup() and
 * checked at the end, long after its loan. */
static void test_batches(void **state)
{
	enum { N = 4000 };
	struct hub hub;
	struct tx t = {.n = N};
	pthread_t th;
	ipchub *b, *c;
	ipchub_msg **kept = calloc(N, sizeof(*kept));
	int64_t until;

	(void)state;
	assert_non_null(kept);
	hub_start(&hub, NULL);
	t.hub = &hub;
	b = hub_client(&hub, "b");
	c = hub_client(&hub, NULL);
	assert_int_equal(pthread_create(&th, NULL, tx_thread, &t), 0);
	until = now_ms() + 60000;
	for (uint64_t i = 0; i < N; i++) {
		const ipchub_msg *m = NULL;
		int rc = ipchub_recv_lent(b, WAIT_MS, &m);

		assert_int_equal(rc, IPCHUB_OK);
		assert_int_equal(ipchub_msg_kind(m), IPCHUB_KIND_SEND);
		assert_true(body_is(m, i));
		if (i % 3 == 0)
			assert_int_equal(ipchub_msg_dup(m, &kept[i]), IPCHUB_OK);
		assert_true(now_ms() < until);
	}
	assert_int_equal(pthread_join(th, NULL), 0);
	assert_int_not_equal(t.id0, UINT64_MAX);
	for (uint64_t i = 0; i < N; i += 3) {
		check_send(kept[i], t.id0 + i, i);
		ipchub_msg_free(kept[i]);
	}
	/* The sends did travel as batches. */
	assert_true(hub_stat_u64(c, "batches_routed") > 0);
	free(kept);
	ipchub_close(b);
	ipchub_close(c);
	assert_int_equal(hub_stop(&hub), 0);
}

/* ipchub_recv and ipchub_recv_lent alternate on one handle over a batched
 * stream: order and contents hold, owned messages outlive later loans. */
static void test_mix(void **state)
{
	enum { N = 400 };
	struct hub hub;
	struct tx t = {.n = N};
	pthread_t th;
	ipchub *b;
	ipchub_msg *owned[N] = {0};
	uint64_t id0 = 0;

	(void)state;
	hub_start(&hub, NULL);
	t.hub = &hub;
	b = hub_client(&hub, "b");
	assert_int_equal(pthread_create(&th, NULL, tx_thread, &t), 0);
	for (uint64_t i = 0; i < N; i++) {
		if (i % 5 == 1 || i % 5 == 2) {
			assert_int_equal(ipchub_recv(b, WAIT_MS, &owned[i]),
					 IPCHUB_OK);
			check_send(owned[i], id0 + i, i);
		} else {
			const ipchub_msg *m = NULL;

			assert_int_equal(ipchub_recv_lent(b, WAIT_MS, &m),
					 IPCHUB_OK);
			if (i == 0)
				id0 = ipchub_msg_id(m);
			check_send(m, id0 + i, i);
		}
	}
	assert_int_equal(pthread_join(th, NULL), 0);
	for (uint64_t i = 0; i < N; i++) {
		if (owned[i]) {
			check_send(owned[i], id0 + i, i);
			ipchub_msg_free(owned[i]);
		}
	}
	ipchub_close(b);
	assert_int_equal(hub_stop(&hub), 0);
}

/* Messages that arrived during ipchub_request() wait in the handle's
 * queue and are lent from there; errors (one, and a batch's worth) come
 * through ipchub_recv_lent() with their ids; free is ignored and the
 * library frees each at the next call (a leak or double free shows under
 * valgrind/ASan). */
static void test_queue_and_errors(void **state)
{
	struct hub hub;
	ipchub *a, *b;
	ipchub_msg *r = NULL;
	const ipchub_msg *m;
	uint64_t ids[3], eid[5];

	(void)state;
	hub_start(&hub, NULL);
	a = hub_client(&hub, "a");
	b = hub_client(&hub, "b");
	for (uint64_t i = 0; i < 3; i++) {
		send_i(a, "b", i, &ids[i]);
		assert_int_equal(ipchub_flush(a, WAIT_MS), IPCHUB_OK);
	}
	/* The broker routed a's sends before it answers a's ping, and before
	 * it answers b's request, which queues them in b. */
	assert_int_equal(ipchub_ping(a, WAIT_MS, NULL), IPCHUB_OK);
	assert_int_equal(ipchub_request(b, "ipchub.stats", NULL, 0, WAIT_MS, &r),
			 IPCHUB_OK);
	ipchub_msg_free(r);
	assert_int_equal(ipchub_fd(b) >= 0, 1);
	for (uint64_t i = 0; i < 3; i++) {
		m = NULL;
		assert_int_equal(ipchub_recv_lent(b, 0, &m), IPCHUB_OK);
		check_send(m, ids[i], i);
		ipchub_msg_free((ipchub_msg *)m);
		ipchub_msg_free((ipchub_msg *)m);
		check_send(m, ids[i], i);
	}
	assert_int_equal(ipchub_recv_lent(b, 0, &m), IPCHUB_E_TIMEOUT);

	/* Undeliverable: one on its own, then five batched (one ERROR with
	 * count 5 on the wire). */
	send_i(a, "nobody", 0, &eid[0]);
	assert_int_equal(ipchub_flush(a, WAIT_MS), IPCHUB_OK);
	m = NULL;
	assert_int_equal(ipchub_recv_lent(a, WAIT_MS, &m), IPCHUB_OK);
	assert_int_equal(ipchub_msg_kind(m), 10);
	assert_int_equal(ipchub_msg_error(m), IPCHUB_E_NO_SUCH_PEER);
	assert_int_equal(ipchub_msg_id(m), eid[0]);
	assert_non_null(ipchub_msg_error_text(m));
	ipchub_msg_free((ipchub_msg *)m);
	for (int i = 0; i < 5; i++) /* sizes 1 to 1,000: all batched */
		send_i(a, "nobody", (uint64_t[]){0, 1, 2, 3, 6}[i], &eid[i]);
	assert_int_equal(ipchub_flush(a, WAIT_MS), IPCHUB_OK);
	for (int i = 0; i < 5; i++) {
		m = NULL;
		assert_int_equal(ipchub_recv_lent(a, WAIT_MS, &m), IPCHUB_OK);
		assert_int_equal(ipchub_msg_kind(m), 10);
		assert_int_equal(ipchub_msg_error(m), IPCHUB_E_NO_SUCH_PEER);
		assert_int_equal(ipchub_msg_id(m), eid[i]);
		assert_string_equal(ipchub_msg_to(m), "nobody");
	}
	assert_int_equal(ipchub_recv_lent(a, 0, &m), IPCHUB_E_TIMEOUT);
	assert_int_equal(ipchub_recv_lent(NULL, 0, &m), IPCHUB_E_INVALID);
	assert_int_equal(ipchub_recv_lent(a, 0, NULL), IPCHUB_E_INVALID);
	ipchub_close(a);
	ipchub_close(b);
	assert_int_equal(hub_stop(&hub), 0);
}

/* A responder that receives lent requests and answers each by echoing
 * the lent body (or with an error whose text is the lent request's
 * sender name), until a nil body. */
static void *echo_thread(void *arg)
{
	ipchub *s = arg;

	for (;;) {
		const ipchub_msg *m = NULL;
		const void *body;
		size_t len;
		int rc = ipchub_recv_lent(s, WAIT_MS, &m);

		if (rc != IPCHUB_OK)
			return (void *)(intptr_t)rc;
		body = ipchub_msg_body(m, &len);
		if (len == 1 && ((const uint8_t *)body)[0] == 0xc0) {
			rc = ipchub_reply(s, m, NULL, 0);
			ipchub_flush(s, WAIT_MS);
			return (void *)(intptr_t)rc;
		}
		if (len == 6) /* size 1: answered with an error */
			rc = ipchub_reply_error(s, m, IPCHUB_E_REMOTE_ERROR,
						ipchub_msg_from(m));
		else
			rc = ipchub_reply(s, m, body, len);
		if (rc != IPCHUB_OK)
			return (void *)(intptr_t)rc;
	}
}

static void test_reply_to_lent(void **state)
{
	struct hub hub;
	ipchub *a, *s;
	pthread_t th;
	void *res;

	(void)state;
	hub_start(&hub, NULL);
	a = hub_client(&hub, "a");
	s = hub_client(&hub, "srv");
	assert_int_equal(pthread_create(&th, NULL, echo_thread, s), 0);
	for (uint64_t i = 0; i < 4 * N_SIZES; i++) {
		ipchub_msg *r = NULL;
		size_t len;
		uint8_t *b = make_body(i, &len);
		int rc = ipchub_request(a, "srv", b, len, WAIT_MS, &r);

		free(b);
		assert_non_null(r);
		if (size_of(i) == 1) {
			assert_int_equal(rc, IPCHUB_E_REMOTE_ERROR);
			assert_string_equal(ipchub_msg_error_text(r), "a");
		} else {
			assert_int_equal(rc, IPCHUB_OK);
			assert_int_equal(ipchub_msg_kind(r), IPCHUB_KIND_REPLY);
			assert_true(body_is(r, i));
		}
		ipchub_msg_free(r);
	}
	{
		ipchub_msg *r = NULL;

		assert_int_equal(ipchub_request(a, "srv", "\xc0", 1, WAIT_MS, &r),
				 IPCHUB_OK);
		ipchub_msg_free(r);
	}
	assert_int_equal(pthread_join(th, &res), 0);
	assert_int_equal((intptr_t)res, IPCHUB_OK);
	ipchub_close(a);
	ipchub_close(s);
	assert_int_equal(hub_stop(&hub), 0);
}

/* The broker goes away while a message is lent: the lent message is
 * intact, the one behind it is still handed out, then the connection's
 * code, every time. */
static void test_conn_dies(void **state)
{
	struct hub hub;
	ipchub *a, *b;
	const ipchub_msg *m = NULL, *m2 = NULL;
	uint64_t ids[2];
	int rc;

	(void)state;
	hub_start(&hub, NULL);
	a = hub_client(&hub, "a");
	b = hub_client(&hub, "b");
	send_i(a, "b", 5, &ids[0]); /* 70,000 bytes */
	send_i(a, "b", 7, &ids[1]); /* 200,000 bytes */
	assert_int_equal(ipchub_flush(a, WAIT_MS), IPCHUB_OK);
	assert_int_equal(ipchub_recv_lent(b, WAIT_MS, &m), IPCHUB_OK);
	check_send(m, ids[0], 5);
	assert_int_equal(hub_stop(&hub), 0);
	check_send(m, ids[0], 5);
	assert_int_equal(ipchub_recv_lent(b, WAIT_MS, &m2), IPCHUB_OK);
	check_send(m2, ids[1], 7);
	rc = ipchub_recv_lent(b, WAIT_MS, &m);
	assert_true(rc == IPCHUB_E_SHUTTING_DOWN || rc == IPCHUB_E_CLOSED);
	assert_int_equal(ipchub_recv_lent(b, 0, &m), rc);
	assert_int_equal(ipchub_recv(b, 0, &(ipchub_msg *){NULL}), rc);
	ipchub_close(a);
	ipchub_close(b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_single),
		cmocka_unit_test(test_batches),
		cmocka_unit_test(test_mix),
		cmocka_unit_test(test_queue_and_errors),
		cmocka_unit_test(test_reply_to_lent),
		cmocka_unit_test(test_conn_dies),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
