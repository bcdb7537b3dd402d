/* SPDX-License-Identifier: MIT */
/*
 * One-shot libuv timers on the heap, for objects that may be freed before a close callback
 * could run (a waiting lock, a shrink, a region's flush interval): timer_free closes the
 * handle and the memory goes in the close callback, so the owner can be freed at once.
 */
#ifndef MMAPD_DAEMON_TIMER_H
#define MMAPD_DAEMON_TIMER_H

#include <stdint.h>
#include <uv.h>

/*
 * Makes a timer on loop that calls cb(data) once after timeout_ms. Returns the handle, or
 * NULL on ENOMEM (cb is then never called).
 */
uv_timer_t *timer_start(uv_loop_t *loop, uint64_t timeout_ms, void (*cb)(void *data), void *data);

/* Stops and frees t; the callback does not run afterwards. Accepts NULL. */
void timer_free(uv_timer_t *t);

#endif
