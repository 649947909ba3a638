"""The sonde sources' config: README sample blocks validate and document every key,
mistakes are named at load time, and the public surface is deliberate."""

from __future__ import annotations

from pathlib import Path

import pytest

from daemon.config import ConfigErrors, parse_config
from daemon.sources import source_types
from daemon.sources.sonde import autorx, rs41, sondehub

README = Path(__file__).resolve().parents[4] / "daemon/sources/sonde/README.md"
STATION_TOML = '[station]\nid = "poa"\nlat = -30.03\nlon = -51.23\n'


def readme_blocks() -> list[str]:
    text = README.read_text()
    return [part.split("```", 1)[0] for part in text.split("```toml\n")[1:]]


def test_readme_sample_blocks_validate_and_document_every_key() -> None:
    full, replay = readme_blocks()
    sources = parse_config(STATION_TOML + full).sources
    assert set(sources["sonde"]) - {"type"} == set(rs41.FIELDS)
    assert set(sources["autorx"]) - {"type"} == set(autorx.FIELDS)
    assert set(sources["sondehub"]) - {"type"} == set(sondehub.FIELDS)
    assert sources["autorx"]["bind"] == "127.0.0.1" and sources["autorx"]["port"] == 55673
    replayed = parse_config(STATION_TOML + replay).sources["sonde_replay"]
    assert replayed["format"] == "wav"


def test_the_three_types_are_registered() -> None:
    assert {"rs41", "autorx", "sondehub"} <= set(source_types())


@pytest.mark.parametrize(("block", "key", "says"), [
    ('type = "rs41"\ninput = "rtlsdr://0"\nfrequency = 402700000\n',
     "sources.s.frequency", 'did you mean "frequency_hz"'),
    ('type = "rs41"\ninput = "udp://x"\n', "sources.s.input", "unknown scheme"),
    ('type = "rs41"\ninput = "x.bin"\niq_format = "cf32"\n', "sources.s.iq_format", "cs16"),
    ('type = "autorx"\nport = 70000\n', "sources.s.port", "outside"),
    ('type = "autorx"\nbind = "my host"\n', "sources.s.bind", "not an address"),
    ('type = "sondehub"\ninterval = 5\n', "sources.s.interval", "outside [30"),
    ('type = "sondehub"\nserials = ["", 3]\n', "sources.s.serials", "serial numbers"),
    ('type = "sondehub"\nduration = "2h"\n', "sources.s.duration", "3h"),
])
def test_mistakes_are_named_at_load_time(block: str, key: str, says: str) -> None:
    with pytest.raises(ConfigErrors) as info:
        parse_config(STATION_TOML + "[sources.s]\n" + block, "geo.toml")
    (error,) = info.value.errors
    assert error.key == key
    assert says in error.message
    assert error.line is not None


def test_wav_format_needs_a_file_input(tmp_path: Path) -> None:
    from sonde_fixtures import make_ctx
    from source_kit import make_cfg

    cfg = make_cfg(rs41.FIELDS, "rs41", input="rtl_tcp://127.0.0.1:1234", format="wav")
    with pytest.raises(ValueError, match="needs a file input"):
        rs41.build("s", cfg, make_ctx(tmp_path))


def test_public_surface_is_deliberate() -> None:
    import daemon.sources.sonde as sonde

    assert sorted(sonde.__all__) == ["FrameMemo", "KIND", "SondeFix", "event_id"]
    for module in (sonde, rs41, autorx, sondehub):
        assert all(hasattr(module, name) for name in module.__all__)
    assert sonde.event_id("S1234567", 42) == "sonde:S1234567:42"
