/* SPDX-License-Identifier: MIT */
/*
 * End-to-end tests of huge pages for anonymous regions ("huge" of open, docs/protocol.md):
 * a hugetlb memfd where the system has huge pages, its size rounded up to whole huge pages
 * and its pages reserved at creation; transparent huge pages where it has too few; mappings
 * in whole huge pages at any window offset; resizes only to multiples.
 *
 * As root, main() sets vm.nr_hugepages to HUGE_PAGES for the run and restores the old value
 * afterwards. Where that is impossible (not root, no hugetlb, no memory to give) the tests
 * that need the pool say so and check the fallback to transparent huge pages instead.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "mmapd.h"

#define MIB (1024u * 1024u)
#define HUGE_PAGES 4
#define NR_HUGEPAGES "/proc/sys/vm/nr_hugepages"

static uint64_t huge_page;     /* the system's default huge page size */
static bool hugetlb_ready;     /* the pool holds HUGE_PAGES free pages for this run */

/* The number after key in /proc/meminfo ("HugePages_Free:", "Hugepagesize:"), or 0. */
static uint64_t meminfo(const char *key)
{
	FILE *f = fopen("/proc/meminfo", "re");
	char line[256];
	unsigned long long v = 0;

	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f))
		if (strncmp(line, key, strlen(key)) == 0 &&
		    sscanf(line + strlen(key), " %llu", &v) == 1)
			break;
	fclose(f);
	return v;
}

static long sysctl_read(void)
{
	FILE *f = fopen(NR_HUGEPAGES, "re");
	long v = -1;

	if (f) {
		if (fscanf(f, "%ld", &v) != 1)
			v = -1;
		fclose(f);
	}
	return v;
}

static bool sysctl_write(long v)
{
	FILE *f = fopen(NR_HUGEPAGES, "we");
	bool ok;

	if (!f)
		return false;
	ok = fprintf(f, "%ld\n", v) > 0;
	return fclose(f) == 0 && ok;
}

/* The "KernelPageSize" (kB) and VmFlags of the smaps entry holding addr. */
static void smaps_of(const void *addr, uint64_t *ret_kib, char *flags, size_t size)
{
	FILE *f = fopen("/proc/self/smaps", "re");
	char line[512];
	unsigned long lo, hi;
	unsigned long long kib;
	bool in = false;

	ck_assert_ptr_nonnull(f);
	*ret_kib = 0;
	flags[0] = '\0';
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "%lx-%lx ", &lo, &hi) == 2 && strchr(line, '-') < strchr(line, ' '))
			in = (unsigned long)addr >= lo && (unsigned long)addr < hi;
		else if (in && sscanf(line, "KernelPageSize: %llu kB", &kib) == 1)
			*ret_kib = kib;
		else if (in && strncmp(line, "VmFlags:", 8) == 0)
			snprintf(flags, size, "%.200s", line + 8);
	}
	fclose(f);
}

static int huge_create(struct mmapd_client *client, const char *name, uint64_t size,
                       uint64_t reserve, struct mmapd_region **ret)
{
	struct mmapd_open_opts opts = MMAPD_OPEN_OPTS(
		.flags = MMAPD_OPEN_CREATE | MMAPD_OPEN_ANONYMOUS | MMAPD_OPEN_HUGETLB,
		.mode = MMAPD_MODE_RW, .size = size, .reserve = reserve);

	return mmapd_region_open(client, name, &opts, ret);
}

/* Waits until the region has heard of size (resized events come through dispatch). */
static void huge_wait_size(struct mmapd_client *client, struct mmapd_region *region,
                           uint64_t size)
{
	for (int i = 0; i < 500 && mmapd_region_size(region) != size; i++)
		ck_assert_int_ge(mmapd_client_dispatch(client, 10), 0);
	ck_assert_uint_eq(mmapd_region_size(region), size);
}

/*
 * In a child with its own connection: maps name read-only at the unaligned window
 * off..off+len and compares it with want; also checks the mapping's page size. Returns the
 * child's exit status (0: same bytes in huge pages).
 */
static int huge_check_in_child(const struct test_daemon *d, const char *name, uint64_t off,
                               const unsigned char *want, size_t len)
{
	int status;
	pid_t pid = fork();

	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		struct mmapd_open_opts opts = MMAPD_OPEN_OPTS(.offset = off, .length = len);
		struct mmapd_client *client;
		struct mmapd_region *region;
		char flags[256];
		uint64_t kib;
		int code = 0;

		if (mmapd_connect(d->sock, "reader", &client) < 0 ||
		    mmapd_region_open(client, name, &opts, &region) < 0)
			_exit(10);
		smaps_of(mmapd_region_data(region), &kib, flags, sizeof(flags));
		if (memcmp(mmapd_region_data(region), want, len) != 0)
			code = 11;
		else if (kib * 1024 != huge_page || mmapd_region_page_size(region) != huge_page)
			code = 12;
		mmapd_region_close(region);
		mmapd_disconnect(client);
		_exit(code);
	}
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert(WIFEXITED(status));
	return WEXITSTATUS(status);
}

START_TEST(test_huge_region_is_hugetlb_rounded_up_and_shared_between_processes)
{
	unsigned char pattern[100];
	struct mmapd_region_info *info = NULL;
	struct mmapd_client *client;
	struct mmapd_region *region;
	struct test_daemon d;
	uint64_t free_before;

	if (!hugetlb_ready)
		return;
	for (size_t i = 0; i < sizeof(pattern); i++)
		pattern[i] = (unsigned char)(i * 7 + 1);
	test_daemon_start(&d, NULL);
	client = test_client_connect(&d, "check_huge");
	free_before = meminfo("HugePages_Free:");
	/* One and a half huge pages: rounded up to two, both reserved at creation. */
	ck_assert_int_eq(huge_create(client, "h", huge_page + huge_page / 2, 0, &region), 0);
	ck_assert_int_eq(mmapd_stat(client, "h", &info), 0);
	ck_assert_int_eq(info->huge, MMAPD_HUGE_HUGETLB);
	ck_assert_uint_eq(info->size, 2 * huge_page);
	ck_assert_uint_eq(mmapd_region_size(region), 2 * huge_page);
	ck_assert_uint_eq(mmapd_region_page_size(region), huge_page);
	ck_assert_uint_eq(meminfo("HugePages_Free:"), free_before - 2);

	memcpy((unsigned char *)mmapd_region_data(region) + huge_page + 12345, pattern,
	       sizeof(pattern));
	ck_assert_int_eq(huge_check_in_child(&d, "h", huge_page + 12345, pattern, sizeof(pattern)),
	                 0);
	mmapd_region_close(region);
	mmapd_disconnect(client);
	test_daemon_stop(&d);
	mmapd_region_info_free(info);
}
END_TEST

START_TEST(test_huge_hugetlb_region_resizes_in_whole_huge_pages_only)
{
	uint64_t beyond;
	struct mmapd_region_info *info = NULL;
	struct mmapd_client *client;
	struct mmapd_region *region;
	struct test_daemon d;
	void *data;

	if (!hugetlb_ready)
		return;
	test_daemon_start(&d, NULL);
	client = test_client_connect(&d, "check_huge");
	/* A reservation, aligned to huge pages, for the window to grow into in place. */
	ck_assert_int_eq(huge_create(client, "g", huge_page, 4 * huge_page, &region), 0);
	data = mmapd_region_data(region);
	ck_assert_uint_eq((uintptr_t)data % huge_page, 0);
	ck_assert_int_eq(mmapd_resize(client, "g", 2 * huge_page + 4096, 0), -EINVAL);
	ck_assert_ptr_nonnull(strstr(mmapd_last_message(), "multiple"));
	ck_assert_int_eq(mmapd_resize(client, "g", 2 * huge_page, 0), 0);
	huge_wait_size(client, region, 2 * huge_page);
	ck_assert_ptr_eq(mmapd_region_data(region), data);
	ck_assert_uint_eq(mmapd_region_length(region), 2 * huge_page);
	memset((unsigned char *)data + 2 * huge_page - 1, 0x5a, 1);
	/* Growth reserves the new pages: more than the pool has is ENOSPC, and nothing changes
	 * (past the pool's whole size, which may hold more than this run's pages). */
	beyond = (meminfo("HugePages_Total:") + 4) * huge_page;
	ck_assert_int_eq(mmapd_resize(client, "g", beyond, 0), -ENOSPC);
	ck_assert_uint_eq(mmapd_region_size(region), 2 * huge_page);
	/* Sparse growth would reserve nothing: refused, rather than failing in the mappings. */
	ck_assert_int_eq(mmapd_resize(client, "g", beyond, MMAPD_RESIZE_SPARSE), -EINVAL);
	ck_assert_ptr_nonnull(strstr(mmapd_last_message(), "sparse"));
	ck_assert_uint_eq(mmapd_region_size(region), 2 * huge_page);
	ck_assert_int_eq(mmapd_stat(client, "g", &info), 0);
	ck_assert_uint_eq(info->size, 2 * huge_page);
	/* Shrinking stays refused for anonymous regions, huge or not. */
	ck_assert_int_eq(mmapd_resize(client, "g", huge_page, 0), -EPERM);
	mmapd_region_close(region);
	mmapd_disconnect(client);
	test_daemon_stop(&d);
	mmapd_region_info_free(info);
}
END_TEST

START_TEST(test_huge_shortage_falls_back_to_transparent_huge_pages)
{
	struct mmapd_region_info *info = NULL;
	struct mmapd_client *client;
	struct mmapd_region *region;
	struct test_daemon d;
	uint64_t free_before, kib, size;
	char flags[256], out[2048];

	if (!hugetlb_ready)
		printf("huge: no hugetlb pool for this run; testing the fallback to transparent "
		       "huge pages only\n");
	test_daemon_start(&d, NULL);
	client = test_client_connect(&d, "check_huge");
	free_before = meminfo("HugePages_Free:");
	/* More huge pages than the pool has (or any, without a pool). */
	ck_assert_int_eq(huge_create(client, "t", (free_before + 1) * huge_page,
	                             2 * (free_before + 1) * huge_page, &region), 0);
	ck_assert_uint_eq(meminfo("HugePages_Free:"), free_before);
	ck_assert_int_eq(mmapd_stat(client, "t", &info), 0);
	ck_assert_int_eq(info->huge, MMAPD_HUGE_THP);
	ck_assert_uint_eq(info->size, (free_before + 1) * huge_page);
	ck_assert_uint_eq(mmapd_region_page_size(region), (size_t)sysconf(_SC_PAGESIZE));
	smaps_of(mmapd_region_data(region), &kib, flags, sizeof(flags));
	ck_assert_msg(strstr(flags, " hg") != NULL, "no MADV_HUGEPAGE on the mapping: %s", flags);
	/* Growth in place inside the reservation is advised too; no multiple is needed. */
	size = (free_before + 1) * huge_page;
	ck_assert_int_eq(mmapd_resize(client, "t", size + 4096, 0), 0);
	huge_wait_size(client, region, size + 4096);
	smaps_of((char *)mmapd_region_data(region) + size, &kib, flags, sizeof(flags));
	ck_assert_msg(strstr(flags, " hg") != NULL, "no MADV_HUGEPAGE after growth: %s", flags);
	mmapd_region_close(region);
	/* A size that is not a multiple is rounded up all the same. */
	ck_assert_int_eq(huge_create(client, "u", 1, 0, &region), 0);
	ck_assert_uint_eq(mmapd_region_size(region), huge_page);
	mmapd_region_close(region);
	mmapd_disconnect(client);

	ck_assert_int_eq(test_run_ctl(&d, out, sizeof(out), "stat", "t", (char *)NULL), 0);
	ck_assert_msg(strstr(out, "anon/thp") != NULL, "%s", out);
	test_daemon_stop(&d);
	mmapd_region_info_free(info);
}
END_TEST

START_TEST(test_huge_needs_an_anonymous_creation_without_sparse)
{
	struct test_daemon d;
	struct test_conn c;
	char out[2048];

	test_daemon_start(&d, NULL);
	test_conn_open_hello(&c, &d);
	test_reply_error(test_conn_callf(&c, "{'op':'open','name':'f','create':true,'size':4096,"
	                                 "'huge':true}"), "EINVAL", EINVAL, NULL);
	test_reply_error(test_conn_callf(&c, "{'op':'open','name':'a','create':true,'size':4096,"
	                                 "'anonymous':true,'sparse':true,'huge':true}"),
	                 "EINVAL", EINVAL, NULL);
	test_daemon_create(&d, "a", 4096, true);
	test_reply_error(test_conn_callf(&c, "{'op':'open','name':'a','huge':true}"), "EINVAL",
	                 EINVAL, NULL);
	test_conn_close(&c);
	ck_assert_int_eq(test_run_ctl(&d, out, sizeof(out), "regions", (char *)NULL), 0);
	ck_assert_msg(strstr(out, "anonymous ") != NULL, "%s", out);
	test_daemon_stop(&d);
}
END_TEST

static Suite *huge_suite(void)
{
	Suite *s = suite_create("huge");
	TCase *tc = tcase_create("huge");

	tcase_add_checked_fixture(tc, test_fd_setup, test_fd_teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_huge_region_is_hugetlb_rounded_up_and_shared_between_processes);
	tcase_add_test(tc, test_huge_hugetlb_region_resizes_in_whole_huge_pages_only);
	tcase_add_test(tc, test_huge_shortage_falls_back_to_transparent_huge_pages);
	tcase_add_test(tc, test_huge_needs_an_anonymous_creation_without_sparse);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	long old;
	int failed;

	huge_page = meminfo("Hugepagesize:") * 1024;
	if (huge_page == 0)
		huge_page = 2 * MIB;
	old = sysctl_read();
	if (old >= 0 && sysctl_write(old + HUGE_PAGES) &&
	    meminfo("HugePages_Free:") >= HUGE_PAGES)
		hugetlb_ready = true;
	else
		printf("huge: cannot give the hugetlb pool %d pages (not root, or no memory for "
		       "them); the hugetlb tests are skipped and the THP fallback is tested\n",
		       HUGE_PAGES);
	failed = test_run_suite(huge_suite());
	if (old >= 0 && sysctl_read() != old && !sysctl_write(old))
		printf("huge: could not restore %s to %ld\n", NR_HUGEPAGES, old);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
