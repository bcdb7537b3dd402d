/* SPDX-License-Identifier: MIT */
/*
 * Case (f): how many trivial requests the daemon answers per second when many clients ask at
 * once, in two shapes.
 *
 * 50 processes: CLIENTS processes, each with its own libmmapd connection, call mmapd_ping() in
 * a loop from the same start time to the same end time; the rate is the pings answered within
 * that window, all clients together, divided by its length. The clients run where the
 * benchmark runs, mmapd where it always does.
 *
 * 1 process x 50 connections: the benchmark itself drives CLIENTS connections from one epoll
 * loop, one request in flight on each, as redis-benchmark does: a raw `ping` frame to mmapd,
 * a RESP PING to a private redis-server, with the same loop, so that the two servers are told
 * apart by nothing but themselves. Rounds alternate between the two servers. Beside the rate,
 * each server's CPU time per request, from utime + stime of /proc/PID/stat over the rounds
 * (mmapd's pid comes from SO_PEERCRED). A third server takes its turn in the same rounds: the
 * floor (floor.h), a bare epoll loop doing one read() and one write() per request and answering
 * mmapd's ping frame with mmapd's reply bytes. Its CPU per request is what the kernel's two
 * calls and the wake-ups cost any server of this shape, so it bounds from below what mmapd or
 * redis could spend.
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
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cases.h"
#include "compare.h"
#include "floor.h"
#include "peer.h"
#include "proc.h"
#include "raw.h"

#define CLIENTS      50
#define START_NS     20000000u   /* from sending the window to its start: every client ready */
#define REDIS_WAIT_MS 5000
#define REDIS_LABEL  "redis MBULK"
#define REDIS_FIX    "run as root: apt-get update && apt-get install -y redis-server redis-tools"
#define DRIVE_ROUNDS 4           /* rounds of each server in the 1-process shape, alternating */
#define MMAPD_PING   "{\"id\":1,\"op\":\"ping\"}"
#define MMAPD_PONG   "{\"id\":1,\"ok\":true}"   /* mmapd's reply, which the floor sends */
#define REDIS_PING   "*1\r\n$4\r\nPING\r\n"
#define REDIS_PONG   "+PONG\r\n"

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
	pid = proc_spawn(argv, -1, pipefd[1]);
	close(pipefd[1]);
	if (pid < 0) {
		close(pipefd[0]);
		return pid;
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

	if (!proc_in_path("redis-server") || !proc_in_path("redis-benchmark")) {
		*ret_why = "redis-server or redis-benchmark not installed (" REDIS_FIX ")";
		return -ENOENT;
	}
	if ((size_t)snprintf(sock, sizeof(sock), "%s/redis.sock", dir) >= sizeof(sock)) {
		*ret_why = "the temporary directory's path is too long for a Unix socket";
		return -ENAMETOOLONG;
	}
	pid = proc_spawn(argv, cpu, -1);
	if (pid < 0) {
		*ret_why = "cannot fork redis-server";
		return pid;
	}
	r = proc_wait_listening(sock, pid, REDIS_WAIT_MS);
	if (r < 0)
		*ret_why = "redis-server did not start (try: redis-server --port 0 --unixsocket "
		           "/tmp/r.sock)";
	else if ((r = run_redis_benchmark(sock, requests, ret_rate)) < 0)
		*ret_why = "redis-benchmark failed or printed no PING_MBULK line";
	proc_stop(pid);
	return r;
}

/*
 * The 1-process shape: CLIENTS connections to one server, each with one request in flight.
 * Every reply to one of these requests has the same length (the same id, the same answer), so
 * the loop counts replies by bytes and sends the next request as soon as one is complete.
 */
struct drive {
	int fds[CLIENTS];
	size_t got[CLIENTS];      /* bytes of the reply in progress */
	const uint8_t *req;
	size_t req_len;
	size_t reply_len;
	pid_t pid;                /* the server, for its CPU time */
	uint64_t answered;        /* over all rounds */
	uint64_t cpu_ns;
	uint64_t ns;
};

/* The servers of the 1-process shape. */
enum drive_kind {
	DRIVE_MMAPD,
	DRIVE_REDIS,
	DRIVE_FLOOR,   /* speaks mmapd's frames, needs no hello */
};

/* Connects the CLIENTS connections and makes one exchange on each, learning reply_len. */
static int drive_open(struct drive *d, const char *path, enum drive_kind kind)
{
	static uint8_t ping[64];
	bool framed = kind != DRIVE_REDIS;
	size_t i;

	d->req = framed ? ping : (const uint8_t *)REDIS_PING;
	d->req_len = framed ? raw_frame(ping, sizeof(ping), MMAPD_PING) : strlen(REDIS_PING);
	for (i = 0; i < CLIENTS; i++)
		d->fds[i] = -1;
	for (i = 0; i < CLIENTS; i++) {
		ssize_t n = 0;

		d->fds[i] = raw_connect(path);
		if (d->fds[i] < 0)
			return d->fds[i];
		if (kind == DRIVE_MMAPD && raw_hello(d->fds[i], "bench-driver") < 0)
			return -EIO;
		if (raw_send(d->fds[i], d->req, d->req_len) < 0)
			return -EIO;
		if (framed) {
			n = raw_read_frame(d->fds[i]);
		} else {
			char pong[sizeof(REDIS_PONG) - 1];

			if (recv(d->fds[i], pong, sizeof(pong), MSG_WAITALL) == (ssize_t)sizeof(pong) &&
			    memcmp(pong, REDIS_PONG, sizeof(pong)) == 0)
				n = (ssize_t)sizeof(pong);
		}
		if (n <= 0)
			return -EIO;
		d->reply_len = (size_t)n;
	}
	if (kind == DRIVE_MMAPD) {
		struct ucred cred;
		socklen_t len = sizeof(cred);

		if (getsockopt(d->fds[0], SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0)
			return -errno;
		d->pid = cred.pid;
	}
	return 0;
}

static void drive_close(struct drive *d)
{
	size_t i;

	for (i = 0; i < CLIENTS; i++)
		if (d->fds[i] >= 0)
			close(d->fds[i]);
}

/*
 * One round: a request in flight on every connection until duration_ns has passed; adds the
 * replies that came within it, the time and the server's CPU time to d. The connections are
 * left with no request in flight.
 */
static int drive_round(struct drive *d, uint64_t duration_ns)
{
	struct epoll_event evs[CLIENTS];
	uint64_t start, end, now, cpu0 = 0, cpu1 = 0, answered = 0;
	size_t inflight = 0, i;
	int ep = epoll_create1(EPOLL_CLOEXEC), r = 0;

	if (ep < 0)
		return -errno;
	for (i = 0; i < CLIENTS && r == 0; i++) {
		struct epoll_event ev = { .events = EPOLLIN, .data.u64 = i };

		d->got[i] = 0;
		if (epoll_ctl(ep, EPOLL_CTL_ADD, d->fds[i], &ev) < 0)
			r = -errno;
	}
	if (r == 0)
		r = proc_cpu_ns(d->pid, &cpu0);
	start = clock_ns();
	end = start + duration_ns;
	for (i = 0; i < CLIENTS && r == 0; i++, inflight++)
		r = raw_send(d->fds[i], d->req, d->req_len);
	now = start;
	while (r == 0 && inflight > 0) {
		int n = epoll_wait(ep, evs, CLIENTS, 1000), k;

		if (n < 0 && errno != EINTR)
			r = -errno;
		if (n == 0)
			r = -ETIMEDOUT;
		now = clock_ns();
		for (k = 0; k < n && r == 0; k++) {
			size_t c = (size_t)evs[k].data.u64;
			uint8_t buf[4096];
			ssize_t got = recv(d->fds[c], buf, sizeof(buf), MSG_DONTWAIT);

			if (got <= 0) {
				r = got < 0 && errno == EAGAIN ? 0 : -EIO;
				continue;
			}
			d->got[c] += (size_t)got;
			/* One request in flight: a reply, whole, is all that can come. */
			if (d->got[c] < d->reply_len)
				continue;
			if (d->got[c] > d->reply_len) {
				r = -EPROTO;
				continue;
			}
			d->got[c] = 0;
			inflight--;
			if (now <= end) {
				answered++;
				r = raw_send(d->fds[c], d->req, d->req_len);
				inflight++;
			}
		}
	}
	if (r == 0)
		r = proc_cpu_ns(d->pid, &cpu1);
	close(ep);
	if (compare_stop)
		r = -EINTR;
	d->answered += answered;
	d->ns += (now < end ? now : end) - start;
	d->cpu_ns += cpu1 - cpu0;
	return r;
}

/* A server's CPU time per request answered, in microseconds. */
static double drive_cpu_us(const struct drive *d)
{
	return d->answered ? (double)d->cpu_ns / 1e3 / (double)d->answered : 0;
}

/*
 * Prints the CPU-per-request line: mmapd's and redis's and their ratio (lower is better), then
 * the floor's and mmapd's ratio to it.
 */
static void print_cpu(const char *name, const struct drive *m, const struct drive *r,
                      const char *why, const struct drive *f, const char *floor_why)
{
	double a = drive_cpu_us(m), b = drive_cpu_us(r), c = drive_cpu_us(f);

	if (why)
		printf("%-26s mmapd %6.2fus | redis skipped: %s", name, a, why);
	else
		printf("%-26s mmapd %6.2fus | redis      %6.2fus | ratio %5.2f", name, a, b,
		       b > 0 ? a / b : 0);
	if (floor_why)
		printf(" | bare epoll skipped: %s\n", floor_why);
	else
		printf(" | bare epoll %6.2fus | ratio %5.2f\n", c, c > 0 ? a / c : 0);
	fflush(stdout);
}

/* A server's requests answered per second over its rounds. */
static double drive_rate(const struct drive *d)
{
	return d->ns ? (double)d->answered * 1e9 / (double)d->ns : 0;
}

/*
 * Starts the floor server on dir/floor.sock pinned to cpu and connects d to it. Returns 0, or
 * -errno with *ret_why saying what failed.
 */
static int drive_floor(struct drive *d, struct peer *p, const char *dir, int cpu,
                       const char **ret_why)
{
	struct floor_args a = { .req_len = 0 };
	uint8_t ping[64];
	int r;

	if ((size_t)snprintf(a.path, sizeof(a.path), "%s/floor.sock", dir) >= sizeof(a.path)) {
		*ret_why = "the temporary directory's path is too long for a Unix socket";
		return -ENAMETOOLONG;
	}
	a.req_len = raw_frame(ping, sizeof(ping), MMAPD_PING);
	a.reply_len = raw_frame(a.reply, sizeof(a.reply), MMAPD_PONG);
	r = floor_start(p, &a, cpu);
	if (r < 0) {
		*ret_why = "cannot start the floor server";
		return r;
	}
	r = drive_open(d, a.path, DRIVE_FLOOR);
	if (r < 0) {
		*ret_why = "the floor server did not answer";
		return r;
	}
	d->pid = p->pid;
	return 0;
}

/*
 * The 1-process shape, against a private redis-server on dir/redis1.sock and the floor server
 * on dir/floor.sock, both pinned to cpu. Prints the rate lines and the CPU line. Returns 0 or
 * -errno (redis missing is not an error).
 */
static int drive_all(const struct bench_opts *o, uint64_t duration_ns)
{
	char sock[sizeof(((struct sockaddr_un *)0)->sun_path)];
	char *argv[] = { "redis-server", "--port", "0", "--unixsocket", sock, "--save", "",
	                 "--appendonly", "no", "--daemonize", "no", NULL };
	struct drive m = { .answered = 0 }, rd = { .answered = 0 }, fl = { .answered = 0 };
	struct peer floor_peer = { .pid = -1, .sock = -1 };
	const char *why = NULL, *floor_why = NULL;
	pid_t pid = -1;
	int r, k;

	for (k = 0; k < CLIENTS; k++)
		rd.fds[k] = fl.fds[k] = -1;
	r = drive_open(&m, o->socket, DRIVE_MMAPD);
	if (r < 0) {
		fprintf(stderr, "mmapd-bench: the 1-process driver cannot talk to mmapd: %s\n",
		        strerror(-r));
		drive_close(&m);
		return r;
	}
	if (!proc_in_path("redis-server")) {
		why = "redis-server not installed (" REDIS_FIX ")";
	} else if ((size_t)snprintf(sock, sizeof(sock), "%s/redis1.sock", o->dir) >= sizeof(sock)) {
		why = "the temporary directory's path is too long for a Unix socket";
	} else if ((pid = proc_spawn(argv, o->peer_cpu, -1)) < 0) {
		why = "cannot fork redis-server";
	} else if (proc_wait_listening(sock, pid, REDIS_WAIT_MS) < 0 ||
	           drive_open(&rd, sock, DRIVE_REDIS) < 0) {
		why = "redis-server did not start or did not answer PING";
	} else {
		rd.pid = pid;
	}
	drive_floor(&fl, &floor_peer, o->dir, o->peer_cpu, &floor_why);
	for (k = 0; k < DRIVE_ROUNDS && r == 0; k++) {
		r = drive_round(&m, duration_ns / DRIVE_ROUNDS);
		if (r == 0 && !why)
			r = drive_round(&rd, duration_ns / DRIVE_ROUNDS);
		if (r == 0 && !floor_why)
			r = drive_round(&fl, duration_ns / DRIVE_ROUNDS);
	}
	drive_close(&m);
	drive_close(&rd);
	drive_close(&fl);
	proc_stop(pid);
	if (floor_peer.pid > 0 && peer_stop(&floor_peer) < 0 && r == 0)
		r = -EIO;
	if (r < 0) {
		fprintf(stderr, "mmapd-bench: the 1-process driver failed: %s\n", strerror(-r));
		return r;
	}
	compare_print_throughput("ping, 1 process x 50 conns", drive_rate(&m), "redis PING",
	                         why ? 0 : drive_rate(&rd), why);
	compare_print_throughput("ping, 1x50, floor", drive_rate(&m), "bare epoll",
	                         floor_why ? 0 : drive_rate(&fl), floor_why);
	print_cpu("server CPU per ping, 1x50", &m, &rd, why, &fl, floor_why);
	return 0;
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
	return drive_all(o, duration_ns);
}
