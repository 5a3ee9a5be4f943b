/* ipchub-bridge - federation of one local hub with a NATS cluster: pub/sub
 * here, names across hubs (name@hub, presence) in remote.c.
 *
 * Model: the bridge is an ordinary libipchub client; the broker needs no
 * change. It holds two local connections and one NATS connection:
 *  - `out` subscribes to the exported patterns; every publication it
 *    receives is published on NATS as <prefix>.<topic> with the headers
 *    Ipchub-Origin (this hub's name) and Ipchub-From (the local sender's
 *    name, if any). Only the main thread uses `out`.
 *  - `in` publishes locally what the NATS subscriptions on
 *    <prefix>.<imported pattern> deliver. libnats calls us from its own
 *    delivery threads, so `in` is used under in_lock only.
 * No loops: `out` skips deliveries whose from_id is `in`'s connection id
 * (they came from NATS), and NATS messages whose Ipchub-Origin is this
 * hub are ignored (and the NATS connection sets no-echo as well).
 * Backpressure: `out` subscribes with DROP_OLDEST, so a slow NATS link
 * makes the broker drop at the bridge and tell it (GAP, counted here);
 * libnats' publish buffer is bounded (reconnect buffer, pending limits)
 * and a refused publish is counted. Toward a slow local hub, `in` blocks
 * in ipchub_publish (the library's outbound high-water mark), the NATS
 * subscription's pending limits fill and libnats drops and reports a slow
 * consumer, which is counted. Losses are logged and summed at exit, never
 * silent. Invariant: nothing is buffered by the bridge itself. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <nats/nats.h>

#include "bconf.h"
#include "ipchub.h"
#include "limits.h"
#include "name.h"
#include "remote.h"

/* Bridge limits (one reason each). */
#define BRIDGE_MAX_PATTERNS BCONF_MAX_LIST /* exported or imported patterns */
#define BRIDGE_MAX_URLS 16       /* NATS servers in --nats */
#define BRIDGE_SUBJECT_MAX 512   /* prefix + topic; ipchub names are shorter */
#define BRIDGE_RECV_POLL_MS 200  /* how often the main loop looks at the stop flag */
#define BRIDGE_PENDING_MSGS 4096 /* per NATS subscription, before slow-consumer drops */
#define BRIDGE_PENDING_BYTES (16 * 1024 * 1024) /* same, in bytes */
#define BRIDGE_TIMEOUT_MS 5000   /* local calls: subscribe, connect */

#define HDR_ORIGIN "Ipchub-Origin"
#define HDR_FROM "Ipchub-From"

struct bridge {
	const char *hub;
	const char *prefix;
	size_t prefix_len;
	const char *exports[BRIDGE_MAX_PATTERNS];
	int n_exports;
	const char *imports[BRIDGE_MAX_PATTERNS];
	int n_imports;
	const char *names[REMOTE_MAX_EXPORTS]; /* exported local names */
	int n_names;
	struct remote *remote;    /* owned; names across hubs (remote.h) */
	ipchub *out;              /* owned; main thread only */
	ipchub *in;               /* owned; under in_lock */
	pthread_mutex_t in_lock;
	uint64_t in_id;           /* ipchub_conn_id(in), read-only after start */
	natsConnection *nc;       /* owned */
	natsSubscription *subs[BRIDGE_MAX_PATTERNS]; /* owned */
	/* counters */
	atomic_uint_fast64_t exported, imported, skipped_loop;
	atomic_uint_fast64_t gap_lost, nats_pub_failed, import_failed, bad_body;
};

static volatile sig_atomic_t stop;
static void on_signal(int sig) { (void)sig; stop = 1; }

static void usage(FILE *f)
{
	fprintf(f,
		"usage: ipchub-bridge [--config FILE] --hub NAME --nats URL[,URL...] [options]\n"
		"  -c, --config FILE     settings file ([bridge], [topics], [names];\n"
		"                        docs/FEDERATION.md); options given here win\n"
		"  -H, --hub NAME        this hub's name on the federation (required)\n"
		"  -n, --nats URLS       comma-separated NATS server URLs (required)\n"
		"  -s, --socket PATH     local broker socket (default: $IPCHUB_SOCKET, ...)\n"
		"  -e, --export PATTERN  bridge local publications matching PATTERN out (repeatable)\n"
		"  -i, --import PATTERN  bridge NATS publications matching PATTERN in (repeatable)\n"
		"  -N, --export-name NAME  let other hubs reach local NAME as NAME@HUB (repeatable)\n"
		"  -p, --prefix SUBJECT  NATS subject prefix (default: ipchub)\n"
		"      --creds FILE      NATS user credentials file (JWT + nkey seed)\n"
		"      --nkey-seed FILE  NATS nkey seed file\n"
		"      --user NAME --password-file FILE  NATS user and password\n"
		"      --nats-batch      let libnats batch writes (throughput) instead of\n"
		"                        writing each message at once (latency, default)\n"
		"      --tls-ca FILE     CA certificate to verify the NATS servers (enables TLS)\n"
		"      --tls-cert FILE --tls-key FILE  client certificate for TLS\n"
		"  -h, --help\n");
}

/* libnats status to a short log line; returns -1 for the caller's exit. */
static int nats_fail(const char *what, natsStatus s)
{
	fprintf(stderr, "ipchub-bridge: %s: %s\n", what, natsStatus_GetText(s));
	return -1;
}

/* Publish on `in` and write it out before returning: nobody else drives
 * `in`, and waiting here is the backpressure toward NATS (the
 * subscription's pending limits fill while we wait). Refusals the broker
 * sends back (errors carrying a publication's id) are read here and
 * counted, so nothing accumulates in the handle. Caller holds in_lock. */
static int in_publish(struct bridge *b, const char *topic, const void *body,
		      size_t len)
{
	int rc = ipchub_publish(b->in, topic, body, len);
	while (rc == IPCHUB_OK) {
		rc = ipchub_flush(b->in, BRIDGE_RECV_POLL_MS);
		if (rc != IPCHUB_E_TIMEOUT)
			break;
		if (stop)
			return rc;
	}
	ipchub_msg *m = NULL;
	while (rc == IPCHUB_OK && ipchub_recv(b->in, 0, &m) == IPCHUB_OK) {
		if (ipchub_msg_error(m) != 0) {
			atomic_fetch_add(&b->import_failed, 1);
			fprintf(stderr, "ipchub-bridge: import refused by the hub: %s\n",
				ipchub_code_name(ipchub_msg_error(m)));
		}
		ipchub_msg_free(m);
	}
	return rc;
}

/* A NATS message on <prefix>.<topic>: publish it locally as <topic>. */
static void on_nats_msg(natsConnection *nc, natsSubscription *sub,
			natsMsg *msg, void *closure)
{
	struct bridge *b = closure;
	const char *subj = natsMsg_GetSubject(msg);
	const char *origin = NULL;
	(void)nc; (void)sub;
	if (natsMsgHeader_Get(msg, HDR_ORIGIN, &origin) == NATS_OK &&
	    origin && strcmp(origin, b->hub) == 0) {
		atomic_fetch_add(&b->skipped_loop, 1);
		goto done;
	}
	if (strncmp(subj, b->prefix, b->prefix_len) != 0 ||
	    subj[b->prefix_len] != '.')
		goto done; /* cannot happen: we only subscribe under the prefix */
	const char *topic = subj + b->prefix_len + 1;
	const void *body = natsMsg_GetData(msg);
	size_t len = (size_t)natsMsg_GetDataLength(msg);
	if (len && ipchub_body_check(body, len) != IPCHUB_OK) {
		/* A foreign NATS publisher sent something that is not one
		 * msgpack value: the hub would refuse it; count and say so. */
		atomic_fetch_add(&b->bad_body, 1);
		fprintf(stderr, "ipchub-bridge: %s: body is not one msgpack value, dropped\n", subj);
		goto done;
	}
	pthread_mutex_lock(&b->in_lock);
	int rc = in_publish(b, topic, len ? body : NULL, len);
	pthread_mutex_unlock(&b->in_lock);
	if (rc == IPCHUB_OK) {
		atomic_fetch_add(&b->imported, 1);
	} else {
		atomic_fetch_add(&b->import_failed, 1);
		fprintf(stderr, "ipchub-bridge: import %s: %s\n", topic, ipchub_code_name(rc));
		if (rc != IPCHUB_E_BAD_NAME && rc != IPCHUB_E_TOO_LARGE)
			stop = 1; /* the local connection is gone */
	}
done:
	natsMsg_Destroy(msg);
}

static void on_nats_error(natsConnection *nc, natsSubscription *sub,
			  natsStatus err, void *closure)
{
	struct bridge *b = closure;
	int64_t dropped = 0;
	(void)nc;
	if (sub && err == NATS_SLOW_CONSUMER &&
	    natsSubscription_GetDropped(sub, &dropped) == NATS_OK)
		fprintf(stderr, "ipchub-bridge: slow local hub: %" PRId64
			" NATS messages dropped on this subscription so far\n", dropped);
	else
		fprintf(stderr, "ipchub-bridge: NATS error: %s\n", natsStatus_GetText(err));
	(void)b;
}

static void on_nats_event(natsConnection *nc, void *closure)
{
	const char *what = closure;
	(void)nc;
	fprintf(stderr, "ipchub-bridge: NATS %s\n", what);
}

/* One local publication to NATS. */
static void export_one(struct bridge *b, const ipchub_msg *m)
{
	char subj[BRIDGE_SUBJECT_MAX];
	const char *topic = ipchub_msg_topic(m);
	if (ipchub_msg_from_id(m) == b->in_id) {
		atomic_fetch_add(&b->skipped_loop, 1); /* came from NATS */
		return;
	}
	int n = snprintf(subj, sizeof(subj), "%s.%s", b->prefix, topic);
	if (n < 0 || (size_t)n >= sizeof(subj)) {
		atomic_fetch_add(&b->nats_pub_failed, 1);
		fprintf(stderr, "ipchub-bridge: export %s: subject too long\n", topic);
		return;
	}
	size_t len = 0;
	const void *body = ipchub_msg_body(m, &len);
	natsMsg *msg = NULL;
	natsStatus s = natsMsg_Create(&msg, subj, NULL, body, (int)len);
	if (s == NATS_OK)
		s = natsMsgHeader_Set(msg, HDR_ORIGIN, b->hub);
	const char *from = ipchub_msg_from(m);
	if (s == NATS_OK && from && *from)
		s = natsMsgHeader_Set(msg, HDR_FROM, from);
	if (s == NATS_OK)
		s = natsConnection_PublishMsg(b->nc, msg);
	natsMsg_Destroy(msg);
	if (s == NATS_OK) {
		atomic_fetch_add(&b->exported, 1);
	} else {
		atomic_fetch_add(&b->nats_pub_failed, 1);
		fprintf(stderr, "ipchub-bridge: export %s: %s\n", topic, natsStatus_GetText(s));
	}
}

static int bridge_loop(struct bridge *b)
{
	while (!stop) {
		if (b->remote && remote_failed(b->remote))
			return -1;
		ipchub_msg *m = NULL;
		int rc = ipchub_recv(b->out, BRIDGE_RECV_POLL_MS, &m);
		if (rc == IPCHUB_E_TIMEOUT || rc == IPCHUB_E_INTERRUPTED)
			continue;
		if (rc != IPCHUB_OK) {
			fprintf(stderr, "ipchub-bridge: local hub: %s\n", ipchub_code_name(rc));
			return -1;
		}
		switch (ipchub_msg_kind(m)) {
		case IPCHUB_KIND_PUBLISH:
			export_one(b, m);
			break;
		case IPCHUB_KIND_GAP:
			atomic_fetch_add(&b->gap_lost, ipchub_msg_gap_count(m));
			fprintf(stderr, "ipchub-bridge: NATS link too slow: %" PRIu64
				" local publications lost before export\n",
				ipchub_msg_gap_count(m));
			break;
		default:
			break;
		}
		ipchub_msg_free(m);
	}
	return 0;
}

/* How the NATS link authenticates (all optional; paths borrowed). */
struct nats_auth {
	const char *creds, *seed, *user, *pwfile, *ca, *cert, *key;
	bool batch; /* --nats-batch */
};

/* The first line of a password file, into buf (NUL-terminated). */
static natsStatus read_password(const char *path, char *buf, size_t cap)
{
	FILE *f = fopen(path, "r");
	bool ok = f && fgets(buf, (int)cap, f);

	if (f)
		fclose(f);
	if (!ok) {
		fprintf(stderr, "ipchub-bridge: %s: cannot read a password\n", path);
		return NATS_INVALID_ARG;
	}
	buf[strcspn(buf, "\r\n")] = '\0';
	return NATS_OK;
}

static int nats_setup(struct bridge *b, const char *urls,
		      const struct nats_auth *a)
{
	char pw[256];
	natsOptions *o = NULL;
	char *copy = strdup(urls);
	const char *list[BRIDGE_MAX_URLS];
	int n = 0;
	natsStatus s = copy ? natsOptions_Create(&o) : NATS_NO_MEMORY;
	for (char *save = NULL, *t = copy ? strtok_r(copy, ",", &save) : NULL;
	     t && s == NATS_OK; t = strtok_r(NULL, ",", &save)) {
		if (n == BRIDGE_MAX_URLS) {
			s = NATS_INVALID_ARG;
			break;
		}
		list[n++] = t;
	}
	if (s == NATS_OK && n == 0)
		s = NATS_INVALID_ARG;
	if (s == NATS_OK)
		s = natsOptions_SetServers(o, list, n);
	if (s == NATS_OK) /* the operator's order: nearest server first */
		s = natsOptions_SetNoRandomize(o, true);
	if (s == NATS_OK)
		s = natsOptions_SetNoEcho(o, true);
	/* Latency: write each publication at once rather than waking
	 * libnats' flusher thread for it (one thread hop per message on
	 * each side of a round trip); --nats-batch leaves it to the
	 * flusher, which batches writes (throughput; BENCHMARKS.md). */
	if (s == NATS_OK)
		s = natsOptions_SetSendAsap(o, !a->batch);
	if (s == NATS_OK)
		s = natsOptions_SetMaxReconnect(o, -1);
	if (s == NATS_OK)
		s = natsOptions_SetReconnectWait(o, 100);
	if (s == NATS_OK)
		s = natsOptions_SetRetryOnFailedConnect(o, true, NULL, NULL);
	if (s == NATS_OK)
		s = natsOptions_SetErrorHandler(o, on_nats_error, b);
	if (s == NATS_OK)
		s = natsOptions_SetDisconnectedCB(o, on_nats_event, "disconnected");
	if (s == NATS_OK)
		s = natsOptions_SetReconnectedCB(o, on_nats_event, "reconnected");
	if (s == NATS_OK && a->creds)
		s = natsOptions_SetUserCredentialsFromFiles(o, a->creds, NULL);
	if (s == NATS_OK && a->seed)
		s = natsOptions_SetNKeyFromSeed(o, NULL, a->seed);
	if (s == NATS_OK && a->user)
		s = read_password(a->pwfile, pw, sizeof(pw));
	if (s == NATS_OK && a->user)
		s = natsOptions_SetUserInfo(o, a->user, pw);
	memset(pw, 0, sizeof(pw));
	if (s == NATS_OK && a->ca) {
		s = natsOptions_SetSecure(o, true);
		if (s == NATS_OK)
			s = natsOptions_LoadCATrustedCertificates(o, a->ca);
	}
	if (s == NATS_OK && a->cert && a->key)
		s = natsOptions_LoadCertificatesChain(o, a->cert, a->key);
	if (s == NATS_OK)
		s = natsConnection_Connect(&b->nc, o);
	natsOptions_Destroy(o);
	free(copy);
	if (s != NATS_OK)
		return nats_fail("connect", s);
	for (int i = 0; i < b->n_imports; i++) {
		char subj[BRIDGE_SUBJECT_MAX];
		int m = snprintf(subj, sizeof(subj), "%s.%s", b->prefix, b->imports[i]);
		if (m < 0 || (size_t)m >= sizeof(subj))
			return nats_fail("import pattern", NATS_INVALID_SUBJECT);
		s = natsConnection_Subscribe(&b->subs[i], b->nc, subj, on_nats_msg, b);
		if (s == NATS_OK)
			s = natsSubscription_SetPendingLimits(b->subs[i], BRIDGE_PENDING_MSGS,
							      BRIDGE_PENDING_BYTES);
		if (s != NATS_OK)
			return nats_fail(subj, s);
	}
	s = natsConnection_Flush(b->nc);
	if (s != NATS_OK && s != NATS_CONNECTION_DISCONNECTED)
		return nats_fail("flush", s);
	return 0;
}

static int local_setup(struct bridge *b, const char *socket)
{
	struct ipchub_opts o = {.socket = socket, .agent = "ipchub-bridge"};
	int rc = ipchub_connect(&o, &b->out);
	if (rc == IPCHUB_OK)
		rc = ipchub_connect(&o, &b->in);
	for (int i = 0; rc == IPCHUB_OK && i < b->n_exports; i++) {
		rc = ipchub_subscribe(b->out, b->exports[i], IPCHUB_POLICY_DROP_OLDEST,
				      BRIDGE_TIMEOUT_MS, NULL);
		if (rc != IPCHUB_OK)
			fprintf(stderr, "ipchub-bridge: export %s: %s\n", b->exports[i],
				ipchub_code_name(rc));
	}
	if (rc != IPCHUB_OK) {
		fprintf(stderr, "ipchub-bridge: local hub: %s\n", ipchub_strerror(rc));
		return -1;
	}
	b->in_id = ipchub_conn_id(b->in);
	return 0;
}

static const struct option long_opts[] = {
	{"config", required_argument, NULL, 'c'},
	{"hub", required_argument, NULL, 'H'},
	{"nats", required_argument, NULL, 'n'},
	{"socket", required_argument, NULL, 's'},
	{"export", required_argument, NULL, 'e'},
	{"import", required_argument, NULL, 'i'},
	{"export-name", required_argument, NULL, 'N'},
	{"prefix", required_argument, NULL, 'p'},
	{"creds", required_argument, NULL, 256 + BCONF_CREDS},
	{"nkey-seed", required_argument, NULL, 256 + BCONF_SEED},
	{"user", required_argument, NULL, 256 + BCONF_USER},
	{"password-file", required_argument, NULL, 256 + BCONF_PWFILE},
	{"tls-ca", required_argument, NULL, 256 + BCONF_CA},
	{"tls-cert", required_argument, NULL, 256 + BCONF_CERT},
	{"tls-key", required_argument, NULL, 256 + BCONF_KEY},
	{"nats-batch", no_argument, NULL, 'B'},
	{"help", no_argument, NULL, 'h'},
	{0, 0, 0, 0}};
#define SHORT_OPTS "c:H:n:s:e:i:N:p:h"

/* The configuration file (--config, read first), then the command line
 * over it. Returns 0, 1 (help printed) or 2 (usage error, said). */
static int parse_args(int argc, char **argv, struct bconf *cf)
{
	char err[512];
	int c, r = 0;

	opterr = 0; /* the second pass reports unknown options */
	while ((c = getopt_long(argc, argv, SHORT_OPTS, long_opts, NULL)) != -1)
		if (c == 'c' && bconf_load(cf, optarg, err, sizeof(err)) < 0) {
			fprintf(stderr, "ipchub-bridge: %s\n", err);
			return 2;
		}
	opterr = 1;
	optind = 0;
	while (r == 0 &&
	       (c = getopt_long(argc, argv, SHORT_OPTS, long_opts, NULL)) != -1) {
		switch (c) {
		case 'c': break;
		case 'B': cf->batch = true; break;
		case 'H': r = bconf_set(cf, BCONF_HUB, optarg, err, sizeof(err)); break;
		case 'n': r = bconf_set(cf, BCONF_NATS, optarg, err, sizeof(err)); break;
		case 's': r = bconf_set(cf, BCONF_SOCKET, optarg, err, sizeof(err)); break;
		case 'p': r = bconf_set(cf, BCONF_PREFIX, optarg, err, sizeof(err)); break;
		case 'e': r = bconf_add(cf, BCONF_EXPORTS, optarg, err, sizeof(err)); break;
		case 'i': r = bconf_add(cf, BCONF_IMPORTS, optarg, err, sizeof(err)); break;
		case 'N': r = bconf_add(cf, BCONF_NAMES, optarg, err, sizeof(err)); break;
		case 'h': usage(stdout); return 1;
		default:
			if (c >= 256 && c < 256 + BCONF_NSCALARS_) {
				r = bconf_set(cf, (enum bconf_key)(c - 256), optarg,
					      err, sizeof(err));
				break;
			}
			usage(stderr);
			return 2;
		}
	}
	if (r < 0) {
		fprintf(stderr, "ipchub-bridge: %s\n", err);
		return 2;
	}
	if (optind != argc) {
		usage(stderr);
		return 2;
	}
	return 0;
}

/* Settings into b; 0, or 2 after saying what is wrong. */
static int apply(struct bridge *b, const struct bconf *cf)
{
	const char *const *v = (const char *const *)cf->v;

	if (!v[BCONF_HUB] || name_check_hub(v[BCONF_HUB], strlen(v[BCONF_HUB]))) {
		fprintf(stderr, "ipchub-bridge: --hub NAME is required: 1..%u bytes of "
			"[A-Za-z0-9_-]\n", IPCHUB_MAX_HUB);
		return 2;
	}
	if (!v[BCONF_NATS]) {
		fprintf(stderr, "ipchub-bridge: --nats URL[,URL...] is required\n");
		return 2;
	}
	if (!v[BCONF_CERT] != !v[BCONF_KEY] || !v[BCONF_USER] != !v[BCONF_PWFILE]) {
		fprintf(stderr, "ipchub-bridge: --tls-cert goes with --tls-key, "
			"--user with --password-file\n");
		return 2;
	}
	if (cf->n[BCONF_NAMES] > REMOTE_MAX_EXPORTS) {
		fprintf(stderr, "ipchub-bridge: more than %d exported names\n",
			REMOTE_MAX_EXPORTS);
		return 2;
	}
	b->hub = v[BCONF_HUB];
	if (v[BCONF_PREFIX])
		b->prefix = v[BCONF_PREFIX];
	for (int i = 0; i < cf->n[BCONF_EXPORTS]; i++)
		b->exports[b->n_exports++] = cf->list[BCONF_EXPORTS][i];
	for (int i = 0; i < cf->n[BCONF_IMPORTS]; i++)
		b->imports[b->n_imports++] = cf->list[BCONF_IMPORTS][i];
	for (int i = 0; i < cf->n[BCONF_NAMES]; i++) {
		const char *n = cf->list[BCONF_NAMES][i];

		if (name_check(n, strlen(n)) != 0) {
			fprintf(stderr, "ipchub-bridge: exported name \"%s\" is not a name\n", n);
			return 2;
		}
		b->names[b->n_names++] = n;
	}
	return 0;
}

int main(int argc, char **argv)
{
	static struct bridge b = {.prefix = "ipchub"};
	static struct bconf cf;
	int pr = parse_args(argc, argv, &cf);

	if (pr == 0)
		pr = apply(&b, &cf);
	if (pr != 0) {
		bconf_free(&cf);
		return pr == 1 ? 0 : 2;
	}
	const char *urls = cf.v[BCONF_NATS], *socket = cf.v[BCONF_SOCKET];
	const char *creds = cf.v[BCONF_CREDS], *seed = cf.v[BCONF_SEED];
	const char *user = cf.v[BCONF_USER];
	b.prefix_len = strlen(b.prefix);
	pthread_mutex_init(&b.in_lock, NULL);

	struct sigaction sa = {.sa_handler = on_signal};
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	struct nats_auth auth = {.creds = creds, .seed = seed, .user = user,
				 .pwfile = cf.v[BCONF_PWFILE], .ca = cf.v[BCONF_CA],
				 .cert = cf.v[BCONF_CERT], .key = cf.v[BCONF_KEY],
				 .batch = cf.batch};
	int rc = 1;
	struct remote_conf rconf = {
		.hub = b.hub, .prefix = b.prefix, .exports = b.names,
		.n_exports = b.n_names, .trusted = creds || seed || user,
		.socket = socket};
	if (local_setup(&b, socket) == 0 &&
	    nats_setup(&b, urls, &auth) == 0 &&
	    remote_start(&rconf, b.nc, &b.remote) == 0) {
		fprintf(stderr, "ipchub-bridge: hub %s ready (%d exported, %d imported patterns, "
			"%d exported names)\n", b.hub, b.n_exports, b.n_imports, b.n_names);
		rc = bridge_loop(&b) == 0 ? 0 : 1;
	}
	remote_counters(b.remote, stderr);
	remote_stop(b.remote);
	for (int i = 0; i < b.n_imports; i++)
		if (b.subs[i]) {
			natsSubscription_Unsubscribe(b.subs[i]);
			natsSubscription_Destroy(b.subs[i]);
		}
	if (b.nc) {
		natsConnection_FlushTimeout(b.nc, 1000);
		natsConnection_Destroy(b.nc);
	}
	nats_Close();
	ipchub_close(b.out);
	pthread_mutex_lock(&b.in_lock);
	ipchub_close(b.in);
	b.in = NULL;
	pthread_mutex_unlock(&b.in_lock);
	fprintf(stderr, "ipchub-bridge: exported %" PRIu64 " imported %" PRIu64
		" loop-skipped %" PRIu64 " lost-before-export %" PRIu64
		" export-failed %" PRIu64 " import-failed %" PRIu64 " bad-body %" PRIu64 "\n",
		(uint64_t)b.exported, (uint64_t)b.imported, (uint64_t)b.skipped_loop,
		(uint64_t)b.gap_lost, (uint64_t)b.nats_pub_failed,
		(uint64_t)b.import_failed, (uint64_t)b.bad_body);
	bconf_free(&cf);
	return rc;
}
