/*
 * bconf.c - see bconf.h. inih drives the parse; the handler works on a
 * copy and the copy replaces c only when the whole file was good, so a
 * bad file leaves the settings as they were.
 */
#include "bconf.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ini.h>

static const char *const scalar_keys[BCONF_NSCALARS_] = {
	[BCONF_HUB] = "hub", [BCONF_NATS] = "nats", [BCONF_SOCKET] = "socket",
	[BCONF_PREFIX] = "prefix", [BCONF_CREDS] = "creds",
	[BCONF_SEED] = "nkey-seed", [BCONF_USER] = "user",
	[BCONF_PWFILE] = "password-file", [BCONF_CA] = "tls-ca",
	[BCONF_CERT] = "tls-cert", [BCONF_KEY] = "tls-key",
};

struct ctx {
	struct bconf work;
	bool seen[BCONF_NSCALARS_];
	const char *path;
	char *err;
	size_t cap;
	bool failed;
};

int bconf_set(struct bconf *c, enum bconf_key k, const char *value,
	      char *err, size_t cap)
{
	char *v = strdup(value);

	if (!v) {
		snprintf(err, cap, "out of memory");
		return -1;
	}
	free(c->v[k]);
	c->v[k] = v;
	return 0;
}

int bconf_add(struct bconf *c, enum bconf_list l, const char *value,
	      char *err, size_t cap)
{
	char *v;

	if (c->n[l] == BCONF_MAX_LIST) {
		snprintf(err, cap, "more than %d entries in one list", BCONF_MAX_LIST);
		return -1;
	}
	v = strdup(value);
	if (!v) {
		snprintf(err, cap, "out of memory");
		return -1;
	}
	c->list[l][c->n[l]++] = v;
	return 0;
}

void bconf_free(struct bconf *c)
{
	for (int k = 0; k < BCONF_NSCALARS_; k++)
		free(c->v[k]);
	for (int l = 0; l < BCONF_NLISTS_; l++)
		for (int i = 0; i < c->n[l]; i++)
			free(c->list[l][i]);
	memset(c, 0, sizeof(*c));
}

/* A deep copy of c into out (empty on failure): 0 or -1. */
static int copy(struct bconf *out, const struct bconf *c)
{
	char dummy[8];

	memset(out, 0, sizeof(*out));
	out->batch = c->batch;
	for (int k = 0; k < BCONF_NSCALARS_; k++)
		if (c->v[k] && bconf_set(out, (enum bconf_key)k, c->v[k], dummy,
					 sizeof(dummy)) < 0)
			goto fail;
	for (int l = 0; l < BCONF_NLISTS_; l++)
		for (int i = 0; i < c->n[l]; i++)
			if (bconf_add(out, (enum bconf_list)l, c->list[l][i],
				      dummy, sizeof(dummy)) < 0)
				goto fail;
	return 0;
fail:
	bconf_free(out);
	return -1;
}

static int handler(void *arg, const char *section, const char *key,
		   const char *value)
{
	struct ctx *x = arg;
	char msg[128];

	if (strcmp(section, "bridge") == 0 && strcmp(key, "nats-batch") == 0) {
		if (strcmp(value, "yes") && strcmp(value, "no")) {
			snprintf(x->err, x->cap, "%s: [bridge] nats-batch is yes or no",
				 x->path);
			goto fail;
		}
		x->work.batch = value[0] == 'y';
		return 1;
	}
	if (strcmp(section, "bridge") == 0) {
		for (int k = 0; k < BCONF_NSCALARS_; k++) {
			if (strcmp(key, scalar_keys[k]) != 0)
				continue;
			if (x->seen[k]) {
				snprintf(x->err, x->cap, "%s: [bridge] %s set twice",
					 x->path, key);
				goto fail;
			}
			x->seen[k] = true;
			if (!*value) {
				snprintf(x->err, x->cap, "%s: [bridge] %s is empty",
					 x->path, key);
				goto fail;
			}
			if (bconf_set(&x->work, (enum bconf_key)k, value, msg,
				      sizeof(msg)) < 0)
				goto fail_msg;
			return 1;
		}
	} else if (strcmp(section, "topics") == 0 &&
		   (strcmp(key, "export") == 0 || strcmp(key, "import") == 0)) {
		if (bconf_add(&x->work, key[0] == 'e' ? BCONF_EXPORTS : BCONF_IMPORTS,
			      value, msg, sizeof(msg)) < 0)
			goto fail_msg;
		return 1;
	} else if (strcmp(section, "names") == 0 && strcmp(key, "export") == 0) {
		if (bconf_add(&x->work, BCONF_NAMES, value, msg, sizeof(msg)) < 0)
			goto fail_msg;
		return 1;
	} else if (strcmp(section, "bridge") && strcmp(section, "topics") &&
		   strcmp(section, "names")) {
		snprintf(x->err, x->cap, "%s: unknown section [%s] (bridge, topics, names)",
			 x->path, section);
		goto fail;
	}
	snprintf(x->err, x->cap, "%s: unknown key \"%s\" in [%s]", x->path, key,
		 section);
	goto fail;
fail_msg:
	snprintf(x->err, x->cap, "%s: %s", x->path, msg);
fail:
	x->failed = true;
	return 0;
}

int bconf_load(struct bconf *c, const char *path, char *err, size_t cap)
{
	struct ctx x = {.path = path, .err = err, .cap = cap};
	FILE *f;
	int r;

	f = fopen(path, "re");
	if (!f) {
		snprintf(err, cap, "cannot open %s: %s", path, strerror(errno));
		return -1;
	}
	if (copy(&x.work, c) < 0) {
		fclose(f);
		snprintf(err, cap, "out of memory");
		return -1;
	}
	r = ini_parse_file(f, handler, &x);
	fclose(f);
	if (!x.failed && r != 0) {
		snprintf(err, cap, r > 0 ? "%s:%d: syntax error (expected \"key = value\" or [section])"
					 : "%s: cannot read it (%d)", path, r);
		x.failed = true;
	}
	if (x.failed) {
		/* Name the line where inih stopped (the handler's own
		 * messages do not know it). */
		if (r > 0 && strncmp(err, path, strlen(path)) == 0 &&
		    err[strlen(path)] == ':' && err[strlen(path) + 1] == ' ') {
			char tail[512];

			snprintf(tail, sizeof(tail), "%s", err + strlen(path) + 2);
			snprintf(err, cap, "%s:%d: %s", path, r, tail);
		}
		bconf_free(&x.work);
		return -1;
	}
	bconf_free(c);
	*c = x.work;
	return 0;
}
