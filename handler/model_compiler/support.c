/* Runtime support compiled into every model library (model_compiler/support.c).
 *
 * ml_format_json writes predictions as a JSON array, each float32 as its shortest round-trip
 * decimal (the closest such when several are shortest), laid out like orjson's float32 output
 * (Ryu's "pretty" layout: 6.573914, 1250000000000.0, 0.0000015, 1.5e-7, 1e+20), so a response
 * reads the same whether xgboost or this library served it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
