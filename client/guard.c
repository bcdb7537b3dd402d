/* SPDX-License-Identifier: MIT */
/*
 * The SIGBUS guard, after libwayland's wl_shm_buffer_begin_access/end_access: accesses to a
 * region made between mmapd_guard_begin() and mmapd_guard_end() survive the region's file
 * being truncated behind the mapping.
 *
 * Each thread keeps a small stack of the mappings it guards (address range and a failed
 * flag), recorded when the guard begins. The process-wide SIGBUS handler, installed once,
 * looks the faulting address up in the faulting thread's stack (SIGBUS from a memory access
 * is delivered to the thread that made it). On a hit it maps private zero pages over the whole
 * mapping with MAP_FIXED, so the faulting instruction completes when the handler returns, and
 * marks the guard failed. Otherwise it passes the signal to the handler installed before ours,
 * or restores the default action so that the fault, re-executed, kills the process as it would
 * have without libmmapd.
 *
 * Async-signal-safety: the handler reads only this thread's stack (initial-exec TLS, so no
 * allocation can happen in the handler; small enough, 8 entries of 32 bytes, for the static
 * TLS that glibc keeps for libraries loaded with dlopen()), writes the failed
 * flag (a sig_atomic_t) and calls mmap() and sigaction(), both async-signal-safe system calls.
 * The stack's depth is published after its entry is complete, with a signal fence.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/mman.h>

#include "domain.h"

struct guard {
	const struct mmapd_region *region;
	uintptr_t lo, hi;             /* the mapping as it was at mmapd_guard_begin() */
	int prot;
	volatile sig_atomic_t failed;
};

struct guard_stack {
	struct guard entries[MMAPD_GUARD_DEPTH];
	volatile sig_atomic_t depth;
};

static __thread struct guard_stack guards __attribute__((tls_model("initial-exec")));

static pthread_once_t guard_once = PTHREAD_ONCE_INIT;
static struct sigaction guard_previous;
static int guard_install_err;

/* Passes a fault that is none of ours on to whoever handled SIGBUS before us. */
static void guard_chain(int sig, siginfo_t *info, void *uctx)
{
	if (guard_previous.sa_flags & SA_SIGINFO) {
		guard_previous.sa_sigaction(sig, info, uctx);
	} else if (guard_previous.sa_handler != SIG_DFL && guard_previous.sa_handler != SIG_IGN) {
		guard_previous.sa_handler(sig);
	} else {
		/* Ignoring a fault would re-fault forever: let the default action happen. */
		struct sigaction dfl = { .sa_handler = SIG_DFL };

		sigemptyset(&dfl.sa_mask);
		sigaction(SIGBUS, &dfl, NULL);
	}
}

static void guard_handler(int sig, siginfo_t *info, void *uctx)
{
	uintptr_t addr = (uintptr_t)info->si_addr;
	int saved_errno = errno;

	for (int i = guards.depth - 1; i >= 0; i--) {
		struct guard *g = &guards.entries[i];

		if (addr < g->lo || addr >= g->hi)
			continue;
		if (mmap((void *)g->lo, g->hi - g->lo, g->prot,
		         MAP_FIXED | MAP_PRIVATE | MAP_ANONYMOUS, -1, 0) == MAP_FAILED)
			break;
		/* Every guard of this mapping (nested ones included) now reads zeros. */
		for (int j = 0; j < guards.depth; j++)
			if (guards.entries[j].lo == g->lo)
				guards.entries[j].failed = 1;
		errno = saved_errno;
		return;
	}
	errno = saved_errno;
	guard_chain(sig, info, uctx);
}

static void guard_install(void)
{
	struct sigaction sa = { .sa_sigaction = guard_handler, .sa_flags = SA_SIGINFO | SA_NODEFER };

	sigemptyset(&sa.sa_mask);
	guard_install_err = sigaction(SIGBUS, &sa, &guard_previous) < 0 ? -errno : 0;
}

MMAPD_EXPORT int mmapd_guard_begin(struct mmapd_region *region)
{
	struct guard *g;

	if (!region)
		return error_set(-EINVAL, "region is NULL");
	pthread_once(&guard_once, guard_install);
	if (guard_install_err < 0)
		return error_set(guard_install_err, "cannot install the SIGBUS handler: %s",
		                 mmapd_strerror(guard_install_err));
	if (guards.depth >= MMAPD_GUARD_DEPTH)
		return error_set(-EBUSY, "this thread already holds %d guards", MMAPD_GUARD_DEPTH);
	g = &guards.entries[guards.depth];
	pthread_mutex_lock(&region->client->lock);
	if (!region->map) {
		pthread_mutex_unlock(&region->client->lock);
		return error_set(-EINVAL, "region '%s' is not mapped", region->name);
	}
	g->region = region;
	g->lo = (uintptr_t)region->map;
	g->hi = g->lo + region->map_pages * region->page;
	g->prot = region->mode == MMAPD_MODE_RO ? PROT_READ : PROT_READ | PROT_WRITE;
	g->failed = 0;
	pthread_mutex_unlock(&region->client->lock);
	atomic_signal_fence(memory_order_release);
	guards.depth++;
	return 0;
}

MMAPD_EXPORT int mmapd_guard_end(struct mmapd_region *region)
{
	struct guard *g;

	if (!region)
		return error_set(-EINVAL, "region is NULL");
	if (guards.depth == 0 || guards.entries[guards.depth - 1].region != region)
		return error_set(-EINVAL, "'%s' is not the innermost guard of this thread",
		                 region->name);
	g = &guards.entries[guards.depth - 1];
	guards.depth--;
	atomic_signal_fence(memory_order_acquire);
	if (g->failed)
		return error_set(-EFAULT, "a page of '%s' vanished during the guarded access (its "
		                 "file was truncated); the mapping now holds private zero pages: "
		                 "close and reopen the region", region->name);
	return 0;
}
