"""Only the compiled extension lives here; metadata is in pyproject.toml.

Environment switches:
  DEBUG=1     -O0 -g, bounds checking on (for gdb / valgrind / AddressSanitizer runs)
  ANNOTATE=1  write Cython's annotated HTML next to the .pyx
  ARCH=native opt in to -march=native (never the default: wheels must run anywhere)
"""
import os

from Cython.Build import cythonize
from setuptools import Extension, setup

debug = os.environ.get("DEBUG") == "1"
compile_args = ["-O0", "-g"] if debug else ["-O3"]
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

extensions = [
    Extension(
        "ipallow._trie",
        ["src/ipallow/_trie.pyx"],
        extra_compile_args=compile_args,
        define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
    )
]

setup(
    ext_modules=cythonize(
        extensions,
        compiler_directives=directives,
        annotate=os.environ.get("ANNOTATE") == "1",
    )
)
