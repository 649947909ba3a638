/*
 * geoproto.h — the geosensor serial protocol, in plain C (no Arduino headers),
 * so the same code runs in the sketch and in the host tests that check it
 * against the daemon's Python parser (tests/hardware/serial/test_arduino_proto.py).
 *
 * Device -> daemon, one reading per line ("kv" protocol):
 *
 *     temp=21.5 hum=40.2 a0=512 up_s=37*16\n
 *     ^ key=value pairs separated by one space      ^ optional *HH: XOR of every
 *                                                     char before '*', 2 hex digits
 *
 * Daemon -> device, one status line for the display (see hardware/serial/status.py):
 *
 *     >redis up|spool 0|bench 0.5/s*38\n
 *     ^ prefix, rows separated by '|', *HH over everything before '*' (required)
 *
 * Values are written from integers (AVR printf has no %f): geo_put_fixed(l, "temp",
 * 215, 1) writes "temp=21.5". Nothing here allocates; a line that does not fit its
 * buffer is reported by geo_line_finish returning 0 (the sketch then drops it).
 */
#ifndef GEOPROTO_H
#define GEOPROTO_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define GEO_STATUS_PREFIX '>'
#define GEO_STATUS_MAX 120 /* bytes including the LF, as MAX_STATUS_BYTES */

typedef struct {
    char *buf;
    size_t cap; /* bytes in buf, including the terminating NUL */
    size_t len;
    uint8_t overflow;
} geo_line;

/* XOR of the n bytes at s. */
static inline uint8_t geo_xor(const char *s, size_t n) {
    uint8_t x = 0;
    for (size_t i = 0; i < n; i++) x ^= (uint8_t)s[i];
    return x;
}

static inline void geo_line_init(geo_line *l, char *buf, size_t cap) {
    l->buf = buf;
    l->cap = cap;
    l->len = 0;
    l->overflow = cap == 0;
    if (cap) buf[0] = '\0';
}

static inline void geo_putc(geo_line *l, char c) {
    if (l->len + 1 >= l->cap) {
        l->overflow = 1;
        return;
    }
    l->buf[l->len++] = c;
    l->buf[l->len] = '\0';
}

static inline void geo_puts(geo_line *l, const char *s) {
    while (*s) geo_putc(l, *s++);
}

static inline void geo_put_key(geo_line *l, const char *key) {
    if (l->len) geo_putc(l, ' ');
    geo_puts(l, key);
    geo_putc(l, '=');
}

static inline void geo_put_uint_digits(geo_line *l, unsigned long v, uint8_t min_digits) {
    char digits[12];
    uint8_t n = 0;
    do {
        digits[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v && n < sizeof digits);
    while (n < min_digits && n < sizeof digits) digits[n++] = '0';
    while (n) geo_putc(l, digits[--n]);
}

/* key=<value> for a signed integer. */
static inline void geo_put_int(geo_line *l, const char *key, long value) {
    geo_put_key(l, key);
    unsigned long mag = value < 0 ? 0UL - (unsigned long)value : (unsigned long)value;
    if (value < 0) geo_putc(l, '-');
    geo_put_uint_digits(l, mag, 1);
}

/* key=<scaled / 10^decimals> with exactly `decimals` digits after the point. */
static inline void geo_put_fixed(geo_line *l, const char *key, long scaled, uint8_t decimals) {
    unsigned long div = 1;
    for (uint8_t i = 0; i < decimals; i++) div *= 10;
    geo_put_key(l, key);
    unsigned long mag = scaled < 0 ? 0UL - (unsigned long)scaled : (unsigned long)scaled;
    if (scaled < 0) geo_putc(l, '-');
    geo_put_uint_digits(l, mag / div, 1);
    if (decimals) {
        geo_putc(l, '.');
        geo_put_uint_digits(l, mag % div, decimals);
    }
}

/* key=<text>; spaces, '=', '*' and control characters in text become '_'. */
static inline void geo_put_str(geo_line *l, const char *key, const char *text) {
    geo_put_key(l, key);
    for (; *text; text++) {
        char c = *text;
        geo_putc(l, (c <= ' ' || c == '=' || c == '*' || c == ',' || c > '~') ? '_' : c);
    }
}

/* Append "*HH" when with_checksum; return the line length, or 0 if it overflowed. */
static inline size_t geo_line_finish(geo_line *l, uint8_t with_checksum) {
    static const char hex[] = "0123456789ABCDEF";
    if (with_checksum && !l->overflow) {
        uint8_t x = geo_xor(l->buf, l->len);
        geo_putc(l, '*');
        geo_putc(l, hex[x >> 4]);
        geo_putc(l, hex[x & 15]);
    }
    return l->overflow ? 0 : l->len;
}

static inline int geo_hex_value(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
}

#define GEO_STATUS_NOT_STATUS (-1)
#define GEO_STATUS_NO_CHECKSUM (-2)
#define GEO_STATUS_BAD_CHECKSUM (-3)

/*
 * Parse a status line in place (the trailing CR/LF already removed): verify
 * ">…*HH", split the rows at '|' (NUL-terminating each) and point rows[] at
 * them. Returns the number of rows (at most max_rows; extra rows are ignored),
 * or a negative GEO_STATUS_* error.
 */
static inline int geo_parse_status(char *line, char *rows[], int max_rows) {
    size_t n = strlen(line);
    if (n == 0 || line[0] != GEO_STATUS_PREFIX) return GEO_STATUS_NOT_STATUS;
    if (n < 4 || line[n - 3] != '*') return GEO_STATUS_NO_CHECKSUM;
    int hi = geo_hex_value(line[n - 2]), lo = geo_hex_value(line[n - 1]);
    if (hi < 0 || lo < 0) return GEO_STATUS_NO_CHECKSUM;
    if (geo_xor(line, n - 3) != (uint8_t)(hi * 16 + lo)) return GEO_STATUS_BAD_CHECKSUM;
    line[n - 3] = '\0';
    int count = 0;
    char *p = line + 1;
    while (count < max_rows) {
        rows[count++] = p;
        char *bar = strchr(p, '|');
        if (!bar) break;
        *bar = '\0';
        p = bar + 1;
    }
    return count;
}

#endif /* GEOPROTO_H */
