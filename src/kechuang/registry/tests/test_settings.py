"""Settings come from the environment; a bad or missing value fails loudly."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from django.core.exceptions import ImproperlyConfigured

from kechuang.settings import env_bool


def settings_in_a_fresh_process(tmp_path, **env: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("KECHUANG_")}
    clean.pop("DATABASE_URL", None)
    clean.update(KECHUANG_DATA_DIR=str(tmp_path), **env)
    return subprocess.run(
        [
            sys.executable,
            "-c",
            "import kechuang.settings as s; print(s.DEBUG, s.DATABASES['default']['NAME'])",
        ],
        env=clean,
        capture_output=True,
        text=True,
    )


def test_a_bad_boolean_names_the_variable(monkeypatch):
    monkeypatch.setenv("KECHUANG_DEBUG", "yes")
    with pytest.raises(ImproperlyConfigured, match="KECHUANG_DEBUG=yes"):
        env_bool("KECHUANG_DEBUG")


def test_production_refuses_to_start_without_a_secret_key(tmp_path):
    result = settings_in_a_fresh_process(tmp_path)
    assert result.returncode != 0 and "KECHUANG_SECRET_KEY" in result.stderr


def test_the_command_line_names_the_missing_secret_in_one_line(tmp_path):
    clean = {k: v for k, v in os.environ.items() if not k.startswith("KECHUANG_")}
    clean.update(KECHUANG_DATA_DIR=str(tmp_path))
    result = subprocess.run(
        [sys.executable, "-m", "kechuang", "check"], env=clean, capture_output=True, text=True
    )
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().count("\n") == 0 and "KECHUANG_SECRET_KEY" in result.stderr


def test_debug_is_off_unless_asked_and_sqlite_lives_in_the_data_folder(tmp_path):
    result = settings_in_a_fresh_process(tmp_path, KECHUANG_SECRET_KEY="k" * 50)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["False", str(tmp_path / "kechuang.sqlite3")]


def test_the_key_file_written_by_serve_sh_is_used(tmp_path):
    (tmp_path / "secret_key").write_text("from-the-file-" * 4)
    result = settings_in_a_fresh_process(tmp_path)
    assert result.returncode == 0, result.stderr
