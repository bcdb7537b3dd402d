/* SPDX-License-Identifier: MIT */
/*
 * Tests of huge pages and MAP_STACK for file regions (client/hugemap.c, region.c) against a
 * real mmapd: a file region opened with MMAPD_OPEN_HUGETLB is mapped where its addresses and
 * file offsets agree modulo the transparent huge page size, at any window offset, with or
 * without a reservation, in every process that opens it so; it is advised MADV_HUGEPAGE ("hg"
 * in smaps); and mmapd_region_huge_bytes() says what smaps says. A file region opened with
 * MMAPD_OPEN_STACK is mapped and shared as any other (since Linux 6.7 marked "nh": no
 * transparent huge pages), unless MMAPD_OPEN_HUGETLB asks for them too.
 *
 * Whether the kernel actually gives a file huge pages depends on it and on the file system
 * (large folios: ext4, xfs on recent kernels; CONFIG_READ_ONLY_THP_FOR_FS); the figure is
 * printed, not required.
 */
#include <check.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "mmapd.h"

#define MIB (1024u * 1024u)

static struct test_daemon dmn;
static uint64_t pmd;   /* the transparent huge page size, 0 without them */

static void suite_setup(void)
{
	FILE *f = fopen("/sys/kernel/mm/transparent_hugepage/hpage_pmd_size", "re");
	unsigned long long v = 0;

	if (f) {
		if (fscanf(f, "%llu", &v) != 1)
			v = 0;
		fclose(f);
	}
	pmd = v;
	test_daemon_start(&dmn, NULL);
}

static void suite_teardown(void)
{
	test_daemon_stop(&dmn);
}

/*
 * The VmFlags of the smaps entry holding addr, and the kB that the entries meeting
 * addr..addr+len map with huge pages.
 */
static void smaps_of(const void *addr, size_t len, char *flags, size_t size,
                     uint64_t *ret_huge_kib)
{
	static const char *const huge[] = { "AnonHugePages:", "ShmemPmdMapped:", "FilePmdMapped:",
	                                    "Shared_Hugetlb:", "Private_Hugetlb:" };
	FILE *f = fopen("/proc/self/smaps", "re");
	unsigned long a = (unsigned long)addr, lo, hi;
	char line[512];
	unsigned long long kib;
	bool in = false, first = false;

	ck_assert_ptr_nonnull(f);
	flags[0] = '\0';
	*ret_huge_kib = 0;
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "%lx-%lx ", &lo, &hi) == 2 && strchr(line, '-') < strchr(line, ' ')) {
			in = lo < a + len && hi > a;
			first = a >= lo && a < hi;
			continue;
		}
		if (first && strncmp(line, "VmFlags:", 8) == 0)
			snprintf(flags, size, " %.200s", line + 8);
		for (size_t i = 0; in && i < sizeof(huge) / sizeof(huge[0]); i++)
			if (strncmp(line, huge[i], strlen(huge[i])) == 0 &&
			    sscanf(line + strlen(huge[i]), "%llu", &kib) == 1)
				*ret_huge_kib += kib;
	}
	fclose(f);
}

/* Whether VmFlags flags (as smaps_of() leaves them) hold the two-letter flag. */
static bool has_flag(const char *flags, const char *flag)
{
	char want[8];

	snprintf(want, sizeof(want), " %s", flag);
	for (const char *p = strstr(flags, want); p; p = strstr(p + 1, want))
		if (p[3] == ' ' || p[3] == '\n' || p[3] == '\0')
			return true;
	return false;
}

static int region_at(struct mmapd_client *c, unsigned flags, enum mmapd_mode mode,
                     uint64_t off, uint64_t len, uint64_t reserve, struct mmapd_region **ret)
{
	struct mmapd_open_opts o = MMAPD_OPEN_OPTS(
		.flags = flags, .mode = mode, .size = 8 * MIB, .offset = off, .length = len,
		.reserve = reserve);

	return mmapd_region_open(c, "hugefile", &o, ret);
}

/*
 * What must hold of a file region opened with MMAPD_OPEN_HUGETLB: an address that agrees
 * with the window's file offset modulo the huge page size, the advice, and a report equal to
 * smaps. Returns 0, or which of them failed (1, 2, 3). Prints the figure.
 */
static int check_huge_window(struct mmapd_region *region, const char *what)
{
	const uint8_t *data = mmapd_region_data(region);
	uint64_t kib, bytes = UINT64_MAX;
	char flags[256];

	if (((uintptr_t)data - mmapd_region_offset(region)) % pmd != 0)
		return 1;
	if (mmapd_region_prewarm(region, 0, 0) < 0)
		return 4;
	smaps_of(data, mmapd_region_length(region), flags, sizeof(flags), &kib);
	if (!has_flag(flags, "hg"))
		return 2;
	if (mmapd_region_huge_bytes(region, &bytes) < 0 || bytes != kib * 1024)
		return 3;
	fprintf(stderr, "check_hugefile: %s: %llu of %zu bytes in huge pages\n", what,
	        (unsigned long long)bytes, mmapd_region_length(region));
	return 0;
}

START_TEST(test_hugefile_windows_are_aligned_advised_and_reported_in_every_process)
{
	struct mmapd_client *c = test_client_connect(&dmn, "check_hugefile");
	struct mmapd_region *whole, *part, *grow;
	uint64_t v = 0;
	pid_t pid;

	if (pmd == 0) {
		fprintf(stderr, "check_hugefile: no transparent huge pages in this kernel: skipped\n");
		return;
	}
	ck_assert_msg(region_at(c, MMAPD_OPEN_CREATE | MMAPD_OPEN_HUGETLB, MMAPD_MODE_RW, 0, 0,
	                        0, &whole) == 0, "open: %s", mmapd_last_message());
	ck_assert_int_eq(check_huge_window(whole, "whole file, read-write"), 0);
	ck_assert_int_eq(mmapd_region_put_u64le(whole, 3 * MIB + 5, 0x1122334455667788ull), 0);

	/* A window at an offset that is no multiple of the page, read-only. */
	ck_assert_int_eq(region_at(c, MMAPD_OPEN_HUGETLB, MMAPD_MODE_RO, 2 * MIB + 3 * 4096 + 7,
	                           4 * MIB, 0, &part), 0);
	ck_assert_int_eq(check_huge_window(part, "window at 2 MiB + 12295"), 0);
	ck_assert_int_eq(mmapd_region_get_u64le(part, MIB - 3 * 4096 - 2, &v), 0);
	ck_assert_uint_eq(v, 0x1122334455667788ull);

	/* A following window with a reservation, which stays aligned as it grows in place. */
	ck_assert_int_eq(region_at(c, MMAPD_OPEN_HUGETLB, MMAPD_MODE_RW, 4096, 0, 32 * MIB, &grow),
	                 0);
	ck_assert_int_eq(check_huge_window(grow, "following window with a reservation"), 0);
	ck_assert_int_eq(mmapd_resize(c, "hugefile", 16 * MIB, 0), 0);
	ck_assert_uint_eq(mmapd_region_length(grow), 16 * MIB - 4096);
	ck_assert_int_eq(check_huge_window(grow, "the same, grown to 16 MiB"), 0);

	/* Another process, its own connection and mapping. */
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		struct mmapd_client *cc = NULL;
		struct mmapd_region *r;
		int e;

		if (mmapd_connect(dmn.sock, "hugefile-reader", &cc) < 0 ||
		    region_at(cc, MMAPD_OPEN_HUGETLB, MMAPD_MODE_RO, MIB + 5, 0, 0, &r) < 0)
			_exit(10);
		e = check_huge_window(r, "window at 1 MiB + 5 in a second process");
		if (e != 0)
			_exit(e);
		_exit(mmapd_region_get_u64le(r, 2 * MIB, &v) < 0 || v != 0x1122334455667788ull
		      ? 11 : 0);
	}
	test_child_wait(pid, 20000);

	mmapd_region_close(grow);
	mmapd_region_close(part);
	mmapd_region_close(whole);
	ck_assert_int_eq(mmapd_delete(c, "hugefile"), 0);
	mmapd_disconnect(c);
}
END_TEST

/* Whether this kernel is 6.7 or later, where MAP_STACK sets VM_NOHUGEPAGE. */
static bool stack_means_nohugepage(void)
{
	struct utsname u;
	int major = 0, minor = 0;

	return uname(&u) == 0 && sscanf(u.release, "%d.%d", &major, &minor) == 2 &&
	       (major > 6 || (major == 6 && minor >= 7));
}

START_TEST(test_hugefile_stack_maps_file_regions_in_every_process)
{
	struct mmapd_client *c = test_client_connect(&dmn, "check_hugefile");
	struct mmapd_region *stack, *both;
	uint64_t kib;
	char flags[256];
	pid_t pid;

	ck_assert_msg(region_at(c, MMAPD_OPEN_CREATE | MMAPD_OPEN_STACK, MMAPD_MODE_RW, 0, 0, 0,
	                        &stack) == 0, "open: %s", mmapd_last_message());
	ck_assert_int_eq(mmapd_region_put_u32be(stack, 8 * MIB - 4, 0xfeedf00d), 0);
	smaps_of(mmapd_region_data(stack), 1, flags, sizeof(flags), &kib);
	if (stack_means_nohugepage())
		ck_assert_msg(has_flag(flags, "nh"), "MAP_STACK, VmFlags:%s", flags);

	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		struct mmapd_client *cc = NULL;
		struct mmapd_region *r;
		uint32_t v = 0;

		if (mmapd_connect(dmn.sock, "stack-reader", &cc) < 0 ||
		    region_at(cc, MMAPD_OPEN_STACK, MMAPD_MODE_RO, 4096, 0, 0, &r) < 0)
			_exit(10);
		_exit(mmapd_region_get_u32be(r, 8 * MIB - 4096 - 4, &v) < 0 || v != 0xfeedf00d
		      ? 11 : 0);
	}
	test_child_wait(pid, 20000);

	/* Both: the huge page advice comes after MAP_STACK and wins. */
	if (pmd != 0) {
		ck_assert_int_eq(region_at(c, MMAPD_OPEN_STACK | MMAPD_OPEN_HUGETLB, MMAPD_MODE_RW,
		                           0, 0, 0, &both), 0);
		ck_assert_int_eq(check_huge_window(both, "stack and huge pages"), 0);
		mmapd_region_close(both);
	}
	mmapd_region_close(stack);
	ck_assert_int_eq(mmapd_delete(c, "hugefile"), 0);
	mmapd_disconnect(c);
}
END_TEST

static Suite *hugefile_suite(void)
{
	Suite *s = suite_create("hugefile");
	TCase *tc = tcase_create("hugefile");

	tcase_add_unchecked_fixture(tc, suite_setup, suite_teardown);
	tcase_add_checked_fixture(tc, test_fd_setup, test_fd_teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_hugefile_windows_are_aligned_advised_and_reported_in_every_process);
	tcase_add_test(tc, test_hugefile_stack_maps_file_regions_in_every_process);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return test_run_suite(hugefile_suite()) == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
