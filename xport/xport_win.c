/*
 * xport_win.c - the Windows named-pipe transport (see xport.h).
 *
 * Model: the broker listens on a named pipe (\\.\pipe\ipchub-<user> by
 * default, addr_resolve) and clients open it; but every handle this file
 * hands out is a socket, the loop's end of a loopback TCP pair, and one
 * bridge per connection splices the other end to the pipe. Why a bridge
 * and not the pipe itself in the loop: libevent's Windows backends wait
 * on sockets only (select/WSAPoll, and bufferevent_async's IOCP needs
 * the whole connection rewritten around bufferevents), the client
 * library waits with poll (WSAPoll: sockets only), and Wine implements
 * select/WSAPoll on sockets faithfully. So the routing code, the
 * broker's evbuffers and the client's poll loop stay exactly as on
 * Unix; the cost is one copy through loopback TCP and two threads per
 * connection.
 *
 * A bridge is two threads with blocking I/O, one per direction:
 * pipe -> socket (overlapped ReadFile, then blocking send) and
 * socket -> pipe (blocking recv, then overlapped WriteFile). Each moves
 * at most XPORT_WIN_CHUNK bytes at a time and waits for the other side
 * to take them before reading more, so backpressure crosses the bridge:
 * a loop that stops reading fills the socket, which stops the pipe
 * reader, which fills the pipe, which blocks the writer at the far end.
 * Nothing buffers without bound. End of stream crosses too: the pipe
 * reader shuts down the socket's sending side when the pipe breaks; the
 * socket reader, at the socket's end of stream, flushes the pipe (waits
 * until the far end has read what was written) and sets the bridge's stop
 * event, which cancels the pipe reader's pending read or keeps it from
 * starting another. The last of the two threads to finish closes the pipe
 * handle and the bridge socket and frees the bridge.
 *
 * Listening: an acceptor thread keeps one pipe instance waiting in
 * ConnectNamedPipe (overlapped, so that closing the listener can stop
 * it). A second broker is refused twice over: WaitNamedPipe tells
 * whether the name exists, and the first instance is created with
 * FILE_FLAG_FIRST_PIPE_INSTANCE, which on Windows fails when another
 * process already owns the name (Wine 8.0 ignores that flag). Every instance carries a DACL that grants
 * access to the broker's own user and SYSTEM only, and rejects remote
 * clients. For each client that connects, the acceptor reads its
 * credentials (GetNamedPipeClientProcessId, then the process token's
 * TokenUser: the SID string, and its last sub-authority as uid), builds
 * the bridge, queues {socket, credentials} and writes one byte to the
 * listener's wake socket, which is what the loop watches (xport_listener
 * .sock); xport_accept() pops one connection per byte.
 *
 * Descriptors: SCM_RIGHTS has no pipe equivalent, so xport_send() with
 * descriptors fails with EOPNOTSUPP and xport_passes_fds() is false;
 * the broker and the library announce no FDS capability.
 */
/* Vista's API: GetNamedPipeClientProcessId, CancelIoEx, InitOnce. */
#ifndef _WIN32_WINNT
#define _WIN32_WINNT 0x0601
#endif
#include "xport.h"

#include <errno.h>
#include <limits.h>
#include <process.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <windows.h>
#include <sddl.h>
#include <ws2tcpip.h>

/* Bytes one bridge thread moves per step: also each pipe instance's
 * buffer size in each direction. */
#define XPORT_WIN_CHUNK 65536
/* WSABUFs per WSASend/WSARecv: longer iovec arrays are a short write. */
#define XPORT_WIN_IOV_MAX 64

/* ---- errors ------------------------------------------------------------ */

static int wsa_errno(int e)
{
	switch (e) {
	case WSAEWOULDBLOCK:
		return EAGAIN;
	case WSAEINTR:
		return EINTR;
	case WSAECONNRESET:
	case WSAECONNABORTED:
	case WSAENETRESET:
		return ECONNRESET;
	case WSAESHUTDOWN:
	case WSAENOTCONN:
		return EPIPE;
	case WSAENOBUFS:
		return ENOBUFS;
	case WSAEMFILE:
		return EMFILE;
	case WSAEINVAL:
		return EINVAL;
	case WSAENOTSOCK:
		return ENOTSOCK;
	default:
		return EIO;
	}
}

static int win_errno(DWORD e)
{
	switch (e) {
	case ERROR_FILE_NOT_FOUND:
	case ERROR_PATH_NOT_FOUND:
		return ENOENT;
	case ERROR_PIPE_BUSY:
		return EAGAIN;
	case ERROR_ACCESS_DENIED:
		return EACCES;
	case ERROR_INVALID_NAME:
	case ERROR_BAD_PATHNAME:
		return EINVAL;
	case ERROR_NOT_ENOUGH_MEMORY:
	case ERROR_OUTOFMEMORY:
		return ENOMEM;
	case ERROR_TOO_MANY_OPEN_FILES:
		return EMFILE;
	case ERROR_BROKEN_PIPE:
	case ERROR_NO_DATA:
	case ERROR_PIPE_NOT_CONNECTED:
		return EPIPE;
	default:
		return EIO;
	}
}

static INIT_ONCE wsa_once = INIT_ONCE_STATIC_INIT;
static int wsa_status = -1;

static BOOL CALLBACK wsa_init(PINIT_ONCE once, PVOID p, PVOID *ctx)
{
	WSADATA d;

	(void)once;
	(void)p;
	(void)ctx;
	wsa_status = WSAStartup(MAKEWORD(2, 2), &d) == 0 ? 0 : -EIO;
	return TRUE;
}

/* Winsock must be started before the first socket call; the process
 * keeps it for its lifetime (WSACleanup would break the caller's own
 * sockets and libevent's). */
static int wsa_ready(void)
{
	InitOnceExecuteOnce(&wsa_once, wsa_init, NULL, NULL);
	return wsa_status;
}

/* ---- socket pair --------------------------------------------------------- */

static SOCKET new_tcp(void)
{
	return WSASocketW(AF_INET, SOCK_STREAM, IPPROTO_TCP, NULL, 0,
			  WSA_FLAG_OVERLAPPED | WSA_FLAG_NO_HANDLE_INHERIT);
}

/* A connected loopback TCP pair. The accepted end must be the socket we
 * connected (same address and port), so another local process racing to
 * the ephemeral listener cannot take our place. sv[0] is non-blocking (the
 * loop's end), sv[1] blocking (the bridge's). Returns 0 or a negative
 * errno. */
static int tcp_pair(SOCKET sv[2])
{
	struct sockaddr_in sa, me, peer;
	int len = sizeof(sa), mlen = sizeof(me), plen = sizeof(peer), e;
	SOCKET l = new_tcp(), a = INVALID_SOCKET, b = INVALID_SOCKET;
	BOOL one = TRUE;
	u_long nb = 1;

	if (l == INVALID_SOCKET)
		return -wsa_errno(WSAGetLastError());
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	(void)setsockopt(l, SOL_SOCKET, SO_EXCLUSIVEADDRUSE, (char *)&one,
			 sizeof(one));
	if (bind(l, (struct sockaddr *)&sa, sizeof(sa)) != 0 ||
	    listen(l, 1) != 0 ||
	    getsockname(l, (struct sockaddr *)&sa, &len) != 0)
		goto fail;
	a = new_tcp();
	if (a == INVALID_SOCKET ||
	    connect(a, (struct sockaddr *)&sa, sizeof(sa)) != 0 ||
	    getsockname(a, (struct sockaddr *)&me, &mlen) != 0)
		goto fail;
	b = accept(l, (struct sockaddr *)&peer, &plen);
	if (b == INVALID_SOCKET)
		goto fail;
	if (plen != mlen || peer.sin_port != me.sin_port ||
	    peer.sin_addr.s_addr != me.sin_addr.s_addr) {
		WSASetLastError(WSAECONNABORTED);
		goto fail;
	}
	closesocket(l);
	(void)SetHandleInformation((HANDLE)b, HANDLE_FLAG_INHERIT, 0);
	(void)setsockopt(a, IPPROTO_TCP, TCP_NODELAY, (char *)&one, sizeof(one));
	(void)setsockopt(b, IPPROTO_TCP, TCP_NODELAY, (char *)&one, sizeof(one));
	if (ioctlsocket(a, FIONBIO, &nb) != 0) {
		e = wsa_errno(WSAGetLastError());
		closesocket(a);
		closesocket(b);
		return -e;
	}
	sv[0] = a;
	sv[1] = b;
	return 0;

fail:
	e = wsa_errno(WSAGetLastError());
	closesocket(l);
	if (a != INVALID_SOCKET)
		closesocket(a);
	if (b != INVALID_SOCKET)
		closesocket(b);
	return -e;
}

/* ---- bridge --------------------------------------------------------------- */

struct bridge {
	HANDLE pipe;         /* overlapped; closed by the last thread */
	SOCKET sock;         /* blocking; closed by the last thread */
	OVERLAPPED rd_ov;    /* pipe -> socket thread's read */
	HANDLE stop;         /* manual reset: the socket side has ended */
	LONG refs;           /* threads still running */
	char rd_buf[XPORT_WIN_CHUNK];
	char wr_buf[XPORT_WIN_CHUNK];
};

static void bridge_unref(struct bridge *br)
{
	if (InterlockedDecrement(&br->refs) != 0)
		return;
	CloseHandle(br->pipe);
	closesocket(br->sock);
	CloseHandle(br->rd_ov.hEvent);
	CloseHandle(br->stop);
	free(br);
}

/* Overlapped pipe I/O on the calling thread, waiting for its end or,
 * when stop is not NULL, until stop is set (the I/O is cancelled then:
 * -1 with ERROR_OPERATION_ABORTED). stop is an event, not a one-shot
 * CancelIoEx from the other thread, because a cancel issued before this
 * thread starts its next read would be lost and the read would wait for
 * ever. Returns bytes moved, or -1 with the Windows error in *err. */
static long pipe_io(HANDLE h, bool rd, void *buf, DWORD len, OVERLAPPED *ov,
		    HANDLE stop, DWORD *err)
{
	HANDLE ev[2] = {ov->hEvent, stop};
	DWORD n = 0;
	BOOL ok;

	ResetEvent(ov->hEvent);
	ok = rd ? ReadFile(h, buf, len, &n, ov) : WriteFile(h, buf, len, &n, ov);
	if (!ok && GetLastError() == ERROR_IO_PENDING) {
		if (stop && WaitForMultipleObjects(2, ev, FALSE, INFINITE) !=
				    WAIT_OBJECT_0)
			CancelIoEx(h, ov);
		ok = GetOverlappedResult(h, ov, &n, TRUE);
	}
	if (!ok) {
		*err = GetLastError();
		return -1;
	}
	return (long)n;
}

static bool send_full(SOCKET s, const char *p, long n)
{
	while (n > 0) {
		int k = send(s, p, (int)n, 0);

		if (k <= 0)
			return false;
		p += k;
		n -= k;
	}
	return true;
}

/* pipe -> socket. */
static unsigned __stdcall bridge_pipe_to_sock(void *arg)
{
	struct bridge *br = arg;
	DWORD err = 0;

	for (;;) {
		long n;

		if (WaitForSingleObject(br->stop, 0) == WAIT_OBJECT_0)
			break;
		n = pipe_io(br->pipe, true, br->rd_buf, sizeof(br->rd_buf),
			    &br->rd_ov, br->stop, &err);

		if (n < 0 && err == ERROR_MORE_DATA)
			continue; /* byte pipes never say this; be safe */
		if (n <= 0 || !send_full(br->sock, br->rd_buf, n))
			break;
	}
	/* The pipe broke (or the read was cancelled): the loop reads end of
	 * stream after what was already sent. */
	shutdown(br->sock, SD_SEND);
	bridge_unref(br);
	return 0;
}

/* socket -> pipe. */
static unsigned __stdcall bridge_sock_to_pipe(void *arg)
{
	struct bridge *br = arg;
	OVERLAPPED ov;
	DWORD err = 0;

	memset(&ov, 0, sizeof(ov));
	ov.hEvent = CreateEventW(NULL, TRUE, FALSE, NULL);
	for (;;) {
		int n = recv(br->sock, br->wr_buf, sizeof(br->wr_buf), 0);
		int off = 0;

		if (n <= 0 || !ov.hEvent)
			break;
		while (off < n) {
			long k = pipe_io(br->pipe, false, br->wr_buf + off,
					 (DWORD)(n - off), &ov, NULL, &err);

			if (k <= 0)
				goto done;
			off += (int)k;
		}
	}
done:
	/* The loop closed its end: let the far end read what was written,
	 * then stop the other direction, which is waiting on the pipe. */
	FlushFileBuffers(br->pipe);
	SetEvent(br->stop);
	if (ov.hEvent)
		CloseHandle(ov.hEvent);
	bridge_unref(br);
	return 0;
}

/* Splice pipe (owned from now on, on success and failure alike) to a
 * new socket pair; *out is the loop's end. */
static int bridge_start(HANDLE pipe, xport_sock *out)
{
	struct bridge *br = calloc(1, sizeof(*br));
	SOCKET sv[2];
	HANDLE t[2];
	int r;

	if (!br) {
		CloseHandle(pipe);
		return -ENOMEM;
	}
	r = tcp_pair(sv);
	if (r < 0) {
		CloseHandle(pipe);
		free(br);
		return r;
	}
	br->pipe = pipe;
	br->sock = sv[1];
	br->refs = 2;
	br->rd_ov.hEvent = CreateEventW(NULL, TRUE, FALSE, NULL);
	br->stop = CreateEventW(NULL, TRUE, FALSE, NULL);
	t[0] = br->rd_ov.hEvent && br->stop
		       ? (HANDLE)_beginthreadex(NULL, 0, bridge_pipe_to_sock, br,
						CREATE_SUSPENDED, NULL)
		       : NULL;
	t[1] = t[0] ? (HANDLE)_beginthreadex(NULL, 0, bridge_sock_to_pipe, br,
					     CREATE_SUSPENDED, NULL)
		    : NULL;
	if (!t[1]) {
		if (t[0]) {
			TerminateThread(t[0], 0); /* never ran: suspended */
			CloseHandle(t[0]);
		}
		if (br->rd_ov.hEvent)
			CloseHandle(br->rd_ov.hEvent);
		if (br->stop)
			CloseHandle(br->stop);
		CloseHandle(pipe);
		closesocket(sv[0]);
		closesocket(sv[1]);
		free(br);
		return -ENOMEM;
	}
	ResumeThread(t[0]);
	ResumeThread(t[1]);
	CloseHandle(t[0]);
	CloseHandle(t[1]);
	*out = (xport_sock)sv[0];
	return 0;
}

/* ---- credentials and security ---------------------------------------------- */

/* The user SID of a token, as a string, and its last sub-authority. */
static bool token_user(HANDLE tok, char *sid, size_t cap, uint32_t *rid)
{
	union {
		TOKEN_USER tu;
		char buf[SECURITY_MAX_SID_SIZE + sizeof(TOKEN_USER)];
	} u;
	DWORD len = 0;
	char *s = NULL;
	PUCHAR cnt;
	bool ok = false;

	if (!GetTokenInformation(tok, TokenUser, &u, sizeof(u), &len) ||
	    !ConvertSidToStringSidA(u.tu.User.Sid, &s))
		return false;
	if (strlen(s) < cap) {
		strcpy(sid, s);
		cnt = GetSidSubAuthorityCount(u.tu.User.Sid);
		*rid = *cnt ? (uint32_t)*GetSidSubAuthority(u.tu.User.Sid,
							      *cnt - 1)
			    : (uint32_t)-1;
		ok = true;
	}
	LocalFree(s);
	return ok;
}

static bool self_sid(char *sid, size_t cap, uint32_t *rid)
{
	HANDLE tok;
	bool ok;

	if (!OpenProcessToken(GetCurrentProcess(), TOKEN_QUERY, &tok))
		return false;
	ok = token_user(tok, sid, cap, rid);
	CloseHandle(tok);
	return ok;
}

/* The connected client of pipe: pid, then its process token's user. */
static void pipe_cred(HANDLE pipe, struct xport_cred *c)
{
	ULONG pid = 0;
	HANDLE proc, tok;

	memset(c, 0, sizeof(*c));
	c->uid = (uint32_t)-1;
	c->gid = (uint32_t)-1;
	if (!GetNamedPipeClientProcessId(pipe, &pid))
		return;
	c->pid = (long)pid;
	proc = OpenProcess(PROCESS_QUERY_LIMITED_INFORMATION, FALSE, pid);
	if (!proc)
		return;
	if (OpenProcessToken(proc, TOKEN_QUERY, &tok)) {
		if (!token_user(tok, c->sid, sizeof(c->sid), &c->uid)) {
			c->sid[0] = '\0';
			c->uid = (uint32_t)-1;
		}
		CloseHandle(tok);
	}
	CloseHandle(proc);
}

/* ---- listener ---------------------------------------------------------------- */

struct pending_conn {
	xport_sock sock;
	struct xport_cred cred;
	struct pending_conn *next;
};

struct xport_win_listener {
	wchar_t name[XPORT_PATH_MAX];
	SECURITY_ATTRIBUTES sa;
	PSECURITY_DESCRIPTOR sd;  /* LocalFree */
	HANDLE inst;              /* the instance waiting for a client */
	HANDLE stop;              /* set by xport_listener_close */
	HANDLE thread;
	SOCKET wake_w;            /* acceptor writes one byte per connection */
	CRITICAL_SECTION lock;
	struct pending_conn *head, *tail; /* under lock */
	int failed;               /* acceptor stopped on this errno (under lock) */
};

static HANDLE new_instance(struct xport_win_listener *w, bool first)
{
	DWORD open = PIPE_ACCESS_DUPLEX | FILE_FLAG_OVERLAPPED |
		     (first ? FILE_FLAG_FIRST_PIPE_INSTANCE : 0);

	return CreateNamedPipeW(w->name, open,
				PIPE_TYPE_BYTE | PIPE_READMODE_BYTE | PIPE_WAIT |
					PIPE_REJECT_REMOTE_CLIENTS,
				PIPE_UNLIMITED_INSTANCES, XPORT_WIN_CHUNK,
				XPORT_WIN_CHUNK, 0, &w->sa);
}

static void queue_conn(struct xport_win_listener *w, struct pending_conn *p)
{
	char b = 1;

	EnterCriticalSection(&w->lock);
	if (w->tail)
		w->tail->next = p;
	else
		w->head = p;
	w->tail = p;
	LeaveCriticalSection(&w->lock);
	(void)send(w->wake_w, &b, 1, 0);
}

static void acceptor_fail(struct xport_win_listener *w, int e)
{
	char b = 1;

	EnterCriticalSection(&w->lock);
	w->failed = e;
	LeaveCriticalSection(&w->lock);
	(void)send(w->wake_w, &b, 1, 0);
}

static unsigned __stdcall acceptor(void *arg)
{
	struct xport_win_listener *w = arg;
	OVERLAPPED ov;
	HANDLE ev[2];

	memset(&ov, 0, sizeof(ov));
	ov.hEvent = CreateEventW(NULL, TRUE, FALSE, NULL);
	if (!ov.hEvent) {
		acceptor_fail(w, ENOMEM);
		return 0;
	}
	ev[0] = ov.hEvent;
	ev[1] = w->stop;
	for (;;) {
		struct pending_conn *p;
		DWORD n;
		BOOL ok;
		int r;

		ResetEvent(ov.hEvent);
		ok = ConnectNamedPipe(w->inst, &ov);
		if (!ok && GetLastError() == ERROR_IO_PENDING) {
			if (WaitForMultipleObjects(2, ev, FALSE, INFINITE) !=
			    WAIT_OBJECT_0) {
				CancelIoEx(w->inst, &ov);
				(void)GetOverlappedResult(w->inst, &ov, &n, TRUE);
				break;
			}
			ok = GetOverlappedResult(w->inst, &ov, &n, FALSE);
		} else if (!ok && GetLastError() == ERROR_PIPE_CONNECTED) {
			ok = TRUE; /* connected between create and connect */
		}
		if (!ok) {
			/* The client left before we saw it: reuse the instance. */
			DisconnectNamedPipe(w->inst);
			continue;
		}
		p = calloc(1, sizeof(*p));
		if (p)
			pipe_cred(w->inst, &p->cred);
		r = p ? bridge_start(w->inst, &p->sock) : -ENOMEM;
		if (!p)
			CloseHandle(w->inst);
		w->inst = new_instance(w, false);
		if (r == 0)
			queue_conn(w, p);
		else
			free(p); /* the client sees its pipe broken */
		if (w->inst == INVALID_HANDLE_VALUE) {
			w->inst = NULL;
			acceptor_fail(w, win_errno(GetLastError()));
			break;
		}
	}
	CloseHandle(ov.hEvent);
	return 0;
}

/* Convert path (UTF-8) into w->name; it must name a local pipe. */
static int pipe_name(const char *path, wchar_t *out, size_t cap)
{
	static const char pfx[] = "\\\\.\\pipe\\";

	if (!path || strncmp(path, pfx, sizeof(pfx) - 1) != 0 ||
	    path[sizeof(pfx) - 1] == '\0')
		return -EINVAL;
	if (strlen(path) >= cap)
		return -ENAMETOOLONG;
	if (!MultiByteToWideChar(CP_UTF8, MB_ERR_INVALID_CHARS, path, -1, out,
				 (int)cap))
		return -EINVAL;
	return 0;
}

static void win_listener_free(struct xport_win_listener *w)
{
	struct pending_conn *p;

	if (!w)
		return;
	while ((p = w->head)) {
		w->head = p->next;
		xport_close(p->sock);
		free(p);
	}
	if (w->inst)
		CloseHandle(w->inst);
	if (w->stop)
		CloseHandle(w->stop);
	if (w->wake_w != INVALID_SOCKET)
		closesocket(w->wake_w);
	if (w->sd)
		LocalFree(w->sd);
	DeleteCriticalSection(&w->lock);
	free(w);
}

int xport_listen(struct xport_listener *l, const char *path, int inherited,
		 unsigned mode, char *err, size_t cap)
{
	struct xport_win_listener *w;
	char sid[XPORT_SID_MAX], sddl[XPORT_SID_MAX + 64];
	uint32_t rid;
	SOCKET wake[2];
	int r;

	(void)mode;
	xport_listener_init(l);
	if (inherited >= 0) {
		snprintf(err, cap, "socket activation does not exist on Windows");
		return -ENOTSUP;
	}
	if ((r = wsa_ready()) < 0) {
		snprintf(err, cap, "WSAStartup failed");
		return r;
	}
	w = calloc(1, sizeof(*w));
	if (!w) {
		snprintf(err, cap, "out of memory");
		return -ENOMEM;
	}
	InitializeCriticalSection(&w->lock);
	w->wake_w = INVALID_SOCKET;
	r = pipe_name(path, w->name, XPORT_PATH_MAX);
	if (r < 0) {
		snprintf(err, cap, "invalid pipe name \"%s\" (want \\\\.\\pipe\\NAME)",
			 path ? path : "");
		goto fail;
	}
	/* Protected DACL: full access for our user and SYSTEM, nobody else. */
	if (!self_sid(sid, sizeof(sid), &rid)) {
		r = -EACCES;
		snprintf(err, cap, "cannot read this process's user SID");
		goto fail;
	}
	snprintf(sddl, sizeof(sddl), "D:P(A;;GA;;;%s)(A;;GA;;;SY)", sid);
	if (!ConvertStringSecurityDescriptorToSecurityDescriptorA(
		    sddl, SDDL_REVISION_1, &w->sd, NULL)) {
		r = -EINVAL;
		snprintf(err, cap, "security descriptor %s rejected", sddl);
		goto fail;
	}
	w->sa.nLength = sizeof(w->sa);
	w->sa.lpSecurityDescriptor = w->sd;
	w->sa.bInheritHandle = FALSE;
	/* FILE_FLAG_FIRST_PIPE_INSTANCE refuses a name that exists, without
	 * a race, on Windows; Wine 8.0 ignores the flag (win_xport shows
	 * it), so first ask whether the name exists. WaitNamedPipe fails
	 * with ERROR_FILE_NOT_FOUND only when no instance does; it does not
	 * connect, so the other broker sees nothing. */
	if (WaitNamedPipeW(w->name, 1) ||
	    GetLastError() != ERROR_FILE_NOT_FOUND) {
		r = -EADDRINUSE;
		snprintf(err, cap, "another ipchubd is already listening on %s",
			 path);
		goto fail;
	}
	w->inst = new_instance(w, true);
	if (w->inst == INVALID_HANDLE_VALUE) {
		DWORD e = GetLastError();

		w->inst = NULL;
		if (e == ERROR_ACCESS_DENIED || e == ERROR_PIPE_BUSY) {
			r = -EADDRINUSE;
			snprintf(err, cap,
				 "another ipchubd is already listening on %s",
				 path);
		} else {
			r = -win_errno(e);
			snprintf(err, cap, "CreateNamedPipe %s: error %lu", path,
				 (unsigned long)e);
		}
		goto fail;
	}
	r = tcp_pair(wake);
	if (r < 0) {
		snprintf(err, cap, "wake socket pair: %s", strerror(-r));
		goto fail;
	}
	w->wake_w = wake[1];
	l->sock = (xport_sock)wake[0];
	w->stop = CreateEventW(NULL, TRUE, FALSE, NULL);
	w->thread = w->stop ? (HANDLE)_beginthreadex(NULL, 0, acceptor, w, 0,
						     NULL)
			    : NULL;
	if (!w->thread) {
		r = -ENOMEM;
		snprintf(err, cap, "cannot start the acceptor thread");
		closesocket(wake[0]);
		l->sock = XPORT_NONE;
		goto fail;
	}
	strcpy(l->path, path);
	l->w = w;
	return 0;

fail:
	win_listener_free(w);
	return r;
}

int xport_accept(struct xport_listener *l, xport_sock *out,
		 struct xport_cred *cred)
{
	struct xport_win_listener *w = l->w;
	struct pending_conn *p;
	char b;
	int failed;

	if (!w)
		return -EBADF;
	/* Byte first, then the queue: the acceptor queues before it writes
	 * the byte, so a byte read means an entry (or the failure) is there.
	 * The other order loses a connection whose byte arrives between an
	 * empty pop and the read. */
	if (recv((SOCKET)l->sock, &b, 1, 0) != 1)
		return -EAGAIN;
	EnterCriticalSection(&w->lock);
	p = w->head;
	if (p) {
		w->head = p->next;
		if (!w->head)
			w->tail = NULL;
	}
	failed = w->failed;
	LeaveCriticalSection(&w->lock);
	if (!p)
		return failed ? -failed : -EAGAIN;
	*out = p->sock;
	*cred = p->cred;
	free(p);
	return 0;
}

void xport_listener_close(struct xport_listener *l)
{
	struct xport_win_listener *w = l->w;

	if (w) {
		SetEvent(w->stop);
		WaitForSingleObject(w->thread, INFINITE);
		CloseHandle(w->thread);
		win_listener_free(w);
		l->w = NULL;
	}
	if (l->sock != XPORT_NONE) {
		closesocket((SOCKET)l->sock);
		l->sock = XPORT_NONE;
	}
}

/* ---- client -------------------------------------------------------------------- */

int xport_connect(const char *path, xport_sock *out)
{
	wchar_t name[XPORT_PATH_MAX];
	HANDLE h;
	int r;

	if (!path || !path[0])
		return -EINVAL;
	r = pipe_name(path, name, XPORT_PATH_MAX);
	if (r < 0)
		return r;
	if ((r = wsa_ready()) < 0)
		return r;
	/* Identification only: the broker may learn who we are, never act
	 * as us. */
	h = CreateFileW(name, GENERIC_READ | GENERIC_WRITE, 0, NULL,
			OPEN_EXISTING,
			FILE_FLAG_OVERLAPPED | SECURITY_SQOS_PRESENT |
				SECURITY_IDENTIFICATION,
			NULL);
	if (h == INVALID_HANDLE_VALUE)
		return -win_errno(GetLastError());
	return bridge_start(h, out);
}

int xport_connect_result(xport_sock s)
{
	int err = 0, len = sizeof(err);

	if (getsockopt((SOCKET)s, SOL_SOCKET, SO_ERROR, (char *)&err, &len) != 0)
		return wsa_errno(WSAGetLastError());
	return err ? wsa_errno(err) : 0;
}

/* ---- I/O --------------------------------------------------------------------------- */

static int to_wsabuf(const struct iovec *iov, int niov, WSABUF *b)
{
	int n = niov < XPORT_WIN_IOV_MAX ? niov : XPORT_WIN_IOV_MAX;

	for (int i = 0; i < n; i++) {
		b[i].buf = iov[i].iov_base;
		b[i].len = iov[i].iov_len > ULONG_MAX ? ULONG_MAX
						      : (ULONG)iov[i].iov_len;
	}
	return n;
}

xport_ssize xport_recv(xport_sock s, struct iovec *iov, int niov, int *fds,
		       uint32_t *nfds)
{
	WSABUF b[XPORT_WIN_IOV_MAX];
	DWORD got = 0, flags = 0;
	int n = to_wsabuf(iov, niov, b);

	(void)fds;
	if (nfds)
		*nfds = 0;
	if (WSARecv((SOCKET)s, b, (DWORD)n, &got, &flags, NULL, NULL) != 0) {
		int e = WSAGetLastError();

		if (e == WSAESHUTDOWN)
			return 0;
		errno = wsa_errno(e);
		return -1;
	}
	return (xport_ssize)got;
}

xport_ssize xport_send(xport_sock s, const struct iovec *iov, int niov,
		       const int *fds, uint32_t n)
{
	WSABUF b[XPORT_WIN_IOV_MAX];
	DWORD put = 0;
	int k;

	(void)fds;
	if (n) {
		errno = EOPNOTSUPP;
		return -1;
	}
	k = to_wsabuf(iov, niov, b);
	if (WSASend((SOCKET)s, b, (DWORD)k, &put, 0, NULL, NULL) != 0) {
		errno = wsa_errno(WSAGetLastError());
		return -1;
	}
	return (xport_ssize)put;
}

xport_ssize xport_peek(xport_sock s, void *buf, size_t len)
{
	int n = recv((SOCKET)s, buf, len > INT_MAX ? INT_MAX : (int)len,
		     MSG_PEEK);

	if (n < 0) {
		errno = wsa_errno(WSAGetLastError());
		return -1;
	}
	return n;
}

long xport_readable(xport_sock s)
{
	u_long n = 0;

	return ioctlsocket((SOCKET)s, FIONREAD, &n) != 0 ? -1 : (long)n;
}

void xport_close(xport_sock s)
{
	if (s != XPORT_NONE)
		closesocket((SOCKET)s);
}

bool xport_passes_fds(void)
{
	return false;
}

uint32_t xport_self_uid(void)
{
	char sid[XPORT_SID_MAX];
	uint32_t rid;

	return self_sid(sid, sizeof(sid), &rid) ? rid : (uint32_t)-1;
}
