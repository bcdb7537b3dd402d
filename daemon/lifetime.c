/* SPDX-License-Identifier: MIT */
/*
 * Temporary regions and truncation on close (see lifetime.h). Both act on the loop with one
 * system call each: an unlinkat of the temporary region's file (not followed by an fsync of
 * the directory: after a crash a temporary file may come back, as an ordinary region), or an
 * ftruncate to the final size, which needs no coordination because nobody holds a grant.
 */
#include "lifetime.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <string.h>
#include <unistd.h>

#include "dirindex.h"
#include "fdstore.h"
#include "log.h"
#include "meta.h"
#include "notify.h"
#include "region.h"
#include "vocab.h"

/* Deletes temporary region r, whose last grant went. */
static void lifetime_delete(struct region *r)
{
	struct server *srv = r->srv;

	region_ref(r);
	region_table_remove(r);
	if (r->anonymous) {
		fdstore_region_removed(srv, r->name);
	} else {
		if (unlinkat(srv->dir_fd, r->name, 0) < 0 && errno != ENOENT)
			log_error("cannot delete temporary region '%s': %s", r->name, strerror(errno));
		dirindex_file_changed(srv, r->name);
		meta_remove(srv, r->name);
	}
	log_info("deleted temporary %sregion '%s': its last grant was released",
	         r->anonymous ? "anonymous " : "", r->name);
	region_retire(r, NULL);
	region_unref(r);
}

/* Tells r's subscribers its size went from old to r->size. */
static void lifetime_announce(struct region *r, uint64_t old)
{
	cJSON *event = notify_event_new(r, proto_event_name(PROTO_EVENT_RESIZED));

	if (event && cJSON_AddNumberToObject(event, PROTO_FIELD_SIZE, (double)r->size) &&
	    cJSON_AddNumberToObject(event, PROTO_FIELD_OLD_SIZE, (double)old) &&
	    cJSON_AddNumberToObject(event, PROTO_FIELD_GENERATION, (double)r->generation) &&
	    cJSON_AddFalseToObject(event, PROTO_FIELD_EXTERNAL))
		notify_region(r, event, NOTIFY_SUBSCRIBERS, NULL);
	cJSON_Delete(event);
}

/* Truncates r, whose last grant went, to its final size. */
static void lifetime_truncate(struct region *r)
{
	uint64_t old = region_size(r), size = r->final_size;
	int ret;

	r->has_final_size = false;
	if (size == old)
		return;
	do
		ret = ftruncate(r->fd, (off_t)size);
	while (ret < 0 && errno == EINTR);
	if (ret < 0) {
		log_error("cannot truncate region '%s' to %" PRIu64 " bytes on its last close: %s",
		          r->name, size, strerror(errno));
		return;
	}
	r->size = size;
	r->generation++;
	log_info("truncated region '%s' from %" PRIu64 " to %" PRIu64 " bytes: its last grant "
	         "was released", r->name, old, size);
	lifetime_announce(r, old);
}

bool lifetime_last_grant(struct region *r)
{
	/*
	 * A stopping daemon lets go of every grant at once, handed over to the next daemon or
	 * not: that is no holder letting go, and the next daemon starts without the marks.
	 */
	if (r->srv->stopping)
		return false;
	if (r->temporary) {
		lifetime_delete(r);
		return true;
	}
	if (r->has_final_size && !region_busy(r))
		lifetime_truncate(r);
	return false;
}
