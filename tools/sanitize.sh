#!/usr/bin/env bash
# The compiled core under AddressSanitizer + UndefinedBehaviorSanitizer: build, test, fuzz briefly.
#
#   tools/sanitize.sh                 build, run the test suite, then a fuzz smoke run (CI does this)
#                                     (all tests but three that measure the environment, see
#                                     NOT_UNDER_ASAN; Hypothesis examples cut, see pytest_sanitize.py)
#   tools/sanitize.sh build           only (re)build the instrumented extension
#   tools/sanitize.sh build-if-needed  rebuild only when setup.py, pyproject.toml or src/ changed
#   tools/sanitize.sh test [ARGS...]  build if needed, then pytest ARGS (default: the whole suite)
#   tools/sanitize.sh fuzz            build if needed, then tools/fuzz.sh --smoke
#   tools/sanitize.sh run CMD...      run CMD with the sanitizer environment (e.g. `python x.py`)
#
# The extension is built with clang, -fsanitize=address,undefined,fuzzer-no-link and
# -fno-sanitize-recover=all, and installed with atheris into a directory of its own
# ($IPALLOW_SANITIZE_DIR/site, default build/sanitize/site) that goes first on PYTHONPATH: nothing
# in the checkout or in another environment changes. Python itself is not instrumented, so the
# ASan runtime is preloaded (atheris's copy, which also carries libFuzzer, so the same build
# serves the fuzzers).
#
# The test dependencies come from a Python environment: by default a virtualenv the script
# creates ($IPALLOW_SANITIZE_DIR/venv); IPALLOW_SANITIZE_PYTHON=/path/to/env/bin/python uses
# one that already has them (CI passes the virtualenv it tested the wheel in) and installs
# nothing into it. Before the tests, the script checks that ipallow._trie is the instrumented
# build from site/ and that the ASan runtime is in the process.
#
# Works on a fresh Debian/Ubuntu machine: as root it installs clang and the compiler-rt
# runtimes with apt-get when they are missing (otherwise it says what to install).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

SAN_DIR=${IPALLOW_SANITIZE_DIR:-$ROOT/build/sanitize}
SITE=$SAN_DIR/site          # the instrumented ipallow and atheris (pip --target), first on PYTHONPATH
STAMP=$SAN_DIR/built-from   # hash of the sources (and the Python) the build in site/ was made from
if [ -n "${IPALLOW_SANITIZE_PYTHON:-}" ]; then
    PY=$IPALLOW_SANITIZE_PYTHON             # an environment that has the test dependencies
    OWN_VENV=false
else
    PY=$SAN_DIR/venv/bin/python             # created, with the test dependencies, on first use
    OWN_VENV=true
fi

say() { printf 'sanitize.sh: %s\n' "$*" >&2; }
die() { say "error: $*"; exit 2; }

# -- toolchain -----------------------------------------------------------------------------------

find_clang() {
    local c
    for c in clang clang-19 clang-18 clang-17 clang-16 clang-15 clang-14; do
        if command -v "$c" >/dev/null 2>&1; then command -v "$c"; return 0; fi
    done
    return 1
}

# The shared ASan runtime tells us compiler-rt is there (Debian ships it in libclang-rt-N-dev).
has_runtime() { [ -e "$("$1" -print-file-name=libclang_rt.asan-x86_64.so)" ] || \
                [ -e "$("$1" -print-file-name=libclang_rt.asan.so)" ]; }

ensure_toolchain() {
    local cc
    if cc=$(find_clang) && has_runtime "$cc"; then CLANG=$cc; return; fi
    command -v apt-get >/dev/null 2>&1 || die "clang with compiler-rt is required (no apt-get here to install it)"
    [ "$(id -u)" = 0 ] || die "clang and its compiler-rt runtimes are required: sudo apt-get install clang libclang-rt-dev (or libclang-rt-<N>-dev)"
    say "installing clang and compiler-rt with apt-get"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq || die "apt-get update failed (network? sources?)"
    apt-get install -y -qq clang >/dev/null || die "apt-get install clang failed"
    cc=$(find_clang) || die "clang installed but not found on PATH"
    if ! has_runtime "$cc"; then
        local major
        major=$("$cc" -dumpversion | cut -d. -f1)
        apt-get install -y -qq "libclang-rt-$major-dev" >/dev/null \
            || apt-get install -y -qq libclang-rt-dev >/dev/null \
            || die "apt-get could not install the compiler-rt runtimes (libclang-rt-$major-dev)"
        has_runtime "$cc" || die "compiler-rt installed but the ASan runtime is still missing"
    fi
    CLANG=$cc
}

# -- build -----------------------------------------------------------------------------------------

# site/ holds an installed (not editable) copy of the package: any source change means a rebuild.
source_hash() {
    { echo "$PY"; cat setup.py pyproject.toml; find src -type f ! -name '*.so' ! -name '*.c' ! -name '*.html' \
        ! -path '*/__pycache__/*' | LC_ALL=C sort | xargs cat; } | sha256sum | cut -d' ' -f1
}

# The Python that runs everything, with site/ first on its path.
site_python() { PYTHONPATH="$SITE${PYTHONPATH:+:$PYTHONPATH}" "$PY" "$@"; }

SAN_FLAGS="-fsanitize=address,undefined,fuzzer-no-link -fno-sanitize-recover=all -fno-omit-frame-pointer -g"

# The Python environment with the test dependencies: the one given, or our own virtualenv.
ensure_python() {
    if ! $OWN_VENV; then
        [ -x "$PY" ] || die "IPALLOW_SANITIZE_PYTHON=$PY is not an executable Python"
        "$PY" -c "import pytest, hypothesis" 2>/dev/null \
            || die "IPALLOW_SANITIZE_PYTHON=$PY lacks the test dependencies (pip install 'ipallow[test]' there)"
        return
    fi
    if [ ! -x "$PY" ]; then
        say "creating $SAN_DIR/venv"
        python3 -m venv "$SAN_DIR/venv" || die "python3 -m venv failed (Debian: apt-get install python3-venv)"
        "$PY" -m pip install --quiet --upgrade pip
    fi
    if [ ! -f "$SAN_DIR/deps-installed" ]; then
        # The dependencies and test extras as pyproject.toml lists them, without building ipallow
        # itself an extra time (plain, with gcc) only to shadow it.
        say "installing the test dependencies"
        "$PY" - > "$SAN_DIR/requirements.txt" <<'EOF'
import tomllib
project = tomllib.load(open("pyproject.toml", "rb"))["project"]
print("\n".join(project.get("dependencies", []) + project["optional-dependencies"]["test"]))
EOF
        "$PY" -m pip install --quiet -r "$SAN_DIR/requirements.txt" && touch "$SAN_DIR/deps-installed" \
            || die "pip install of the test dependencies failed"
    fi
    # Our own virtualenv also finds site/ without PYTHONPATH (after its own packages, among
    # which there is no ipallow): a test that replaces PYTHONPATH for a child still runs the
    # instrumented build.
    local packages
    packages=$("$PY" -c "import sysconfig; print(sysconfig.get_paths()['purelib'])")
    if [ ! -f "$packages/ipallow-sanitize-site.pth" ]; then
        rm -rf "$packages"/ipallow "$packages"/ipallow-*.dist-info   # the build there before site/ existed
        echo "$SITE" > "$packages/ipallow-sanitize-site.pth"
    fi
}

build() {
    ensure_toolchain
    mkdir -p "$SAN_DIR"
    ensure_python
    # atheris builds its sanitizer+libFuzzer runtimes (asan_with_fuzzer.so) with the clang on PATH.
    # Into site/, not the environment: a given environment stays as it was.
    if ! site_python -c "import atheris" 2>/dev/null; then
        say "installing atheris into $SITE"
        PATH="$(dirname "$CLANG"):$PATH" CLANG_BIN=$CLANG "$PY" -m pip install --quiet --target "$SITE" atheris \
            || die "pip install atheris failed"
    fi
    # Built from a copy of the tree: pip builds in place, and an instrumented build/ or _trie.c
    # left in the checkout could end up in a later plain `pip install .`.
    local tree=$SAN_DIR/tree
    rm -rf "$tree" "$SITE"/ipallow "$SITE"/ipallow-*.dist-info
    mkdir -p "$tree"
    tar -c --exclude=./build --exclude='./.venv*' --exclude=./.git --exclude=./.ci-work --exclude='*.so' \
        --exclude='./src/ipallow/*.c' --exclude='__pycache__' . | tar -x -C "$tree"
    say "building the extension with $CLANG ($SAN_FLAGS)"
    # setup.py's own flags (-O3) follow CFLAGS: the optimised code is what is checked.
    CC=$CLANG LDSHARED="$CLANG -shared" CFLAGS="$SAN_FLAGS" LDFLAGS="$SAN_FLAGS" \
        "$PY" -m pip install --quiet --no-deps --upgrade --target "$SITE" "$tree" \
        || die "building the instrumented extension failed"
    local so symbols
    so=$(ls "$SITE"/ipallow/_trie*.so)
    # Read once, then searched: `nm | grep -q` fails under pipefail whenever grep exits at its
    # first match before nm has written the rest (nm dies of SIGPIPE) -- it failed CI once.
    symbols=$(nm -D "$so") || die "nm -D $so failed"
    grep -q __asan_report <<<"$symbols" || die "$so is not ASan-instrumented"
    grep -q __ubsan_handle <<<"$symbols" || die "$so is not UBSan-instrumented"
    grep -q __sanitizer_cov <<<"$symbols" || die "$so has no libFuzzer coverage instrumentation"
    source_hash > "$STAMP"
}

build_if_needed() {
    if [ -x "$PY" ] && [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$(source_hash)" ]; then
        ensure_toolchain
        return
    fi
    build
}

# -- the sanitizer environment ---------------------------------------------------------------------

sanitized() {
    local runtime
    runtime=$(site_python -c "import atheris, os; print(os.path.join(atheris.path(), 'asan_with_fuzzer.so'))")
    [ -e "$runtime" ] || die "atheris did not build $runtime (was clang on PATH when it was installed?)"
    # detect_leaks=0: CPython deliberately never frees some interpreter-lifetime memory
    #   (interned strings, static types, module state), so LeakSanitizer would report the
    #   interpreter itself at every exit. Leaks are not what this run looks for; the rest is on.
    # halt_on_error / abort_on_error: the first report ends the process with a failure status, so
    #   pytest (or the fuzzer) fails instead of carrying on. ASan's exitcode is 1 by default.
    # PYTHONMALLOC=malloc: without it most Python objects come from pymalloc arenas, where an
    #   overrun of a str or bytes buffer stays inside memory ASan thinks is valid.
    env LD_PRELOAD="$runtime${LD_PRELOAD:+:$LD_PRELOAD}" \
        ASAN_OPTIONS="detect_leaks=0:halt_on_error=1:abort_on_error=1:allocator_may_return_null=1${ASAN_OPTIONS:+:$ASAN_OPTIONS}" \
        UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:abort_on_error=1${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}" \
        PYTHONMALLOC=malloc \
        PYTHONPATH="$SITE${PYTHONPATH:+:$PYTHONPATH}" \
        IPALLOW_SANITIZE_SITE="$SITE" \
        PATH="$(dirname "$PY"):$SITE/bin:$PATH" \
        "$@"
}

# Proof that the sanitized run uses the instrumented build: ipallow._trie from site/ (not the
# environment's own ipallow, which CI's environment has), the ASan runtime mapped in the process.
check_instrumented() {
    sanitized "$PY" - <<'EOF' || die "the sanitized interpreter does not run the instrumented build"
import os, sys
import ipallow._trie as trie
site = os.path.realpath(os.environ["IPALLOW_SANITIZE_SITE"])
loaded = os.path.realpath(trie.__file__)
with open("/proc/self/maps") as maps:
    asan = sorted({line.split()[-1] for line in maps if "asan" in line.rsplit("/", 1)[-1]})
print(f"sanitize.sh: ipallow._trie loaded from {loaded}; ASan runtime in the process: "
      f"{', '.join(asan) or 'none'}", file=sys.stderr)
sys.exit(0 if loaded.startswith(site + os.sep) and asan else 1)
EOF
}

# Tests that measure the environment rather than ipallow, which cannot hold under ASan:
NOT_UNDER_ASAN=(
    # each process's private memory after mapping a snapshot: ASan's shadow memory is private
    --deselect tests/test_snapshot.py::test_eight_processes_share_one_copy_of_the_pages
    # a progress line once the work has lasted 1 s: a sanitized CLI start-up alone takes longer
    --deselect tests/test_cli_ops.py::test_filter_shows_progress_on_a_terminal_only
    # mypy stubtest: static typing, no native code path to check (and 20 s)
    --ignore tests/test_stub.py
    # builds the core with gcc / aarch64-linux-gnu-gcc in a subprocess: nothing native runs in
    # this process (and ~1 min of compiling)
    --ignore tests/test_c_portability.py
    # nginx reading an exported .mmdb: the export itself is checked under ASan in test_mmdb.py
    --ignore tests/test_mmdb_nginx.py
)

run_tests() {
    check_instrumented
    say "running the test suite under ASan + UBSan"
    # -p no:cacheprovider: the sanitized run leaves the checkout's .pytest_cache alone.
    # --capture=sys: pytest captures at the Python level only, so a sanitizer report (written to
    # file descriptor 2 just before the abort) reaches the terminal instead of dying in a capture.
    # -p pytest_sanitize (tools/): fewer Hypothesis examples, see that file.
    PYTHONPATH="$ROOT/tools${PYTHONPATH:+:$PYTHONPATH}" \
        sanitized "$PY" -m pytest -q -p no:cacheprovider --capture=sys -p pytest_sanitize \
            "${NOT_UNDER_ASAN[@]}" "$@"
}

run_fuzz() {
    say "fuzz smoke run under ASan + UBSan"
    IPALLOW_SANITIZE_DIR=$SAN_DIR tools/fuzz.sh --smoke
}

command=${1:-all}
[ $# -gt 0 ] && shift
case $command in
    all)   build; run_tests "$@"; run_fuzz ;;
    build) build ;;
    build-if-needed) build_if_needed ;;
    test)  build_if_needed; run_tests "$@" ;;
    fuzz)  build_if_needed; run_fuzz ;;
    run)   build_if_needed; sanitized "$@" ;;
    env)   build_if_needed; sanitized env | grep -E '^(LD_PRELOAD|ASAN_OPTIONS|UBSAN_OPTIONS|PYTHONMALLOC)=' ;;
    *)     die "unknown command $command (all, build, test, fuzz, run, env)" ;;
esac
