/* SPDX-License-Identifier: MIT */
/*
 * Starting and stopping the mmapd under test (see server.h). The daemon runs in the
 * foreground as our child, in its own process group, with PR_SET_PDEATHSIG so that it cannot
 * outlive a benchmark that crashes; its warnings go to our stderr, so stdout stays the
 * results alone.
 */
#include <errno.h>
#include <ftw.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cpu.h"
#include "server.h"

#define START_TIMEOUT_MS 10000
#define STOP_TIMEOUT_MS  10000
#define POLL_MS          10

static void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

static int remove_entry(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
	(void)st;
	(void)type;
	(void)ftw;
	if (remove(path) < 0)
		fprintf(stderr, "mmapd-bench: cannot remove %s: %s\n", path, strerror(errno));
	return 0;
}

static void remove_tree(const char *dir)
{
	nftw(dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static void describe_exit(const char *bin, int status)
{
	if (WIFEXITED(status))
		fprintf(stderr, "mmapd-bench: %s exited with status %d\n", bin, WEXITSTATUS(status));
	else if (WIFSIGNALED(status))
		fprintf(stderr, "mmapd-bench: %s was killed by signal %d (%s)\n", bin,
		        WTERMSIG(status), strsignal(WTERMSIG(status)));
}

/* Waits up to timeout_ms for the child; returns 1 with *ret_status once it exited, else 0. */
static int wait_exit(pid_t pid, long timeout_ms, int *ret_status)
{
	long waited;

	for (waited = 0; waited <= timeout_ms; waited += POLL_MS) {
		pid_t r = waitpid(pid, ret_status, WNOHANG);

		if (r == pid || (r < 0 && errno == ECHILD))
			return 1;
		sleep_ms(POLL_MS);
	}
	return 0;
}

/* Writes dir/name into buf. Returns 0, or -ENAMETOOLONG if it does not fit. */
static int path_join(char *buf, size_t size, const char *dir, const char *name)
{
	int n = snprintf(buf, size, "%s/%s", dir, name);

	return n < 0 || (size_t)n >= size ? -ENAMETOOLONG : 0;
}

static pid_t spawn(const struct server *srv, const char *bin, int cpu)
{
	pid_t parent = getpid();
	pid_t pid = fork();

	if (pid != 0)
		return pid;
	/*
	 * Its own process group keeps a Ctrl-C meant for the benchmark away from mmapd: the
	 * benchmark stops it with SIGTERM once it is done with it.
	 */
	if (setpgid(0, 0) < 0 || prctl(PR_SET_PDEATHSIG, SIGTERM) < 0 || getppid() != parent ||
	    cpu_pin(cpu) < 0)
		_exit(127);
	execl(bin, bin, "--foreground", "--socket", srv->sock, "--data-dir", srv->data,
	      "--log-level", "warn", "--no-config", (char *)NULL);
	fprintf(stderr, "mmapd-bench: cannot run %s: %s\n", bin, strerror(errno));
	_exit(127);
}

static int wait_ready(struct server *srv, const char *bin, struct mmapd_client **ret_client)
{
	long waited;
	int status, r = -ETIMEDOUT;

	for (waited = 0; waited <= START_TIMEOUT_MS; waited += POLL_MS) {
		if (waitpid(srv->pid, &status, WNOHANG) == srv->pid) {
			describe_exit(bin, status);
			srv->pid = -1;
			return -ECHILD;
		}
		r = mmapd_connect(srv->sock, "mmapd-bench", ret_client);
		if (r == 0)
			return 0;
		if (r != -ENOENT && r != -ECONNREFUSED)
			break;
		sleep_ms(POLL_MS);
	}
	fprintf(stderr, "mmapd-bench: cannot connect to mmapd: %s\n", mmapd_last_message());
	return r;
}

int server_start(struct server *srv, const char *bin, int cpu, struct mmapd_client **ret_client)
{
	const char *tmp = getenv("TMPDIR");
	int r;

	srv->pid = -1;
	r = path_join(srv->dir, sizeof(srv->dir), tmp && *tmp ? tmp : "/tmp", "mmapd-bench.XXXXXX");
	if (r == 0 && !mkdtemp(srv->dir))
		r = -errno;
	if (r < 0) {
		fprintf(stderr, "mmapd-bench: cannot make a directory in %s: %s\n",
		        tmp && *tmp ? tmp : "/tmp", strerror(-r));
		return r;
	}
	/* The socket's path must fit sun_path too: mmapd_connect() says so if it does not. */
	r = path_join(srv->sock, sizeof(srv->sock), srv->dir, "s");
	if (r == 0)
		r = path_join(srv->data, sizeof(srv->data), srv->dir, "data");
	if (r < 0) {
		fprintf(stderr, "mmapd-bench: %s: %s\n", srv->dir, strerror(-r));
		goto fail;
	}
	if (mkdir(srv->data, 0700) < 0) {
		r = -errno;
		fprintf(stderr, "mmapd-bench: mkdir %s: %s\n", srv->data, strerror(-r));
		goto fail;
	}
	srv->pid = spawn(srv, bin, cpu);
	if (srv->pid < 0) {
		r = -errno;
		fprintf(stderr, "mmapd-bench: fork: %s\n", strerror(-r));
		goto fail;
	}
	r = wait_ready(srv, bin, ret_client);
	if (r == 0)
		return 0;
fail:
	server_stop(srv);
	return r;
}

int server_stop(struct server *srv)
{
	int status = 0, r = 0;

	if (srv->pid > 0) {
		kill(srv->pid, SIGTERM);
		if (!wait_exit(srv->pid, STOP_TIMEOUT_MS, &status)) {
			fprintf(stderr, "mmapd-bench: mmapd did not stop on SIGTERM; killing it\n");
			kill(srv->pid, SIGKILL);
			waitpid(srv->pid, &status, 0);
			r = -EIO;
		} else if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
			describe_exit("mmapd", status);
			r = -EIO;
		}
		srv->pid = -1;
	}
	remove_tree(srv->dir);
	return r;
}
