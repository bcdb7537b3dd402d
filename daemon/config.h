/* SPDX-License-Identifier: MIT */
/*
 * mmapd's settings: the defaults, the JSON config file (/etc/mmapd/mmapd.json, or --config) and
 * the limits of the protocol's Limits table. main.c lays command-line options over what the
 * file said.
 */
#ifndef MMAPD_DAEMON_CONFIG_H
#define MMAPD_DAEMON_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define CONFIG_DEFAULT_SOCKET   "/run/mmapd/mmapd.sock"
#define CONFIG_DEFAULT_DATA_DIR "/var/lib/mmapd"
#define CONFIG_DEFAULT_SOCKET_MODE 0660
/* Read when it exists and neither --config nor --no-config is given. */
#define CONFIG_DEFAULT_PATH     "/etc/mmapd/mmapd.json"

/* Every limit a client can run into; see docs/protocol.md and docs/coordination.md. */
struct limits {
	uint64_t max_frame;
	uint64_t max_clients;
	uint64_t max_clients_per_uid;  /* uid 0 is exempt */
	uint64_t hello_timeout_ms;     /* 0: wait for hello forever */
	uint64_t max_grants_per_client;
	uint64_t max_fds_in_flight;
	uint64_t max_queue_bytes;
	uint64_t max_region_size;
	uint64_t max_regions;
	/* Coordination (docs/coordination.md). */
	uint64_t max_locks_per_client;
	uint64_t max_subscriptions_per_client;
	uint64_t shrink_timeout_ms;
	uint64_t event_backlog_bytes;
	uint64_t max_pending_ranges;
	uint64_t size_check_ms;
	uint64_t max_control_slots_per_uid;   /* of one region's control page; root exempt */
	uint64_t external_poll_ms;     /* extwatch.h: how often watched files are fstat'ed */
	/* Access and quotas (docs/protocol.md, "Access control and operations"). */
	uint64_t max_bytes_granted_per_client;
	uint64_t max_regions_created_per_client;
	/* Per-user budgets (budget.h); root and the daemon's uid are exempt. */
	uint64_t max_fds_per_uid;
	uint64_t max_queue_bytes_per_uid;
	uint64_t max_lock_waiters_per_uid;
	uint64_t max_anonymous_regions_per_uid;
	uint64_t max_anonymous_bytes_per_uid;
	uint64_t max_anonymous_bytes_all_users;  /* 0: half the machine's memory */
	uint64_t max_watched_files_per_uid;      /* external subscriptions (extwatch.h) */
	/* Held back for root and the daemon's uid only. */
	uint64_t reserved_clients;
	uint64_t reserved_fds;
};

/*
 * Who may do something ("allow_connect", "allow_create"): a peer whose uid is in uids, or
 * whose primary or supplementary group is in gids. An unset list allows everyone; uid 0 is
 * always allowed.
 */
struct id_list {
	bool set;
	uint32_t *uids;        /* malloc'd */
	size_t nuids;
	uint32_t *gids;        /* malloc'd */
	size_t ngids;
};

struct config {
	char *socket_path;     /* malloc'd */
	char *data_dir;        /* malloc'd */
	int log_level;         /* enum log_level */
	unsigned socket_mode;  /* permission bits of the socket file */
	bool fdstore;          /* keep anonymous regions in the service manager's fd store */
	bool allow_exec;       /* grant executable maps at all (regions' x bits decide whom) */
	struct limits limits;
	struct id_list allow_connect;
	struct id_list allow_create;
};

/* Fills c with the defaults. Returns 0 or -ENOMEM. */
int config_init(struct config *c);
/* Frees what c owns. Accepts a zeroed or half-filled config. */
void config_done(struct config *c);

/*
 * Reads the JSON object in path over c. Unknown keys, wrong types and values out of range
 * are refused: every problem is logged (error level) as "PATH:LINE:COLUMN: what" (the
 * position where the text shows it) and -EINVAL returned; -errno when the file cannot be
 * read. Top-level keys that start with "//" are comments. c may be partly updated after a
 * failure.
 */
int config_load_file(struct config *c, const char *path);
/* config_load_file(), reporting each problem as a plain line on out instead of the log. */
int config_load_file_report(struct config *c, const char *path, FILE *out);

/*
 * Moves what a SIGHUP may change (limits, log level, access lists, allow_exec) from next into c, and
 * frees what c had. Settings that need a restart (paths, socket mode, max_frame, fdstore) stay as
 * they are in c; each one that differs is logged at warn. next is left empty (config_done
 * still accepts it).
 */
void config_reload_from(struct config *c, struct config *next);

/* True when the list allows uid with primary group gid and supplementary groups[n]. */
bool id_list_allows(const struct id_list *l, uint32_t uid, uint32_t gid, const uint32_t *groups,
                    size_t ngroups);

/* Replaces *slot with a copy of value. Returns 0 or -ENOMEM. */
int config_set_string(char **slot, const char *value);

/* Parses an octal permission string ("0660"). Returns 0 with *ret set, or -EINVAL. */
int config_parse_mode(const char *s, unsigned *ret);

#endif
