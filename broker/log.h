/*
 * log.h - leveled logging of the broker to stderr, syslog or the journal.
 *
 * Model: a struct logger is a plain value owned by the broker: a threshold
 * level, a target and the stream used by the stderr target. Each call
 * writes exactly one record. On stderr that is one line,
 * "2024-05-01T12:00:00.123Z ipchubd[pid] LEVEL text", written with one
 * fputs so concurrent writers do not interleave inside a line; to syslog
 * (facility daemon, ident "ipchubd") and the journal (sd_journal_send,
 * SYSLOG_IDENTIFIER=ipchubd) it is one record at the matching priority,
 * with no timestamp of ours. The syslog connection is process state
 * (openlog); log_set_target() opens it when syslog is first chosen.
 * Levels are ordered error < warn < info < debug; a message is written when
 * its level is at or below the threshold. Policy (enforced by callers): one
 * info line per connection event, nothing per message above debug, every
 * rejection names the peer and the reason.
 */
#ifndef IPCHUB_BROKER_LOG_H
#define IPCHUB_BROKER_LOG_H

#include <stdio.h>

enum log_level {
	LOG_LVL_ERROR = 0,
	LOG_LVL_WARN = 1,
	LOG_LVL_INFO = 2,
	LOG_LVL_DEBUG = 3
};

/* Where records go. AUTO resolves at log_set_target() time: JOURNAL when
 * stderr is the journal stream ($JOURNAL_STREAM names stderr's device and
 * inode, as systemd sets it), else STDERR. */
enum log_target {
	LOG_TARGET_AUTO = 0,
	LOG_TARGET_STDERR = 1,
	LOG_TARGET_SYSLOG = 2,
	LOG_TARGET_JOURNAL = 3
};

struct logger {
	int level;  /* enum log_level threshold */
	int target; /* enum log_target, never AUTO once set */
	FILE *out;  /* borrowed; stderr in the daemon */
};

/* Initialize lg to write messages up to level to out (NULL = stderr). */
void log_init(struct logger *lg, int level, FILE *out);

/* Switch lg to target (AUTO is resolved here). */
void log_set_target(struct logger *lg, int target);

/* Parse "auto", "stderr", "syslog" or "journal". Returns it, or -1. */
int log_target_parse(const char *s);
const char *log_target_name(int target);

/* Parse "error", "warn", "info" or "debug". Returns the level, or -1. */
int log_level_parse(const char *s);
const char *log_level_name(int level);

static inline int log_enabled(const struct logger *lg, int level)
{
	return lg && level <= lg->level;
}

/* Write one line at level (no trailing newline in fmt). */
void log_write(const struct logger *lg, int level, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* The macros test the level before evaluating the arguments, so debug
 * lines on the hot path cost one comparison when disabled. */
#define log_error(lg, ...) \
	do { if (log_enabled((lg), LOG_LVL_ERROR)) log_write((lg), LOG_LVL_ERROR, __VA_ARGS__); } while (0)
#define log_warn(lg, ...) \
	do { if (log_enabled((lg), LOG_LVL_WARN)) log_write((lg), LOG_LVL_WARN, __VA_ARGS__); } while (0)
#define log_info(lg, ...) \
	do { if (log_enabled((lg), LOG_LVL_INFO)) log_write((lg), LOG_LVL_INFO, __VA_ARGS__); } while (0)
#define log_debug(lg, ...) \
	do { if (log_enabled((lg), LOG_LVL_DEBUG)) log_write((lg), LOG_LVL_DEBUG, __VA_ARGS__); } while (0)

#endif
