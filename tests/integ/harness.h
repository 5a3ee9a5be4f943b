/*
 * harness.h - run a real ipchubd for integration tests.
 *
 * Model: each test starts its own broker on a socket in a fresh temporary
 * directory (so tests can run in parallel under ctest -j) and stops it with
 * SIGTERM at the end. The broker binary's path comes from the build
 * (IPCHUBD_PATH). Raw-socket helpers let tests speak bytes directly, to
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

/* Stop the broker (SIGTERM, wait) but keep its directory, and start a
 * new one on the same socket path: a broker restart. */
void hub_halt(struct hub *hub);
void hub_resume(struct hub *hub, const char *const *extra_args);

/* Connect a client to the hub (asserts success); optionally register. */
ipchub *hub_client(const struct hub *hub, const char *name);

/* Resident set size of the broker in KiB, and its open fd count. */
long hub_rss_kib(const struct hub *hub);
int hub_fd_count(const struct hub *hub);

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

/* Pack a small map body {"k": v} / {"seq": n} into p (reset first). */
void body_kv(ipchub_pack *p, const char *k, const char *v);
void body_seq(ipchub_pack *p, uint64_t seq, size_t pad);

/* Monotonic milliseconds. */
int64_t now_ms(void);

#endif
