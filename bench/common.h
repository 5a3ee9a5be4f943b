/*
 * common.h - shared pieces of the benchmark programs (bench/).
 *
 * Model: every system under test moves the same bytes. A message body is
 * one msgpack bin value of exactly `size` encoded bytes (bench_body), so it
 * is a valid ipchub body; the raw baselines (direct, relay) wrap it in the
 * frame an ipchub client sends for a SEND: a 4-byte big-endian length, then
 * the header map {kind, id, to} (bench_frame). Consumers time the interval
 * from the first to the last message received and report count-1 messages
 * over it; round-trip clients time each request with CLOCK_MONOTONIC.
 *
 * Every program prints its result as one JSON line on stdout (bench_emit_*)
 * and diagnostics on stderr; bench/run collects the lines. Nothing here
 * knows about ipchub's library: the raw baselines use it alone.
 */
#ifndef IPCHUB_BENCH_COMMON_H
#define IPCHUB_BENCH_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Producers batch small frames into writes of this many bytes: the same
 * threshold at which libipchub flushes its queue (IPCHUB_CLIENT_FLUSH_AT). */
#define BENCH_BATCH_BYTES (64u * 1024u)

/* Largest body the programs accept (the broker's default max frame is
 * 16 MiB; the benchmarks stop at 1 MiB). */
#define BENCH_MAX_BODY (16u * 1024u * 1024u - 4096u)

/* Name the consumers and echo servers use (ipchub registers these). */
#define BENCH_SINK "bench.sink"
#define BENCH_ECHO "bench.echo"

/* Frame kinds used by the raw baselines (same numbers as proto/wire.h). */
#define BENCH_KIND_SEND 11
#define BENCH_KIND_REQUEST 12
#define BENCH_KIND_REPLY 13

uint64_t bench_now_ns(void);

/* Die with a message on stderr (benchmarks have no recovery path). */
void bench_die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

/* Fill out[0..size) with one msgpack bin value of exactly `size` encoded
 * bytes (size >= 2). The payload bytes are a simple pattern. */
void bench_body(uint8_t *out, size_t size);

/* Encode a whole frame: length prefix, header {0: kind, 1: id (always as a
 * uint32, so it can be patched in place), 2: to}, then body. Returns the
 * frame length including the prefix; *id_off receives the offset of the
 * 4 id bytes. out must hold body_len + 64 + strlen(to) bytes. */
size_t bench_frame(uint8_t *out, int kind, uint32_t id, const char *to,
		   const uint8_t *body, size_t body_len, size_t *id_off);
/* Patch the id of a frame made by bench_frame. */
void bench_frame_set_id(uint8_t *frame, size_t id_off, uint32_t id);

/* Blocking full write / read. 0 on success, -1 on error or EOF. */
int bench_write_all(int fd, const void *buf, size_t len);
int bench_read_all(int fd, void *buf, size_t len);

/* Buffered frame reader over a blocking fd: reads in large chunks and
 * hands out whole frames without copying them. */
struct bench_reader {
	int fd;
	uint8_t *buf;
	size_t cap, start, end;
};
void bench_reader_init(struct bench_reader *r, int fd, size_t max_frame);
void bench_reader_free(struct bench_reader *r);
/* 1: frame and len give the next frame (payload after the prefix, valid until
 * the next call); 0: clean EOF; -1: error or bad frame. */
int bench_reader_next(struct bench_reader *r, const uint8_t **frame,
		      uint32_t *len);

/* Raw producer: send `count` copies of a SEND frame with a `size`-byte
 * body to fd, patching the id of each. batch != 0: pack frames into
 * BENCH_BATCH_BYTES writes; 0: one write() per frame. */
void bench_raw_produce(int fd, size_t size, uint64_t count, int batch);
/* Raw consumer: read `count` frames; check each body is `size` bytes;
 * report the first and last arrival times. bench_raw_consume() prints
 * the throughput JSON line for `system` instead. */
void bench_raw_consume_times(int fd, size_t size, uint64_t count,
			     uint64_t *t_first, uint64_t *t_last);
void bench_raw_consume(int fd, const char *system, const char *workload,
		       size_t size, uint64_t count, int producers);
/* Raw round trips: the client sends REQUEST frames and waits for each
 * REPLY; the server answers every frame it reads with a REPLY carrying
 * the same body, until EOF. */
void bench_raw_rtt_client(int fd, const char *system, size_t size,
			  uint64_t count, const char *samples_path);
void bench_raw_rtt_server(int fd, size_t size);

/* Output. Throughput: count-1 messages between first and last arrival. */
void bench_emit_thru(const char *system, const char *workload, size_t size,
		     uint64_t count, uint64_t t_first, uint64_t t_last,
		     int producers);
/* Round trips: percentiles of samples (ns, sorted in place); writes the
 * sorted samples in microseconds, one a line, to samples_path if set. */
void bench_emit_rtt(const char *system, size_t size, uint64_t *samples,
		    size_t n, const char *samples_path);
/* Warm-up round trips not recorded. */
uint64_t bench_rtt_warmup(uint64_t count);

/* Flow-control window of the peers whose brokers drop or disconnect a
 * receiver that falls behind (NATS, D-Bus): the receiver acknowledges
 * every window of messages and the sender keeps at most two windows
 * unacknowledged. The window is BENCH_FLOW_WINDOW_BYTES of bodies,
 * between BENCH_FLOW_WINDOW_MIN and BENCH_FLOW_WINDOW_MAX messages. */
#define BENCH_FLOW_WINDOW_BYTES (8u * 1024u * 1024u)
#define BENCH_FLOW_WINDOW_MIN 4u
#define BENCH_FLOW_WINDOW_MAX 65536u
uint64_t bench_flow_window(size_t size);

/* Raise RLIMIT_NOFILE's soft limit to at least want (up to the hard
 * limit). Returns the new soft limit. */
long bench_raise_nofile(long want);

/* Tiny option parser: "--name value" pairs after the mode. */
const char *bench_opt(int argc, char **argv, const char *name,
		      const char *dflt);
int bench_flag(int argc, char **argv, const char *name);
uint64_t bench_opt_u64(int argc, char **argv, const char *name,
		       uint64_t dflt);

/* fork(); the child is killed (SIGKILL) if the parent dies first, so a
 * failed run never leaves brokers or peers behind. Dies on failure. */
pid_t bench_fork(void);

/* Wait for a child; die if it failed. */
void bench_wait_ok(pid_t pid, const char *what);

/* Start gate for forked producers, so that forking and connecting K of
 * them is not inside a measured span: the parent calls bench_gate_open()
 * before forking, each child bench_gate_child() right after the fork and
 * bench_gate_wait() once connected (it returns when the gate opens; at
 * once in a process that is not behind a gate), and the parent
 * bench_gate_release(K) after the last fork. */
void bench_gate_open(void);
/* Fan-out (one publisher, K subscribers): each subscriber reports its
 * first and last arrival on a shared pipe; the parent collects K reports
 * and prints one JSON line: workload "fanout", count = deliveries
 * (published x K), msgs_per_s = deliveries per second from the first
 * arrival at any subscriber to the last at any. */
void bench_fanout_report(int fd, uint64_t t_first, uint64_t t_last);
void bench_fanout_collect(int fd, int k, uint64_t *t_first, uint64_t *t_last);
void bench_emit_fanout(const char *system, size_t size, uint64_t published,
		       int subs, uint64_t t_first, uint64_t t_last);
void bench_gate_child(void);
void bench_gate_release(int k);
void bench_gate_wait(void);

#endif
