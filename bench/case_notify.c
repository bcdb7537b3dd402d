/* SPDX-License-Identifier: MIT */
/*
 * Case (e): how long a change takes to reach its subscribers. The writer (the benchmark) puts
 * a clock_ns() timestamp into a shared region through its read-write mapping, the zero-copy
 * way a real writer publishes data, and reports the change with mmapd_report_changed(). Each
 * subscriber is a process of its own with its own libmmapd connection and a read-only mapping
 * of the region, subscribed and blocked in poll(mmapd_client_fd()) + mmapd_client_dispatch(); its event
 * handler takes clock_ns() and reads the timestamp from the mapping, and the difference is
 * that delivery's latency (CLOCK_MONOTONIC is one clock for every process). The subscribers
 * send it back to the benchmark on their peer socketpair; the benchmark waits for all of them
 * before the next change, so changes are never coalesced.
 *
 * Subscribers come in two kinds, measured one after the other: "json" ones as above (the
 * protocol's changed events, which the daemon relays from the control page's change log after
 * the writer rings its doorbell), and "page" ones, which hold the region read-write and sleep in
 * mmapd_region_wait_changed() on the change log's futex word (no daemon on the path). A page has
 * CTLPAGE_SLOTS connections at most, so past PAGE_PROCS page subscribers are threads, as many
 * in each of PAGE_PROCS processes. A third kind, "json/req", has json subscribers and a writer
 * that reports through the changed request (a connection of its own, with no page): the path
 * every change took before the control page. A fourth kind, "poll", has subscribers like the json
 * ones (processes in a poll loop on mmapd_client_fd(), read-only grants) that subscribe with
 * mmapd_subscribe_page(): the writer rings the page's doorbell and each subscriber reads the
 * change from the log itself, so the daemon sends no frame per subscriber (nor wakes at all).
 *
 * For 1, 10, 100 and 1,000 subscribers, the line "last" is the latency of the last subscriber to
 * get each change (the time until everyone has it) and "all" takes every delivery as one sample;
 * a line "daemon" gives mmapd's CPU time (/proc/PID/schedstat) per change and subscriber, and
 * beside it the relay's (below) per change and reader: the least a process spends handing one
 * small message to each of n others on Unix sockets, one send() each, mostly the kernel's.
 * Two baselines. A raw one-way hop: the writer sends the 8-byte timestamp on a Unix socket
 * to a peer process blocked in poll() + read() (peer_start_hop()); it is one hop to one
 * process whatever the number of subscribers. And the fan-out of the same timestamp through a
 * relay process to as many reader processes as there are subscribers (fanout.h): two hops
 * and a serial fan-out, like mmapd's, so that ratio is what mmapd adds to the fan-out itself.
 * The page lines have a third, their floor: the same threads in the same processes woken by
 * one futex broadcast on a shared page, without libmmapd (futexcast.h).
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cases.h"
#include "compare.h"
#include "fanout.h"
#include "futexcast.h"
#include "peer.h"
#include "region.h"

#define REGION "bench-notify"
#define MAX_SUBS 1000
#define PAGE_PROCS 25

/* What a subscriber process knows. */
struct sub_args {
	const char *socket;
	bool page;                         /* waits on the control page, not for events */
	bool poll;                         /* events of a page subscription */
	size_t threads;                    /* page: subscriber threads in the process */
	uint64_t delay;                    /* set by the event handler */
	const volatile uint64_t *stamp;    /* the writer's timestamp, in the mapping */
	int got;
};

static void on_event(struct mmapd_client *client, const struct mmapd_event *ev, void *arg)
{
	struct sub_args *a = arg;
	uint64_t now = clock_ns();

	(void)client;
	if (ev->type == MMAPD_EVENT_CHANGED) {
		a->delay = now - *a->stamp;
		a->got = 1;
	}
}

/* A page subscriber thread (see subscriber()): sleeps on the change log until told to stop. */
struct page_thread {
	struct mmapd_region *region;
	int sock;
	uint64_t seq;
	_Atomic bool *stop;
	pthread_mutex_t *send_mu;
};

static void *page_thread(void *arg)
{
	struct page_thread *t = arg;
	const volatile uint64_t *stamp = mmapd_region_data(t->region);
	uint64_t delay;
	int r;

	while (!atomic_load(t->stop)) {
		r = mmapd_region_wait_changed(t->region, t->seq, 100, &t->seq);
		if (r == -ETIMEDOUT)
			continue;
		if (r < 0)
			_exit(1);
		delay = clock_ns() - *stamp;
		pthread_mutex_lock(t->send_mu);
		if (send(t->sock, &delay, sizeof(delay), MSG_NOSIGNAL) != sizeof(delay))
			_exit(1);
		pthread_mutex_unlock(t->send_mu);
	}
	return NULL;
}

/* The page subscribers of one process: ready byte, then their delays until our end closes. */
static void page_subscriber(int sock, struct mmapd_client *client, size_t nthreads)
{
	struct mmapd_open_opts opts = MMAPD_OPEN_OPTS(.mode = MMAPD_MODE_RW);
	static struct page_thread ts[MAX_SUBS];
	static pthread_t tids[MAX_SUBS];
	pthread_mutex_t send_mu = PTHREAD_MUTEX_INITIALIZER;
	struct pollfd pfd = { .fd = sock, .events = POLLIN };
	_Atomic bool stop = false;
	struct mmapd_region *region;
	uint64_t seq = 0;
	char ready = 'r';
	size_t i;
	int r;

	if (mmapd_region_open(client, REGION, &opts, &region) < 0) {
		fprintf(stderr, "mmapd-bench: page subscriber: %s\n", mmapd_last_message());
		_exit(1);
	}
	/* Maps the page now, and learns the last seq. */
	r = mmapd_region_wait_changed(region, 0, 0, &seq);
	if (r < 0 && r != -ETIMEDOUT) {
		fprintf(stderr, "mmapd-bench: page subscriber: %s\n", mmapd_last_message());
		_exit(1);
	}
	for (i = 0; i < nthreads; i++) {
		ts[i] = (struct page_thread){ .region = region, .sock = sock, .seq = seq,
		                              .stop = &stop, .send_mu = &send_mu };
		if (pthread_create(&tids[i], NULL, page_thread, &ts[i]) != 0)
			_exit(1);
	}
	if (send(sock, &ready, 1, MSG_NOSIGNAL) != 1)
		_exit(1);
	while (poll(&pfd, 1, -1) == 0 || !pfd.revents)
		;
	atomic_store(&stop, true);
	for (i = 0; i < nthreads; i++)
		pthread_join(tids[i], NULL);
}

/* A subscriber process: ready byte, then one 8-byte delay per change until our end closes. */
static void subscriber(int sock, const void *arg)
{
	struct sub_args a = *(const struct sub_args *)arg;
	struct mmapd_open_opts opts = MMAPD_OPEN_OPTS(.mode = MMAPD_MODE_RO);
	struct mmapd_client *client;
	struct mmapd_region *region;
	struct pollfd pfd[2];
	char ready = 'r';

	if (a.page) {
		if (mmapd_connect(a.socket, "bench-page-subscriber", &client) < 0) {
			fprintf(stderr, "mmapd-bench: subscriber: %s\n", mmapd_last_message());
			_exit(1);
		}
		page_subscriber(sock, client, a.threads);
		return;
	}
	if (mmapd_connect(a.socket, "bench-subscriber", &client) < 0 ||
	    mmapd_region_open(client, REGION, &opts, &region) < 0 ||
	    (a.poll ? mmapd_subscribe_page(client, REGION, NULL)
	            : mmapd_subscribe(client, REGION, NULL)) < 0) {
		fprintf(stderr, "mmapd-bench: subscriber: %s\n", mmapd_last_message());
		_exit(1);
	}
	a.stamp = mmapd_region_data(region);
	mmapd_client_set_event_handler(client, on_event, &a);
	if (send(sock, &ready, 1, MSG_NOSIGNAL) != 1)
		_exit(1);
	pfd[0] = (struct pollfd){ .fd = mmapd_client_fd(client), .events = POLLIN };
	pfd[1] = (struct pollfd){ .fd = sock, .events = POLLIN };
	for (;;) {
		if (poll(pfd, 2, -1) < 0)
			_exit(1);
		if (pfd[1].revents)
			return;  /* the benchmark closed our socket: done */
		if (!pfd[0].revents)
			continue;
		a.got = 0;
		if (mmapd_client_dispatch(client, 0) < 0)
			_exit(1);
		if (a.got && send(sock, &a.delay, sizeof(a.delay), MSG_NOSIGNAL) != sizeof(a.delay))
			_exit(1);
	}
}

/* The subscribers measured, and how the writer reports. */
enum notify_kind {
	KIND_PAGE,                    /* page subscribers */
	KIND_JSON,                    /* json subscribers; the writer publishes on the page */
	KIND_JSON_REQUEST,            /* json subscribers; the writer sends changed requests */
	KIND_POLL,                    /* page subscriptions in poll loops; the writer on the page */
};

static const char *const kind_names[] = { "page", "json", "json/req", "poll" };

struct notify_ctx {
	struct mmapd_client *client;
	struct mmapd_client *writer;  /* client, or request_writer for KIND_JSON_REQUEST */
	struct mmapd_client *request_writer;   /* has no page: reports by request */
	volatile uint64_t *stamp;  /* the writer's read-write mapping of the region */
	struct peer subs[MAX_SUBS];
	size_t nsubs;                 /* processes */
	size_t per_sub;               /* subscribers in each */
	struct samples all;        /* every timed delivery */
	size_t calls, warmup;
	uint64_t last;             /* mmapd side: the slowest delivery of this change */
	struct peer hop;
	uint64_t hop_delay;        /* baseline side */
	struct fanout relay;       /* the fan-out baseline */
	uint64_t relay_delays[MAX_SUBS];
	uint64_t relay_last;
	size_t relay_calls;
	struct samples relay_all;
	struct futexcast cast;     /* the page lines' floor (futexcast.h) */
	uint64_t cast_delays[MAX_SUBS];
	uint64_t cast_last;
	size_t cast_calls;
	struct samples cast_all;
};

static int recv_u64(int sock, uint64_t *ret)
{
	ssize_t n = recv(sock, ret, sizeof(*ret), MSG_WAITALL);

	return n == (ssize_t)sizeof(*ret) ? 0 : n < 0 ? -errno : -ECONNRESET;
}

static int run_mmapd(void *arg)
{
	struct notify_ctx *c = arg;
	int timed = ++c->calls > c->warmup;
	size_t i;
	int r;

	*c->stamp = clock_ns();
	r = mmapd_report_changed(c->writer, REGION, 0, sizeof(uint64_t), NULL);
	if (r < 0) {
		fprintf(stderr, "mmapd-bench: mmapd_report_changed: %s\n", mmapd_last_message());
		return r;
	}
	c->last = 0;
	for (i = 0; i < c->nsubs * c->per_sub; i++) {
		uint64_t d;

		r = recv_u64(c->subs[i / c->per_sub].sock, &d);
		if (r < 0)
			return r;
		if (d > c->last)
			c->last = d;
		if (timed)
			samples_add(&c->all, d);
	}
	return 0;
}

static int run_hop(void *arg)
{
	struct notify_ctx *c = arg;
	uint64_t now = clock_ns();

	if (send(c->hop.sock, &now, sizeof(now), MSG_NOSIGNAL) != sizeof(now))
		return -errno;
	return recv_u64(c->hop.sock, &c->hop_delay);
}

/* The slowest of a round's n delays in *ret_last; each one into all after the warm-up. */
static void take_delays(const uint64_t *delays, size_t n, bool timed, uint64_t *ret_last,
                        struct samples *all)
{
	size_t i;

	*ret_last = 0;
	for (i = 0; i < n; i++) {
		if (delays[i] > *ret_last)
			*ret_last = delays[i];
		if (timed)
			samples_add(all, delays[i]);
	}
}

static int run_relay(void *arg)
{
	struct notify_ctx *c = arg;
	int timed = ++c->relay_calls > c->warmup;
	int r = fanout_round(&c->relay, clock_ns(), c->relay_delays);

	if (r == 0)
		take_delays(c->relay_delays, c->relay.n, timed, &c->relay_last, &c->relay_all);
	return r;
}

static int run_cast(void *arg)
{
	struct notify_ctx *c = arg;
	int timed = ++c->cast_calls > c->warmup;
	int r = futexcast_round(&c->cast, clock_ns(), c->cast_delays);

	if (r == 0)
		take_delays(c->cast_delays, c->cast.nprocs * c->cast.per_proc, timed, &c->cast_last,
		            &c->cast_all);
	return r;
}

/*
 * Peers share the benchmark's descriptors, each child those of the peers started before it,
 * so only the last started one sees its socket close at once: stop them newest first.
 */
static int stop_subscribers(struct notify_ctx *c)
{
	int r = 0;

	while (c->nsubs > 0) {
		int r2 = peer_stop(&c->subs[--c->nsubs]);

		if (r == 0)
			r = r2;
	}
	return r;
}

static int start_subscribers(struct notify_ctx *c, size_t n, enum notify_kind k,
                             const struct bench_opts *o)
{
	bool page = k == KIND_PAGE;
	struct sub_args a = { .socket = o->socket, .page = page, .poll = k == KIND_POLL,
	                      .threads = 1 };
	size_t i;

	if (page && n > PAGE_PROCS) {
		a.threads = n / PAGE_PROCS;
		n = PAGE_PROCS;
	}
	c->per_sub = a.threads;
	for (i = 0; i < n; i++) {
		char ready;
		int r = peer_start(&c->subs[i], o->peer_cpu, subscriber, &a);

		if (r < 0)
			return r;
		c->nsubs++;
		if (recv(c->subs[i].sock, &ready, 1, 0) != 1) {
			fprintf(stderr, "mmapd-bench: a subscriber did not start\n");
			return -EIO;
		}
	}
	return 0;
}

size_t notify_rounds(size_t n, size_t iters)
{
	size_t rounds = n <= 5 ? iters : iters * 5 / n;

	return rounds < 20 ? 20 : rounds;
}

/* The CPU time pid ran so far, in ns (0 if unknown). */
static uint64_t cpu_ns(pid_t pid)
{
	unsigned long long ns = 0;
	char path[64];
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%ld/schedstat", (long)pid);
	f = fopen(path, "re");
	if (!f)
		return 0;
	if (fscanf(f, "%llu", &ns) != 1)
		ns = 0;
	fclose(f);
	return ns;
}

/* Prints the lines of one comparison for n subscribers ("last" or, with n > 1, "all"). */
static void print_lines(const char *what, size_t n, enum notify_kind k, struct side *mmapd,
                        struct side *hop, struct side *relay, struct side *cast)
{
	const char *kind = kind_names[k];
	char name[64];

	if (n == 1)
		snprintf(name, sizeof(name), "notify 1 sub, %s", kind);
	else
		snprintf(name, sizeof(name), "notify %zu %s subs, %s", n, kind, what);
	compare_print_latency(name, mmapd, hop);
	compare_print_latency(name, mmapd, relay);
	if (cast)
		compare_print_latency(name, mmapd, cast);
}

static int measure(struct notify_ctx *c, size_t n, enum notify_kind k, const struct bench_opts *o)
{
	struct side sides[] = {
		{ .label = "mmapd", .run = run_mmapd, .ctx = c, .measured = &c->last },
		{ .label = "sockethop", .run = run_hop, .ctx = c, .measured = &c->hop_delay },
		{ .label = "relay", .run = run_relay, .ctx = c, .measured = &c->relay_last },
		{ .label = "futex", .run = run_cast, .ctx = c, .measured = &c->cast_last },
	};
	/* The futex floor is the page subscribers' only. */
	size_t nsides = k == KIND_PAGE ? 4 : 3;
	size_t rounds = notify_rounds(n, o->iters);
	uint64_t cpu0 = 0, relay_cpu0 = 0;
	int r, r2;

	c->writer = k == KIND_JSON_REQUEST ? c->request_writer : c->client;
	c->calls = c->relay_calls = c->cast_calls = 0;
	c->warmup = rounds / 10;
	r = start_subscribers(c, n, k, o);
	if (r == 0)
		r = fanout_start(&c->relay, n, o->peer_cpu);
	if (r == 0)
		r = samples_init(&c->all, rounds * n);
	if (r == 0)
		r = samples_init(&c->relay_all, rounds * n);
	if (r == 0 && nsides == 4)
		r = futexcast_start(&c->cast, c->nsubs, c->per_sub, o->peer_cpu);
	if (r == 0)
		r = samples_init(&c->cast_all, rounds * n);
	if (r == 0) {
		cpu0 = cpu_ns(o->daemon_pid);
		relay_cpu0 = cpu_ns(c->relay.relay.pid);
		r = compare_run(sides, nsides, c->warmup, rounds);
	}
	if (r == 0) {
		uint64_t cpu = cpu_ns(o->daemon_pid) - cpu0;
		uint64_t relay_cpu1 = cpu_ns(c->relay.relay.pid);
		/* 0 at the start is right for a relay that had not run yet (it is not waited for). */
		uint64_t relay_cpu = relay_cpu1 > relay_cpu0 ? relay_cpu1 - relay_cpu0 : 0;

		print_lines("last", n, k, &sides[0], &sides[1], &sides[2],
		            nsides == 4 ? &sides[3] : NULL);
		/* Their CPU time while the sides ran: each has work from its own side only. */
		if (cpu0 && c->calls && c->relay_calls) {
			double per = (double)cpu / 1e3 / (double)c->calls / (double)n;
			double relay_per = (double)relay_cpu / 1e3 / (double)c->relay_calls / (double)n;

			printf("notify %zu %s subs, daemon %8.2fus CPU per change and subscriber "
			       "(%zu changes) | relay %6.2fus | ratio %5.2f\n", n, kind_names[k], per,
			       c->calls, relay_per, relay_per > 0 ? per / relay_per : 0);
		}
		if (n > 1) {
			struct side all = { .label = "mmapd", .samples = c->all };
			struct side relay_all = { .label = "relay", .samples = c->relay_all };
			struct side cast_all = { .label = "futex", .samples = c->cast_all };

			print_lines("all", n, k, &all, &sides[1], &relay_all,
			            nsides == 4 ? &cast_all : NULL);
		}
	}
	compare_done(sides, nsides);
	samples_done(&c->all);
	samples_done(&c->relay_all);
	samples_done(&c->cast_all);
	/* Started after the fan-out: they hold its sockets. */
	r2 = futexcast_stop(&c->cast);
	if (r == 0)
		r = r2;
	/* The fan-out's processes were started last: they hold the subscribers' sockets. */
	r2 = fanout_stop(&c->relay);
	if (r == 0)
		r = r2;
	r2 = stop_subscribers(c);
	return r < 0 ? r : r2;
}

int case_notify(struct mmapd_client *client, const struct bench_opts *o)
{
	static const size_t counts[] = { 1, 10, 100, MAX_SUBS };
	struct mmapd_open_opts opts = MMAPD_OPEN_OPTS(
		.flags = MMAPD_OPEN_CREATE | MMAPD_OPEN_EXCL, .mode = MMAPD_MODE_RW, .size = 4096);
	struct notify_ctx c = { .client = client };
	struct mmapd_region *region;
	size_t i;
	int r, r2;

	r = bench_region_open(client, REGION, &opts, &region);
	if (r < 0)
		return r;
	c.stamp = mmapd_region_data(region);
	r = peer_start_hop(&c.hop, o->peer_cpu);
	if (r < 0) {
		fprintf(stderr, "mmapd-bench: starting the hop peer: %s\n", strerror(-r));
		mmapd_region_close(region);
		return r;
	}
	r = mmapd_connect(o->socket, "bench-request-writer", &c.request_writer);
	if (r < 0)
		fprintf(stderr, "mmapd-bench: %s\n", mmapd_last_message());
	for (i = 0; i < sizeof(counts) / sizeof(counts[0]) && r == 0; i++)
		for (enum notify_kind k = KIND_PAGE; k <= KIND_POLL && r == 0; k++)
			r = measure(&c, counts[i], k, o);
	mmapd_disconnect(c.request_writer);
	r2 = peer_stop(&c.hop);
	if (r == 0)
		r = r2;
	mmapd_region_close(region);
	return r;
}
