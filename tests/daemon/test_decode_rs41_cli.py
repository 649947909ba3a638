"""``geosensord decode rs41``: the bundled recording and a synthesized IQ file."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import pytest

from daemon.commands import decode_rs41

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "hardware" / "rs41"))

from rs41_signal import WAV, gfsk_iq_bursts, reference_frames

FIELDS = [
    "serial",
    "frame",
    "time",
    "lat",
    "lon",
    "alt",
    "vel_h_mps",
    "heading_deg",
    "vel_v_mps",
    "sats",
    "batt_v",
    "rs_errors",
]


def _args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="geosensord decode rs41")
    decode_rs41.add_arguments(parser)
    return parser.parse_args(list(argv))


def test_wav_gives_one_json_object_per_frame_in_utc(capsys: pytest.CaptureFixture[str]) -> None:
    assert decode_rs41.run(_args(str(WAV))) == 0
    out, err = capsys.readouterr()
    objects = [json.loads(line) for line in out.splitlines()]
    assert len(objects) == 60
    first = objects[0]
    assert list(first) == FIELDS
    assert first["serial"] == "L1830070"
    assert first["frame"] == 3172
    # rs41mod says 2015-08-02T11:59:26.000Z in GPS time; UTC is 17 s earlier.
    assert first["time"] == "2015-08-02T11:59:09Z"
    assert first["lat"] == pytest.approx(46.01891, abs=1e-5)
    assert first["lon"] == pytest.approx(16.34725, abs=1e-5)
    assert first["alt"] == pytest.approx(14035.75168, abs=0.5)
    assert (first["sats"], first["batt_v"], first["rs_errors"]) == (8, 2.7, 0)
    assert [o["frame"] for o in objects] == list(range(3172, 3232))
    assert "60 frames decoded; 0 failed" in err


def test_text_format_is_one_line_per_frame(capsys: pytest.CaptureFixture[str]) -> None:
    assert decode_rs41.run(_args(str(WAV), "--format", "text")) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 60
    assert lines[0].startswith("L1830070  #3172  2015-08-02T11:59:09Z  46.01891,16.34725")


@pytest.mark.parametrize("fmt", ["u8", "cs16"])
def test_iq_file_decodes(tmp_path: Path, capsys: pytest.CaptureFixture[str], fmt: str) -> None:
    frames = reference_frames()[:3]
    path = tmp_path / f"rs41.{fmt}"
    with path.open("wb") as f:
        for chunk in gfsk_iq_bursts(frames, 2_400_000, -6_000.0, snr_db=0.0):
            iq = chunk.view(np.float32) * 0.3
            if fmt == "u8":
                f.write(np.clip(np.round(iq * 127.5 + 127.5), 0, 255).astype(np.uint8).tobytes())
            else:
                f.write(np.round(iq * 32767).astype("<i2").tobytes())
    argv = [str(path), "--iq", "--rate", "2400000", "--format-iq", fmt]
    assert decode_rs41.run(_args(*argv)) == 0
    out, err = capsys.readouterr()
    assert [json.loads(line)["frame"] for line in out.splitlines()] == [3172, 3173, 3174]
    assert "3 frames decoded" in err


def test_iq_without_rate_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert decode_rs41.run(_args(str(WAV), "--iq")) == 2
    assert "--rate" in capsys.readouterr().err


def test_missing_or_non_wav_file_fails(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert decode_rs41.run(_args(str(tmp_path / "nope.wav"))) == 1
    junk = tmp_path / "junk.wav"
    junk.write_bytes(b"not a wav file at all")
    assert decode_rs41.run(_args(str(junk))) == 1
    err = capsys.readouterr().err
    assert "nope.wav" in err and "junk.wav" in err


def test_audio_without_frames_exits_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from hardware.rs41.wav import write_wav

    path = tmp_path / "silence.wav"
    write_wav(path, np.zeros(48_000, dtype=np.float32), 48_000, 1)
    assert decode_rs41.run(_args(str(path))) == 1
    assert "0 frames decoded" in capsys.readouterr().err
