/* SPDX-License-Identifier: MIT */
/*
 * libmmapd: the client library of mmapd, the shared-memory region daemon.
 *
 * A process connects to mmapd over a Unix socket, asks for a region by name and receives the
 * region's file descriptor; libmmapd maps it, so every process maps the same page-cache pages
 * and data never crosses the socket. This header is the core public API; the toolbox built on
 * it alone, in the same library, has its own headers: mmapd-ring.h (rings) and mmapd-persist.h
 * (persistent structs, strings, vectors and hash maps).
 *
 * Conventions:
 *  - Functions returning int return >= 0 on success and a negative errno value on failure.
 *    mmapd_last_message() then gives a sentence about the failure (the daemon's own words when
 *    the daemon refused); mmapd_strerror() names any error value.
 *  - Pointer parameters are borrowed (the caller keeps ownership) unless said otherwise.
 *    Objects returned through ret_* are owned by the caller and freed with the matching
 *    function named in their description.
 *  - A struct mmapd_client may be used from several threads at once; their requests are in
 *    flight together, so a request that waits (a lock) holds up no other thread.
 *    A struct mmapd_region must not be closed while another thread still uses it.
 *  - Every descriptor the library creates is close-on-exec. The library never prints, never
 *    exits, never raises signals of its own and starts no threads but the one
 *    mmapd_client_dispatch_thread_start() asks for; it installs a signal handler (SIGBUS) only when
 *    the first mmapd_guard_begin() is called.
 */
#ifndef MMAPD_H
#define MMAPD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

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

/*
 * How this ABI grows (0.x: the version node stays MMAPD_0.1 until 1.0; docs/client-api.md,
 * "ABI"):
 *  - Option structs the caller fills (struct mmapd_open_opts) begin with their own size,
 *    set by their initializer macro (MMAPD_OPEN_OPTS()); the library reads only the fields
 *    that size covers and takes the rest as zero, so a field added later never changes what
 *    an older caller meant.
 *  - Info structs (struct mmapd_region_info, mmapd_status, mmapd_client_info,
 *    mmapd_lock_info, mmapd_event) are only ever allocated by the library and handed out by
 *    pointer; lists are opaque (_count, _at, _free), so no caller compiles in their size or
 *    stride. New fields are only appended. Never allocate one, copy one by value or use its
 *    sizeof. Strings in them are pointers into the object, not fixed arrays.
 *  - Every public enum has a _MMAPD_*_FORCE_INT32 member, so it is 32 bits wide whatever
 *    values are added; flags are unsigned with defined bits, and unknown bits are refused.
 *  - The library's tuning limits are not macros here; they can change in any release.
 *  - Every destructor (_close, _free, mmapd_disconnect) returns void and accepts NULL.
 *  - Two small value types are frozen instead: struct mmapd_policy and struct mmapd_range.
 *    (The toolbox's caller-filled struct mmapd_layout is not size-versioned yet; it moves to
 *    the toolbox's own header, which decides.)
 */

/*
 * The version of the libmmapd the program runs against, "MAJOR.MINOR.PATCH" (e.g. "0.1.0");
 * the MMAPD_VERSION_* macros above give the version of the header it was compiled with.
 * Returns a static string, never NULL.
 */
MMAPD_EXPORT const char *mmapd_version(void);

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
	_MMAPD_MODE_FORCE_INT32 = INT32_MAX, /* not a mode: makes the enum 32 bits */
};

/* Flags of struct mmapd_open_opts. */
#define MMAPD_OPEN_CREATE    0x1u /* create the region if it does not exist (size required) */
#define MMAPD_OPEN_EXCL      0x2u /* with CREATE: fail with -EEXIST if it exists */
#define MMAPD_OPEN_ANONYMOUS 0x4u /* with CREATE: a memfd region living in the daemon, no file */
#define MMAPD_OPEN_SPARSE    0x8u /* with CREATE: do not reserve blocks (ftruncate, not fallocate) */
/* mmapd_region_write() reports each write (as mmapd_report_changed() does) */
#define MMAPD_OPEN_REPORT_WRITES 0x10u
#define MMAPD_OPEN_POPULATE  0x20u /* prefault the mapping (MAP_POPULATE) */
/*
 * Map with MAP_STACK, file and anonymous regions alike: a hint, which since Linux 6.7 also
 * keeps transparent huge pages off the mapping (VM_NOHUGEPAGE) unless MMAPD_OPEN_HUGETLB asks
 * for them (its advice wins).
 */
#define MMAPD_OPEN_STACK     0x40u
/*
 * Huge pages. With CREATE and ANONYMOUS the daemon makes a hugetlb memfd where the system has
 * huge pages configured (vm.nr_hugepages) and free, its size rounded up to whole huge pages
 * and the pages reserved at creation; otherwise a normal memfd with transparent huge pages
 * (MADV_HUGEPAGE), which mmapd_region_info.huge tells (not with SPARSE: -EINVAL). A hugetlb
 * region is mapped in whole huge pages (mmapd_region_page_size() says their size; windows at
 * any offset still work) and resized only to multiples of them. Opening a region of normal
 * pages with this flag, a file region included, asks for transparent huge pages: the mapping
 * is placed where its addresses and file offsets agree modulo the huge page size, and advised
 * MADV_HUGEPAGE (a kernel without them: the madvise error). Whether the kernel gives them is
 * its own affair (mmapd_region_huge_bytes() tells).
 */
#define MMAPD_OPEN_HUGETLB   0x80u
/*
 * An executable mapping: PROT_EXEC added to the mode's protection (RO: read+exec, RW and
 * COW: read+write+exec), made only once the daemon granted it. The daemon grants it when its
 * config allows executable maps (allow_exec, else -EPERM) and the region's mode gives the
 * caller's class an execute bit (else -EACCES; root needs some execute bit). With CREATE the
 * region is made executable (default perm 0770 instead of 0660); an anonymous region created
 * without this flag can never be mapped executable. This is consent, not confinement: a
 * process holding a region's descriptor can call mmap(PROT_EXEC) itself (docs/client-api.md).
 */
#define MMAPD_OPEN_EXEC      0x100u
/*
 * With CREATE: a temporary region, deleted (as by mmapd_delete()) when its last grant is
 * released, by mmapd_region_close() or by the death of the process or connection holding it,
 * whichever client that is. Only the request that creates the region makes it temporary;
 * opening an existing region with this flag changes nothing. (fmmap's remove-on-drop.)
 * -EOPNOTSUPP from a daemon without the "manage" feature, which would ignore it.
 */
#define MMAPD_OPEN_TEMPORARY 0x200u
/*
 * With CREATE and MMAPD_MODE_RW: an existing file region is emptied and given opts->size
 * bytes of zeros before it is mapped, as open(2)'s O_TRUNC followed by a resize (mmap-io's
 * create_rw); -EBUSY while any grant of it is open (this client's too) or anyone is
 * subscribed to it, locks it or resizes it (use mmapd_resize() for a region in use). Needs
 * write permission; not for anonymous regions (-EINVAL), and not with EXCL (-EINVAL). A
 * region that does not exist is created as usual. -EOPNOTSUPP from a daemon without the
 * "manage" feature (which would ignore it), as for MMAPD_OPEN_TEMPORARY.
 */
#define MMAPD_OPEN_TRUNCATE  0x400u

/* Flush policies, enforced by the daemon (docs/coordination.md). */
enum mmapd_policy_kind {
	MMAPD_POLICY_MANUAL = 0,   /* only mmapd_flush() flushes */
	MMAPD_POLICY_ALWAYS,       /* durable before mmapd_report_changed() returns */
	MMAPD_POLICY_EVERY_BYTES,  /* flush once `value` bytes were reported changed */
	MMAPD_POLICY_EVERY_WRITES, /* flush once `value` changes were reported */
	MMAPD_POLICY_INTERVAL,     /* flush `value` ms after the first unflushed change */
	_MMAPD_POLICY_FORCE_INT32 = INT32_MAX,
};

/*
 * A flush policy: a kind and its one parameter. This small value type is frozen (it is
 * embedded in struct mmapd_region_info and struct mmapd_event, so growing it would move their
 * later fields): a policy added later is a new kind that uses value.
 */
struct mmapd_policy {
	enum mmapd_policy_kind kind;
	uint64_t value;            /* unused for MANUAL and ALWAYS */
};

/*
 * Options of mmapd_region_open(). Declare them with MMAPD_OPEN_OPTS(), which sets struct_size
 * to the size of the struct the caller was compiled with, e.g.
 *   struct mmapd_open_opts o = MMAPD_OPEN_OPTS(.flags = MMAPD_OPEN_CREATE, .size = 4096);
 * The library reads only the fields struct_size covers and takes the others as zero (their
 * defaults), so a caller built before a field was added keeps its meaning. A struct_size of
 * 0 (a struct not made by the macro) is -EINVAL; one larger than this library knows is
 * accepted only when the bytes it does not know are zero (else -E2BIG).
 */
struct mmapd_open_opts {
	size_t struct_size;   /* sizeof(struct mmapd_open_opts) as compiled: MMAPD_OPEN_OPTS() */
	unsigned flags;       /* MMAPD_OPEN_* */
	enum mmapd_mode mode; /* default (zeroed struct) is MMAPD_MODE_RO */
	uint64_t size;        /* size to create with; ignored when the region already exists */
	uint64_t offset;      /* window start, any byte offset (page alignment is handled inside) */
	uint64_t length;      /* window length; 0 means up to the end of the region */
	/*
	 * Address space reserved for the window to grow into, in bytes (0: none). With a
	 * reservation at least as large as the region will become, growth maps the new pages in
	 * place and mmapd_region_data() never moves; without one, growth remaps and the pointer may
	 * move. Only windows with length 0 follow the region's size.
	 */
	uint64_t reserve;
	const struct mmapd_policy *policy; /* with CREATE: the initial flush policy; NULL: manual */
};
/* A struct mmapd_open_opts with struct_size set and the given fields (designated
 * initializers, C99 and later); all others zero. */
#define MMAPD_OPEN_OPTS(...) \
	((struct mmapd_open_opts){ .struct_size = sizeof(struct mmapd_open_opts), __VA_ARGS__ })

/* Server-wide figures returned by mmapd_get_status(); allocated by the library only (see
 * "How this ABI grows" above). */
struct mmapd_status {
	const char *version;     /* mmapd's version, e.g. "0.1.0" (in the object) */
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
	uint64_t locks;          /* locks held */
	uint64_t lock_waiters;   /* lock requests waiting */
	uint64_t subscriptions;
};

/* The pages of an anonymous region (mmapd_region_info.huge). */
enum mmapd_huge {
	MMAPD_HUGE_NONE = 0,  /* normal pages (every file region, whose mappings may still get
	                         transparent huge pages: mmapd_region_huge_bytes(); also a daemon
	                         without huge pages) */
	MMAPD_HUGE_HUGETLB,   /* a hugetlb memfd: huge pages reserved at creation */
	MMAPD_HUGE_THP,       /* huge pages were asked for but the system had none to reserve:
	                         transparent huge pages, advised by every libmmapd mapping */
	_MMAPD_HUGE_FORCE_INT32 = INT32_MAX,
};

/* One region as reported by mmapd_stat() and mmapd_list_regions(); allocated by the library
 * only (see "How this ABI grows" above). */
struct mmapd_region_info {
	const char *name;  /* in the object: valid as long as it is */
	uint64_t size;
	bool anonymous;
	uint64_t grants;   /* open grants on it, all clients together */
	uint64_t clients;  /* distinct clients holding a grant */
	uint64_t generation; /* +1 per size change seen by the daemon in this run */
	struct mmapd_policy policy;
	bool poisoned;     /* a flush failed; flushes fail with -EIO until mmapd_clear_error() */
	uint64_t seq;      /* sequence number of the last reported change */
	uint64_t locks;    /* locks held or waited for on it */
	/* Access control (docs/protocol.md, "Owners and modes"); all 0 from a daemon without it. */
	uint32_t uid;      /* owner */
	uint32_t gid;      /* group */
	uint32_t perm;     /* mode bits, 0 .. 0777, read like a file's; x bits: exec consent */
	enum mmapd_huge huge;
	/* The region's last data change and last status change (of its file, or memfd), in
	 * microseconds since the Unix epoch; 0 from a daemon without timestamps. */
	uint64_t mtime_us;
	uint64_t ctime_us;
	bool temporary;    /* deleted when its last grant goes (MMAPD_OPEN_TEMPORARY) */
	bool adopted;      /* a file a client handed over (mmapd_region_adopt()), not in the data
	                      directory: it lives while someone holds it */
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
 * Opens (or with MMAPD_OPEN_CREATE creates) the region called name, receives its descriptor and
 * maps the window opts->offset..+opts->length in opts->mode. opts (made with MMAPD_OPEN_OPTS())
 * may be NULL: read-only, whole region, no creation. Returns 0 with *ret_region set (free with
 * mmapd_region_close()), or: -EINVAL (bad name, flags or mode; opts->struct_size 0), -E2BIG
 * (opts from a newer libmmapd that sets a field this one does not know), -ENAMETOOLONG, -ENOENT
 * (no such region), -EEXIST, -EACCES (mode not allowed, e.g. read-write on a read-only file;
 * MMAPD_OPEN_EXEC without an execute bit for the caller), -EPERM (MMAPD_OPEN_EXEC while the
 * daemon's allow_exec is false, or mmap refused PROT_EXEC: a noexec mount), -ERANGE (window
 * outside the region), -EFBIG (size above the daemon's limit), -ENOSPC, -EAGAIN (a limit of this
 * client reached), -EBUSY (MMAPD_OPEN_TRUNCATE of a region in use), -EOPNOTSUPP (TEMPORARY or
 * TRUNCATE and a daemon without them), -ENOMEM, -ECONNRESET/-ESHUTDOWN (connection lost or
 * daemon stopping).
 */
MMAPD_EXPORT int mmapd_region_open(struct mmapd_client *client, const char *name,
                                   const struct mmapd_open_opts *opts,
                                   struct mmapd_region **ret_region);

/*
 * Adopts a file the caller already opened: fd (borrowed: still the caller's, who may close it
 * at once afterwards; the library keeps a copy of it while the region is open, to adopt the
 * file again after a reconnection) goes to the daemon with the request, and the caller gets a region for
 * that file, mapped as mmapd_region_open() maps one, with the same locks, resizes,
 * notifications and flushes as the data directory's regions. fd must be a regular file opened
 * O_RDONLY (ro and cow grants only) or O_RDWR; the daemon never grants more than it allows.
 * Another adoption of the same file (same device and inode), by this or another client,
 * joins the same region. name (may be NULL: the daemon names it "adopted-<dev>-<ino>", read
 * it with mmapd_region_name()) is what others open it by, subject to its owner and mode:
 * the first adopter, 0600, which mmapd_chmod() and mmapd_chown() change. The region lives
 * while anyone holds it; nothing of it is kept in the data directory (docs/protocol.md,
 * "adopt"). opts: as for mmapd_region_open(), but only mode, offset, length, reserve and the
 * flags MMAPD_OPEN_REPORT_WRITES and MMAPD_OPEN_POPULATE. Returns as mmapd_region_open(),
 * and: -EBADF (fd is not an open descriptor, or is O_PATH), -ENODEV (not a regular file, or
 * a file of /proc, /sys and the like), -EISDIR (a directory), -EACCES (mode asks more than
 * fd allows, or fd is write-only), -EEXIST (name is taken, or the file is adopted already
 * under another name), -EMFILE (the caller's uid is at its descriptor budget).
 */
MMAPD_EXPORT int mmapd_region_adopt(struct mmapd_client *client, int fd, const char *name,
                                    const struct mmapd_open_opts *opts,
                                    struct mmapd_region **ret_region);

/*
 * Maps the file at path, as memmap2's Mmap::map(&File::open(path)?) does, but shared through
 * the daemon: opens path in the calling process (O_RDONLY for MMAPD_MODE_RO and
 * MMAPD_MODE_COW, O_RDWR for MMAPD_MODE_RW; with MMAPD_OPEN_CREATE O_RDWR and O_CREAT, mode
 * 0666 less the umask, and MMAPD_OPEN_EXCL adds O_EXCL; a created or empty file is then made
 * opts->size bytes, when given, with ftruncate), adopts the descriptor under no name
 * (mmapd_region_adopt()) and keeps it open while the region is open (mmapd_region_adopt()
 * keeps its copy for the same reason). The daemon never opens path. Returns as
 * mmapd_region_adopt(), and open(2)'s errors (-ENOENT, -EACCES...) for path.
 */
MMAPD_EXPORT int mmapd_map_path(struct mmapd_client *client, const char *path,
                                const struct mmapd_open_opts *opts,
                                struct mmapd_region **ret_region);

/*
 * Unmaps the window, closes the descriptor and tells the daemon the grant is released (if the
 * connection is still up), without waiting: the daemon answers only a refusal, which the next
 * call on the client reads. Accepts NULL. Returns nothing, as every destructor here: a release
 * the daemon refuses, or that cannot be sent, becomes an MMAPD_EVENT_RELEASE_FAILED event; a
 * connection that is gone released the grant itself.
 */
MMAPD_EXPORT void mmapd_region_close(struct mmapd_region *region);

/*
 * The first byte of the window (exactly opts->offset into the region). It moves when a window
 * of length 0 grows beyond its reservation (or without one).
 */
MMAPD_EXPORT void *mmapd_region_data(const struct mmapd_region *region);
/* Length of the window in bytes; a window opened with length 0 follows the region's size. */
MMAPD_EXPORT size_t mmapd_region_length(const struct mmapd_region *region);
/* Offset of the window in the region. */
MMAPD_EXPORT uint64_t mmapd_region_offset(const struct mmapd_region *region);
/* Size of the whole region as last heard from the daemon (it follows resizes). */
MMAPD_EXPORT uint64_t mmapd_region_size(const struct mmapd_region *region);
MMAPD_EXPORT enum mmapd_mode mmapd_region_mode(const struct mmapd_region *region);
/*
 * Changes the mode of an open region in place, as memmap2's make_read_only()/make_mut() do:
 * the daemon is asked for a grant of the region in mode (its access checks apply), the window
 * is made that mode at the same address (mmapd_region_data() does not move), then the old
 * grant is released. RW to RO only takes write access away (pages, advice and memory locks
 * stay); every other change maps the file again over the window, which drops a COW window's
 * private changes and the window's mmapd_region_advise()/mlock() state. Exec stays as opened
 * (MMAPD_OPEN_EXEC is asked for again with the new mode). Pages a shrink made inaccessible stay
 * so, growth maps new pages in the new mode, and a reconnection reopens the region in it. Do
 * not touch the window or call this concurrently with other calls on the same region.
 * Returns 0 (also when mode is already the region's), or: -EINVAL (region NULL, bad mode),
 * -EACCES (the caller may not map the region in mode), -EPERM (exec no longer allowed),
 * -ESTALE (the region was deleted, or its name now refers to another file), -EAGAIN (the
 * client's grant limit reached), -ENOMEM, the errors of mmap() making the new mapping,
 * -ECONNRESET/-ESHUTDOWN/-ENOTCONN (connection lost, daemon stopping, disconnected). On any
 * error the region is unchanged: same mode, mapping, pointer and grant.
 */
MMAPD_EXPORT int mmapd_region_set_mode(struct mmapd_region *region, enum mmapd_mode mode);
/* The region's name (borrowed; valid until the region is closed); the new name once the
 * region's MMAPD_EVENT_RENAMED was read (mmapd_rename()). */
MMAPD_EXPORT const char *mmapd_region_name(const struct mmapd_region *region);
/* The descriptor behind the mapping (borrowed: do not close it). */
MMAPD_EXPORT int mmapd_region_fd(const struct mmapd_region *region);
/*
 * The client region was opened on (borrowed: the region holds a reference on it, so it stays
 * valid until the region is closed, also after mmapd_disconnect()), e.g. for mmapd_lock() on
 * the region's name. NULL for NULL.
 */
MMAPD_EXPORT struct mmapd_client *mmapd_region_client(const struct mmapd_region *region);

/*
 * Copies len bytes at window offset off into buf. Returns 0, or -ERANGE when off+len passes
 * the end of the window or reaches a part a shrink made inaccessible (nothing copied).
 */
MMAPD_EXPORT int mmapd_region_read(const struct mmapd_region *region, uint64_t off,
                                   void *buf, size_t len);
/*
 * Copies len bytes from buf to window offset off. Returns 0, -ERANGE (outside the window or
 * its accessible part, nothing copied), or -EACCES on a read-only mapping. With
 * MMAPD_OPEN_REPORT_WRITES (read-write mode) the write is then reported as mmapd_report_changed()
 * does, and that call's errors are returned (the bytes are copied all the same).
 */
MMAPD_EXPORT int mmapd_region_write(struct mmapd_region *region, uint64_t off,
                                    const void *buf, size_t len);

/*
 * Opens a stdio stream over window offsets off..off+len (len 0: from off to the end of the
 * window, following its length), for fprintf, fscanf, getline, fread, fwrite, fseek. mode is
 * "r", "w", "r+" or "w+" ("b" ignored); "w" clears nothing and every stream starts at 0.
 * Reading at the end is end of file; a write copies what fits and fails with ENOSPC for the
 * rest (the region never grows); seeking is allowed from 0 to the stream's length (EINVAL
 * beyond). Writes reach the window when stdio hands them down (fflush(), a full buffer,
 * fclose()); with MMAPD_OPEN_REPORT_WRITES each one is reported as mmapd_region_write() does.
 * The stream keeps what it needs alive: after mmapd_region_close() its reads and writes fail
 * with EBADF (fclose() still frees it); after mmapd_region_set_mode() to read-only its writes
 * fail with EACCES. Copies are made with the client's lock held, so a remap never runs during
 * one. Returns 0 with *ret_file (close it with fclose()), or -EINVAL (NULL argument, bad
 * mode), -EACCES (a writing mode on a read-only region), -ERANGE (off..off+len outside the
 * window's accessible part), -ENOMEM.
 */
MMAPD_EXPORT int mmapd_region_fopen(struct mmapd_region *region, uint64_t off, uint64_t len,
                                    const char *mode, FILE **ret_file);

/* Byte orders of mmapd_region_get_scalar() and mmapd_region_put_scalar(). */
enum mmapd_byte_order {
	MMAPD_ORDER_LE = 1, /* little-endian: least significant byte first */
	MMAPD_ORDER_BE = 2, /* big-endian (network order): most significant byte first */
	_MMAPD_ORDER_FORCE_INT32 = INT32_MAX,
};
/*
 * Reads the number of size bytes (1, 2, 4 or 8) stored in order at window offset off, at any
 * alignment, into the native object *ret_value of that size (an integer of either signedness,
 * a float or a double: IEEE 754, stored as integers of its size are). mmapd_region_put_scalar()
 * stores *value so. Bounds and mode as mmapd_region_read()/mmapd_region_write() (a put is a
 * write: MMAPD_OPEN_REPORT_WRITES reports it). Not atomic (see the atomic views). Returns 0,
 * -EINVAL (NULL argument, size or order unknown), -ERANGE (off+size outside the window's
 * accessible part), -EACCES (a put on a read-only region).
 */
MMAPD_EXPORT int mmapd_region_get_scalar(const struct mmapd_region *region, uint64_t off,
                                         size_t size, enum mmapd_byte_order order,
                                         void *ret_value);
MMAPD_EXPORT int mmapd_region_put_scalar(struct mmapd_region *region, uint64_t off,
                                         size_t size, enum mmapd_byte_order order,
                                         const void *value);
/*
 * The typed forms, with the type checked by the compiler:
 *   int mmapd_region_get_<T>(const struct mmapd_region *region, uint64_t off, type *ret_value);
 *   int mmapd_region_put_<T>(struct mmapd_region *region, uint64_t off, type value);
 * for <T> u8, i8 (one byte: no order), and u16le, u16be, i16le, i16be, u32le, u32be, i32le,
 * i32be, u64le, u64be, i64le, i64be, f32le, f32be, f64le, f64be. E.g. put_u32be 0x01020304
 * stores the bytes 01 02 03 04.
 */
#define MMAPD_SCALAR_ACCESSORS_(name, type, order)                                            \
	static inline int mmapd_region_get_##name(const struct mmapd_region *region, uint64_t off, \
	                                          type *ret_value)                                 \
	{                                                                                          \
		return mmapd_region_get_scalar(region, off, sizeof(type), order, ret_value);         \
	}                                                                                          \
	static inline int mmapd_region_put_##name(struct mmapd_region *region, uint64_t off,       \
	                                          type value)                                      \
	{                                                                                          \
		return mmapd_region_put_scalar(region, off, sizeof(type), order, &value);            \
	}
#define MMAPD_SCALAR_ACCESSORS_LE_BE_(name, type)                                             \
	MMAPD_SCALAR_ACCESSORS_(name##le, type, MMAPD_ORDER_LE)                                  \
	MMAPD_SCALAR_ACCESSORS_(name##be, type, MMAPD_ORDER_BE)
MMAPD_SCALAR_ACCESSORS_(u8, uint8_t, MMAPD_ORDER_LE)
MMAPD_SCALAR_ACCESSORS_(i8, int8_t, MMAPD_ORDER_LE)
MMAPD_SCALAR_ACCESSORS_LE_BE_(u16, uint16_t)
MMAPD_SCALAR_ACCESSORS_LE_BE_(i16, int16_t)
MMAPD_SCALAR_ACCESSORS_LE_BE_(u32, uint32_t)
MMAPD_SCALAR_ACCESSORS_LE_BE_(i32, int32_t)
MMAPD_SCALAR_ACCESSORS_LE_BE_(u64, uint64_t)
MMAPD_SCALAR_ACCESSORS_LE_BE_(i64, int64_t)
MMAPD_SCALAR_ACCESSORS_LE_BE_(f32, float)
MMAPD_SCALAR_ACCESSORS_LE_BE_(f64, double)
#undef MMAPD_SCALAR_ACCESSORS_LE_BE_
#undef MMAPD_SCALAR_ACCESSORS_

/*
 * Deletes the region: its name is free at once; processes that have it mapped keep their
 * mappings until they close them. Returns 0, -ENOENT, -EINVAL, -ELOOP.
 */
MMAPD_EXPORT int mmapd_delete(struct mmapd_client *client, const char *name);

/* Flags of mmapd_rename() and mmapd_copy(). */
#define MMAPD_MANAGE_REPLACE 0x1u /* replace a region already called `to` (it is deleted) */

/*
 * Renames region name to `to`, atomically (renameat2 in the data directory; an anonymous
 * region is renamed in the daemon only). Needs write permission on name, and with
 * MMAPD_MANAGE_REPLACE on `to` too. Every process holding or subscribed to the region keeps
 * its mapping, locks, subscription and control page, and gets an MMAPD_EVENT_RENAMED event
 * (region: the old name, to: the new one); libmmapd renames its struct mmapd_region (so
 * mmapd_region_name() returns `to`) when it reads that event, before the handler sees it.
 * Holders of a replaced region get MMAPD_EVENT_DELETED first. Returns 0, or -EEXIST (`to`
 * exists and flags lack MMAPD_MANAGE_REPLACE; or one of the two is anonymous and the other
 * a file region), -ENOENT, -EACCES, -EINVAL (bad name or flags, name equal to `to`),
 * -ENAMETOOLONG, -ENOMEM, or a connection error.
 */
MMAPD_EXPORT int mmapd_rename(struct mmapd_client *client, const char *name, const char *to,
                              unsigned flags);

/* How mmapd_copy() copied. */
enum mmapd_copy_method {
	MMAPD_COPY_REFLINK = 0,    /* FICLONE: the blocks are shared copy-on-write (btrfs, xfs) */
	MMAPD_COPY_FILE_RANGE,     /* copy_file_range(2), over the source's data segments */
	MMAPD_COPY_BYTES,          /* read and write, over the source's data segments */
	_MMAPD_COPY_FORCE_INT32 = INT32_MAX,
};

/*
 * Makes a new file region `to` holding a copy of region name's bytes (file or anonymous),
 * on the daemon's thread pool: a reflink where the file system can, else copy_file_range,
 * else read and write; holes in the source stay holes. The copy belongs to the caller (mode
 * 0660, manual flush policy) and counts as a creation (allow_create,
 * max_regions_created_per_client). Needs read permission on name, and with
 * MMAPD_MANAGE_REPLACE write permission on an existing `to` (deleted once the copy is
 * complete). Bytes written to the source while it is copied may or may not be in the copy.
 * ret_method (may be NULL) receives how it was copied. Returns 0, or -EEXIST, -ENOENT,
 * -EACCES, -EINVAL, -ENAMETOOLONG, -EAGAIN (a limit), -EFBIG, -ENOSPC, -ENOMEM, or a
 * connection error.
 */
MMAPD_EXPORT int mmapd_copy(struct mmapd_client *client, const char *name, const char *to,
                            unsigned flags, enum mmapd_copy_method *ret_method);

/*
 * Truncation on close (fmmap's close_with_truncate): the daemon truncates the region's file
 * to size bytes once the region has no grant left, whoever's (at once if it has none, for a
 * caller that closed its own already): typically a writer that mapped a generous region and
 * knows at the end how much it wrote. A later call replaces the size; it is kept in the
 * daemon's memory only (a daemon restart forgets it). Subscribers get MMAPD_EVENT_RESIZED when
 * it happens. Needs write permission; file regions only. Returns 0, -EINVAL (NULL region, an
 * anonymous region), -EFBIG (above max_region_size), -EACCES, -ENOENT (the region is gone
 * under its name), or a connection error.
 */
MMAPD_EXPORT int mmapd_region_truncate_on_close(struct mmapd_region *region, uint64_t size);

/*
 * Asks the daemon about region name. Returns 0 with *ret_info set (free with
 * mmapd_region_info_free()), or -ENOENT, -EINVAL (NULL argument, bad name), -ENAMETOOLONG,
 * -ENOMEM, -EPROTO (a malformed reply), or a connection error.
 */
MMAPD_EXPORT int mmapd_stat(struct mmapd_client *client, const char *name,
                            struct mmapd_region_info **ret_info);
/* mmapd_stat() of an open region's name, on its connection. */
MMAPD_EXPORT int mmapd_region_stat(struct mmapd_region *region,
                                   struct mmapd_region_info **ret_info);
/* Frees what mmapd_stat() returned (not an entry of a list). Accepts NULL. */
MMAPD_EXPORT void mmapd_region_info_free(struct mmapd_region_info *info);

/* A list of regions (opaque: its length and stride are the library's). */
struct mmapd_region_list;
/*
 * Lists every region, sorted by name, paging through the daemon's answers. Returns 0 with
 * *ret_list set (free with mmapd_region_list_free(); it may be empty), or -EINVAL (NULL
 * argument), -ENOMEM, -EPROTO (a malformed reply), or a connection error.
 */
MMAPD_EXPORT int mmapd_list_regions(struct mmapd_client *client,
                                    struct mmapd_region_list **ret_list);
/* The number of regions in list (0 for NULL). */
MMAPD_EXPORT size_t mmapd_region_list_count(const struct mmapd_region_list *list);
/* Region i of list (borrowed: valid until the list is freed), or NULL when i is past the end. */
MMAPD_EXPORT const struct mmapd_region_info *mmapd_region_list_at(
	const struct mmapd_region_list *list, size_t i);
/* Frees the list and every entry. Accepts NULL. */
MMAPD_EXPORT void mmapd_region_list_free(struct mmapd_region_list *list);

/*
 * Asks the daemon for its figures. Returns 0 with *ret_status set (free with
 * mmapd_status_free()), or -EINVAL, -ENOMEM, -EPROTO, or a connection error.
 */
MMAPD_EXPORT int mmapd_get_status(struct mmapd_client *client, struct mmapd_status **ret_status);
/* Frees what mmapd_get_status() returned. Accepts NULL. */
MMAPD_EXPORT void mmapd_status_free(struct mmapd_status *status);

/* One no-op round trip to the daemon. Returns 0 or a negative errno. */
MMAPD_EXPORT int mmapd_ping(struct mmapd_client *client);

/*
 * ---- Access control and operations (docs/protocol.md, "Access control and operations") ----
 */

/*
 * Changes the owner and/or group of region name; uid or gid -1 keeps the current value (not
 * both -1). Only root or the region's owner may; only root may change the owner; the owner may
 * set the group to one it is in. Returns 0 once the change is on disk, or -EPERM (not allowed,
 * as chown(2)), -EINVAL (both -1, a value below -1 or above 2^32-2, a bad name), -ENAMETOOLONG,
 * -ENOENT (no such region), or a connection error.
 */
MMAPD_EXPORT int mmapd_chown(struct mmapd_client *client, const char *name, int64_t uid,
                             int64_t gid);

/*
 * Sets the mode bits of region name to perm (0 .. 0777). Root or the owner only. Returns 0,
 * -EPERM, -EINVAL (perm above 0777, a bad name), -ENAMETOOLONG, -ENOENT, or a connection error.
 */
MMAPD_EXPORT int mmapd_chmod(struct mmapd_client *client, const char *name, unsigned perm);

/* One connection to the daemon as reported by mmapd_list_clients(); allocated by the
 * library only (see "How this ABI grows" above). */
struct mmapd_client_info {
	uint64_t id;                 /* the connection's number, as in the daemon's log */
	const char *name;            /* its hello client name; "" when it gave none (in the list) */
	int64_t pid;                 /* the peer's credentials when it connected */
	int64_t uid;
	int64_t gid;
	uint64_t connected_since_ms; /* Unix epoch ms */
	uint64_t grants;             /* open grants */
	uint64_t bytes_granted;      /* sum of the region sizes the grants were made at */
	uint64_t regions_created;    /* creations it started (failed ones do not count) */
	uint64_t locks_held;
	uint64_t locks_waiting;
	uint64_t subscriptions;
	uint64_t queued_bytes;       /* replies waiting to be read by it */
	uint64_t queued_fds;         /* descriptors waiting to be read by it */
};

/* A list of connections (opaque). */
struct mmapd_client_list;
/*
 * Lists every connection to the daemon (the calling one included), sorted by id; pages
 * through the daemon's answers as mmapd_list_regions() does. Returns 0 with *ret_list set
 * (free with mmapd_client_list_free()), or -EINVAL (NULL argument), -ENOMEM, -EPROTO (a
 * malformed reply), or a connection error.
 */
MMAPD_EXPORT int mmapd_list_clients(struct mmapd_client *client,
                                    struct mmapd_client_list **ret_list);
/* As mmapd_region_list_count(), _at() and _free(). */
MMAPD_EXPORT size_t mmapd_client_list_count(const struct mmapd_client_list *list);
MMAPD_EXPORT const struct mmapd_client_info *mmapd_client_list_at(
	const struct mmapd_client_list *list, size_t i);
MMAPD_EXPORT void mmapd_client_list_free(struct mmapd_client_list *list);

/*
 * The daemon's counters in the Prometheus text exposition format (version 0.0.4): every
 * figure as mmapd_<key> with "# HELP" and "# TYPE" lines, mmapd_requests_total{op="..."} and
 * mmapd_errors_total{code="..."}. Returns 0 with *ret_text set to a NUL-terminated string the
 * caller frees with free(), or -EINVAL (NULL argument), -ENOMEM (also when the daemon's reply
 * would not fit its max_frame), -EPROTO, or a connection error.
 */
MMAPD_EXPORT int mmapd_stats_prometheus(struct mmapd_client *client, char **ret_text);

/*
 * The daemon's counters as one line of JSON: the stats reply of docs/protocol.md without its
 * "id" and "ok" (uptime_seconds, connections_accepted_total, ..., the "requests" and "errors"
 * objects). Keys the daemon adds later appear too. Returns 0 with *ret_json set to a
 * NUL-terminated string the caller frees with free(), or the errors of mmapd_stats_prometheus().
 */
MMAPD_EXPORT int mmapd_stats_json(struct mmapd_client *client, char **ret_json);

/*
 * ---- Coordination: locks, resize, change notification, flush (docs/coordination.md) ----
 * Each is one request to the daemon, offered two ways with the same errors:
 *  - by name, mmapd_<verb>(client, name, ...): the region must exist, nothing need be open;
 *    offsets are region offsets;
 *  - on an open region, mmapd_region_<verb>(region, ...): on the region's connection and
 *    name; offsets are window offsets like every mmapd_region_* call (the library adds the
 *    window's start), and a length of 0 keeps its by-name meaning (to the end of the region).
 * Durability has two names: mmapd_flush()/mmapd_region_flush() ask the daemon to fdatasync
 * (its flush policies and poisoning apply); mmapd_region_msync() is msync() of this
 * process's own mapping, with no daemon involved.
 */

#define MMAPD_LOCK_SHARED    0x0u
#define MMAPD_LOCK_EXCLUSIVE 0x1u
#define MMAPD_LOCK_NOWAIT    0x2u /* fail with -EAGAIN instead of waiting */

/*
 * Locks offset..offset+length of region name (length 0: to the end of any size). Waits in the
 * daemon's fair queue for up to timeout_ms (< 0: forever) unless MMAPD_LOCK_NOWAIT. Other
 * threads may keep using the client while one waits. Locks are released by mmapd_unlock(), by
 * disconnecting, or when the process dies. Returns 0 with *ret_lock set, -EAGAIN (NOWAIT and a
 * conflict, or this client's lock limit), -ETIMEDOUT, -EDEADLK (waiting would close a cycle of
 * clients waiting for each other), -ECANCELED (region deleted while waiting), -ENOENT, -EINVAL.
 * A whole-region lock (offset and length 0) of a region this client holds open read-write is
 * taken on the region's control page in shared memory, without a round trip unless it is
 * busy for more than 1 ms (docs/coordination.md, "The control page").
 */
MMAPD_EXPORT int mmapd_lock(struct mmapd_client *client, const char *name, uint64_t offset,
                            uint64_t length, unsigned flags, int timeout_ms, uint64_t *ret_lock);
/* Releases a lock of this client. Returns 0, -EBADF (not held by this client). */
MMAPD_EXPORT int mmapd_unlock(struct mmapd_client *client, uint64_t lock);
/* mmapd_lock() and mmapd_unlock() on an open region (window offsets; see above). */
MMAPD_EXPORT int mmapd_region_lock(struct mmapd_region *region, uint64_t offset, uint64_t length,
                                   unsigned flags, int timeout_ms, uint64_t *ret_lock);
MMAPD_EXPORT int mmapd_region_unlock(struct mmapd_region *region, uint64_t lock);

/* One lock, held or waited for, as reported by mmapd_list_locks(); allocated by the library
 * only (see "How this ABI grows" above). Strings are in the list. */
struct mmapd_lock_info {
	const char *region;
	uint64_t lock;
	bool waiting;        /* false: held */
	bool exclusive;
	uint64_t offset;
	uint64_t length;     /* 0: to the end */
	const char *client;  /* the holder's hello name */
	int64_t pid;
	int64_t uid;
	uint64_t since_ms;   /* Unix epoch ms when granted or queued */
};
/* A list of locks (opaque). */
struct mmapd_lock_list;
/*
 * Lists the locks of region name (NULL: of every region), holders first, then waiters in
 * queue order. Returns 0 with *ret_list set (free with mmapd_lock_list_free()), or -EINVAL,
 * -ENAMETOOLONG, -ENOMEM, -EPROTO, or a connection error.
 */
MMAPD_EXPORT int mmapd_list_locks(struct mmapd_client *client, const char *name,
                                  struct mmapd_lock_list **ret_list);
/* As mmapd_region_list_count(), _at() and _free(). */
MMAPD_EXPORT size_t mmapd_lock_list_count(const struct mmapd_lock_list *list);
MMAPD_EXPORT const struct mmapd_lock_info *mmapd_lock_list_at(
	const struct mmapd_lock_list *list, size_t i);
MMAPD_EXPORT void mmapd_lock_list_free(struct mmapd_lock_list *list);

#define MMAPD_RESIZE_SPARSE    0x1u /* grow without reserving blocks */
#define MMAPD_RESIZE_GROW_ONLY 0x2u /* never shrink: a smaller size leaves the region as it is */
/*
 * Grows or shrinks region name to size bytes and returns when done. Growth reaches every
 * client's mapping through a `resized` event; a shrink first asks every mapper to let go of the
 * tail (libmmapd does so whenever it reads from the daemon: in mmapd_client_dispatch() or any call)
 * and fails with -ETIMEDOUT, changing nothing, if one does not answer in time. Returns 0,
 * -ENOSPC, -EFBIG, -EPERM (shrinking an anonymous region), -ETIMEDOUT, -ENOENT, -EINVAL (also
 * a size that is not a multiple of a hugetlb region's huge page size, or MMAPD_RESIZE_SPARSE
 * on a hugetlb region: its new pages are always reserved). With MMAPD_RESIZE_GROW_ONLY the
 * daemon compares with the region's size when the resize's turn comes (resizes of one region
 * run one after the other) and leaves a larger region as it is, returning 0.
 */
MMAPD_EXPORT int mmapd_resize(struct mmapd_client *client, const char *name, uint64_t size,
                              unsigned flags);
/* mmapd_resize() of an open region (size is the whole region's, not the window's). */
MMAPD_EXPORT int mmapd_region_resize(struct mmapd_region *region, uint64_t size, unsigned flags);

/* Subscribes to region name's events. *ret_seq (may be NULL) gets its current sequence number.
 * Returns 0, -EALREADY, -EAGAIN (limit), -ENOENT, -EINVAL. */
MMAPD_EXPORT int mmapd_subscribe(struct mmapd_client *client, const char *name,
                                 uint64_t *ret_seq);
/*
 * mmapd_subscribe() whose changes come from the region's control page instead of the daemon:
 * the daemon passes a read-only mapping of the page's change log and its doorbell, writers
 * ring the doorbell after publishing, and mmapd_client_fd() becomes readable; then
 * mmapd_client_dispatch() (or the dispatch thread) reads the log and delivers
 * MMAPD_EVENT_CHANGED and MMAPD_EVENT_OVERFLOW events with the same seqs, ranges, writer pids,
 * coalescing and overflows as the daemon's events (writer_client is NULL). No grant is
 * needed, as for mmapd_subscribe(). After a reconnection (or a daemon restart through the fd
 * store) the subscription is an ordinary one. Returns 0, or as mmapd_subscribe(), or
 * -EMFILE/-EAGAIN (the two descriptors do not fit the daemon's budgets for this user or
 * connection), or -EINVAL (mmapd_client_fd() is in an epoll set and the doorbell has as many
 * watchers as Linux allows through nested sets: docs/client-api.md).
 */
MMAPD_EXPORT int mmapd_subscribe_page(struct mmapd_client *client, const char *name,
                                      uint64_t *ret_seq);

#define MMAPD_SUBSCRIBE_EXTERNAL 0x1u /* also changes nobody reported (see below) */
/*
 * mmapd_subscribe() with flags. With MMAPD_SUBSCRIBE_EXTERNAL the daemon also watches the
 * region's file for changes made outside mmapd (write(2), truncate, stores through mappings
 * of processes that do not report them; docs/coordination.md, "Changes made outside mmapd")
 * and sends each as a CHANGED event with external set, no ranges (ranges NULL, nranges 0:
 * where is not known) and size the file's size. Such a subscription counts against the uid's
 * max_watched_files_per_uid. Returns 0, -EALREADY, -EAGAIN (max_subscriptions_per_client, or
 * the uid's max_watched_files_per_uid), -ENOENT, -EACCES, -EINVAL (also unknown flags). A
 * daemon whose hello does not list the feature "external" ignores the flag: the subscription
 * then hears of reported changes only.
 */
MMAPD_EXPORT int mmapd_subscribe_flags(struct mmapd_client *client, const char *name,
                                       unsigned flags, uint64_t *ret_seq);
/* Returns 0, or -ENOENT when not subscribed. */
MMAPD_EXPORT int mmapd_unsubscribe(struct mmapd_client *client, const char *name);
/* mmapd_subscribe() and mmapd_unsubscribe() of an open region's name, on its connection. */
MMAPD_EXPORT int mmapd_region_subscribe(struct mmapd_region *region, uint64_t *ret_seq);
MMAPD_EXPORT int mmapd_region_subscribe_flags(struct mmapd_region *region, unsigned flags,
                                              uint64_t *ret_seq);
MMAPD_EXPORT int mmapd_region_unsubscribe(struct mmapd_region *region);
/*
 * Tells the daemon that offset..offset+length of region name changed (writes through a mapping
 * are invisible to inotify). Subscribers other than this client get a `changed` event; the
 * region's flush policy counts it. *ret_seq (may be NULL) gets the change's sequence number.
 * Returns 0, -ERANGE, -EIO (region poisoned, under a flushing policy), -ENOENT, -EINVAL.
 */
MMAPD_EXPORT int mmapd_report_changed(struct mmapd_client *client, const char *name,
                                      uint64_t offset, uint64_t length, uint64_t *ret_seq);
/* mmapd_report_changed() on an open region (window offsets). */
MMAPD_EXPORT int mmapd_region_report_changed(struct mmapd_region *region, uint64_t offset,
                                             uint64_t length, uint64_t *ret_seq);

/*
 * Change notification on the control page, for threads of a client holding region open
 * read-write (docs/coordination.md): changes reported by anyone, through the page or the
 * protocol, with the daemon's sequence numbers. mmapd_region_wait_changed() returns 0 once a
 * change after after_seq was reported, *ret_seq (may be NULL) getting the last one; it sleeps
 * on a futex in the page, timeout_ms < 0: no limit, 0: does not wait (-ETIMEDOUT).
 * mmapd_region_read_change() reads change seq: 0, -ESTALE (overwritten before it was read: the
 * reader's overflow, re-read the region), -EAGAIN (not reported yet). Both return -EOPNOTSUPP
 * for a region without a control page here (open read-only, or the daemon refused one):
 * subscribe to its events instead. Offsets are the region's, not the window's. Waits end with
 * -ESHUTDOWN once the daemon handed its connections over to a new one (a restart with the fd
 * store): the page's log is not kept any more.
 */
struct mmapd_change {
	uint64_t seq;
	uint64_t offset;
	uint64_t length;
	long writer_pid;
};
MMAPD_EXPORT int mmapd_region_wait_changed(struct mmapd_region *region, uint64_t after_seq,
                                           int timeout_ms, uint64_t *ret_seq);
MMAPD_EXPORT int mmapd_region_read_change(struct mmapd_region *region, uint64_t seq,
                                          struct mmapd_change *ret);

/*
 * Makes region name durable; returns once it is on stable storage. offset and length 0: the
 * whole file (fdatasync in the daemon). Otherwise the range offset..offset+length (length 0:
 * to the end of the region): the daemon writes that range's dirty pages only and then commits
 * as fdatasync does (msync(MS_SYNC) of the range: file system journal, device cache), so the
 * range is durable and dirty pages outside it are not waited for. Returns 0, -EIO (this or
 * an earlier flush failed: the region is poisoned), -ERANGE (the range is not inside the
 * region), -ENOENT.
 */
MMAPD_EXPORT int mmapd_flush(struct mmapd_client *client, const char *name, uint64_t offset,
                             uint64_t length);
/* mmapd_flush() of an open region (window offsets): durable through the daemon. For msync()
 * of this process's mapping alone see mmapd_region_msync(). */
MMAPD_EXPORT int mmapd_region_flush(struct mmapd_region *region, uint64_t offset,
                                    uint64_t length);
/*
 * mmapd_flush() without waiting: returns once the request is sent, with *ret_token (may be
 * NULL) set to a number that identifies it. Its completion arrives as an
 * MMAPD_EVENT_FLUSH_DONE event (through mmapd_client_dispatch()) for region name with seq = the
 * token and error 0 (durable) or what mmapd_flush() would have returned (-EIO, -ENOENT, a
 * connection error). Returns 0, or -EINVAL/-ENAMETOOLONG/-ENOMEM/a connection error when the
 * request could not be sent: then no event comes.
 */
MMAPD_EXPORT int mmapd_flush_async(struct mmapd_client *client, const char *name,
                                   uint64_t *ret_token);
/* mmapd_flush_async() of an open region's name, on its connection. */
MMAPD_EXPORT int mmapd_region_flush_async(struct mmapd_region *region, uint64_t *ret_token);
/*
 * mmapd_flush() of a range without waiting, as a start call (below): its end is an
 * MMAPD_EVENT_FLUSH_DONE with seq = *ret_token, offset and length as given. offset and length
 * 0: the whole file, as mmapd_flush_async() (which is this call with 0, 0).
 */
MMAPD_EXPORT int mmapd_flush_range_async(struct mmapd_client *client, const char *name,
                                         uint64_t offset, uint64_t length, uint64_t *ret_token);
/* mmapd_flush_range_async() of an open region (window offsets). */
MMAPD_EXPORT int mmapd_region_flush_range_async(struct mmapd_region *region, uint64_t offset,
                                                uint64_t length, uint64_t *ret_token);

/*
 * Start calls: the calls that wait for the daemon, without waiting. Each checks its
 * arguments, queues its request and returns at once, never blocking on the daemon: not for
 * its reply, not for a socket buffer that is full (the request waits in the library and goes
 * out with the next request, or when mmapd_client_fd() reports the socket writable and the
 * program calls mmapd_client_dispatch()), not for a reconnection. Returns 0 with *ret_token
 * (may be NULL; never 0, unique in the process) set; then exactly one event with seq = the
 * token reports the end, through mmapd_client_dispatch() or the dispatch thread, with error 0
 * or what the blocking call would have returned (the daemon's error, or the connection's when
 * it broke first: -ECONNRESET, -ESHUTDOWN, -ENOTCONN after mmapd_disconnect(), which drops
 * undelivered events). These events are never dropped when the event queue is full. A
 * negative return (-EINVAL and the blocking call's checks, -ENOMEM, the connection's error
 * when it is broken: dispatching reconnects; -EAGAIN while a reconnection runs) means nothing
 * was started and no event comes.
 */
/*
 * mmapd_region_open() started: MMAPD_EVENT_OPEN_DONE, whose opened is the region on success,
 * mapped (it then belongs to the program: mmapd_region_close() it; a program with no event
 * handler never sees it and the library closes it), NULL on failure.
 */
MMAPD_EXPORT int mmapd_region_open_start(struct mmapd_client *client, const char *name,
                                         const struct mmapd_open_opts *opts,
                                         uint64_t *ret_token);
/*
 * mmapd_lock() started: MMAPD_EVENT_LOCK_DONE with lock (the id to unlock), offset and length.
 * A whole-region lock that is free on a control page this client already has (one earlier
 * mmapd_lock() of the region found it) is taken there at once and its event is queued before
 * the call returns; any other lock is asked of the daemon, never waiting here (timeout_ms and
 * MMAPD_LOCK_NOWAIT are then the daemon's, as for mmapd_lock()).
 */
MMAPD_EXPORT int mmapd_lock_start(struct mmapd_client *client, const char *name,
                                  uint64_t offset, uint64_t length, unsigned flags,
                                  int timeout_ms, uint64_t *ret_token);
MMAPD_EXPORT int mmapd_region_lock_start(struct mmapd_region *region, uint64_t offset,
                                         uint64_t length, unsigned flags, int timeout_ms,
                                         uint64_t *ret_token);
/*
 * mmapd_resize() started: MMAPD_EVENT_RESIZE_DONE with size and generation; this client's
 * mappings of the region follow the new size before the event is delivered.
 */
MMAPD_EXPORT int mmapd_resize_start(struct mmapd_client *client, const char *name,
                                    uint64_t size, unsigned flags, uint64_t *ret_token);
MMAPD_EXPORT int mmapd_region_resize_start(struct mmapd_region *region, uint64_t size,
                                           unsigned flags, uint64_t *ret_token);
/* mmapd_delete() started: MMAPD_EVENT_DELETE_DONE. */
MMAPD_EXPORT int mmapd_delete_start(struct mmapd_client *client, const char *name,
                                    uint64_t *ret_token);
/* Sets region name's flush policy; every client holding it hears of it. */
MMAPD_EXPORT int mmapd_set_policy(struct mmapd_client *client, const char *name,
                                  const struct mmapd_policy *policy);
/*
 * Flush policies as text, as docs/coordination.md and mmapctl(1) spell them: "manual",
 * "always", "every-bytes N", "every-writes N", "interval MS": the kind's name, then for the
 * kinds with a value one space and the value, decimal, at least 1, no sign (every-bytes also
 * takes a suffix K, M, G or T for powers of 1024, "KiB" and lower case too).
 * mmapd_policy_parse() reads text into *ret_policy. Returns 0, -EINVAL (NULL, an unknown
 * kind, a value missing, given to a kind without one, or not a number: the message says
 * which, naming the kinds) or -ERANGE (the value does not fit 64 bits).
 */
MMAPD_EXPORT int mmapd_policy_parse(const char *text, struct mmapd_policy *ret_policy);
/*
 * Writes policy as mmapd_policy_parse() reads it (every-bytes in plain bytes) to buf, of size
 * bytes, NUL-terminated. Returns the text's length, -EINVAL (NULL policy or buf, an unknown
 * kind) or -ERANGE (size is not above the length: buf holds as much as fits).
 */
MMAPD_EXPORT int mmapd_policy_format(const struct mmapd_policy *policy, char *buf, size_t size);
MMAPD_EXPORT int mmapd_region_set_policy(struct mmapd_region *region,
                                         const struct mmapd_policy *policy);
/* Clears a poisoned region after an operator has dealt with the failure. */
MMAPD_EXPORT int mmapd_clear_error(struct mmapd_client *client, const char *name);
MMAPD_EXPORT int mmapd_region_clear_error(struct mmapd_region *region);

/* The region's generation as last heard from the daemon (+1 per size change). */
MMAPD_EXPORT uint64_t mmapd_region_generation(const struct mmapd_region *region);

/*
 * ---- The mapping: advice, prewarm, locking in memory, iteration, flushing ----
 * Ranges are off..off+len in window offsets, any byte alignment: the library rounds them
 * out to whole pages of the mapping (so neighbouring bytes of the same pages are affected
 * too). len 0 means up to the end of the window. A range outside the window's accessible
 * part fails with -ERANGE, a NULL region with -EINVAL.
 */

/* madvise() advice; see madvise(2) for what each does. */
enum mmapd_advice {
	MMAPD_ADVICE_NORMAL = 0,
	MMAPD_ADVICE_RANDOM,
	MMAPD_ADVICE_SEQUENTIAL,
	MMAPD_ADVICE_WILLNEED,
	MMAPD_ADVICE_DONTNEED,       /* copy-on-write: private changes of the pages are dropped */
	MMAPD_ADVICE_HUGEPAGE,
	MMAPD_ADVICE_NOHUGEPAGE,
	MMAPD_ADVICE_DONTFORK,
	MMAPD_ADVICE_DOFORK,
	MMAPD_ADVICE_MERGEABLE,
	MMAPD_ADVICE_UNMERGEABLE,
	MMAPD_ADVICE_DONTDUMP,
	MMAPD_ADVICE_DODUMP,
	MMAPD_ADVICE_COLD,
	MMAPD_ADVICE_PAGEOUT,
	MMAPD_ADVICE_POPULATE_READ,
	MMAPD_ADVICE_POPULATE_WRITE, /* read-write and copy-on-write mappings only */
	_MMAPD_ADVICE_FORCE_INT32 = INT32_MAX,
};

/*
 * Gives the kernel advice about a range. Returns 0, -EOPNOTSUPP (libmmapd was built without
 * that advice), or the kernel's refusal: -EINVAL (advice unknown to this kernel or not
 * applicable to this mapping, e.g. MERGEABLE without KSM), -EAGAIN, -ENOMEM, -EPERM, -EFAULT
 * (populate hit a page past the end of the file); the message names the advice.
 */
MMAPD_EXPORT int mmapd_region_advise(struct mmapd_region *region, uint64_t off, uint64_t len,
                                     enum mmapd_advice advice);
/*
 * Faults a range in so that later first touches do not: MADV_POPULATE_WRITE on read-write
 * mappings of anonymous regions, MADV_POPULATE_READ otherwise (a write fault would dirty every
 * page of a file), or, on kernels without them, a read of one byte per page. Returns 0,
 * -ERANGE, -EFAULT (a page lies past the end of the file), -ENOMEM.
 */
MMAPD_EXPORT int mmapd_region_prewarm(struct mmapd_region *region, uint64_t off, uint64_t len);
/*
 * Locks a range in memory (mlock) or unlocks it. Returns 0, or -EPERM/-ENOMEM/-EAGAIN with a
 * message pointing at RLIMIT_MEMLOCK (ulimit -l) or CAP_IPC_LOCK.
 */
MMAPD_EXPORT int mmapd_region_mlock(struct mmapd_region *region, uint64_t off, uint64_t len);
MMAPD_EXPORT int mmapd_region_munlock(struct mmapd_region *region, uint64_t off, uint64_t len);

/*
 * Called for each piece of a range: data points at window offset off (len bytes, borrowed for
 * the call). A non-zero return stops the iteration and becomes its result.
 */
typedef int mmapd_chunk_fn(void *data, uint64_t off, size_t len, void *userdata);
/*
 * Calls fn for consecutive chunks of chunk_size bytes (the last may be shorter) covering the
 * range exactly. Returns 0, fn's non-zero result, -ERANGE, -EINVAL (chunk_size 0, fn NULL).
 */
MMAPD_EXPORT int mmapd_region_foreach_chunk(struct mmapd_region *region, uint64_t off,
                                            uint64_t len, size_t chunk_size,
                                            mmapd_chunk_fn *fn, void *userdata);
/*
 * As mmapd_region_foreach_chunk(), with pieces that follow the mapping's pages: each lies in
 * one page, and the first and last may be partial (a window starting mid-page starts with
 * the rest of that page).
 */
MMAPD_EXPORT int mmapd_region_foreach_page(struct mmapd_region *region, uint64_t off,
                                           uint64_t len, mmapd_chunk_fn *fn, void *userdata);
/* The page size the mapping is made of (a hugetlb region's: its huge page size). */
MMAPD_EXPORT size_t mmapd_region_page_size(const struct mmapd_region *region);
/*
 * Bytes of the window's mapping that the kernel maps with huge pages at this moment: transparent
 * huge pages (anonymous, shared memory, or file pages mapped by one page-table entry) and
 * hugetlb pages, as /proc/self/smaps counts them for the mapping (an entry of smaps that merely
 * touches it counts whole). Returns 0 with *ret_bytes, -EINVAL (NULL argument), or the error
 * of opening /proc/self/smaps (-ENOENT without /proc).
 */
MMAPD_EXPORT int mmapd_region_huge_bytes(struct mmapd_region *region, uint64_t *ret_bytes);

/*
 * Makes a range durable with msync(MS_SYNC) on our own mapping: writes through any process's
 * shared mapping reach stable storage, with no daemon round trip (the daemon's flush policy and
 * poisoning are not involved; mmapd_region_flush() goes through the daemon). A range shorter
 * than a page is only added to the region's pending batch, which is flushed, together with the
 * range at hand, by the next call with a range of a page or more, by len 0 (which flushes just
 * the batch; off is then ignored), or once the batch reaches the library's limits (a private
 * count and span). Returns 0 when the range (and the batch) is durable, 1 when it was only
 * batched, or -EIO (write-back failed; the daemon will also see it on its next flush), -ERANGE,
 * -EINVAL (copy-on-write mapping: its changes are private and cannot be flushed).
 */
MMAPD_EXPORT int mmapd_region_msync(struct mmapd_region *region, uint64_t off,
                                          uint64_t len);
/*
 * msync(MS_ASYNC) of off..off+len of the window (len 0: to its end), rounded out to pages, and
 * the write-back of the range's dirty pages started (sync_file_range(SYNC_FILE_RANGE_WRITE):
 * Linux's MS_ASYNC alone starts none). Returns once it is started, without waiting for the
 * disk (the kernel may still make it wait for room in the device's queue): nothing is durable
 * yet (mmapd_region_msync(), or mmapd_region_flush_range_async() for a durable range without
 * waiting). Not batched. Returns 0, -ERANGE, -EINVAL (copy-on-write mapping), -EIO (an
 * earlier write-back of the file failed).
 */
MMAPD_EXPORT int mmapd_region_msync_async(struct mmapd_region *region, uint64_t off,
                                          uint64_t len);

/*
 * ---- Atomic views ----
 * Pointers to naturally aligned 8-, 16-, 32- and 64-bit words of the window, for C11 atomic
 * operations shared by every process mapping the region: such atomics are lock-free and
 * therefore address-free (libmmapd refuses to build where they are not), so they work across
 * processes through shared mappings, with the C11 memory model as within one process
 * (seq_cst, acquire/release). Not for C++ (use std::atomic_ref on mmapd_region_data()).
 * The pointer is valid while the mapping does not move (see mmapd_region_data()). On a
 * read-only mapping only loads are allowed (a store faults); on copy-on-write ones the
 * atomics are private to this process.
 * Returns 0, -EINVAL (off not aligned in the region to the word's size, NULL argument,
 * count 0), -ERANGE (the words do not lie in the window's accessible part).
 */
#ifndef __cplusplus
MMAPD_EXPORT int mmapd_region_atomic_u32(struct mmapd_region *region, uint64_t off,
                                         _Atomic uint32_t **ret_atomic);
MMAPD_EXPORT int mmapd_region_atomic_u64(struct mmapd_region *region, uint64_t off,
                                         _Atomic uint64_t **ret_atomic);
MMAPD_EXPORT int mmapd_region_atomic_u32_slice(struct mmapd_region *region, uint64_t off,
                                               size_t count, _Atomic uint32_t **ret_atomic);
MMAPD_EXPORT int mmapd_region_atomic_u64_slice(struct mmapd_region *region, uint64_t off,
                                               size_t count, _Atomic uint64_t **ret_atomic);
/* The same for the other widths and signedness: 8 and 16 bits, signed, and bool (one byte). */
MMAPD_EXPORT int mmapd_region_atomic_u8(struct mmapd_region *region, uint64_t off,
                                        _Atomic uint8_t **ret_atomic);
MMAPD_EXPORT int mmapd_region_atomic_u16(struct mmapd_region *region, uint64_t off,
                                         _Atomic uint16_t **ret_atomic);
MMAPD_EXPORT int mmapd_region_atomic_i8(struct mmapd_region *region, uint64_t off,
                                        _Atomic int8_t **ret_atomic);
MMAPD_EXPORT int mmapd_region_atomic_i16(struct mmapd_region *region, uint64_t off,
                                         _Atomic int16_t **ret_atomic);
MMAPD_EXPORT int mmapd_region_atomic_i32(struct mmapd_region *region, uint64_t off,
                                         _Atomic int32_t **ret_atomic);
MMAPD_EXPORT int mmapd_region_atomic_i64(struct mmapd_region *region, uint64_t off,
                                         _Atomic int64_t **ret_atomic);
MMAPD_EXPORT int mmapd_region_atomic_bool(struct mmapd_region *region, uint64_t off,
                                          _Atomic _Bool **ret_atomic);
MMAPD_EXPORT int mmapd_region_atomic_u8_slice(struct mmapd_region *region, uint64_t off,
                                              size_t count, _Atomic uint8_t **ret_atomic);
MMAPD_EXPORT int mmapd_region_atomic_u16_slice(struct mmapd_region *region, uint64_t off,
                                               size_t count, _Atomic uint16_t **ret_atomic);
MMAPD_EXPORT int mmapd_region_atomic_i8_slice(struct mmapd_region *region, uint64_t off,
                                              size_t count, _Atomic int8_t **ret_atomic);
MMAPD_EXPORT int mmapd_region_atomic_i16_slice(struct mmapd_region *region, uint64_t off,
                                               size_t count, _Atomic int16_t **ret_atomic);
MMAPD_EXPORT int mmapd_region_atomic_i32_slice(struct mmapd_region *region, uint64_t off,
                                               size_t count, _Atomic int32_t **ret_atomic);
MMAPD_EXPORT int mmapd_region_atomic_i64_slice(struct mmapd_region *region, uint64_t off,
                                               size_t count, _Atomic int64_t **ret_atomic);
MMAPD_EXPORT int mmapd_region_atomic_bool_slice(struct mmapd_region *region, uint64_t off,
                                                size_t count, _Atomic _Bool **ret_atomic);
#endif

/*
 * ---- SIGBUS guard ----
 * Another process holding a read-write descriptor can truncate a region's file behind
 * everyone's back; touching a vanished page then raises SIGBUS. Accesses made between
 * mmapd_guard_begin() and mmapd_guard_end() in the same thread survive that: the first
 * such fault replaces the whole mapping of the region with private zero pages (so the access
 * completes, reading zeros) and mmapd_guard_end() reports it. The mapping then no longer
 * shows the file: close and reopen the region. Faults outside a guard (or in other regions)
 * go to the SIGBUS handler that was installed before, or kill the process as usual.
 *
 * The first mmapd_guard_begin() installs a SIGBUS handler (SA_SIGINFO) for the process; a
 * handler installed later must chain to it. Guards nest per thread (up to a private limit);
 * the mapping must not move or be closed during a guard. The handler only reads this
 * thread's guard list and calls mmap(), both async-signal-safe.
 */
/* Returns 0, -EINVAL (NULL or unmapped region), -EBUSY (this thread holds as many guards as
 * the library nests: 8 today, a private limit that may change). */
MMAPD_EXPORT int mmapd_guard_begin(struct mmapd_region *region);
/*
 * Ends the innermost guard, which must be region's. Returns 0, -EFAULT when a fault hit the
 * region during the guard (the data read may be zeros, writes are lost), -EINVAL (not the
 * innermost guard of this thread).
 */
MMAPD_EXPORT int mmapd_guard_end(struct mmapd_region *region);

/* ---- Events ---- */

enum mmapd_event_type {
	MMAPD_EVENT_CHANGED = 1,      /* seq, first_seq, ranges, writer_*; external, size */
	MMAPD_EVENT_OVERFLOW,         /* seq: changes were dropped, re-read the region */
	MMAPD_EVENT_RESIZED,          /* size, old_size, generation, external (mapping already updated) */
	MMAPD_EVENT_SHRINKING,        /* size, generation: the tail was already made inaccessible */
	MMAPD_EVENT_SHRINK_CANCELLED, /* error, message: the tail is accessible again */
	MMAPD_EVENT_POLICY,           /* policy */
	MMAPD_EVENT_FLUSHED,          /* seq */
	MMAPD_EVENT_FLUSH_FAILED,     /* error, message: the region is poisoned */
	MMAPD_EVENT_DELETED,
	MMAPD_EVENT_UNLOCKED,         /* offset, length */
	MMAPD_EVENT_RECONNECTED,      /* the daemon restarted; regions were re-opened */
	MMAPD_EVENT_LOCKS_LOST,       /* nlocks locks held before the reconnect are gone */
	MMAPD_EVENT_FLUSH_DONE,       /* seq (the token), error, message: mmapd_flush_async() ended */
	MMAPD_EVENT_RELEASE_FAILED,   /* seq (the grant), error, message: a close was refused */
	MMAPD_EVENT_OPEN_DONE,        /* seq (the token), error, message, opened */
	MMAPD_EVENT_LOCK_DONE,        /* seq (the token), error, message, lock, offset, length */
	MMAPD_EVENT_RESIZE_DONE,      /* seq (the token), error, message, size, generation */
	MMAPD_EVENT_DELETE_DONE,      /* seq (the token), error, message */
	MMAPD_EVENT_RENAMED,          /* region (the old name), to: windows already renamed */
	_MMAPD_EVENT_FORCE_INT32 = INT32_MAX,
};

/* A byte range of a region. Frozen, like struct mmapd_policy: events point at arrays of it. */
struct mmapd_range {
	uint64_t offset;
	uint64_t length;
};

/* Everything an event can say; fields that do not apply to its type are zero/NULL. All
 * pointers are borrowed and valid only during the callback. */
struct mmapd_event {
	enum mmapd_event_type type;
	const char *region;            /* NULL for RECONNECTED and LOCKS_LOST */
	uint64_t seq;
	uint64_t first_seq;
	const struct mmapd_range *ranges;
	size_t nranges;
	const char *writer_client;     /* NULL when several writers were coalesced */
	int64_t writer_pid;            /* -1 when unknown */
	uint64_t size;
	uint64_t old_size;
	uint64_t generation;
	bool external;                 /* RESIZED: a size change the daemon did not make;
	                                  CHANGED: a change made outside mmapd, no ranges */
	struct mmapd_policy policy;
	int error;                     /* negative errno */
	const char *message;
	uint64_t offset;
	uint64_t length;
	size_t nlocks;
	struct mmapd_region *opened;   /* OPEN_DONE: the region, now the program's; else NULL */
	uint64_t lock;                 /* LOCK_DONE: the lock's id */
	const char *to;                /* RENAMED: the region's new name */
};

typedef void mmapd_event_fn(struct mmapd_client *client, const struct mmapd_event *event,
                            void *userdata);

/* Sets the function that receives events (NULL: events are only acted on internally). */
MMAPD_EXPORT void mmapd_client_set_event_handler(struct mmapd_client *client, mmapd_event_fn *fn,
                                          void *userdata);
/* A descriptor that becomes readable when events may be waiting, or when requests of start
 * calls wait and the socket has room again (for poll/epoll/libuv); call mmapd_client_dispatch()
 * then. Borrowed: do not close or read it. It stays the same across reconnections (it is not
 * the socket) until mmapd_disconnect(). */
MMAPD_EXPORT int mmapd_client_fd(struct mmapd_client *client);
/*
 * Reads what the daemon sent, acts on it (remaps on resize, acknowledges shrinks, reconnects
 * after a daemon restart) and calls the event handler for each event, waiting up to timeout_ms
 * (0: do not wait, < 0: forever) for the first one. Events that arrived during other calls are
 * delivered here too, in order. The handler runs without any lock held and may call libmmapd.
 * Returns the number of events delivered (0 on timeout), or a negative errno: the
 * connection's error when it is down and cannot be re-made, -EINTR when a signal interrupted
 * the wait, -EBUSY while a dispatch thread is started (mmapd_client_dispatch_thread_start()).
 */
MMAPD_EXPORT int mmapd_client_dispatch(struct mmapd_client *client, int timeout_ms);
/*
 * For programs without an event loop: starts a background thread that waits on mmapd_client_fd()
 * and calls mmapd_client_dispatch(client, 0) whenever it is readable, so the event handler runs
 * on that thread (one event at a time, in order, without any lock held; it may call libmmapd,
 * mmapd_disconnect() included). The thread re-makes a broken connection as
 * mmapd_client_dispatch() does (RECONNECTED and LOCKS_LOST are delivered on it) and blocks
 * asynchronous signals. While it is started, mmapd_client_dispatch() fails with -EBUSY. When the
 * connection is down for good (reconnection disabled, or it failed for the whole reconnect time)
 * the thread ends; mmapd_client_dispatch_thread_stop() then returns that error.
 * mmapd_disconnect() stops the thread (from its handler too: the thread ends once the handler
 * returns, and no handler runs after). Returns 0, -EBUSY (a thread is already started for
 * client, or mmapd_client_dispatch() is running), -ENOTCONN (after mmapd_disconnect()),
 * -EAGAIN/-EMFILE/-ENOMEM (no thread or descriptor), -EINVAL (client NULL).
 */
MMAPD_EXPORT int mmapd_client_dispatch_thread_start(struct mmapd_client *client);
/*
 * Stops the dispatch thread and waits for it to end, a handler it is running included (a
 * reconnection it is making is abandoned: other calls make their own). Once it returns, no
 * handler runs on that thread and mmapd_client_dispatch() may be used again. Returns 0, the
 * connection error that had ended the thread by itself, -EDEADLK (called from a handler on
 * the thread, which would wait for itself), -ESRCH (no thread started), -EINVAL.
 */
MMAPD_EXPORT int mmapd_client_dispatch_thread_stop(struct mmapd_client *client);
/*
 * How long calls keep trying to reconnect after the daemon went away (backoff from 10 ms
 * doubling to 1 s); 0 disables reconnection, < 0 tries without a time limit. Default 30000.
 */
MMAPD_EXPORT void mmapd_client_set_reconnect(struct mmapd_client *client, int timeout_ms);

/*
 * A sentence about the last failure of a libmmapd call made by the calling thread (the
 * daemon's message when the daemon refused). Valid until the thread's next libmmapd call.
 * Never NULL.
 */
MMAPD_EXPORT const char *mmapd_last_message(void);
/*
 * Records err (a negative errno value; 0 forgets the last failure) and a printf-style
 * sentence as the calling thread's last failure, which mmapd_last_message() then gives: for
 * code built on libmmapd, such as its own toolbox (mmapd-ring.h, mmapd-persist.h), that
 * reports its failures as libmmapd's do (fmt NULL: no sentence, mmapd_last_message() then
 * names err). Returns err.
 */
MMAPD_EXPORT int mmapd_set_last_message(int err, const char *fmt, ...)
#if defined(__GNUC__)
	__attribute__((format(printf, 2, 3)))
#endif
	;

/* A static description of err (negative or positive errno value). Never NULL. */
MMAPD_EXPORT const char *mmapd_strerror(int err);

#ifdef __cplusplus
}
#endif

#endif
