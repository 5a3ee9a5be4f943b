/*
 * reload.c - broker_reload(): apply a new configuration to a running
 * broker (SIGHUP).
 *
 * Model: two phases. Prepare builds the next configuration as a copy of
 * the running one in which every CONF_LIVE setting is taken from the new
 * configuration; CONF_RESTART settings keep their running value and a
 * warning names each one that changed. Everything that can fail happens
 * in prepare, so a failure leaves the broker exactly as it was. Commit
 * swaps the configuration in and applies the side effects (the logger);
 * the other live settings are read from b->conf at the moment they are
 * enforced (queue_hwm on every queue check, max_conns at accept,
 * max_names at REGISTER, max_pending at REQUEST), so they take effect for
 * the next operation, and nothing already granted is revoked (a
 * connection that holds more names than a lowered max_names keeps them).
 *
 * Subsystems that load their own files on reload (the access policy of
 * the authentication work) add a prepare step that loads into a staging
 * object and a commit step that swaps it in, in the two marked places.
 */
#include "reload.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "auth.h"
#include "log.h"

int broker_reload(struct broker *b, const struct broker_conf *nc, char *err,
		  size_t cap)
{
	struct broker_conf next;
	char key[64], was[128], now[128];
	unsigned changed = 0, kept = 0;
	int r;

	r = conf_validate(nc, err, cap);
	if (r < 0)
		return r;
	if (conf_copy(&next, &b->conf) < 0)
		goto nomem;
	for (size_t i = 0; i < conf_nopts; i++) {
		const struct conf_opt *o = &conf_opts[i];

		if (!conf_differs(&b->conf, nc, o))
			continue;
		conf_key(o, key, sizeof(key));
		conf_format(&b->conf, o, was, sizeof(was));
		conf_format(nc, o, now, sizeof(now));
		if (o->apply == CONF_RESTART) {
			log_warn(&b->log,
				 "reload: %s changed (%s -> %s) but only takes effect "
				 "after a restart; keeping %s",
				 key, was[0] ? was : "(default)",
				 now[0] ? now : "(default)", was[0] ? was : "(default)");
			kept++;
			continue;
		}
		if (conf_assign(&next, nc, o) < 0) {
			conf_clear(&next);
			goto nomem;
		}
		log_info(&b->log, "reload: %s: %s -> %s", key, was, now);
		changed++;
	}
	/* The access policy (same path: it is restart-only) is re-read and
	 * applied here: a policy that fails to load fails the whole reload
	 * before anything changed; once it loaded, names it no longer allows
	 * are revoked, and the configuration commit below cannot fail. */
	r = auth_reload(b, err, cap);
	if (r < 0) {
		conf_clear(&next);
		return r;
	}

	/* Commit: nothing below can fail. */
	conf_clear(&b->conf);
	b->conf = next;
	b->log.level = b->conf.log_level;
	log_set_target(&b->log, b->conf.log_target);
	/* Commit steps of other subsystems go here. */
	log_info(&b->log,
		 "configuration reloaded: %u setting(s) changed, %u need a restart",
		 changed, kept);
	return 0;

nomem:
	snprintf(err, cap, "out of memory");
	return -ENOMEM;
}
