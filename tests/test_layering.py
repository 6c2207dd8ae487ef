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


# training/ that a newcomer can read (issue 24): rooms of at most 500 lines, imported one way.
MAX_LINES = 500
COMMANDS = {"train", "hrm_evaluate", "hrm_analyze"}  # entry points: the top of training/, imported by nothing in it


def training_imports(path: Path) -> set[str]:
    """The training/ modules a file imports (at any depth), by name."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module == "training":
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").startswith("training."):
            found.add(node.module.split(".")[1])
        elif isinstance(node, ast.Import):
            found |= {alias.name.split(".")[1] for alias in node.names if alias.name.startswith("training.")}
    return found


def test_no_file_in_training_is_longer_than_500_lines():
    files = sorted((ROOT / "training").glob("*.py"))
    assert len(files) > 5, "no files in training/"
    long = [f"{path.relative_to(ROOT)}: {n} lines" for path in files
            if (n := len(path.read_text(encoding="utf-8").splitlines())) > MAX_LINES]
    assert not long, f"longer than {MAX_LINES} lines (split it along a seam):\n" + "\n".join(long)


def test_training_modules_import_one_way():
    import graphlib

    graph = {path.stem: training_imports(path) for path in sorted((ROOT / "training").glob("*.py"))}
    assert graph["analysis"] and graph["hrm_evaluate"], "the check sees no imports"
    into_commands = [f"training/{name}.py imports training.{dep}" for name, deps in graph.items()
                     for dep in sorted(deps & COMMANDS)]
    assert not into_commands, "a command line is imported by a library module:\n" + "\n".join(into_commands)
    try:
        tuple(graphlib.TopologicalSorter(graph).static_order())
    except graphlib.CycleError as err:
        pytest.fail(f"training/ modules import each other in a cycle: {' -> '.join(err.args[1])}")
