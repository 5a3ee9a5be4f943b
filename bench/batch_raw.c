/*
 * batch_raw.c - throughput through ipchubd with batched SENDs (PROTOCOL.md
 * 6.3.1), in raw frames, to measure the broker's cost per message with and
 * without batching while no client library batches yet.
 *
 *   bench_batch_raw --socket P --size B --count N --batch K [--split]
 *
 * Model: one process forks a consumer and then produces. The consumer
 * registers bench.sink (announcing BATCH in its HELLO unless --split, in
 * which case the broker splits each batch into single SENDs for it) and
 * reads until it has counted N messages: a batched frame counts its array
 * length, any other SEND one. The producer sends N messages of B-byte
 * bodies (bench_body) to bench.sink, K per SEND frame (K = 1: plain SENDs
 * without flags, the unbatched baseline), written in 256 KiB chunks, then
 * PINGs and waits for the PONG (every frame routed) and for the consumer.
 * Both sides are plain blocking sockets with no library in between, so a
 * run under callgrind of the broker compares like with like. Prints one
 * line: messages, seconds, messages per second.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common.h"
#include "frame.h"

#define OUT_CHUNK (256u * 1024u)
#define IN_CAP (1u << 20)

static int connect_to(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0 || strlen(path) >= sizeof(sa.sun_path))
		bench_die("socket: %s", strerror(errno));
	strcpy(sa.sun_path, path);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		bench_die("connect %s: %s", path, strerror(errno));
	return fd;
}

static void write_all(int fd, const void *p, size_t n)
{
	const uint8_t *b = p;

	while (n) {
		ssize_t w = write(fd, b, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			bench_die("write: %s", strerror(errno));
		b += w;
		n -= (size_t)w;
	}
}

/* Buffered frame reader. */
struct rd {
	int fd;
	uint8_t *buf;
	size_t have, at;
};

/* Next frame (bytes after the prefix) into *p, *len; header decoded. */
static void next_frame(struct rd *r, struct frame_hdr *h, struct mpr *m,
		       struct iovec *iov)
{
	for (;;) {
		size_t avail = r->have - r->at;
		bool body;

		if (avail >= 4) {
			uint32_t len = frame_get_len(r->buf + r->at);

			if (len + 4u > IN_CAP)
				bench_die("frame of %u bytes", len);
			if (avail >= 4u + len) {
				mpr_init_buf(m, iov, r->buf + r->at + 4, len);
				if (frame_decode(m, FRAME_B2C, h, &body, NULL))
					bench_die("bad frame from the broker");
				r->at += 4u + len;
				return;
			}
		}
		memmove(r->buf, r->buf + r->at, avail);
		r->have = avail;
		r->at = 0;
		ssize_t n = read(r->fd, r->buf + r->have, IN_CAP - r->have);
		if (n <= 0)
			bench_die("read: %s", n ? strerror(errno) : "EOF");
		r->have += (size_t)n;
	}
}

static void send_hdr(int fd, const struct frame_hdr *h)
{
	uint8_t out[FRAME_ENC_MAX];

	write_all(fd, out, frame_encode(h, 0, out, sizeof(out)));
}

static int hello(const char *path, uint32_t flags, struct rd *r)
{
	struct frame_hdr h;
	struct iovec iov;
	struct mpr m;

	r->fd = connect_to(path);
	r->buf = malloc(IN_CAP);
	r->have = r->at = 0;
	if (!r->buf)
		bench_die("out of memory");
	frame_init(&h, WIRE_HELLO);
	h.ver = IPCHUB_PROTO_VERSION_MAX;
	h.ver_min = IPCHUB_PROTO_VERSION_MIN;
	h.flags = flags;
	h.has |= FH(WK_VER) | FH(WK_VER_MIN) | (flags ? FH(WK_FLAGS) : 0);
	send_hdr(r->fd, &h);
	next_frame(r, &h, &m, &iov);
	if (h.kind != WIRE_WELCOME || !(h.flags & WF_BATCH))
		bench_die("no WELCOME with flags BATCH");
	return r->fd;
}

static void consumer(const char *path, uint64_t count, bool split, int ready)
{
	struct frame_hdr h;
	struct iovec iov;
	struct mpr m;
	struct rd r;
	uint64_t got = 0;

	hello(path, split ? 0 : WF_BATCH, &r);
	frame_init(&h, WIRE_REGISTER);
	h.id = 1;
	h.has |= FH(WK_ID);
	frame_set_str(&h, WK_NAME, BENCH_SINK, strlen(BENCH_SINK));
	send_hdr(r.fd, &h);
	next_frame(&r, &h, &m, &iov);
	if (h.kind != WIRE_OK)
		bench_die("register %s failed", BENCH_SINK);
	if (write(ready, "r", 1) != 1)
		bench_die("ready pipe: %s", strerror(errno));
	while (got < count) {
		uint32_t n = 1;

		next_frame(&r, &h, &m, &iov);
		if (h.kind != WIRE_SEND)
			bench_die("consumer: unexpected %s", frame_kind_name(h.kind));
		if ((h.has & FH(WK_FLAGS)) && (h.flags & WF_BATCH) &&
		    mpr_read_array(&m, &n) != MPR_OK)
			bench_die("consumer: bad batch");
		got += n;
	}
	close(r.fd);
	free(r.buf);
}

static void producer(const char *path, size_t size, uint64_t count,
		     uint32_t k)
{
	uint8_t *out = malloc(OUT_CHUNK + FRAME_ENC_MAX + 5 + (size_t)k * size);
	uint8_t *body = malloc(size);
	struct frame_hdr h;
	struct iovec iov;
	struct mpr m;
	struct rd r;
	size_t used = 0;
	uint64_t id = 1;

	if (!out || !body)
		bench_die("out of memory");
	bench_body(body, size);
	hello(path, 0, &r);
	while (id <= count) {
		uint32_t n = count - id + 1 < k ? (uint32_t)(count - id + 1) : k;
		size_t blen = (size_t)n * size + (k > 1 ? 5 : 0);

		frame_init(&h, WIRE_SEND);
		h.id = id;
		h.has |= FH(WK_ID);
		frame_set_str(&h, WK_TO, BENCH_SINK, strlen(BENCH_SINK));
		if (k > 1) {
			h.flags = WF_BATCH;
			h.has |= FH(WK_FLAGS);
		}
		used += frame_encode(&h, blen, out + used, FRAME_ENC_MAX);
		if (k > 1) {
			out[used] = 0xdd;
			frame_put_len(out + used + 1, n);
			used += 5;
		}
		for (uint32_t i = 0; i < n; i++, used += size)
			memcpy(out + used, body, size);
		if (used >= OUT_CHUNK) {
			write_all(r.fd, out, used);
			used = 0;
		}
		id += n;
	}
	frame_init(&h, WIRE_PING);
	h.id = count + 1;
	h.has |= FH(WK_ID);
	used += frame_encode(&h, 0, out + used, FRAME_ENC_MAX);
	write_all(r.fd, out, used);
	next_frame(&r, &h, &m, &iov);
	if (h.kind != WIRE_PONG)
		bench_die("producer: %s %s instead of PONG", frame_kind_name(h.kind),
			  h.kind == WIRE_ERROR ? frame_code_name((int)h.code) : "");
	close(r.fd);
	free(r.buf);
	free(out);
	free(body);
}

int main(int argc, char **argv)
{
	const char *path = NULL;
	size_t size = 64;
	uint64_t count = 100000;
	uint32_t k = 1;
	bool split = false;
	int pfd[2], status;
	char c;
	pid_t pid;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--split") == 0)
			split = true;
		else if (i + 1 < argc && strcmp(argv[i], "--socket") == 0)
			path = argv[++i];
		else if (i + 1 < argc && strcmp(argv[i], "--size") == 0)
			size = strtoull(argv[++i], NULL, 10);
		else if (i + 1 < argc && strcmp(argv[i], "--count") == 0)
			count = strtoull(argv[++i], NULL, 10);
		else if (i + 1 < argc && strcmp(argv[i], "--batch") == 0)
			k = (uint32_t)strtoul(argv[++i], NULL, 10);
		else
			path = NULL, i = argc;
	}
	if (!path || size < 2 || size > 65536 || count == 0 || k == 0 ||
	    k > IPCHUB_MAX_BATCH) {
		fprintf(stderr, "usage: bench_batch_raw --socket P --size B "
				"--count N --batch K [--split]\n");
		return 2;
	}
	if (pipe(pfd) < 0)
		bench_die("pipe: %s", strerror(errno));
	pid = fork();
	if (pid < 0)
		bench_die("fork: %s", strerror(errno));
	if (pid == 0) {
		close(pfd[0]);
		consumer(path, count, split, pfd[1]);
		_exit(0);
	}
	close(pfd[1]);
	if (read(pfd[0], &c, 1) != 1)
		bench_die("consumer did not start");
	uint64_t t0 = bench_now_ns();
	producer(path, size, count, k);
	if (waitpid(pid, &status, 0) < 0 || !WIFEXITED(status) ||
	    WEXITSTATUS(status) != 0)
		bench_die("consumer failed");
	double s = (double)(bench_now_ns() - t0) / 1e9;
	printf("batch_raw size %zu batch %u%s: %llu messages in %.3f s, %.0f msg/s\n",
	       size, k, split ? " (split)" : "", (unsigned long long)count, s,
	       (double)count / s);
	return 0;
}
