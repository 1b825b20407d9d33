#!/usr/bin/env python3
"""Times llmcompressor's ModifierFactory discovery (a pkgutil package walk) over a generated package.

The Python reference for modkit's discovery benchmark. It writes a package of N
modules with M Modifier classes each (stdlib only; the same names as
gen_plugins.py's plugins: Bench<P>M<M>Modifier, the last K modules in an
`experimental` subpackage) and runs the logic of llmcompressor's
ModifierFactory.refresh() / load_from_package() over it: importlib.import_module,
pkgutil.walk_packages, dir(module), endswith("Modifier"), isinstance(attr, type),
issubclass(attr, Modifier). As in llmcompressor, the main walk also descends into
experimental/, so experimental classes land in both registries, and the base class
`Modifier` itself (imported into every module) is counted in each registry: N*M
classes show up as N*M + 1.

Usage:
    python_walk.py [--modules N] [--classes M] [--experimental K] [--subpackages S]
                   [--dir DIR] [--preamble CODE] [--repeat R] [--mode MODE] [--json]

Modes:
    timed     (default) generate the package (into DIR, or a temporary directory),
              then time refresh() in this process: the first, cold run (imports,
              bytecode compilation unless cached) and the best of R-1 warm re-walks
              (modules removed from sys.modules first). Prints the times.
    walk      only refresh() once over an existing package in DIR and print the
              counts: for whole-process timing, e.g.
                  python_walk.py --mode generate --dir /tmp/pywalk -n 100 -m 10
                  hyperfine 'python3 python_walk.py --mode walk --dir /tmp/pywalk'
                  /usr/bin/time -v python3 python_walk.py --mode walk --dir /tmp/pywalk
    generate  only write the package into DIR.

--preamble adds a line to every generated module (e.g. "import torch" to include
the import cost real llmcompressor modules pay; this script itself stays stdlib-only).
"""

import argparse
import importlib
import json
import pkgutil
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict, Tuple, Type

PACKAGE = "modkit_bench_modifiers"


def class_name(module: int, cls: int) -> str:
    return f"BenchP{module:04d}M{cls:02d}Modifier"


BASE_MODULE = '''\
"""The Modifier base class of the generated benchmark package (a stand-in for llmcompressor's)."""


class Modifier:
    """Base of every benchmark modifier."""

    sparsity: float = 0.5
    targets = ("Linear",)

    def __init__(self, **kwargs):
        for key, value in kwargs.items():
            setattr(self, key, value)
        self.initialized_ = False

    def on_initialize(self, state) -> bool:
        return True

    def initialize(self, state) -> bool:
        self.initialized_ = self.on_initialize(state)
        return self.initialized_
'''


def module_source(module: int, classes: int, preamble: str, base_import: str) -> str:
    lines = [f'"""Generated benchmark module {module}: {classes} modifiers."""', ""]
    if preamble:
        lines += [preamble, ""]
    lines += [f"from {base_import} import Modifier", "",
              f"HELPER_CONSTANT = {module}", "",
              "def helper_not_a_modifier():", "    return HELPER_CONSTANT", ""]
    for c in range(classes):
        lines += [
            f"class {class_name(module, c)}(Modifier):",
            f'    """Benchmark modifier {c} of module {module}."""',
            "",
            "    sparsity: float = 0.5",
            "",
            "    def on_initialize(self, state) -> bool:",
            "        return self.sparsity >= 0.0",
            "",
        ]
    return "\n".join(lines) + "\n"


def generate(root: Path, modules: int, classes: int, experimental: int, subpackages: int,
             preamble: str) -> None:
    pkg = root / PACKAGE
    if pkg.exists():
        shutil.rmtree(pkg)
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text('"""Generated benchmark package of Modifier classes."""\n')
    (pkg / "modifier.py").write_text(BASE_MODULE)
    exp = pkg / "experimental"
    exp.mkdir()
    (exp / "__init__.py").write_text('"""Experimental benchmark modifiers."""\n')
    for s in range(subpackages):
        sub = pkg / f"group_{s:02d}"
        sub.mkdir()
        (sub / "__init__.py").write_text(f'"""Benchmark group {s}."""\n')
    first_experimental = modules - experimental
    for m in range(modules):
        if m >= first_experimental:
            where = exp
        elif subpackages > 0:
            where = pkg / f"group_{m % subpackages:02d}"
        else:
            where = pkg
        source = module_source(m, classes, preamble, f"{PACKAGE}.modifier")
        (where / f"bench_p{m:04d}.py").write_text(source)


class ModifierFactory:
    """The discovery half of llmcompressor.modifiers.factory.ModifierFactory."""

    MAIN_PACKAGE_PATH = PACKAGE
    EXPERIMENTAL_PACKAGE_PATH = PACKAGE + ".experimental"

    def __init__(self):
        self.main_registry: Dict[str, type] = {}
        self.experimental_registry: Dict[str, type] = {}
        self.errors: Dict[str, Exception] = {}

    def refresh(self) -> None:
        self.main_registry = self.load_from_package(self.MAIN_PACKAGE_PATH)
        self.experimental_registry = self.load_from_package(self.EXPERIMENTAL_PACKAGE_PATH)

    def load_from_package(self, package_path: str) -> Dict[str, Type]:
        modifier_base = importlib.import_module(PACKAGE + ".modifier").Modifier
        loaded = {}
        main_package = importlib.import_module(package_path)
        for _importer, modname, _is_pkg in pkgutil.walk_packages(main_package.__path__, package_path + "."):
            try:
                module = importlib.import_module(modname)
                for attribute_name in dir(module):
                    if not attribute_name.endswith("Modifier"):
                        continue
                    try:
                        if attribute_name in loaded:
                            continue
                        attr = getattr(module, attribute_name)
                        if not isinstance(attr, type):
                            raise ValueError(f"Attribute {attribute_name} is not a type")
                        if not issubclass(attr, modifier_base):
                            raise ValueError(f"Attribute {attribute_name} is not a Modifier")
                        loaded[attribute_name] = attr
                    except Exception as err:  # as llmcompressor: recorded, not raised
                        self.errors[attribute_name] = err
            except Exception as module_err:  # as llmcompressor: printed and swallowed
                print(module_err)
        return loaded


def forget_package() -> None:
    # A warm re-walk must import again, not hit sys.modules.
    for name in [n for n in sys.modules if n == PACKAGE or n.startswith(PACKAGE + ".")]:
        del sys.modules[name]
    importlib.invalidate_caches()


def timed_refresh() -> Tuple[float, ModifierFactory]:
    factory = ModifierFactory()
    start = time.perf_counter()
    factory.refresh()
    return time.perf_counter() - start, factory


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--modules", "-n", type=int, default=100, help="number of modules (plugins)")
    parser.add_argument("--classes", "-m", type=int, default=10, help="Modifier classes per module")
    parser.add_argument("--experimental", type=int, default=0, help="how many modules go into experimental/")
    parser.add_argument("--subpackages", type=int, default=0, help="spread main modules over this many subpackages")
    parser.add_argument("--dir", help="where the package is (walk) or goes (generate, timed); default: a temp dir")
    parser.add_argument("--preamble", default="", help="a line of code put at the top of every module")
    parser.add_argument("--repeat", "-r", type=int, default=5, help="timed mode: total walks (1 cold + warm ones)")
    parser.add_argument("--mode", choices=("timed", "walk", "generate"), default="timed")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    args = parser.parse_args()
    if args.modules < 1 or args.classes < 1 or not 0 <= args.experimental <= args.modules or args.repeat < 1:
        parser.error("need --modules >= 1, --classes >= 1, 0 <= --experimental <= --modules, --repeat >= 1")
    if args.mode in ("walk", "generate") and not args.dir:
        parser.error(f"--mode {args.mode} needs --dir")

    temp = None
    root = Path(args.dir).resolve() if args.dir else Path(temp := tempfile.mkdtemp(prefix="pywalk_"))
    try:
        if args.mode != "walk":
            generate(root, args.modules, args.classes, args.experimental, args.subpackages, args.preamble)
            if args.mode == "generate":
                print(f"generated {args.modules} modules x {args.classes} classes in {root / PACKAGE}")
                return 0
        elif not (root / PACKAGE / "__init__.py").exists():
            print(f"error: no generated package in '{root}': run --mode generate --dir {root} first",
                  file=sys.stderr)
            return 2
        sys.path.insert(0, str(root))

        cold, factory = timed_refresh()
        warm = []
        for _ in range(args.repeat - 1 if args.mode == "timed" else 0):
            forget_package()
            elapsed, factory = timed_refresh()
            warm.append(elapsed)

        result = {
            "mode": args.mode,
            "package": str(root / PACKAGE),
            "main": len(factory.main_registry),
            "experimental": len(factory.experimental_registry),
            "errors": len(factory.errors),
            "cold_s": cold,
            "warm_best_s": min(warm) if warm else None,
        }
        if args.json:
            print(json.dumps(result))
        else:
            print(f"main registry: {result['main']} modifiers, experimental: {result['experimental']}, "
                  f"errors: {result['errors']}")
            print(f"refresh() cold: {cold:.6f} s")
            if warm:
                print(f"refresh() warm: best {min(warm):.6f} s of {len(warm)}")
        return 0
    finally:
        if temp:
            shutil.rmtree(temp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
