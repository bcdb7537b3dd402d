/* SPDX-License-Identifier: MIT */
/*
 * libmmapd in a libuv loop that never blocks on mmapd: after mmapd_connect() every call that
 * waits for the daemon is made in its start form (mmapd.h, "Start calls") and its result comes
 * as an event, read when the uv_poll_t on mmapd_client_fd() says so. The program opens (creating)
 * a region, writes to it, locks a range, grows the region, flushes a range durably, closes and
 * deletes it, each step started from the previous one's event. A repeating uv_timer_t prints
 * "tick N" every 100 ms while a step is pending, which shows the loop running while mmapd is
 * slow (or stopped). A uv_timer_t gives up after 10 s.
 *
 * Usage: uv_start [REGION [DELAY_MS]]   (socket: $MMAPD_SOCKET or the default). DELAY_MS (default
 * 0) waits before the first step. Exit status 0 once every step succeeded, 1 otherwise.
 * Build: needs libuv (pkg-config libuv), besides libmmapd.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>
#include <mmapd.h>

struct state {
	struct mmapd_client *client;
	const char *name;
	struct mmapd_region *region;
	uv_poll_t poll;
	uv_timer_t start, tick, limit;
	uint64_t token;       /* of the step under way */
	unsigned ticks;
	int status;           /* 0 once done, 1 while running or after a failure */
};

/* Ends the loop: every handle is stopped. */
static void finish(struct state *st, int status)
{
	st->status = status;
	st->token = 0;
	uv_poll_stop(&st->poll);
	uv_timer_stop(&st->start);
	uv_timer_stop(&st->tick);
	uv_timer_stop(&st->limit);
}

/* A start call's return: a refusal ends the program, else its event is awaited. */
static void started(struct state *st, const char *what, int r)
{
	if (r < 0) {
		fprintf(stderr, "uv_start: %s: %s\n", what, mmapd_last_message());
		finish(st, 1);
		return;
	}
	printf("started %s\n", what);
	fflush(stdout);
}

static void on_event(struct mmapd_client *client, const struct mmapd_event *ev, void *userdata)
{
	struct state *st = userdata;

	if (ev->seq != st->token || st->token == 0)
		return;
	if (ev->error < 0) {
		fprintf(stderr, "uv_start: event %d: %s\n", (int)ev->type,
		        ev->message ? ev->message : mmapd_strerror(ev->error));
		finish(st, 1);
		return;
	}
	switch (ev->type) {
	case MMAPD_EVENT_OPEN_DONE:
		st->region = ev->opened;   /* ours now: closed below */
		printf("opened %zu bytes\n", mmapd_region_length(st->region));
		memcpy(mmapd_region_data(st->region), "hello", 5);
		started(st, "lock", mmapd_region_lock_start(st->region, 0, 5, MMAPD_LOCK_EXCLUSIVE,
		                                            1000, &st->token));
		break;
	case MMAPD_EVENT_LOCK_DONE:
		printf("locked (lock %llu)\n", (unsigned long long)ev->lock);
		started(st, "resize", mmapd_region_resize_start(st->region, 8192, 0, &st->token));
		break;
	case MMAPD_EVENT_RESIZE_DONE:
		printf("resized to %llu bytes\n", (unsigned long long)mmapd_region_size(st->region));
		started(st, "flush", mmapd_region_flush_range_async(st->region, 0, 4096, &st->token));
		break;
	case MMAPD_EVENT_FLUSH_DONE:
		printf("flushed %llu bytes at %llu\n", (unsigned long long)ev->length,
		       (unsigned long long)ev->offset);
		/* Closing sends its request without waiting for the reply. The lock goes with the
		 * region's deletion's end: the connection still holds it, which deletion allows. */
		mmapd_region_close(st->region);
		st->region = NULL;
		started(st, "delete", mmapd_delete_start(client, st->name, &st->token));
		break;
	case MMAPD_EVENT_DELETE_DONE:
		printf("deleted\n");
		finish(st, 0);
		break;
	default:
		break;
	}
	fflush(stdout);
}

static void on_readable(uv_poll_t *handle, int status, int events)
{
	struct state *st = handle->data;

	(void)events;
	/* Never waits: timeout 0. */
	if (status < 0 || mmapd_client_dispatch(st->client, 0) < 0) {
		fprintf(stderr, "uv_start: %s\n", status < 0 ? uv_strerror(status)
		                                            : mmapd_last_message());
		finish(st, 1);
	}
}

static void on_start(uv_timer_t *timer)
{
	struct state *st = timer->data;
	struct mmapd_open_opts opts = MMAPD_OPEN_OPTS(
		.flags = MMAPD_OPEN_CREATE, .mode = MMAPD_MODE_RW, .size = 4096);

	started(st, "open", mmapd_region_open_start(st->client, st->name, &opts, &st->token));
}

static void on_tick(uv_timer_t *timer)
{
	struct state *st = timer->data;

	if (st->token == 0)
		return;
	printf("tick %u\n", ++st->ticks);
	fflush(stdout);
}

static void on_limit(uv_timer_t *timer)
{
	struct state *st = timer->data;

	fprintf(stderr, "uv_start: gave up after 10 s\n");
	finish(st, 1);
}

int main(int argc, char **argv)
{
	struct state st = { .name = argc > 1 ? argv[1] : "uv-start-example", .status = 1 };
	uint64_t delay = argc > 2 ? strtoull(argv[2], NULL, 10) : 0;
	uv_loop_t *loop = uv_default_loop();

	/* Connecting is the one call made before the loop runs: it waits for the hello. */
	if (mmapd_connect(NULL, "uv-start", &st.client) < 0) {
		fprintf(stderr, "uv_start: %s\n", mmapd_last_message());
		return 1;
	}
	mmapd_client_set_event_handler(st.client, on_event, &st);
	printf("connected\n");
	fflush(stdout);

	uv_poll_init(loop, &st.poll, mmapd_client_fd(st.client));
	uv_timer_init(loop, &st.start);
	uv_timer_init(loop, &st.tick);
	uv_timer_init(loop, &st.limit);
	st.poll.data = st.start.data = st.tick.data = st.limit.data = &st;
	uv_poll_start(&st.poll, UV_READABLE, on_readable);
	uv_timer_start(&st.start, on_start, delay, 0);
	uv_timer_start(&st.tick, on_tick, 100, 100);
	uv_timer_start(&st.limit, on_limit, delay + 10000, 0);
	uv_run(loop, UV_RUN_DEFAULT);

	uv_close((uv_handle_t *)&st.poll, NULL);
	uv_close((uv_handle_t *)&st.start, NULL);
	uv_close((uv_handle_t *)&st.tick, NULL);
	uv_close((uv_handle_t *)&st.limit, NULL);
	uv_run(loop, UV_RUN_DEFAULT);
	uv_loop_close(loop);
	mmapd_region_close(st.region);
	mmapd_disconnect(st.client);
	printf("%s\n", st.status == 0 ? "done" : "failed");
	return st.status;
}
