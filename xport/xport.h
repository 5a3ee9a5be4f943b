/*
 * xport.h - the byte-stream transport under the broker and the client
 * library: listen, accept (with the peer's credentials, read once),
 * connect, read, write and close, over one handle type the event loops
 * wait on.
 *
 * Model: an xport_sock is always something poll(2) / libevent can watch
 * for readability and writability. On Unix it is the Unix domain stream
 * socket itself (xport_unix.c: SOCK_CLOEXEC|SOCK_NONBLOCK, SO_PEERCRED,
 * SCM_RIGHTS). On Windows it is the loop's end of a loopback socket pair
 * whose other end a bridge thread splices to a named pipe
 * (xport_win.c, which explains why). Everything above this header - the
 * broker's listener and connections, the client library - is the same on
 * both; only the implementation file differs, chosen by the build.
 *
 * Ownership: xport_accept() and xport_connect() hand out a handle the
 * caller owns and releases with xport_close(). A struct xport_listener
 * owns its listening handle and, on Unix, the socket file it bound
 * (removed at close only if it is still ours, by device and inode).
 *
 * Errors: functions return 0 or a negative errno value (the handle
 * functions mirror recv/send: -1 with errno). The set per function is
 * listed with it; on failure outputs are untouched.
 */
#ifndef IPCHUB_XPORT_H
#define IPCHUB_XPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#ifdef _WIN32
#include <winsock2.h>
/* evbuffer_iovec has this layout; WSABUF (len first) does not. */
struct iovec {
	void *iov_base;
	size_t iov_len;
};
typedef intptr_t xport_sock; /* a SOCKET, as libevent's evutil_socket_t */
typedef SSIZE_T xport_ssize;
#else
#include <sys/stat.h>
#include <sys/uio.h>
typedef int xport_sock;
typedef ssize_t xport_ssize;
#endif

#define XPORT_NONE ((xport_sock)-1)

/* Longest SID string ("S-1-5-21-a-b-c-rid"): 15 sub-authorities at most,
 * each up to 10 digits. */
#define XPORT_SID_MAX 192
/* Longest transport path (a sockaddr_un path, or a pipe name). */
#define XPORT_PATH_MAX 256

/* Who is on the other end, read once when the connection is accepted.
 * uid/gid are (uint32_t)-1 and pid 0 when unknown. On Windows, uid is
 * the relative identifier (last sub-authority) of the client's user SID,
 * sid its full string form, gid (uint32_t)-1. On Unix sid is "". */
struct xport_cred {
	long pid;
	uint32_t uid;
	uint32_t gid;
	char sid[XPORT_SID_MAX];
};

struct xport_win_listener; /* xport_win.c */

struct xport_listener {
	xport_sock sock;          /* watched for readability; owned; XPORT_NONE when closed */
	char path[XPORT_PATH_MAX];
	bool from_manager;        /* Unix: socket inherited (socket activation) */
	bool abstract;            /* Unix: "@name" */
	bool own_file;            /* Unix: we created path; unlink at close */
#ifdef _WIN32
	struct xport_win_listener *w; /* owned: pipe instances, acceptor thread */
#else
	dev_t dev;
	ino_t ino;
#endif
};

/* Listen on path (already resolved, addr_resolve), or, when
 * inherited >= 0, adopt that listening socket (Unix socket activation;
 * -ENOTSUP on Windows). mode is the socket file's mode (Unix); a pipe is
 * always restricted to its owner and SYSTEM. Returns 0, or a negative
 * errno with a one-line explanation in err: -EADDRINUSE (another broker
 * answers there), -EEXIST (a non-socket file is in the way), -EPERM (the
 * default directory is not ours), -ENAMETOOLONG, -EINVAL, -ENOTSOCK (an
 * inherited fd that is not a listening stream socket), or what the
 * system calls failed with. On failure nothing is left behind (an
 * inherited fd is closed). */
int xport_listen(struct xport_listener *l, const char *path, int inherited,
		 unsigned mode, char *err, size_t cap);

/* Accept one pending connection: 0 with *out (owned by the caller,
 * non-blocking, close-on-exec) and *cred filled; -EAGAIN when none is
 * pending; -EINTR / -ECONNABORTED (try again); -EMFILE, -ENFILE,
 * -ENOBUFS, -ENOMEM (back off); another negative errno otherwise. */
int xport_accept(struct xport_listener *l, xport_sock *out,
		 struct xport_cred *cred);

/* Stop listening and remove what listen created. Idempotent; accepts a
 * listener never opened (sock XPORT_NONE after xport_listener_init). */
void xport_listener_close(struct xport_listener *l);

static inline void xport_listener_init(struct xport_listener *l)
{
	*l = (struct xport_listener){.sock = XPORT_NONE};
}

/* Start a non-blocking connection to path: 0 (connected), -EINPROGRESS
 * (*out set: wait until writable, then xport_connect_result), -EAGAIN
 * (the listener's backlog is full: nothing is left open, try later),
 * -ENOENT / -ECONNREFUSED / -ENOTDIR (no broker there), -EINVAL /
 * -ENAMETOOLONG (bad path), or another negative errno. On success *out is
 * owned by the caller. */
int xport_connect(const char *path, xport_sock *out);

/* After a connect in progress became writable: 0, or the positive errno
 * it failed with. */
int xport_connect_result(xport_sock s);

/* One read into iov; with fds non-NULL, room for IPCHUB_MAX_FDS_PER_FRAME
 * descriptors that arrive with the bytes (the caller owns
 * fds[0..*nfds)). Never blocks. Returns what recvmsg returns (-1 with
 * errno EAGAIN when nothing is there, 0 at end of stream). A truncated
 * descriptor message closes what arrived and fails with EBADMSG. Windows
 * carries no descriptors: *nfds is always 0. */
xport_ssize xport_recv(xport_sock s, struct iovec *iov, int niov, int *fds,
		       uint32_t *nfds);

/* One write of iov with n descriptors attached to its first byte (n may
 * be 0; the caller keeps its descriptors). Never blocks, never raises
 * SIGPIPE. Returns what sendmsg returns. n > 0 on Windows fails with
 * EOPNOTSUPP. */
xport_ssize xport_send(xport_sock s, const struct iovec *iov, int niov,
		       const int *fds, uint32_t n);

/* Copy up to len bytes that a read would return, without consuming them:
 * what recv(MSG_PEEK) returns. */
xport_ssize xport_peek(xport_sock s, void *buf, size_t len);

/* Bytes readable now (FIONREAD), or -1 when unknown. */
long xport_readable(xport_sock s);

/* Close a handle (XPORT_NONE is ignored). */
void xport_close(xport_sock s);

/* Whether this transport passes descriptors (SCM_RIGHTS). */
bool xport_passes_fds(void);

/* The uid a listener sees for this process (struct xport_cred.uid): the
 * effective uid on Unix, the last sub-authority of the process user's SID
 * on Windows ((uint32_t)-1 if the token cannot be read). */
uint32_t xport_self_uid(void);

#endif
