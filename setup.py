"""Only the compiled extension lives here; metadata is in pyproject.toml.

Environment switches:
  DEBUG=1     -O0 -g (/Od /Zi with MSVC), bounds checking on (for gdb / valgrind / AddressSanitizer runs)
  ANNOTATE=1  write Cython's annotated HTML next to the .pyx
  ARCH=native opt in to -march=native (GCC / clang; never the default: wheels must run anywhere)

No CPU-specific flag is ever added: the lookups carry a POPCNT variant of their own and
choose it at import from the CPU they run on (src/ipallow/include/ipallow_lookup.h), so one
build serves every CPU of its architecture.  IPALLOW_SCALAR=1 at run time forces the
portable paths.
"""
import os
import sys
from glob import glob

from Cython.Build import cythonize
from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

debug = os.environ.get("DEBUG") == "1"


class BuildExt(build_ext):
    """Compiler flags by the compiler that will run (not by the machine building: a cross
    build or a universal2 build compiles for another one)."""

    def build_extensions(self):
        if self.compiler.compiler_type == "msvc":
            compile_args = ["/Od", "/Zi"] if debug else ["/O2"]
            link_args = ["/DEBUG"] if debug else []
        else:                                   # unix, mingw32, cygwin: GCC or clang
            compile_args = ["-O0", "-g"] if debug else ["-O3"]
            if os.environ.get("ARCH"):
                compile_args.append(f"-march={os.environ['ARCH']}")
            # The released module carries no debug symbols: ~0.5 MB instead of ~3 MB.
            link_args = []
            if not debug and sys.platform.startswith("linux"):
                link_args.append("-Wl,--strip-all")
            elif not debug and sys.platform == "darwin":
                link_args.append("-Wl,-x")
        for ext in self.extensions:
            ext.extra_compile_args = compile_args + list(ext.extra_compile_args)
            ext.extra_link_args = link_args + list(ext.extra_link_args)
        super().build_extensions()


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
    )
]

setup(
    cmdclass={"build_ext": BuildExt},
    ext_modules=cythonize(
        extensions,
        compiler_directives=directives,
        annotate=os.environ.get("ANNOTATE") == "1",
    )
)
