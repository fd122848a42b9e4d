"""`parcelwatch config check` through the CLI: the shipped file passes, broken ones name their keys."""

from __future__ import annotations

from pathlib import Path

import pytest

from daemon.config import load_config, secret
from tests.conftest import SHIPPED_CONFIG, Workspace


def test_shipped_config_passes_config_check(workspace: Workspace) -> None:
    result = workspace.run("config", "check")
    assert result.exit_code == 0, result.output
    assert "valid" in result.stdout


def test_shipped_windows_match_the_reference_cases() -> None:
    config = load_config(SHIPPED_CONFIG)
    brazil = config.window("BR")
    assert (brazil.stages.tracking_update, brazil.stages.reassurance) == (30, 45)
    assert brazil.stages.refund_offer == 60
    assert config.window("RU").promised_days == 90
    required = [
        "BR",
        "RU",
        "US",
        "GB",
        "FR",
        "ES",
        "DE",
        "IT",
        "PL",
        "MX",
        "CL",
        "IL",
        "UA",
        "SA",
        "AU",
        "CA",
    ]
    assert set(required) <= set(config.policy.countries)
    assert config.window("NZ").stages == config.policy.default.stages
    assert config.window("NZ").locale == "en"


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        (
            "stages = { tracking_update = 30, reassurance = 45,",
            "stages = { tracking_update = 30, reassurance = 20,",
            "policy.countries.BR.stages.reassurance: 20 must be after tracking_update (30)",
        ),
        ('name = "Example Store"', 'nmae = "Example Store"', "store.nmae: unknown key"),
        ("[policy.countries.BR]", "[policy.countries.XX]", "policy.countries.XX: not an ISO 3166"),
        ('locale = "pt-BR"', 'locale = "qq-ZZ"', "policy.countries.BR.locale: 'qq-ZZ' is not"),
        ('tls = "none"', 'tls = "ssl"', "smtp.tls: Input should be"),
        ('log_level = "info"', 'log_level = "verbose"', "daemon.log_level: Input should be"),
        ("stalled_days = 20", "stalled_days = -1", "policy.default.tracking.stalled_days"),
        (
            'approval_required = ["refund_offer"]',
            'approval_required = ["refund_ofer"]',
            "policy.default.approval_required: 'refund_ofer' is not a message kind",
        ),
        (
            "extension = 83, refund_offer = 60",
            "extension = 95, refund_offer = 60",
            "policy.countries.BR.stages.extension: 95 must be before promised_days (90)",
        ),
    ],
)
def test_broken_config_fails_with_the_key_path(
    workspace: Workspace, old: str, new: str, expected: str
) -> None:
    text = workspace.shipped_config_text()
    assert old in text
    workspace.write_config(text.replace(old, new, 1))
    result = workspace.run("config", "check")
    assert result.exit_code == 2
    assert expected in result.stderr
    assert str(workspace.config) in result.stderr


def test_every_problem_is_reported_not_just_the_first(workspace: Workspace) -> None:
    text = workspace.shipped_config_text()
    text = text.replace('name = "Example Store"', 'nmae = "Example Store"')
    text = text.replace("reassurance = 45,", "reassurance = 20,")
    text = text.replace('locale = "ru"', 'locale = "xx-XX"')
    workspace.write_config(text)
    result = workspace.run("config", "check")
    assert result.exit_code == 2
    assert "4 problem(s)" in result.stderr  # the misspelt name is also a missing one
    for key in (
        "store.nmae",
        "policy.countries.BR.stages.reassurance",
        "policy.countries.RU.locale",
    ):
        assert key in result.stderr


def test_toml_syntax_error_is_reported(workspace: Workspace) -> None:
    workspace.write_config("[daemon\n")
    result = workspace.run("config", "check")
    assert result.exit_code == 2
    assert "(syntax)" in result.stderr


def test_a_stage_can_be_switched_off_per_country(workspace: Workspace) -> None:
    text = workspace.shipped_config_text() + "\n[policy.countries.NZ]\nstages.reassurance = false\n"
    workspace.write_config(text)
    assert workspace.run("config", "check").exit_code == 0
    window = load_config(workspace.config).window("NZ")
    assert window.stages.reassurance is None
    assert window.stages.tracking_update == 15  # the rest comes from the default


def test_config_check_never_prints_the_secret_value(workspace: Workspace) -> None:
    text = workspace.shipped_config_text().replace('tls = "none"', 'tls = "bogus"')
    workspace.write_config(text)
    env = {"PARCELWATCH_SMTP_PASSWORD": "s3cr3t-hunter2"}
    result = workspace.run("config", "check", env=env)
    assert result.exit_code == 2
    assert "s3cr3t-hunter2" not in result.output
    assert "s3cr3t-hunter2" not in result.stderr


def test_config_lookup_order(
    workspace: Workspace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from daemon.cli import app

    runner = CliRunner()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    # No --config, no env, no ./config.toml: the system path is tried and reported.
    monkeypatch.delenv("PARCELWATCH_CONFIG", raising=False)
    result = runner.invoke(app, ["config", "check"])
    assert result.exit_code == 2 and "/etc/parcelwatch/config.toml" in result.stderr
    # ./config.toml is found.
    (elsewhere / "config.toml").write_text(workspace.shipped_config_text())
    assert runner.invoke(app, ["config", "check"]).exit_code == 0
    # $PARCELWATCH_CONFIG wins over ./config.toml.
    broken = tmp_path / "broken.toml"
    broken.write_text("[daemon]\n")
    result = runner.invoke(app, ["config", "check"], env={"PARCELWATCH_CONFIG": str(broken)})
    assert result.exit_code == 2 and str(broken) in result.stderr
    # --config wins over both.
    result = runner.invoke(
        app,
        ["--config", str(workspace.config), "config", "check"],
        env={"PARCELWATCH_CONFIG": str(broken)},
    )
    assert result.exit_code == 0


def test_secret_prefers_a_systemd_credential(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PW_TEST_SECRET", "from-env")
    assert secret("PW_TEST_SECRET") == "from-env"
    (tmp_path / "PW_TEST_SECRET").write_text("from-credential\n")
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(tmp_path))
    assert secret("PW_TEST_SECRET") == "from-credential"
    assert secret("") is None
