/*
 * test_memfd_lane.c - memfd bodies through a real ipchubd (PROTOCOL.md 6.10):
 * large bodies that travel as sealed memfds instead of over the socket.
 *
 * Covered: C sender -> C receiver (ipchub_send above the threshold, the
 * zero-copy ipchub_body_alloc/ipchub_send_body, request and reply, bodies
 * over max_frame, the threshold and its setter); a receiver that did not
 * announce MEMFD gets the body inline (and MEMFD_INLINE when it cannot
 * fit a frame); memfds that are unsealed, half sealed, not memfds or of
 * the wrong size are refused with their typed error, the connection goes
 * on; the receiver's high-water mark counts memfd bytes (NOWAIT sends are
 * refused exactly when the unread memfd bytes pass it, parked senders
 * resume once the receiver reads). Every test checks that the test
 * process's and the broker's /proc/<pid>/fd counts come back to where
 * they started. Waits are bounded only so that a broken build fails
 * instead of hanging.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "frame.h"
#include "harness.h"
#include "limits.h"
#include "memfd.h"

#define WAIT_MS 20000
#define MIB (1024u * 1024u)

/* Each test: a broker, and the test's and the broker's descriptor counts
 * when it started, which must be back at the end. */
struct fx {
	struct hub hub;
	int base, hbase;
};

static void fx_start(struct fx *x, const char *const *args)
{
	hub_start(&x->hub, args);
	x->hbase = hub_fd_count(&x->hub);
	x->base = self_fd_count();
}

static void fx_end(struct fx *x)
{
	assert_int_equal(self_fd_count(), x->base);
	hub_expect_fd_count(&x->hub, x->hbase, WAIT_MS);
	assert_int_equal(hub_stop(&x->hub), 0);
}

/* A body of len bytes (>= 5): bin32 whose bytes follow a pattern of seed. */
static void fill_bin(uint8_t *p, size_t len, unsigned seed)
{
	uint32_t n = (uint32_t)(len - 5);

	p[0] = 0xc6;
	p[1] = (uint8_t)(n >> 24);
	p[2] = (uint8_t)(n >> 16);
	p[3] = (uint8_t)(n >> 8);
	p[4] = (uint8_t)n;
	for (size_t i = 5; i < len; i++)
		p[i] = (uint8_t)(i * 7u + seed);
}

static uint8_t *make_bin(size_t len, unsigned seed)
{
	uint8_t *p = malloc(len);

	assert_non_null(p);
	fill_bin(p, len, seed);
	return p;
}

static void expect_body(const ipchub_msg *m, const uint8_t *want, size_t len)
{
	size_t got;
	const void *b = ipchub_msg_body(m, &got);

	assert_non_null(b);
	assert_int_equal(got, len);
	assert_memory_equal(b, want, len);
}

/* ---- C sender -> C receiver ---- */

static void test_memfd_roundtrip(void **state)
{
	static const char *const args[] = { "--max-frame", "1048576", NULL };
	struct fx x;

	(void)state;
	fx_start(&x, args);
	ipchub *a = hub_client(&x.hub, "mf.a");
	ipchub *b = hub_client(&x.hub, "mf.b");
	ipchub_msg *m = NULL, *c = NULL;
	uint64_t id, passed0 = hub_stat_u64(a, "fds_passed");
	size_t big = 3 * MIB + 17; /* over max_frame: only a memfd carries it */
	uint8_t *body = make_bin(big, 1);

	/* Above the threshold: a memfd (one descriptor passed), mapped. */
	assert_int_equal(ipchub_send(a, "mf.b", body, big, &id), IPCHUB_OK);
	assert_int_equal(ipchub_flush(a, WAIT_MS), IPCHUB_OK);
	assert_int_equal(ipchub_recv(b, WAIT_MS, &m), IPCHUB_OK);
	assert_int_equal(ipchub_msg_kind(m), IPCHUB_KIND_SEND);
	assert_int_equal(ipchub_msg_id(m), id);
	assert_int_equal(ipchub_msg_fds(m, NULL), 0); /* the body is not one */
	expect_body(m, body, big);
	assert_int_equal(ipchub_msg_dup(m, &c), IPCHUB_OK);
	ipchub_msg_free(m); /* unmaps */
	expect_body(c, body, big); /* the copy is on the heap */
	ipchub_msg_free(c);
	assert_int_equal(hub_stat_u64(a, "fds_passed"), passed0 + 1);

	/* Below the threshold: inline, no descriptor. */
	assert_int_equal(ipchub_send(a, "mf.b", body, 4096, NULL),
			 IPCHUB_E_BAD_BODY); /* a cut bin is no body */
	fill_bin(body, 4096, 2);
	assert_int_equal(ipchub_send(a, "mf.b", body, 4096, NULL), IPCHUB_OK);
	assert_int_equal(ipchub_flush(a, WAIT_MS), IPCHUB_OK);
	assert_int_equal(ipchub_recv(b, WAIT_MS, &m), IPCHUB_OK);
	expect_body(m, body, 4096);
	ipchub_msg_free(m);
	assert_int_equal(hub_stat_u64(a, "fds_passed"), passed0 + 1);

	/* The threshold is the connection's: 0 turns the lane off (then a
	 * body over max_frame is TOO_LARGE), smaller values turn it on. */
	assert_int_equal(ipchub_set_memfd_min(a, 100), IPCHUB_E_INVALID);
	assert_int_equal(ipchub_set_memfd_min(NULL, 0), IPCHUB_E_INVALID);
	assert_int_equal(ipchub_set_memfd_min(a, 0), IPCHUB_OK);
	fill_bin(body, big, 3);
	assert_int_equal(ipchub_send(a, "mf.b", body, big, NULL),
			 IPCHUB_E_TOO_LARGE);
	assert_int_equal(ipchub_set_memfd_min(a, IPCHUB_MEMFD_MIN_MIN),
			 IPCHUB_OK);
	fill_bin(body, 4096, 3);
	assert_int_equal(ipchub_send(a, "mf.b", body, 4096, NULL), IPCHUB_OK);
	assert_int_equal(ipchub_flush(a, WAIT_MS), IPCHUB_OK);
	assert_int_equal(ipchub_recv(b, WAIT_MS, &m), IPCHUB_OK);
	expect_body(m, body, 4096);
	ipchub_msg_free(m);
	assert_int_equal(hub_stat_u64(a, "fds_passed"), passed0 + 2);
	assert_int_equal(ipchub_set_memfd_min(a, IPCHUB_MEMFD_MIN_DEFAULT),
			 IPCHUB_OK);

	/* Zero copy: write the body in place, then send it. */
	void *buf = NULL;
	assert_int_equal(ipchub_body_alloc(a, 0, &buf), IPCHUB_E_INVALID);
	assert_int_equal(ipchub_body_alloc(a, big, &buf), IPCHUB_OK);
	fill_bin(buf, big, 4);
	fill_bin(body, big, 4);
	assert_int_equal(ipchub_send_body(a, "mf.b", buf, &id), IPCHUB_OK);
	assert_int_equal(ipchub_send_body(a, "mf.b", buf, NULL),
			 IPCHUB_E_INVALID); /* consumed */
	assert_int_equal(ipchub_flush(a, WAIT_MS), IPCHUB_OK);
	assert_int_equal(ipchub_recv(b, WAIT_MS, &m), IPCHUB_OK);
	assert_int_equal(ipchub_msg_id(m), id);
	expect_body(m, body, big);
	ipchub_msg_free(m);
	/* Small ones go inline; a malformed one is refused (and consumed);
	 * one given back or left to ipchub_close() is freed. */
	assert_int_equal(ipchub_body_alloc(a, 64, &buf), IPCHUB_OK);
	fill_bin(buf, 64, 5);
	fill_bin(body, 64, 5);
	assert_int_equal(ipchub_send_body(a, "mf.b", buf, NULL), IPCHUB_OK);
	assert_int_equal(ipchub_flush(a, WAIT_MS), IPCHUB_OK);
	assert_int_equal(ipchub_recv(b, WAIT_MS, &m), IPCHUB_OK);
	expect_body(m, body, 64);
	ipchub_msg_free(m);
	assert_int_equal(ipchub_body_alloc(a, big, &buf), IPCHUB_OK);
	memset(buf, 0xc1, 16); /* 0xc1 is never valid msgpack */
	assert_int_equal(ipchub_send_body(a, "mf.b", buf, NULL),
			 IPCHUB_E_BAD_BODY);
	assert_int_equal(ipchub_body_alloc(a, big, &buf), IPCHUB_OK);
	ipchub_body_free(a, buf);
	ipchub_body_free(a, body); /* not an allocation: ignored */
	assert_int_equal(ipchub_body_alloc(a, 2 * MIB, &buf), IPCHUB_OK);
	assert_int_equal(passed0 + 3, hub_stat_u64(a, "fds_passed"));

	/* Request and reply, both with memfd bodies: a child echoes the
	 * mapped request body, which becomes a new memfd. */
	fill_bin(body, big, 6);
	pid_t kid = fork();
	assert_true(kid >= 0);
	if (kid == 0) {
		ipchub *srv = hub_client(&x.hub, "mf.srv");
		ipchub_msg *q = NULL;
		const void *qb = NULL;
		size_t ql = 0;
		int rc = ipchub_recv(srv, WAIT_MS, &q);

		if (rc == IPCHUB_OK)
			qb = ipchub_msg_body(q, &ql);
		if (!qb || ipchub_reply(srv, q, qb, ql) ||
		    ipchub_flush(srv, WAIT_MS))
			_exit(1);
		ipchub_msg_free(q);
		ipchub_close(srv);
		_exit(0);
	}
	int64_t end = now_ms() + WAIT_MS;
	ipchub_msg *r = NULL;
	int rc, st;
	while ((rc = ipchub_request(a, "mf.srv", body, big, 5000, &r)) ==
		       IPCHUB_E_NO_SUCH_PEER &&
	       now_ms() < end) {
		ipchub_msg_free(r);
		r = NULL;
		usleep(5000);
	}
	assert_int_equal(rc, IPCHUB_OK);
	assert_int_equal(ipchub_msg_kind(r), IPCHUB_KIND_REPLY);
	expect_body(r, body, big);
	ipchub_msg_free(r);
	assert_int_equal(waitpid(kid, &st, 0), kid);
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);

	ipchub_close(a); /* frees the buffer still allocated */
	ipchub_close(b);
	free(body);
	fx_end(&x);
}

/* ---- raw peers ---- */

/* SEND {id, to, fds: 1, memfd: len, flags} with mfd attached. */
static void raw_send_memfd(int sock, uint64_t id, const char *to,
			   uint64_t len, int mfd, uint32_t flags)
{
	struct frame_hdr h;
	uint8_t out[FRAME_ENC_MAX];
	char ctl[CMSG_SPACE(sizeof(int))];
	struct iovec iov;
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
	struct cmsghdr *cm;

	frame_init(&h, WIRE_SEND);
	h.id = id;
	h.fds = 1;
	h.memfd = len;
	h.has |= FH(WK_ID) | FH(WK_FDS) | FH(WK_MEMFD);
	if (flags) {
		h.flags = flags;
		h.has |= FH(WK_FLAGS);
	}
	frame_set_str(&h, WK_TO, to, strlen(to));
	iov.iov_base = out;
	iov.iov_len = frame_encode(&h, 0, out, sizeof(out));
	memset(ctl, 0, sizeof(ctl));
	mh.msg_control = ctl;
	mh.msg_controllen = sizeof(ctl);
	cm = CMSG_FIRSTHDR(&mh);
	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(cm), &mfd, sizeof(int));
	assert_int_equal(sendmsg(sock, &mh, MSG_NOSIGNAL), (ssize_t)iov.iov_len);
}

/* A memfd holding body[0..len), with seals (0: none). */
static int memfd_with(const uint8_t *body, size_t len, int seals)
{
	int fd;

	assert_int_equal(memfd_body_new(len, &fd), 0);
	assert_int_equal(pwrite(fd, body, len, 0), (ssize_t)len);
	if (seals)
		assert_int_equal(fcntl(fd, F_ADD_SEALS, seals), 0);
	return fd;
}

/* Read one frame from a raw connection and decode its header. */
static ssize_t raw_next(int fd, uint8_t *buf, size_t cap, struct frame_hdr *h,
			size_t *body_off)
{
	ssize_t len = raw_read_frame(fd, buf, cap, WAIT_MS);
	struct iovec iov;
	struct mpr r;
	bool has_body;

	assert_true(len > 0);
	mpr_init_buf(&r, &iov, buf, (size_t)len);
	assert_int_equal(frame_decode(&r, FRAME_B2C, h, &has_body, NULL),
			 WIRE_E_OK);
	*body_off = (size_t)len - (size_t)mpr_left(&r);
	return len;
}

static void expect_raw_error(int fd, uint64_t id, int code)
{
	uint8_t in[IPCHUB_MAX_HEADER];
	struct frame_hdr h;
	size_t off;

	raw_next(fd, in, sizeof(in), &h, &off);
	assert_int_equal(h.kind, WIRE_ERROR);
	assert_int_equal(h.id, id);
	assert_int_equal(h.code, (uint32_t)code);
}

/* ---- a receiver without MEMFD gets the body inline ---- */

static void test_memfd_inline_receiver(void **state)
{
	static const char *const args[] = { "--max-frame", "1048576", NULL };
	struct fx x;

	(void)state;
	fx_start(&x, args);
	int raw = raw_connect(&x.hub);
	raw_hello(raw); /* no FDS, no MEMFD */
	raw_claim_name(raw, "mf.old");
	ipchub *a = hub_client(&x.hub, "mf.a");
	ipchub_msg *m = NULL;
	size_t len = 600 * 1024, cap = 2 * MIB, off;
	uint8_t *body = make_bin(len, 9), *in = malloc(cap);
	struct frame_hdr h;
	uint64_t id;
	ssize_t n;

	assert_non_null(in);
	assert_int_equal(ipchub_send(a, "mf.old", body, len, &id), IPCHUB_OK);
	assert_int_equal(ipchub_flush(a, WAIT_MS), IPCHUB_OK);
	n = raw_next(raw, in, cap, &h, &off);
	assert_int_equal(h.kind, WIRE_SEND);
	assert_int_equal(h.id, id);
	assert_false(h.has & FH(WK_MEMFD));
	assert_false(h.has & FH(WK_FDS));
	assert_int_equal((size_t)n - off, len);
	assert_memory_equal(in + off, body, len);
	assert_int_equal(hub_stat_u64(a, "memfd_inlined"), 1);

	/* Too large for a frame: the sender is told, with the id. */
	free(body);
	len = 2 * MIB;
	body = make_bin(len, 10);
	assert_int_equal(ipchub_send(a, "mf.old", body, len, &id), IPCHUB_OK);
	assert_int_equal(ipchub_recv(a, WAIT_MS, &m), IPCHUB_OK);
	assert_int_equal(ipchub_msg_kind(m), 10);
	assert_int_equal(ipchub_msg_error(m), IPCHUB_E_MEMFD_INLINE);
	assert_int_equal(ipchub_msg_id(m), id);
	assert_string_equal(ipchub_msg_to(m), "mf.old");
	assert_string_equal(ipchub_code_name(IPCHUB_E_MEMFD_INLINE),
			    "MEMFD_INLINE");
	ipchub_msg_free(m);

	/* A memfd whose content is not one msgpack value is BAD_BODY
	 * when the broker has to vouch for it inline. */
	memset(body, 0xc1, 64 * 1024);
	int mfd = memfd_with(body, 64 * 1024, MEMFD_SEALS);
	int s = raw_connect(&x.hub);
	raw_hello(s);
	raw_send_memfd(s, 77, "mf.old", 64 * 1024, mfd, 0);
	close(mfd);
	expect_raw_error(s, 77, WIRE_E_BAD_BODY);
	close(s);

	ipchub_close(a);
	close(raw);
	free(body);
	free(in);
	fx_end(&x);
}

/* ---- memfds with wrong seals or size are refused ---- */

static void test_memfd_rejected(void **state)
{
	struct fx x;

	(void)state;
	fx_start(&x, NULL);
	ipchub *b = hub_client(&x.hub, "mf.b");
	int s = raw_connect(&x.hub);
	raw_hello(s);
	size_t len = 300 * 1024;
	uint8_t *body = make_bin(len, 11);
	ipchub_msg *m = NULL;
	int fd, p[2];

	fd = memfd_with(body, len, 0); /* no seals */
	raw_send_memfd(s, 1, "mf.b", len, fd, 0);
	close(fd);
	expect_raw_error(s, 1, WIRE_E_MEMFD_UNSEALED);
	/* Sealed against writes only: it could still grow or shrink. */
	fd = memfd_with(body, len, F_SEAL_WRITE);
	raw_send_memfd(s, 2, "mf.b", len, fd, 0);
	close(fd);
	expect_raw_error(s, 2, WIRE_E_MEMFD_UNSEALED);
	/* Not a memfd at all. */
	assert_int_equal(pipe(p), 0);
	raw_send_memfd(s, 3, "mf.b", len, p[0], 0);
	close(p[0]);
	close(p[1]);
	expect_raw_error(s, 3, WIRE_E_MEMFD_UNSEALED);
	/* Sealed, but not the length the frame says. */
	fd = memfd_with(body, len, MEMFD_SEALS);
	raw_send_memfd(s, 4, "mf.b", len + 1, fd, 0);
	expect_raw_error(s, 4, WIRE_E_MEMFD_SIZE);
	/* Nothing else was lost: the same memfd, right length, arrives. */
	raw_send_memfd(s, 5, "mf.b", len, fd, 0);
	close(fd);
	assert_int_equal(ipchub_recv(b, WAIT_MS, &m), IPCHUB_OK);
	assert_int_equal(ipchub_msg_id(m), 5);
	expect_body(m, body, len);
	ipchub_msg_free(m);
	assert_int_equal(hub_stat_u64(b, "fds_in_flight"), 0);

	close(s);
	ipchub_close(b);
	free(body);
	fx_end(&x);
}

/* ---- the receiver's high-water mark counts memfd bytes ---- */

static void test_memfd_hwm(void **state)
{
	static const char *const args[] = { "--queue-hwm", "1048576", NULL };
	struct fx x;

	(void)state;
	fx_start(&x, args);
	ipchub *b = hub_client(&x.hub, "mf.b"); /* does not read for now */
	int s = raw_connect(&x.hub);
	raw_hello(s);
	size_t len = 256 * 1024;
	uint8_t *body = make_bin(len, 12);
	int fd = memfd_with(body, len, MEMFD_SEALS);
	ipchub_msg *m = NULL;

	/* Each frame is ~30 bytes on the wire, but 256 KiB of the queue:
	 * with the mark at 1 MiB, 5 go (the fifth starts at exactly 1 MiB,
	 * not over it) and the rest are QUEUE_FULL. */
	for (uint64_t id = 1; id <= 8; id++)
		raw_send_memfd(s, id, "mf.b", len, fd, WF_NOWAIT);
	for (uint64_t id = 6; id <= 8; id++)
		expect_raw_error(s, id, WIRE_E_QUEUE_FULL);
	for (uint64_t id = 1; id <= 5; id++) {
		assert_int_equal(ipchub_recv(b, WAIT_MS, &m), IPCHUB_OK);
		assert_int_equal(ipchub_msg_id(m), id);
		expect_body(m, body, len);
		ipchub_msg_free(m);
	}
	assert_int_equal(ipchub_recv(b, 0, &m), IPCHUB_E_TIMEOUT);

	/* Without NOWAIT the sender is parked, and resumed once b has read
	 * them: all 12 arrive, in order. */
	ipchub *a = hub_client(&x.hub, "mf.a");
	uint64_t first = 0, id;
	for (int i = 0; i < 12; i++) {
		assert_int_equal(ipchub_send(a, "mf.b", body, len, &id),
				 IPCHUB_OK);
		if (!first)
			first = id;
	}
	assert_int_equal(ipchub_flush(a, WAIT_MS), IPCHUB_OK);
	for (int i = 0; i < 12; i++) {
		assert_int_equal(ipchub_recv(b, WAIT_MS, &m), IPCHUB_OK);
		assert_int_equal(ipchub_msg_id(m), first + (uint64_t)i);
		expect_body(m, body, len);
		ipchub_msg_free(m);
	}

	close(fd);
	close(s);
	ipchub_close(a);
	ipchub_close(b);
	free(body);
	fx_end(&x);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_memfd_roundtrip),
		cmocka_unit_test(test_memfd_inline_receiver),
		cmocka_unit_test(test_memfd_rejected),
		cmocka_unit_test(test_memfd_hwm),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
