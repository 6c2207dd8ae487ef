"""Layers import one way: dataset_scripts <- modeling_hrm <- training / CLIs / benchmarks (issue 10.6).

A model file never imports training code: remote code copies a model folder's files flat, and the model
package must work where only it and the data formats are installed."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def imported_packages(path: Path) -> set[tuple[str, int]]:
    """Top-level package of every absolute import in a file (at any depth: inside functions too), with its line."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            found |= {(alias.name.split(".")[0], node.lineno) for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add((node.module.split(".")[0], node.lineno))
    return found


@pytest.mark.parametrize("package, forbidden", [("modeling_hrm", {"training", "benchmarks", "scripts"}),
                                                ("dataset_scripts", {"modeling_hrm", "training", "benchmarks"})])
def test_no_import_runs_up_the_layers(package, forbidden):
    files = sorted((ROOT / package).glob("*.py"))
    assert files, f"no files in {package}/"
    offenders = [f"{path.relative_to(ROOT)}:{line} imports {name}" for path in files
                 for name, line in sorted(imported_packages(path)) if name in forbidden]
    assert not offenders, "\n".join(offenders)


def test_the_check_sees_imports_inside_functions(tmp_path):
    source = tmp_path / "x.py"
    source.write_text("def f():\n    from training.evaluation import grid_to_str\n    import benchmarks.bench\n")
    assert {name for name, _ in imported_packages(source)} == {"training", "benchmarks"}
