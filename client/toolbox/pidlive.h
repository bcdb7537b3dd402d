/* SPDX-License-Identifier: MIT */
/*
 * Whether a process recorded by pid in shared memory is still running: the tie-breaker of
 * the ring sides (ring_wait.c) and the persistent struct formatter (pstruct.c) when the
 * daemon lock that should tell it is free, which happens both when the process died and
 * when the daemon restarted without handing its state over (locks are not restored).
 */
#ifndef MMAPD_CLIENT_PIDLIVE_H
#define MMAPD_CLIENT_PIDLIVE_H

#include <stdbool.h>
#include <stdint.h>

/*
 * Whether process pid exists in this pid namespace and is not a zombie. pid 0 (not recorded,
 * e.g. by an older libmmapd) counts as gone. A few system calls: slow paths only.
 */
bool pid_alive(uint32_t pid);

#endif
