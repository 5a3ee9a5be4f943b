/*
 * test_integ.c - the broker and libipchub together, over a real socket.
 *
 * Every test starts its own ipchubd (harness.c) and drives it through the
 * public API. Where a test needs two parties acting at once, the second
 * runs in a thread with its own handle (handles are independent) and
 * records what it saw; only the main thread asserts, after joining.
 * Nothing here measures speed: bounds on time exist only so that a broken
 * broker fails a test instead of hanging it.
 */
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "frame.h"
#include "harness.h"

static uint64_t body_get_seq(const ipchub_msg *m)
{
	msgpack_unpacked u;
	msgpack_unpacked_init(&u);
	assert_int_equal(ipchub_msg_unpack(m, &u), IPCHUB_OK);
	assert_int_equal(u.data.type, MSGPACK_OBJECT_ARRAY);
	assert_true(u.data.via.array.size >= 1);
	uint64_t seq = u.data.via.array.ptr[0].via.u64;
	msgpack_unpacked_destroy(&u);
	return seq;
}

static ipchub_msg *recv_ok(ipchub *h, int timeout_ms)
{
	ipchub_msg *m = NULL;
	int rc = ipchub_recv(h, timeout_ms, &m);
	if (rc != IPCHUB_OK)
		fail_msg("recv: %s", ipchub_code_name(rc));
	return m;
}

/* ---- send / receive --------------------------------------------------- */

static void test_send_receive(void **state)
{
	struct hub hub;
	hub_start(&hub, NULL);
	ipchub *a = hub_client(&hub, "alpha");
	ipchub *b = hub_client(&hub, "beta");
	ipchub_pack p;
	ipchub_pack_init(&p);
	body_kv(&p, "hello", "world");

	uint64_t id = 0;
	assert_int_equal(ipchub_send(a, "beta", p.buf.data, p.buf.size, &id), IPCHUB_OK);
	assert_true(id != 0);
	assert_int_equal(ipchub_flush(a, 2000), IPCHUB_OK);

	ipchub_msg *m = recv_ok(b, 5000);
	assert_int_equal(ipchub_msg_kind(m), IPCHUB_KIND_SEND);
	assert_string_equal(ipchub_msg_from(m), "alpha");
	assert_int_equal(ipchub_msg_from_id(m), ipchub_conn_id(a));
	assert_string_equal(ipchub_msg_to(m), "beta");
	assert_int_equal(ipchub_msg_id(m), id);
	size_t len;
	const void *body = ipchub_msg_body(m, &len);
	assert_int_equal(len, p.buf.size);
	assert_memory_equal(body, p.buf.data, len);
	ipchub_msg_free(m);

	/* A sender without a name is identified by its connection id. */
	ipchub *anon = hub_client(&hub, NULL);
	assert_int_equal(ipchub_send(anon, "beta", NULL, 0, NULL), IPCHUB_OK);
	assert_int_equal(ipchub_flush(anon, 2000), IPCHUB_OK);
	m = recv_ok(b, 5000);
	assert_null(ipchub_msg_from(m));
	assert_int_equal(ipchub_msg_from_id(m), ipchub_conn_id(anon));
	assert_null(ipchub_msg_body(m, &len));
	ipchub_msg_free(m);

	ipchub_pack_destroy(&p);
	ipchub_close(anon);
	ipchub_close(a);
	ipchub_close(b);
	hub_stop(&hub);
}

/* ---- request / reply ---------------------------------------------------- */

struct responder {
	const char *path;
	const char *name;
	int mode; /* 0 echo one, 1 never reply then exit abruptly, 2 reply late */
	int handled;
	int late_reply_rc;
	int late_reply_error;
	volatile int ready;
};

static void *responder_main(void *arg)
{
	struct responder *r = arg;
	struct ipchub_opts o = {.socket = r->path};
	ipchub *h = NULL;
	if (ipchub_connect(&o, &h) != IPCHUB_OK || ipchub_register(h, r->name, 5000) != IPCHUB_OK)
		return NULL;
	r->ready = 1;
	ipchub_msg *m = NULL;
	if (ipchub_recv(h, 10000, &m) != IPCHUB_OK)
		goto out;
	if (ipchub_msg_kind(m) != IPCHUB_KIND_REQUEST)
		goto out;
	r->handled = 1;
	if (r->mode == 0) {
		size_t len;
		const void *b = ipchub_msg_body(m, &len);
		ipchub_reply(h, m, b, len);
	} else if (r->mode == 2) {
		usleep(400 * 1000);
		r->late_reply_rc = ipchub_reply(h, m, NULL, 0);
		ipchub_msg *e = NULL;
		if (ipchub_recv(h, 5000, &e) == IPCHUB_OK) {
			r->late_reply_error = ipchub_msg_error(e);
			ipchub_msg_free(e);
		}
	}
out:
	ipchub_msg_free(m);
	ipchub_close(h);
	return NULL;
}

static void wait_ready(struct responder *r)
{
	int64_t deadline = now_ms() + 5000;
	while (!r->ready && now_ms() < deadline)
		usleep(1000);
	assert_true(r->ready);
}

static void test_request_reply(void **state)
{
	struct hub hub;
	hub_start(&hub, NULL);
	struct responder r = {.path = hub.path, .name = "echo", .mode = 0};
	pthread_t t;
	pthread_create(&t, NULL, responder_main, &r);
	wait_ready(&r);

	ipchub *c = hub_client(&hub, "client");
	ipchub_pack p;
	ipchub_pack_init(&p);
	body_kv(&p, "q", "ping?");
	ipchub_msg *reply = NULL;
	assert_int_equal(ipchub_request(c, "echo", p.buf.data, p.buf.size, 5000, &reply), IPCHUB_OK);
	assert_non_null(reply);
	assert_int_equal(ipchub_msg_kind(reply), IPCHUB_KIND_REPLY);
	assert_string_equal(ipchub_msg_from(reply), "echo");
	size_t len;
	const void *b = ipchub_msg_body(reply, &len);
	assert_int_equal(len, p.buf.size);
	assert_memory_equal(b, p.buf.data, len);
	ipchub_msg_free(reply);
	pthread_join(t, NULL);
	assert_int_equal(r.handled, 1);

	/* The broker's own service answers under its reserved name. */
	reply = NULL;
	assert_int_equal(ipchub_request(c, "ipchub.ping", p.buf.data, p.buf.size, 5000, &reply), IPCHUB_OK);
	b = ipchub_msg_body(reply, &len);
	assert_int_equal(len, p.buf.size);
	assert_memory_equal(b, p.buf.data, len);
	ipchub_msg_free(reply);

	uint64_t rtt = 0;
	assert_int_equal(ipchub_ping(c, 5000, &rtt), IPCHUB_OK);

	ipchub_pack_destroy(&p);
	ipchub_close(c);
	hub_stop(&hub);
}

static void test_peers_service(void **state)
{
	struct hub hub;
	hub_start(&hub, NULL);
	ipchub *a = hub_client(&hub, "zeta");
	assert_int_equal(ipchub_register(a, "alpha.two", 5000), IPCHUB_OK);
	ipchub *c = hub_client(&hub, NULL);
	ipchub_msg *reply = NULL;
	assert_int_equal(ipchub_request(c, "ipchub.peers", NULL, 0, 5000, &reply), IPCHUB_OK);
	msgpack_unpacked u;
	msgpack_unpacked_init(&u);
	assert_int_equal(ipchub_msg_unpack(reply, &u), IPCHUB_OK);
	assert_int_equal(u.data.type, MSGPACK_OBJECT_ARRAY);
	assert_int_equal(u.data.via.array.size, 2);
	/* Sorted by name, and carrying the owner's connection id. */
	const char *want[2] = {"alpha.two", "zeta"};
	for (uint32_t i = 0; i < 2; i++) {
		msgpack_object_map *mp = &u.data.via.array.ptr[i].via.map;
		int seen_name = 0, seen_conn = 0;
		for (uint32_t k = 0; k < mp->size; k++) {
			msgpack_object_str *key = &mp->ptr[k].key.via.str;
			msgpack_object *v = &mp->ptr[k].val;
			if (key->size == 4 && !memcmp(key->ptr, "name", 4)) {
				assert_int_equal(v->via.str.size, strlen(want[i]));
				assert_memory_equal(v->via.str.ptr, want[i], strlen(want[i]));
				seen_name = 1;
			} else if (key->size == 4 && !memcmp(key->ptr, "conn", 4)) {
				assert_int_equal(v->via.u64, ipchub_conn_id(a));
				seen_conn = 1;
			}
		}
		assert_true(seen_name && seen_conn);
	}
	msgpack_unpacked_destroy(&u);
	ipchub_msg_free(reply);
	ipchub_close(a);
	ipchub_close(c);
	hub_stop(&hub);
}

/* ---- errors ------------------------------------------------------------- */

static void test_no_such_peer(void **state)
{
	struct hub hub;
	hub_start(&hub, NULL);
	ipchub *a = hub_client(&hub, "a");
	uint64_t id = 0;
	assert_int_equal(ipchub_send(a, "nobody", NULL, 0, &id), IPCHUB_OK);
	ipchub_msg *m = recv_ok(a, 5000);
	assert_int_equal(ipchub_msg_error(m), IPCHUB_E_NO_SUCH_PEER);
	assert_int_equal(ipchub_msg_id(m), id);
	assert_non_null(ipchub_msg_error_text(m));
	ipchub_msg_free(m);

	ipchub_msg *reply = NULL;
	assert_int_equal(ipchub_request(a, "nobody", NULL, 0, 2000, &reply), IPCHUB_E_NO_SUCH_PEER);
	ipchub_msg_free(reply);
	/* A reserved name that is not a service. */
	reply = NULL;
	assert_int_equal(ipchub_request(a, "ipchub.nothing", NULL, 0, 2000, &reply), IPCHUB_E_NO_SUCH_PEER);
	ipchub_msg_free(reply);
	/* The client validates names and bodies before they leave. */
	assert_int_equal(ipchub_send(a, "bad name!", NULL, 0, NULL), IPCHUB_E_BAD_NAME);
	static const uint8_t bad_body[] = {0xc1};
	assert_int_equal(ipchub_send(a, "a", bad_body, 1, NULL), IPCHUB_E_BAD_BODY);
	ipchub_close(a);
	hub_stop(&hub);
}

static void test_names(void **state)
{
	struct hub hub;
	hub_start(&hub, NULL);
	ipchub *a = hub_client(&hub, "svc.one");
	ipchub *b = hub_client(&hub, NULL);
	assert_int_equal(ipchub_register(b, "svc.one", 5000), IPCHUB_E_NAME_TAKEN);
	assert_int_equal(ipchub_register(b, "ipchub.x", 5000), IPCHUB_E_BAD_NAME);
	assert_int_equal(ipchub_register(b, "ipchub", 5000), IPCHUB_E_BAD_NAME);
	assert_int_equal(ipchub_register(b, "..", 5000), IPCHUB_E_BAD_NAME);
	assert_int_equal(ipchub_unregister(b, "svc.one", 5000), IPCHUB_E_NOT_OWNER);
	/* Idempotent for the owner. */
	assert_int_equal(ipchub_register(a, "svc.one", 5000), IPCHUB_OK);

	/* Unregister frees the name at once. */
	assert_int_equal(ipchub_unregister(a, "svc.one", 5000), IPCHUB_OK);
	assert_int_equal(ipchub_register(b, "svc.one", 5000), IPCHUB_OK);

	/* Disconnect frees every name the connection held. */
	assert_int_equal(ipchub_register(a, "svc.two", 5000), IPCHUB_OK);
	assert_int_equal(ipchub_register(a, "svc.three", 5000), IPCHUB_OK);
	ipchub_close(a);
	int64_t deadline = now_ms() + 5000;
	int rc;
	while ((rc = ipchub_register(b, "svc.two", 5000)) == IPCHUB_E_NAME_TAKEN && now_ms() < deadline)
		usleep(2000);
	assert_int_equal(rc, IPCHUB_OK);
	assert_int_equal(ipchub_register(b, "svc.three", 5000), IPCHUB_OK);

	/* A process killed outright loses its names too. */
	pid_t pid = fork();
	if (pid == 0) {
		struct ipchub_opts o = {.socket = hub.path};
		ipchub *k = NULL;
		if (ipchub_connect(&o, &k))
			_exit(1);
		/* The parent may hold the name for a moment (it probes by
		 * registering and giving it back): retry while taken. */
		int64_t until = now_ms() + 5000;
		int r;
		while ((r = ipchub_register(k, "svc.killed", 5000)) == IPCHUB_E_NAME_TAKEN &&
		       now_ms() < until)
			usleep(1000);
		if (r != IPCHUB_OK)
			_exit(1);
		pause();
		_exit(0);
	}
	deadline = now_ms() + 5000;
	while ((rc = ipchub_register(b, "svc.killed", 5000)) == IPCHUB_OK && now_ms() < deadline) {
		/* We won the race with the child: give it back and retry. */
		ipchub_unregister(b, "svc.killed", 5000);
		usleep(2000);
	}
	assert_int_equal(rc, IPCHUB_E_NAME_TAKEN);
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	deadline = now_ms() + 5000;
	while ((rc = ipchub_register(b, "svc.killed", 5000)) == IPCHUB_E_NAME_TAKEN && now_ms() < deadline)
		usleep(2000);
	assert_int_equal(rc, IPCHUB_OK);

	ipchub_close(b);
	hub_stop(&hub);
}

static void test_name_limit(void **state)
{
	struct hub hub;
	const char *args[] = {"--max-names", "3", NULL};
	hub_start(&hub, args);
	ipchub *a = hub_client(&hub, NULL);
	assert_int_equal(ipchub_register(a, "n1", 5000), IPCHUB_OK);
	assert_int_equal(ipchub_register(a, "n2", 5000), IPCHUB_OK);
	assert_int_equal(ipchub_register(a, "n3", 5000), IPCHUB_OK);
	assert_int_equal(ipchub_register(a, "n4", 5000), IPCHUB_E_LIMIT);
	ipchub_close(a);
	hub_stop(&hub);
}

static void test_peer_gone(void **state)
{
	struct hub hub;
	hub_start(&hub, NULL);
	/* The responder is a separate process that receives the request and
	 * dies without answering. */
	int pfd[2];
	assert_int_equal(pipe(pfd), 0);
	pid_t pid = fork();
	if (pid == 0) {
		close(pfd[0]);
		struct ipchub_opts o = {.socket = hub.path};
		ipchub *s = NULL;
		if (ipchub_connect(&o, &s) || ipchub_register(s, "doomed", 5000))
			_exit(1);
		write(pfd[1], "r", 1);
		ipchub_msg *m = NULL;
		if (ipchub_recv(s, 10000, &m) == IPCHUB_OK)
			raise(SIGKILL);
		_exit(2);
	}
	close(pfd[1]);
	char c;
	assert_int_equal(read(pfd[0], &c, 1), 1);
	close(pfd[0]);

	ipchub *a = hub_client(&hub, "asker");
	ipchub_msg *reply = NULL;
	int64_t t0 = now_ms();
	int rc = ipchub_request(a, "doomed", NULL, 0, 30000, &reply);
	assert_int_equal(rc, IPCHUB_E_PEER_GONE);
	/* "At once": far sooner than the request's own 30 s deadline. */
	assert_true(now_ms() - t0 < 20000);
	ipchub_msg_free(reply);
	waitpid(pid, NULL, 0);
	ipchub_close(a);
	hub_stop(&hub);
}

/* ipchub_set_spin(): bounded, and a spinning client still gets its
 * replies and messages and still times out (spin_poll() stops at the
 * call's deadline; how fast is for the benchmarks to say). */
static void test_spin(void **state)
{
	struct hub hub;
	hub_start(&hub, NULL);
	struct responder r = {.path = hub.path, .name = "echo", .mode = 0};
	pthread_t t;
	pthread_create(&t, NULL, responder_main, &r);
	wait_ready(&r);
	ipchub *c = hub_client(&hub, "spinner");
	ipchub_msg *m = NULL;

	assert_int_equal(ipchub_set_spin(NULL, 10), IPCHUB_E_INVALID);
	assert_int_equal(ipchub_set_spin(c, IPCHUB_CLIENT_SPIN_MAX_US + 1),
			 IPCHUB_E_INVALID);
	assert_int_equal(ipchub_set_spin(c, IPCHUB_CLIENT_SPIN_MAX_US),
			 IPCHUB_OK);
	assert_int_equal(ipchub_request(c, "echo", "\xa1x", 2, 5000, &m),
			 IPCHUB_OK);
	assert_int_equal(ipchub_msg_kind(m), IPCHUB_KIND_REPLY);
	ipchub_msg_free(m);
	pthread_join(t, NULL);
	m = NULL;
	assert_int_equal(ipchub_recv(c, 0, &m), IPCHUB_E_TIMEOUT);
	assert_int_equal(ipchub_recv(c, 20, &m), IPCHUB_E_TIMEOUT);
	/* A message sent to ourselves arrives while spinning. */
	assert_int_equal(ipchub_send(c, "spinner", "\xc0", 1, NULL), IPCHUB_OK);
	assert_int_equal(ipchub_recv(c, 5000, &m), IPCHUB_OK);
	assert_int_equal(ipchub_msg_kind(m), IPCHUB_KIND_SEND);
	ipchub_msg_free(m);
	assert_int_equal(ipchub_set_spin(c, 0), IPCHUB_OK);
	ipchub_close(c);
	hub_stop(&hub);
}

static void test_timeout_and_late_reply(void **state)
{
	struct hub hub;
	hub_start(&hub, NULL);
	struct responder r = {.path = hub.path, .name = "slow", .mode = 2};
	pthread_t t;
	pthread_create(&t, NULL, responder_main, &r);
	wait_ready(&r);
	ipchub *a = hub_client(&hub, "impatient");
	ipchub_msg *reply = NULL;
	assert_int_equal(ipchub_request(a, "slow", NULL, 0, 100, &reply), IPCHUB_E_TIMEOUT);
	ipchub_msg_free(reply);
	pthread_join(t, NULL);
	assert_int_equal(r.handled, 1);
	assert_int_equal(r.late_reply_rc, IPCHUB_OK);
	/* The late reply was dropped by the broker and its sender told. */
	assert_int_equal(r.late_reply_error, IPCHUB_E_NO_SUCH_REQUEST);
	/* And nothing reached the requester. */
	ipchub_msg *m = NULL;
	assert_int_equal(ipchub_recv(a, 300, &m), IPCHUB_E_TIMEOUT);
	ipchub_close(a);
	hub_stop(&hub);
}

/* ---- volume and order ------------------------------------------------- */

struct consumer {
	const char *path;
	const char *name;
	uint64_t expect;
	uint64_t received;
	uint64_t out_of_order;
	int delay_us_every_1000; /* slow consumer: sleep this long per 1000 msgs */
	int initial_sleep_ms;
	int rc;
	volatile int ready;
};

static void *consumer_main(void *arg)
{
	struct consumer *c = arg;
	struct ipchub_opts o = {.socket = c->path};
	ipchub *h = NULL;
	c->rc = ipchub_connect(&o, &h);
	if (c->rc == IPCHUB_OK)
		c->rc = ipchub_register(h, c->name, 5000);
	c->ready = 1;
	if (c->rc != IPCHUB_OK)
		return NULL;
	if (c->initial_sleep_ms)
		usleep((useconds_t)c->initial_sleep_ms * 1000);
	while (c->received < c->expect) {
		ipchub_msg *m = NULL;
		c->rc = ipchub_recv(h, 20000, &m);
		if (c->rc != IPCHUB_OK)
			break;
		msgpack_unpacked u;
		msgpack_unpacked_init(&u);
		if (ipchub_msg_unpack(m, &u) == IPCHUB_OK && u.data.type == MSGPACK_OBJECT_ARRAY) {
			if (u.data.via.array.ptr[0].via.u64 != c->received)
				c->out_of_order++;
		} else {
			c->out_of_order++;
		}
		msgpack_unpacked_destroy(&u);
		ipchub_msg_free(m);
		c->received++;
		if (c->delay_us_every_1000 && c->received % 1000 == 0)
			usleep((useconds_t)c->delay_us_every_1000);
	}
	ipchub_close(h);
	return NULL;
}

static void test_100k_in_order(void **state)
{
	struct hub hub;
	hub_start(&hub, NULL);
	struct consumer c = {.path = hub.path, .name = "sink", .expect = 100000};
	pthread_t t;
	pthread_create(&t, NULL, consumer_main, &c);
	while (!c.ready)
		usleep(1000);
	assert_int_equal(c.rc, IPCHUB_OK);
	ipchub *p = hub_client(&hub, "source");
	ipchub_pack pk;
	ipchub_pack_init(&pk);
	for (uint64_t i = 0; i < c.expect; i++) {
		body_seq(&pk, i, 16);
		assert_int_equal(ipchub_send(p, "sink", pk.buf.data, pk.buf.size, NULL), IPCHUB_OK);
	}
	assert_int_equal(ipchub_flush(p, 30000), IPCHUB_OK);
	pthread_join(t, NULL);
	assert_int_equal(c.rc, IPCHUB_OK);
	assert_int_equal(c.received, c.expect);
	assert_int_equal(c.out_of_order, 0);
	/* No asynchronous error was reported to the producer. */
	ipchub_msg *m = NULL;
	assert_int_equal(ipchub_recv(p, 100, &m), IPCHUB_E_TIMEOUT);
	ipchub_pack_destroy(&pk);
	ipchub_close(p);
	hub_stop(&hub);
}

/* Mixed small and large bodies, runs of large ones among them (partial
 * writes, queue growth and compaction on both ends, chains moved rather
 * than copied in the broker): every byte arrives, in order. */
#define MIXED_N 240
static const size_t mixed_sizes[] = {10, 70000, 300000, 1048576, 65536, 20,
				     200000, 65535, 5, 100};

static size_t mixed_len(int i)
{
	return mixed_sizes[i % (int)(sizeof(mixed_sizes) / sizeof(mixed_sizes[0]))];
}

/* bin32 of n bytes, each (i * 7 + k) & 0xff. */
static void mixed_body(uint8_t *b, int i, size_t n)
{
	b[0] = 0xc6;
	b[1] = (uint8_t)(n >> 24);
	b[2] = (uint8_t)(n >> 16);
	b[3] = (uint8_t)(n >> 8);
	b[4] = (uint8_t)n;
	for (size_t k = 0; k < n; k++)
		b[5 + k] = (uint8_t)(i * 7 + k);
}

struct mixed_sink {
	const char *path;
	volatile int ready;
	int rc, bad;
};

static void *mixed_sink_main(void *arg)
{
	struct mixed_sink *s = arg;
	struct ipchub_opts o = {.socket = s->path};
	uint8_t *want = malloc(5 + (1u << 20));
	ipchub *h = NULL;

	s->rc = ipchub_connect(&o, &h);
	if (s->rc == IPCHUB_OK)
		s->rc = ipchub_register(h, "mixed.sink", 5000);
	s->ready = 1;
	for (int i = 0; s->rc == IPCHUB_OK && i < MIXED_N; i++) {
		ipchub_msg *m = NULL;
		const void *body;
		size_t len;

		s->rc = ipchub_recv(h, 20000, &m);
		if (s->rc != IPCHUB_OK)
			break;
		body = ipchub_msg_body(m, &len);
		mixed_body(want, i, mixed_len(i));
		if (len != 5 + mixed_len(i) || memcmp(body, want, len) != 0)
			s->bad++;
		ipchub_msg_free(m);
	}
	free(want);
	ipchub_close(h);
	return NULL;
}

static void test_mixed_sizes_in_order(void **state)
{
	struct hub hub;
	struct mixed_sink s = {0};
	pthread_t t;
	uint8_t *b = malloc(5 + (1u << 20));

	(void)state;
	assert_non_null(b);
	hub_start(&hub, NULL);
	s.path = hub.path;
	pthread_create(&t, NULL, mixed_sink_main, &s);
	while (!s.ready)
		usleep(1000);
	assert_int_equal(s.rc, IPCHUB_OK);
	ipchub *p = hub_client(&hub, "mixed.source");
	for (int i = 0; i < MIXED_N; i++) {
		mixed_body(b, i, mixed_len(i));
		assert_int_equal(ipchub_send(p, "mixed.sink", b, 5 + mixed_len(i), NULL),
				 IPCHUB_OK);
	}
	assert_int_equal(ipchub_flush(p, 30000), IPCHUB_OK);
	pthread_join(t, NULL);
	assert_int_equal(s.rc, IPCHUB_OK);
	assert_int_equal(s.bad, 0);
	free(b);
	ipchub_close(p);
	hub_stop(&hub);
}

/* A producer much faster than its consumer: everything arrives, in order,
 * and the broker's memory stays near its queue high-water mark instead of
 * growing with what the producer pushes (64 MiB here, against a 1 MiB
 * mark). */
static void test_backpressure_bounded(void **state)
{
	struct hub hub;
	const char *args[] = {"--queue-hwm", "1048576", NULL};
	hub_start(&hub, args);
	long rss0 = hub_rss_kib(&hub);
	const size_t pad = 16 * 1024;
	struct consumer c = {.path = hub.path, .name = "slowpoke", .expect = 4096,
			     .initial_sleep_ms = 300, .delay_us_every_1000 = 100000};
	pthread_t t;
	pthread_create(&t, NULL, consumer_main, &c);
	while (!c.ready)
		usleep(1000);
	assert_int_equal(c.rc, IPCHUB_OK);

	ipchub *p = hub_client(&hub, "firehose");
	ipchub_pack pk;
	ipchub_pack_init(&pk);
	long rss_max = rss0;
	for (uint64_t i = 0; i < c.expect; i++) {
		body_seq(&pk, i, pad);
		assert_int_equal(ipchub_send(p, "slowpoke", pk.buf.data, pk.buf.size, NULL), IPCHUB_OK);
		if (i % 256 == 0) {
			long rss = hub_rss_kib(&hub);
			if (rss > rss_max)
				rss_max = rss;
		}
	}
	assert_int_equal(ipchub_flush(p, 60000), IPCHUB_OK);
	pthread_join(t, NULL);
	assert_int_equal(c.rc, IPCHUB_OK);
	assert_int_equal(c.received, c.expect);
	assert_int_equal(c.out_of_order, 0);
	/* 64 MiB went through; the broker held a small, bounded part of it:
	 * the mark, socket-read chunks, and allocator slack. */
	print_message("broker RSS: start %ld KiB, max %ld KiB\n", rss0, rss_max);
	assert_true(rss_max - rss0 < 16 * 1024 + hub_rss_slack_kib());
	ipchub_msg *m = NULL;
	assert_int_equal(ipchub_recv(p, 100, &m), IPCHUB_E_TIMEOUT);
	ipchub_pack_destroy(&pk);
	ipchub_close(p);
	hub_stop(&hub);
}

/* A stalled consumer slows only the connection that sends to it: while
 * its queue is over the mark and its producer is parked, two other peers
 * still talk, and afterwards the stalled consumer gets everything, in
 * order. */
static void test_slow_consumer_isolated(void **state)
{
	struct hub hub;
	const char *args[] = {"--queue-hwm", "65536", NULL};
	hub_start(&hub, args);
	ipchub *stalled = hub_client(&hub, "stalled");
	ipchub *prod = hub_client(&hub, "prod");
	ipchub_pack pk;
	ipchub_pack_init(&pk);
	/* 512 KiB at a 64 KiB mark: more than the broker queue and the socket
	 * buffers hold, so the broker parks the producer. Sends still
	 * succeed: the rest waits in the producer's handle, which stays far
	 * below its own high-water mark. */
	for (uint64_t i = 0; i < 64; i++) {
		body_seq(&pk, i, 8192);
		assert_int_equal(ipchub_send(prod, "stalled", pk.buf.data, pk.buf.size, NULL), IPCHUB_OK);
	}
	ipchub_flush(prod, 200); /* may time out: the broker stopped reading it */

	ipchub *x = hub_client(&hub, "x");
	ipchub *y = hub_client(&hub, "y");
	for (uint64_t i = 0; i < 100; i++) {
		body_seq(&pk, i, 8);
		assert_int_equal(ipchub_send(x, "y", pk.buf.data, pk.buf.size, NULL), IPCHUB_OK);
		assert_int_equal(ipchub_flush(x, 2000), IPCHUB_OK);
		ipchub_msg *m = recv_ok(y, 2000);
		assert_int_equal(body_get_seq(m), i);
		ipchub_msg_free(m);
	}
	/* Now drain the stalled consumer: all 64, in order. */
	for (uint64_t i = 0; i < 64; i++) {
		if (i == 0)
			ipchub_flush(prod, 0);
		ipchub_msg *m = NULL;
		/* Keep the producer's remaining bytes moving while we read. */
		int rc;
		while ((rc = ipchub_recv(stalled, 50, &m)) == IPCHUB_E_TIMEOUT)
			ipchub_flush(prod, 50);
		assert_int_equal(rc, IPCHUB_OK);
		assert_int_equal(body_get_seq(m), i);
		ipchub_msg_free(m);
	}
	ipchub_pack_destroy(&pk);
	ipchub_close(x);
	ipchub_close(y);
	ipchub_close(prod);
	ipchub_close(stalled);
	hub_stop(&hub);
}

/* ---- hostile input ----------------------------------------------------- */

static void expect_error_then_eof(int fd, int code)
{
	uint8_t buf[IPCHUB_MAX_HEADER];
	ssize_t len = raw_read_frame(fd, buf, sizeof(buf), 5000);
	assert_true(len > 0);
	struct iovec iov;
	struct mpr r;
	struct frame_hdr h;
	bool body;
	mpr_init_buf(&r, &iov, buf, (size_t)len);
	assert_int_equal(frame_decode(&r, FRAME_B2C, &h, &body, NULL), WIRE_E_OK);
	assert_true(h.kind == WIRE_ERROR || h.kind == WIRE_BYE);
	assert_int_equal(h.code, code);
	assert_true(raw_wait_eof(fd, 5000));
}

static void check_pair_still_works(struct hub *hub, ipchub *a, ipchub *b)
{
	ipchub_pack pk;
	ipchub_pack_init(&pk);
	body_kv(&pk, "still", "here");
	assert_int_equal(ipchub_send(a, "pb", pk.buf.data, pk.buf.size, NULL), IPCHUB_OK);
	assert_int_equal(ipchub_flush(a, 2000), IPCHUB_OK);
	ipchub_msg *m = recv_ok(b, 5000);
	assert_string_equal(ipchub_msg_from(m), "pa");
	ipchub_msg_free(m);
	ipchub_pack_destroy(&pk);
}

static void test_hostile_input(void **state)
{
	struct hub hub;
	hub_start(&hub, NULL);
	ipchub *a = hub_client(&hub, "pa");
	ipchub *b = hub_client(&hub, "pb");
	long rss0 = hub_rss_kib(&hub);

	/* A length over any limit: refused from the 4 bytes alone. */
	int fd = raw_connect(&hub);
	raw_hello(fd);
	static const uint8_t huge[] = {0xff, 0xff, 0xff, 0xff};
	raw_write_all(fd, huge, sizeof(huge));
	expect_error_then_eof(fd, WIRE_E_TOO_LARGE);
	close(fd);
	check_pair_still_works(&hub, a, b);

	/* max + 1, before the handshake: the pre-auth limit applies. */
	fd = raw_connect(&hub);
	static const uint8_t big[] = {0x00, 0x00, 0x10, 0x00};
	raw_write_all(fd, big, sizeof(big));
	expect_error_then_eof(fd, WIRE_E_TOO_LARGE);
	close(fd);

	/* Length 0 and a length below the smallest header. */
	for (uint32_t l = 0; l < 3; l++) {
		fd = raw_connect(&hub);
		raw_hello(fd);
		uint8_t pre[7] = {0, 0, 0, (uint8_t)l, 0x81, 0x00, 0x05};
		raw_write_all(fd, pre, 4 + l);
		expect_error_then_eof(fd, WIRE_E_BAD_FRAME);
		close(fd);
	}

	/* Garbage: a plausible length followed by bytes that are no header. */
	fd = raw_connect(&hub);
	raw_hello(fd);
	uint8_t garbage[260];
	garbage[0] = 0;
	garbage[1] = 0;
	garbage[2] = 1;
	garbage[3] = 0;
	/* 0xc1 is the one byte msgpack never uses. */
	memset(garbage + 4, 0xc1, sizeof(garbage) - 4);
	raw_write_all(fd, garbage, sizeof(garbage));
	expect_error_then_eof(fd, WIRE_E_BAD_FRAME);
	close(fd);

	/* A frame before HELLO. */
	fd = raw_connect(&hub);
	{
		struct frame_hdr h;
		uint8_t out[FRAME_ENC_MAX];
		frame_init(&h, WIRE_PING);
		h.id = 1;
		h.has |= FH(WK_ID);
		size_t n = frame_encode(&h, 0, out, sizeof(out));
		raw_write_all(fd, out, n);
	}
	expect_error_then_eof(fd, WIRE_E_PROTOCOL);
	close(fd);

	/* A client claiming a sender identity. */
	fd = raw_connect(&hub);
	raw_hello(fd);
	{
		/* SEND {kind, id, to, from} hand-encoded: from is broker-only. */
		static const uint8_t forged[] = {0, 0, 0, 14, 0x84, 0x00, 0x0b, 0x01, 0x01,
						 0x02, 0xa2, 'p', 'b', 0x04, 0xa3, 'b', 'o', 's'};
		raw_write_all(fd, forged, sizeof(forged));
	}
	expect_error_then_eof(fd, WIRE_E_BAD_FRAME);
	close(fd);

	/* Random byte streams of several sizes. */
	srand(42);
	for (int round = 0; round < 20; round++) {
		fd = raw_connect(&hub);
		raw_hello(fd);
		uint8_t junk[512];
		for (size_t i = 0; i < sizeof(junk); i++)
			junk[i] = (uint8_t)rand();
		junk[0] = 0;
		junk[1] = 0; /* keep the length plausible so the header is parsed */
		raw_write_all(fd, junk, (size_t)(16 + round * 20));
		/* Whatever the bytes, the broker answers with an error and
		 * closes, or waits for the rest of a frame; either way it must
		 * not affect the others. */
		shutdown(fd, SHUT_WR);
		raw_wait_eof(fd, 5000);
		close(fd);
	}
	check_pair_still_works(&hub, a, b);
	long rss1 = hub_rss_kib(&hub);
	print_message("broker RSS before %ld KiB after %ld KiB\n", rss0, rss1);
	assert_true(rss1 - rss0 < 1024);

	ipchub_close(a);
	ipchub_close(b);
	hub_stop(&hub);
}

/* A body that is not exactly one msgpack value is refused by the broker
 * (non-fatal): the sender is told with the frame's id and stays connected. */
static void test_bad_body_non_fatal(void **state)
{
	struct hub hub;
	hub_start(&hub, NULL);
	ipchub *b = hub_client(&hub, "pb");
	int fd = raw_connect(&hub);
	raw_hello(fd);
	struct frame_hdr h;
	uint8_t out[FRAME_ENC_MAX + 8];
	frame_init(&h, WIRE_SEND);
	h.id = 77;
	h.has |= FH(WK_ID);
	frame_set_str(&h, WK_TO, "pb", 2);
	static const uint8_t body[] = {0x92, 0x01}; /* array of 2 with 1 item */
	size_t n = frame_encode(&h, sizeof(body), out, sizeof(out));
	memcpy(out + n, body, sizeof(body));
	raw_write_all(fd, out, n + sizeof(body));
	uint8_t in[IPCHUB_MAX_HEADER];
	ssize_t len = raw_read_frame(fd, in, sizeof(in), 5000);
	assert_true(len > 0);
	struct iovec iov;
	struct mpr r;
	bool has_body;
	mpr_init_buf(&r, &iov, in, (size_t)len);
	assert_int_equal(frame_decode(&r, FRAME_B2C, &h, &has_body, NULL), WIRE_E_OK);
	assert_int_equal(h.kind, WIRE_ERROR);
	assert_int_equal(h.code, WIRE_E_BAD_BODY);
	assert_int_equal(h.id, 77);
	/* Still connected: a ping is answered. */
	frame_init(&h, WIRE_PING);
	h.id = 78;
	h.has |= FH(WK_ID);
	n = frame_encode(&h, 0, out, sizeof(out));
	raw_write_all(fd, out, n);
	len = raw_read_frame(fd, in, sizeof(in), 5000);
	assert_true(len > 0);
	mpr_init_buf(&r, &iov, in, (size_t)len);
	assert_int_equal(frame_decode(&r, FRAME_B2C, &h, &has_body, NULL), WIRE_E_OK);
	assert_int_equal(h.kind, WIRE_PONG);
	assert_int_equal(h.id, 78);
	close(fd);
	/* The bad body never reached the receiver. */
	ipchub_msg *m = NULL;
	assert_int_equal(ipchub_recv(b, 200, &m), IPCHUB_E_TIMEOUT);
	ipchub_close(b);
	hub_stop(&hub);
}

/* ---- Node's IPC example, peer to peer -------------------------------- */

/* Node's documentation shows a parent and a forked child exchanging
 * {hello: 'world'} and {foo: 'bar'}. Here two siblings - neither is the
 * other's parent - do the same through the hub, each knowing the other
 * only by name. */
static int sibling(const char *path, const char *me, const char *peer, const char *k,
		   const char *v, const char *want_k, const char *want_v)
{
	struct ipchub_opts o = {.socket = path};
	ipchub *h = NULL;
	if (ipchub_connect(&o, &h) || ipchub_register(h, me, 5000))
		return 10;
	/* Wait until the peer is there (presence comes with pub/sub; a
	 * request to the broker's peer list serves here). */
	int64_t deadline = now_ms() + 5000;
	for (;;) {
		ipchub_msg *r = NULL;
		int found = 0;
		if (ipchub_request(h, "ipchub.peers", NULL, 0, 2000, &r) == IPCHUB_OK) {
			size_t len;
			const char *b = ipchub_msg_body(r, &len);
			found = b && memmem(b, len, peer, strlen(peer)) != NULL;
		}
		ipchub_msg_free(r);
		if (found)
			break;
		if (now_ms() > deadline)
			return 11;
		usleep(5000);
	}
	ipchub_pack p;
	ipchub_pack_init(&p);
	body_kv(&p, k, v);
	if (ipchub_send(h, peer, p.buf.data, p.buf.size, NULL) || ipchub_flush(h, 2000))
		return 12;
	ipchub_msg *m = NULL;
	if (ipchub_recv(h, 5000, &m))
		return 13;
	if (!ipchub_msg_from(m) || strcmp(ipchub_msg_from(m), peer))
		return 14;
	ipchub_pack_reset(&p);
	body_kv(&p, want_k, want_v);
	size_t len;
	const void *b = ipchub_msg_body(m, &len);
	if (len != p.buf.size || memcmp(b, p.buf.data, len))
		return 15;
	printf("%s got message from %s\n", me, peer);
	ipchub_msg_free(m);
	ipchub_pack_destroy(&p);
	/* Let the peer receive before we go away. */
	ipchub_msg *r = NULL;
	ipchub_request(h, "ipchub.ping", NULL, 0, 2000, &r);
	ipchub_msg_free(r);
	usleep(100000);
	ipchub_close(h);
	return 0;
}

static void test_node_ipc_example_peer_to_peer(void **state)
{
	struct hub hub;
	hub_start(&hub, NULL);
	pid_t a = fork();
	if (a == 0)
		_exit(sibling(hub.path, "parent-like", "child-like", "hello", "world", "foo", "bar"));
	pid_t b = fork();
	if (b == 0)
		_exit(sibling(hub.path, "child-like", "parent-like", "foo", "bar", "hello", "world"));
	int sa, sb;
	waitpid(a, &sa, 0);
	waitpid(b, &sb, 0);
	assert_true(WIFEXITED(sa));
	assert_int_equal(WEXITSTATUS(sa), 0);
	assert_true(WIFEXITED(sb));
	assert_int_equal(WEXITSTATUS(sb), 0);
	hub_stop(&hub);
}

/* ---- lifecycle -------------------------------------------------------- */

static void test_second_broker_refused(void **state)
{
	struct hub hub;
	hub_start(&hub, NULL);
	pid_t pid = fork();
	if (pid == 0) {
		int devnull = open("/dev/null", O_WRONLY);
		dup2(devnull, 1);
		dup2(devnull, 2);
		execl(IPCHUBD_PATH, IPCHUBD_PATH, "--socket", hub.path, (char *)NULL);
		_exit(127);
	}
	int st;
	waitpid(pid, &st, 0);
	assert_true(WIFEXITED(st));
	assert_true(WEXITSTATUS(st) != 0);
	/* The first broker is unaffected. */
	ipchub *a = hub_client(&hub, "still-serving");
	ipchub_close(a);
	int fds = hub_fd_count(&hub);
	assert_true(fds > 0);
	hub_stop(&hub);
}

static void test_stale_socket_removed(void **state)
{
	struct hub hub;
	hub_start(&hub, NULL);
	/* Kill the broker so it leaves its socket file behind. */
	kill(hub.pid, SIGKILL);
	waitpid(hub.pid, NULL, 0);
	assert_int_equal(access(hub.path, F_OK), 0);
	struct ipchub_opts o = {.socket = hub.path};
	ipchub *h = NULL;
	assert_int_equal(ipchub_connect(&o, &h), IPCHUB_E_NO_BROKER);
	assert_null(h);
	/* A new broker on the same path takes over. */
	pid_t pid = fork();
	if (pid == 0) {
		int devnull = open("/dev/null", O_WRONLY);
		dup2(devnull, 1);
		execl(IPCHUBD_PATH, IPCHUBD_PATH, "--socket", hub.path, (char *)NULL);
		_exit(127);
	}
	hub.pid = pid;
	int64_t deadline = now_ms() + 5000;
	int rc;
	while ((rc = ipchub_connect(&o, &h)) == IPCHUB_E_NO_BROKER && now_ms() < deadline)
		usleep(10000);
	assert_int_equal(rc, IPCHUB_OK);
	ipchub_close(h);
	hub_stop(&hub);
}

int main(void)
{
	signal(SIGPIPE, SIG_IGN);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_send_receive),
		cmocka_unit_test(test_mixed_sizes_in_order),
		cmocka_unit_test(test_request_reply),
		cmocka_unit_test(test_peers_service),
		cmocka_unit_test(test_no_such_peer),
		cmocka_unit_test(test_names),
		cmocka_unit_test(test_name_limit),
		cmocka_unit_test(test_peer_gone),
		cmocka_unit_test(test_timeout_and_late_reply),
		cmocka_unit_test(test_spin),
		cmocka_unit_test(test_100k_in_order),
		cmocka_unit_test(test_backpressure_bounded),
		cmocka_unit_test(test_slow_consumer_isolated),
		cmocka_unit_test(test_hostile_input),
		cmocka_unit_test(test_bad_body_non_fatal),
		cmocka_unit_test(test_node_ipc_example_peer_to_peer),
		cmocka_unit_test(test_second_broker_refused),
		cmocka_unit_test(test_stale_socket_removed),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
