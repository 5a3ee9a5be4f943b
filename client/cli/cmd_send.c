/*
 * cmd_send.c - `ipchub send TO [JSON]`: one-way message with a delivery
 * check.
 *
 * Model: a SEND is never acknowledged, only refused. The broker handles a
 * connection's frames in order, so once a PING sent after the SEND has
 * been answered, any ERROR for the SEND has already arrived (the library
 * queued it while waiting for the PONG). The command then looks through
 * what was queued for an error carrying the send's id. With --fd FILE
 * (repeatable) each FILE is opened read-only and its descriptor passed
 * with the message (ipchub_send_fds); the command closes its own.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

int cmd_send(struct cli *c, int argc, char **argv)
{
	const char *pos[2] = {NULL, NULL};
	int fds[IPCHUB_CLI_MAX_FDS];
	size_t nfds = 0;
	int npos = 0, rc, status = CLI_EXIT_OK;
	bool only_pos = false;
	ipchub_pack pk;
	ipchub_msg *m;
	uint64_t id = 0;

	for (int i = 1; i < argc; i++) {
		if (!only_pos && strcmp(argv[i], "--") == 0) {
			only_pos = true;
		} else if (!only_pos && strcmp(argv[i], "--fd") == 0) {
			if (i + 1 >= argc)
				status = cli_usage_error("send", "--fd needs a FILE");
			else if (nfds == IPCHUB_CLI_MAX_FDS)
				status = cli_usage_error("send", "at most %d --fd",
							 IPCHUB_CLI_MAX_FDS);
			else if ((fds[nfds] = open(argv[++i], O_RDONLY | O_CLOEXEC)) < 0)
				status = cli_failf(IPCHUB_E_INVALID, "cannot open '%s': %s",
						   argv[i], strerror(errno));
			else
				nfds++;
			if (status != CLI_EXIT_OK)
				goto out;
		} else if (npos < 2)
			pos[npos++] = argv[i];
		else {
			status = cli_usage_error("send", "too many arguments");
			goto out;
		}
	}
	if (npos < 1) {
		status = cli_usage_error("send", "missing destination");
		goto out;
	}
	if (cli_body_from_json(pos[1], &pk)) {
		status = CLI_EXIT_FAIL;
		goto out;
	}
	if (cli_connect(c)) {
		ipchub_pack_destroy(&pk);
		status = CLI_EXIT_FAIL;
		goto out;
	}
	rc = ipchub_send_fds(c->h, pos[0], pk.buf.data, pk.buf.size, fds, nfds,
			     &id);
	ipchub_pack_destroy(&pk);
	if (rc == IPCHUB_OK)
		rc = ipchub_ping(c->h, c->timeout_ms, NULL);
	if (rc) {
		status = cli_fail(rc, NULL);
		goto out;
	}
	while (ipchub_recv(c->h, 0, &m) == IPCHUB_OK) {
		if (ipchub_msg_error(m) && ipchub_msg_id(m) == id &&
		    status == CLI_EXIT_OK)
			status = cli_fail_msg(ipchub_msg_error(m), m);
		ipchub_msg_free(m);
	}
out:
	while (nfds)
		close(fds[--nfds]);
	return status;
}
