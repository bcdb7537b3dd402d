/* SPDX-License-Identifier: MIT */
/*
 * (x) Changes made outside mmapd (docs/coordination.md, "Changes made outside mmapd"): how long
 * a subscriber that asked for them (MMAPD_SUBSCRIBE_EXTERNAL) waits to hear of a write(2), an
 * ftruncate and a store through a shared mapping made by a process that is no client, and
 * what watching costs the daemon per file.
 *
 * Latency: a writer process (forked, never connected, on mmapd's CPU like the baseline peers)
 * does one of the three on the benchmark's command and sends back the CLOCK_MONOTONIC time it
 * took just before. The benchmark waits in
 * poll() on its libmmapd descriptor, on its own inotify watch of the same file and on the
 * writer's pipe, and takes the clock in the event handler and when inotify wakes it. The
 * inotify wake-up of this process, in the same rounds, is the physical limit for write(2) and
 * truncate; a store through a mapping wakes nobody, so its baseline is the poll interval
 * (external_poll_ms, 100 ms by default): a store waits for the next fstat, half an interval on
 * average (each store round starts at a random phase of the interval, so that rounds do not
 * follow the daemon's tick in lock step). Before each store the writer flushes the file (fdatasync) so that the store hits a
 * clean page, as a first store after writeback does.
 *
 * Cost: 100 and 1000 file regions watched by one idle connection, the daemon's CPU time over
 * 5 s from /proc/PID/stat (clock ticks: 10 ms resolution), per file and second, against the
 * same number of fstat() calls timed in this process: the floor of polling.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cases.h"
#include "compare.h"
#include "cpu.h"
#include "proc.h"
#include "stats.h"

#define EXT_SIZE       65536u
#define EXT_POLL_MS    100u       /* the daemon's external_poll_ms (the benchmark runs defaults) */
#define EXT_ROUNDS_MAX 200u       /* write(2) and truncate rounds */
#define EXT_STORES_MAX 30u        /* store rounds: each waits for a poll tick */
#define EXT_WAIT_MS    3000       /* one round, before it counts as lost */
#define EXT_IDLE_MS    5000       /* the CPU window of the idle watches */

enum ext_kind { EXT_WRITE, EXT_TRUNCATE, EXT_STORE, EXT_NKINDS };

static const char *const ext_labels[EXT_NKINDS] = { "write(2)", "truncate", "mmap store" };
static const char ext_cmds[EXT_NKINDS] = { 'w', 't', 's' };

struct ext_ctx {
	struct mmapd_client *client;
	char path[PATH_MAX];
	int cmd, ack;                 /* pipes to and from the writer */
	pid_t writer;
	int ifd;                      /* this process's inotify watch of the file */
	bool armed;                   /* a round waits for the daemon's event */
	uint64_t event_ns;            /* when the handler got it, or 0 */
};

/* The writer: runs commands until its pipe closes. Never returns. */
static void ext_writer(const char *path, int cmd, int ack)
{
	int fd = open(path, O_RDWR | O_CLOEXEC);
	char *map = fd < 0 ? MAP_FAILED : mmap(NULL, EXT_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED,
	                                        fd, 0);
	off_t size = EXT_SIZE;
	unsigned n = 0;
	char c;

	if (map == MAP_FAILED)
		_exit(1);
	while (read(cmd, &c, 1) == 1) {
		uint64_t t0;

		if (c == 's')
			fdatasync(fd);   /* a clean page again: the next store faults and stamps mtime */
		t0 = clock_ns();
		if (c == 'w')
			(void)!pwrite(fd, &n, sizeof(n), 128);
		else if (c == 't')
			(void)!ftruncate(fd, size = size == EXT_SIZE ? EXT_SIZE + 4096 : EXT_SIZE);
		else
			map[(n % (EXT_SIZE / 4096)) * 4096 + 64] = (char)n;
		n++;
		if (write(ack, &t0, sizeof(t0)) != sizeof(t0))
			_exit(1);
	}
	_exit(0);
}

static void ext_on_event(struct mmapd_client *client, const struct mmapd_event *ev, void *arg)
{
	struct ext_ctx *c = arg;

	(void)client;
	if (ev->type == MMAPD_EVENT_CHANGED && ev->external && c->armed && !c->event_ns)
		c->event_ns = clock_ns();
}

/* Reads what inotify queued (the benchmark only wants the wake-up). */
static void ext_drain_inotify(int ifd)
{
	char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));

	while (read(ifd, buf, sizeof(buf)) > 0)
		;
}

/*
 * One round of kind k: *ret_mmapd and *ret_inotify get the delays (inotify: 0 for a store,
 * which raises none). Returns 0, -ETIMEDOUT, or -errno.
 */
static int ext_round(struct ext_ctx *c, enum ext_kind k, uint64_t *ret_mmapd,
                     uint64_t *ret_inotify)
{
	uint64_t t0 = 0, inotify_ns = 0, deadline = clock_ns() + EXT_WAIT_MS * 1000000ull;
	bool have_t0 = false;
	int r;

	c->event_ns = 0;
	if (k == EXT_STORE) {
		/* Rounds would follow the daemon's tick in lock step: start each at a random phase. */
		long ns = (long)((uint64_t)rand() % (EXT_POLL_MS * 1000000ull));
		struct timespec phase = { ns / 1000000000L, ns % 1000000000L };

		nanosleep(&phase, NULL);
		deadline = clock_ns() + EXT_WAIT_MS * 1000000ull;
	}
	c->armed = true;
	if (write(c->cmd, &ext_cmds[k], 1) != 1)
		return -errno;
	while (!have_t0 || !c->event_ns || (k != EXT_STORE && !inotify_ns)) {
		struct pollfd p[3] = {
			{ .fd = mmapd_client_fd(c->client), .events = POLLIN },
			{ .fd = c->ifd, .events = POLLIN },
			{ .fd = c->ack, .events = POLLIN },
		};
		uint64_t now = clock_ns();

		if (now >= deadline)
			return -ETIMEDOUT;
		if (poll(p, 3, (int)((deadline - now) / 1000000 + 1)) < 0 && errno != EINTR)
			return -errno;
		if (p[1].revents & POLLIN) {
			if (!inotify_ns)
				inotify_ns = clock_ns();
			ext_drain_inotify(c->ifd);
		}
		if (p[0].revents & POLLIN) {
			r = mmapd_client_dispatch(c->client, 0);
			if (r < 0)
				return r;
		}
		if ((p[2].revents & POLLIN) && !have_t0) {
			if (read(c->ack, &t0, sizeof(t0)) != sizeof(t0))
				return -EIO;
			have_t0 = true;
		}
	}
	c->armed = false;
	*ret_mmapd = c->event_ns > t0 ? c->event_ns - t0 : 0;
	*ret_inotify = inotify_ns > t0 ? inotify_ns - t0 : 0;
	/* A second report of the same change (poll and inotify both saw it) is not the next's. */
	while ((r = mmapd_client_dispatch(c->client, 20)) > 0)
		;
	ext_drain_inotify(c->ifd);
	return r < 0 ? r : 0;
}

static void ext_print_store(struct side *s)
{
	char p50[32], p99[32];
	uint64_t a = samples_percentile(&s->samples, 0.50), b = samples_percentile(&s->samples, 0.99);

	format_duration(p50, sizeof(p50), a);
	format_duration(p99, sizeof(p99), b);
	printf("%-26s mmapd p50 %8s p99 %8s | poll interval %ums | ratio p50 %5.2f p99 %5.2f\n",
	       "extwatch mmap store", p50, p99, EXT_POLL_MS, (double)a / (EXT_POLL_MS * 1e6),
	       (double)b / (EXT_POLL_MS * 1e6));
}

/* The latency lines: write(2) and truncate against inotify, the store against the interval. */
static int ext_latency(struct ext_ctx *c, const struct bench_opts *o)
{
	size_t rounds = o->iters < EXT_ROUNDS_MAX ? o->iters : EXT_ROUNDS_MAX;
	int r = 0;

	for (int k = 0; k < EXT_NKINDS && r == 0; k++) {
		struct side a = { .label = "mmapd" }, b = { .label = "inotify" };
		size_t n = k == EXT_STORE ? (rounds < EXT_STORES_MAX ? rounds : EXT_STORES_MAX) : rounds;
		char name[64];

		r = samples_init(&a.samples, n);
		if (r == 0)
			r = samples_init(&b.samples, n);
		for (size_t i = 0; i < n + 2 && r == 0; i++) {
			uint64_t dm = 0, di = 0;

			r = ext_round(c, (enum ext_kind)k, &dm, &di);
			if (r == 0 && i >= 2) {   /* two rounds warm up */
				samples_add(&a.samples, dm);
				samples_add(&b.samples, di);
			}
		}
		if (r == 0 && k == EXT_STORE) {
			ext_print_store(&a);
		} else if (r == 0) {
			snprintf(name, sizeof(name), "extwatch %s", ext_labels[k]);
			compare_print_latency(name, &a, &b);
		} else {
			fprintf(stderr, "mmapd-bench: extwatch %s: %s\n", ext_labels[k], strerror(-r));
		}
		samples_done(&a.samples);
		samples_done(&b.samples);
	}
	return r;
}

/* n fstat() calls over fds, timed: the median of 21 passes, in ns. */
static uint64_t ext_fstat_pass(const int *fds, size_t n)
{
	struct samples s;
	uint64_t med;

	if (samples_init(&s, 21) < 0)
		return 0;
	for (int pass = 0; pass < 21; pass++) {
		uint64_t t0 = clock_ns();
		struct stat st;

		for (size_t i = 0; i < n; i++)
			fstat(fds[i], &st);
		samples_add(&s, clock_ns() - t0);
	}
	med = samples_percentile(&s, 0.50);
	samples_done(&s);
	return med;
}

/*
 * n file regions watched by one idle connection: the daemon's CPU per file and second against
 * the fstat floor of the same files at the same interval.
 */
static int ext_idle(const struct bench_opts *o, size_t n)
{
	struct mmapd_client *watcher = NULL, *maker = NULL;
	int *fds = calloc(n, sizeof(*fds));
	uint64_t cpu0, cpu1, t0, t1, pass;
	char name[32], path[PATH_MAX];
	size_t made = 0, opened = 0;
	int r;

	if (!fds)
		return -ENOMEM;
	r = mmapd_connect(o->socket, "bench-extwatch-idle", &watcher);
	if (r == 0)
		r = mmapd_connect(o->socket, "bench-extwatch-maker", &maker);
	for (; r == 0 && made < n; made++) {
		struct mmapd_open_opts oo = MMAPD_OPEN_OPTS(.flags = MMAPD_OPEN_CREATE,
		                                            .mode = MMAPD_MODE_RW, .size = 4096);
		struct mmapd_region *region;

		snprintf(name, sizeof(name), "extidle%zu", made);
		r = mmapd_region_open(maker, name, &oo, &region);
		if (r < 0)
			break;
		mmapd_region_close(region);
		r = mmapd_subscribe_flags(watcher, name, MMAPD_SUBSCRIBE_EXTERNAL, NULL);
		if (r < 0)
			break;
		snprintf(path, sizeof(path), "%s/data/%s", o->dir, name);
		fds[opened] = open(path, O_RDONLY | O_CLOEXEC);
		if (fds[opened] < 0) {
			r = -errno;
			break;
		}
		opened++;
	}
	if (r == 0) {
		struct timespec settle = { 0, 300 * 1000000L }, idle = { EXT_IDLE_MS / 1000, 0 };

		nanosleep(&settle, NULL);
		t0 = clock_ns();
		r = proc_cpu_ns(o->daemon_pid, &cpu0);
		nanosleep(&idle, NULL);
		if (r == 0)
			r = proc_cpu_ns(o->daemon_pid, &cpu1);
		t1 = clock_ns();
	}
	if (r == 0) {
		double secs = (double)(t1 - t0) / 1e9;
		double per = (double)(cpu1 - cpu0) / 1e3 / secs / (double)n;
		double floor;

		pass = ext_fstat_pass(fds, n);
		floor = (double)pass / 1e3 * (1000.0 / EXT_POLL_MS) / (double)n;
		printf("extwatch %zu files idle, daemon %7.2fus CPU per file per second (%.2f%% of a "
		       "CPU, 10 ms ticks over %.1f s) | fstat floor %6.2fus | ratio %5.2f\n", n, per,
		       (double)(cpu1 - cpu0) / 1e9 / secs * 100.0, secs, floor,
		       floor > 0 ? per / floor : 0.0);
	} else {
		fprintf(stderr, "mmapd-bench: extwatch %zu files idle: %s\n", n, strerror(-r));
	}
	while (opened > 0)
		close(fds[--opened]);
	free(fds);
	/* The watcher's subscriptions end with its connection; then the files go. */
	mmapd_disconnect(watcher);
	for (size_t i = 0; maker && i < made; i++) {
		snprintf(name, sizeof(name), "extidle%zu", i);
		mmapd_delete(maker, name);
	}
	mmapd_disconnect(maker);
	return r;
}

int case_extwatch(struct mmapd_client *client, const struct bench_opts *o)
{
	struct mmapd_open_opts oo = MMAPD_OPEN_OPTS(.flags = MMAPD_OPEN_CREATE,
	                                            .mode = MMAPD_MODE_RW, .size = EXT_SIZE);
	struct ext_ctx c = { .client = client, .cmd = -1, .ack = -1, .ifd = -1, .writer = -1 };
	struct mmapd_region *region = NULL;
	int cmd[2] = { -1, -1 }, ack[2] = { -1, -1 }, r;

	r = mmapd_region_open(client, "extwatch", &oo, &region);
	if (r == 0)
		r = mmapd_subscribe_flags(client, "extwatch", MMAPD_SUBSCRIBE_EXTERNAL, NULL);
	snprintf(c.path, sizeof(c.path), "%s/data/extwatch", o->dir);
	if (r == 0) {
		c.ifd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
		if (c.ifd < 0 || inotify_add_watch(c.ifd, c.path, IN_MODIFY) < 0)
			r = -errno;
	}
	if (r == 0 && (pipe2(cmd, O_CLOEXEC) < 0 || pipe2(ack, O_CLOEXEC) < 0))
		r = -errno;
	if (r == 0) {
		c.writer = fork();
		if (c.writer == 0) {
			/* Its own ends only: the command pipe's end of file is its exit. */
			close(cmd[1]);
			close(ack[0]);
			/* Where mmapd runs, as the baseline peers do: the inotify wake-up then crosses
			 * CPUs once, as mmapd's event to the benchmark does. */
			if (o->peer_cpu >= 0)
				cpu_pin(o->peer_cpu);
			ext_writer(c.path, cmd[0], ack[1]);
		}
		if (c.writer < 0)
			r = -errno;
	}
	if (r == 0) {
		c.cmd = cmd[1];
		c.ack = ack[0];
		mmapd_client_set_event_handler(client, ext_on_event, &c);
		r = ext_latency(&c, o);
		mmapd_client_set_event_handler(client, NULL, NULL);
	} else {
		fprintf(stderr, "mmapd-bench: extwatch: %s\n", strerror(-r));
	}
	for (int i = 0; i < 2; i++) {
		if (cmd[i] >= 0)
			close(cmd[i]);
		if (ack[i] >= 0)
			close(ack[i]);
	}
	if (c.writer > 0)
		waitpid(c.writer, NULL, 0);
	if (c.ifd >= 0)
		close(c.ifd);
	mmapd_unsubscribe(client, "extwatch");
	mmapd_region_close(region);
	if (r == 0)
		r = ext_idle(o, 100);
	if (r == 0)
		r = ext_idle(o, 1000);
	return r;
}
