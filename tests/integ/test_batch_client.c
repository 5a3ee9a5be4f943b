/*
 * test_batch_client.c - batched SENDs (PROTOCOL.md 6.3.1) end to end:
 * libipchub's blocking and event APIs against a real ipchubd.
 *
 * What the application must see is unchanged by batching: every message
 * arrives once, in order, with the id its sender got and its own body;
 * every message that cannot be delivered is reported with its own id.
 * The tests also check, through `ipchub.stats` (`batches_routed`), that
 * batches did travel where they should (consecutive sends to one name)
 * and not where they must not (frames kept across a reconnection), that a
 * receiver which did not announce BATCH (a raw socket) still gets single
 * SENDs, and that `ipchub monitor` shows a tapped batch with its count.
 * Loops are bounded in time only so that a broken build fails instead of
 * hanging; nothing here measures speed.
 */
#include <poll.h>
#include <signal.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "frame.h"
#include "harness.h"
#include "limits.h"
#include "mpr.h"

#define N_MANY 100000
#define LOOP_LIMIT_MS 60000

static int64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Message i's body: [i, bin pad] with a pad that varies, so batches mix
 * sizes, and every 997th over IPCHUB_CLIENT_BATCH_BODY_MAX (its own
 * frame, between batches). */
static size_t pad_of(uint64_t i)
{
	if (i % 997 == 500)
		return IPCHUB_CLIENT_BATCH_BODY_MAX + 100;
	return (size_t)(i * 7 % 97);
}

/* Check a received message against message i of the stream starting at
 * id0. */
static bool body_is(const ipchub_msg *m, uint64_t i, uint64_t id0)
{
	msgpack_unpacked u;
	bool ok;

	if (ipchub_msg_id(m) != id0 + i)
		return false;
	msgpack_unpacked_init(&u);
	ok = ipchub_msg_unpack(m, &u) == IPCHUB_OK &&
	     u.data.type == MSGPACK_OBJECT_ARRAY && u.data.via.array.size == 2 &&
	     u.data.via.array.ptr[0].type == MSGPACK_OBJECT_POSITIVE_INTEGER &&
	     u.data.via.array.ptr[0].via.u64 == i &&
	     u.data.via.array.ptr[1].type == MSGPACK_OBJECT_BIN &&
	     u.data.via.array.ptr[1].via.bin.size == pad_of(i);
	msgpack_unpacked_destroy(&u);
	return ok;
}


/* ---- blocking API ----------------------------------------------------- */

struct rx {
	ipchub *h;
	uint64_t n, id0;
	uint64_t got;
	bool ok;
	int rc;
};

static void *rx_thread(void *arg)
{
	struct rx *r = arg;

	r->ok = true;
	while (r->got < r->n) {
		ipchub_msg *m;

		r->rc = ipchub_recv(r->h, 20000, &m);
		if (r->rc)
			return NULL;
		if (ipchub_msg_kind(m) != IPCHUB_KIND_SEND ||
		    strcmp(ipchub_msg_from(m), "tx") != 0 ||
		    !body_is(m, r->got, r->id0))
			r->ok = false;
		ipchub_msg_free(m);
		r->got++;
	}
	return NULL;
}

static void test_blocking_many(void **state)
{
	struct hub hub;
	ipchub *tx, *rx;
	ipchub_pack p;
	struct rx r = {0};
	pthread_t t;
	uint64_t id, id0 = 0, batches, routed;

	(void)state;
	hub_start(&hub, NULL);
	rx = hub_client(&hub, "rx");
	tx = hub_client(&hub, "tx");
	ipchub_pack_init(&p);
	/* The receiver learns id0 from the first send: ids come from a
	 * per-handle counter, so it is the next one. */
	body_seq(&p, 0, pad_of(0));
	assert_int_equal(ipchub_send(tx, "rx", p.buf.data, p.buf.size, &id0),
			 IPCHUB_OK);
	r.h = rx;
	r.n = N_MANY;
	r.id0 = id0;
	assert_int_equal(pthread_create(&t, NULL, rx_thread, &r), 0);
	for (uint64_t i = 1; i < N_MANY; i++) {
		body_seq(&p, i, pad_of(i));
		assert_int_equal(ipchub_send(tx, "rx", p.buf.data, p.buf.size,
					     &id), IPCHUB_OK);
		/* One id per message, consecutive, batched or not. */
		assert_int_equal(id, id0 + i);
	}
	assert_int_equal(ipchub_flush(tx, 20000), IPCHUB_OK);
	assert_int_equal(pthread_join(t, NULL), 0);
	assert_int_equal(r.rc, IPCHUB_OK);
	assert_int_equal(r.got, N_MANY);
	assert_true(r.ok);

	/* They did travel in batches (how many depends on timing). */
	routed = hub_stat_u64(tx, "messages_routed");
	batches = hub_stat_u64(tx, "batches_routed");
	assert_true(routed >= N_MANY);
	assert_true(batches > 0);
	assert_true(batches < N_MANY / 2);

	ipchub_pack_destroy(&p);
	ipchub_close(tx);
	ipchub_close(rx);
	assert_int_equal(hub_stop(&hub), 0);
}

/* A batch to a name nobody owns: one error per message id, in order. */
static void test_blocking_errors_per_id(void **state)
{
	struct hub hub;
	ipchub *tx;
	ipchub_pack p;
	ipchub_msg *m;
	uint64_t id0 = 0, id;
	const int n = 300;

	(void)state;
	hub_start(&hub, NULL);
	tx = hub_client(&hub, "tx");
	ipchub_pack_init(&p);
	for (int i = 0; i < n; i++) {
		body_seq(&p, (uint64_t)i, 8);
		assert_int_equal(ipchub_send(tx, "nobody", p.buf.data,
					     p.buf.size, i ? &id : &id0),
				 IPCHUB_OK);
	}
	/* Answered in order: once the PONG is here, so are the errors. */
	assert_int_equal(ipchub_ping(tx, 5000, NULL), IPCHUB_OK);
	for (int i = 0; i < n; i++) {
		assert_int_equal(ipchub_recv(tx, 0, &m), IPCHUB_OK);
		assert_int_equal(ipchub_msg_error(m), IPCHUB_E_NO_SUCH_PEER);
		assert_int_equal(ipchub_msg_id(m), id0 + (uint64_t)i);
		assert_string_equal(ipchub_msg_to(m), "nobody");
		ipchub_msg_free(m);
	}
	assert_int_equal(ipchub_recv(tx, 0, &m), IPCHUB_E_TIMEOUT);
	ipchub_pack_destroy(&p);
	ipchub_close(tx);
	assert_int_equal(hub_stop(&hub), 0);
}

/* A receiver that did not announce BATCH (a raw socket) gets each
 * message as its own SEND, with its own id and body. */
static void test_old_style_receiver(void **state)
{
	struct hub hub;
	ipchub *tx;
	ipchub_pack p;
	struct frame_hdr h;
	uint8_t out[FRAME_ENC_MAX];
	uint8_t *in = malloc(IPCHUB_MAX_FRAME_MIN);
	uint64_t id0 = 0, id;
	const uint64_t n = 2000;
	int fd;
	size_t k;

	(void)state;
	assert_non_null(in);
	hub_start(&hub, NULL);
	fd = raw_connect(&hub);
	raw_hello(fd);
	frame_init(&h, WIRE_REGISTER);
	h.id = 1;
	h.has |= FH(WK_ID);
	frame_set_str(&h, WK_NAME, "old", 3);
	k = frame_encode(&h, 0, out, sizeof(out));
	raw_write_all(fd, out, k);
	assert_true(raw_read_frame(fd, in, IPCHUB_MAX_FRAME_MIN, 5000) > 0);

	tx = hub_client(&hub, "tx");
	ipchub_pack_init(&p);
	for (uint64_t i = 0; i < n; i++) {
		body_seq(&p, i, (size_t)(i % 50));
		assert_int_equal(ipchub_send(tx, "old", p.buf.data, p.buf.size,
					     i ? &id : &id0), IPCHUB_OK);
	}
	assert_int_equal(ipchub_flush(tx, 5000), IPCHUB_OK);
	for (uint64_t i = 0; i < n; i++) {
		ssize_t len = raw_read_frame(fd, in, IPCHUB_MAX_FRAME_MIN, 5000);
		struct iovec iov;
		struct mpr r;
		bool has_body;
		ipchub_pack want;

		assert_true(len > 0);
		mpr_init_buf(&r, &iov, in, (size_t)len);
		assert_int_equal(frame_decode(&r, FRAME_B2C, &h, &has_body,
					      NULL), WIRE_E_OK);
		assert_int_equal(h.kind, WIRE_SEND);
		assert_int_equal(h.flags & WF_BATCH, 0);
		assert_int_equal(h.id, id0 + i);
		assert_string_equal(h.from, "tx");
		assert_true(has_body);
		ipchub_pack_init(&want);
		body_seq(&want, i, (size_t)(i % 50));
		assert_int_equal(mpr_left(&r), want.buf.size);
		assert_memory_equal(in + (len - (ssize_t)want.buf.size),
				    want.buf.data, want.buf.size);
		ipchub_pack_destroy(&want);
	}
	assert_true(hub_stat_u64(tx, "batches_routed") > 0);
	ipchub_pack_destroy(&p);
	ipchub_close(tx);
	close(fd);
	free(in);
	assert_int_equal(hub_stop(&hub), 0);
}

/* ---- event API -------------------------------------------------------- */

struct apeer {
	ipchub_async *a;
	uint64_t id0, got, errors, next_err;
	bool ok;
	int connected, disconnected, reconnected;
};

static void a_on_message(ipchub_async *a, ipchub_msg *m, void *ud)
{
	struct apeer *p = ud;

	(void)a;
	if (!body_is(m, p->got, p->id0))
		p->ok = false;
	p->got++;
	ipchub_msg_free(m);
}

static void a_on_error(ipchub_async *a, const struct ipchub_async_error *e,
		       void *ud)
{
	struct apeer *p = ud;

	(void)a;
	if (e->code != IPCHUB_E_NO_SUCH_PEER || e->kind != IPCHUB_KIND_SEND ||
	    e->id != p->next_err || !e->to || strcmp(e->to, "nobody") != 0)
		p->ok = false;
	p->next_err++;
	p->errors++;
}

static void a_on_state(ipchub_async *a, const struct ipchub_async_event *e,
		       void *ud)
{
	struct apeer *p = ud;

	(void)a;
	if (e->state == IPCHUB_ASYNC_CONNECTED)
		p->connected++;
	else if (e->state == IPCHUB_ASYNC_DISCONNECTED)
		p->disconnected++;
	else if (e->state == IPCHUB_ASYNC_RECONNECTED)
		p->reconnected++;
}

static const struct ipchub_async_callbacks a_cbs = {
	.on_message = a_on_message,
	.on_error = a_on_error,
	.on_state = a_on_state,
};

static void apeer_new(struct apeer *p, const struct hub *hub)
{
	struct ipchub_async_opts o = {.socket = hub->path};

	memset(p, 0, sizeof(*p));
	p->ok = true;
	assert_int_equal(ipchub_async_new(&o, &a_cbs, p, &p->a), IPCHUB_OK);
}

/* One poll() round over the handles. */
static void spin(struct apeer **ps, int n, int max_ms)
{
	struct pollfd pfd[4];
	int timeout = max_ms;

	for (int i = 0; i < n; i++) {
		int t = ipchub_async_next_timeout_ms(ps[i]->a);

		pfd[i].fd = ipchub_async_fd(ps[i]->a);
		pfd[i].events = POLLIN |
				(ipchub_async_wants_write(ps[i]->a) ? POLLOUT : 0);
		pfd[i].revents = 0;
		if (t >= 0 && t < timeout)
			timeout = t;
	}
	assert_true(poll(pfd, (nfds_t)n, timeout) >= 0);
	for (int i = 0; i < n; i++)
		(void)ipchub_async_process(ps[i]->a,
					   pfd[i].fd >= 0 ? pfd[i].revents : 0);
}

static void spin_until(struct apeer **ps, int n, const uint64_t *v,
		       uint64_t want)
{
	int64_t deadline = mono_ms() + LOOP_LIMIT_MS;

	while (*v < want) {
		if (mono_ms() > deadline)
			fail_msg("condition not reached within %d ms",
				 LOOP_LIMIT_MS);
		spin(ps, n, 50);
	}
}

static void done_cb(ipchub_async *a, int code, void *ud)
{
	(void)a;
	*(int *)ud = code + 1000;
}

static void async_register(struct apeer **ps, int n, struct apeer *p,
			   const char *name)
{
	int done = 0;
	int64_t deadline = mono_ms() + LOOP_LIMIT_MS;

	assert_int_equal(ipchub_async_register(p->a, name, done_cb, &done),
			 IPCHUB_OK);
	while (!done) {
		assert_true(mono_ms() < deadline);
		spin(ps, n, 50);
	}
	assert_int_equal(done, 1000);
}

static void test_async_many(void **state)
{
	struct hub hub;
	struct apeer tx, rx;
	struct apeer *ps[] = {&tx, &rx};
	ipchub_pack p;
	uint64_t i = 0, id;
	int64_t deadline;
	ipchub *obs;

	(void)state;
	hub_start(&hub, NULL);
	apeer_new(&tx, &hub);
	apeer_new(&rx, &hub);
	async_register(ps, 2, &rx, "arx");
	async_register(ps, 2, &tx, "atx");
	ipchub_pack_init(&p);
	deadline = mono_ms() + LOOP_LIMIT_MS;
	while (i < N_MANY) {
		int rc;

		body_seq(&p, i, pad_of(i));
		rc = ipchub_async_send(tx.a, "arx", p.buf.data, p.buf.size, &id);
		if (rc == IPCHUB_E_WOULD_BLOCK) {
			assert_true(mono_ms() < deadline);
			spin(ps, 2, 50);
			continue;
		}
		assert_int_equal(rc, IPCHUB_OK);
		if (i == 0)
			rx.id0 = id;
		assert_int_equal(id, rx.id0 + i);
		i++;
		/* Let the loop run now and then, as an application would. */
		if (i % 5000 == 0)
			spin(ps, 2, 0);
	}
	spin_until(ps, 2, &rx.got, N_MANY);
	assert_true(rx.ok);
	assert_int_equal(rx.got, N_MANY);

	obs = hub_client(&hub, NULL);
	assert_true(hub_stat_u64(obs, "batches_routed") > 0);

	/* Errors: one per id, in order, through on_error. */
	for (int k = 0; k < 200; k++) {
		body_seq(&p, (uint64_t)k, 4);
		assert_int_equal(ipchub_async_send(tx.a, "nobody", p.buf.data,
						   p.buf.size, &id), IPCHUB_OK);
		if (k == 0)
			tx.next_err = id;
	}
	spin_until(ps, 2, &tx.errors, 200);
	assert_true(tx.ok);

	ipchub_close(obs);
	ipchub_pack_destroy(&p);
	ipchub_async_free(tx.a);
	ipchub_async_free(rx.a);
	assert_int_equal(hub_stop(&hub), 0);
}

/* Sends batched in the outbound buffer but never written when the broker
 * goes away are kept for the next connection as single SENDs (the next
 * broker need not take batches), and arrive with their ids. */
static void test_async_reconnect_splits(void **state)
{
	struct hub hub;
	struct apeer tx;
	struct apeer *ps[] = {&tx};
	ipchub_pack p;
	ipchub *rx;
	uint64_t id, id0 = 0;
	const uint64_t n = 500;
	int64_t deadline;

	(void)state;
	hub_start(&hub, NULL);
	apeer_new(&tx, &hub);
	async_register(ps, 1, &tx, "atx");
	ipchub_pack_init(&p);
	/* Queued, not written: the handle writes only inside process(). */
	for (uint64_t i = 0; i < n; i++) {
		body_seq(&p, i, pad_of(i));
		assert_int_equal(ipchub_async_send(tx.a, "rx", p.buf.data,
						   p.buf.size, &id), IPCHUB_OK);
		if (i == 0)
			id0 = id;
		assert_int_equal(id, id0 + i);
	}
	hub_halt(&hub);
	deadline = mono_ms() + LOOP_LIMIT_MS;
	while (!tx.disconnected) {
		assert_true(mono_ms() < deadline);
		spin(ps, 1, 50);
	}
	hub_resume(&hub, NULL);
	rx = hub_client(&hub, "rx"); /* before tx is back: tx acts only in process() */
	while (!tx.reconnected || ipchub_async_backlog(tx.a) > 0) {
		assert_true(mono_ms() < deadline);
		spin(ps, 1, 50);
	}
	for (uint64_t i = 0; i < n; i++) {
		ipchub_msg *m;

		assert_int_equal(ipchub_recv(rx, 10000, &m), IPCHUB_OK);
		assert_true(body_is(m, i, id0));
		ipchub_msg_free(m);
	}
	/* The new broker saw them one by one. */
	assert_int_equal(hub_stat_u64(rx, "batches_routed"), 0);
	assert_true(hub_stat_u64(rx, "messages_routed") >= n);
	ipchub_close(rx);
	ipchub_pack_destroy(&p);
	ipchub_async_free(tx.a);
	assert_int_equal(hub_stop(&hub), 0);
}

/* ---- the CLI ---------------------------------------------------------- */

/* `ipchub monitor` prints a tapped batch as one line with its count. */
static void test_monitor_shows_batch(void **state)
{
	struct hub hub;
	ipchub *tx, *rx;
	ipchub_pack p;
	char out[512], cmd[1024];
	FILE *f;
	pid_t pid;
	int64_t deadline;
	bool seen = false;
	char *line = NULL;
	size_t cap = 0;

	(void)state;
	hub_start(&hub, NULL);
	snprintf(out, sizeof(out), "%s/mon.out", hub.dir);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		FILE *o = freopen(out, "w", stdout);

		(void)o;
		execl(IPCHUB_CLI_PATH, "ipchub", "--socket", hub.path,
		      "monitor", "--filter", "kind=SEND", (char *)NULL);
		_exit(127);
	}
	rx = hub_client(&hub, "mrx");
	tx = hub_client(&hub, "mtx");
	/* Until the monitor is tapping, send one probe at a time. */
	ipchub_pack_init(&p);
	deadline = mono_ms() + LOOP_LIMIT_MS;
	for (;;) {
		FILE *g = fopen(out, "r");
		long sz = 0;

		if (g) {
			fseek(g, 0, SEEK_END);
			sz = ftell(g);
			fclose(g);
		}
		if (sz > 0)
			break;
		assert_true(mono_ms() < deadline);
		body_seq(&p, 0, 0);
		assert_int_equal(ipchub_send(tx, "mrx", p.buf.data, p.buf.size,
					     NULL), IPCHUB_OK);
		assert_int_equal(ipchub_flush(tx, 5000), IPCHUB_OK);
		usleep(50 * 1000);
	}
	/* Ten messages queued together: one batch. */
	for (int i = 0; i < 10; i++) {
		body_seq(&p, (uint64_t)i, 3);
		assert_int_equal(ipchub_send(tx, "mrx", p.buf.data, p.buf.size,
					     NULL), IPCHUB_OK);
	}
	assert_int_equal(ipchub_flush(tx, 5000), IPCHUB_OK);
	while (!seen) {
		assert_true(mono_ms() < deadline);
		usleep(50 * 1000);
		f = fopen(out, "r");
		assert_non_null(f);
		while (getline(&line, &cap, f) > 0)
			if (strstr(line, "\"batch\": 10") ||
			    strstr(line, "\"batch\":10"))
				seen = true;
		fclose(f);
	}
	free(line);
	snprintf(cmd, sizeof(cmd), "grep -c '\"flags\"' %s >/dev/null", out);
	assert_int_equal(system(cmd), 0);
	kill(pid, SIGTERM);
	waitpid(pid, NULL, 0);
	ipchub_pack_destroy(&p);
	ipchub_close(tx);
	ipchub_close(rx);
	assert_int_equal(hub_stop(&hub), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_blocking_many),
		cmocka_unit_test(test_blocking_errors_per_id),
		cmocka_unit_test(test_old_style_receiver),
		cmocka_unit_test(test_async_many),
		cmocka_unit_test(test_async_reconnect_splits),
		cmocka_unit_test(test_monitor_shows_batch),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
