"""The dependency rules of the architecture, checked on the source of every package."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

FORBIDDEN = {
    "engine": {
        "db",
        "worker",
        "dashboard",
        "streamlit",
        "celery",
        "sqlalchemy",
        "alembic",
        "redis",
    },
    "db": {"engine", "worker", "dashboard", "torch", "torchvision", "celery", "streamlit"},
    "dashboard": {"engine", "torch", "torchvision"},
    # Pages render and call services; the services own the transactions.
    "dashboard/pages": {"db", "sqlalchemy"},
    # The job contract is shared by every process, so it needs nothing but the standard library.
    "jobspec": {
        "engine",
        "db",
        "worker",
        "dashboard",
        "bench",
        "torch",
        "torchvision",
        "numpy",
        "sqlalchemy",
        "celery",
        "streamlit",
    },
}
# The dashboard sends jobs by name through this one light module and imports nothing else of worker.
DASHBOARD_WORKER_MODULES = {"worker.dispatch"}


def imported_roots(path: Path) -> set[str]:
    """Top-level module names imported anywhere in ``path``."""
    tree = ast.parse(path.read_text(), filename=str(path))
    roots: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            roots.add(node.module.split(".")[0])
    return roots


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_package_imports_respect_dependency_rules(package: str) -> None:
    sources = sorted((ROOT / package).rglob("*.py"))
    if not package.startswith("dashboard"):
        assert sources, f"{package}/ has no Python files"
    offenders = {
        str(path.relative_to(ROOT)): sorted(imported_roots(path) & FORBIDDEN[package])
        for path in sources
        if imported_roots(path) & FORBIDDEN[package]
    }
    assert not offenders, f"{package} imports what it must not: {offenders}"


def imported_modules(path: Path) -> set[str]:
    """Full module names imported anywhere in ``path``."""
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
    return names


def test_dashboard_uses_only_the_dispatch_module_of_worker() -> None:
    offenders = {
        str(path.relative_to(ROOT)): sorted(bad)
        for path in sorted((ROOT / "dashboard").rglob("*.py"))
        if (
            bad := {
                m
                for m in imported_modules(path)
                if m.split(".")[0] == "worker" and m not in DASHBOARD_WORKER_MODULES
            }
        )
    }
    assert not offenders, f"dashboard imports worker internals: {offenders}"


def test_rule_checker_sees_nested_imports(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text("def f():\n    import torch.nn\n    from sqlalchemy.orm import Session\n")
    assert {"torch", "sqlalchemy"} <= imported_roots(sample)
