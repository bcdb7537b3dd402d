/* SPDX-License-Identifier: MIT */
/*
 * libmmapd in a plain poll() loop: mmapd_client_fd() becomes readable when events may wait, and
 * mmapd_client_dispatch(client, 0) delivers them without blocking. The program creates (or opens)
 * a region, writes to it, asks for an asynchronous flush and waits in poll() for the
 * MMAPD_EVENT_FLUSH_DONE that ends it, printing every event it sees.
 *
 * Usage: poll_loop [REGION]   (socket: $MMAPD_SOCKET or the default). Exit status 0 once the
 * flush is done and durable, 1 on any failure or after 5 s without it.
 */
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <mmapd.h>

struct state {
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
	}
}

int main(int argc, char **argv)
{
	const char *name = argc > 1 ? argv[1] : "poll-loop-example";
	struct mmapd_open_opts opts = MMAPD_OPEN_OPTS(
		.flags = MMAPD_OPEN_CREATE, .mode = MMAPD_MODE_RW, .size = 4096);
	struct mmapd_client *client;
	struct mmapd_region *region;
	struct state st = { 0 };
	int r, waited = 0;

	if (mmapd_connect(NULL, "poll-loop", &client) < 0) {
		fprintf(stderr, "poll_loop: %s\n", mmapd_last_message());
		return 1;
	}
	if (mmapd_region_open(client, name, &opts, &region) < 0)
		goto fail;
	mmapd_client_set_event_handler(client, on_event, &st);
	if (mmapd_region_write(region, 0, "hello", 5) < 0 ||
	    mmapd_flush_async(client, name, &st.token) < 0)
		goto fail_region;

	while (!st.done && waited < 5000) {
		struct pollfd pfd = { .fd = mmapd_client_fd(client), .events = POLLIN };

		/* A real program polls its other descriptors here too. */
		r = poll(&pfd, 1, 100);
		waited += 100;
		if (r > 0 && mmapd_client_dispatch(client, 0) < 0)
			goto fail_region;
	}
	printf("flush %s\n", !st.done ? "timed out" : st.error ? mmapd_strerror(st.error) : "done");
	mmapd_region_close(region);
	mmapd_disconnect(client);
	return st.done && st.error == 0 ? 0 : 1;

fail_region:
	mmapd_region_close(region);
fail:
	fprintf(stderr, "poll_loop: %s\n", mmapd_last_message());
	mmapd_disconnect(client);
	return 1;
}
