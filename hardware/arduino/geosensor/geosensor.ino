/*
 * geosensor — example sensors for geosensord over USB serial.
 *
 * Prints one reading per line in geosensord's "kv" protocol, optionally with
 * the *HH line checksum, passes NMEA sentences from a GPS through unchanged
 * (whole lines only, so they never interleave with readings), and shows the
 * status lines the daemon sends back on an SSD1306 OLED. Protocol: PROTOCOL.md;
 * wiring: README.md. Daemon side: [sources.<name>] type = "serial", protocol =
 * "kv", gps = true, checksum = "xor"; [status_display] source = "<name>".
 *
 *     # geosensor 1 kv checksum=xor period_ms=2000        (boot banner, a comment)
 *     a0=512 temp=21.5 hum=40.2 up_s=37*16                (every GEO_PERIOD_MS)
 *     $GNGGA,123519.00,4807.03800,N,01131.00000,E,1,08,0.9,545.4,M,46.9,M,,*77
 *
 * Everything is fixed-point: AVR's printf has no %f, and floats cost flash.
 */

/* ---- configuration ------------------------------------------------------ */
#ifndef GEO_BAUD
#define GEO_BAUD 115200       /* 9600 … 115200; the daemon's `baud` */
#endif
#ifndef GEO_CHECKSUM
#define GEO_CHECKSUM 1        /* 1: append *HH (daemon: checksum = "xor") */
#endif
#ifndef GEO_PERIOD_MS
#define GEO_PERIOD_MS 2000UL  /* one reading every … ms (DHT22: at least 2000) */
#endif
#ifndef GEO_ANALOG_PIN
#define GEO_ANALOG_PIN A0     /* reported as a0=0…1023 */
#endif
#ifndef GEO_DHT
#define GEO_DHT 1             /* 1: DHT22/AM2302 on GEO_DHT_PIN (temp, hum) */
#endif
#ifndef GEO_DHT_PIN
#define GEO_DHT_PIN 2
#endif
#ifndef GEO_GPS
#define GEO_GPS 1             /* 1: GPS on SoftwareSerial, NMEA passed through */
#endif
#ifndef GEO_GPS_RX_PIN
#define GEO_GPS_RX_PIN 4      /* Arduino RX <- GPS TX */
#endif
#ifndef GEO_GPS_TX_PIN
#define GEO_GPS_TX_PIN 3      /* Arduino TX -> GPS RX (unused but reserved) */
#endif
#ifndef GEO_GPS_BAUD
#define GEO_GPS_BAUD 9600
#endif
#ifndef GEO_OLED
#define GEO_OLED 0            /* 0 none, 1 U8x8 (U8g2 library), 2 Adafruit_SSD1306 */
#endif

#include <Arduino.h>
#include "geoproto.h"

#if GEO_GPS
#include <SoftwareSerial.h>
SoftwareSerial gps(GEO_GPS_RX_PIN, GEO_GPS_TX_PIN);
#endif

#if GEO_OLED == 1
#include <U8x8lib.h>
U8X8_SSD1306_128X64_NONAME_HW_I2C oled(U8X8_PIN_NONE);
#define OLED_COLS 16
#elif GEO_OLED == 2
#include <Wire.h>
#include <Adafruit_GFX.h>
#include <Adafruit_SSD1306.h>
Adafruit_SSD1306 oled(128, 64, &Wire, -1);
#define OLED_COLS 21
#endif

#define OLED_ROWS 8
#define LINE_MAX 96           /* one reading */
#define NMEA_MAX 90           /* NMEA 0183 allows 82 chars; some receivers exceed it */

static char reading[LINE_MAX];
#if GEO_GPS
static char nmea[NMEA_MAX];
static uint8_t nmea_len = 0;
static uint8_t nmea_drop = 0;
#endif
static char status[GEO_STATUS_MAX];
static uint8_t status_len = 0;
static uint8_t status_drop = 0;
static unsigned long next_ms = 0;

/* ---- DHT22: one 40-bit frame, timed with micros() ----------------------- */
#if GEO_DHT
/*
 * Loop iterations while the pin stays at `level`, or 0 after GEO_DHT_SPIN_MAX.
 * Counting iterations rather than reading micros(): with interrupts off for the
 * whole ~5 ms frame, timer 0 overflows are missed and micros() jumps.
 */
#define GEO_DHT_SPIN_MAX 2000U
static uint16_t dht_spin(uint8_t level) {
    uint16_t n = 1;
    while (digitalRead(GEO_DHT_PIN) == level) {
        if (n++ >= GEO_DHT_SPIN_MAX) return 0;
    }
    return n;
}

/* Temperature in 0.1 degC and humidity in 0.1 %; 0 on success, else an error code. */
static int dht_read(int *temp_dc, int *hum_dpct) {
    uint8_t data[5] = {0, 0, 0, 0, 0};
    pinMode(GEO_DHT_PIN, OUTPUT);
    digitalWrite(GEO_DHT_PIN, LOW);
    delay(2);                                  /* start: >= 1 ms low */
    pinMode(GEO_DHT_PIN, INPUT_PULLUP);
    delayMicroseconds(40);
    int err = 0;
    noInterrupts();                            /* ~5 ms: the bit timing needs it */
    /* Response: 80 us low, 80 us high; then per bit 50 us low and 26-28 us (0)
     * or 70 us (1) high: a bit is 1 when its high lasted longer than its low. */
    if (!dht_spin(LOW) || !dht_spin(HIGH)) {
        err = 1;                               /* no response */
    } else {
        for (uint8_t i = 0; i < 40; i++) {
            uint16_t low = dht_spin(LOW);
            uint16_t high = dht_spin(HIGH);
            if (!low || !high) { err = 2; break; }
            data[i / 8] = (uint8_t)((data[i / 8] << 1) | (high > low ? 1 : 0));
        }
    }
    interrupts();
    if (err) return err;
    if ((uint8_t)(data[0] + data[1] + data[2] + data[3]) != data[4]) return 3;
    *hum_dpct = (int)(((uint16_t)data[0] << 8) | data[1]);
    int t = (int)((((uint16_t)data[2] & 0x7F) << 8) | data[3]);
    *temp_dc = (data[2] & 0x80) ? -t : t;
    return 0;
}
#endif

/* ---- output ------------------------------------------------------------- */
static void send_reading(void) {
    geo_line l;
    geo_line_init(&l, reading, sizeof reading);
    geo_put_int(&l, "a0", analogRead(GEO_ANALOG_PIN));
#if GEO_DHT
    int temp_dc = 0, hum_dpct = 0;
    int err = dht_read(&temp_dc, &hum_dpct);
    if (err == 0) {
        geo_put_fixed(&l, "temp", temp_dc, 1);
        geo_put_fixed(&l, "hum", hum_dpct, 1);
    } else {
        geo_put_int(&l, "dht_err", err);
    }
#endif
    geo_put_int(&l, "up_s", (long)(millis() / 1000UL));
    if (geo_line_finish(&l, GEO_CHECKSUM)) {
        Serial.write(reading, l.len);
        Serial.write('\n');
    }
}

/* ---- status display ----------------------------------------------------- */
static void show_status(char *line) {
    char *rows[OLED_ROWS];
    int n = geo_parse_status(line, rows, OLED_ROWS);
    if (n < 0) return;                         /* not for us, or corrupted */
#if GEO_OLED == 1
    for (uint8_t r = 0; r < OLED_ROWS; r++) {
        oled.clearLine(r);
        if (r < n) {
            rows[r][strlen(rows[r]) > OLED_COLS ? OLED_COLS : strlen(rows[r])] = '\0';
            oled.drawString(0, r, rows[r]);
        }
    }
#elif GEO_OLED == 2
    oled.clearDisplay();
    oled.setCursor(0, 0);
    for (int r = 0; r < n; r++) oled.println(rows[r]);
    oled.display();
#else
    (void)rows;
#endif
}

/* Feed one byte into a line buffer; true when a whole line (NUL-terminated) is ready. */
static bool take_byte(char c, char *buf, uint8_t cap, uint8_t *len, uint8_t *drop) {
    if (c == '\r') return false;
    if (c == '\n') {
        bool ok = !*drop && *len > 0;
        buf[*len] = '\0';
        *len = 0;
        *drop = 0;
        return ok;
    }
    if (*len + 1 >= cap) {                     /* too long: drop the rest of it */
        *drop = 1;
        return false;
    }
    buf[(*len)++] = c;
    return false;
}

void setup() {
    Serial.begin(GEO_BAUD);
#if GEO_GPS
    gps.begin(GEO_GPS_BAUD);
#endif
#if GEO_OLED == 1
    oled.begin();
    oled.setFont(u8x8_font_chroma48medium8_r);
    oled.drawString(0, 0, "geosensor");
#elif GEO_OLED == 2
    oled.begin(SSD1306_SWITCHCAPVCC, 0x3C);
    oled.setTextSize(1);
    oled.setTextColor(SSD1306_WHITE);
    oled.clearDisplay();
    oled.println("geosensor");
    oled.display();
#endif
    Serial.print(F("# geosensor 1 kv checksum="));
    Serial.print(GEO_CHECKSUM ? F("xor") : F("none"));
    Serial.print(F(" period_ms="));
    Serial.println(GEO_PERIOD_MS);
    next_ms = millis() + GEO_PERIOD_MS;
}

void loop() {
#if GEO_GPS
    while (gps.available()) {
        if (take_byte((char)gps.read(), nmea, NMEA_MAX, &nmea_len, &nmea_drop) && nmea[0] == '$') {
            Serial.write(nmea, strlen(nmea));
            Serial.write('\n');
        }
    }
#endif
    while (Serial.available()) {
        if (take_byte((char)Serial.read(), status, GEO_STATUS_MAX, &status_len, &status_drop)) {
            show_status(status);
        }
    }
    if ((long)(millis() - next_ms) >= 0) {
        next_ms += GEO_PERIOD_MS;
        send_reading();
    }
}
