/*
 * common.c - shared pieces of the benchmark programs; see common.h.
 */
#include "common.h"

#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

uint64_t bench_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void bench_die(const char *fmt, ...)
{
	va_list ap;
	fprintf(stderr, "bench[%d]: ", (int)getpid());
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(2);
}

void bench_body(uint8_t *out, size_t size)
{
	size_t hdr, n;
	if (size < 2)
		bench_die("body size %zu < 2", size);
	if (size - 2 <= 0xff) {
		n = size - 2;
		out[0] = 0xc4;
		out[1] = (uint8_t)n;
		hdr = 2;
	} else if (size - 3 <= 0xffff) {
		n = size - 3;
		out[0] = 0xc5;
		out[1] = (uint8_t)(n >> 8);
		out[2] = (uint8_t)n;
		hdr = 3;
	} else {
		n = size - 5;
		out[0] = 0xc6;
		out[1] = (uint8_t)(n >> 24);
		out[2] = (uint8_t)(n >> 16);
		out[3] = (uint8_t)(n >> 8);
		out[4] = (uint8_t)n;
		hdr = 5;
	}
	for (size_t i = 0; i < n; i++)
		out[hdr + i] = (uint8_t)(i * 131u + 7u);
}

static void put_be32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static uint32_t get_be32(const uint8_t *p)
{
	return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) |
	       ((uint32_t)p[2] << 8) | (uint32_t)p[3];
}

size_t bench_frame(uint8_t *out, int kind, uint32_t id, const char *to,
		   const uint8_t *body, size_t body_len, size_t *id_off)
{
	size_t tl = strlen(to), o = 4;
	out[o++] = 0x83; /* map of 3 */
	out[o++] = 0x00; /* kind */
	out[o++] = (uint8_t)kind;
	out[o++] = 0x01; /* id, uint32 */
	out[o++] = 0xce;
	*id_off = o;
	put_be32(out + o, id);
	o += 4;
	out[o++] = 0x02; /* to */
	if (tl < 32) {
		out[o++] = (uint8_t)(0xa0 | tl);
	} else {
		out[o++] = 0xd9;
		out[o++] = (uint8_t)tl;
	}
	memcpy(out + o, to, tl);
	o += tl;
	if (body_len)
		memcpy(out + o, body, body_len);
	o += body_len;
	put_be32(out, (uint32_t)(o - 4));
	return o;
}

void bench_frame_set_id(uint8_t *frame, size_t id_off, uint32_t id)
{
	put_be32(frame + id_off, id);
}

int bench_write_all(int fd, const void *buf, size_t len)
{
	const uint8_t *p = buf;
	while (len) {
		ssize_t n = write(fd, p, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

int bench_read_all(int fd, void *buf, size_t len)
{
	uint8_t *p = buf;
	while (len) {
		ssize_t n = read(fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

void bench_reader_init(struct bench_reader *r, int fd, size_t max_frame)
{
	r->fd = fd;
	r->cap = 2 * (max_frame + 4);
	if (r->cap < 256u * 1024u)
		r->cap = 256u * 1024u;
	r->buf = malloc(r->cap);
	if (!r->buf)
		bench_die("out of memory");
	r->start = r->end = 0;
}

void bench_reader_free(struct bench_reader *r)
{
	free(r->buf);
	r->buf = NULL;
}

int bench_reader_next(struct bench_reader *r, const uint8_t **frame,
		      uint32_t *len)
{
	for (;;) {
		size_t have = r->end - r->start;
		size_t need = 4;
		if (have >= 4) {
			uint32_t l = get_be32(r->buf + r->start);
			if ((size_t)l + 4 > r->cap)
				return -1;
			need = (size_t)l + 4;
			if (have >= need) {
				*frame = r->buf + r->start + 4;
				*len = l;
				r->start += need;
				return 1;
			}
		}
		if (r->start == r->end) {
			r->start = r->end = 0;
		} else if (r->cap - r->start < need) {
			memmove(r->buf, r->buf + r->start, have);
			r->start = 0;
			r->end = have;
		}
		ssize_t n = read(r->fd, r->buf + r->end, r->cap - r->end);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		if (n == 0)
			return r->start == r->end ? 0 : -1;
		r->end += (size_t)n;
	}
}

static uint8_t *make_frame(int kind, const char *to, size_t size,
			   size_t *flen, size_t *id_off)
{
	uint8_t *body = malloc(size);
	uint8_t *frame = malloc(size + 64 + strlen(to));
	if (!body || !frame)
		bench_die("out of memory");
	bench_body(body, size);
	*flen = bench_frame(frame, kind, 0, to, body, size, id_off);
	free(body);
	return frame;
}

void bench_raw_produce(int fd, size_t size, uint64_t count, int batch)
{
	size_t flen, id_off;
	uint8_t *frame = make_frame(BENCH_KIND_SEND, BENCH_SINK, size, &flen,
				    &id_off);
	bench_gate_wait();
	if (!batch || flen >= BENCH_BATCH_BYTES) {
		for (uint64_t i = 0; i < count; i++) {
			bench_frame_set_id(frame, id_off, (uint32_t)(i + 1));
			if (bench_write_all(fd, frame, flen) < 0)
				bench_die("producer write: %s", strerror(errno));
		}
	} else {
		uint8_t *buf = malloc(BENCH_BATCH_BYTES);
		if (!buf)
			bench_die("out of memory");
		size_t used = 0;
		for (uint64_t i = 0; i < count; i++) {
			if (used + flen > BENCH_BATCH_BYTES) {
				if (bench_write_all(fd, buf, used) < 0)
					bench_die("producer write: %s",
						  strerror(errno));
				used = 0;
			}
			memcpy(buf + used, frame, flen);
			bench_frame_set_id(buf + used, id_off, (uint32_t)(i + 1));
			used += flen;
		}
		if (used && bench_write_all(fd, buf, used) < 0)
			bench_die("producer write: %s", strerror(errno));
		free(buf);
	}
	free(frame);
}

void bench_raw_consume_times(int fd, size_t size, uint64_t count,
			     uint64_t *t_first, uint64_t *t_last)
{
	size_t flen, id_off;
	uint8_t *tmpl = make_frame(BENCH_KIND_SEND, BENCH_SINK, size, &flen,
				   &id_off);
	free(tmpl);
	struct bench_reader r;
	bench_reader_init(&r, fd, flen);
	*t_first = 0;
	for (uint64_t i = 0; i < count; i++) {
		const uint8_t *f;
		uint32_t len;
		int rc = bench_reader_next(&r, &f, &len);
		if (rc <= 0)
			bench_die("consumer: %s after %llu of %llu frames",
				  rc ? "read error" : "EOF",
				  (unsigned long long)i,
				  (unsigned long long)count);
		if ((size_t)len + 4 != flen || f[0] != 0x83)
			bench_die("consumer: unexpected frame of %u bytes", len);
		if (i == 0)
			*t_first = bench_now_ns();
	}
	/* Time only the first and last arrivals: a clock read per
	 * message would cost more than the raw baselines do per message. */
	*t_last = bench_now_ns();
	bench_reader_free(&r);
}

void bench_raw_consume(int fd, const char *system, const char *workload,
		       size_t size, uint64_t count, int producers)
{
	uint64_t t_first, t_last;

	bench_raw_consume_times(fd, size, count, &t_first, &t_last);
	bench_emit_thru(system, workload, size, count, t_first, t_last,
			producers);
}

uint64_t bench_rtt_warmup(uint64_t count)
{
	uint64_t w = count / 10;
	return w > 1000 ? 1000 : (w ? w : 1);
}

void bench_raw_rtt_client(int fd, const char *system, size_t size,
			  uint64_t count, const char *samples_path)
{
	size_t flen, id_off;
	uint8_t *frame = make_frame(BENCH_KIND_REQUEST, BENCH_ECHO, size,
				    &flen, &id_off);
	uint64_t warm = bench_rtt_warmup(count);
	uint64_t *samples = malloc(count * sizeof(*samples));
	if (!samples)
		bench_die("out of memory");
	struct bench_reader r;
	bench_reader_init(&r, fd, flen);
	for (uint64_t i = 0; i < warm + count; i++) {
		uint64_t t0 = bench_now_ns();
		bench_frame_set_id(frame, id_off, (uint32_t)(i + 1));
		if (bench_write_all(fd, frame, flen) < 0)
			bench_die("rtt client write: %s", strerror(errno));
		const uint8_t *f;
		uint32_t len;
		if (bench_reader_next(&r, &f, &len) != 1)
			bench_die("rtt client: no reply");
		if (len < 9 || f[2] != BENCH_KIND_REPLY ||
		    get_be32(f + 5) != (uint32_t)(i + 1))
			bench_die("rtt client: unexpected reply");
		uint64_t t1 = bench_now_ns();
		if (i >= warm)
			samples[i - warm] = t1 - t0;
	}
	bench_reader_free(&r);
	free(frame);
	bench_emit_rtt(system, size, samples, count, samples_path);
	free(samples);
}

void bench_raw_rtt_server(int fd, size_t size)
{
	struct bench_reader r;
	bench_reader_init(&r, fd, size + 64 + sizeof(BENCH_ECHO));
	uint8_t *out = malloc(r.cap);
	if (!out)
		bench_die("out of memory");
	for (;;) {
		const uint8_t *f;
		uint32_t len;
		int rc = bench_reader_next(&r, &f, &len);
		if (rc == 0)
			break;
		if (rc < 0 || len < 3)
			bench_die("rtt server: read error");
		/* The reply carries the request's id and body back. */
		put_be32(out, len);
		memcpy(out + 4, f, len);
		out[4 + 2] = BENCH_KIND_REPLY;
		if (bench_write_all(fd, out, (size_t)len + 4) < 0)
			break;
	}
	free(out);
	bench_reader_free(&r);
}

void bench_emit_thru(const char *system, const char *workload, size_t size,
		     uint64_t count, uint64_t t_first, uint64_t t_last,
		     int producers)
{
	double secs = (double)(t_last - t_first) / 1e9;
	double rate = (count > 1 && secs > 0) ? (double)(count - 1) / secs : 0;
	printf("{\"workload\":\"%s\",\"system\":\"%s\",\"size_bytes\":%zu,"
	       "\"count\":%llu,\"producers\":%d,\"msgs_per_s\":%.1f,"
	       "\"mb_per_s\":%.3f,\"elapsed_s\":%.6f}\n",
	       workload, system, size, (unsigned long long)count, producers,
	       rate, rate * (double)size / 1e6, secs);
	fflush(stdout);
}

void bench_fanout_report(int fd, uint64_t t_first, uint64_t t_last)
{
	uint64_t t[2] = { t_first, t_last };

	/* 16 bytes: atomic on a pipe shared by all subscribers. */
	if (write(fd, t, sizeof(t)) != (ssize_t)sizeof(t))
		bench_die("result pipe: %s", strerror(errno));
}

void bench_fanout_collect(int fd, int k, uint64_t *t_first, uint64_t *t_last)
{
	*t_first = UINT64_MAX;
	*t_last = 0;
	for (int i = 0; i < k; i++) {
		uint64_t t[2];

		if (bench_read_all(fd, t, sizeof(t)) < 0)
			bench_die("a subscriber did not report");
		if (t[0] < *t_first)
			*t_first = t[0];
		if (t[1] > *t_last)
			*t_last = t[1];
	}
}

void bench_emit_fanout(const char *system, size_t size, uint64_t published,
		       int subs, uint64_t t_first, uint64_t t_last)
{
	uint64_t n = published * (uint64_t)subs;
	double secs = (double)(t_last - t_first) / 1e9;
	double rate = (n > 1 && secs > 0) ? (double)(n - 1) / secs : 0;

	printf("{\"workload\":\"fanout\",\"system\":\"%s\",\"size_bytes\":%zu,"
	       "\"count\":%llu,\"producers\":1,\"subscribers\":%d,"
	       "\"published\":%llu,\"msgs_per_s\":%.1f,\"mb_per_s\":%.3f,"
	       "\"elapsed_s\":%.6f}\n",
	       system, size, (unsigned long long)n, subs,
	       (unsigned long long)published, rate, rate * (double)size / 1e6,
	       secs);
	fflush(stdout);
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static double pct(const uint64_t *s, size_t n, double q)
{
	size_t idx = (size_t)ceil(q * (double)n);
	if (idx < 1)
		idx = 1;
	if (idx > n)
		idx = n;
	return (double)s[idx - 1] / 1e3;
}

void bench_emit_rtt(const char *system, size_t size, uint64_t *samples,
		    size_t n, const char *samples_path)
{
	if (n == 0)
		bench_die("no samples");
	qsort(samples, n, sizeof(*samples), cmp_u64);
	double sum = 0;
	for (size_t i = 0; i < n; i++)
		sum += (double)samples[i];
	printf("{\"workload\":\"rtt\",\"system\":\"%s\",\"size_bytes\":%zu,"
	       "\"count\":%zu,\"p50_us\":%.2f,\"p90_us\":%.2f,\"p99_us\":%.2f,"
	       "\"p999_us\":%.2f,\"max_us\":%.2f,\"mean_us\":%.2f,"
	       "\"msgs_per_s\":%.1f}\n",
	       system, size, n, pct(samples, n, 0.5), pct(samples, n, 0.9),
	       pct(samples, n, 0.99), pct(samples, n, 0.999),
	       (double)samples[n - 1] / 1e3, sum / (double)n / 1e3,
	       sum > 0 ? (double)n / (sum / 1e9) : 0.0);
	fflush(stdout);
	if (samples_path && *samples_path) {
		FILE *f = fopen(samples_path, "w");
		if (!f)
			bench_die("%s: %s", samples_path, strerror(errno));
		for (size_t i = 0; i < n; i++)
			fprintf(f, "%.3f\n", (double)samples[i] / 1e3);
		fclose(f);
	}
}

uint64_t bench_flow_window(size_t size)
{
	uint64_t w = BENCH_FLOW_WINDOW_BYTES / (size ? size : 1);
	if (w < BENCH_FLOW_WINDOW_MIN)
		w = BENCH_FLOW_WINDOW_MIN;
	if (w > BENCH_FLOW_WINDOW_MAX)
		w = BENCH_FLOW_WINDOW_MAX;
	return w;
}

long bench_raise_nofile(long want)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
		return -1;
	if ((rlim_t)want > rl.rlim_cur) {
		rl.rlim_cur = (rlim_t)want;
		if (rl.rlim_max != RLIM_INFINITY && rl.rlim_cur > rl.rlim_max)
			rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
		getrlimit(RLIMIT_NOFILE, &rl);
	}
	return (long)rl.rlim_cur;
}

const char *bench_opt(int argc, char **argv, const char *name,
		      const char *dflt)
{
	for (int i = 1; i + 1 < argc; i++)
		if (strcmp(argv[i], name) == 0)
			return argv[i + 1];
	return dflt;
}

int bench_flag(int argc, char **argv, const char *name)
{
	for (int i = 1; i < argc; i++)
		if (strcmp(argv[i], name) == 0)
			return 1;
	return 0;
}

uint64_t bench_opt_u64(int argc, char **argv, const char *name,
		       uint64_t dflt)
{
	const char *v = bench_opt(argc, argv, name, NULL);
	if (!v)
		return dflt;
	char *end;
	errno = 0;
	unsigned long long x = strtoull(v, &end, 10);
	if (errno || end == v || *end)
		bench_die("%s: bad number '%s'", name, v);
	return x;
}

pid_t bench_fork(void)
{
	pid_t parent = getpid();
	fflush(stdout);
	pid_t pid = fork();
	if (pid < 0)
		bench_die("fork: %s", strerror(errno));
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(1);
	}
	return pid;
}

void bench_wait_ok(pid_t pid, const char *what)
{
	int st;
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR)
			bench_die("waitpid %s: %s", what, strerror(errno));
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
		bench_die("%s failed (status 0x%x)", what, st);
}

/* ---- start gate --------------------------------------------------- */

/* Parent's ends: ready r/w, go r/w; a child keeps ready[w] and go[r]. */
static int g_gate[4] = { -1, -1, -1, -1 };
static int g_gate_ready = -1, g_gate_go = -1;

void bench_gate_open(void)
{
	if (pipe(g_gate) < 0 || pipe(g_gate + 2) < 0)
		bench_die("pipe: %s", strerror(errno));
}

void bench_gate_child(void)
{
	close(g_gate[0]);
	close(g_gate[3]);
	g_gate_ready = g_gate[1];
	g_gate_go = g_gate[2];
}

void bench_gate_release(int k)
{
	close(g_gate[1]);
	close(g_gate[2]);
	for (int i = 0; i < k; i++) {
		char c;

		if (read(g_gate[0], &c, 1) != 1)
			bench_die("a producer did not get ready");
	}
	close(g_gate[0]);
	close(g_gate[3]); /* EOF on every producer's go pipe */
	g_gate[0] = g_gate[1] = g_gate[2] = g_gate[3] = -1;
}

void bench_gate_wait(void)
{
	char c;

	if (g_gate_ready < 0)
		return;
	if (write(g_gate_ready, "r", 1) != 1)
		bench_die("gate: %s", strerror(errno));
	close(g_gate_ready);
	while (read(g_gate_go, &c, 1) > 0)
		;
	close(g_gate_go);
	g_gate_ready = g_gate_go = -1;
}
