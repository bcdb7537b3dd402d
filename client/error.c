/* SPDX-License-Identifier: MIT */
/*
 * Error reporting of libmmapd. Every call returns a negative errno value on failure; this file
 * names those values (mmapd_strerror) and keeps, per thread, a sentence about the last failure
 * (mmapd_last_message): the daemon's own message when the daemon refused, ours otherwise.
 * The sentence is malloc'd to its real length, since a daemon message has no fixed bound, and a
 * pthread key destructor frees it when the thread exits.
 */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

static pthread_key_t error_key;
static pthread_once_t error_once = PTHREAD_ONCE_INIT;
static bool error_key_ok;

/*
 * The errno of the thread's last failure. A plain thread-local int needs no destructor; it
 * lets mmapd_last_message() still say something useful when the sentence could not be stored.
 */
static __thread int error_last;

static void error_key_create(void)
{
	error_key_ok = pthread_key_create(&error_key, free) == 0;
}

/*
 * When libmmapd.so is dlclose()d, a key whose destructor points into the unloaded code would
 * crash the next thread to exit; deleting the key prevents that (other threads' messages leak,
 * which is the lesser harm).
 */
__attribute__((destructor)) static void error_unload(void)
{
	if (!error_key_ok)
		return;
	error_key_ok = false;
	free(pthread_getspecific(error_key));
	pthread_key_delete(error_key);
}

/* error_set() and mmapd_set_last_message(), their arguments in ap. */
static int error_setv(int err, const char *fmt, va_list ap)
{
	char *old, *msg;

	error_last = err;
	pthread_once(&error_once, error_key_create);
	if (!error_key_ok)
		return err;

	if (!fmt || vasprintf(&msg, fmt, ap) < 0)
		msg = NULL;

	old = pthread_getspecific(error_key);
	if (pthread_setspecific(error_key, msg) != 0) {
		free(msg);
		return err;
	}
	free(old);
	return err;
}

int error_set(int err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	err = error_setv(err, fmt, ap);
	va_end(ap);
	return err;
}

MMAPD_EXPORT int mmapd_set_last_message(int err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	err = error_setv(err, fmt, ap);
	va_end(ap);
	return err;
}

void error_save(struct error_saved *ret_saved)
{
	pthread_once(&error_once, error_key_create);
	ret_saved->err = error_last;
	ret_saved->message = error_key_ok ? pthread_getspecific(error_key) : NULL;
	if (ret_saved->message && pthread_setspecific(error_key, NULL) != 0)
		ret_saved->message = NULL;
}

void error_restore(struct error_saved *saved)
{
	char *newer = error_key_ok ? pthread_getspecific(error_key) : NULL;

	error_last = saved->err;
	if (!error_key_ok || pthread_setspecific(error_key, saved->message) != 0) {
		free(saved->message);
		return;
	}
	free(newer);
}

MMAPD_EXPORT const char *mmapd_last_message(void)
{
	const char *msg = NULL;

	if (error_last == 0)
		return "no error";
	if (error_key_ok)
		msg = pthread_getspecific(error_key);
	return msg ? msg : mmapd_strerror(error_last);
}

MMAPD_EXPORT const char *mmapd_strerror(int err)
{
	const char *desc;

	if (err == INT_MIN)
		return "Unknown error";
	desc = strerrordesc_np(err < 0 ? -err : err);
	return desc ? desc : "Unknown error";
}
