"""Operations hygiene of deploy/: local-only published ports, no killing of other processes."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

from tests.support.paths import REPO

DEPLOY = REPO / "deploy"
SCRIPTS = [
    *sorted(DEPLOY.glob("**/*.sh")),
    REPO / "tests" / "run.sh",
    REPO / ".ci" / "run",
    REPO / "deploy" / "Dockerfile",
]


def published_ports(compose: str) -> list[str]:
    """Every entry of every ``ports:`` list of a compose file."""
    entries: list[str] = []
    in_ports = False
    for line in compose.splitlines():
        if re.match(r"^\s+ports:\s*$", line):
            in_ports = True
            continue
        item = re.match(r"^\s+-\s+(.*)$", line)
        if in_ports and item:
            entries.append(item.group(1).strip().strip("\"'"))
        else:
            in_ports = False
    return entries


def test_compose_publishes_every_port_on_localhost_only() -> None:
    ports = published_ports((DEPLOY / "docker-compose.yml").read_text())
    assert len(ports) == 3
    for entry in ports:
        assert re.fullmatch(r"127\.0\.0\.1:\d+:\d+", entry), entry


def test_no_deploy_script_kills_processes_by_name() -> None:
    for script in SCRIPTS:
        text = script.read_text()
        for word in ("pkill", "killall", "kill -9 -1", "fuser -k"):
            assert word not in text, f"{script}: {word}"


def _fake_tools(bin_dir: Path, log: Path, policy: Path) -> None:
    """apt-get that records whether services may start; pkill/systemctl/service that record."""
    bin_dir.mkdir()
    for tool in ("bash", "sh", "printf", "tee", "chmod", "rm", "sort", "id", "grep", "cat"):
        found = shutil.which(tool)
        assert found is not None, tool
        (bin_dir / tool).symlink_to(found)
    (bin_dir / "apt-get").write_text(
        "#!/bin/sh\n"
        f'if [ "$1" = install ]; then "{policy}" prometheus start; echo "policy $?" >>"{log}"; fi\n'
    )
    for tool in ("pkill", "killall", "systemctl", "service"):
        (bin_dir / tool).write_text(f'#!/bin/sh\necho "{tool} $*" >>"{log}"\n')
    (bin_dir / "sudo").write_text('#!/bin/sh\nexec "$@"\n')
    for path in bin_dir.iterdir():
        if not path.is_symlink():
            path.chmod(0o755)


def _install(tmp_path: Path, log: Path, policy: Path) -> subprocess.CompletedProcess[str]:
    """Run install-system-deps.sh with fake apt-get, systemctl and friends on PATH."""
    bin_dir = tmp_path / "bin"
    _fake_tools(bin_dir, log, policy)
    return subprocess.run(
        ["bash", str(DEPLOY / "install-system-deps.sh")],
        env={"PATH": str(bin_dir), "POLICY_RC_D": str(policy), "HOME": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def test_install_keeps_new_services_from_starting_and_kills_nothing(tmp_path: Path) -> None:
    log, policy = tmp_path / "calls.log", tmp_path / "policy-rc.d"
    result = _install(tmp_path, log, policy)
    assert result.returncode == 0, result.stderr
    assert "installing" in result.stdout
    assert "chromium" in result.stdout.split()  # the browser test's browser, from Debian
    calls = log.read_text().splitlines()
    assert calls == ["policy 101"], calls  # no start during the install, no kill, no stop
    assert not policy.exists()


def test_install_keeps_an_existing_policy_and_stops_only_the_installed_service(
    tmp_path: Path,
) -> None:
    log, policy = tmp_path / "calls.log", tmp_path / "policy-rc.d"
    policy.write_text("#!/bin/sh\nexit 0\n")
    policy.chmod(0o755)
    result = _install(tmp_path, log, policy)
    assert result.returncode == 0, result.stderr
    calls = log.read_text().splitlines()
    assert calls == ["policy 0", "systemctl stop prometheus.service"], calls
    assert policy.read_text() == "#!/bin/sh\nexit 0\n"
    assert os.access(policy, os.X_OK)
