/* SPDX-License-Identifier: MIT */
/*
 * The client object of libmmapd, below everything that uses it: its references (the owner,
 * every open region, every call in progress and the dispatch thread each hold one; the last
 * unref frees the struct and what it still owns), the descriptors behind mmapd_client_fd(),
 * the lists it remembers (locks, subscriptions, pending shrink-acks), the error a client that
 * is not up reports, and what the rest may ask about the dispatch thread without calling up
 * into dispatch_thread.c.
 * Connecting and disconnecting, which build and tear down the whole, are connect.c's.
 */
#include <errno.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "client.h"
#include "ctlpage.h"

void client_ref(struct mmapd_client *client)
{
	atomic_fetch_add(&client->refs, 1);
}

/* Closes the descriptors behind mmapd_client_fd(). Lock held, or the client is not shared yet. */
void client_close_wake(struct mmapd_client *client)
{
	if (client->epfd >= 0)
		close(client->epfd);
	if (client->evfd >= 0)
		close(client->evfd);
	client->epfd = -1;
	client->evfd = -1;
	client->evfd_set = false;
}

void client_unref(struct mmapd_client *client)
{
	if (atomic_fetch_sub(&client->refs, 1) != 1)
		return;
	if (client->sock >= 0)
		close(client->sock);
	client_close_wake(client);
	fd_queue_clear(&client->fds);
	frame_reader_done(&client->reader);
	event_queue_clear(&client->events);
	sendq_clear(client);
	id_list_free(client->acks);
	id_list_free(client->locks);
	name_list_free(client->subs);
	fast_free(client);
	page_subs_free(client);
	pthread_cond_destroy(&client->cond);
	pthread_mutex_destroy(&client->lock);
	pthread_mutex_destroy(&client->send_lock);
	free(client->dead_message);
	free(client->path);
	free(client->name);
	free(client);
}

/* Unmaps the control pages and forgets the fast locks (fastlock.c uses them). */
void fast_free(struct mmapd_client *client)
{
	struct fast_lock *lists[2] = { client->fast_locks, client->fast_spare };

	for (int i = 0; i < 2; i++) {
		while (lists[i]) {
			struct fast_lock *l = lists[i];

			lists[i] = l->next;
			free(l);
		}
	}
	while (client->fast_pages) {
		struct fast_page *fp = client->fast_pages;

		client->fast_pages = fp->next;
		munmap(fp->page, CTLPAGE_SIZE);
		if (fp->bell > 0)
			close(fp->bell - 1);
		free(fp);
	}
	free(client->fast_index);
}

void id_list_free(struct id_node *list)
{
	while (list) {
		struct id_node *next = list->next;

		free(list);
		list = next;
	}
}

void name_list_free(struct name_node *list)
{
	while (list) {
		struct name_node *next = list->next;

		free(list);
		list = next;
	}
}

/* Whether the calling thread is the client's dispatch thread. Lock held. */
bool client_dispatch_is_self(const struct mmapd_client *client)
{
	return client->dispatch.state != DISPATCH_THREAD_NONE &&
	       pthread_equal(client->dispatch.thread, pthread_self());
}

bool client_dispatch_stopping_self(const struct mmapd_client *client)
{
	return client->dispatch.state == DISPATCH_THREAD_STOPPING && client_dispatch_is_self(client);
}

bool client_dispatch_busy(const struct mmapd_client *client)
{
	return client->dispatch.state != DISPATCH_THREAD_NONE;
}

int client_down_error(const struct mmapd_client *client)
{
	if (client->state == CLIENT_CLOSED)
		return error_set(-ENOTCONN, "the connection was closed by mmapd_disconnect()");
	return error_set(client->dead_err, "%s",
	                 client->dead_message ? client->dead_message
	                                      : mmapd_strerror(client->dead_err));
}

/* Unmaps the pages of the page subscriptions and closes their doorbells (pagesub.c's). */
void page_subs_free(struct mmapd_client *client)
{
	while (client->page_subs) {
		struct page_sub *ps = client->page_subs;

		client->page_subs = ps->next;
		munmap(ps->page, CTLPAGE_SIZE);
		close(ps->bell);
		free(ps);
	}
}
