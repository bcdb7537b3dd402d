/* SPDX-License-Identifier: MIT */
/*
 * The mmapd that the benchmark measures: started as a child process on a private temporary
 * directory (socket and data directory inside it), waited for until it answers, and stopped
 * with SIGTERM at the end, after which the directory is removed.
 */
#ifndef MMAPD_BENCH_SERVER_H
#define MMAPD_BENCH_SERVER_H

#include <limits.h>
#include <sys/types.h>

#include "mmapd.h"

struct server {
	pid_t pid;
	char dir[PATH_MAX];   /* the mkdtemp directory */
	char sock[PATH_MAX];  /* dir/s */
	char data[PATH_MAX];  /* dir/data */
};

/*
 * Creates the temporary directory, starts bin (--foreground, warnings only) on it, pinned to
 * cpu unless that is -1, and connects to it, retrying for a few seconds while it starts up.
 * Returns 0 with *ret_client connected, or -errno after saying why on stderr (having stopped
 * the daemon and removed the directory).
 */
int server_start(struct server *srv, const char *bin, int cpu, struct mmapd_client **ret_client);

/*
 * Stops the daemon with SIGTERM (SIGKILL if it has not exited after a few seconds) and removes
 * the directory. Returns 0 if the daemon exited with status 0, -EIO (said on stderr) if not.
 */
int server_stop(struct server *srv);

#endif
