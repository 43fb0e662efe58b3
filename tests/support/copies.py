"""Planted copies of a submission, as a student hiding a copy would make them: names renamed
(comments gone, layout changed), functions reordered, or other HPARAMS. Copy detection must find
each (tests/test_similarity_real.py; bench/calibrate_similarity.py says where each falls)."""

from __future__ import annotations

import ast
import builtins

# What the grader calls by name, and what a submission must keep to be graded at all.
CONTRACT = {"HPARAMS", "build_model", "train", "predict"}
KINDS = ("renamed", "reordered", "hparams")


def renamed(source: str) -> str:
    """Every name the file defines (functions, classes, arguments, variables) renamed, except
    the contract's; unparsed, so comments go and the layout changes."""
    tree = ast.parse(source)
    own = _defined(tree) - CONTRACT - set(dir(builtins))
    mapping = {name: f"my_{name.strip('_')}_{i}" for i, name in enumerate(sorted(own))}
    return ast.unparse(_Renamer(mapping).visit(tree)) + "\n"


def reordered(source: str) -> str:
    """The top-level functions and classes in reverse order, each with a new comment."""
    tree = ast.parse(source)
    defs = [n for n in tree.body if isinstance(n, ast.FunctionDef | ast.ClassDef)]
    first = next(i for i, n in enumerate(tree.body) if n in defs)
    rest = [n for n in tree.body[first:] if n not in defs]
    tree.body = [*tree.body[:first], *reversed(defs), *rest]
    lines = ast.unparse(tree).splitlines()
    return "\n".join(_commented(line) for line in lines) + "\n"


def other_hparams(source: str) -> str:
    """HPARAMS' numbers changed (epochs down by a fifth, the rest halved), the code as it is."""
    tree = ast.parse(source)
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and _names(node) == ["HPARAMS"]:
            assert isinstance(node.value, ast.Dict)
            for key, value in zip(node.value.keys, node.value.values, strict=True):
                if isinstance(key, ast.Constant) and isinstance(value, ast.Constant):
                    _change(key.value, value)
    lines = source.splitlines()
    hparams = next(n for n in tree.body if isinstance(n, ast.Assign) and _names(n) == ["HPARAMS"])
    assert hparams.end_lineno is not None
    start, end = hparams.lineno - 1, hparams.end_lineno
    return "\n".join([*lines[:start], ast.unparse(hparams), *lines[end:]]) + "\n"


MAKERS = {"renamed": renamed, "reordered": reordered, "hparams": other_hparams}


def _change(key: object, value: ast.Constant) -> None:
    number = value.value
    if isinstance(number, bool) or not isinstance(number, int | float):
        return
    if key == "epochs":
        value.value = max(1, int(number) - max(1, int(number) // 5))
    elif isinstance(number, int):
        value.value = max(1, number // 2)
    else:
        value.value = number / 2


def _commented(line: str) -> str:
    if line.startswith(("def ", "class ")):
        return f"# {line.split('(')[0].split()[1]}: as I wrote it\n{line}"
    return line


def _names(node: ast.Assign) -> list[str]:
    return [t.id for t in node.targets if isinstance(t, ast.Name)]


def _defined(tree: ast.Module) -> set[str]:
    """The module's own functions and classes (not methods: a framework calls those by name),
    every argument and every variable assigned."""
    names = {n.name for n in tree.body if isinstance(n, ast.FunctionDef | ast.ClassDef)}
    for node in ast.walk(tree):
        if isinstance(node, ast.arg):
            names.add(node.arg)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
    return names


class _Renamer(ast.NodeTransformer):
    def __init__(self, mapping: dict[str, str]) -> None:
        self.mapping = mapping

    def visit_Name(self, node: ast.Name) -> ast.Name:
        node.id = self.mapping.get(node.id, node.id)
        return node

    def visit_arg(self, node: ast.arg) -> ast.arg:
        node.arg = self.mapping.get(node.arg, node.arg)
        return node

    def visit_FunctionDef(self, node: ast.FunctionDef) -> ast.FunctionDef:
        node.name = self.mapping.get(node.name, node.name)  # a method's name is never mapped
        self.generic_visit(node)
        return node

    def visit_ClassDef(self, node: ast.ClassDef) -> ast.ClassDef:
        node.name = self.mapping.get(node.name, node.name)
        self.generic_visit(node)
        return node
