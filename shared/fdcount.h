/* SPDX-License-Identifier: MIT */
/*
 * Counting a process's open descriptors through /proc/self/fd: the daemon reports it in
 * `status`, and the tests use it to prove that nothing leaked.
 */
#ifndef MMAPD_SHARED_FDCOUNT_H
#define MMAPD_SHARED_FDCOUNT_H

/* Returns the number of open descriptors of the calling process (not counting the one used
 * to read the directory), or -errno. */
int fd_count(void);

#endif
