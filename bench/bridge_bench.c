/*
 * bridge_bench.c - cross-hub messaging through ipchub-bridge, beside the
 * same traffic on NATS alone through libnats (the library the bridge
 * uses), so the bridge's cost is a ratio measured in one run.
 *
 *   bridge_bench nats-thru   --nats URL --size B --count N [--asap]
 *   bridge_bench nats-rtt    --nats URL --size B --count N [--asap] [--samples F]
 *   bridge_bench bridge-thru --local SOCK --remote SOCK --hub H --size B --count N
 *   bridge_bench bridge-rtt  --local SOCK --remote SOCK --hub H --size B
 *                            --count N [--samples F]
 * (every mode: [--system NAME], the name its JSON line carries)
 *
 * bench/bridge_run.sh starts nats-server, two ipchubd and their bridges
 * (hub H exports bench.sink and bench.echo) and runs these.
 *
 * Model: the receiving side is one thread with one connection (a libnats
 * subscription on bench.>; an ipchub connection owning bench.sink and
 * bench.echo on the remote hub): SENDs/publications to bench.sink are
 * counted and timed first to last arrival, requests to bench.echo are
 * answered with their body. The sender sends a window of messages, then
 * one request through the same path, which arrives after them (one NATS
 * subscription, delivered in order) and so bounds what is in flight:
 * core NATS and the bridge drop a receiver that falls too far behind, and
 * a benchmark must not measure losses. Round trips are requests to
 * bench.echo, one at a time, after bench_rtt_warmup() unrecorded ones.
 */
#include "common.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <nats/nats.h>

#include "ipchub.h"

#define WINDOW 2048        /* messages in flight before a sync request */
#define TIMEOUT_MS 30000   /* any single wait; the run's bound is bench/run's */

struct sink {
	atomic_uint_fast64_t got;
	uint64_t t_first, t_last;
	atomic_bool stop;
};

static void counted(struct sink *k)
{
	uint64_t now = bench_now_ns();

	if (atomic_fetch_add(&k->got, 1) == 0)
		k->t_first = now;
	k->t_last = now;
}

/* ---- NATS alone ------------------------------------------------------ */

/* --asap: the libnats option the bridge sets by default (each message
 * written at once); without it, libnats' default flusher thread. */
static bool asap;
static const char *sys_name; /* --system: the name in the JSON line */

static natsConnection *nats_connect(const char *url)
{
	natsConnection *nc = NULL;
	natsOptions *o = NULL;
	natsStatus s = natsOptions_Create(&o);

	if (s == NATS_OK)
		s = natsOptions_SetURL(o, url);
	if (s == NATS_OK)
		s = natsOptions_SetSendAsap(o, asap);
	if (s == NATS_OK)
		s = natsConnection_Connect(&nc, o);
	natsOptions_Destroy(o);

	if (s != NATS_OK)
		bench_die("nats connect %s: %s", url, natsStatus_GetText(s));
	return nc;
}

static void on_bench_msg(natsConnection *nc, natsSubscription *sub,
			 natsMsg *m, void *closure)
{
	struct sink *k = closure;
	const char *reply = natsMsg_GetReply(m);

	(void)sub;
	if (reply)
		natsConnection_Publish(nc, reply, natsMsg_GetData(m),
				       natsMsg_GetDataLength(m));
	else
		counted(k);
	natsMsg_Destroy(m);
}

/* count timed round trips of once(arg), after the usual warm-up; emits
 * the rtt figure for sys. */
static void rtt_run(const char *sys, size_t size, uint64_t count,
		    const char *samples, void (*once)(void *), void *arg)
{
	uint64_t *v = calloc(count, sizeof(*v));
	uint64_t warm = bench_rtt_warmup(count);

	if (!v)
		bench_die("out of memory");
	for (uint64_t i = 0; i < warm + count; i++) {
		uint64_t t0 = bench_now_ns();

		once(arg);
		if (i >= warm)
			v[i - warm] = bench_now_ns() - t0;
	}
	bench_emit_rtt(sys, size, v, count, samples);
	free(v);
}

static void nats_sync(natsConnection *nc, const void *body, size_t size)
{
	natsMsg *r = NULL;
	natsStatus s = natsConnection_Request(&r, nc, "bench.echo", body,
					      (int)size, TIMEOUT_MS);

	if (s != NATS_OK)
		bench_die("nats request: %s", natsStatus_GetText(s));
	natsMsg_Destroy(r);
}

struct nats_rtt {
	natsConnection *nc;
	const void *body;
	size_t size;
};

static void nats_rtt_once(void *arg)
{
	struct nats_rtt *r = arg;

	nats_sync(r->nc, r->body, r->size);
}

static void run_nats(bool thru, const char *url, size_t size, uint64_t count,
		     const char *samples)
{
	static struct sink k;
	natsConnection *rx = nats_connect(url), *tx = nats_connect(url);
	natsSubscription *sub = NULL;
	uint8_t *body = malloc(size ? size : 1);

	if (!body)
		bench_die("out of memory");
	bench_body(body, size);
	if (natsConnection_Subscribe(&sub, rx, "bench.>", on_bench_msg, &k) != NATS_OK ||
	    natsSubscription_SetPendingLimits(sub, -1, -1) != NATS_OK ||
	    natsConnection_Flush(rx) != NATS_OK)
		bench_die("nats subscribe");
	nats_sync(tx, body, size); /* the subscription is in place */
	if (thru) {
		for (uint64_t i = 0; i < count; i++) {
			natsStatus s = natsConnection_Publish(tx, "bench.sink", body, (int)size);
			if (s != NATS_OK)
				bench_die("nats publish: %s", natsStatus_GetText(s));
			if ((i + 1) % WINDOW == 0)
				nats_sync(tx, body, size);
		}
		nats_sync(tx, body, size);
		if (atomic_load(&k.got) != count)
			bench_die("nats: %llu of %llu arrived",
				  (unsigned long long)atomic_load(&k.got),
				  (unsigned long long)count);
		bench_emit_thru(sys_name, "thru", size, count, k.t_first,
				k.t_last, 1);
	} else {
		struct nats_rtt r = { tx, body, size };

		rtt_run(sys_name, size, count, samples, nats_rtt_once, &r);
	}
	natsSubscription_Unsubscribe(sub);
	natsSubscription_Destroy(sub);
	natsConnection_Destroy(tx);
	natsConnection_Destroy(rx);
	nats_Close();
	free(body);
}

/* ---- through the bridge ---------------------------------------------- */

struct far_end {
	ipchub *h;
	struct sink k;
};

static void *far_thread(void *arg)
{
	struct far_end *f = arg;

	while (!atomic_load(&f->k.stop)) {
		const ipchub_msg *m = NULL;
		int rc = ipchub_recv_lent(f->h, 100, &m);

		if (rc == IPCHUB_E_TIMEOUT)
			continue;
		if (rc != IPCHUB_OK)
			bench_die("far end recv: %s", ipchub_code_name(rc));
		if (ipchub_msg_kind(m) == IPCHUB_KIND_REQUEST) {
			size_t len = 0;
			const void *b = ipchub_msg_body(m, &len);

			rc = ipchub_reply(f->h, m, b, len);
			if (rc == IPCHUB_OK)
				rc = ipchub_flush(f->h, TIMEOUT_MS);
			if (rc != IPCHUB_OK)
				bench_die("far end reply: %s", ipchub_code_name(rc));
		} else if (ipchub_msg_kind(m) == IPCHUB_KIND_SEND) {
			counted(&f->k);
		}
	}
	return NULL;
}

static ipchub *hub_connect(const char *sock)
{
	struct ipchub_opts o = {.socket = sock};
	ipchub *h = NULL;
	int rc = ipchub_connect(&o, &h);

	if (rc != IPCHUB_OK)
		bench_die("connect %s: %s", sock, ipchub_code_name(rc));
	return h;
}

static void bridge_sync(ipchub *h, const char *echo, const void *body,
			size_t size)
{
	ipchub_msg *r = NULL;
	int rc = ipchub_request(h, echo, body, size, TIMEOUT_MS, &r);

	if (rc != IPCHUB_OK)
		bench_die("request %s: %s", echo, ipchub_code_name(rc));
	ipchub_msg_free(r);
}

struct bridge_rtt {
	ipchub *h;
	const char *echo;
	const void *body;
	size_t size;
};

static void bridge_rtt_once(void *arg)
{
	struct bridge_rtt *r = arg;

	bridge_sync(r->h, r->echo, r->body, r->size);
}

static void run_bridge(bool thru, const char *local, const char *remote,
		       const char *hub, size_t size, uint64_t count,
		       const char *samples)
{
	static struct far_end f;
	char sink[300], echo[300];
	ipchub *h = hub_connect(local);
	uint8_t *body = malloc(size ? size : 1);
	pthread_t t;
	int rc;

	if (!body)
		bench_die("out of memory");
	bench_body(body, size);
	snprintf(sink, sizeof(sink), "bench.sink@%s", hub);
	snprintf(echo, sizeof(echo), "bench.echo@%s", hub);
	f.h = hub_connect(remote);
	if (ipchub_register(f.h, "bench.sink", TIMEOUT_MS) != IPCHUB_OK ||
	    ipchub_register(f.h, "bench.echo", TIMEOUT_MS) != IPCHUB_OK)
		bench_die("register on the far hub");
	if (pthread_create(&t, NULL, far_thread, &f) != 0)
		bench_die("pthread_create");
	/* Presence crosses within a heartbeat: wait until the names are
	 * here and answer. */
	for (uint64_t end = bench_now_ns() + (uint64_t)TIMEOUT_MS * 1000000;;) {
		ipchub_msg *r = NULL;

		rc = ipchub_request(h, echo, body, size, 1000, &r);
		ipchub_msg_free(r);
		/* bench.sink was registered first: it is in every list
		 * that has bench.echo. */
		if (rc == IPCHUB_OK)
			break;
		if (bench_now_ns() > end)
			bench_die("%s did not appear: %s", echo, ipchub_code_name(rc));
		usleep(20000);
	}
	if (thru) {
		for (uint64_t i = 0; i < count; i++) {
			rc = ipchub_send(h, sink, body, size, NULL);
			if (rc != IPCHUB_OK)
				bench_die("send: %s", ipchub_code_name(rc));
			if ((i + 1) % WINDOW == 0)
				bridge_sync(h, echo, body, size);
		}
		bridge_sync(h, echo, body, size);
		if (atomic_load(&f.k.got) != count)
			bench_die("bridge: %llu of %llu arrived",
				  (unsigned long long)atomic_load(&f.k.got),
				  (unsigned long long)count);
		bench_emit_thru(sys_name, "thru", size, count, f.k.t_first,
				f.k.t_last, 1);
	} else {
		struct bridge_rtt r = { h, echo, body, size };

		rtt_run(sys_name, size, count, samples, bridge_rtt_once, &r);
	}
	atomic_store(&f.k.stop, true);
	pthread_join(t, NULL);
	ipchub_close(f.h);
	ipchub_close(h);
	free(body);
}

int main(int argc, char **argv)
{
	if (argc < 2)
		bench_die("usage: bridge_bench nats-thru|nats-rtt|bridge-thru|bridge-rtt ...");
	const char *mode = argv[1];
	size_t size = (size_t)bench_opt_u64(argc, argv, "--size", 64);
	uint64_t count = bench_opt_u64(argc, argv, "--count", 10000);
	const char *samples = bench_opt(argc, argv, "--samples", NULL);

	sys_name = bench_opt(argc, argv, "--system",
			     strncmp(mode, "nats-", 5) == 0 ? "nats-libnats" : "ipchub-bridge");

	if (strncmp(mode, "nats-", 5) == 0) {
		const char *url = bench_opt(argc, argv, "--nats", NULL);

		if (!url)
			bench_die("--nats URL");
		asap = bench_flag(argc, argv, "--asap");
		run_nats(strcmp(mode, "nats-thru") == 0, url, size, count, samples);
	} else if (strncmp(mode, "bridge-", 7) == 0) {
		const char *local = bench_opt(argc, argv, "--local", NULL);
		const char *remote = bench_opt(argc, argv, "--remote", NULL);
		const char *hub = bench_opt(argc, argv, "--hub", NULL);

		if (!local || !remote || !hub)
			bench_die("--local SOCK --remote SOCK --hub H");
		run_bridge(strcmp(mode, "bridge-thru") == 0, local, remote, hub,
			   size, count, samples);
	} else {
		bench_die("unknown mode %s", mode);
	}
	return 0;
}
