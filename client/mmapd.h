/*
 * libmmapd: the client library of mmapd, the shared-memory region daemon.
 *
 * A process connects to mmapd over a Unix socket, asks for a region by name and receives the
 * region's file descriptor; libmmapd maps it, so every process maps the same page-cache pages
 * and data never crosses the socket. This header is the whole public API.
 *
 * Conventions:
 *  - Functions returning int return >= 0 on success and a negative errno value on failure.
 *    mmapd_last_message() then gives a sentence about the failure (the daemon's own words when
 *    the daemon refused); mmapd_strerror() names any error value.
 *  - Pointer parameters are borrowed (the caller keeps ownership) unless said otherwise.
 *    Objects returned through ret_* are owned by the caller and freed with the matching
 *    function named in their description.
 *  - A struct mmapd_client may be used from several threads at once: requests are serialised.
 *    A struct mmapd_region must not be closed while another thread still uses it.
 *  - Every descriptor the library creates is close-on-exec. The library never prints, never
 *    exits, never raises signals of its own and starts no threads.
 */
#ifndef MMAPD_H
#define MMAPD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define MMAPD_EXPORT __attribute__((visibility("default")))
#else
#define MMAPD_EXPORT
#endif

#define MMAPD_VERSION_MAJOR 0
#define MMAPD_VERSION_MINOR 1
#define MMAPD_VERSION_PATCH 0

/* Where mmapd_connect() looks when given no path and $MMAPD_SOCKET is unset. */
#define MMAPD_DEFAULT_SOCKET "/run/mmapd/mmapd.sock"
/* Longest region name, in bytes. Names are [A-Za-z0-9._-], not starting with '.' or '-'. */
#define MMAPD_NAME_MAX 255

struct mmapd_client;
struct mmapd_region;

/* How a region is mapped. */
enum mmapd_mode {
	MMAPD_MODE_RO = 0,  /* read-only: the descriptor itself is O_RDONLY */
	MMAPD_MODE_RW = 1,  /* read-write, shared with every other process */
	MMAPD_MODE_COW = 2, /* copy-on-write: writes stay private to this mapping */
};

/* Flags of struct mmapd_open_opts. */
#define MMAPD_OPEN_CREATE    0x1u /* create the region if it does not exist (size required) */
#define MMAPD_OPEN_EXCL      0x2u /* with CREATE: fail with -EEXIST if it exists */
#define MMAPD_OPEN_ANONYMOUS 0x4u /* with CREATE: a memfd region living in the daemon, no file */
#define MMAPD_OPEN_SPARSE    0x8u /* with CREATE: do not reserve blocks (ftruncate, not fallocate) */

struct mmapd_open_opts {
	unsigned flags;       /* MMAPD_OPEN_* */
	enum mmapd_mode mode; /* default (zeroed struct) is MMAPD_MODE_RO */
	uint64_t size;        /* size to create with; ignored when the region already exists */
	uint64_t offset;      /* window start, any byte offset (page alignment is handled inside) */
	uint64_t length;      /* window length; 0 means up to the end of the region */
};

/* Server-wide figures returned by mmapd_status(). */
struct mmapd_status {
	char version[32];        /* mmapd's version, e.g. "0.1.0" */
	uint32_t protocol;       /* protocol version in use on this connection */
	int64_t pid;             /* the daemon's pid */
	uint64_t uptime_ms;
	uint64_t clients;        /* connected clients, this one included */
	uint64_t regions;        /* regions: files in the data directory plus anonymous ones */
	uint64_t anonymous_regions;
	uint64_t grants;         /* open grants (descriptors handed out and not closed) */
	uint64_t bytes_granted;  /* sum of region sizes over open grants */
	uint64_t open_fds;       /* descriptors the daemon has open */
	uint64_t max_clients;
	uint64_t max_grants_per_client;
	uint64_t max_fds_in_flight;
	uint64_t max_frame;
	uint64_t max_region_size;
};

/* One region as reported by mmapd_stat() and mmapd_list(). */
struct mmapd_region_info {
	char name[MMAPD_NAME_MAX + 1];
	uint64_t size;
	bool anonymous;
	uint64_t grants;   /* open grants on it, all clients together */
	uint64_t clients;  /* distinct clients holding a grant */
};

/*
 * Connects to mmapd and performs the hello exchange. path: the socket, or NULL for
 * $MMAPD_SOCKET, or MMAPD_DEFAULT_SOCKET. client_name (may be NULL) is shown to operators.
 * Returns 0 with *ret_client set (free with mmapd_disconnect()), -ENOENT/-ECONNREFUSED when no
 * daemon listens, -EPROTONOSUPPORT when the daemon speaks no common protocol version, -ENOMEM.
 * Also -EINVAL (ret_client NULL, empty path, client_name longer than 64 bytes), -ENAMETOOLONG
 * (path longer than a Unix socket address holds) and -EUSERS (the daemon is at max_clients).
 */
MMAPD_EXPORT int mmapd_connect(const char *path, const char *client_name,
                               struct mmapd_client **ret_client);

/*
 * Closes the connection; the daemon releases every grant it held. Regions still open stay
 * mapped and usable; close them with mmapd_region_close() as usual. Accepts NULL.
 */
MMAPD_EXPORT void mmapd_disconnect(struct mmapd_client *client);

/*
 * Opens (or with MMAPD_OPEN_CREATE creates) the region called name, receives its descriptor
 * and maps the window opts->offset..+opts->length in opts->mode. opts may be NULL: read-only,
 * whole region, no creation. Returns 0 with *ret_region set (free with mmapd_region_close()),
 * or: -EINVAL (bad name, flags or mode), -ENAMETOOLONG, -ENOENT (no such region), -EEXIST,
 * -EACCES (mode not allowed, e.g. read-write on a read-only file), -ERANGE (window outside the
 * region), -EFBIG (size above the daemon's limit), -ENOSPC, -EAGAIN (a limit of this client
 * reached), -ENOMEM, -ECONNRESET/-ESHUTDOWN (connection lost or daemon stopping).
 */
MMAPD_EXPORT int mmapd_region_open(struct mmapd_client *client, const char *name,
                                   const struct mmapd_open_opts *opts,
                                   struct mmapd_region **ret_region);

/*
 * Unmaps the window, closes the descriptor and tells the daemon the grant is released (if the
 * connection is still up). Accepts NULL. Returns 0, or a negative errno if the daemon could not
 * be told (the region is freed all the same).
 */
MMAPD_EXPORT int mmapd_region_close(struct mmapd_region *region);

/* The first byte of the window (exactly opts->offset into the region). */
MMAPD_EXPORT void *mmapd_region_data(const struct mmapd_region *region);
/* Length of the window in bytes. */
MMAPD_EXPORT size_t mmapd_region_length(const struct mmapd_region *region);
/* Offset of the window in the region. */
MMAPD_EXPORT uint64_t mmapd_region_offset(const struct mmapd_region *region);
/* Size of the whole region when it was opened. */
MMAPD_EXPORT uint64_t mmapd_region_size(const struct mmapd_region *region);
MMAPD_EXPORT enum mmapd_mode mmapd_region_mode(const struct mmapd_region *region);
/* The region's name (borrowed; valid until the region is closed). */
MMAPD_EXPORT const char *mmapd_region_name(const struct mmapd_region *region);
/* The descriptor behind the mapping (borrowed: do not close it). */
MMAPD_EXPORT int mmapd_region_fd(const struct mmapd_region *region);

/*
 * Copies len bytes at window offset off into buf. Returns 0, or -ERANGE when off+len passes
 * the end of the window (nothing copied).
 */
MMAPD_EXPORT int mmapd_region_read(const struct mmapd_region *region, uint64_t off,
                                   void *buf, size_t len);
/*
 * Copies len bytes from buf to window offset off. Returns 0, -ERANGE (outside the window,
 * nothing copied), or -EACCES on a read-only mapping.
 */
MMAPD_EXPORT int mmapd_region_write(struct mmapd_region *region, uint64_t off,
                                    const void *buf, size_t len);

/*
 * Deletes the region: its name is free at once; processes that have it mapped keep their
 * mappings until they close them. Returns 0, -ENOENT, -EINVAL, -ELOOP.
 */
MMAPD_EXPORT int mmapd_delete(struct mmapd_client *client, const char *name);

/* Fills *ret_info for one region. Returns 0, -ENOENT, -EINVAL. */
MMAPD_EXPORT int mmapd_stat(struct mmapd_client *client, const char *name,
                            struct mmapd_region_info *ret_info);

/*
 * Lists every region, sorted by name. Returns 0 with *ret_infos (free with free()) holding
 * *ret_count entries (NULL when there are none), or a negative errno.
 */
MMAPD_EXPORT int mmapd_list(struct mmapd_client *client, struct mmapd_region_info **ret_infos,
                            size_t *ret_count);

/* Fills *ret_status with the daemon's figures. */
MMAPD_EXPORT int mmapd_status(struct mmapd_client *client, struct mmapd_status *ret_status);

/* One no-op round trip to the daemon. Returns 0 or a negative errno. */
MMAPD_EXPORT int mmapd_ping(struct mmapd_client *client);

/*
 * A sentence about the last failure of a libmmapd call made by the calling thread (the
 * daemon's message when the daemon refused). Valid until the thread's next libmmapd call.
 * Never NULL.
 */
MMAPD_EXPORT const char *mmapd_last_message(void);

/* A static description of err (negative or positive errno value). Never NULL. */
MMAPD_EXPORT const char *mmapd_strerror(int err);

#ifdef __cplusplus
}
#endif

#endif
