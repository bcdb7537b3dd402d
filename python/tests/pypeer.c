/* SPDX-License-Identifier: MIT */
/*
 * mmapd-pypeer: the C side of the Python package's interop tests (python/tests/). Built like
 * any libmmapd program, against the public headers only; the tests run it as a separate
 * process next to the Python one, connected through $MMAPD_SOCKET. What the region-level
 * commands of tests/mmapd-testclient do not cover lives here: the ABI (struct sizes and field
 * offsets, which the ctypes mirror must match), rings, persistent vectors, maps and structs.
 * Each command prints what it saw on stdout; exit status 0 on success, 1 with a sentence on
 * stderr otherwise.
 *
 *   sizes                          "struct NAME SIZE" and "field NAME.FIELD OFFSET" lines
 *   ring-write NAME LINE...        open ring NAME as its writer, write each LINE + "\n", close
 *   ring-read NAME                 open ring NAME as its reader, copy it to stdout until the
 *                                  writer closes
 *   ring-echo NAME_IN NAME_OUT N   read N lines from ring NAME_IN (reader), write each back,
 *                                  upper-cased, to ring NAME_OUT (writer)
 *   pvec-push NAME COUNT           push records i = 0..COUNT-1 of struct rec (below)
 *   pvec-dump NAME                 "id value stamp tag" per record
 *   phash-put NAME KEY VALUE       8-byte keys and values (NUL-padded text)
 *   phash-get NAME KEY             prints the value, or "absent"
 *   pstruct-get NAME OFF           opens struct counters (INIT) at OFF: "hits misses label"
 *   pstruct-set NAME OFF HITS MISSES LABEL
 *   nd-write NAME OFF ROWS COLS    opens (INIT) an f64 array ROWS x COLS at OFF of region NAME
 *                                  and sets element [i][j] to i * 100 + j
 *   nd-dump NAME OFF               opens the array at OFF as its header says: "dtype ndim
 *                                  shape...", then each element, row-major, one a line
 *   strmap-put NAME KEY VALUE      string map NAME (created if missing)
 *   strmap-get NAME KEY            prints the value, or "absent"
 *   strmap-dump NAME               "key=value" per entry, in table order
 */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mmapd.h>
#include <mmapd-persist.h>
#include <mmapd-ring.h>

/* The record of the pvec tests; Python describes it with an aligned NumPy dtype. */
struct rec {
	uint32_t id;
	float value;
	double stamp;
	char tag[8];
};

/* The persistent struct of the pstruct tests ("counters", version 1). */
struct counters {
	uint64_t hits;
	uint32_t misses;
	MMAPD_FSTR(15) label;
};

static int fail(const char *what, int err)
{
	fprintf(stderr, "mmapd-pypeer: %s: %s (%s)\n", what, mmapd_strerror(err), mmapd_last_message());
	return 1;
}

#define SIZE(s) printf("struct %s %zu\n", #s, sizeof(struct s))
#define FIELD(s, f) printf("field %s.%s %zu\n", #s, #f, offsetof(struct s, f))

static int sizes(void)
{
	SIZE(mmapd_policy); FIELD(mmapd_policy, kind); FIELD(mmapd_policy, value);
	SIZE(mmapd_range); FIELD(mmapd_range, offset); FIELD(mmapd_range, length);
	SIZE(mmapd_open_opts);
	FIELD(mmapd_open_opts, struct_size); FIELD(mmapd_open_opts, flags);
	FIELD(mmapd_open_opts, mode); FIELD(mmapd_open_opts, size); FIELD(mmapd_open_opts, offset);
	FIELD(mmapd_open_opts, length); FIELD(mmapd_open_opts, reserve);
	FIELD(mmapd_open_opts, policy);
	SIZE(mmapd_status);
	FIELD(mmapd_status, version); FIELD(mmapd_status, protocol); FIELD(mmapd_status, pid);
	FIELD(mmapd_status, uptime_ms); FIELD(mmapd_status, max_region_size);
	FIELD(mmapd_status, subscriptions);
	SIZE(mmapd_region_info);
	FIELD(mmapd_region_info, name); FIELD(mmapd_region_info, size);
	FIELD(mmapd_region_info, anonymous); FIELD(mmapd_region_info, grants);
	FIELD(mmapd_region_info, generation); FIELD(mmapd_region_info, policy);
	FIELD(mmapd_region_info, poisoned); FIELD(mmapd_region_info, seq);
	FIELD(mmapd_region_info, locks); FIELD(mmapd_region_info, uid);
	FIELD(mmapd_region_info, perm); FIELD(mmapd_region_info, huge);
	FIELD(mmapd_region_info, mtime_us); FIELD(mmapd_region_info, ctime_us);
	FIELD(mmapd_region_info, temporary);
	FIELD(mmapd_region_info, adopted);
	SIZE(mmapd_client_info);
	FIELD(mmapd_client_info, id); FIELD(mmapd_client_info, name);
	FIELD(mmapd_client_info, pid); FIELD(mmapd_client_info, connected_since_ms);
	FIELD(mmapd_client_info, queued_fds);
	SIZE(mmapd_lock_info);
	FIELD(mmapd_lock_info, region); FIELD(mmapd_lock_info, lock);
	FIELD(mmapd_lock_info, waiting); FIELD(mmapd_lock_info, exclusive);
	FIELD(mmapd_lock_info, offset); FIELD(mmapd_lock_info, client);
	FIELD(mmapd_lock_info, since_ms);
	SIZE(mmapd_event);
	FIELD(mmapd_event, type); FIELD(mmapd_event, region); FIELD(mmapd_event, seq);
	FIELD(mmapd_event, ranges); FIELD(mmapd_event, nranges);
	FIELD(mmapd_event, writer_client); FIELD(mmapd_event, writer_pid);
	FIELD(mmapd_event, size); FIELD(mmapd_event, external); FIELD(mmapd_event, policy);
	FIELD(mmapd_event, error); FIELD(mmapd_event, message); FIELD(mmapd_event, offset);
	FIELD(mmapd_event, nlocks); FIELD(mmapd_event, opened); FIELD(mmapd_event, lock);
	FIELD(mmapd_event, to);
	SIZE(mmapd_layout);
	FIELD(mmapd_layout, struct_size); FIELD(mmapd_layout, type_name);
	FIELD(mmapd_layout, version); FIELD(mmapd_layout, size); FIELD(mmapd_layout, align);
	SIZE(mmapd_ndview);
	FIELD(mmapd_ndview, data); FIELD(mmapd_ndview, dtype); FIELD(mmapd_ndview, ndim);
	FIELD(mmapd_ndview, elem_size); FIELD(mmapd_ndview, shape); FIELD(mmapd_ndview, strides);
	SIZE(mmapd_pfield); FIELD(mmapd_pfield, desc); FIELD(mmapd_pfield, reserved);
	return 0;
}

static int ring_write(struct mmapd_client *c, int argc, char **argv)
{
	struct mmapd_ring *ring;
	int r = mmapd_ring_open(c, argv[0], MMAPD_RING_WRITER, &ring);

	if (r < 0)
		return fail("ring open", r);
	for (int i = 1; i < argc && r >= 0; i++) {
		r = mmapd_ring_put(ring, argv[i], strlen(argv[i]), 5000);
		if (r >= 0)
			r = mmapd_ring_put(ring, "\n", 1, 5000);
	}
	mmapd_ring_close(ring);
	return r < 0 ? fail("ring put", r) : 0;
}

static int ring_read(struct mmapd_client *c, const char *name)
{
	struct mmapd_ring *ring;
	char buf[4096];
	int r = mmapd_ring_open(c, name, MMAPD_RING_READER, &ring);

	if (r < 0)
		return fail("ring open", r);
	for (;;) {
		ptrdiff_t n;

		r = mmapd_ring_wait_readable(ring, 1, 5000);
		if (r == -EPIPE && mmapd_ring_readable(ring) == 0)
			break;
		if (r < 0 && r != -EPIPE)
			break;
		n = mmapd_ring_read(ring, buf, sizeof(buf));
		if (n < 0) {
			r = (int)n;
			break;
		}
		fwrite(buf, 1, (size_t)n, stdout);
		r = 0;
	}
	mmapd_ring_close(ring);
	return r < 0 && r != -EPIPE ? fail("ring read", r) : 0;
}

static int ring_echo(struct mmapd_client *c, const char *in_name, const char *out_name, long n)
{
	struct mmapd_ring *in, *out;
	char line[4096];
	int r = mmapd_ring_open(c, in_name, MMAPD_RING_READER, &in);

	if (r < 0)
		return fail("ring open in", r);
	r = mmapd_ring_open(c, out_name, MMAPD_RING_WRITER, &out);
	if (r < 0) {
		mmapd_ring_close(in);
		return fail("ring open out", r);
	}
	for (long i = 0; i < n && r >= 0; i++) {
		ptrdiff_t len = mmapd_ring_read_until(in, '\n', line, sizeof(line), 5000);

		if (len < 0) {
			r = (int)len;
			break;
		}
		for (ptrdiff_t j = 0; j < len; j++)
			if (line[j] >= 'a' && line[j] <= 'z')
				line[j] = (char)(line[j] - 'a' + 'A');
		r = mmapd_ring_put(out, line, (size_t)len, 5000);
		if (r >= 0)
			r = mmapd_ring_flush(out);
	}
	mmapd_ring_close(out);
	mmapd_ring_close(in);
	return r < 0 ? fail("ring echo", r) : 0;
}

static int pvec_push(struct mmapd_client *c, const char *name, long count)
{
	struct mmapd_pvec *vec;
	int r = mmapd_pvec_open(c, name, sizeof(struct rec), MMAPD_PERSIST_CREATE, &vec);

	if (r < 0)
		return fail("pvec open", r);
	r = mmapd_pvec_lock(vec, 5000);
	for (long i = 0; i < count && r >= 0; i++) {
		struct rec rec = { .id = (uint32_t)i, .value = (float)i * 0.5f, .stamp = (double)i * 2.0 };

		snprintf(rec.tag, sizeof(rec.tag), "c%u", (unsigned)(i % 1000000));
		r = mmapd_pvec_push(vec, &rec);
	}
	if (r >= 0)
		r = mmapd_pvec_unlock(vec);
	mmapd_pvec_close(vec);
	return r < 0 ? fail("pvec push", r) : 0;
}

static int pvec_dump(struct mmapd_client *c, const char *name)
{
	struct mmapd_pvec *vec;
	int r = mmapd_pvec_open(c, name, sizeof(struct rec), 0, &vec);

	if (r < 0)
		return fail("pvec open", r);
	for (uint64_t i = 0; i < mmapd_pvec_len(vec) && r >= 0; i++) {
		struct rec rec;

		r = mmapd_pvec_get(vec, i, &rec);
		if (r >= 0)
			printf("%u %g %g %.8s\n", rec.id, (double)rec.value, rec.stamp, rec.tag);
	}
	mmapd_pvec_close(vec);
	return r < 0 ? fail("pvec get", r) : 0;
}

static void key8(char out[8], const char *text)
{
	size_t n = strlen(text);

	memset(out, 0, 8);
	memcpy(out, text, n < 8 ? n : 8);
}

static int phash(struct mmapd_client *c, int argc, char **argv, int put)
{
	struct mmapd_phash *map;
	char key[8], val[8];
	int r = mmapd_phash_open(c, argv[0], 8, 8, MMAPD_PERSIST_CREATE, &map);

	if (r < 0)
		return fail("phash open", r);
	if (argc < (put ? 3 : 2)) {
		mmapd_phash_close(map);
		return fail("usage", -EINVAL);
	}
	key8(key, argv[1]);
	r = mmapd_phash_lock(map, 5000);
	if (r >= 0 && put) {
		key8(val, argv[2]);
		r = mmapd_phash_put(map, key, val);
	} else if (r >= 0) {
		r = mmapd_phash_get(map, key, val);
		if (r == -ENOENT)
			printf("absent\n");
		else if (r >= 0)
			printf("%.8s\n", val);
		if (r == -ENOENT)
			r = 0;
	}
	mmapd_phash_unlock(map);
	mmapd_phash_close(map);
	return r < 0 ? fail("phash", r) : 0;
}

static int pstruct(struct mmapd_client *c, int argc, char **argv, int set)
{
	struct mmapd_open_opts o = MMAPD_OPEN_OPTS(.mode = MMAPD_MODE_RW);
	struct mmapd_layout layout = MMAPD_LAYOUT(struct counters, "counters", 1);
	struct mmapd_region *region;
	struct counters *s;
	char label[16];
	void *p;
	int r = mmapd_region_open(c, argv[0], &o, &region);

	if (r < 0)
		return fail("open", r);
	r = mmapd_pstruct_open(region, strtoull(argv[1], NULL, 10), &layout, MMAPD_PSTRUCT_INIT, &p);
	if (r < 0) {
		mmapd_region_close(region);
		return fail("pstruct open", r);
	}
	s = p;
	if (set && argc >= 5) {
		s->hits = strtoull(argv[2], NULL, 10);
		s->misses = (uint32_t)strtoul(argv[3], NULL, 10);
		r = mmapd_fstr_set_cstr(MMAPD_FSTR_ARGS(s->label), argv[4]);
	}
	if (r >= 0)
		r = (int)mmapd_fstr_copy(MMAPD_FSTR_ARGS(s->label), label, sizeof(label));
	if (r >= 0)
		printf("%llu %u %s\n", (unsigned long long)s->hits, s->misses, label);
	mmapd_region_close(region);
	return r < 0 ? fail("pstruct", r) : 0;
}

/* The element at flat row-major position k of a view, as a double. */
static double nd_value(const struct mmapd_ndview *v, uint64_t k)
{
	uint64_t index[MMAPD_ND_DIMS_MAX];
	void *p;

	for (unsigned d = v->ndim; d-- > 0;) {
		index[d] = k % v->shape[d];
		k /= v->shape[d];
	}
	if (mmapd_ndview_at(v, index, &p) < 0)
		return -1;
	switch (v->dtype) {
	case MMAPD_DT_U8: return *(uint8_t *)p;
	case MMAPD_DT_I8: return *(int8_t *)p;
	case MMAPD_DT_U16: return *(uint16_t *)p;
	case MMAPD_DT_I16: return *(int16_t *)p;
	case MMAPD_DT_U32: return *(uint32_t *)p;
	case MMAPD_DT_I32: return *(int32_t *)p;
	case MMAPD_DT_U64: return (double)*(uint64_t *)p;
	case MMAPD_DT_I64: return (double)*(int64_t *)p;
	case MMAPD_DT_F32: return *(float *)p;
	default: return *(double *)p;
	}
}

static int ndarray(struct mmapd_client *c, char **argv, int write)
{
	struct mmapd_open_opts o = MMAPD_OPEN_OPTS(.mode = write ? MMAPD_MODE_RW : MMAPD_MODE_RO);
	uint64_t shape[2] = { write ? strtoull(argv[2], NULL, 10) : 0,
	                      write ? strtoull(argv[3], NULL, 10) : 0 };
	struct mmapd_region *region;
	struct mmapd_ndview v;
	uint64_t count = 1;
	int r = mmapd_region_open(c, argv[0], &o, &region);

	if (r < 0)
		return fail("open", r);
	r = mmapd_ndarray_open(region, strtoull(argv[1], NULL, 10), MMAPD_DT_F64, write ? 2 : 0,
	                       shape, write ? MMAPD_PSTRUCT_INIT : 0, &v);
	if (r < 0) {
		mmapd_region_close(region);
		return fail("ndarray open", r);
	}
	for (uint64_t i = 0; write && i < shape[0]; i++)
		for (uint64_t j = 0; j < shape[1] && r >= 0; j++) {
			void *p;

			r = mmapd_ndview_at(&v, (uint64_t[]){ i, j }, &p);
			if (r >= 0)
				*(double *)p = (double)(i * 100 + j);
		}
	if (!write) {
		printf("%u %u", v.dtype, v.ndim);
		for (unsigned d = 0; d < v.ndim; d++) {
			printf(" %llu", (unsigned long long)v.shape[d]);
			count *= v.shape[d];
		}
		printf("\n");
		for (uint64_t k = 0; k < count; k++)
			printf("%g\n", nd_value(&v, k));
	}
	mmapd_region_close(region);
	return r < 0 ? fail("ndarray", r) : 0;
}

static int strmap(struct mmapd_client *c, int argc, char **argv, char op)
{
	struct mmapd_pstrmap *map;
	const void *k, *v;
	size_t klen, vlen;
	uint64_t cursor = 0;
	int r = mmapd_pstrmap_open(c, argv[0], MMAPD_PERSIST_CREATE, &map);

	if (r < 0)
		return fail("strmap open", r);
	if (argc < (op == 'p' ? 3 : op == 'g' ? 2 : 1)) {
		mmapd_pstrmap_close(map);
		return fail("usage", -EINVAL);
	}
	r = mmapd_pstrmap_lock(map, 5000);
	if (r >= 0 && op == 'p') {
		r = mmapd_pstrmap_put(map, argv[1], strlen(argv[1]), argv[2], strlen(argv[2]));
	} else if (r >= 0 && op == 'g') {
		r = mmapd_pstrmap_get(map, argv[1], strlen(argv[1]), &v, &vlen);
		if (r == -ENOENT)
			printf("absent\n");
		else if (r >= 0)
			printf("%.*s\n", (int)vlen, (const char *)v);
		if (r == -ENOENT)
			r = 0;
	} else if (r >= 0) {
		while ((r = mmapd_pstrmap_next(map, &cursor, &k, &klen, &v, &vlen)) == 1)
			printf("%.*s=%.*s\n", (int)klen, (const char *)k, (int)vlen, (const char *)v);
	}
	mmapd_pstrmap_unlock(map);
	mmapd_pstrmap_close(map);
	return r < 0 ? fail("strmap", r) : 0;
}

int main(int argc, char **argv)
{
	struct mmapd_client *c;
	const char *cmd;
	int r;

	if (argc < 2) {
		fprintf(stderr, "usage: mmapd-pypeer COMMAND ARGS...\n");
		return 1;
	}
	cmd = argv[1];
	if (strcmp(cmd, "sizes") == 0)
		return sizes();
	if (argc < 3)
		return fail(cmd, -EINVAL);
	r = mmapd_connect(NULL, "pypeer", &c);
	if (r < 0)
		return fail("connect", r);
	if (strcmp(cmd, "ring-write") == 0)
		r = ring_write(c, argc - 2, argv + 2);
	else if (strcmp(cmd, "ring-read") == 0)
		r = ring_read(c, argv[2]);
	else if (strcmp(cmd, "ring-echo") == 0 && argc >= 5)
		r = ring_echo(c, argv[2], argv[3], strtol(argv[4], NULL, 10));
	else if (strcmp(cmd, "pvec-push") == 0 && argc >= 4)
		r = pvec_push(c, argv[2], strtol(argv[3], NULL, 10));
	else if (strcmp(cmd, "pvec-dump") == 0)
		r = pvec_dump(c, argv[2]);
	else if (strcmp(cmd, "phash-put") == 0 || strcmp(cmd, "phash-get") == 0)
		r = phash(c, argc - 2, argv + 2, cmd[6] == 'p');
	else if (strcmp(cmd, "pstruct-get") == 0 && argc >= 4)
		r = pstruct(c, argc - 2, argv + 2, 0);
	else if (strcmp(cmd, "pstruct-set") == 0 && argc >= 7)
		r = pstruct(c, argc - 2, argv + 2, 1);
	else if (strcmp(cmd, "nd-write") == 0 && argc >= 6)
		r = ndarray(c, argv + 2, 1);
	else if (strcmp(cmd, "nd-dump") == 0 && argc >= 4)
		r = ndarray(c, argv + 2, 0);
	else if (strcmp(cmd, "strmap-put") == 0 || strcmp(cmd, "strmap-get") == 0 ||
	         strcmp(cmd, "strmap-dump") == 0)
		r = strmap(c, argc - 2, argv + 2, cmd[7]);
	else
		r = fail(cmd, -EINVAL);
	mmapd_disconnect(c);
	return r;
}
