/*
 * Compiled kernels of the Mode S receiver: the IQ magnitude, the noise floor's
 * clipped mean, the preamble prefilter, the preamble fit's plausibility screen and
 * best hypothesis, the matched filter, the occupancy count, the fast slice's
 * decisions, the sequence detector's branch metrics and trellis sweep, and the CRC
 * residuals of the sliced rows. hardware/modes/native.py loads this module and
 * describes when it is used. The numpy code it replaces stays as its test oracle
 * (tests/hardware/modes/test_native_kernels.py, test_prefilter.py): magnitude.py,
 * noise.clipped_noise_floor, Demodulator._prefilter_chunk,
 * PulseModel.preamble_correlations with Demodulator._plausible and
 * PulseModel.preamble_pick, PulseModel._filter, PulseModel.held_bits,
 * PulseModel.slice, PulseModel._expected_pulses with sequence_slice's metric lines,
 * slicer._max_plus_sweep, and crc_rows.mixed_residuals.
 *
 * Why compiled: numpy runs every step of these stages as a pass over whole arrays
 * (for a few hundred rows, the call costs more than its arithmetic); here the sums
 * stay in L1 and a row's steps run together.
 *
 * Same numbers: float32 arithmetic, each operation rounded on its own, in numpy's
 * order where numpy's order is defined (everything but the screen, bit for bit; the
 * screen's correlations differ from BLAS's by rounding; the noise floor's float64
 * sums and the CRC's XORs are exact in any order). The build passes
 * -ffp-contract=off so that no compiler fuses a multiply and an add (gcc does on
 * aarch64 by default), and nothing here uses -ffast-math. Buffers arrive through
 * the buffer protocol (numpy arrays, C-contiguous), so the module needs no numpy
 * headers to build. The GIL is released while the loops run: the daemon's other
 * sources keep going.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* On x86-64, the loops are compiled twice, for the baseline (SSE2) and for AVX2,
 * and the loader picks the one the CPU runs (gcc's function multiversioning).
 * Both give the same numbers: the vector width changes how many samples one
 * instruction takes, not the arithmetic. aarch64's baseline has NEON. */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define KERNEL_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define KERNEL_CLONES
#endif

#define MAX_OFFSETS 8
#define MAX_BITS 112 /* a long frame */
#define MAX_TAPS 64 /* matched-filter taps per bit */
#define BLOCK 4096 /* samples per pass of the prefilter: its sums stay in L1 */

/* |IQ| of n interleaved u8 samples: sqrt((I - 127.5)^2 + (Q - 127.5)^2) in float32.
 * The squares and their sum are exact in float32 (at most 19 significant bits)
 * and sqrtf rounds correctly, so this is the numpy table's every entry
 * (magnitude.magnitude_table; tests/test_native_kernels.py checks all 65 536):
 * arithmetic in vector registers, where a table lookup is a scalar load a sample. */
KERNEL_CLONES
static void magnitude_run(const uint8_t *restrict iq, Py_ssize_t n, float *restrict out) {
    for (Py_ssize_t k = 0; k < n; k++) {
        const float i = (float)iq[2 * k] - 127.5f;
        const float q = (float)iq[2 * k + 1] - 127.5f;
        out[k] = sqrtf(i * i + q * q);
    }
}

/* magnitude(iq, out): the magnitude of each u8 IQ pair into out (float32). */
static PyObject *magnitude(PyObject *self, PyObject *args) {
    Py_buffer iq, out;
    (void)self;
    if (!PyArg_ParseTuple(args, "y*w*", &iq, &out)) {
        return NULL;
    }
    PyObject *result = NULL;
    Py_ssize_t n = iq.len / 2;
    if (iq.len % 2) {
        PyErr_SetString(PyExc_ValueError, "interleaved IQ needs an even number of bytes");
    } else if (out.len < n * (Py_ssize_t)sizeof(float)) {
        PyErr_SetString(PyExc_ValueError, "out is shorter than the IQ samples");
    } else {
        Py_BEGIN_ALLOW_THREADS
        magnitude_run((const uint8_t *)iq.buf, n, (float *)out.buf);
        Py_END_ALLOW_THREADS
        result = Py_None;
        Py_INCREF(result);
    }
    PyBuffer_Release(&iq);
    PyBuffer_Release(&out);
    return result;
}

/* The prefilter's geometry and thresholds (see Demodulator._prefilter_chunk). */
typedef struct {
    int width;            /* samples per window sum */
    int pulse[4];         /* pulse window offsets from the preamble start */
    int quiet[MAX_OFFSETS];
    int nquiet;
    int quiet_pair;       /* quiet[2] - quiet[1] == pulse[1] - pulse[0]: summed as a pair */
    float energy_min;     /* the pulse energy must exceed this */
    float floor_min;      /* every pulse window must exceed this */
    float quiet_slope;    /* quiet sum < energy * slope + intercept */
    float quiet_intercept;
} Prefilter;

/* Window sums w[j] = mag[x + j] + mag[x + j + 1] + ..., added left to right (as
 * numpy does: one pass a term). */
static void window_sums(const float *restrict mag, Py_ssize_t count, int width,
                        float *restrict w) {
    for (Py_ssize_t j = 0; j < count; j++) {
        w[j] = mag[j] + mag[j + 1];
    }
    for (int m = 2; m < width; m++) {
        for (Py_ssize_t j = 0; j < count; j++) {
            w[j] += mag[j + m];
        }
    }
}

/* Whether the sample with pulse energy *t (t[-1], t[1] its neighbours'), pulse
 * windows at w + pulse[i] and quiet sum `quiet` passes every test. */
static inline uint8_t passes(const Prefilter *p, const float *t, const float *w, float quiet) {
    const float centre = t[0];
    float bound = centre * p->quiet_slope;
    bound += p->quiet_intercept;
    return (uint8_t)((centre > p->energy_min) & (centre >= t[-1]) & (centre > t[1]) &
                     (w[p->pulse[0]] > p->floor_min) & (w[p->pulse[1]] > p->floor_min) &
                     (w[p->pulse[2]] > p->floor_min) & (w[p->pulse[3]] > p->floor_min) &
                     (quiet < bound));
}

/* Candidates in [start, stop) into out; returns how many. The scratch arrays w, t
 * and q hold BLOCK + span + 2 floats, pass BLOCK bytes.
 *
 * Each test is a loop over the block that the compiler vectorizes, as numpy's
 * passes are; but the sums stay in L1, and the tests are one pass. A scalar loop
 * with early exits was 2x slower than numpy on dense air: ~50 instructions a
 * sample, and its branches mispredicted. */
KERNEL_CLONES
static Py_ssize_t prefilter_run(const Prefilter *params, const float *restrict mag,
                                Py_ssize_t start, Py_ssize_t stop, int span, float *restrict w,
                                float *restrict t, float *restrict q, uint8_t *restrict pass,
                                int64_t *restrict out) {
    /* A local copy: the byte stores to pass[] could alias *params. */
    const Prefilter copy = *params, *p = &copy;
    const int p0 = p->pulse[0], p1 = p->pulse[1], p2 = p->pulse[2], p3 = p->pulse[3];
    const int q0 = p->quiet[0], q1 = p->quiet[1];
    Py_ssize_t found = 0;
    for (Py_ssize_t b0 = start; b0 < stop; b0 += BLOCK) {
        const Py_ssize_t b1 = b0 + BLOCK < stop ? b0 + BLOCK : stop;
        const Py_ssize_t n = b1 - b0;
        /* w[j] is the window at sample b0 - 1 + j, t[j] the pulse energy there. */
        window_sums(mag + b0 - 1, n + 2 + span, p->width, w);
        for (Py_ssize_t j = 0; j < n + 2; j++) {
            t[j] = (w[j + p0] + w[j + p1]) + (w[j + p2] + w[j + p3]);
        }
        /* The tests at samples b0 ..: ws[j] is the window at b0 + j, tc[j] the
         * pulse energy there. */
        const float *restrict ws = w + 1;
        const float *restrict tc = t + 1;
        if (p->quiet_pair) {
            for (Py_ssize_t j = 0; j < n; j++) {
                const float quiet = ws[j + q0] + (ws[j + q1 + p0] + ws[j + q1 + p1]);
                pass[j] = passes(p, tc + j, ws + j, quiet);
            }
        } else {
            for (Py_ssize_t j = 0; j < n; j++) {
                q[j] = ws[j + q0] + ws[j + q1];
            }
            for (int k = 2; k < p->nquiet; k++) {
                const int qk = p->quiet[k];
                for (Py_ssize_t j = 0; j < n; j++) {
                    q[j] += ws[j + qk];
                }
            }
            for (Py_ssize_t j = 0; j < n; j++) {
                pass[j] = passes(p, tc + j, ws + j, q[j]);
            }
        }
        /* Few samples pass (4 % on modes1.bin): eight flags (bytes 0 or 1) at a
         * time, each set one found by its lowest set bit. */
        Py_ssize_t j = 0;
        for (; j + 8 <= n; j += 8) {
            uint64_t eight;
            memcpy(&eight, pass + j, 8);
            while (eight) {
                const int byte = __builtin_ctzll(eight) >> 3;
                out[found++] = (int64_t)(b0 + j + byte);
                eight &= eight - 1;
            }
        }
        for (; j < n; j++) {
            out[found] = (int64_t)(b0 + j);
            found += pass[j];
        }
    }
    return found;
}

/* prefilter(mag, start, stop, out, width, pulse, quiet, quiet_pair, energy_min,
 * floor_min, quiet_slope, quiet_intercept) -> count: the preamble starts in
 * [start, stop) that pass, written to out (int64, at least stop - start long). */
static PyObject *prefilter(PyObject *self, PyObject *args) {
    Py_buffer mag, out;
    Py_ssize_t start, stop;
    PyObject *pulse_seq, *quiet_seq;
    Prefilter p;
    (void)self;
    if (!PyArg_ParseTuple(args, "y*nnw*iOOpffff", &mag, &start, &stop, &out, &p.width,
                          &pulse_seq, &quiet_seq, &p.quiet_pair, &p.energy_min, &p.floor_min,
                          &p.quiet_slope, &p.quiet_intercept)) {
        return NULL;
    }
    PyObject *result = NULL;
    PyObject *pulse_fast = PySequence_Fast(pulse_seq, "pulse offsets must be a sequence");
    PyObject *quiet_fast =
        pulse_fast ? PySequence_Fast(quiet_seq, "quiet offsets must be a sequence") : NULL;
    if (quiet_fast == NULL) {
        goto done;
    }
    Py_ssize_t npulse = PySequence_Fast_GET_SIZE(pulse_fast);
    p.nquiet = (int)PySequence_Fast_GET_SIZE(quiet_fast);
    if (npulse != 4 || p.nquiet < 2 || p.nquiet > MAX_OFFSETS || (p.quiet_pair && p.nquiet != 3)) {
        PyErr_SetString(PyExc_ValueError,
                        "need 4 pulse offsets and 2-8 quiet offsets (3 in pairs)");
        goto done;
    }
    int span = 0;
    for (int i = 0; i < 4 + p.nquiet; i++) {
        PyObject *item = i < 4 ? PySequence_Fast_GET_ITEM(pulse_fast, i)
                               : PySequence_Fast_GET_ITEM(quiet_fast, i - 4);
        long v = PyLong_AsLong(item);
        if (v == -1 && PyErr_Occurred()) {
            goto done;
        }
        if (v < 0 || v > 64) {
            PyErr_SetString(PyExc_ValueError, "window offsets must be within 0..64");
            goto done;
        }
        if (i < 4) {
            p.pulse[i] = (int)v;
        } else {
            p.quiet[i - 4] = (int)v;
        }
        span = v > span ? (int)v : span;
    }
    if (p.pulse[3] - p.pulse[2] != p.pulse[1] - p.pulse[0]) {
        PyErr_SetString(PyExc_ValueError, "the pulses must come in two pairs of one shape");
        goto done;
    }
    if (p.quiet_pair) {
        int second = p.quiet[1] + p.pulse[1];
        span = second > span ? second : span;
    }
    if (p.width < 2 || p.width > 16) {
        PyErr_SetString(PyExc_ValueError, "window width must be within 2..16");
        goto done;
    }
    Py_ssize_t nmag = mag.len / (Py_ssize_t)sizeof(float);
    if (stop <= start) {
        result = PyLong_FromSsize_t(0);
        goto done;
    }
    /* Reads samples start - 1 up to stop + span + width - 1. */
    if (start < 1 || stop + 1 + span + p.width > nmag) {
        PyErr_SetString(PyExc_ValueError, "prefilter range reads outside mag");
        goto done;
    }
    if (out.len < (stop - start) * (Py_ssize_t)sizeof(int64_t)) {
        PyErr_SetString(PyExc_ValueError, "out is shorter than stop - start");
        goto done;
    }
    float *w = malloc(sizeof(float) * 3 * (BLOCK + span + 2));
    uint8_t *pass = malloc(BLOCK);
    if (w == NULL || pass == NULL) {
        free(w);
        free(pass);
        PyErr_NoMemory();
        goto done;
    }
    float *t = w + (BLOCK + span + 2), *q = t + (BLOCK + span + 2);
    Py_ssize_t found;
    Py_BEGIN_ALLOW_THREADS
    found = prefilter_run(&p, (const float *)mag.buf, start, stop, span, w, t, q, pass,
                          (int64_t *)out.buf);
    Py_END_ALLOW_THREADS
    free(w);
    free(pass);
    result = PyLong_FromSsize_t(found);
done:
    Py_XDECREF(pulse_fast);
    Py_XDECREF(quiet_fast);
    PyBuffer_Release(&mag);
    PyBuffer_Release(&out);
    return result;
}

/* The preamble fit's screen (Demodulator.fit_preambles): for each candidate, the
 * window of `len` samples at mag[origin], its best correlation with the unit
 * templates about the noise mean mu, max_h <m, U_h> - mu sum(U_h), and its energy
 * about mu, sum m^2 - mu (2 sum m - len mu). `unit_t` is (len, hyps), the templates
 * transposed, so that one sample updates every hypothesis in vector registers.
 * Sums run left to right: numpy's matmul and einsum add in other orders, so the
 * two agree to float32 rounding, not bit for bit (tests/test_native_kernels.py). */
#define MAX_HYPS 32
#define MAX_SCREEN_LEN 64
#define SCREEN_AHEAD 16 /* rows */

/* Eight float32 lanes (gcc's and clang's vector extension: one AVX register, or
 * two SSE2 or NEON ones). */
typedef float v8f __attribute__((vector_size(32)));
typedef int32_t v8i __attribute__((vector_size(32)));
typedef float v4f __attribute__((vector_size(16)));
typedef double v4d __attribute__((vector_size(32)));

/* Lane-wise max (a comparison and a select: vmaxps where there is one). */
static inline v8f max8(v8f a, v8f b) {
    const v8i a_wins = a > b;
    return (v8f)(((v8i)a & a_wins) | ((v8i)b & ~a_wins));
}

/* The largest of the eight lanes, by three swaps of halves in registers. */
static inline float hmax8(v8f v) {
#ifdef __clang__
    v = max8(v, __builtin_shufflevector(v, v, 4, 5, 6, 7, 0, 1, 2, 3));
    v = max8(v, __builtin_shufflevector(v, v, 2, 3, 0, 1, 6, 7, 4, 5));
    v = max8(v, __builtin_shufflevector(v, v, 1, 0, 3, 2, 5, 4, 7, 6));
#else
    v = max8(v, __builtin_shuffle(v, (v8i){4, 5, 6, 7, 0, 1, 2, 3}));
    v = max8(v, __builtin_shuffle(v, (v8i){2, 3, 0, 1, 6, 7, 4, 5}));
    v = max8(v, __builtin_shuffle(v, (v8i){1, 0, 3, 2, 5, 4, 7, 6}));
#endif
    return v[0];
}

/* One window's correlations with the `nvec` x 8 padded template columns about
 * the noise mean mu, into corr (padded lanes 0), and its energy about mu: the
 * accumulators stay in vector registers, each sample broadcast against a row of
 * the templates. Two sets of accumulators, even and odd samples: one chain of
 * dependent adds per hypothesis was the time (latency, not arithmetic). */
static inline __attribute__((always_inline)) float screen_row(
    const float *restrict x, float mu, const v8f *restrict padded, const v8f *restrict sums8,
    int len, const int nvec, v8f *restrict corr) {
    v8f even[MAX_HYPS / 8], odd[MAX_HYPS / 8];
    for (int k = 0; k < nvec; k++) {
        even[k] = (v8f){0};
        odd[k] = (v8f){0};
    }
    float sum = 0.0f, squares = 0.0f;
    int l = 0;
    for (; l + 2 <= len; l += 2) {
        const float v0 = x[l], v1 = x[l + 1];
        sum += v0 + v1;
        squares += v0 * v0 + v1 * v1;
        const v8f *restrict u0 = padded + l * nvec;
        const v8f *restrict u1 = u0 + nvec;
        for (int k = 0; k < nvec; k++) {
            even[k] += u0[k] * v0;
            odd[k] += u1[k] * v1;
        }
    }
    if (l < len) {
        const float v = x[l];
        sum += v;
        squares += v * v;
        const v8f *restrict u = padded + l * nvec;
        for (int k = 0; k < nvec; k++) {
            even[k] += u[k] * v;
        }
    }
    for (int k = 0; k < nvec; k++) {
        corr[k] = (even[k] + odd[k]) - sums8[k] * mu;
    }
    return squares - mu * (2.0f * sum - (float)len * mu);
}

/* screen_run's pass over every row: its best correlation (padded lanes at -inf,
 * `pad8`; max is exact, any order gives the same value) and its energy. */
static inline void screen_rows(const float *restrict mag, const int64_t *restrict origin,
                               const float *restrict noise, Py_ssize_t rows,
                               const v8f *restrict padded, const v8f *restrict sums8,
                               const v8f *restrict pad8, int len, const int nvec,
                               float *restrict top, float *restrict energy) {
    for (Py_ssize_t r = 0; r < rows; r++) {
        /* The windows lie a few dozen samples apart in a batch of magnitudes far
         * larger than the L2 cache: fetch a later row's while this one is summed. */
        if (r + SCREEN_AHEAD < rows) {
            __builtin_prefetch(mag + origin[r + SCREEN_AHEAD]);
            __builtin_prefetch(mag + origin[r + SCREEN_AHEAD] + len - 1);
        }
        v8f corr[MAX_HYPS / 8];
        energy[r] = screen_row(mag + origin[r], noise[r], padded, sums8, len, nvec, corr);
        v8f most = corr[0] + pad8[0];
        for (int k = 1; k < nvec; k++) {
            most = max8(most, corr[k] + pad8[k]);
        }
        top[r] = hmax8(most);
    }
}

/* Lane-wise max of int32 lanes. */
static inline v8i max8i(v8i a, v8i b) {
    const v8i a_wins = a > b;
    return (a & a_wins) | (b & ~a_wins);
}

/* For each of the `count` kept rows, its best hypothesis and that one's
 * correlation: PulseModel.preamble_pick on this kernel's sums. The largest
 * signed score c |c|, compared as int32 bit patterns whose low 5 bits carry
 * `rank8` (31 - h), so the first hypothesis wins near-ties as there. A padded
 * lane's correlation is 0 (its template and sum are), and its rank INT32_MIN
 * makes its key the least there is. */
static inline void pick_rows(const float *restrict mag, const int64_t *restrict origin,
                             const float *restrict noise, const int64_t *restrict kept,
                             Py_ssize_t count, const v8f *restrict padded,
                             const v8f *restrict sums8, const v8i *restrict rank8, int len,
                             const int nvec, int64_t *restrict best, float *restrict picked) {
    const v8i low5 = (v8i){0x1F, 0x1F, 0x1F, 0x1F, 0x1F, 0x1F, 0x1F, 0x1F};
    const v8i magnitude_bits = ~(v8i){INT32_MIN, INT32_MIN, INT32_MIN, INT32_MIN, INT32_MIN,
                                      INT32_MIN, INT32_MIN, INT32_MIN};
    for (Py_ssize_t i = 0; i < count; i++) {
        const Py_ssize_t r = (Py_ssize_t)kept[i];
        v8f corr[MAX_HYPS / 8];
        (void)screen_row(mag + origin[r], noise[r], padded, sums8, len, nvec, corr);
        v8i most = (v8i){INT32_MIN, INT32_MIN, INT32_MIN, INT32_MIN, INT32_MIN, INT32_MIN,
                         INT32_MIN, INT32_MIN};
        for (int k = 0; k < nvec; k++) {
            const v8f score = (v8f)((v8i)corr[k] & magnitude_bits) * corr[k];
            const v8i key = ((v8i)score & ~low5) | rank8[k];
            most = max8i(most, key);
        }
        int32_t lanes[8];
        memcpy(lanes, &most, sizeof lanes);
        int32_t top_key = lanes[0];
        for (int j = 1; j < 8; j++) {
            top_key = lanes[j] > top_key ? lanes[j] : top_key;
        }
        const int h = 31 - (top_key & 0x1F);
        float cells[MAX_HYPS];
        memcpy(cells, corr, sizeof(v8f) * (size_t)nvec);
        best[i] = h;
        picked[i] = cells[h];
    }
}

/* The rows whose best fit is plausible (Demodulator._plausible, the same float32
 * operations): it explains energy (top > 0), and what it leaves unexplained is
 * at most fit_coef x the explained energy + noise_coef x mu^2. Their indices go
 * to kept; returns how many. */
static Py_ssize_t plausible_rows(const float *restrict top, const float *restrict energy,
                                 const float *restrict noise, Py_ssize_t rows, float fit_coef,
                                 float noise_coef, int64_t *restrict kept) {
    Py_ssize_t count = 0;
    for (Py_ssize_t r = 0; r < rows; r++) {
        const float explained = top[r] > 0.0f ? top[r] * top[r] : 0.0f;
        const float allowance = noise_coef * (noise[r] * noise[r]);
        float limit = fit_coef * explained;
        limit += allowance;
        kept[count] = r;
        count += (energy[r] - explained <= limit) & (explained > 0.0f);
    }
    return count;
}

/* The screen: every row's best correlation and energy (screen_rows), the
 * plausible ones' indices into kept (plausible_rows) and their best hypotheses
 * (pick_rows); returns how many are kept. */
KERNEL_CLONES
static Py_ssize_t screen_run(const float *restrict mag, const int64_t *restrict origin,
                             const float *restrict noise, Py_ssize_t rows,
                             const float *restrict unit_t, const float *restrict unit_sum, int len,
                             int hyps, float *restrict top, float *restrict energy,
                             float fit_coef, float noise_coef, int64_t *restrict kept,
                             int64_t *restrict best, float *restrict picked) {
    v8f padded[MAX_SCREEN_LEN * MAX_HYPS / 8], sums8[MAX_HYPS / 8], pad8[MAX_HYPS / 8];
    v8i rank8[MAX_HYPS / 8];
    const int nvec = (hyps + 7) / 8;
    float *cells = (float *)padded, *sum_cells = (float *)sums8, *pad_cells = (float *)pad8;
    int32_t *rank_cells = (int32_t *)rank8;
    for (int h = 0; h < 8 * nvec; h++) {
        for (int l = 0; l < len; l++) {
            cells[l * 8 * nvec + h] = h < hyps ? unit_t[l * hyps + h] : 0.0f;
        }
        sum_cells[h] = h < hyps ? unit_sum[h] : 0.0f;
        pad_cells[h] = h < hyps ? 0.0f : -INFINITY;
        rank_cells[h] = h < hyps ? 31 - h : INT32_MIN;
    }
    switch (nvec) { /* a constant per call, for the unrolling */
    case 1:
        screen_rows(mag, origin, noise, rows, padded, sums8, pad8, len, 1, top, energy);
        break;
    case 2:
        screen_rows(mag, origin, noise, rows, padded, sums8, pad8, len, 2, top, energy);
        break;
    case 3:
        screen_rows(mag, origin, noise, rows, padded, sums8, pad8, len, 3, top, energy);
        break;
    default:
        screen_rows(mag, origin, noise, rows, padded, sums8, pad8, len, 4, top, energy);
        break;
    }
    const Py_ssize_t count = plausible_rows(top, energy, noise, rows, fit_coef, noise_coef, kept);
    pick_rows(mag, origin, noise, kept, count, padded, sums8, rank8, len, nvec, best, picked);
    return count;
}

/* preamble_screen(mag, origin, noise, unit_t, unit_sum, top, energy, len, fit_coef,
 * noise_coef, kept, best, picked) -> count: see screen_run; origin, kept and best
 * int64, the rest float32, unit_t C-contiguous (len, hyps); kept, best and picked
 * one item per row, the first `count` of them written. */
static PyObject *preamble_screen(PyObject *self, PyObject *args) {
    Py_buffer mag, origin, noise, unit_t, unit_sum, top, energy, kept, best, picked;
    int len;
    float fit_coef, noise_coef;
    (void)self;
    if (!PyArg_ParseTuple(args, "y*y*y*y*y*w*w*iffw*w*w*", &mag, &origin, &noise, &unit_t,
                          &unit_sum, &top, &energy, &len, &fit_coef, &noise_coef, &kept, &best,
                          &picked)) {
        return NULL;
    }
    PyObject *result = NULL;
    const Py_ssize_t rows = origin.len / (Py_ssize_t)sizeof(int64_t);
    const Py_ssize_t hyps = unit_sum.len / (Py_ssize_t)sizeof(float);
    const Py_ssize_t nmag = mag.len / (Py_ssize_t)sizeof(float);
    const Py_ssize_t row_bytes = rows * (Py_ssize_t)sizeof(float);
    const Py_ssize_t index_bytes = rows * (Py_ssize_t)sizeof(int64_t);
    if (hyps < 1 || hyps > MAX_HYPS || len < 1 || len > MAX_SCREEN_LEN ||
        unit_t.len != (Py_ssize_t)len * hyps * (Py_ssize_t)sizeof(float)) {
        PyErr_SetString(PyExc_ValueError,
                        "unit_t must be (len, hyps): 1..64 samples, 1..32 hypotheses");
    } else if (noise.len != row_bytes || top.len != row_bytes || energy.len != row_bytes ||
               picked.len != row_bytes || kept.len != index_bytes || best.len != index_bytes) {
        PyErr_SetString(PyExc_ValueError,
                        "noise, top, energy, kept, best and picked need one item per row");
    } else {
        const int64_t *o = (const int64_t *)origin.buf;
        Py_ssize_t r = 0;
        while (r < rows && o[r] >= 0 && o[r] + len <= nmag) {
            r++;
        }
        if (r < rows) {
            PyErr_SetString(PyExc_ValueError, "a preamble window reads outside mag");
        } else {
            Py_ssize_t count;
            Py_BEGIN_ALLOW_THREADS
            count = screen_run((const float *)mag.buf, o, (const float *)noise.buf, rows,
                               (const float *)unit_t.buf, (const float *)unit_sum.buf, len,
                               (int)hyps, (float *)top.buf, (float *)energy.buf, fit_coef,
                               noise_coef, (int64_t *)kept.buf, (int64_t *)best.buf,
                               (float *)picked.buf);
            Py_END_ALLOW_THREADS
            result = PyLong_FromSsize_t(count);
        }
    }
    PyBuffer_Release(&mag);
    PyBuffer_Release(&origin);
    PyBuffer_Release(&noise);
    PyBuffer_Release(&unit_t);
    PyBuffer_Release(&unit_sum);
    PyBuffer_Release(&top);
    PyBuffer_Release(&energy);
    PyBuffer_Release(&kept);
    PyBuffer_Release(&best);
    PyBuffer_Release(&picked);
    return result;
}

/* One row's matched-filter outputs for the nq bits of one residue: level[q] =
 * sum_t tap[t] x w[origin + q ps + t], the taps added in order from 0.0 as numpy's
 * einsum adds them (PulseModel._filter). One tap at a time over all the bits, so
 * no bit waits on another's sum. At 2.0 MS/s (a stride of two samples) the row's
 * even and odd samples are split first, so that every tap reads eight bits'
 * samples with one load: gcc left the strided loop scalar. */
static inline __attribute__((always_inline)) void filter_residue(
    const float *restrict w, const float *restrict tap, int ntaps, Py_ssize_t origin, int ps,
    int nq, float *restrict level) {
    const float *restrict x = w + origin;
    if (ps == 2) {
        /* half[p][j] = x[2 j + p] up to the last sample read, x[2 (nq - 1) + ntaps - 1],
         * then zeros up to what the last vector of the last tap reads */
        float half[2][MAX_BITS + MAX_TAPS / 2 + 8];
        const int last = 2 * (nq - 1) + ntaps - 1;
        const int nv = (nq + 7) / 8;
        const int reach = (ntaps - 1) / 2 + 8 * nv;
        int j = 0;
        for (; j <= last / 2; j++) {
            half[0][j] = x[2 * j];
        }
        for (; j < reach; j++) {
            half[0][j] = 0.0f;
        }
        for (j = 0; j < (last + 1) / 2; j++) {
            half[1][j] = x[2 * j + 1];
        }
        for (; j < reach; j++) {
            half[1][j] = 0.0f;
        }
        v8f acc[MAX_BITS / 8];
        for (int v = 0; v < nv; v++) {
            acc[v] = (v8f){0};
        }
        for (int t = 0; t < ntaps; t++) {
            const float k = tap[t];
            const float *restrict h = half[t & 1] + (t >> 1);
            for (int v = 0; v < nv; v++) {
                v8f eight;
                memcpy(&eight, h + 8 * v, sizeof eight);
                acc[v] += eight * k;
            }
        }
        memcpy(level, acc, sizeof(float) * (size_t)nq);
        return;
    }
    for (int q = 0; q < nq; q++) {
        level[q] = 0.0f;
    }
    for (int t = 0; t < ntaps; t++) {
        const float k = tap[t];
        const float *restrict xt = x + t;
        for (int q = 0; q < nq; q++) {
            level[q] += k * xt[(Py_ssize_t)q * ps];
        }
    }
}

/* Whether every row's phase step (int64) is a valid table index, 0 .. nsteps - 1. */
static int steps_ok(const Py_buffer *step, int nsteps) {
    const int64_t *st = (const int64_t *)step->buf;
    const Py_ssize_t rows = step->len / (Py_ssize_t)sizeof(int64_t);
    for (Py_ssize_t r = 0; r < rows; r++) {
        if (st[r] < 0 || st[r] >= nsteps) {
            return 0;
        }
    }
    return 1;
}

/* Whether the matched filter's arguments fit together: windows of wlen float32 per
 * row (row r at row_at[r] floats into `windows` when row_at is given, else at r x
 * wlen, the rows packed), taps (pb, nsteps, ntaps), origin (pb,) int64 with every
 * bit's window inside the row, and a valid phase step per row. */
static int filter_geometry_ok(const Py_buffer *windows, Py_ssize_t wlen, const int64_t *row_at,
                              const Py_buffer *step, const Py_buffer *taps, int pb, int nsteps,
                              int ntaps, const Py_buffer *origin, int ps, int nbits) {
    const Py_ssize_t rows = step->len / (Py_ssize_t)sizeof(int64_t);
    const Py_ssize_t floats = windows->len / (Py_ssize_t)sizeof(float);
    const int64_t *org = (const int64_t *)origin->buf;
    int ok = wlen > 0 && pb >= 1 && nsteps >= 1 && ntaps >= 1 && ntaps <= MAX_TAPS && ps >= 1 &&
             nbits >= 1 && nbits <= MAX_BITS &&
             taps->len == (Py_ssize_t)pb * nsteps * ntaps * (Py_ssize_t)sizeof(float) &&
             origin->len == (Py_ssize_t)pb * (Py_ssize_t)sizeof(int64_t);
    if (row_at == NULL) {
        ok = ok && windows->len == rows * wlen * (Py_ssize_t)sizeof(float);
    }
    for (Py_ssize_t r = 0; ok && row_at != NULL && r < rows; r++) {
        ok = row_at[r] >= 0 && row_at[r] <= floats - wlen;
    }
    for (int res = 0; ok && res < pb && res < nbits; res++) {
        const int nq = (nbits - res + pb - 1) / pb;
        ok = org[res] >= 0 && org[res] + (Py_ssize_t)(nq - 1) * ps + ntaps <= wlen;
    }
    return ok && steps_ok(step, nsteps);
}

/* The occupancy count (PulseModel.held_bits): for each row, how many of its first
 * nbits bits have a slot-sum filter output above noise x offset + (amplitude / 2)
 * x norm, the filter and threshold per bit residue res = i % pb at the row's phase
 * step. The filter output of bit i = res + q pb is filter_residue's level[q] with
 * the slot-sum taps: the same counts bit for bit. */
KERNEL_CLONES
static void held_run(const float *restrict windows, const int64_t *restrict row_at,
                     Py_ssize_t rows, const int64_t *restrict step, const float *restrict taps,
                     int pb, int nsteps, int ntaps, const int64_t *restrict origin, int ps,
                     int nbits, const float *restrict offset, const float *restrict norm,
                     const float *restrict noise, const float *restrict amplitude,
                     uint8_t *restrict out) {
    for (Py_ssize_t r = 0; r < rows; r++) {
        const float *restrict w = windows + row_at[r];
        const float half = amplitude[r] * 0.5f;
        int count = 0;
        for (int res = 0; res < pb && res < nbits; res++) {
            const Py_ssize_t at = (Py_ssize_t)res * nsteps + step[r];
            float threshold = noise[r] * offset[at];
            threshold += half * norm[at];
            const int nq = (nbits - res + pb - 1) / pb;
            float level[MAX_BITS];
            filter_residue(w, taps + at * ntaps, ntaps, origin[res], ps, nq, level);
            for (int q = 0; q < nq; q++) {
                count += level[q] > threshold;
            }
        }
        out[r] = (uint8_t)count;
    }
}

/* The slicer's matched filter (PulseModel._filter): out[i, row] for bit i = res +
 * q pb is filter_residue's level[q] of the row at its step: the same numbers bit for
 * bit. FILTER_TILE rows at a time, so that their outputs go out as runs of
 * consecutive floats: one row's bits, each a whole output row apart, were a
 * scattered store each (the kernel takes a fifth less time in tiles). */
#define FILTER_TILE 8
KERNEL_CLONES
static void filter_run(const float *restrict windows, Py_ssize_t rows, Py_ssize_t wlen,
                       const int64_t *restrict step, const float *restrict taps, int pb,
                       int nsteps, int ntaps, const int64_t *restrict origin, int ps, int nbits,
                       float *restrict out) {
    for (Py_ssize_t r0 = 0; r0 < rows; r0 += FILTER_TILE) {
        const int tile = rows - r0 < FILTER_TILE ? (int)(rows - r0) : FILTER_TILE;
        for (int res = 0; res < pb && res < nbits; res++) {
            const int nq = (nbits - res + pb - 1) / pb;
            float level[FILTER_TILE][MAX_BITS];
            for (int i = 0; i < tile; i++) {
                const Py_ssize_t r = r0 + i;
                const float *restrict tap = taps + ((Py_ssize_t)res * nsteps + step[r]) * ntaps;
                filter_residue(windows + r * wlen, tap, ntaps, origin[res], ps, nq, level[i]);
            }
            for (int q = 0; q < nq; q++) {
                float *restrict to = out + (Py_ssize_t)(res + q * pb) * rows + r0;
                for (int i = 0; i < tile; i++) {
                    to[i] = level[i][q];
                }
            }
        }
    }
}

/* filter_bits(windows, wlen, step, taps, pb, nsteps, ntaps, origin, ps, nbits, out):
 * see filter_run. windows (rows, wlen) and taps (pb, nsteps, ntaps) float32, step
 * (rows,) and origin (pb,) int64, out (nbits, rows) float32. */
static PyObject *filter_bits(PyObject *self, PyObject *args) {
    Py_buffer windows, step, taps, origin, out;
    Py_ssize_t wlen;
    int pb, nsteps, ntaps, ps, nbits;
    (void)self;
    if (!PyArg_ParseTuple(args, "y*ny*y*iiiy*iiw*", &windows, &wlen, &step, &taps, &pb, &nsteps,
                          &ntaps, &origin, &ps, &nbits, &out)) {
        return NULL;
    }
    PyObject *result = NULL;
    const Py_ssize_t rows = step.len / (Py_ssize_t)sizeof(int64_t);
    const int64_t *st = (const int64_t *)step.buf, *org = (const int64_t *)origin.buf;
    if (!filter_geometry_ok(&windows, wlen, NULL, &step, &taps, pb, nsteps, ntaps, &origin, ps,
                            nbits) ||
        out.len != (Py_ssize_t)nbits * rows * (Py_ssize_t)sizeof(float)) {
        PyErr_SetString(PyExc_ValueError, "filter_bits: shapes or indices out of range");
    } else {
        Py_BEGIN_ALLOW_THREADS
        filter_run((const float *)windows.buf, rows, wlen, st, (const float *)taps.buf, pb,
                   nsteps, ntaps, org, ps, nbits, (float *)out.buf);
        Py_END_ALLOW_THREADS
        result = Py_None;
        Py_INCREF(result);
    }
    PyBuffer_Release(&windows);
    PyBuffer_Release(&step);
    PyBuffer_Release(&taps);
    PyBuffer_Release(&origin);
    PyBuffer_Release(&out);
    return result;
}

/* held_bits(windows, wlen, row_at, step, taps, pb, nsteps, ntaps, origin, ps, nbits,
 * offset, norm, noise, amplitude, out): see held_run. Row r's window is the wlen
 * float32 at row_at[r] (int64) in `windows`: packed rows (r x wlen) or windows in
 * place in the magnitudes (their starts), with no copy. taps (pb, nsteps, ntaps),
 * offset and norm (pb, nsteps), noise and amplitude (rows,) float32; step (rows,)
 * and origin (pb,) int64; out (rows,) uint8. */
static PyObject *held_bits(PyObject *self, PyObject *args) {
    Py_buffer windows, row_at, step, taps, origin, offset, norm, noise, amplitude, out;
    Py_ssize_t wlen;
    int pb, nsteps, ntaps, ps, nbits;
    (void)self;
    if (!PyArg_ParseTuple(args, "y*ny*y*y*iiiy*iiy*y*y*y*w*", &windows, &wlen, &row_at, &step,
                          &taps, &pb, &nsteps, &ntaps, &origin, &ps, &nbits, &offset, &norm,
                          &noise, &amplitude, &out)) {
        return NULL;
    }
    PyObject *result = NULL;
    const Py_ssize_t rows = step.len / (Py_ssize_t)sizeof(int64_t);
    const int64_t *st = (const int64_t *)step.buf, *org = (const int64_t *)origin.buf;
    const int64_t *at = (const int64_t *)row_at.buf;
    const Py_ssize_t table = (Py_ssize_t)pb * nsteps * (Py_ssize_t)sizeof(float);
    const Py_ssize_t row_floats = rows * (Py_ssize_t)sizeof(float);
    if (row_at.len != rows * (Py_ssize_t)sizeof(int64_t) ||
        !filter_geometry_ok(&windows, wlen, at, &step, &taps, pb, nsteps, ntaps, &origin, ps,
                            nbits) ||
        offset.len != table || norm.len != table || noise.len != row_floats ||
        amplitude.len != row_floats || out.len != rows) {
        PyErr_SetString(PyExc_ValueError, "held_bits: shapes or indices out of range");
    } else {
        Py_BEGIN_ALLOW_THREADS
        held_run((const float *)windows.buf, at, rows, st, (const float *)taps.buf, pb, nsteps,
                 ntaps, org, ps, nbits, (const float *)offset.buf, (const float *)norm.buf,
                 (const float *)noise.buf, (const float *)amplitude.buf, (uint8_t *)out.buf);
        Py_END_ALLOW_THREADS
        result = Py_None;
        Py_INCREF(result);
    }
    PyBuffer_Release(&windows);
    PyBuffer_Release(&row_at);
    PyBuffer_Release(&step);
    PyBuffer_Release(&taps);
    PyBuffer_Release(&origin);
    PyBuffer_Release(&offset);
    PyBuffer_Release(&norm);
    PyBuffer_Release(&noise);
    PyBuffer_Release(&amplitude);
    PyBuffer_Release(&out);
    return result;
}

/* The slicer's decisions (PulseModel.slice after its matched filter): per row, the
 * first decision from the average neighbour leak, `passes` rounds of decision
 * feedback from both decided neighbours, the short-frame fix of bit 55, and the
 * confidences |z| / swing. Every value is numpy's element-wise float32 operation in
 * numpy's order (a neighbour's leak is its bit, 0.0 or 1.0, times the difference,
 * as numpy multiplies a bool array), so the same bits and confidences bit for bit.
 * `tables` are PulseModel._dfe_tables stacked: (DFE_TABLES, pb, nsteps); a bit i
 * reads residue i % pb at the row's step. */
#define DFE_TABLES 10
enum { MID, SWING, LP0, LN0, DLP, DLN, FIRST_OFFSET, BASE_SHIFT, EDGE_FIRST, EDGE_LAST };

static inline __attribute__((always_inline)) void dfe_row(
    const float *restrict y, Py_ssize_t rows, float inv_amp, const float *restrict tables, int pb,
    int nsteps, int64_t step, int passes, int short_bits, const int uniform,
    uint8_t *restrict bits_out, float *restrict conf_out) {
    /* T(k, i): table k's value at bit i. `uniform` (pb 1, 2.0 MS/s): one value for
     * every bit, kept as a scalar, where filling ten 112-float tables per row was a
     * third of the kernel. */
    float c[DFE_TABLES];
    float t[DFE_TABLES][MAX_BITS];
#define T(k, i) (uniform ? c[k] : t[k][i])
    float z[MAX_BITS], base[MAX_BITS];
    uint8_t b[MAX_BITS], nb[MAX_BITS];
    for (int k = 0; k < DFE_TABLES; k++) {
        const float *col = tables + (Py_ssize_t)k * pb * nsteps + step;
        if (uniform) {
            c[k] = col[0];
            continue;
        }
        for (int res = 0; res < pb; res++) {
            const float v = col[(Py_ssize_t)res * nsteps];
            for (int i = res; i < MAX_BITS; i += pb) {
                t[k][i] = v;
            }
        }
    }
    for (int i = 0; i < MAX_BITS; i++) {
        z[i] = y[(Py_ssize_t)i * rows] * inv_amp;
        z[i] -= T(FIRST_OFFSET, i);
        base[i] = z[i] + T(BASE_SHIFT, i);
    }
    z[0] += T(EDGE_FIRST, 0);
    z[MAX_BITS - 1] += T(EDGE_LAST, MAX_BITS - 1);
    for (int i = 0; i < MAX_BITS; i++) {
        b[i] = z[i] > 0.0f;
    }
    if (passes) {
        base[0] += T(LP0, 0);
        base[MAX_BITS - 1] += T(LN0, MAX_BITS - 1);
        for (int pass = 0; pass < passes; pass++) {
            z[0] = base[0];
            for (int i = 1; i < MAX_BITS; i++) {
                z[i] = base[i] - (float)b[i - 1] * T(DLP, i);
            }
            for (int i = 0; i < MAX_BITS - 1; i++) {
                z[i] -= (float)b[i + 1] * T(DLN, i);
            }
            for (int i = 0; i < MAX_BITS; i++) {
                nb[i] = z[i] > 0.0f;
            }
            memcpy(b, nb, sizeof b);
        }
        if (!b[0]) { /* a short frame ends with bit 55: no bit 56 leaks into it */
            const int last = short_bits - 1;
            const float leak = T(LP0, last) + (float)b[last - 1] * T(DLP, last);
            const float zl = y[(Py_ssize_t)last * rows] * inv_amp - T(MID, last);
            z[last] = zl - leak;
            b[last] = z[last] > 0.0f;
        }
    }
    for (int i = 0; i < MAX_BITS; i++) {
        bits_out[i] = b[i];
        conf_out[i] = fabsf(z[i]) / T(SWING, i);
    }
#undef T
}

KERNEL_CLONES
static void dfe_run(const float *restrict y, Py_ssize_t rows, const float *restrict inv_amp,
                    const int64_t *restrict step, const float *restrict tables, int pb,
                    int nsteps, int passes, int short_bits, uint8_t *restrict bits,
                    float *restrict conf) {
    for (Py_ssize_t r = 0; r < rows; r++) {
        if (pb == 1) {
            dfe_row(y + r, rows, inv_amp[r], tables, pb, nsteps, step[r], passes, short_bits, 1,
                    bits + r * MAX_BITS, conf + r * MAX_BITS);
        } else {
            dfe_row(y + r, rows, inv_amp[r], tables, pb, nsteps, step[r], passes, short_bits, 0,
                    bits + r * MAX_BITS, conf + r * MAX_BITS);
        }
    }
}

/* dfe_slice(y, inv_amp, step, tables, pb, nsteps, passes, short_bits, bits, conf): see
 * dfe_row. y (112, rows) and inv_amp (rows,) float32, step (rows,) int64, tables
 * (10, pb, nsteps) float32; bits (rows, 112) uint8 and conf (rows, 112) float32 out. */
static PyObject *dfe_slice(PyObject *self, PyObject *args) {
    Py_buffer y, inv_amp, step, tables, bits, conf;
    int pb, nsteps, passes, short_bits;
    (void)self;
    if (!PyArg_ParseTuple(args, "y*y*y*y*iiiiw*w*", &y, &inv_amp, &step, &tables, &pb, &nsteps,
                          &passes, &short_bits, &bits, &conf)) {
        return NULL;
    }
    PyObject *result = NULL;
    const Py_ssize_t rows = step.len / (Py_ssize_t)sizeof(int64_t);
    const int64_t *st = (const int64_t *)step.buf;
    int ok = pb >= 1 && nsteps >= 1 && passes >= 0 && short_bits >= 2 &&
             short_bits <= MAX_BITS && y.len == MAX_BITS * rows * (Py_ssize_t)sizeof(float) &&
             inv_amp.len == rows * (Py_ssize_t)sizeof(float) &&
             tables.len == (Py_ssize_t)DFE_TABLES * pb * nsteps * (Py_ssize_t)sizeof(float) &&
             bits.len == rows * MAX_BITS &&
             conf.len == rows * MAX_BITS * (Py_ssize_t)sizeof(float) && steps_ok(&step, nsteps);
    if (!ok) {
        PyErr_SetString(PyExc_ValueError, "dfe_slice: shapes or indices out of range");
    } else {
        Py_BEGIN_ALLOW_THREADS
        dfe_run((const float *)y.buf, rows, (const float *)inv_amp.buf, st,
                (const float *)tables.buf, pb, nsteps, passes, short_bits, (uint8_t *)bits.buf,
                (float *)conf.buf);
        Py_END_ALLOW_THREADS
        result = Py_None;
        Py_INCREF(result);
    }
    PyBuffer_Release(&y);
    PyBuffer_Release(&inv_amp);
    PyBuffer_Release(&step);
    PyBuffer_Release(&tables);
    PyBuffer_Release(&bits);
    PyBuffer_Release(&conf);
    return result;
}

/* Best path metrics of 2-state trellises, slicer._max_plus_sweep's chunked
 * recursion in its order of operations (the same float32 sums and maxima, so the
 * same numbers): m[d, p, c, i, row] is the metric of going from state p to state c
 * at branch i, out[d, c, i, row] the best over paths from either start state
 * through branches 0..i ending in c. Branches come in chunks of `chunk`: each
 * chunk composes its own max-plus prefix products, the chunks' start vectors
 * follow one after another, and each branch adds its chunk's start vector. A max
 * of two is numpy.maximum's: the first unless the second is larger. */
static inline float max2(float a, float b) { return a >= b ? a : b; }

KERNEL_CLONES
static void chunked_sweep_run(const float *restrict m, Py_ssize_t dirs, Py_ssize_t n,
                              Py_ssize_t rows, int chunk, float *restrict out,
                              float *restrict prefix) {
    const Py_ssize_t chunks = n / chunk;
    const Py_ssize_t plane = n * rows; /* m[d, p, c] and out[d, c] planes: (n, rows) */
    for (Py_ssize_t d = 0; d < dirs; d++) {
        const float *restrict md = m + d * 4 * plane;
        float *restrict od = out + d * 2 * plane;
        /* prefix[p, c, i, row], laid out as m[d]. */
        for (Py_ssize_t k = 0; k < chunks; k++) {
            const Py_ssize_t i0 = k * chunk;
            for (int pc = 0; pc < 4; pc++) {
                memcpy(prefix + pc * plane + i0 * rows, md + pc * plane + i0 * rows,
                       sizeof(float) * (size_t)rows);
            }
            for (int t = 1; t < chunk; t++) {
                const Py_ssize_t i = i0 + t;
                for (int p = 0; p < 2; p++) {
                    const float *restrict prev0 = prefix + (2 * p) * plane + (i - 1) * rows;
                    const float *restrict prev1 = prefix + (2 * p + 1) * plane + (i - 1) * rows;
                    for (int c = 0; c < 2; c++) {
                        const float *restrict cur0 = md + c * plane + i * rows;       /* q = 0 */
                        const float *restrict cur1 = md + (2 + c) * plane + i * rows; /* q = 1 */
                        float *restrict dst = prefix + (2 * p + c) * plane + i * rows;
                        for (Py_ssize_t r = 0; r < rows; r++) {
                            dst[r] = max2(prev0[r] + cur0[r], prev1[r] + cur1[r]);
                        }
                    }
                }
            }
        }
        /* Start vectors start[p, k, row] (chunk 0 starts at 0), then every branch;
         * all rows of a branch at once. */
        float *restrict s0 = prefix + 4 * plane, *restrict s1 = s0 + rows;
        float *restrict n0 = s1 + rows, *restrict n1 = n0 + rows;
        for (Py_ssize_t r = 0; r < rows; r++) {
            s0[r] = 0.0f;
            s1[r] = 0.0f;
        }
        for (Py_ssize_t k = 0; k < chunks; k++) {
            const Py_ssize_t i0 = k * chunk;
            for (int t = 0; t < chunk; t++) {
                const Py_ssize_t at = (i0 + t) * rows;
                for (int c = 0; c < 2; c++) {
                    const float *restrict from0 = prefix + c * plane + at;
                    const float *restrict from1 = prefix + (2 + c) * plane + at;
                    float *restrict dst = od + c * plane + at;
                    for (Py_ssize_t r = 0; r < rows; r++) {
                        dst[r] = max2(s0[r] + from0[r], s1[r] + from1[r]);
                    }
                }
            }
            const Py_ssize_t end = (i0 + chunk - 1) * rows;
            for (Py_ssize_t r = 0; r < rows; r++) {
                n0[r] = max2(s0[r] + prefix[end + r], s1[r] + prefix[2 * plane + end + r]);
                n1[r] = max2(s0[r] + prefix[plane + end + r], s1[r] + prefix[3 * plane + end + r]);
            }
            memcpy(s0, n0, sizeof(float) * (size_t)rows);
            memcpy(s1, n1, sizeof(float) * (size_t)rows);
        }
    }
}

/* max_plus_sweep(m, dirs, n, rows, chunk, out): see chunked_sweep_run; m (dirs, 2, 2,
 * n, rows) and out (dirs, 2, n, rows) float32, C-contiguous, n a multiple of chunk. */
static PyObject *max_plus_sweep(PyObject *self, PyObject *args) {
    Py_buffer m, out;
    Py_ssize_t dirs, n, rows;
    int chunk;
    (void)self;
    if (!PyArg_ParseTuple(args, "y*nnniw*", &m, &dirs, &n, &rows, &chunk, &out)) {
        return NULL;
    }
    PyObject *result = NULL;
    const Py_ssize_t cells = dirs * n * rows;
    if (dirs < 1 || n < 1 || rows < 1 || chunk < 1 || n % chunk ||
        m.len != 4 * cells * (Py_ssize_t)sizeof(float) ||
        out.len != 2 * cells * (Py_ssize_t)sizeof(float)) {
        PyErr_SetString(PyExc_ValueError, "max_plus_sweep: m must be (dirs, 2, 2, n, rows), "
                                          "out (dirs, 2, n, rows), n a multiple of chunk");
    } else {
        /* the prefix products, then four rows of start vectors */
        float *prefix = malloc(sizeof(float) * (4 * (size_t)(n * rows) + 4 * (size_t)rows));
        if (prefix == NULL) {
            PyErr_NoMemory();
        } else {
            Py_BEGIN_ALLOW_THREADS
            chunked_sweep_run((const float *)m.buf, dirs, n, rows, chunk, (float *)out.buf,
                              prefix);
            Py_END_ALLOW_THREADS
            free(prefix);
            result = Py_None;
            Py_INCREF(result);
        }
    }
    PyBuffer_Release(&m);
    PyBuffer_Release(&out);
    return result;
}

/* The sequence detector's branch metrics (PulseModel.sequence_slice, up to its
 * trellis sweep), laid out as the sweep takes them. Per row and owned-sample plane
 * j of branch i: the magnitude m = windows[row, idx[j, i, step]] x mask[j, i, step];
 * for bit i-1 = p and bit i = c the expected value x = (prev[j, p, i, step] +
 * cur[j, c, i, step]) + other, other = next[j, g, i, step] + prev2[j, g', i, step] with
 * g, g' the guessed bits i+1 and i-2 (0 outside the frame); x times the amplitude,
 * then (magnitudes) sqrt(x^2 + mu^2); the metric -(m - x)^2 summed over the planes
 * in order. A short row (guessed bit 0 = 0) has no bit 56 (cur of branch 56 and
 * other of branches 55 and 56 are 0) and metric 0 past branch 56; a fixed bit
 * forbids the other value at its branch. numpy's float32 operations in numpy's
 * order, so the same metrics bit for bit. out[0] = metric[p, c, i] for branches
 * 0..111 (forward), out[1][c, p, k] = metric[p, c, 112 - k] (backward). The
 * tables are (J, 2, nsteps, BRANCHES), idx and mask (J, nsteps, BRANCHES): the
 * PulseModel's, transposed so that a row's branches lie together. */
#define MAX_PLANES 4
#define BRANCHES (MAX_BITS + 1)

KERNEL_CLONES
static void metrics_run(const float *restrict windows, Py_ssize_t rows, Py_ssize_t wlen,
                        const int64_t *restrict step, const uint8_t *restrict guess,
                        const float *restrict amp, const float *restrict mu2, int coherent,
                        const int8_t *restrict fixed, const int64_t *restrict idx,
                        const float *restrict mask, const float *restrict q_prev,
                        const float *restrict q_cur, const float *restrict q_next,
                        const float *restrict q_prev2, int planes, int nsteps, float forbidden,
                        int short_bits, float *restrict out) {
    /* The tables arrive transposed: (J, [2,] nsteps, BRANCHES), so that a row's
     * branches are contiguous and the loops over them run in vector registers. */
    const Py_ssize_t plane = (Py_ssize_t)MAX_BITS * rows; /* one (p, c) of out[d] */
    for (Py_ssize_t r = 0; r < rows; r++) {
        const float *restrict w = windows + r * wlen;
        const uint8_t *restrict g = guess + r * MAX_BITS;
        const int is_short = g[0] == 0;
        const int64_t s = step[r];
        const float a = amp[r], mu_sq = mu2[r];
        float metric[2][2][BRANCHES];
        for (int j = 0; j < planes; j++) {
            const Py_ssize_t row_at = ((Py_ssize_t)j * nsteps + s) * BRANCHES;
            const Py_ssize_t b0 = ((Py_ssize_t)(2 * j) * nsteps + s) * BRANCHES;
            const Py_ssize_t b1 = b0 + (Py_ssize_t)nsteps * BRANCHES;
            float m[BRANCHES], other[BRANCHES], cur[2][BRANCHES];
            /* The guessed bits pick a table by index, not by branch: they are
             * random, and mispredicted branches cost more than the rest here. */
            const float *next[2] = {q_next + b0, q_next + b1};
            const float *prev2[2] = {q_prev2 + b0, q_prev2 + b1};
            for (int i = 0; i < BRANCHES; i++) {
                m[i] = w[idx[row_at + i]] * mask[row_at + i];
                /* a guessed bit is set when nonzero, as numpy's bool view reads it */
                const int g_next = i + 1 < MAX_BITS && g[i + 1] != 0;
                const int g_prev2 = i >= 2 && g[i - 2] != 0;
                other[i] = next[g_next][i];
                other[i] += prev2[g_prev2][i];
                cur[0][i] = q_cur[b0 + i];
                cur[1][i] = q_cur[b1 + i];
            }
            if (is_short) { /* no bit 56: nothing of it, nor of its leak into bit 55 */
                cur[0][short_bits] = 0.0f;
                cur[1][short_bits] = 0.0f;
                other[short_bits - 1] = 0.0f;
                other[short_bits] = 0.0f;
            }
            for (int p = 0; p < 2; p++) {
                const float *restrict prev = q_prev + (p ? b1 : b0);
                for (int c = 0; c < 2; c++) {
                    float *restrict sum = metric[p][c];
                    for (int i = 0; i < BRANCHES; i++) {
                        float x = prev[i] + cur[c][i];
                        x += other[i];
                        x *= a;
                        if (!coherent) {
                            x *= x;
                            x += mu_sq;
                            x = sqrtf(x);
                        }
                        float d = m[i] - x;
                        d *= d;
                        sum[i] = j == 0 ? -d : sum[i] - d;
                    }
                }
            }
        }
        if (is_short) {
            for (int p = 0; p < 2; p++) {
                for (int c = 0; c < 2; c++) {
                    for (int i = short_bits + 1; i < BRANCHES; i++) {
                        metric[p][c][i] = 0.0f;
                    }
                }
            }
        }
        if (fixed != NULL) {
            for (int i = 0; i < MAX_BITS; i++) {
                const int known = fixed[r * MAX_BITS + i];
                if (known == 0 || known == 1) { /* -1: free (numpy ignores other values too) */
                    metric[0][1 - known][i] = -forbidden;
                    metric[1][1 - known][i] = -forbidden;
                }
            }
        }
        for (int p = 0; p < 2; p++) {
            for (int c = 0; c < 2; c++) {
                float *restrict fwd = out + (Py_ssize_t)(2 * p + c) * plane + r;
                float *restrict bwd = out + (Py_ssize_t)(4 + 2 * c + p) * plane + r;
                for (int i = 0; i < MAX_BITS; i++) {
                    fwd[(Py_ssize_t)i * rows] = metric[p][c][i];
                    bwd[(Py_ssize_t)i * rows] = metric[p][c][MAX_BITS - i];
                }
            }
        }
    }
}

/* sequence_metrics(windows, wlen, step, guess, amp, mu2, coherent, fixed, idx, mask,
 * q_prev, q_cur, q_next, q_prev2, planes, nsteps, forbidden, short_bits, out): see
 * metrics_run (and its table layout). fixed is None or (rows, 112) int8; out (2, 2,
 * 2, 112, rows). */
static PyObject *sequence_metrics(PyObject *self, PyObject *args) {
    Py_buffer windows, step, guess, amp, mu2, idx, mask, q_prev, q_cur, q_next, q_prev2, out;
    Py_buffer fixed = {0};
    PyObject *fixed_obj;
    Py_ssize_t wlen;
    int coherent, planes, nsteps, short_bits;
    float forbidden;
    (void)self;
    if (!PyArg_ParseTuple(args, "y*ny*y*y*y*pOy*y*y*y*y*y*iifiw*", &windows, &wlen, &step, &guess,
                          &amp, &mu2, &coherent, &fixed_obj, &idx, &mask, &q_prev, &q_cur,
                          &q_next, &q_prev2, &planes, &nsteps, &forbidden, &short_bits, &out)) {
        return NULL;
    }
    PyObject *result = NULL;
    const int has_fixed = fixed_obj != Py_None;
    if (has_fixed && PyObject_GetBuffer(fixed_obj, &fixed, PyBUF_SIMPLE) < 0) {
        goto done;
    }
    const Py_ssize_t rows = step.len / (Py_ssize_t)sizeof(int64_t);
    const Py_ssize_t table = (Py_ssize_t)planes * BRANCHES * nsteps;
    const int64_t *st = (const int64_t *)step.buf, *ix = (const int64_t *)idx.buf;
    int ok = planes >= 1 && planes <= MAX_PLANES && nsteps >= 1 && wlen >= 1 &&
             short_bits >= 2 && short_bits < MAX_BITS &&
             windows.len == rows * wlen * (Py_ssize_t)sizeof(float) &&
             guess.len == rows * MAX_BITS && amp.len == rows * (Py_ssize_t)sizeof(float) &&
             mu2.len == rows * (Py_ssize_t)sizeof(float) &&
             (!has_fixed || fixed.len == rows * MAX_BITS) &&
             idx.len == table * (Py_ssize_t)sizeof(int64_t) &&
             mask.len == table * (Py_ssize_t)sizeof(float) &&
             q_prev.len == 2 * table * (Py_ssize_t)sizeof(float) && q_cur.len == q_prev.len &&
             q_next.len == q_prev.len && q_prev2.len == q_prev.len &&
             out.len == 8 * (Py_ssize_t)MAX_BITS * rows * (Py_ssize_t)sizeof(float) &&
             steps_ok(&step, nsteps);
    for (Py_ssize_t k = 0; ok && k < table; k++) {
        ok = ix[k] >= 0 && ix[k] < wlen;
    }
    if (!ok) {
        PyErr_SetString(PyExc_ValueError, "sequence_metrics: shapes or indices out of range");
        goto done;
    }
    Py_BEGIN_ALLOW_THREADS
    metrics_run((const float *)windows.buf, rows, wlen, st, (const uint8_t *)guess.buf,
                (const float *)amp.buf, (const float *)mu2.buf, coherent,
                has_fixed ? (const int8_t *)fixed.buf : NULL, ix, (const float *)mask.buf,
                (const float *)q_prev.buf, (const float *)q_cur.buf, (const float *)q_next.buf,
                (const float *)q_prev2.buf, planes, nsteps, forbidden, short_bits,
                (float *)out.buf);
    Py_END_ALLOW_THREADS
    result = Py_None;
    Py_INCREF(result);
done:
    if (has_fixed && fixed.obj != NULL) {
        PyBuffer_Release(&fixed);
    }
    PyBuffer_Release(&windows);
    PyBuffer_Release(&step);
    PyBuffer_Release(&guess);
    PyBuffer_Release(&amp);
    PyBuffer_Release(&mu2);
    PyBuffer_Release(&idx);
    PyBuffer_Release(&mask);
    PyBuffer_Release(&q_prev);
    PyBuffer_Release(&q_cur);
    PyBuffer_Release(&q_next);
    PyBuffer_Release(&q_prev2);
    PyBuffer_Release(&out);
    return result;
}

/* CRC-24 residuals of `rows` frames of 14 bytes (crc_rows.mixed_residuals): row r
 * XORs table[(long ? 0 : 1)][k][byte k] over its 14 bytes, the 56-bit table's
 * bytes 7-13 being zero. XOR is exact in any order. */
KERNEL_CLONES
static void residuals_run(const uint8_t *restrict msgs, const uint8_t *restrict long_rows,
                          Py_ssize_t rows, const uint32_t *restrict table,
                          uint32_t *restrict out) {
    for (Py_ssize_t r = 0; r < rows; r++) {
        const uint8_t *restrict m = msgs + r * 14;
        const uint32_t *restrict t = table + (long_rows[r] ? 0 : 14 * 256);
        uint32_t residual = 0;
        for (int k = 0; k < 14; k++) {
            residual ^= t[k * 256 + m[k]];
        }
        out[r] = residual;
    }
}

/* frame_residuals(msgs, long_rows, table, out): see residuals_run. msgs (rows, 14)
 * and long_rows (rows,) uint8 (0 or 1), table (2, 14, 256) and out (rows,) uint32. */
static PyObject *frame_residuals(PyObject *self, PyObject *args) {
    Py_buffer msgs, long_rows, table, out;
    (void)self;
    if (!PyArg_ParseTuple(args, "y*y*y*w*", &msgs, &long_rows, &table, &out)) {
        return NULL;
    }
    PyObject *result = NULL;
    const Py_ssize_t rows = long_rows.len;
    if (msgs.len != rows * 14 || table.len != 2 * 14 * 256 * (Py_ssize_t)sizeof(uint32_t) ||
        out.len != rows * (Py_ssize_t)sizeof(uint32_t)) {
        PyErr_SetString(PyExc_ValueError, "frame_residuals: msgs (rows, 14), a (2, 14, 256) table");
    } else {
        Py_BEGIN_ALLOW_THREADS
        residuals_run((const uint8_t *)msgs.buf, (const uint8_t *)long_rows.buf, rows,
                      (const uint32_t *)table.buf, (uint32_t *)out.buf);
        Py_END_ALLOW_THREADS
        result = Py_None;
        Py_INCREF(result);
    }
    PyBuffer_Release(&msgs);
    PyBuffer_Release(&long_rows);
    PyBuffer_Release(&table);
    PyBuffer_Release(&out);
    return result;
}

/* Count and sum of the powers v^2 (each rounded to float32, as numpy's values *
 * values) below clip, the sum in double. The sum is exact, so its order does not
 * matter (numpy's is pairwise): magnitudes of u8 IQ are at least sqrt(0.5), so
 * their float32 powers are multiples of 2^-25, and below 2^15; 4096 of them (a
 * noise segment's subsample) stay under 2^52 units. */
KERNEL_CLONES
static Py_ssize_t clipped_sum(const float *restrict v, Py_ssize_t n, float clip,
                              double *restrict kept) {
    /* Eight powers at a time, their doubles summed in two sets of four lanes:
     * exact sums may be added in any order, which lets the compiler keep the
     * vectors (it would not reorder a sum on its own). */
    const v8f clip8 = (v8f){clip, clip, clip, clip, clip, clip, clip, clip};
    v8i counts = (v8i){0};
    v4d low = (v4d){0}, high = (v4d){0};
    Py_ssize_t k = 0;
    for (; k + 8 <= n; k += 8) {
        v8f x;
        memcpy(&x, v + k, sizeof x);
        const v8f power = x * x;
        const v8i below = power < clip8;
        counts -= below; /* a true lane is -1 */
        const v8f taken = (v8f)((v8i)power & below);
        v4f half[2];
        memcpy(half, &taken, sizeof half);
        low += __builtin_convertvector(half[0], v4d);
        high += __builtin_convertvector(half[1], v4d);
    }
    const v4d both = low + high;
    double sum = (both[0] + both[1]) + (both[2] + both[3]);
    Py_ssize_t count = 0;
    for (int j = 0; j < 8; j++) {
        count += counts[j];
    }
    for (; k < n; k++) {
        const float power = v[k] * v[k];
        if (power < clip) {
            count++;
            sum += (double)power;
        }
    }
    *kept = sum;
    return count;
}

/* noise.clipped_noise_floor's iteration from noise power `power` (float64 units
 * of magnitude^2), the same operations in the same order: the clip rounded to
 * float32, the update kept / count / share, the stop when it moved by at most
 * tolerance x the power. Returns the noise power. */
static double clipped_power_run(const float *v, Py_ssize_t n, double power, double clip_to_power,
                                double share, double tolerance, int max_iterations) {
    for (int i = 0; n > 0 && i < max_iterations; i++) { /* no values: the start stands */
        double kept;
        const Py_ssize_t count = clipped_sum(v, n, (float)(clip_to_power * power), &kept);
        if (4 * count < n) {
            power *= 4.0;
            continue;
        }
        const double updated = kept / (double)count / share;
        const int done = fabs(updated - power) <= tolerance * power;
        power = updated;
        if (done) {
            break;
        }
    }
    return power;
}

/* clipped_noise_power(values, power, clip_to_power, share, tolerance,
 * max_iterations) -> power: see clipped_power_run; values float32. */
static PyObject *clipped_noise_power(PyObject *self, PyObject *args) {
    Py_buffer values;
    double power, clip_to_power, share, tolerance;
    int max_iterations;
    (void)self;
    if (!PyArg_ParseTuple(args, "y*ddddi", &values, &power, &clip_to_power, &share, &tolerance,
                          &max_iterations)) {
        return NULL;
    }
    const Py_ssize_t n = values.len / (Py_ssize_t)sizeof(float);
    Py_BEGIN_ALLOW_THREADS
    power = clipped_power_run((const float *)values.buf, n, power, clip_to_power, share,
                              tolerance, max_iterations);
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&values);
    return PyFloat_FromDouble(power);
}

static PyMethodDef methods[] = {
    {"magnitude", magnitude, METH_VARARGS, "Magnitude of interleaved u8 IQ, float32."},
    {"prefilter", prefilter, METH_VARARGS, "Preamble prefilter over mag[start:stop]."},
    {"preamble_screen", preamble_screen, METH_VARARGS,
     "Best template correlation, energy and plausibility of each preamble window."},
    {"held_bits", held_bits, METH_VARARGS, "How many of each row's first bits hold a pulse."},
    {"filter_bits", filter_bits, METH_VARARGS, "The slicer's matched filter at every bit."},
    {"dfe_slice", dfe_slice, METH_VARARGS, "The slicer's bit decisions and confidences."},
    {"max_plus_sweep", max_plus_sweep, METH_VARARGS, "Best path metrics of 2-state trellises."},
    {"sequence_metrics", sequence_metrics, METH_VARARGS, "The sequence detector's branch metrics."},
    {"frame_residuals", frame_residuals, METH_VARARGS, "CRC-24 residuals of 14-byte frames."},
    {"clipped_noise_power", clipped_noise_power, METH_VARARGS,
     "Noise power of magnitudes by the clipped-mean iteration."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    .m_base = PyModuleDef_HEAD_INIT,
    .m_name = "_samples",
    .m_doc = "Compiled per-sample kernels of the Mode S receiver.",
    .m_size = -1,
    .m_methods = methods,
};

#ifndef SAMPLES_SOURCE_DIGEST
#define SAMPLES_SOURCE_DIGEST "" /* built without setup.py */
#endif

PyMODINIT_FUNC PyInit__samples(void) {
    PyObject *m = PyModule_Create(&module);
    /* setup.py's digest of this file: native.py compares it with the source beside it */
    if (m != NULL && PyModule_AddStringConstant(m, "SOURCE_DIGEST", SAMPLES_SOURCE_DIGEST) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
