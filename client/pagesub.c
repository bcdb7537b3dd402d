/* SPDX-License-Identifier: MIT */
/*
 * Page subscriptions of libmmapd (docs/coordination.md, "Page subscriptions";
 * mmapd_subscribe_page()): a subscription whose changes this client reads from the region's
 * change log (shared/changelog.h) itself, through a read-only mapping of the control page,
 * instead of getting a `changed` frame per change from the daemon. Writers ring the log's
 * doorbell (an eventfd) after publishing while the page has listeners; every page subscriber
 * watches it edge-triggered in mmapd_client_fd()'s epoll set, so a poll loop or the dispatch
 * thread wakes for it, and nobody ever reads the counter: each write is an edge for every
 * subscriber, whoever else reads or writes the descriptor. (Not in an epoll set of its own
 * inside that one: Linux allows an eventfd at most 500 such nested watchers, 1000 direct ones
 * when the set is itself watched by epoll, as an event loop's is; poll() has no limit.)
 *
 * mmapd_client_dispatch() (event.c) reads every page subscription's log from where it stopped
 * and queues MMAPD_EVENT_CHANGED and MMAPD_EVENT_OVERFLOW as the daemon's events would say
 * them: one event per change with its seq, range and writer's pid, none for this connection's
 * own changes (its slot, or its subscription's tag on entries of its changed requests), an
 * overflow with the last seq lost when the ring lapped the reader, a change was unreadable or
 * never published within PAGESUB_STUCK_MS; and changes coalesced into one event (ranges merged,
 * the writer's pid only when all came from one) when a reader finds more than PAGESUB_SINGLE
 * waiting at once, as the daemon merges them for a subscriber that falls behind. Before an
 * event of the region read from the socket is queued (react.c), the log is read first, so
 * events keep their order. The writer's client name is not in the log: writer_client is NULL.
 *
 * A page subscription belongs to the connection it was made on: after a reconnection it is
 * dropped here, and the subscription made again is an ordinary one (coord.c).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "ctlpage.h"
#include "domain.h"

/* More changes than this found at once are coalesced into one event. */
#define PAGESUB_SINGLE     64
/* The most ranges a coalesced event carries: more, and it is an overflow. */
#define PAGESUB_MAX_RANGES 64
/* How long a change may stay reserved but not published before it is reported lost. */
#define PAGESUB_STUCK_MS   100
/* Larger than any range a writer can report (the daemon's sizes stay far below). */
#define PAGESUB_END_MAX    (1ull << 62)

/* The changes one read found, to deliver one by one or coalesced. */
struct pagesub_batch {
	struct changelog_change ch[CHANGELOG_ENTRIES];
	size_t n;
};

static void pagesub_push_seq(struct mmapd_client *client, const char *name,
                             enum mmapd_event_type type, uint64_t seq)
{
	struct mmapd_event ev = { .type = type, .region = name, .seq = seq, .writer_pid = -1 };

	event_push(client, &ev);
}

static int range_cmp(const void *a, const void *b)
{
	const struct mmapd_range *x = a, *y = b;

	return x->offset < y->offset ? -1 : x->offset > y->offset;
}

/* One event for every change of b: ranges sorted and merged. */
static void pagesub_push_merged(struct mmapd_client *client, const char *name,
                                const struct pagesub_batch *b)
{
	struct mmapd_range ranges[CHANGELOG_ENTRIES];
	struct mmapd_event ev = {
		.type = MMAPD_EVENT_CHANGED, .region = name, .first_seq = b->ch[0].seq,
		.seq = b->ch[b->n - 1].seq, .ranges = ranges, .writer_pid = b->ch[0].pid,
	};
	size_t i, n = 0;

	for (i = 0; i < b->n; i++) {
		ranges[i] = (struct mmapd_range){ b->ch[i].offset, b->ch[i].length };
		if (b->ch[i].pid != b->ch[0].pid)
			ev.writer_pid = -1;
	}
	qsort(ranges, b->n, sizeof(ranges[0]), range_cmp);
	for (i = 0; i < b->n; i++) {
		struct mmapd_range *last = n ? &ranges[n - 1] : NULL;

		if (last && ranges[i].offset <= last->offset + last->length) {
			uint64_t end = ranges[i].offset + ranges[i].length;

			if (end > last->offset + last->length)
				last->length = end - last->offset;
		} else {
			ranges[n++] = ranges[i];
		}
	}
	if (n > PAGESUB_MAX_RANGES) {
		pagesub_push_seq(client, name, MMAPD_EVENT_OVERFLOW, ev.seq);
		return;
	}
	ev.nranges = n;
	event_push(client, &ev);
}

/* Delivers what b holds and empties it. */
static void pagesub_flush(struct mmapd_client *client, const char *name, struct pagesub_batch *b)
{
	size_t i;

	if (b->n > PAGESUB_SINGLE) {
		pagesub_push_merged(client, name, b);
	} else {
		for (i = 0; i < b->n; i++) {
			struct mmapd_range range = { b->ch[i].offset, b->ch[i].length };
			struct mmapd_event ev = {
				.type = MMAPD_EVENT_CHANGED, .region = name, .seq = b->ch[i].seq,
				.first_seq = b->ch[i].seq, .ranges = &range, .nranges = 1,
				.writer_pid = b->ch[i].pid,
			};

			/* Made outside mmapd: where is not known, as in the daemon's event. */
			if (b->ch[i].flags & CHANGELOG_EXTERNAL) {
				ev.external = true;
				ev.size = b->ch[i].length;
				ev.ranges = NULL;
				ev.nranges = 0;
			}
			event_push(client, &ev);
		}
	}
	b->n = 0;
}

/* Whether change s, found reserved but not published, has been so for PAGESUB_STUCK_MS. */
static bool pagesub_stuck_long(struct page_sub *ps, uint64_t s)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	if (ps->stuck_seq != s) {
		ps->stuck_seq = s;
		ps->stuck_since = now;
		return false;
	}
	return (now.tv_sec - ps->stuck_since.tv_sec) * 1000 +
	       (now.tv_nsec - ps->stuck_since.tv_nsec) / 1000000 >= PAGESUB_STUCK_MS;
}

/* Reads ps's log from where it stopped and queues its events. Lock held. */
static void pagesub_read_one(struct mmapd_client *client, struct page_sub *ps)
{
	struct changelog *log = ctlpage_log(ps->page);
	uint64_t head = changelog_head(log), s, lost = 0;
	int own = fastlock_slot_of(client, ps->dev, ps->ino);
	struct pagesub_batch *b;

	if (head < ps->next_seq)
		return;
	b = malloc(sizeof(*b));
	if (!b) {
		/* The changes are there to read at the next call. */
		return;
	}
	b->n = 0;
	if (head - ps->next_seq >= CHANGELOG_ENTRIES) {
		/* The ring lapped this reader: what it cannot read any more is an overflow. */
		lost = head - CHANGELOG_ENTRIES;
		ps->next_seq = lost + 1;
	}
	for (s = ps->next_seq; s <= head; s++) {
		struct changelog_change ch;
		int r = changelog_read(log, s, &ch);

		if (r == -EAGAIN && !pagesub_stuck_long(ps, s))
			break;         /* its writer rings once it published it */
		ps->next_seq = s + 1;
		if (r < 0 || ch.length == 0 || ch.offset >= PAGESUB_END_MAX ||
		    ch.length > PAGESUB_END_MAX - ch.offset) {
			lost = s;      /* unreadable, or a range no writer could report */
			continue;
		}
		/* This connection's own change: the daemon would not send it either. */
		if (ch.slot == ps->tag || (own >= 0 && ch.slot == (unsigned)own))
			continue;
		if (lost) {
			pagesub_flush(client, ps->name, b);
			pagesub_push_seq(client, ps->name, MMAPD_EVENT_OVERFLOW, lost);
			lost = 0;
		}
		b->ch[b->n++] = ch;
	}
	pagesub_flush(client, ps->name, b);
	if (lost)
		pagesub_push_seq(client, ps->name, MMAPD_EVENT_OVERFLOW, lost);
	free(b);
}

static void pagesub_free(struct page_sub *ps)
{
	munmap(ps->page, CTLPAGE_SIZE);
	close(ps->bell);
	free(ps);
}

int pagesub_add(struct mmapd_client *client, const char *name, int page_fd, int bell,
                unsigned tag, uint64_t seq)
{
	struct epoll_event ev = { .events = EPOLLIN | EPOLLET };
	struct page_sub *ps = calloc(1, sizeof(*ps));
	struct stat st;
	void *map = MAP_FAILED;
	int r = ps ? 0 : -ENOMEM;

	if (r == 0 && fstat(page_fd, &st) < 0)
		r = -errno;
	if (r == 0 && st.st_size < CTLPAGE_SIZE)
		r = -EPROTO;
	if (r == 0) {
		map = mmap(NULL, CTLPAGE_SIZE, PROT_READ, MAP_SHARED, page_fd, 0);
		if (map == MAP_FAILED)
			r = -errno;
		else if (ctlpage_check(map) < 0)
			r = -EPROTO;
	}
	ev.data.fd = bell;
	if (r == 0 && epoll_ctl(client->epfd, EPOLL_CTL_ADD, bell, &ev) < 0)
		r = -errno;
	close(page_fd);
	if (r < 0) {
		if (map != MAP_FAILED)
			munmap(map, CTLPAGE_SIZE);
		close(bell);
		free(ps);
		return r;
	}
	ps->page = map;
	ps->dev = st.st_dev;
	ps->ino = st.st_ino;
	ps->bell = bell;
	ps->tag = tag;
	ps->gen = client->gen;
	ps->next_seq = seq + 1;
	strcpy(ps->name, name);
	ps->next = client->page_subs;
	client->page_subs = ps;
	client->bells = true;
	/* Changes between the reply and the doorbell's watch rang nobody here. */
	pagesub_read_one(client, ps);
	return 0;
}

void pagesub_forget(struct mmapd_client *client, const char *name)
{
	for (struct page_sub **p = &client->page_subs; *p; p = &(*p)->next) {
		struct page_sub *ps = *p;

		if (strcmp(ps->name, name) == 0) {
			*p = ps->next;
			pagesub_free(ps);
			return;
		}
	}
}

void pagesub_renamed(struct mmapd_client *client, const char *name, const char *to)
{
	for (struct page_sub *ps = client->page_subs; ps; ps = ps->next)
		if (strcmp(ps->name, name) == 0)
			snprintf(ps->name, sizeof(ps->name), "%s", to);
}

bool pagesub_edges(struct mmapd_client *client)
{
	struct epoll_event evs[16];
	bool sock = false;
	int n, i;

	if (!client->bells)
		return true;
	/* The socket and the event descriptor come back too: they are level-triggered. */
	do {
		n = epoll_wait(client->epfd, evs, 16, 0);
		for (i = 0; i < n; i++)
			if (evs[i].data.fd == client->sock)
				sock = true;
	} while (n == 16);
	return sock || n < 0;
}

void pagesub_read(struct mmapd_client *client)
{
	struct page_sub **p = &client->page_subs;

	while (*p) {
		struct page_sub *ps = *p;

		if (ps->gen != client->gen) {
			/* Its connection ended: the subscription made again is an ordinary one. */
			*p = ps->next;
			pagesub_free(ps);
			continue;
		}
		pagesub_read_one(client, ps);
		p = &ps->next;
	}
}

void pagesub_catch_up(struct mmapd_client *client, const char *name)
{
	for (struct page_sub *ps = client->page_subs; ps; ps = ps->next)
		if (ps->gen == client->gen && strcmp(ps->name, name) == 0)
			pagesub_read_one(client, ps);
}
