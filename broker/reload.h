/*
 * reload.h - apply a new configuration to a running broker (SIGHUP); see
 * reload.c for which settings change live and which need a restart.
 */
#ifndef IPCHUB_BROKER_RELOAD_H
#define IPCHUB_BROKER_RELOAD_H

#include <stddef.h>

#include "broker.h"
#include "conf.h"

/* Validate nc (borrowed; not kept) and apply its live settings to b,
 * logging each change and each restart-only setting that changed.
 * Returns 0, or a negative errno with a one-line reason in err, in which
 * case b runs on exactly as before. */
int broker_reload(struct broker *b, const struct broker_conf *nc, char *err,
		  size_t cap);

#endif
