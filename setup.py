"""Only the compiled extension lives here; metadata is in pyproject.toml.

Environment switches:
  DEBUG=1     -O0 -g, bounds checking on (for gdb / valgrind / AddressSanitizer runs)
  ANNOTATE=1  write Cython's annotated HTML next to the .pyx
  ARCH=native opt in to -march=native (never the default: wheels must run anywhere)
  IPALLOW_PORTABLE=1  no -mpopcnt on x86-64 (for pre-2008 CPUs; lookups get ~20% slower)
"""
import os
import platform
import sys
from glob import glob

from Cython.Build import cythonize
from setuptools import Extension, setup

debug = os.environ.get("DEBUG") == "1"
compile_args = ["-O0", "-g"] if debug else ["-O3"]
# POPCNT is in every x86-64 CPU since 2008 (the x86-64-v2 baseline); the trie
# uses it on every level.  The module checks the CPU at import.
if platform.machine().lower() in ("x86_64", "amd64") and os.environ.get("IPALLOW_PORTABLE") != "1":
    compile_args.append("-mpopcnt")
# The released module carries no debug symbols: ~0.5 MB instead of ~3 MB.  DEBUG=1 keeps them.
link_args = []
if not debug and sys.platform.startswith("linux"):
    link_args.append("-Wl,--strip-all")
elif not debug and sys.platform == "darwin":
    link_args.append("-Wl,-x")
if os.environ.get("ARCH"):
    compile_args.append(f"-march={os.environ['ARCH']}")

directives = {
    "language_level": 3,
    "binding": True,
    "embedsignature": True,
    "boundscheck": debug,
    "wraparound": False,
    "initializedcheck": debug,
    "cdivision": True,
}

# The core is one module: _trie.pyx includes the .pxi files and, through _core.pxd, the C
# headers in include/.  Listing them as dependencies makes an edit to any of them rebuild it.
CORE = "src/ipallow"
extensions = [
    Extension(
        "ipallow._trie",
        [f"{CORE}/_trie.pyx"],
        include_dirs=[f"{CORE}/include"],
        depends=sorted(glob(f"{CORE}/include/*.h") + glob(f"{CORE}/*.pxi") + glob(f"{CORE}/*.pxd")),
        extra_compile_args=compile_args,
        extra_link_args=link_args,
    )
]

setup(
    ext_modules=cythonize(
        extensions,
        compiler_directives=directives,
        annotate=os.environ.get("ANNOTATE") == "1",
    )
)
