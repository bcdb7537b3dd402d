/* SPDX-License-Identifier: MIT */
/*
 * Case (m): what idle clients cost the daemon in memory, and whether it gives the memory back
 * once they leave. A daemon of its own (the shared one admits 1,024 clients) is started on
 * the benchmark's directory with max_clients and the per-uid limits raised for 10,000 clients;
 * raw connections (raw.h) each say hello and then stay idle. Its resident memory (VmRSS) is
 * read before, with 5,000 and with 10,000 clients connected, and after they have all gone
 * (once the daemon holds as many descriptors as before they came).
 *
 * The reference is redis-server, the same kind of single-threaded event-loop server, with
 * the same clients (each sends one PING and reads the PONG, then stays idle): its memory per
 * idle client, and what it keeps after they leave. Without redis-server the reference is
 * skipped with a note.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "cases.h"
#include "proc.h"
#include "raw.h"

#define MEM_STEPS      2
#define MEM_CLIENTS    10000       /* the most clients, the last step */
#define MEM_BATCH      200         /* connections opened before their answers are read */
#define MEM_FDS_SPARE  256         /* descriptors besides the clients' */
#define MEM_WAIT_MS    20000       /* how long the servers may take to see everyone leave */
#define MEM_SETTLE_MS  200
#define REDIS_PING     "*1\r\n$4\r\nPING\r\n"
#define REDIS_PONG     "+PONG\r\n"

static const size_t mem_steps[MEM_STEPS] = { 5000, MEM_CLIENTS };

/* What one server's resident memory was: at start, at each step, after everyone left. */
struct mem_run {
	uint64_t before, at[MEM_STEPS], after;   /* KiB */
};

static void sleep_ms(long ms)
{
	struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

/* Raises this process's descriptor limit (and its children's) to n, as far as it may. */
static int raise_nofile(rlim_t n)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
		return -errno;
	if (rl.rlim_cur >= n)
		return 0;
	/* Root may raise the hard limit too; anyone else gets as far as it goes. */
	if (setrlimit(RLIMIT_NOFILE, &(struct rlimit){ n, rl.rlim_max > n ? rl.rlim_max : n }) == 0)
		return 0;
	rl.rlim_cur = rl.rlim_max;
	if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
		return -errno;
	return rl.rlim_cur >= n ? 0 : -EMFILE;
}

/* Opens the clients [*n, want) to path: each says hello (mmapd) or PING (redis). */
static int mem_connect(const char *path, bool mmapd, int *fds, size_t *n, size_t want)
{
	while (*n < want) {
		size_t first = *n, i;

		for (i = first; i < want && i < first + MEM_BATCH; i++) {
			fds[i] = raw_connect(path);
			if (fds[i] < 0)
				return fds[i];
			*n = i + 1;
			if (mmapd ? raw_hello(fds[i], "bench-idle") < 0
			          : raw_send(fds[i], REDIS_PING, strlen(REDIS_PING)) < 0)
				return -EIO;
		}
		if (!mmapd) {
			for (i = first; i < *n; i++) {
				char pong[sizeof(REDIS_PONG) - 1];

				if (recv(fds[i], pong, sizeof(pong), MSG_WAITALL) != (ssize_t)sizeof(pong))
					return -EIO;
			}
		}
	}
	return 0;
}

/* Waits until pid holds no more than fds descriptors, then a little more for its frees. */
static int mem_wait_gone(pid_t pid, int fds)
{
	long waited;

	for (waited = 0; waited < MEM_WAIT_MS; waited += 10) {
		int n = proc_fd_count(pid);

		if (n < 0)
			return n;
		if (n <= fds) {
			sleep_ms(MEM_SETTLE_MS);
			return 0;
		}
		sleep_ms(10);
	}
	return -ETIMEDOUT;
}

/* Measures the server pid listening on path; fds room for MEM_CLIENTS descriptors. */
static int mem_measure(pid_t pid, const char *path, bool mmapd, int *fds, struct mem_run *ret)
{
	size_t n = 0, i, step;
	int base_fds, r;

	/* One client comes and goes first, so that what serving costs once is in the baseline. */
	r = mem_connect(path, mmapd, fds, &n, 1);
	close(fds[0]);
	n = 0;
	sleep_ms(MEM_SETTLE_MS);
	base_fds = proc_fd_count(pid);
	if (r == 0 && base_fds < 0)
		r = base_fds;
	if (r == 0)
		r = proc_rss_kib(pid, &ret->before);
	for (step = 0; step < MEM_STEPS && r == 0; step++) {
		r = mem_connect(path, mmapd, fds, &n, mem_steps[step]);
		if (r == 0) {
			sleep_ms(MEM_SETTLE_MS);
			r = proc_rss_kib(pid, &ret->at[step]);
		}
	}
	for (i = 0; i < n; i++)
		close(fds[i]);
	if (r == 0)
		r = mem_wait_gone(pid, base_fds);
	if (r == 0)
		r = proc_rss_kib(pid, &ret->after);
	return r;
}

/* Writes dir/name with text. Returns 0 or -errno. */
static int write_file(const char *dir, const char *name, const char *text, char *path,
                      size_t size)
{
	FILE *f;

	if ((size_t)snprintf(path, size, "%s/%s", dir, name) >= size)
		return -ENAMETOOLONG;
	f = fopen(path, "we");
	if (!f)
		return -errno;
	fputs(text, f);
	return fclose(f) == 0 ? 0 : -errno;
}

/* Starts an mmapd of its own on dir/mem.sock, admitting MEM_CLIENTS clients. */
static pid_t mem_start_mmapd(const struct bench_opts *o, char *sock, size_t size)
{
	char conf[4096], text[512], data[4096];
	const char *bin = getenv("MMAPD_BIN");
	char *argv[] = { (char *)bin, "--foreground", "--socket", sock, "--data-dir", data,
	                 "--config", conf, "--log-level", "error", NULL };
	pid_t pid;

	snprintf(text, sizeof(text),
	         "{\"max_clients\": %d, \"max_clients_per_uid\": %d, \"max_fds_per_uid\": %d, "
	         "\"hello_timeout_ms\": 0}\n", MEM_CLIENTS + 64, MEM_CLIENTS + 64,
	         2 * MEM_CLIENTS + MEM_FDS_SPARE);
	if (!bin || (size_t)snprintf(sock, size, "%s/mem.sock", o->dir) >= size ||
	    (size_t)snprintf(data, sizeof(data), "%s/data", o->dir) >= sizeof(data) ||
	    write_file(o->dir, "mem.conf", text, conf, sizeof(conf)) < 0)
		return -EINVAL;
	pid = proc_spawn(argv, o->peer_cpu, -1);
	if (pid > 0 && proc_wait_listening(sock, pid, MEM_WAIT_MS) < 0) {
		proc_stop(pid);
		return -EIO;
	}
	return pid;
}

static pid_t mem_start_redis(const struct bench_opts *o, char *sock, size_t size)
{
	char clients[32];
	char *argv[] = { "redis-server", "--port", "0", "--unixsocket", sock, "--save", "",
	                 "--appendonly", "no", "--daemonize", "no", "--maxclients", clients,
	                 NULL };
	pid_t pid;

	snprintf(clients, sizeof(clients), "%d", MEM_CLIENTS + 64);
	if ((size_t)snprintf(sock, size, "%s/mem-redis.sock", o->dir) >= size)
		return -ENAMETOOLONG;
	pid = proc_spawn(argv, o->peer_cpu, -1);
	if (pid > 0 && proc_wait_listening(sock, pid, MEM_WAIT_MS) < 0) {
		proc_stop(pid);
		return -EIO;
	}
	return pid;
}

static void print_kib(char *buf, size_t size, uint64_t kib)
{
	if (kib < 10240)
		snprintf(buf, size, "%.2fKiB", (double)kib);
	else
		snprintf(buf, size, "%.1fMB", (double)kib * 1024 / 1e6);
}

/* Per-client and kept lines, mmapd beside redis (or redis skipped, saying why). */
static void mem_print(const struct mem_run *m, const struct mem_run *rd, const char *why)
{
	size_t step;

	for (step = 0; step < MEM_STEPS; step++) {
		double a = ((double)m->at[step] - (double)m->before) / (double)mem_steps[step];
		double b = rd ? ((double)rd->at[step] - (double)rd->before) / (double)mem_steps[step]
		              : 0;
		char name[64];

		snprintf(name, sizeof(name), "memory per idle client, %zu", mem_steps[step]);
		if (why)
			printf("%-34s mmapd %6.2fKiB | redis skipped: %s\n", name, a, why);
		else
			printf("%-34s mmapd %6.2fKiB | redis %6.2fKiB | ratio %5.2f\n", name, a, b,
			       b > 0 ? a / b : 0);
	}
	{
		char a[32], before[32], b[32], rbefore[32];

		print_kib(a, sizeof(a), m->after > m->before ? m->after - m->before : 0);
		print_kib(before, sizeof(before), m->before);
		if (why) {
			printf("%-34s mmapd %s over its %s | redis skipped: %s\n",
			       "memory kept after 10000 left", a, before, why);
		} else {
			print_kib(b, sizeof(b), rd->after > rd->before ? rd->after - rd->before : 0);
			print_kib(rbefore, sizeof(rbefore), rd->before);
			printf("%-34s mmapd %s over its %s | redis %s over its %s\n",
			       "memory kept after 10000 left", a, before, b, rbefore);
		}
	}
	fflush(stdout);
}

int case_memory(const struct bench_opts *o)
{
	char sock[108];
	struct mem_run m = { 0 }, rd = { 0 };
	const char *why = NULL;
	int *fds = calloc(MEM_CLIENTS, sizeof(*fds));
	pid_t pid;
	int r;

	if (!fds)
		return -ENOMEM;
	r = raise_nofile(MEM_CLIENTS + MEM_FDS_SPARE);
	if (r < 0) {
		fprintf(stderr, "mmapd-bench: memory: cannot open %d descriptors (RLIMIT_NOFILE)\n",
		        MEM_CLIENTS + MEM_FDS_SPARE);
		free(fds);
		return r;
	}
	pid = mem_start_mmapd(o, sock, sizeof(sock));
	if (pid < 0) {
		fprintf(stderr, "mmapd-bench: memory: cannot start a daemon of its own\n");
		free(fds);
		return pid;
	}
	r = mem_measure(pid, sock, true, fds, &m);
	proc_stop(pid);
	if (r < 0) {
		fprintf(stderr, "mmapd-bench: memory: measuring mmapd failed: %s\n", strerror(-r));
		free(fds);
		return r;
	}
	if (!proc_in_path("redis-server")) {
		why = "redis-server not installed";
	} else if ((pid = mem_start_redis(o, sock, sizeof(sock))) < 0) {
		why = "redis-server did not start";
	} else {
		if (mem_measure(pid, sock, false, fds, &rd) < 0)
			why = "redis-server did not take 10000 clients";
		proc_stop(pid);
	}
	mem_print(&m, why ? NULL : &rd, why);
	free(fds);
	return 0;
}
