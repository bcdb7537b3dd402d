/* SPDX-License-Identifier: MIT */
/*
 * Logging for mmapd (see log.h). The format is chosen once at start: systemd sets
 * $JOURNAL_STREAM to "<dev>:<ino>" of the stream it connected to our stderr, and only when
 * stderr still is that stream do we switch to "<N>" priority prefixes (the journal adds its
 * own timestamps). A line that does not fit the buffer is cut, never split.
 */
#include "log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "enumname.h"

#define LOG_LINE_MAX 2048

static enum log_level log_threshold = LOG_LEVEL_INFO;
static int log_journal;

static const char *const log_names[] = { "error", "warn", "info", "debug" };
/* syslog priorities: LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG. */
static const int log_priorities[] = { 3, 4, 6, 7 };

/* Returns 1 if $JOURNAL_STREAM names the file our stderr is connected to. */
static int log_stderr_is_journal(void)
{
	const char *env = getenv("JOURNAL_STREAM");
	unsigned long long dev, ino;
	struct stat st;

	if (!env || sscanf(env, "%llu:%llu", &dev, &ino) != 2)
		return 0;
	if (fstat(STDERR_FILENO, &st) < 0)
		return 0;
	return (unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino;
}

void log_init(enum log_level level)
{
	log_threshold = level;
	log_journal = log_stderr_is_journal();
}

void log_set_level(enum log_level level)
{
	log_threshold = level;
}

int log_enabled(enum log_level level)
{
	return level <= log_threshold;
}

int log_level_parse(const char *s)
{
	if (strcmp(s, "warning") == 0)
		return LOG_LEVEL_WARN;
	return enumname_parse(log_names, ENUMNAME_COUNT(log_names), s);
}

void log_write(enum log_level level, const char *fmt, ...)
{
	char line[LOG_LINE_MAX];
	size_t n = 0;
	va_list ap;
	int r;
	int saved_errno = errno;

	if (!log_enabled(level))
		return;

	if (log_journal) {
		r = snprintf(line, sizeof(line), "<%d>", log_priorities[level]);
	} else {
		struct timespec ts;
		struct tm tm;

		clock_gettime(CLOCK_REALTIME, &ts);
		localtime_r(&ts.tv_sec, &tm);
		n = strftime(line, sizeof(line), "%Y-%m-%d %H:%M:%S", &tm);
		r = snprintf(line + n, sizeof(line) - n, ".%03ld mmapd[%ld] %s: ",
		             ts.tv_nsec / 1000000, (long)getpid(), log_names[level]);
	}
	if (r > 0)
		n += (size_t)r;
	if (n >= sizeof(line) - 1)
		n = sizeof(line) - 2;

	va_start(ap, fmt);
	r = vsnprintf(line + n, sizeof(line) - n - 1, fmt, ap);
	va_end(ap);
	if (r > 0)
		n += (size_t)r < sizeof(line) - n - 1 ? (size_t)r : sizeof(line) - n - 2;
	line[n++] = '\n';

	/* One write per line: lines of concurrent writers never interleave. */
	while (write(STDERR_FILENO, line, n) < 0 && errno == EINTR)
		;
	errno = saved_errno;
}
