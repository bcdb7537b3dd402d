/* SPDX-License-Identifier: MIT */
/*
 * libmmapd without an event loop: mmapd_client_dispatch_thread_start() starts a background thread
 * that delivers events, so the handler runs on that thread while the main thread does its own
 * work (here: waiting on a condition variable). The program creates (or opens) a region,
 * writes to it, asks for an asynchronous flush and waits for the MMAPD_EVENT_FLUSH_DONE that
 * the dispatch thread hands to the handler, printing every event it sees.
 *
 * Usage: thread_events [REGION]   (socket: $MMAPD_SOCKET or the default). Exit status 0 once
 * the flush is done and durable, 1 on any failure or after 5 s without it.
 */
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <time.h>
#include <mmapd.h>

/* Shared by the handler (on the dispatch thread) and main, under mu. */
struct state {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool done;
	uint64_t token;   /* of the FLUSH_DONE seen */
	int error;
};

static void on_event(struct mmapd_client *client, const struct mmapd_event *ev, void *userdata)
{
	struct state *st = userdata;

	(void)client;
	printf("event %d region %s seq %llu error %d\n", (int)ev->type,
	       ev->region ? ev->region : "-", (unsigned long long)ev->seq, ev->error);
	/* It may come before mmapd_flush_async() has returned the token to main: main compares. */
	if (ev->type == MMAPD_EVENT_FLUSH_DONE) {
		pthread_mutex_lock(&st->mu);
		st->done = true;
		st->token = ev->seq;
		st->error = ev->error;
		pthread_cond_signal(&st->cv);
		pthread_mutex_unlock(&st->mu);
	}
}

int main(int argc, char **argv)
{
	const char *name = argc > 1 ? argv[1] : "thread-events-example";
	struct mmapd_open_opts opts = MMAPD_OPEN_OPTS(
		.flags = MMAPD_OPEN_CREATE, .mode = MMAPD_MODE_RW, .size = 4096);
	struct state st = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, false, 0, 0 };
	struct mmapd_client *client;
	struct mmapd_region *region;
	struct timespec until;
	uint64_t token;
	bool ok;

	if (mmapd_connect(NULL, "thread-events", &client) < 0) {
		fprintf(stderr, "thread_events: %s\n", mmapd_last_message());
		return 1;
	}
	if (mmapd_region_open(client, name, &opts, &region) < 0)
		goto fail;
	mmapd_client_set_event_handler(client, on_event, &st);
	if (mmapd_client_dispatch_thread_start(client) < 0)
		goto fail_region;
	if (mmapd_region_write(region, 0, "hello", 5) < 0 ||
	    mmapd_flush_async(client, name, &token) < 0) {
		mmapd_client_dispatch_thread_stop(client);
		goto fail_region;
	}

	/* The main thread is free meanwhile; here it only waits. */
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += 5;
	pthread_mutex_lock(&st.mu);
	while (!st.done && pthread_cond_timedwait(&st.cv, &st.mu, &until) == 0)
		;
	ok = st.done && st.token == token && st.error == 0;
	printf("flush %s\n", !st.done ? "timed out" : st.error ? mmapd_strerror(st.error) : "done");
	pthread_mutex_unlock(&st.mu);

	/* Waits for a handler that still runs; none runs after it. */
	if (mmapd_client_dispatch_thread_stop(client) < 0)
		ok = false;
	mmapd_region_close(region);
	mmapd_disconnect(client);
	return ok ? 0 : 1;

fail_region:
	mmapd_region_close(region);
fail:
	fprintf(stderr, "thread_events: %s\n", mmapd_last_message());
	mmapd_disconnect(client);
	return 1;
}
