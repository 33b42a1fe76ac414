"""Refinement methods that need no model of their own: the identity control, an external program, a Python callable.

- ``identity`` returns its input: the control that proves the pipeline (refine -> results -> evaluation) adds
  nothing; its AP delta must be exactly 0.
- ``command`` runs any program (any language) that reads a COCO keypoint results file and writes one, e.g.
  ``{python} my_refiner.py {input} {output}``; the placeholders ``{input}``, ``{output}``, ``{images}`` (the image
  folder), ``{gt}`` (the annotation file) and ``{python}`` (the interpreter the bench runs on, so a Python script
  needs no ``python`` on PATH) are filled in per argument after splitting the command the shell's way
  (:func:`shlex.split`), so paths with spaces stay one argument. A non-zero exit, a missing or malformed output, or
  one that is not one to one with the input is a one-line error naming the method and the program's last stderr line.
  This is how a released model in another framework (PoseFix's TensorFlow code, BUCTD) joins the bench: a script.
- ``python`` calls ``package.module:function`` with ``(results: list[dict], images: Path, gt: Path) -> list[dict]``.

Installed packages add method classes under the entry-point group ``posefix_bench.methods``
(:mod:`posefix_bench.methods.registry`).
"""

from __future__ import annotations

import importlib
import inspect
import os
import shlex
import shutil
import string
import subprocess
import sys
import tempfile
from pathlib import Path

from posefix_bench.errors import PosefixError
from posefix_bench.methods.base import Method, MethodInfo
from posefix_bench.progress import Progress, no_progress
from posefix_bench.structures.io import atomic_write_json, read_json
from posefix_bench.structures.results import DEFAULT_ABSENT_POLICY

__all__ = ["IdentityMethod", "CommandMethod", "PythonMethod", "PLACEHOLDERS", "parse_callable"]

PLACEHOLDERS = ("input", "output", "images", "gt", "python")  # python: the interpreter running the bench


class IdentityMethod(Method):
    """Returns its input unchanged (the control: AP delta exactly 0)."""

    info = MethodInfo(type="identity", description="returns its input (the control: AP delta exactly 0)",
                      uses_images=False)

    def run(self, results, images, gt, progress: Progress = no_progress):
        return results


class CommandMethod(Method):
    """An external program: ``command`` with ``{input}`` ``{output}`` (required) and ``{images}`` ``{gt}``.

    Args:
        command: the command line (split the shell's way; no shell runs it).
        timeout: seconds before the program is stopped (an error); None: no limit.
        cwd: the folder it runs in (default: the current one).
    """

    info = MethodInfo(type="command", description="an external program: {input} results file in, {output} out "
                      "({images}, {gt} also available)")

    def __init__(self, command: str, name: str | None = None, timeout: float | None = None, cwd: str | None = None,
                 absent_policy: str = DEFAULT_ABSENT_POLICY):
        super().__init__(name, absent_policy)
        where = f"method {self.name!r}"
        if not isinstance(command, str) or not command.strip():
            raise PosefixError(f"{where}: 'command' must be a non-empty command line, got {command!r}")
        try:
            self.argv = shlex.split(command)
        except ValueError as e:
            raise PosefixError(f"{where}: command {command!r} cannot be split into arguments ({e})") from None
        used = set()
        for arg in self.argv:
            try:
                fields = {f for _, f, _, _ in string.Formatter().parse(arg) if f is not None}
            except ValueError as e:
                raise PosefixError(f"{where}: command argument {arg!r}: {e} (write a literal brace as {{{{ or }}}})") \
                    from None
            unknown = sorted(fields - set(PLACEHOLDERS))
            if unknown:
                raise PosefixError(f"{where}: unknown placeholder {{{unknown[0]}}} in the command (known: "
                                   f"{', '.join('{' + p + '}' for p in PLACEHOLDERS)})")
            used |= fields
        for need in ("input", "output"):
            if need not in used:
                raise PosefixError(f"{where}: the command must name {{{need}}} (the results file it "
                                   f"{'reads' if need == 'input' else 'writes'})")
        self.cwd = None if cwd is None else Path(cwd)
        if self.cwd is not None and not self.cwd.is_dir():
            raise PosefixError(f"{where}: cwd {self.cwd}: folder not found")
        program = self.argv[0].replace("{python}", sys.executable)
        base = self.cwd or Path.cwd()
        if shutil.which(program) is None and not (os.sep in program and (base / program).is_file()):
            raise PosefixError(f"{where}: program {program!r} not found")
        if timeout is not None and not (isinstance(timeout, (int, float)) and timeout > 0):
            raise PosefixError(f"{where}: timeout must be a positive number of seconds, got {timeout!r}")
        self.command, self.timeout = command, timeout

    def run(self, results, images, gt, progress: Progress = no_progress):
        where = f"method {self.name!r}"
        with tempfile.TemporaryDirectory(prefix="posefix-method-") as tmp:
            paths = {"input": Path(tmp) / "input.json", "output": Path(tmp) / "output.json",
                     "images": Path(images).resolve(), "gt": Path(gt).resolve()}
            atomic_write_json(paths["input"], results, indent=None)
            argv = [a.format(python=sys.executable, **{k: str(v) for k, v in paths.items()}) for a in self.argv]
            try:
                done = subprocess.run(argv, capture_output=True, text=True, timeout=self.timeout, cwd=self.cwd,
                                      stdin=subprocess.DEVNULL)
            except subprocess.TimeoutExpired:
                raise PosefixError(f"{where}: {argv[0]} did not finish within {self.timeout:g} s") from None
            except OSError as e:
                raise PosefixError(f"{where}: {argv[0]} cannot be run ({e.strerror or e})") from None
            if done.returncode != 0:
                lines = [ln.strip() for ln in (done.stderr or "").splitlines() if ln.strip()]
                last = f": {lines[-1]}" if lines else " (nothing on stderr)"
                raise PosefixError(f"{where}: {argv[0]} exited with status {done.returncode}{last}")
            if not paths["output"].is_file():
                raise PosefixError(f"{where}: {argv[0]} exited 0 but wrote no output file ({{output}})")
            try:
                return read_json(paths["output"], "results file")
            except PosefixError as e:
                raise PosefixError(f"{where}: its output {e}") from None


def parse_callable(spec: str, where: str):
    """The function named by ``package.module:function`` (a dotted attribute path after the colon is allowed)."""
    if not isinstance(spec, str) or spec.count(":") != 1 or not all(spec.split(":")):
        raise PosefixError(f"{where}: callable {spec!r}: expected 'package.module:function'")
    module_name, attr = spec.split(":")
    try:
        obj = importlib.import_module(module_name)
    except ImportError as e:
        raise PosefixError(f"{where}: callable {spec!r}: module {module_name!r} cannot be imported ({e})") from None
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise PosefixError(f"{where}: callable {spec!r}: {module_name} has no attribute {attr!r}")
        obj = getattr(obj, part)
    if not callable(obj):
        raise PosefixError(f"{where}: callable {spec!r} is a {type(obj).__name__}, not a function")
    return obj


class PythonMethod(Method):
    """A Python function ``(results: list[dict], images: Path, gt: Path) -> list[dict]`` named ``package.module:fn``.

    The function runs in this process; an exception it raises is its own (shown with its traceback).
    """

    info = MethodInfo(type="python", description="a Python callable package.module:function(results, images, gt)")

    def __init__(self, callable: str, name: str | None = None, absent_policy: str = DEFAULT_ABSENT_POLICY):
        super().__init__(name, absent_policy)
        where = f"method {self.name!r}"
        self.spec = callable
        self.function = parse_callable(callable, where)
        try:
            inspect.signature(self.function).bind([], Path("."), Path("."))
        except TypeError:
            raise PosefixError(f"{where}: callable {callable!r} does not take (results, images, gt)") from None
        except ValueError:  # a builtin without a signature: trust it
            pass

    def run(self, results, images, gt, progress: Progress = no_progress):
        return self.function(results, images, gt)
