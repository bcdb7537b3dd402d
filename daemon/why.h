/* SPDX-License-Identifier: MIT */
/*
 * The daemon's one way to carry a human reason for a failure from where it is found to where
 * it is handled (logged once, or sent to a client). A function that can fail for a reason a
 * person must read returns 0 (or a result >= 0) or -errno, like every other, and on failure
 * fills the caller's struct why, its last parameter, named ret_why: a sentence fragment
 * ("not a stream socket", "region 'x' is gone or cannot be opened") that the handler puts
 * into its own log line or reply. The text is bounded (WHY_MAX bytes with the NUL; longer
 * ones are cut), and names are cut to 64 bytes by the callers that embed them. Code that
 * handles the failure itself logs in place and takes no struct why. Library code (proto/,
 * shared/) keeps its own contract: a static sentence in a const char **ret_problem.
 */
#ifndef MMAPD_DAEMON_WHY_H
#define MMAPD_DAEMON_WHY_H

#define WHY_MAX 160

struct why {
	char text[WHY_MAX];
};

/* Sets w's text (printf format, cut to fit). w may be NULL: nothing is set. */
void why_set(struct why *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
