/* SPDX-License-Identifier: MIT */
/*
 * The optional background dispatch thread of libmmapd, for programs without an event loop.
 * mmapd_client_dispatch_thread_start() starts one thread per client that polls mmapd_client_fd()'s epoll
 * descriptor and its own stop eventfd, and calls the body of mmapd_client_dispatch() (event_dispatch,
 * event.c) without waiting whenever the first is readable: handlers then run on that thread,
 * one at a time, without any lock held, exactly as they would in mmapd_client_dispatch().
 *
 * mmapd_client_dispatch_thread_stop() writes the stop eventfd (and wakes a reconnection's backoff,
 * which reconnect.c abandons for it), then joins the thread: a handler that runs is waited for.
 * From the thread itself (a handler) stopping would wait for itself: -EDEADLK. The thread also
 * ends by itself when the connection is down for good (reconnection disabled or it gave up);
 * stop then returns that error. mmapd_disconnect() ends the thread through
 * dispatch_thread_end(): it joins it, or, from a handler on the thread, detaches it so that it
 * ends once the handler returns (the disconnect empties the queue, so no handler runs after).
 *
 * While a thread is started, mmapd_client_dispatch() is refused with -EBUSY, and a thread cannot be
 * started while an mmapd_client_dispatch() call runs: events would be split between two threads.
 * The fields of struct dispatch_thread are under the client's lock; the thread holds a
 * reference on the client until it returns.
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "top.h"

/* Waits on the client's fd and on stopfd; calls event_dispatch() while not told to stop. */
static void *dispatch_thread_main(void *arg)
{
	struct mmapd_client *client = arg;
	struct dispatch_thread *dt = &client->dispatch;
	struct pollfd pfds[2];
	bool detached;
	int err = 0;

	pthread_mutex_lock(&client->lock);
	pfds[0] = (struct pollfd){ .fd = client->epfd, .events = POLLIN };
	pfds[1] = (struct pollfd){ .fd = dt->stopfd, .events = POLLIN };
	while (dt->state == DISPATCH_THREAD_RUNNING) {
		int r;

		pthread_mutex_unlock(&client->lock);
		r = poll(pfds, 2, -1);
		if (r > 0 && !(pfds[1].revents & POLLIN)) {
			r = event_dispatch(client, 0);
			/* -EINTR: a signal the thread did not block (a fault) interrupted nothing lasting. */
			if (r < 0 && r != -EINTR)
				err = r;
		}
		pthread_mutex_lock(&client->lock);
		if (err < 0)
			break;
		/*
		 * Another thread's reconnection keeps mmapd_client_fd() readable (the client is broken)
		 * until it ends: wait for it instead of polling in a loop.
		 */
		while (client->reconnecting && dt->state == DISPATCH_THREAD_RUNNING)
			pthread_cond_wait(&client->cond, &client->lock);
	}
	/* Stopped, or the connection is down for good: then stop reports why. */
	if (dt->state == DISPATCH_THREAD_RUNNING)
		dt->err = err;
	detached = dt->detached;
	if (detached) {
		/* Nobody joins: the thread releases what stop would have. */
		close(dt->stopfd);
		dt->stopfd = -1;
		dt->detached = false;
		dt->state = DISPATCH_THREAD_NONE;
		pthread_cond_broadcast(&client->cond);
	}
	pthread_mutex_unlock(&client->lock);
	client_unref(client);
	return NULL;
}

/* Tells the thread to stop and wakes it wherever it waits. Lock held, state RUNNING. */
static void dispatch_thread_signal(struct mmapd_client *client)
{
	uint64_t one = 1;
	ssize_t n;

	client->dispatch.state = DISPATCH_THREAD_STOPPING;
	/* An eventfd written once after it was made: its counter cannot overflow. */
	n = write(client->dispatch.stopfd, &one, sizeof(one));
	(void)n;
	pthread_cond_broadcast(&client->cond);
}

/*
 * Joins the thread told to stop and forgets it. Returns the error that ended it by itself,
 * or 0. Lock held; released while joining.
 */
static int dispatch_thread_join(struct mmapd_client *client)
{
	struct dispatch_thread *dt = &client->dispatch;
	pthread_t thread = dt->thread;
	int err;

	pthread_mutex_unlock(&client->lock);
	pthread_join(thread, NULL);
	pthread_mutex_lock(&client->lock);
	err = dt->err;
	close(dt->stopfd);
	dt->stopfd = -1;
	dt->err = 0;
	dt->state = DISPATCH_THREAD_NONE;
	pthread_cond_broadcast(&client->cond);
	return err;
}

void dispatch_thread_end(struct mmapd_client *client)
{
	struct dispatch_thread *dt = &client->dispatch;

	pthread_mutex_lock(&client->lock);
	if (dt->state == DISPATCH_THREAD_RUNNING && client_dispatch_is_self(client)) {
		dispatch_thread_signal(client);
		dt->detached = true;
		pthread_detach(dt->thread);
	} else if (dt->state == DISPATCH_THREAD_RUNNING) {
		dispatch_thread_signal(client);
		dispatch_thread_join(client);
	} else {
		/* Another thread is stopping it (or it is detached and ending): wait for that. */
		while (dt->state == DISPATCH_THREAD_STOPPING && !dt->detached &&
		       !client_dispatch_is_self(client))
			pthread_cond_wait(&client->cond, &client->lock);
	}
	pthread_mutex_unlock(&client->lock);
}

MMAPD_EXPORT int mmapd_client_dispatch_thread_start(struct mmapd_client *client)
{
	struct dispatch_thread *dt;
	sigset_t all, old;
	int fd, r;

	if (!client)
		return error_set(-EINVAL, "client is NULL");
	dt = &client->dispatch;
	pthread_mutex_lock(&client->lock);
	if (client->state == CLIENT_CLOSED) {
		r = client_down_error(client);
		goto out;
	}
	if (dt->state != DISPATCH_THREAD_NONE) {
		r = error_set(-EBUSY, "a dispatch thread is already started for this client");
		goto out;
	}
	if (client->dispatching > 0) {
		r = error_set(-EBUSY, "mmapd_client_dispatch() is running on this client");
		goto out;
	}
	fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (fd < 0) {
		r = -errno;
		r = error_set(r, "cannot make the stop descriptor: %s", mmapd_strerror(r));
		goto out;
	}
	dt->stopfd = fd;
	dt->err = 0;
	dt->detached = false;
	dt->state = DISPATCH_THREAD_RUNNING;
	client_ref(client);
	/*
	 * The thread blocks every asynchronous signal (they go to the application's threads);
	 * faults (SIGBUS for the guard, SIGSEGV, ...) stay deliverable to it.
	 */
	sigfillset(&all);
	sigdelset(&all, SIGBUS);
	sigdelset(&all, SIGSEGV);
	sigdelset(&all, SIGFPE);
	sigdelset(&all, SIGILL);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	r = -pthread_create(&dt->thread, NULL, dispatch_thread_main, client);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (r < 0) {
		close(fd);
		dt->stopfd = -1;
		dt->state = DISPATCH_THREAD_NONE;
		client_unref(client);
		r = error_set(r, "cannot start the dispatch thread: %s", mmapd_strerror(r));
	}
out:
	pthread_mutex_unlock(&client->lock);
	return r;
}

MMAPD_EXPORT int mmapd_client_dispatch_thread_stop(struct mmapd_client *client)
{
	struct dispatch_thread *dt;
	int r = 0;

	if (!client)
		return error_set(-EINVAL, "client is NULL");
	dt = &client->dispatch;
	/* A handler on the thread may disconnect meanwhile: the client must outlive the join. */
	client_ref(client);
	pthread_mutex_lock(&client->lock);
	if (client_dispatch_is_self(client)) {
		r = error_set(-EDEADLK, "the dispatch thread cannot stop itself (called from a "
		              "handler it runs)");
	} else if (dt->state == DISPATCH_THREAD_RUNNING) {
		dispatch_thread_signal(client);
		r = dispatch_thread_join(client);
		if (r < 0)
			error_set(r, "the dispatch thread had ended: the connection is down (%s)",
			          mmapd_strerror(r));
	} else if (dt->state == DISPATCH_THREAD_STOPPING) {
		/* Another thread is stopping it: wait until it is gone. */
		while (dt->state != DISPATCH_THREAD_NONE)
			pthread_cond_wait(&client->cond, &client->lock);
	} else {
		r = error_set(-ESRCH, "no dispatch thread is started for this client");
	}
	pthread_mutex_unlock(&client->lock);
	client_unref(client);
	return r;
}
