"""The package's layers (CONTRIBUTING.md, "The package, from the bottom
up"), read from the code's own imports: no import runs up the layers, no
circle between modules, no import of the package inside a function
without a comment saying why."""
import ast
import glob
import os.path as osp

from helpers.models import ROOT

PACKAGE = osp.join(ROOT, 'mmseg_sctnet')
#: folder -> layer (lower imports nothing higher; equal layers, other
#: folders: no import between them either)
LAYERS = {
    'io': 0, 'compat': 0,
    'models': 1,
    'datasets': 2, 'evaluation': 2, 'visualization': 2,
    'pretrain': 3,
    'deploy': 4,
    'engine': 5,
    'benchmark': 6, 'experiments': 6,
    'apis': 7,
}


def _module(path):
    rel = osp.relpath(path, osp.dirname(PACKAGE))[:-3].split(osp.sep)
    return '.'.join(rel[:-1] if rel[-1] == '__init__' else rel)


def _imports(path):
    """(module imported, line, inside a function, source line) of every
    import of the package in ``path``."""
    src = open(path).read()
    lines = src.splitlines()
    mod = _module(path)
    package = mod if path.endswith('__init__.py') else mod.rpartition('.')[0]
    out = []

    def visit(node, in_function):
        for child in ast.iter_child_nodes(node):
            inner = in_function or isinstance(
                child, (ast.FunctionDef, ast.AsyncFunctionDef))
            targets = []
            if isinstance(child, ast.ImportFrom):
                base = child.module or ''
                if child.level:
                    parts = package.split('.')
                    parts = parts[:len(parts) - child.level + 1]
                    base = '.'.join(parts + ([base] if base else []))
                if base.startswith('mmseg_sctnet'):
                    # `from pkg import submodule` imports the submodule
                    targets = [base + '.' + a.name for a in child.names]
                    targets = [
                        t if osp.exists(_path_of(t)) else base
                        for t in targets
                    ]
            elif isinstance(child, ast.Import):
                targets = [
                    a.name for a in child.names
                    if a.name.startswith('mmseg_sctnet')
                ]
            for t in targets:
                out.append((t, child.lineno, in_function,
                            lines[child.lineno - 1]))
            visit(child, inner)

    visit(ast.parse(src), False)
    return mod, out


def _path_of(module):
    base = osp.join(osp.dirname(PACKAGE), *module.split('.'))
    return base + '.py' if osp.isfile(base + '.py') else osp.join(
        base, '__init__.py')


def _folder(module):
    parts = module.split('.')
    return parts[1] if len(parts) > 1 else ''


FILES = sorted(glob.glob(osp.join(PACKAGE, '**', '*.py'), recursive=True))
IMPORTS = dict(_imports(p) for p in FILES)


def test_every_folder_has_a_layer():
    folders = {_folder(_module(p)) for p in FILES} - {'', '__init__',
                                                      'version'}
    assert folders <= set(LAYERS), folders - set(LAYERS)


def test_no_import_runs_up_the_layers():
    up = []
    for mod, imports in IMPORTS.items():
        src = _folder(mod)
        if src not in LAYERS:
            continue  # the package's own __init__ and version
        for target, line, _, text in imports:
            dst = _folder(target)
            if dst == src or dst not in LAYERS:
                continue
            if LAYERS[dst] >= LAYERS[src]:
                up.append(f'{mod}:{line} ({src}, layer {LAYERS[src]}) '
                          f'imports {target} ({dst}, layer {LAYERS[dst]})')
    assert not up, '\n'.join(up)


def test_no_circle_between_modules():
    graph = {
        mod: {t for t, _, inside, _ in imports if not inside and t != mod}
        for mod, imports in IMPORTS.items()
    }
    # a package's __init__ re-exports its modules: follow the modules
    state, stack, circles = {}, [], []

    def visit(m):
        state[m] = 'open'
        stack.append(m)
        for n in sorted(graph.get(m, ())):
            if n.startswith(m + '.') or m.startswith(n + '.'):
                continue  # a package and its own modules
            if state.get(n) == 'open':
                circles.append(stack[stack.index(n):] + [n])
            elif n not in state:
                visit(n)
        stack.pop()
        state[m] = 'done'

    for m in sorted(graph):
        if m not in state:
            visit(m)
    assert not circles, '\n'.join(' -> '.join(c) for c in circles)


def test_package_imports_inside_functions_say_why():
    """An import of the package inside a function hides a circle unless it
    is for an optional dependency; each such import carries a comment."""
    bare = []
    for mod, imports in IMPORTS.items():
        path = _path_of(mod)
        lines = open(path).read().splitlines()
        for target, line, inside, text in imports:
            if not inside:
                continue
            above = lines[line - 2].strip() if line > 1 else ''
            if '#' not in text and not above.startswith('#'):
                bare.append(f'{mod}:{line} {text.strip()}')
    assert not bare, '\n'.join(bare)
    inside = sum(i for imports in IMPORTS.values() for *_, i, _ in imports)
    assert inside <= 5, f'{inside} package imports inside functions'


def test_the_check_sees_a_wrong_import(tmp_path):
    """The checks above read what they should: a model file importing
    deploy and a function-level import are both found."""
    bad = tmp_path / 'mmseg_sctnet' / 'models' / 'bad.py'
    bad.parent.mkdir(parents=True)
    bad.write_text('from ..deploy.model import load_weights\n\n\n'
                   'def f():\n    from ..io.files import write_file\n')
    global PACKAGE
    old = PACKAGE
    PACKAGE = str(tmp_path / 'mmseg_sctnet')
    try:
        mod, imports = _imports(str(bad))
    finally:
        PACKAGE = old
    assert mod == 'mmseg_sctnet.models.bad'
    assert [(t, inside) for t, _, inside, _ in imports] == [
        ('mmseg_sctnet.deploy.model', False),
        ('mmseg_sctnet.io.files', True)]
