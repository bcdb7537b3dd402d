/* SPDX-License-Identifier: MIT */
/*
 * The futex broadcast floor (see futexcast.h). The shared page is mapped before the processes
 * are forked, so its futex words are shared ones (no FUTEX_PRIVATE_FLAG), keyed by the page,
 * as a control page's are.
 */
#include "futexcast.h"

#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "stats.h"

/* Looks at the sequence word before sleeping: mmapd_region_wait_changed()'s MMAPD_FAST_SPIN. */
#define FUTEXCAST_POLLS 200
/* How long a sleeper sleeps before it looks whether it should stop. */
#define FUTEXCAST_SLICE_NS 100000000L

struct futexcast_shm {
	alignas(64) _Atomic uint64_t seq;
	_Atomic uint64_t stamp;
	alignas(64) _Atomic uint32_t wake;
	_Atomic uint32_t sleepers;
	_Atomic bool stop;
};

struct waiter {
	struct futexcast_shm *shm;
	int sock;
	pthread_mutex_t *send_mu;
};

/* Sleeps until seq passes seen (or a slice ends). */
static void waiter_sleep(struct futexcast_shm *shm, uint64_t seen)
{
	struct timespec slice = { .tv_nsec = FUTEXCAST_SLICE_NS };
	uint32_t w;

	atomic_fetch_add(&shm->sleepers, 1);
	w = atomic_load(&shm->wake);
	if (atomic_load(&shm->seq) == seen)
		syscall(SYS_futex, &shm->wake, FUTEX_WAIT, w, &slice, NULL, 0);
	atomic_fetch_sub(&shm->sleepers, 1);
}

static void *waiter_thread(void *arg)
{
	const struct waiter *t = arg;
	struct futexcast_shm *shm = t->shm;
	uint64_t seen = atomic_load(&shm->seq), delay;

	while (!atomic_load(&shm->stop)) {
		int polls;

		for (polls = 0; polls < FUTEXCAST_POLLS && atomic_load(&shm->seq) == seen; polls++)
			sched_yield();
		if (atomic_load(&shm->seq) == seen) {
			waiter_sleep(shm, seen);
			continue;
		}
		delay = clock_ns() - atomic_load(&shm->stamp);
		seen = atomic_load(&shm->seq);
		pthread_mutex_lock(t->send_mu);
		if (send(t->sock, &delay, sizeof(delay), MSG_NOSIGNAL) != sizeof(delay))
			_exit(1);
		pthread_mutex_unlock(t->send_mu);
	}
	return NULL;
}

struct proc_args {
	struct futexcast_shm *shm;
	size_t threads;
};

/* A process of waiters: ready byte once they run, then their delays until our end closes. */
static void waiter_proc(int sock, const void *arg)
{
	const struct proc_args *a = arg;
	static struct waiter ws[FUTEXCAST_THREADS_MAX];
	static pthread_t tids[FUTEXCAST_THREADS_MAX];
	pthread_mutex_t send_mu = PTHREAD_MUTEX_INITIALIZER;
	struct pollfd pfd = { .fd = sock, .events = POLLIN };
	char ready = 'r';
	size_t i;

	for (i = 0; i < a->threads; i++) {
		ws[i] = (struct waiter){ .shm = a->shm, .sock = sock, .send_mu = &send_mu };
		if (pthread_create(&tids[i], NULL, waiter_thread, &ws[i]) != 0)
			_exit(1);
	}
	if (send(sock, &ready, 1, MSG_NOSIGNAL) != 1)
		_exit(1);
	while (poll(&pfd, 1, -1) == 0 || !pfd.revents)
		;
	atomic_store(&a->shm->stop, true);
	for (i = 0; i < a->threads; i++)
		pthread_join(tids[i], NULL);
}

int futexcast_start(struct futexcast *f, size_t nprocs, size_t per_proc, int cpu)
{
	struct proc_args a = { .threads = per_proc };
	void *map;

	f->nprocs = 0;
	f->per_proc = per_proc;
	f->shm = NULL;
	if (nprocs > FUTEXCAST_PROCS_MAX || nprocs * per_proc > FUTEXCAST_THREADS_MAX)
		return -EINVAL;
	map = mmap(NULL, sizeof(*f->shm), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (map == MAP_FAILED)
		return -errno;
	f->shm = a.shm = map;
	while (f->nprocs < nprocs) {
		char ready;
		int r = peer_start(&f->procs[f->nprocs], cpu, waiter_proc, &a);

		if (r < 0)
			return r;
		if (recv(f->procs[f->nprocs++].sock, &ready, 1, 0) != 1)
			return -EIO;
	}
	return 0;
}

int futexcast_round(struct futexcast *f, uint64_t stamp, uint64_t *delays)
{
	struct futexcast_shm *shm = f->shm;
	size_t i;

	atomic_store(&shm->stamp, stamp);
	atomic_fetch_add(&shm->seq, 1);
	if (atomic_load(&shm->sleepers) != 0) {
		atomic_fetch_add(&shm->wake, 1);
		syscall(SYS_futex, &shm->wake, FUTEX_WAKE, INT_MAX, NULL, NULL, 0);
	}
	for (i = 0; i < f->nprocs * f->per_proc; i++) {
		ssize_t got = recv(f->procs[i / f->per_proc].sock, &delays[i], sizeof(delays[i]),
		                   MSG_WAITALL);

		if (got != (ssize_t)sizeof(delays[i]))
			return got < 0 ? -errno : -ECONNRESET;
	}
	return 0;
}

int futexcast_stop(struct futexcast *f)
{
	int r = 0, r2;

	/* Newest first: each child holds copies of the sockets of those started before it. */
	while (f->nprocs > 0) {
		r2 = peer_stop(&f->procs[--f->nprocs]);
		if (r == 0)
			r = r2;
	}
	if (f->shm)
		munmap(f->shm, sizeof(*f->shm));
	f->shm = NULL;
	return r;
}
