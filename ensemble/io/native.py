"""Compiled parsers and the writer for the common, plain case of every competition file.

A whole `ens blend` or `ens score` is dominated by parsing text: ten 55 MB submissions, or a
734 MB truth file. This module holds that work as a small C library, compiled with the
system's C compiler (`$CC`, else `cc`, `gcc` or `clang`) the first time it is needed and cached
as a shared library (in this package's `__pycache__`, or in the user's cache folder when the
package folder is read-only); later processes only load it (about 1 ms, against 0.3-0.6 s of
importing numba and loading its cached code). The calls release the GIL.

Each parser reads only the plain form of its file (unquoted printable-ASCII names, plain
decimals `-12.3456` of at most 15 significant digits, every line ended by `\\n` or `\\r\\n`)
and returns -1 at anything else; the callers then take their general, checking path, which
reads what it accepts or names the file and line of the problem. A plain decimal is
m / 10^k with m < 2^53, so one division gives the correctly rounded double (bit for bit what
pyarrow, pandas and `float()` give). Every value must also lie within the given magnitude.

`library()` is None when there is no compiler, the build fails, or `ENS_NATIVE=0` is set;
then the callers use their other paths (numba for submissions, pandas / pyarrow otherwise).
"""

from __future__ import annotations

import contextlib
import ctypes
import hashlib
import os
import sys
from pathlib import Path

import numpy as np

_SOURCE = r"""
#include <math.h>
#include <stdint.h>
#include <string.h>

/* Reading ahead: on the machines measured the hardware prefetcher left a byte loop waiting on
   memory (1.5 GB/s); a software prefetch 2 KB ahead brings it to what the loop can do. */
#if defined(__GNUC__)
#define AHEAD(p) __builtin_prefetch((const void *)((p) + 2048))
#else
#define AHEAD(p) ((void)0)
#endif

static const double POW10[16] = {1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10,
                                 1e11, 1e12, 1e13, 1e14, 1e15};

/* A plain decimal at *pp: -?digits[.digits], 1..15 digits in all, magnitude <= limit. */
static inline int parse_number(const uint8_t **pp, double *out, double limit) {
    const uint8_t *p = *pp;
    AHEAD(p);
    int negative = *p == '-';
    p += negative;
    const uint8_t *first = p;
    uint64_t m = 0;
    unsigned d;
    while ((d = (unsigned)*p - '0') < 10) { m = m * 10 + d; p++; }
    int64_t digits = p - first;
    int64_t decimals = 0;
    if (*p == '.') {
        p++;
        first = p;
        while ((d = (unsigned)*p - '0') < 10) { m = m * 10 + d; p++; }
        decimals = p - first;
        digits += decimals;
    }
    if (digits == 0 || digits > 15) return 0;
    double x = decimals ? (double)m / POW10[decimals] : (double)m; /* a division is slow */
    if (x > limit) return 0;
    *out = negative ? -x : x;
    *pp = p;
    return 1;
}

/* A plain name ending at `sep`: printable ASCII, no quote, not all spaces. Returns its end. */
static inline const uint8_t *scan_name(const uint8_t *p, uint8_t sep, uint8_t also_bad) {
    const uint8_t *first = p;
    int blank = 1;
    uint8_t b;
    while ((b = *p) != sep) {
        if (b < 0x20 || b > 0x7e || b == '"' || b == also_bad) return 0;
        blank &= b == ' ';
        p++;
    }
    if (p == first || blank) return 0;
    return p;
}

/* The line end after a row: \n or \r\n. Returns the next row's start, or 0. */
static inline const uint8_t *line_end(const uint8_t *p) {
    if (*p == '\r') p++;
    return *p == '\n' ? p + 1 : 0;
}

int64_t ens_count_byte(const uint8_t *buf, int64_t start, int64_t end, int64_t byte) {
    int64_t count = 0;
    const uint8_t *p = buf + start, *e = buf + end;
    while (p < e) {
        const uint8_t *hit = memchr(p, (int)byte, (size_t)(e - p));
        if (!hit) break;
        count++;
        p = hit + 1;
    }
    return count;
}

/* The offset just after the first `byte` at or after `from` (end if none). */
int64_t ens_after_byte(const uint8_t *buf, int64_t from, int64_t end, int64_t byte) {
    const uint8_t *hit = memchr(buf + from, (int)byte, (size_t)(end - from));
    return hit ? hit - buf + 1 : end;
}

/* The offset just after the `rows`-th line end from `start`, or -1 when there are fewer. */
int64_t ens_offset_after_lines(const uint8_t *buf, int64_t start, int64_t end, int64_t rows) {
    const uint8_t *p = buf + start, *e = buf + end;
    for (int64_t r = 0; r < rows; r++) {
        const uint8_t *hit = memchr(p, '\n', (size_t)(e - p));
        if (!hit) return -1;
        p = hit + 1;
    }
    return p - buf;
}

/* Whether the name p..name_end is name `row` of the reference names (laid out as by
   ens_gather_names). */
static inline int same_name(const uint8_t *p, const uint8_t *name_end, const uint8_t *names,
                            const int64_t *offsets, int64_t row) {
    int64_t length = offsets[row + 1] - offsets[row] - 1;
    return name_end - p == length && memcmp(p, names + offsets[row], (size_t)length) == 0;
}

/* The separator after value j of n: `sep` between values, \n or \r\n after the last. */
static inline const uint8_t *after_value(const uint8_t *p, int64_t j, int64_t n, uint8_t sep) {
    if (j < n - 1) return *p == sep ? p + 1 : 0;
    return line_end(p);
}

/* The name of the row at p, up to `sep`: its span (offsets in buf) into *start and *end, and
   the position after the separator; 0 when the name is not plain. */
static inline const uint8_t *row_name(const uint8_t *buf, const uint8_t *p, uint8_t sep,
                                      int64_t *start, int64_t *end) {
    const uint8_t *name_end = scan_name(p, sep, sep);
    if (!name_end) return 0;
    *start = p - buf;
    *end = name_end - buf;
    return name_end + 1;
}

/* The n_values numbers of a row after its name, from p, into cell[j * step]: the position
   after the row's line end, or 0 at anything not plain. */
static inline const uint8_t *row_values(const uint8_t *p, double *cell, int64_t step,
                                        int64_t n_values, uint8_t sep, double limit) {
    for (int64_t j = 0; j < n_values; j++, cell += step) {
        if (!parse_number(&p, cell, limit) || !(p = after_value(p, j, n_values, sep))) return 0;
    }
    return p;
}

/* `rows` submission rows `name,v1,...,vN` from `start`: value j of row r goes to
   values[j * stride + r] (column-major), the name spans to name_starts / name_ends. All rows
   lie before `end`, and buf[end - 1] is '\n' (so no scan runs past it). Returns the offset
   after the last row, or -1 at anything not plain. */
int64_t ens_parse_submission(const uint8_t *buf, int64_t start, int64_t end, int64_t n_values,
                             int64_t rows, double *values, int64_t stride,
                             int64_t *name_starts, int64_t *name_ends, double limit) {
    const uint8_t *p = buf + start, *e = buf + end;
    if (end <= start || buf[end - 1] != '\n') return -1;
    for (int64_t r = 0; r < rows; r++) {
        if (p >= e) return -1;
        if (!(p = row_name(buf, p, ',', name_starts + r, name_ends + r))) return -1;
        if (!(p = row_values(p, values + r, stride, n_values, ',', limit))) return -1;
    }
    return p - buf;
}

/* The same rows added into a weighted sum: total[j * stride + r] += weight * value, each
   product rounded before the sum (as numpy's `total += weight * values`). Row r must be
   named like row first_row + r of the reference names. Rows are parsed a block at a time
   into `scratch` (ACCUMULATE_BLOCK * n_values doubles), then added column by column, so
   `total` is read and written contiguously. Returns the offset after the last row, or -1
   (not plain, or another name; `total` is then partly updated). */
#define ACCUMULATE_BLOCK 64
int64_t ens_accumulate_submission(const uint8_t *buf, int64_t start, int64_t end,
                                  int64_t n_values, int64_t rows, double *total, int64_t stride,
                                  double weight, const uint8_t *names, const int64_t *offsets,
                                  int64_t first_row, double limit, double *scratch) {
    const uint8_t *p = buf + start, *e = buf + end;
    if (end <= start || buf[end - 1] != '\n') return -1;
    for (int64_t block = 0; block < rows; block += ACCUMULATE_BLOCK) {
        int64_t count = rows - block < ACCUMULATE_BLOCK ? rows - block : ACCUMULATE_BLOCK;
        for (int64_t b = 0; b < count; b++) {
            if (p >= e) return -1;
            const uint8_t *name_end = scan_name(p, ',', ',');
            if (!name_end || !same_name(p, name_end, names, offsets, first_row + block + b))
                return -1;
            p = row_values(name_end + 1, scratch + b * n_values, 1, n_values, ',', limit);
            if (!p) return -1;
        }
        for (int64_t j = 0; j < n_values; j++) {
            double *column = total + j * stride + block;
            for (int64_t b = 0; b < count; b++) {
                double product = weight * scratch[b * n_values + j];  /* -ffp-contract=off */
                column[b] = column[b] + product;
            }
        }
    }
    return p - buf;
}

/* `rows` landmark rows `name<TAB>v1<TAB>...<TAB>vN` from `start` into float32 row-major
   values (rows, N). Returns the offset after the last row, or -1. */
int64_t ens_parse_landmarks(const uint8_t *buf, int64_t start, int64_t end, int64_t n_values,
                            int64_t rows, float *values, int64_t *name_starts,
                            int64_t *name_ends, double limit) {
    const uint8_t *p = buf + start, *e = buf + end;
    if (end <= start || buf[end - 1] != '\n') return -1;
    for (int64_t r = 0; r < rows; r++) {
        if (p >= e) return -1;
        if (!(p = row_name(buf, p, '\t', name_starts + r, name_ends + r))) return -1;
        float *cell = values + r * n_values;
        for (int64_t j = 0; j < n_values; j++) {
            double x;
            if (!parse_number(&p, &x, limit) || !(p = after_value(p, j, n_values, '\t'))) return -1;
            cell[j] = (float)x;
        }
    }
    return p - buf;
}

#if defined(__GNUC__) && defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define WORDS 1
#define HIGHS 0x8080808080808080ULL
#define LOWS7 0x7F7F7F7F7F7F7F7FULL

static inline uint64_t load_word(const uint8_t *p) {
    uint64_t word;
    memcpy(&word, p, 8);
    return word;
}

/* The high bit of each byte of `word` that is '\t' (exact: no carry crosses a byte). */
static inline uint64_t tab_bytes(uint64_t word) {
    uint64_t z = word ^ 0x0909090909090909ULL;
    return ~(((z & LOWS7) + LOWS7) | z) & HIGHS;
}

/* The high bit of each byte of `word` that is an ASCII digit (exact). */
static inline uint64_t digit_bytes(uint64_t word) {
    uint64_t low = word & LOWS7;
    return (0xB9B9B9B9B9B9B9B9ULL - low) & (low + 0x5050505050505050ULL) & ~word & HIGHS;
}

/* The end of integer_row and integer_row_64: the rest of the row from q, byte by byte, with
   `tabs` tabs, `next` wanted starts and `run` digits seen before q; their result. */
static inline const uint8_t *integer_row_end(const uint8_t *q, const uint8_t *e, int64_t n_values,
                                             const int64_t *wanted, int64_t n_wanted,
                                             const uint8_t **starts, int64_t tabs, int64_t next,
                                             int run) {
    for (; q < e; q++) {
        if (*q == '\t') {
            if (run == 0) return 0;
            tabs++;
            run = 0;
            while (next < n_wanted && wanted[next] == tabs) starts[next++] = q + 1;
        } else if ((unsigned)*q - '0' < 10) {
            if (++run > 6) return 0;
        } else {
            break;
        }
    }
    if (q < e && *q == '\r') q++;
    if (q >= e || *q != '\n') return 0;
    return run > 0 && tabs == n_values - 1 && next == n_wanted ? q + 1 : 0;
}

/* Whether the row from p is n_values tab-separated unsigned integers of 1-6 digits and a
   line end, checked eight bytes at a time (all of it before `e`); if so, starts[s] is where
   value wanted[s] begins (wanted: ascending) and the result is the next row's start. A row
   of any other form (signs, decimals, longer or bad values) gets 0, and the byte parser
   decides: every row this accepts, it accepts with the same values. */
static const uint8_t *integer_row(const uint8_t *p, const uint8_t *e, int64_t n_values,
                                  const int64_t *wanted, int64_t n_wanted,
                                  const uint8_t **starts) {
    int64_t tabs = 0, next = 0;
    int run = 0; /* digits since the last tab, or since the start */
    while (next < n_wanted && wanted[next] == 0) starts[next++] = p;
    const uint8_t *q = p;
    for (; e - q >= 8; q += 8) {
        if (((uintptr_t)q & 63) < 8) AHEAD(q);
        uint64_t word = load_word(q);
        uint64_t tabs_here = tab_bytes(word);
        if ((digit_bytes(word) | tabs_here) != HIGHS) break; /* the line end, or another form */
        if (tabs_here == 0) return 0;                          /* 8+ digits */
        if (tabs_here & (tabs_here << 8)) return 0;            /* two tabs: an empty value */
        int lead = __builtin_ctzll(tabs_here) >> 3;
        if (run + lead == 0 || run + lead > 6) return 0; /* an empty value, or 7+ digits */
        int64_t count = (int64_t)(((tabs_here >> 7) * 0x0101010101010101ULL) >> 56);
        while (next < n_wanted && wanted[next] <= tabs + count) {
            uint64_t bits = tabs_here;
            for (int64_t skip = wanted[next] - tabs - 1; skip > 0; skip--) bits &= bits - 1;
            starts[next++] = q + (__builtin_ctzll(bits) >> 3) + 1;
        }
        tabs += count;
        run = __builtin_clzll(tabs_here) >> 3;
    }
    return integer_row_end(q, e, n_values, wanted, n_wanted, starts, tabs, next, run);
}
#endif

#if defined(WORDS) && defined(__SSE2__) && !defined(ENS_NO_SSE2)
#include <emmintrin.h>
#define BLOCKS 1
/* The 64-bit masks of the digit bytes and the tab bytes of q[0..63] (SSE2). */
static inline void classify_64(const uint8_t *q, uint64_t *digits, uint64_t *tabs) {
    const __m128i tab = _mm_set1_epi8('\t'), zero = _mm_set1_epi8('0'), nine = _mm_set1_epi8(9);
    uint64_t d = 0, t = 0;
    for (int part = 0; part < 4; part++) {
        __m128i bytes = _mm_loadu_si128((const __m128i *)(q + 16 * part));
        __m128i x = _mm_sub_epi8(bytes, zero);
        d |= (uint64_t)(unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(_mm_min_epu8(x, nine), x))
             << (16 * part);
        t |= (uint64_t)(unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(bytes, tab)) << (16 * part);
    }
    *digits = d;
    *tabs = t;
}

/* The number of set bits of x. */
static inline int64_t bit_count(uint64_t x) {
    x = x - ((x >> 1) & 0x5555555555555555ULL);
    x = (x & 0x3333333333333333ULL) + ((x >> 2) & 0x3333333333333333ULL);
    x = (x + (x >> 4)) & 0x0F0F0F0F0F0F0F0FULL;
    return (int64_t)((x * 0x0101010101010101ULL) >> 56);
}

/* integer_row, 64 bytes at a time (SSE2, every x86-64): the same rows, the same result. */
static const uint8_t *integer_row_64(const uint8_t *p, const uint8_t *e, int64_t n_values,
                                     const int64_t *wanted, int64_t n_wanted,
                                     const uint8_t **starts) {
    int64_t tabs = 0, next = 0;
    int run = 0; /* digits since the last tab, or since the start */
    while (next < n_wanted && wanted[next] == 0) starts[next++] = p;
    const uint8_t *q = p;
    for (; e - q >= 64; q += 64) {
        AHEAD(q);
        uint64_t digits, tabs_here;
        classify_64(q, &digits, &tabs_here);
        if ((digits | tabs_here) != ~0ULL) break; /* the line end, or another form */
        uint64_t runs = digits & (digits >> 1);
        runs &= runs >> 2;
        runs &= runs >> 3;
        if (tabs_here == 0 || runs) return 0;       /* 7+ digits */
        if (tabs_here & (tabs_here << 1)) return 0; /* two tabs: an empty value */
        int lead = __builtin_ctzll(tabs_here);
        if (run + lead == 0 || run + lead > 6) return 0; /* an empty value, or 7+ digits */
        int64_t count = bit_count(tabs_here);
        while (next < n_wanted && wanted[next] <= tabs + count) {
            uint64_t bits = tabs_here;
            for (int64_t skip = wanted[next] - tabs - 1; skip > 0; skip--) bits &= bits - 1;
            starts[next++] = q + __builtin_ctzll(bits) + 1;
        }
        tabs += count;
        run = __builtin_clzll(tabs_here);
    }
    return integer_row_end(q, e, n_values, wanted, n_wanted, starts, tabs, next, run);
}
#endif

#define MAX_WANTED 256

/* The same rows, every value checked, keeping only the points `indices` asks for: row r must
   be named like reference row first_row + r; its point indices[r * k + i] (x, y) goes to
   out[(r * k + i) * 2 + {0, 1}] as the float32 value (read_landmarks' type) widened to a
   double (NaN for a negative index, ragged padding). `scratch` holds
   n_values floats. Integer rows are checked a word at a time and only the wanted values
   parsed; any other row value by value. Returns the offset after the last row, or -1. */
int64_t ens_parse_landmarks_at(const uint8_t *buf, int64_t start, int64_t end, int64_t n_values,
                               int64_t rows, const int32_t *indices, int64_t k, double *out,
                               float *scratch, const uint8_t *names, const int64_t *offsets,
                               int64_t first_row, double limit) {
    const uint8_t *p = buf + start, *e = buf + end;
    int64_t n_points = n_values / 2;
    if (end <= start || buf[end - 1] != '\n') return -1;
    for (int64_t r = 0; r < rows; r++) {
        if (p >= e) return -1;
        const uint8_t *name_end = scan_name(p, '\t', '\t');
        if (!name_end || !same_name(p, name_end, names, offsets, first_row + r)) return -1;
        p = name_end + 1;
        const int32_t *row_indices = indices + r * k;
        double *row_out = out + r * k * 2;
        for (int64_t i = 0; i < k; i++) {
            if (row_indices[i] >= n_points) return -1;
            if (row_indices[i] < 0) row_out[2 * i] = row_out[2 * i + 1] = NAN;
        }
#ifdef WORDS
        if (k <= MAX_WANTED && limit >= 999999.0) {
            int64_t order[MAX_WANTED], wanted[MAX_WANTED], n_wanted = 0;
            const uint8_t *starts[MAX_WANTED];
            for (int64_t i = 0; i < k; i++) { /* insertion sort of the wanted points */
                if (row_indices[i] < 0) continue;
                int64_t value = 2 * (int64_t)row_indices[i], s = n_wanted++;
                for (; s > 0 && wanted[s - 1] > value; s--) {
                    wanted[s] = wanted[s - 1];
                    order[s] = order[s - 1];
                }
                wanted[s] = value;
                order[s] = i;
            }
#ifdef BLOCKS
            const uint8_t *next_row = integer_row_64(p, e, n_values, wanted, n_wanted, starts);
#else
            const uint8_t *next_row = integer_row(p, e, n_values, wanted, n_wanted, starts);
#endif
            if (next_row) {
                for (int64_t s = 0; s < n_wanted; s++) {
                    const uint8_t *q = starts[s];
                    double x, y;
                    if (!parse_number(&q, &x, limit) || *q++ != '\t' ||
                        !parse_number(&q, &y, limit))
                        return -1; /* cannot happen: integer_row checked the row */
                    row_out[2 * order[s]] = (double)(float)x;
                    row_out[2 * order[s] + 1] = (double)(float)y;
                }
                p = next_row;
                continue;
            }
        }
#endif
        for (int64_t j = 0; j < n_values; j++) {
            double x;
            if (!parse_number(&p, &x, limit) || !(p = after_value(p, j, n_values, '\t'))) return -1;
            scratch[j] = (float)x;
        }
        for (int64_t i = 0; i < k; i++) {
            int64_t index = row_indices[i];
            if (index >= 0) {
                row_out[2 * i] = scratch[2 * index];
                row_out[2 * i + 1] = scratch[2 * index + 1];
            }
        }
    }
    return p - buf;
}

/* test_points rows `name<TAB>[i, j, ...]` (", " or "," between 1..9-digit indices): the
   indices of all rows one after another in `flat`, and each row's count. */
int64_t ens_parse_test_points(const uint8_t *buf, int64_t start, int64_t end, int64_t capacity,
                              int32_t *flat, int64_t flat_capacity, int32_t *counts,
                              int64_t *name_starts, int64_t *name_ends) {
    const uint8_t *p = buf + start, *e = buf + end;
    int64_t row = 0, total = 0;
    if (end <= start || buf[end - 1] != '\n') return -1;
    while (p < e) {
        if (row == capacity) return -1;
        if (!(p = row_name(buf, p, '\t', name_starts + row, name_ends + row))) return -1;
        if (*p++ != '[') return -1;
        int32_t count = 0;
        for (;;) {
            const uint8_t *first = p;
            int32_t index = 0;
            unsigned d;
            while ((d = (unsigned)*p - '0') < 10 && p - first < 9) { index = index * 10 + d; p++; }
            if (p == first || (unsigned)*p - '0' < 10) return -1;
            if (total == flat_capacity) return -1;
            flat[total++] = index;
            count++;
            if (*p == ']') break;
            if (*p++ != ',') return -1;
            if (*p == ' ') p++;
        }
        counts[row] = count;
        if (!(p = line_end(p + 1))) return -1;
        row++;
    }
    return row;
}

/* The first row of index lists (flat, counts) with an index >= n_points or one repeated
   within the row, or -1. `stamp` holds n_points int64 set to -1. */
int64_t ens_first_bad_index_row(const int32_t *flat, const int32_t *counts, int64_t rows,
                                int64_t n_points, int64_t *stamp) {
    const int32_t *index = flat;
    for (int64_t r = 0; r < rows; r++) {
        for (int32_t i = 0; i < counts[r]; i++, index++) {
            if (*index >= n_points || stamp[*index] == r) return r;
            stamp[*index] = r;
        }
    }
    return -1;
}

/* Copy the names (spans of buf) into `out`, each followed by '\n'; offsets[r] is where name r
   starts (offsets[rows] the end). */
void ens_gather_names(const uint8_t *buf, const int64_t *name_starts, const int64_t *name_ends,
                      int64_t rows, uint8_t *out, int64_t *offsets) {
    int64_t cursor = 0;
    for (int64_t r = 0; r < rows; r++) {
        int64_t length = name_ends[r] - name_starts[r];
        offsets[r] = cursor;
        memcpy(out + cursor, buf + name_starts[r], (size_t)length);
        cursor += length;
        out[cursor++] = '\n';
    }
    offsets[rows] = cursor;
}

/* The first row whose name (names as gathered above) repeats an earlier one, or -1.
   `table` holds table_size (a power of two, > rows) int64 slots set to -1. */
int64_t ens_first_duplicate(const uint8_t *names, const int64_t *offsets, int64_t rows,
                            int64_t *table, int64_t table_size) {
    uint64_t mask = (uint64_t)table_size - 1;
    for (int64_t r = 0; r < rows; r++) {
        const uint8_t *name = names + offsets[r];
        int64_t length = offsets[r + 1] - offsets[r];
        uint64_t h = 1469598103934665603ULL;
        for (int64_t k = 0; k < length; k++) { h ^= name[k]; h *= 1099511628211ULL; }
        h ^= h >> 31;
        h *= 0x9E3779B97F4A7C15ULL;
        uint64_t slot = (h >> 20) & mask;
        while (table[slot] >= 0) {
            int64_t other = table[slot];
            if (offsets[other + 1] - offsets[other] == length &&
                memcmp(names + offsets[other], name, (size_t)length) == 0)
                return r;
            slot = (slot + 1) & mask;
        }
        table[slot] = r;
    }
    return -1;
}

/* Two ASCII digits of 0..99. */
static const char PAIRS[201] =
    "00010203040506070809101112131415161718192021222324252627282930313233343536373839"
    "40414243444546474849505152535455565758596061626364656667686970717273747576777879"
    "8081828384858687888990919293949596979899";

/* How many decimal digits k has (k < 10^19); without a loop (a data-dependent loop exit
   costs a mispredicted branch for about every value). */
static const uint64_t POW10_U64[20] = {1ULL, 10ULL, 100ULL, 1000ULL, 10000ULL, 100000ULL,
    1000000ULL, 10000000ULL, 100000000ULL, 1000000000ULL, 10000000000ULL, 100000000000ULL,
    1000000000000ULL, 10000000000000ULL, 100000000000000ULL, 1000000000000000ULL,
    10000000000000000ULL, 100000000000000000ULL, 1000000000000000000ULL,
    10000000000000000000ULL};
static inline int digit_count(uint64_t k) {
#if defined(__GNUC__)
    int guess = ((64 - __builtin_clzll(k | 1)) * 1233) >> 12; /* floor(log10(2^bits)) */
    return guess + ((k | 1) >= POW10_U64[guess]); /* k | 1: zero has one digit */
#else
    int count = 1;
    for (uint64_t bound = 10; count < 19 && k >= bound; bound *= 10) count++;
    return count;
#endif
}

/* The last `count` decimal digits of k at o (leading zeros included), two at a time from the
   right; returns the end. */
static inline uint8_t *write_digits(uint8_t *o, uint64_t k, int count) {
    uint8_t *end = o + count, *q = end;
    for (; count >= 2; count -= 2) {
        unsigned pair = (unsigned)(k % 100) * 2;
        k /= 100;
        q -= 2;
        q[0] = (uint8_t)PAIRS[pair];
        q[1] = (uint8_t)PAIRS[pair + 1];
    }
    if (count) *--q = (uint8_t)('0' + k % 10);
    return end;
}

/* k / 10^d for d in 0..6, by constants (a division by a variable is slow). */
static inline uint64_t divide_pow10(uint64_t k, int64_t d) {
    switch (d) {
    case 0: return k;
    case 1: return k / 10;
    case 2: return k / 100;
    case 3: return k / 1000;
    case 4: return k / 10000;
    case 5: return k / 100000;
    default: return k / 1000000;
    }
}

/* CSV lines of rows start..stop: the name (bytes offsets[r] .. offsets[r + 1] - tail), then
   each value rounded half-to-even to `decimals` (0..6) places in its shortest form: with
   k = rint(x * 10^decimals), the digits of k / 10^decimals, trailing zeros of the fraction
   dropped, "-0" for a negative zero. Values are column-major with `stride`. Bytes written,
   or -1 when a name needs quoting or a value is not finite with magnitude below 1e9. */
int64_t ens_format_rows(const uint8_t *names, const int64_t *offsets, int64_t tail,
                        const double *values, int64_t n_values, int64_t stride, int64_t start,
                        int64_t stop, double scale, int64_t decimals, uint8_t *out) {
    uint8_t *o = out;
    uint64_t unit = 1;
    for (int64_t d = 0; d < decimals; d++) unit *= 10;
    for (int64_t r = start; r < stop; r++) {
        for (int64_t q = offsets[r]; q < offsets[r + 1] - tail; q++) {
            uint8_t b = names[q];
            if (b == ',' || b == '"' || b == '\n' || b == '\r') return -1;
            *o++ = b;
        }
        const double *cell = values + r;
        for (int64_t j = 0; j < n_values; j++, cell += stride) {
            double value = *cell;
            if (!(fabs(value) < 1e9)) return -1;
            *o++ = ',';
            double scaled = rint(value * scale);
            if (scaled < 0 || (scaled == 0 && signbit(scaled))) *o++ = '-';
            uint64_t k = (uint64_t)fabs(scaled);
            uint64_t whole = divide_pow10(k, decimals), fraction = k - whole * unit;
            o = write_digits(o, whole, digit_count(whole));
            if (fraction) {
                int places = (int)decimals;
                while (fraction % 10 == 0) {
                    fraction /= 10;
                    places--;
                }
                *o++ = '.';
                o = write_digits(o, fraction, places);
            }
        }
        *o++ = '\n';
    }
    return o - out;
}
"""

_FLAGS = ["-O2", "-shared", "-fPIC", "-std=c99", "-ffp-contract=off"]
_KEY = hashlib.sha256(
    "\0".join(
        [_SOURCE, *_FLAGS, sys.platform, os.uname().machine if hasattr(os, "uname") else ""]
    ).encode()
).hexdigest()[:16]
_NAME = f"ens_native-{_KEY}.so"
_P = ctypes.c_void_p
_I = ctypes.c_int64
_D = ctypes.c_double
_SIGNATURES = {
    "ens_count_byte": (_I, [_P, _I, _I, _I]),
    "ens_after_byte": (_I, [_P, _I, _I, _I]),
    "ens_offset_after_lines": (_I, [_P, _I, _I, _I]),
    "ens_parse_submission": (_I, [_P, _I, _I, _I, _I, _P, _I, _P, _P, _D]),
    "ens_accumulate_submission": (_I, [_P, _I, _I, _I, _I, _P, _I, _D, _P, _P, _I, _D, _P]),
    "ens_parse_landmarks": (_I, [_P, _I, _I, _I, _I, _P, _P, _P, _D]),
    "ens_parse_landmarks_at": (_I, [_P, _I, _I, _I, _I, _P, _I, _P, _P, _P, _P, _I, _D]),
    "ens_parse_test_points": (_I, [_P, _I, _I, _I, _P, _I, _P, _P, _P]),
    "ens_first_bad_index_row": (_I, [_P, _P, _I, _I, _P]),
    "ens_gather_names": (None, [_P, _P, _P, _I, _P, _P]),
    "ens_first_duplicate": (_I, [_P, _P, _I, _P, _I]),
    "ens_format_rows": (_I, [_P, _P, _I, _P, _I, _I, _I, _I, _D, _I, _P]),
}
_UNSET = object()
_library: object = _UNSET


def _folders() -> list[Path]:
    """Where the built library may live: beside this module, then the user's cache folder."""
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return [Path(__file__).with_name("__pycache__"), Path(cache) / "ens"]


def library() -> ctypes.CDLL | None:
    """The compiled library (built on first use), or None where it cannot be had."""
    global _library
    if _library is _UNSET:
        _library = None if os.environ.get("ENS_NATIVE", "1") == "0" else _load_or_build()
    return _library  # type: ignore[return-value]


def _load_or_build() -> ctypes.CDLL | None:
    for folder in _folders():
        path = folder / _NAME
        if path.is_file():
            loaded = _load(path)
            if loaded is not None:
                return loaded
    for folder in _folders():
        if (folder / f"{_NAME}.failed").exists():
            return None  # the compiler failed before: do not retry on every run
        built = _build(folder)
        if built == "failed":
            return None
        if built is not None:
            return _load(built)
    return None


def _load(path: Path) -> ctypes.CDLL | None:
    try:
        lib = ctypes.CDLL(str(path))
    except OSError:
        return None
    for name, (restype, argtypes) in _SIGNATURES.items():
        function = getattr(lib, name)
        function.restype = restype
        function.argtypes = argtypes
    return lib


def _build(folder: Path, flags: list[str] = _FLAGS) -> Path | str | None:
    """Compile the library into `folder` (atomically).

    None when there is no compiler or the folder is not writable, "failed" when the compiler
    failed (remembered in NAME.failed: delete it to retry).
    """
    import shutil
    import subprocess
    import tempfile

    compiler = os.environ.get("CC") or next(
        (c for c in ("cc", "gcc", "clang") if shutil.which(c)), None
    )
    if compiler is None:
        return None
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=folder, prefix=".ens_native_") as tmp:
            source = Path(tmp) / "ens_native.c"
            source.write_text(_SOURCE)
            target = Path(tmp) / _NAME
            command = [*compiler.split(), *flags, "-o", str(target), str(source), "-lm"]
            try:
                done = subprocess.run(command, capture_output=True, timeout=120, check=False)
            except (OSError, subprocess.TimeoutExpired):
                done = None
            if done is None or done.returncode != 0 or not target.is_file():
                (folder / f"{_NAME}.failed").write_bytes(done.stderr if done else b"")
                return "failed"
            final = folder / _NAME
            os.replace(target, final)
    except OSError:
        return None
    for stale in folder.glob("ens_native-*.so*"):  # builds of earlier versions of the source
        if not stale.name.startswith(_NAME):
            with contextlib.suppress(OSError):
                stale.unlink()
    return final


# ----------------------------------------------------------------------------------------------
# helpers shared by the readers


def address(array: np.ndarray) -> int:
    return array.ctypes.data


ACCUMULATE_BLOCK = 64  # rows a block of ens_accumulate_submission (its scratch: this x values)


def read_bytes(path: Path) -> np.ndarray:
    """A file's bytes as a read-only uint8 array, memory-mapped where possible.

    Mapping takes no memory beyond the page cache and copies nothing (a 734 MB truth file
    would otherwise need 734 MB of fresh memory); the mapping closes with the last array
    that refers to it. (A file truncated by another process while it is being read would
    fault, as with any memory-mapped reader.)
    """
    import mmap

    with open(path, "rb") as handle:
        try:
            mapped = mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ)
        except (ValueError, OSError):  # empty, or not a regular file
            return np.frombuffer(handle.read(), dtype=np.uint8)
    return np.frombuffer(mapped, dtype=np.uint8)


def plain_bytes(path: Path) -> np.ndarray | None:
    """A file's bytes (`read_bytes`) for the compiled readers, or None where they cannot take
    it: empty, or its last line without a line end (the general readers say what is wrong)."""
    buffer = read_bytes(path)
    return buffer if len(buffer) and buffer[-1] == 10 else None


def plain_file(path: Path) -> tuple[ctypes.CDLL, np.ndarray, int] | None:
    """(library, bytes, offset of the first row after the header) of a file for the compiled
    readers, or None: no library, or `plain_bytes` refuses the file."""
    lib = library()
    buffer = plain_bytes(path) if lib is not None else None
    return None if buffer is None else (lib, buffer, body_start(lib, buffer))


def body_start(lib: ctypes.CDLL, buffer: np.ndarray) -> int:
    """The offset of the line after the header."""
    return int(lib.ens_after_byte(address(buffer), 0, len(buffer), 10))


def count_lines(lib: ctypes.CDLL, buffer: np.ndarray, start: int, end: int | None = None) -> int:
    """Line ends in buffer[start:end]."""
    end = len(buffer) if end is None else end
    return int(lib.ens_count_byte(address(buffer), start, end, 10))


def split_rows(lib: ctypes.CDLL, buffer: np.ndarray, start: int, parts: int) -> list[int]:
    """Offsets cutting buffer[start:] into `parts` pieces at line starts: [start, ..., end]."""
    end = len(buffer)
    cuts = [start]
    for part in range(1, parts):
        guess = start + (end - start) * part // parts
        cut = int(lib.ens_after_byte(address(buffer), max(guess, cuts[-1]), end, 10))
        cuts.append(cut)
    cuts.append(end)
    return cuts


class Names:
    """File names as parsed: their bytes, each followed by a line end, and where each starts.

    Name r is `data[offsets[r] : offsets[r + 1] - 1]`; no name holds a line end.
    """

    def __init__(self, data: np.ndarray, offsets: np.ndarray) -> None:
        self.data = data
        self.offsets = offsets

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def equals(self, other: Names) -> bool:
        """Same names in the same order."""
        return len(self) == len(other) and np.array_equal(self.data, other.data)

    def is_utf8(self) -> bool:
        """Whether the names are UTF-8 text (always, for names the C reader read)."""
        try:
            self.data.tobytes().decode("utf-8")
        except UnicodeDecodeError:
            return False
        return True

    def to_list(self) -> list[str]:
        """The names as Python strings (UTF-8)."""
        if len(self) == 0:
            return []
        return self.data[:-1].tobytes().decode("utf-8").split("\n")

    def to_numpy(self) -> np.ndarray:
        """The names as an object array of str."""
        out = np.empty(len(self), dtype=object)
        out[:] = self.to_list()
        return out

    def first_duplicate(self, lib: ctypes.CDLL) -> int:
        """The first row whose name repeats an earlier one, or -1."""
        size = 1 << max(4, (2 * len(self)).bit_length())
        table = np.full(size, -1, dtype=np.int64)
        return int(
            lib.ens_first_duplicate(
                address(self.data), address(self.offsets), len(self), address(table), size
            )
        )


def gather_names(
    lib: ctypes.CDLL, buffer: np.ndarray, starts: np.ndarray, ends: np.ndarray
) -> Names:
    """The names at the spans (starts, ends) of `buffer`."""
    rows = len(starts)
    data = np.empty(int((ends - starts).sum()) + rows, dtype=np.uint8)
    offsets = np.empty(rows + 1, dtype=np.int64)
    lib.ens_gather_names(
        address(buffer), address(starts), address(ends), rows, address(data), address(offsets)
    )
    return Names(data, offsets)


def names_from_strings(names: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """(data, offsets) of UTF-8 names laid out like `Names` (each followed by a line end)."""
    text = "\n".join(names) + "\n"
    if text.isascii():  # one encode; each name's length in bytes is its length in characters
        offsets = np.zeros(len(names) + 1, dtype=np.int64)
        np.cumsum(
            np.fromiter(map(len, names), dtype=np.int64, count=len(names)) + 1, out=offsets[1:]
        )
        return np.frombuffer(text.encode("ascii"), dtype=np.uint8), offsets
    encoded = [name.encode("utf-8") for name in names]
    offsets = np.zeros(len(encoded) + 1, dtype=np.int64)
    np.cumsum([len(item) + 1 for item in encoded], out=offsets[1:])
    data = np.frombuffer(b"".join(item + b"\n" for item in encoded), dtype=np.uint8)
    return data, offsets
