/*
 * listener.c - see listener.h. All checks happen before bind, in this
 * order: directory (default path only), live broker (connect succeeds),
 * stale file (connect refused: unlink it only if it is a socket).
 * A socket inherited from the service manager skips all of that: it is
 * checked to be a listening Unix stream socket and used as it is.
 */
#include "listener.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <systemd/sd-daemon.h>

#include "addr.h"

static void accept_cb(evutil_socket_t fd, short what, void *arg);

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

/* Socket activation: take over fd (listening, ours from now on), learn
 * its path for the logs, and leave the file alone at close. */
static int adopt_fd(struct listener *l, int fd, const struct broker_conf *conf,
		    const struct logger *log, char *err, size_t cap)
{
	struct sockaddr_un sa;
	socklen_t salen = sizeof(sa);
	int r, fl;
	size_t n;

	r = sd_is_socket_unix(fd, SOCK_STREAM, 1, NULL, 0);
	if (r <= 0) {
		snprintf(err, cap,
			 "the socket passed by the service manager (fd %d) is not "
			 "a listening Unix stream socket",
			 fd);
		return r < 0 ? r : -ENOTSOCK;
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
	l->fd = fd;
	l->from_manager = true;
	if (conf->socket_path && strcmp(conf->socket_path, l->path) != 0)
		log_warn(log,
			 "socket %s from the service manager used; configured "
			 "socket %s ignored",
			 l->path, conf->socket_path);
	return 0;
}

int listener_open(struct listener *l, struct event_base *base,
		  const struct broker_conf *conf, const struct logger *log,
		  listener_accept_fn cb, void *arg, char *err, size_t cap)
{
	struct sockaddr_un sa;
	socklen_t salen;
	struct stat st;
	mode_t old;
	int fd = -1, r, e;

	memset(l, 0, sizeof(*l));
	l->fd = -1;
	if (conf->listen_fd >= 0) {
		r = adopt_fd(l, conf->listen_fd, conf, log, err, cap);
		if (r < 0) {
			close(conf->listen_fd);
			return r;
		}
		fd = l->fd;
		goto start;
	}
	r = addr_resolve(conf->socket_path, l->path, sizeof(l->path));
	if (r < 0) {
		snprintf(err, cap, "socket path too long");
		return r;
	}
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
	if (!l->abstract) {
		l->own_file = true;
		if (stat(l->path, &st) == 0) {
			l->dev = st.st_dev;
			l->ino = st.st_ino;
		}
		if (chmod(l->path, (mode_t)conf->socket_mode) < 0) {
			e = errno;
			snprintf(err, cap, "chmod %s: %s", l->path, strerror(e));
			goto fail;
		}
	}
	if (listen(fd, SOMAXCONN) < 0) {
		e = errno;
		snprintf(err, cap, "listen %s: %s", l->path, strerror(e));
		goto fail;
	}
start:
	l->fd = fd;
	l->log = log;
	l->cb = cb;
	l->arg = arg;
	l->accept_ev = event_new(base, fd, EV_READ | EV_PERSIST, accept_cb, l);
	l->backoff_ev = evtimer_new(base, accept_cb, l);
	if (!l->accept_ev || !l->backoff_ev || event_add(l->accept_ev, NULL)) {
		e = ENOMEM;
		snprintf(err, cap, "out of memory");
		goto fail;
	}
	return 0;

fail:
	l->fd = fd;
	listener_close(l);
	return -e;
}

void listener_close(struct listener *l)
{
	struct stat st;

	if (l->accept_ev) {
		event_free(l->accept_ev);
		l->accept_ev = NULL;
	}
	if (l->backoff_ev) {
		event_free(l->backoff_ev);
		l->backoff_ev = NULL;
	}
	if (l->fd >= 0) {
		close(l->fd);
		l->fd = -1;
	}
	/* Unlink only the file we bound: a newer broker may have replaced
	 * it after removing ours as stale. */
	if (l->own_file && lstat(l->path, &st) == 0 && S_ISSOCK(st.st_mode) &&
	    st.st_dev == l->dev && st.st_ino == l->ino)
		unlink(l->path);
	l->own_file = false;
}

static void accept_cb(evutil_socket_t lfd, short what, void *arg)
{
	struct listener *l = arg;

	(void)lfd;
	if (what & EV_TIMEOUT) {
		/* Back-off over: listen again. */
		l->backing_off = false;
		event_add(l->accept_ev, NULL);
	}
	for (unsigned i = 0; i < CONF_ACCEPT_BATCH && l->fd >= 0; i++) {
		struct ucred cred;
		socklen_t clen = sizeof(cred);
		int fd = accept4(l->fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);

		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			if (errno == EMFILE || errno == ENFILE ||
			    errno == ENOBUFS || errno == ENOMEM) {
				struct timeval tv = {
					.tv_sec = 0,
					.tv_usec = CONF_ACCEPT_BACKOFF_MS * 1000,
				};

				if (!l->fd_starved)
					log_warn(l->log,
						 "accept: %s; retrying every %u ms",
						 strerror(errno),
						 CONF_ACCEPT_BACKOFF_MS);
				l->fd_starved = true;
				l->backing_off = true;
				event_del(l->accept_ev);
				evtimer_add(l->backoff_ev, &tv);
			} else if (errno != EAGAIN && errno != EWOULDBLOCK) {
				log_warn(l->log, "accept: %s", strerror(errno));
			}
			return;
		}
		if (l->fd_starved) {
			log_info(l->log, "accepting connections again");
			l->fd_starved = false;
		}
		if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &clen) < 0) {
			cred.pid = 0;
			cred.uid = (uid_t)-1;
			cred.gid = (gid_t)-1;
		}
		l->cb(l->arg, fd, &cred);
	}
}
