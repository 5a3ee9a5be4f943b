/*
 * nats_bench.c - peer (f): NATS (Debian's nats-server) over TCP loopback,
 * with a minimal client of the NATS text protocol written here.
 *
 *   nats_bench thru --port PORT --size BYTES --count N
 *   nats_bench rtt  --port PORT --size BYTES --count N [--samples FILE]
 *
 * bench/run starts nats-server on 127.0.0.1 and a free port; this program
 * connects to it. thru forks a subscriber on subject bench.sink and
 * publishes from the parent; rtt forks a responder on bench.echo and
 * makes request/reply round trips through a reply (inbox) subject.
 *
 * Model: each connection owns one struct nconn: a socket, a bounded read
 * buffer (largest payload plus the server's 4 KiB control-line limit) and
 * a write buffer. Publishers append PUB commands to the write buffer and
 * write it once it holds BENCH_BATCH_BYTES, as the official clients'
 * flusher does (the Go client buffers 32 KiB; libipchub flushes at the
 * same 64 KiB as here); a round trip or a flow-control wait flushes first.
 * The reader parses INFO, PING (answered with PONG at once), PONG, +OK,
 * -ERR (fatal) and MSG; a MSG payload points into the read buffer and is
 * valid until the next read.
 *
 * Flow control: core NATS drops a subscriber that falls too far behind
 * (slow consumer), so the subscriber publishes an empty message on
 * bench.ack every window of messages and the publisher keeps at most two
 * windows unacknowledged (bench_flow_window, also used by the D-Bus
 * peer). The consumer times first to last arrival, as everywhere.
 */
#include "common.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

/* nats-server's default max_control_line: longest command line (INFO,
 * MSG header) the reader accepts. */
#define NB_MAX_CONTROL 4096u

#define NB_SUBJ_SINK "bench.sink"
#define NB_SUBJ_ACK "bench.ack"
#define NB_SUBJ_ECHO "bench.echo"
#define NB_INBOX "_INBOX.bench.rtt"
/* Fan-out subscribers (their index travels in one byte). */
#define NB_MAX_SUBS 64

struct nconn {
	int fd;
	uint8_t *rbuf;
	size_t rcap, rstart, rend;
	uint8_t *wbuf;
	size_t wcap, wlen;
};

enum { NB_MSG = 1, NB_PONG, NB_OTHER };

struct nmsg {
	char subject[256];
	unsigned sid;
	char reply[256];
	const uint8_t *payload;
	size_t len;
};

static void nflush(struct nconn *c)
{
	if (c->wlen && bench_write_all(c->fd, c->wbuf, c->wlen) < 0)
		bench_die("nats write: %s", strerror(errno));
	c->wlen = 0;
}

/* Append bytes to the write buffer, writing it out when it reaches the
 * batch size. A payload larger than the buffer is written straight. */
static void nput(struct nconn *c, const void *p, size_t n)
{
	if (c->wlen + n > c->wcap) {
		nflush(c);
		if (n > c->wcap) {
			if (bench_write_all(c->fd, p, n) < 0)
				bench_die("nats write: %s", strerror(errno));
			return;
		}
	}
	memcpy(c->wbuf + c->wlen, p, n);
	c->wlen += n;
}

static void npub(struct nconn *c, const char *subj, const char *reply,
		 const uint8_t *payload, size_t len)
{
	char hdr[600];
	int n = snprintf(hdr, sizeof(hdr), "PUB %s%s%s %zu\r\n", subj,
			 reply ? " " : "", reply ? reply : "", len);
	if (n < 0 || (size_t)n >= sizeof(hdr))
		bench_die("nats: subject too long");
	nput(c, hdr, (size_t)n);
	nput(c, payload, len);
	nput(c, "\r\n", 2);
	if (c->wlen >= BENCH_BATCH_BYTES)
		nflush(c);
}

/* Read more bytes; compacts the buffer first. Dies on EOF or error. */
static void nfill(struct nconn *c)
{
	if (c->rstart > 0) {
		memmove(c->rbuf, c->rbuf + c->rstart, c->rend - c->rstart);
		c->rend -= c->rstart;
		c->rstart = 0;
	}
	if (c->rend == c->rcap)
		bench_die("nats: command longer than the read buffer");
	ssize_t n;
	do
		n = read(c->fd, c->rbuf + c->rend, c->rcap - c->rend);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		bench_die("nats read: %s", strerror(errno));
	if (n == 0)
		bench_die("nats: server closed the connection");
	c->rend += (size_t)n;
}

static int parse_msg(char *line, struct nmsg *m)
{
	/* MSG <subject> <sid> [reply-to] <#bytes> */
	char *tok[5];
	int nt = 0;
	for (char *s = strtok(line + 4, " \t"); s && nt < 5; s = strtok(NULL, " \t"))
		tok[nt++] = s;
	if (nt != 3 && nt != 4)
		return -1;
	if (strlen(tok[0]) >= sizeof(m->subject))
		return -1;
	strcpy(m->subject, tok[0]);
	char *end;
	m->sid = (unsigned)strtoul(tok[1], &end, 10);
	if (*end)
		return -1;
	m->reply[0] = '\0';
	if (nt == 4) {
		if (strlen(tok[2]) >= sizeof(m->reply))
			return -1;
		strcpy(m->reply, tok[2]);
	}
	unsigned long long len = strtoull(tok[nt - 1], &end, 10);
	if (*end || len > BENCH_MAX_BODY)
		return -1;
	m->len = (size_t)len;
	return 0;
}

/* Next server command: NB_MSG (m filled), NB_PONG, or NB_OTHER (INFO,
 * +OK). PING is answered here. -ERR and malformed input are fatal. */
static int nnext(struct nconn *c, struct nmsg *m)
{
	for (;;) {
		uint8_t *p = c->rbuf + c->rstart;
		size_t avail = c->rend - c->rstart;
		uint8_t *nl = avail ? memchr(p, '\n', avail) : NULL;
		if (!nl) {
			if (avail > NB_MAX_CONTROL)
				bench_die("nats: control line over %u bytes", NB_MAX_CONTROL);
			nfill(c);
			continue;
		}
		size_t ll = (size_t)(nl - p);
		if (ll > NB_MAX_CONTROL)
			bench_die("nats: control line over %u bytes", NB_MAX_CONTROL);
		char line[NB_MAX_CONTROL + 1];
		memcpy(line, p, ll);
		if (ll && line[ll - 1] == '\r')
			ll--;
		line[ll] = '\0';
		if (!strncmp(line, "MSG ", 4)) {
			if (parse_msg(line, m) < 0)
				bench_die("nats: bad MSG line");
			size_t need = (size_t)(nl + 1 - p) + m->len + 2;
			if (need > c->rcap)
				bench_die("nats: message of %zu bytes over the buffer", m->len);
			while (c->rend - c->rstart < need)
				nfill(c);
			p = c->rbuf + c->rstart;
			m->payload = p + (need - m->len - 2);
			if (p[need - 2] != '\r' || p[need - 1] != '\n')
				bench_die("nats: MSG payload not followed by CRLF");
			c->rstart += need;
			return NB_MSG;
		}
		c->rstart += (size_t)(nl + 1 - p);
		if (!strcmp(line, "PING")) {
			nflush(c);
			if (bench_write_all(c->fd, "PONG\r\n", 6) < 0)
				bench_die("nats write: %s", strerror(errno));
		} else if (!strcmp(line, "PONG")) {
			return NB_PONG;
		} else if (!strncmp(line, "-ERR", 4)) {
			bench_die("nats server: %s", line);
		} else if (!strncmp(line, "INFO ", 5) || !strcmp(line, "+OK")) {
			return NB_OTHER;
		} else {
			bench_die("nats: unexpected line '%.80s'", line);
		}
	}
}

/* Flush, then PING and wait for PONG: the server has processed all our
 * commands (SUBs are in place). MSGs arriving meanwhile are dropped, so
 * call it only before traffic. */
static void nsync(struct nconn *c)
{
	struct nmsg m;
	nput(c, "PING\r\n", 6);
	nflush(c);
	while (nnext(c, &m) != NB_PONG)
		;
}

static void nconnect(struct nconn *c, int port, size_t size)
{
	memset(c, 0, sizeof(*c));
	c->fd = socket(AF_INET, SOCK_STREAM, 0);
	if (c->fd < 0)
		bench_die("socket: %s", strerror(errno));
	int one = 1;
	setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (connect(c->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		bench_die("connect 127.0.0.1:%d: %s", port, strerror(errno));
	c->rcap = size + NB_MAX_CONTROL + 2;
	if (c->rcap < 64 * 1024)
		c->rcap = 64 * 1024;
	c->wcap = BENCH_BATCH_BYTES;
	c->rbuf = malloc(c->rcap);
	c->wbuf = malloc(c->wcap);
	if (!c->rbuf || !c->wbuf)
		bench_die("out of memory");
	struct nmsg m;
	if (nnext(c, &m) != NB_OTHER) /* INFO */
		bench_die("nats: no INFO from the server");
	const char *cn = "CONNECT {\"verbose\":false,\"pedantic\":false,"
			 "\"tls_required\":false,\"name\":\"ipchub-bench\","
			 "\"lang\":\"c\",\"version\":\"1\",\"protocol\":1,"
			 "\"echo\":false}\r\n";
	nput(c, cn, strlen(cn));
	nsync(c);
}

static void nclose(struct nconn *c)
{
	nflush(c);
	close(c->fd);
	free(c->rbuf);
	free(c->wbuf);
}

static void sub(struct nconn *c, const char *subj, unsigned sid)
{
	char line[300];
	int n = snprintf(line, sizeof(line), "SUB %s %u\r\n", subj, sid);
	nput(c, line, (size_t)n);
}

static void signal_ready(int fd)
{
	if (write(fd, "r", 1) != 1)
		bench_die("ready pipe: %s", strerror(errno));
	close(fd);
}

static void wait_ready(int fd)
{
	char b;
	if (read(fd, &b, 1) != 1)
		bench_die("peer failed to start");
	close(fd);
}

/* Subscriber of NB_SUBJ_SINK. Acknowledges every window with a one-byte
 * message carrying idx (its index in a fan-out). res_fd >= 0: report the
 * first and last arrival there (fan-out) instead of printing. */
static void consumer(int port, size_t size, uint64_t count, int ready,
		     uint8_t idx, int res_fd)
{
	struct nconn c;
	nconnect(&c, port, size);
	sub(&c, NB_SUBJ_SINK, 1);
	nsync(&c);
	signal_ready(ready);
	uint64_t window = bench_flow_window(size), got = 0, t_first = 0, t_last = 0;
	while (got < count) {
		struct nmsg m;
		if (nnext(&c, &m) != NB_MSG)
			continue;
		if (m.sid != 1 || m.len != size)
			bench_die("nats consumer: unexpected message (sid %u, %zu bytes)", m.sid, m.len);
		t_last = bench_now_ns();
		if (got++ == 0)
			t_first = t_last;
		if (got % window == 0) {
			npub(&c, NB_SUBJ_ACK, NULL, &idx, 1);
			nflush(&c);
		}
	}
	if (res_fd >= 0)
		bench_fanout_report(res_fd, t_first, t_last);
	else
		bench_emit_thru("nats", "thru", size, count, t_first, t_last, 1);
	nclose(&c);
}

/* Publisher: at most two windows ahead of the slowest of subs
 * subscribers (acknowledgements carry the subscriber's index). */
static void producer(int port, size_t size, uint64_t count, int subs)
{
	struct nconn c;
	nconnect(&c, port, size);
	sub(&c, NB_SUBJ_ACK, 2);
	nsync(&c);
	uint8_t *body = malloc(size);
	uint64_t *acked = calloc((size_t)subs, sizeof(*acked));
	if (!body || !acked)
		bench_die("out of memory");
	bench_body(body, size);
	uint64_t window = bench_flow_window(size), slowest = 0;
	for (uint64_t i = 0; i < count; i++) {
		if (i % window == 0 && i) {
			nflush(&c);
			while (i / window - slowest >= 2) {
				struct nmsg m;
				if (nnext(&c, &m) != NB_MSG || m.sid != 2 ||
				    m.len != 1 || m.payload[0] >= subs)
					continue;
				acked[m.payload[0]]++;
				slowest = acked[0];
				for (int k = 1; k < subs; k++)
					if (acked[k] < slowest)
						slowest = acked[k];
			}
		}
		npub(&c, NB_SUBJ_SINK, NULL, body, size);
	}
	nsync(&c);
	free(acked);
	free(body);
	nclose(&c);
}

static void echo_server(int port, size_t size, int ready)
{
	struct nconn c;
	nconnect(&c, port, size);
	sub(&c, NB_SUBJ_ECHO, 1);
	nsync(&c);
	signal_ready(ready);
	for (;;) {
		struct nmsg m;
		if (nnext(&c, &m) != NB_MSG)
			continue;
		if (!m.reply[0])
			bench_die("nats echo: request without a reply subject");
		npub(&c, m.reply, NULL, m.payload, m.len);
		nflush(&c);
	}
}

static void rtt_client(int port, size_t size, uint64_t count, const char *samples_path)
{
	struct nconn c;
	nconnect(&c, port, size);
	sub(&c, NB_INBOX, 7);
	nsync(&c);
	uint8_t *body = malloc(size);
	uint64_t warm = bench_rtt_warmup(count);
	uint64_t *samples = malloc(count * sizeof(*samples));
	if (!body || !samples)
		bench_die("out of memory");
	bench_body(body, size);
	for (uint64_t i = 0; i < warm + count; i++) {
		uint64_t t0 = bench_now_ns();
		npub(&c, NB_SUBJ_ECHO, NB_INBOX, body, size);
		nflush(&c);
		struct nmsg m;
		while (nnext(&c, &m) != NB_MSG)
			;
		if (m.sid != 7 || m.len != size || memcmp(m.payload, body, size))
			bench_die("nats rtt: unexpected reply");
		uint64_t t1 = bench_now_ns();
		if (i >= warm)
			samples[i - warm] = t1 - t0;
	}
	bench_emit_rtt("nats", size, samples, count, samples_path);
	free(samples);
	free(body);
	nclose(&c);
}

int main(int argc, char **argv)
{
	if (argc < 2)
		bench_die("usage: nats_bench thru|fanout|rtt --port PORT --size BYTES --count N [--subs K] [--samples FILE]");
	const char *mode = argv[1];
	int port = (int)bench_opt_u64(argc, argv, "--port", 0);
	size_t size = (size_t)bench_opt_u64(argc, argv, "--size", 64);
	uint64_t count = bench_opt_u64(argc, argv, "--count", 100000);
	if (port <= 0 || port > 65535)
		bench_die("nats_bench: --port PORT (1..65535) is required");
	if (size < 2 || size > BENCH_MAX_BODY || count < 2)
		bench_die("nats_bench: bad --size or --count");
	int p[2];
	if (pipe(p) < 0)
		bench_die("pipe: %s", strerror(errno));
	if (!strcmp(mode, "thru")) {
		pid_t pid = bench_fork();
		if (pid == 0) {
			close(p[0]);
			consumer(port, size, count, p[1], 0, -1);
			exit(0);
		}
		close(p[1]);
		wait_ready(p[0]);
		producer(port, size, count, 1);
		bench_wait_ok(pid, "nats consumer");
	} else if (!strcmp(mode, "fanout")) {
		int subs = (int)bench_opt_u64(argc, argv, "--subs", 4);
		pid_t pids[NB_MAX_SUBS];
		int res[2];
		uint64_t t_first, t_last;
		if (subs < 1 || subs > NB_MAX_SUBS)
			bench_die("nats_bench: --subs must be 1..%d", NB_MAX_SUBS);
		close(p[0]);
		close(p[1]);
		if (pipe(res) < 0)
			bench_die("pipe: %s", strerror(errno));
		for (int k = 0; k < subs; k++) {
			int r[2];
			if (pipe(r) < 0)
				bench_die("pipe: %s", strerror(errno));
			pids[k] = bench_fork();
			if (pids[k] == 0) {
				close(r[0]);
				close(res[0]);
				consumer(port, size, count, r[1], (uint8_t)k, res[1]);
				exit(0);
			}
			close(r[1]);
			wait_ready(r[0]);
		}
		close(res[1]);
		producer(port, size, count, subs);
		bench_fanout_collect(res[0], subs, &t_first, &t_last);
		for (int k = 0; k < subs; k++)
			bench_wait_ok(pids[k], "nats subscriber");
		bench_emit_fanout("nats", size, count, subs, t_first, t_last);
	} else if (!strcmp(mode, "rtt")) {
		pid_t pid = bench_fork();
		if (pid == 0) {
			close(p[0]);
			echo_server(port, size, p[1]);
			exit(0);
		}
		close(p[1]);
		wait_ready(p[0]);
		rtt_client(port, size, count, bench_opt(argc, argv, "--samples", NULL));
		kill(pid, SIGTERM);
		waitpid(pid, NULL, 0);
	} else {
		bench_die("nats_bench: unknown mode %s", mode);
	}
	return 0;
}
