"""The layers point one way: the training stack never imports the analyses, and no two modules import
each other. Read from the source with ``ast``, so an import hidden in a function counts too."""

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
ANALYSIS = "mdpo.analysis"
# the commands that run analyses (mdpo report, the demo's figure, a sweep's report); the rest is the core
ANALYSIS_IMPORTERS = {"mdpo.cli", "mdpo.demo", "mdpo.sweep"}


def module_name(path: Path) -> str:
    parts = path.relative_to(SRC).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in sorted((SRC / "mdpo").rglob("*.py"))}


def imports(name: str) -> list[str]:
    """The mdpo modules that module ``name`` imports, wherever the import statement is. ``from P import x``
    names the module P.x where there is one, else P."""
    path = MODULES[name]
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            found.extend(f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else base for alias in node.names)
    return [target for target in found if target == "mdpo" or target.startswith("mdpo.")]


def is_analysis(name: str) -> bool:
    return name == ANALYSIS or name.startswith(ANALYSIS + ".")


def test_the_core_never_imports_the_analyses():
    wrong = {f"{name} imports {target}" for name in MODULES if not is_analysis(name) and name not in ANALYSIS_IMPORTERS
             for target in imports(name) if is_analysis(target)}
    assert not wrong, "\n".join(sorted(wrong))


def test_the_allowed_importers_exist():
    assert ANALYSIS_IMPORTERS <= MODULES.keys()


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found = []

    def connect(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph[v]:
            if w not in index:
                connect(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while not component or component[-1] != v:
                component.append(stack.pop())
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            connect(v)
    return found


def test_no_two_modules_import_each_other():
    """Not even through an import inside a function, under TYPE_CHECKING, or through the command modules
    that ``mdpo.cli`` loads by name."""
    from mdpo.cli import COMMAND_MODULES

    graph = {name: {t for t in imports(name) if t in MODULES and t != name} for name in MODULES}
    graph["mdpo.cli"] |= {f"mdpo.{name}" for name in COMMAND_MODULES}
    assert not cycles(graph)


def test_cycles_are_found():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
