"""The type stubs (__init__.pyi) and docstrings cover the whole module, and nothing more."""
import ast
import inspect
import pathlib

import apcloud
from apcloud import _apcloud

STUBS = pathlib.Path(apcloud.__file__).with_name("__init__.pyi")
# Names the stubs may define for readability without a runtime counterpart.
STUB_ONLY = {"CacheEntryList"}


def _stub_tree():
    tree = ast.parse(STUBS.read_text())
    names, members = set(), {}
    for node in tree.body:
        if isinstance(node, ast.ClassDef):
            names.add(node.name)
            members[node.name] = set()
            for item in node.body:
                if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    members[node.name].add(item.name)
                elif isinstance(item, ast.AnnAssign) and isinstance(item.target, ast.Name):
                    members[node.name].add(item.target.id)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            names.add(node.name)
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
        elif isinstance(node, ast.Assign):
            names.update(t.id for t in node.targets if isinstance(t, ast.Name))
    return names, members


def _public(obj):
    return {n for n in dir(obj) if not n.startswith("_")}


def test_every_name_of_the_module_is_in_the_stubs_and_back():
    stub_names, _ = _stub_tree()
    runtime = _public(_apcloud) | {"__version__"}
    assert runtime - stub_names == set(), "missing from __init__.pyi"
    assert stub_names - runtime - STUB_ONLY == set(), "in __init__.pyi but not in the module"


def test_every_public_member_of_every_class_is_in_the_stubs():
    _, members = _stub_tree()
    for name, members_in_stub in members.items():
        cls = getattr(_apcloud, name, None)
        if not inspect.isclass(cls) or issubclass(cls, BaseException):
            continue
        own = {m for m in _public(cls) if m not in _public(object)}
        assert own - members_in_stub == set(), f"{name}: members missing from __init__.pyi"


def test_every_function_class_and_method_has_a_docstring():
    missing = []
    for name in _public(_apcloud):
        obj = getattr(_apcloud, name)
        if not (inspect.isclass(obj) or callable(obj)):
            continue
        if not (obj.__doc__ or "").strip():
            missing.append(name)
        if inspect.isclass(obj) and not issubclass(obj, BaseException):
            for m in _public(obj) - _public(object):
                attr = getattr(obj, m)
                if not (getattr(attr, "__doc__", "") or "").strip():
                    missing.append(f"{name}.{m}")
    assert missing == []
