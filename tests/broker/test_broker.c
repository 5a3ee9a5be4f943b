/* test_broker.c - the broker in-process, over a real Unix socket: the
 * loop is pumped with EVLOOP_NONBLOCK between client steps, so the test
 * stays single-threaded. Covers the listener's path rules (live broker,
 * stale socket, non-socket file, socket mode, unlink at exit), the
 * handshake, routing with stamps, backpressure parking, and shutdown. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cmocka.h>

#include "broker.h"
#include "frame.h"

struct fx {
	char dir[64];
	char path[128];
	struct broker_conf conf;
	struct broker *b;
};

static void pump(struct broker *b)
{
	for (int i = 0; i < 20; i++)
		event_base_loop(broker_base(b), EVLOOP_NONBLOCK);
}

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	char err[256];

	strcpy(f->dir, "/tmp/ipchub-test-XXXXXX");
	if (!mkdtemp(f->dir))
		return -1;
	snprintf(f->path, sizeof(f->path), "%s/s.sock", f->dir);
	conf_defaults(&f->conf);
	f->conf.socket_path = f->path;
	f->conf.log_level = LOG_LVL_ERROR;
	f->conf.queue_hwm = IPCHUB_QUEUE_HWM_MIN;
	f->b = broker_new(&f->conf, err, sizeof(err));
	if (!f->b) {
		fprintf(stderr, "broker_new: %s\n", err);
		return -1;
	}
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;

	broker_free(f->b);
	unlink(f->path);
	rmdir(f->dir);
	free(f);
	return 0;
}

static int client(const char *path)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	assert_true(fd >= 0);
	strcpy(sa.sun_path, path);
	assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	return fd;
}

static void csend(int fd, const struct frame_hdr *h, const void *body,
		  size_t blen)
{
	uint8_t buf[FRAME_ENC_MAX];
	size_t n = frame_encode(h, blen, buf, sizeof(buf));

	assert_int_equal(send(fd, buf, n, MSG_NOSIGNAL), (ssize_t)n);
	if (blen)
		assert_int_equal(send(fd, body, blen, MSG_NOSIGNAL), (ssize_t)blen);
}

/* Receive one frame, pumping the broker while waiting. Returns 0, or -1
 * on EOF. The body (if any) is copied to body/blen. */
static int crecv(struct broker *b, int fd, struct frame_hdr *h, void *body,
		 size_t *blen)
{
	static uint8_t buf[1 << 20];
	uint32_t len;
	size_t have = 0, want = 4;
	struct mpr r;
	struct iovec iov;
	bool has_body;

	for (int spins = 0; have < want; spins++) {
		ssize_t n;

		assert_true(spins < 10000);
		pump(b);
		n = recv(fd, buf + have, want - have, MSG_DONTWAIT);
		if (n == 0)
			return -1;
		if (n < 0) {
			assert_true(errno == EAGAIN);
			continue;
		}
		have += (size_t)n;
		if (have == 4 && want == 4) {
			len = frame_get_len(buf);
			assert_true(len + 4 <= sizeof(buf));
			want = 4 + len;
		}
	}
	mpr_init_buf(&r, &iov, buf + 4, want - 4);
	assert_int_equal(frame_decode(&r, FRAME_B2C, h, &has_body, NULL), 0);
	if (blen) {
		*blen = has_body ? (size_t)mpr_left(&r) : 0;
		memcpy(body, buf + 4 + (want - 4 - *blen), *blen);
	}
	return 0;
}

static int hello(struct broker *b, const char *path)
{
	int fd = client(path);
	struct frame_hdr h;

	frame_init(&h, WIRE_HELLO);
	h.ver = h.ver_min = 1;
	h.has |= FH(WK_VER) | FH(WK_VER_MIN);
	csend(fd, &h, NULL, 0);
	assert_int_equal(crecv(b, fd, &h, NULL, NULL), 0);
	assert_int_equal(h.kind, WIRE_WELCOME);
	assert_int_equal(h.ver, 1);
	assert_true(h.conn >= 1);
	assert_int_equal(h.broker_len, 32);
	return fd;
}

static void reg(struct broker *b, int fd, const char *name, int code)
{
	struct frame_hdr h;

	frame_init(&h, WIRE_REGISTER);
	h.id = 1;
	h.has |= FH(WK_ID);
	frame_set_str(&h, WK_NAME, name, strlen(name));
	csend(fd, &h, NULL, 0);
	assert_int_equal(crecv(b, fd, &h, NULL, NULL), 0);
	if (code == WIRE_E_OK) {
		assert_int_equal(h.kind, WIRE_OK);
	} else {
		assert_int_equal(h.kind, WIRE_ERROR);
		assert_int_equal(h.code, code);
	}
}

static void test_listener_rules(void **state)
{
	struct fx *f = *state;
	struct broker_conf c = f->conf;
	struct stat st;
	char err[256], other[160];
	struct broker *b2;
	int fd;

	assert_int_equal(stat(f->path, &st), 0);
	assert_true(S_ISSOCK(st.st_mode));
	assert_int_equal(st.st_mode & 0777, 0600);
	/* A live broker on the path: refuse. */
	b2 = broker_new(&c, err, sizeof(err));
	assert_null(b2);
	assert_non_null(strstr(err, "another ipchubd is already listening"));
	/* A regular file on the path: refuse, and leave it alone. */
	snprintf(other, sizeof(other), "%s/file", f->dir);
	fd = open(other, O_CREAT | O_WRONLY, 0600);
	close(fd);
	c.socket_path = other;
	b2 = broker_new(&c, err, sizeof(err));
	assert_null(b2);
	assert_non_null(strstr(err, "not a socket"));
	assert_int_equal(unlink(other), 0);
	/* A stale socket file: removed and replaced; mode applied; unlinked
	 * at exit. */
	fd = socket(AF_UNIX, SOCK_STREAM, 0);
	{
		struct sockaddr_un sa = {.sun_family = AF_UNIX};

		strcpy(sa.sun_path, other);
		assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	}
	close(fd);
	c.socket_mode = 0660;
	b2 = broker_new(&c, err, sizeof(err));
	assert_non_null(b2);
	assert_int_equal(stat(other, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0660);
	broker_free(b2);
	assert_int_equal(stat(other, &st), -1);
}

static void test_route(void **state)
{
	struct fx *f = *state;
	struct broker *b = f->b;
	int a = hello(b, f->path), c = hello(b, f->path);
	struct frame_hdr h;
	uint8_t body[64];
	size_t blen;

	reg(b, a, "alice", WIRE_E_OK);
	reg(b, c, "carol", WIRE_E_OK);
	reg(b, c, "alice", WIRE_E_NAME_TAKEN);
	reg(b, c, "ipchub.x", WIRE_E_BAD_NAME);

	frame_init(&h, WIRE_SEND);
	h.id = 42;
	h.has |= FH(WK_ID);
	frame_set_str(&h, WK_TO, "carol", 5);
	csend(a, &h, "\xa2hi", 3);
	assert_int_equal(crecv(b, c, &h, body, &blen), 0);
	assert_int_equal(h.kind, WIRE_SEND);
	assert_int_equal(h.id, 42);
	assert_string_equal(h.from, "alice");
	assert_true(h.has & FH(WK_FROM_ID));
	assert_int_equal(blen, 3);
	assert_memory_equal(body, "\xa2hi", 3);

	/* REQUEST -> REPLY. */
	frame_init(&h, WIRE_REQUEST);
	h.id = 7;
	h.timeout = 10000;
	h.has |= FH(WK_ID) | FH(WK_TIMEOUT);
	frame_set_str(&h, WK_TO, "carol", 5);
	csend(a, &h, NULL, 0);
	assert_int_equal(crecv(b, c, &h, NULL, NULL), 0);
	assert_int_equal(h.kind, WIRE_REQUEST);
	assert_true(h.timeout > 0 && h.timeout <= 10000);
	{
		uint64_t requester = h.from_id;

		frame_init(&h, WIRE_REPLY);
		h.id = 7;
		h.to_id = requester;
		h.has |= FH(WK_ID) | FH(WK_TO_ID);
		csend(c, &h, "\x01", 1);
	}
	assert_int_equal(crecv(b, a, &h, body, &blen), 0);
	assert_int_equal(h.kind, WIRE_REPLY);
	assert_int_equal(h.id, 7);
	assert_string_equal(h.from, "carol");
	assert_int_equal(blen, 1);

	/* PEER_GONE at once when the responder leaves. */
	frame_init(&h, WIRE_REQUEST);
	h.id = 8;
	h.has |= FH(WK_ID);
	frame_set_str(&h, WK_TO, "carol", 5);
	csend(a, &h, NULL, 0);
	assert_int_equal(crecv(b, c, &h, NULL, NULL), 0);
	close(c);
	assert_int_equal(crecv(b, a, &h, NULL, NULL), 0);
	assert_int_equal(h.kind, WIRE_ERROR);
	assert_int_equal(h.code, WIRE_E_PEER_GONE);
	assert_int_equal(h.id, 8);
	close(a);
	pump(b);
}

/* A consumer that does not read: its sender is parked once the queue is
 * over the high-water mark, nothing is lost, NOWAIT gets QUEUE_FULL. */
static void test_backpressure(void **state)
{
	struct fx *f = *state;
	struct broker *b = f->b;
	int p = hello(b, f->path), s = hello(b, f->path), o = hello(b, f->path);
	static uint8_t big[8192];
	struct frame_hdr h;
	size_t blen;
	int sent = 0, got = 0;
	struct conn *pc, *sc;

	reg(b, s, "sink", WIRE_E_OK);
	reg(b, p, "prod", WIRE_E_OK);
	memset(big, 0, sizeof(big));
	big[0] = 0xc5; /* bin16 */
	big[1] = (sizeof(big) - 3) >> 8;
	big[2] = (sizeof(big) - 3) & 0xff;
	fcntl(p, F_SETFL, O_NONBLOCK);
	pc = TAILQ_FIRST(&b->all);
	sc = TAILQ_NEXT(pc, link);
	assert_int_equal(sc->id, pc->id + 1);
	/* Write until the producer's socket is full and it is parked. */
	for (int spins = 0; spins < 5000 && !pc->blocked_on; spins++) {
		uint8_t buf[FRAME_ENC_MAX + sizeof(big)];
		size_t n;

		frame_init(&h, WIRE_SEND);
		h.id = (uint64_t)sent + 1;
		h.has |= FH(WK_ID);
		frame_set_str(&h, WK_TO, "sink", 4);
		n = frame_encode(&h, sizeof(big), buf, sizeof(buf));
		memcpy(buf + n, big, sizeof(big));
		if (send(p, buf, n + sizeof(big), MSG_NOSIGNAL) ==
		    (ssize_t)(n + sizeof(big)))
			sent++;
		pump(b);
	}
	assert_ptr_equal(pc->blocked_on, sc);
	assert_false(pc->reading);
	/* Memory bound: about hwm plus one frame, however much is sent. */
	assert_true(evbuffer_get_length(sc->out) <=
		    f->conf.queue_hwm + 2 * (FRAME_ENC_MAX + sizeof(big)));
	/* NOWAIT from another sender. */
	frame_init(&h, WIRE_SEND);
	h.id = 99;
	h.flags = WF_NOWAIT;
	h.has |= FH(WK_ID) | FH(WK_FLAGS);
	frame_set_str(&h, WK_TO, "sink", 4);
	csend(o, &h, "\xc0", 1);
	assert_int_equal(crecv(b, o, &h, NULL, NULL), 0);
	assert_int_equal(h.code, WIRE_E_QUEUE_FULL);
	assert_int_equal(h.id, 99);
	/* The consumer reads everything, in order. */
	while (got < sent) {
		static uint8_t body[sizeof(big)];

		assert_int_equal(crecv(b, s, &h, body, &blen), 0);
		assert_int_equal(h.kind, WIRE_SEND);
		assert_int_equal(h.id, (uint64_t)got + 1);
		assert_int_equal(blen, sizeof(big));
		got++;
	}
	assert_null(pc->blocked_on);
	close(p);
	close(s);
	close(o);
	pump(b);
}

static void test_shutdown(void **state)
{
	struct fx *f = *state;
	struct broker *b = f->b;
	int a = hello(b, f->path);
	struct frame_hdr h;
	struct stat st;

	broker_stop(b);
	assert_int_equal(crecv(b, a, &h, NULL, NULL), 0);
	assert_int_equal(h.kind, WIRE_BYE);
	assert_int_equal(h.code, WIRE_E_SHUTTING_DOWN);
	assert_int_equal(crecv(b, a, &h, NULL, NULL), -1);
	assert_int_equal(stat(f->path, &st), -1); /* unlinked */
	close(a);
}

/* Large frames sent back to back are read one by one (each read ends at
 * a frame's last byte), so their bodies move to the receiver's queue
 * without a copy: stats' bytes_copied stays put. Reading what the socket
 * holds would put the end of one body and the start of the next in one
 * chain and copy the former. */
static void test_large_bodies_move(void **state)
{
	enum { N = 4, BODY = 100 * 1024 };
	struct fx *f = *state;
	struct broker *b = f->b;
	int a = hello(b, f->path), c = hello(b, f->path);
	static uint8_t stream[N * (BODY + FRAME_ENC_MAX)];
	static uint8_t body[BODY], got[BODY];
	struct frame_hdr h;
	size_t len = 0, sent = 0, blen;
	uint64_t copied;

	reg(b, c, "carol", WIRE_E_OK);
	body[0] = 0xc6; /* bin32 of BODY - 5 bytes */
	body[1] = 0;
	body[2] = (uint8_t)((BODY - 5) >> 16);
	body[3] = (uint8_t)((BODY - 5) >> 8);
	body[4] = (uint8_t)(BODY - 5);
	frame_init(&h, WIRE_SEND);
	h.has |= FH(WK_ID);
	frame_set_str(&h, WK_TO, "carol", 5);
	/* A first large frame tells the broker this stream is of them. */
	h.id = 100;
	memset(body + 5, 0x55, BODY - 5);
	csend(a, &h, body, BODY);
	assert_int_equal(crecv(b, c, &h, got, &blen), 0);
	assert_int_equal(blen, BODY);
	copied = b->st.copied_bytes;
	frame_init(&h, WIRE_SEND);
	h.has |= FH(WK_ID);
	frame_set_str(&h, WK_TO, "carol", 5);
	for (int i = 0; i < N; i++) {
		h.id = (uint64_t)i + 1;
		memset(body + 5, i + 1, BODY - 5);
		len += frame_encode(&h, BODY, stream + len, FRAME_ENC_MAX);
		memcpy(stream + len, body, BODY);
		len += BODY;
	}
	/* All of it at once, as far as the socket takes it. */
	while (sent < len) {
		ssize_t n = send(a, stream + sent, len - sent,
				 MSG_NOSIGNAL | MSG_DONTWAIT);

		if (n > 0)
			sent += (size_t)n;
		else if (errno != EAGAIN)
			fail_msg("send: %s (n %zd)", strerror(errno), n);
		pump(b);
	}
	for (int i = 0; i < N; i++) {
		assert_int_equal(crecv(b, c, &h, got, &blen), 0);
		assert_int_equal(h.id, (uint64_t)i + 1);
		assert_int_equal(blen, BODY);
		assert_int_equal(got[5], i + 1);
		assert_int_equal(got[BODY - 1], i + 1);
	}
	assert_int_equal(b->st.copied_bytes, copied);
	close(a);
	close(c);
	pump(b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_listener_rules, setup, teardown),
		cmocka_unit_test_setup_teardown(test_route, setup, teardown),
		cmocka_unit_test_setup_teardown(test_backpressure, setup, teardown),
		cmocka_unit_test_setup_teardown(test_shutdown, setup, teardown),
		cmocka_unit_test_setup_teardown(test_large_bodies_move, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
