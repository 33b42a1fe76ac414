"""The package's imports go one way: a module imports only from its own layer or lower ones (CONTRIBUTING.md)."""

import ast
from pathlib import Path

import posefix_bench

LAYERS = {
    "errors": 0, "progress": 0, "registry": 0,
    "structures": 1, "hashing": 1,
    "codecs": 2, "synthesis": 2,
    "models": 3,
    "evaluation": 4,
    "sources": 5, "methods": 5, "engine": 5,
    "record": 6,
    "bench": 7, "reporting": 7,
    "commands": 8, "cli": 8,
}  # fmt: skip
# packages of one layer that must not import each other: the bench computes records, reporting renders them
APART = {frozenset({"bench", "reporting"})}
PKG = Path(posefix_bench.__file__).parent


def _layer(module: str) -> int | None:
    parts = module.split(".")
    if parts[0] != "posefix_bench" or len(parts) < 2:
        return None
    return LAYERS.get(parts[1])


def _imports(path: Path):
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module


def test_every_package_module_has_a_layer():
    tops = {p.stem if p.is_file() else p.name for p in PKG.iterdir()
            if (p.suffix == ".py" and p.stem != "__init__" and p.stem != "__main__")
            or (p.is_dir() and (p / "__init__.py").exists())}
    assert tops <= set(LAYERS), f"modules without a layer: {sorted(tops - set(LAYERS))}"


def test_imports_go_down_only():
    bad = []
    for path in PKG.rglob("*.py"):
        rel = path.relative_to(PKG.parent).with_suffix("")
        own = _layer(".".join(rel.parts))
        if own is None:
            continue
        for mod in _imports(path):
            other = _layer(mod)
            if other is not None and other > own:
                bad.append(f"{'.'.join(rel.parts)} (layer {own}) imports {mod} (layer {other})")
            if frozenset({rel.parts[1], mod.split(".")[1] if mod.count(".") else ""}) in APART:
                bad.append(f"{'.'.join(rel.parts)} imports {mod}: these packages must not import each other")
    assert not bad, "\n".join(bad)


def test_evaluation_never_imports_models_or_torch():
    for path in (PKG / "evaluation").rglob("*.py"):
        mods = set(_imports(path))
        assert not any(m.startswith("posefix_bench.models") for m in mods), path
        assert not any(m == "torch" or m.startswith("torch.") for m in mods), path
