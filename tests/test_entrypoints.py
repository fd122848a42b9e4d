"""The installed `parcelwatch` script and `python -m daemon` are the same command."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.conftest import SHIPPED_CONFIG

BIN = Path(sys.executable).parent


def test_console_script_and_module_both_check_the_shipped_config() -> None:
    for cmd in ([str(BIN / "parcelwatch")], [sys.executable, "-m", "daemon"]):
        result = subprocess.run(
            [*cmd, "--config", str(SHIPPED_CONFIG), "config", "check"],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 0, result.stderr
        assert "valid" in result.stdout
