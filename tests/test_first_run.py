"""A first run from any directory: ``.env`` of the working directory, ``--config`` relative to it,
the packaged defaults otherwise, and a warning for a misspelled ``MECHTRADE_*`` variable."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from ingest import config, envfile, resources

ROOT = Path(__file__).resolve().parents[1]


def test_env_file_sets_what_the_environment_lacks(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text(
        "# comment\nexport MECHTRADE_INGEST_BATCH_ROWS=123\nMECHTRADE_CONTRACTS='CON.F.US.MNQ.Z25'\n"
        "PROJECTX_USERNAME=  # empty: unset\nMECHTRADE_GATEWAY_LIVE=true  # trailing comment\n"
        "DATABASE_URL=postgresql://x\n")
    environ = {"DATABASE_URL": "postgresql://from-env"}
    added = envfile.load(tmp_path / ".env", environ)
    assert sorted(added) == ["MECHTRADE_CONTRACTS", "MECHTRADE_GATEWAY_LIVE", "MECHTRADE_INGEST_BATCH_ROWS"]
    assert environ == {"DATABASE_URL": "postgresql://from-env", "MECHTRADE_INGEST_BATCH_ROWS": "123",
                       "MECHTRADE_CONTRACTS": "CON.F.US.MNQ.Z25", "MECHTRADE_GATEWAY_LIVE": "true"}
    cfg = config.load(env=environ)
    assert (cfg.ingest.batch_rows, cfg.contracts, cfg.gateway.live) == (123, ("CON.F.US.MNQ.Z25",), True)


def test_unknown_variables_are_named_with_the_likely_one() -> None:
    names = ["MECHTRADE_INGEST_BATCH_ROWZ", "MECHTRADE_INGEST_BATCH_ROWS", "MECHTRADE_NONSENSE", "PATH",
             "MECHTRADE_COORDINATOR_RULES", "MECHTRADE_DEMO"]
    assert envfile.unknown_variables(names) == [("MECHTRADE_INGEST_BATCH_ROWZ", "MECHTRADE_INGEST_BATCH_ROWS"),
                                                ("MECHTRADE_NONSENSE", None)]


def test_every_variable_the_docs_name_is_known() -> None:
    import re

    text = (ROOT / ".env.example").read_text() + (ROOT / "README.md").read_text()
    # MECHTRADE_SECTION_KEY is the scheme, ..._ROWZ the README's example of a misspelling.
    named = set(re.findall(r"\bMECHTRADE_[A-Z0-9_]*[A-Z0-9]\b", text)) - {"MECHTRADE_SECTION_KEY",
                                                                          "MECHTRADE_INGEST_BATCH_ROWZ"}
    assert named and not envfile.unknown_variables(named)


def cli(cwd: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("MECHTRADE_", "DATABASE_URL"))}
    return subprocess.run([sys.executable, "-m", "ingest.cli", *args], cwd=cwd, capture_output=True, text=True,
                          env={**clean, "MECHTRADE_LOG_FORMAT": "text", **env}, timeout=60)


def test_cli_reads_env_of_the_working_directory_and_warns_about_a_typo(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("MECHTRADE_INGEST_BATCH_ROWZ=10\n")
    result = cli(tmp_path, "contracts", "MES")  # stops for want of credentials, after reading .env
    assert "PROJECTX_USERNAME and PROJECTX_API_KEY are not set" in result.stderr
    assert ("MECHTRADE_INGEST_BATCH_ROWZ is not a mechtrade setting and is ignored "
            "(did you mean MECHTRADE_INGEST_BATCH_ROWS?)") in result.stderr


def test_config_is_found_relative_to_the_working_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    env: dict[str, str] = {}
    assert config.config_file(env=env) == resources.default_config()
    assert config.load(env=env).contracts == config.load(ROOT / "config" / "mechtrade.yaml", env=env).contracts
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "mechtrade.yaml").write_text("contracts: [CON.F.US.MYM.Z25]\n")
    assert config.load(env=env).contracts == ("CON.F.US.MYM.Z25",)
    (tmp_path / "mine.yaml").write_text("contracts: [CON.F.US.M2K.Z25]\n")
    assert config.load(Path("mine.yaml"), env=env).contracts == ("CON.F.US.M2K.Z25",)
    assert config.load(env={"MECHTRADE_CONFIG": "mine.yaml"}).contracts == ("CON.F.US.M2K.Z25",)
    with pytest.raises(config.ConfigError, match=f"configuration file {tmp_path}/missing.yaml does not exist"):
        config.load(Path("missing.yaml"), env=env)
