/* SPDX-License-Identifier: MIT */
/*
 * Case (p): persistent structures (client/toolbox/persist/) and the cost of their crash
 * safety. Each line is operations per second of the median of PERSIST_ROUNDS rounds against a
 * private in-memory baseline measured in the same run:
 *   push     mmapd_pvec_push() of 64-byte elements (crash-safe by its length store: nothing
 *            journalled) | appending to a private array grown by doubling;
 *   set      mmapd_pvec_set() (journalled: the element staged, a redo record committed and
 *            played) | memcpy into a private array; and, to show what the journal costs,
 *            the same stores made through mmapd_pvec_at() and memcpy (not crash-safe);
 *   get      mmapd_pvec_get() | memcpy out of a private array;
 *   put/get  mmapd_phash_put() (journalled) of new keys, then of existing ones, and
 *            mmapd_phash_get(), 8-byte keys and 64-byte values | a private direct-address
 *            table indexed by key (what the memory alone costs; no hashing);
 *   fstr     mmapd_fstr_set() of a 48-byte string (crash-atomic by its layout: the idle
 *            buffer written, then the commit word stored), the same through the struct
 *            writer (mmapd_pwriter_fstr_set(): the durable path), and mmapd_fstr_copy() out
 *            of it (a seqlock read) | memcpy of the 48 bytes and a NUL into, or out of,
 *            private memory;
 *   field    mmapd_pwriter_write() of a 64-byte field (journalled), and the alternative
 *            weighed for it: a shadow copy written, then a generation word flipped (what
 *            that layout would cost; not offered: it changes every struct's layout) |
 *            memcpy into a private struct;
 *   durable  push, set, put, writer fstr set and field write with MMAPD_PERSIST_DURABLE (msync
 *            ordering around each commit), fewer operations, against the same private
 *            baselines.
 * The regions are file regions in the benchmark's data directory.
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cases.h"
#include "compare.h"
#include "mmapd-persist.h"

#define PERSIST_ELEM 64u
#define PERSIST_OPS 200000u
#define PERSIST_DURABLE_OPS 200u
#define PERSIST_ROUNDS 5

enum op { OP_PUSH, OP_SET, OP_SET_RAW, OP_GET, OP_PUT, OP_PUT_AGAIN, OP_MAP_GET,
          OP_FSTR_W, OP_FSTR_SET, OP_FSTR_GET, OP_FIELD_J, OP_FIELD_SHADOW };
#define OP_LAST OP_FIELD_SHADOW

/* The struct the struct-writer lines write: a string, a 64-byte field, its shadow copy; the
 * private baseline's string is plain bytes. */
struct bench_body {
	MMAPD_FSTR(PERSIST_ELEM) name;
	char plain[PERSIST_ELEM + 1];
	uint8_t field[2][PERSIST_ELEM];
	_Atomic uint64_t which;        /* the shadow alternative's generation: field[which & 1] */
};

struct run {
	struct mmapd_pvec *vec;      /* NULL: the private baseline */
	struct mmapd_phash *map;
	struct mmapd_region *owner;  /* the struct writer's region and writer */
	struct mmapd_pwriter *w;
	struct bench_body *body;     /* in owner, or private for the baseline */
	uint8_t *priv;               /* the baseline's array or table */
	size_t priv_len, priv_cap;
	enum op op;
	uint64_t n;
};

/* The struct-writer lines: 48 bytes of string, or the 64-byte field, by each means. */
static int run_struct(struct run *r, uint64_t i, const uint8_t *e)
{
	char str[48], out[PERSIST_ELEM + 1];

	memset(str, 'a' + (int)(i % 26), sizeof(str));
	if (!r->w && r->op <= OP_FSTR_GET) {
		/* The baseline: the bytes and a NUL copied into, or out of, private memory. */
		if (r->op == OP_FSTR_GET) {
			memcpy(out, r->body->plain, sizeof(str) + 1);
			return out[0] ? 0 : -EIO;
		}
		memcpy(r->body->plain, str, sizeof(str));
		r->body->plain[sizeof(str)] = '\0';
		return 0;
	}
	switch (r->op) {
	case OP_FSTR_W:
		return mmapd_pwriter_fstr_set(r->w, MMAPD_FSTR_ARGS(r->body->name), str, sizeof(str));
	case OP_FSTR_SET:
		return mmapd_fstr_set(MMAPD_FSTR_ARGS(r->body->name), str, sizeof(str));
	case OP_FSTR_GET:
		return mmapd_fstr_copy(MMAPD_FSTR_ARGS(r->body->name), out, sizeof(out)) == 48 ? 0
		                                                                              : -EIO;
	case OP_FIELD_J:
		if (r->w)
			return mmapd_pwriter_write(r->w, r->body->field[0], e, PERSIST_ELEM);
		memcpy(r->body->field[0], e, PERSIST_ELEM);
		return 0;
	case OP_FIELD_SHADOW: {
		/* What a shadow-copy layout would cost: the idle copy, then the generation. */
		uint64_t g = atomic_load_explicit(&r->body->which, memory_order_relaxed);

		if (!r->w) {
			memcpy(r->body->field[0], e, PERSIST_ELEM);
			return 0;
		}

		memcpy(r->body->field[(g + 1) & 1], e, PERSIST_ELEM);
		atomic_store_explicit(&r->body->which, g + 1, memory_order_release);
		return 0;
	}
	default:
		return -EINVAL;
	}
}

static int run_one(struct run *r, uint64_t i)
{
	uint8_t e[PERSIST_ELEM];
	void *p;

	memset(e, (int)i, sizeof(e));
	if (r->op >= OP_FSTR_W)
		return run_struct(r, i, e);
	if (!r->vec && !r->map) {
		switch (r->op) {
		case OP_PUSH:
			if (r->priv_len == r->priv_cap) {
				r->priv_cap = r->priv_cap ? r->priv_cap * 2 : 1024;
				p = realloc(r->priv, r->priv_cap * PERSIST_ELEM);
				if (!p)
					return -ENOMEM;
				r->priv = p;
			}
			memcpy(r->priv + r->priv_len++ * PERSIST_ELEM, e, PERSIST_ELEM);
			return 0;
		case OP_SET:
		case OP_SET_RAW:
		case OP_PUT:
		case OP_PUT_AGAIN:
			memcpy(r->priv + (i % r->n) * PERSIST_ELEM, e, PERSIST_ELEM);
			return 0;
		case OP_GET:
		case OP_MAP_GET:
			memcpy(e, r->priv + (i % r->n) * PERSIST_ELEM, PERSIST_ELEM);
			return e[0] == (uint8_t)i ? 0 : -EIO;
		default:
			return -EINVAL;
		}
	}
	switch (r->op) {
	case OP_PUSH:
		return mmapd_pvec_push(r->vec, e);
	case OP_SET:
		return mmapd_pvec_set(r->vec, i % r->n, e);
	case OP_SET_RAW:
		if (mmapd_pvec_at(r->vec, i % r->n, &p) < 0)
			return -EIO;
		memcpy(p, e, PERSIST_ELEM);
		return 0;
	case OP_GET:
		return mmapd_pvec_get(r->vec, i % r->n, e);
	case OP_PUT:
	case OP_PUT_AGAIN:
		i %= r->n;
		return mmapd_phash_put(r->map, &i, e) < 0 ? -EIO : 0;
	case OP_MAP_GET:
		i %= r->n;
		return mmapd_phash_get(r->map, &i, e);
	default:
		return -EINVAL;
	}
}

/* Operations per second of n operations. */
static int run_rate(struct run *r, uint64_t n, double *ret_rate)
{
	uint64_t t0 = clock_ns(), dt;

	for (uint64_t i = 0; i < n; i++) {
		int e = run_one(r, i);

		if (e < 0) {
			fprintf(stderr, "persist: operation %d failed: %s\n", (int)r->op,
			        mmapd_last_message());
			return e;
		}
	}
	dt = clock_ns() - t0;
	*ret_rate = (double)n * 1e9 / (double)(dt ? dt : 1);
	return 0;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* Fresh structures for one round: the vector and map names carry the durability. */
static int round_open(struct mmapd_client *client, bool durable, struct run *r)
{
	unsigned flags = MMAPD_PERSIST_CREATE | (durable ? MMAPD_PERSIST_DURABLE : 0);
	const char *vname = durable ? "bench-pvec-d" : "bench-pvec";
	const char *mname = durable ? "bench-phash-d" : "bench-phash";
	int e;

	const char *sname = durable ? "bench-pstruct-d" : "bench-pstruct";
	struct mmapd_layout l = MMAPD_LAYOUT(struct bench_body, "bench.body", 1);
	struct mmapd_open_opts o = MMAPD_OPEN_OPTS(.mode = MMAPD_MODE_RW,
	                                           .flags = MMAPD_OPEN_CREATE, .size = 65536);
	void *body;
	char jname[64];

	snprintf(jname, sizeof(jname), "%s.journal", sname);
	mmapd_delete(client, vname);
	mmapd_delete(client, mname);
	mmapd_delete(client, sname);
	mmapd_delete(client, jname);
	if ((e = mmapd_pvec_open(client, vname, PERSIST_ELEM, flags, &r->vec)) < 0 ||
	    (e = mmapd_phash_open(client, mname, sizeof(uint64_t), PERSIST_ELEM, flags,
	                          &r->map)) < 0 ||
	    (e = mmapd_region_open(client, sname, &o, &r->owner)) < 0 ||
	    (e = mmapd_pstruct_open(r->owner, 0, &l, MMAPD_PSTRUCT_INIT, &body)) < 0 ||
	    (e = mmapd_pwriter_open(client, r->owner, flags, &r->w)) < 0) {
		fprintf(stderr, "persist: open: %s\n", mmapd_last_message());
		return e;
	}
	r->body = body;
	return 0;
}

static void round_close(struct mmapd_client *client, struct run *r)
{
	mmapd_delete(client, mmapd_region_name(mmapd_pvec_region(r->vec)));
	mmapd_delete(client, mmapd_region_name(mmapd_phash_region(r->map)));
	mmapd_delete(client, mmapd_region_name(mmapd_pwriter_region(r->w)));
	mmapd_delete(client, mmapd_region_name(r->owner));
	mmapd_pvec_close(r->vec);
	mmapd_phash_close(r->map);
	mmapd_pwriter_close(r->w);
	mmapd_region_close(r->owner);
	r->vec = NULL;
	r->map = NULL;
	r->w = NULL;
	r->owner = NULL;
}

/*
 * One round of every operation in sequence (push fills the vector that set and get use; put
 * fills the map that put-again and get use), mmapd and private; rates into rate[op][side].
 */
static int one_round(struct mmapd_client *client, bool durable, uint64_t n,
                     double rate[][2])
{
	static const enum op order[] = { OP_PUSH, OP_SET, OP_SET_RAW, OP_GET, OP_PUT,
	                                 OP_PUT_AGAIN, OP_MAP_GET, OP_FSTR_W, OP_FSTR_SET,
	                                 OP_FSTR_GET, OP_FIELD_J, OP_FIELD_SHADOW };
	static struct bench_body priv_body;
	struct run m = { 0 }, p = { .body = &priv_body };
	int e = round_open(client, durable, &m);

	if (e < 0)
		return e;
	p.priv = calloc(n, PERSIST_ELEM);
	if (!p.priv) {
		round_close(client, &m);
		return -ENOMEM;
	}
	p.priv_cap = n;
	m.n = p.n = n;
	for (size_t k = 0; k < sizeof(order) / sizeof(order[0]) && e == 0; k++) {
		m.op = p.op = order[k];
		if (order[k] == OP_PUSH) {
			p.priv_len = 0;
		}
		e = run_rate(&m, n, &rate[order[k]][0]);
		if (e == 0)
			e = run_rate(&p, n, &rate[order[k]][1]);
	}
	free(p.priv);
	round_close(client, &m);
	return e;
}

static int persist_lines(struct mmapd_client *client, bool durable)
{
	static const char *const names[] = {
		[OP_PUSH] = "push", [OP_SET] = "set (journal)", [OP_SET_RAW] = "set (at+memcpy, unsafe)",
		[OP_GET] = "get", [OP_PUT] = "map put new", [OP_PUT_AGAIN] = "map put replace",
		[OP_MAP_GET] = "map get", [OP_FSTR_W] = "fstr set (writer)",
		[OP_FSTR_SET] = "fstr set", [OP_FSTR_GET] = "fstr get",
		[OP_FIELD_J] = "struct field write (writer journal)",
		[OP_FIELD_SHADOW] = "struct field shadow+flip (alternative)",
	};
	double rates[PERSIST_ROUNDS][OP_LAST + 1][2];
	uint64_t n = durable ? PERSIST_DURABLE_OPS : PERSIST_OPS;
	char name[96];
	int e;

	for (int k = 0; k < PERSIST_ROUNDS; k++)
		if ((e = one_round(client, durable, n, rates[k])) < 0)
			return e;
	for (int op = 0; op <= OP_LAST; op++) {
		double a[PERSIST_ROUNDS], b[PERSIST_ROUNDS];

		/* Durable reads are not durable-specific: only the journalled writes are printed. */
		if (durable && (op == OP_GET || op == OP_MAP_GET || op == OP_SET_RAW ||
		                op == OP_FSTR_SET || op == OP_FSTR_GET || op == OP_FIELD_SHADOW))
			continue;
		for (int k = 0; k < PERSIST_ROUNDS; k++) {
			a[k] = rates[k][op][0];
			b[k] = rates[k][op][1];
		}
		qsort(a, PERSIST_ROUNDS, sizeof(a[0]), cmp_double);
		qsort(b, PERSIST_ROUNDS, sizeof(b[0]), cmp_double);
		snprintf(name, sizeof(name), "persist %s%s", names[op], durable ? " durable" : "");
		compare_print_throughput(name, a[PERSIST_ROUNDS / 2], "private",
		                         b[PERSIST_ROUNDS / 2], NULL);
	}
	return 0;
}

int case_persist(struct mmapd_client *client, const struct bench_opts *o)
{
	int e;

	(void)o;
	printf("# persistent structures: %u ops of %u-byte elements (durable: %u), median of %d "
	       "rounds, against a private array/table\n", PERSIST_OPS, PERSIST_ELEM,
	       PERSIST_DURABLE_OPS, PERSIST_ROUNDS);
	e = persist_lines(client, false);
	if (e == 0)
		e = persist_lines(client, true);
	return e;
}
