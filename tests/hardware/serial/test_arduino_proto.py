"""The sketch's protocol core (geoproto.h) agrees with the daemon's Python parser.

geoproto.h is compiled with the host g++ into a small driver; random readings it
formats must parse back (checksum and values) with `hardware.serial`, and status
lines the daemon formats must parse in C into the same rows. When avr-g++ and the
Arduino AVR core are installed, the sketch itself is compiled for the Uno.
"""

from __future__ import annotations

import random
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from hardware.serial import (
    KvParser,
    format_status,
    parse_number,
    parse_sentence,
    parse_status,
    verify_checksum,
    xor_checksum,
)

REPO = Path(__file__).resolve().parents[3]
SKETCH_DIR = REPO / "hardware" / "arduino" / "geosensor"
DRIVER = Path(__file__).with_name("geoproto_driver.cpp")
AVR_CORE = Path("/usr/share/arduino/hardware/arduino/avr")


@pytest.fixture(scope="module")
def driver(tmp_path_factory: pytest.TempPathFactory) -> Path:
    gxx = shutil.which("g++")
    if gxx is None:
        pytest.skip("no host g++ to compile geoproto.h")
    exe = tmp_path_factory.mktemp("geoproto") / "geoproto_driver"
    subprocess.run([gxx, "-std=c++11", "-O1", "-Wall", "-Wextra", "-Werror", f"-I{SKETCH_DIR}",
                    str(DRIVER), "-o", str(exe)], check=True, capture_output=True)
    return exe


def run_driver(exe: Path, commands: list[str]) -> list[str]:
    out = subprocess.run([str(exe)], input="\n".join(commands) + "\n", text=True,
                         capture_output=True, check=True, timeout=30).stdout
    return out.splitlines()


def fixed_text(scaled: int, decimals: int) -> str:
    sign = "-" if scaled < 0 else ""
    whole, frac = divmod(abs(scaled), 10**decimals)
    return f"{sign}{whole}.{frac:0{decimals}d}" if decimals else f"{sign}{whole}"


def sanitized(text: str) -> str:
    return "".join("_" if c <= " " or c in "=*," or c > "~" else c for c in text)


def test_random_readings_formatted_in_c_parse_back_in_python(driver: Path) -> None:
    rng = random.Random(6)
    commands, expected, checksummed = [], [], []
    for _ in range(400):
        with_cs = rng.random() < 0.5
        tokens, want = [], {}
        for i in range(rng.randint(1, 6)):
            key = f"k{i}"
            kind = rng.choice("ifs")
            if kind == "i":
                value = rng.randint(-(2**31) + 1, 2**31 - 1)
                tokens.append(f"{key} i {value}")
                want[key] = value
            elif kind == "f":
                decimals = rng.randint(0, 3)
                scaled = rng.randint(-100_000, 100_000)
                tokens.append(f"{key} f {scaled} {decimals}")
                want[key] = parse_number(fixed_text(scaled, decimals))
            else:
                text = "".join(chr(rng.randint(1, 130)) for _ in range(rng.randint(0, 8)))
                raw = text.encode("latin-1").hex() or "-"
                tokens.append(f"{key} s {raw}")
                want[key] = parse_number(sanitized(text))
        commands.append(f"K {int(with_cs)} 200 {len(tokens)} " + " ".join(tokens))
        expected.append(want)
        checksummed.append(with_cs)
    lines = run_driver(driver, commands)
    assert len(lines) == len(expected)
    for line, want, with_cs in zip(lines, expected, checksummed, strict=True):
        body = verify_checksum(line, required=with_cs)
        assert (body != line) == with_cs
        assert KvParser().parse(body) == want, line


def test_fixed_point_values_match_their_decimal_meaning(driver: Path) -> None:
    lines = run_driver(driver, ["K 0 64 3 temp f -5 1 hum f 402 1 p f 101325 2",
                                "K 1 64 1 t f 215 1"])
    assert lines[0] == "temp=-0.5 hum=40.2 p=1013.25"
    assert lines[1] == "t=21.5*" + f"{xor_checksum('t=21.5'):02X}"


def test_a_reading_that_does_not_fit_is_refused_not_truncated(driver: Path) -> None:
    assert run_driver(driver, ["K 1 12 2 temp f 215 1 hum f 402 1"]) == ["OVERFLOW"]


def test_checksums_agree_on_random_bytes(driver: Path) -> None:
    rng = random.Random(7)
    samples = [bytes(rng.randint(1, 255) for _ in range(rng.randint(0, 90))) for _ in range(200)]
    lines = run_driver(driver, [f"X {s.hex() or '-'}" for s in samples])
    assert lines == [f"{xor_checksum(s.decode('latin-1')):02X}" for s in samples]


def test_status_lines_from_the_daemon_parse_in_c(driver: Path) -> None:
    rng = random.Random(8)
    lines, commands = [], []
    for _ in range(200):
        rows = ["".join(chr(rng.randint(32, 126)) for _ in range(rng.randint(0, 25)))
                for _ in range(rng.randint(1, 9))]
        line = format_status(rows)
        lines.append(line)
        commands.append(f"S {line.encode().hex()}")
    out = run_driver(driver, commands)
    pos = 0
    for line in lines:
        n = int(out[pos])
        assert out[pos + 1: pos + 1 + n] == parse_status(line)
        pos += 1 + n
    assert pos == len(out)


def test_c_status_parser_rejects_what_python_rejects(driver: Path) -> None:
    good = format_status(["redis up", "spool 0"])
    corrupt = good.replace("up", "uq")
    bad = [corrupt, good[:-3], "temp=1*00", ""]
    out = run_driver(driver, [f"S {b.encode().hex() or '00'}" for b in bad])
    assert out == ["-3", "-2", "-1", "-1"]


def test_documented_example_lines_carry_correct_checksums() -> None:
    docs = [REPO / "hardware/arduino/PROTOCOL.md", SKETCH_DIR / "geoproto.h",
            SKETCH_DIR / "geosensor.ino", REPO / "hardware/serial/status.py",
            REPO / "daemon/sources/serial/README.md", REPO / "hardware/serial/protocols.py",
            REPO / "daemon/status_display.py"]
    checked = 0
    for path in docs:
        for line in re.findall(r"[>$A-Za-z][^\s`*]*(?: [^\s`*]+)*\*[0-9A-F]{2}\b",
                               path.read_text()):
            if line.startswith("$"):
                parse_sentence(line)
            elif line.startswith(">"):
                parse_status(line)
            else:
                verify_checksum(line, required=True)
            checked += 1
    assert checked >= 10


# -- the sketch itself on the AVR toolchain -----------------------------------------------

def avr_toolchain() -> tuple[str, str, str]:
    tools = [shutil.which(t) for t in ("avr-g++", "avr-gcc", "avr-size")]
    if None in tools or not (AVR_CORE / "cores/arduino/Arduino.h").exists():
        pytest.skip("avr-g++/avr-gcc/avr-size or the Arduino AVR core are not installed "
                    "(Debian: apt-get install gcc-avr avr-libc arduino-core-avr)")
    return tools[0], tools[1], tools[2]  # type: ignore[return-value]


AVR_FLAGS = ["-mmcu=atmega328p", "-DF_CPU=16000000L", "-DARDUINO=10819", "-DARDUINO_AVR_UNO",
             "-DARDUINO_ARCH_AVR", "-Os", "-ffunction-sections", "-fdata-sections",
             f"-I{AVR_CORE}/cores/arduino", f"-I{AVR_CORE}/variants/standard",
             f"-I{AVR_CORE}/libraries/SoftwareSerial/src"]
CXX_FLAGS = ["-std=gnu++11", "-fno-exceptions", "-fno-threadsafe-statics"]

U8X8_STUB = """
#pragma once
#include <stdint.h>
#define U8X8_PIN_NONE 255
extern const uint8_t u8x8_font_chroma48medium8_r[];
class U8X8_SSD1306_128X64_NONAME_HW_I2C {
 public:
  explicit U8X8_SSD1306_128X64_NONAME_HW_I2C(uint8_t reset = U8X8_PIN_NONE,
                                             uint8_t clock = U8X8_PIN_NONE,
                                             uint8_t data = U8X8_PIN_NONE);
  bool begin(void);
  void setFont(const uint8_t *font_8x8);
  void drawString(uint8_t x, uint8_t y, const char *s);
  void clearLine(uint8_t line);
};
"""


@pytest.mark.parametrize("defines", [
    [],
    ["-DGEO_DHT=0", "-DGEO_GPS=0", "-DGEO_CHECKSUM=0", "-DGEO_BAUD=9600"],
    ["-DGEO_GPS=0"],
    ["-DGEO_OLED=1"],
], ids=["default", "minimal", "no-gps", "oled-u8x8-api"])
def test_sketch_compiles_for_the_uno_without_warnings(tmp_path: Path,
                                                      defines: list[str]) -> None:
    gxx, _, _ = avr_toolchain()
    # U8g2 is not packaged here: compile the OLED code against its documented API.
    (tmp_path / "U8x8lib.h").write_text(U8X8_STUB)
    result = subprocess.run(
        [gxx, *AVR_FLAGS, *CXX_FLAGS, "-Wall", "-Wextra", "-Werror", f"-I{tmp_path}", *defines,
         "-x", "c++", "-c", str(SKETCH_DIR / "geosensor.ino"), "-o", str(tmp_path / "s.o")],
        capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_sketch_links_and_fits_an_uno(tmp_path: Path) -> None:
    gxx, gcc, size = avr_toolchain()
    core = AVR_CORE / "cores/arduino"
    # WString.cpp needs DECIMAL_DIG, which Debian's avr-libc does not define for
    # C++11; the sketch uses no String, so it is left out of the link.
    sources = [p for p in sorted(core.glob("*.cpp")) if p.name != "WString.cpp"]
    sources += sorted((AVR_CORE / "libraries/SoftwareSerial/src").glob("*.cpp"))
    jobs = [[gxx, *AVR_FLAGS, *CXX_FLAGS, "-x", "c++", "-c", str(SKETCH_DIR / "geosensor.ino"),
             "-o", str(tmp_path / "sketch.o")]]
    jobs += [[gxx, *AVR_FLAGS, *CXX_FLAGS, "-c", str(p), "-o", str(tmp_path / f"{p.name}.o")]
             for p in sources]
    jobs += [[gcc, *AVR_FLAGS, "-std=gnu11", "-c", str(p), "-o", str(tmp_path / f"{p.name}.o")]
             for p in sorted(core.glob("*.c"))]
    jobs += [[gcc, *AVR_FLAGS, "-x", "assembler-with-cpp", "-c", str(p),
              "-o", str(tmp_path / f"{p.name}.S.o")] for p in sorted(core.glob("*.S"))]
    procs = [subprocess.Popen(job, stderr=subprocess.PIPE, text=True) for job in jobs]
    for proc, job in zip(procs, jobs, strict=True):
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, f"{job[-3]}: {err}"
    elf = tmp_path / "geosensor.elf"
    subprocess.run([gcc, "-mmcu=atmega328p", "-Os", "-Wl,--gc-sections", "-o", str(elf),
                    *map(str, sorted(tmp_path.glob("*.o"))), "-lm"], check=True,
                   capture_output=True)
    text, data, bss = map(int, subprocess.run([size, str(elf)], capture_output=True, text=True,
                                              check=True).stdout.splitlines()[1].split()[:3])
    print(f"geosensor.elf: flash {text + data} B of 32256, RAM {data + bss} B of 2048")
    assert text + data <= 32256  # the Uno's flash less the bootloader
    assert data + bss <= 1536    # leave a quarter of the RAM for the stack
