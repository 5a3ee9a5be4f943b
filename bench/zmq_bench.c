/*
 * zmq_bench.c - baseline (d): a ZeroMQ ROUTER broker over ipc://, the
 * closest off-the-shelf equivalent of ipchubd (one process routing by
 * peer identity). Clients are DEALER sockets whose routing id is their
 * name; a client sends [destination, body] and the broker forwards
 * [destination, source, body], so the receiver gets [source, body].
 *
 *   bench_zmq thru   --size BYTES --count N [--producers K]
 *   bench_zmq rtt    --size BYTES --count N [--samples FILE]
 *   bench_zmq fanout --size BYTES --count N [--subs K]
 *   bench_zmq broker --endpoint ipc://PATH
 *
 * thru/rtt start the broker, the consumer (or echo server) and the
 * producers (or the round-trip client) as separate processes on a fresh
 * ipc:// endpoint and print one JSON line (see common.h). The broker sets
 * ZMQ_ROUTER_MANDATORY (an unknown destination is an error, not a silent
 * drop) and an unlimited send high-water mark (see broker()); clients keep
 * libzmq's default of 1000 messages per pipe. libzmq batches writes
 * internally, like libipchub.
 */
#include "common.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zmq.h>

#define ZB_MAX_PRODUCERS 64

static void zdie(const char *what)
{
	bench_die("%s: %s", what, zmq_strerror(zmq_errno()));
}

static void *client_socket(void *ctx, const char *endpoint, const char *id)
{
	void *s = zmq_socket(ctx, ZMQ_DEALER);
	if (!s)
		zdie("zmq_socket");
	if (zmq_setsockopt(s, ZMQ_ROUTING_ID, id, strlen(id)) < 0)
		zdie("ZMQ_ROUTING_ID");
	if (zmq_connect(s, endpoint) < 0)
		zdie("zmq_connect");
	return s;
}

/* Ask the broker to echo "ready" back: proves it knows our routing id,
 * so messages sent to us from now on are routed. */
static void client_ready(void *s)
{
	char buf[16];
	if (zmq_send(s, "", 0, ZMQ_SNDMORE) < 0 || zmq_send(s, "hi", 2, 0) < 0)
		zdie("send ready");
	if (zmq_recv(s, buf, sizeof(buf), 0) < 0 ||
	    zmq_recv(s, buf, sizeof(buf), 0) < 0)
		zdie("recv ready");
}

static void broker(const char *endpoint)
{
	void *ctx = zmq_ctx_new();
	void *r = zmq_socket(ctx, ZMQ_ROUTER);
	int one = 1;
	if (!r || zmq_setsockopt(r, ZMQ_ROUTER_MANDATORY, &one, sizeof(one)) < 0)
		zdie("router");
	/* Unbounded queues from the broker to its peers: with libzmq 4.3.4,
	 * ROUTER_MANDATORY at the high-water mark lost messages under
	 * several producers in our tests. The producers' own DEALER HWM
	 * (1000 messages) still bounds how far they run ahead. */
	int zero = 0;
	zmq_setsockopt(r, ZMQ_SNDHWM, &zero, sizeof(zero));
	if (zmq_bind(r, endpoint) < 0)
		zdie("zmq_bind");
	zmq_msg_t src, dst, body;
	zmq_msg_init(&src);
	zmq_msg_init(&dst);
	zmq_msg_init(&body);
	for (;;) {
		if (zmq_msg_recv(&src, r, 0) < 0 || !zmq_msg_more(&src) ||
		    zmq_msg_recv(&dst, r, 0) < 0)
			break;
		int has_body = zmq_msg_more(&dst);
		if (has_body && zmq_msg_recv(&body, r, 0) < 0)
			break;
		while (has_body && zmq_msg_more(&body)) /* ignore extra parts */
			zmq_msg_recv(&body, r, 0);
		if (zmq_msg_size(&dst) == 0) {
			/* Readiness probe: answer [src, "", "ok"]. */
			zmq_msg_send(&src, r, ZMQ_SNDMORE);
			zmq_send(r, "", 0, ZMQ_SNDMORE);
			zmq_send(r, "ok", 2, 0);
			continue;
		}
		/* Forward without copying: zmq_msg_send takes the parts.
		 * With ROUTER_MANDATORY a full pipe fails with EAGAIN even in
		 * blocking mode (libzmq 4.3): wait for room and retry, so the
		 * consumer's pace slows the broker instead of losing data. */
		int rc;
		while ((rc = zmq_msg_send(&dst, r, ZMQ_SNDMORE)) < 0 &&
		       zmq_errno() == EAGAIN) {
			zmq_pollitem_t pi = { r, 0, ZMQ_POLLOUT, 0 };
			zmq_poll(&pi, 1, 1);
		}
		if (rc < 0) {
			fprintf(stderr, "zmq broker: unroutable: %s\n",
				zmq_strerror(zmq_errno()));
			continue;
		}
		zmq_msg_send(&src, r, has_body ? ZMQ_SNDMORE : 0);
		if (has_body)
			zmq_msg_send(&body, r, 0);
	}
	zmq_close(r);
	zmq_ctx_term(ctx);
}

static void consumer(const char *endpoint, size_t size, uint64_t count,
		     int producers, int ready_fd)
{
	void *ctx = zmq_ctx_new();
	void *s = client_socket(ctx, endpoint, BENCH_SINK);
	client_ready(s);
	int tmo = 10000; /* a lost message becomes an error, not a hang */
	zmq_setsockopt(s, ZMQ_RCVTIMEO, &tmo, sizeof(tmo));
	if (write(ready_fd, "r", 1) != 1)
		bench_die("ready pipe");
	close(ready_fd);
	zmq_msg_t m;
	zmq_msg_init(&m);
	uint64_t t_first = 0, t_last = 0;
	for (uint64_t i = 0; i < count; i++) {
		if (zmq_msg_recv(&m, s, 0) < 0) /* source id */
			bench_die("zmq consumer: %s after %llu of %llu messages",
				  zmq_strerror(zmq_errno()),
				  (unsigned long long)i,
				  (unsigned long long)count);
		if (zmq_msg_recv(&m, s, 0) < 0) /* body */
			zdie("recv");
		if (zmq_msg_size(&m) != size)
			bench_die("zmq consumer: body of %zu bytes",
				  zmq_msg_size(&m));
		if (i == 0)
			t_first = bench_now_ns();
	}
	/* Time only the first and last arrivals: a clock read per
	 * message would cost more than the raw baselines do per message. */
	t_last = bench_now_ns();
	zmq_msg_close(&m);
	bench_emit_thru("zmq", producers > 1 ? "n-to-1" : "thru", size, count,
			t_first, t_last, producers);
	zmq_close(s);
	zmq_ctx_term(ctx);
}

/* hold_fd: the producer keeps its socket open until the parent closes
 * the other end (after the consumer has everything): libzmq lost the tail
 * of a producer's stream when it closed right after sending, whatever
 * the linger setting. */
static void producer(const char *endpoint, int k, size_t size, uint64_t n,
		     int hold_fd)
{
	char id[32];
	snprintf(id, sizeof(id), "bench.p%d", k);
	void *ctx = zmq_ctx_new();
	void *s = client_socket(ctx, endpoint, id);
	uint8_t *body = malloc(size);
	if (!body)
		bench_die("out of memory");
	bench_body(body, size);
	bench_gate_wait();
	for (uint64_t i = 0; i < n; i++) {
		if (zmq_send(s, BENCH_SINK, strlen(BENCH_SINK), ZMQ_SNDMORE) < 0 ||
		    zmq_send(s, body, size, 0) < 0)
			zdie("send");
	}
	free(body);
	char c;
	while (read(hold_fd, &c, 1) > 0)
		;
	zmq_close(s);
	zmq_ctx_term(ctx);
}

static void echo_server(const char *endpoint, int ready_fd)
{
	void *ctx = zmq_ctx_new();
	void *s = client_socket(ctx, endpoint, BENCH_ECHO);
	client_ready(s);
	if (write(ready_fd, "r", 1) != 1)
		bench_die("ready pipe");
	close(ready_fd);
	zmq_msg_t from, body;
	zmq_msg_init(&from);
	zmq_msg_init(&body);
	for (;;) {
		if (zmq_msg_recv(&from, s, 0) < 0 || zmq_msg_recv(&body, s, 0) < 0)
			break;
		if (zmq_msg_send(&from, s, ZMQ_SNDMORE) < 0 ||
		    zmq_msg_send(&body, s, 0) < 0)
			break;
	}
	zmq_close(s);
	zmq_ctx_term(ctx);
}

static void rtt_client(const char *endpoint, size_t size, uint64_t count,
		       const char *samples_path)
{
	void *ctx = zmq_ctx_new();
	void *s = client_socket(ctx, endpoint, "bench.client");
	client_ready(s);
	uint8_t *body = malloc(size);
	uint64_t warm = bench_rtt_warmup(count);
	uint64_t *samples = malloc(count * sizeof(*samples));
	if (!body || !samples)
		bench_die("out of memory");
	bench_body(body, size);
	zmq_msg_t m;
	zmq_msg_init(&m);
	for (uint64_t i = 0; i < warm + count; i++) {
		uint64_t t0 = bench_now_ns();
		if (zmq_send(s, BENCH_ECHO, strlen(BENCH_ECHO), ZMQ_SNDMORE) < 0 ||
		    zmq_send(s, body, size, 0) < 0)
			zdie("send");
		if (zmq_msg_recv(&m, s, 0) < 0 || zmq_msg_recv(&m, s, 0) < 0)
			zdie("recv");
		if (zmq_msg_size(&m) != size)
			bench_die("zmq rtt: reply of %zu bytes", zmq_msg_size(&m));
		uint64_t t1 = bench_now_ns();
		if (i >= warm)
			samples[i - warm] = t1 - t0;
	}
	zmq_msg_close(&m);
	bench_emit_rtt("zmq", size, samples, count, samples_path);
	free(samples);
	free(body);
	int zero = 0;
	zmq_setsockopt(s, ZMQ_LINGER, &zero, sizeof(zero));
	zmq_close(s);
	zmq_ctx_term(ctx);
}

static pid_t spawn_ready(void (*fn)(const char *, int), const char *ep)
{
	int p[2];
	if (pipe(p) < 0)
		bench_die("pipe: %s", strerror(errno));
	pid_t pid = bench_fork();
	if (pid == 0) {
		close(p[0]);
		fn(ep, p[1]);
		_exit(0);
	}
	close(p[1]);
	char c;
	if (read(p[0], &c, 1) != 1)
		bench_die("child did not become ready");
	close(p[0]);
	return pid;
}

static size_t g_size;
static uint64_t g_count;
static int g_producers;

static void consumer_main(const char *ep, int fd)
{
	consumer(ep, g_size, g_count, g_producers, fd);
}

static void hwm_unlimited(void *s)
{
	int zero = 0;

	if (zmq_setsockopt(s, ZMQ_SNDHWM, &zero, sizeof(zero)) < 0 ||
	    zmq_setsockopt(s, ZMQ_RCVHWM, &zero, sizeof(zero)) < 0)
		zdie("ZMQ_SNDHWM/RCVHWM");
}

static void fan_proxy(const char *ep_in, const char *ep_out)
{
	void *ctx = zmq_ctx_new();
	void *in = zmq_socket(ctx, ZMQ_XSUB), *out = zmq_socket(ctx, ZMQ_XPUB);

	if (!in || !out)
		zdie("zmq_socket");
	hwm_unlimited(in);
	hwm_unlimited(out);
	if (zmq_bind(in, ep_in) < 0 || zmq_bind(out, ep_out) < 0)
		zdie("zmq_bind");
	zmq_proxy(in, out, NULL); /* until killed */
	_exit(0);
}

static void fan_subscriber(const char *ep_out, size_t size, uint64_t count,
			   int ready_fd, int res_fd)
{
	void *ctx = zmq_ctx_new();
	void *s = zmq_socket(ctx, ZMQ_SUB);
	uint64_t got = 0, t_first = 0, t_last = 0;
	zmq_msg_t m;

	if (!s)
		zdie("zmq_socket");
	hwm_unlimited(s);
	if (zmq_setsockopt(s, ZMQ_SUBSCRIBE, "", 0) < 0 ||
	    zmq_connect(s, ep_out) < 0)
		zdie("subscribe");
	zmq_msg_init(&m);
	while (got < count) {
		if (zmq_msg_recv(&m, s, 0) < 0)
			zdie("zmq_msg_recv");
		if (zmq_msg_size(&m) == 1) { /* probe */
			if (ready_fd >= 0) {
				if (write(ready_fd, "r", 1) != 1)
					bench_die("ready pipe: %s", strerror(errno));
				close(ready_fd);
				ready_fd = -1;
			}
			continue;
		}
		if (zmq_msg_size(&m) != size)
			bench_die("zmq subscriber: %zu bytes", zmq_msg_size(&m));
		t_last = bench_now_ns();
		if (got++ == 0)
			t_first = t_last;
	}
	zmq_msg_close(&m);
	bench_fanout_report(res_fd, t_first, t_last);
	zmq_close(s);
	zmq_ctx_term(ctx);
}

static void fanout(const char *dir, size_t size, uint64_t count, int k)
{
	char ep_in[96], ep_out[96];
	pid_t proxy, subs[ZB_MAX_PRODUCERS];
	int ready[2], res[2];
	uint64_t t_first, t_last;

	if (k < 1 || k > ZB_MAX_PRODUCERS)
		bench_die("bench_zmq fanout: --subs must be 1..%d", ZB_MAX_PRODUCERS);
	snprintf(ep_in, sizeof(ep_in), "ipc://%s/in.sock", dir);
	snprintf(ep_out, sizeof(ep_out), "ipc://%s/out.sock", dir);
	proxy = bench_fork();
	if (proxy == 0)
		fan_proxy(ep_in, ep_out);
	if (pipe(ready) < 0 || pipe(res) < 0)
		bench_die("pipe: %s", strerror(errno));
	for (int i = 0; i < k; i++) {
		subs[i] = bench_fork();
		if (subs[i] == 0) {
			close(ready[0]);
			close(res[0]);
			fan_subscriber(ep_out, size, count, ready[1], res[1]);
			_exit(0);
		}
	}
	close(ready[1]);
	close(res[1]);

	void *ctx = zmq_ctx_new();
	void *pub = zmq_socket(ctx, ZMQ_PUB);
	uint8_t *body = malloc(size);
	if (!pub || !body)
		bench_die("zmq publisher");
	hwm_unlimited(pub);
	if (zmq_connect(pub, ep_in) < 0)
		zdie("zmq_connect");
	bench_body(body, size);
	for (int seen = 0; seen < k;) {
		struct pollfd pf = { ready[0], POLLIN, 0 };
		char c;

		if (zmq_send(pub, "p", 1, 0) < 0)
			zdie("probe");
		if (poll(&pf, 1, 1) > 0) {
			if (read(ready[0], &c, 1) != 1)
				bench_die("a subscriber did not get ready");
			seen++;
		}
	}
	close(ready[0]);
	for (uint64_t i = 0; i < count; i++)
		if (zmq_send(pub, body, size, 0) < 0)
			zdie("zmq_send");
	bench_fanout_collect(res[0], k, &t_first, &t_last);
	close(res[0]);
	for (int i = 0; i < k; i++)
		bench_wait_ok(subs[i], "subscriber");
	zmq_close(pub);
	zmq_ctx_term(ctx);
	free(body);
	kill(proxy, SIGKILL);
	waitpid(proxy, NULL, 0);
	bench_emit_fanout("zmq", size, count, k, t_first, t_last);
}

static void usage(void)
{
	fprintf(stderr, "usage: bench_zmq thru|fanout|rtt --size BYTES --count N "
			"[--producers K] [--samples FILE]\n"
			"       bench_zmq fanout --size BYTES --count N [--subs K]\n"
			"       bench_zmq broker --endpoint ipc://PATH\n");
	exit(2);
}

int main(int argc, char **argv)
{
	if (argc < 2)
		usage();
	const char *mode = argv[1];
	if (strcmp(mode, "broker") == 0) {
		const char *ep = bench_opt(argc, argv, "--endpoint", NULL);
		if (!ep)
			usage();
		broker(ep);
		return 0;
	}
	size_t size = (size_t)bench_opt_u64(argc, argv, "--size", 64);
	uint64_t count = bench_opt_u64(argc, argv, "--count", 100000);
	int producers = (int)bench_opt_u64(argc, argv, "--producers", 1);
	int thru = strcmp(mode, "thru") == 0;
	int fan = strcmp(mode, "fanout") == 0;
	if ((!thru && !fan && strcmp(mode, "rtt") != 0) || size < 2 ||
	    size > BENCH_MAX_BODY || count < 2 || producers < 1 ||
	    producers > ZB_MAX_PRODUCERS)
		usage();
	uint64_t per = count / (uint64_t)producers;
	if (per < 1)
		usage();
	count = per * (uint64_t)producers;

	char dir[] = "/tmp/ipchub-zmq-XXXXXX";
	if (!mkdtemp(dir))
		bench_die("mkdtemp: %s", strerror(errno));
	char ep[96];
	snprintf(ep, sizeof(ep), "ipc://%s/zmq.sock", dir);
	if (fan) {
		char sock[96];

		fanout(dir, size, count,
		       (int)bench_opt_u64(argc, argv, "--subs", 4));
		snprintf(sock, sizeof(sock), "%s/in.sock", dir);
		unlink(sock);
		snprintf(sock, sizeof(sock), "%s/out.sock", dir);
		unlink(sock);
		rmdir(dir);
		return 0;
	}

	pid_t bpid = bench_fork();
	if (bpid == 0) {
		broker(ep);
		_exit(0);
	}

	if (thru) {
		g_size = size;
		g_count = count;
		g_producers = producers;
		pid_t cpid = spawn_ready(consumer_main, ep);
		pid_t pp[ZB_MAX_PRODUCERS];
		int hold[2];
		if (pipe(hold) < 0)
			bench_die("pipe: %s", strerror(errno));
		bench_gate_open();
		for (int k = 0; k < producers; k++) {
			pp[k] = bench_fork();
			if (pp[k] == 0) {
				close(hold[1]);
				bench_gate_child();
				producer(ep, k, size, per, hold[0]);
				_exit(0);
			}
		}
		close(hold[0]);
		bench_gate_release(producers);
		bench_wait_ok(cpid, "consumer");
		close(hold[1]);
		for (int k = 0; k < producers; k++)
			bench_wait_ok(pp[k], "producer");
	} else {
		pid_t spid = spawn_ready(echo_server, ep);
		rtt_client(ep, size, count, bench_opt(argc, argv, "--samples", NULL));
		kill(spid, SIGKILL);
		waitpid(spid, NULL, 0);
	}
	kill(bpid, SIGKILL);
	waitpid(bpid, NULL, 0);
	char sock[96];
	snprintf(sock, sizeof(sock), "%s/zmq.sock", dir);
	unlink(sock);
	rmdir(dir);
	return 0;
}
