/*
 * The memfds behind anonymous regions. A region is made executable or not (MFD_EXEC, or
 * MFD_NOEXEC_SEAL where the kernel has it), and with huge pages when asked: a hugetlb memfd
 * (MFD_HUGETLB) whose pages are reserved at creation, or, where the system has no huge pages
 * to give, a normal memfd that clients map with MADV_HUGEPAGE (transparent huge pages). Every
 * region memfd is sealed against shrinking and against further seals, and every memfd is
 * private to the daemon's user (mode 0600, or 0700 when executable). Nothing here touches
 * the event loop, so memfd_region_create can run on the thread pool. Also the sealed text
 * memfd in which the fdstore hands the daemon's state to its next run.
 */
#ifndef MMAPD_DAEMON_MEMFD_H
#define MMAPD_DAEMON_MEMFD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The huge pages of an anonymous region ("huge" in the region object; its names are
 * proto/region_obj.h's, whose numbering this follows). */
enum memfd_huge {
	MEMFD_HUGE_NONE,      /* normal pages */
	MEMFD_HUGE_HUGETLB,   /* a hugetlb memfd: pages of memfd_huge_page_size() */
	MEMFD_HUGE_THP,       /* a normal memfd, mapped with MADV_HUGEPAGE */
};

/* Requests of memfd_region_create. */
#define MEMFD_EXEC 0x1u   /* the region may be mapped executable */
#define MEMFD_HUGE 0x2u   /* huge pages: hugetlb if the system has them, else THP */

/*
 * The size of the huge pages a hugetlb memfd gets (the system's default, "Hugepagesize" of
 * /proc/meminfo), or where the kernel has no hugetlb, that of transparent huge pages; 2 MiB
 * when neither can be read. Read once.
 */
uint64_t memfd_huge_page_size(void);

/*
 * Creates the memfd of anonymous region name, size bytes, filled unless sparse (which
 * MEMFD_HUGE excludes), sealed against shrinking, with flags MEMFD_*. With MEMFD_HUGE, size
 * must be a multiple of memfd_huge_page_size(); a hugetlb memfd is tried first and its pages
 * reserved (fallocate), and when the system cannot give them (no huge pages configured, too
 * few free) a normal memfd is made instead. Returns the O_RDWR descriptor with *ret_huge, or
 * -errno (-EACCES when the kernel refuses executable memfds: vm.memfd_noexec = 2).
 * *ret_fell_back as fsdir_resize. May block: run it on the thread pool.
 */
int memfd_region_create(const char *name, uint64_t size, bool sparse, unsigned flags,
                        enum memfd_huge *ret_huge, bool *ret_fell_back);

/*
 * A memfd named label holding text (without its NUL), sealed against every change. Returns
 * it (the caller closes it) or -errno. The fdstore keeps the daemon's state in one.
 */
int memfd_text_create(const char *label, const char *text);

/*
 * A zero-filled memfd of size bytes, private to the daemon's user, sealed against any change
 * of size (and further seals), for pages the daemon shares read-write with clients (the
 * control pages, control.h). Returns the descriptor or -errno.
 */
int memfd_page_create(const char *label, size_t size);

/*
 * Clears the group and other bits of memfd fd's mode, so that nobody but the daemon's user
 * (and root) can reopen it through /proc/<pid>/fd with more access than a descriptor gave.
 * Returns 0, or -errno (-EPERM when the daemon's user does not own it).
 */
int memfd_restrict(int fd);

/* True when fd is a hugetlb memfd (on hugetlbfs). */
bool memfd_is_hugetlb(int fd);
/* True when fd is a memfd sealed non-executable (MFD_NOEXEC_SEAL: F_SEAL_EXEC, no x bits). */
bool memfd_is_noexec_sealed(int fd);

#endif
