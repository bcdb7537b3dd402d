/* SPDX-License-Identifier: MIT */
/*
 * The server (see server.h): data directory and listening socket at startup, accepting,
 * signals, and shutdown. Accepting is ours, not libuv's: a uv_poll_t tells when the
 * listening socket is readable and accept4 gives non-blocking, close-on-exec sockets. When
 * the process runs out of descriptors, the spare descriptor is given up for a moment to
 * accept the pending connection and close it at once; otherwise a level-triggered poll would
 * report the same unacceptable connection forever.
 */
#include "server.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "access.h"
#include "budget.h"
#include "conn.h"
#include "dirindex.h"
#include "extchange.h"
#include "extwatch.h"
#include "fdconn.h"
#include "fdstore.h"
#include "flush.h"
#include "fsdir.h"
#include "log.h"
#include "meta.h"
#include "lifetime.h"
#include "lock.h"
#include "msg.h"
#include "notify.h"
#include "ops.h"
#include "region.h"
#include "resize.h"
#include "sdnotify.h"
#include "vocab.h"
#include "why.h"

#define SERVER_ACCEPTS_PER_WAKE 64
#define SERVER_WARN_INTERVAL_MS 1000   /* at most one refused-connection warning per second */

/*
 * The hooks of state.h: the server, at the top, is the one file that names the modules the
 * lower layers call up to. Teardown order is the old one: locks (which may grant waiters of
 * other connections), subscriptions, shrink acknowledgements, then grants.
 */
static const struct conn_listener server_lock_listener = { .release = lock_conn_release };
static const struct conn_listener server_notify_listener = {
	.release = notify_conn_release,
	.holding = notify_conn_holding,
	.drained = notify_conn_drained,
};
static const struct conn_listener server_resize_listener = { .release = resize_conn_gone };
static const struct conn_listener server_grant_listener = { .release = grant_free_all };
static const struct conn_listener *const server_conn_listeners[] = {
	&server_lock_listener, &server_notify_listener, &server_resize_listener,
	&server_grant_listener, NULL,
};

static void server_lock_retire(struct region *r, const struct conn *by)
{
	(void)by;
	lock_region_retire(r);
}

static void server_resize_retire(struct region *r, const struct conn *by)
{
	(void)by;
	resize_region_retire(r);
}

static void server_flush_retire(struct region *r, const struct conn *by)
{
	(void)by;
	flush_region_retire(r);
}

/* Retirement order is the old one: locks, resizes, flushes, then the notifications. */
static const struct region_listener server_lock_region = { .retire = server_lock_retire };
static const struct region_listener server_resize_region = {
	.busy = resize_busy,
	.retire = server_resize_retire,
};
static const struct region_listener server_flush_region = {
	.busy = flush_busy,
	.retire = server_flush_retire,
};
static const struct region_listener server_notify_region = { .retire = notify_region_retire };
static const struct region_listener server_lifetime_region = { .released = lifetime_last_grant };
static const struct region_listener *const server_region_listeners[] = {
	&server_lock_region, &server_resize_region, &server_flush_region, &server_notify_region,
	&server_lifetime_region, NULL,
};

/* Creates dir (one level) with mode if it does not exist. Returns 0 or -errno. */
static int server_mkdir(const char *dir, mode_t mode)
{
	if (mkdir(dir, mode) == 0) {
		log_info("created directory %s", dir);
		return 0;
	}
	return errno == EEXIST ? 0 : -errno;
}

static int server_open_data_dir(struct server *s)
{
	const char *dir = s->cfg->data_dir;
	int r;

	r = server_mkdir(dir, 0750);
	if (r < 0) {
		log_error("cannot create data directory %s: %s", dir, strerror(-r));
		return r;
	}
	s->dir_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (s->dir_fd < 0) {
		r = -errno;
		log_error("cannot open data directory %s: %s", dir, strerror(-r));
		return r;
	}
	r = fsdir_clean_stale(s->dir_fd);
	if (r < 0)
		log_warn("cannot clean temporary files in %s: %s", dir, strerror(-r));
	else if (r > 0)
		log_info("removed %d temporary file%s left in %s by an earlier run", r,
		         r == 1 ? "" : "s", dir);
	return 0;
}

static int server_sockaddr(const char *path, struct sockaddr_un *sa)
{
	size_t len = strlen(path);

	memset(sa, 0, sizeof(*sa));
	sa->sun_family = AF_UNIX;
	if (len == 0 || len >= sizeof(sa->sun_path))
		return -ENAMETOOLONG;
	memcpy(sa->sun_path, path, len + 1);
	return 0;
}

/*
 * Handles whatever is at the socket path: a socket nobody answers on is a leftover and goes;
 * a live daemon, or anything that is not a socket, stops us.
 */
static int server_check_stale(const char *path, const struct sockaddr_un *sa)
{
	struct stat st;
	int fd, r;

	if (lstat(path, &st) < 0) {
		if (errno == ENOENT)
			return 0;
		r = -errno;
		log_error("cannot check %s: %s", path, strerror(-r));
		return r;
	}
	if (!S_ISSOCK(st.st_mode)) {
		log_error("%s exists and is not a socket; refusing to replace it", path);
		return -EEXIST;
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	r = connect(fd, (const struct sockaddr *)sa, sizeof(*sa)) == 0 ? 0 : -errno;
	close(fd);
	if (r == 0) {
		log_error("another mmapd is listening on %s", path);
		return -EADDRINUSE;
	}
	if (r != -ECONNREFUSED) {
		log_error("cannot check %s: %s", path, strerror(-r));
		return r;
	}
	if (unlink(path) < 0 && errno != ENOENT) {
		r = -errno;
		log_error("cannot remove stale socket %s: %s", path, strerror(-r));
		return r;
	}
	log_info("removed stale socket %s", path);
	return 0;
}

static int server_listen(struct server *s)
{
	const char *path = s->cfg->socket_path;
	struct sockaddr_un sa;
	struct stat st;
	char *copy;
	mode_t old_umask;
	int r;

	r = server_sockaddr(path, &sa);
	if (r < 0) {
		log_error("socket path %s is too long (at most %zu bytes)", path, sizeof(sa.sun_path) - 1);
		return r;
	}
	copy = strdup(path);
	if (!copy)
		return -ENOMEM;
	r = server_mkdir(dirname(copy), 0755);
	if (r < 0)
		log_error("cannot create the socket's directory for %s: %s", path, strerror(-r));
	free(copy);
	if (r < 0)
		return r;
	r = server_check_stale(path, &sa);
	if (r < 0)
		return r;

	s->listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (s->listen_fd < 0) {
		r = -errno;
		log_error("cannot create a socket: %s", strerror(-r));
		return r;
	}
	/* The socket file is born with the right mode: no window in which others could connect. */
	old_umask = umask(0777 & ~(mode_t)s->cfg->socket_mode);
	r = bind(s->listen_fd, (const struct sockaddr *)&sa, sizeof(sa)) < 0 ? -errno : 0;
	umask(old_umask);
	if (r < 0) {
		log_error("cannot bind %s: %s", path, strerror(-r));
		return r;
	}
	if (chmod(path, s->cfg->socket_mode) < 0)
		log_warn("cannot set mode %04o on %s: %s", s->cfg->socket_mode, path, strerror(errno));
	if (stat(path, &st) == 0) {
		s->sock_dev = st.st_dev;
		s->sock_ino = st.st_ino;
	}
	if (listen(s->listen_fd, SOMAXCONN) < 0) {
		r = -errno;
		log_error("cannot listen on %s: %s", path, strerror(-r));
		unlink(path);
		return r;
	}
	return 0;
}

/*
 * Raises RLIMIT_NOFILE's soft limit to the hard one (the loop uses epoll, never select, so
 * large descriptor numbers are fine; the default soft limit of 1024 would run out before
 * max_clients) and returns it: the ceiling of descriptor numbers (budget.h).
 */
static uint64_t server_fd_limit(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
		return INT_MAX;
	if (rl.rlim_cur < rl.rlim_max) {
		rlim_t want = rl.rlim_max;

		rl.rlim_cur = want;
		if (setrlimit(RLIMIT_NOFILE, &rl) < 0 && getrlimit(RLIMIT_NOFILE, &rl) < 0)
			return INT_MAX;
	}
	if (rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur > INT_MAX)
		return INT_MAX;
	return rl.rlim_cur;
}

int server_init(struct server *s, uv_loop_t *loop, const struct config *cfg,
                struct sdlisten *passed)
{
	int r;

	memset(s, 0, sizeof(*s));
	s->loop = loop;
	s->cfg = cfg;
	s->limits = &cfg->limits;
	s->listen_fd = -1;
	s->spare_fd = -1;
	s->dir_fd = -1;
	s->meta_fd = -1;
	htab_init(&s->regions);
	htab_init(&s->adopted);
	htab_init(&s->meta);
	htab_init(&s->budgets);
	s->self_uid = (uint32_t)geteuid();
	s->fd_limit = server_fd_limit();
	s->mem_half = (uint64_t)sysconf(_SC_PHYS_PAGES) * (uint64_t)sysconf(_SC_PAGESIZE) / 2;
	s->start_ms = state_now_ms();
	s->check_finished = server_check_finished;
	s->handle_frame = ops_handle_frame;
	s->rerun = ops_run;
	s->request_trim = ops_request_trim;
	s->adopt_conn = fdconn_adopt;
	s->conn_listeners = server_conn_listeners;
	s->region_listeners = server_region_listeners;
	flush_hook_init();

	if (passed->listen_fd >= 0) {
		s->listen_fd = passed->listen_fd;
		passed->listen_fd = -1;
		s->activated = true;
	}
	s->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (s->spare_fd < 0) {
		r = -errno;
		log_error("cannot open /dev/null: %s", strerror(-r));
		goto out;
	}
	r = server_open_data_dir(s);
	if (r < 0)
		goto out;
	r = meta_init(s);
	if (r < 0)
		goto out;
	r = dirindex_init(s);
	if (r < 0)
		goto out;
	r = extwatch_init(s, extchange_announce);
	if (r < 0)
		goto out;
	fdstore_init(s, passed);
	r = s->activated ? 0 : server_listen(s);
out:
	sdlisten_done(passed);
	return r;
}

/* Unlinks the socket file if it is still the one we bound (never one we were given). */
static void server_unlink_socket(struct server *s)
{
	struct stat st;

	if (!s->activated && stat(s->cfg->socket_path, &st) == 0 && st.st_dev == s->sock_dev &&
	    st.st_ino == s->sock_ino)
		unlink(s->cfg->socket_path);
}

/* The level for a refusal: warn at most once a second, since refusals come in floods. */
static enum log_level server_refusal_level(uint64_t *last_ms)
{
	uint64_t now = state_now_ms();

	if (*last_ms != 0 && now - *last_ms < SERVER_WARN_INTERVAL_MS)
		return LOG_LEVEL_DEBUG;
	*last_ms = now;
	return LOG_LEVEL_WARN;
}

/*
 * Tells a refused connection why (an "error" event with err and message), and closes it.
 * Refusals come in floods: at most one a second is logged at warn.
 */
static void server_refuse(struct server *s, int fd, pid_t pid, uid_t uid, int err,
                          const char *message)
{
	static uint64_t last_warn;
	cJSON *event, *error;
	uint8_t *buf = NULL;
	size_t len;

	s->stats.refused++;
	log_write(server_refusal_level(&last_warn), "refusing a connection from pid %ld (uid %lu): %s",
	          (long)pid, (unsigned long)uid, message);
	event = msg_event(proto_event_name(PROTO_EVENT_ERROR));
	error = msg_error_object(err, message);
	if (event && error && cJSON_AddItemToObject(event, PROTO_FIELD_ERROR, error)) {
		error = NULL;
		/* A fresh socket's buffer takes a small frame whole; if not, the client learns less. */
		if (msg_encode(event, (uint32_t)s->limits->max_frame, &buf, &len) == 0) {
			ssize_t n = send(fd, buf, len, MSG_DONTWAIT | MSG_NOSIGNAL);

			(void)n;
			free(buf);
		}
	}
	cJSON_Delete(error);
	cJSON_Delete(event);
	/* Whatever the client sent already would turn our close into a reset: read it away. */
	for (int i = 0; i < 4; i++) {
		char scratch[4096];

		if (recv(fd, scratch, sizeof(scratch), MSG_DONTWAIT) <= 0)
			break;
	}
	close(fd);
}

/* Out of descriptors: accept one pending connection with the spare and close it. */
static void server_shed(struct server *s, int err)
{
	static uint64_t last_warn;
	int fd;

	log_write(server_refusal_level(&last_warn), "out of file descriptors (%s): "
	          "accepting and closing a connection", err == EMFILE ? "EMFILE" : "ENFILE");
	if (s->spare_fd >= 0) {
		close(s->spare_fd);
		s->spare_fd = -1;
	}
	fd = accept4(s->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (fd >= 0)
		server_refuse(s, fd, 0, (uid_t)-1, err, "the daemon is out of file descriptors");
	s->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
}

static void server_on_listen(uv_poll_t *handle, int status, int events)
{
	struct server *s = handle->data;
	int i;

	(void)events;
	if (status < 0) {
		log_error("error on the listening socket: %s", uv_strerror(status));
		return;
	}
	for (i = 0; i < SERVER_ACCEPTS_PER_WAKE && !s->stopping; i++) {
		struct ucred cred = { .pid = 0, .uid = (uid_t)-1, .gid = (gid_t)-1 };
		socklen_t credlen = sizeof(cred);
		uint32_t *groups = NULL;
		size_t ngroups = 0;
		struct why why;
		struct conn *c;
		int fd, r;

		fd = accept4(s->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED || errno == EPROTO)
				continue;
			if (errno == EMFILE || errno == ENFILE) {
				server_shed(s, errno);
				break;
			}
			if (errno != EAGAIN)
				log_error("accept failed: %s", strerror(errno));
			break;
		}
		if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &credlen) < 0)
			log_debug("SO_PEERCRED failed: %s", strerror(errno));
		r = access_peer_groups(fd, &groups, &ngroups);
		if (r < 0)
			log_debug("SO_PEERGROUPS failed: %s", strerror(-r));
		r = budget_admit_uid(s, cred.uid, &why);
		if (r == 0 && !budget_fd_allowed(s, (uint32_t)cred.uid, fd)) {
			why_set(&why, "the daemon is near its descriptor limit: the last %llu are "
			        "reserved for root and its own user (reserved_fds)",
			        (unsigned long long)s->limits->reserved_fds);
			r = -EMFILE;
		}
		if (r < 0) {
			server_refuse(s, fd, cred.pid, cred.uid, -r, why.text);
			free(groups);
			continue;
		}
		if (!id_list_allows(&s->cfg->allow_connect, cred.uid, cred.gid, groups, ngroups)) {
			why_set(&why, "permission denied: uid %lu may not connect (allow_connect)",
			        (unsigned long)cred.uid);
			server_refuse(s, fd, cred.pid, cred.uid, EACCES, why.text);
			free(groups);
			continue;
		}
		r = conn_new(s, fd, cred.pid, cred.uid, cred.gid, &c);
		if (r < 0) {
			log_error("cannot set up a connection from pid %ld: %s", (long)cred.pid,
			          strerror(-r));
			free(groups);
			continue;
		}
		s->stats.accepted++;
		c->groups = groups;
		c->ngroups = ngroups;
		log_debug("client %llu (pid %ld, uid %lu) connected", (unsigned long long)c->serial,
		          (long)cred.pid, (unsigned long)cred.uid);
	}
}

#define SERVER_STATUS_MS 2000   /* how often STATUS= may change */

void server_sd_report(struct server *s, bool force)
{
	char *status = NULL, *state = NULL;

	if (asprintf(&status, "%zu client%s, %zu region%s in use, %" PRIu64 " grant%s", s->nconns,
	             s->nconns == 1 ? "" : "s", s->regions.count, s->regions.count == 1 ? "" : "s",
	             s->ngrants, s->ngrants == 1 ? "" : "s") < 0)
		return;
	if (!force && s->sd_status && strcmp(status, s->sd_status) == 0) {
		free(status);
		return;
	}
	if (asprintf(&state, "%sSTATUS=%s", force ? "READY=1\n" : "", status) >= 0) {
		sdnotify_send(state);
		free(state);
	}
	free(s->sd_status);
	s->sd_status = status;
}

static void server_on_sd_timer(uv_timer_t *timer)
{
	struct server *s = timer->data;

	if (s->watchdog_usec > 0)
		sdnotify_send("WATCHDOG=1");
	server_sd_report(s, false);
}

/* Starts the keep-alives ($WATCHDOG_USEC / 2) and status updates, under a service manager. */
static void server_sd_start(struct server *s)
{
	uint64_t every = SERVER_STATUS_MS;

	if (!sdnotify_wanted())
		return;
	s->watchdog_usec = sdnotify_watchdog_usec();
	if (s->watchdog_usec > 0) {
		uint64_t half = s->watchdog_usec / 2000u;

		every = half < every ? (half > 0 ? half : 1) : every;
		log_info("watchdog enabled: keep-alive every %" PRIu64 " ms", every);
	}
	uv_timer_init(s->loop, &s->sd_timer);
	s->sd_timer.data = s;
	s->sd_timer_active = true;
	uv_timer_start(&s->sd_timer, server_on_sd_timer, every, every);
}

static void server_sd_stop(struct server *s)
{
	if (!s->sd_timer_active)
		return;
	uv_close((uv_handle_t *)&s->sd_timer, NULL);
	s->sd_timer_active = false;
}

static void server_on_signal(uv_signal_t *handle, int signum)
{
	struct server *s = handle->data;

	if (signum == SIGHUP) {
		if (s->stopping)
			return;
		if (!s->reload) {
			log_warn("SIGHUP received, but this daemon has no config file to read again");
			return;
		}
		log_info("SIGHUP received; reloading the configuration");
		sdnotify_send("RELOADING=1");
		s->reload(s, s->reload_arg);
		server_sd_report(s, true);
		return;
	}
	if (s->stopping) {
		log_info("%s received again; still shutting down", signum == SIGTERM ? "SIGTERM" : "SIGINT");
		return;
	}
	log_info("%s received; shutting down", signum == SIGTERM ? "SIGTERM" : "SIGINT");
	server_stop(s);
}

int server_start(struct server *s)
{
	int r;

	r = uv_poll_init(s->loop, &s->listen_poll, s->listen_fd);
	if (r < 0)
		goto fail;
	s->listen_poll.data = s;
	s->listen_active = true;
	r = uv_poll_start(&s->listen_poll, UV_READABLE, server_on_listen);
	if (r < 0)
		goto fail;

	uv_signal_init(s->loop, &s->sig_term);
	uv_signal_init(s->loop, &s->sig_int);
	uv_signal_init(s->loop, &s->sig_hup);
	s->sig_term.data = s->sig_int.data = s->sig_hup.data = s;
	s->signals_active = true;
	if ((r = uv_signal_start(&s->sig_term, server_on_signal, SIGTERM)) < 0 ||
	    (r = uv_signal_start(&s->sig_int, server_on_signal, SIGINT)) < 0 ||
	    (r = uv_signal_start(&s->sig_hup, server_on_signal, SIGHUP)) < 0)
		goto fail;
	resize_checker_start(s);
	server_sd_start(s);
	return 0;
fail:
	log_error("cannot start the event loop's watchers: %s", uv_strerror(r));
	return r;
}

static void server_close_listener(struct server *s)
{
	if (s->listen_active) {
		uv_close((uv_handle_t *)&s->listen_poll, NULL);
		s->listen_active = false;
	}
	if (s->listen_fd >= 0) {
		close(s->listen_fd);
		s->listen_fd = -1;
		server_unlink_socket(s);
	}
}

void server_stop(struct server *s)
{
	struct conn *c, *next;

	if (s->stopping)
		return;
	s->stopping = true;
	sdnotify_send("STOPPING=1");
	fdstore_report_loss(s);
	server_close_listener(s);
	resize_server_stop(s);
	/* Changes a flush interval was waiting for are flushed before the daemon goes. */
	flush_server_stop(s);
	/* With a service manager's fd store, whatever connections can be are handed over. */
	fdconn_store(s);
	for (c = s->conns; c; c = next) {
		next = c->next;
		conn_shutdown(c, "mmapd is stopping");
	}
	server_check_finished(s);
}

static void server_close_signals(struct server *s)
{
	if (!s->signals_active)
		return;
	uv_close((uv_handle_t *)&s->sig_term, NULL);
	uv_close((uv_handle_t *)&s->sig_int, NULL);
	uv_close((uv_handle_t *)&s->sig_hup, NULL);
	s->signals_active = false;
}

void server_check_finished(struct server *s)
{
	if (!s->stopping || s->finished || s->nconns > 0 || s->work_pending > 0)
		return;
	/* The last handles go; uv_run returns once their close callbacks have run. */
	s->finished = true;
	server_close_signals(s);
	resize_checker_stop(s);
	server_sd_stop(s);
	dirindex_stop(s);
	extwatch_stop(s);
	conn_turns_stop(s);
}

void server_done(struct server *s)
{
	struct htab_iter it;
	struct hnode *node;

	server_close_listener(s);
	server_close_signals(s);
	resize_checker_stop(s);
	server_sd_stop(s);
	conn_turns_stop(s);
	free(s->sd_status);
	s->sd_status = NULL;
	htab_iter_init(&s->regions, &it);
	while ((node = htab_iter_next(&s->regions, &it)) != NULL)
		region_table_remove(htab_entry(node, struct region, node));
	if (s->all_regions)
		log_error("regions still referenced at exit (first: '%s')", s->all_regions->name);
	htab_done(&s->regions);
	htab_done(&s->adopted);
	dirindex_done(s);
	extwatch_done(s);
	htab_done(&s->budgets);
	cJSON_Delete(s->handover);
	s->handover = NULL;
	meta_done(s);
	if (s->dir_fd >= 0)
		close(s->dir_fd);
	if (s->spare_fd >= 0)
		close(s->spare_fd);
	s->dir_fd = s->spare_fd = -1;
}
