"""One JAX compilation cache for the whole test session, shared by the pytest-xdist workers and
the processes the tests start.

Many tests compile the same program (an optimizer's update on the shared problems, in several
suites): the cache compiles each once. It lives in a temporary directory that the first process
(the xdist controller, or pytest alone) creates and removes at the end, so no run sees another's
and nothing is left behind. A cached executable is the one XLA compiled: results are bitwise the
same as without the cache.
"""

from __future__ import annotations

import os
import shutil
import tempfile

import jax

_VARIABLE = "JOPT_TEST_JAX_CACHE"


# JAX also reads these from the environment when it is imported: the processes the tests start
# (`jopt run` in a subprocess) use the cache too.
_SETTINGS = ("jax_compilation_cache_dir", "jax_persistent_cache_min_compile_time_secs",
             "jax_persistent_cache_min_entry_size_bytes")  # fmt: skip


def pytest_configure(config):
    if _VARIABLE not in os.environ:  # the first process: workers inherit the variable
        os.environ[_VARIABLE] = tempfile.mkdtemp(prefix="jopt-test-jax-cache-")
        config._jopt_owns_jax_cache = True
    values = (os.environ[_VARIABLE], 0, 0)  # every program, however fast it compiles
    for name, value in zip(_SETTINGS, values, strict=True):
        os.environ[name.upper()] = str(value)
        jax.config.update(name, value)


def pytest_unconfigure(config):
    if getattr(config, "_jopt_owns_jax_cache", False):
        shutil.rmtree(os.environ.pop(_VARIABLE), ignore_errors=True)
        for name in _SETTINGS:
            os.environ.pop(name.upper(), None)
