/*
 * test_async.c - the event-driven API (ipchub_async_*) against a real
 * ipchubd.
 *
 * Most tests drive the handles with a plain poll() loop through the
 * loop-neutral calls (fd, wants_write, next_timeout_ms, process); one
 * drives them from a libevent event_base through ipchub_async_attach().
 * Each handle has a struct peer that records what its callbacks saw; the
 * test asserts on it after the loop reached the condition it waited for.
 * Loops are bounded in time only so that a broken build fails instead of
 * hanging; nothing here measures speed.
 */
#include <poll.h>
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
#include <event2/event.h>

#include "harness.h"
#include "ipchub_event.h"

#define LOOP_LIMIT_MS 10000

struct peer {
	ipchub_async *a; /* NULL once freed */
	const char *label;
	int connected, disconnected, reconnected, closed;
	int last_disc_code;
	unsigned restored;
	int n_lost;
	char lost_name[64];
	int lost_code;
	int msgs;
	uint64_t last_seq;
	bool seq_ok;
	char last_body[64];
	ipchub_msg *held;   /* a request kept unanswered */
	bool hold;          /* keep requests instead of answering */
	bool free_on_msg;   /* ipchub_async_free() inside on_message */
	int errors;
	int last_err_code, last_err_kind;
	int drains;
	/* pub/sub: publications in order of seq, or accounted for by gaps */
	int pubs;
	uint64_t pub_sub, next_seq;
	char pub_topic[64];
	int gaps;
	uint64_t gap_sub, lost;
	/* presence: the last event */
	int pres;
	uint64_t pres_watch, pres_owner;
	int pres_event, pres_reason;
	char pres_name[64];
};

struct done {
	int calls;
	int code;
	ipchub_msg *m;
};

static void on_message(ipchub_async *a, ipchub_msg *m, void *ud)
{
	struct peer *p = ud;
	msgpack_unpacked u;

	if (ipchub_msg_kind(m) == IPCHUB_KIND_PUBLISH) {
		p->pubs++;
		p->pub_sub = ipchub_msg_sub(m);
		snprintf(p->pub_topic, sizeof(p->pub_topic), "%s", ipchub_msg_topic(m));
		msgpack_unpacked_init(&u);
		if (ipchub_msg_unpack(m, &u) == IPCHUB_OK &&
		    u.data.type == MSGPACK_OBJECT_ARRAY && u.data.via.array.size > 0) {
			/* body_seq(): [seq, pad] */
			if (u.data.via.array.ptr[0].via.u64 != p->next_seq)
				p->seq_ok = false;
			p->next_seq = u.data.via.array.ptr[0].via.u64 + 1;
		}
		msgpack_unpacked_destroy(&u);
		ipchub_msg_free(m);
		return;
	}
	p->msgs++;
	msgpack_unpacked_init(&u);
	if (ipchub_msg_unpack(m, &u) == IPCHUB_OK) {
		if (u.data.type == MSGPACK_OBJECT_POSITIVE_INTEGER) {
			if (u.data.via.u64 != p->last_seq + 1)
				p->seq_ok = false;
			p->last_seq = u.data.via.u64;
		} else if (u.data.type == MSGPACK_OBJECT_STR) {
			size_t n = u.data.via.str.size < 63 ? u.data.via.str.size : 63;
			memcpy(p->last_body, u.data.via.str.ptr, n);
			p->last_body[n] = '\0';
		}
	}
	msgpack_unpacked_destroy(&u);
	ipchub_msg_free(m);
	if (p->free_on_msg) {
		ipchub_async_free(a);
		p->a = NULL;
	}
}

static void on_request(ipchub_async *a, ipchub_msg *m, void *ud)
{
	struct peer *p = ud;
	size_t len;
	const void *body = ipchub_msg_body(m, &len);

	if (p->hold) {
		ipchub_msg_free(p->held);
		p->held = m;
		return;
	}
	assert_int_equal(ipchub_async_reply(a, m, body, len), IPCHUB_OK);
	ipchub_msg_free(m);
}

static void on_error(ipchub_async *a, const struct ipchub_async_error *e,
		     void *ud)
{
	struct peer *p = ud;

	p->errors++;
	p->last_err_code = e->code;
	p->last_err_kind = e->kind;
}

static void on_state(ipchub_async *a, const struct ipchub_async_event *e,
		     void *ud)
{
	struct peer *p = ud;

	switch (e->state) {
	case IPCHUB_ASYNC_CONNECTED:
		p->connected++;
		break;
	case IPCHUB_ASYNC_DISCONNECTED:
		p->disconnected++;
		p->last_disc_code = e->code;
		break;
	case IPCHUB_ASYNC_RECONNECTED:
		p->reconnected++;
		p->restored = e->restored;
		p->n_lost = (int)e->n_lost;
		if (e->n_lost) {
			snprintf(p->lost_name, sizeof(p->lost_name), "%s", e->lost[0].name);
			p->lost_code = e->lost[0].code;
		}
		break;
	case IPCHUB_ASYNC_CLOSED:
		p->closed++;
		break;
	}
}

static void on_drain(ipchub_async *a, void *ud)
{
	((struct peer *)ud)->drains++;
}

static void on_gap(ipchub_async *a, uint64_t sub, uint64_t count, void *ud)
{
	struct peer *p = ud;

	p->gaps++;
	p->gap_sub = sub;
	p->lost += count;
	p->next_seq += count; /* the lost ones were exactly here */
}

static void on_presence(ipchub_async *a, const struct ipchub_async_presence *e,
			void *ud)
{
	struct peer *p = ud;

	p->pres++;
	p->pres_watch = e->watch;
	p->pres_owner = e->owner;
	p->pres_event = e->event;
	p->pres_reason = e->reason;
	snprintf(p->pres_name, sizeof(p->pres_name), "%s", e->name);
}

static const struct ipchub_async_callbacks cbs = {
	.on_message = on_message,
	.on_request = on_request,
	.on_error = on_error,
	.on_state = on_state,
	.on_drain = on_drain,
	.on_gap = on_gap,
	.on_presence = on_presence,
};

static void peer_new(struct peer *p, const struct hub *hub, const char *label,
		     size_t hwm)
{
	struct ipchub_async_opts o = {.socket = hub->path, .hwm = hwm};

	memset(p, 0, sizeof(*p));
	p->label = label;
	p->seq_ok = true;
	assert_int_equal(ipchub_async_new(&o, &cbs, p, &p->a), IPCHUB_OK);
}

static void done_cb(ipchub_async *a, int code, void *ud)
{
	struct done *d = ud;

	d->calls++;
	d->code = code;
}

static void reply_cb(ipchub_async *a, int code, ipchub_msg *m, void *ud)
{
	struct done *d = ud;

	d->calls++;
	d->code = code;
	ipchub_msg_free(d->m);
	d->m = m;
}

typedef bool (*cond_fn)(void *arg);

/* Drive the live handles among ps[0..n) with poll() until cond(arg). */
static void drive(struct peer **ps, int n, cond_fn cond, void *arg)
{
	int64_t deadline = now_ms() + LOOP_LIMIT_MS;

	while (!cond(arg)) {
		struct pollfd pfd[8];
		int timeout = 50;

		if (now_ms() > deadline)
			fail_msg("condition not reached within %d ms", LOOP_LIMIT_MS);
		for (int i = 0; i < n; i++) {
			ipchub_async *a = ps[i]->a;
			int t;

			pfd[i] = (struct pollfd){.fd = -1};
			if (!a)
				continue;
			pfd[i].fd = ipchub_async_fd(a);
			pfd[i].events = POLLIN | (ipchub_async_wants_write(a) ? POLLOUT : 0);
			t = ipchub_async_next_timeout_ms(a);
			if (t >= 0 && t < timeout)
				timeout = t;
		}
		assert_true(poll(pfd, (nfds_t)n, timeout) >= 0);
		for (int i = 0; i < n; i++)
			if (ps[i]->a)
				(void)ipchub_async_process(ps[i]->a,
							   pfd[i].fd >= 0 ? pfd[i].revents : 0);
	}
}

static bool c_int_ge(void *arg)
{
	int **v = arg;

	return *v[0] >= *v[1];
}

/* Wait until *counter >= want. */
static void drive_until(struct peer **ps, int n, int *counter, int want)
{
	int *v[2] = {counter, &want};

	drive(ps, n, c_int_ge, v);
}

static void pack_str(ipchub_pack *p, const char *s)
{
	ipchub_pack_reset(p);
	assert_int_equal(ipchub_pack_str(p, s), IPCHUB_OK);
}

/* ---- basic conversation ---------------------------------------------- */

struct thread_arg {
	ipchub_async *a;
	int rc;
};

static void *other_thread(void *arg)
{
	struct thread_arg *t = arg;

	t->rc = ipchub_async_send(t->a, "beta", NULL, 0, NULL);
	return NULL;
}

static void test_async_conversation(void **state)
{
	struct hub hub;
	struct peer a, b, c;
	struct peer *ps[] = {&a, &b, &c};
	struct done ra = {0}, rb = {0}, rc = {0}, r1 = {0}, r2 = {0};
	ipchub_pack p;
	uint64_t id, req;

	hub_start(&hub, NULL);
	peer_new(&a, &hub, "a", 0);
	peer_new(&b, &hub, "b", 0);
	peer_new(&c, &hub, "c", 0);
	ipchub_pack_init(&p);

	/* Names may be claimed before the handshake has completed. */
	assert_int_equal(ipchub_async_register(a.a, "alpha", done_cb, &ra), IPCHUB_OK);
	assert_int_equal(ipchub_async_register(b.a, "beta", done_cb, &rb), IPCHUB_OK);
	assert_int_equal(ipchub_async_register(c.a, "gamma", done_cb, &rc), IPCHUB_OK);
	assert_int_equal(ipchub_async_register(c.a, "ipchub.x", NULL, NULL), IPCHUB_E_BAD_NAME);
	drive_until(ps, 3, &rc.calls, 1);
	drive_until(ps, 3, &rb.calls, 1);
	drive_until(ps, 3, &ra.calls, 1);
	assert_int_equal(ra.code, IPCHUB_OK);
	assert_int_equal(rb.code, IPCHUB_OK);
	assert_int_equal(a.connected, 1);
	assert_int_equal(ipchub_async_state(a.a), IPCHUB_ASYNC_CONNECTED);

	/* One-way messages arrive in order. */
	for (uint64_t i = 1; i <= 100; i++) {
		ipchub_pack_reset(&p);
		msgpack_pack_uint64(&p.pk, i);
		assert_int_equal(ipchub_async_send(a.a, "beta", p.buf.data, p.buf.size, &id), IPCHUB_OK);
	}
	drive_until(ps, 3, &b.msgs, 100);
	assert_true(b.seq_ok);
	assert_int_equal(b.last_seq, 100);

	/* Bad arguments are refused at once. */
	assert_int_equal(ipchub_async_send(a.a, "bad name", NULL, 0, NULL), IPCHUB_E_BAD_NAME);
	assert_int_equal(ipchub_async_send(a.a, "beta", "\xc1", 1, NULL), IPCHUB_E_BAD_BODY);
	assert_int_equal(ipchub_async_request(a.a, "beta", NULL, 0, 0, reply_cb, &r1, NULL),
			 IPCHUB_E_INVALID);

	/* Request and reply. */
	pack_str(&p, "ping-pong");
	assert_int_equal(ipchub_async_request(a.a, "beta", p.buf.data, p.buf.size, 2000,
					      reply_cb, &r1, &req), IPCHUB_OK);
	drive_until(ps, 3, &r1.calls, 1);
	assert_int_equal(r1.code, IPCHUB_OK);
	assert_non_null(r1.m);
	assert_int_equal(ipchub_msg_kind(r1.m), IPCHUB_KIND_REPLY);
	assert_string_equal(ipchub_msg_from(r1.m), "beta");

	/* The broker's answer for a name nobody holds. */
	assert_int_equal(ipchub_async_request(a.a, "nobody", NULL, 0, 2000, reply_cb, &r2, NULL),
			 IPCHUB_OK);
	drive_until(ps, 3, &r2.calls, 1);
	assert_int_equal(r2.code, IPCHUB_E_NO_SUCH_PEER);
	/* And for a SEND to it: on_error with the send's id. */
	assert_int_equal(ipchub_async_send(a.a, "nobody", NULL, 0, &id), IPCHUB_OK);
	drive_until(ps, 3, &a.errors, 1);
	assert_int_equal(a.last_err_code, IPCHUB_E_NO_SUCH_PEER);
	assert_int_equal(a.last_err_kind, IPCHUB_KIND_SEND);

	ipchub_msg_free(r1.m);
	ipchub_msg_free(r2.m);
	ipchub_pack_destroy(&p);
	ipchub_async_free(a.a);
	ipchub_async_free(b.a);
	ipchub_async_free(c.a);
	hub_stop(&hub);
}

static bool c_held(void *arg) { return ((struct peer *)arg)->held != NULL; }

static void test_async_requests(void **state)
{
	struct hub hub;
	struct peer a, b, c;
	struct peer *ps[] = {&a, &b, &c};
	struct done ra = {0}, rb = {0}, rc = {0}, r3 = {0}, r4 = {0};
	struct thread_arg ta;
	pthread_t th;
	uint64_t req;

	hub_start(&hub, NULL);
	peer_new(&a, &hub, "a", 0);
	peer_new(&b, &hub, "b", 0);
	peer_new(&c, &hub, "c", 0);
	assert_int_equal(ipchub_async_register(a.a, "alpha", done_cb, &ra), IPCHUB_OK);
	assert_int_equal(ipchub_async_register(b.a, "beta", done_cb, &rb), IPCHUB_OK);
	assert_int_equal(ipchub_async_register(c.a, "gamma", done_cb, &rc), IPCHUB_OK);
	drive_until(ps, 3, &rc.calls, 1);
	drive_until(ps, 3, &rb.calls, 1);
	drive_until(ps, 3, &ra.calls, 1);

	/* Cancel: the callback runs before cancel returns; the broker drops
	 * the entry, so the responder's late reply is refused. */
	b.hold = true;
	assert_int_equal(ipchub_async_request(a.a, "beta", NULL, 0, 5000, reply_cb, &r3, &req),
			 IPCHUB_OK);
	drive(ps, 3, c_held, &b);
	assert_int_equal(ipchub_async_cancel(a.a, req), IPCHUB_OK);
	assert_int_equal(r3.calls, 1);
	assert_int_equal(r3.code, IPCHUB_E_CANCELLED);
	assert_int_equal(ipchub_async_cancel(a.a, req), IPCHUB_E_NO_SUCH_REQUEST);
	assert_int_equal(ipchub_async_reply(b.a, b.held, NULL, 0), IPCHUB_OK);
	drive_until(ps, 3, &b.errors, 1);
	assert_int_equal(b.last_err_kind, IPCHUB_KIND_REPLY);
	assert_int_equal(b.last_err_code, IPCHUB_E_NO_SUCH_REQUEST);
	assert_int_equal(r3.calls, 1);
	ipchub_msg_free(b.held);
	b.held = NULL;

	/* The deadline travels: the broker answers TIMEOUT. */
	assert_int_equal(ipchub_async_request(a.a, "beta", NULL, 0, 100, reply_cb, &r4, NULL),
			 IPCHUB_OK);
	drive_until(ps, 3, &r4.calls, 1);
	assert_int_equal(r4.code, IPCHUB_E_TIMEOUT);
	assert_non_null(r4.m); /* the broker's ERROR, not the local timer */
	ipchub_msg_free(r4.m);
	ipchub_msg_free(b.held);
	b.held = NULL;
	b.hold = false;

	/* Another thread is refused clearly. */
	ta.a = a.a;
	assert_int_equal(pthread_create(&th, NULL, other_thread, &ta), 0);
	pthread_join(th, NULL);
	assert_int_equal(ta.rc, IPCHUB_E_WRONG_THREAD);

	/* A handle may free itself inside its own callback. */
	c.free_on_msg = true;
	assert_int_equal(ipchub_async_send(a.a, "gamma", NULL, 0, NULL), IPCHUB_OK);
	drive_until(ps, 3, &c.msgs, 1);
	assert_null(c.a);

	/* Close: BYE after what is queued, then CLOSED. */
	assert_int_equal(ipchub_async_close(a.a), IPCHUB_OK);
	drive_until(ps, 3, &a.closed, 1);
	assert_int_equal(ipchub_async_send(a.a, "beta", NULL, 0, NULL), IPCHUB_E_CLOSED);
	ipchub_async_free(a.a);
	ipchub_async_free(b.a);
	hub_stop(&hub);
}

/* ---- reconnect across a broker restart -------------------------------- */

static bool c_down(void *arg)
{
	struct peer **ps = arg;

	return ps[0]->disconnected >= 1 && ps[1]->disconnected >= 1;
}

static bool c_flushed(void *arg)
{
	return ipchub_async_backlog(((struct peer *)arg)->a) == 0;
}

static void test_async_reconnect(void **state)
{
	struct hub hub;
	struct peer a, b;
	struct peer *ps[] = {&a, &b};
	struct done r1 = {0}, r2 = {0}, r3 = {0}, rq = {0};
	ipchub_pack p;
	ipchub *other;
	ipchub_msg *m = NULL;

	hub_start(&hub, NULL);
	peer_new(&a, &hub, "a", 0);
	peer_new(&b, &hub, "b", 0);
	ipchub_pack_init(&p);
	assert_int_equal(ipchub_async_register(a.a, "alpha", done_cb, &r1), IPCHUB_OK);
	assert_int_equal(ipchub_async_register(a.a, "alpha2", done_cb, &r2), IPCHUB_OK);
	assert_int_equal(ipchub_async_register(b.a, "beta", done_cb, &r3), IPCHUB_OK);
	drive_until(ps, 2, &r1.calls, 1);
	drive_until(ps, 2, &r2.calls, 1);
	drive_until(ps, 2, &r3.calls, 1);

	/* A request written before the broker dies fails; it is never
	 * silently forgotten. */
	b.hold = true;
	assert_int_equal(ipchub_async_request(a.a, "beta", NULL, 0, 5000, reply_cb, &rq, NULL),
			 IPCHUB_OK);
	drive(ps, 2, c_held, &b);

	hub_halt(&hub);
	drive(ps, 2, c_down, ps);
	assert_int_equal(rq.calls, 1);
	assert_true(rq.code != IPCHUB_OK);
	ipchub_msg_free(rq.m);
	assert_int_equal(ipchub_async_state(a.a), IPCHUB_ASYNC_DISCONNECTED);
	/* The application may not answer a request from the lost
	 * connection. */
	assert_int_equal(ipchub_async_reply(b.a, b.held, NULL, 0), IPCHUB_E_CLOSED);
	ipchub_msg_free(b.held);
	b.held = NULL;
	b.hold = false;

	/* Sent during the outage: queued for the next connection. */
	pack_str(&p, "during-outage");
	assert_int_equal(ipchub_async_send(a.a, "beta", p.buf.data, p.buf.size, NULL), IPCHUB_OK);
	assert_true(ipchub_async_backlog(a.a) > 0);

	/* New broker; another process takes alpha2 before a is back (a only
	 * acts inside process(), so this order is certain). */
	hub_resume(&hub, NULL);
	other = hub_client(&hub, "alpha2");

	/* b first, so that beta exists when a's queued message arrives. */
	{
		struct peer *only_b[] = {&b};

		drive_until(only_b, 1, &b.reconnected, 1);
	}
	assert_int_equal(b.restored, 1);
	drive_until(ps, 2, &a.reconnected, 1);
	assert_int_equal(a.disconnected, 1);
	assert_int_equal(a.restored, 1);
	assert_int_equal(a.n_lost, 1);
	assert_string_equal(a.lost_name, "alpha2");
	assert_int_equal(a.lost_code, IPCHUB_E_NAME_TAKEN);
	assert_int_equal(ipchub_async_state(a.a), IPCHUB_ASYNC_CONNECTED);
	drive_until(ps, 2, &b.msgs, 1);
	assert_string_equal(b.last_body, "during-outage");

	/* The restored name routes to a again. */
	pack_str(&p, "after");
	assert_int_equal(ipchub_send(other, "alpha", p.buf.data, p.buf.size, NULL), IPCHUB_OK);
	assert_int_equal(ipchub_flush(other, 2000), IPCHUB_OK);
	drive_until(ps, 2, &a.msgs, 1);
	assert_string_equal(a.last_body, "after");
	/* And alpha2 stayed with the other process. */
	assert_int_equal(ipchub_async_send(b.a, "alpha2", p.buf.data, p.buf.size, NULL), IPCHUB_OK);
	drive(ps, 2, c_flushed, &b);
	assert_int_equal(ipchub_recv(other, 5000, &m), IPCHUB_OK);
	ipchub_msg_free(m);

	ipchub_close(other);
	ipchub_pack_destroy(&p);
	ipchub_async_free(a.a);
	ipchub_async_free(b.a);
	hub_stop(&hub);
}

/* ---- backpressure and drain ------------------------------------------ */

static void test_async_drain(void **state)
{
	const char *args[] = {"--queue-hwm", "65536", NULL};
	const size_t hwm = 256 * 1024;
	struct hub hub;
	struct peer a;
	struct peer *ps[] = {&a};
	ipchub *sink;
	ipchub_pack p;
	char pad[1024];
	uint64_t sent = 0, got = 0;
	int refusals = 0;
	int64_t deadline;

	hub_start(&hub, args);
	sink = hub_client(&hub, "sink");
	peer_new(&a, &hub, "a", hwm);
	drive_until(ps, 1, &a.connected, 1);
	ipchub_pack_init(&p);
	memset(pad, 'x', sizeof(pad));

	/* Phase 1: the sink does not read. Sends are accepted until the
	 * broker, then the sockets, then our high-water mark are full. */
	deadline = now_ms() + LOOP_LIMIT_MS;
	for (;;) {
		int rc;

		ipchub_pack_reset(&p);
		msgpack_pack_array(&p.pk, 2);
		msgpack_pack_uint64(&p.pk, sent + 1);
		msgpack_pack_bin_with_body(&p.pk, pad, sizeof(pad));
		rc = ipchub_async_send(a.a, "sink", p.buf.data, p.buf.size, NULL);
		if (rc == IPCHUB_E_WOULD_BLOCK)
			break;
		assert_int_equal(rc, IPCHUB_OK);
		sent++;
		(void)ipchub_async_process(a.a, POLLOUT);
		if (now_ms() > deadline)
			fail_msg("no backpressure after %llu sends", (unsigned long long)sent);
	}
	refusals++;
	/* Refused means not queued, and the mark holds. */
	assert_true(ipchub_async_backlog(a.a) <= hwm);
	assert_int_equal(a.drains, 0);

	/* Phase 2: the sink reads; drain comes; we send 500 more, waiting for
	 * drain whenever we are refused. */
	deadline = now_ms() + LOOP_LIMIT_MS * 2;
	while (got < sent || sent < 1000) {
		struct pollfd pfd = {.fd = ipchub_async_fd(a.a), .events = POLLIN};
		ipchub_msg *m;

		while (ipchub_recv(sink, 0, &m) == IPCHUB_OK) {
			msgpack_unpacked u;

			msgpack_unpacked_init(&u);
			assert_int_equal(ipchub_msg_unpack(m, &u), IPCHUB_OK);
			assert_int_equal(u.data.via.array.ptr[0].via.u64, got + 1);
			got++;
			msgpack_unpacked_destroy(&u);
			ipchub_msg_free(m);
		}
		if (ipchub_async_wants_write(a.a))
			pfd.events |= POLLOUT;
		(void)poll(&pfd, 1, 1);
		(void)ipchub_async_process(a.a, pfd.revents);
		/* Send again only after each refusal has been drained. */
		while (sent < 1000 && a.drains >= refusals) {
			int rc;

			ipchub_pack_reset(&p);
			msgpack_pack_array(&p.pk, 2);
			msgpack_pack_uint64(&p.pk, sent + 1);
			msgpack_pack_bin_with_body(&p.pk, pad, sizeof(pad));
			rc = ipchub_async_send(a.a, "sink", p.buf.data, p.buf.size, NULL);
			if (rc == IPCHUB_E_WOULD_BLOCK) {
				refusals++;
				break;
			}
			assert_int_equal(rc, IPCHUB_OK);
			sent++;
		}
		if (now_ms() > deadline)
			fail_msg("stalled: sent %llu got %llu drains %d",
				 (unsigned long long)sent, (unsigned long long)got, a.drains);
	}
	assert_true(a.drains >= 1);
	assert_int_equal(got, sent);
	assert_int_equal(a.errors, 0);

	ipchub_close(sink);
	ipchub_pack_destroy(&p);
	ipchub_async_free(a.a);
	hub_stop(&hub);
}

/* ---- libevent --------------------------------------------------------- */

struct ev_test {
	struct event_base *base;
	struct peer *a, *b;
	struct done reg, reply;
	int step;
};

static void ev_reply(ipchub_async *a, int code, ipchub_msg *m, void *ud)
{
	struct ev_test *t = ud;

	reply_cb(a, code, m, &t->reply);
	/* Freeing the handle from its own callback also removes its
	 * events from the base. */
	ipchub_async_free(a);
	t->a->a = NULL;
	event_base_loopbreak(t->base);
}

static void ev_registered(ipchub_async *a, int code, void *ud)
{
	struct ev_test *t = ud;
	ipchub_pack p;

	assert_int_equal(code, IPCHUB_OK);
	ipchub_pack_init(&p);
	assert_int_equal(ipchub_pack_str(&p, "via-libevent"), IPCHUB_OK);
	assert_int_equal(ipchub_async_request(t->a->a, "beta", p.buf.data, p.buf.size, 2000,
					      ev_reply, t, NULL), IPCHUB_OK);
	ipchub_pack_destroy(&p);
}

static void ev_limit(evutil_socket_t fd, short what, void *arg)
{
	fail_msg("libevent test did not finish in time");
}

static void test_async_libevent(void **state)
{
	struct hub hub;
	struct peer a, b;
	struct ev_test t = {0};
	struct event *limit;
	struct timeval tv = {.tv_sec = LOOP_LIMIT_MS / 1000};

	hub_start(&hub, NULL);
	t.base = event_base_new();
	assert_non_null(t.base);
	t.a = &a;
	t.b = &b;
	peer_new(&a, &hub, "a", 0);
	peer_new(&b, &hub, "b", 0);
	assert_int_equal(ipchub_async_attach(a.a, t.base), IPCHUB_OK);
	assert_int_equal(ipchub_async_attach(b.a, t.base), IPCHUB_OK);
	/* Registered through the loop; the request goes out once beta is. */
	assert_int_equal(ipchub_async_register(b.a, "beta", ev_registered, &t), IPCHUB_OK);
	limit = evtimer_new(t.base, ev_limit, NULL);
	evtimer_add(limit, &tv);
	assert_int_equal(event_base_dispatch(t.base), 0);
	assert_int_equal(t.reply.calls, 1);
	assert_int_equal(t.reply.code, IPCHUB_OK);
	assert_non_null(t.reply.m);
	assert_string_equal(ipchub_msg_from(t.reply.m), "beta");
	assert_null(a.a);
	ipchub_msg_free(t.reply.m);
	ipchub_async_free(b.a);
	event_free(limit);
	event_base_free(t.base);
	hub_stop(&hub);
}

/* ---- publish / subscribe and presence --------------------------------- */

static bool c_pubs_accounted(void *arg)
{
	struct peer *p = arg;

	return (uint64_t)p->pubs + p->lost >= p->next_seq && p->next_seq >= 2000;
}

static void test_async_pubsub_gap(void **state)
{
	enum { NMSG = 2000, PAD = 1000 };
	const char *args[] = {"--queue-hwm", "65536", NULL};
	struct hub hub;
	struct peer s, pb;
	struct peer *both[] = {&s, &pb}, *only_pub[] = {&pb};
	struct done d1 = {0}, d2 = {0}, du = {0};
	uint64_t sub, mark;
	ipchub_pack p;
	int seq = 0;

	hub_start(&hub, args);
	peer_new(&s, &hub, "s", 0);
	peer_new(&pb, &hub, "pb", 0);
	ipchub_pack_init(&p);
	assert_int_equal(ipchub_async_subscribe(s.a, "load", 7, NULL, NULL, NULL),
			 IPCHUB_E_INVALID);
	assert_int_equal(ipchub_async_subscribe(s.a, "", 0, NULL, NULL, NULL),
			 IPCHUB_E_BAD_NAME);
	assert_int_equal(ipchub_async_subscribe(s.a, "load", IPCHUB_POLICY_DROP_OLDEST,
						done_cb, &d1, &sub), IPCHUB_OK);
	assert_int_equal(ipchub_async_subscribe(s.a, "mark.*", IPCHUB_POLICY_DROP_NEWEST,
						done_cb, &d2, &mark), IPCHUB_OK);
	assert_true(sub != mark);
	drive_until(both, 2, &d2.calls, 1);
	assert_int_equal(d1.code, IPCHUB_OK);
	assert_int_equal(d2.code, IPCHUB_OK);
	/* A malformed pattern is the broker's to refuse. */
	d1 = (struct done){0};
	assert_int_equal(ipchub_async_subscribe(s.a, "a.>.b", 0, done_cb, &d1, NULL),
			 IPCHUB_OK);
	drive_until(both, 2, &d1.calls, 1);
	assert_int_equal(d1.code, IPCHUB_E_BAD_NAME);
	assert_int_equal(ipchub_async_publish(pb.a, "ipchub.x", NULL, 0), IPCHUB_E_BAD_NAME);

	/* The subscriber is not driven while 2 MB are published: its broker
	 * queue overflows, and what it loses is told where it was lost. The
	 * publisher meets backpressure from its own backlog only. */
	while (seq < NMSG) {
		int rc;

		body_seq(&p, (uint64_t)seq, PAD);
		rc = ipchub_async_publish(pb.a, "load", p.buf.data, p.buf.size);
		if (rc == IPCHUB_E_WOULD_BLOCK) {
			drive_until(only_pub, 1, &pb.drains, pb.drains + 1);
			continue;
		}
		assert_int_equal(rc, IPCHUB_OK);
		seq++;
	}
	drive(only_pub, 1, c_flushed, &pb);
	drive(both, 2, c_pubs_accounted, &s);
	assert_true(s.seq_ok);
	assert_int_equal(s.pub_sub, sub);
	assert_string_equal(s.pub_topic, "load");
	assert_true(s.gaps > 0);
	assert_int_equal(s.gap_sub, sub);
	assert_int_equal((uint64_t)s.pubs + s.lost, NMSG);

	/* After the unsubscription's OK nothing more arrives for it: a
	 * publication on it followed by one on the other subscription
	 * brings only the second. */
	assert_int_equal(ipchub_async_unsubscribe(s.a, sub, done_cb, &du), IPCHUB_OK);
	assert_int_equal(ipchub_async_unsubscribe(s.a, sub, NULL, NULL),
			 IPCHUB_E_NO_SUCH_REQUEST);
	drive_until(both, 2, &du.calls, 1);
	assert_int_equal(du.code, IPCHUB_OK);
	assert_int_equal(ipchub_async_unsubscribe(s.a, sub, NULL, NULL),
			 IPCHUB_E_NO_SUCH_REQUEST);
	{
		int before = s.pubs;

		body_seq(&p, (uint64_t)NMSG, 0);
		assert_int_equal(ipchub_async_publish(pb.a, "load", p.buf.data, p.buf.size),
				 IPCHUB_OK);
		assert_int_equal(ipchub_async_publish(pb.a, "mark.end", p.buf.data, p.buf.size),
				 IPCHUB_OK);
		drive_until(both, 2, &s.pubs, before + 1);
		assert_int_equal(s.pub_sub, mark);
		assert_string_equal(s.pub_topic, "mark.end");
	}
	assert_int_equal(pb.errors, 0);

	ipchub_pack_destroy(&p);
	ipchub_async_free(s.a);
	ipchub_async_free(pb.a);
	hub_stop(&hub);
}

static void test_async_watch(void **state)
{
	struct hub hub;
	struct peer w, o;
	struct peer *ps[] = {&w, &o};
	struct done dw = {0}, dr = {0}, du = {0}, dx = {0};
	uint64_t watch;

	hub_start(&hub, NULL);
	peer_new(&w, &hub, "w", 0);
	peer_new(&o, &hub, "o", 0);
	assert_int_equal(ipchub_async_watch(w.a, "ipchub.stats", NULL, NULL, NULL),
			 IPCHUB_E_BAD_NAME);
	assert_int_equal(ipchub_async_watch(w.a, "svc.db", done_cb, &dw, &watch), IPCHUB_OK);
	drive_until(ps, 2, &w.pres, 1);
	assert_int_equal(dw.calls, 1); /* before the first event */
	assert_int_equal(dw.code, IPCHUB_OK);
	assert_int_equal(w.pres_watch, watch);
	assert_string_equal(w.pres_name, "svc.db");
	assert_int_equal(w.pres_event, IPCHUB_PRESENCE_UNOWNED);
	assert_int_equal(w.pres_owner, 0);

	assert_int_equal(ipchub_async_register(o.a, "svc.db", done_cb, &dr), IPCHUB_OK);
	drive_until(ps, 2, &w.pres, 2);
	assert_int_equal(w.pres_event, IPCHUB_PRESENCE_REGISTERED);
	assert_int_equal(w.pres_owner, ipchub_async_conn_id(o.a));
	assert_int_equal(w.pres_watch, watch);

	assert_int_equal(ipchub_async_unregister(o.a, "svc.db", NULL, NULL), IPCHUB_OK);
	drive_until(ps, 2, &w.pres, 3);
	assert_int_equal(w.pres_event, IPCHUB_PRESENCE_RELEASED);
	assert_int_equal(w.pres_reason, IPCHUB_REASON_UNREGISTER);
	assert_int_equal(w.pres_owner, ipchub_async_conn_id(o.a));

	assert_int_equal(ipchub_async_unwatch(w.a, watch, done_cb, &du), IPCHUB_OK);
	drive_until(ps, 2, &du.calls, 1);
	assert_int_equal(du.code, IPCHUB_OK);
	assert_int_equal(ipchub_async_unwatch(w.a, watch, NULL, NULL),
			 IPCHUB_E_NO_SUCH_REQUEST);
	/* No more events: a registration now is seen by nobody, which the
	 * answer to a later registration (ordered after it) proves. */
	assert_int_equal(ipchub_async_register(o.a, "svc.db", done_cb, &dx), IPCHUB_OK);
	drive_until(ps, 2, &dx.calls, 1);
	assert_int_equal(dx.code, IPCHUB_OK);
	assert_int_equal(w.pres, 3);

	ipchub_async_free(w.a);
	ipchub_async_free(o.a);
	hub_stop(&hub);
}

static void test_async_restore_subscriptions(void **state)
{
	struct hub hub;
	struct peer s;
	struct peer *ps[] = {&s};
	struct done d1 = {0}, d2 = {0}, d3 = {0}, du = {0}, dv = {0};
	uint64_t sub, gone, watch;
	ipchub *other;
	ipchub_pack p;

	hub_start(&hub, NULL);
	peer_new(&s, &hub, "s", 0);
	ipchub_pack_init(&p);
	assert_int_equal(ipchub_async_subscribe(s.a, "news.>", 0, done_cb, &d1, &sub),
			 IPCHUB_OK);
	assert_int_equal(ipchub_async_subscribe(s.a, "gone.>", 0, done_cb, &d2, &gone),
			 IPCHUB_OK);
	assert_int_equal(ipchub_async_watch(s.a, "svc.x", done_cb, &d3, &watch), IPCHUB_OK);
	drive_until(ps, 1, &s.pres, 1);
	assert_int_equal(d1.code, IPCHUB_OK);
	assert_int_equal(d2.code, IPCHUB_OK);
	assert_int_equal(s.pres_event, IPCHUB_PRESENCE_UNOWNED);

	hub_halt(&hub);
	drive_until(ps, 1, &s.disconnected, 1);
	/* Ended during the outage: not restored, and the end is confirmed
	 * once the broker is back. */
	assert_int_equal(ipchub_async_unsubscribe(s.a, gone, done_cb, &du), IPCHUB_OK);

	/* The watched name gets an owner before s is back (s only acts
	 * inside process(), so this order is certain). */
	hub_resume(&hub, NULL);
	other = hub_client(&hub, "svc.x");
	drive_until(ps, 1, &s.reconnected, 1);
	assert_int_equal(s.restored, 2);
	assert_int_equal(s.n_lost, 0);
	drive_until(ps, 1, &du.calls, 1);
	assert_int_equal(du.code, IPCHUB_OK);
	assert_int_equal(ipchub_async_unsubscribe(s.a, gone, NULL, NULL),
			 IPCHUB_E_NO_SUCH_REQUEST);
	/* The restored watch's first answer: the current owner, under the
	 * id the application got. */
	drive_until(ps, 1, &s.pres, 2);
	assert_int_equal(s.pres_watch, watch);
	assert_int_equal(s.pres_event, IPCHUB_PRESENCE_OWNED);
	assert_int_equal(s.pres_owner, ipchub_conn_id(other));

	/* A publication after the restart arrives with the original id. */
	body_seq(&p, 0, 8);
	assert_int_equal(ipchub_publish(other, "gone.a", p.buf.data, p.buf.size), IPCHUB_OK);
	assert_int_equal(ipchub_publish(other, "news.a", p.buf.data, p.buf.size), IPCHUB_OK);
	assert_int_equal(ipchub_flush(other, 2000), IPCHUB_OK);
	drive_until(ps, 1, &s.pubs, 1);
	assert_int_equal(s.pub_sub, sub);
	assert_string_equal(s.pub_topic, "news.a");

	ipchub_close(other);
	drive_until(ps, 1, &s.pres, 3);
	assert_int_equal(s.pres_watch, watch);
	assert_int_equal(s.pres_event, IPCHUB_PRESENCE_RELEASED);
	assert_int_equal(s.pres_reason, IPCHUB_REASON_DISCONNECT);

	/* Ending the restored subscription uses the broker's new id. */
	assert_int_equal(ipchub_async_unsubscribe(s.a, sub, done_cb, &dv), IPCHUB_OK);
	drive_until(ps, 1, &dv.calls, 1);
	assert_int_equal(dv.code, IPCHUB_OK);
	assert_int_equal(s.pubs, 1);

	ipchub_pack_destroy(&p);
	ipchub_async_free(s.a);
	hub_stop(&hub);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_async_conversation),
		cmocka_unit_test(test_async_requests),
		cmocka_unit_test(test_async_reconnect),
		cmocka_unit_test(test_async_drain),
		cmocka_unit_test(test_async_libevent),
		cmocka_unit_test(test_async_pubsub_gap),
		cmocka_unit_test(test_async_watch),
		cmocka_unit_test(test_async_restore_subscriptions),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
