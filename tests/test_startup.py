"""Start-up cost: what `import ipallow` and `ipallow --version` / `--help` load (issue #11).

A traffic-shaping script may call `ipallow check` per address, so the command line and the
package import only what the asked-for work needs.  Timing belongs in benchmarks/; here we check
the cause instead: which modules a fresh interpreter ends up importing.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

PROBE = """
import json, sys
{setup}
print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in ('numpy', 'pyroaring', 'ipallow'))))
"""


def command_then(argv: str, report: str) -> tuple:
    """In a fresh interpreter, run ``ipallow.cli.main(argv)`` (``argv`` as Python text; its output
    swallowed, exit status 0), then evaluate ``report`` there: (its value, as JSON, and the
    modules loaded)."""
    setup = ("import contextlib, io, sys, ipallow.cli\n"
             "with contextlib.redirect_stdout(io.TextIOWrapper(io.BytesIO())):\n"
             f"    assert ipallow.cli.main({argv}) == 0\n"
             f"print(json.dumps({report}))")
    out = subprocess.run([sys.executable, "-c", PROBE.format(setup=setup)], capture_output=True, text=True,
                         timeout=120, check=True).stdout.splitlines()
    return json.loads(out[-2]), set(json.loads(out[-1]))


def loaded_after(setup: str) -> set[str]:
    out = subprocess.run([sys.executable, "-c", PROBE.format(setup=setup)], capture_output=True, text=True,
                         timeout=120, check=True).stdout
    return set(json.loads(out))


def test_import_ipallow_loads_neither_numpy_nor_the_features():
    loaded = loaded_after("import ipallow")
    assert not {m for m in loaded if m.startswith(("numpy", "pyroaring"))}, loaded
    assert loaded <= {"ipallow", "ipallow._version"}, loaded


def test_using_the_allowlist_does_not_load_registry_live_diff_or_pyroaring():
    loaded = loaded_after("import ipallow; al = ipallow.Allowlist(['10.0.0.0/8']); assert '10.1.2.3' in al")
    assert "numpy" in loaded and "ipallow._trie" in loaded
    for heavy in ("ipallow.live", "ipallow.diff", "ipallow.dataframe", "ipallow.bench", "pyroaring",
                  "ipallow.commands"):
        assert heavy not in loaded, heavy


@pytest.mark.parametrize("argv", [["--version"], ["--help"], ["-h"], [], ["chekc"], ["check", "--help"],
                                  ["filter", "--help"], ["stats", "--help"], ["validate", "--help"],
                                  ["export", "--help"], ["bench", "--help"], ["info", "--help"],
                                  ["compile", "--help"], ["diff", "--help"]])
def test_version_and_help_do_not_import_numpy(argv):
    # --help lists every command, so every command module must import its work lazily.
    setup = ("import contextlib, io, ipallow.cli\n"
             "with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):\n"
             "    try:\n"
             f"        ipallow.cli.main({argv!r})\n"
             "    except SystemExit:\n"
             "        pass")
    loaded = loaded_after(setup)
    assert not {m for m in loaded if m.startswith(("numpy", "pyroaring"))}, sorted(loaded)


def test_the_lazy_names_are_the_public_ones():
    import ipallow
    for name in ipallow.__all__:
        assert getattr(ipallow, name) is not None, name
    assert callable(ipallow.diff) and ipallow.diff.__module__ == "ipallow.diff"
    import ipallow.diff as module_imported_late   # noqa: F401  (sets the package attribute)
    assert callable(ipallow.diff) and ipallow.diff.__name__ == "diff"
    with pytest.raises(AttributeError):
        ipallow.no_such_name


def test_submodules_are_reachable_from_the_package_as_before():
    # The package used to import its submodules up front; code reaching them as attributes works.
    out = subprocess.run([sys.executable, "-c",
                          "import ipallow; print(ipallow.snapshot.register_json_type.__name__, "
                          "ipallow.registry.load_registry.__name__, ipallow.live.LiveAllowlist.__name__)"],
                         capture_output=True, text=True, timeout=120, check=True).stdout
    assert out.split() == ["register_json_type", "load_registry", "LiveAllowlist"]


def test_a_check_imports_only_the_check_command(tmp_path):
    listing = tmp_path / "list.txt"
    listing.write_text("10.0.0.0/8\n")
    setup = ("import contextlib, io, ipallow.cli\n"
             "with contextlib.redirect_stdout(io.StringIO()):\n"
             f"    assert ipallow.cli.main(['check', '--list', {str(listing)!r}, '10.1.2.3']) == 0")
    loaded = loaded_after(setup)
    commands = {m for m in loaded if m.startswith("ipallow.commands.") and not m.split(".")[-1].startswith("_")}
    assert commands == {"ipallow.commands.check"}, commands
    for heavy in ("ipallow.bench", "ipallow.synth", "ipallow.diff", "ipallow.live", "pyroaring"):
        assert heavy not in loaded, heavy



def test_a_check_on_a_plain_snapshot_loads_what_it_uses_only(tmp_path):
    # The per-address path of a shell script: no registry code for a list without a lifecycle,
    # and none of the standard modules only other paths use (writing files, IPv6 text, listing
    # the commands through pkgutil and inspect).
    import ipallow
    path = tmp_path / "plain.ipallow"
    ipallow.Allowlist(["10.0.0.0/8"]).save(path)
    stdlib, loaded = command_then("['check', '10.1.2.3', '--list', %r]" % str(path),
                                  "sorted(m for m in ('tempfile', 'socket', 'pkgutil') if m in sys.modules)")
    assert "ipallow._trie" in loaded
    assert not {m for m in loaded if m.startswith("ipallow.registry")}, sorted(loaded)
    assert stdlib == [], stdlib


def test_a_filter_of_plain_input_does_not_import_zstandard(tmp_path):
    # zstandard alone took 10-40 ms of a filter's start-up (it imports platform); a codec's
    # module is imported when its magic bytes are seen, not for every input.  (bz2 and lzma
    # come with shutil, which argparse imports.)
    listing, flows = tmp_path / "list.txt", tmp_path / "flows.txt"
    listing.write_text("10.0.0.0/8\n")
    flows.write_text("10.1.2.3\n192.0.2.1\n")
    zstandard, _ = command_then("['filter', '-q', '--list', %r, %r]" % (str(listing), str(flows)),
                                "'zstandard' in sys.modules")
    assert zstandard is False


def test_every_command_is_still_listed_and_a_typo_still_lists_them():
    import ipallow.cli
    names = ipallow.cli.command_names()
    assert {"check", "filter", "export", "compile", "validate", "diff", "stats", "info", "bench"} <= set(names)
    result = subprocess.run([sys.executable, "-m", "ipallow.cli", "chekc"], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 2 and all(name in result.stderr for name in names), result.stderr


def test_check_on_a_registry_snapshot_does_not_decode_its_whole_registry(tmp_path, monkeypatch, capsys):
    # A registry's snapshot carries every record; `check` answers from the compiled tables and
    # must not decode (and re-check) all of them first: that once doubled a check's run time.
    import ipallow.cli
    import ipallow.registry
    path = tmp_path / "registry.ipallow"
    ipallow.Allowlist.from_registry(ipallow.SAMPLE_LIST).save(path)
    calls = []
    real = ipallow.registry.decode_lifecycle
    monkeypatch.setattr(ipallow.registry, "decode_lifecycle", lambda *a, **k: calls.append(1) or real(*a, **k))
    assert ipallow.cli.main(["check", "--list", str(path), "203.0.113.9"]) == 0
    assert "PTA-0003" in capsys.readouterr().out
    assert calls == []
    # --explain needs the registrations, and decodes them then.
    assert ipallow.cli.main(["check", "--list", str(path), "--explain", "203.0.113.9"]) == 0
    assert calls


def test_the_names_spelled_out_for_help_are_the_real_ones():
    # export's --family choices are written out in the command so --help needs no numpy.
    import ipallow.commands.export
    import ipallow.export
    assert set(ipallow.commands.export.FAMILY_CHOICES) == set(ipallow.export.FAMILIES)


def test_the_bench_package_serves_its_names_on_first_use():
    import ipallow.bench
    for name in ipallow.bench.__all__:
        assert getattr(ipallow.bench, name) is not None, name
    assert ipallow.bench.run.__module__ == "ipallow.bench._run"
    assert set(ipallow.bench.__all__) <= set(dir(ipallow.bench))
    with pytest.raises(AttributeError):
        ipallow.bench.no_such_name


def test_a_filter_of_plain_lines_imports_neither_json_nor_csv(tmp_path):
    # json (4-6 ms) and csv with the column reader (4-6 ms) serve --json, data-carrying lists
    # and --column only; a plain list and plain lines do without them.
    listing, flows = tmp_path / "list.txt", tmp_path / "flows.txt"
    listing.write_text("10.0.0.0/8\n")
    flows.write_text("10.1.2.3\n192.0.2.1\n")
    code = ("import contextlib, io, sys, ipallow.cli\n"
            "with contextlib.redirect_stdout(io.TextIOWrapper(io.BytesIO())):\n"
            f"    assert ipallow.cli.main(['filter', '-q', '--list', {str(listing)!r}, {str(flows)!r}]) == 0\n"
            "print(sorted(m for m in ('json', 'csv', 'ipallow._delimited') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         check=True).stdout
    assert out.strip() == "[]"


@pytest.mark.parametrize("seed", range(3))
def test_a_list_header_is_read_as_csv_reads_it(seed):
    # The header check splits at commas itself unless the line holds what csv treats apart.
    import csv
    import random

    from ipallow._formats import _header_columns

    rng = random.Random(seed)
    for _ in range(3000):
        line = "".join(rng.choice('ab,"\r\0 #\t1./:') for _ in range(rng.randint(0, 12)))
        if not line.strip() or line.lstrip().startswith("#"):
            want = set()
        else:
            try:
                want = {f.strip().strip('"').lower() for f in next(csv.reader([line.rstrip("\r")]), [])}
            except csv.Error:
                want = set()
        assert _header_columns(line.encode() + b"\n10.0.0.0/8\n") == want, repr(line)


def test_the_executable_leaves_what_it_loaded_out_of_the_exit_collections(tmp_path):
    # The interpreter's exit collects every live object in full: numpy's made that ~40 ms of
    # each command.  console_main freezes them first; the output is still all there.
    listing, flows = tmp_path / "list.txt", tmp_path / "flows.txt"
    listing.write_text("10.0.0.0/8\n")
    flows.write_text("".join(f"10.0.{i // 256}.{i % 256}\n192.0.2.{i % 256}\n" for i in range(5000)))
    code = ("import gc, sys\n"
            "from ipallow.cli import console_main\n"
            f"sys.argv = ['ipallow', 'filter', '-q', '--list', {str(listing)!r}, {str(flows)!r}]\n"
            "status = console_main()\n"
            "print(gc.get_freeze_count() > 1000, status, file=sys.stderr)\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.stderr.split() == ["True", "0"], done.stderr
    assert done.stdout == "".join(f"10.0.{i // 256}.{i % 256}\n" for i in range(5000))


@pytest.mark.parametrize("kind", ["txt", "snapshot"])
def test_an_export_of_a_text_list_or_plain_snapshot_imports_neither_numpy_nor_argparse(tmp_path, kind):
    # Issue #15: `ipallow export` of 100k CIDRs at least as fast as iprange, start-up included.
    # numpy's import alone (65 ms) is 2.5x iprange's whole run, argparse's first use ~9 ms, re
    # and typing 4 and 2 ms: none of them is needed to read a list and write its cover.
    import ipallow
    path = tmp_path / ("list.txt" if kind == "txt" else "list.ipallow")
    entries = ["10.0.0.0/8", "10.0.0.0/9", "192.0.2.0 - 192.0.2.77", "2001:db8::/32"]
    if kind == "txt":
        path.write_text("\n".join(entries) + "\n")
    else:
        ipallow.Allowlist(entries).save(path)
    for argv in (["export", "--format", "cidr", str(path)],
                 ["export", "--format=nft", "--family", "ip", "-q", "-o", str(tmp_path / "out.nft"), str(path)],
                 ["export", "--format", "ipset", "--json", str(path)]):
        # (re cannot be checked here: the probe's own json imports it.)
        stdlib, loaded = command_then(repr(argv), "sorted(m for m in ('argparse', 'typing', 'shutil', "
                                                  "'threading') if m in sys.modules)")
        assert not {m for m in loaded if m.startswith(("numpy", "pyroaring"))}, (argv, sorted(loaded))
        # (-o writes through tempfile, which imports shutil: the file is replaced atomically.)
        assert stdlib == ([] if "-o" not in argv else ["shutil"]), (argv, stdlib)
        assert "ipallow._trie" in loaded and "ipallow.export" not in loaded


def test_an_export_to_stdout_imports_only_the_standard_modules_it_uses(tmp_path):
    # Issue #15 again: contextlib with functools (~1 ms), importlib with warnings (0.35 ms),
    # types (0.2 ms) and the snapshot package with struct (0.3 ms) were a tenth of the start-up
    # of an export of a text list, and it uses none of them.  Only what this process imports
    # after its start counts (site may import some of them itself).
    path = tmp_path / "list.txt"
    path.write_text("10.0.0.0/9\n10.128.0.0/9\n192.0.2.0 - 192.0.2.77\n")
    code = ("import sys\n"
            "before = set(sys.modules)\n"
            "from ipallow.cli import console_main\n"
            f"sys.argv = ['ipallow', 'export', '--format', 'cidr', {str(path)!r}]\n"
            "status = console_main()\n"
            "unused = ('contextlib', 'functools', 'importlib', 'warnings', 'types', 'struct', "
            "'ipallow.snapshot', 'argparse', 'numpy')\n"
            "print(status, sorted(m for m in unused if m in sys.modules and m not in before), file=sys.stderr)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.stdout == "10.0.0.0/8\n192.0.2.0/26\n192.0.2.64/29\n192.0.2.72/30\n192.0.2.76/31\n", done
    assert done.stderr.splitlines()[-1] == "0 []", done.stderr


def test_the_executable_reads_its_command_line_without_collections_and_works_with_them(tmp_path):
    # console_main keeps the cyclic collector off while the command's modules are imported
    # (~2 ms of passes over objects that live until exit), then freezes those objects and turns
    # it back on: a long filter or compile must not run without it.
    path = tmp_path / "list.txt"
    path.write_text("10.0.0.0/8\n")
    code = ("import contextlib, gc, io, sys\n"
            "from ipallow import cli\n"
            "seen = []\n"
            "real = cli.run\n"
            "cli.run = lambda args: seen.append((gc.isenabled(), gc.get_freeze_count() > 0)) or real(args)\n"
            f"sys.argv = ['ipallow', 'export', '--format', 'cidr', {str(path)!r}]\n"
            "with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):\n"
            "    status = cli.console_main()\n"
            "print(seen, status, gc.isenabled())")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         check=True).stdout
    assert out.split("\n")[0] == "[(True, True)] 0 True", out


def test_the_core_imports_numpy_and_ipaddress_when_first_needed():
    # The compiled core's start-up is its own: numpy (65 ms) comes in with the first function
    # that returns or reads an array, ipaddress (~1.5 ms) with the first address object, network
    # or network text.  Neither is needed to read a text list and write its CIDR cover.
    code = ("import sys\n"
            "from ipallow import _trie\n"
            "seen = [sorted(m for m in ('numpy', 'ipaddress') if m in sys.modules)]\n"
            "cover = _trie.text_list_cover(b'10.0.0.0/9\\n10.128.0.0/9\\n')\n"
            "seen.append(sorted(m for m in ('numpy', 'ipaddress') if m in sys.modules))\n"
            "import ipaddress\n"
            "seen.append(_trie.address_key(ipaddress.ip_address('10.1.2.3')))\n"
            "seen.append(_trie.address_key(ipaddress.ip_address('::ffff:10.1.2.3')))\n"
            "try:\n"
            "    _trie.address_key(1.5)\n"
            "except TypeError as exc:\n"
            "    seen.append(type(exc).__name__)\n"
            "seen.append(type(_trie.scan_network_text(b'10.0.0.0/8\\n')[0]).__module__)\n"
            "print(seen, cover[1].tolist(), cover[2].tolist())")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         check=True).stdout.strip()
    assert out == ("[[], [], (4, 167838211), (4, 167838211), 'TypeError', 'numpy'] "
                   "[167772160] [8]"), out
