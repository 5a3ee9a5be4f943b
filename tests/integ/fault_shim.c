/*
 * fault_shim.c - LD_PRELOAD library that makes socket I/O fail and come
 * up short at random points, to drive a broker's read and write paths
 * through EAGAIN and partial transfers at every offset.
 *
 * Model: it interposes read, readv, recv, recvmsg, write, writev, send and
 * sendmsg. A call on
 * a non-blocking socket (the only kind where EAGAIN is a legal answer) is,
 * by a seeded xorshift generator: failed with EAGAIN (1 in 4), or cut to a
 * random length from 1 byte up (1 in 2 of the rest), or passed through.
 * Anything else (pipes, files, blocking sockets) is passed through
 * untouched. It never invents data or loses bytes: a short transfer is a
 * prefix of what was asked. Environment:
 *   IPCHUB_SHIM_SEED   generator seed (default 1)
 *   IPCHUB_SHIM_STATS  file to which the counts are written at exit
 * The shim assumes one thread (the broker's loop); it keeps no locks.
 */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

typedef ssize_t (*read_fn)(int, void *, size_t);
typedef ssize_t (*readv_fn)(int, const struct iovec *, int);
typedef ssize_t (*recv_fn)(int, void *, size_t, int);
typedef ssize_t (*write_fn)(int, const void *, size_t);
typedef ssize_t (*writev_fn)(int, const struct iovec *, int);
typedef ssize_t (*send_fn)(int, const void *, size_t, int);
typedef ssize_t (*recvmsg_fn)(int, struct msghdr *, int);
typedef ssize_t (*sendmsg_fn)(int, const struct msghdr *, int);

static struct {
	read_fn read;
	readv_fn readv;
	recv_fn recv;
	write_fn write;
	writev_fn writev;
	send_fn send;
	recvmsg_fn recvmsg;
	sendmsg_fn sendmsg;
	unsigned long long state;
	unsigned long long eagain, shortened, passed;
} S;

static void *sym(const char *name)
{
	void *p = dlsym(RTLD_NEXT, name);
	if (!p)
		abort();
	return p;
}

__attribute__((constructor)) static void shim_init(void)
{
	const char *seed = getenv("IPCHUB_SHIM_SEED");
	S.read = (read_fn)sym("read");
	S.readv = (readv_fn)sym("readv");
	S.recv = (recv_fn)sym("recv");
	S.write = (write_fn)sym("write");
	S.writev = (writev_fn)sym("writev");
	S.send = (send_fn)sym("send");
	S.recvmsg = (recvmsg_fn)sym("recvmsg");
	S.sendmsg = (sendmsg_fn)sym("sendmsg");
	S.state = seed ? strtoull(seed, NULL, 10) : 1;
	if (S.state == 0)
		S.state = 1;
}

__attribute__((destructor)) static void shim_fini(void)
{
	const char *path = getenv("IPCHUB_SHIM_STATS");
	if (!path)
		return;
	FILE *f = fopen(path, "w");
	if (!f)
		return;
	fprintf(f, "%llu %llu %llu\n", S.eagain, S.shortened, S.passed);
	fclose(f);
}

static unsigned long long next(void)
{
	S.state ^= S.state << 13;
	S.state ^= S.state >> 7;
	S.state ^= S.state << 17;
	return S.state;
}

static int eligible(int fd)
{
	struct stat st;
	int fl;
	if (!S.read || fstat(fd, &st) < 0 || !S_ISSOCK(st.st_mode))
		return 0;
	fl = fcntl(fd, F_GETFL);
	return fl >= 0 && (fl & O_NONBLOCK);
}

/* 0: pass; -1: EAGAIN; otherwise the byte count to allow (< len). */
static size_t decide(int fd, size_t len, int *fail)
{
	*fail = 0;
	if (len == 0 || !eligible(fd)) {
		S.passed++;
		return len;
	}
	unsigned long long r = next();
	if (r % 4 == 0) {
		S.eagain++;
		*fail = 1;
		return 0;
	}
	if (len > 1 && (r >> 8) % 2 == 0) {
		S.shortened++;
		return 1 + (size_t)((r >> 16) % (len - 1));
	}
	S.passed++;
	return len;
}

static size_t iov_total(const struct iovec *iov, int n)
{
	size_t t = 0;
	for (int i = 0; i < n; i++)
		t += iov[i].iov_len;
	return t;
}

/* Copy of iov cut at `limit` bytes into out (capacity IOV_MAX). */
static int iov_cut(const struct iovec *iov, int n, size_t limit, struct iovec *out)
{
	int k = 0;
	for (int i = 0; i < n && limit > 0 && k < IOV_MAX; i++) {
		out[k] = iov[i];
		if (out[k].iov_len > limit)
			out[k].iov_len = limit;
		limit -= out[k].iov_len;
		k++;
	}
	return k;
}

ssize_t read(int fd, void *buf, size_t len)
{
	int fail;
	size_t n = decide(fd, len, &fail);
	if (fail) {
		errno = EAGAIN;
		return -1;
	}
	return S.read(fd, buf, n);
}

ssize_t recv(int fd, void *buf, size_t len, int flags)
{
	int fail;
	size_t n = decide(fd, len, &fail);
	if (fail) {
		errno = EAGAIN;
		return -1;
	}
	return S.recv(fd, buf, n, flags);
}

ssize_t write(int fd, const void *buf, size_t len)
{
	int fail;
	size_t n = decide(fd, len, &fail);
	if (fail) {
		errno = EAGAIN;
		return -1;
	}
	return S.write(fd, buf, n);
}

ssize_t send(int fd, const void *buf, size_t len, int flags)
{
	int fail;
	size_t n = decide(fd, len, &fail);
	if (fail) {
		errno = EAGAIN;
		return -1;
	}
	return S.send(fd, buf, n, flags);
}

ssize_t readv(int fd, const struct iovec *iov, int cnt)
{
	static struct iovec cut[IOV_MAX];
	size_t total = iov_total(iov, cnt);
	int fail;
	size_t n = decide(fd, total, &fail);
	if (fail) {
		errno = EAGAIN;
		return -1;
	}
	if (n == total)
		return S.readv(fd, iov, cnt);
	return S.readv(fd, cut, iov_cut(iov, cnt, n, cut));
}

ssize_t writev(int fd, const struct iovec *iov, int cnt)
{
	static struct iovec cut[IOV_MAX];
	size_t total = iov_total(iov, cnt);
	int fail;
	size_t n = decide(fd, total, &fail);
	if (fail) {
		errno = EAGAIN;
		return -1;
	}
	if (n == total)
		return S.writev(fd, iov, cnt);
	return S.writev(fd, cut, iov_cut(iov, cnt, n, cut));
}

/* The message forms cut the iovecs the same way; control data (file
 * descriptors) stays with the first byte, as the kernel keeps it. */
ssize_t recvmsg(int fd, struct msghdr *mh, int flags)
{
	static struct iovec cut[IOV_MAX];
	size_t total = iov_total(mh->msg_iov, (int)mh->msg_iovlen);
	int fail;
	size_t n = decide(fd, total, &fail);
	struct msghdr m2;
	ssize_t r;

	if (fail) {
		errno = EAGAIN;
		return -1;
	}
	if (n == total)
		return S.recvmsg(fd, mh, flags);
	m2 = *mh;
	m2.msg_iov = cut;
	m2.msg_iovlen = (size_t)iov_cut(mh->msg_iov, (int)mh->msg_iovlen, n, cut);
	r = S.recvmsg(fd, &m2, flags);
	mh->msg_controllen = m2.msg_controllen;
	mh->msg_flags = m2.msg_flags;
	return r;
}

ssize_t sendmsg(int fd, const struct msghdr *mh, int flags)
{
	static struct iovec cut[IOV_MAX];
	size_t total = iov_total(mh->msg_iov, (int)mh->msg_iovlen);
	int fail;
	size_t n = decide(fd, total, &fail);
	struct msghdr m2;

	if (fail) {
		errno = EAGAIN;
		return -1;
	}
	if (n == total)
		return S.sendmsg(fd, mh, flags);
	m2 = *mh;
	m2.msg_iov = cut;
	m2.msg_iovlen = (size_t)iov_cut(mh->msg_iov, (int)mh->msg_iovlen, n, cut);
	return S.sendmsg(fd, &m2, flags);
}
