/*
 * conf_file.h - ipchubd's configuration file.
 *
 * Format (docs/OPERATIONS.md has the reference): one "key = value" per
 * line, keys are the long options of ipchubd with '-' spelled '_'
 * (queue_hwm = 8M); blank lines and lines starting with '#' or ';' are
 * ignored; no sections. Parsed with libinih. Every error names the file
 * and line: a line that is not "key = value", an unknown key, a key given
 * twice, a section, a bad value or one out of its range, a line longer
 * than libinih's line buffer (197 bytes in Debian's build).
 *
 * Model: conf_file_load() applies the file on top of a conf (normally the
 * defaults) through conf_set(); it works on a copy and only replaces the
 * caller's conf when the whole file is good. inih's parsing options are
 * process globals; this module sets them (multi-line values off, stop on
 * first error) and is their only user.
 */
#ifndef IPCHUB_BROKER_CONF_FILE_H
#define IPCHUB_BROKER_CONF_FILE_H

#include <stddef.h>

#include "conf.h"

/* Apply the file at path to *c, which must own its strings (conf_set).
 * Returns 0; -ENOENT when the file does not exist; -EINVAL for a bad file;
 * another negative errno when it cannot be read. On failure err holds one
 * line ("PATH:LINE: unknown key \"x\"") and *c is untouched. */
int conf_file_load(struct broker_conf *c, const char *path, char *err,
		   size_t cap);

#endif
