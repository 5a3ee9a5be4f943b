/*
 * conf_file.c - see conf_file.h. inih drives the parse; our reader feeds
 * it one line at a time, which is how we know the line number inside the
 * handler (this build of inih does not pass it) and how over-long lines
 * are caught instead of being split into two.
 */
#include "conf_file.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ini.h>

struct load_ctx {
	FILE *f;
	const char *path;
	struct broker_conf work;  /* owns its strings */
	unsigned line;            /* number of the line last handed to inih */
	bool failed;              /* err holds the message */
	bool too_long;
	unsigned *seen;           /* [conf_nopts]: line where set, 0 = not */
	char *err;
	size_t cap;
};

static char *reader(char *str, int num, void *arg)
{
	struct load_ctx *x = arg;
	size_t n;

	if (x->failed || !fgets(str, num, x->f))
		return NULL;
	x->line++;
	n = strlen(str);
	if (n > 0 && str[n - 1] != '\n' && !feof(x->f)) {
		snprintf(x->err, x->cap, "%s:%u: line longer than %d bytes",
			 x->path, x->line, num > 3 ? num - 3 : 0);
		x->failed = true;
		x->too_long = true;
		return NULL;
	}
	return str;
}

static int handler(void *arg, const char *section, const char *key,
		   const char *value)
{
	struct load_ctx *x = arg;
	const struct conf_opt *o;
	char msg[256];
	size_t i;

	if (section && *section) {
		snprintf(x->err, x->cap,
			 "%s:%u: sections are not used (found [%s]); write keys "
			 "at the top level",
			 x->path, x->line, section);
		goto fail;
	}
	o = conf_find_key(key);
	if (!o) {
		snprintf(x->err, x->cap, "%s:%u: unknown key \"%s\"", x->path,
			 x->line, key);
		goto fail;
	}
	i = (size_t)(o - conf_opts);
	if (x->seen[i]) {
		snprintf(x->err, x->cap, "%s:%u: key \"%s\" already set on line %u",
			 x->path, x->line, key, x->seen[i]);
		goto fail;
	}
	if (conf_set(&x->work, o, value ? value : "", msg, sizeof(msg)) < 0) {
		snprintf(x->err, x->cap, "%s:%u: %s: %s", x->path, x->line, key,
			 msg);
		goto fail;
	}
	if (conf_check(&x->work, o, msg, sizeof(msg)) < 0) {
		snprintf(x->err, x->cap, "%s:%u: %s", x->path, x->line, msg);
		goto fail;
	}
	x->seen[i] = x->line;
	return 1;
fail:
	x->failed = true;
	return 0;
}

int conf_file_load(struct broker_conf *c, const char *path, char *err,
		   size_t cap)
{
	struct load_ctx x;
	int r, e;

	memset(&x, 0, sizeof(x));
	x.path = path;
	x.err = err;
	x.cap = cap;
	x.f = fopen(path, "re");
	if (!x.f) {
		e = errno;
		snprintf(err, cap, "cannot open %s: %s", path, strerror(e));
		return -e;
	}
	x.seen = calloc(conf_nopts, sizeof(*x.seen));
	if (!x.seen || conf_copy(&x.work, c) < 0) {
		free(x.seen);
		fclose(x.f);
		snprintf(err, cap, "out of memory");
		return -ENOMEM;
	}
	/* Honoured where the library reads these at run time; the reader
	 * above stops at the first error and the duplicate-key check
	 * rejects a continuation line either way. */
	ini_allow_multiline = false;
	ini_stop_on_first_error = true;
	r = ini_parse_stream(reader, &x, handler, &x);
	e = ferror(x.f) ? EIO : 0;
	fclose(x.f);
	free(x.seen);
	if (!x.failed && e) {
		snprintf(err, cap, "cannot read %s: %s", path, strerror(e));
		conf_clear(&x.work);
		return -e;
	}
	if (!x.failed && r == -2) {
		snprintf(err, cap, "out of memory");
		conf_clear(&x.work);
		return -ENOMEM;
	}
	if (!x.failed && r != 0) {
		snprintf(err, cap,
			 "%s:%d: syntax error (expected \"key = value\")",
			 path, r);
		x.failed = true;
	}
	if (x.failed) {
		conf_clear(&x.work);
		return -EINVAL;
	}
	conf_clear(c);
	*c = x.work;
	return 0;
}
