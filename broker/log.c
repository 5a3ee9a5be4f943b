/*
 * log.c - see log.h. Formats the whole line into a stack buffer first and
 * writes it with a single fputs (or one syslog/journal record), so a line
 * is never split by another process writing to the same stderr. Lines
 * longer than the buffer are truncated (and end in "...").
 */
#include "log.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include <systemd/sd-journal.h>

static const char *const level_names[] = {"error", "warn", "info", "debug"};
static const char *const target_names[] = {"auto", "stderr", "syslog",
					   "journal"};
/* enum log_level -> syslog priority. */
static const int level_prio[] = {LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG};

void log_init(struct logger *lg, int level, FILE *out)
{
	lg->level = level;
	lg->target = LOG_TARGET_STDERR;
	lg->out = out ? out : stderr;
}

/* systemd's documented test: $JOURNAL_STREAM is "DEV:INO" of the stream
 * it connected; stderr is the journal iff fd 2 is that very file. */
static int stderr_is_journal(void)
{
	const char *e = getenv("JOURNAL_STREAM");
	unsigned long long dev, ino;
	struct stat st;
	char tail;

	if (!e || sscanf(e, "%llu:%llu%c", &dev, &ino, &tail) != 2)
		return 0;
	if (fstat(STDERR_FILENO, &st) < 0)
		return 0;
	return (unsigned long long)st.st_dev == dev &&
	       (unsigned long long)st.st_ino == ino;
}

void log_set_target(struct logger *lg, int target)
{
	if (target == LOG_TARGET_AUTO)
		target = stderr_is_journal() ? LOG_TARGET_JOURNAL
					     : LOG_TARGET_STDERR;
	if (target == LOG_TARGET_SYSLOG && lg->target != LOG_TARGET_SYSLOG)
		openlog("ipchubd", LOG_PID | LOG_NDELAY, LOG_DAEMON);
	lg->target = target;
}

int log_target_parse(const char *s)
{
	for (int i = 0; i < (int)(sizeof(target_names) / sizeof(target_names[0])); i++)
		if (strcmp(s, target_names[i]) == 0)
			return i;
	return -1;
}

const char *log_target_name(int target)
{
	if (target < 0 || target > LOG_TARGET_JOURNAL)
		return "?";
	return target_names[target];
}

int log_level_parse(const char *s)
{
	for (int i = 0; i < (int)(sizeof(level_names) / sizeof(level_names[0])); i++)
		if (strcmp(s, level_names[i]) == 0)
			return i;
	if (strcmp(s, "warning") == 0)
		return LOG_LVL_WARN;
	return -1;
}

const char *log_level_name(int level)
{
	if (level < 0 || level > LOG_LVL_DEBUG)
		return "?";
	return level_names[level];
}

void log_write(const struct logger *lg, int level, const char *fmt, ...)
{
	char line[2048];
	struct timeval tv;
	struct tm tm;
	size_t n;
	int r;
	va_list ap;

	if (level < LOG_LVL_ERROR || level > LOG_LVL_DEBUG)
		level = LOG_LVL_ERROR;
	if (lg->target == LOG_TARGET_SYSLOG ||
	    lg->target == LOG_TARGET_JOURNAL) {
		va_start(ap, fmt);
		vsnprintf(line, sizeof(line), fmt, ap);
		va_end(ap);
		if (lg->target == LOG_TARGET_SYSLOG)
			syslog(level_prio[level], "%s", line);
		else
			sd_journal_send("MESSAGE=%s", line, "PRIORITY=%d",
					level_prio[level],
					"SYSLOG_IDENTIFIER=ipchubd", NULL);
		return;
	}
	gettimeofday(&tv, NULL);
	gmtime_r(&tv.tv_sec, &tm);
	n = strftime(line, sizeof(line), "%Y-%m-%dT%H:%M:%S", &tm);
	r = snprintf(line + n, sizeof(line) - n, ".%03ldZ ipchubd[%ld] %s: ",
		     (long)(tv.tv_usec / 1000), (long)getpid(),
		     log_level_name(level));
	if (r > 0)
		n += (size_t)r;
	if (n >= sizeof(line))
		n = sizeof(line) - 1;
	va_start(ap, fmt);
	r = vsnprintf(line + n, sizeof(line) - n, fmt, ap);
	va_end(ap);
	if (r > 0)
		n += (size_t)r;
	if (n >= sizeof(line) - 1) {
		n = sizeof(line) - 2;
		memcpy(line + n - 3, "...", 3);
	}
	line[n++] = '\n';
	line[n] = '\0';
	fputs(line, lg->out);
}
