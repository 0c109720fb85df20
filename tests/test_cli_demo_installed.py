"""`querybook-eventlog demo` from an installed wheel: built from a copy of the
source, installed into a fresh venv, run from another directory with nothing
of the source tree on sys.path.  The proof that the demo (and its embedded
MariaDB) works after `pip install`."""

import os
import shutil
import subprocess
import sys

import pytest

from querybook_eventlog.testing import tool_environment

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SKIP = shutil.ignore_patterns(".venv*", ".git", "build", "*.so", "*.egg-info", "__pycache__",
                              ".pytest_cache", ".hypothesis", ".ci-work", "build-ext.log")


def run(command, **kwargs):
    env = {key: value for key, value in tool_environment().items()
           if key not in ("PYTHONPATH", "QBEL_TEST_BUILD", "QBEL_CFLAGS", "QBEL_LDFLAGS",
                          "DATABASE_CONN", "VIRTUAL_ENV")}
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=900,
                            check=False, **kwargs)
    assert result.returncode == 0, f"{command}\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}"
    return result


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    base = tmp_path_factory.mktemp("wheel")
    source = base / "source"
    shutil.copytree(REPO, source, ignore=SKIP)
    run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
         "-w", str(base / "dist"), str(source)])
    shutil.rmtree(source)
    wheels = list((base / "dist").glob("querybook_eventlog-*.whl"))
    assert len(wheels) == 1, wheels
    venv = base / "venv"
    run([sys.executable, "-m", "venv", str(venv)])
    run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q", str(wheels[0])])
    elsewhere = tmp_path_factory.mktemp("elsewhere")
    return venv, elsewhere


def test_installed_script_runs_the_demo_from_another_directory(installed):
    venv, elsewhere = installed
    where = run([str(venv / "bin" / "python"), "-c",
                 "import querybook_eventlog, pymysql; print(querybook_eventlog.__file__)"],
                cwd=elsewhere)
    assert where.stdout.startswith(str(venv)), where.stdout
    result = run([str(venv / "bin" / "querybook-eventlog"), "demo", "--users", "60",
                  "--html", "day.html"], cwd=elsewhere)
    out = result.stdout
    assert "starting a throwaway MariaDB" in out
    written = int(out.split(" written in ")[0].rsplit(": ", 1)[1])
    logged = int(out.split("   logged ")[1].split(" events")[0])
    assert written == logged > 1000
    for title in ("Search: per search string", "Feature use: clicks per component and element",
                  "Home page (LANDING_PAGE) per day", "Events per day and type",
                  "Top API and websocket routes", "Most active users", "FORMAT_BUTTON"):
        assert title in out
    page = (elsewhere / "day.html").read_text()
    assert page.count("<svg") == 6 and "<script" not in page
    assert "wrote day.html" in result.stderr
    assert "\r" not in result.stderr  # no progress bar: stderr is not a terminal


def test_installed_wheel_registers_the_script_and_the_pytest_plugin(installed):
    venv, elsewhere = installed
    result = run([str(venv / "bin" / "python"), "-c",
                  "from importlib.metadata import entry_points as e; "
                  "print([x.value for x in e(group='pytest11')]); "
                  "print([x.value for x in e(group='console_scripts')])"], cwd=elsewhere)
    assert "querybook_eventlog.pytest_plugin" in result.stdout
    assert "querybook_eventlog.__main__:main" in result.stdout
    help_text = run([str(venv / "bin" / "querybook-eventlog"), "--help"], cwd=elsewhere).stdout
    for command in ("demo", "report", "cleanup", "replay", "adopt"):
        assert command in help_text
