/* test_pending.c - the pending-request table: keyed lookup, the two
 * per-connection lists and their counts, duplicate detection by the
 * caller, timer expiry (callback, then removal), recycling and cleanup. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "pending.h"

struct expired {
	int n;
	uint64_t ids[16];
	struct pending_table *pt;
};

static void on_expire(void *arg, struct pending *p)
{
	struct expired *e = arg;

	/* Still findable while the callback runs. */
	assert_ptr_equal(pending_find(e->pt, p->req_conn, p->id), p);
	e->ids[e->n++] = p->id;
}

static int setup(void **state)
{
	(void)state;
	return sodium_init() < 0 ? -1 : 0;
}

static void test_add_find_remove(void **state)
{
	struct event_base *base = event_base_new();
	struct pending_table pt;
	struct pending_list a_req, a_resp, b_req, b_resp;
	struct pending *p1, *p2, *p3;
	int A, B;

	(void)state;
	assert_non_null(base);
	assert_int_equal(pending_init(&pt, base, NULL, NULL), 0);
	pending_list_init(&a_req);
	pending_list_init(&a_resp);
	pending_list_init(&b_req);
	pending_list_init(&b_resp);
	/* A (conn 1) asks B twice; B (conn 2) asks A once, same id. */
	assert_int_equal(pending_add(&pt, 1, 7, &A, &a_req, &B, &b_resp, 0, &p1), 0);
	assert_int_equal(pending_add(&pt, 1, 8, &A, &a_req, &B, &b_resp, 0, &p2), 0);
	assert_int_equal(pending_add(&pt, 2, 7, &B, &b_req, &A, &a_resp, 0, &p3), 0);
	assert_int_equal(pending_count(&pt), 3);
	assert_int_equal(a_req.n, 2);
	assert_int_equal(b_resp.n, 2);
	assert_int_equal(b_req.n, 1);
	assert_int_equal(a_resp.n, 1);
	assert_ptr_equal(pending_find(&pt, 1, 7), p1);
	assert_ptr_equal(pending_find(&pt, 1, 8), p2);
	assert_ptr_equal(pending_find(&pt, 2, 7), p3);
	assert_null(pending_find(&pt, 2, 8));
	assert_ptr_equal(p1->responder, &B);
	assert_ptr_equal(p3->requester, &B);
	pending_remove(&pt, p1);
	assert_null(pending_find(&pt, 1, 7));
	assert_int_equal(a_req.n, 1);
	assert_int_equal(b_resp.n, 1);
	assert_ptr_equal(pending_list_first(&a_req), p2);
	/* Responder B leaves: walk its list. */
	while (pending_list_first(&b_resp))
		pending_remove(&pt, pending_list_first(&b_resp));
	assert_int_equal(a_req.n, 0);
	assert_int_equal(pending_count(&pt), 1);
	/* Recycled entries are reused. */
	assert_int_equal(pending_add(&pt, 3, 1, &A, &a_req, &B, &b_resp, 0, &p1), 0);
	assert_true(p1 == p2 || p1 != NULL);
	pending_fini(&pt);
	event_base_free(base);
}

static void test_timeout(void **state)
{
	struct event_base *base = event_base_new();
	struct pending_table pt;
	struct pending_list req, resp;
	struct expired e = {0};
	struct pending *p;
	int A, B;

	(void)state;
	e.pt = &pt;
	assert_int_equal(pending_init(&pt, base, on_expire, &e), 0);
	pending_list_init(&req);
	pending_list_init(&resp);
	assert_int_equal(pending_add(&pt, 1, 1, &A, &req, &B, &resp, 30, NULL), 0);
	assert_int_equal(pending_add(&pt, 1, 2, &A, &req, &B, &resp, 10, NULL), 0);
	assert_int_equal(pending_add(&pt, 1, 3, &A, &req, &B, &resp, 0, NULL), 0);
	assert_int_equal(pending_add(&pt, 1, 4, &A, &req, &B, &resp, 20, &p), 0);
	pending_remove(&pt, p); /* answered before its deadline */
	event_base_dispatch(base); /* runs until no timer is left */
	assert_int_equal(e.n, 2);
	assert_int_equal(e.ids[0], 2); /* earliest deadline first */
	assert_int_equal(e.ids[1], 1);
	assert_int_equal(pending_count(&pt), 1);
	assert_int_equal(req.n, 1);
	assert_non_null(pending_find(&pt, 1, 3));
	/* A recycled entry (with its timer) works again. */
	assert_int_equal(pending_add(&pt, 1, 5, &A, &req, &B, &resp, 5, NULL), 0);
	event_base_dispatch(base);
	assert_int_equal(e.n, 3);
	assert_int_equal(e.ids[2], 5);
	pending_fini(&pt);
	event_base_free(base);
}

static void test_many(void **state)
{
	struct event_base *base = event_base_new();
	struct pending_table pt;
	struct pending_list req, resp;
	int A, B;

	(void)state;
	assert_int_equal(pending_init(&pt, base, NULL, NULL), 0);
	pending_list_init(&req);
	pending_list_init(&resp);
	for (uint64_t i = 0; i < 10000; i++)
		assert_int_equal(pending_add(&pt, 9, i, &A, &req, &B, &resp,
					     i % 2 ? 100000 : 0, NULL), 0);
	assert_int_equal(req.n, 10000);
	for (uint64_t i = 0; i < 10000; i += 3)
		pending_remove(&pt, pending_find(&pt, 9, i));
	for (uint64_t i = 0; i < 10000; i++)
		assert_true((pending_find(&pt, 9, i) == NULL) == (i % 3 == 0));
	pending_fini(&pt); /* frees the rest, timers included */
	event_base_free(base);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_add_find_remove),
		cmocka_unit_test(test_timeout),
		cmocka_unit_test(test_many),
	};

	return cmocka_run_group_tests(tests, setup, NULL);
}
