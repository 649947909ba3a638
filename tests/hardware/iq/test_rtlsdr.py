"""Local RTL-SDR: a clear error without a dongle (or library); a real read when one is there."""

from __future__ import annotations

import pytest

from hardware.iq.base import TunerSettings
from hardware.iq.errors import DeviceUnavailableError
from hardware.iq.rtlsdr import RtlSdrSource, list_devices


def dongles() -> int:
    try:
        return len(list_devices())
    except DeviceUnavailableError:
        return 0


def test_opening_a_missing_dongle_says_what_is_wrong_and_what_to_do() -> None:
    if dongles():
        pytest.skip("an RTL-SDR is attached; this test needs none at index 9")
    with pytest.raises(DeviceUnavailableError) as err:
        RtlSdrSource(9).read_block()
    assert err.value.device == "index 9"
    # Either pyrtlsdr cannot load librtlsdr (install hint) or no dongle (plug-in hint).
    assert "pip install" in err.value.reason or "plugged in" in err.value.reason


def test_serial_numbers_name_the_device_in_errors() -> None:
    if dongles():
        pytest.skip("an RTL-SDR is attached")
    with pytest.raises(DeviceUnavailableError) as err:
        RtlSdrSource("nosuchserial").read_block()
    assert err.value.device == "serial 'nosuchserial'"


@pytest.mark.hardware
def test_attached_dongle_delivers_a_block_of_samples() -> None:
    if not dongles():
        pytest.skip("no RTL-SDR attached (list_devices found none)")
    src = RtlSdrSource(0, TunerSettings(), block_samples=65_536)
    try:
        block = src.read_block()
    except DeviceUnavailableError as exc:
        pytest.skip(f"RTL-SDR attached but not usable here: {exc}")
    finally:
        src.close()
    assert block is not None
    assert block.n_samples == 65_536
    assert 100 < float(block.iq.mean()) < 155  # u8 IQ centred near 127.5
