/* The request fast path, compiled into every model library (model_compiler/request_parse.c).
 *
 * ml_parse_batch reads the common request body straight into the float32 rows ml_predict takes:
 * an ASCII JSON array of records (objects keyed by exactly the model's features, in any order)
 * or of rows (arrays of NUM_FEATURES values), every value a number or null. It refuses nothing:
 * for anything outside that subset it returns 0 and the handler's full parser (orjson and
 * ml_handler.batch) accepts or refuses the body exactly as it always has, with the same error.
 * Outside the subset: escapes or non-ASCII bytes anywhere, other value types, unknown, missing
 * or repeated keys, an empty batch, more than max_rows rows, anything that is not valid JSON,
 * and numbers it cannot convert exactly as that parser does.
 *
 * Values are converted as the full path converts them: orjson reads an integer as a Python int
 * and any other number as the nearest double, then array('f') rounds that to float32, the int
 * through the nearest double too (PyLong_AsDouble). Here an integer below 2^63 is converted to
 * double by the hardware (round to nearest), and a decimal whose digits fit in 2^53 with a
 * power of ten up to 22 by one IEEE multiply or divide of two exact doubles (Clinger's fast
 * path: correctly rounded); with up to 19 digits or a power of ten up to 44, the same (one or
 * two more roundings) unless the float32 rounding is too close to call
 * (float32_rounding_is_clear); other numbers are left to the full path. null is NaN (0x7fc00000,
 * what math.nan becomes), the missing value. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

static const double EXACT_POW10[23] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                       1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
                                       1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};
#define MAX_EXACT_DIGITS (1ULL << 53)
#define DIGIT(c) ((unsigned)((c) - '0') < 10u)

typedef const unsigned char *cursor;

static cursor skip_space(cursor p, cursor end) {
    while (p < end && (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t')) ++p;
    return p;
}

/* For a decimal with more digits than 2^53 (17 to 19, as float32s printed as doubles have):
 * value is two or three roundings away from it (digits to double, then one or two scalings:
 * relative error under 3 * 2^-53, so under 3 ulps), and orjson's correctly rounded double is
 * within half an ulp of it, so the two doubles are at most 3 ulps apart. They round to the same
 * float32 unless a float32 rounding midpoint (the 29 bits a double has beyond float32's mantissa
 * equal to 2^28) lies that close: then the full path decides (the margin, 8, leaves room).
 * Normal float32 magnitudes only (below them float32 drops more bits; above, infinity). */
static int float32_rounding_is_clear(double value) {
    double magnitude = value < 0 ? -value : value;
    if (!(magnitude >= 0x1p-126 && magnitude < 0x1p128)) return 0;
    uint64_t bits;
    memcpy(&bits, &magnitude, sizeof bits);
    uint64_t dropped = bits & ((1ULL << 29) - 1);
    uint64_t midpoint = 1ULL << 28;
    return dropped + 8 < midpoint || dropped > midpoint + 8;
}

/* One JSON number (RFC 8259 grammar) or null at p into *out; the byte after it, or 0. */
static cursor parse_value(cursor p, cursor end, float *out) {
    if (p < end && *p == 'n') {
        if (end - p < 4 || p[1] != 'u' || p[2] != 'l' || p[3] != 'l') return 0;
        *out = __builtin_nanf("");
        return p + 4;
    }
    int negative = p < end && *p == '-';
    p += negative;
    if (p == end || !DIGIT(*p)) return 0;
    uint64_t digits = 0;
    int significant = 0; /* digits after the leading zeros: 19 always fit in 64 bits */
    int exponent = 0;
    int integer = 1;
    if (*p == '0') {
        ++p;
        if (p < end && DIGIT(*p)) return 0; /* a leading zero: not JSON */
    } else {
        for (; p < end && DIGIT(*p); ++p) {
            if (++significant > 19) return 0;
            digits = digits * 10 + (uint64_t)(*p - '0');
        }
    }
    if (p < end && *p == '.') {
        integer = 0;
        ++p;
        if (p == end || !DIGIT(*p)) return 0;
        for (; p < end && DIGIT(*p); ++p) {
            if ((digits || *p != '0') && ++significant > 19) return 0;
            digits = digits * 10 + (uint64_t)(*p - '0');
            --exponent;
        }
    }
    if (p < end && (*p == 'e' || *p == 'E')) {
        integer = 0;
        ++p;
        int exponent_negative = 0;
        if (p < end && (*p == '+' || *p == '-')) exponent_negative = *p++ == '-';
        if (p == end || !DIGIT(*p)) return 0;
        int written = 0;
        for (; p < end && DIGIT(*p); ++p) {
            if (written > 9999) return 0; /* far beyond any exact case; no overflow */
            written = written * 10 + (*p - '0');
        }
        exponent += exponent_negative ? -written : written;
    }
    double value;
    if (integer) {
        if (digits >= (1ULL << 63)) return 0;
        /* A Python int has no negative zero: "-0" is 0. */
        value = (double)(negative ? -(int64_t)digits : (int64_t)digits);
    } else {
        if (digits == 0) {
            value = 0.0; /* any exponent */
        } else if (exponent >= -22 && exponent <= 22) {
            value = exponent < 0 ? (double)digits / EXACT_POW10[-exponent]
                                 : (double)digits * EXACT_POW10[exponent];
            if (digits > MAX_EXACT_DIGITS && !float32_rounding_is_clear(value)) return 0;
        } else if (exponent >= -44 && exponent <= 44) {
            /* Two scalings: one more rounding, within float32_rounding_is_clear's margin. */
            int rest = exponent < 0 ? -exponent - 22 : exponent - 22;
            value = exponent < 0 ? (double)digits / 1e22 / EXACT_POW10[rest]
                                 : (double)digits * 1e22 * EXACT_POW10[rest];
            if (!float32_rounding_is_clear(value)) return 0;
        } else {
            return 0;
        }
        if (negative) value = -value;
    }
    /* |value| < 2^63 or <= 2^53 * 10^22: within float32's range, no infinity to report. */
    *out = (float)value;
    return p;
}

/* Feature index of the key [key, key + length), or -1. `guess` first: records of one batch
 * usually list their keys in one order. */
static int feature_index(cursor key, size_t length, int guess, const char *const *names,
                         const size_t *lengths) {
    if (guess >= 0 && lengths[guess] == length && memcmp(names[guess], key, length) == 0)
        return guess;
    for (int f = 0; f < NUM_FEATURES; ++f)
        if (lengths[f] == length && memcmp(names[f], key, length) == 0) return f;
    return -1;
}

/* One record at p (just past its '{') into row; the byte after its '}', or 0. */
static cursor parse_record(cursor p, cursor end, float *row, size_t stamp, size_t *seen,
                           int *order, const char *const *names, const size_t *lengths) {
    int count = 0;
    for (;;) {
        p = skip_space(p, end);
        if (p == end || *p != '"') return 0;
        cursor key = ++p;
        while (p < end && *p != '"') {
            if (*p < 0x20 || *p >= 0x80 || *p == '\\') return 0;
            ++p;
        }
        if (p == end) return 0;
        if (count >= NUM_FEATURES) return 0; /* more keys than features: unknown or repeated */
        int f = feature_index(key, (size_t)(p - key), order[count], names, lengths);
        if (f < 0 || seen[f] == stamp) return 0;
        seen[f] = stamp;
        order[count++] = f;
        p = skip_space(p + 1, end);
        if (p == end || *p != ':') return 0;
        p = parse_value(skip_space(p + 1, end), end, &row[f]);
        if (!p) return 0;
        p = skip_space(p, end);
        if (p == end) return 0;
        if (*p == '}') return count == NUM_FEATURES ? p + 1 : 0;
        if (*p++ != ',') return 0;
    }
}

/* One row at p (just past its '['); the byte after its ']', or 0. */
static cursor parse_row(cursor p, cursor end, float *row) {
    for (int f = 0; f < NUM_FEATURES; ++f) {
        p = parse_value(skip_space(p, end), end, &row[f]);
        if (!p) return 0;
        p = skip_space(p, end);
        if (p == end || *p++ != (f == NUM_FEATURES - 1 ? ']' : ',')) return 0;
    }
    return p;
}

/* The body (length bytes) into out, max_rows x NUM_FEATURES float32s in model order; names and
 * lengths: the model's feature names as bytes (UTF-8), in model order. Returns the number of
 * rows, or 0 when the full parser must decide (out's contents are then meaningless). */
ML_EXPORT size_t ml_parse_batch(const char *body, size_t length, const char *const *names,
                                const size_t *lengths, size_t max_rows, float *out) {
    cursor p = skip_space((cursor)body, (cursor)body + length);
    cursor end = (cursor)body + length;
    if (NUM_FEATURES == 0 || p == end || *p++ != '[') return 0;
    p = skip_space(p, end);
    if (p == end || (*p != '{' && *p != '[')) return 0; /* also the empty batch */
    unsigned char open = *p;
    size_t seen[NUM_FEATURES > 0 ? NUM_FEATURES : 1] = {0};
    int order[NUM_FEATURES > 0 ? NUM_FEATURES : 1];
    for (int f = 0; f < NUM_FEATURES; ++f) order[f] = f;
    size_t rows = 0;
    for (;;) {
        if (rows == max_rows || p == end || *p != open) return 0;
        float *row = out + rows * NUM_FEATURES;
        ++rows;
        p = open == '{' ? parse_record(p + 1, end, row, rows, seen, order, names, lengths)
                        : parse_row(p + 1, end, row);
        if (!p) return 0;
        p = skip_space(p, end);
        if (p == end) return 0;
        if (*p == ']') break;
        if (*p++ != ',') return 0;
        p = skip_space(p, end);
    }
    return skip_space(p + 1, end) == end ? rows : 0;
}
