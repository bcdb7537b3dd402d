/* SPDX-License-Identifier: MIT */
/*
 * Crash injection for libmmapd's persistent structures (client/toolbox/persist/): a writer
 * process is killed with SIGKILL at a random moment while it runs a deterministic sequence of
 * operations on a vector or a hash map, over and over, and after each kill the test process
 * opens the structure afresh (the "next opener") and checks that it holds exactly what a
 * private model holds before or after the operation the writer was in (the writer announces
 * in a shared page which operation it starts and which it finished). The sequences include
 * growth of the region, hash map rebuilds, inserts and removals that shift the tail of a
 * vector, sorts, string map puts, removes and compactions, writes into a persistent
 * struct's fields and fixed strings through a struct writer, fixed string sets in place (atomic
 * by their layout), and, to show that the test sees tearing, fields written with memcpy; a
 * durable vector (MMAPD_PERSIST_DURABLE) is killed among its msyncs.
 *
 * The power-loss tests (below) run the same durable operations in this process and check the
 * structure as a power cut at each msync barrier would leave it.
 *
 * CRASH_ITERS (environment) sets the number of kills per structure (default 1000);
 * POWERLOSS_OPS the operations per structure of the power-loss tests (default 50 to 100, the
 * hash map's reaching its first rebuild; 20 for the struct); CRASH_ONLY=<name> runs only the structures whose name contains it.
 */
#include <check.h>
#include <errno.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "mmapd.h"
#include "mmapd-persist.h"

static struct test_daemon dmn;

static void suite_setup(void)
{
	test_daemon_start(&dmn, NULL);
}

static void suite_teardown(void)
{
	test_daemon_stop(&dmn);
}

/* What the writer tells the test, in a page both map. */
struct progress {
	_Atomic uint64_t ready;    /* the writer opened the structure */
	_Atomic uint64_t started;  /* index + 1 of the operation it started last */
	_Atomic uint64_t done;     /* index + 1 of the operation it finished last */
	_Atomic int64_t error;     /* an unexpected result, with the operation in failed_op */
	_Atomic uint64_t failed_op;
	_Atomic uint64_t marked;   /* 1 while the writer is inside a step worth counting */
};

/* The writer's progress page (NULL in the test process), for marking steps. */
static struct progress *writer_pg;

static void mark(bool on)
{
	if (writer_pg)
		atomic_store(&writer_pg->marked, on);
}

/*
 * The power-loss tests open the same kinds of structure under other names (a suffix added to
 * every region name) and with other flags (MMAPD_PERSIST_DURABLE), set here.
 */
static const char *name_suffix = "";
static unsigned extra_flags;

/* name with the suffix, in a buffer that the next call reuses. */
static const char *nm(const char *name)
{
	static char buf[128];

	snprintf(buf, sizeof(buf), "%s%s", name, name_suffix);
	return buf;
}

static uint64_t mix(uint64_t x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdull;
	x ^= x >> 33;
	x *= 0xc4ceb9fe1a85ec53ull;
	return x ^ (x >> 33);
}

static unsigned iterations(void)
{
	const char *s = getenv("CRASH_ITERS");
	long n = s ? strtol(s, NULL, 10) : 0;

	return n > 0 ? (unsigned)n : 1000;
}

/*
 * A structure under test: open/close in any process, one operation k applied to the real
 * structure (returns 0 or an unexpected error) and to the model, and the comparison.
 */
struct kind {
	const char *name;
	void *(*open)(struct mmapd_client *c);
	void (*close)(void *s);
	int (*apply)(void *s, uint64_t k);
	void (*model_apply)(uint64_t k);
	bool (*equal)(void *s, char *why, size_t size);
	unsigned fewer;   /* runs CRASH_ITERS / fewer kills (its operations are slower) */
	unsigned max_ops; /* per writer, then it waits to be killed; 0: no bound */
	unsigned max_delay_us;  /* the kill comes 0 to this many µs after the writer is ready */
	/* Not crash-atomic (the unjournalled calls, to show that the test sees tearing): a state
	 * that is neither before nor after is counted, the model made the structure's again
	 * (resync), and the run must see at least one. NULL for every crash-atomic kind. */
	void (*resync)(void *s);
	/* The regions under the structure (at most PL_REGIONS), for the power-loss tests. */
	unsigned (*regions)(void *s, struct mmapd_region **out);
};

/* ---- vector: 1 KiB elements, so that copies take a while ---- */

#define PL_REGIONS 2

#define VEC_ELEM 1024u
#define VEC_WORDS (VEC_ELEM / 8)
#define VEC_MAX 3000u

static uint8_t *vm;            /* the model's elements */
static uint64_t vm_len, vm_cap;

/* The words * 8 bytes that operation k writes. */
static void fill(uint64_t *w, unsigned words, uint64_t k)
{
	for (unsigned j = 0; j < words; j++)
		w[j] = mix(k * 1024 + j);
}

enum { V_PUSH, V_POP, V_SET, V_CLEAR, V_INSERT, V_REMOVE, V_SWAP_REMOVE, V_TRUNCATE, V_SORT };

/* What operation k does, given the length before it (the same in model and writer). */
static int vec_op(uint64_t k, uint64_t len, uint64_t *ret_i)
{
	uint64_t h = mix(k ^ 0x5eed), r = h % 100;

	*ret_i = len ? (h >> 20) % len : 0;
	if (r < 1)
		return V_CLEAR;
	if (r < 2)
		return V_SORT;
	if (r < 4)
		return V_TRUNCATE;
	if (r < 30)
		return len < VEC_MAX ? V_PUSH : V_POP;
	if (r < 40)
		return V_POP;
	if (r < 55)
		return len < VEC_MAX ? V_INSERT : V_REMOVE;
	if (r < 65)
		return V_REMOVE;
	if (r < 75)
		return V_SWAP_REMOVE;
	return V_SET;
}

/* Elements compare by their first word. */
static int vec_cmp(const void *a, const void *b)
{
	uint64_t x, y;

	memcpy(&x, a, 8);
	memcpy(&y, b, 8);
	return x < y ? -1 : x > y;
}

static void *vec_open(struct mmapd_client *c)
{
	struct mmapd_pvec *v = NULL;

	return mmapd_pvec_open(c, nm("crash-vec"), VEC_ELEM, MMAPD_PERSIST_CREATE | extra_flags,
	                       &v) == 0 ? v : NULL;
}

/* The durable path: msync around each commit, killed in the middle of those too. */
static void *vec_open_durable(struct mmapd_client *c)
{
	struct mmapd_pvec *v = NULL;

	return mmapd_pvec_open(c, "crash-vec-durable", VEC_ELEM,
	                       MMAPD_PERSIST_CREATE | MMAPD_PERSIST_DURABLE, &v) == 0 ? v : NULL;
}

static unsigned vec_regions(void *s, struct mmapd_region **out)
{
	out[0] = mmapd_pvec_region(s);
	return 1;
}

static void vec_close(void *s)
{
	mmapd_pvec_close(s);
}

static int vec_apply(void *s, uint64_t k)
{
	uint64_t e[VEC_WORDS], i, len = mmapd_pvec_len(s);
	int r = 0;

	fill(e, VEC_WORDS, k);
	switch (vec_op(k, len, &i)) {
	case V_PUSH:
		r = mmapd_pvec_push(s, e);
		break;
	case V_POP:
		r = mmapd_pvec_pop(s, NULL);
		return len == 0 && r == -ERANGE ? 0 : r;
	case V_SET:
		r = len ? mmapd_pvec_set(s, i, e) : 0;
		break;
	case V_CLEAR:
		r = mmapd_pvec_clear(s);
		break;
	case V_INSERT:
		r = mmapd_pvec_insert(s, len ? i : 0, e);
		break;
	case V_REMOVE:
		r = len ? mmapd_pvec_remove(s, i, NULL) : 0;
		break;
	case V_SWAP_REMOVE:
		r = len ? mmapd_pvec_swap_remove(s, i, NULL) : 0;
		break;
	case V_TRUNCATE:
		r = mmapd_pvec_truncate(s, len / 2);
		break;
	case V_SORT:
		r = mmapd_pvec_sort(s, vec_cmp);
		break;
	}
	return r;
}

static void vec_model_grow(void)
{
	if (vm_len == vm_cap) {
		vm_cap = vm_cap ? vm_cap * 2 : 64;
		vm = realloc(vm, vm_cap * VEC_ELEM);
		ck_assert_ptr_nonnull(vm);
	}
}

static void vec_model_apply(uint64_t k)
{
	uint64_t e[VEC_WORDS], i;

	fill(e, VEC_WORDS, k);
	switch (vec_op(k, vm_len, &i)) {
	case V_PUSH:
		vec_model_grow();
		memcpy(vm + vm_len++ * VEC_ELEM, e, VEC_ELEM);
		break;
	case V_POP:
		if (vm_len)
			vm_len--;
		break;
	case V_SET:
		if (vm_len)
			memcpy(vm + i * VEC_ELEM, e, VEC_ELEM);
		break;
	case V_CLEAR:
		vm_len = 0;
		break;
	case V_INSERT:
		vec_model_grow();
		memmove(vm + (i + 1) * VEC_ELEM, vm + i * VEC_ELEM, (vm_len - i) * VEC_ELEM);
		memcpy(vm + i * VEC_ELEM, e, VEC_ELEM);
		vm_len++;
		break;
	case V_REMOVE:
		if (vm_len) {
			memmove(vm + i * VEC_ELEM, vm + (i + 1) * VEC_ELEM, (vm_len - i - 1) * VEC_ELEM);
			vm_len--;
		}
		break;
	case V_SWAP_REMOVE:
		if (vm_len) {
			memcpy(vm + i * VEC_ELEM, vm + (vm_len - 1) * VEC_ELEM, VEC_ELEM);
			vm_len--;
		}
		break;
	case V_TRUNCATE:
		vm_len /= 2;
		break;
	case V_SORT:
		/* The first words are distinct (mix() of distinct inputs): any sort gives one order. */
		qsort(vm, vm_len, VEC_ELEM, vec_cmp);
		break;
	}
}

static bool vec_equal(void *s, char *why, size_t size)
{
	uint64_t len = mmapd_pvec_len(s);
	void *p;

	if (len != vm_len) {
		snprintf(why, size, "length %llu, model %llu", (unsigned long long)len,
		         (unsigned long long)vm_len);
		return false;
	}
	for (uint64_t i = 0; i < len; i++) {
		int r = mmapd_pvec_at(s, i, &p);

		if (r < 0 || memcmp(p, vm + i * VEC_ELEM, VEC_ELEM) != 0) {
			snprintf(why, size, "element %llu differs (%d %s)", (unsigned long long)i, r,
			         r < 0 ? mmapd_last_message() : "");
			return false;
		}
	}
	return true;
}

static const struct kind vec_kind = {
	"vector", vec_open, vec_close, vec_apply, vec_model_apply, vec_equal, 1, 0, 3000, NULL,
	vec_regions
};

static const struct kind vec_durable_kind = {
	"durable vector", vec_open_durable, vec_close, vec_apply, vec_model_apply, vec_equal, 5, 0, 3000,
	NULL, vec_regions
};

/* ---- hash map: 1024 keys, 512-byte values, many removals: rebuilds are frequent ---- */

#define MAP_KEYS 1024u
#define MAP_VAL 512u
#define MAP_WORDS (MAP_VAL / 8)

static bool mm_present[MAP_KEYS];
static uint64_t mm_val[MAP_KEYS][MAP_WORDS];

static bool map_op(uint64_t k, uint64_t *ret_key)
{
	uint64_t h = mix(k ^ 0xabcdef);

	*ret_key = (h >> 16) % MAP_KEYS;
	return h % 100 < 60;         /* put, else remove */
}

static void *map_open(struct mmapd_client *c)
{
	struct mmapd_phash *m = NULL;

	return mmapd_phash_open(c, nm("crash-map"), sizeof(uint64_t), MAP_VAL,
	                        MMAPD_PERSIST_CREATE | extra_flags,
	                        &m) == 0 ? m : NULL;
}

static unsigned map_regions(void *s, struct mmapd_region **out)
{
	out[0] = mmapd_phash_region(s);
	return 1;
}

static void map_close(void *s)
{
	mmapd_phash_close(s);
}

static int map_apply(void *s, uint64_t k)
{
	uint64_t key, v[MAP_WORDS];
	int r;

	if (map_op(k, &key)) {
		fill(v, MAP_WORDS, k);
		r = mmapd_phash_put(s, &key, v);
		return r > 0 ? 0 : r;
	}
	r = mmapd_phash_remove(s, &key);
	return r == -ENOENT ? 0 : r;
}

static void map_model_apply(uint64_t k)
{
	uint64_t key, v[MAP_WORDS];

	if (map_op(k, &key)) {
		fill(v, MAP_WORDS, k);
		memcpy(mm_val[key], v, MAP_VAL);
		mm_present[key] = true;
	} else {
		mm_present[key] = false;
	}
}

static bool map_equal(void *s, char *why, size_t size)
{
	uint64_t v[MAP_WORDS], count = 0;

	for (uint64_t key = 0; key < MAP_KEYS; key++) {
		int r = mmapd_phash_get(s, &key, v);

		count += mm_present[key];
		if (mm_present[key] ? r != 0 || memcmp(v, mm_val[key], MAP_VAL) != 0 : r != -ENOENT) {
			snprintf(why, size, "key %llu: get says %d (%s), model %s",
			         (unsigned long long)key, r, r < 0 ? mmapd_last_message() : "value differs",
			         mm_present[key] ? "present" : "absent");
			return false;
		}
	}
	if (mmapd_phash_count(s) != count) {
		snprintf(why, size, "count %llu, model %llu",
		         (unsigned long long)mmapd_phash_count(s), (unsigned long long)count);
		return false;
	}
	return true;
}

static const struct kind map_kind = {
	"hash map", map_open, map_close, map_apply, map_model_apply, map_equal, 1, 0, 3000, NULL,
	map_regions
};

/*
 * ---- string map: 512 keys of 2 to 40 bytes, values of 0 to 100 bytes, with or without 3%
 * compactions (the count checked too); its arena grows between compactions, so a writer stops after
 * SM_OPS_PER_RUN operations (and waits for its kill) ----
 */
#define SM_OPS_PER_RUN 1000u

#define SM_KEYS 512u
#define SM_VAL_MAX 100u

static bool sm_present[SM_KEYS];
static uint8_t sm_val[SM_KEYS][SM_VAL_MAX];
static size_t sm_len[SM_KEYS];

/* Key number n as bytes: its length depends on n. */
static size_t sm_key(uint64_t n, char *buf)
{
	size_t len = 2 + n % 39;

	for (size_t i = 0; i < len; i++)
		buf[i] = (char)('a' + (n * 7 + i * 13) % 26);
	buf[0] = (char)('A' + n % 26);
	buf[1] = (char)('A' + n / 26 % 26);
	return len;
}

enum { SM_PUT, SM_REMOVE, SM_COMPACT };

/* Compactions per hundred operations: 0 in one run, some in another (they take most of a
 * writer's time, so a run with them has few kills inside puts and removes). */
static unsigned sm_compact_pct;

/* Operation k: put (value of its own length), remove or compact, and the value's bytes. */
static int sm_op(uint64_t k, uint64_t *ret_key, uint8_t *val, size_t *ret_len)
{
	uint64_t h = mix(k ^ 0x57a1);

	*ret_key = (h >> 16) % SM_KEYS;
	*ret_len = (h >> 40) % (SM_VAL_MAX + 1);
	for (size_t i = 0; i < *ret_len; i++)
		val[i] = (uint8_t)(k + i);
	return h % 100 < 65 ? SM_PUT : h % 100 < 100 - sm_compact_pct ? SM_REMOVE : SM_COMPACT;
}

static void *sm_open(struct mmapd_client *c)
{
	struct mmapd_pstrmap *m = NULL;

	return mmapd_pstrmap_open(c, nm("crash-smap"), MMAPD_PERSIST_CREATE | extra_flags, &m) == 0 ?
	       m : NULL;
}

static unsigned sm_regions(void *s, struct mmapd_region **out)
{
	out[0] = mmapd_phash_region(mmapd_pstrmap_index(s));
	out[1] = mmapd_pvec_region(mmapd_pstrmap_arena(s));
	return 2;
}

static void sm_close(void *s)
{
	mmapd_pstrmap_close(s);
}

static int sm_apply(void *s, uint64_t k)
{
	uint8_t v[SM_VAL_MAX];
	char key[64];
	uint64_t n;
	size_t len, klen;
	int r;

	switch (sm_op(k, &n, v, &len)) {
	case SM_PUT:
		klen = sm_key(n, key);
		r = mmapd_pstrmap_put(s, key, klen, v, len);
		return r > 0 ? 0 : r;
	case SM_COMPACT:
		mark(true);
		r = mmapd_pstrmap_compact(s);
		mark(false);
		return r;
	}
	klen = sm_key(n, key);
	r = mmapd_pstrmap_remove(s, key, klen);
	return r == -ENOENT ? 0 : r;
}

static void sm_model_apply(uint64_t k)
{
	uint8_t v[SM_VAL_MAX];
	uint64_t n;
	size_t len;

	switch (sm_op(k, &n, v, &len)) {
	case SM_PUT:
		memcpy(sm_val[n], v, len);
		sm_len[n] = len;
		sm_present[n] = true;
		break;
	case SM_REMOVE:
		sm_present[n] = false;
		break;
	}
}

static bool sm_equal(void *s, char *why, size_t size)
{
	uint64_t cursor = 0, live = 0, seen = 0;
	char key[64];
	const void *v;
	size_t len;
	int r;

	for (uint64_t n = 0; n < SM_KEYS; n++) {
		r = mmapd_pstrmap_get(s, key, sm_key(n, key), &v, &len);
		live += sm_present[n];
		if (sm_present[n] ? r != 0 || len != sm_len[n] || memcmp(v, sm_val[n], len) != 0
		                  : r != -ENOENT) {
			snprintf(why, size, "key %llu: get says %d (%s), model %s",
			         (unsigned long long)n, r, r < 0 ? mmapd_last_message() : "value differs",
			         sm_present[n] ? "present" : "absent");
			return false;
		}
	}
	while ((r = mmapd_pstrmap_next(s, &cursor, NULL, NULL, NULL, NULL)) == 1)
		seen++;
	if (r < 0 || seen != live || mmapd_pstrmap_count(s) != live) {
		snprintf(why, size, "iteration sees %llu entries (%d), the count says %llu, model %llu",
		         (unsigned long long)seen, r, (unsigned long long)mmapd_pstrmap_count(s),
		         (unsigned long long)live);
		return false;
	}
	return true;
}

static const struct kind sm_kind = {
	"string map", sm_open, sm_close, sm_apply, sm_model_apply, sm_equal, 2, SM_OPS_PER_RUN, 150,
	NULL, sm_regions
};

/*
 * ---- persistent struct: three fixed strings of 16000 bytes and 2048 words, written
 * through a struct writer (mmapd_pwriter_fstr_set(), mmapd_pwriter_write() of a range of the
 * words); the "fixed strings" kind makes only the string sets, with mmapd_fstr_set_raw() (the
 * set of every mmapd_fstr_set*(), without the UTF-8 scan, so that a kill lands in the store
 * more often), and must never tear one; the "plain struct (control)" kind makes the same
 * writes as the writer's with mmapd_fstr_set_raw() and memcpy: the memcpy tears. The strings
 * are compared by value (mmapd_fstr_copy()): the idle buffer of each holds whatever a killed
 * set left there ----
 */
#define ST_CAP 16000u
#define ST_WORDS 2048u

struct st_body {
	MMAPD_FSTR(ST_CAP) name[3];
	uint64_t words[ST_WORDS];
};

static struct st_body st_model;

struct st_open {
	struct mmapd_region *region;
	struct mmapd_pwriter *w;       /* NULL for the plain kinds */
	struct st_body *b;
	bool strings_only;             /* the fixed strings kind: every operation a string set */
};

static void *st_open_as(struct mmapd_client *c, const char *name, bool journal,
                        bool strings_only)
{
	struct mmapd_open_opts o = MMAPD_OPEN_OPTS(.mode = MMAPD_MODE_RW, .flags = MMAPD_OPEN_CREATE,
	                                           .size = 256 * 1024);
	struct mmapd_layout l = MMAPD_LAYOUT(struct st_body, "crash.body", 1);
	struct st_open *t = calloc(1, sizeof(*t));
	void *b;

	if (!t || mmapd_region_open(c, nm(name), &o, &t->region) < 0)
		return NULL;
	t->strings_only = strings_only;
	/* The writer first: it finishes a dead writer's write before anything is read. */
	if ((journal && mmapd_pwriter_open(c, t->region, MMAPD_PERSIST_CREATE | extra_flags,
	                                   &t->w) < 0) ||
	    mmapd_pstruct_open(t->region, 0, &l, MMAPD_PSTRUCT_INIT, &b) < 0)
		return NULL;
	t->b = b;
	return t;
}

static void *st_open(struct mmapd_client *c)
{
	return st_open_as(c, "crash-struct", true, false);
}

static void *st_open_fstr(struct mmapd_client *c)
{
	return st_open_as(c, "crash-fstr", false, true);
}

static void *st_open_plain(struct mmapd_client *c)
{
	return st_open_as(c, "crash-struct-plain", false, false);
}

static unsigned st_regions(void *s, struct mmapd_region **out)
{
	struct st_open *t = s;

	out[0] = t->region;
	out[1] = mmapd_pwriter_region(t->w);
	return t->w ? 2 : 1;
}

static void st_close(void *s)
{
	struct st_open *t = s;

	mmapd_pwriter_close(t->w);
	mmapd_region_close(t->region);
	free(t);
}

/*
 * Operation k: which string (0..2) it sets, or 3..5 for a write of words [*ret_from, +*ret_n);
 * the string's bytes (printable, every one changed from one operation to the next) or the
 * words, pointed into tables made once, so that a writer spends its time writing.
 */
static unsigned st_op(uint64_t k, bool strings_only, const char **ret_str, size_t *ret_len,
                      const uint64_t **ret_words, size_t *ret_from, size_t *ret_n)
{
	static char chars[2 * ST_CAP];
	static uint64_t words[2 * ST_WORDS];
	uint64_t h = mix(k ^ 0x57c7);
	unsigned which = (unsigned)(h % (strings_only ? 3 : 6));   /* else half write words */

	if (!chars[0]) {
		for (size_t i = 0; i < sizeof(chars); i++)
			chars[i] = (char)('!' + i % 90);
		fill(words, 2 * ST_WORDS, 0x5eed);
	}
	*ret_str = chars + k % 90;
	*ret_len = ST_CAP / 2 + (h >> 8) % (ST_CAP / 2 + 1);
	*ret_words = words + k % ST_WORDS;
	*ret_from = (h >> 8) % (ST_WORDS / 2);
	*ret_n = ST_WORDS / 2 + (h >> 24) % (ST_WORDS / 2 - *ret_from + 1);
	return which;
}

static int st_apply_as(struct st_open *t, uint64_t k)
{
	const uint64_t *words;
	const char *str;
	size_t len, from, n;
	unsigned which = st_op(k, t->strings_only, &str, &len, &words, &from, &n);

	if (which < 3)
		return t->w ? mmapd_pwriter_fstr_set(t->w, MMAPD_FSTR_ARGS(t->b->name[which]), str, len)
		            : mmapd_fstr_set_raw(MMAPD_FSTR_ARGS(t->b->name[which]), str, len);
	if (t->w)
		return mmapd_pwriter_write(t->w, &t->b->words[from], words, n * 8);
	memcpy(&t->b->words[from], words, n * 8);
	return 0;
}

static int st_apply(void *s, uint64_t k)
{
	return st_apply_as(s, k);
}

/* The kind whose model st_model_apply() keeps: they share st_model, one at a time. */
static bool st_model_strings_only;

static void st_model_apply(uint64_t k)
{
	struct st_open t = { NULL, NULL, &st_model, st_model_strings_only };

	st_apply_as(&t, k);
}

static void st_model_apply_fstr(uint64_t k)
{
	st_model_strings_only = true;
	st_model_apply(k);
	st_model_strings_only = false;
}

static bool st_equal(void *s, char *why, size_t size)
{
	static char have[ST_CAP + 1], want[ST_CAP + 1];
	struct st_open *t = s;

	for (unsigned i = 0; i < 3; i++) {
		int64_t n = mmapd_fstr_copy(MMAPD_FSTR_ARGS(t->b->name[i]), have, sizeof(have));
		int64_t m = mmapd_fstr_copy(MMAPD_FSTR_ARGS(st_model.name[i]), want, sizeof(want));

		if (n != m || n < 0 || memcmp(have, want, (size_t)n) != 0) {
			snprintf(why, size, "string %u differs: length %lld, model %lld", i,
			         (long long)n, (long long)m);
			return false;
		}
	}
	if (memcmp(t->b->words, st_model.words, sizeof(st_model.words)) != 0) {
		snprintf(why, size, "the words differ");
		return false;
	}
	return true;
}

static void st_resync(void *s)
{
	memcpy(&st_model, ((struct st_open *)s)->b, sizeof(st_model));
}

static const struct kind st_kind = {
	"struct", st_open, st_close, st_apply, st_model_apply, st_equal, 1, 0, 3000, NULL,
	st_regions
};

static const struct kind st_fstr_kind = {
	"fixed strings", st_open_fstr, st_close, st_apply, st_model_apply_fstr, st_equal, 1, 0, 3000,
	NULL, st_regions
};

static const struct kind st_plain_kind = {
	"plain struct (control)", st_open_plain, st_close, st_apply, st_model_apply, st_equal, 5, 0, 3000,
	st_resync, st_regions
};

/* ---- the driver ---- */

/* Each structure starts empty, in a region of its own, and so does its model. */
static void models_reset(void)
{
	vm_len = 0;
	memset(mm_present, 0, sizeof(mm_present));
	memset(sm_present, 0, sizeof(sm_present));
	memset(&st_model, 0, sizeof(st_model));
}

/* The writer: operations from k on, until killed (or a bound, if the kill never comes). */
static int writer(const struct kind *kind, struct progress *pg, uint64_t k)
{
	struct mmapd_client *c = NULL;
	void *s;

	writer_pg = pg;
	if (mmapd_connect(dmn.sock, "crash-writer", &c) < 0 || !(s = kind->open(c)))
		return 1;
	atomic_store(&pg->ready, 1);
	for (uint64_t end = k + (kind->max_ops ? kind->max_ops : 1000000); k < end; k++) {
		int r;

		atomic_store(&pg->started, k + 1);
		r = kind->apply(s, k);
		if (r < 0) {
			atomic_store(&pg->failed_op, k);
			atomic_store(&pg->error, r);
			return 2;
		}
		atomic_store(&pg->done, k + 1);
	}
	for (;;)
		pause();
}

static void crash_run(const struct kind *kind)
{
	struct mmapd_client *c = test_client_connect(&dmn, "check_crash");
	struct progress *pg = mmap(NULL, sizeof(*pg), PROT_READ | PROT_WRITE,
	                           MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	unsigned n = iterations() / kind->fewer, mid = 0, inside = 0, torn = 0, marked = 0;
	uint64_t k = 0;
	char why[256];

	ck_assert_ptr_ne(pg, MAP_FAILED);
	if (getenv("CRASH_ONLY") && !strstr(kind->name, getenv("CRASH_ONLY")))
		n = 0;
	srand(12345);
	models_reset();
	for (unsigned it = 0; it < n; it++) {
		struct timespec pause = { 0, (long)(rand() % (int)kind->max_delay_us) * 1000L };
		uint64_t started, done;
		void *s;
		pid_t pid;
		int status;

		memset(pg, 0, sizeof(*pg));
		atomic_store(&pg->started, k);
		atomic_store(&pg->done, k);
		pid = fork();
		ck_assert_int_ge(pid, 0);
		if (pid == 0)
			_exit(writer(kind, pg, k));
		/* Polled finely: the kill's delay counts from the writer's first operation. */
		for (int w = 0; w < 50000 && !atomic_load(&pg->ready) && waitpid(pid, &status, WNOHANG) == 0; w++)
			usleep(100);
		nanosleep(&pause, NULL);
		kill(pid, SIGKILL);
		ck_assert_int_eq(waitpid(pid, &status, 0), pid);
		ck_assert_msg(atomic_load(&pg->error) == 0, "%s: the writer's operation %llu failed "
		              "with %lld", kind->name, (unsigned long long)atomic_load(&pg->failed_op),
		              (long long)atomic_load(&pg->error));
		ck_assert_msg(WIFSIGNALED(status), "%s: the writer exited with %d before the kill",
		              kind->name, WEXITSTATUS(status));
		started = atomic_load(&pg->started);
		done = atomic_load(&pg->done);
		marked += (unsigned)atomic_load(&pg->marked);
		for (; k < done; k++)
			kind->model_apply(k);
		s = kind->open(c);
		ck_assert_msg(s != NULL, "%s: iteration %u: the next opener fails: %s", kind->name, it,
		              mmapd_last_message());
		if (started > done) {
			/* Killed inside operation k: before or after it, nothing else. */
			inside++;
			if (!kind->equal(s, why, sizeof(why))) {
				kind->model_apply(k++);
				mid++;
				if (kind->resync && !kind->equal(s, why, sizeof(why))) {
					torn++;
					kind->resync(s);
				}
				ck_assert_msg(kind->equal(s, why, sizeof(why)), "%s: iteration %u, killed in "
				              "operation %llu: neither before nor after it: %s", kind->name,
				              it, (unsigned long long)(k - 1), why);
			} else {
				/* It made no change that shows: op k runs again next time from scratch,
				 * which the model does not count yet either. */
			}
		} else {
			ck_assert_msg(kind->equal(s, why, sizeof(why)), "%s: iteration %u, killed between "
			              "operations at %llu: %s", kind->name, it, (unsigned long long)k, why);
		}
		kind->close(s);
	}
	fprintf(stderr, "%s: %u kills, %llu operations, %u kills inside one, of which %u found "
	        "it completed%s\n", kind->name, n, (unsigned long long)k, inside, mid,
	        kind->resync ? "" : " (none torn)");
	if (marked)
		fprintf(stderr, "%s: %u kills inside a compaction\n", kind->name, marked);
	if (kind->resync) {
		fprintf(stderr, "%s: %u torn (neither before nor after)\n", kind->name, torn);
		ck_assert_msg(n == 0 || torn > 0, "%s: no kill tore a write: the test cannot see "
		              "tearing", kind->name);
	}
	munmap(pg, sizeof(*pg));
	mmapd_disconnect(c);
}

/*
 * ---- power loss ----
 * A power cut cannot be made, so it is simulated from the barriers: this file defines msync()
 * (the library's only durability call, in mmapd_region_msync(); libmmapd is linked in
 * statically), which, while a durable writer works in this process, does three things:
 *   - before the real msync, records a cut: the bytes every region of the structure has
 *     in memory, and the bytes on "disk", a private copy that only msync updates;
 *   - the real msync;
 *   - copies the synced range into the "disk" copy.
 * A power loss at that cut leaves, of each page, the disk copy or (written back by the kernel
 * on its own) the bytes in memory. After the operation returns one more cut is taken. Each
 * cut's image is written to fresh regions in four variants (the disk copy alone, memory alone
 * (a SIGKILL at that barrier, so every step between barriers, after the commit point too, is
 * also killed once deterministically), then two random mixes, page by page, of the two) and
 * opened by the next opener, which
 * must see the structure before or after the operation; the disk copy alone after the call
 * returned must be after (durable when it returns).
 *
 * What it assumes: the disk keeps whole pages (no torn page), the regions' sizes (the
 * daemon's resizes) are durable when the resize returns, and the structure as created (its
 * formatting is not synced) was on disk before the first operation. A page written back
 * in a state between two cuts is not among the variants.
 */
#define PL_VARIANTS 4   /* the disk copy alone, memory alone (a SIGKILL there), two mixes */

struct pl_cut {
	size_t len[PL_REGIONS];
	uint8_t *mem[PL_REGIONS], *disk[PL_REGIONS];
};

static struct {
	struct mmapd_region *region[PL_REGIONS];
	uint8_t *disk[PL_REGIONS];
	size_t disk_len[PL_REGIONS];
	unsigned n;                    /* regions tracked; 0: msync is only msync */
	bool recording;                /* take a cut at each msync */
	struct pl_cut *cuts;
	unsigned ncuts, cap;
	uint64_t barriers;
} pl;

static void pl_cut_take(void)
{
	struct pl_cut *c;

	if (pl.ncuts == pl.cap) {
		pl.cap = pl.cap ? pl.cap * 2 : 16;
		pl.cuts = realloc(pl.cuts, pl.cap * sizeof(*pl.cuts));
		ck_assert_ptr_nonnull(pl.cuts);
	}
	c = &pl.cuts[pl.ncuts++];
	for (unsigned i = 0; i < pl.n; i++) {
		size_t len = mmapd_region_length(pl.region[i]);

		c->len[i] = len;
		c->mem[i] = malloc(len);
		c->disk[i] = calloc(1, len);
		ck_assert(c->mem[i] && c->disk[i]);
		memcpy(c->mem[i], mmapd_region_data(pl.region[i]), len);
		memcpy(c->disk[i], pl.disk[i], len < pl.disk_len[i] ? len : pl.disk_len[i]);
	}
}

/* What reaches the disk: [off, off + len) of tracked region i, as it is in memory now. */
static void pl_disk_write(unsigned i, size_t off, size_t len)
{
	if (off + len > pl.disk_len[i]) {
		pl.disk[i] = realloc(pl.disk[i], off + len);
		ck_assert_ptr_nonnull(pl.disk[i]);
		memset(pl.disk[i] + pl.disk_len[i], 0, off + len - pl.disk_len[i]);
		pl.disk_len[i] = off + len;
	}
	memcpy(pl.disk[i] + off, (uint8_t *)mmapd_region_data(pl.region[i]) + off, len);
}

int msync(void *addr, size_t len, int flags)
{
	int r;

	if (pl.recording)
		pl_cut_take();
	r = (int)syscall(SYS_msync, addr, len, flags);
	for (unsigned i = 0; r == 0 && i < pl.n; i++) {
		uint8_t *base = mmapd_region_data(pl.region[i]);
		size_t rlen = mmapd_region_length(pl.region[i]);

		if ((uint8_t *)addr >= base && (uint8_t *)addr < base + rlen) {
			pl_disk_write(i, (size_t)((uint8_t *)addr - base),
			              len < rlen - (size_t)((uint8_t *)addr - base) ?
			              len : rlen - (size_t)((uint8_t *)addr - base));
			pl.barriers++;
		}
	}
	return r;
}

static void pl_cuts_free(void)
{
	for (unsigned k = 0; k < pl.ncuts; k++)
		for (unsigned i = 0; i < pl.n; i++) {
			free(pl.cuts[k].mem[i]);
			free(pl.cuts[k].disk[i]);
		}
	pl.ncuts = 0;
}

/* Region i's copy's name: its name with "-pl" made "-pl-cut". */
static void pl_copy_name(unsigned i, char *buf, size_t size)
{
	const char *name = mmapd_region_name(pl.region[i]), *at = strstr(name, "-pl");

	ck_assert_ptr_nonnull(at);
	snprintf(buf, size, "%.*s-pl-cut%s", (int)(at - name), name, at + 3);
}

/*
 * Writes variant v of cut c (0: the disk copy alone; 1: memory alone, what a SIGKILL at that
 * instant leaves; else each page that memory holds otherwise taken from memory or not, by a
 * coin seeded with v) into the regions' copies and opens the structure from them, as the next
 * opener after the power came back.
 */
static void *pl_open_image(const struct kind *kind, struct mmapd_client *cl,
                           const struct pl_cut *c, unsigned v)
{
	const size_t page = 4096;
	void *s;

	for (unsigned i = 0; i < pl.n; i++) {
		struct mmapd_open_opts o = MMAPD_OPEN_OPTS(.mode = MMAPD_MODE_RW,
		                                           .flags = MMAPD_OPEN_CREATE, .size = c->len[i]);
		struct mmapd_region *r;
		char name[160];
		uint8_t *d;

		pl_copy_name(i, name, sizeof(name));
		mmapd_delete(cl, name);
		ck_assert_int_eq(mmapd_region_open(cl, name, &o, &r), 0);
		d = mmapd_region_data(r);
		memcpy(d, v == 1 ? c->mem[i] : c->disk[i], c->len[i]);
		for (size_t p = 0; v > 1 && p < c->len[i]; p += page) {
			size_t n = c->len[i] - p < page ? c->len[i] - p : page;

			if (mix(v * 1000003u + i * 7919u + p) & 1)
				memcpy(d + p, c->mem[i] + p, n);
		}
		mmapd_region_close(r);
	}
	name_suffix = "-pl-cut";
	s = kind->open(cl);
	name_suffix = "-pl";
	ck_assert_msg(s != NULL, "%s: the opener after a power loss fails: %s", kind->name,
	              mmapd_last_message());
	return s;
}

static void pl_delete_copies(struct mmapd_client *cl)
{
	char name[160];

	for (unsigned i = 0; i < pl.n; i++) {
		pl_copy_name(i, name, sizeof(name));
		mmapd_delete(cl, name);
	}
}

/* Runs ops durable operations of kind, checking every cut of each as described above. */
static void powerloss_run(const struct kind *kind, unsigned ops)
{
	struct mmapd_client *cl = test_client_connect(&dmn, "check_crash-powerloss");
	uint64_t images = 0, after = 0;
	size_t start_len;
	char why[256];
	void *s, *t;
	bool *before;

	if (getenv("POWERLOSS_OPS"))
		ops = (unsigned)strtoul(getenv("POWERLOSS_OPS"), NULL, 10);
	if (getenv("CRASH_ONLY") && !strstr(kind->name, getenv("CRASH_ONLY")))
		ops = 0;
	models_reset();
	name_suffix = "-pl";
	extra_flags = MMAPD_PERSIST_DURABLE;
	s = kind->open(cl);
	ck_assert_msg(s != NULL, "%s: open: %s", kind->name, mmapd_last_message());
	pl.n = kind->regions(s, pl.region);
	pl.barriers = 0;
	start_len = mmapd_region_length(pl.region[0]);
	for (unsigned i = 0; i < pl.n; i++) {
		pl.disk_len[i] = 0;
		pl_disk_write(i, 0, mmapd_region_length(pl.region[i]));
	}
	for (uint64_t k = 0; k < ops; k++) {
		pl.recording = true;
		ck_assert_msg(kind->apply(s, k) == 0, "%s: operation %llu: %s", kind->name,
		              (unsigned long long)k, mmapd_last_message());
		pl.recording = false;
		pl_cut_take();
		before = calloc(pl.ncuts * PL_VARIANTS, sizeof(*before));
		ck_assert_ptr_nonnull(before);
		extra_flags = 0;
		for (unsigned c = 0; c < pl.ncuts; c++)
			for (unsigned v = 0; v < PL_VARIANTS; v++) {
				t = pl_open_image(kind, cl, &pl.cuts[c], v);
				before[c * PL_VARIANTS + v] = kind->equal(t, why, sizeof(why));
				kind->close(t);
				images++;
			}
		kind->model_apply(k);
		for (unsigned c = 0; c < pl.ncuts; c++)
			for (unsigned v = 0; v < PL_VARIANTS; v++) {
				bool last = c == pl.ncuts - 1 && v == 0;

				if (before[c * PL_VARIANTS + v] && !last)
					continue;
				t = pl_open_image(kind, cl, &pl.cuts[c], v);
				ck_assert_msg(kind->equal(t, why, sizeof(why)), "%s: operation %llu, power "
				              "lost at barrier %u of %u (variant %u): %s: %s", kind->name,
				              (unsigned long long)k, c, pl.ncuts - 1, v,
				              last ? "not durable when the call returned"
				                   : "neither before nor after", why);
				kind->close(t);
				after++;
			}
		extra_flags = MMAPD_PERSIST_DURABLE;
		free(before);
		pl_cuts_free();
	}
	fprintf(stderr, "%s: power loss: %u operations, %llu barriers, %llu images opened, %llu "
	        "of them after the operation; its first region grew from %zu to %zu bytes\n",
	        kind->name, ops, (unsigned long long)pl.barriers, (unsigned long long)images,
	        (unsigned long long)after, start_len, mmapd_region_length(pl.region[0]));
	pl_delete_copies(cl);
	for (unsigned i = 0; i < pl.n; i++) {
		free(pl.disk[i]);
		pl.disk[i] = NULL;
	}
	pl.n = 0;
	kind->close(s);
	extra_flags = 0;
	name_suffix = "";
	mmapd_disconnect(cl);
}

START_TEST(test_powerloss_durable_vector_at_every_barrier_is_before_or_after)
{
	powerloss_run(&vec_kind, 50);
}
END_TEST

START_TEST(test_powerloss_durable_hash_map_at_every_barrier_is_before_or_after)
{
	powerloss_run(&map_kind, 100);
}
END_TEST

START_TEST(test_powerloss_durable_string_map_at_every_barrier_is_before_or_after)
{
	sm_compact_pct = 3;
	powerloss_run(&sm_kind, 60);
	sm_compact_pct = 0;
}
END_TEST

START_TEST(test_powerloss_durable_struct_writer_at_every_barrier_is_before_or_after)
{
	powerloss_run(&st_kind, 20);
}
END_TEST

START_TEST(test_crash_vector_killed_anywhere_is_before_or_after_each_operation)
{
	crash_run(&vec_kind);
}
END_TEST

START_TEST(test_crash_durable_vector_killed_anywhere_is_before_or_after_each_operation)
{
	crash_run(&vec_durable_kind);
}
END_TEST

START_TEST(test_crash_hash_map_killed_anywhere_is_before_or_after_each_operation)
{
	crash_run(&map_kind);
}
END_TEST

START_TEST(test_crash_string_map_killed_anywhere_is_before_or_after_each_operation)
{
	sm_compact_pct = 0;
	crash_run(&sm_kind);
}
END_TEST

START_TEST(test_crash_string_map_killed_in_compactions_is_before_or_after_each_operation)
{
	sm_compact_pct = 3;
	name_suffix = "-compacting";   /* a map of its own */
	crash_run(&sm_kind);
	name_suffix = "";
	sm_compact_pct = 0;
}
END_TEST

START_TEST(test_crash_struct_written_through_a_writer_killed_anywhere_is_before_or_after_each_write)
{
	crash_run(&st_kind);
}
END_TEST

/* Fixed string sets in place: the commit word makes each one atomic by itself. */
START_TEST(test_crash_fixed_strings_set_in_place_killed_anywhere_are_never_torn)
{
	crash_run(&st_fstr_kind);
}
END_TEST

/* The words written with memcpy tear: what the writer prevents (and proof that this test can
 * see a torn state). */
START_TEST(test_crash_struct_written_with_plain_stores_is_torn_by_some_kill)
{
	crash_run(&st_plain_kind);
}
END_TEST

static Suite *crash_suite(void)
{
	Suite *s = suite_create("crash");
	TCase *tc = tcase_create("crash");

	tcase_add_unchecked_fixture(tc, suite_setup, suite_teardown);
	tcase_add_checked_fixture(tc, test_fd_setup, test_fd_teardown);
	tcase_set_timeout(tc, 600);
	tcase_add_test(tc, test_crash_vector_killed_anywhere_is_before_or_after_each_operation);
	tcase_add_test(tc, test_crash_durable_vector_killed_anywhere_is_before_or_after_each_operation);
	tcase_add_test(tc, test_crash_hash_map_killed_anywhere_is_before_or_after_each_operation);
	tcase_add_test(tc, test_crash_string_map_killed_anywhere_is_before_or_after_each_operation);
	tcase_add_test(tc, test_crash_string_map_killed_in_compactions_is_before_or_after_each_operation);
	tcase_add_test(tc, test_crash_struct_written_through_a_writer_killed_anywhere_is_before_or_after_each_write);
	tcase_add_test(tc, test_crash_fixed_strings_set_in_place_killed_anywhere_are_never_torn);
	tcase_add_test(tc, test_crash_struct_written_with_plain_stores_is_torn_by_some_kill);
	tcase_add_test(tc, test_powerloss_durable_vector_at_every_barrier_is_before_or_after);
	tcase_add_test(tc, test_powerloss_durable_hash_map_at_every_barrier_is_before_or_after);
	tcase_add_test(tc, test_powerloss_durable_string_map_at_every_barrier_is_before_or_after);
	tcase_add_test(tc, test_powerloss_durable_struct_writer_at_every_barrier_is_before_or_after);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return test_run_suite(crash_suite()) == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
