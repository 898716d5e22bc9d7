"""The systemd unit as systemd itself reads it: its security rating and `verify`, offline.

systemd cannot run as PID 1 here, so the unit is judged by `systemd-analyze` without a
service manager; where the tool is missing these tests are skipped."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
UNIT = REPO / "config" / "mailgate.service"
# "→ Overall exposure level for mailgate.service: 1.1 OK 🙂"
RATING = re.compile(r"Overall exposure level for mailgate\.service: (\d+\.\d+) (\w+)")
HIGHEST_RATING = 2.5  # systemd's "OK" ends there
ANALYZE = shutil.which("systemd-analyze")

pytestmark = pytest.mark.skipif(ANALYZE is None, reason="systemd-analyze is not installed")


def analyze(*args: str) -> subprocess.CompletedProcess[str]:
    assert ANALYZE is not None
    return subprocess.run([ANALYZE, *args], capture_output=True, text=True, timeout=60, check=False)


def systemd_version() -> int:
    first = analyze("--version").stdout.split("\n", 1)[0]  # "systemd 252 (252.38-1~deb12u1)"
    return int(first.split()[1])


def unit_tree(tmp_path: Path, *drop_ins: str) -> Path:
    """A root directory with the unit, and these drop-ins from config/, where systemd
    looks for them; ExecStart= points at this environment's mailgate so verify finds it."""
    system = tmp_path / "etc" / "systemd" / "system"
    (system / "mailgate.service.d").mkdir(parents=True)
    installed = "/opt/mailgate/.venv/bin/mailgate"
    ours = str(Path(sys.executable).parent / "mailgate")
    assert installed in UNIT.read_text()
    (system / "mailgate.service").write_text(UNIT.read_text().replace(installed, ours))
    for name in drop_ins:
        shutil.copy(REPO / "config" / name, system / "mailgate.service.d" / name)
    return system / "mailgate.service"


def rating(root: Path) -> float:
    if systemd_version() < 250:
        pytest.skip(
            f"systemd-analyze security --offline needs systemd 250; this is {systemd_version()}"
        )
    result = analyze("security", "--offline=yes", f"--root={root}", "mailgate.service")
    found = RATING.search(result.stdout)
    assert found, result.stdout + result.stderr
    print(f"\n{found.group(0)}")  # the rating, for the record (pytest -s shows it)
    return float(found.group(1))


def test_the_unit_rates_ok_in_systemds_security_analysis(tmp_path: Path) -> None:
    unit_tree(tmp_path)
    assert rating(tmp_path) <= HIGHEST_RATING


def test_the_port_25_drop_in_keeps_the_rating_ok(tmp_path: Path) -> None:
    unit_tree(tmp_path, "port25.conf")
    assert rating(tmp_path) <= HIGHEST_RATING


def test_systemd_verify_finds_no_error_in_the_unit(tmp_path: Path) -> None:
    unit = unit_tree(tmp_path)
    # The file itself, not the unit in a root: there, verify also wants the whole boot
    # target tree (sysinit.target ...), which a bare root has not got.
    result = analyze("verify", str(unit))
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""


def test_the_notify_reload_drop_in_is_understood_where_systemd_supports_it(
    tmp_path: Path,
) -> None:
    if systemd_version() < 253:
        pytest.skip(f"Type=notify-reload needs systemd 253; this is {systemd_version()}")
    unit = unit_tree(tmp_path, "notify-reload.conf")
    result = analyze("verify", str(unit))
    assert result.returncode == 0, result.stderr
    assert "notify-reload" not in result.stderr


def test_the_unit_keeps_the_service_settings_ops_rely_on() -> None:
    settings = {
        line.partition("=")[0]: line.partition("=")[2]
        for line in UNIT.read_text().splitlines()
        if "=" in line and not line.startswith("#")
    }
    assert settings["UMask"] == "0027"
    assert settings["StateDirectory"] == "mailgate"
    # A broken configuration (exit 78) waits for the operator instead of looping.
    assert settings["RestartPreventExitStatus"] == "78"
    assert settings["CapabilityBoundingSet"] == ""
