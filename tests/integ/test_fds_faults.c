/*
 * test_fds_faults.c - fault tests of descriptor passing (PROTOCOL.md 6.8,
 * issue 12): the quotas under a flood, senders that die, receivers out
 * of descriptors.
 *
 * Model: a real ipchubd per test. The flooding sender is a raw socket
 * (it sets NOWAIT, which libipchub does not expose, and it must see each
 * ERROR with its id); receivers and observers are libipchub handles. A
 * frame's fate is accounted for by id: each of the 10,000 ids is either
 * delivered (the receiver reads it, with a descriptor for the pipe that
 * was sent) or answered with a typed ERROR carrying that id - exactly
 * once, never both, never neither. Leaks are proven three ways: the
 * broker's /proc/<pid>/fd count returns to its value before the clients
 * came, the test's own count returns to its start, and the read end of
 * the pipe whose write end travelled sees EOF once the test closes its
 * own write end (so no copy survives in the broker, in a socket queue or
 * in a dead process). Every wait polls for a state with a generous
 * deadline (WAIT_MS), never a fixed sleep, so a loaded machine only
 * makes the tests slower.
 *
 * RLIMIT_NOFILE: the test raises its soft limit to the hard one (a
 * draining receiver installs the few hundred descriptors the kernel
 * queued towards it); the broker inherits it.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "frame.h"
#include "harness.h"
#include "limits.h"

#define WAIT_MS 30000
#define MANY 10000
#define QUOTA 64 /* --max-fds-per-conn of the flood and kill tests */
#define QUOTA_ARG "64"
#define PING_ID (MANY + 1)

static const uint8_t nil_body[] = { 0xc0 };

static void raise_nofile(void)
{
	struct rlimit rl;

	assert_int_equal(getrlimit(RLIMIT_NOFILE, &rl), 0);
	rl.rlim_cur = rl.rlim_max;
	assert_int_equal(setrlimit(RLIMIT_NOFILE, &rl), 0);
}

/* A process's fd count reaches want (the broker closes as it reads). */
static void expect_fds(pid_t pid, int want)
{
	int64_t end = now_ms() + WAIT_MS;
	int n;

	while ((n = pid_fd_count(pid)) != want && now_ms() < end)
		usleep(2000);
	assert_int_equal(n, want);
}

/* An ipchub.stats counter reaches want (or, with at_least, passes it). */
static uint64_t expect_stat(ipchub *h, const char *key, uint64_t want,
			    bool at_least)
{
	int64_t end = now_ms() + WAIT_MS;
	uint64_t n;

	while (n = hub_stat_u64(h, key), (at_least ? n < want : n != want) &&
					       now_ms() < end)
		usleep(2000);
	if (at_least)
		assert_true(n >= want);
	else
		assert_int_equal(n, want);
	return n;
}

/* Close our write end of the pipe p and check that the read end sees EOF:
 * no other copy of the write end is open anywhere. */
static void expect_pipe_closed(int p[2])
{
	struct pollfd pf = { .fd = p[0], .events = POLLIN };
	char c;

	close(p[1]);
	assert_int_equal(poll(&pf, 1, WAIT_MS), 1);
	assert_int_equal(read(p[0], &c, 1), 0);
	close(p[0]);
}

/* Whether fd is (a copy of) the open file behind ref. */
static bool same_file(int fd, int ref)
{
	struct stat a, b;

	return fstat(fd, &a) == 0 && fstat(ref, &b) == 0 &&
	       a.st_dev == b.st_dev && a.st_ino == b.st_ino;
}

/* One test's broker, its receiver ("rx", or none), an observer "ff.obs"
 * (stats, markers) and the pipe whose write end travels. */
struct ff {
	struct hub hub;
	int hbase, base; /* the broker's and our fd counts before */
	ipchub *rx, *obs;
	int p[2];
};

static void ff_start(struct ff *t, const char *const *args, const char *rx)
{
	raise_nofile();
	hub_start(&t->hub, args);
	t->hbase = hub_fd_count(&t->hub);
	t->base = self_fd_count();
	t->rx = rx ? hub_client(&t->hub, rx) : NULL;
	t->obs = hub_client(&t->hub, "ff.obs");
	assert_int_equal(pipe(t->p), 0);
}

/* Close the clients; nothing may be left open anywhere. */
static void ff_end(struct ff *t)
{
	expect_stat(t->obs, "fds_in_flight", 0, false);
	ipchub_close(t->rx);
	ipchub_close(t->obs);
	expect_fds(t->hub.pid, t->hbase);
	expect_pipe_closed(t->p);
	assert_int_equal(self_fd_count(), t->base);
	assert_int_equal(hub_stop(&t->hub), 0);
}

/* ---- the flooding raw sender ---- */

struct flood {
	int fd;             /* raw connection, non-blocking */
	int pass;           /* the descriptor every SEND carries */
	uint32_t next;      /* next id to send (1..MANY) */
	uint8_t out[FRAME_ENC_MAX];
	size_t out_len, out_off; /* the frame being written */
	bool ping_sent, pong, eof;
	uint8_t in[1 << 16];
	size_t in_len;
	uint8_t *fate;      /* [1..MANY]: 0 unknown, 1 answered, 2 delivered */
	uint32_t queue_full, limit, other;
};

static void flood_frame(struct flood *f)
{
	struct frame_hdr h;

	if (f->next <= MANY) {
		frame_init(&h, WIRE_SEND);
		h.id = f->next;
		h.flags = WF_NOWAIT;
		h.fds = 1;
		h.has |= FH(WK_ID) | FH(WK_FLAGS) | FH(WK_FDS);
		frame_set_str(&h, WK_TO, "ff.sink", 7);
	} else {
		frame_init(&h, WIRE_PING);
		h.id = PING_ID;
		h.has |= FH(WK_ID);
		f->ping_sent = true;
	}
	f->out_len = frame_encode(&h, 0, f->out, sizeof(f->out));
	f->out_off = 0;
}

/* Write frames until the socket is full. The descriptor goes with the
 * sendmsg() that starts at the frame's first byte. */
static void flood_write(struct flood *f)
{
	for (;;) {
		if (f->out_off == f->out_len) {
			if (f->ping_sent)
				return;
			flood_frame(f);
		}
		struct iovec iov = { f->out + f->out_off, f->out_len - f->out_off };
		struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
		union {
			struct cmsghdr align;
			char buf[CMSG_SPACE(sizeof(int))];
		} ctl;
		bool with_fd = f->out_off == 0 && !f->ping_sent;

		if (with_fd) {
			struct cmsghdr *cm;

			memset(&ctl, 0, sizeof(ctl));
			mh.msg_control = ctl.buf;
			mh.msg_controllen = sizeof(ctl.buf);
			cm = CMSG_FIRSTHDR(&mh);
			cm->cmsg_level = SOL_SOCKET;
			cm->cmsg_type = SCM_RIGHTS;
			cm->cmsg_len = CMSG_LEN(sizeof(int));
			memcpy(CMSG_DATA(cm), &f->pass, sizeof(int));
		}
		ssize_t n = sendmsg(f->fd, &mh, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			return;
		if (n < 0 && (errno == EPIPE || errno == ECONNRESET)) {
			f->ping_sent = true; /* the broker closed: stop */
			f->out_off = f->out_len;
			return;
		}
		assert_true(n > 0);
		if (with_fd && !f->ping_sent)
			f->next++;
		f->out_off += (size_t)n;
	}
}

static void flood_answer(struct flood *f, const struct frame_hdr *h)
{
	if (h->kind == WIRE_PONG) {
		assert_int_equal(h->id, PING_ID);
		f->pong = true;
		return;
	}
	assert_int_equal(h->kind, WIRE_ERROR);
	if (h->code == WIRE_E_LIMIT) {
		/* Fatal, for the connection: no id (it failed a read). */
		f->limit++;
		return;
	}
	if (h->code != WIRE_E_QUEUE_FULL) {
		f->other++;
		return;
	}
	assert_true(h->id >= 1 && h->id < f->next);
	assert_int_equal(f->fate[h->id], 0); /* once */
	assert_true((h->has & FH(WK_TO)) && h->to_len == 7 &&
		    memcmp(h->to, "ff.sink", 7) == 0);
	f->fate[h->id] = 1;
	f->queue_full++;
}

static void flood_read(struct flood *f)
{
	for (;;) {
		ssize_t n = read(f->fd, f->in + f->in_len,
				 sizeof(f->in) - f->in_len);

		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			return;
		if (n <= 0) {
			f->eof = true;
			return;
		}
		f->in_len += (size_t)n;
		size_t at = 0;
		while (f->in_len - at >= IPCHUB_LEN_PREFIX) {
			uint32_t len = frame_get_len(f->in + at);
			struct frame_hdr h;
			struct iovec iov;
			struct mpr r;
			bool body;

			assert_true(len <= sizeof(f->in) - IPCHUB_LEN_PREFIX);
			if (f->in_len - at - IPCHUB_LEN_PREFIX < len)
				break;
			mpr_init_buf(&r, &iov, f->in + at + IPCHUB_LEN_PREFIX, len);
			assert_int_equal(frame_decode(&r, FRAME_B2C, &h, &body, NULL),
					 WIRE_E_OK);
			flood_answer(f, &h);
			at += IPCHUB_LEN_PREFIX + len;
		}
		memmove(f->in, f->in + at, f->in_len - at);
		f->in_len -= at;
	}
}

/* Push MANY SENDs with a descriptor each (NOWAIT) at "ff.sink", reading
 * the answers as they come, until the PING after the last is answered
 * (every frame before it has been handled) or the broker closes. */
static void flood_run(struct flood *f, const struct hub *hub, int pass)
{
	int64_t end = now_ms() + 2 * WAIT_MS;

	memset(f, 0, sizeof(*f));
	f->fate = calloc(MANY + 1, 1);
	assert_non_null(f->fate);
	f->pass = pass;
	f->next = 1;
	f->fd = raw_connect(hub);
	raw_hello(f->fd);
	assert_int_equal(fcntl(f->fd, F_SETFL, O_NONBLOCK), 0);
	while (!f->pong && !f->eof) {
		struct pollfd pf = { .fd = f->fd, .events = POLLIN };

		if (!f->ping_sent || f->out_off < f->out_len)
			pf.events |= POLLOUT;
		assert_true(now_ms() < end);
		if (poll(&pf, 1, 1000) <= 0)
			continue;
		if (pf.revents & POLLOUT)
			flood_write(f);
		if (pf.revents & (POLLIN | POLLHUP | POLLERR))
			flood_read(f);
	}
}

/* What a receiver reads: the flood's messages (ids in order, each with
 * one descriptor for pass), then the marker SEND from "ff.obs". */
struct drain {
	ipchub *h;
	uint8_t *fate; /* NULL: ids not tracked */
	int pass;
	uint64_t last;
	uint32_t got;
};

/* Take one message within timeout_ms: 1 a flood message, 0 the marker,
 * -1 none came. */
static int drain_one(struct drain *d, int timeout_ms)
{
	ipchub_msg *m = NULL;
	const int *fds;
	int rc = ipchub_recv(d->h, timeout_ms, &m);

	if (rc == IPCHUB_E_TIMEOUT)
		return -1;
	assert_int_equal(rc, IPCHUB_OK);
	assert_int_equal(ipchub_msg_kind(m), IPCHUB_KIND_SEND);
	if (ipchub_msg_from(m) && strcmp(ipchub_msg_from(m), "ff.obs") == 0) {
		assert_int_equal(ipchub_msg_fds(m, NULL), 0);
		ipchub_msg_free(m);
		return 0;
	}
	uint64_t id = ipchub_msg_id(m);

	assert_true(id > d->last); /* FIFO per sender */
	d->last = id;
	if (d->fate) {
		assert_true(id >= 1 && id <= MANY);
		assert_int_equal(d->fate[id], 0);
		d->fate[id] = 2;
	}
	assert_int_equal(ipchub_msg_fds(m, &fds), 1);
	assert_true(same_file(fds[0], d->pass));
	ipchub_msg_free(m);
	d->got++;
	return 1;
}

/* Receive until the marker; returns how many flood messages came. */
static uint32_t drain_until_marker(ipchub *h, uint8_t *fate, int pass)
{
	struct drain d = { .h = h, .fate = fate, .pass = pass };
	int rc;

	while ((rc = drain_one(&d, WAIT_MS)) == 1)
		;
	assert_int_equal(rc, 0);
	return d.got;
}

static void send_marker(ipchub *obs, const char *to)
{
	assert_int_equal(ipchub_send(obs, to, nil_body, 1, NULL), IPCHUB_OK);
	assert_int_equal(ipchub_flush(obs, WAIT_MS), IPCHUB_OK);
}

/* ---- (a) a receiver that never reads, 10,000 descriptors pushed ---- */

/* Per-receiver quota: the flood is answered QUEUE_FULL per id once the
 * broker holds QUOTA for the sink. With drain, the sink then reads and
 * every id is accounted for; without, it disconnects unread and the
 * broker closes what it held for it. */
static void never_reads(bool drain)
{
	static const char *const args[] = { "--max-fds-per-conn", QUOTA_ARG, NULL };
	struct ff t;
	struct flood f;

	ff_start(&t, args, "ff.sink");
	flood_run(&f, &t.hub, t.p[1]);
	assert_true(f.pong);
	assert_int_equal(f.next, MANY + 1);
	assert_int_equal(f.other + f.limit, 0);
	assert_true(f.queue_full > 0); /* the quota did stop it */
	/* What the broker holds for the sink is within the quota: it holds
	 * the connections' sockets plus at most QUOTA descriptors. */
	uint64_t held = hub_stat_u64(t.obs, "fds_in_flight");
	assert_true(held <= QUOTA);
	assert_true(hub_fd_count(&t.hub) <= t.hbase + 3 + QUOTA);
	assert_int_equal(hub_stat_u64(t.obs, "fds_refused"), f.queue_full);

	if (drain) {
		send_marker(t.obs, "ff.sink");
		uint32_t got = drain_until_marker(t.rx, f.fate, t.p[1]);

		/* sent = delivered + reported failed, each id exactly once */
		print_message("never_reads: %u delivered + %u QUEUE_FULL = %u sent\n",
			      got, f.queue_full, MANY);
		assert_int_equal(got + f.queue_full, MANY);
		for (uint32_t id = 1; id <= MANY; id++)
			assert_true(f.fate[id] != 0);
		assert_int_equal(hub_stat_u64(t.obs, "fds_passed"), got);
	} else {
		/* Unread: what the broker holds (and the kernel queued) for
		 * the sink is closed with its connection. */
		int before = hub_fd_count(&t.hub);

		ipchub_close(t.rx);
		t.rx = NULL;
		expect_stat(t.obs, "fds_in_flight", 0, false);
		expect_fds(t.hub.pid, before - 1 - (int)held);
	}
	close(f.fd);
	free(f.fate);
	ff_end(&t);
}

static void test_never_reads_drained(void **state)
{
	(void)state;
	never_reads(true);
}

static void test_never_reads_leaves(void **state)
{
	(void)state;
	never_reads(false);
}

/* Broker-wide quota: with --max-fds-total under the per-receiver one the
 * flood's read beyond it is LIMIT, fatal for the sender; what it sent
 * before arrives whole (ids 1..k in order), the rest was never taken. */
static void test_total_quota(void **state)
{
	static const char *const args[] = { "--max-fds-total", "48", NULL };
	struct ff t;
	struct flood f;

	(void)state;
	ff_start(&t, args, "ff.sink");
	flood_run(&f, &t.hub, t.p[1]);
	/* The answer is one LIMIT, then EOF (PROTOCOL.md 6.8). */
	while (!f.eof) {
		struct pollfd pf = { .fd = f.fd, .events = POLLIN };

		assert_int_equal(poll(&pf, 1, WAIT_MS), 1);
		flood_read(&f);
	}
	assert_false(f.pong);
	assert_int_equal(f.limit, 1);
	assert_int_equal(f.queue_full + f.other, 0);
	close(f.fd);
	assert_true(hub_stat_u64(t.obs, "fds_in_flight") <= 48);
	/* The sender's connection is gone: only sink and obs are left. */
	expect_stat(t.obs, "connections", 2, false);
	send_marker(t.obs, "ff.sink");
	uint32_t got = drain_until_marker(t.rx, f.fate, t.p[1]);

	print_message("total_quota: ids 1..%u delivered, then LIMIT\n", got);
	assert_true(got >= 1 && got < MANY);
	for (uint32_t id = 1; id <= MANY; id++)
		assert_int_equal(f.fate[id], id <= got ? 2 : 0);
	assert_int_equal(hub_stat_u64(t.obs, "fds_passed"), got);
	free(f.fate);
	ff_end(&t);
}

/* ---- (b) a sender that passes descriptors, then is killed ---- */

/* A child that sends descriptors to "ff.b" until it is killed (blocking
 * sends: it parks once the broker holds the quota for ff.b). */
static pid_t spawn_dying_sender(const struct hub *hub, int pass)
{
	pid_t kid = fork();

	assert_true(kid >= 0);
	if (kid == 0) {
		ipchub *h = hub_client(hub, "ff.dying");

		for (;;)
			if (ipchub_send_fds(h, "ff.b", nil_body, 1, &pass, 1, NULL))
				_exit(1);
	}
	return kid;
}

static void test_sender_killed(void **state)
{
	static const char *const args[] = { "--max-fds-per-conn", QUOTA_ARG, NULL };
	struct ff t;
	uint64_t passed = 0;

	(void)state;
	ff_start(&t, args, "ff.b");
	/* Killed early (the first descriptors through, the stream running),
	 * then parked (the broker holds the quota for ff.b, the sender's own
	 * queue holds duplicates, a frame may be half read). */
	for (int round = 0; round < 2; round++) {
		pid_t kid = spawn_dying_sender(&t.hub, t.p[1]);
		int st;

		if (round == 0)
			expect_stat(t.obs, "fds_passed", passed + 1, true);
		else
			/* the quota, plus the parked frame's own */
			expect_stat(t.obs, "fds_in_flight", QUOTA, true);
		assert_int_equal(kill(kid, SIGKILL), 0);
		assert_int_equal(waitpid(kid, &st, 0), kid);
		assert_true(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
		/* Well-formed messages, each with its descriptor, or none.
		 * A parked sender's close is read only once ff.b has made
		 * room, so ff.b reads until the broker has seen it go, then
		 * up to a marker sent after that. */
		struct drain d = { .h = t.rx, .pass = t.p[1] };
		int64_t end = now_ms() + WAIT_MS;
		int rc;

		/* (what it sent before it died, still in its socket, is read
		 * and delivered too: ask for the count only when idle) */
		for (;;) {
			int got = drain_one(&d, 20);

			assert_int_not_equal(got, 0);
			if (got < 0 && hub_stat_u64(t.obs, "connections") == 2)
				break;
			assert_true(now_ms() < end);
		}
		send_marker(t.obs, "ff.b");
		while ((rc = drain_one(&d, WAIT_MS)) == 1)
			;
		assert_int_equal(rc, 0);
		print_message("sender_killed round %d: %u delivered whole\n", round,
			      d.got);
		passed += d.got;
		assert_int_equal(hub_stat_u64(t.obs, "fds_passed"), passed);
		expect_stat(t.obs, "fds_in_flight", 0, false);
		if (round == 1)
			assert_true(d.got >= QUOTA);
	}
	ff_end(&t);
}

/* ---- (c) a receiver out of descriptors ---- */

/* The child's checks: a failure says which and exits 1. */
#define KID_CHECK(cond)                                                        \
	do {                                                                   \
		if (!(cond)) {                                                 \
			fprintf(stderr, "%s:%d: check failed: %s\n",           \
				__FILE__, __LINE__, #cond);                    \
			_exit(1);                                              \
		}                                                              \
	} while (0)

/* The receiver: registers "ff.tight", leaves room for two descriptors
 * under its soft RLIMIT_NOFILE and tells the parent ('r'); a frame with
 * sixteen must fail the connection with PROTOCOL, every call after that
 * too, and leave the process with no descriptor more than before. With
 * the limit restored it connects again ('a') and a frame with one
 * descriptor arrives and works. */
static void tight_receiver(const struct hub *hub, int tell)
{
	ipchub *r = hub_client(hub, "ff.tight");
	struct rlimit rl, saved;
	ipchub_msg *m = NULL;
	const int *fds;
	int top = 0, *fill, nfill = 0, d;

	KID_CHECK(getrlimit(RLIMIT_NOFILE, &saved) == 0);
	int n0 = self_fd_count();

	for (int i = 0; i < 4096; i++)
		if (fcntl(i, F_GETFD) >= 0)
			top = i;
	rl = saved;
	rl.rlim_cur = (rlim_t)top + 64;
	if (rl.rlim_max != RLIM_INFINITY && rl.rlim_cur > rl.rlim_max)
		rl.rlim_cur = rl.rlim_max;
	KID_CHECK(setrlimit(RLIMIT_NOFILE, &rl) == 0);
	fill = calloc(rl.rlim_cur, sizeof(int));
	KID_CHECK(fill != NULL);
	while ((d = dup(0)) >= 0)
		fill[nfill++] = d;
	KID_CHECK(errno == EMFILE && nfill >= 2);
	close(fill[--nfill]);
	close(fill[--nfill]);
	KID_CHECK(write(tell, "r", 1) == 1);
	KID_CHECK(ipchub_recv(r, WAIT_MS, &m) == IPCHUB_E_PROTOCOL && !m);
	/* The state is clear: the same code for every call, no crash. */
	KID_CHECK(ipchub_recv(r, 0, &m) == IPCHUB_E_PROTOCOL && !m);
	KID_CHECK(ipchub_send(r, "ff.x", nil_body, 1, NULL) == IPCHUB_E_PROTOCOL);
	KID_CHECK(ipchub_send_fds(r, "ff.x", nil_body, 1, &tell, 1, NULL) ==
		  IPCHUB_E_PROTOCOL);
	while (nfill)
		close(fill[--nfill]);
	free(fill);
	KID_CHECK(setrlimit(RLIMIT_NOFILE, &saved) == 0);
	/* What the kernel installed before it ran out was closed. */
	KID_CHECK(self_fd_count() == n0);
	ipchub_close(r);
	KID_CHECK(self_fd_count() == n0 - 1);

	/* The broker may not have read the old connection's close yet. */
	struct ipchub_opts o = { .socket = hub->path, .timeout_ms = WAIT_MS };
	int64_t end = now_ms() + WAIT_MS;
	int rc;

	KID_CHECK(ipchub_connect(&o, &r) == IPCHUB_OK);
	while ((rc = ipchub_register(r, "ff.tight", WAIT_MS)) ==
		       IPCHUB_E_NAME_TAKEN &&
	       now_ms() < end)
		usleep(2000);
	KID_CHECK(rc == IPCHUB_OK);
	KID_CHECK(write(tell, "a", 1) == 1);
	KID_CHECK(ipchub_recv(r, WAIT_MS, &m) == IPCHUB_OK);
	KID_CHECK(ipchub_msg_fds(m, &fds) == 1 && write(fds[0], "k", 1) == 1);
	ipchub_msg_free(m);
	ipchub_close(r);
	KID_CHECK(self_fd_count() == n0 - 1);
	_exit(0);
}

static void test_receiver_out_of_fds(void **state)
{
	struct ff t;
	int sync[2], fds[IPCHUB_MAX_FDS_PER_FRAME];
	char c;

	(void)state;
	ff_start(&t, NULL, NULL);
	assert_int_equal(pipe(sync), 0);
	pid_t kid = fork();
	assert_true(kid >= 0);
	if (kid == 0) {
		close(sync[0]);
		tight_receiver(&t.hub, sync[1]);
	}
	close(sync[1]);
	assert_int_equal(read(sync[0], &c, 1), 1);
	assert_int_equal(c, 'r');
	for (unsigned i = 0; i < IPCHUB_MAX_FDS_PER_FRAME; i++)
		fds[i] = t.p[1];
	assert_int_equal(ipchub_send_fds(t.obs, "ff.tight", nil_body, 1, fds,
					 IPCHUB_MAX_FDS_PER_FRAME, NULL),
			 IPCHUB_OK);
	assert_int_equal(ipchub_flush(t.obs, WAIT_MS), IPCHUB_OK);
	assert_int_equal(read(sync[0], &c, 1), 1);
	assert_int_equal(c, 'a');
	/* The child registered again before saying 'a'. */
	assert_int_equal(ipchub_send_fds(t.obs, "ff.tight", nil_body, 1,
					 &t.p[1], 1, NULL),
			 IPCHUB_OK);
	assert_int_equal(ipchub_flush(t.obs, WAIT_MS), IPCHUB_OK);
	int st;
	assert_int_equal(waitpid(kid, &st, 0), kid);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
	close(sync[0]);
	assert_int_equal(read(t.p[0], &c, 1), 1);
	assert_int_equal(c, 'k');
	assert_int_equal(hub_stat_u64(t.obs, "fds_passed"),
			 IPCHUB_MAX_FDS_PER_FRAME + 1);
	ff_end(&t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_never_reads_drained),
		cmocka_unit_test(test_never_reads_leaves),
		cmocka_unit_test(test_total_quota),
		cmocka_unit_test(test_sender_killed),
		cmocka_unit_test(test_receiver_out_of_fds),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
