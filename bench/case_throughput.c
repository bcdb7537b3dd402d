/* SPDX-License-Identifier: MIT */
/*
 * Case (f): how many trivial requests the daemon answers per second when many clients ask at
 * once. CLIENTS processes, each with its own libmmapd connection, call mmapd_ping() in a loop
 * from the same start time to the same end time; the rate is the pings answered within that
 * window, all clients together, divided by its length. The clients run where the benchmark
 * runs, mmapd where it always does.
 *
 * The reference is redis, a single-threaded event-loop server like mmapd: redis-benchmark with
 * as many connections (-c) and PING over a Unix socket, against a private redis-server on the
 * benchmark's temporary directory, pinned like mmapd (redis-benchmark runs where the benchmark
 * does). We take its PING_MBULK figure: a PING in the protocol redis clients speak (RESP), not
 * the telnet-style PING_INLINE. Without redis-server and redis-benchmark (mk/benchdeps.sh
 * installs them when `make bench` runs as root) the redis figure is skipped with a note.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cases.h"
#include "compare.h"
#include "cpu.h"
#include "peer.h"

#define CLIENTS      50
#define START_NS     20000000u   /* from sending the window to its start: every client ready */
#define REDIS_WAIT_MS 5000
#define REDIS_LABEL  "redis MBULK"
#define REDIS_FIX    "run as root: apt-get update && apt-get install -y redis-server redis-tools"

struct window {
	uint64_t start, end;  /* clock_ns() */
};

static void sleep_until(uint64_t ns)
{
	struct timespec ts = { .tv_sec = (time_t)(ns / 1000000000u),
	                       .tv_nsec = (long)(ns % 1000000000u) };

	while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
		;
}

/* A client process: ready byte, then the window, then the count of pings answered in it. */
static void pinger(int sock, const void *arg)
{
	struct mmapd_client *client;
	struct window w;
	uint64_t count = 0;
	char ready = 'r';

	if (mmapd_connect(arg, "bench-pinger", &client) < 0) {
		fprintf(stderr, "mmapd-bench: pinger: %s\n", mmapd_last_message());
		_exit(1);
	}
	if (send(sock, &ready, 1, MSG_NOSIGNAL) != 1 ||
	    recv(sock, &w, sizeof(w), MSG_WAITALL) != sizeof(w))
		_exit(1);
	sleep_until(w.start);
	for (;;) {
		if (mmapd_ping(client) < 0) {
			fprintf(stderr, "mmapd-bench: pinger: %s\n", mmapd_last_message());
			_exit(1);
		}
		if (clock_ns() > w.end)
			break;
		count++;
	}
	if (send(sock, &count, sizeof(count), MSG_NOSIGNAL) != sizeof(count))
		_exit(1);
	mmapd_disconnect(client);
}

/* Runs the CLIENTS pingers for duration_ns; *ret_rate gets pings per second. */
static int mmapd_rate(const char *socket, uint64_t duration_ns, double *ret_rate)
{
	struct peer peers[CLIENTS];
	struct window w;
	uint64_t total = 0;
	size_t n = 0, i;
	int r = 0, r2;

	for (n = 0; n < CLIENTS && r == 0; n++) {
		char ready;

		r = peer_start(&peers[n], -1, pinger, socket);
		if (r < 0)
			break;
		if (recv(peers[n].sock, &ready, 1, 0) != 1)
			r = -EIO;
	}
	w.start = clock_ns() + START_NS;
	w.end = w.start + duration_ns;
	for (i = 0; i < n && r == 0; i++)
		if (send(peers[i].sock, &w, sizeof(w), MSG_NOSIGNAL) != sizeof(w))
			r = -EIO;
	for (i = 0; i < n && r == 0; i++) {
		uint64_t count;

		if (recv(peers[i].sock, &count, sizeof(count), MSG_WAITALL) != sizeof(count))
			r = -EIO;
		total += count;
	}
	/* Newest first: each peer holds the sockets of those started before it (case_notify.c). */
	while (n > 0) {
		r2 = peer_stop(&peers[--n]);
		if (r == 0)
			r = r2;
	}
	if (r < 0)
		fprintf(stderr, "mmapd-bench: the ping clients failed\n");
	*ret_rate = (double)total / ((double)duration_ns / 1e9);
	return r;
}

/* Whether prog is an executable file in one of $PATH's directories. */
static int in_path(const char *prog)
{
	const char *path = getenv("PATH");
	char dir[4096], file[4096 + 64];

	while (path && *path) {
		size_t len = strcspn(path, ":");

		snprintf(dir, sizeof(dir), "%.*s", (int)len, path);
		snprintf(file, sizeof(file), "%s/%s", len ? dir : ".", prog);
		if (access(file, X_OK) == 0)
			return 1;
		path += len + (path[len] == ':');
	}
	return 0;
}

/* Forks and execs argv, pinned to cpu unless -1, stdout to out_fd (or /dev/null if -1). */
static pid_t spawn(char *const argv[], int cpu, int out_fd)
{
	pid_t pid = fork();
	int null;

	if (pid != 0)
		return pid;
	null = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (null < 0 || dup2(out_fd >= 0 ? out_fd : null, 1) < 0 || dup2(null, 2) < 0 ||
	    setpgid(0, 0) < 0 || cpu_pin(cpu) < 0)
		_exit(127);
	execvp(argv[0], argv);
	_exit(127);
}

/* Waits until something accepts connections on the Unix socket path. */
static int wait_listening(const char *path, pid_t pid)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int waited;

	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	for (waited = 0; waited < REDIS_WAIT_MS; waited += 10) {
		int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		int ok = fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;

		if (fd >= 0)
			close(fd);
		if (ok)
			return 0;
		if (waitpid(pid, NULL, WNOHANG) == pid)
			return -ECHILD;
		sleep_until(clock_ns() + 10000000u);
	}
	return -ETIMEDOUT;
}

/* The last "PING_MBULK: <N> requests per second" of redis-benchmark -q's output, or 0. */
static double parse_mbulk(const char *out)
{
	static const char key[] = "PING_MBULK: ";
	const char *p = out;
	double best = 0;

	while ((p = strstr(p, key)) != NULL) {
		char *end;
		double v;

		p += sizeof(key) - 1;
		v = strtod(p, &end);
		if (end != p && strncmp(end, " requests per second", 20) == 0)
			best = v;
	}
	return best;
}

/* Runs redis-benchmark; *ret_rate gets PING_MBULK's requests per second. */
static int run_redis_benchmark(const char *sock, size_t requests, double *ret_rate)
{
	char clients[16], n[32], out[65536];
	char *argv[] = { "redis-benchmark", "-s", (char *)sock, "-c", clients, "-n", n,
	                 "-t", "ping", "-q", NULL };
	size_t len = 0;
	ssize_t got;
	int pipefd[2], status;
	pid_t pid;

	snprintf(clients, sizeof(clients), "%d", CLIENTS);
	snprintf(n, sizeof(n), "%zu", requests);
	if (pipe2(pipefd, O_CLOEXEC) < 0)
		return -errno;
	pid = spawn(argv, -1, pipefd[1]);
	close(pipefd[1]);
	if (pid < 0) {
		close(pipefd[0]);
		return -errno;
	}
	while (len < sizeof(out) - 1 &&
	       (got = read(pipefd[0], out + len, sizeof(out) - 1 - len)) != 0) {
		if (got < 0 && errno != EINTR)
			break;
		if (got > 0)
			len += (size_t)got;
	}
	out[len] = '\0';
	close(pipefd[0]);
	if (waitpid(pid, &status, 0) < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
		return -EIO;
	*ret_rate = parse_mbulk(out);
	return *ret_rate > 0 ? 0 : -EPROTO;
}

/*
 * Starts a private redis-server on dir/redis.sock (pinned to cpu), runs redis-benchmark
 * against it and stops it. Returns 0 with *ret_rate, or a note on why not in *ret_why.
 */
static int redis_rate(const char *dir, int cpu, size_t requests, double *ret_rate,
                      const char **ret_why)
{
	char sock[sizeof(((struct sockaddr_un *)0)->sun_path)];
	char *argv[] = { "redis-server", "--port", "0", "--unixsocket", sock, "--save", "",
	                 "--appendonly", "no", "--daemonize", "no", NULL };
	pid_t pid;
	int r;

	if (!in_path("redis-server") || !in_path("redis-benchmark")) {
		*ret_why = "redis-server or redis-benchmark not installed (" REDIS_FIX ")";
		return -ENOENT;
	}
	if ((size_t)snprintf(sock, sizeof(sock), "%s/redis.sock", dir) >= sizeof(sock)) {
		*ret_why = "the temporary directory's path is too long for a Unix socket";
		return -ENAMETOOLONG;
	}
	pid = spawn(argv, cpu, -1);
	if (pid < 0) {
		*ret_why = "cannot fork redis-server";
		return -errno;
	}
	r = wait_listening(sock, pid);
	if (r < 0)
		*ret_why = "redis-server did not start (try: redis-server --port 0 --unixsocket "
		           "/tmp/r.sock)";
	else if ((r = run_redis_benchmark(sock, requests, ret_rate)) < 0)
		*ret_why = "redis-benchmark failed or printed no PING_MBULK line";
	kill(pid, SIGTERM);
	waitpid(pid, NULL, 0);
	return r;
}

int case_throughput(const struct bench_opts *o)
{
	uint64_t duration_ns = (uint64_t)o->tput_ms * 1000000u;
	const char *why = NULL;
	char name[64];
	double mmapd = 0, redis = 0;
	int r = mmapd_rate(o->socket, duration_ns, &mmapd);

	if (r < 0)
		return r;
	redis_rate(o->dir, o->peer_cpu, o->redis_requests, &redis, &why);
	snprintf(name, sizeof(name), "ping, %d clients", CLIENTS);
	compare_print_throughput(name, mmapd, REDIS_LABEL, redis, why);
	return 0;
}
