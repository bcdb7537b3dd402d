/* SPDX-License-Identifier: MIT */
/*
 * mmapd-bench: how much mmapd costs next to doing the same thing without it. It starts its
 * own mmapd ($MMAPD_BIN) on a temporary directory, runs each case with its baselines side by
 * side in the same run (see compare.h and cases.h), prints one line per comparison, stops the
 * daemon and removes the directory. `make bench` runs it; docs/benchmarks.md reads the output.
 */
#include <errno.h>
#include <getopt.h>
#include <linux/magic.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statfs.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include "cases.h"
#include "compare.h"
#include "cpu.h"
#include "num.h"
#include "server.h"

#define DEFAULT_ITERS 20000
#define QUICK_ITERS   500

static const char *const placement_names[] = {
	[CPU_SPLIT] = "split",
	[CPU_SAME] = "same",
	[CPU_NONE] = "none",
};

/* The cases, in the order they run; --case picks some of them by these names. */
enum bench_case {
	CASE_OPEN, CASE_PING, CASE_LOCK, CASE_NOTIFY, CASE_THROUGHPUT, CASE_MEMCPY, CASE_ITERATE,
	CASE_ATOMIC, CASE_PREWARM, CASE_FLUSH, CASE_STALL, CASE_LIST, CASE_RING, CASE_PERSIST,
	CASE_EXTWATCH, CASE_MEMORY, CASE_COUNT,
};

static const char *const case_names[CASE_COUNT] = {
	[CASE_OPEN] = "open",
	[CASE_PING] = "ping",
	[CASE_LOCK] = "lock",
	[CASE_NOTIFY] = "notify",
	[CASE_THROUGHPUT] = "throughput",
	[CASE_MEMCPY] = "memcpy",
	[CASE_ITERATE] = "iterate",
	[CASE_ATOMIC] = "atomic",
	[CASE_PREWARM] = "prewarm",
	[CASE_FLUSH] = "flush",
	[CASE_STALL] = "stall",
	[CASE_LIST] = "list",
	[CASE_RING] = "ring",
	[CASE_PERSIST] = "persist",
	[CASE_EXTWATCH] = "extwatch",
	[CASE_MEMORY] = "memory",
};

static void usage(FILE *f)
{
	fprintf(f,
	        "usage: MMAPD_BIN=/path/to/mmapd mmapd-bench [--quick] [--iterations N] [--pin MODE]\n"
	        "                                            [--case NAME]...\n"
	        "  --quick          %d rounds per latency case instead of %d (smoke runs)\n"
	        "  --iterations N   N timed rounds per latency case (after N/10 warm-up rounds);\n"
	        "                   the 64 MiB memcpy and iteration cases copy N/100 times, 5 to\n"
	        "                   200, the atomics and first-touch cases run N/2000 rounds, 3 to 10\n"
	        "  --pin MODE       split (default): the benchmark on one CPU, mmapd and the\n"
	        "                   baseline peers on another; same: all on one CPU;\n"
	        "                   none: wherever the scheduler puts them\n"
	        "  --case NAME      run only this case (repeatable): open, ping, lock, notify,\n"
	        "                   throughput, memcpy, iterate, atomic, prewarm, flush, stall,\n"
	        "                   list, ring, persist, extwatch, memory\n",
	        QUICK_ITERS, DEFAULT_ITERS);
}

static int parse_placement(const char *s, enum cpu_placement *ret)
{
	size_t i;

	for (i = 0; i < sizeof(placement_names) / sizeof(placement_names[0]); i++) {
		if (strcmp(s, placement_names[i]) == 0) {
			*ret = (enum cpu_placement)i;
			return 0;
		}
	}
	fprintf(stderr, "mmapd-bench: --pin wants split, same or none\n");
	return -EINVAL;
}

static int parse_case(const char *s, unsigned *cases)
{
	size_t i;

	for (i = 0; i < CASE_COUNT; i++) {
		if (strcmp(s, case_names[i]) == 0) {
			*cases |= 1u << i;
			return 0;
		}
	}
	fprintf(stderr, "mmapd-bench: --case: no case named '%s'\n", s);
	return -EINVAL;
}

/* True when case id runs: every case when no --case was given. */
static bool case_wanted(unsigned cases, enum bench_case id)
{
	return cases == 0 || (cases & (1u << id));
}

/* ret_cases: a bit per case asked for with --case (1 << enum bench_case), 0 for all. */
static int parse_args(int argc, char **argv, struct bench_opts *ret,
                      enum cpu_placement *ret_placement, unsigned *ret_cases)
{
	static const struct option longopts[] = {
		{ "quick", no_argument, NULL, 'q' },
		{ "iterations", required_argument, NULL, 'n' },
		{ "pin", required_argument, NULL, 'p' },
		{ "case", required_argument, NULL, 'c' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	uint64_t iters = DEFAULT_ITERS, given = 0;
	int c;

	*ret_placement = CPU_SPLIT;
	*ret_cases = 0;
	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (c) {
		case 'q':
			iters = QUICK_ITERS;
			break;
		case 'n':
			if (num_parse_u64(optarg, &given) < 0 || given == 0 || given > 100000000) {
				fprintf(stderr, "mmapd-bench: --iterations wants 1..100000000\n");
				return -EINVAL;
			}
			break;
		case 'p':
			if (parse_placement(optarg, ret_placement) < 0)
				return -EINVAL;
			break;
		case 'c':
			if (parse_case(optarg, ret_cases) < 0)
				return -EINVAL;
			break;
		case 'h':
			usage(stdout);
			exit(0);
		default:
			usage(stderr);
			return -EINVAL;
		}
	}
	if (optind != argc) {
		usage(stderr);
		return -EINVAL;
	}
	if (given)
		iters = given;
	ret->iters = iters;
	ret->warmup = iters / 10;
	ret->bw_reps = iters / 100 < 5 ? 5 : iters / 100 > 200 ? 200 : iters / 100;
	ret->big_reps = ret->bw_reps / 20 < 3 ? 3 : ret->bw_reps / 20;
	ret->tput_ms = iters / 10 < 200 ? 200 : iters / 10 > 2000 ? 2000 : iters / 10;
	ret->redis_requests = ret->tput_ms * 250;
	return 0;
}

static const char *fs_name(const char *path)
{
	static char other[32];
	struct statfs st;

	if (statfs(path, &st) < 0)
		return "unknown file system";
	switch ((unsigned long)st.f_type) {
	case TMPFS_MAGIC: return "tmpfs";
	case EXT4_SUPER_MAGIC: return "ext4";
	case XFS_SUPER_MAGIC: return "xfs";
	case BTRFS_SUPER_MAGIC: return "btrfs";
	case OVERLAYFS_SUPER_MAGIC: return "overlayfs";
	}
	snprintf(other, sizeof(other), "fs type 0x%lx", (unsigned long)st.f_type);
	return other;
}

/* The first "model name" of /proc/cpuinfo, or "" when there is none (not every arch has it). */
static void cpu_model(char *buf, size_t size)
{
	FILE *f = fopen("/proc/cpuinfo", "re");
	char line[256];

	buf[0] = '\0';
	if (!f)
		return;
	while (fgets(line, sizeof(line), f)) {
		char *colon = strchr(line, ':');

		if (strncmp(line, "model name", 10) == 0 && colon) {
			snprintf(buf, size, "%s", colon + 2);
			buf[strcspn(buf, "\n")] = '\0';
			break;
		}
	}
	fclose(f);
}

static void print_header(const struct server *srv, const struct bench_opts *o,
                         const struct cpu_plan *plan)
{
	char date[64], cpu[128];
	struct utsname u;
	time_t now = time(NULL);

	strftime(date, sizeof(date), "%Y-%m-%d %H:%M:%S %Z", localtime(&now));
	uname(&u);
	cpu_model(cpu, sizeof(cpu));
	printf("# mmapd-bench, mmapd %s, %s\n", MMAPD_VERSION_STRING, date);
	printf("# machine: %ld CPUs online%s%s; %s %s %s %s\n", sysconf(_SC_NPROCESSORS_ONLN),
	       cpu[0] ? ", " : "", cpu, u.sysname, u.release, u.version, u.machine);
	printf("# data directory on %s; %zu rounds (+%zu warm-up) per latency case, "
	       "%zu copies of 64 MiB\n", fs_name(srv->data), o->iters, o->warmup, o->bw_reps);
	printf("# notify: %zu rounds for 10 subscribers, %zu for 100; throughput: %zu ms of pings, "
	       "redis-benchmark -n %zu\n", notify_rounds(10, o->iters), notify_rounds(100, o->iters),
	       o->tput_ms, o->redis_requests);
	printf("# atomics and first touch: %zu rounds (+1 warm-up); iteration: %zu copies of 64 MiB\n",
	       o->big_reps, o->bw_reps);
	if (plan->placement == CPU_NONE)
		printf("# placement: none (not pinned)\n");
	else
		printf("# placement: %s (benchmark on CPU %d; mmapd and baseline peers on CPU %d)\n",
		       placement_names[plan->placement], plan->client, plan->server);
	fflush(stdout);
}

static void on_signal(int sig)
{
	(void)sig;
	compare_stop = 1;
}

/*
 * An interrupted run still stops mmapd and removes its temporary directory (with 128 MiB of
 * region files in it): SIGINT, SIGTERM and SIGHUP end the current case early, without
 * SA_RESTART so that a blocked receive returns at once. SIGPIPE is ignored so that a closed
 * stdout (| head) cannot kill the benchmark before it cleans up.
 */
static void install_signals(void)
{
	static const int stops[] = { SIGINT, SIGTERM, SIGHUP };
	struct sigaction sa = { .sa_handler = on_signal };
	size_t i;

	sigemptyset(&sa.sa_mask);
	for (i = 0; i < sizeof(stops) / sizeof(stops[0]); i++)
		sigaction(stops[i], &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
}

int main(int argc, char **argv)
{
	const char *bin = getenv("MMAPD_BIN");
	enum cpu_placement placement;
	struct mmapd_client *client;
	struct bench_opts opts;
	struct cpu_plan plan;
	struct server srv;
	unsigned cases;
	int r = 0;

	if (parse_args(argc, argv, &opts, &placement, &cases) < 0)
		return 2;
	if (!bin || !*bin) {
		fprintf(stderr, "mmapd-bench: set MMAPD_BIN to the mmapd to measure (make bench does)\n");
		return 2;
	}
	install_signals();
	r = cpu_plan_apply(placement, &plan);
	if (r < 0) {
		fprintf(stderr, "mmapd-bench: --pin %s: %s\n", placement_names[placement],
		        strerror(-r));
		return 1;
	}
	opts.peer_cpu = plan.server;
	if (server_start(&srv, bin, plan.server, &client) < 0)
		return 1;
	opts.socket = srv.sock;
	opts.daemon_pid = srv.pid;
	opts.dir = srv.dir;
	print_header(&srv, &opts, &plan);
	if (case_wanted(cases, CASE_OPEN))
		r = case_open_touch(client, srv.data, &opts);
	if (r == 0 && case_wanted(cases, CASE_PING))
		r = case_ping(client, &opts);
	if (r == 0 && case_wanted(cases, CASE_LOCK))
		r = case_lock(client, &opts);
	if (r == 0 && case_wanted(cases, CASE_NOTIFY))
		r = case_notify(client, &opts);
	if (r == 0 && case_wanted(cases, CASE_THROUGHPUT))
		r = case_throughput(&opts);
	if (r == 0 && case_wanted(cases, CASE_MEMCPY))
		r = case_memcpy(client, srv.data, &opts);
	if (r == 0 && case_wanted(cases, CASE_ITERATE))
		r = case_iterate(client, &opts);
	if (r == 0 && case_wanted(cases, CASE_ATOMIC))
		r = case_atomic(client, &opts);
	if (r == 0 && case_wanted(cases, CASE_PREWARM))
		r = case_prewarm(client, &opts);
	if (r == 0 && case_wanted(cases, CASE_FLUSH))
		r = case_flush(client, &opts);
	if (r == 0 && case_wanted(cases, CASE_STALL))
		r = case_stall(client, &opts);
	if (r == 0 && case_wanted(cases, CASE_LIST))
		r = case_list(client, srv.data, &opts);
	if (r == 0 && case_wanted(cases, CASE_RING))
		r = case_ring(client, &opts);
	if (r == 0 && case_wanted(cases, CASE_PERSIST))
		r = case_persist(client, &opts);
	if (r == 0 && case_wanted(cases, CASE_EXTWATCH))
		r = case_extwatch(client, &opts);
	if (r == 0 && case_wanted(cases, CASE_MEMORY))
		r = case_memory(&opts);
	mmapd_disconnect(client);
	if (server_stop(&srv) < 0 && r == 0)
		r = -EIO;
	if (r < 0) {
		fprintf(stderr, "mmapd-bench: failed: %s\n", strerror(-r));
		return 1;
	}
	return 0;
}
