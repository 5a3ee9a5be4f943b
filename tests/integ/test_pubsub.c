/*
 * test_pubsub.c - pub/sub, presence, monitor and stats against a real
 * ipchubd: 1 publisher to 100 subscribers in order; a stalled drop-oldest
 * subscriber gets exact gap notices while the others get everything and
 * the publisher is not held back; BLOCK parks the publisher and loses
 * nothing; a watch sees a consistent stream under racing changes; the
 * monitor sees both directions of a request/reply and refuses an
 * unprivileged user; stats match the traffic generated here.
 * Threads only read and record; the main thread asserts after joining.
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "frame.h"
#include "harness.h"
#include "limits.h"
#include "mpr.h"

/* Sequence number of a body_seq() body. */
static uint64_t seq_of(const ipchub_msg *m)
{
	msgpack_unpacked u;
	uint64_t s = UINT64_MAX;

	msgpack_unpacked_init(&u);
	if (ipchub_msg_unpack(m, &u) == IPCHUB_OK &&
	    u.data.type == MSGPACK_OBJECT_ARRAY && u.data.via.array.size == 2 &&
	    u.data.via.array.ptr[0].type == MSGPACK_OBJECT_POSITIVE_INTEGER)
		s = u.data.via.array.ptr[0].via.u64;
	msgpack_unpacked_destroy(&u);
	return s;
}

static ipchub_msg *recv_ok(ipchub *h)
{
	ipchub_msg *m = NULL;
	int rc = ipchub_recv(h, 10000, &m);

	if (rc != IPCHUB_OK)
		fail_msg("recv: %s", ipchub_code_name(rc));
	return m;
}

static void publish_seq(ipchub *h, const char *topic, uint64_t n, size_t pad)
{
	ipchub_pack p;

	ipchub_pack_init(&p);
	for (uint64_t i = 0; i < n; i++) {
		body_seq(&p, i, pad);
		assert_int_equal(ipchub_publish(h, topic, p.buf.data, p.buf.size),
				 IPCHUB_OK);
	}
	ipchub_pack_destroy(&p);
}

static void test_fanout_100(void **state)
{
	enum { NSUB = 100, NMSG = 300 };
	struct hub hub;
	ipchub *pub, *subs[NSUB];
	uint64_t ids[NSUB];

	(void)state;
	hub_start(&hub, NULL);
	pub = hub_client(&hub, "publisher");
	for (int i = 0; i < NSUB; i++) {
		subs[i] = hub_client(&hub, NULL);
		assert_int_equal(ipchub_subscribe(subs[i], i % 2 ? "news.>" : "news.*",
						  IPCHUB_POLICY_DROP_OLDEST, 5000,
						  &ids[i]),
				 IPCHUB_OK);
	}
	/* Not matched by either pattern: nobody gets it. */
	assert_int_equal(ipchub_publish(pub, "sport.x", NULL, 0), IPCHUB_OK);
	publish_seq(pub, "news.today", NMSG, 16);
	assert_int_equal(ipchub_flush(pub, 5000), IPCHUB_OK);
	for (int i = 0; i < NSUB; i++) {
		for (uint64_t k = 0; k < NMSG; k++) {
			ipchub_msg *m = recv_ok(subs[i]);

			assert_int_equal(ipchub_msg_kind(m), IPCHUB_KIND_PUBLISH);
			assert_string_equal(ipchub_msg_topic(m), "news.today");
			assert_string_equal(ipchub_msg_from(m), "publisher");
			assert_int_equal(ipchub_msg_from_id(m), ipchub_conn_id(pub));
			assert_int_equal(ipchub_msg_sub(m), ids[i]);
			if (seq_of(m) != k)
				fail_msg("sub %d: got seq %llu, want %llu", i,
					 (unsigned long long)seq_of(m),
					 (unsigned long long)k);
			ipchub_msg_free(m);
		}
		ipchub_close(subs[i]);
	}
	ipchub_close(pub);
	assert_int_equal(hub_stop(&hub), 0);
}

struct reader {
	ipchub *h;
	uint64_t want, got;
	bool in_order;
	int rc;
};

static void *reader_main(void *arg)
{
	struct reader *r = arg;

	r->in_order = true;
	while (r->got < r->want) {
		ipchub_msg *m = NULL;

		r->rc = ipchub_recv(r->h, 20000, &m);
		if (r->rc)
			return NULL;
		if (ipchub_msg_kind(m) != IPCHUB_KIND_PUBLISH ||
		    seq_of(m) != r->got)
			r->in_order = false;
		r->got++;
		ipchub_msg_free(m);
	}
	return NULL;
}

/* Find key k in a msgpack map object, or NULL. */
static const msgpack_object *map_get(const msgpack_object *o, const char *k)
{
	if (o->type != MSGPACK_OBJECT_MAP)
		return NULL;
	for (uint32_t i = 0; i < o->via.map.size; i++) {
		const msgpack_object_kv *kv = &o->via.map.ptr[i];

		if (kv->key.type == MSGPACK_OBJECT_STR &&
		    kv->key.via.str.size == strlen(k) &&
		    memcmp(kv->key.via.str.ptr, k, strlen(k)) == 0)
			return &kv->val;
	}
	return NULL;
}

static uint64_t get_u(const msgpack_object *o, const char *k)
{
	const msgpack_object *v = map_get(o, k);

	if (!v || v->type != MSGPACK_OBJECT_POSITIVE_INTEGER)
		fail_msg("stats: no integer '%s'", k);
	return v->via.u64;
}

/* Stats reply of the broker (caller destroys u and frees *m). */
static void get_stats(ipchub *h, ipchub_msg **m, msgpack_unpacked *u)
{
	*m = NULL;
	assert_int_equal(ipchub_request(h, "ipchub.stats", NULL, 0, 5000, m),
			 IPCHUB_OK);
	msgpack_unpacked_init(u);
	assert_int_equal(ipchub_msg_unpack(*m, u), IPCHUB_OK);
}

static const msgpack_object *stats_conn(const msgpack_object *root,
					uint64_t id)
{
	const msgpack_object *a = map_get(root, "conns");

	assert_non_null(a);
	for (uint32_t i = 0; i < a->via.array.size; i++)
		if (get_u(&a->via.array.ptr[i], "id") == id)
			return &a->via.array.ptr[i];
	fail_msg("stats: conn %llu not listed", (unsigned long long)id);
	return NULL;
}

static void test_drop_oldest_gap(void **state)
{
	enum { NFAST = 3, NMSG = 4000, PAD = 4000 };
	struct hub hub;
	ipchub *pub, *slow, *obs;
	struct reader r[NFAST];
	pthread_t t[NFAST];
	uint64_t slow_sub, expect = 0, gaps = 0, pubs = 0, ngap = 0;
	ipchub_msg *sm;
	msgpack_unpacked u;

	(void)state;
	hub_start(&hub, NULL);
	pub = hub_client(&hub, "pub");
	slow = hub_client(&hub, "slow");
	obs = hub_client(&hub, NULL);
	assert_int_equal(ipchub_subscribe(slow, "load", IPCHUB_POLICY_DROP_OLDEST,
					  5000, &slow_sub), IPCHUB_OK);
	for (int i = 0; i < NFAST; i++) {
		/* The readers choose `block`: on a loaded machine a reading
		 * thread can still fall a queue behind a 16 MB burst, and
		 * what this test proves is that they lose nothing and that
		 * the stalled subscriber (drop-oldest) holds nobody back -
		 * not how fast a thread is scheduled. */
		r[i] = (struct reader){.h = hub_client(&hub, NULL), .want = NMSG};
		assert_int_equal(ipchub_subscribe(r[i].h, "load",
						  IPCHUB_POLICY_BLOCK,
						  5000, NULL), IPCHUB_OK);
		pthread_create(&t[i], NULL, reader_main, &r[i]);
	}
	/* 16 MB for a subscriber that does not read at all. */
	publish_seq(pub, "load", NMSG, PAD);
	/* Answered only once the broker has handled every publication:
	 * the stalled subscriber did not hold the publisher back. */
	assert_int_equal(ipchub_ping(pub, 20000, NULL), IPCHUB_OK);
	for (int i = 0; i < NFAST; i++) {
		pthread_join(t[i], NULL);
		assert_int_equal(r[i].rc, IPCHUB_OK);
		assert_int_equal(r[i].got, NMSG);
		assert_true(r[i].in_order);
		ipchub_close(r[i].h);
	}
	/* The stalled one: every publication is either delivered in order
	 * or accounted for by a gap notice placed exactly where it was. */
	while (pubs + gaps < NMSG) {
		ipchub_msg *m = recv_ok(slow);

		if (ipchub_msg_kind(m) == IPCHUB_KIND_GAP) {
			assert_int_equal(ipchub_msg_sub(m), slow_sub);
			assert_true(ipchub_msg_gap_count(m) > 0);
			gaps += ipchub_msg_gap_count(m);
			expect += ipchub_msg_gap_count(m);
			ngap++;
		} else {
			assert_int_equal(ipchub_msg_kind(m), IPCHUB_KIND_PUBLISH);
			if (seq_of(m) != expect)
				fail_msg("slow: seq %llu, expected %llu",
					 (unsigned long long)seq_of(m),
					 (unsigned long long)expect);
			expect++;
			pubs++;
		}
		ipchub_msg_free(m);
	}
	assert_true(gaps > 0);
	assert_int_equal(pubs + gaps, NMSG);
	/* The broker counted the same drops. */
	get_stats(obs, &sm, &u);
	assert_int_equal(get_u(stats_conn(&u.data, ipchub_conn_id(slow)), "drops"),
			 gaps);
	assert_true(get_u(&u.data, "drops") >= gaps);
	msgpack_unpacked_destroy(&u);
	ipchub_msg_free(sm);
	print_message("stalled subscriber: %llu delivered, %llu lost in %llu gaps\n",
		      (unsigned long long)pubs, (unsigned long long)gaps,
		      (unsigned long long)ngap);
	ipchub_close(slow);
	ipchub_close(pub);
	ipchub_close(obs);
	assert_int_equal(hub_stop(&hub), 0);
}

static void test_block_backpressure(void **state)
{
	enum { NMSG = 2000, PAD = 1000 };
	const char *args[] = {"--queue-hwm", "65536", NULL};
	struct hub hub;
	ipchub *pub, *sub;
	struct reader r;
	pthread_t t;

	(void)state;
	hub_start(&hub, args);
	pub = hub_client(&hub, NULL);
	sub = hub_client(&hub, NULL);
	assert_int_equal(ipchub_subscribe(sub, "b.*", IPCHUB_POLICY_BLOCK, 5000,
					  NULL), IPCHUB_OK);
	publish_seq(pub, "b.x", NMSG, PAD);
	/* 2 MB cannot fit the subscriber's 64 KiB queue and socket: the
	 * broker parks the publisher, so its PING is not even read. */
	assert_int_equal(ipchub_ping(pub, 300, NULL), IPCHUB_E_TIMEOUT);
	r = (struct reader){.h = sub, .want = NMSG};
	pthread_create(&t, NULL, reader_main, &r);
	/* The publisher's library writes the rest while it waits. */
	assert_int_equal(ipchub_ping(pub, 20000, NULL), IPCHUB_OK);
	pthread_join(t, NULL);
	assert_int_equal(r.rc, IPCHUB_OK);
	assert_int_equal(r.got, NMSG);
	assert_true(r.in_order); /* no GAP, nothing lost */
	ipchub_close(sub);
	ipchub_close(pub);
	assert_int_equal(hub_stop(&hub), 0);
}

static void test_disconnect_policy(void **state)
{
	const char *args[] = {"--queue-hwm", "65536", NULL};
	struct hub hub;
	ipchub *pub, *sub, *obs;
	int rc;
	ipchub_msg *m = NULL;

	(void)state;
	hub_start(&hub, args);
	pub = hub_client(&hub, NULL);
	sub = hub_client(&hub, "fragile");
	obs = hub_client(&hub, NULL);
	assert_int_equal(ipchub_subscribe(sub, "d", IPCHUB_POLICY_DISCONNECT,
					  5000, NULL), IPCHUB_OK);
	publish_seq(pub, "d", 3000, 1000);
	assert_int_equal(ipchub_ping(pub, 10000, NULL), IPCHUB_OK);
	/* The broker closed it: its name is free again. */
	assert_int_equal(ipchub_register(obs, "fragile", 5000), IPCHUB_OK);
	/* What was queued, then the end, with the reason. */
	while ((rc = ipchub_recv(sub, 10000, &m)) == IPCHUB_OK)
		ipchub_msg_free(m);
	assert_int_equal(rc, IPCHUB_E_QUEUE_FULL);
	ipchub_close(sub);
	ipchub_close(pub);
	ipchub_close(obs);
	assert_int_equal(hub_stop(&hub), 0);
}

struct toggler {
	const struct hub *hub;
	int rounds;
};

static void *toggler_main(void *arg)
{
	struct toggler *tg = arg;
	ipchub *h = hub_client(tg->hub, NULL);

	for (int i = 0; i < tg->rounds; i++) {
		ipchub_register(h, "svc.z", 5000);
		ipchub_unregister(h, "svc.z", 5000);
	}
	ipchub_close(h);
	return NULL;
}

static void test_watch(void **state)
{
	struct hub hub;
	ipchub *w, *a, *b;
	ipchub_msg *m;
	uint64_t wid, zid;
	struct toggler tg;
	pthread_t t;
	bool owned;
	int changes = 0;

	(void)state;
	hub_start(&hub, NULL);
	w = hub_client(&hub, NULL);
	a = hub_client(&hub, NULL);
	assert_int_equal(ipchub_watch(w, "svc.x", 5000, &wid), IPCHUB_OK);
	m = recv_ok(w);
	assert_int_equal(ipchub_msg_kind(m), IPCHUB_KIND_PRESENCE);
	assert_int_equal(ipchub_msg_id(m), wid);
	assert_string_equal(ipchub_msg_presence_name(m), "svc.x");
	assert_int_equal(ipchub_msg_presence_event(m), IPCHUB_PRESENCE_UNOWNED);
	assert_int_equal(ipchub_msg_presence_owner(m), 0);
	ipchub_msg_free(m);

	assert_int_equal(ipchub_register(a, "svc.x", 5000), IPCHUB_OK);
	m = recv_ok(w);
	assert_int_equal(ipchub_msg_presence_event(m), IPCHUB_PRESENCE_REGISTERED);
	assert_int_equal(ipchub_msg_presence_owner(m), ipchub_conn_id(a));
	ipchub_msg_free(m);
	assert_int_equal(ipchub_unregister(a, "svc.x", 5000), IPCHUB_OK);
	m = recv_ok(w);
	assert_int_equal(ipchub_msg_presence_event(m), IPCHUB_PRESENCE_RELEASED);
	assert_int_equal(ipchub_msg_presence_reason(m), IPCHUB_REASON_UNREGISTER);
	assert_int_equal(ipchub_msg_presence_owner(m), ipchub_conn_id(a));
	ipchub_msg_free(m);

	b = hub_client(&hub, "svc.x");
	m = recv_ok(w);
	assert_int_equal(ipchub_msg_presence_event(m), IPCHUB_PRESENCE_REGISTERED);
	assert_int_equal(ipchub_msg_presence_owner(m), ipchub_conn_id(b));
	ipchub_msg_free(m);
	/* A second watch of an owned name answers OWNED with the owner. */
	assert_int_equal(ipchub_watch(a, "svc.x", 5000, NULL), IPCHUB_OK);
	m = recv_ok(a);
	assert_int_equal(ipchub_msg_presence_event(m), IPCHUB_PRESENCE_OWNED);
	assert_int_equal(ipchub_msg_presence_owner(m), ipchub_conn_id(b));
	ipchub_msg_free(m);
	ipchub_close(b);
	m = recv_ok(w);
	assert_int_equal(ipchub_msg_presence_event(m), IPCHUB_PRESENCE_RELEASED);
	assert_int_equal(ipchub_msg_presence_reason(m), IPCHUB_REASON_DISCONNECT);
	ipchub_msg_free(m);

	/* Races: the name flips while the watch is being set up. Whatever
	 * the first answer says, the stream must then alternate strictly
	 * (a missed change would show as two equal events in a row) and end
	 * in the final state. */
	tg = (struct toggler){.hub = &hub, .rounds = 300};
	pthread_create(&t, NULL, toggler_main, &tg);
	usleep(1000);
	assert_int_equal(ipchub_watch(w, "svc.z", 5000, &zid), IPCHUB_OK);
	pthread_join(t, NULL);
	assert_int_equal(ipchub_register(a, "svc.z", 5000), IPCHUB_OK);
	m = recv_ok(w);
	assert_int_equal(ipchub_msg_id(m), zid);
	owned = ipchub_msg_presence_event(m) == IPCHUB_PRESENCE_OWNED;
	assert_true(owned ||
		    ipchub_msg_presence_event(m) == IPCHUB_PRESENCE_UNOWNED);
	ipchub_msg_free(m);
	for (;;) {
		int ev;
		uint64_t owner;

		m = recv_ok(w);
		ev = ipchub_msg_presence_event(m);
		owner = ipchub_msg_presence_owner(m);
		ipchub_msg_free(m);
		if (owned)
			assert_int_equal(ev, IPCHUB_PRESENCE_RELEASED);
		else
			assert_int_equal(ev, IPCHUB_PRESENCE_REGISTERED);
		owned = !owned;
		changes++;
		if (owned && owner == ipchub_conn_id(a))
			break; /* a's registration: the last change */
	}
	print_message("watch saw %d changes after its first answer\n", changes);
	assert_int_equal(ipchub_unwatch(w, zid, 5000), IPCHUB_OK);
	assert_int_equal(ipchub_unwatch(w, zid, 5000), IPCHUB_E_NO_SUCH_REQUEST);
	assert_int_equal(ipchub_watch(w, "ipchub.peers", 5000, NULL),
			 IPCHUB_E_BAD_NAME);
	ipchub_close(a);
	ipchub_close(w);
	assert_int_equal(hub_stop(&hub), 0);
}

static void *echo_once(void *arg)
{
	ipchub *s = arg;
	ipchub_msg *m = NULL;

	if (ipchub_recv(s, 10000, &m) == IPCHUB_OK) {
		ipchub_reply(s, m, "\xa2ok", 3);
		ipchub_flush(s, 5000);
		ipchub_msg_free(m);
	}
	return NULL;
}

static void test_monitor(void **state)
{
	const char *args[] = {"--socket-mode", "0666", NULL};
	struct hub hub;
	ipchub *mon, *a, *s;
	ipchub_msg *reply = NULL;
	pthread_t t;
	uint64_t tap;
	int seen = 0;
	pid_t pid;
	int status;

	(void)state;
	hub_start(&hub, args);
	mon = hub_client(&hub, NULL);
	a = hub_client(&hub, "asker");
	s = hub_client(&hub, "echo");
	assert_int_equal(ipchub_monitor(mon, "kind=bogus", 5000, NULL),
			 IPCHUB_E_BAD_FILTER);
	assert_int_equal(ipchub_monitor(mon, "kind=REQUEST,REPLY", 5000, &tap),
			 IPCHUB_OK);
	pthread_create(&t, NULL, echo_once, s);
	assert_int_equal(ipchub_request(a, "echo", "\x01", 1, 5000, &reply),
			 IPCHUB_OK);
	pthread_join(t, NULL);
	ipchub_msg_free(reply);
	/* REQUEST in from a, out to s; REPLY in from s, out to a. */
	struct { int kind, dir; uint64_t conn; } want[4] = {
		{WIRE_REQUEST, WIRE_MONITOR_IN, ipchub_conn_id(a)},
		{WIRE_REQUEST, WIRE_MONITOR_OUT, ipchub_conn_id(s)},
		{WIRE_REPLY, WIRE_MONITOR_IN, ipchub_conn_id(s)},
		{WIRE_REPLY, WIRE_MONITOR_OUT, ipchub_conn_id(a)},
	};
	while (seen < 4) {
		ipchub_msg *m = recv_ok(mon);
		const void *fr;
		size_t len;
		uint64_t conn, full;
		int dir = ipchub_msg_monitor_frame(m, &fr, &len, &conn, &full);
		struct frame_hdr h;
		struct iovec iov;
		struct mpr r;
		bool hb;

		assert_int_equal(ipchub_msg_kind(m), IPCHUB_KIND_MONITOR);
		assert_int_equal(ipchub_msg_sub(m), tap);
		mpr_init_buf(&r, &iov, fr, len);
		assert_int_equal(frame_decode(&r, dir == WIRE_MONITOR_IN ? FRAME_C2B
									 : FRAME_B2C,
					      &h, &hb, NULL), WIRE_E_OK);
		assert_int_equal(h.kind, want[seen].kind);
		assert_int_equal(dir, want[seen].dir);
		assert_int_equal(conn, want[seen].conn);
		assert_int_equal(full, 0);
		assert_true(hb);
		seen++;
		ipchub_msg_free(m);
	}

	/* Another user may not tap. */
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		ipchub *h = NULL;
		struct ipchub_opts o = {.socket = hub.path, .timeout_ms = 5000};

		if (chmod(hub.dir, 0755) < 0 || setgid(65534) < 0 ||
		    setuid(65534) < 0)
			_exit(3);
		if (ipchub_connect(&o, &h) != IPCHUB_OK)
			_exit(4);
		_exit(ipchub_monitor(h, NULL, 5000, NULL) ==
			      IPCHUB_E_NOT_AUTHORIZED ? 0 : 1);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	assert_int_equal(ipchub_unsubscribe(mon, tap, 5000), IPCHUB_OK);
	ipchub_close(s);
	ipchub_close(a);
	ipchub_close(mon);
	assert_int_equal(hub_stop(&hub), 0);
}

/* Bytes of the SEND frame libipchub builds for (id, to, body). */
static uint64_t send_frame_len(uint64_t id, const char *to, size_t body)
{
	struct frame_hdr h;
	uint8_t buf[FRAME_ENC_MAX];

	frame_init(&h, WIRE_SEND);
	h.id = id;
	h.has |= FH(WK_ID);
	frame_set_str(&h, WK_TO, to, strlen(to));
	return frame_encode(&h, body, buf, sizeof(buf)) + body;
}

/* With the authentication policy, a `monitor` rule grants the tap to a
 * uid that is neither root nor the broker's; a uid without one is still
 * refused. */
static int tap_as(const char *path, const char *dir, uid_t uid)
{
	pid_t pid = fork();
	int status;

	assert_true(pid >= 0);
	if (pid == 0) {
		ipchub *h = NULL;
		struct ipchub_opts o = {.socket = path, .timeout_ms = 5000};

		if (chmod(dir, 0755) < 0 || setgid(uid) < 0 || setuid(uid) < 0)
			_exit(100);
		if (ipchub_connect(&o, &h) != IPCHUB_OK)
			_exit(101);
		_exit(ipchub_monitor(h, NULL, 5000, NULL));
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	return WEXITSTATUS(status);
}

static void test_monitor_policy_rule(void **state)
{
	struct hub hub;
	char pol[] = "/tmp/ipchub-monpol-XXXXXX";
	int fd = mkstemp(pol);
	static const char text[] = "# tap for the ops user\nmonitor uid 4243\n";
	(void)state;

	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, sizeof(text) - 1), (ssize_t)(sizeof(text) - 1));
	close(fd);
	chmod(pol, 0644);
	const char *args[] = {"--policy", pol, "--socket-mode", "0666", NULL};
	hub_start(&hub, args);
	assert_int_equal(tap_as(hub.path, hub.dir, 4243), IPCHUB_OK);
	assert_int_equal(tap_as(hub.path, hub.dir, 4244), IPCHUB_E_NOT_AUTHORIZED);
	assert_int_equal(hub_stop(&hub), 0);
	unlink(pol);
}

static void test_stats(void **state)
{
	enum { K = 10 };
	struct hub hub;
	ipchub *a, *b, *obs;
	ipchub_msg *m0, *m1, *m;
	msgpack_unpacked u0, u1;
	uint64_t bytes = 0, id;
	const msgpack_object *a0, *a1, *b0, *b1, *e0, *e1;
	uint64_t nsp0 = 0, nsp1;
	ipchub_pack p;

	(void)state;
	hub_start(&hub, NULL);
	a = hub_client(&hub, "a");
	b = hub_client(&hub, "b");
	obs = hub_client(&hub, NULL);
	get_stats(obs, &m0, &u0);
	ipchub_pack_init(&p);
	for (int i = 0; i < K; i++) {
		body_seq(&p, (uint64_t)i, 10);
		assert_int_equal(ipchub_send(a, "b", p.buf.data, p.buf.size, &id),
				 IPCHUB_OK);
		/* Written at once: one frame each (sends waiting together
		 * would travel as one batch, PROTOCOL.md 6.3.1). */
		assert_int_equal(ipchub_flush(a, 5000), IPCHUB_OK);
		bytes += send_frame_len(id, "b", p.buf.size);
	}
	ipchub_pack_destroy(&p);
	for (int i = 0; i < 3; i++)
		assert_int_equal(ipchub_send(obs, "nobody", NULL, 0, NULL),
				 IPCHUB_OK);
	assert_int_equal(ipchub_flush(a, 5000), IPCHUB_OK);
	for (int i = 0; i < K; i++)
		ipchub_msg_free(recv_ok(b));
	for (int i = 0; i < 3; i++) {
		m = recv_ok(obs);
		assert_int_equal(ipchub_msg_error(m), IPCHUB_E_NO_SUCH_PEER);
		ipchub_msg_free(m);
	}
	get_stats(obs, &m1, &u1);

	a0 = stats_conn(&u0.data, ipchub_conn_id(a));
	a1 = stats_conn(&u1.data, ipchub_conn_id(a));
	b0 = stats_conn(&u0.data, ipchub_conn_id(b));
	b1 = stats_conn(&u1.data, ipchub_conn_id(b));
	assert_int_equal(get_u(a1, "messages_in") - get_u(a0, "messages_in"), K);
	assert_int_equal(get_u(a1, "bytes_in") - get_u(a0, "bytes_in"), bytes);
	assert_int_equal(get_u(b1, "messages_out") - get_u(b0, "messages_out"), K);
	assert_int_equal(get_u(&u1.data, "messages_routed") -
				 get_u(&u0.data, "messages_routed"), K);
	assert_int_equal(get_u(&u1.data, "connections"), 3);
	assert_int_equal(get_u(&u1.data, "connections_total"), 3);
	e0 = map_get(&u0.data, "errors");
	e1 = map_get(&u1.data, "errors");
	assert_non_null(e0);
	assert_non_null(e1);
	if (map_get(e0, "NO_SUCH_PEER"))
		nsp0 = get_u(e0, "NO_SUCH_PEER");
	nsp1 = get_u(e1, "NO_SUCH_PEER");
	assert_int_equal(nsp1 - nsp0, 3);
	assert_true(get_u(&u1.data, "uptime_ms") >= get_u(&u0.data, "uptime_ms"));
	msgpack_unpacked_destroy(&u0);
	msgpack_unpacked_destroy(&u1);
	ipchub_msg_free(m0);
	ipchub_msg_free(m1);
	ipchub_close(a);
	ipchub_close(b);
	ipchub_close(obs);
	assert_int_equal(hub_stop(&hub), 0);
}

static void test_errors(void **state)
{
	struct hub hub;
	ipchub *h;
	ipchub_msg *m;
	uint64_t id;

	(void)state;
	const char *args[] = {"--max-subs", "40", NULL};

	hub_start(&hub, args);
	h = hub_client(&hub, NULL);
	assert_int_equal(ipchub_subscribe(h, "a..b", 0, 5000, NULL),
			 IPCHUB_E_BAD_NAME);
	assert_int_equal(ipchub_subscribe(h, "a.>.b", 0, 5000, NULL),
			 IPCHUB_E_BAD_NAME);
	assert_int_equal(ipchub_subscribe(h, "a", 9, 5000, NULL),
			 IPCHUB_E_INVALID);
	assert_int_equal(ipchub_unsubscribe(h, 12345, 5000),
			 IPCHUB_E_NO_SUCH_REQUEST);
	assert_int_equal(ipchub_publish(h, "a.*", NULL, 0), IPCHUB_E_BAD_NAME);
	/* A reserved topic is refused by the broker, asynchronously. */
	assert_int_equal(ipchub_publish(h, "ipchub.x", NULL, 0), IPCHUB_OK);
	m = recv_ok(h);
	assert_int_equal(ipchub_msg_error(m), IPCHUB_E_BAD_NAME);
	ipchub_msg_free(m);
	/* Unsubscribed: nothing more arrives (a PING fences the stream). */
	assert_int_equal(ipchub_subscribe(h, "x", 0, 5000, &id), IPCHUB_OK);
	assert_int_equal(ipchub_unsubscribe(h, id, 5000), IPCHUB_OK);
	assert_int_equal(ipchub_publish(h, "x", NULL, 0), IPCHUB_OK);
	assert_int_equal(ipchub_ping(h, 5000, NULL), IPCHUB_OK);
	assert_int_equal(ipchub_recv(h, 0, &m), IPCHUB_E_TIMEOUT);
	/* Subscriptions, watches and taps together are capped per
	 * connection (--max-subs): one more is LIMIT, not memory. */
	for (unsigned i = 0; i < 40; i++) {
		char pat[32];

		snprintf(pat, sizeof(pat), "cap.%u", i);
		if (i % 2)
			assert_int_equal(ipchub_subscribe(h, pat, 0, 5000, NULL), IPCHUB_OK);
		else
			assert_int_equal(ipchub_watch(h, pat, 5000, NULL), IPCHUB_OK);
	}
	assert_int_equal(ipchub_subscribe(h, "cap.over", 0, 5000, NULL), IPCHUB_E_LIMIT);
	assert_int_equal(ipchub_watch(h, "cap.over", 5000, NULL), IPCHUB_E_LIMIT);
	ipchub_close(h);
	assert_int_equal(hub_stop(&hub), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fanout_100),
		cmocka_unit_test(test_drop_oldest_gap),
		cmocka_unit_test(test_block_backpressure),
		cmocka_unit_test(test_disconnect_policy),
		cmocka_unit_test(test_watch),
		cmocka_unit_test(test_monitor),
		cmocka_unit_test(test_monitor_policy_rule),
		cmocka_unit_test(test_stats),
		cmocka_unit_test(test_errors),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
