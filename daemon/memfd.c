/*
 * Anonymous regions' memfds (see memfd.h).
 *
 * Exec: since Linux 6.3 a memfd is made either with MFD_EXEC (its inode has execute bits) or
 * with MFD_NOEXEC_SEAL (no execute bits, and F_SEAL_EXEC so that nobody can chmod them back).
 * That stops one thing only: execve()/fexecve() of the memfd as a program. It does NOT stop a
 * holder of the descriptor from mmap(PROT_EXEC)-ing it: the memfd lives on an internal mount
 * that is not noexec. So the seal is defence in depth for regions created without exec; the
 * consent itself is the region's mode and the daemon's allow_exec, enforced on the protocol
 * (docs/protocol.md). Older kernels refuse the unknown flags with EINVAL, and the memfd is
 * then made as before. With vm.memfd_noexec = 2 the kernel refuses MFD_EXEC (EACCES): an
 * executable region cannot be created there, which is said as such.
 *
 * Huge pages: a hugetlb memfd takes its pages from the pool the administrator configured
 * (vm.nr_hugepages); fallocate reserves them now, so that a shortage is an error here and not
 * SIGBUS in a client later. When the pool cannot give them (no pages configured: ENOSPC,
 * ENOMEM; no hugetlb in the kernel: EINVAL, ENOENT, ENODEV) a normal memfd is made, and
 * clients advise transparent huge pages on it.
 *
 * Privacy: a memfd's inode is made 0666 (0777 with exec), and anyone who holds a descriptor of
 * it, even a read-only one, can open("/proc/self/fd/N", O_RDWR): that open checks only the
 * inode's owner and mode, never the grant. So every memfd is made private to the daemon's
 * user (group and other bits cleared) before any descriptor of it leaves the daemon; a
 * client's read-only grant then stays read-only.
 */
#include "memfd.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>
#include <linux/magic.h>

#include "fileio.h"
#include "fsdir.h"

#ifndef MFD_NOEXEC_SEAL
#define MFD_NOEXEC_SEAL 0x0008u
#endif
#ifndef MFD_EXEC
#define MFD_EXEC 0x0010u
#endif
#ifndef F_SEAL_EXEC
#define F_SEAL_EXEC 0x0020
#endif

#define MEMFD_HUGE_DEFAULT (2u << 20)

/* Reads the first "<key> <n> kB" line of a /proc file like meminfo. Returns bytes or 0. */
static uint64_t memfd_read_kib(const char *path, const char *key)
{
	char line[128];
	unsigned long long kib;
	uint64_t bytes = 0;
	size_t len = strlen(key);
	FILE *f = fopen(path, "re");

	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f)) {
		if (strncmp(line, key, len) == 0 && sscanf(line + len, " %llu kB", &kib) == 1) {
			bytes = (uint64_t)kib << 10;
			break;
		}
	}
	fclose(f);
	return bytes;
}

/* The size of a transparent huge page, or 0. */
static uint64_t memfd_thp_size(void)
{
	unsigned long long n = 0;
	FILE *f = fopen("/sys/kernel/mm/transparent_hugepage/hpage_pmd_size", "re");

	if (!f)
		return 0;
	if (fscanf(f, "%llu", &n) != 1)
		n = 0;
	fclose(f);
	return n;
}

uint64_t memfd_huge_page_size(void)
{
	static uint64_t size;

	if (size == 0) {
		uint64_t s = memfd_read_kib("/proc/meminfo", "Hugepagesize:");

		if (s == 0)
			s = memfd_thp_size();
		/* Only a power of two can be rounded to. */
		size = s >= 4096 && (s & (s - 1)) == 0 ? s : MEMFD_HUGE_DEFAULT;
	}
	return size;
}

int memfd_restrict(int fd)
{
	struct stat st;

	if (fstat(fd, &st) < 0)
		return -errno;
	/* The owner's execute bit stays as it is: F_SEAL_EXEC forbids changing any x bit, and
	 * a noexec-sealed memfd has none to clear. */
	if ((st.st_mode & 077) == 0)
		return 0;
	return fchmod(fd, st.st_mode & 0700) < 0 ? -errno : 0;
}

/* memfd_create of a memfd private to the daemon's user (memfd_restrict), closing it on
 * failure. Returns the descriptor or -errno. */
static int memfd_create_private(const char *label, unsigned flags)
{
	int fd = memfd_create(label, flags), r;

	if (fd < 0)
		return -errno;
	r = memfd_restrict(fd);
	if (r < 0) {
		close(fd);
		return r;
	}
	return fd;
}

/* memfd_create_private with the exec flag of want_exec, falling back on kernels before 6.3. */
static int memfd_make(const char *label, unsigned flags, bool want_exec)
{
	int fd = memfd_create_private(label, flags | (want_exec ? MFD_EXEC : MFD_NOEXEC_SEAL));

	if (fd == -EINVAL)
		fd = memfd_create_private(label, flags);
	return fd;
}

/* A hugetlb memfd of size bytes with its pages reserved, or -errno. */
static int memfd_make_hugetlb(const char *label, uint64_t size, bool want_exec)
{
	int fd, r;

	fd = memfd_make(label, MFD_CLOEXEC | MFD_ALLOW_SEALING | MFD_HUGETLB, want_exec);
	if (fd < 0)
		return fd;
	r = fsdir_reserve(fd, size);
	if (r < 0) {
		close(fd);
		return r;
	}
	return fd;
}

/*
 * Ends the making of memfd fd whose filling returned r: when r is 0 adds seals and returns fd;
 * otherwise, or when sealing fails, closes fd and returns the error.
 */
static int memfd_seal(int fd, int r, unsigned seals)
{
	if (r == 0 && fcntl(fd, F_ADD_SEALS, seals) < 0)
		r = -errno;
	if (r < 0) {
		close(fd);
		return r;
	}
	return fd;
}

/* Errors of a hugetlb attempt that mean "no huge pages here", not a failure. */
static bool memfd_hugetlb_unavailable(int err)
{
	return err == -ENOSPC || err == -ENOMEM || err == -EINVAL || err == -ENOENT ||
	       err == -ENODEV || err == -EOPNOTSUPP;
}

int memfd_region_create(const char *name, uint64_t size, bool sparse, unsigned flags,
                        enum memfd_huge *ret_huge, bool *ret_fell_back)
{
	char label[250];   /* memfd names are at most 249 bytes */
	bool want_exec = flags & MEMFD_EXEC;
	int fd = -ENOSYS, r = 0;

	snprintf(label, sizeof(label), "mmapd:%s", name);
	*ret_huge = MEMFD_HUGE_NONE;
	if (flags & MEMFD_HUGE) {
		fd = memfd_make_hugetlb(label, size, want_exec);
		if (fd >= 0)
			*ret_huge = MEMFD_HUGE_HUGETLB;
		else if (memfd_hugetlb_unavailable(fd))
			*ret_huge = MEMFD_HUGE_THP;
		else
			return fd;
	}
	if (fd < 0) {
		fd = memfd_make(label, MFD_CLOEXEC | MFD_ALLOW_SEALING, want_exec);
		if (fd < 0)
			return fd;
		r = fsdir_resize(fd, size, sparse, ret_fell_back);
	}
	/* F_SEAL_SEAL: a client holding a writable descriptor cannot add seals of its own
	 * (F_SEAL_FUTURE_WRITE would lock the other writers out and make the next daemon refuse
	 * the memfd from the fd store; F_SEAL_EXEC would take the region's exec away). */
	return memfd_seal(fd, r, F_SEAL_SHRINK | F_SEAL_SEAL);
}

int memfd_text_create(const char *label, const char *text)
{
	int fd = memfd_create_private(label, MFD_CLOEXEC | MFD_ALLOW_SEALING);

	if (fd < 0)
		return fd;
	return memfd_seal(fd, fileio_write_all(fd, text, strlen(text)),
	                  F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL);
}

int memfd_page_create(const char *label, size_t size)
{
	int fd = memfd_make(label, MFD_CLOEXEC | MFD_ALLOW_SEALING, false);

	if (fd < 0)
		return fd;
	/* Sealed to its size: no holder can truncate it under the daemon's mapping (SIGBUS). */
	return memfd_seal(fd, ftruncate(fd, (off_t)size) < 0 ? -errno : 0,
	                  F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL);
}

bool memfd_is_hugetlb(int fd)
{
	struct statfs sf;

	return fstatfs(fd, &sf) == 0 && sf.f_type == HUGETLBFS_MAGIC;
}

bool memfd_is_noexec_sealed(int fd)
{
	int seals = fcntl(fd, F_GET_SEALS);

	return seals >= 0 && (seals & F_SEAL_EXEC);
}
