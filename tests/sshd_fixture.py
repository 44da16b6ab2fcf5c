"""An sshd of the test run's own, on 127.0.0.1 only (for virtctl+ssh:// and qemu+ssh://).

``SshServer.start(dir)`` runs ``sshd -D -e`` on a random free port of
127.0.0.1 with a host key, a client key and an authorized_keys file made
for the run, and its own sshd_config (no password, no PAM, nothing read
from /etc/ssh but the binary's defaults); ``stop()`` ends it.  The client
side is an ssh_config (``server.ssh_config``) naming that port, the key and
a known_hosts file holding the host key, so ``ssh -F server.ssh_config
127.0.0.1 CMD`` logs in as the current user without asking anything;
``server.ssh_command`` is that as one string (``$VIRTCTL_SSH_COMMAND``).

As pytest fixtures: ``sshd`` (session scope) from this module, imported by a
conftest or a test module (``from sshd_fixture import sshd``).  Skipped when
sshd is not installed (Debian: openssh-server).
"""
from __future__ import annotations

import getpass
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

SSHD = shutil.which("sshd") or ("/usr/sbin/sshd" if os.path.exists("/usr/sbin/sshd") else None)
SSH = shutil.which("ssh")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _keygen(path: Path, comment: str) -> None:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(path)],
                   check=True, stdin=subprocess.DEVNULL)


class SshServer:
    def __init__(self, dir: Path):  # noqa: A002
        self.dir = Path(dir)
        self.port = 0
        self.proc: subprocess.Popen | None = None
        self.user = getpass.getuser()
        self.host_key = self.dir / "host_ed25519"
        self.client_key = self.dir / "client_ed25519"
        self.other_key = self.dir / "other_ed25519"  # a key sshd does not accept
        self.authorized_keys = self.dir / "authorized_keys"
        self.known_hosts = self.dir / "known_hosts"
        self.sshd_config = self.dir / "sshd_config"
        self.ssh_config = self.dir / "ssh_config"
        self.log = self.dir / "sshd.log"

    @classmethod
    def start(cls, dir: Path) -> "SshServer":  # noqa: A002
        srv = cls(dir)
        srv._start()
        return srv

    def client_config(self, path: Path, *, key: Path | None = None, port: int | None = None) -> Path:
        """Write an ssh_config for this server (another ``key`` or ``port`` to test failures)."""
        path.write_text(
            "Host 127.0.0.1 localhost\n"
            f"  Port {port or self.port}\n"
            f"  User {self.user}\n"
            f"  IdentityFile {key or self.client_key}\n"
            "  IdentitiesOnly yes\n"
            "  IdentityAgent none\n"
            f"  UserKnownHostsFile {self.known_hosts}\n"
            "  GlobalKnownHostsFile /dev/null\n"
            "  StrictHostKeyChecking yes\n"
            "  PasswordAuthentication no\n"
            "  KbdInteractiveAuthentication no\n"
            "  LogLevel ERROR\n")
        return path

    @property
    def ssh_command(self) -> str:
        return f"ssh -F {self.ssh_config}"

    def ssh_command_with(self, **kw) -> str:
        """``ssh -F`` a config made by client_config(**kw)."""
        name = "ssh_config_" + "_".join(f"{k}{Path(str(v)).name}" for k, v in sorted(kw.items()))
        return f"ssh -F {self.client_config(self.dir / name, **kw)}"

    def _start(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        os.chmod(self.dir, 0o700)
        for key, comment in ((self.host_key, "virtctl-test-host"), (self.client_key, "virtctl-test-client"),
                             (self.other_key, "virtctl-test-other")):
            if not key.exists():
                _keygen(key, comment)
        self.authorized_keys.write_text(Path(str(self.client_key) + ".pub").read_text())
        os.chmod(self.authorized_keys, 0o600)
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # sshd's privilege separation directory
        for attempt in range(5):
            self.port = free_port()
            self.sshd_config.write_text(
                f"Port {self.port}\n"
                "ListenAddress 127.0.0.1\n"
                f"HostKey {self.host_key}\n"
                f"PidFile {self.dir / 'sshd.pid'}\n"
                f"AuthorizedKeysFile {self.authorized_keys}\n"
                "PubkeyAuthentication yes\n"
                "PasswordAuthentication no\n"
                "KbdInteractiveAuthentication no\n"
                "UsePAM no\n"
                "StrictModes no\n"
                "PermitRootLogin prohibit-password\n"
                "MaxStartups 64:30:128\n"
                "MaxSessions 64\n"
                "PrintMotd no\n"
                "X11Forwarding no\n"
                "AllowTcpForwarding no\n"
                "LogLevel INFO\n")
            self.known_hosts.write_text(f"[127.0.0.1]:{self.port} "
                                        + Path(str(self.host_key) + ".pub").read_text().split(" comment")[0])
            self.client_config(self.ssh_config)
            log = open(self.log, "ab")
            self.proc = subprocess.Popen([SSHD, "-D", "-e", "-f", str(self.sshd_config)], stdin=subprocess.DEVNULL,
                                         stdout=log, stderr=log)
            log.close()
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    break
                try:
                    with socket.create_connection(("127.0.0.1", self.port), timeout=1) as s:
                        if s.recv(64).startswith(b"SSH-"):
                            return
                except OSError:
                    time.sleep(0.05)
            self.stop()
        raise RuntimeError(f"sshd did not start: {self.log.read_text()[-2000:]}")

    def ssh(self, *command: str, timeout: float = 30, **kw) -> subprocess.CompletedProcess:
        """Run ``command`` (one remote shell string) on this server."""
        return subprocess.run([SSH, "-F", str(self.ssh_config), "-o", "BatchMode=yes", "127.0.0.1", *command],
                              capture_output=True, text=True, timeout=timeout, **kw)

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@pytest.fixture(scope="session")
def sshd():
    if SSHD is None or SSH is None:
        pytest.skip("sshd/ssh are not installed (Debian: openssh-server, openssh-client)")
    d = Path(tempfile.mkdtemp(prefix="vt-sshd-"))
    srv = SshServer.start(d)
    try:
        yield srv
    finally:
        srv.stop()
        shutil.rmtree(d, ignore_errors=True)
