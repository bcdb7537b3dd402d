/* SPDX-License-Identifier: MIT */
/*
 * make soak [SOAK_SECONDS=60] [SOAK_CLIENTS=16]: a long run of many clients against one real
 * mmapd. Not a check_* suite (make check does not run it); built on tests/harness (Check), as
 * one test whose timeout is the run's length plus two minutes.
 *
 * The daemon's open_fds and VmRSS are recorded after the regions are made; then SOAK_CLIENTS
 * forked processes, each on its own libmmapd connection, do random mixed operations (open and
 * close ro/rw/cow, write + mmapd_report_changed, lock/unlock with timeouts, subscribe/unsubscribe and
 * mmapd_client_dispatch, small grow/shrink resizes, flush, stat/list/status, reconnects) until the
 * deadline, while this process SIGKILLs a random client every half second or so and starts a
 * new one in its place. At the end, with every client gone: open_fds exactly as at the start,
 * VmRSS within SOAK_RSS_SLACK_KIB of it, locks, lock_waiters, subscriptions and grants all 0,
 * one client (the status connection itself), no client died of a signal other than our
 * SIGKILL nor reported an unexpected error, the daemon answers and exits 0 on SIGTERM.
 * Prints "soak: N ops, K kills, fds A->B, rss X->Y KiB: ok" (or the violations, exit 1).
 */
#include <check.h>
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../harness.h"
#include "mmapd.h"

#define NREGIONS 6
#define MAX_CLIENTS 256
#define MAX_OPEN 4
#define KIB 1024ull
#define SOAK_RSS_SLACK_KIB 4096

struct shared {
	_Atomic uint64_t ops;
	_Atomic uint64_t unexpected;   /* errors no operation should return */
	_Atomic int64_t deadline_ms;
	char last_error[256];
};

static struct shared *sh;
static int soak_seconds = 60, soak_clients = 16;

/* What the client was doing, for the report of a SIGBUS/SIGSEGV (written by the handler). */
static char doing[160];

static void on_fault(int sig)
{
	char msg[256];
	int n = snprintf(msg, sizeof(msg), "soak: client %d got signal %d while %s\n", (int)getpid(),
	                 sig, doing);

	if (n > 0)
		(void)!write(2, msg, (size_t)n);
	signal(sig, SIG_DFL);
	raise(sig);
}

static unsigned rnd(unsigned *seed, unsigned n)
{
	return (unsigned)rand_r(seed) % n;
}

/* Records r if it is not 0 nor one of the allowed negative errnos (list ends with 0). */
static void expect(const char *what, int r, ...)
{
	va_list ap;
	int e;

	if (r >= 0)
		return;
	va_start(ap, r);
	while ((e = va_arg(ap, int)) != 0) {
		if (r == -e) {
			va_end(ap);
			return;
		}
	}
	va_end(ap);
	atomic_fetch_add(&sh->unexpected, 1);
	snprintf(sh->last_error, sizeof(sh->last_error), "pid %d: %s: %s (%s)", (int)getpid(), what,
	         mmapd_strerror(r), mmapd_last_message());
	fprintf(stderr, "soak: unexpected: %s\n", sh->last_error);
}

static void on_event(struct mmapd_client *c, const struct mmapd_event *ev, void *userdata)
{
	(void)c;
	(void)ev;
	(*(uint64_t *)userdata)++;
}

/* One client process: random operations until the deadline, then a clean exit 0. */
static void client_main(const char *sock, unsigned seed)
{
	struct mmapd_client *c = NULL;
	struct mmapd_region *open_r[MAX_OPEN] = { 0 };
	bool subscribed[NREGIONS] = { 0 };
	uint64_t events = 0;
	char name[32];
	int r;

	signal(SIGBUS, on_fault);
	signal(SIGSEGV, on_fault);
	while (test_now_ms() < atomic_load(&sh->deadline_ms)) {
		unsigned op = rnd(&seed, 100), k = rnd(&seed, NREGIONS), slot = rnd(&seed, MAX_OPEN);

		snprintf(name, sizeof(name), "soak%u", k);
		if (c == NULL) {
			r = mmapd_connect(sock, "soak", &c);
			expect("connect", r, EUSERS, 0);
			if (r < 0) {
				c = NULL;
				usleep(10000);
				continue;
			}
			mmapd_client_set_event_handler(c, on_event, &events);
			memset(subscribed, 0, sizeof(subscribed));
		}
		if (op < 15) {                         /* open ro/rw/cow */
			struct mmapd_open_opts o = MMAPD_OPEN_OPTS(
				.mode = (enum mmapd_mode)rnd(&seed, 3), .reserve = 1024 * KIB);

			if (open_r[slot] != NULL) {
				mmapd_region_close(open_r[slot]);
				open_r[slot] = NULL;
			}
			r = mmapd_region_open(c, name, &o, &open_r[slot]);
			expect("open", r, EAGAIN, 0);
			if (r < 0)
				open_r[slot] = NULL;
		} else if (op < 22) {                  /* close */
			if (open_r[slot] != NULL)
				mmapd_region_close(open_r[slot]);
			open_r[slot] = NULL;
		} else if (op < 40) {                  /* write + changed */
			struct mmapd_region *reg = open_r[slot];
			char buf[64];
			size_t len;
			uint64_t off;

			if (reg == NULL || mmapd_region_mode(reg) == MMAPD_MODE_RO ||
			    mmapd_region_length(reg) < 4096)
				continue;
			len = 1 + rnd(&seed, sizeof(buf));
			off = rnd(&seed, (unsigned)(mmapd_region_length(reg) - len));
			memset(buf, (int)op, len);
			snprintf(doing, sizeof(doing), "writing %zu bytes at %llu of %s (mode %d, window %zu, "
			         "size %llu, gen %llu)", len, (unsigned long long)off, mmapd_region_name(reg),
			         (int)mmapd_region_mode(reg), mmapd_region_length(reg),
			         (unsigned long long)mmapd_region_size(reg),
			         (unsigned long long)mmapd_region_generation(reg));
			/* -ERANGE: a shrink took that part away meanwhile. */
			r = mmapd_region_write(reg, off, buf, len);
			expect("write", r, ERANGE, 0);
			if (r == 0 && mmapd_region_mode(reg) == MMAPD_MODE_RW)
				expect("changed", mmapd_report_changed(c, mmapd_region_name(reg), off, len, NULL),
				       ERANGE, 0);
		} else if (op < 55) {                  /* lock, maybe hold it a little, unlock */
			uint64_t lock;

			r = mmapd_lock(c, name, rnd(&seed, 16) * 4096, 4096 * (1 + rnd(&seed, 4)),
			               rnd(&seed, 2) ? MMAPD_LOCK_EXCLUSIVE : MMAPD_LOCK_SHARED,
			               (int)rnd(&seed, 50), &lock);
			expect("lock", r, ETIMEDOUT, EDEADLK, EAGAIN, 0);
			if (r == 0) {
				if (rnd(&seed, 4) == 0)
					usleep(rnd(&seed, 3000));
				expect("unlock", mmapd_unlock(c, lock), 0);
			}
		} else if (op < 63) {                  /* subscribe / unsubscribe */
			if (subscribed[k])
				expect("unsubscribe", mmapd_unsubscribe(c, name), 0);
			else
				expect("subscribe", mmapd_subscribe(c, name, NULL), EAGAIN, 0);
			subscribed[k] = !subscribed[k];
		} else if (op < 78) {                  /* dispatch */
			r = mmapd_client_dispatch(c, (int)rnd(&seed, 5));
			expect("dispatch", r, EINTR, 0);
		} else if (op < 81) {                  /* resize 32..256 KiB */
			r = mmapd_resize(c, name, (32 + 32 * rnd(&seed, 8)) * KIB, 0);
			expect("resize", r, ETIMEDOUT, 0);
		} else if (op < 86) {                  /* flush */
			expect("flush", mmapd_flush(c, name, 0, 0), 0);
		} else if (op < 95) {                  /* stat / list / status */
			struct mmapd_region_info *info = NULL;
			struct mmapd_region_list *list = NULL;
			struct mmapd_status *st = NULL;

			if (op < 89) {
				expect("stat", mmapd_stat(c, name, &info), 0);
				mmapd_region_info_free(info);
			} else if (op < 92) {
				expect("list", mmapd_list_regions(c, &list), 0);
				mmapd_region_list_free(list);
			} else {
				expect("status", mmapd_get_status(c, &st), 0);
				mmapd_status_free(st);
			}
		} else if (op < 97) {                  /* reconnect (everything released) */
			for (unsigned i = 0; i < MAX_OPEN; i++) {
				if (open_r[i] != NULL)
					mmapd_region_close(open_r[i]);
				open_r[i] = NULL;
			}
			mmapd_disconnect(c);
			c = NULL;
		} else {                               /* ping */
			expect("ping", mmapd_ping(c), 0);
		}
		atomic_fetch_add(&sh->ops, 1);
		snprintf(doing, sizeof(doing), "between operations (last op %u)", op);
	}
	for (unsigned i = 0; i < MAX_OPEN; i++)
		if (open_r[i] != NULL)
			mmapd_region_close(open_r[i]);
	mmapd_disconnect(c);
	_exit(0);
}

static pid_t spawn_client(const struct test_daemon *d, unsigned seed)
{
	pid_t pid = fork();

	ck_assert(pid >= 0);
	if (pid == 0)
		client_main(d->sock, seed);
	return pid;
}

START_TEST(test_soak)
{
	struct test_daemon d;
	pid_t pids[MAX_CLIENTS];
	uint64_t fds0, fds1, rss0, rss1, kills = 0, bad_exits = 0;
	unsigned seed = (unsigned)time(NULL) ^ (unsigned)getpid();
	int64_t deadline, next_kill;
	bool ok = true;
	int i, status;

	sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	ck_assert(sh != MAP_FAILED);
	test_daemon_start(&d, "{\"shrink_timeout_ms\": 2000}");
	for (i = 0; i < NREGIONS; i++) {
		char name[32];

		snprintf(name, sizeof(name), "soak%d", i);
		test_daemon_create(&d, name, 64 * KIB, false);
	}
	fds0 = test_daemon_status_u64(&d, "open_fds");
	rss0 = test_daemon_rss_kib(&d);
	printf("soak: %d clients for %d s (seed %u), daemon pid %d: fds %llu, rss %llu KiB\n",
	       soak_clients, soak_seconds, seed, (int)d.pid, (unsigned long long)fds0,
	       (unsigned long long)rss0);
	fflush(stdout);

	deadline = test_now_ms() + (int64_t)soak_seconds * 1000;
	/* The clients go on a little past the kill loop, which treats any end as early. */
	atomic_store(&sh->deadline_ms, deadline + 500);
	for (i = 0; i < soak_clients; i++)
		pids[i] = spawn_client(&d, seed + 1000u * (unsigned)i);
	next_kill = test_now_ms() + 200;
	while (test_now_ms() < deadline) {
		usleep(20000);
		/* A client that ended early (it should not) counts against the run. */
		for (i = 0; i < soak_clients; i++) {
			if (waitpid(pids[i], &status, WNOHANG) == pids[i]) {
				fprintf(stderr, "soak: client %d ended early (status 0x%x)\n", (int)pids[i],
				        status);
				bad_exits++;
				pids[i] = spawn_client(&d, seed + (unsigned)kills * 7919u + (unsigned)i);
			}
		}
		if (test_now_ms() >= next_kill) {
			i = (int)rnd(&seed, (unsigned)soak_clients);
			kill(pids[i], SIGKILL);
			ck_assert_int_eq(waitpid(pids[i], &status, 0), pids[i]);
			if (!(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL)) {
				fprintf(stderr, "soak: client %d ended with status 0x%x before SIGKILL\n",
				        (int)pids[i], status);
				bad_exits++;
			}
			kills++;
			pids[i] = spawn_client(&d, seed + (unsigned)kills * 7919u);
			next_kill = test_now_ms() + 200 + rnd(&seed, 600);
		}
	}
	/* The clients stop on their own at the deadline (a lock wait or shrink at most). */
	for (i = 0; i < soak_clients; i++) {
		status = test_wait_pid(pids[i], 15000);
		if (status == -1) {
			fprintf(stderr, "soak: client %d did not stop; killing it\n", (int)pids[i]);
			kill(pids[i], SIGKILL);
			(void)waitpid(pids[i], &status, 0);
			bad_exits++;
		} else if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
			fprintf(stderr, "soak: client %d ended with status 0x%x%s\n", (int)pids[i], status,
			        WIFSIGNALED(status) ? (WTERMSIG(status) == SIGBUS ? " (SIGBUS)" : " (signal)") : "");
			bad_exits++;
		}
	}

	test_daemon_assert_alive(&d);
	fds1 = test_daemon_wait_status(&d, "open_fds", fds0);
	static const char *const zero[] = { "locks", "lock_waiters", "subscriptions", "grants" };
	for (size_t z = 0; z < sizeof(zero) / sizeof(zero[0]); z++) {
		uint64_t v = test_daemon_wait_status(&d, zero[z], 0);

		if (v != 0) {
			fprintf(stderr, "soak: status %s is %llu after every client left\n", zero[z],
			        (unsigned long long)v);
			ok = false;
		}
	}
	if (test_daemon_status_u64(&d, "clients") != 1) {
		fprintf(stderr, "soak: clients is not 1 (the status connection)\n");
		ok = false;
	}
	rss1 = test_daemon_rss_kib(&d);
	if (fds1 != fds0) {
		fprintf(stderr, "soak: open_fds %llu at the end, %llu at the start\n",
		        (unsigned long long)fds1, (unsigned long long)fds0);
		ok = false;
	}
	if (rss1 > rss0 + SOAK_RSS_SLACK_KIB) {
		fprintf(stderr, "soak: VmRSS grew from %llu to %llu KiB (more than %d KiB)\n",
		        (unsigned long long)rss0, (unsigned long long)rss1, SOAK_RSS_SLACK_KIB);
		ok = false;
	}
	if (atomic_load(&sh->unexpected) != 0) {
		fprintf(stderr, "soak: %llu unexpected errors, the last: %s\n",
		        (unsigned long long)atomic_load(&sh->unexpected), sh->last_error);
		ok = false;
	}
	if (bad_exits != 0) {
		fprintf(stderr, "soak: %llu clients ended badly\n", (unsigned long long)bad_exits);
		ok = false;
	}
	test_daemon_stop(&d);   /* asserts exit status 0 on SIGTERM */
	printf("soak: %llu ops, %llu kills, fds %llu->%llu, rss %llu->%llu KiB: %s\n",
	       (unsigned long long)atomic_load(&sh->ops), (unsigned long long)kills,
	       (unsigned long long)fds0, (unsigned long long)fds1, (unsigned long long)rss0,
	       (unsigned long long)rss1, ok ? "ok" : "FAILED");
	fflush(stdout);
	munmap(sh, sizeof(*sh));
	ck_assert_msg(ok, "soak invariants violated (see above)");
}
END_TEST

int main(void)
{
	const char *s = getenv("SOAK_SECONDS"), *n = getenv("SOAK_CLIENTS");
	Suite *suite = suite_create("soak");
	TCase *tc = tcase_create("soak");

	if (s != NULL && *s)
		soak_seconds = atoi(s);
	if (n != NULL && *n)
		soak_clients = atoi(n);
	if (soak_seconds < 1 || soak_clients < 1 || soak_clients > MAX_CLIENTS) {
		fprintf(stderr, "soak: SOAK_SECONDS must be >= 1, SOAK_CLIENTS 1..%d\n", MAX_CLIENTS);
		return 2;
	}
	tcase_set_timeout(tc, soak_seconds + 120);
	tcase_add_test(tc, test_soak);
	suite_add_tcase(suite, tc);
	return test_run_suite(suite) == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
