/* Runtime support compiled into every model library (model_compiler/support.c).
 *
 * ml_format_json writes predictions as a JSON array, each float32 as its shortest round-trip
 * decimal (the closest such when several are shortest), laid out like orjson's float32 output
 * (Ryu's "pretty" layout: 6.573914, 1250000000000.0, 0.0000015, 1.5e-7, 1e+20), so a response
 * reads the same whether xgboost or this library served it.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* --- the exact fast path: 1e-19 <= |v| < 2^24, which holds every realistic prediction ----
 * v = m * 2^e; the values that read back as v are those within half an ulp of it (the lower
 * gap halves at a power of two), endpoints included when m is even (strtof's ties-to-even).
 * A decimal D * 10^-j lies in that interval iff lower * 10^j <= D <= upper * 10^j: with both
 * bounds as integers over 2^s, that is integer arithmetic (128 bits: 27-bit numerators, 10^j
 * up to 10^29, s up to 92), exact where snprintf/strtof probing costs microseconds. The first
 * j (fewest digits) whose range holds an integer gives the shortest; of several, the one
 * nearest v (ties to even D). */
typedef unsigned __int128 u128;

static const uint64_t POW10_64[20] = {
    1ULL, 10ULL, 100ULL, 1000ULL, 10000ULL, 100000ULL, 1000000ULL, 10000000ULL, 100000000ULL,
    1000000000ULL, 10000000000ULL, 100000000000ULL, 1000000000000ULL, 10000000000000ULL,
    100000000000000ULL, 1000000000000000ULL, 10000000000000000ULL, 100000000000000000ULL,
    1000000000000000000ULL, 10000000000000000000ULL};

static u128 pow10_128(int j) {
    return j < 20 ? (u128)POW10_64[j] : (u128)POW10_64[19] * POW10_64[j - 19];
}

/* floor(num * 10^j / 2^s) and whether the division is exact, for -8 <= j <= 29. */
static u128 scaled_floor(uint64_t num, int j, int s, int *exact) {
    if (j >= 0) {
        u128 x = (u128)num * pow10_128(j);
        *exact = (x & (((u128)1 << s) - 1)) == 0;
        return x >> s;
    }
    uint64_t q = num >> s;
    uint64_t unit = POW10_64[-j];
    *exact = (num & ((1ULL << s) - 1)) == 0 && q % unit == 0;
    return q / unit;
}

/* Whether some integer D has lower <= D * 10^-j <= upper (endpoints as `inclusive` says), and
 * the range of such D. */
static int digits_fit(uint64_t low_num, uint64_t high_num, int inclusive, int j, int s, u128 *lo,
                      u128 *hi) {
    int low_exact, high_exact;
    *lo = scaled_floor(low_num, j, s, &low_exact);
    if (!low_exact || !inclusive) *lo += 1; /* ceil, or past an excluded endpoint */
    *hi = scaled_floor(high_num, j, s, &high_exact);
    if (high_exact && !inclusive) *hi -= 1;
    return *lo <= *hi;
}

/* The shortest digits of a positive finite v in the fast path's range as D (no trailing
 * zeros) and the exponent of its first digit; 0 if v is outside that range. */
static int shortest_fast(float v, uint64_t *digits_out, int *exponent_out) {
    uint32_t bits;
    memcpy(&bits, &v, sizeof bits);
    int biased = (int)(bits >> 23) & 0xff;
    uint64_t fraction = bits & 0x7fffff;
    if (biased == 0) return 0; /* subnormal */
    int e = biased - 150;      /* v = m * 2^e */
    if (e > 0 || e < -90) return 0;
    uint64_t m = fraction | 0x800000;
    int s = 2 - e; /* the bounds are (4m - 1 or 2) / 2^s and (4m + 2) / 2^s */
    uint64_t low_num = 4 * m - (fraction == 0 && biased > 1 ? 1 : 2);
    uint64_t high_num = 4 * m + 2;
    uint64_t value_num = 4 * m;
    int inclusive = (m & 1) == 0;
    /* No D >= 1 fits below j = -floor(log10(upper)); one less guards log10's rounding. Nine
     * significant digits always fit, and whether some D fits is monotone in j (D fits at j,
     * 10 D at j + 1): a binary search finds the fewest digits in four steps. */
    double upper = ldexp((double)high_num, -s);
    int first = -(int)floor(log10(upper)) - 1;
    if (first < -8) first = -8;
    int last = first + 11;
    if (last > 29) return 0; /* below 1e-19: 10^j would overflow */
    u128 lo = 0, hi = 0;
    if (!digits_fit(low_num, high_num, inclusive, last, s, &lo, &hi)) return 0;
    while (first < last) {
        int middle = first + (last - first) / 2;
        if (digits_fit(low_num, high_num, inclusive, middle, s, &lo, &hi))
            last = middle;
        else
            first = middle + 1;
    }
    int j = last;
    digits_fit(low_num, high_num, inclusive, j, s, &lo, &hi);
    int value_exact;
    u128 d = scaled_floor(value_num, j, s, &value_exact);
    if (!value_exact) {
        /* v * 10^j rounded to nearest, ties to even: 2 v 10^j against 2d + 1, over 2^s 10^-j */
        u128 twice, middle;
        if (j >= 0) {
            twice = ((u128)value_num * pow10_128(j)) << 1;
            middle = (2 * d + 1) << s;
        } else {
            twice = (u128)value_num << 1;
            middle = ((2 * d + 1) << s) * POW10_64[-j];
        }
        if (twice > middle || (twice == middle && (d & 1))) d += 1;
    }
    /* The nearest decimal of this length may fall just outside the interval: the closest
     * inside is then the interval's end. */
    if (d < lo) d = lo;
    if (d > hi) d = hi;
    /* At most ten digits: 64-bit division from here (128-bit division is a libgcc call). */
    uint64_t digits = (uint64_t)d;
    while (digits % 10 == 0) {
        digits /= 10;
        --j;
    }
    int length = 1;
    for (uint64_t rest = digits; rest >= 10; rest /= 10) ++length;
    *digits_out = digits;
    *exponent_out = length - 1 - j;
    return 1;
}

/* The p-digit decimal of |v| that round-trips and is closest to it, or -1 if none: the
 * correctly rounded one first, then its two neighbours (near a power of two the rounding
 * interval is lopsided and a neighbour may round-trip where the nearest does not). */
static long long probe(float v, int precision, int *scale_out) {
    char text[40];
    snprintf(text, sizeof text, "%.*e", precision - 1, (double)v);
    char *mark = strchr(text, 'e');
    int exp10 = atoi(mark + 1);
    long long mantissa = 0;
    for (char *p = text; p < mark; ++p)
        if (*p >= '0' && *p <= '9') mantissa = mantissa * 10 + (*p - '0');
    int scale = exp10 - (precision - 1);
    *scale_out = scale;
    long long chosen = -1;
    double best = 0.0;
    for (int delta = 0; delta <= 2; ++delta) {
        long long candidate = delta == 0 ? mantissa : delta == 1 ? mantissa - 1 : mantissa + 1;
        if (candidate <= 0) continue;
        char number[48];
        snprintf(number, sizeof number, "%llde%d", candidate, scale);
        if (strtof(number, NULL) != v) continue;
        if (delta == 0) return candidate; /* the nearest candidate of this length round-trips */
        double distance = strtod(number, NULL) - (double)v;
        if (distance < 0) distance = -distance;
        if (chosen < 0 || distance < best) {
            chosen = candidate;
            best = distance;
        }
    }
    return chosen;
}

/* The shortest digit string (no trailing zeros) of a finite non-zero |v| and the exponent of
 * its first digit. Whether some p-digit decimal round-trips is monotone in p (9 always does);
 * most float32 values need 7 or 8 digits, so the search starts at 7 and walks down or up. */
static int shortest_digits(float v, char *digits, int *exponent) {
    uint64_t fast;
    if (shortest_fast(v, &fast, exponent)) {
        char number[24];
        int length = 0;
        do {
            number[length++] = (char)('0' + fast % 10);
            fast /= 10;
        } while (fast);
        for (int i = 0; i < length; ++i) digits[i] = number[length - 1 - i];
        return length;
    }
    int scale = 0, best_scale = 0;
    long long best = probe(v, 7, &scale);
    best_scale = scale;
    if (best >= 0) {
        for (int precision = 6; precision >= 1; --precision) {
            long long shorter = probe(v, precision, &scale);
            if (shorter < 0) break;
            best = shorter;
            best_scale = scale;
        }
    } else {
        for (int precision = 8; precision <= 9 && best < 0; ++precision) {
            best = probe(v, precision, &scale);
            best_scale = scale;
        }
    }
    char number[24];
    int length = snprintf(number, sizeof number, "%lld", best);
    *exponent = best_scale + length - 1;
    while (length > 1 && number[length - 1] == '0') --length;
    memcpy(digits, number, (size_t)length);
    return length;
}

static size_t format_one(float v, char *out) {
    char *start = out;
    if (v != v || v - v != 0.0f) { /* NaN or infinity: JSON has no such number */
        memcpy(out, "null", 4);
        return 4;
    }
    if (v < 0.0f || (v == 0.0f && 1.0f / v < 0.0f)) {
        *out++ = '-';
        v = -v;
    }
    if (v == 0.0f) {
        memcpy(out, "0.0", 3);
        return (size_t)(out - start) + 3;
    }
    char digits[16];
    int exponent = 0;
    int length = shortest_digits(v, digits, &exponent);
    int kk = exponent + 1; /* 10^(kk-1) <= v < 10^kk */
    if (length <= kk && kk <= 13) {
        memcpy(out, digits, (size_t)length);
        out += length;
        for (int i = length; i < kk; ++i) *out++ = '0';
        memcpy(out, ".0", 2);
        out += 2;
    } else if (0 < kk && kk <= 13) {
        memcpy(out, digits, (size_t)kk);
        out += kk;
        *out++ = '.';
        memcpy(out, digits + kk, (size_t)(length - kk));
        out += length - kk;
    } else if (-6 < kk && kk <= 0) {
        *out++ = '0';
        *out++ = '.';
        for (int i = kk; i < 0; ++i) *out++ = '0';
        memcpy(out, digits, (size_t)length);
        out += length;
    } else {
        *out++ = digits[0];
        if (length > 1) {
            *out++ = '.';
            memcpy(out, digits + 1, (size_t)(length - 1));
            out += length - 1;
        }
        out += sprintf(out, exponent > 0 ? "e+%d" : "e%d", exponent);
    }
    return (size_t)(out - start);
}

/* Bytes ml_format_json needs at most for n values. */
ML_EXPORT size_t ml_json_capacity(size_t n) { return 2 + n * 18; }

/* "[v0,v1,...]" into out (capacity from ml_json_capacity); returns its length, not terminated. */
ML_EXPORT size_t ml_format_json(const float *values, size_t n, char *out) {
    char *p = out;
    *p++ = '[';
    for (size_t i = 0; i < n; ++i) {
        if (i) *p++ = ',';
        p += format_one(values[i], p);
    }
    *p++ = ']';
    return (size_t)(p - out);
}
