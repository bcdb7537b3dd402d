/* SPDX-License-Identifier: MIT */
/*
 * The file descriptor store (see fdstore.h). The state is one JSON object,
 *   {"version": 2, "regions": {"<name>": {"uid": U, "gid": G, "perm": P, "policy": {...},
 *                                          "exec": E, "huge": "none"|"hugetlb"|"thp"}},
 *    "handover": {...}}
 * where "handover" (fdconn.c) is written only at shutdown, when connections are handed over.
 * A state without it says version 1, as before handovers existed, and either is read. It
 * sits in a memfd sealed against every change, so that nothing but this daemon's next run
 * reads what it wrote. It is rewritten whole (remove, then store) on every change: anonymous
 * regions are few and changes to them rare, and a whole object is never half old.
 *
 * Adoption trusts nothing it is given: a descriptor named "anon/<name>" must be a memfd that
 * mmapd made (its /proc link says "/memfd:", it carries our F_SEAL_SHRINK, it is open
 * read-write; hugetlb and MFD_EXEC/MFD_NOEXEC_SEAL memfds are such too), its mode is made
 * private to the daemon's user (memfd.c says why; an older daemon left them 0666), and the
 * name must be a valid region name not taken yet. A memfd with no entry
 * in the state (a daemon killed between storing the two) is adopted as the daemon's own with
 * mode 0600, so that only root and the daemon's user reach it until someone chowns it.
 */
#include "fdstore.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "flush.h"
#include "log.h"
#include "memfd.h"
#include "msg.h"
#include "name.h"
#include "region.h"
#include "sdnotify.h"
#include "state.h"
#include "why.h"

#define FDSTORE_STATE     "state"
#define FDSTORE_ANON      "anon/"
#define FDSTORE_NAME_MAX  255            /* systemd's limit on FDNAME= */
#define FDSTORE_VERSION   2              /* with a handover (fdconn.c) */
#define FDSTORE_VERSION_MIN 1            /* without: what older daemons read */
#define FDSTORE_STATE_MAX (16u << 20)    /* a few hundred bytes per anonymous region */
#define FDSTORE_ORPHAN_PERM 0600u

bool fdstore_name_is_ours(const char *fdname)
{
	return strcmp(fdname, FDSTORE_STATE) == 0 ||
	       strncmp(fdname, FDSTORE_ANON, strlen(FDSTORE_ANON)) == 0 ||
	       fdstore_name_is_conn(fdname);
}

bool fdstore_name_is_conn(const char *fdname)
{
	return strncmp(fdname, FDSTORE_CONN_PREFIX, strlen(FDSTORE_CONN_PREFIX)) == 0;
}

/* Writes "anon/<name>" into buf. Returns false when it is too long for FDNAME=. */
static bool fdstore_anon_name(const char *name, char buf[FDSTORE_NAME_MAX + 1])
{
	return (size_t)snprintf(buf, FDSTORE_NAME_MAX + 1, FDSTORE_ANON "%s", name) <=
	       FDSTORE_NAME_MAX;
}

int fdstore_send(const char *verb, const char *fdname, int fd)
{
	char msg[64 + FDSTORE_NAME_MAX];
	int r;

	snprintf(msg, sizeof(msg), "%s\nFDNAME=%s", verb, fdname);
	r = sdnotify_send_fd(msg, fd);
	if (r < 0)
		log_warn("cannot tell the service manager %s for \"%s\": %s", verb, fdname,
		         strerror(-r));
	return r;
}

/* The state as text (cJSON_free), with handover (borrowed, may be NULL); NULL on ENOMEM. */
static char *fdstore_state_text(struct server *srv, const cJSON *handover)
{
	cJSON *obj = cJSON_CreateObject(), *regions = cJSON_CreateObject();
	struct htab_iter it;
	struct hnode *node;
	char *text = NULL;

	/* Without a handover the state is what version 1 was: an older daemon still reads it. */
	if (!obj || !regions || !cJSON_AddNumberToObject(obj, "version", handover ?
	                                                  FDSTORE_VERSION : FDSTORE_VERSION_MIN) ||
	    !cJSON_AddItemToObject(obj, "regions", regions)) {
		cJSON_Delete(regions);
		goto out;
	}
	htab_iter_init(&srv->regions, &it);
	while ((node = htab_iter_next(&srv->regions, &it)) != NULL) {
		struct region *r = htab_entry(node, struct region, node);
		cJSON *entry, *policy;

		if (!r->anonymous || r->state != REGION_READY)
			continue;
		entry = cJSON_CreateObject();
		if (!entry || !cJSON_AddItemToObject(regions, r->name, entry)) {
			cJSON_Delete(entry);
			goto out;
		}
		policy = policy_to_json(&r->flush.policy);
		if (!policy || !cJSON_AddItemToObject(entry, "policy", policy)) {
			cJSON_Delete(policy);
			goto out;
		}
		if (!cJSON_AddNumberToObject(entry, "uid", r->acc.uid) ||
		    !cJSON_AddNumberToObject(entry, "gid", r->acc.gid) ||
		    !cJSON_AddNumberToObject(entry, "perm", r->acc.perm) ||
		    !region_anon_to_json(r, entry))
			goto out;
	}
	if (handover) {
		cJSON *copy = cJSON_Duplicate(handover, true);

		if (!copy || !cJSON_AddItemToObject(obj, "handover", copy)) {
			cJSON_Delete(copy);
			goto out;
		}
	}
	text = msg_print(obj, false);
out:
	cJSON_Delete(obj);
	return text;
}

void fdstore_state_write(struct server *srv, const cJSON *handover)
{
	char *text;
	int fd;

	if (!srv->fdstore)
		return;
	text = fdstore_state_text(srv, handover);
	if (!text) {
		log_error("out of memory: the owners and modes of anonymous regions in the fd store "
		          "are not up to date");
		return;
	}
	fd = memfd_text_create("mmapd-state", text);
	cJSON_free(text);
	if (fd < 0) {
		log_error("cannot make the state memfd for the fd store: %s", strerror(-fd));
		return;
	}
	/* The store keeps every descriptor sent under a name; the old state goes first. */
	fdstore_send("FDSTOREREMOVE=1", FDSTORE_STATE, -1);
	fdstore_send("FDSTORE=1", FDSTORE_STATE, fd);
	close(fd);
}

void fdstore_state_changed(struct server *srv)
{
	/* After the stop handed connections over, a job still ending must not drop them. */
	fdstore_state_write(srv, srv->handover);
}

void fdstore_region_added(struct region *r)
{
	char fdname[FDSTORE_NAME_MAX + 1];

	if (!r->srv->fdstore)
		return;
	if (!fdstore_anon_name(r->name, fdname)) {
		log_warn("anonymous region '%s' will not survive a restart: its name is too long for "
		         "the service manager's fd store", r->name);
		return;
	}
	fdstore_state_changed(r->srv);
	fdstore_send("FDSTORE=1", fdname, r->fd);
}

void fdstore_region_removed(struct server *srv, const char *name)
{
	char fdname[FDSTORE_NAME_MAX + 1];

	if (!srv->fdstore || !fdstore_anon_name(name, fdname))
		return;
	fdstore_send("FDSTOREREMOVE=1", fdname, -1);
	fdstore_state_changed(srv);
}

/* Reads and parses the stored state (fd borrowed). Returns the object or NULL (logged). */
static cJSON *fdstore_state_read(int fd)
{
	struct stat st;
	cJSON *obj = NULL;
	char *text;
	uint64_t version;
	ssize_t n;

	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size <= 0 ||
	    (uint64_t)st.st_size > FDSTORE_STATE_MAX) {
		log_warn("fd store: ignoring the state: not a regular file of 1 byte to %u MiB",
		         FDSTORE_STATE_MAX >> 20);
		return NULL;
	}
	text = malloc((size_t)st.st_size);
	if (!text) {
		log_error("fd store: out of memory reading the state");
		return NULL;
	}
	do
		n = pread(fd, text, (size_t)st.st_size, 0);
	while (n < 0 && errno == EINTR);
	if (n != st.st_size || msg_parse(text, (size_t)n, &obj) < 0 ||
	    msg_get_u64(obj, "version", &version) < 0 || version < FDSTORE_VERSION_MIN ||
	    version > FDSTORE_VERSION ||
	    !cJSON_IsObject(cJSON_GetObjectItemCaseSensitive(obj, "regions"))) {
		log_warn("fd store: ignoring the state: unreadable, or not the JSON object of "
		         "version %d to %d", FDSTORE_VERSION_MIN, FDSTORE_VERSION);
		cJSON_Delete(obj);
		obj = NULL;
	}
	free(text);
	return obj;
}

/* Charges adopted region r to its owner's budget, over its limits if need be. */
static int fdstore_charge(struct server *srv, struct region *r)
{
	struct budget *b = budget_ref_uid(srv, r->acc.uid);

	if (!b)
		return -ENOMEM;
	region_budget_attach(r, b, r->size, true, NULL);
	budget_unref(b);
	return 0;
}

/*
 * Checks that fd is an anonymous region's memfd as mmapd makes them, and makes it private to
 * the daemon's user as mmapd now makes them. Returns 0, or -EINVAL (or the error of the
 * check that could not be made) with ret_why set.
 */
static int fdstore_check_memfd(int fd, struct stat *st, struct why *ret_why)
{
	char proc[64], link[32];
	ssize_t n;
	int seals, flags, r;

	if (fstat(fd, st) < 0 || !S_ISREG(st->st_mode)) {
		why_set(ret_why, "not a regular file");
		return -EINVAL;
	}
	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
	n = readlink(proc, link, sizeof(link) - 1);
	if (n < 0) {
		r = -errno;
		why_set(ret_why, "its /proc/self/fd link cannot be read");
		return r;
	}
	link[n] = '\0';
	if (strncmp(link, "/memfd:", 7) != 0) {
		why_set(ret_why, "not a memfd");
		return -EINVAL;
	}
	seals = fcntl(fd, F_GET_SEALS);
	if (seals < 0 || !(seals & F_SEAL_SHRINK) || (seals & (F_SEAL_WRITE | F_SEAL_FUTURE_WRITE))) {
		why_set(ret_why, "not sealed as mmapd seals anonymous regions");
		return -EINVAL;
	}
	flags = fcntl(fd, F_GETFL);
	if (flags < 0 || (flags & O_ACCMODE) != O_RDWR) {
		why_set(ret_why, "not open read-write");
		return -EINVAL;
	}
	/* An older daemon left its memfds 0666: any holder of a read-only grant could reopen
	 * them read-write. */
	r = memfd_restrict(fd);
	if (r < 0) {
		why_set(ret_why, "its mode cannot be made private to the daemon's user (not its owner?)");
		return r;
	}
	return 0;
}

/* Reads one region's entry of the state into r. Returns false when it is unusable. */
static bool fdstore_entry_apply(const cJSON *entry, struct region *r)
{
	const cJSON *policy = cJSON_GetObjectItemCaseSensitive(entry, "policy");
	uint64_t uid, gid, perm;

	if (!cJSON_IsObject(entry) || msg_get_u64(entry, "uid", &uid) < 0 ||
	    msg_get_u64(entry, "gid", &gid) < 0 || msg_get_u64(entry, "perm", &perm) < 0 ||
	    uid > UINT32_MAX - 1 || gid > UINT32_MAX - 1 || perm > ACCESS_PERM_MAX ||
	    !policy || policy_parse(policy, &r->flush.policy, NULL) < 0)
		return false;
	r->acc.uid = (uint32_t)uid;
	r->acc.gid = (uint32_t)gid;
	r->acc.perm = (unsigned)perm;
	return true;
}

/* Adopts the descriptor stored as fdname (consumed). Returns true when it became a region. */
static bool fdstore_adopt_one(struct server *srv, const char *fdname, int fd, const cJSON *state)
{
	const char *name = fdname + strlen(FDSTORE_ANON);
	const cJSON *entry = NULL;
	struct region *r;
	struct stat st;
	struct why why;

	if (name_check(name, strlen(name)) < 0) {
		why_set(&why, "not a valid region name");
		goto refuse;
	}
	if (region_lookup(srv, name)) {
		why_set(&why, "a region of that name exists already");
		goto refuse;
	}
	if (fdstore_check_memfd(fd, &st, &why) < 0)
		goto refuse;
	r = region_new(srv, name, true, REGION_READY);
	if (!r) {
		why_set(&why, "out of memory");
		goto refuse;
	}
	r->fd = fd;
	r->size = (uint64_t)st.st_size;
	/* A holder of a read-write grant may have grown it past the limit (region_size): the
	 * size it had before is not known, and a larger one is never adopted. */
	if (r->size > srv->limits->max_region_size) {
		log_warn("fd store: anonymous region '%s' is %" PRIu64 " bytes, above max_region_size; "
		         "it is reported and granted as %" PRIu64 " bytes", name, r->size,
		         srv->limits->max_region_size);
		r->size = srv->limits->max_region_size;
		r->size_refused = true;
	}
	if (state)
		entry = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(state,
		                                                                          "regions"),
		                                         name);
	if (!entry || !fdstore_entry_apply(entry, r)) {
		log_warn("fd store: anonymous region '%s' has no usable owner and mode in the stored "
		         "state; it now belongs to the daemon's user with mode %04o", name,
		         FDSTORE_ORPHAN_PERM);
		r->flush.policy.kind = POLICY_MANUAL;
		r->flush.policy.value = 0;
		r->acc.uid = (uint32_t)getuid();
		r->acc.gid = (uint32_t)getgid();
		r->acc.perm = FDSTORE_ORPHAN_PERM;
	}
	region_anon_from_json(r, entry);
	/* The region existed before the restart: neither max_regions nor its owner's budget
	 * turns it away now. */
	if (fdstore_charge(srv, r) < 0 || region_table_add(r, true) < 0) {
		region_unref(r);   /* closes fd */
		log_error("fd store: out of memory adopting anonymous region '%s'; it is lost", name);
		fdstore_send("FDSTOREREMOVE=1", fdname, -1);
		return false;
	}
	region_unref(r);
	return true;
refuse:
	log_warn("fd store: refusing the descriptor stored as \"%s\": %s; removing it from the store",
	         fdname, why.text);
	close(fd);
	fdstore_send("FDSTOREREMOVE=1", fdname, -1);
	return false;
}

void fdstore_init(struct server *srv, struct sdlisten *passed)
{
	cJSON *state = NULL;
	size_t i, adopted = 0, offered = 0;
	int state_fd = -1, pass;

	srv->fdstore = srv->cfg->fdstore && sdnotify_wanted();
	if (srv->fdstore)
		log_info("anonymous regions are kept in the service manager's fd store");
	/* The last state stored is the current one; earlier copies are stale. */
	for (i = 0; i < passed->nkept; i++) {
		if (strcmp(passed->kept[i].name, FDSTORE_STATE) != 0)
			continue;
		if (state_fd >= 0)
			close(state_fd);
		state_fd = passed->kept[i].fd;
		passed->kept[i].fd = -1;
	}
	if (state_fd >= 0 && srv->fdstore)
		state = fdstore_state_read(state_fd);
	if (state_fd >= 0)
		close(state_fd);
	/* Regions first: the connections' grants refer to them. */
	for (pass = 0; pass < 2; pass++) {
		for (i = 0; i < passed->nkept; i++) {
			const char *fdname = passed->kept[i].name;
			int fd = passed->kept[i].fd;

			if (fd < 0 || fdstore_name_is_conn(fdname) != (pass == 1))
				continue;
			passed->kept[i].fd = -1;
			if (!srv->fdstore) {
				log_warn("fd store: \"fdstore\" is false or $NOTIFY_SOCKET is unset; closing "
				         "the descriptor passed as \"%s\"", fdname);
				close(fd);
			} else if (pass == 0) {
				offered++;
				adopted += fdstore_adopt_one(srv, fdname, fd, state);
			} else {
				if (srv->adopt_conn)
					srv->adopt_conn(srv, cJSON_GetObjectItemCaseSensitive(state, "handover"),
					                fdname, fd);
				else
					close(fd);
				/* Adopted or refused, it leaves the store: a live connection is ours alone. */
				fdstore_send("FDSTOREREMOVE=1", fdname, -1);
			}
		}
	}
	cJSON_Delete(state);
	if (offered > 0)
		log_info("fd store: restored %zu of %zu anonymous region%s", adopted, offered,
		         offered == 1 ? "" : "s");
	fdstore_state_changed(srv);
}

void fdstore_report_loss(struct server *srv)
{
	size_t n = srv->nanonymous;

	if (srv->fdstore || n == 0)
		return;
	log_warn("%zu anonymous region%s will be lost: %s", n, n == 1 ? "" : "s",
	         sdnotify_wanted() ? "the file descriptor store is disabled (\"fdstore\": false)" :
	         "not running under systemd with a file descriptor store");
}
