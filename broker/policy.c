/*
 * policy.c - see policy.h. The parser works on a private NUL-terminated
 * copy of the text, one line at a time, with every token checked before
 * a rule is appended; the rule array grows by doubling up to
 * IPCHUB_POLICY_MAX_RULES. Nothing is allocated from a count in the file.
 */
#include "policy.h"

#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "conf.h"
#include "name.h"
#include "wire.h"

static int perr(char *err, size_t cap, const char *name, unsigned line,
		const char *fmt, ...) __attribute__((format(printf, 5, 6)));

static int perr(char *err, size_t cap, const char *name, unsigned line,
		const char *fmt, ...)
{
	char why[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	if (line)
		snprintf(err, cap, "%s:%u: %s", name, line, why);
	else
		snprintf(err, cap, "%s: %s", name, why);
	return -EINVAL;
}

void policy_free(struct policy *p)
{
	if (!p)
		return;
	free(p->rules);
	free(p);
}

/* Next whitespace-separated token of *s (modified in place); NULL at the
 * end of the line. */
static char *next_tok(char **s)
{
	char *p = *s, *t;

	while (*p == ' ' || *p == '\t' || *p == '\r')
		p++;
	if (!*p) {
		*s = p;
		return NULL;
	}
	t = p;
	while (*p && *p != ' ' && *p != '\t' && *p != '\r')
		p++;
	if (*p)
		*p++ = '\0';
	*s = p;
	return t;
}

static int parse_pattern(struct policy_rule *r, const char *t, const char *name,
			 unsigned line, char *err, size_t cap)
{
	size_t n = strlen(t);

	if (strcmp(t, "*") == 0) {
		r->match = POLICY_ANY;
		r->plen = 0;
		r->pattern[0] = '\0';
		return 0;
	}
	if (n >= 2 && t[n - 2] == '.' && t[n - 1] == '*') {
		/* "p.*": p must be a name; stored with its dot. */
		if (name_check(t, n - 2) != WIRE_E_OK)
			return perr(err, cap, name, line,
				    "bad pattern '%s': the part before '.*' is not a valid name",
				    t);
		if (name_is_reserved(t, n - 2))
			return perr(err, cap, name, line,
				    "pattern '%s' is reserved for the broker", t);
		r->match = POLICY_PREFIX;
		r->plen = (uint16_t)(n - 1);
		memcpy(r->pattern, t, n - 1);
		r->pattern[n - 1] = '\0';
		return 0;
	}
	if (strchr(t, '*'))
		return perr(err, cap, name, line,
			    "bad pattern '%s': '*' only as a whole pattern or as a final '.*'",
			    t);
	if (name_check(t, n) != WIRE_E_OK)
		return perr(err, cap, name, line, "bad pattern '%s': not a valid name",
			    t);
	if (name_is_reserved(t, n))
		return perr(err, cap, name, line,
			    "pattern '%s' is reserved for the broker", t);
	r->match = POLICY_EXACT;
	r->plen = (uint16_t)n;
	memcpy(r->pattern, t, n + 1);
	return 0;
}

static int parse_uid(struct policy_rule *r, const char *t, const char *name,
		     unsigned line, char *err, size_t cap)
{
	struct passwd pw, *res = NULL;
	char buf[4096];
	int rc;

	if (t[0] >= '0' && t[0] <= '9') {
		rc = conf_parse_u32(t, &r->uid);
		if (rc < 0 || r->uid == UINT32_MAX)
			return perr(err, cap, name, line, "bad uid '%s'", t);
		return 0;
	}
	rc = getpwnam_r(t, &pw, buf, sizeof(buf), &res);
	if (rc != 0 || !res)
		return perr(err, cap, name, line, "unknown user '%s'", t);
	r->uid = (uint32_t)pw.pw_uid;
	return 0;
}

/* Parse one line (NUL-terminated, comment already cut). Returns 0 with
 * *have set when it held a rule, or -EINVAL. */
static int parse_line(char *s, struct policy_rule *r, bool *have,
		      const char *name, unsigned line, char *err, size_t cap)
{
	char *t = next_tok(&s);
	int rc;

	*have = false;
	if (!t)
		return 0;
	if (strcmp(t, "allow") != 0 && strcmp(t, "monitor") != 0)
		return perr(err, cap, name, line,
			    "unknown directive '%s' (expected 'allow' or 'monitor')",
			    t);
	memset(r, 0, sizeof(*r));
	r->line = line;
	if (strcmp(t, "monitor") == 0) {
		/* Who may tap traffic; it covers no name. */
		r->match = POLICY_MONITOR;
	} else {
		t = next_tok(&s);
		if (!t)
			return perr(err, cap, name, line,
				    "'allow' needs a name pattern");
		rc = parse_pattern(r, t, name, line, err, cap);
		if (rc)
			return rc;
	}
	while ((t = next_tok(&s))) {
		char *v = next_tok(&s);

		if (strcmp(t, "key") == 0) {
			if (r->has_key)
				return perr(err, cap, name, line, "'key' given twice");
			if (!v || pktext_parse(v, strlen(v), r->pk) < 0)
				return perr(err, cap, name, line,
					    "'key' needs a public key 'ed25519:' + 64 hex digits (as printed by 'ipchub keygen')");
			r->has_key = true;
		} else if (strcmp(t, "uid") == 0) {
			if (r->has_uid)
				return perr(err, cap, name, line, "'uid' given twice");
			if (!v)
				return perr(err, cap, name, line,
					    "'uid' needs a number or a user name");
			rc = parse_uid(r, v, name, line, err, cap);
			if (rc)
				return rc;
			r->has_uid = true;
		} else {
			return perr(err, cap, name, line,
				    "unknown condition '%s' (expected 'key' or 'uid')",
				    t);
		}
	}
	if (!r->has_key && !r->has_uid)
		return perr(err, cap, name, line,
			    "rule for '%s' needs 'key' and/or 'uid'",
			    r->match == POLICY_MONITOR ? "monitor" :
			    r->match == POLICY_ANY ? "*" : r->pattern);
	*have = true;
	return 0;
}

int policy_parse(const char *text, size_t len, const char *name,
		 struct policy **out, char *err, size_t cap)
{
	struct policy *p;
	char *buf, *line, *next;
	size_t ncap = 0;
	unsigned lineno = 0;
	int rc = 0;

	if (len > IPCHUB_POLICY_MAX_BYTES)
		return perr(err, cap, name, 0, "larger than %u bytes",
			    IPCHUB_POLICY_MAX_BYTES);
	if (memchr(text, '\0', len))
		return perr(err, cap, name, 0, "contains a NUL byte: not a text file");
	p = calloc(1, sizeof(*p));
	buf = malloc(len + 1);
	if (!p || !buf) {
		free(p);
		free(buf);
		snprintf(err, cap, "%s: out of memory", name);
		return -ENOMEM;
	}
	memcpy(buf, text, len);
	buf[len] = '\0';
	for (line = buf; line && *line; line = next) {
		struct policy_rule r;
		bool have;
		char *hash;

		lineno++;
		next = strchr(line, '\n');
		if (next)
			*next++ = '\0';
		if (strlen(line) > IPCHUB_POLICY_MAX_LINE) {
			rc = perr(err, cap, name, lineno,
				  "line longer than %u bytes",
				  IPCHUB_POLICY_MAX_LINE);
			break;
		}
		hash = strchr(line, '#');
		if (hash)
			*hash = '\0';
		rc = parse_line(line, &r, &have, name, lineno, err, cap);
		if (rc)
			break;
		if (!have)
			continue;
		if (p->n == IPCHUB_POLICY_MAX_RULES) {
			rc = perr(err, cap, name, lineno, "more than %u rules",
				  IPCHUB_POLICY_MAX_RULES);
			break;
		}
		if (p->n == ncap) {
			size_t nc = ncap ? ncap * 2 : 16;
			struct policy_rule *v = realloc(p->rules, nc * sizeof(*v));

			if (!v) {
				snprintf(err, cap, "%s: out of memory", name);
				rc = -ENOMEM;
				break;
			}
			p->rules = v;
			ncap = nc;
		}
		p->rules[p->n++] = r;
	}
	free(buf);
	if (!rc && p->n == 0)
		rc = perr(err, cap, name, 0,
			  "no rules (an empty policy is refused: the broker fails closed)");
	if (rc) {
		policy_free(p);
		return rc;
	}
	*out = p;
	return 0;
}

int policy_load(const char *path, struct policy **out, char *err, size_t cap)
{
	struct stat st;
	char *text;
	size_t got = 0;
	int fd, rc;

	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0) {
		rc = -errno;
		snprintf(err, cap, "%s: cannot open policy file: %s", path,
			 strerror(errno));
		return rc;
	}
	if (fstat(fd, &st) < 0) {
		rc = -errno;
		snprintf(err, cap, "%s: %s", path, strerror(errno));
		close(fd);
		return rc;
	}
	if (!S_ISREG(st.st_mode)) {
		close(fd);
		return perr(err, cap, path, 0, "not a regular file");
	}
	/* Whoever can write the policy can grant themselves any name. */
	if (st.st_mode & 022) {
		close(fd);
		return perr(err, cap, path, 0,
			    "writable by group or others (mode %04o): chmod go-w it",
			    (unsigned)(st.st_mode & 07777));
	}
	if (st.st_uid != 0 && st.st_uid != geteuid()) {
		close(fd);
		return perr(err, cap, path, 0,
			    "owned by uid %lu: it must belong to root or to the broker's user",
			    (unsigned long)st.st_uid);
	}
	if ((uint64_t)st.st_size > IPCHUB_POLICY_MAX_BYTES) {
		close(fd);
		return perr(err, cap, path, 0, "larger than %u bytes",
			    IPCHUB_POLICY_MAX_BYTES);
	}
	text = malloc((size_t)st.st_size + 1);
	if (!text) {
		close(fd);
		snprintf(err, cap, "%s: out of memory", path);
		return -ENOMEM;
	}
	/* Read to EOF, bounded: the file may change size under us. */
	for (;;) {
		ssize_t n = read(fd, text + got, (size_t)st.st_size + 1 - got);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			rc = -errno;
			snprintf(err, cap, "%s: read: %s", path, strerror(errno));
			free(text);
			close(fd);
			return rc;
		}
		if (n == 0)
			break;
		got += (size_t)n;
		if (got > (size_t)st.st_size) {
			free(text);
			close(fd);
			return perr(err, cap, path, 0, "changed while being read");
		}
	}
	close(fd);
	rc = policy_parse(text, got, path, out, err, cap);
	free(text);
	return rc;
}

static bool rule_matches(const struct policy_rule *r, const char *name,
			 size_t len)
{
	switch (r->match) {
	case POLICY_MONITOR:
		return false;
	case POLICY_ANY:
		return true;
	case POLICY_PREFIX:
		return len > r->plen && memcmp(name, r->pattern, r->plen) == 0;
	default:
		return len == r->plen && memcmp(name, r->pattern, len) == 0;
	}
}

/* Whether a rule's conditions hold for a connection. */
static bool rule_satisfied(const struct policy_rule *r, const uint8_t *pk,
			   uint32_t uid, bool uid_known)
{
	if (r->has_key && (!pk || sodium_memcmp(pk, r->pk, AUTH_PK_LEN) != 0))
		return false;
	if (r->has_uid && (!uid_known || uid != r->uid))
		return false;
	return true;
}

bool policy_covers(const struct policy *p, const char *name, size_t len)
{
	for (size_t i = 0; p && i < p->n; i++)
		if (rule_matches(&p->rules[i], name, len))
			return true;
	return false;
}

bool policy_allows(const struct policy *p, const char *name, size_t len,
		   const uint8_t *pk, uint32_t uid, bool uid_known)
{
	bool covered = false;

	for (size_t i = 0; p && i < p->n; i++) {
		const struct policy_rule *r = &p->rules[i];

		if (!rule_matches(r, name, len))
			continue;
		covered = true;
		if (rule_satisfied(r, pk, uid, uid_known))
			return true;
	}
	return !covered;
}

bool policy_may_monitor(const struct policy *p, const uint8_t *pk,
			uint32_t uid)
{
	for (size_t i = 0; p && i < p->n; i++)
		if (p->rules[i].match == POLICY_MONITOR &&
		    rule_satisfied(&p->rules[i], pk, uid, true))
			return true;
	return false;
}

bool policy_knows_key(const struct policy *p, const uint8_t pk[AUTH_PK_LEN])
{
	int found = 0;

	for (size_t i = 0; p && i < p->n; i++) {
		const struct policy_rule *r = &p->rules[i];
		/* Compare even for keyless rules (against a zero key) so the
		 * work per rule does not depend on the rule. */
		static const uint8_t zero[AUTH_PK_LEN];
		int eq = sodium_memcmp(pk, r->has_key ? r->pk : zero,
				       AUTH_PK_LEN) == 0;

		found |= eq & (int)r->has_key;
	}
	return found != 0;
}
