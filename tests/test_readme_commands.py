"""Every shell command in README.md (and the docs) names files and options
that exist.

Commands are taken from ```bash / ```shell / ```sh / ```console blocks
(every line) and from plain ``` blocks (lines starting with ``python``,
``bash`` or ``make``); ``\\`` continuations are joined, ``#`` comments and
``$ `` prompts dropped, ``&&``/``;``/``|`` chains split. For each command:

* ``python SCRIPT`` / ``bash SCRIPT``: the script exists; for Python scripts
  every ``--flag`` appears in the script's ``--help`` output (for a script
  with subcommands, ``python SCRIPT SUB --flag``: in ``SCRIPT SUB
  --help``);
* ``python -m mmseg_sctnet...``: every ``--flag`` appears in its ``--help``
  (other modules, e.g. pytest, are not checked);
* ``make TARGET [VAR=value]``: the target and variables are in the Makefile;
* any argument that is a repository path (``configs/``, ``tools/``, ...,
  or a file ending in .py/.sh/.yaml/.json/.md/.txt/...) exists.

Exempt: paths under pretrained/, data/, work_dirs/, demo_output/, outputs/
(made by the user or by the tools), ``<placeholders>``, ``/path/to/...``,
``$VARIABLES`` and URLs.
"""
import json
import os.path as osp
import re
import shlex
import subprocess
import sys

import pytest
from helpers.models import ROOT

DOCS = [
    'README.md', 'docs/getting_started.md', 'docs/custom_dataset.md',
    'docs/faq.md', 'docs/dataset_prepare.md', 'docs/demo.md',
    'docs/speed.md', 'docs/deploy.md', 'docs/reliability.md',
    'CONTRIBUTING.md', 'docs/pretrain.md', 'docs/siam.md'
]
SHELL_LANGS = {'bash', 'sh', 'shell', 'console', 'zsh'}
PLAIN_STARTS = ('python', 'bash', 'make')
EXEMPT_PREFIXES = ('pretrained/', 'data/', 'work_dirs/', 'demo_output/',
                   'outputs/')
REPO_DIRS = ('configs/', 'tools/', 'docs/', 'tests/', 'speed/',
             'mmseg_sctnet/', 'demo/')
REPO_EXTS = ('.py', '.sh', '.yaml', '.yml', '.json', '.md', '.txt', '.cfg',
             '.toml', '.ini')
WRAPPERS = {'time', 'nohup', 'sudo', 'env', 'exec'}
PYTHONS = re.compile(r'^(\S*/)?python(3(\.\d+)?)?$')
#: a first argument that may be a subcommand (no path, no option)
SUBCOMMAND = re.compile(r'^[a-z][a-z0-9-]*$')


# ----------------------------------------------------------------------
# extraction
def code_blocks(text):
    """``(lang, [lines], first_line_no)`` of every fenced block."""
    blocks, lang, buf, start = [], None, [], 0
    for no, line in enumerate(text.splitlines(), 1):
        m = re.match(r'^\s*(```+|~~~+)\s*([\w+-]*)', line)
        if m:
            if lang is None:
                lang, buf, start = m.group(2).lower(), [], no + 1
            else:
                blocks.append((lang, buf, start))
                lang = None
            continue
        if lang is not None:
            buf.append(line)
    return blocks


def _strip_comment(line):
    """Drop a ``#`` comment that is outside quotes."""
    quote = None
    for i, ch in enumerate(line):
        if quote:
            if ch == quote:
                quote = None
        elif ch in '"\'':
            quote = ch
        elif ch == '#' and (i == 0 or line[i - 1].isspace()):
            return line[:i]
    return line


def shell_commands(text):
    """``(line_no, command)`` of every shell command in markdown ``text``."""
    out = []
    for lang, lines, start in code_blocks(text):
        if lang not in SHELL_LANGS and lang != '':
            continue
        joined, cur, cur_no = [], '', None
        for i, raw in enumerate(lines):
            line = raw.rstrip()
            if cur_no is None:
                cur_no = start + i
            if line.endswith('\\'):
                cur += line[:-1] + ' '
                continue
            joined.append((cur_no, cur + line))
            cur, cur_no = '', None
        if cur:
            joined.append((cur_no, cur))
        for no, line in joined:
            line = re.sub(r'\s+', ' ', _strip_comment(line)).strip()
            if line.startswith('$ '):
                line = line[2:].strip()
            if not line:
                continue
            if lang == '' and not line.split()[0].startswith(PLAIN_STARTS):
                continue
            cwd = ''  # `cd DIR; python x.py` runs DIR/x.py
            for part in split_chain(line):
                words = part.split()
                if words[0] == 'cd' and len(words) == 2:
                    cwd = osp.normpath(osp.join(cwd, words[1]))
                    continue
                if (cwd and len(words) > 1 and words[1].endswith(
                        ('.py', '.sh')) and not words[1].startswith('/')):
                    words[1] = osp.join(cwd, words[1])
                    part = ' '.join(words)
                out.append((no, part))
    return out


def split_chain(line):
    """Split ``a && b; c | d`` into commands, not inside quotes."""
    parts, cur, quote, i = [], '', None, 0
    while i < len(line):
        ch = line[i]
        if quote:
            quote = None if ch == quote else quote
        elif ch in '"\'':
            quote = ch
        elif ch in ';&|':
            parts.append(cur)
            cur = ''
            i += 2 if line[i:i + 2] in ('&&', '||') else 1
            continue
        cur += ch
        i += 1
    parts.append(cur)
    return [p.strip() for p in parts if p.strip()]


# ----------------------------------------------------------------------
# checking
def is_exempt(tok):
    return (tok.startswith(EXEMPT_PREFIXES) or tok.startswith('./' + (
        EXEMPT_PREFIXES[0])) or '<' in tok or '>' in tok
            or '/path/to' in tok or '$' in tok or '*' in tok
            or '://' in tok or tok.startswith(('~', '/')))


def repo_path(tok):
    """The repository path ``tok`` names, or None if it names none."""
    tok = tok.strip('\'"')
    if tok.startswith('./'):
        tok = tok[2:]
    if not tok or tok.startswith('-') or is_exempt(tok):
        return None
    if tok.startswith(REPO_DIRS) or (tok.endswith(REPO_EXTS) and
                                     '/' in tok):
        return tok
    if tok.endswith(REPO_EXTS) and re.match(r'^[\w.-]+$', tok):
        return tok  # top-level files: requirements.txt, setup.py, ...
    return None


def makefile_targets(root):
    text = open(osp.join(root, 'Makefile')).read()
    targets = set(re.findall(r'^([\w.-]+)\s*:(?!=)', text, re.M))
    variables = set(re.findall(r'^([A-Z_][A-Z0-9_]*)\s*[?:]?=', text, re.M))
    variables |= set(re.findall(r'\$\(([A-Z_][A-Z0-9_]*)\)', text))
    return targets, variables


_HELP_RUNNER = r'''
import contextlib, io, json, os, runpy, sys
out = {}
for kind, name in json.loads(sys.argv[1]):
    buf = io.StringIO()
    name, _, sub = name.partition(' ')
    sys.argv = [name] + ([sub] if sub else []) + ['--help']
    try:
        with contextlib.redirect_stdout(buf), contextlib.redirect_stderr(buf):
            if kind == 'script':
                sys.path.insert(0, os.path.dirname(os.path.abspath(name)))
                try:
                    runpy.run_path(name, run_name='__main__')
                finally:
                    sys.path.pop(0)
            else:
                runpy.run_module(name, run_name='__main__', alter_sys=True)
        code = 0
    except SystemExit as e:
        code = e.code or 0
    except BaseException as e:  # noqa
        code = repr(e)
    out[' '.join(sys.argv[:-1])] = [code, buf.getvalue()]
print('@@HELP@@' + json.dumps(out))
'''


def help_texts(entries, root):
    """``--help`` output of scripts/modules, in one Python process (the
    tools share their heavy imports); a tool that fails there is retried
    in a process of its own."""
    todo = sorted(e for e in entries if e[1] not in _HELP_CACHE)
    if todo:
        _HELP_CACHE.update(_run_helps(todo, root))
    return {name: _HELP_CACHE[name] for _, name in entries}


_HELP_CACHE = {}


def _run_helps(entries, root):
    r = subprocess.run(
        [sys.executable, '-c', _HELP_RUNNER,
         json.dumps(entries)],
        cwd=root, capture_output=True, text=True, timeout=600)
    m = re.search(r'@@HELP@@(.*)$', r.stdout, re.S)
    res = json.loads(m.group(1)) if m else {}
    texts = {}
    for kind, name in entries:
        code, text = res.get(name, [1, ''])
        if code != 0:
            cmd = [sys.executable, *name.split(' '), '--help'] if (
                kind == 'script') else [sys.executable, '-m', name, '--help']
            p = subprocess.run(cmd, cwd=root, capture_output=True, text=True,
                               timeout=300)
            code, text = p.returncode, p.stdout + p.stderr
        texts[name] = text if code == 0 else None
    return texts


def _repo_module(name):
    return name.split('.')[0] == 'mmseg_sctnet'


def _tokens(cmd):
    try:
        toks = shlex.split(cmd)
    except ValueError:
        toks = cmd.split()
    while toks and (toks[0] in WRAPPERS or re.match(r'^[A-Z_][A-Z0-9_]*=',
                                                    toks[0])):
        toks = toks[1:]
    return toks


def plan(commands):
    """What must be looked up: ``{(kind, name)}`` for ``--help``."""
    need = set()
    for _, cmd in commands:
        toks = _tokens(cmd)
        if len(toks) >= 2 and PYTHONS.match(toks[0]):
            if toks[1] == '-m' and len(toks) > 2:
                if _repo_module(toks[2]):
                    need.add(('module', toks[2]))
            elif toks[1].endswith('.py') and osp.isfile(
                    osp.join(ROOT, toks[1])):
                need.add(('script', toks[1]))
                if len(toks) > 2 and SUBCOMMAND.match(toks[2]):
                    need.add(('script', f'{toks[1]} {toks[2]}'))
    return need


def check_commands(commands, root=ROOT, helps=None):
    """Problems (strings) found in ``[(line_no, command)]``."""
    if helps is None:
        helps = help_texts(plan(commands), root)
    targets, variables = makefile_targets(root)
    problems = []
    for no, cmd in commands:
        toks = _tokens(cmd)
        if not toks:
            continue
        where = f'line {no}: `{cmd}`'
        args = toks[1:]
        flags_from = None
        if PYTHONS.match(toks[0]):
            if args[:1] == ['-c']:
                continue
            if args[:1] == ['-m'] and len(args) > 1:
                # options are checked for this repository's modules only
                if _repo_module(args[1]):
                    flags_from = args[1]
                args = args[2:]
            elif args and args[0].endswith('.py'):
                script = args[0].lstrip('./') if args[0].startswith(
                    './') else args[0]
                if not is_exempt(script) and not osp.isfile(
                        osp.join(root, script)):
                    problems.append(f'{where}: no script {script}')
                    continue
                flags_from, args = script, args[1:]
                if args and SUBCOMMAND.match(args[0]):
                    flags_from, args = f'{script} {args[0]}', args[1:]
        elif toks[0] == 'bash' and args:
            script = args[0]
            if not is_exempt(script) and not osp.isfile(osp.join(
                    root, script)):
                problems.append(f'{where}: no script {script}')
                continue
            args = args[1:]
        elif toks[0] == 'make':
            for a in args:
                if a.startswith('-'):
                    continue
                if '=' in a:
                    var = a.split('=', 1)[0]
                    if var not in variables:
                        problems.append(
                            f'{where}: the Makefile uses no variable {var}')
                elif a not in targets:
                    problems.append(f'{where}: no Makefile target "{a}"')
            continue
        if flags_from is not None:
            text = helps.get(flags_from)
            if text is None:
                problems.append(f'{where}: `{flags_from} --help` failed')
            else:
                known = set(re.findall(r'(?<![\w-])(--[A-Za-z0-9][\w-]*)',
                                       text))
                for a in args:
                    if a.startswith('--') and len(a) > 2:
                        flag = a.split('=', 1)[0]
                        if flag not in known:
                            problems.append(
                                f'{where}: {flags_from} has no option {flag}'
                                f' (its --help lists {sorted(known)})')
        for a in args:
            for part in [a] + ([a.split('=', 1)[1]] if '=' in a else []):
                p = repo_path(part)
                if p and not osp.exists(osp.join(root, p)):
                    problems.append(f'{where}: {p} does not exist')
    return problems


# ----------------------------------------------------------------------
@pytest.fixture(scope='module')
def all_helps():
    cmds = []
    for doc in DOCS:
        if osp.isfile(osp.join(ROOT, doc)):
            cmds += shell_commands(open(osp.join(ROOT, doc)).read())
    return help_texts(plan(cmds), ROOT)


@pytest.mark.parametrize('doc', DOCS)
def test_doc_commands_exist(doc, all_helps):
    path = osp.join(ROOT, doc)
    assert osp.isfile(path), f'{doc} is missing'
    cmds = shell_commands(open(path).read())
    if doc == 'README.md':
        assert cmds, 'README.md has no shell command'
    problems = check_commands(cmds, ROOT, all_helps)
    assert not problems, f'{doc}:\n' + '\n'.join(problems)


def test_checker_catches_mistakes():
    """The checker itself: every kind of mistake is reported, exemptions and
    correct commands pass."""
    md = '\n'.join([
        'Intro `python tools/nothing.py` (inline code is not a command)',
        '```bash',
        '# a comment',
        'python tools/train.py configs/custom/sctnet-s_custom.py \\',
        '    --work-dir work_dirs/x --cfg-options a.b=1  # trailing comment',
        'python tools/train.py configs/custom/missing.py --no-such-flag',
        'python tools/not_a_tool.py --help',
        'make test PYTEST_ARGS=-x && make no-such-target',
        'make test NOT_A_VAR=1',
        'bash tools/no_such.sh 8',
        'CUDA_VISIBLE_DEVICES=0 python tools/pth_convert.py '
        'pretrained/a.pth pretrained/b.pth --force',
        'python tools/pth_convert.py <in.pth> /path/to/out.pth',
        'git clone https://github.com/x/y.git',
        'pip install -r requirements.txt',
        'pip install -r requirement.txt',
        'python -c "import a; print(1)" && make test; make nope',
        'cd speed; python torch_speed.py --type sctnet-b-seg50',
        'cd speed && python no_speed.py',
        '```',
        '```',
        'python tools/train.py configs/none.py',
        'some output line mentioning configs/none2.py',
        '```',
        '```python',
        'import tools.nothing  # not shell',
        '```',
    ])
    cmds = shell_commands(md)
    assert [c for _, c in cmds][:2] == [
        'python tools/train.py configs/custom/sctnet-s_custom.py '
        '--work-dir work_dirs/x --cfg-options a.b=1',
        'python tools/train.py configs/custom/missing.py --no-such-flag'
    ]
    assert ('python -c "import a; print(1)"' in [c for _, c in cmds])
    helps = help_texts(plan(cmds), ROOT)
    problems = check_commands(cmds, ROOT, helps)
    text = '\n'.join(problems)
    expected = [
        'configs/custom/missing.py does not exist',
        'tools/train.py has no option --no-such-flag',
        'no script tools/not_a_tool.py', 'no Makefile target "no-such-target"',
        'the Makefile uses no variable NOT_A_VAR', 'no script tools/no_such.sh',
        'requirement.txt does not exist', 'configs/none.py does not exist',
        'no Makefile target "nope"', 'no script speed/no_speed.py'
    ]
    for e in expected:
        assert e in text, (e, problems)
    assert len(problems) == len(expected), problems
