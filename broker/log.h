/*
 * log.h - leveled logging of the broker to stderr.
 *
 * Model: a struct logger is a plain value owned by the broker (no global
 * state): a threshold level and the stream to write to. Each call writes
 * exactly one line, "2024-05-01T12:00:00.123Z ipchubd[pid] LEVEL text",
 * with one fprintf so concurrent writers do not interleave inside a line.
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

struct logger {
	int level;  /* enum log_level threshold */
	FILE *out;  /* borrowed; stderr in the daemon */
};

/* Initialize lg to write messages up to level to out (NULL = stderr). */
void log_init(struct logger *lg, int level, FILE *out);

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
