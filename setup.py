"""Build querybook_eventlog._core, the C core, against jansson and MariaDB
Connector/C found with pkg-config (or mariadb_config)."""

import glob
import os
import shlex
import shutil
import subprocess
import sys

from setuptools import Extension, setup

DEBIAN_PACKAGE_FOR = {
    "jansson": "libjansson-dev",
    "libmariadb": "libmariadb-dev",
}


def pkg_config(library):
    """(cflags, libs) of a pkg-config library, or exit naming the Debian package."""
    try:
        cflags = subprocess.check_output(["pkg-config", "--cflags", library], text=True)
        libs = subprocess.check_output(["pkg-config", "--libs", library], text=True)
        return shlex.split(cflags), shlex.split(libs)
    except (OSError, subprocess.CalledProcessError):
        pass
    if library == "libmariadb" and shutil.which("mariadb_config"):
        cflags = subprocess.check_output(["mariadb_config", "--cflags"], text=True)
        libs = subprocess.check_output(["mariadb_config", "--libs"], text=True)
        return shlex.split(cflags), shlex.split(libs)
    sys.exit(
        f"querybook_eventlog: cannot find {library} with pkg-config; "
        f"install the Debian package {DEBIAN_PACKAGE_FOR[library]} "
        f"(apt-get install {DEBIAN_PACKAGE_FOR[library]} pkg-config)"
    )


def extension():
    compile_args = ["-std=c11", "-D_GNU_SOURCE", "-fvisibility=hidden"]
    link_args = ["-pthread"]
    for library in ("jansson", "libmariadb"):
        cflags, libs = pkg_config(library)
        compile_args += cflags
        link_args += libs
    compile_args += shlex.split(os.environ.get("QBEL_CFLAGS", ""))
    link_args += shlex.split(os.environ.get("QBEL_LDFLAGS", ""))
    return Extension(
        "querybook_eventlog._core",
        sources=sorted(glob.glob("csrc/*.c")),
        depends=sorted(glob.glob("csrc/*.h")),
        extra_compile_args=compile_args,
        extra_link_args=link_args,
    )


setup(ext_modules=[extension()])
