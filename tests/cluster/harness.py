"""A cluster on one machine: HAProxy in front of three `bazaar serve` hosts on loopback
addresses of their own, a PostgreSQL primary with a streaming replica, and a private Redis.

Every address is in 127.0.0.0/8 (Linux routes all of it to the loopback device), every
process is started and torn down here, and every wait is bounded.
"""

from __future__ import annotations

import contextlib
import csv
import io
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from tests.server import server_env

# The hosts' addresses; HAProxy, PostgreSQL and Redis listen on 127.0.0.1, and HAProxy
# connects to the hosts from it (the hosts' only trusted proxy).
HOST_ADDRESSES = ("127.0.0.2", "127.0.0.3", "127.0.0.4")
PROXY_ADDRESS = "127.0.0.1"
WORKERS = 2
# HAProxy's health checks of `/ready`: every CHECK_MS, down after FALL failures in a row.
CHECK_MS = 500
FALL = 2
RISE = 2
# A host's workers get this many connections each, to the primary and to the replica.
POOL_SIZE = 4
STARTUP_SECONDS = 90


def free_port(address: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((address, 0))
        port: int = sock.getsockname()[1]
        return port


def wait_for(what: str, check: object, *, within: float, every: float = 0.05) -> None:
    """Poll `check()` until it is true; AssertionError naming `what` after `within` seconds."""
    assert callable(check)
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(every)
    raise AssertionError(f"{what}: not within {within} s")


@dataclass
class Host:
    """One `bazaar serve --workers 2` on an address of its own; restarted on the same port."""

    name: str
    address: str
    port: int
    directory: Path
    env: dict[str, str]
    process: subprocess.Popen[bytes] | None = None
    starts: int = 0

    @property
    def url(self) -> str:
        return f"http://{self.address}:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.directory / f"{self.name}.log"

    def start(self) -> None:
        command = [sys.executable, "-m", "bazaar", "serve", "--host", self.address]
        command += ["--port", str(self.port), "--workers", str(WORKERS), "--graceful-seconds", "10"]
        # Long enough for HAProxy's checks to take it out first (FALL x CHECK_MS, and one more).
        command += ["--drain-seconds", str((FALL + 1) * CHECK_MS / 1000 + 0.5)]
        with self.log_path.open("ab") as log:
            log.write(f"=== start {self.starts + 1}\n".encode())
            log.flush()
            self.process = subprocess.Popen(  # noqa: S603 - our own command line
                command,
                cwd=self.directory,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # a process group of its own, for `kill`
            )
        self.starts += 1

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def serving(self) -> bool:
        """Ready, with every worker up (their gauge in `/metrics`)."""
        if not self.running():
            raise AssertionError(f"{self.name} exited:\n{self.logs()[-4000:]}")
        try:
            ready = httpx.get(f"{self.url}/ready", timeout=2)
            metrics = httpx.get(f"{self.url}/metrics", timeout=2).text
        except httpx.TransportError:
            return False
        workers = re.search(rf"^bazaar_workers {WORKERS}(\.0)?$", metrics, re.MULTILINE)
        return ready.status_code == 200 and workers is not None

    def wait_serving(self, within: float = STARTUP_SECONDS) -> None:
        wait_for(f"{self.name} serving", self.serving, within=within, every=0.1)

    def signal(self, sig: int) -> None:
        assert self.process is not None
        self.process.send_signal(sig)

    def wait_exit(self, timeout: float = 30) -> int:
        assert self.process is not None
        return self.process.wait(timeout)

    def stop(self) -> None:
        """SIGTERM, then SIGKILL if it lingers; the workers too, whatever happened."""
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.kill_orphans()

    def kill(self) -> None:
        """`kill -9` of the host: its supervisor and its workers, as when a machine dies."""
        assert self.process is not None
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()

    def refusing(self) -> bool:
        """Whether its port refuses connections: every process that held it is gone (the
        kernel completes handshakes on a listening socket until its last holder exits)."""
        try:
            with socket.create_connection((self.address, self.port), timeout=1):
                return False
        except ConnectionRefusedError:
            return True
        except OSError:
            return False

    def kill_orphans(self) -> None:
        """Whatever is left of the host's process group (workers of a killed supervisor)."""
        if self.process is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.process.pid, signal.SIGKILL)

    def logs(self) -> str:
        try:
            return self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""


@dataclass
class Redis:
    """A private `redis-server` on a free port, without persistence."""

    directory: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        binary = shutil.which("redis-server") or "/usr/bin/redis-server"
        command = [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", ""]
        command += ["--appendonly", "no", "--dir", str(self.directory)]
        with (self.directory / "redis.log").open("ab") as log:
            self.process = subprocess.Popen(  # noqa: S603 - our own command line
                command, stdout=log, stderr=subprocess.STDOUT
            )
        wait_for("redis answering", self.answering, within=20)

    def answering(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None


@dataclass(frozen=True)
class Logged:
    """A request in HAProxy's log: when it was accepted (epoch seconds), the host that got
    it in the end, its status, and how often it was tried again (on another host)."""

    accepted: float
    host: str
    status: int
    retries: int
    redispatched: bool


HAPROXY_CONFIG = """\
global
    stats socket {socket} mode 600 level admin
    log stdout format raw local0
    maxconn 2000

defaults
    mode http
    log global
    # Accept time (epoch, ms), server, status, retries, method and path of every request.
    log-format "%Ts.%ms %b/%s %ST %rc %HM %HU"
    timeout connect 1s
    timeout client 30s
    timeout server 30s
    timeout check 2s
    # A connection a host refused (it is down) is tried again on another host; never a
    # request the host may have received, which could repeat a write.
    retries 3
    option redispatch 1
    retry-on conn-failure
    # A connection to a host per request: a request is never sent on a kept-alive
    # connection to a host that has just died (which HAProxy answers by closing the
    # client's connection, unlogged), only refused by it and redispatched.
    option http-server-close

frontend bazaar
    bind {proxy}:{port}
    default_backend hosts

backend hosts
    balance roundrobin
    option forwardfor
    option httpchk GET /ready
    http-check expect status 200
    # Which host answered, for the tests to tell them apart.
    http-after-response set-header X-Served-By %[srv_name]
    default-server check inter {check_ms}ms fall {fall} rise {rise} source {proxy}
{servers}
"""


@dataclass
class HAProxy:
    """Debian's `haproxy` in the foreground, with its admin socket, logging to a file."""

    directory: Path
    hosts: list[Host]
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://{PROXY_ADDRESS}:{self.port}"

    @property
    def socket_path(self) -> Path:
        return self.directory / "haproxy.sock"

    @property
    def log_path(self) -> Path:
        return self.directory / "haproxy.log"

    def config(self) -> str:
        servers = "\n".join(
            f"    server {host.name} {host.address}:{host.port}" for host in self.hosts
        )
        return HAPROXY_CONFIG.format(
            socket=self.socket_path,
            proxy=PROXY_ADDRESS,
            port=self.port,
            check_ms=CHECK_MS,
            fall=FALL,
            rise=RISE,
            servers=servers,
        )

    def start(self) -> None:
        binary = shutil.which("haproxy")
        assert binary is not None, "haproxy is not installed (apt-get install haproxy)"
        path = self.directory / "haproxy.cfg"
        path.write_text(self.config())
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(  # noqa: S603 - our own command line
                [binary, "-db", "-f", str(path)], stdout=log, stderr=subprocess.STDOUT
            )
        wait_for("haproxy's admin socket", self.socket_path.exists, within=20)

    def command(self, line: str) -> str:
        with socket.socket(socket.AF_UNIX) as sock:
            sock.settimeout(5)
            sock.connect(str(self.socket_path))
            sock.sendall(line.encode() + b"\n")
            chunks = []
            while chunk := sock.recv(65536):
                chunks.append(chunk)
        return b"".join(chunks).decode()

    def counters(self, *names: str) -> dict[str, int]:
        """Per host, the sum of these counters of HAProxy's (`eresp`, `srv_abrt`, ...)."""
        text = self.command("show stat").lstrip("# ")
        return {
            row["svname"]: sum(int(row[name] or 0) for name in names)
            for row in csv.DictReader(io.StringIO(text))
            if row["pxname"] == "hosts" and row["svname"] not in {"BACKEND", "FRONTEND"}
        }

    def states(self) -> dict[str, str]:
        """Each host's state as HAProxy sees it: UP, DOWN, or a transition ("UP 1/2")."""
        text = self.command("show stat").lstrip("# ")
        rows = csv.DictReader(io.StringIO(text))
        return {
            row["svname"]: row["status"]
            for row in rows
            if row["pxname"] == "hosts" and row["svname"] not in {"BACKEND", "FRONTEND"}
        }

    def log_lines(self) -> list[Logged]:
        """Each request HAProxy logged, in order."""
        found = []
        pattern = re.compile(r"^(\d+\.\d+) hosts/(\S+) (-?\d+) (\+?)(\d+) ")
        for line in self.log_path.read_text(errors="replace").splitlines():
            match = pattern.match(line)
            if match:
                accepted, host, status, redispatched, retries = match.groups()
                found.append(
                    Logged(float(accepted), host, int(status), int(retries), bool(redispatched))
                )
        return found

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def host_env(directory: Path, overrides: dict[str, str]) -> dict[str, str]:
    # Unmeasured: the hosts serve thousands of requests (see `server_env`).
    env = {"BAZAAR_POOL_SIZE": str(POOL_SIZE), **overrides}
    return server_env(directory, env, measured=False)
