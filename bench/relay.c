/*
 * relay.c - baseline (b): the smallest useful broker. A process that
 * accepts one sink connection, then N source connections, and forwards
 * length-prefixed frames from every source to the sink (and, with a
 * single source, from the sink back to it, for round trips). It parses
 * only the 4-byte length prefixes, so frames from different sources are
 * never interleaved, and forwards straight out of its read buffer: no
 * per-frame allocation, no copy, no header decoding, no routing table.
 * Whatever ipchubd does per message on top of this is the broker's cost;
 * this program is the ceiling for any broker on this machine.
 *
 *   bench_relay thru  --size BYTES --count N [--producers K] [--perframe]
 *   bench_relay rtt   --size BYTES --count N [--samples FILE]
 *   bench_relay fanout --size BYTES --count N [--subs K]
 *   bench_relay serve --socket PATH [--sources N]
 *
 * thru/rtt start the relay, a consumer (or echo server) and the
 * producers (or round-trip client) as separate processes on a fresh
 * socket and print one JSON line (see common.h). Producers batch frames
 * into 64 KiB writes unless --perframe (one write() per frame).
 *
 * fanout: the relay accepts K sinks, then one source, and writes every
 * byte the source sends to each sink (the ceiling of a pub/sub broker:
 * no topic match, one read and K writes of the same buffer).
 *
 * Relay model: one poll() loop over non-blocking sockets. Each connection
 * owns an input buffer [start, scan, end): bytes before `scan` are whole
 * frames ready to forward. A destination is "locked" by a source while a
 * partial write leaves it mid-frame; other sources wait until the lock
 * owner reaches the frame boundary it was writing to.
 */
#include "common.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

/* Per-connection buffer: 8 MiB, or four frames when frames are larger
 * (thru --size 16 MiB / 256 MiB, the memfd lane's comparison rows). Set
 * once in main(), before the relay is forked. */
static size_t g_relay_buf = 8u * 1024u * 1024u;
#define RELAY_BUF g_relay_buf
#define RELAY_MAX_SOURCES 64

struct rconn {
	int fd;
	uint8_t *buf;
	size_t start, scan, end;
	int eof;        /* peer closed its sending side */
	int dead;       /* writes to it fail: drop what is addressed to it */
	int dst;        /* index of the destination, -1: none */
	int lock_owner; /* as a destination: source mid-frame, -1: none */
	size_t lock_end;
	int want_out;   /* a source is waiting for it to become writable */
};

static uint32_t be32(const uint8_t *p)
{
	return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) |
	       ((uint32_t)p[2] << 8) | (uint32_t)p[3];
}

static void set_nonblock(int fd)
{
	int fl = fcntl(fd, F_GETFL);
	if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
		bench_die("fcntl: %s", strerror(errno));
}

/* Forward what can be forwarded without blocking; returns whether any
 * byte moved. */
static int pump(struct rconn *cv, int n)
{
	int moved = 0;
	for (int i = 0; i < n; i++) {
		struct rconn *c = &cv[i];
		if (c->scan == c->start)
			continue;
		if (c->dst < 0 || cv[c->dst].dead) {
			c->start = c->scan;
		} else {
			struct rconn *d = &cv[c->dst];
			if (d->lock_owner >= 0 && d->lock_owner != i)
				continue;
			size_t lim = d->lock_owner == i ? d->lock_end : c->scan;
			ssize_t w = write(d->fd, c->buf + c->start, lim - c->start);
			if (w < 0) {
				if (errno == EAGAIN || errno == EINTR) {
					d->want_out = 1;
				} else {
					d->dead = 1;
					d->lock_owner = -1;
				}
				continue;
			}
			moved = 1;
			c->start += (size_t)w;
			if (c->start < lim) {
				d->lock_owner = i;
				d->lock_end = lim;
				d->want_out = 1;
			} else if (d->lock_owner == i) {
				d->lock_owner = -1;
			}
		}
		if (c->start == c->end)
			c->start = c->scan = c->end = 0;
	}
	return moved;
}

static void on_readable(struct rconn *cv, int i)
{
	struct rconn *c = &cv[i];
	if (c->start > 0 && RELAY_BUF - c->end < RELAY_BUF / 4) {
		/* Make room; a lock held by c points into its buffer. */
		size_t sh = c->start;
		memmove(c->buf, c->buf + sh, c->end - sh);
		c->start -= sh;
		c->scan -= sh;
		c->end -= sh;
		if (c->dst >= 0 && cv[c->dst].lock_owner == i)
			cv[c->dst].lock_end -= sh;
	}
	if (c->end == RELAY_BUF)
		return;
	ssize_t r = read(c->fd, c->buf + c->end, RELAY_BUF - c->end);
	if (r < 0) {
		if (errno == EAGAIN || errno == EINTR)
			return;
		c->eof = 1;
		return;
	}
	if (r == 0) {
		c->eof = 1;
		return;
	}
	c->end += (size_t)r;
	while (c->end - c->scan >= 4) {
		uint32_t len = be32(c->buf + c->scan);
		if ((size_t)len + 4 > RELAY_BUF / 2)
			bench_die("relay: frame of %u bytes too large", len);
		if (c->end - c->scan - 4 < len)
			break;
		c->scan += 4 + (size_t)len;
	}
}

/* Accept the sink, then nsrc sources, and relay until every source has
 * closed and everything it sent has been written out. */
static void relay_serve(int lfd, int nsrc)
{
	int n = nsrc + 1;
	struct rconn cv[RELAY_MAX_SOURCES + 1];
	struct pollfd pv[RELAY_MAX_SOURCES + 1];
	signal(SIGPIPE, SIG_IGN);
	for (int i = 0; i < n; i++) {
		int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
		if (fd < 0)
			bench_die("accept: %s", strerror(errno));
		set_nonblock(fd);
		memset(&cv[i], 0, sizeof(cv[i]));
		cv[i].fd = fd;
		cv[i].buf = malloc(RELAY_BUF);
		if (!cv[i].buf)
			bench_die("out of memory");
		cv[i].dst = i == 0 ? (nsrc == 1 ? 1 : -1) : 0;
		cv[i].lock_owner = -1;
	}
	close(lfd);
	for (;;) {
		while (pump(cv, n))
			;
		int done = 1;
		for (int i = 1; i < n; i++)
			if (!cv[i].eof || cv[i].scan != cv[i].start)
				done = 0;
		if (done)
			break;
		for (int i = 0; i < n; i++) {
			pv[i].fd = cv[i].fd;
			pv[i].events = 0;
			if (!cv[i].eof &&
			    (cv[i].end < RELAY_BUF || cv[i].start > 0))
				pv[i].events |= POLLIN;
			if (cv[i].want_out && !cv[i].dead)
				pv[i].events |= POLLOUT;
		}
		if (poll(pv, (nfds_t)n, -1) < 0) {
			if (errno == EINTR)
				continue;
			bench_die("poll: %s", strerror(errno));
		}
		for (int i = 0; i < n; i++) {
			if (pv[i].revents & (POLLOUT | POLLERR))
				cv[i].want_out = 0;
			if ((pv[i].events & POLLIN) &&
			    (pv[i].revents & (POLLIN | POLLHUP | POLLERR)))
				on_readable(cv, i);
		}
	}
	for (int i = 0; i < n; i++) {
		close(cv[i].fd);
		free(cv[i].buf);
	}
}

/* Fan-out relay: accept nsinks sinks, then one source; copy the source's
 * byte stream to every sink. The source buffer holds [base, end); sink k
 * has written up to off[k]; the buffer is compacted past the slowest. A
 * single source means frames never interleave, so no framing is needed. */
static void relay_fanout(int lfd, int nsinks)
{
	int sfd[RELAY_MAX_SOURCES], src = -1;
	size_t off[RELAY_MAX_SOURCES], end = 0;
	struct pollfd pv[RELAY_MAX_SOURCES + 1];
	uint8_t *buf = malloc(RELAY_BUF);
	int eof = 0;

	if (!buf)
		bench_die("out of memory");
	for (int i = 0; i <= nsinks; i++) {
		int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);

		if (fd < 0)
			bench_die("accept: %s", strerror(errno));
		set_nonblock(fd);
		if (i < nsinks) {
			sfd[i] = fd;
			off[i] = 0;
		} else {
			src = fd;
		}
	}
	close(lfd);
	for (;;) {
		size_t low = end;
		int pending = 0;

		for (int i = 0; i < nsinks; i++) {
			while (off[i] < end) {
				ssize_t w = write(sfd[i], buf + off[i], end - off[i]);

				if (w < 0) {
					if (errno != EAGAIN && errno != EINTR)
						bench_die("fanout write: %s",
							  strerror(errno));
					break;
				}
				off[i] += (size_t)w;
			}
			if (off[i] < low)
				low = off[i];
			if (off[i] < end)
				pending = 1;
		}
		if (low > 0 && (low == end || RELAY_BUF - end < RELAY_BUF / 4)) {
			memmove(buf, buf + low, end - low);
			end -= low;
			for (int i = 0; i < nsinks; i++)
				off[i] -= low;
		}
		if (eof && !pending)
			break;
		int n = 0;
		for (int i = 0; i < nsinks; i++) {
			pv[n].fd = sfd[i];
			pv[n++].events = off[i] < end ? POLLOUT : 0;
		}
		pv[n].fd = src;
		pv[n++].events = !eof && end < RELAY_BUF ? POLLIN : 0;
		if (poll(pv, (nfds_t)n, -1) < 0) {
			if (errno == EINTR)
				continue;
			bench_die("poll: %s", strerror(errno));
		}
		if (pv[nsinks].revents & (POLLIN | POLLHUP | POLLERR)) {
			ssize_t r = read(src, buf + end, RELAY_BUF - end);

			if (r > 0)
				end += (size_t)r;
			else if (r == 0 || (errno != EAGAIN && errno != EINTR))
				eof = 1;
		}
	}
	for (int i = 0; i < nsinks; i++)
		close(sfd[i]);
	close(src);
	free(buf);
}

static int listen_at(const char *path)
{
	struct sockaddr_un sa;
	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sa.sun_path))
		bench_die("socket path too long");
	strcpy(sa.sun_path, path);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		bench_die("socket: %s", strerror(errno));
	unlink(path);
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    listen(fd, 128) < 0)
		bench_die("bind/listen %s: %s", path, strerror(errno));
	return fd;
}

static int connect_to(const char *path)
{
	struct sockaddr_un sa;
	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	strcpy(sa.sun_path, path);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		bench_die("connect %s: %s", path, strerror(errno));
	return fd;
}

/* bench_relay fanout: K consumers, one batched producer, one relay. */
static void fanout_run(const char *path, int lfd, size_t size,
		       uint64_t count, int k)
{
	pid_t relay, cons[RELAY_MAX_SOURCES], prod;
	int res[2];
	uint64_t t_first, t_last;

	relay = bench_fork();
	if (relay == 0) {
		relay_fanout(lfd, k);
		_exit(0);
	}
	close(lfd);
	if (pipe(res) < 0)
		bench_die("pipe: %s", strerror(errno));
	for (int i = 0; i < k; i++) {
		int fd = connect_to(path); /* accepted in this order */

		cons[i] = bench_fork();
		if (cons[i] == 0) {
			close(res[0]);
			bench_raw_consume_times(fd, size, count, &t_first,
						&t_last);
			bench_fanout_report(res[1], t_first, t_last);
			_exit(0);
		}
		close(fd);
	}
	close(res[1]);
	int fd = connect_to(path);
	prod = bench_fork();
	if (prod == 0) {
		bench_raw_produce(fd, size, count, 1);
		_exit(0);
	}
	close(fd);
	bench_fanout_collect(res[0], k, &t_first, &t_last);
	close(res[0]);
	for (int i = 0; i < k; i++)
		bench_wait_ok(cons[i], "consumer");
	bench_wait_ok(prod, "producer");
	bench_wait_ok(relay, "relay");
	bench_emit_fanout("relay-batched", size, count, k, t_first, t_last);
}

static void usage(void)
{
	fprintf(stderr,
		"usage: bench_relay thru --size BYTES --count N [--producers K] "
		"[--perframe]\n"
		"       bench_relay rtt --size BYTES --count N [--samples FILE]\n"
		"       bench_relay fanout --size BYTES --count N [--subs K]\n"
		"       bench_relay serve --socket PATH [--sources N]\n");
	exit(2);
}

int main(int argc, char **argv)
{
	if (argc < 2)
		usage();
	const char *mode = argv[1];
	signal(SIGPIPE, SIG_IGN);

	if (strcmp(mode, "serve") == 0) {
		const char *path = bench_opt(argc, argv, "--socket", NULL);
		int nsrc = (int)bench_opt_u64(argc, argv, "--sources", 1);
		if (!path || nsrc < 1 || nsrc > RELAY_MAX_SOURCES)
			usage();
		relay_serve(listen_at(path), nsrc);
		unlink(path);
		return 0;
	}

	size_t size = (size_t)bench_opt_u64(argc, argv, "--size", 64);
	uint64_t count = bench_opt_u64(argc, argv, "--count", 100000);
	int producers = (int)bench_opt_u64(argc, argv, "--producers", 1);
	int perframe = bench_flag(argc, argv, "--perframe");
	int thru = strcmp(mode, "thru") == 0;
	int fan = strcmp(mode, "fanout") == 0;
	int subs = (int)bench_opt_u64(argc, argv, "--subs", 4);
	if (size <= SIZE_MAX / 8 && 4 * (size + 64) > g_relay_buf)
		g_relay_buf = 4 * (size + 64);
	if ((!thru && !fan && strcmp(mode, "rtt") != 0) || size < 2 ||
	    subs < 1 || subs > RELAY_MAX_SOURCES ||
	    size > RELAY_BUF / 4 || count < 2 || producers < 1 ||
	    producers > RELAY_MAX_SOURCES || (!thru && producers != 1))
		usage();
	uint64_t per = count / (uint64_t)producers;
	if (per < 1)
		usage();
	count = per * (uint64_t)producers;

	char dir[] = "/tmp/ipchub-relay-XXXXXX";
	if (!mkdtemp(dir))
		bench_die("mkdtemp: %s", strerror(errno));
	char path[64];
	snprintf(path, sizeof(path), "%s/relay.sock", dir);
	int lfd = listen_at(path);

	if (fan) {
		fanout_run(path, lfd, size, count, subs);
		unlink(path);
		rmdir(dir);
		return 0;
	}
	pid_t relay = bench_fork();
	if (relay == 0) {
		relay_serve(lfd, producers);
		_exit(0);
	}
	close(lfd);

	/* The relay accepts in connection order: sink first. */
	int sink = connect_to(path);
	pid_t cons = bench_fork();
	if (cons == 0) {
		if (thru) {
			const char *sys = producers > 1 ? "relay" :
					  perframe ? "relay-perframe" :
						     "relay-batched";
			bench_raw_consume(sink, sys,
					  producers > 1 ? "n-to-1" : "thru",
					  size, count, producers);
		} else {
			bench_raw_rtt_server(sink, size);
		}
		_exit(0);
	}
	close(sink);

	pid_t prod[RELAY_MAX_SOURCES];
	if (thru) {
		bench_gate_open();
		for (int k = 0; k < producers; k++) {
			int fd = connect_to(path);
			prod[k] = bench_fork();
			if (prod[k] == 0) {
				bench_gate_child();
				bench_raw_produce(fd, size, per, !perframe);
				_exit(0);
			}
			close(fd);
		}
		bench_gate_release(producers);
		for (int k = 0; k < producers; k++)
			bench_wait_ok(prod[k], "producer");
	} else {
		int fd = connect_to(path);
		bench_raw_rtt_client(fd, "relay-batched", size, count,
				     bench_opt(argc, argv, "--samples", NULL));
		close(fd);
	}
	bench_wait_ok(cons, thru ? "consumer" : "echo server");
	bench_wait_ok(relay, "relay");
	unlink(path);
	rmdir(dir);
	return 0;
}
