/* SPDX-License-Identifier: MIT */
/*
 * Heap timers (see timer.h). The handle is allocated together with the callback it calls, so
 * the owner keeps only the uv_timer_t pointer.
 */
#include "timer.h"

#include <stdlib.h>

struct timer {
	uv_timer_t handle;
	void (*cb)(void *data);
	void *data;
};

static void timer_on_fire(uv_timer_t *handle)
{
	struct timer *t = (struct timer *)handle;

	t->cb(t->data);
}

static void timer_on_closed(uv_handle_t *handle)
{
	free(handle);
}

uv_timer_t *timer_start(uv_loop_t *loop, uint64_t timeout_ms, void (*cb)(void *data), void *data)
{
	struct timer *t = malloc(sizeof(*t));

	if (!t)
		return NULL;
	t->cb = cb;
	t->data = data;
	uv_timer_init(loop, &t->handle);
	uv_timer_start(&t->handle, timer_on_fire, timeout_ms, 0);
	return &t->handle;
}

void timer_free(uv_timer_t *t)
{
	if (t)
		uv_close((uv_handle_t *)t, timer_on_closed);
}
