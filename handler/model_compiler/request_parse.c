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
 * (beyond 64 bits, as the nearest double) and any other number as the nearest double, then
 * array('f') rounds that to float32, the int through the nearest double too (PyLong_AsDouble).
 * Here an integer below 2^63 is converted to double by the hardware (round to nearest), a
 * decimal whose digits fit in 2^53 with a power of ten up to 22 by one IEEE multiply or divide
 * of two exact doubles (Clinger's fast path: correctly rounded); with up to 19 digits or a power
 * of ten up to 44, the same with one or two more roundings when they cannot change the float32
 * (float32_rounding_is_clear: the float32s printed as 17-digit doubles, at the fast path's
 * speed); any other number by strtod (correctly rounded in glibc) of its digits respelled as
 * DIGITSe-N, which has no decimal point for a locale to change. The double is then cast to
 * float32 as array('f') does, after the full path's range check: a number whose float32 or
 * double is infinite is left to the full path, which refuses it with its own error (invalid_json
 * beyond the double range, value_out_of_range beyond float32's). null is NaN (0x7fc00000, what
 * math.nan becomes), the missing value. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static const double EXACT_POW10[23] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                       1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
                                       1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};
#define MAX_EXACT_DIGITS (1ULL << 53)
/* The smallest magnitude the float32 cast rounds to infinity: halfway between FLT_MAX and 2^128
 * (the tie goes to even, infinity); batch.py's _FLOAT32_OVERFLOW. */
#define FLOAT32_OVERFLOW 0x1.ffffffp127
#define DIGIT(c) ((unsigned)((c) - '0') < 10u)

typedef const unsigned char *cursor;

static cursor skip_space(cursor p, cursor end) {
    while (p < end && (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t')) ++p;
    return p;
}

/* Numbers with more digits than this are left to the full path (a double needs at most 767
 * significant digits to be told apart from a rounding midpoint); so are written exponents beyond
 * MAX_WRITTEN_EXPONENT, far outside the double range. Both keep every exponent within an int. */
#define MAX_NUMBER_DIGITS 800
#define MAX_WRITTEN_EXPONENT 99999

/* The double nearest to the digits of [p, end) (a JSON number's sign, integer and fraction
 * parts, grammar already checked) times 10^exponent: the digits without leading zeros or the
 * decimal point, and the exponent, respelled for strtod. */
static double correctly_rounded(cursor p, cursor end, int exponent) {
    char text[1 + MAX_NUMBER_DIGITS + 16];
    char *out = text;
    if (*p == '-') *out++ = (char)*p++;
    for (; p < end && (*p == '0' || *p == '.'); ++p) continue;
    for (; p < end; ++p)
        if (*p != '.') *out++ = (char)*p;
    *out++ = 'e';
    if (exponent < 0) *out++ = '-';
    unsigned magnitude = exponent < 0 ? 0u - (unsigned)exponent : (unsigned)exponent;
    char reversed[12];
    int length = 0;
    do reversed[length++] = (char)('0' + magnitude % 10);
    while (magnitude /= 10);
    while (length) *out++ = reversed[--length];
    *out = '\0';
    return strtod(text, NULL);
}

/* An approximation of a decimal (its digits to double, then one or two scalings: relative error
 * under 3 * 2^-53, so within 3 ulps) rounds to the same float32 as the correctly rounded double
 * (within half an ulp of the decimal, so at most 3 ulps from it) unless a float32 rounding
 * midpoint (the 29 bits a double has beyond float32's mantissa equal to 2^28) lies that close;
 * the margin, 8, leaves room. Normal float32 magnitudes only (below them float32 drops more
 * bits), and below 2^128: the overflow boundary, FLOAT32_OVERFLOW, is such a midpoint too. */
static int float32_rounding_is_clear(double value) {
    if (!(value >= 0x1p-126 && value < 0x1p128)) return 0;
    uint64_t bits;
    memcpy(&bits, &value, sizeof bits);
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
    cursor start = p;
    int negative = p < end && *p == '-';
    p += negative;
    if (p == end || !DIGIT(*p)) return 0;
    uint64_t digits = 0; /* the first 19 significant digits (after leading zeros) */
    int significant = 0; /* how many there are in all */
    int exponent = 0;    /* digits * 10^exponent is the number while significant <= 19 */
    int written = 0;     /* the exponent part's value, signed */
    if (*p == '0') {
        ++p;
        if (p < end && DIGIT(*p)) return 0; /* a leading zero: not JSON */
    } else {
        for (; p < end && DIGIT(*p); ++p) {
            if (++significant > MAX_NUMBER_DIGITS) return 0;
            if (significant <= 19) digits = digits * 10 + (uint64_t)(*p - '0');
        }
    }
    int integer = 1;
    int fraction = 0; /* digits after the point, leading zeros included */
    if (p < end && *p == '.') {
        integer = 0;
        ++p;
        if (p == end || !DIGIT(*p)) return 0;
        for (; p < end && DIGIT(*p); ++p) {
            if (++fraction > MAX_NUMBER_DIGITS) return 0;
            if ((significant || *p != '0') && ++significant <= 19) {
                digits = digits * 10 + (uint64_t)(*p - '0');
                exponent = -fraction;
            }
        }
    }
    if (significant > MAX_NUMBER_DIGITS) return 0;
    cursor mantissa_end = p;
    if (p < end && (*p == 'e' || *p == 'E')) {
        integer = 0;
        ++p;
        int exponent_negative = 0;
        if (p < end && (*p == '+' || *p == '-')) exponent_negative = *p++ == '-';
        if (p == end || !DIGIT(*p)) return 0;
        for (; p < end && DIGIT(*p); ++p) {
            if (written > MAX_WRITTEN_EXPONENT) return 0;
            written = written * 10 + (*p - '0');
        }
        if (exponent_negative) written = -written;
    }
    exponent += written;
    double value;
    if (integer && significant <= 19 && digits < (1ULL << 63)) {
        /* A Python int has no negative zero: "-0" is 0. */
        value = (double)(negative ? -(int64_t)digits : (int64_t)digits);
    } else if (significant == 0) {
        value = negative ? -0.0 : 0.0; /* any exponent */
    } else if (significant <= 19 && digits <= MAX_EXACT_DIGITS && exponent >= -22 &&
               exponent <= 22) {
        value = exponent < 0 ? (double)digits / EXACT_POW10[-exponent]
                             : (double)digits * EXACT_POW10[exponent];
        if (negative) value = -value;
    } else {
        value = 0.0;
        if (significant <= 19 && exponent >= -44 && exponent <= 44) {
            /* 17 to 19 digits (float32s printed as doubles) or two scalings: fast, and correct
             * when far enough from a float32 midpoint (float32_rounding_is_clear). */
            int rest = exponent < 0 ? -exponent - 22 : exponent - 22;
            value = exponent < -22  ? (double)digits / 1e22 / EXACT_POW10[rest]
                    : exponent > 22 ? (double)digits * 1e22 * EXACT_POW10[rest]
                    : exponent < 0  ? (double)digits / EXACT_POW10[-exponent]
                                    : (double)digits * EXACT_POW10[exponent];
        }
        if (float32_rounding_is_clear(value)) {
            if (negative) value = -value;
        } else {
            /* strtod's exponent is the last written digit's: every fraction digit counts. */
            value = correctly_rounded(start, mantissa_end, written - fraction);
        }
    }
    /* The full path's range check: a number the float32 cast would round to infinity (or one
     * beyond the double range, strtod's infinity) gets its 400 there, with its message. */
    if (!(value > -FLOAT32_OVERFLOW && value < FLOAT32_OVERFLOW)) return 0;
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
