/*
 * test_fed.c - the broker's side of federation (PROTOCOL.md 6.9) against
 * a real ipchubd: bridge connections (HELLO flags BRIDGE), remote names
 * `name@hub` (who may register them, routing, presence), `origin`
 * stamped as `from`, claims delivered unchanged and refused from anyone
 * but a bridge. ipchub-bridge itself is tested by test_bridge.sh; this
 * drives the bridge role by hand through client/fed.h. Every wait is
 * bounded only so a broken build fails instead of hanging.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "fed.h"
#include "frame.h"
#include "harness.h"

#define WAIT_MS 10000

static struct hub hub;

static int setup(void **state)
{
	(void)state;
	hub_start(&hub, NULL);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	return hub_stop(&hub) == 0 ? 0 : -1;
}

static ipchub *bridge_client(void)
{
	struct ipchub_opts o = {.socket = hub.path, .timeout_ms = 5000};
	ipchub *h = NULL;

	assert_int_equal(fed_connect(&o, &h), IPCHUB_OK);
	return h;
}

/* Next message on h, which must arrive within WAIT_MS. */
#define next(h) next_at(h, __LINE__)
static ipchub_msg *next_at(ipchub *h, int line)
{
	ipchub_msg *m = NULL;
	int rc = ipchub_recv(h, WAIT_MS, &m);

	if (rc != IPCHUB_OK)
		fail_msg("line %d: recv: %s", line, ipchub_code_name(rc));
	return m;
}

/* Queue a SEND/REQUEST/REPLY built by hand, with origin (NULL: none) and
 * a uid claim (UINT32_MAX: none). */
static int queue(ipchub *h, struct frame_hdr *f, const char *origin,
		 uint32_t claim_uid, uint64_t *id)
{
	if (origin)
		frame_set_str(f, WK_ORIGIN, origin, strlen(origin));
	if (claim_uid != UINT32_MAX) {
		f->claim_uid = claim_uid;
		f->has |= FH(WK_CLAIM_UID);
	}
	return fed_queue(h, f, NULL, 0, id);
}

static void send_hdr(struct frame_hdr *f, const char *to)
{
	frame_init(f, WIRE_SEND);
	frame_set_str(f, WK_TO, to, strlen(to));
}

struct req_call {
	ipchub *h;
	const char *to;
	int rc;
	ipchub_msg *reply;
};

static void *req_thread(void *arg)
{
	struct req_call *c = arg;

	c->rc = ipchub_request(c->h, c->to, NULL, 0, WAIT_MS, &c->reply);
	return NULL;
}

static void test_remote_names_need_a_bridge(void **state)
{
	ipchub *a = hub_client(&hub, "a");
	ipchub *b = bridge_client();
	ipchub_msg *m;

	(void)state;
	assert_int_equal(ipchub_register(a, "svc@hub-b", WAIT_MS),
			 IPCHUB_E_NOT_AUTHORIZED);
	assert_int_equal(ipchub_register(a, "svc@hub.b", WAIT_MS), IPCHUB_E_BAD_NAME);
	assert_int_equal(ipchub_register(b, "svc@hub-b", WAIT_MS), IPCHUB_OK);
	/* A bridge may hold more remote names than max_names (64). */
	for (int i = 0; i < 100; i++) {
		char n[32];

		snprintf(n, sizeof(n), "n%d@hub-c", i);
		assert_int_equal(ipchub_register(b, n, WAIT_MS), IPCHUB_OK);
	}
	/* Nobody owns it: NO_SUCH_PEER like any name. */
	assert_int_equal(ipchub_send(a, "other@hub-b", NULL, 0, NULL), IPCHUB_OK);
	m = next(a);
	assert_int_equal(ipchub_msg_error(m), IPCHUB_E_NO_SUCH_PEER);
	ipchub_msg_free(m);
	ipchub_close(b);
	ipchub_close(a);
}

static void test_origin_and_claims(void **state)
{
	ipchub *a = hub_client(&hub, "a2");
	ipchub *b = bridge_client();
	ipchub *w = hub_client(&hub, NULL);
	struct frame_hdr f;
	const uint8_t *key = NULL;
	ipchub_msg *m, *req;
	uint64_t watch = 0;
	uint32_t uid = 0;
	size_t klen = 1;

	(void)state;
	assert_int_equal(ipchub_watch(w, "svc2@hub-b", WAIT_MS, &watch), IPCHUB_OK);
	m = next(w);
	assert_int_equal(ipchub_msg_presence_event(m), IPCHUB_PRESENCE_UNOWNED);
	ipchub_msg_free(m);
	assert_int_equal(ipchub_register(b, "svc2@hub-b", WAIT_MS), IPCHUB_OK);
	m = next(w);
	assert_int_equal(ipchub_msg_presence_event(m), IPCHUB_PRESENCE_REGISTERED);
	ipchub_msg_free(m);

	/* Local -> remote name: the bridge receives it, from "a2". */
	assert_int_equal(ipchub_send(a, "svc2@hub-b", NULL, 0, NULL), IPCHUB_OK);
	assert_int_equal(ipchub_flush(a, WAIT_MS), IPCHUB_OK);
	m = next(b);
	assert_int_equal(ipchub_msg_kind(m), IPCHUB_KIND_SEND);
	assert_string_equal(ipchub_msg_from(m), "a2");
	assert_string_equal(ipchub_msg_to(m), "svc2@hub-b");
	ipchub_msg_free(m);

	/* Remote -> local: origin becomes from, the claim travels. */
	send_hdr(&f, "a2");
	assert_int_equal(queue(b, &f, "peer@hub-b", 4242, NULL), IPCHUB_OK);
	assert_int_equal(ipchub_flush(b, WAIT_MS), IPCHUB_OK);
	m = next(a);
	assert_string_equal(ipchub_msg_from(m), "peer@hub-b");
	assert_int_equal(ipchub_msg_from_id(m), ipchub_conn_id(b));
	assert_int_equal(ipchub_msg_claims(m, &uid, &key, &klen), 1);
	assert_int_equal(uid, 4242);
	assert_null(key);
	assert_int_equal(klen, 0);
	ipchub_msg_free(m);
	/* Without origin: unnamed, not one of the bridge's remote names. */
	send_hdr(&f, "a2");
	assert_int_equal(queue(b, &f, NULL, UINT32_MAX, NULL), IPCHUB_OK);
	assert_int_equal(ipchub_flush(b, WAIT_MS), IPCHUB_OK);
	m = next(a);
	assert_null(ipchub_msg_from(m));
	ipchub_msg_free(m);

	/* Request to the remote name, answered by the bridge as it. */
	struct req_call rc = {.h = a, .to = "svc2@hub-b"};
	pthread_t t;

	assert_int_equal(pthread_create(&t, NULL, req_thread, &rc), 0);
	req = next(b);
	assert_int_equal(ipchub_msg_kind(req), IPCHUB_KIND_REQUEST);
	frame_init(&f, WIRE_REPLY);
	f.id = ipchub_msg_id(req);
	f.to_id = ipchub_msg_from_id(req);
	f.has |= FH(WK_ID) | FH(WK_TO_ID);
	assert_int_equal(queue(b, &f, "svc2@hub-b", UINT32_MAX, NULL), IPCHUB_OK);
	assert_int_equal(ipchub_flush(b, WAIT_MS), IPCHUB_OK);
	ipchub_msg_free(req);
	assert_int_equal(pthread_join(t, NULL), 0);
	assert_int_equal(rc.rc, IPCHUB_OK);
	m = rc.reply;
	assert_int_equal(ipchub_msg_kind(m), IPCHUB_KIND_REPLY);
	assert_string_equal(ipchub_msg_from(m), "svc2@hub-b");
	assert_int_equal(ipchub_msg_claims(m, NULL, NULL, NULL), 0);
	ipchub_msg_free(m);

	/* The bridge leaves: presence says so. */
	ipchub_close(b);
	m = next(w);
	assert_int_equal(ipchub_msg_presence_event(m), IPCHUB_PRESENCE_RELEASED);
	assert_int_equal(ipchub_msg_presence_reason(m), IPCHUB_REASON_DISCONNECT);
	ipchub_msg_free(m);
	ipchub_close(w);
	ipchub_close(a);
}

static void test_federation_keys_refused(void **state)
{
	ipchub *a = hub_client(&hub, "a3");
	ipchub *b = bridge_client();
	struct frame_hdr f;
	uint64_t id = 0;
	ipchub_msg *m;

	(void)state;
	/* Not a bridge: origin and claims are refused, nothing delivered. */
	send_hdr(&f, "a3");
	assert_int_equal(queue(a, &f, "x@hub-b", UINT32_MAX, &id), IPCHUB_OK);
	m = next(a);
	assert_int_equal(ipchub_msg_error(m), IPCHUB_E_NOT_AUTHORIZED);
	assert_int_equal(ipchub_msg_id(m), id);
	ipchub_msg_free(m);
	send_hdr(&f, "a3");
	assert_int_equal(queue(a, &f, NULL, 7, &id), IPCHUB_OK);
	m = next(a);
	assert_int_equal(ipchub_msg_error(m), IPCHUB_E_NOT_AUTHORIZED);
	ipchub_msg_free(m);
	/* A bridge cannot speak as a local name. */
	send_hdr(&f, "a3");
	assert_int_equal(queue(b, &f, "a3", UINT32_MAX, &id), IPCHUB_OK);
	m = next(b);
	assert_int_equal(ipchub_msg_error(m), IPCHUB_E_BAD_NAME);
	assert_int_equal(ipchub_msg_id(m), id);
	ipchub_msg_free(m);
	/* a got none of them: the next thing it sees is a fresh ping. */
	assert_int_equal(ipchub_ping(a, WAIT_MS, NULL), IPCHUB_OK);
	assert_int_equal(ipchub_recv(a, 0, &m), IPCHUB_E_TIMEOUT);
	ipchub_close(b);
	ipchub_close(a);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_remote_names_need_a_bridge),
		cmocka_unit_test(test_origin_and_claims),
		cmocka_unit_test(test_federation_keys_refused),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
