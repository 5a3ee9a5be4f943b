/*
 * test_fds.c - file descriptors passed through a real ipchubd
 * (PROTOCOL.md 6.6): SCM_RIGHTS from sender to broker to receiver.
 *
 * Each test checks, besides what it is about, that no descriptor leaks:
 * the test process's and the broker's /proc/<pid>/fd counts are back to
 * where they started once the clients are gone, on success and on every
 * error path (a receiver without FDS, frames that claim descriptors that
 * did not come, descriptors no frame claims, a truncated control message,
 * a sender that dies, a receiver that cannot take more). The large test
 * keeps 10,000 descriptors in flight towards a receiver that does not
 * read, with a small --max-fds-per-conn: the broker's count stays under
 * the quota (the sender is parked), and once the receiver reads every
 * message arrives with its descriptor. Waits are bounded only so that a
 * broken build fails instead of hanging.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "fdq.h"
#include "frame.h"
#include "harness.h"
#include "limits.h"

#define WAIT_MS 10000

static int self_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	int n = 0;

	assert_non_null(d);
	while ((e = readdir(d)))
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return n - 1; /* the directory's own */
}

/* The broker's fd count settles once it has read the closes. */
static void expect_hub_fds(const struct hub *hub, int want)
{
	int64_t end = now_ms() + WAIT_MS;
	int n;

	while ((n = hub_fd_count(hub)) != want && now_ms() < end)
		usleep(2000);
	assert_int_equal(n, want);
}

static const uint8_t nil_body[] = { 0xc0 };

/* A stats counter reaches want (the broker counts closes as it reads
 * them). */
static void expect_stat(ipchub *h, const char *key, uint64_t want)
{
	int64_t end = now_ms() + WAIT_MS;
	uint64_t n;

	while ((n = hub_stat_u64(h, key)) != want && now_ms() < end)
		usleep(2000);
	assert_int_equal(n, want);
}

/* ---- pass a pipe and use it ---- */

static void test_pass_pipe(void **state)
{
	struct hub hub;
	int base, hbase, p[2];
	char buf[8];

	(void)state;
	hub_start(&hub, NULL);
	hbase = hub_fd_count(&hub);
	base = self_fds();
	ipchub *a = hub_client(&hub, "fd.a");
	ipchub *b = hub_client(&hub, "fd.b");
	ipchub_msg *m = NULL, *r = NULL;
	const int *fds;
	uint64_t id;

	assert_int_equal(pipe(p), 0);
	/* Send the write end; b writes through it; a reads the read end. */
	assert_int_equal(ipchub_send_fds(a, "fd.b", nil_body, 1, &p[1], 1, &id),
			 IPCHUB_OK);
	assert_int_equal(ipchub_flush(a, WAIT_MS), IPCHUB_OK);
	assert_int_equal(ipchub_recv(b, WAIT_MS, &m), IPCHUB_OK);
	assert_int_equal(ipchub_msg_kind(m), IPCHUB_KIND_SEND);
	assert_int_equal(ipchub_msg_id(m), id);
	assert_int_equal(ipchub_msg_fds(m, &fds), 1);
	assert_int_equal(write(fds[0], "hi", 2), 2);
	assert_int_equal(fcntl(fds[0], F_GETFD) & FD_CLOEXEC, FD_CLOEXEC);
	ipchub_msg_free(m); /* closes b's copy */
	close(p[1]);
	assert_int_equal(read(p[0], buf, sizeof(buf)), 2);
	assert_memory_equal(buf, "hi", 2);
	assert_int_equal(read(p[0], buf, sizeof(buf)), 0); /* all writers gone */
	close(p[0]);

	/* Request with a descriptor, reply with one; take_fd hands it out. */
	assert_int_equal(pipe(p), 0);
	pid_t kid = fork();
	assert_true(kid >= 0);
	if (kid == 0) {
		ipchub *s = hub_client(&hub, "fd.srv");
		ipchub_msg *q = NULL;
		int rc = ipchub_recv(s, WAIT_MS, &q);
		int fd = rc ? -1 : ipchub_msg_take_fd(q, 0);

		if (fd < 0 || ipchub_msg_take_fd(q, 0) != -1 ||
		    ipchub_reply_fds(s, q, nil_body, 1, &fd, 1) ||
		    ipchub_flush(s, WAIT_MS))
			_exit(1);
		close(fd);
		ipchub_msg_free(q);
		ipchub_close(s);
		_exit(0);
	}
	int64_t end = now_ms() + WAIT_MS;
	int rc;
	while ((rc = ipchub_request_fds(a, "fd.srv", nil_body, 1, &p[0], 1,
				       1000, &r)) == IPCHUB_E_NO_SUCH_PEER &&
	       now_ms() < end) {
		ipchub_msg_free(r);
		r = NULL;
		usleep(5000);
	}
	assert_int_equal(rc, IPCHUB_OK);
	assert_int_equal(ipchub_msg_fds(r, &fds), 1);
	/* The reply's descriptor is the read end that went out. */
	assert_int_equal(write(p[1], "x", 1), 1);
	assert_int_equal(read(fds[0], buf, 1), 1);
	ipchub_msg_free(r);
	close(p[0]);
	close(p[1]);
	int st;
	assert_int_equal(waitpid(kid, &st, 0), kid);
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);

	/* Bad arguments. */
	int many[IPCHUB_MAX_FDS_PER_FRAME + 1] = { 0 };
	int closed_fd = 1000;
	assert_int_equal(ipchub_send_fds(a, "fd.b", nil_body, 1, many,
					 IPCHUB_MAX_FDS_PER_FRAME + 1, NULL),
			 IPCHUB_E_INVALID);
	assert_int_equal(ipchub_send_fds(a, "fd.b", nil_body, 1, NULL, 1, NULL),
			 IPCHUB_E_INVALID);
	assert_int_equal(ipchub_send_fds(a, "fd.b", nil_body, 1, &closed_fd, 1,
					 NULL),
			 IPCHUB_E_INVALID);
	assert_int_equal(hub_stat_u64(a, "fds_passed"), 3);
	ipchub_close(a);
	ipchub_close(b);
	assert_int_equal(self_fds(), base);
	expect_hub_fds(&hub, hbase);
	assert_int_equal(hub_stop(&hub), 0);
}

/* ---- a receiver without FDS: typed error, descriptors closed ---- */

static void raw_frame(int fd, const struct frame_hdr *h)
{
	uint8_t out[FRAME_ENC_MAX];
	size_t n = frame_encode(h, 0, out, sizeof(out));

	raw_write_all(fd, out, n);
}

static void raw_register(int fd, const char *name)
{
	struct frame_hdr h;
	uint8_t in[IPCHUB_MAX_HEADER];

	frame_init(&h, WIRE_REGISTER);
	h.id = 1;
	h.has |= FH(WK_ID);
	frame_set_str(&h, WK_NAME, name, strlen(name));
	raw_frame(fd, &h);
	assert_true(raw_read_frame(fd, in, sizeof(in), WAIT_MS) > 0);
}

static void test_receiver_without_fds(void **state)
{
	struct hub hub;
	int base, hbase, p[2];

	(void)state;
	hub_start(&hub, NULL);
	hbase = hub_fd_count(&hub);
	base = self_fds();
	int raw = raw_connect(&hub);
	raw_hello(raw); /* no FDS in its HELLO */
	raw_register(raw, "fd.old");
	ipchub *a = hub_client(&hub, "fd.a");
	ipchub_msg *m = NULL;
	uint64_t id;

	assert_int_equal(pipe(p), 0);
	assert_int_equal(ipchub_send_fds(a, "fd.old", nil_body, 1, p, 2, &id),
			 IPCHUB_OK);
	assert_int_equal(ipchub_recv(a, WAIT_MS, &m), IPCHUB_OK);
	assert_int_equal(ipchub_msg_kind(m), 10);
	assert_int_equal(ipchub_msg_error(m), IPCHUB_E_FDS_UNSUPPORTED);
	assert_int_equal(ipchub_msg_id(m), id);
	assert_string_equal(ipchub_msg_to(m), "fd.old");
	ipchub_msg_free(m);
	/* A request gets it as its answer; the broker's services too. */
	m = NULL;
	assert_int_equal(ipchub_request_fds(a, "fd.old", nil_body, 1, p, 1,
					    WAIT_MS, &m),
			 IPCHUB_E_FDS_UNSUPPORTED);
	ipchub_msg_free(m);
	m = NULL;
	assert_int_equal(ipchub_request_fds(a, "ipchub.ping", nil_body, 1, p, 1,
					    WAIT_MS, &m),
			 IPCHUB_E_FDS_UNSUPPORTED);
	ipchub_msg_free(m);
	assert_int_equal(hub_stat_u64(a, "fds_refused"), 4);
	assert_int_equal(hub_stat_u64(a, "fds_in_flight"), 0);
	/* The broker closed its copies: the pipe's write end is ours only. */
	close(p[1]);
	char c;
	assert_int_equal(read(p[0], &c, 1), 0);
	close(p[0]);
	ipchub_close(a);
	close(raw);
	assert_int_equal(self_fds(), base);
	expect_hub_fds(&hub, hbase);
	assert_int_equal(hub_stop(&hub), 0);
}

/* ---- raw protocol violations ---- */

/* SEND {id 1, to "fd.x", fds: claim} with nfds descriptors of a pipe
 * attached to its first byte (nfds may exceed what one frame may carry). */
static void raw_send_fds(int fd, uint32_t claim, int nfds, bool whole)
{
	struct frame_hdr h;
	uint8_t out[FRAME_ENC_MAX];
	int fds[64], p[2];
	struct iovec iov;
	size_t n;

	assert_true(nfds <= 64);
	frame_init(&h, WIRE_SEND);
	h.id = 1;
	h.has |= FH(WK_ID);
	frame_set_str(&h, WK_TO, "fd.x", 4);
	if (claim) {
		h.fds = claim;
		h.has |= FH(WK_FDS);
	}
	n = frame_encode(&h, 0, out, sizeof(out));
	assert_int_equal(pipe(p), 0);
	for (int i = 0; i < nfds; i++)
		fds[i] = p[i % 2];
	iov.iov_base = out;
	iov.iov_len = whole ? n : n / 2;
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
	char ctl[CMSG_SPACE(64 * sizeof(int))];
	if (nfds) {
		struct cmsghdr *cm;

		memset(ctl, 0, sizeof(ctl));
		mh.msg_control = ctl;
		mh.msg_controllen = CMSG_SPACE((size_t)nfds * sizeof(int));
		cm = CMSG_FIRSTHDR(&mh);
		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN((size_t)nfds * sizeof(int));
		memcpy(CMSG_DATA(cm), fds, (size_t)nfds * sizeof(int));
	}
	assert_int_equal(sendmsg(fd, &mh, MSG_NOSIGNAL), (ssize_t)iov.iov_len);
	close(p[0]);
	close(p[1]);
}

/* The broker answers ERROR code and closes. */
static void expect_error_eof(int fd, int code)
{
	uint8_t in[IPCHUB_MAX_HEADER + 4096];
	ssize_t len = raw_read_frame(fd, in, sizeof(in), WAIT_MS);
	struct frame_hdr h;
	struct iovec iov;
	struct mpr r;
	bool body;

	assert_true(len > 0);
	mpr_init_buf(&r, &iov, in, (size_t)len);
	assert_int_equal(frame_decode(&r, FRAME_B2C, &h, &body, NULL), WIRE_E_OK);
	assert_int_equal(h.kind, WIRE_ERROR);
	assert_int_equal(h.code, (uint32_t)code);
	assert_int_equal(raw_wait_eof(fd, WAIT_MS), 1);
}

static void test_protocol_errors(void **state)
{
	struct hub hub;
	int base, hbase, fd;

	(void)state;
	hub_start(&hub, NULL);
	hbase = hub_fd_count(&hub);
	base = self_fds();
	ipchub *x = hub_client(&hub, "fd.x");

	/* Claims one, none came. */
	fd = raw_connect(&hub);
	raw_hello(fd);
	raw_send_fds(fd, 1, 0, true);
	expect_error_eof(fd, WIRE_E_PROTOCOL);
	close(fd);
	/* Claims one, two came (one left over when the input is empty). */
	fd = raw_connect(&hub);
	raw_hello(fd);
	raw_send_fds(fd, 1, 2, true);
	expect_error_eof(fd, WIRE_E_PROTOCOL);
	close(fd);
	/* Descriptors with a frame that claims none. */
	fd = raw_connect(&hub);
	raw_hello(fd);
	raw_send_fds(fd, 0, 1, true);
	expect_error_eof(fd, WIRE_E_PROTOCOL);
	close(fd);
	/* More than one frame may carry: the broker's control buffer is
	 * truncated (MSG_CTRUNC). */
	fd = raw_connect(&hub);
	raw_hello(fd);
	raw_send_fds(fd, 0, IPCHUB_MAX_FDS_PER_FRAME + 8, true);
	expect_error_eof(fd, WIRE_E_PROTOCOL);
	close(fd);
	/* Descriptors before the handshake. */
	fd = raw_connect(&hub);
	raw_send_fds(fd, 0, 1, false);
	expect_error_eof(fd, WIRE_E_PROTOCOL);
	close(fd);
	/* A sender that dies in the middle of a frame with descriptors. */
	fd = raw_connect(&hub);
	raw_hello(fd);
	raw_send_fds(fd, 1, 1, false);
	close(fd);

	expect_stat(x, "fds_in_flight", 0);
	ipchub_close(x);
	assert_int_equal(self_fds(), base);
	expect_hub_fds(&hub, hbase);
	assert_int_equal(hub_stop(&hub), 0);
}

/* ---- 10,000 in flight to a receiver that does not read ---- */

#define MANY 10000
#define QUOTA "64"

struct sender {
	const struct hub *hub;
	int fd;
	int rc;
};

static void *send_many(void *arg)
{
	struct sender *s = arg;
	ipchub *h = hub_client(s->hub, "fd.prod");

	s->rc = IPCHUB_OK;
	for (int i = 0; i < MANY && !s->rc; i++)
		s->rc = ipchub_send_fds(h, "fd.sink", nil_body, 1, &s->fd, 1,
					NULL);
	if (!s->rc)
		s->rc = ipchub_flush(h, 60000);
	ipchub_close(h);
	return NULL;
}

static void test_many_in_flight(void **state)
{
	static const char *const args[] = { "--max-fds-per-conn", QUOTA, NULL };
	struct hub hub;
	struct sender s;
	pthread_t t;
	int base, hbase, p[2], got = 0;

	(void)state;
	hub_start(&hub, args);
	hbase = hub_fd_count(&hub);
	base = self_fds();
	ipchub *sink = hub_client(&hub, "fd.sink");
	ipchub *obs = hub_client(&hub, NULL);

	assert_int_equal(pipe(p), 0);
	s.hub = &hub;
	s.fd = p[1];
	assert_int_equal(pthread_create(&t, NULL, send_many, &s), 0);
	/* While the sink does not read, the broker holds at most its quota
	 * for it plus what one sender may have received unclaimed. */
	for (int i = 0; i < 20; i++) {
		uint64_t n = hub_stat_u64(obs, "fds_in_flight");

		assert_true(n <= 2 * 64);
		usleep(10000);
	}
	while (got < MANY) {
		ipchub_msg *m = NULL;
		const int *fds;

		assert_int_equal(ipchub_recv(sink, WAIT_MS, &m), IPCHUB_OK);
		assert_int_equal(ipchub_msg_fds(m, &fds), 1);
		assert_true(fds[0] >= 0);
		ipchub_msg_free(m);
		got++;
	}
	assert_int_equal(pthread_join(t, NULL), 0);
	assert_int_equal(s.rc, IPCHUB_OK);
	assert_int_equal(hub_stat_u64(obs, "fds_passed"), MANY);
	expect_stat(obs, "fds_in_flight", 0);
	assert_int_equal(hub_stat_u64(obs, "fds_refused"), 0);
	close(p[0]);
	close(p[1]);
	ipchub_close(sink);
	ipchub_close(obs);
	assert_int_equal(self_fds(), base);
	expect_hub_fds(&hub, hbase);
	assert_int_equal(hub_stop(&hub), 0);
}

/* ---- senders that die, receivers that cannot take more ---- */

static void test_sender_dies(void **state)
{
	struct hub hub;
	int base, hbase, p[2];
	char buf[4];

	(void)state;
	hub_start(&hub, NULL);
	hbase = hub_fd_count(&hub);
	base = self_fds();
	ipchub *b = hub_client(&hub, "fd.b");

	assert_int_equal(pipe(p), 0);
	pid_t kid = fork();
	assert_true(kid >= 0);
	if (kid == 0) {
		ipchub *a = hub_client(&hub, NULL);

		for (int i = 0; i < 5; i++)
			if (ipchub_send_fds(a, "fd.b", nil_body, 1, &p[1], 1,
					    NULL))
				_exit(1);
		if (ipchub_flush(a, WAIT_MS))
			_exit(1);
		_exit(0); /* no BYE, descriptors still in flight */
	}
	int st;
	assert_int_equal(waitpid(kid, &st, 0), kid);
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	close(p[1]);
	/* Everything it sent arrives, each descriptor usable. */
	for (int i = 0; i < 5; i++) {
		ipchub_msg *m = NULL;
		const int *fds;

		assert_int_equal(ipchub_recv(b, WAIT_MS, &m), IPCHUB_OK);
		assert_int_equal(ipchub_msg_fds(m, &fds), 1);
		assert_int_equal(write(fds[0], "z", 1), 1);
		ipchub_msg_free(m);
	}
	assert_int_equal(read(p[0], buf, sizeof(buf)), 4);
	close(p[0]);
	ipchub_close(b);
	assert_int_equal(self_fds(), base);
	expect_hub_fds(&hub, hbase);
	assert_int_equal(hub_stop(&hub), 0);
}

static void test_receiver_exhausted(void **state)
{
	struct hub hub;
	int base, hbase, p[2], fds[IPCHUB_MAX_FDS_PER_FRAME], sync[2];

	(void)state;
	hub_start(&hub, NULL);
	hbase = hub_fd_count(&hub);
	base = self_fds();
	assert_int_equal(pipe(sync), 0);
	pid_t kid = fork();
	assert_true(kid >= 0);
	if (kid == 0) {
		ipchub *r = hub_client(&hub, "fd.tight");
		struct rlimit rl;
		ipchub_msg *m = NULL;
		int rc, top = 0;
		char c = 'r';

		/* Room for two descriptors, not for a frame's sixteen: fill
		 * every free slot under the limit, then free two. */
		for (int i = 0; i < 1024; i++)
			if (fcntl(i, F_GETFD) >= 0)
				top = i;
		rl.rlim_cur = rl.rlim_max = (rlim_t)top + 4;
		if (setrlimit(RLIMIT_NOFILE, &rl))
			_exit(2);
		int last = -1, prev = -1, d;
		while ((d = dup(0)) >= 0) {
			prev = last;
			last = d;
		}
		if (prev < 0 || write(sync[1], &c, 1) != 1)
			_exit(3);
		close(last);
		close(prev);
		rc = ipchub_recv(r, WAIT_MS, &m);
		ipchub_close(r);
		_exit(rc == IPCHUB_E_PROTOCOL ? 0 : 10 + rc % 100);
	}
	close(sync[1]);
	char c;
	assert_int_equal(read(sync[0], &c, 1), 1);
	close(sync[0]);
	ipchub *a = hub_client(&hub, NULL);
	assert_int_equal(pipe(p), 0);
	for (unsigned i = 0; i < IPCHUB_MAX_FDS_PER_FRAME; i++)
		fds[i] = p[i % 2];
	assert_int_equal(ipchub_send_fds(a, "fd.tight", nil_body, 1, fds,
					 IPCHUB_MAX_FDS_PER_FRAME, NULL),
			 IPCHUB_OK);
	assert_int_equal(ipchub_flush(a, WAIT_MS), IPCHUB_OK);
	int st;
	assert_int_equal(waitpid(kid, &st, 0), kid);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
	close(p[0]);
	close(p[1]);
	ipchub_close(a);
	assert_int_equal(self_fds(), base);
	expect_hub_fds(&hub, hbase);
	assert_int_equal(hub_stop(&hub), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pass_pipe),
		cmocka_unit_test(test_receiver_without_fds),
		cmocka_unit_test(test_protocol_errors),
		cmocka_unit_test(test_many_in_flight),
		cmocka_unit_test(test_sender_dies),
		cmocka_unit_test(test_receiver_exhausted),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
