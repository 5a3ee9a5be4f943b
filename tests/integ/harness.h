/*
 * harness.h - run a real ipchubd for integration tests.
 *
 * Model: each test starts its own broker on a socket in a fresh temporary
 * directory (so tests can run in parallel under ctest -j) and stops it with
 * SIGTERM at the end. The broker binary's path comes from the build
 * (IPCHUBD_PATH). With IPCHUB_TEST_VALGRIND=1 in the environment every
 * broker runs under valgrind memcheck and exits 99 on a leak or memory
 * error, which hub_stop() returns. A broker dies with its test process
 * (PR_SET_PDEATHSIG). Raw-socket helpers let tests speak bytes directly, to
 * send what no well-behaved client would.
 */
#ifndef IPCHUB_TEST_HARNESS_H
#define IPCHUB_TEST_HARNESS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "ipchub.h"

struct hub {
	pid_t pid;
	char dir[256];
	char path[300];
};

/* Start ipchubd with extra argv (NULL-terminated, may be NULL); waits for
 * its "listening on" line. Aborts the test on failure. */
void hub_start(struct hub *hub, const char *const *extra_args);
/* SIGTERM, wait for exit, remove the directory. Returns the exit status. */
int hub_stop(struct hub *hub);

/* hub_start() with the broker's RLIMIT_NOFILE (soft and hard) set to
 * nofile in the child before exec. */
void hub_start_nofile(struct hub *hub, const char *const *extra_args, long nofile);
/* Stop the broker with sig (SIGKILL: a crash) and reap it, keeping the
 * directory and socket path for hub_restart(). Returns the wait status. */
int hub_kill(struct hub *hub, int sig);
/* Start a broker again on the same path after hub_kill(). */
void hub_restart(struct hub *hub, const char *const *extra_args);
/* CPU time (user + system) the broker has used, in clock ticks. */
long hub_cpu_ticks(const struct hub *hub);
/* A broker restart for the event API's tests: stop it (SIGTERM, wait)
 * keeping its directory, then start a new one on the same socket path. */
void hub_halt(struct hub *hub);
void hub_resume(struct hub *hub, const char *const *extra_args);

/* Connect a client to the hub (asserts success); optionally register. */
ipchub *hub_client(const struct hub *hub, const char *name);

/* Resident set size of the broker in KiB, and its open fd count. */
long hub_rss_kib(const struct hub *hub);
int hub_fd_count(const struct hub *hub);
/* Open fds of any process (-1 if /proc cannot say); for the calling
 * process the count includes the directory stream read to count them. */
int pid_fd_count(pid_t pid);
/* Open descriptors of the calling process (/proc/self/fd, not counting
 * the directory's own). */
int self_fd_count(void);
/* Wait (up to timeout_ms) until the broker has want descriptors open;
 * asserts that it does. Closes are seen once the broker has read them. */
void hub_expect_fd_count(const struct hub *hub, int want, int timeout_ms);

/* Raw connection: connect a plain socket (blocking), optionally perform
 * the HELLO/WELCOME handshake by hand. Returns the fd. */
int raw_connect(const struct hub *hub);
void raw_hello(int fd);
/* Read one frame (blocking, with a timeout in ms) into buf; returns its
 * length, 0 on EOF, -1 on timeout/error. */
ssize_t raw_read_frame(int fd, uint8_t *buf, size_t cap, int timeout_ms);
/* Wait for EOF from the broker (draining anything sent first); returns 1
 * if EOF came within timeout_ms. */
int raw_wait_eof(int fd, int timeout_ms);
void raw_write_all(int fd, const void *buf, size_t len);
/* REGISTER name (id 1) on a raw connection and read the answer. */
void raw_claim_name(int fd, const char *name);

/* Pack a small map body {"k": v} / {"seq": n} into p (reset first). */
void body_kv(ipchub_pack *p, const char *k, const char *v);
void body_seq(ipchub_pack *p, uint64_t seq, size_t pad);
/* A top-level integer counter of ipchub.stats, asked through h (0 when
 * absent or not an integer). */
uint64_t hub_stat_u64(ipchub *h, const char *key);

/* Extra RSS a broker built with AddressSanitizer may hold beyond what
 * the same broker holds without it: freed memory waits in ASan's
 * quarantine (the CI's ASan run caps it with quarantine_size_mb=16) and
 * every block carries redzones. Bounds on broker memory add this, so
 * they stay exact in the ordinary build and meaningful under ASan. */
#if defined(__SANITIZE_ADDRESS__)
#define HUB_RSS_SANITIZER_SLACK_KIB (48L * 1024)
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define HUB_RSS_SANITIZER_SLACK_KIB (48L * 1024)
#endif
#endif
#ifndef HUB_RSS_SANITIZER_SLACK_KIB
#define HUB_RSS_SANITIZER_SLACK_KIB 0L
#endif

/* The slack above plus, when the broker runs under valgrind
 * (IPCHUB_TEST_VALGRIND=1), valgrind's own memory, which /proc counts
 * as the broker's. */
long hub_rss_slack_kib(void);

/* Monotonic milliseconds. */
int64_t now_ms(void);

#endif
