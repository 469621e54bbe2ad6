/*
 * episode_sampler._kernel: the hot loops of the permutation -> positions -> frame indices path.
 *
 * Each function computes exactly what its numpy counterpart in permutation.py / episodes.py computes
 * (the tests compare them element by element, and against the pure-Python definitions); the numpy
 * code stays as the fallback when this module is not built.
 *
 *   feistel(src, dst, n, half_bits, keys, decrypt[, threads])
 *       the Feistel network with cycle walking, element by element (permutation.py)
 *   lookup(pos, dst, tables, want_episode)
 *       position -> episode or frame through the bucket table (episodes.py _Lookup)
 *   frames(dst, start, step, wrap, perm, lookup, base[, threads])
 *       the two fused over a rank's strided run of positions (order.py, order="frames")
 *   runs(dst, firsts, lens)
 *       consecutive runs of frames, one per unit (order.py, order="episodes"/"blocks" ranges)
 *   seedseq(entropy, n_words)
 *       numpy's SeedSequence words for small int entropy (permutation.py: the per-epoch keys)
 *   IntIter(array)
 *       an iterator of Python ints over an int64 buffer, boxed one at a time (cursor.py)
 *
 * Arrays are passed through the buffer protocol (C-contiguous, 8-byte signed integers; the table may
 * be 4 or 8 bytes): no numpy headers are needed to build. Long calls release the GIL; feistel and
 * frames split calls across `threads` POSIX threads when asked (the caller decides, see kernel.py).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>
#ifndef _WIN32
#include <pthread.h>
#define HAVE_PTHREADS 1
#endif

#define M1 0xBF58476D1CE4E5B9ULL
#define M2 0x94D049BB133111EBULL
#define MAX_ROUNDS 64
#define TILE 2048             /* elements per cycle-walking tile: the pending list stays in L1 */
#define NOGIL_MIN 4096        /* release the GIL for calls at least this long */
#define MAX_THREADS 16

/* ------------------------------------------------------------------------------------------------ */
/* run fn over [0, size) in `threads` contiguous parts (tile-aligned), the caller running the first */

typedef void (*range_fn)(const void *ctx, Py_ssize_t lo, Py_ssize_t hi);

typedef struct {
    range_fn fn;
    const void *ctx;
    Py_ssize_t lo, hi;
} part_t;

#ifdef HAVE_PTHREADS
static void *
part_main(void *arg)
{
    part_t *p = (part_t *)arg;
    p->fn(p->ctx, p->lo, p->hi);
    return NULL;
}
#endif

static void
run_parts(range_fn fn, const void *ctx, Py_ssize_t size, int threads)
{
    if (threads < 1) {
        threads = 1;
    }
    if (threads > MAX_THREADS) {
        threads = MAX_THREADS;
    }
    Py_ssize_t per = size / threads;
    per = (per + TILE - 1) / TILE * TILE; /* whole tiles: every part but the last starts on a tile boundary */
    if (per < TILE) {
        per = TILE;
    }
#ifdef HAVE_PTHREADS
    pthread_t tid[MAX_THREADS];
    part_t parts[MAX_THREADS];
    int started[MAX_THREADS] = {0};
    for (int t = 1; t < threads; t++) {
        Py_ssize_t lo = per * t, hi = (t == threads - 1 || per * (t + 1) > size) ? size : per * (t + 1);
        if (lo >= hi) {
            break;
        }
        parts[t].fn = fn;
        parts[t].ctx = ctx;
        parts[t].lo = lo;
        parts[t].hi = hi;
        started[t] = pthread_create(&tid[t], NULL, part_main, &parts[t]) == 0;
        if (!started[t]) {
            fn(ctx, lo, hi); /* no thread to be had: the same work, inline */
        }
    }
    fn(ctx, 0, per < size ? per : size);
    for (int t = 1; t < threads; t++) {
        if (started[t]) {
            pthread_join(tid[t], NULL);
        }
    }
#else
    fn(ctx, 0, size);
#endif
}

/* ------------------------------------------------------------------------------------------------ */
/* buffers */

static int
get_i64(PyObject *obj, Py_buffer *view, int writable, const char *name)
{
    int flags = PyBUF_C_CONTIGUOUS | PyBUF_FORMAT | (writable ? PyBUF_WRITABLE : 0);
    if (PyObject_GetBuffer(obj, view, flags) < 0) {
        return -1;
    }
    const char *f = view->format ? view->format : "B";
    if (*f == '<' || *f == '=' || *f == '@') {
        f++;
    }
    if (view->itemsize != 8 || (strcmp(f, "q") != 0 && strcmp(f, "l") != 0)) {
        PyErr_Format(PyExc_TypeError, "%s must be a contiguous int64 buffer (got format '%s', itemsize %zd)",
                     name, view->format ? view->format : "B", view->itemsize);
        PyBuffer_Release(view);
        return -1;
    }
    return 0;
}

static int
get_u64_keys(PyObject *obj, Py_buffer *view)
{
    if (PyObject_GetBuffer(obj, view, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT) < 0) {
        return -1;
    }
    const char *f = view->format ? view->format : "B";
    if (*f == '<' || *f == '=' || *f == '@') {
        f++;
    }
    Py_ssize_t count = view->itemsize ? view->len / view->itemsize : 0;
    if (view->itemsize != 8 || (strcmp(f, "Q") != 0 && strcmp(f, "L") != 0) || count < 1 ||
        count > MAX_ROUNDS) {
        PyErr_SetString(PyExc_TypeError, "keys must be a contiguous uint64 buffer of 1 to 64 round keys");
        PyBuffer_Release(view);
        return -1;
    }
    return 0;
}

/* ------------------------------------------------------------------------------------------------ */
/* Feistel */

typedef struct {
    uint64_t keys[MAX_ROUNDS];
    int rounds;
    unsigned h, top;
    uint64_t mask, n;
} feistel_t;

static inline uint64_t
round_f(uint64_t r, uint64_t k, unsigned top)
{
    uint64_t z = (r ^ k) * M1;
    z = (z ^ (z >> 30)) * M2;
    return z >> top;
}

static inline uint64_t
encrypt_once(const feistel_t *F, uint64_t x)
{
    uint64_t left = x >> F->h, right = x & F->mask;
    for (int i = 0; i < F->rounds; i++) {
        uint64_t t = left ^ round_f(right, F->keys[i], F->top);
        left = right;
        right = t;
    }
    return (left << F->h) | right;
}

static inline uint64_t
decrypt_once(const feistel_t *F, uint64_t x)
{
    uint64_t left = x >> F->h, right = x & F->mask;
    for (int i = F->rounds - 1; i >= 0; i--) {
        uint64_t t = right ^ round_f(left, F->keys[i], F->top);
        right = left;
        left = t;
    }
    return (left << F->h) | right;
}

/* One pass of the network over a contiguous run: d[i] = E(s[i]) (or D), no cycle walking. The
 * four-round network (the default) is unrolled so that the compiler vectorizes the loop; on x86-64
 * Linux with GCC it is compiled for SSE2, AVX2 and AVX-512 and the CPU picks at load time. */
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__) && __GNUC__ >= 11
#define CLONES __attribute__((target_clones("default", "arch=x86-64-v3", "arch=x86-64-v4")))
#else
#define CLONES
#endif

CLONES static void
pass4(const uint64_t *restrict s, uint64_t *restrict d, Py_ssize_t m, const feistel_t *F, int decrypt)
{
    const uint64_t k0 = F->keys[0], k1 = F->keys[1], k2 = F->keys[2], k3 = F->keys[3];
    const unsigned h = F->h, top = F->top;
    const uint64_t mask = F->mask;
    if (decrypt) {
        for (Py_ssize_t i = 0; i < m; i++) {
            uint64_t x = s[i], L = x >> h, R = x & mask, t;
            t = R ^ round_f(L, k3, top); R = L; L = t;
            t = R ^ round_f(L, k2, top); R = L; L = t;
            t = R ^ round_f(L, k1, top); R = L; L = t;
            t = R ^ round_f(L, k0, top); R = L; L = t;
            d[i] = (L << h) | R;
        }
    }
    else {
        for (Py_ssize_t i = 0; i < m; i++) {
            uint64_t x = s[i], L = x >> h, R = x & mask, t;
            t = L ^ round_f(R, k0, top); L = R; R = t;
            t = L ^ round_f(R, k1, top); L = R; R = t;
            t = L ^ round_f(R, k2, top); L = R; R = t;
            t = L ^ round_f(R, k3, top); L = R; R = t;
            d[i] = (L << h) | R;
        }
    }
}

static void
pass_any(const uint64_t *s, uint64_t *d, Py_ssize_t m, const feistel_t *F, int decrypt)
{
    if (F->rounds == 4) {
        pass4(s, d, m, F, decrypt);
    }
    else if (decrypt) {
        for (Py_ssize_t i = 0; i < m; i++) {
            d[i] = decrypt_once(F, s[i]);
        }
    }
    else {
        for (Py_ssize_t i = 0; i < m; i++) {
            d[i] = encrypt_once(F, s[i]);
        }
    }
}

/* y = E(x) (or D) with cycle walking over one tile (m <= TILE, all three buffers tile-local; x is
 * clobbered): one vectorized pass over the tile, the indices still >= n collected branch-free, then
 * passes over those values only (gathered into a contiguous buffer, so they vectorize too) until
 * every value lies in [0, n). */
static void
feistel_tile(const feistel_t *F, uint64_t *x, uint64_t *y, Py_ssize_t m, int decrypt)
{
    uint32_t pending[TILE];
    uint64_t z[TILE];
    const uint64_t n = F->n;
    pass_any(x, y, m, F, decrypt);
    Py_ssize_t cnt = 0;
    for (Py_ssize_t i = 0; i < m; i++) {
        pending[cnt] = (uint32_t)i;
        cnt += (y[i] >= n);
    }
    while (cnt) {
        for (Py_ssize_t j = 0; j < cnt; j++) {
            x[j] = y[pending[j]];
        }
        pass_any(x, z, cnt, F, decrypt);
        Py_ssize_t next = 0;
        for (Py_ssize_t j = 0; j < cnt; j++) {
            uint32_t i = pending[j];
            uint64_t v = z[j];
            y[i] = v;
            pending[next] = i;
            next += (v >= n);
        }
        cnt = next;
    }
}

static void
feistel_run(const feistel_t *F, const uint64_t *src, uint64_t *dst, Py_ssize_t size, int decrypt)
{
    uint64_t x[TILE], y[TILE]; /* the caller's arrays may alias: the passes only see these */
    for (Py_ssize_t lo = 0; lo < size; lo += TILE) {
        Py_ssize_t m = size - lo < TILE ? size - lo : TILE;
        memcpy(x, src + lo, (size_t)m * 8);
        feistel_tile(F, x, y, m, decrypt);
        memcpy(dst + lo, y, (size_t)m * 8);
    }
}

/* Parse (n, half_bits, keys) into F; keys is a uint64 buffer. */
static int
parse_feistel(feistel_t *F, unsigned long long n, unsigned int h, PyObject *keys_o)
{
    if (h < 1 || h > 32) {
        PyErr_Format(PyExc_ValueError, "half_bits must be in [1, 32], got %u", h);
        return -1;
    }
    if (n < 1 || (h < 32 && n > (1ULL << (2 * h)))) {
        PyErr_Format(PyExc_ValueError, "n must be in [1, 2**(2*half_bits)], got %llu", n);
        return -1;
    }
    Py_buffer keys;
    if (get_u64_keys(keys_o, &keys) < 0) {
        return -1;
    }
    F->rounds = (int)(keys.len / 8);
    memcpy(F->keys, keys.buf, (size_t)keys.len);
    PyBuffer_Release(&keys);
    F->h = h;
    F->top = 64 - h;
    F->mask = (h == 32) ? 0xFFFFFFFFULL : ((1ULL << h) - 1);
    F->n = (uint64_t)n;
    return 0;
}

typedef struct {
    const feistel_t *F;
    const uint64_t *src;
    uint64_t *dst;
    int decrypt;
} feistel_job;

static void
feistel_part(const void *ctx, Py_ssize_t lo, Py_ssize_t hi)
{
    const feistel_job *J = (const feistel_job *)ctx;
    feistel_run(J->F, J->src + lo, J->dst + lo, hi - lo, J->decrypt);
}

static PyObject *
k_feistel(PyObject *Py_UNUSED(self), PyObject *args)
{
    PyObject *src_o, *dst_o, *keys_o;
    unsigned long long n;
    unsigned int h;
    int decrypt, threads = 1;
    if (!PyArg_ParseTuple(args, "OOKIOp|i:feistel", &src_o, &dst_o, &n, &h, &keys_o, &decrypt, &threads)) {
        return NULL;
    }
    feistel_t F;
    if (parse_feistel(&F, n, h, keys_o) < 0) {
        return NULL;
    }
    Py_buffer src, dst;
    if (get_i64(src_o, &src, 0, "src") < 0) {
        return NULL;
    }
    if (get_i64(dst_o, &dst, 1, "dst") < 0) {
        PyBuffer_Release(&src);
        return NULL;
    }
    PyObject *result = NULL;
    if (src.len != dst.len) {
        PyErr_SetString(PyExc_ValueError, "src and dst must have the same length");
        goto done;
    }
    Py_ssize_t size = src.len / 8;
    const uint64_t *s = (const uint64_t *)src.buf;
    /* every input must lie in the domain, or the walk may not reach [0, n) */
    uint64_t bad = 0;
    const uint64_t limit = (h == 32) ? UINT64_MAX : ((1ULL << (2 * h)) - 1);
    for (Py_ssize_t i = 0; i < size; i++) {
        bad |= (s[i] > limit);
    }
    if (bad) {
        PyErr_SetString(PyExc_ValueError, "src holds a value outside the permutation's domain");
        goto done;
    }
    feistel_job J = {&F, s, (uint64_t *)dst.buf, decrypt};
    if (size >= NOGIL_MIN) {
        Py_BEGIN_ALLOW_THREADS run_parts(feistel_part, &J, size, threads);
        Py_END_ALLOW_THREADS
    }
    else {
        feistel_run(&F, s, (uint64_t *)dst.buf, size, decrypt);
    }
    result = Py_NewRef(Py_None);
done:
    PyBuffer_Release(&src);
    PyBuffer_Release(&dst);
    return result;
}

/* ------------------------------------------------------------------------------------------------ */
/* position -> episode / frame through the bucket table (episodes.py _Lookup) */

typedef struct {
    const int64_t *cum; /* cumulative valid ends, plus a sentinel entry (INT64_MAX) at index e */
    Py_ssize_t e;       /* episodes (cum has e + 1 entries) */
    const void *table;
    int table32;
    Py_ssize_t nbuckets;
    unsigned shift;
    int steps;
} lookup_t;

static inline int64_t
episode_of(const lookup_t *L, int64_t p)
{
    Py_ssize_t b = (Py_ssize_t)((uint64_t)p >> L->shift);
    if (b >= L->nbuckets) {
        b = L->nbuckets - 1;
    }
    int64_t ep = L->table32 ? ((const int32_t *)L->table)[b] : ((const int64_t *)L->table)[b];
    const int64_t *cum = L->cum;
    for (int s = 0; s < L->steps; s++) {
        ep += (cum[ep] <= p);
    }
    if (cum[ep] <= p) { /* a bucket with more ends than `steps`: bisect the rest (rare) */
        Py_ssize_t a = (Py_ssize_t)ep + 1, z = L->e; /* answer in [a, z]: cum[z] is the sentinel */
        while (a < z) {
            Py_ssize_t mid = a + (z - a) / 2;
            if (cum[mid] <= p) {
                a = mid + 1;
            }
            else {
                z = mid;
            }
        }
        ep = a;
    }
    return ep;
}

/* The bucket-table search with a fixed number of steps, branch-free (vectorizable): the episode of
 * p, unless cum[ep] <= p still holds after STEPS steps (then *bad is set and the caller bisects). */
#define FAST_LOOP(STEPS)                                                                              \
    for (Py_ssize_t i = 0; i < m; i++) {                                                              \
        int64_t p = pos[i];                                                                           \
        int64_t ep = t32 ? (int64_t)t32[(uint64_t)p >> shift] : t64[(uint64_t)p >> shift];            \
        for (int s_ = 0; s_ < (STEPS); s_++) {                                                        \
            ep += (cum[ep] <= p);                                                                     \
        }                                                                                             \
        bad |= (cum[ep] <= p);                                                                        \
        dst[i] = want_episode ? ep : p + (ends[ep] - cum[ep]);                                        \
    }

CLONES static int
lookup_fast(const lookup_t *L, const int64_t *pos, int64_t *dst, Py_ssize_t m, const int64_t *ends,
            int want_episode)
{
    const int64_t *cum = L->cum;
    const int32_t *t32 = L->table32 ? (const int32_t *)L->table : NULL;
    const int64_t *t64 = L->table32 ? NULL : (const int64_t *)L->table;
    const unsigned shift = L->shift;
    int bad = 0;
    switch (L->steps) {
    case 0: FAST_LOOP(0) break;
    case 1: FAST_LOOP(1) break;
    case 2: FAST_LOOP(2) break;
    default: FAST_LOOP(L->steps) break;
    }
    return bad;
}

/* dst[i] = frame (or episode) of pos[i], which lie in [0, num_frames); pos and dst may be the same. */
static void
lookup_run(const lookup_t *L, const int64_t *pos, int64_t *dst, Py_ssize_t size, const int64_t *ends,
           int want_episode)
{
    int64_t p_copy[TILE];
    for (Py_ssize_t lo = 0; lo < size; lo += TILE) {
        Py_ssize_t m = size - lo < TILE ? size - lo : TILE;
        const int64_t *p = pos + lo;
        if (p == dst + lo) { /* in place: keep the positions for a fix-up */
            memcpy(p_copy, p, (size_t)m * 8);
            p = p_copy;
        }
        if (lookup_fast(L, p, dst + lo, m, ends, want_episode)) {
            for (Py_ssize_t i = 0; i < m; i++) { /* some bucket needs more steps: exact, element-wise */
                int64_t ep = episode_of(L, p[i]);
                dst[lo + i] = want_episode ? ep : p[i] + (ends[ep] - L->cum[ep]);
            }
        }
    }
}

static int
parse_lookup(PyObject *lk, lookup_t *L, Py_buffer *cum, Py_buffer *table, Py_buffer *ends)
{
    PyObject *cum_o, *table_o, *ends_o;
    unsigned int shift;
    int steps;
    if (!PyArg_ParseTuple(lk, "OOIiO:lookup", &cum_o, &table_o, &shift, &steps, &ends_o)) {
        return -1;
    }
    if (shift > 62 || steps < 0 || steps > 64) {
        PyErr_SetString(PyExc_ValueError, "shift must be in [0, 62] and steps in [0, 64]");
        return -1;
    }
    if (get_i64(cum_o, cum, 0, "cum") < 0) {
        return -1;
    }
    if (PyObject_GetBuffer(table_o, table, PyBUF_C_CONTIGUOUS) < 0) {
        PyBuffer_Release(cum);
        return -1;
    }
    if (get_i64(ends_o, ends, 0, "ends") < 0) {
        PyBuffer_Release(cum);
        PyBuffer_Release(table);
        return -1;
    }
    L->cum = (const int64_t *)cum->buf;
    L->e = cum->len / 8 - 1;
    L->table = table->buf;
    L->table32 = table->itemsize == 4;
    L->nbuckets = table->itemsize ? table->len / table->itemsize : 0;
    L->shift = shift;
    L->steps = steps;
    if (L->e < 1 || L->cum[L->e] != INT64_MAX || (table->itemsize != 4 && table->itemsize != 8) ||
        L->nbuckets < 1 || ends->len / 8 < L->e) {
        PyErr_SetString(PyExc_ValueError, "malformed lookup tables (cum needs a sentinel, table 4/8 bytes)");
        PyBuffer_Release(cum);
        PyBuffer_Release(table);
        PyBuffer_Release(ends);
        return -1;
    }
    return 0;
}

static PyObject *
k_lookup(PyObject *Py_UNUSED(self), PyObject *args)
{
    PyObject *pos_o, *dst_o, *lk_o;
    int want_episode;
    if (!PyArg_ParseTuple(args, "OOO!p:lookup", &pos_o, &dst_o, &PyTuple_Type, &lk_o, &want_episode)) {
        return NULL;
    }
    lookup_t L;
    Py_buffer cum, table, ends, pos, dst;
    if (parse_lookup(lk_o, &L, &cum, &table, &ends) < 0) {
        return NULL;
    }
    PyObject *result = NULL;
    int have_pos = 0, have_dst = 0;
    if (get_i64(pos_o, &pos, 0, "pos") < 0) {
        goto done;
    }
    have_pos = 1;
    if (get_i64(dst_o, &dst, 1, "dst") < 0) {
        goto done;
    }
    have_dst = 1;
    if (pos.len != dst.len) {
        PyErr_SetString(PyExc_ValueError, "pos and dst must have the same length");
        goto done;
    }
    Py_ssize_t size = pos.len / 8;
    const int64_t *p = (const int64_t *)pos.buf;
    int64_t last = L.cum[L.e - 1];
    uint64_t bad = 0;
    for (Py_ssize_t i = 0; i < size; i++) {
        bad |= (uint64_t)(p[i] < 0) | (uint64_t)(p[i] >= last);
    }
    if (bad) {
        PyErr_SetString(PyExc_ValueError, "pos holds a position outside [0, num_frames)");
        goto done;
    }
    const int64_t *e = (const int64_t *)ends.buf;
    if (size >= NOGIL_MIN) {
        Py_BEGIN_ALLOW_THREADS lookup_run(&L, p, (int64_t *)dst.buf, size, e, want_episode);
        Py_END_ALLOW_THREADS
    }
    else {
        lookup_run(&L, p, (int64_t *)dst.buf, size, e, want_episode);
    }
    result = Py_NewRef(Py_None);
done:
    if (have_pos) {
        PyBuffer_Release(&pos);
    }
    if (have_dst) {
        PyBuffer_Release(&dst);
    }
    PyBuffer_Release(&cum);
    PyBuffer_Release(&table);
    PyBuffer_Release(&ends);
    return result;
}

/* ------------------------------------------------------------------------------------------------ */
/* frames(dst, start, step, wrap, perm, lookup, base): the fused path for order="frames"
 *   g_k  = (start + k * step) mod wrap          global position of the rank's k-th sample
 *   u_k  = perm(g_k)                             (the Feistel network, a materialized permutation
 *                                                 array (randperm), or the identity when None)
 *   dst_k = frame of u_k                         (u_k + base when lookup is None)
 * tile by tile, so nothing but dst is written to memory. */

/* a * b mod m for m <= 2**62 */
static inline uint64_t
mulmod(uint64_t a, uint64_t b, uint64_t m)
{
#ifdef __SIZEOF_INT128__
    return (uint64_t)(((unsigned __int128)a * b) % m);
#else
    uint64_t r = 0;
    a %= m;
    b %= m;
    while (b) { /* double and add: every partial sum stays below 2**63 */
        if (b & 1) {
            r = (r + a) % m;
        }
        a = (a << 1) % m;
        b >>= 1;
    }
    return r;
#endif
}

typedef struct {
    uint64_t start, step, wrap;
    const feistel_t *F;    /* NULL: no Feistel network */
    const int64_t *order;  /* a materialized permutation (randperm), or NULL */
    const lookup_t *L;     /* NULL: + base */
    const int64_t *ends;
    int64_t base;
    int *bad;              /* set when order holds a value outside [0, wrap) */
} frames_job;

static void
frames_run(const frames_job *J, int64_t *dst, Py_ssize_t k0, Py_ssize_t size)
{
    uint64_t x[TILE], y[TILE];
    const uint64_t wrap = J->wrap, step = J->step;
    for (Py_ssize_t lo = 0; lo < size; lo += TILE) {
        Py_ssize_t m = size - lo < TILE ? size - lo : TILE;
        uint64_t g = (J->start + mulmod((uint64_t)(k0 + lo), step, wrap)) % wrap;
        for (Py_ssize_t i = 0; i < m; i++) { /* g, step < wrap <= 2**62: no overflow, one subtraction */
            x[i] = g;
            g += step;
            g -= (g >= wrap) ? wrap : 0;
        }
        uint64_t *u = x;
        if (J->F != NULL) {
            feistel_tile(J->F, x, y, m, 0);
            u = y;
        }
        else if (J->order != NULL) {
            int bad = 0;
            for (Py_ssize_t i = 0; i < m; i++) {
                uint64_t v = (uint64_t)J->order[x[i]];
                int out = v >= wrap;
                bad |= out;
                y[i] = out ? 0 : v; /* memory-safe whatever the array holds; reported below */
            }
            if (bad) {
                *J->bad = 1;
            }
            u = y;
        }
        if (J->L != NULL) {
            lookup_run(J->L, (const int64_t *)u, dst + lo, m, J->ends, 0);
        }
        else {
            for (Py_ssize_t i = 0; i < m; i++) {
                dst[lo + i] = (int64_t)u[i] + J->base;
            }
        }
    }
}

typedef struct {
    const frames_job *J;
    int64_t *dst;
} frames_ctx;

static void
frames_part(const void *ctx, Py_ssize_t lo, Py_ssize_t hi)
{
    const frames_ctx *C = (const frames_ctx *)ctx;
    frames_run(C->J, C->dst + lo, lo, hi - lo);
}

static PyObject *
k_frames(PyObject *Py_UNUSED(self), PyObject *args)
{
    PyObject *dst_o, *perm_o, *lk_o;
    unsigned long long start, step, wrap;
    long long base;
    int threads = 1;
    if (!PyArg_ParseTuple(args, "OKKKOOL|i:frames", &dst_o, &start, &step, &wrap, &perm_o, &lk_o, &base,
                          &threads)) {
        return NULL;
    }
    if (wrap < 1 || step > (1ULL << 62) || wrap > (1ULL << 62)) {
        PyErr_SetString(PyExc_ValueError, "wrap must be in [1, 2**62] and step in [0, 2**62]");
        return NULL;
    }
    feistel_t F;
    lookup_t L;
    int bad_order = 0;
    frames_job J = {start % wrap, step % wrap, wrap, NULL, NULL, NULL, NULL, base, &bad_order}; /* mod wrap */
    Py_buffer order;
    int have_order = 0;
    if (perm_o != Py_None && !PyTuple_Check(perm_o)) { /* a materialized permutation of [0, wrap) */
        if (get_i64(perm_o, &order, 0, "perm") < 0) {
            return NULL;
        }
        if ((uint64_t)(order.len / 8) != wrap) {
            PyErr_SetString(PyExc_ValueError, "a permutation array must hold wrap values");
            PyBuffer_Release(&order);
            return NULL;
        }
        have_order = 1;
        J.order = (const int64_t *)order.buf;
    }
    else if (perm_o != Py_None) {
        unsigned long long n;
        unsigned int h;
        PyObject *keys_o;
        if (!PyArg_ParseTuple(perm_o, "KIO:perm", &n, &h, &keys_o) || parse_feistel(&F, n, h, keys_o) < 0) {
            return NULL;
        }
        if (F.n != wrap) {
            PyErr_SetString(PyExc_ValueError, "the permutation's n must equal wrap");
            return NULL;
        }
        J.F = &F;
    }
    Py_buffer dst, cum, table, ends;
    if (lk_o != Py_None) {
        if (!PyTuple_Check(lk_o) || parse_lookup(lk_o, &L, &cum, &table, &ends) < 0) {
            if (!PyErr_Occurred()) {
                PyErr_SetString(PyExc_TypeError, "lookup must be a tuple or None");
            }
            goto fail_order;
        }
        if ((uint64_t)L.cum[L.e - 1] != wrap) {
            PyErr_SetString(PyExc_ValueError, "the lookup's frame count must equal wrap");
            goto fail_lookup;
        }
        J.L = &L;
        J.ends = (const int64_t *)ends.buf;
    }
    if (get_i64(dst_o, &dst, 1, "dst") < 0) {
        goto fail_lookup;
    }
    Py_ssize_t size = dst.len / 8;
    frames_ctx C = {&J, (int64_t *)dst.buf};
    if (size >= NOGIL_MIN) {
        Py_BEGIN_ALLOW_THREADS run_parts(frames_part, &C, size, threads);
        Py_END_ALLOW_THREADS
    }
    else {
        frames_run(&J, (int64_t *)dst.buf, 0, size);
    }
    PyBuffer_Release(&dst);
    if (J.L != NULL) {
        PyBuffer_Release(&cum);
        PyBuffer_Release(&table);
        PyBuffer_Release(&ends);
    }
    if (have_order) {
        PyBuffer_Release(&order);
    }
    if (bad_order) {
        PyErr_SetString(PyExc_ValueError, "perm holds a value outside [0, wrap)");
        return NULL;
    }
    Py_RETURN_NONE;
fail_lookup:
    if (J.L != NULL || lk_o != Py_None) {
        PyBuffer_Release(&cum);
        PyBuffer_Release(&table);
        PyBuffer_Release(&ends);
    }
fail_order:
    if (have_order) {
        PyBuffer_Release(&order);
    }
    return NULL;
}

/* ------------------------------------------------------------------------------------------------ */
/* runs(dst, firsts, lens): dst = firsts[0], firsts[0] + 1, ..., (lens[0] values), firsts[1], ... --
 * the frames of consecutive units (episodes, blocks) of a contiguous position range, written once
 * (numpy needs np.repeat, np.arange and an add: three passes and two temporaries) */

static PyObject *
k_runs(PyObject *Py_UNUSED(self), PyObject *args)
{
    PyObject *dst_o, *firsts_o, *lens_o;
    if (!PyArg_ParseTuple(args, "OOO:runs", &dst_o, &firsts_o, &lens_o)) {
        return NULL;
    }
    Py_buffer dst, firsts, lens;
    if (get_i64(dst_o, &dst, 1, "dst") < 0) {
        return NULL;
    }
    if (get_i64(firsts_o, &firsts, 0, "firsts") < 0) {
        PyBuffer_Release(&dst);
        return NULL;
    }
    if (get_i64(lens_o, &lens, 0, "lens") < 0) {
        PyBuffer_Release(&dst);
        PyBuffer_Release(&firsts);
        return NULL;
    }
    PyObject *result = NULL;
    Py_ssize_t m = firsts.len / 8, size = dst.len / 8;
    const int64_t *f = (const int64_t *)firsts.buf, *l = (const int64_t *)lens.buf;
    if (lens.len != firsts.len) {
        PyErr_SetString(PyExc_ValueError, "firsts and lens must have the same length");
        goto done;
    }
    Py_ssize_t total = 0;
    for (Py_ssize_t j = 0; j < m; j++) {
        if (l[j] < 0 || l[j] > size - total) {
            PyErr_SetString(PyExc_ValueError, "lens must be >= 0 and sum to len(dst)");
            goto done;
        }
        total += (Py_ssize_t)l[j];
    }
    if (total != size) {
        PyErr_SetString(PyExc_ValueError, "lens must be >= 0 and sum to len(dst)");
        goto done;
    }
    int64_t *d = (int64_t *)dst.buf;
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t j = 0; j < m; j++) {
        int64_t v = f[j];
        for (int64_t t = 0, n = l[j]; t < n; t++) {
            *d++ = v + t;
        }
    }
    Py_END_ALLOW_THREADS
    result = Py_NewRef(Py_None);
done:
    PyBuffer_Release(&dst);
    PyBuffer_Release(&firsts);
    PyBuffer_Release(&lens);
    return result;
}

/* ------------------------------------------------------------------------------------------------ */
/* seedseq(entropy, n_words): numpy.random.SeedSequence(list(entropy)).generate_state(n_words, uint64)
 * for non-negative entropy ints below 2**64 (no spawn key; pool size 4), as bytes. numpy's algorithm
 * (O'Neill's seed_seq design, numpy/random/bit_generator.pyx), transcribed; the tests compare it with
 * numpy on random inputs. A restore derives its Feistel keys with it: ~0.1 us instead of ~10 us. */

#define SS_INIT_A 0x43b0d7e5U
#define SS_MULT_A 0x931e8875U
#define SS_INIT_B 0x8b51f9ddU
#define SS_MULT_B 0x58f38dedU
#define SS_MIX_L 0xca01f9ddU
#define SS_MIX_R 0x4973f715U
#define SS_POOL 4
#define SS_MAX_WORDS 64

static inline uint32_t
ss_hashmix(uint32_t value, uint32_t *hash_const)
{
    value ^= *hash_const;
    *hash_const *= SS_MULT_A;
    value *= *hash_const;
    value ^= value >> 16;
    return value;
}

static inline uint32_t
ss_mix(uint32_t x, uint32_t y)
{
    uint32_t r = SS_MIX_L * x - SS_MIX_R * y;
    r ^= r >> 16;
    return r;
}

static PyObject *
k_seedseq(PyObject *Py_UNUSED(self), PyObject *args)
{
    PyObject *entropy;
    int n_words;
    if (!PyArg_ParseTuple(args, "O!i:seedseq", &PyTuple_Type, &entropy, &n_words)) {
        return NULL;
    }
    Py_ssize_t ne = PyTuple_GET_SIZE(entropy);
    if (ne < 1 || ne > SS_MAX_WORDS / 2 || n_words < 1 || n_words > SS_MAX_WORDS) {
        PyErr_SetString(PyExc_ValueError, "seedseq takes 1 to 32 entropy ints and 1 to 64 words");
        return NULL;
    }
    uint32_t words[SS_MAX_WORDS];
    Py_ssize_t nw = 0;
    for (Py_ssize_t i = 0; i < ne; i++) {
        PyObject *o = PyTuple_GET_ITEM(entropy, i);
        if (!PyLong_Check(o)) {
            PyErr_SetString(PyExc_TypeError, "entropy must hold ints");
            return NULL;
        }
        unsigned long long v = PyLong_AsUnsignedLongLong(o); /* raises for < 0 or >= 2**64 */
        if (v == (unsigned long long)-1 && PyErr_Occurred()) {
            return NULL;
        }
        words[nw++] = (uint32_t)v; /* little-endian 32-bit words; 0 is one word */
        if (v >> 32) {
            words[nw++] = (uint32_t)(v >> 32);
        }
    }
    uint32_t pool[SS_POOL];
    uint32_t hc = SS_INIT_A;
    for (int i = 0; i < SS_POOL; i++) {
        pool[i] = ss_hashmix(i < nw ? words[i] : 0U, &hc);
    }
    for (int src = 0; src < SS_POOL; src++) {
        for (int dst = 0; dst < SS_POOL; dst++) {
            if (src != dst) {
                pool[dst] = ss_mix(pool[dst], ss_hashmix(pool[src], &hc));
            }
        }
    }
    for (Py_ssize_t src = SS_POOL; src < nw; src++) {
        for (int dst = 0; dst < SS_POOL; dst++) {
            pool[dst] = ss_mix(pool[dst], ss_hashmix(words[src], &hc));
        }
    }
    uint32_t state[2 * SS_MAX_WORDS];
    uint32_t hb = SS_INIT_B;
    for (int i = 0; i < 2 * n_words; i++) {
        uint32_t v = pool[i % SS_POOL];
        v ^= hb;
        hb *= SS_MULT_B;
        v *= hb;
        v ^= v >> 16;
        state[i] = v;
    }
    unsigned char out[8 * SS_MAX_WORDS];
    for (int i = 0; i < n_words; i++) { /* uint64 word i = state[2i] | state[2i+1] << 32, little-endian */
        uint64_t w = (uint64_t)state[2 * i] | ((uint64_t)state[2 * i + 1] << 32);
        for (int b = 0; b < 8; b++) {
            out[8 * i + b] = (unsigned char)(w >> (8 * b));
        }
    }
    return PyBytes_FromStringAndSize((const char *)out, 8 * (Py_ssize_t)n_words);
}

/* ------------------------------------------------------------------------------------------------ */
/* IntIter: Python ints from an int64 buffer, one at a time (no list of boxed ints is built) */

typedef struct {
    PyObject_HEAD
    Py_buffer view;
    int held;
    const int64_t *data;
    Py_ssize_t pos, len;
} IntIter;

static void
intiter_release(IntIter *it)
{
    if (it->held) {
        it->held = 0;
        PyBuffer_Release(&it->view);
    }
    it->data = NULL;
    it->pos = it->len = 0;
}

static PyObject *
intiter_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    PyObject *obj;
    if (kwds != NULL && PyDict_GET_SIZE(kwds)) {
        PyErr_SetString(PyExc_TypeError, "IntIter takes no keyword arguments");
        return NULL;
    }
    if (!PyArg_ParseTuple(args, "O:IntIter", &obj)) {
        return NULL;
    }
    IntIter *it = (IntIter *)type->tp_alloc(type, 0);
    if (it == NULL) {
        return NULL;
    }
    if (get_i64(obj, &it->view, 0, "array") < 0) {
        Py_DECREF(it);
        return NULL;
    }
    it->held = 1;
    it->data = (const int64_t *)it->view.buf;
    it->len = it->view.len / 8;
    it->pos = 0;
    if (it->len == 0) {
        intiter_release(it);
    }
    return (PyObject *)it;
}

static void
intiter_dealloc(IntIter *it)
{
    intiter_release(it);
    Py_TYPE(it)->tp_free((PyObject *)it);
}

static PyObject *
intiter_next(IntIter *it)
{
    if (it->pos < it->len) {
        PyObject *v = PyLong_FromLongLong(it->data[it->pos]);
        if (++it->pos == it->len) {
            intiter_release(it); /* the buffer is freed as soon as its last item is out */
            it->pos = it->len = 0;
        }
        return v;
    }
    return NULL;
}

static PyObject *
intiter_length_hint(IntIter *it, PyObject *Py_UNUSED(ignored))
{
    return PyLong_FromSsize_t(it->len - it->pos);
}

static PyMethodDef intiter_methods[] = {
    {"__length_hint__", (PyCFunction)intiter_length_hint, METH_NOARGS, "Items left."},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject IntIterType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "episode_sampler._kernel.IntIter",
    .tp_basicsize = sizeof(IntIter),
    .tp_dealloc = (destructor)intiter_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "IntIter(array): Python ints from a C-contiguous int64 buffer; __length_hint__ is exact.",
    .tp_iter = PyObject_SelfIter,
    .tp_iternext = (iternextfunc)intiter_next,
    .tp_methods = intiter_methods,
    .tp_new = intiter_new,
};

/* ------------------------------------------------------------------------------------------------ */

static PyMethodDef kernel_methods[] = {
    {"feistel", k_feistel, METH_VARARGS,
     "feistel(src, dst, n, half_bits, keys, decrypt, threads=1): dst = E(src) (or D) with cycle walking into "
     "[0, n)."},
    {"lookup", k_lookup, METH_VARARGS,
     "lookup(pos, dst, tables, want_episode): episode or frame of each position through the bucket "
     "table; tables is (cum, table, shift, steps, ends)."},
    {"frames", k_frames, METH_VARARGS,
     "frames(dst, start, step, wrap, perm, lookup, base, threads=1): dst[k] = frame of perm((start + k*step) % wrap); "
     "perm is (n, half_bits, keys), an int64 permutation array of wrap values, or None; lookup is "
     "(cum, table, shift, steps, ends) or None (+ base)."},
    {"runs", k_runs, METH_VARARGS,
     "runs(dst, firsts, lens): dst = the runs firsts[j], firsts[j] + 1, ... of lens[j] values, in order."},
    {"seedseq", k_seedseq, METH_VARARGS,
     "seedseq(entropy, n_words): numpy.random.SeedSequence(list(entropy)).generate_state(n_words, "
     "numpy.uint64) as little-endian bytes (entropy: a tuple of ints in [0, 2**64))."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef kernel_module = {
    PyModuleDef_HEAD_INIT, "_kernel", "Compiled hot loops of episode-sampler (see _kernel.c).", -1,
    kernel_methods,
};

PyMODINIT_FUNC
PyInit__kernel(void)
{
    if (PyType_Ready(&IntIterType) < 0) {
        return NULL;
    }
    PyObject *m = PyModule_Create(&kernel_module);
    if (m == NULL) {
        return NULL;
    }
    Py_INCREF(&IntIterType);
    if (PyModule_AddObject(m, "IntIter", (PyObject *)&IntIterType) < 0) {
        Py_DECREF(&IntIterType);
        Py_DECREF(m);
        return NULL;
    }
    if (PyModule_AddIntConstant(m, "ABI", 1) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
