"""`geosensord check-config`: every class of config error is reported with file, line and key.

Exit 2 and one ``PATH:LINE: key: message`` line on stderr per problem; exit 0 when
valid. The process contract is proven with the real CLI as a subprocess (``python -m
daemon check-config PATH``); the many per-error cases call the same entry point in
process (see `check_config`).
"""

from __future__ import annotations

import contextlib
import importlib
import io
import os
import re
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest

from daemon.cli import main as cli_main

REPO = Path(__file__).resolve().parents[2]

# The issue's "config keys other tools rely on", verbatim.
ISSUE_SNIPPET = """\
[station]
id = "pi-porto-alegre"
lat = -30.03
lon = -51.23
alt = 10.0

[redis]
url = "redis://127.0.0.1:6379/0"   # or "embedded", or "rediss://…"

[streams]
prefix = "geo"
maxlen = 1000000

[sources.quakes]
type = "usgs"
url = "https://earthquake.usgs.gov/earthquakes/feed/v1.0/summary/all_hour.geojson"  # or a file path
interval = 60

[sources.replay]
type = "jsonl"
path = "recorded.jsonl"
"""

# A valid base that needs no source module other than jsonl; tests append or edit lines.
STATION = """\
[station]
id = "test-station"
lat = 10.5
lon = 20.25
alt = 3.0
"""


def _usgs_missing_reason() -> str | None:
    """Why the usgs adapter cannot be used yet (None once it imports with FIELDS and build)."""
    try:
        module = importlib.import_module("daemon.sources.usgs")
    except ImportError as exc:
        return f"daemon.sources.usgs does not import yet: {exc}"
    missing = [name for name in ("FIELDS", "build") if not hasattr(module, name)]
    if missing:
        return f"daemon.sources.usgs is not finished yet (no {', '.join(missing)})"
    return None


USGS_MISSING = _usgs_missing_reason()
needs_usgs = pytest.mark.skipif(USGS_MISSING is not None, reason=USGS_MISSING or "")


@dataclass
class Checked:
    """What one `check-config` run printed."""

    path: str
    returncode: int
    stdout: str
    errors: list[str]

    def error_for(self, key: str) -> str:
        """The one stderr line reporting `key` (fails the test if there is none)."""
        pattern = re.compile(rf"^{re.escape(self.path)}:\d+: {re.escape(key)}: ")
        found = [e for e in self.errors if pattern.match(e)]
        assert found, f"no error line for {key!r} in:\n" + "\n".join(self.errors)
        return found[0]

    def line_of(self, key: str) -> int:
        """The line number reported for `key`."""
        m = re.match(rf"^{re.escape(self.path)}:(\d+): ", self.error_for(key))
        assert m is not None
        return int(m.group(1))


def check_config(path: Path, *, subprocess_run: bool = False) -> Checked:
    """Run `check-config` on `path`.

    With `subprocess_run`, as ``python -m daemon check-config PATH`` in a child process
    (the repo is put on PYTHONPATH: it is not installed). Otherwise the same entry point
    (`daemon.cli.main`, what ``python -m daemon`` calls) runs in this process, which is
    much cheaper; the tests that prove the process contract (exit status, stderr) use
    the subprocess.
    """
    if subprocess_run:
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        proc = subprocess.run(
            [sys.executable, "-m", "daemon", "check-config", str(path)],
            capture_output=True, text=True, timeout=30, env=env, cwd=path.parent,
        )
        code, out, err = proc.returncode, proc.stdout, proc.stderr
    else:
        out_buf, err_buf = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out_buf), contextlib.redirect_stderr(err_buf):
            code = cli_main(["check-config", str(path)])
        out, err = out_buf.getvalue(), err_buf.getvalue()
    return Checked(str(path), code, out, [line for line in err.splitlines() if line.strip()])


def write(tmp_path: Path, text: str, name: str = "config.toml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def line_number(text: str, needle: str) -> int:
    """1-based line of the first line of `text` containing `needle`."""
    for n, line in enumerate(text.splitlines(), start=1):
        if needle in line:
            return n
    raise AssertionError(f"{needle!r} not in text")


# -- valid files -------------------------------------------------------------------------


def test_minimal_station_with_jsonl_source_and_sink_is_valid(tmp_path: Path) -> None:
    path = write(tmp_path, STATION + """
[sources.replay]
type = "jsonl"
path = "recorded.jsonl"
follow = true

[sinks.rec]
type = "jsonl"
path = "out.jsonl"
""")
    result = check_config(path)
    assert result.returncode == 0, result.errors
    assert result.errors == []
    assert "ok" in result.stdout


@needs_usgs
def test_repository_config_toml_is_valid() -> None:
    result = check_config(REPO / "config.toml", subprocess_run=True)
    assert result.returncode == 0, result.errors
    assert result.errors == []


@needs_usgs
def test_issue_snippet_with_usgs_and_jsonl_sources_is_valid(tmp_path: Path) -> None:
    result = check_config(write(tmp_path, ISSUE_SNIPPET), subprocess_run=True)
    assert result.returncode == 0, result.errors
    assert result.errors == []


# -- TOML syntax ------------------------------------------------------------------------


def test_toml_syntax_error_reports_the_line_tomllib_found(tmp_path: Path) -> None:
    text = STATION.replace("lat = 10.5", "lat = = 10.5")
    result = check_config(write(tmp_path, text), subprocess_run=True)
    assert result.returncode == 2
    assert len(result.errors) == 1
    want = line_number(text, "lat = =")
    assert result.errors[0].startswith(f"{result.path}:{want}: ")
    assert "TOML syntax error" in result.errors[0]


def test_duplicate_key_is_a_syntax_error_on_the_second_occurrence(tmp_path: Path) -> None:
    text = STATION + 'id = "again"\n'
    result = check_config(write(tmp_path, text))
    assert result.returncode == 2
    assert result.errors[0].startswith(f"{result.path}:{line_number(text, 'again')}: ")


def test_syntax_error_at_end_of_document_still_names_a_line(tmp_path: Path) -> None:
    # tomllib says "(at end of document)" without a line for an unterminated value; the
    # contract is still PATH:LINE, and the last line is where the problem is.
    text = STATION + "index_levels = [\n"
    result = check_config(write(tmp_path, text))
    assert result.returncode == 2
    assert len(result.errors) == 1
    assert re.match(rf"^{re.escape(result.path)}:{len(text.splitlines())}: ", result.errors[0]), (
        result.errors[0]
    )


# -- unknown keys and tables ------------------------------------------------------------


def test_unknown_key_in_a_source_suggests_the_nearest_valid_key(tmp_path: Path) -> None:
    text = STATION + """
[sources.replay]
type = "jsonl"
path = "recorded.jsonl"
folow = true
"""
    result = check_config(write(tmp_path, text))
    assert result.returncode == 2
    err = result.error_for("sources.replay.folow")
    assert 'did you mean "follow"?' in err
    assert result.line_of("sources.replay.folow") == line_number(text, "folow")


def test_unknown_key_in_a_top_table_suggests_the_nearest_valid_key(tmp_path: Path) -> None:
    text = STATION + """
[streams]
maxlenn = 5

[redis]
pasword = "x"
"""
    result = check_config(write(tmp_path, text))
    assert result.returncode == 2
    assert 'did you mean "maxlen"?' in result.error_for("streams.maxlenn")
    assert 'did you mean "password"?' in result.error_for("redis.pasword")
    assert result.line_of("streams.maxlenn") == line_number(text, "maxlenn")
    assert result.line_of("redis.pasword") == line_number(text, "pasword")


def test_unknown_key_with_no_near_match_lists_the_valid_keys(tmp_path: Path) -> None:
    text = STATION + "\n[pipeline]\nwhatever = 1\n"
    err = check_config(write(tmp_path, text)).error_for("pipeline.whatever")
    for key in ("queue_size", "batch_size", "batch_latency_ms"):
        assert key in err


def test_unknown_table_suggests_the_nearest_table(tmp_path: Path) -> None:
    text = STATION + "\n[stremas]\nprefix = \"geo\"\n"
    result = check_config(write(tmp_path, text))
    assert result.returncode == 2
    assert 'did you mean "streams"?' in result.error_for("stremas")
    assert result.line_of("stremas") == line_number(text, "[stremas]")


def test_unknown_source_type_suggests_a_known_type(tmp_path: Path) -> None:
    text = STATION + '\n[sources.rec]\ntype = "jsnol"\npath = "x.jsonl"\n'
    result = check_config(write(tmp_path, text))
    assert result.returncode == 2
    err = result.error_for("sources.rec.type")
    assert "unknown type 'jsnol'" in err
    assert 'did you mean "jsonl"?' in err
    assert result.line_of("sources.rec.type") == line_number(text, 'type = "jsnol"')


def test_source_without_type_is_reported(tmp_path: Path) -> None:
    text = STATION + '\n[sources.rec]\npath = "x.jsonl"\n'
    result = check_config(write(tmp_path, text))
    assert result.returncode == 2
    assert "type" in result.error_for("sources.rec")
    assert result.line_of("sources.rec") == line_number(text, "[sources.rec]")


def test_unknown_sink_type_is_reported(tmp_path: Path) -> None:
    text = STATION + '\n[sinks.out]\ntype = "jsonll"\npath = "x"\n'
    err = check_config(write(tmp_path, text)).error_for("sinks.out.type")
    assert 'did you mean "jsonl"?' in err


# -- types and ranges -------------------------------------------------------------------


def test_wrong_type_names_the_expected_type_and_the_value(tmp_path: Path) -> None:
    text = STATION.replace("lat = 10.5", 'lat = "north"')
    result = check_config(write(tmp_path, text))
    assert result.returncode == 2
    err = result.error_for("station.lat")
    assert "expected a number" in err
    assert "'north'" in err
    assert result.line_of("station.lat") == line_number(text, '"north"')


def test_boolean_is_not_accepted_as_a_number(tmp_path: Path) -> None:
    text = STATION + "\n[pipeline]\nbatch_size = true\n"
    err = check_config(write(tmp_path, text)).error_for("pipeline.batch_size")
    assert "expected an integer" in err


def test_wrong_type_in_a_source_table(tmp_path: Path) -> None:
    text = STATION + '\n[sources.replay]\ntype = "jsonl"\npath = "x.jsonl"\nfollow = "yes"\n'
    result = check_config(write(tmp_path, text))
    assert "expected a boolean" in result.error_for("sources.replay.follow")
    assert result.line_of("sources.replay.follow") == line_number(text, 'follow = "yes"')


# (table, line, dotted key, expected fragment of the message)
RANGE_CASES = [
    ("station", "lat = 91", "station.lat", "outside [-90, 90]"),
    ("station", "lat = -90.5", "station.lat", "outside [-90, 90]"),
    ("station", "lon = -181", "station.lon", "outside [-180, 180]"),
    ("station", "lon = 180.0001", "station.lon", "outside [-180, 180]"),
    ("station", "alt = nan", "station.alt", "not a finite number"),
    ("streams", "maxlen = -1", "streams.maxlen", ">= 0"),
    ("streams", "cell_maxlen = -10", "streams.cell_maxlen", ">= 0"),
    ("streams", "max_age_s = -60", "streams.max_age_s", ">= 0"),
    ("streams", "index_levels = [10, 6, 14]", "streams.index_levels", "strictly increasing"),
    ("streams", "index_levels = [6, 6]", "streams.index_levels", "strictly increasing"),
    ("streams", "index_levels = [6, 31]", "streams.index_levels", "0..30"),
    ("streams", "cell_stream_level = 31", "streams.cell_stream_level", "outside [0, 30]"),
    ("pipeline", "batch_size = 0", "pipeline.batch_size", "outside [1, 100000]"),
    ("pipeline", "queue_size = 0", "pipeline.queue_size", ">= 1"),
    ("redis", "socket_timeout_s = -1.0", "redis.socket_timeout_s", "> 0"),
    ("log", 'level = "loud"', "log.level", "not one of"),
    ("station", 'id = ""', "station.id", "must not be empty"),
    ("streams", 'prefix = "  "', "streams.prefix", "must not be empty"),
]


@pytest.fixture(scope="module")
def range_results(tmp_path_factory: pytest.TempPathFactory) -> dict[int, tuple[Checked, str]]:
    """Each RANGE_CASES index -> (check-config result, file text).

    Cases are packed into as few files as possible (a key at most once per file) so the
    CLI runs a handful of times instead of once per case.
    """
    groups: list[list[int]] = []
    for i, (_, _, key, _) in enumerate(RANGE_CASES):
        for group in groups:
            if all(RANGE_CASES[j][2] != key for j in group):
                group.append(i)
                break
        else:
            groups.append([i])
    out: dict[int, tuple[Checked, str]] = {}
    for n, group in enumerate(groups):
        text = STATION
        tables: dict[str, list[str]] = {}
        for i in group:
            table, line, key, _ = RANGE_CASES[i]
            if table == "station":
                name = key.split(".")[1]
                text = re.sub(rf"^{name} = .*$", line, text, flags=re.M)
            else:
                tables.setdefault(table, []).append(line)
        for table, lines in tables.items():
            text += f"\n[{table}]\n" + "\n".join(lines) + "\n"
        result = check_config(write(tmp_path_factory.mktemp(f"range{n}"), text))
        for i in group:
            out[i] = (result, text)
    return out


@pytest.mark.parametrize("case", range(len(RANGE_CASES)), ids=[c[1] for c in RANGE_CASES])
def test_out_of_range_value_is_reported_with_its_line(
    range_results: dict[int, tuple[Checked, str]], case: int
) -> None:
    _, line, key, fragment = RANGE_CASES[case]
    result, text = range_results[case]
    assert result.returncode == 2
    assert fragment in result.error_for(key)
    assert result.line_of(key) == line_number(text, line)


def test_valid_boundaries_are_accepted(tmp_path: Path) -> None:
    text = STATION.replace("lat = 10.5", "lat = -90").replace("lon = 20.25", "lon = 180") + """
[streams]
maxlen = 0
index_levels = [0, 30]
cell_stream_level = 0

[pipeline]
batch_size = 1
"""
    result = check_config(write(tmp_path, text))
    assert result.returncode == 0, result.errors


# -- required keys and tables -----------------------------------------------------------


def test_missing_station_id_points_at_the_station_table(tmp_path: Path) -> None:
    text = STATION.replace('id = "test-station"\n', "")
    result = check_config(write(tmp_path, text))
    assert result.returncode == 2
    assert "required key is missing" in result.error_for("station.id")
    assert result.line_of("station.id") == line_number(text, "[station]")


def test_missing_required_source_key_is_reported(tmp_path: Path) -> None:
    text = STATION + '\n[sources.replay]\ntype = "jsonl"\n'
    result = check_config(write(tmp_path, text))
    assert "required key is missing" in result.error_for("sources.replay.path")


def test_missing_station_table_is_reported(tmp_path: Path) -> None:
    result = check_config(write(tmp_path, '[streams]\nprefix = "geo"\n'))
    assert result.returncode == 2
    assert any("station" in e and "missing" in e for e in result.errors), result.errors


# -- several problems at once -----------------------------------------------------------


def test_every_problem_in_a_file_is_reported_in_one_run(tmp_path: Path) -> None:
    text = """\
[station]
id = "x"
lat = "north"
lon = -181

[streams]
maxlen = -5
index_levels = [10, 6]

[pipeline]
batch_size = 0

[sources.replay]
type = "jsonl"
pathh = "x.jsonl"
"""
    result = check_config(write(tmp_path, text), subprocess_run=True)
    assert result.returncode == 2
    expected = {
        "station.lat": 3,
        "station.lon": 4,
        "streams.maxlen": 7,
        "streams.index_levels": 8,
        "pipeline.batch_size": 11,
        "sources.replay.pathh": 15,
    }
    for key, line in expected.items():
        assert result.line_of(key) == line, key
    assert 'did you mean "path"?' in result.error_for("sources.replay.pathh")


def test_dotted_keys_and_inline_tables_are_located(tmp_path: Path) -> None:
    text = STATION + """
[sources]
a.type = "jsonl"
a.path = 5
b = { type = "jsonl", path = 7 }
"""
    result = check_config(write(tmp_path, text))
    assert result.line_of("sources.a.path") == line_number(text, "a.path = 5")
    assert result.line_of("sources.b.path") == line_number(text, "b = {")


def test_array_of_tables_telegraf_style_is_reported_at_its_line(tmp_path: Path) -> None:
    # Telegraf configs write [[inputs.x]]; here a source is one table, [sources.x].
    text = STATION + '\n[[sources.replay]]\ntype = "jsonl"\npath = "x.jsonl"\n'
    result = check_config(write(tmp_path, text))
    assert result.returncode == 2
    assert "table" in result.error_for("sources.replay")
    assert result.line_of("sources.replay") == line_number(text, "[[sources.replay]]")


# -- source types (usgs) and source modules ------------------------------------------


@needs_usgs
def test_usgs_intervall_typo_suggests_interval(tmp_path: Path) -> None:
    text = STATION + '\n[sources.quakes]\ntype = "usgs"\nintervall = 60\n'
    result = check_config(write(tmp_path, text))
    assert result.returncode == 2
    assert 'did you mean "interval"?' in result.error_for("sources.quakes.intervall")
    assert result.line_of("sources.quakes.intervall") == line_number(text, "intervall")


@needs_usgs
@pytest.mark.parametrize(
    ("line", "fragment"),
    [("interval = -5", "must be > 0"), ("interval = 0", "must be > 0"),
     ('interval = "60s"', "expected a number"), ("min_magnitude = 12.0", "outside")],
)
def test_usgs_bad_values_are_reported_with_their_line(
    tmp_path: Path, line: str, fragment: str
) -> None:
    text = STATION + f'\n[sources.quakes]\ntype = "usgs"\n{line}\n'
    key = "sources.quakes." + line.split("=")[0].strip()
    result = check_config(write(tmp_path, text))
    assert result.returncode == 2
    assert fragment in result.error_for(key)
    assert result.line_of(key) == line_number(text, line)


def test_a_source_module_that_cannot_be_imported_is_a_config_error_not_a_crash(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # E.g. an SDR source whose optional dependency (pyrtlsdr) is not installed on this host.
    from daemon import sources

    monkeypatch.setitem(sources.SOURCE_MODULES, "broken", "daemon.sources._no_such_module_")
    text = STATION + '\n[sources.radio]\ntype = "broken"\n'
    result = check_config(write(tmp_path, text))
    assert result.returncode == 2
    assert "_no_such_module_" in result.error_for("sources.radio.type")


def test_redis_url_with_an_unknown_scheme_is_reported(tmp_path: Path) -> None:
    text = STATION + '\n[redis]\nurl = "http://127.0.0.1:6379/0"\n'
    result = check_config(write(tmp_path, text))
    assert result.returncode == 2
    assert "http" in result.error_for("redis.url")
    assert result.line_of("redis.url") == line_number(text, "http://")


@pytest.mark.parametrize(
    "url", ["embedded", "redis://127.0.0.1:6379/0", "rediss://user@h:6380/1", "unix:///run/r.sock"]
)
def test_documented_redis_urls_are_accepted(tmp_path: Path, url: str) -> None:
    result = check_config(write(tmp_path, STATION + f'\n[redis]\nurl = "{url}"\n'))
    assert result.returncode == 0, result.errors


def test_missing_file_exits_2(tmp_path: Path) -> None:
    result = check_config(tmp_path / "nope.toml")
    assert result.returncode == 2
    assert "no such file" in "\n".join(result.errors)
