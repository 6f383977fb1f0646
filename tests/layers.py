"""The layout's import rules, checked by reading the source (tests/unit/test_layers.py runs it).

Every import counts, at the top of a module or inside a function (a lazy import that dodges a
circle is still a circle), and so does a job path handed to `enqueue*` (a job queued by name is a
call into that module, made later). The rules are data, below: a new package adds its line.
"""
from __future__ import annotations

import ast
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

# Where our code lives, below the repository root; everything else imported is a library.
PACKAGES = ("config", "wx_service", "handlers", "members", "payments", "marketing", "service_desk", "reservations",
            "wsgi")

EVERYTHING = frozenset({"config", "wx_service.ground", "members", "marketing", "payments", "service_desk",
                        "reservations", "handlers", "wx_service.edges", "wx_service.app"})

# layer -> the layers it may import (its own always). A module's layer is its longest prefix here.
RULES: Mapping[str, frozenset[str]] = {
    "config": frozenset(),
    # The package itself holds only its docstring: importing any submodule runs it.
    "wx_service": frozenset(),
    "wx_service.ground": frozenset({"config"}),
    # Domain packages: members is the lowest; marketing (content, brand subscriptions, the funnel's
    # touches) stands on it; payments and reservations record touches, so they stand on both.
    "members": frozenset({"config", "wx_service.ground"}),
    "marketing": frozenset({"config", "wx_service.ground", "members"}),
    "payments": frozenset({"config", "wx_service.ground", "members", "marketing"}),
    # One-key customer service: conversations stand on members (who the shopper is); the side
    # panel reads payments (the shopper's orders and refunds) and reservations (their bookings and
    # holds), neither of which reads the desk.
    "service_desk": frozenset({"config", "wx_service.ground", "members", "marketing", "payments", "reservations"}),
    # Reservations stand on members (who holds, who booked); payments will link to them, not back.
    "reservations": frozenset({"config", "wx_service.ground", "members", "marketing"}),
    # Push adapters: one WeChat push in, one domain call, one reply out.
    "handlers": frozenset({"config", "wx_service.ground", "members", "marketing", "payments", "service_desk",
                           "reservations"}),
    "wx_service.edges": EVERYTHING - {"wx_service.app"},
    "wx_service.app": EVERYTHING,
    "wsgi": frozenset({"wx_service.app"}),
}

# Domain code never touches the request: from flask it may take the app (for its extensions) only.
FLASK_NAMES_ALLOWED: Mapping[str, frozenset[str]] = {
    layer: frozenset({"current_app"}) for layer in ("members", "marketing", "payments", "service_desk", "reservations",
                                                    "handlers")
}

ENQUEUE_CALLS = frozenset({"enqueue", "enqueue_in", "enqueue_after_commit"})


@dataclass(frozen=True)
class Dependency:
    importer: str
    imported: str
    line: int
    how: str  # "import", or "job" for a job path given to enqueue*


def discover(root: Path, packages: Iterable[str] = PACKAGES) -> dict[str, Path]:
    """Module name -> file, for our packages below `root`."""
    modules: dict[str, Path] = {}
    for package in packages:
        single = root / f"{package}.py"
        if single.is_file():
            modules[package] = single
        for path in sorted((root / package).rglob("*.py")) if (root / package).is_dir() else ():
            parts = path.relative_to(root).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            modules[".".join(parts)] = path
    return modules


def _resolve(name: str, modules: Mapping[str, Path]) -> str | None:
    """The longest prefix of a dotted name that is one of our modules."""
    while name:
        if name in modules:
            return name
        name = name.rpartition(".")[0]
    return None


def dependencies(module: str, path: Path, modules: Mapping[str, Path]) -> list[Dependency]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: list[Dependency] = []

    def add(name: str, line: int, how: str = "import") -> None:
        target = _resolve(name, modules)
        if target is not None and target != module:
            found.append(Dependency(module, target, line, how))

    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                add(alias.name, node.lineno)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                origin = ".".join(base + ([node.module] if node.module else []))
            else:
                origin = node.module or ""
            for alias in node.names:  # `from a import b` depends on a.b when b is a module
                add(f"{origin}.{alias.name}" if f"{origin}.{alias.name}" in modules else origin, node.lineno)
        elif isinstance(node, ast.Call) and node.args:
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            first = node.args[0]
            if name in ENQUEUE_CALLS and isinstance(first, ast.Constant) and isinstance(first.value, str):
                add(first.value.rpartition(".")[0], node.lineno, "job")
    return found


def layer_of(module: str, rules: Mapping[str, frozenset[str]] = RULES) -> str | None:
    candidates = [layer for layer in rules if module == layer or module.startswith(layer + ".")]
    return max(candidates, key=len) if candidates else None


def _flask_names(path: Path) -> list[tuple[str, int]]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: list[tuple[str, int]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "flask":
            names += [(f"{node.module}.{a.name}", node.lineno) for a in node.names]
        elif isinstance(node, ast.Import):
            names += [(a.name, node.lineno) for a in node.names if a.name.split(".")[0] == "flask"]
    return names


def layer_violations(root: Path, rules: Mapping[str, frozenset[str]] = RULES,
                     packages: Iterable[str] = PACKAGES) -> list[str]:
    """One line per import that breaks the rules, naming the file, the line and the rule."""
    modules = discover(root, packages)
    problems: list[str] = []
    for module, path in modules.items():
        layer = layer_of(module, rules)
        where = path.relative_to(root)
        if layer is None:
            problems.append(f"{where}: module {module} is in no layer; add its package to the rules")
            continue
        for dep in dependencies(module, path, modules):
            target = layer_of(dep.imported, rules)
            if target != layer and target not in rules[layer]:
                what = "queues a job in" if dep.how == "job" else "imports"
                problems.append(f"{where}:{dep.line}: {module} ({layer}) {what} {dep.imported} ({target}); "
                                f"{layer} may import only {', '.join(sorted(rules[layer])) or 'nothing of ours'}")
        allowed = FLASK_NAMES_ALLOWED.get(layer)
        if allowed is not None:
            for name, line in _flask_names(path):
                if name.rpartition(".")[2] not in allowed or name.rpartition(".")[0] != "flask":
                    problems.append(f"{where}:{line}: {module} ({layer}) imports {name}; "
                                    f"domain code takes only {', '.join(sorted(allowed))} from flask")
    return problems


def import_cycles(root: Path, packages: Iterable[str] = PACKAGES) -> list[list[str]]:
    """Groups of our modules that import each other, directly or round a longer circle. A job
    queued by name is not an import here: a low module may ask for later work by name (the ledger
    queues the card sync), as long as the layer rules allow it."""
    modules = discover(root, packages)
    graph = {m: sorted({d.imported for d in dependencies(m, p, modules) if d.how == "import"})
             for m, p in modules.items()}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def visit(start: str) -> None:  # Tarjan's strongly connected components, iteratively
        work = [(start, iter(graph[start]))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, edges = work[-1]
            for nxt in edges:
                if nxt not in index:
                    index[nxt] = low[nxt] = len(index)
                    stack.append(nxt)
                    on_stack.add(nxt)
                    work.append((nxt, iter(graph[nxt])))
                    break
                if nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    group = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        group.append(member)
                        if member == node:
                            break
                    if len(group) > 1:
                        cycles.append(sorted(group))

    for module in graph:
        if module not in index:
            visit(module)
    return cycles
