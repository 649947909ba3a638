"""Redis authentication and TLS against real servers: a wrong password or a failed TLS
verification is one clear log line without the secret, and the events spool; a
world-readable password file is refused before anything starts; mutual TLS with a
CA, a client certificate and the hostname check delivers."""

from __future__ import annotations

import datetime
import ipaddress
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis
from daemon_proc import (
    REPO,
    http_get,
    ids_by_src,
    metric,
    new_port,
    start_daemon,
    stop_process,
    wait_for,
    write_config,
    write_recording,
)
from redis_proc import RedisProcess, find_redis_server

SECRET = "s3cret-Pa55word-4711"
WRONG = "wrong-Pa55word-0815"
N = 500
LOG_LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} [A-Z]+ ")


def password_file(tmp: Path, secret: str, mode: int = 0o600) -> Path:
    path = tmp / "redis-password"
    path.write_text(secret + "\n")
    path.chmod(mode)
    return path


def assert_clean_log(log: Path, *secrets: str) -> None:
    """Every line of the log is one log record (no traceback) and no secret appears."""
    text = log.read_text()
    for secret in secrets:
        assert secret not in text
    for line in text.splitlines():
        assert LOG_LINE.match(line), f"not a single-line log record: {line!r}"


def assert_not_in_argv(pid: int, *secrets: str) -> None:
    cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    environ = Path(f"/proc/{pid}/environ").read_bytes()
    for secret in secrets:
        assert secret.encode() not in cmdline
        assert secret.encode() not in environ


@pytest.fixture
def protected_redis(redis_server: RedisProcess) -> Iterator[RedisProcess]:
    """The test's redis-server with ``requirepass`` set (over CONFIG SET, not argv)."""
    client = redis_server.client()
    client.config_set("requirepass", SECRET)
    client.close()
    yield redis_server


def test_wrong_password_spools_with_one_clean_error_line_and_drains_once_fixed(
    protected_redis: RedisProcess, tmp_path: Path
) -> None:
    ids = write_recording(tmp_path / "events.jsonl", "replay", N)
    port = new_port()
    pw = password_file(tmp_path, WRONG)
    config = write_config(
        tmp_path, protected_redis.url,
        {"replay": {"type": "jsonl", "path": str(tmp_path / "events.jsonl")}},
        http_port=port, extra="", batch_size=100,
    )
    config.write_text(config.read_text().replace(
        "[redis]\n", f'[redis]\npassword_file = "{pw}"\n'))
    log = tmp_path / "daemon.log"
    daemon = start_daemon(config, log)
    try:
        wait_for(lambda: metric(port, "spool_depth") == N, 30, "the events in the spool")
        assert_not_in_argv(daemon.pid, WRONG, SECRET)
        for path in ("/healthz", "/metrics"):
            assert WRONG not in http_get(port, path)[1]
        error = json.loads(http_get(port, "/readyz")[1])["last_sink_error"]
        assert "invalid username-password pair" in error or "WRONGPASS" in error, error
    finally:
        assert stop_process(daemon) == 0
    failing = [line for line in log.read_text().splitlines() if "sink redis failing" in line]
    assert len(failing) == 1
    assert f"redis at redis://127.0.0.1:{protected_redis.port}/0: " in failing[0]
    print(failing[0])
    assert_clean_log(log, WRONG, SECRET)

    # The right password: the spooled events are delivered, once, in order.
    password_file(tmp_path, SECRET)
    daemon = start_daemon(config, log, "--once")
    assert daemon.wait(60) == 0, log.read_text()[-2000:]
    client = redis.Redis(port=protected_redis.port, password=SECRET, decode_responses=True)
    assert ids_by_src(client) == {"replay": ids}
    client.close()
    assert_clean_log(log, WRONG, SECRET)


def test_a_world_readable_password_file_is_refused_naming_key_and_file(
    protected_redis: RedisProcess, tmp_path: Path
) -> None:
    pw = password_file(tmp_path, SECRET, mode=0o644)
    write_recording(tmp_path / "events.jsonl", "replay", 10)
    config = write_config(
        tmp_path, protected_redis.url,
        {"replay": {"type": "jsonl", "path": str(tmp_path / "events.jsonl")}},
    )
    config.write_text(config.read_text().replace(
        "[redis]\n", f'[redis]\npassword_file = "{pw}"\n'))
    run = subprocess.run(
        [sys.executable, "-m", "daemon", "run", "--config", str(config), "--once"],
        capture_output=True, text=True, timeout=60, cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert run.returncode == 2
    errors = [line for line in run.stderr.splitlines() if "ERROR" in line]
    assert len(errors) == 1, run.stderr
    assert f"redis.password_file: {pw} is readable by every user (mode 0644)" in errors[0]
    assert SECRET not in run.stderr + run.stdout
    assert not (tmp_path / "state").exists()  # refused before anything started


# -- TLS ---------------------------------------------------------------------------------


@dataclass
class Pki:
    ca: Path
    other_ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path


def make_pki(directory: Path) -> Pki:
    """A CA, a server certificate for DNS:localhost only, a client certificate, and an
    unrelated second CA, written as PEM files (cryptography)."""
    x509 = pytest.importorskip("cryptography.x509")
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = datetime.datetime.now(datetime.UTC)
    directory.mkdir(parents=True, exist_ok=True)

    def name(cn: str) -> object:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])

    def write_key(key: ec.EllipticCurvePrivateKey, path: Path) -> Path:
        path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
        path.chmod(0o600)
        return path

    def write_cert(cert: object, path: Path) -> Path:
        path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))  # type: ignore[attr-defined]
        return path

    def ca(cn: str) -> tuple[object, ec.EllipticCurvePrivateKey]:
        key = ec.generate_private_key(ec.SECP256R1())
        cert = (x509.CertificateBuilder().subject_name(name(cn)).issuer_name(name(cn))
                .public_key(key.public_key()).serial_number(x509.random_serial_number())
                .not_valid_before(now - datetime.timedelta(minutes=5))
                .not_valid_after(now + datetime.timedelta(days=1))
                .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                .sign(key, hashes.SHA256()))
        return cert, key

    def leaf(cn: str, issuer: tuple[object, ec.EllipticCurvePrivateKey],
             usage: object, san: object | None) -> tuple[object, ec.EllipticCurvePrivateKey]:
        key = ec.generate_private_key(ec.SECP256R1())
        builder = (x509.CertificateBuilder().subject_name(name(cn))
                   .issuer_name(issuer[0].subject)  # type: ignore[attr-defined]
                   .public_key(key.public_key()).serial_number(x509.random_serial_number())
                   .not_valid_before(now - datetime.timedelta(minutes=5))
                   .not_valid_after(now + datetime.timedelta(days=1))
                   .add_extension(x509.ExtendedKeyUsage([usage]), critical=False))
        if san is not None:
            builder = builder.add_extension(san, critical=False)
        return builder.sign(issuer[1], hashes.SHA256()), key

    root = ca("geosensord test CA")
    other = ca("some other CA")
    server = leaf("localhost", root, ExtendedKeyUsageOID.SERVER_AUTH,
                  x509.SubjectAlternativeName([x509.DNSName("localhost")]))
    client = leaf("geosensord", root, ExtendedKeyUsageOID.CLIENT_AUTH, None)
    assert ipaddress.ip_address("127.0.0.1")  # the server cert deliberately has no IP SAN
    return Pki(
        ca=write_cert(root[0], directory / "ca.pem"),
        other_ca=write_cert(other[0], directory / "other-ca.pem"),
        server_cert=write_cert(server[0], directory / "server.pem"),
        server_key=write_key(server[1], directory / "server.key"),
        client_cert=write_cert(client[0], directory / "client.pem"),
        client_key=write_key(client[1], directory / "client.key"),
    )


@pytest.fixture
def tls_redis(tmp_path: Path) -> Iterator[tuple[int, Pki]]:
    """redis-server speaking only TLS, requiring a client certificate and a password."""
    binary = find_redis_server()
    if binary is None:
        pytest.skip("redis-server is not installed")
    pki = make_pki(tmp_path / "pki")
    port = new_port()
    workdir = tmp_path / "tls-redis"
    workdir.mkdir()
    proc = subprocess.Popen(
        [binary, "--port", "0", "--tls-port", str(port), "--bind", "127.0.0.1",
         "--tls-cert-file", str(pki.server_cert), "--tls-key-file", str(pki.server_key),
         "--tls-ca-cert-file", str(pki.ca), "--tls-auth-clients", "yes",
         "--save", "", "--appendonly", "no", "--dir", str(workdir)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    admin = redis.Redis(host="localhost", port=port, ssl=True, ssl_ca_certs=str(pki.ca),
                        ssl_certfile=str(pki.client_cert), ssl_keyfile=str(pki.client_key),
                        socket_timeout=2)
    deadline = time.monotonic() + 10
    while True:
        try:
            admin.ping()
            break
        except redis.ConnectionError:
            if proc.poll() is not None:
                err = proc.stderr.read().decode() if proc.stderr else ""
                pytest.skip(f"redis-server without TLS support: {err.strip()[:200]}")
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)
    admin.config_set("requirepass", SECRET)
    admin.close()
    try:
        yield port, pki
    finally:
        proc.terminate()
        proc.wait(10)


def tls_config(tmp_path: Path, port: int, pki: Pki, host: str, ca: Path, http_port: int) -> Path:
    pw = password_file(tmp_path, SECRET)
    config = write_config(
        tmp_path, f"rediss://{host}:{port}/0",
        {"replay": {"type": "jsonl", "path": str(tmp_path / "events.jsonl")}},
        http_port=http_port, batch_size=100,
    )
    config.write_text(config.read_text().replace("[redis]\n", (
        f'[redis]\npassword_file = "{pw}"\ntls_ca_file = "{ca}"\n'
        f'tls_cert_file = "{pki.client_cert}"\ntls_key_file = "{pki.client_key}"\n')))
    return config


def test_mutual_tls_with_ca_client_certificate_and_hostname_delivers(
    tls_redis: tuple[int, Pki], tmp_path: Path
) -> None:
    port, pki = tls_redis
    ids = write_recording(tmp_path / "events.jsonl", "replay", N)
    config = tls_config(tmp_path, port, pki, "localhost", pki.ca, new_port())
    log = tmp_path / "daemon.log"
    daemon = start_daemon(config, log, "--once")
    assert daemon.wait(60) == 0, log.read_text()[-2000:]
    client = redis.Redis(host="localhost", port=port, ssl=True, ssl_ca_certs=str(pki.ca),
                         ssl_certfile=str(pki.client_cert), ssl_keyfile=str(pki.client_key),
                         password=SECRET, decode_responses=True)
    assert ids_by_src(client) == {"replay": ids}
    client.close()
    assert_clean_log(log, SECRET)


@pytest.mark.parametrize("failure", ["unknown_ca", "hostname_mismatch"])
def test_tls_verification_failure_spools_with_one_clean_error_line(
    tls_redis: tuple[int, Pki], tmp_path: Path, failure: str
) -> None:
    port, pki = tls_redis
    write_recording(tmp_path / "events.jsonl", "replay", N)
    http_port = new_port()
    # The server's certificate names only DNS:localhost: reaching it as 127.0.0.1 fails
    # the hostname check even though the CA is right.
    host, ca = ("localhost", pki.other_ca) if failure == "unknown_ca" else ("127.0.0.1", pki.ca)
    config = tls_config(tmp_path, port, pki, host, ca, http_port)
    log = tmp_path / "daemon.log"
    daemon = start_daemon(config, log)
    try:
        wait_for(lambda: metric(http_port, "spool_depth") == N, 30, "the events in the spool")
        assert_not_in_argv(daemon.pid, SECRET)
    finally:
        assert stop_process(daemon) == 0
    failing = [line for line in log.read_text().splitlines() if "sink redis failing" in line]
    assert len(failing) == 1, log.read_text()
    assert "CERTIFICATE_VERIFY_FAILED" in failing[0]
    if failure == "hostname_mismatch":
        assert "IP address mismatch" in failing[0] or "hostname" in failing[0], failing[0]
    assert_clean_log(log, SECRET)
    print(failing[0])
