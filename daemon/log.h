/* SPDX-License-Identifier: MIT */
/*
 * The daemon's log: one line per event on stderr, filtered by level. Under systemd
 * ($JOURNAL_STREAM names our stderr) each line starts with a "<N>" syslog priority that the
 * journal understands; elsewhere with a local timestamp and the level's name. Lines are
 * written with one write(2) each, so thread-pool code could log too, though it does not.
 */
#ifndef MMAPD_DAEMON_LOG_H
#define MMAPD_DAEMON_LOG_H

enum log_level {
	LOG_LEVEL_ERROR = 0,
	LOG_LEVEL_WARN = 1,
	LOG_LEVEL_INFO = 2,
	LOG_LEVEL_DEBUG = 3,
};

/* Sets the threshold and decides the line format (journal or plain) from the environment. */
void log_init(enum log_level level);
void log_set_level(enum log_level level);
/* Returns 1 when messages of this level are written. */
int log_enabled(enum log_level level);

/* Parses "error", "warn", "info" or "debug". Returns the level, or -EINVAL. */
int log_level_parse(const char *s);

void log_write(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_error(...) log_write(LOG_LEVEL_ERROR, __VA_ARGS__)
#define log_warn(...)  log_write(LOG_LEVEL_WARN, __VA_ARGS__)
#define log_info(...)  log_write(LOG_LEVEL_INFO, __VA_ARGS__)
#define log_debug(...) \
	do { \
		if (log_enabled(LOG_LEVEL_DEBUG)) \
			log_write(LOG_LEVEL_DEBUG, __VA_ARGS__); \
	} while (0)

#endif
