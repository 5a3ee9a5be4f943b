/*
 * soak.c - minutes of mixed traffic through a real ipchubd, with random
 * kills and reconnects, checking that nothing is lost (run by hand, not
 * by CI):
 *
 *   ipchub_soak [--seconds N] [--senders N] [--churners N] [--kill-ms N]
 *
 * Model: the soak starts its own broker (IPCHUBD_PATH, a temporary socket)
 * and these parties:
 *  - "soak.sink" (thread, never killed) receives one-way SENDs whose body
 *    is [sender, seq] and checks, per sender, that seq arrives exactly in
 *    order: no gap, no duplicate;
 *  - "soak.echo" (thread, never killed) answers REQUESTs with their body;
 *  - churners "soak.churn.K" (separate processes, re-executed from this
 *    binary) answer requests and swallow sends; the main thread SIGKILLs a
 *    random one every --kill-ms and starts it again;
 *  - senders (threads) loop over a random mix: SEND to the sink, REQUEST
 *    to the echo, REQUEST and SEND to a churner; now and then each one
 *    flushes, closes and reconnects (an orderly reconnect, so what it
 *    counted as sent really left it).
 * Accounting, per sender: for the sink, sent = delivered + reported as
 * failed (an ERROR with the send's id), exactly; for requests, every call
 * returns exactly one outcome (reply with the right body, or an error)
 * and sent = replied + failed. Sends to churners are only counted: the
 * protocol reports nothing for frames queued to a receiver that dies
 * (PROTOCOL.md section 8), so they cannot balance. Every second the
 * broker's RSS and fd count are sampled; at the end, with every client
 * gone, the fd count must be back where it started. The figures are
 * printed; the exit status is 0 only if every check held.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "ipchub.h"

#define MAX_SENDERS 64
#define MAX_CHURNERS 32

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void die(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fprintf(stderr, "ipchub_soak: ");
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	exit(2);
}

static char g_path[256];
static volatile int g_stop;

static ipchub *connect_retry(const char *name)
{
	struct ipchub_opts o = {.socket = g_path, .timeout_ms = 5000, .agent = "soak"};
	ipchub *h = NULL;
	int64_t deadline = now_ms() + 10000;
	int rc;
	while ((rc = ipchub_connect(&o, &h)) != IPCHUB_OK) {
		if (now_ms() > deadline)
			die("connect: %s", ipchub_code_name(rc));
		usleep(10000);
	}
	if (name) {
		while ((rc = ipchub_register(h, name, 5000)) == IPCHUB_E_NAME_TAKEN &&
		       now_ms() < deadline)
			usleep(2000);
		if (rc != IPCHUB_OK)
			die("register %s: %s", name, ipchub_code_name(rc));
	}
	return h;
}

/* [sender, seq] */
static void pack_seq(ipchub_pack *p, unsigned sender, uint64_t seq)
{
	ipchub_pack_reset(p);
	msgpack_pack_array(&p->pk, 2);
	msgpack_pack_unsigned_int(&p->pk, sender);
	msgpack_pack_uint64(&p->pk, seq);
}

static int unpack_seq(const ipchub_msg *m, unsigned *sender, uint64_t *seq)
{
	msgpack_unpacked u;
	int ok = 0;
	msgpack_unpacked_init(&u);
	if (ipchub_msg_unpack(m, &u) == IPCHUB_OK && u.data.type == MSGPACK_OBJECT_ARRAY &&
	    u.data.via.array.size == 2 &&
	    u.data.via.array.ptr[0].type == MSGPACK_OBJECT_POSITIVE_INTEGER &&
	    u.data.via.array.ptr[1].type == MSGPACK_OBJECT_POSITIVE_INTEGER) {
		*sender = (unsigned)u.data.via.array.ptr[0].via.u64;
		*seq = u.data.via.array.ptr[1].via.u64;
		ok = 1;
	}
	msgpack_unpacked_destroy(&u);
	return ok;
}

/* ---- churner process ----------------------------------------------------- */

static int churner_main(const char *name)
{
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	ipchub *h = connect_retry(name);
	for (;;) {
		ipchub_msg *m = NULL;
		int rc = ipchub_recv(h, -1, &m);
		if (rc != IPCHUB_OK)
			return 0;
		if (ipchub_msg_kind(m) == IPCHUB_KIND_REQUEST) {
			size_t len;
			const void *b = ipchub_msg_body(m, &len);
			ipchub_reply(h, m, b, len);
			ipchub_flush(h, 1000);
		}
		ipchub_msg_free(m);
	}
}

/* ---- sink and echo ------------------------------------------------------ */

struct sink {
	uint64_t next[MAX_SENDERS];     /* next expected seq per sender */
	uint64_t delivered[MAX_SENDERS];
	uint64_t seq_errors;
	uint64_t bad_bodies;
};
static struct sink g_sink;
static volatile int g_sink_stop;

static void *sink_main(void *arg)
{
	ipchub *h = arg;
	while (!g_sink_stop) {
		ipchub_msg *m = NULL;
		int rc = ipchub_recv(h, 100, &m);
		if (rc == IPCHUB_E_TIMEOUT)
			continue;
		if (rc != IPCHUB_OK)
			die("sink: recv: %s", ipchub_code_name(rc));
		unsigned s;
		uint64_t seq;
		if (!unpack_seq(m, &s, &seq) || s >= MAX_SENDERS) {
			g_sink.bad_bodies++;
		} else {
			if (seq != g_sink.next[s]) {
				fprintf(stderr, "sink: sender %u: seq %llu, expected %llu\n", s,
					(unsigned long long)seq,
					(unsigned long long)g_sink.next[s]);
				g_sink.seq_errors++;
			}
			g_sink.next[s] = seq + 1;
			__atomic_add_fetch(&g_sink.delivered[s], 1, __ATOMIC_RELAXED);
		}
		ipchub_msg_free(m);
	}
	return NULL;
}

static volatile int g_echo_stop;

static void *echo_main(void *arg)
{
	ipchub *h = arg;
	while (!g_echo_stop) {
		ipchub_msg *m = NULL;
		int rc = ipchub_recv(h, 100, &m);
		if (rc == IPCHUB_E_TIMEOUT)
			continue;
		if (rc != IPCHUB_OK)
			die("echo: recv: %s", ipchub_code_name(rc));
		if (ipchub_msg_kind(m) == IPCHUB_KIND_REQUEST) {
			size_t len;
			const void *b = ipchub_msg_body(m, &len);
			ipchub_reply(h, m, b, len);
			ipchub_flush(h, 1000);
		}
		ipchub_msg_free(m);
	}
	return NULL;
}

/* ---- senders ------------------------------------------------------------- */

struct sender {
	unsigned idx;
	unsigned nchurn;
	uint64_t rnd;
	uint64_t sink_sent, sink_failed;
	uint64_t req_sent, req_ok, req_failed, req_bad_reply;
	uint64_t churn_req_sent, churn_req_ok, churn_req_failed;
	uint64_t churn_sent, churn_failed;
	uint64_t reconnects, other_errors;
	pthread_t t;
};

static uint64_t rnd(struct sender *s)
{
	s->rnd ^= s->rnd << 13;
	s->rnd ^= s->rnd >> 7;
	s->rnd ^= s->rnd << 17;
	return s->rnd;
}

/* Take the asynchronous errors (failed sends) queued in h. */
static void drain_errors(struct sender *s, ipchub *h, int timeout_ms)
{
	ipchub_msg *m = NULL;
	while (ipchub_recv(h, timeout_ms, &m) == IPCHUB_OK) {
		const char *to = ipchub_msg_to(m);
		if (ipchub_msg_error(m) && to && strcmp(to, "soak.sink") == 0)
			s->sink_failed++;
		else if (ipchub_msg_error(m) && to && strncmp(to, "soak.churn.", 11) == 0)
			s->churn_failed++;
		else
			s->other_errors++;
		ipchub_msg_free(m);
	}
}

static void *sender_main(void *arg)
{
	struct sender *s = arg;
	ipchub *h = connect_retry(NULL);
	ipchub_pack pk;
	uint64_t seq = 0, rseq = 0;
	char churn[64];
	ipchub_pack_init(&pk);
	while (!g_stop) {
		unsigned op = (unsigned)(rnd(s) % 100);
		if (op < 50) {
			pack_seq(&pk, s->idx, s->sink_sent);
			int rc = ipchub_send(h, "soak.sink", pk.buf.data, pk.buf.size, NULL);
			if (rc != IPCHUB_OK)
				die("sender %u: send: %s", s->idx, ipchub_code_name(rc));
			s->sink_sent++;
		} else if (op < 75 || s->nchurn == 0) {
			ipchub_msg *r = NULL;
			pack_seq(&pk, s->idx, rseq);
			s->req_sent++;
			int rc = ipchub_request(h, "soak.echo", pk.buf.data, pk.buf.size, 5000, &r);
			unsigned rs;
			uint64_t q;
			if (rc == IPCHUB_OK) {
				s->req_ok++;
				if (!unpack_seq(r, &rs, &q) || rs != s->idx || q != rseq)
					s->req_bad_reply++;
			} else {
				s->req_failed++;
			}
			ipchub_msg_free(r);
			rseq++;
		} else if (op < 90) {
			ipchub_msg *r = NULL;
			snprintf(churn, sizeof(churn), "soak.churn.%u",
				 (unsigned)(rnd(s) % s->nchurn));
			pack_seq(&pk, s->idx, rseq);
			s->churn_req_sent++;
			int rc = ipchub_request(h, churn, pk.buf.data, pk.buf.size, 1000, &r);
			if (rc == IPCHUB_OK)
				s->churn_req_ok++;
			else
				s->churn_req_failed++;
			ipchub_msg_free(r);
			rseq++;
		} else {
			snprintf(churn, sizeof(churn), "soak.churn.%u",
				 (unsigned)(rnd(s) % s->nchurn));
			pack_seq(&pk, s->idx, seq++);
			if (ipchub_send(h, churn, pk.buf.data, pk.buf.size, NULL) == IPCHUB_OK)
				s->churn_sent++;
		}
		drain_errors(s, h, 0);
		if (rnd(s) % 5000 == 0) {
			/* Orderly reconnect: everything counted as sent leaves
			 * first, and the errors it earned are collected. */
			if (ipchub_flush(h, -1) != IPCHUB_OK)
				die("sender %u: flush", s->idx);
			drain_errors(s, h, 200);
			ipchub_close(h);
			h = connect_retry(NULL);
			s->reconnects++;
		}
	}
	if (ipchub_flush(h, -1) != IPCHUB_OK)
		die("sender %u: final flush", s->idx);
	drain_errors(s, h, 1000);
	ipchub_close(h);
	ipchub_pack_destroy(&pk);
	return NULL;
}

/* ---- broker and churner processes ------------------------------------- */

static pid_t spawn(char *const argv[], int out_fd)
{
	pid_t pid = fork();
	if (pid < 0)
		die("fork: %s", strerror(errno));
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (out_fd >= 0)
			dup2(out_fd, 1);
		execv(argv[0], argv);
		_exit(127);
	}
	return pid;
}

static pid_t start_broker(char *dir)
{
	int pfd[2];
	char line[512];
	size_t got = 0;
	if (!mkdtemp(dir))
		die("mkdtemp: %s", strerror(errno));
	snprintf(g_path, sizeof(g_path), "%s/hub.sock", dir);
	if (pipe(pfd) < 0)
		die("pipe");
	char *argv[] = {IPCHUBD_PATH, "--socket", g_path, "--log-level", "error", NULL};
	pid_t pid = spawn(argv, pfd[1]);
	close(pfd[1]);
	while (!memchr(line, '\n', got)) {
		struct pollfd p = {.fd = pfd[0], .events = POLLIN};
		ssize_t r;
		if (poll(&p, 1, 10000) <= 0 ||
		    (r = read(pfd[0], line + got, sizeof(line) - 1 - got)) <= 0)
			die("ipchubd did not start");
		got += (size_t)r;
	}
	close(pfd[0]);
	return pid;
}

static long rss_kib(pid_t pid)
{
	char p[64], line[256];
	long kib = -1;
	snprintf(p, sizeof(p), "/proc/%d/status", (int)pid);
	FILE *f = fopen(p, "r");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "VmRSS: %ld kB", &kib) == 1)
			break;
	fclose(f);
	return kib;
}

static int fd_count(pid_t pid)
{
	char p[64];
	int n = 0;
	snprintf(p, sizeof(p), "/proc/%d/fd", (int)pid);
	DIR *d = opendir(p);
	if (!d)
		return -1;
	for (struct dirent *e; (e = readdir(d));)
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return n;
}

static pid_t start_churner(unsigned k)
{
	char name[64];
	snprintf(name, sizeof(name), "soak.churn.%u", k);
	char *argv[] = {"/proc/self/exe", "--churner", name, g_path, NULL};
	return spawn(argv, -1);
}

int main(int argc, char **argv)
{
	unsigned seconds = 180, nsend = 8, nchurn = 4, kill_ms = 500;
	static struct sender senders[MAX_SENDERS];
	pid_t churners[MAX_CHURNERS];
	char dir[] = "/tmp/ipchub-soak-XXXXXX";

	if (argc == 4 && strcmp(argv[1], "--churner") == 0) {
		snprintf(g_path, sizeof(g_path), "%s", argv[3]);
		return churner_main(argv[2]);
	}
	for (int i = 1; i < argc; i++) {
		unsigned *dst = NULL;
		if (strcmp(argv[i], "--seconds") == 0)
			dst = &seconds;
		else if (strcmp(argv[i], "--senders") == 0)
			dst = &nsend;
		else if (strcmp(argv[i], "--churners") == 0)
			dst = &nchurn;
		else if (strcmp(argv[i], "--kill-ms") == 0)
			dst = &kill_ms;
		if (!dst || i + 1 >= argc)
			die("usage: ipchub_soak [--seconds N] [--senders N<=%d] "
			    "[--churners N<=%d] [--kill-ms N]",
			    MAX_SENDERS, MAX_CHURNERS);
		*dst = (unsigned)strtoul(argv[++i], NULL, 10);
	}
	if (nsend < 1 || nsend > MAX_SENDERS || nchurn > MAX_CHURNERS || kill_ms < 10)
		die("out of range (senders 1..%d, churners 0..%d, kill-ms >= 10)",
		    MAX_SENDERS, MAX_CHURNERS);

	pid_t broker = start_broker(dir);
	usleep(100000);
	long rss0 = rss_kib(broker), rss_max = rss0;
	int fd0 = fd_count(broker), fd_max = fd0;
	printf("soak: broker pid %d on %s: RSS %ld KiB, %d fds at start\n", (int)broker, g_path,
	       rss0, fd0);

	ipchub *sink = connect_retry("soak.sink");
	ipchub *echo = connect_retry("soak.echo");
	pthread_t sink_t, echo_t;
	pthread_create(&sink_t, NULL, sink_main, sink);
	pthread_create(&echo_t, NULL, echo_main, echo);
	for (unsigned k = 0; k < nchurn; k++)
		churners[k] = start_churner(k);
	for (unsigned i = 0; i < nsend; i++) {
		senders[i].idx = i;
		senders[i].nchurn = nchurn;
		senders[i].rnd = 0x9e3779b97f4a7c15ULL * (i + 1);
		pthread_create(&senders[i].t, NULL, sender_main, &senders[i]);
	}

	uint64_t kills = 0, rnd_state = 88172645463325252ULL;
	int64_t start = now_ms(), end = start + (int64_t)seconds * 1000;
	int64_t next_sample = start + 1000, next_kill = start + kill_ms;
	long rss_samples = 0;
	while (now_ms() < end) {
		usleep(10000);
		int64_t t = now_ms();
		if (t >= next_kill && nchurn > 0) {
			rnd_state ^= rnd_state << 13;
			rnd_state ^= rnd_state >> 7;
			rnd_state ^= rnd_state << 17;
			unsigned k = (unsigned)(rnd_state % nchurn);
			kill(churners[k], SIGKILL);
			waitpid(churners[k], NULL, 0);
			churners[k] = start_churner(k);
			kills++;
			next_kill = t + kill_ms;
		}
		if (t >= next_sample) {
			long r = rss_kib(broker);
			int f = fd_count(broker);
			if (r > rss_max)
				rss_max = r;
			if (f > fd_max)
				fd_max = f;
			rss_samples++;
			if (rss_samples % 30 == 0)
				printf("soak: %3lld s: broker RSS %ld KiB, %d fds, %llu kills\n",
				       (long long)((t - start) / 1000), r, f,
				       (unsigned long long)kills);
			fflush(stdout);
			next_sample = t + 1000;
		}
	}
	long rss_busy_end = rss_kib(broker);
	g_stop = 1;
	for (unsigned i = 0; i < nsend; i++)
		pthread_join(senders[i].t, NULL);
	/* Everything the senders flushed reaches the sink, or was reported. */
	int64_t deadline = now_ms() + 10000;
	for (;;) {
		int pending = 0;
		for (unsigned i = 0; i < nsend; i++)
			if (__atomic_load_n(&g_sink.delivered[i], __ATOMIC_RELAXED) +
				    senders[i].sink_failed <
			    senders[i].sink_sent)
				pending = 1;
		if (!pending || now_ms() > deadline)
			break;
		usleep(10000);
	}
	g_sink_stop = g_echo_stop = 1;
	pthread_join(sink_t, NULL);
	pthread_join(echo_t, NULL);
	ipchub_close(sink);
	ipchub_close(echo);
	for (unsigned k = 0; k < nchurn; k++) {
		kill(churners[k], SIGKILL);
		waitpid(churners[k], NULL, 0);
	}
	/* Every client is gone: the broker's fds must come back. */
	int fd_end = -1;
	deadline = now_ms() + 5000;
	while ((fd_end = fd_count(broker)) != fd0 && now_ms() < deadline)
		usleep(10000);
	long rss_end = rss_kib(broker);

	int ok = 1;
	uint64_t t_sent = 0, t_deliv = 0, t_fail = 0, t_req = 0, t_req_ok = 0, t_req_fail = 0;
	uint64_t t_creq = 0, t_creq_ok = 0, t_creq_fail = 0, t_csent = 0, t_cfail = 0, t_rec = 0;
	printf("\nsender | sink sent = delivered + failed | requests sent = ok + failed | "
	       "churner requests sent = ok + failed | churner sends (failed) | reconnects\n");
	for (unsigned i = 0; i < nsend; i++) {
		struct sender *s = &senders[i];
		uint64_t d = g_sink.delivered[i];
		int line_ok = s->sink_sent == d + s->sink_failed &&
			      s->req_sent == s->req_ok + s->req_failed && s->req_bad_reply == 0 &&
			      s->churn_req_sent == s->churn_req_ok + s->churn_req_failed &&
			      s->other_errors == 0;
		printf("%6u | %9llu = %9llu + %6llu | %8llu = %8llu + %6llu | %8llu = %8llu + %6llu "
		       "| %8llu (%llu) | %llu %s\n",
		       i, (unsigned long long)s->sink_sent, (unsigned long long)d,
		       (unsigned long long)s->sink_failed, (unsigned long long)s->req_sent,
		       (unsigned long long)s->req_ok, (unsigned long long)s->req_failed,
		       (unsigned long long)s->churn_req_sent, (unsigned long long)s->churn_req_ok,
		       (unsigned long long)s->churn_req_failed, (unsigned long long)s->churn_sent,
		       (unsigned long long)s->churn_failed, (unsigned long long)s->reconnects,
		       line_ok ? "ok" : "MISMATCH");
		ok &= line_ok;
		t_sent += s->sink_sent;
		t_deliv += d;
		t_fail += s->sink_failed;
		t_req += s->req_sent;
		t_req_ok += s->req_ok;
		t_req_fail += s->req_failed;
		t_creq += s->churn_req_sent;
		t_creq_ok += s->churn_req_ok;
		t_creq_fail += s->churn_req_failed;
		t_csent += s->churn_sent;
		t_cfail += s->churn_failed;
		t_rec += s->reconnects;
	}
	printf(" total | %9llu = %9llu + %6llu | %8llu = %8llu + %6llu | %8llu = %8llu + %6llu "
	       "| %8llu (%llu) | %llu\n",
	       (unsigned long long)t_sent, (unsigned long long)t_deliv, (unsigned long long)t_fail,
	       (unsigned long long)t_req, (unsigned long long)t_req_ok,
	       (unsigned long long)t_req_fail, (unsigned long long)t_creq,
	       (unsigned long long)t_creq_ok, (unsigned long long)t_creq_fail,
	       (unsigned long long)t_csent, (unsigned long long)t_cfail,
	       (unsigned long long)t_rec);
	printf("\nsoak: %u s, %u senders, %u churners, %llu churner kills, %llu sender "
	       "reconnects\n",
	       seconds, nsend, nchurn, (unsigned long long)kills, (unsigned long long)t_rec);
	printf("soak: sink sequence errors %llu, malformed bodies %llu\n",
	       (unsigned long long)g_sink.seq_errors, (unsigned long long)g_sink.bad_bodies);
	printf("soak: broker RSS start %ld KiB, max %ld KiB, at end of traffic %ld KiB, idle "
	       "%ld KiB\n",
	       rss0, rss_max, rss_busy_end, rss_end);
	printf("soak: broker fds start %d, max %d, end %d\n", fd0, fd_max, fd_end);
	ok &= g_sink.seq_errors == 0 && g_sink.bad_bodies == 0 && fd_end == fd0;
	kill(broker, SIGTERM);
	int status = 0;
	waitpid(broker, &status, 0);
	unlink(g_path);
	rmdir(dir);
	ok &= WIFEXITED(status) && WEXITSTATUS(status) == 0;
	printf("soak: broker exit status %d; %s\n", WIFEXITED(status) ? WEXITSTATUS(status) : -1,
	       ok ? "PASS" : "FAIL");
	return ok ? 0 : 1;
}
