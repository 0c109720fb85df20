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
    "rdkafka": "librdkafka-dev",
}


def optional_pkg_config(library):
    """(cflags, libs) of a pkg-config library, or None when it is not found.
    QBEL_WITHOUT_RDKAFKA=1 builds as if librdkafka were missing (the tests
    of that build use it)."""
    if library == "rdkafka" and os.environ.get("QBEL_WITHOUT_RDKAFKA") == "1":
        return None
    try:
        cflags = subprocess.check_output(["pkg-config", "--cflags", library], text=True,
                                         stderr=subprocess.DEVNULL)
        libs = subprocess.check_output(["pkg-config", "--libs", library], text=True,
                                       stderr=subprocess.DEVNULL)
    except (OSError, subprocess.CalledProcessError):
        return None
    return shlex.split(cflags), shlex.split(libs)


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


# Compiled only into test builds (QBEL_TEST_BUILD=1): the counting, failing
# allocator and the test-only module functions (_live_allocations, ...).
TEST_ONLY_SOURCES = {"csrc/qbel_alloc.c", "csrc/test_hooks.c"}


def c_string(text):
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def extension():
    compile_args = ["-std=c11", "-D_GNU_SOURCE", "-fvisibility=hidden"]
    link_args = ["-pthread"]
    for library in ("jansson", "libmariadb"):
        cflags, libs = pkg_config(library)
        compile_args += cflags
        link_args += libs
    # librdkafka is optional: without it KafkaEventLogger exists but raises
    # at construction, naming the Debian package (csrc/kafka_logger.c).
    rdkafka = optional_pkg_config("rdkafka")
    if rdkafka is not None:
        compile_args += rdkafka[0] + ["-DQBEL_HAVE_RDKAFKA=1"]
        link_args += rdkafka[1]
    else:
        print(f"querybook_eventlog: librdkafka not found with pkg-config: KafkaEventLogger will "
              f"raise; install the Debian package {DEBIAN_PACKAGE_FOR['rdkafka']} to have it",
              file=sys.stderr)
    extra_cflags = os.environ.get("QBEL_CFLAGS", "")
    compile_args += shlex.split(extra_cflags)
    link_args += shlex.split(os.environ.get("QBEL_LDFLAGS", ""))
    # A test build counts the C core's allocations and has the test-only
    # functions; a normal build has neither (the tests say which they need).
    test_build = os.environ.get("QBEL_TEST_BUILD") == "1"
    sources = sorted(glob.glob("csrc/*.c"))
    macros = []
    if test_build:
        macros = [("QBEL_TEST_HOOKS", "1"), ("QBEL_BUILD_CFLAGS", c_string(extra_cflags))]
    else:
        sources = [source for source in sources if source not in TEST_ONLY_SOURCES]
    return Extension(
        "querybook_eventlog._core",
        sources=sources,
        define_macros=macros,
        depends=sorted(glob.glob("csrc/*.h")),
        extra_compile_args=compile_args,
        extra_link_args=link_args,
    )


setup(ext_modules=[extension()])
