/*
 * cmd_serve.c - `ipchub serve NAME -- CMD [ARGS...]`: answer requests to
 * NAME by running CMD once per request.
 *
 * Model: requests are handled one at a time. For each, CMD is forked and
 * executed directly (execvp, no shell) with three pipes: the request body
 * as one JSON line on its stdin, its stdout collected (at most the
 * broker's max_frame bytes) as the reply, and the first line of its stderr
 * kept for the error message (the rest is drained and discarded). A single
 * poll loop drives the three pipes so a child that writes before it reads
 * cannot deadlock with us. The request's deadline (the timeout the broker
 * forwarded) bounds the child: past it the child is SIGKILLed and no
 * reply is sent, since the broker has already answered TIMEOUT.
 *
 * SIGPIPE is ignored here (a child may exit without reading its stdin)
 * and restored to the default in the child before exec.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "json.h"

/* Longest single wait for a request, so cli_stop is checked this often. */
#define SERVE_POLL_MS 1000
/* Bytes of the child's stderr kept for the error reply. */
#define SERVE_STDERR_KEEP 512

struct job {
	const char *const *argv; /* CMD and its arguments (borrowed) */
	const char *in;          /* stdin bytes (borrowed) */
	size_t in_len, in_off;
	char *out;               /* stdout bytes (owned) */
	size_t out_len, out_cap, out_max;
	char err[SERVE_STDERR_KEEP + 1];
	size_t err_len;
	pid_t pid;
	int status;              /* from waitpid */
	int sys_errno;           /* why the child could not be run */
	bool timed_out, too_big, stopped;
};

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int wait_ms(int64_t deadline)
{
	int64_t left;

	if (deadline < 0)
		return -1;
	left = deadline - now_ms();
	if (left < 0)
		return 0;
	return left > 60000 ? 60000 : (int)left;
}

static void set_env_u64(const char *k, uint64_t v)
{
	char buf[24];

	snprintf(buf, sizeof(buf), "%" PRIu64, v);
	setenv(k, buf, 1);
}

static void child_exec(struct job *j, const ipchub_msg *req, int fd_in,
		       int fd_out, int fd_err)
{
	sigset_t none;

	if (dup2(fd_in, 0) < 0 || dup2(fd_out, 1) < 0 || dup2(fd_err, 2) < 0)
		_exit(127);
	signal(SIGPIPE, SIG_DFL);
	signal(SIGINT, SIG_DFL);
	signal(SIGTERM, SIG_DFL);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	if (ipchub_msg_from(req))
		setenv("IPCHUB_FROM", ipchub_msg_from(req), 1);
	else
		unsetenv("IPCHUB_FROM");
	set_env_u64("IPCHUB_FROM_ID", ipchub_msg_from_id(req));
	set_env_u64("IPCHUB_REQUEST_ID", ipchub_msg_id(req));
	setenv("IPCHUB_TO", ipchub_msg_to(req) ? ipchub_msg_to(req) : "", 1);
	execvp(j->argv[0], (char *const *)j->argv);
	dprintf(2, "cannot run %s: %s\n", j->argv[0], strerror(errno));
	_exit(127);
}

static void keep_stderr(struct job *j, const char *p, size_t n)
{
	size_t room = SERVE_STDERR_KEEP - j->err_len;

	if (n > room)
		n = room;
	memcpy(j->err + j->err_len, p, n);
	j->err_len += n;
	j->err[j->err_len] = '\0';
}

/* Append stdout bytes; false once the reply would be too large. */
static bool keep_stdout(struct job *j, const char *p, size_t n)
{
	if (n > j->out_max - j->out_len)
		return false;
	if (j->out_len + n > j->out_cap) {
		size_t cap = j->out_cap ? j->out_cap : 4096;
		char *q;

		while (cap < j->out_len + n)
			cap *= 2;
		q = realloc(j->out, cap);
		if (!q)
			return false;
		j->out = q;
		j->out_cap = cap;
	}
	memcpy(j->out + j->out_len, p, n);
	j->out_len += n;
	return true;
}

/* Run the child to completion (or deadline). Returns 0, or an IPCHUB_E_*
 * code when the child could not be started. */
static int run_job(struct job *j, const ipchub_msg *req, int64_t deadline)
{
	int pin[2] = {-1, -1}, pout[2] = {-1, -1}, perr[2] = {-1, -1};
	struct pollfd pfd[3];
	int rc = IPCHUB_OK;
	bool killed = false;

	if (pipe2(pin, O_CLOEXEC) || pipe2(pout, O_CLOEXEC) ||
	    pipe2(perr, O_CLOEXEC)) {
		j->sys_errno = errno;
		rc = IPCHUB_E_IO;
		goto out;
	}
	j->pid = fork();
	if (j->pid < 0) {
		j->sys_errno = errno;
		rc = IPCHUB_E_IO;
		goto out;
	}
	if (j->pid == 0)
		child_exec(j, req, pin[0], pout[1], perr[1]);
	close(pin[0]);
	close(pout[1]);
	close(perr[1]);
	pin[0] = pout[1] = perr[1] = -1;
	fcntl(pin[1], F_SETFL, O_NONBLOCK);

	pfd[0] = (struct pollfd){.fd = pin[1], .events = POLLOUT};
	pfd[1] = (struct pollfd){.fd = pout[0], .events = POLLIN};
	pfd[2] = (struct pollfd){.fd = perr[0], .events = POLLIN};
	if (j->in_len == 0) {
		close(pin[1]);
		pin[1] = pfd[0].fd = -1;
	}
	while (pfd[1].fd >= 0 || pfd[2].fd >= 0) {
		char buf[16384];
		ssize_t n;
		int k;

		if (deadline >= 0 && now_ms() >= deadline) {
			j->timed_out = true;
			break;
		}
		k = poll(pfd, 3, wait_ms(deadline));
		if (k < 0 && errno == EINTR && cli_stop) {
			j->stopped = true;
			break;
		}
		if (k < 0 && errno != EINTR) {
			j->sys_errno = errno;
			rc = IPCHUB_E_IO;
			break;
		}
		if (k <= 0)
			continue;
		if (pfd[0].fd >= 0 && pfd[0].revents) {
			n = write(pin[1], j->in + j->in_off, j->in_len - j->in_off);
			if (n > 0)
				j->in_off += (size_t)n;
			if ((n < 0 && errno != EAGAIN && errno != EINTR) ||
			    j->in_off == j->in_len) {
				close(pin[1]); /* done, or the child closed it */
				pin[1] = pfd[0].fd = -1;
			}
		}
		if (pfd[1].fd >= 0 && pfd[1].revents) {
			n = read(pout[0], buf, sizeof(buf));
			if (n > 0 && !keep_stdout(j, buf, (size_t)n)) {
				j->too_big = true;
				break;
			}
			if (n == 0 || (n < 0 && errno != EINTR)) {
				close(pout[0]);
				pout[0] = pfd[1].fd = -1;
			}
		}
		if (pfd[2].fd >= 0 && pfd[2].revents) {
			n = read(perr[0], buf, sizeof(buf));
			if (n > 0)
				keep_stderr(j, buf, (size_t)n);
			if (n == 0 || (n < 0 && errno != EINTR)) {
				close(perr[0]);
				perr[0] = pfd[2].fd = -1;
			}
		}
	}
	if (j->timed_out || j->too_big || j->stopped || rc) {
		kill(j->pid, SIGKILL);
		killed = true;
	}
	/* The pipes are closed; wait for the exit within the deadline. */
	for (;;) {
		pid_t r = waitpid(j->pid, &j->status, killed ? 0 : WNOHANG);

		if (r == j->pid || (r < 0 && errno != EINTR))
			break;
		if (r == 0) {
			if (deadline >= 0 && now_ms() >= deadline) {
				j->timed_out = true;
				kill(j->pid, SIGKILL);
				killed = true;
			} else if (poll(NULL, 0, 10) < 0 && cli_stop) {
				j->stopped = true;
				kill(j->pid, SIGKILL);
				killed = true;
			}
		}
	}
out:
	for (int i = 0; i < 2; i++) {
		if (pin[i] >= 0)
			close(pin[i]);
		if (pout[i] >= 0)
			close(pout[i]);
		if (perr[i] >= 0)
			close(perr[i]);
	}
	return rc;
}

/* The first line of the child's stderr, or "" (points into j->err). */
static const char *first_err_line(struct job *j)
{
	char *nl = strchr(j->err, '\n');

	if (nl)
		*nl = '\0';
	return j->err;
}

static bool only_space(const char *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i] != ' ' && p[i] != '\t' && p[i] != '\n' && p[i] != '\r')
			return false;
	return true;
}

/* Reply to req from the finished job; returns the library's code. */
static int answer(struct cli *c, const ipchub_msg *req, struct job *j,
		  const char *cmd, char *why, size_t whycap)
{
	char msg[1024];
	ipchub_pack pk;
	int rc;

	if (j->too_big) {
		snprintf(msg, sizeof(msg), "%s: output exceeds %zu bytes", cmd,
			 j->out_max);
		snprintf(why, whycap, "%s", msg);
		return ipchub_reply_error(c->h, req, IPCHUB_E_REMOTE_ERROR, msg);
	}
	if (WIFSIGNALED(j->status) || !WIFEXITED(j->status) ||
	    WEXITSTATUS(j->status) != 0) {
		const char *line = first_err_line(j);

		if (WIFSIGNALED(j->status))
			snprintf(msg, sizeof(msg), "%s killed by signal %d%s%s",
				 cmd, WTERMSIG(j->status), *line ? ": " : "",
				 line);
		else
			snprintf(msg, sizeof(msg), "%s exited with status %d%s%s",
				 cmd, WEXITSTATUS(j->status), *line ? ": " : "",
				 line);
		snprintf(why, whycap, "%s", msg);
		return ipchub_reply_error(c->h, req, IPCHUB_E_REMOTE_ERROR, msg);
	}

	ipchub_pack_init(&pk);
	if (only_space(j->out, j->out_len)) {
		msgpack_pack_nil(&pk.pk);
		rc = IPCHUB_OK;
	} else {
		char err[256];

		rc = cli_json_text_to_msgpack(j->out, j->out_len, &pk.pk, err,
					      sizeof(err));
		if (rc) {
			ipchub_pack_destroy(&pk);
			snprintf(msg, sizeof(msg), "%s printed invalid JSON: %s",
				 cmd, err);
			snprintf(why, whycap, "%s", msg);
			return ipchub_reply_error(c->h, req,
						  IPCHUB_E_REMOTE_ERROR, msg);
		}
	}
	rc = ipchub_reply(c->h, req, pk.buf.data, pk.buf.size);
	ipchub_pack_destroy(&pk);
	if (rc == IPCHUB_E_TOO_LARGE || rc == IPCHUB_E_BAD_BODY) {
		snprintf(msg, sizeof(msg), "%s: reply rejected: %s", cmd,
			 ipchub_strerror(rc));
		snprintf(why, whycap, "%s", msg);
		return ipchub_reply_error(c->h, req, IPCHUB_E_REMOTE_ERROR, msg);
	}
	snprintf(why, whycap, "ok, %zu bytes", j->out_len);
	return rc;
}

static int handle_request(struct cli *c, const ipchub_msg *req,
			  const char *const *cmdv)
{
	struct job j = {.argv = cmdv, .out_max = ipchub_max_frame(c->h)};
	int64_t t0 = now_ms(), deadline = -1;
	const void *body;
	size_t len;
	char err[256], why[1100] = "", *line = NULL;
	json_t *js = NULL;
	int rc;

	if (ipchub_msg_timeout(req) > 0)
		deadline = t0 + ipchub_msg_timeout(req);
	body = ipchub_msg_body(req, &len);
	rc = cli_json_from_body(body, len, &js, err, sizeof(err));
	if (rc == IPCHUB_OK) {
		char *t = cli_json_dump(js);

		json_decref(js);
		if (t && asprintf(&line, "%s\n", t) < 0)
			line = NULL;
		free(t);
		if (!line)
			return IPCHUB_E_NOMEM;
	} else {
		char msg[512];

		snprintf(msg, sizeof(msg), "request body has no JSON form: %s",
			 err);
		snprintf(why, sizeof(why), "%s", msg);
		rc = ipchub_reply_error(c->h, req, IPCHUB_E_REMOTE_ERROR, msg);
		goto log;
	}
	j.in = line;
	j.in_len = strlen(line);
	rc = run_job(&j, req, deadline);
	if (rc) {
		snprintf(why, sizeof(why), "cannot run %s: %s", cmdv[0],
			 strerror(j.sys_errno));
		rc = ipchub_reply_error(c->h, req, IPCHUB_E_REMOTE_ERROR, why);
	} else if (j.stopped) {
		snprintf(why, sizeof(why), "interrupted, not answered");
	} else if (j.timed_out) {
		snprintf(why, sizeof(why), "deadline passed, %s killed, "
			 "not answered", cmdv[0]);
	} else {
		rc = answer(c, req, &j, cmdv[0], why, sizeof(why));
	}
log:
	if (c->verbose)
		fprintf(stderr,
			"ipchub serve: request %" PRIu64 " from %s (conn %" PRIu64
			") to %s: %s (%.1f ms)\n",
			ipchub_msg_id(req),
			ipchub_msg_from(req) ? ipchub_msg_from(req) : "-",
			ipchub_msg_from_id(req),
			ipchub_msg_to(req) ? ipchub_msg_to(req) : "-", why,
			(double)(now_ms() - t0));
	free(line);
	free(j.out);
	return rc;
}

int cmd_serve(struct cli *c, int argc, char **argv)
{
	const char *name;
	char **cmdv;
	int rc;

	if (argc < 2)
		return cli_usage_error("serve", "missing NAME");
	name = argv[1];
	cmdv = argv + 2;
	if (argc > 2 && strcmp(argv[2], "--") == 0)
		cmdv++;
	if (!*cmdv)
		return cli_usage_error("serve", "missing CMD");

	signal(SIGPIPE, SIG_IGN);
	if (cli_connect(c))
		return CLI_EXIT_FAIL;
	rc = ipchub_register(c->h, name, c->timeout_ms);
	if (rc)
		return cli_failf(rc, "cannot register '%s': %s", name,
				 ipchub_strerror(rc));

	while (!cli_stop) {
		ipchub_msg *m;

		rc = ipchub_recv(c->h, SERVE_POLL_MS, &m);
		if (rc == IPCHUB_E_TIMEOUT)
			continue;
		if (rc == IPCHUB_E_INTERRUPTED)
			break;
		if (rc == IPCHUB_E_CLOSED || rc == IPCHUB_E_SHUTTING_DOWN)
			return CLI_EXIT_OK;
		if (rc)
			return cli_fail(rc, NULL);
		switch (ipchub_msg_kind(m)) {
		case IPCHUB_KIND_REQUEST:
			rc = handle_request(c, m, (const char *const *)cmdv);
			break;
		case IPCHUB_KIND_SEND:
			fprintf(stderr,
				"ipchub serve: ignoring one-way message %" PRIu64
				" from %s (conn %" PRIu64 ") to %s\n",
				ipchub_msg_id(m),
				ipchub_msg_from(m) ? ipchub_msg_from(m) : "-",
				ipchub_msg_from_id(m),
				ipchub_msg_to(m) ? ipchub_msg_to(m) : "-");
			rc = IPCHUB_OK;
			break;
		default:
			if (c->verbose)
				fprintf(stderr,
					"ipchub serve: %s for frame %" PRIu64
					": %s\n",
					ipchub_code_name(ipchub_msg_error(m)),
					ipchub_msg_id(m),
					ipchub_msg_error_text(m));
			rc = IPCHUB_OK;
		}
		ipchub_msg_free(m);
		if (rc == IPCHUB_E_CLOSED || rc == IPCHUB_E_SHUTTING_DOWN)
			return CLI_EXIT_OK;
		if (rc && rc != IPCHUB_E_INTERRUPTED)
			return cli_fail(rc, NULL);
	}
	return CLI_EXIT_OK;
}
