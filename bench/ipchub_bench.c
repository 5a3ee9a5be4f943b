/*
 * ipchub_bench.c - load generator for ipchubd, through libipchub
 * (ipchub_static). The broker is started by the caller (bench/run); every
 * mode takes its socket with --socket PATH.
 *
 *   ipchub_bench thru          --socket P --size B --count N [--producers K]
 *                              [--memfd | --memfd-copy]
 *                              (consumers of every mode: [--owned];
 *                              producers: [--copy])
 *   ipchub_bench pairs         --socket P --size B --count N [--pairs K]
 *   ipchub_bench fanout        --socket P --size B --count N [--subs K]
 *   ipchub_bench rtt           --socket P --size B --count N [--samples FILE]
 *                              [--fds]
 *   ipchub_bench connect-scale --socket P --count N --pid BROKER_PID [--lib]
 *   ipchub_bench thru-consumer --socket P --size B --count N [--producers K]
 *   ipchub_bench thru-producer --socket P --size B --count N [--index I]
 *   ipchub_bench rtt-server    --socket P
 *   ipchub_bench rtt-client    --socket P --size B --count N [--samples FILE]
 *
 * thru and rtt run the consumer (or echo server) and the producers (or
 * the client) as separate processes; the others are the single roles, to
 * run by hand. Each measurement is one JSON line on stdout (common.h).
 *
 * thru: the consumer registers bench.sink; each producer queues count/K
 * SENDs with ipchub_send() (the library batches them into 64 KiB writes);
 * bodies of IB_SEND_BUF_MIN bytes or more go with ipchub_send_buf()
 * instead, written from the producer's buffer without a copy (--copy:
 * ipchub_send() at every size; the buffer is never changed, so every
 * message may use it and there is nothing to free), then it flushes, and pings the broker so it knows everything was routed. The
 * consumer times first to last arrival. Consumers (and fanout's
 * subscribers) take each message with ipchub_recv_lent() (no allocation
 * or copy per message); --owned makes them use ipchub_recv(), to measure
 * the difference.
 * Bodies always go over the socket (ipchub_set_memfd_min(h, 0)), so that
 * the figures stay comparable across versions, except with --memfd
 * (PROTOCOL.md 6.9): each producer message is an ipchub_body_alloc()
 * buffer (a fresh memfd), filled and sent with ipchub_send_body(), and
 * the consumer reads one byte of every 4 KiB page of the mapping, so the
 * figure includes writing the body and faulting it in on both sides.
 * --memfd-copy: the same lane through plain ipchub_send(), which copies
 * the producer's buffer into each memfd with pwrite() (no page faults on
 * the sending side).
 * rtt: ipchub_request() to bench.echo, whose server answers each lent
 * request (ipchub_recv_lent) with ipchub_reply() of the same body; with
 * --fds the request carries one descriptor (a pipe's end) and the reply
 * passes it back (ipchub_request_fds / ipchub_reply_fds).
 * connect-scale: N raw connections, each doing the HELLO/WELCOME
 * handshake (pipelined: connect and HELLO every socket, then collect the
 * WELCOMEs), or one ipchub_connect() after another with --lib. Reports
 * the time to connect all and the broker's VmRSS growth per connection.
 */
#include "common.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ipchub.h"
#include "limits.h" /* proto/: IPCHUB_MAX_MEMFD_BODY */

#define IB_MAX_PRODUCERS 64
#define IB_MAX_PAIRS 500
#define IB_TIMEOUT_MS 20000

static const char *g_socket;
/* Name the thru roles use (pairs: one per pair), and where a pairs
 * consumer reports its first and last arrival (-1: print JSON). */
static const char *g_sink = BENCH_SINK;
static int g_result_fd = -1;
static int g_owned; /* --owned: consumers use ipchub_recv() */
static int g_copy;  /* --copy: producers use ipchub_send() at every size */

/* Bodies from this size on are sent with ipchub_send_buf() (no copy). */
#define IB_SEND_BUF_MIN (64u * 1024u)
static unsigned g_spin; /* --spin US: ipchub_set_spin() on every client */
static int g_memfd;     /* thru through the memfd lane: 1 --memfd
                         * (ipchub_body_alloc), 2 --memfd-copy */
static int g_fds;       /* --fds: rtt passes a descriptor each way */
static volatile uint8_t g_sink_byte; /* keeps the page reads */

static ipchub *ib_connect(void)
{
	struct ipchub_opts o = { .socket = g_socket, .timeout_ms = 10000,
				 .agent = "ipchub_bench" };
	ipchub *h;
	int rc = ipchub_connect(&o, &h);
	if (rc)
		bench_die("ipchub_connect %s: %s", g_socket ? g_socket : "",
			  ipchub_strerror(rc));
	rc = ipchub_set_spin(h, g_spin);
	if (rc)
		bench_die("--spin %u: %s", g_spin, ipchub_strerror(rc));
	if (!g_memfd)
		(void)ipchub_set_memfd_min(h, 0);
	return h;
}

static void ib_register(ipchub *h, const char *name)
{
	int rc = ipchub_register(h, name, 10000);
	if (rc)
		bench_die("register %s: %s", name, ipchub_strerror(rc));
}

static void signal_ready(int fd)
{
	if (fd < 0)
		return;
	if (write(fd, "r", 1) != 1)
		bench_die("ready pipe: %s", strerror(errno));
	close(fd);
}

/* Receive count messages of the given kind and body size (lent, or owned
 * with --owned); *t_first is the first arrival, the return value the
 * last. Only those two are timed: a clock read per message would cost
 * more than the raw baselines do per message. */
static uint64_t ib_receive(ipchub *h, uint64_t count, int kind, size_t size,
			   const char *who, uint64_t *t_first)
{
	*t_first = 0;
	for (uint64_t i = 0; i < count; i++) {
		const ipchub_msg *m;
		ipchub_msg *owned = NULL;
		size_t len;
		int rc = g_owned ? ipchub_recv(h, IB_TIMEOUT_MS, &owned)
				 : ipchub_recv_lent(h, IB_TIMEOUT_MS, &m);

		if (g_owned && rc == IPCHUB_OK)
			m = owned;
		if (rc)
			bench_die("%s: recv after %llu of %llu: %s", who,
				  (unsigned long long)i,
				  (unsigned long long)count,
				  ipchub_strerror(rc));
		const uint8_t *b = ipchub_msg_body(m, &len);
		if (g_memfd && b) {
			uint8_t x = 0;

			for (size_t off = 0; off < len; off += 4096)
				x ^= b[off];
			g_sink_byte ^= x;
		}
		if (ipchub_msg_kind(m) != kind || len != size)
			bench_die("%s: unexpected message (kind %d, %zu bytes, "
				  "error %d)", who, ipchub_msg_kind(m), len,
				  ipchub_msg_error(m));
		ipchub_msg_free(owned); /* NULL when lent */
		if (i == 0)
			*t_first = bench_now_ns();
	}
	return bench_now_ns();
}

static void thru_consumer(size_t size, uint64_t count, int producers,
			  int ready_fd)
{
	ipchub *h = ib_connect();
	uint64_t t_first, t_last;

	ib_register(h, g_sink);
	signal_ready(ready_fd);
	t_last = ib_receive(h, count, IPCHUB_KIND_SEND, size, "consumer",
			    &t_first);
	if (g_result_fd >= 0) /* pairs */
		bench_fanout_report(g_result_fd, t_first, t_last);
	else
		bench_emit_thru("ipchub", producers > 1 ? "n-to-1" : "thru",
				size, count, t_first, t_last, producers);
	ipchub_close(h);
}

/* hold_fd >= 0: keep the connection open until EOF on it. */
static void thru_producer(size_t size, uint64_t n, int hold_fd)
{
	ipchub *h = ib_connect();
	uint8_t *body = malloc(size);
	if (!body)
		bench_die("out of memory");
	bench_body(body, size);
	bench_gate_wait();
	for (uint64_t i = 0; i < n; i++) {
		int rc;

		if (g_memfd == 1) {
			void *buf;

			rc = ipchub_body_alloc(h, size, &buf);
			if (rc == IPCHUB_OK) {
				bench_body(buf, size);
				rc = ipchub_send_body(h, g_sink, buf, NULL);
			}
		} else if (!g_copy && size >= IB_SEND_BUF_MIN) {
			rc = ipchub_send_buf(h, g_sink, body, size, NULL, NULL,
					     NULL);
		} else {
			rc = ipchub_send(h, g_sink, body, size, NULL);
		}
		if (rc)
			bench_die("producer: send %llu: %s",
				  (unsigned long long)i, ipchub_strerror(rc));
	}
	int rc = ipchub_flush(h, IB_TIMEOUT_MS);
	if (rc)
		bench_die("producer: flush: %s", ipchub_strerror(rc));
	/* Frames from one connection are handled in order: once the PONG
	 * is back, every SEND has been routed (or answered with an error). */
	rc = ipchub_ping(h, IB_TIMEOUT_MS, NULL);
	if (rc)
		bench_die("producer: ping: %s", ipchub_strerror(rc));
	ipchub_msg *m;
	if (ipchub_recv(h, 0, &m) == IPCHUB_OK)
		bench_die("producer: delivery error %s",
			  ipchub_code_name(ipchub_msg_error(m)));
	if (hold_fd >= 0) {
		char c;
		while (read(hold_fd, &c, 1) > 0)
			;
	}
	free(body);
	ipchub_close(h);
}

static void rtt_server(int ready_fd)
{
	ipchub *h = ib_connect();
	ib_register(h, BENCH_ECHO);
	signal_ready(ready_fd);
	for (;;) {
		const ipchub_msg *m;
		int rc = ipchub_recv_lent(h, -1, &m);
		if (rc)
			break;
		size_t len;
		const void *b = ipchub_msg_body(m, &len);
		/* The reply may take the lent request and its body. */
		if (ipchub_msg_kind(m) == IPCHUB_KIND_REQUEST) {
			const int *fds;
			size_t nfds = ipchub_msg_fds(m, &fds);

			rc = ipchub_reply_fds(h, m, b, len, fds, nfds);
			if (!rc)
				rc = ipchub_flush(h, IB_TIMEOUT_MS);
		}
		if (rc)
			break;
	}
	ipchub_close(h);
}

static void rtt_client(size_t size, uint64_t count, const char *samples_path)
{
	ipchub *h = ib_connect();
	uint8_t *body = malloc(size);
	uint64_t warm = bench_rtt_warmup(count);
	uint64_t *samples = malloc(count * sizeof(*samples));
	int p[2] = { -1, -1 };
	if (!body || !samples)
		bench_die("out of memory");
	if (g_fds && pipe(p) < 0)
		bench_die("pipe: %s", strerror(errno));
	bench_body(body, size);
	for (uint64_t i = 0; i < warm + count; i++) {
		ipchub_msg *r;
		uint64_t t0 = bench_now_ns();
		int rc = ipchub_request_fds(h, BENCH_ECHO, body, size, p,
					    g_fds ? 1 : 0, IB_TIMEOUT_MS, &r);
		if (rc)
			bench_die("rtt: request %llu: %s", (unsigned long long)i,
				  ipchub_strerror(rc));
		uint64_t t1 = bench_now_ns();
		size_t len;
		ipchub_msg_body(r, &len);
		if (len != size)
			bench_die("rtt: reply of %zu bytes", len);
		if (ipchub_msg_fds(r, NULL) != (g_fds ? 1u : 0u))
			bench_die("rtt: reply with %zu descriptors",
				  ipchub_msg_fds(r, NULL));
		ipchub_msg_free(r);
		if (i >= warm)
			samples[i - warm] = t1 - t0;
	}
	bench_emit_rtt("ipchub", size, samples, count, samples_path);
	if (g_fds) {
		close(p[0]);
		close(p[1]);
	}
	free(samples);
	free(body);
	ipchub_close(h);
}

/* ---- connection scale ----------------------------------------------- */

static long rss_kib(long pid)
{
	char path[64], line[256];
	snprintf(path, sizeof(path), "/proc/%ld/status", pid);
	FILE *f = fopen(path, "r");
	if (!f)
		return -1;
	long v = -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "VmRSS: %ld", &v) == 1)
			break;
	fclose(f);
	return v;
}

static int raw_connect(const char *path)
{
	struct sockaddr_un sa;
	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	socklen_t sl;
	size_t pl = strlen(path);
	if (pl >= sizeof(sa.sun_path))
		bench_die("socket path too long");
	if (path[0] == '@') {
		memcpy(sa.sun_path + 1, path + 1, pl - 1);
		sl = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + pl);
	} else {
		memcpy(sa.sun_path, path, pl);
		sl = sizeof(sa);
	}
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		bench_die("socket: %s", strerror(errno));
	while (connect(fd, (struct sockaddr *)&sa, sl) < 0) {
		if (errno == EINTR)
			continue;
		bench_die("connect %s: %s", path, strerror(errno));
	}
	return fd;
}

/* Read one frame within the deadline; returns its kind. */
static int raw_read_kind(int fd)
{
	struct pollfd p = { fd, POLLIN, 0 };
	uint8_t hdr[4], buf[1024];
	if (poll(&p, 1, IB_TIMEOUT_MS) != 1 || bench_read_all(fd, hdr, 4) < 0)
		bench_die("connect-scale: no answer to HELLO");
	uint32_t len = ((uint32_t)hdr[0] << 24) | ((uint32_t)hdr[1] << 16) |
		       ((uint32_t)hdr[2] << 8) | hdr[3];
	if (len < 3 || len > sizeof(buf) || bench_read_all(fd, buf, len) < 0)
		bench_die("connect-scale: bad frame from broker");
	/* The broker encodes keys in ascending order: kind (key 0) first. */
	return buf[1] == 0x00 ? buf[2] : -1;
}

static void connect_scale(uint64_t n, long pid, int use_lib)
{
	long lim = bench_raise_nofile((long)n + 64);
	if (lim < (long)n + 16)
		bench_die("RLIMIT_NOFILE is %ld, need %llu", lim,
			  (unsigned long long)n + 16);
	int *fds = calloc(n, sizeof(*fds));
	ipchub **hs = calloc(n, sizeof(*hs));
	if (!fds || !hs)
		bench_die("out of memory");
	usleep(100000);
	long before = rss_kib(pid);
	static const uint8_t hello[] = { 0, 0, 0, 7, 0x83, 0x00, 0x01,
					 0x09, 0x01, 0x0a, 0x01 };
	uint64_t t0 = bench_now_ns();
	if (use_lib) {
		for (uint64_t i = 0; i < n; i++)
			hs[i] = ib_connect();
	} else {
		for (uint64_t i = 0; i < n; i++) {
			fds[i] = raw_connect(g_socket);
			if (bench_write_all(fds[i], hello, sizeof(hello)) < 0)
				bench_die("HELLO: %s", strerror(errno));
		}
		for (uint64_t i = 0; i < n; i++) {
			int k = raw_read_kind(fds[i]);
			if (k != 2)
				bench_die("connect-scale: connection %llu got "
					  "kind %d instead of WELCOME",
					  (unsigned long long)i, k);
		}
	}
	uint64_t t1 = bench_now_ns();
	usleep(200000); /* let the broker settle */
	long after = rss_kib(pid);
	double secs = (double)(t1 - t0) / 1e9;
	for (uint64_t i = 0; i < n; i++) {
		if (use_lib)
			ipchub_close(hs[i]);
		else
			close(fds[i]);
	}
	usleep(300000);
	long closed = rss_kib(pid);
	printf("{\"workload\":\"connect-scale\",\"system\":\"ipchub\","
	       "\"count\":%llu,\"method\":\"%s\",\"connect_s\":%.6f,"
	       "\"conns_per_s\":%.1f,\"rss_before_kib\":%ld,"
	       "\"rss_after_kib\":%ld,\"rss_after_close_kib\":%ld,"
	       "\"bytes_per_conn\":%.1f}\n",
	       (unsigned long long)n, use_lib ? "libipchub" : "raw-hello",
	       secs, secs > 0 ? (double)n / secs : 0.0, before, after, closed,
	       (double)(after - before) * 1024.0 / (double)n);
	fflush(stdout);
	free(fds);
	free(hs);
}

/* ---- orchestration -------------------------------------------------- */

static size_t g_size;
static uint64_t g_count;
static int g_producers;

static pid_t spawn_ready(void (*fn)(int))
{
	int p[2];
	if (pipe(p) < 0)
		bench_die("pipe: %s", strerror(errno));
	pid_t pid = bench_fork();
	if (pid == 0) {
		close(p[0]);
		fn(p[1]);
		_exit(0);
	}
	close(p[1]);
	char c;
	if (read(p[0], &c, 1) != 1)
		bench_die("child did not become ready");
	close(p[0]);
	return pid;
}

static void consumer_main(int fd)
{
	thru_consumer(g_size, g_count, g_producers, fd);
}

/* K independent producer/consumer pairs (producer k sends count/K to
 * bench.sink.k), all at once through one broker. Reports the aggregate:
 * all messages over the span from the first arrival at any consumer to
 * the last arrival at any consumer. */
static void pairs(size_t size, uint64_t count, int k)
{
	static char names[IB_MAX_PAIRS][32];
	pid_t cp[IB_MAX_PAIRS], pp[IB_MAX_PAIRS];
	uint64_t per, t_first = UINT64_MAX, t_last = 0;
	int res[2], hold[2];

	if (k < 1 || k > IB_MAX_PAIRS || count / (uint64_t)k < 2)
		bench_die("pairs: --pairs must be 1..%d and <= count/2",
			  IB_MAX_PAIRS);
	per = count / (uint64_t)k;
	if (pipe(res) < 0 || pipe(hold) < 0)
		bench_die("pipe: %s", strerror(errno));
	g_size = size;
	g_count = per;
	g_producers = 1;
	g_result_fd = res[1];
	for (int i = 0; i < k; i++) {
		snprintf(names[i], sizeof(names[i]), "%s.%d", BENCH_SINK, i);
		g_sink = names[i];
		cp[i] = spawn_ready(consumer_main);
	}
	close(res[1]);
	bench_gate_open();
	for (int i = 0; i < k; i++) {
		g_sink = names[i];
		pp[i] = bench_fork();
		if (pp[i] == 0) {
			close(hold[1]);
			close(res[0]);
			bench_gate_child();
			thru_producer(size, per, hold[0]);
			_exit(0);
		}
	}
	close(hold[0]);
	bench_gate_release(k);
	for (int i = 0; i < k; i++) {
		uint64_t t[2];

		if (bench_read_all(res[0], t, sizeof(t)) < 0)
			bench_die("pairs: a consumer did not report");
		if (t[0] < t_first)
			t_first = t[0];
		if (t[1] > t_last)
			t_last = t[1];
	}
	for (int i = 0; i < k; i++)
		bench_wait_ok(cp[i], "consumer");
	close(hold[1]);
	for (int i = 0; i < k; i++)
		bench_wait_ok(pp[i], "producer");
	bench_emit_thru("ipchub", "pairs", size, per * (uint64_t)k, t_first,
			t_last, k);
}

/* One publisher, K subscribers of BENCH_TOPIC with the lossless BLOCK
 * policy (the publisher is slowed to the slowest subscriber, as the other
 * systems' fan-out is lossless too); count publications. */
#define BENCH_TOPIC "bench.fan"

static void fan_subscriber(int ready_fd)
{
	ipchub *h = ib_connect();
	uint64_t sub, t_first, t_last;
	int rc = ipchub_subscribe(h, BENCH_TOPIC, IPCHUB_POLICY_BLOCK, 10000,
				  &sub);

	if (rc)
		bench_die("subscribe: %s", ipchub_strerror(rc));
	signal_ready(ready_fd);
	t_last = ib_receive(h, g_count, IPCHUB_KIND_PUBLISH, g_size,
			    "subscriber", &t_first);
	bench_fanout_report(g_result_fd, t_first, t_last);
	ipchub_close(h);
}

static void fanout(size_t size, uint64_t count, int k)
{
	pid_t sp[IB_MAX_PAIRS], pub;
	int res[2];
	uint64_t t_first, t_last;

	if (k < 1 || k > IB_MAX_PAIRS)
		bench_die("fanout: --subs must be 1..%d", IB_MAX_PAIRS);
	if (pipe(res) < 0)
		bench_die("pipe: %s", strerror(errno));
	g_size = size;
	g_count = count;
	g_result_fd = res[1];
	for (int i = 0; i < k; i++)
		sp[i] = spawn_ready(fan_subscriber);
	close(res[1]);
	pub = bench_fork();
	if (pub == 0) {
		ipchub *h = ib_connect();
		uint8_t *body = malloc(size);

		if (!body)
			bench_die("out of memory");
		bench_body(body, size);
		for (uint64_t i = 0; i < count; i++) {
			int rc = ipchub_publish(h, BENCH_TOPIC, body, size);

			if (rc)
				bench_die("publish %llu: %s",
					  (unsigned long long)i,
					  ipchub_strerror(rc));
		}
		if (ipchub_flush(h, IB_TIMEOUT_MS) != IPCHUB_OK)
			bench_die("publisher: flush failed");
		free(body);
		ipchub_close(h);
		_exit(0);
	}
	bench_fanout_collect(res[0], k, &t_first, &t_last);
	close(res[0]);
	for (int i = 0; i < k; i++)
		bench_wait_ok(sp[i], "subscriber");
	bench_wait_ok(pub, "publisher");
	bench_emit_fanout("ipchub", size, count, k, t_first, t_last);
}

static void server_main(int fd)
{
	rtt_server(fd);
}

static void usage(void)
{
	fprintf(stderr,
		"usage: ipchub_bench thru|pairs|fanout|rtt|connect-scale|thru-consumer|"
		"thru-producer|rtt-server|rtt-client --socket PATH\n"
		"       [--size BYTES] [--count N] [--producers K] "
		"[--samples FILE] [--pid BROKER_PID] [--lib] [--pairs K] [--subs K] "
		"[--owned] [--copy] [--memfd|--memfd-copy] [--fds] [--spin US]\n");
	exit(2);
}

int main(int argc, char **argv)
{
	if (argc < 2)
		usage();
	const char *mode = argv[1];
	signal(SIGPIPE, SIG_IGN);
	g_socket = bench_opt(argc, argv, "--socket", NULL);
	size_t size = (size_t)bench_opt_u64(argc, argv, "--size", 64);
	uint64_t count = bench_opt_u64(argc, argv, "--count", 100000);
	int producers = (int)bench_opt_u64(argc, argv, "--producers", 1);
	const char *samples = bench_opt(argc, argv, "--samples", NULL);
	g_owned = bench_flag(argc, argv, "--owned");
	g_copy = bench_flag(argc, argv, "--copy");
	g_spin = (unsigned)bench_opt_u64(argc, argv, "--spin", 0);
	g_memfd = bench_flag(argc, argv, "--memfd") ? 1
		  : bench_flag(argc, argv, "--memfd-copy") ? 2 : 0;
	g_fds = bench_flag(argc, argv, "--fds");
	/* Socket bodies up to a 256 MiB frame (bench/run's broker runs with
	 * --max-frame 256 MiB); memfd bodies up to the lane's maximum. */
	size_t max_body = g_memfd ? (size_t)IPCHUB_MAX_MEMFD_BODY
				  : 256u * 1024u * 1024u - 4096u;
	if (size < 2 || size > max_body || count < 2 || producers < 1 ||
	    producers > IB_MAX_PRODUCERS)
		usage();
	uint64_t per = count / (uint64_t)producers;
	if (per < 1)
		usage();

	if (strcmp(mode, "thru") == 0) {
		g_size = size;
		g_count = per * (uint64_t)producers;
		g_producers = producers;
		pid_t cpid = spawn_ready(consumer_main);
		int hold[2];
		if (pipe(hold) < 0)
			bench_die("pipe: %s", strerror(errno));
		pid_t pp[IB_MAX_PRODUCERS];
		bench_gate_open();
		for (int k = 0; k < producers; k++) {
			pp[k] = bench_fork();
			if (pp[k] == 0) {
				close(hold[1]);
				bench_gate_child();
				thru_producer(size, per, hold[0]);
				_exit(0);
			}
		}
		close(hold[0]);
		bench_gate_release(producers);
		bench_wait_ok(cpid, "consumer");
		close(hold[1]);
		for (int k = 0; k < producers; k++)
			bench_wait_ok(pp[k], "producer");
	} else if (strcmp(mode, "pairs") == 0) {
		pairs(size, count, (int)bench_opt_u64(argc, argv, "--pairs", 100));
	} else if (strcmp(mode, "fanout") == 0) {
		fanout(size, count, (int)bench_opt_u64(argc, argv, "--subs", 4));
	} else if (strcmp(mode, "rtt") == 0) {
		pid_t spid = spawn_ready(server_main);
		rtt_client(size, count, samples);
		kill(spid, SIGTERM);
		waitpid(spid, NULL, 0);
	} else if (strcmp(mode, "connect-scale") == 0) {
		long pid = (long)bench_opt_u64(argc, argv, "--pid", 0);
		if (!pid)
			usage();
		connect_scale(count, pid, bench_flag(argc, argv, "--lib"));
	} else if (strcmp(mode, "thru-consumer") == 0) {
		thru_consumer(size, per * (uint64_t)producers, producers, -1);
	} else if (strcmp(mode, "thru-producer") == 0) {
		thru_producer(size, count, -1);
	} else if (strcmp(mode, "rtt-server") == 0) {
		rtt_server(-1);
	} else if (strcmp(mode, "rtt-client") == 0) {
		rtt_client(size, count, samples);
	} else {
		usage();
	}
	return 0;
}
