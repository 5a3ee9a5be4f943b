/*
 * xport_unix.c - the Unix domain socket transport (see xport.h).
 *
 * Model: every handle is a SOCK_STREAM AF_UNIX socket, non-blocking and
 * close-on-exec. Listening checks happen before bind, in this order:
 * directory (default path only), live broker (connect succeeds), stale
 * file (connect refused: unlink it only if it is a socket). The bind runs
 * under umask 0177 so that the file is never more open than 0600 before
 * the chmod to the configured mode. SO_PEERCRED is read once per accepted
 * connection. A socket inherited from the service manager is checked to be
 * a listening Unix stream socket and used as it is; its file belongs to
 * the socket unit and is never unlinked. Descriptors travel as SCM_RIGHTS
 * on the first byte of a sendmsg().
 */
#include "xport.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "addr.h"
#include "limits.h"

_Static_assert(sizeof(((struct sockaddr_un *)0)->sun_path) + 1 <= XPORT_PATH_MAX,
	       "XPORT_PATH_MAX must hold a sun_path");

/* The default directory, /tmp/ipchub-<uid>: create it 0700, or accept it
 * only if it is a directory we own that nobody else can enter. */
static int prepare_default_dir(const char *path, char *err, size_t cap)
{
	char dir[64];
	const char *slash = strrchr(path, '/');
	struct stat st;
	uid_t uid = getuid();

	snprintf(dir, sizeof(dir), "/tmp/ipchub-%lu", (unsigned long)uid);
	if (!slash || (size_t)(slash - path) != strlen(dir) ||
	    strncmp(path, dir, strlen(dir)) != 0)
		return 0; /* not the default location */
	if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
		int e = errno;

		snprintf(err, cap, "cannot create %s: %s", dir, strerror(e));
		return -e;
	}
	if (lstat(dir, &st) < 0) {
		int e = errno;

		snprintf(err, cap, "cannot stat %s: %s", dir, strerror(e));
		return -e;
	}
	if (!S_ISDIR(st.st_mode) || st.st_uid != uid ||
	    (st.st_mode & 077) != 0) {
		snprintf(err, cap,
			 "refusing %s: it must be a directory owned by uid %lu "
			 "with mode 0700 (found mode %04o, owner %lu)",
			 dir, (unsigned long)uid, (unsigned)(st.st_mode & 07777),
			 (unsigned long)st.st_uid);
		return -EPERM;
	}
	return 0;
}

/* Returns 0 when the path is free (possibly after removing a stale
 * socket), or a negative errno with err set. */
static int check_path(const char *path, const struct sockaddr_un *sa,
		      socklen_t salen, bool abstract, char *err, size_t cap)
{
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	int r, e;
	struct stat st;

	if (fd < 0) {
		e = errno;
		snprintf(err, cap, "socket: %s", strerror(e));
		return -e;
	}
	r = connect(fd, (const struct sockaddr *)sa, salen);
	e = errno;
	close(fd);
	if (r == 0 || e == EAGAIN || e == EINPROGRESS) {
		snprintf(err, cap, "another ipchubd is already listening on %s",
			 path);
		return -EADDRINUSE;
	}
	if (e == ENOENT)
		return 0;
	if (e != ECONNREFUSED) {
		snprintf(err, cap, "cannot probe %s: %s", path, strerror(e));
		return -e;
	}
	if (abstract)
		return 0;
	if (lstat(path, &st) < 0)
		return errno == ENOENT ? 0 : -errno;
	if (!S_ISSOCK(st.st_mode)) {
		snprintf(err, cap, "%s exists and is not a socket; not removing it",
			 path);
		return -EEXIST;
	}
	if (unlink(path) < 0 && errno != ENOENT) {
		e = errno;
		snprintf(err, cap, "cannot remove stale socket %s: %s", path,
			 strerror(e));
		return -e;
	}
	return 0;
}

/* Whether fd is a listening AF_UNIX stream socket. */
static bool is_unix_listener(int fd)
{
	struct sockaddr_un sa;
	socklen_t salen = sizeof(sa);
	int type = 0, acc = 0;
	socklen_t tl = sizeof(type), al = sizeof(acc);

	return getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &tl) == 0 &&
	       type == SOCK_STREAM &&
	       getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &acc, &al) == 0 &&
	       acc && getsockname(fd, (struct sockaddr *)&sa, &salen) == 0 &&
	       sa.sun_family == AF_UNIX;
}

/* Socket activation: take over fd (listening, ours from now on), learn
 * its path for the logs, and leave the file alone at close. */
static int adopt_fd(struct xport_listener *l, int fd, char *err, size_t cap)
{
	struct sockaddr_un sa;
	socklen_t salen = sizeof(sa);
	int r, fl;
	size_t n;

	if (!is_unix_listener(fd)) {
		snprintf(err, cap,
			 "the socket passed by the service manager (fd %d) is not "
			 "a listening Unix stream socket",
			 fd);
		return -ENOTSOCK;
	}
	fl = fcntl(fd, F_GETFL);
	if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0 ||
	    fcntl(fd, F_SETFD, FD_CLOEXEC) < 0) {
		r = -errno;
		snprintf(err, cap, "fd %d: %s", fd, strerror(-r));
		return r;
	}
	memset(&sa, 0, sizeof(sa));
	if (getsockname(fd, (struct sockaddr *)&sa, &salen) < 0)
		salen = 0;
	n = salen > offsetof(struct sockaddr_un, sun_path)
		    ? salen - offsetof(struct sockaddr_un, sun_path)
		    : 0;
	if (n > 0 && sa.sun_path[0] == '\0') {
		l->path[0] = '@';
		memcpy(l->path + 1, sa.sun_path + 1, n - 1);
		l->path[n] = '\0';
		l->abstract = true;
	} else if (n > 0) {
		memcpy(l->path, sa.sun_path, n);
		l->path[n] = '\0';
	} else {
		snprintf(l->path, sizeof(l->path), "fd:%d", fd);
	}
	l->sock = fd;
	l->from_manager = true;
	return 0;
}

int xport_listen(struct xport_listener *l, const char *path, int inherited,
		 unsigned mode, char *err, size_t cap)
{
	struct sockaddr_un sa;
	socklen_t salen;
	struct stat st;
	mode_t old;
	int fd = -1, r, e;

	xport_listener_init(l);
	if (inherited >= 0) {
		r = adopt_fd(l, inherited, err, cap);
		if (r < 0)
			close(inherited);
		return r;
	}
	if (strlen(path) >= sizeof(l->path)) {
		snprintf(err, cap, "socket path too long");
		return -ENAMETOOLONG;
	}
	strcpy(l->path, path);
	r = addr_sockaddr(l->path, &sa, &salen);
	if (r < 0) {
		snprintf(err, cap, "invalid socket path \"%s\"", l->path);
		return r;
	}
	l->abstract = addr_is_abstract(l->path);
	if (!l->abstract) {
		r = prepare_default_dir(l->path, err, cap);
		if (r < 0)
			return r;
	}
	r = check_path(l->path, &sa, salen, l->abstract, err, cap);
	if (r < 0)
		return r;

	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0) {
		e = errno;
		snprintf(err, cap, "socket: %s", strerror(e));
		return -e;
	}
	/* Never a moment when the socket file is more open than 0600. */
	old = umask(0177);
	r = bind(fd, (const struct sockaddr *)&sa, salen);
	e = errno;
	umask(old);
	if (r < 0) {
		snprintf(err, cap, "bind %s: %s", l->path, strerror(e));
		close(fd);
		return -e;
	}
	l->sock = fd;
	l->own_file = !l->abstract;
	if (l->own_file && stat(l->path, &st) == 0) {
		l->dev = st.st_dev;
		l->ino = st.st_ino;
	}
	/* listen before chmod: the file that clients wait for should answer
	 * as soon as it exists (0600 until the chmod, which only widens). */
	if (listen(fd, SOMAXCONN) < 0) {
		e = errno;
		snprintf(err, cap, "listen %s: %s", l->path, strerror(e));
		goto fail;
	}
	if (l->own_file && chmod(l->path, (mode_t)mode) < 0) {
		e = errno;
		snprintf(err, cap, "chmod %s: %s", l->path, strerror(e));
		goto fail;
	}
	return 0;

fail:
	xport_listener_close(l);
	return -e;
}

int xport_accept(struct xport_listener *l, xport_sock *out,
		 struct xport_cred *cred)
{
	struct ucred uc;
	socklen_t clen = sizeof(uc);
	int fd;

	if (l->sock < 0)
		return -EBADF;
	fd = accept4(l->sock, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
	if (fd < 0)
		return errno == EWOULDBLOCK ? -EAGAIN : -errno;
	memset(cred, 0, sizeof(*cred));
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &uc, &clen) < 0) {
		cred->pid = 0;
		cred->uid = (uint32_t)-1;
		cred->gid = (uint32_t)-1;
	} else {
		cred->pid = (long)uc.pid;
		cred->uid = (uint32_t)uc.uid;
		cred->gid = (uint32_t)uc.gid;
	}
	*out = fd;
	return 0;
}

void xport_listener_close(struct xport_listener *l)
{
	struct stat st;

	if (l->sock >= 0) {
		close(l->sock);
		l->sock = XPORT_NONE;
	}
	/* Unlink only the file we bound: a newer broker may have replaced
	 * it after removing ours as stale. */
	if (l->own_file && lstat(l->path, &st) == 0 && S_ISSOCK(st.st_mode) &&
	    st.st_dev == l->dev && st.st_ino == l->ino)
		unlink(l->path);
	l->own_file = false;
}

int xport_connect(const char *path, xport_sock *out)
{
	struct sockaddr_un sa;
	socklen_t salen;
	int fd, r;

	r = addr_sockaddr(path, &sa, &salen);
	if (r < 0)
		return r;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&sa, salen) == 0) {
		*out = fd;
		return 0;
	}
	r = -errno;
	if (r == -EINPROGRESS) {
		*out = fd;
		return r;
	}
	close(fd); /* -EAGAIN: AF_UNIX does not queue the attempt */
	return r;
}

int xport_connect_result(xport_sock s)
{
	int err = 0;
	socklen_t elen = sizeof(err);

	if (getsockopt(s, SOL_SOCKET, SO_ERROR, &err, &elen) < 0)
		return errno;
	return err;
}

#define XPORT_CMSG_SPACE CMSG_SPACE(IPCHUB_MAX_FDS_PER_FRAME * sizeof(int))

xport_ssize xport_recv(xport_sock s, struct iovec *iov, int niov, int *fds,
		       uint32_t *nfds)
{
	union {
		struct cmsghdr align;
		char buf[XPORT_CMSG_SPACE];
	} ctl;
	struct msghdr mh = {
		.msg_iov = iov,
		.msg_iovlen = (size_t)niov,
	};
	ssize_t n;

	if (nfds)
		*nfds = 0;
	if (!fds)
		return recvmsg(s, &mh, MSG_DONTWAIT);
	mh.msg_control = ctl.buf;
	mh.msg_controllen = sizeof(ctl.buf);
	n = recvmsg(s, &mh, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
	if (n < 0)
		return n;
	for (struct cmsghdr *cm = CMSG_FIRSTHDR(&mh); cm;
	     cm = CMSG_NXTHDR(&mh, cm)) {
		size_t k;

		if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS)
			continue;
		k = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (size_t i = 0; i < k && *nfds < IPCHUB_MAX_FDS_PER_FRAME;
		     i++)
			memcpy(&fds[(*nfds)++], CMSG_DATA(cm) + i * sizeof(int),
			       sizeof(int));
	}
	if (mh.msg_flags & MSG_CTRUNC) {
		for (uint32_t i = 0; i < *nfds; i++)
			close(fds[i]);
		*nfds = 0;
		errno = EBADMSG;
		return -1;
	}
	return n;
}

xport_ssize xport_send(xport_sock s, const struct iovec *iov, int niov,
		       const int *fds, uint32_t n)
{
	union {
		struct cmsghdr align;
		char buf[XPORT_CMSG_SPACE];
	} ctl;
	struct msghdr mh = {
		.msg_iov = (struct iovec *)iov,
		.msg_iovlen = (size_t)niov,
	};

	if (n) {
		struct cmsghdr *cm;

		memset(ctl.buf, 0, sizeof(ctl.buf));
		mh.msg_control = ctl.buf;
		mh.msg_controllen = CMSG_SPACE(n * sizeof(int));
		cm = CMSG_FIRSTHDR(&mh);
		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN(n * sizeof(int));
		memcpy(CMSG_DATA(cm), fds, n * sizeof(int));
	}
	return sendmsg(s, &mh, MSG_NOSIGNAL | MSG_DONTWAIT);
}

xport_ssize xport_peek(xport_sock s, void *buf, size_t len)
{
	return recv(s, buf, len, MSG_PEEK | MSG_DONTWAIT);
}

long xport_readable(xport_sock s)
{
	int avail = 0;

	return ioctl(s, FIONREAD, &avail) < 0 ? -1 : (long)avail;
}

void xport_close(xport_sock s)
{
	if (s >= 0)
		close(s);
}

bool xport_passes_fds(void)
{
	return true;
}

uint32_t xport_self_uid(void)
{
	return (uint32_t)geteuid();
}
