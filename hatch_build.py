"""Builds jopt's fused CPU kernels (`jopt/_src/kernels`, CMake) when jopt is installed.

The library is compiled against the XLA FFI headers that ship with jaxlib (`jax.ffi.include_dir()`)
and copied to `jopt/_src/kernels/libjopt_fused.so`, where an editable install loads it from and a
wheel packs it. Without CMake or a C++17 compiler, or with JOPT_BUILD_KERNELS=0 in the
environment, the install goes on without it: jopt then warns once, at the first train step that
would use a kernel, and takes the XLA path (see `jopt/_src/fused.py`).
"""

from __future__ import annotations

import os
import pathlib
import shutil
import subprocess
import tempfile

from hatchling.builders.hooks.plugin.interface import BuildHookInterface

KERNELS = "jopt/_src/kernels"
LIBRARY = "libjopt_fused.so"


class KernelBuildHook(BuildHookInterface):
    PLUGIN_NAME = "custom"

    def initialize(self, version: str, build_data: dict) -> None:
        if self.target_name != "wheel":
            return
        root = pathlib.Path(self.root)
        target = root / KERNELS / LIBRARY
        # A library left by an earlier build may not match these sources: it goes first.
        target.unlink(missing_ok=True)
        if os.environ.get("JOPT_BUILD_KERNELS", "1") == "0":
            self.app.display_warning(
                "jopt: JOPT_BUILD_KERNELS=0: the fused CPU kernels are not built"
            )
            return
        try:
            built = _build(root / KERNELS, root / "build" / "kernels")
        except (OSError, subprocess.CalledProcessError, ImportError) as e:
            output = (getattr(e, "stderr", None) or "")[-2000:]  # the compiler's last words
            self.app.display_warning(
                f"jopt: the fused CPU kernels were not built ({e}); jopt takes the XLA path. "
                f"{output}"
            )
            return
        _copy_atomically(built, target)
        build_data["pure_python"] = False
        build_data["infer_tag"] = True
        if version != "editable":
            build_data["force_include"][str(target)] = f"{KERNELS}/{LIBRARY}"


def _build(source: pathlib.Path, build: pathlib.Path) -> pathlib.Path:
    """Configures and builds the kernels with CMake (Ninja where it is installed)."""
    import jaxlib  # the headers come with it: a build requirement in pyproject.toml

    include = pathlib.Path(jaxlib.__file__).parent / "include"
    if not (include / "xla" / "ffi" / "api" / "ffi.h").exists():
        raise OSError(f"no XLA FFI headers under {include}")
    generator = ["-G", "Ninja"] if shutil.which("ninja") else []
    configure = ["cmake", "-S", str(source), "-B", str(build), *generator]
    configure += [f"-DJAX_FFI_INCLUDE={include}", "-DCMAKE_BUILD_TYPE=Release"]
    subprocess.run(configure, check=True, capture_output=True, text=True)
    subprocess.run(["cmake", "--build", str(build)], check=True, capture_output=True, text=True)
    return build / LIBRARY


def _copy_atomically(source: pathlib.Path, target: pathlib.Path) -> None:
    """Copies to a temporary file next to `target`, then renames: never a half-written library."""
    with tempfile.NamedTemporaryFile(dir=target.parent, delete=False, suffix=".tmp") as tmp:
        shutil.copyfileobj(source.open("rb"), tmp)
    os.chmod(tmp.name, 0o755)
    os.replace(tmp.name, target)
