/*
 * cmd_keygen.c - `ipchub keygen [-o FILE]`: create an Ed25519 key pair
 * for authenticating to the broker (see SECURITY.md).
 *
 * Model: the secret goes to FILE (default $IPCHUB_KEY), created 0600 with
 * O_EXCL so an existing key is never overwritten; the public key is
 * printed on stdout as one line, "ed25519:<64 hex digits>", the form the
 * broker's policy file and `ipchub peers -l` use. Key handling is in
 * client/key.c; this file only parses arguments and reports.
 */
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "key.h"

int cmd_keygen(struct cli *c, int argc, char **argv)
{
	const char *out = NULL;
	uint8_t pk[AUTH_PK_LEN];
	char text[PKTEXT_LEN + 1], err[512];
	int rc;

	(void)c;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "-o") == 0 || strcmp(argv[i], "--output") == 0) {
			if (i + 1 >= argc)
				return cli_usage_error("keygen", "%s needs a file",
						       argv[i]);
			out = argv[++i];
		} else {
			return cli_usage_error("keygen", "unexpected argument '%s'",
					       argv[i]);
		}
	}
	if (!out) {
		out = getenv("IPCHUB_KEY");
		if (!out || !*out)
			return cli_usage_error("keygen",
					       "no output file: give -o FILE or set IPCHUB_KEY");
	}
	rc = key_generate(out, pk, err, sizeof(err));
	if (rc)
		return cli_fail(rc, err);
	pktext_format(pk, text, sizeof(text));
	puts(text);
	return CLI_EXIT_OK;
}
