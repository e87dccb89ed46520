"""Print the lowest version allowed by every dependency range in pyproject.toml, one pin a line.

``make test-lowest`` installs these pins into a fresh virtual environment and runs the tests, so
the lower bounds in pyproject.toml (and environment.yml, which a test keeps in agreement) are the
versions that were really tested, not guesses. Every requirement must have a lower bound (``>=``
or ``==``); one without makes this script fail with the line to fix.

    python tools/lowest_requirements.py              # all dependencies and every extra
    python tools/lowest_requirements.py --only torch # just the pins of the named packages
    python tools/lowest_requirements.py --skip torch # all but the named packages
    python tools/lowest_requirements.py --check      # is each lower bound what is installed?
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parent.parent


def requirements(pyproject: Path = ROOT / "pyproject.toml") -> list[Requirement]:
    """Every requirement of the project: its dependencies and all its extras, in file order."""
    meta = tomllib.loads(pyproject.read_text())["project"]
    lines = list(meta["dependencies"])
    for extra in meta.get("optional-dependencies", {}).values():
        lines += extra
    return [Requirement(line) for line in lines]


def lowest_pin(req: Requirement) -> str:
    """``name==X`` for the lower bound X of ``req`` (``>=X`` or ``==X``); ValueError without one."""
    lows = [s.version for s in req.specifier if s.operator in (">=", "==")]
    if len(lows) != 1:
        raise ValueError(
            f"{req} has no single lower bound (>= or ==); give it one in pyproject.toml so the "
            "lowest-versions run can test it."
        )
    if not req.specifier.contains(lows[0], prereleases=True):
        raise ValueError(f"{req}: its own lower bound {lows[0]} is excluded by the range.")
    return f"{req.name}=={lows[0]}"


def check_installed() -> list[str]:
    """Lines naming every package whose installed version is not its lower bound (empty: all are)."""
    from importlib.metadata import PackageNotFoundError, version

    from packaging.version import Version

    wrong = []
    for req in requirements():
        want = lowest_pin(req).split("==")[1]
        try:
            have = version(req.name)
        except PackageNotFoundError:
            wrong.append(f"{req.name}: not installed (lower bound {want})")
            continue
        if Version(Version(have).base_version) != Version(want):
            wrong.append(f"{req.name}: {have} installed, lower bound {want}")
    return wrong


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="*", default=None, help="print only these packages")
    parser.add_argument("--skip", nargs="*", default=(), help="leave these packages out")
    parser.add_argument(
        "--check", action="store_true", help="exit 1 unless every lower bound is what is installed"
    )
    args = parser.parse_args(argv)
    if args.check:
        wrong = check_installed()
        for line in wrong:
            print(line, file=sys.stderr)
        print(
            f"{len(requirements()) - len(wrong)} of {len(requirements())} packages at their lower bound"
        )
        return 1 if wrong else 0
    only = None if args.only is None else {n.lower() for n in args.only}
    skip = {n.lower() for n in args.skip}
    for req in requirements():
        name = req.name.lower()
        if name in skip or (only is not None and name not in only):
            continue
        print(lowest_pin(req))
    return 0


if __name__ == "__main__":
    sys.exit(main())
