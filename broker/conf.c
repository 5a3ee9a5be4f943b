/*
 * conf.c - the option table, defaults, parsing and validation of struct
 * broker_conf (see conf.h). Parsing never accepts signs, spaces or
 * trailing garbage: a typo is an error, not a silently different limit.
 * The generic operations (set, format, compare, assign, validate) switch
 * on the row's type and reach the field through its offset, so no code
 * outside the table names individual settings.
 */
#include "conf.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

#define ROW(name_, type_, field_, min_, max_, apply_, arg_, help_)         \
	{ name_, type_, offsetof(struct broker_conf, field_), min_, max_,   \
	  apply_, arg_, help_ }

/* To add a setting: a field in struct broker_conf, its default in
 * conf_defaults(), and a row here. Keep --help order. */
const struct conf_opt conf_opts[] = {
	ROW("socket", CONF_T_STR, socket_path, 0, 0, CONF_RESTART, "PATH",
	    "socket to listen on; '@name' = abstract socket"),
	ROW("socket-mode", CONF_T_MODE, socket_mode, 0, 0777, CONF_RESTART,
	    "OCTAL", "permissions of the socket file"),
	ROW("max-frame", CONF_T_SIZE, max_frame, IPCHUB_MAX_FRAME_MIN,
	    IPCHUB_MAX_FRAME_MAX, CONF_RESTART, "BYTES",
	    "largest frame accepted (announced in WELCOME)"),
	ROW("queue-hwm", CONF_T_SIZE, queue_hwm, IPCHUB_QUEUE_HWM_MIN,
	    IPCHUB_QUEUE_HWM_MAX, CONF_LIVE, "BYTES",
	    "outbound queue high-water mark per connection"),
	ROW("max-names", CONF_T_U32, max_names, 1, IPCHUB_MAX_NAMES_MAX,
	    CONF_LIVE, "N", "names per connection"),
	ROW("max-pending", CONF_T_U32, max_pending, 1, IPCHUB_MAX_PENDING_MAX,
	    CONF_LIVE, "N", "pending requests per connection"),
	ROW("max-fds-per-conn", CONF_T_U32, max_fds_per_conn,
	    IPCHUB_MAX_FDS_PER_FRAME, IPCHUB_MAX_FDS_TOTAL_MAX, CONF_LIVE, "N",
	    "file descriptors queued to one receiver (beyond, its senders are "
	    "parked) and received from one sender but not yet claimed"),
	ROW("max-fds-total", CONF_T_U32, max_fds_total,
	    IPCHUB_MAX_FDS_PER_FRAME, IPCHUB_MAX_FDS_TOTAL_MAX, CONF_LIVE, "N",
	    "file descriptors the broker holds in flight for all connections"),
	ROW("max-conns", CONF_T_U32, max_conns, CONF_MAX_CONNS_MIN,
	    CONF_MAX_CONNS_MAX, CONF_LIVE, "N", "simultaneous connections"),
	ROW("handshake-timeout", CONF_T_U32, handshake_timeout_ms,
	    CONF_HANDSHAKE_TIMEOUT_MIN_MS, CONF_HANDSHAKE_TIMEOUT_MAX_MS,
	    CONF_RESTART, "MS",
	    "close connections that have not finished the handshake (HELLO; "
	    "with --require-auth, AUTH) in time"),
	ROW("frame-timeout", CONF_T_U32, frame_timeout_ms,
	    CONF_FRAME_TIMEOUT_MIN_MS, CONF_FRAME_TIMEOUT_MAX_MS, CONF_LIVE,
	    "MS", "close a connection whose partial frame is not completed in "
	    "time (idle time between frames and time parked by backpressure "
	    "do not count)"),
	ROW("max-subs", CONF_T_U32, max_subs, 1, IPCHUB_MAX_SUBS_MAX, CONF_LIVE,
	    "N", "subscriptions, watches and monitor taps per connection "
	    "(applies to new ones)"),
	ROW("sub-queue", CONF_T_U32, sub_queue, IPCHUB_SUB_QUEUE_MIN,
	    IPCHUB_SUB_QUEUE_MAX, CONF_LIVE, "N",
	    "publications queued per subscription behind its connection's "
	    "high-water mark before its policy applies"),
	ROW("max-handshakes", CONF_T_U32, max_handshakes,
	    IPCHUB_MAX_HANDSHAKES_MIN, CONF_MAX_CONNS_MAX, CONF_RESTART, "N",
	    "connections allowed in the handshake at once; beyond, the oldest "
	    "is dropped"),
	ROW("policy", CONF_T_STR, policy_path, 0, 0, CONF_RESTART, "FILE",
	    "names reserved to keys and/or uids (SECURITY.md); its contents "
	    "are reloaded on SIGHUP"),
	ROW("require-auth", CONF_T_BOOL, require_auth, 0, 1, CONF_RESTART, "",
	    "refuse connections that do not authenticate with a key listed in "
	    "the policy"),
	ROW("log-level", CONF_T_LOG_LEVEL, log_level, LOG_LVL_ERROR,
	    LOG_LVL_DEBUG, CONF_LIVE, "LEVEL", "error, warn, info or debug"),
	ROW("log-target", CONF_T_LOG_TARGET, log_target, LOG_TARGET_AUTO,
	    LOG_TARGET_JOURNAL, CONF_LIVE, "TARGET",
	    "auto, stderr, syslog or journal"),
};

const size_t conf_nopts = sizeof(conf_opts) / sizeof(conf_opts[0]);

void conf_defaults(struct broker_conf *c)
{
	memset(c, 0, sizeof(*c));
	c->socket_path = NULL;
	c->socket_mode = CONF_SOCKET_MODE_DEFAULT;
	c->max_frame = IPCHUB_MAX_FRAME_DEFAULT;
	c->queue_hwm = IPCHUB_QUEUE_HWM_DEFAULT;
	c->max_names = IPCHUB_MAX_NAMES_DEFAULT;
	c->max_pending = IPCHUB_MAX_PENDING_DEFAULT;
	c->max_conns = IPCHUB_MAX_CONNS_DEFAULT;
	c->max_fds_per_conn = IPCHUB_MAX_FDS_PER_CONN;
	c->max_fds_total = IPCHUB_MAX_FDS_TOTAL;
	c->handshake_timeout_ms = IPCHUB_HANDSHAKE_TIMEOUT_MS_DEFAULT;
	c->log_level = LOG_LVL_INFO;
	c->log_target = LOG_TARGET_AUTO;
	c->listen_fd = -1;
	c->max_handshakes = IPCHUB_MAX_HANDSHAKES_DEFAULT;
	c->frame_timeout_ms = IPCHUB_FRAME_TIMEOUT_MS_DEFAULT;
	c->max_subs = IPCHUB_MAX_SUBS_DEFAULT;
	c->sub_queue = IPCHUB_SUB_QUEUE_DEFAULT;
}

/* Field accessors: the table's offsets are only dereferenced here. */
static const char **str_field(struct broker_conf *c, const struct conf_opt *o)
{
	return (const char **)(void *)((char *)c + o->off);
}

static const char *str_get(const struct broker_conf *c,
			   const struct conf_opt *o)
{
	return *(const char *const *)(const void *)((const char *)c + o->off);
}

static uint64_t num_get(const struct broker_conf *c, const struct conf_opt *o)
{
	const void *p = (const char *)c + o->off;

	switch (o->type) {
	case CONF_T_SIZE:
	case CONF_T_U32:
		return *(const uint32_t *)p;
	case CONF_T_MODE:
		return *(const unsigned *)p;
	case CONF_T_BOOL:
		return *(const bool *)p;
	case CONF_T_LOG_LEVEL:
	case CONF_T_LOG_TARGET:
		return (uint64_t)(int64_t)*(const int *)p;
	case CONF_T_STR:
		break;
	}
	return 0;
}

static void num_put(struct broker_conf *c, const struct conf_opt *o,
		    uint64_t v)
{
	void *p = (char *)c + o->off;

	switch (o->type) {
	case CONF_T_SIZE:
	case CONF_T_U32:
		*(uint32_t *)p = (uint32_t)v;
		break;
	case CONF_T_MODE:
		*(unsigned *)p = (unsigned)v;
		break;
	case CONF_T_BOOL:
		*(bool *)p = v != 0;
		break;
	case CONF_T_LOG_LEVEL:
	case CONF_T_LOG_TARGET:
		*(int *)p = (int)(int64_t)v;
		break;
	case CONF_T_STR:
		break;
	}
}

void conf_clear(struct broker_conf *c)
{
	for (size_t i = 0; i < conf_nopts; i++) {
		const char **s;

		if (conf_opts[i].type != CONF_T_STR)
			continue;
		s = str_field(c, &conf_opts[i]);
		free((void *)*s);
		*s = NULL;
	}
}

int conf_copy(struct broker_conf *dst, const struct broker_conf *src)
{
	struct broker_conf t = *src;

	for (size_t i = 0; i < conf_nopts; i++) {
		const char *s;
		char *d;

		if (conf_opts[i].type != CONF_T_STR)
			continue;
		*str_field(&t, &conf_opts[i]) = NULL;
		s = str_get(src, &conf_opts[i]);
		if (!s)
			continue;
		d = strdup(s);
		if (!d) {
			conf_clear(&t);
			return -ENOMEM;
		}
		*str_field(&t, &conf_opts[i]) = d;
	}
	*dst = t;
	return 0;
}

const char *conf_key(const struct conf_opt *o, char *buf, size_t cap)
{
	size_t i;

	for (i = 0; o->name[i] && i + 1 < cap; i++)
		buf[i] = o->name[i] == '-' ? '_' : o->name[i];
	if (cap)
		buf[i] = '\0';
	return buf;
}

const struct conf_opt *conf_find_key(const char *key)
{
	for (size_t i = 0; i < conf_nopts; i++) {
		const char *n = conf_opts[i].name, *k = key;

		while (*n && *k && (*n == '-' ? *k == '_' : *k == *n)) {
			n++;
			k++;
		}
		if (!*n && !*k)
			return &conf_opts[i];
	}
	return NULL;
}

static int bad(char *err, size_t cap, int r, const char *val,
	       const char *expect)
{
	snprintf(err, cap, "invalid value \"%s\" (%s)", val,
		 r == -ERANGE ? "out of range" : expect);
	return r;
}

int conf_set(struct broker_conf *c, const struct conf_opt *o,
	     const char *val, char *err, size_t cap)
{
	uint32_t u = 0;
	unsigned m = 0;
	bool bv = true;
	int r = 0, lv;
	char *s;

	if (!val && o->type != CONF_T_BOOL) {
		snprintf(err, cap, "a value is required");
		return -EINVAL;
	}
	switch (o->type) {
	case CONF_T_STR:
		if (!*val) {
			snprintf(err, cap, "empty value");
			return -EINVAL;
		}
		if (strlen(val) > CONF_STR_MAX) {
			snprintf(err, cap, "value longer than %u bytes",
				 CONF_STR_MAX);
			return -ERANGE;
		}
		s = strdup(val);
		if (!s) {
			snprintf(err, cap, "out of memory");
			return -ENOMEM;
		}
		free((void *)*str_field(c, o));
		*str_field(c, o) = s;
		return 0;
	case CONF_T_SIZE:
		r = conf_parse_size(val, &u);
		if (r < 0)
			return bad(err, cap, r, val,
				   "a byte count, e.g. 65536, 64K, 16M");
		num_put(c, o, u);
		return 0;
	case CONF_T_U32:
		r = conf_parse_u32(val, &u);
		if (r < 0)
			return bad(err, cap, r, val, "not a number");
		num_put(c, o, u);
		return 0;
	case CONF_T_MODE:
		r = conf_parse_mode(val, &m);
		if (r < 0)
			return bad(err, cap, r, val, "an octal mode, e.g. 0660");
		num_put(c, o, m);
		return 0;
	case CONF_T_BOOL:
		if (val && conf_parse_bool(val, &bv) < 0)
			return bad(err, cap, -EINVAL, val, "true or false");
		num_put(c, o, bv);
		return 0;
	case CONF_T_LOG_LEVEL:
		lv = log_level_parse(val);
		if (lv < 0)
			return bad(err, cap, -EINVAL, val,
				   "error, warn, info or debug");
		num_put(c, o, (uint64_t)lv);
		return 0;
	case CONF_T_LOG_TARGET:
		lv = log_target_parse(val);
		if (lv < 0)
			return bad(err, cap, -EINVAL, val,
				   "auto, stderr, syslog or journal");
		num_put(c, o, (uint64_t)lv);
		return 0;
	}
	snprintf(err, cap, "unsupported setting type");
	return -EINVAL;
}

void conf_format(const struct broker_conf *c, const struct conf_opt *o,
		 char *buf, size_t cap)
{
	uint64_t v = num_get(c, o);
	const char *s;

	switch (o->type) {
	case CONF_T_STR:
		s = str_get(c, o);
		snprintf(buf, cap, "%s", s ? s : "");
		return;
	case CONF_T_MODE:
		snprintf(buf, cap, "%04o", (unsigned)v);
		return;
	case CONF_T_BOOL:
		snprintf(buf, cap, "%s", v ? "true" : "false");
		return;
	case CONF_T_LOG_LEVEL:
		snprintf(buf, cap, "%s", log_level_name((int)v));
		return;
	case CONF_T_LOG_TARGET:
		snprintf(buf, cap, "%s", log_target_name((int)v));
		return;
	case CONF_T_SIZE:
	case CONF_T_U32:
		snprintf(buf, cap, "%llu", (unsigned long long)v);
		return;
	}
	snprintf(buf, cap, "?");
}

bool conf_differs(const struct broker_conf *a, const struct broker_conf *b,
		  const struct conf_opt *o)
{
	const char *x, *y;

	if (o->type != CONF_T_STR)
		return num_get(a, o) != num_get(b, o);
	x = str_get(a, o);
	y = str_get(b, o);
	if (!x || !y)
		return x != y;
	return strcmp(x, y) != 0;
}

int conf_assign(struct broker_conf *dst, const struct broker_conf *src,
		const struct conf_opt *o)
{
	const char *s;
	char *d = NULL;

	if (o->type != CONF_T_STR) {
		num_put(dst, o, num_get(src, o));
		return 0;
	}
	s = str_get(src, o);
	if (s && !(d = strdup(s)))
		return -ENOMEM;
	free((void *)*str_field(dst, o));
	*str_field(dst, o) = d;
	return 0;
}

int conf_check(const struct broker_conf *c, const struct conf_opt *o,
	       char *err, size_t cap)
{
	char key[64];
	uint64_t v;
	const char *s;

	if (o->type == CONF_T_STR) {
		s = str_get(c, o);
		if (s && !*s) {
			snprintf(err, cap, "%s (--%s): empty value",
				 conf_key(o, key, sizeof(key)), o->name);
			return -EINVAL;
		}
		return 0;
	}
	if (o->type == CONF_T_BOOL)
		return 0;
	v = num_get(c, o);
	if (v >= o->min && v <= o->max)
		return 0;
	if (o->type == CONF_T_MODE)
		snprintf(err, cap, "%s (--%s) %o out of range (allowed 0..0777)",
			 conf_key(o, key, sizeof(key)), o->name, (unsigned)v);
	else
		snprintf(err, cap,
			 "%s (--%s) %lld out of range (allowed %llu..%llu)",
			 conf_key(o, key, sizeof(key)), o->name, (long long)v,
			 (unsigned long long)o->min, (unsigned long long)o->max);
	return -EINVAL;
}

int conf_validate(const struct broker_conf *c, char *err, size_t cap)
{
	for (size_t i = 0; i < conf_nopts; i++)
		if (conf_check(c, &conf_opts[i], err, cap) < 0)
			return -EINVAL;
	if (c->policy_path && c->policy_path[0] == '\0') {
		snprintf(err, cap, "policy (--policy): empty path");
		return -EINVAL;
	}
	if (c->require_auth && !c->policy_path) {
		snprintf(err, cap,
			 "--require-auth needs --policy FILE (require_auth needs policy): "
			 "the keys that may authenticate");
		return -EINVAL;
	}
	return 0;
}

/* Digits only, at least one, value accumulated in 64 bits with an
 * overflow check at each step. Returns the end pointer or NULL. */
static const char *parse_digits(const char *s, uint64_t *v, int *overflow)
{
	uint64_t acc = 0;
	const char *p = s;

	*overflow = 0;
	while (*p >= '0' && *p <= '9') {
		if (acc > (UINT64_MAX - 9) / 10)
			*overflow = 1;
		else
			acc = acc * 10 + (uint64_t)(*p - '0');
		p++;
	}
	if (p == s)
		return NULL;
	*v = acc;
	return p;
}

int conf_parse_u32(const char *s, uint32_t *out)
{
	uint64_t v;
	int ovf;
	const char *end = parse_digits(s, &v, &ovf);

	if (!end || *end)
		return -EINVAL;
	if (ovf || v > UINT32_MAX)
		return -ERANGE;
	*out = (uint32_t)v;
	return 0;
}

int conf_parse_size(const char *s, uint32_t *out)
{
	uint64_t v, mult = 1;
	int ovf;
	const char *end = parse_digits(s, &v, &ovf);

	if (!end)
		return -EINVAL;
	switch (tolower((unsigned char)*end)) {
	case '\0':
		break;
	case 'k':
		mult = 1024;
		end++;
		break;
	case 'm':
		mult = 1024 * 1024;
		end++;
		break;
	case 'g':
		mult = 1024 * 1024 * 1024;
		end++;
		break;
	default:
		return -EINVAL;
	}
	if (mult > 1) {
		/* Accept "16M", "16MB", "16MiB". */
		if (tolower((unsigned char)end[0]) == 'i' &&
		    tolower((unsigned char)end[1]) == 'b')
			end += 2;
		else if (tolower((unsigned char)end[0]) == 'b')
			end++;
	}
	if (*end)
		return -EINVAL;
	if (ovf || v > UINT32_MAX / mult)
		return -ERANGE;
	*out = (uint32_t)(v * mult);
	return 0;
}

int conf_parse_mode(const char *s, unsigned *out)
{
	unsigned v = 0;
	const char *p = s;

	if (!*p)
		return -EINVAL;
	for (; *p; p++) {
		if (*p < '0' || *p > '7')
			return -EINVAL;
		v = v * 8 + (unsigned)(*p - '0');
		if (v > 07777)
			return -ERANGE;
	}
	if (v > 0777)
		return -ERANGE;
	*out = v;
	return 0;
}

int conf_parse_bool(const char *s, bool *out)
{
	static const char *const yes[] = {"true", "yes", "on", "1"};
	static const char *const no[] = {"false", "no", "off", "0"};

	for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
		if (strcmp(s, yes[i]) == 0) {
			*out = true;
			return 0;
		}
		if (strcmp(s, no[i]) == 0) {
			*out = false;
			return 0;
		}
	}
	return -EINVAL;
}
