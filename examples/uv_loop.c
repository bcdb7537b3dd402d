/* SPDX-License-Identifier: MIT */
/*
 * libmmapd in a libuv loop: one uv_poll_t watches mmapd_client_fd() (which is not the socket, so it
 * never competes with libmmapd for it) and calls mmapd_client_dispatch(client, 0) when it is
 * readable. As examples/poll_loop.c, the program writes to a region, asks for an asynchronous
 * flush and stops the loop on its MMAPD_EVENT_FLUSH_DONE; a uv_timer_t gives up after 5 s.
 *
 * Usage: uv_loop [REGION]   (socket: $MMAPD_SOCKET or the default). Exit status 0 once the
 * flush is done and durable, 1 otherwise.
 */
#include <stdbool.h>
#include <stdio.h>
#include <uv.h>
#include <mmapd.h>

struct state {
	struct mmapd_client *client;
	uv_poll_t poll;
	uv_timer_t timer;
	uint64_t token;
	bool done;
	int error;
};

static void on_event(struct mmapd_client *client, const struct mmapd_event *ev, void *userdata)
{
	struct state *st = userdata;

	(void)client;
	printf("event %d region %s seq %llu error %d\n", (int)ev->type,
	       ev->region ? ev->region : "-", (unsigned long long)ev->seq, ev->error);
	if (ev->type == MMAPD_EVENT_FLUSH_DONE && ev->seq == st->token) {
		st->done = true;
		st->error = ev->error;
		uv_poll_stop(&st->poll);
		uv_timer_stop(&st->timer);
	}
}

static void on_readable(uv_poll_t *handle, int status, int events)
{
	struct state *st = handle->data;

	(void)events;
	if (status < 0 || mmapd_client_dispatch(st->client, 0) < 0) {
		uv_poll_stop(&st->poll);
		uv_timer_stop(&st->timer);
	}
}

static void on_timeout(uv_timer_t *timer)
{
	struct state *st = timer->data;

	uv_poll_stop(&st->poll);
}

int main(int argc, char **argv)
{
	const char *name = argc > 1 ? argv[1] : "uv-loop-example";
	struct mmapd_open_opts opts = MMAPD_OPEN_OPTS(
		.flags = MMAPD_OPEN_CREATE, .mode = MMAPD_MODE_RW, .size = 4096);
	struct mmapd_region *region = NULL;
	struct state st = { 0 };
	uv_loop_t *loop = uv_default_loop();

	if (mmapd_connect(NULL, "uv-loop", &st.client) < 0) {
		fprintf(stderr, "uv_loop: %s\n", mmapd_last_message());
		return 1;
	}
	mmapd_client_set_event_handler(st.client, on_event, &st);
	if (mmapd_region_open(st.client, name, &opts, &region) < 0 ||
	    mmapd_region_write(region, 0, "hello", 5) < 0 ||
	    mmapd_flush_async(st.client, name, &st.token) < 0) {
		fprintf(stderr, "uv_loop: %s\n", mmapd_last_message());
		mmapd_region_close(region);
		mmapd_disconnect(st.client);
		return 1;
	}
	uv_poll_init(loop, &st.poll, mmapd_client_fd(st.client));
	st.poll.data = &st;
	uv_poll_start(&st.poll, UV_READABLE, on_readable);
	uv_timer_init(loop, &st.timer);
	st.timer.data = &st;
	uv_timer_start(&st.timer, on_timeout, 5000, 0);
	uv_run(loop, UV_RUN_DEFAULT);

	uv_close((uv_handle_t *)&st.poll, NULL);
	uv_close((uv_handle_t *)&st.timer, NULL);
	uv_run(loop, UV_RUN_DEFAULT);
	uv_loop_close(loop);
	printf("flush %s\n", !st.done ? "timed out" : st.error ? mmapd_strerror(st.error) : "done");
	mmapd_region_close(region);
	mmapd_disconnect(st.client);
	return st.done && st.error == 0 ? 0 : 1;
}
