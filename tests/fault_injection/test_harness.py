"""The harness itself rejects what it must reject."""
import pytest
from harness import FaultRunner


def _script(tmp_path, body):
    p = tmp_path / 'tool.py'
    p.write_text('import sys\n' + body)
    return str(p)


def test_harness_accepts_a_clean_refusal(tmp_path):
    keep = tmp_path / 'input.bin'
    keep.write_bytes(b'abc')
    tool = _script(tmp_path, "print('error: bad input x.pth', "
                   'file=sys.stderr); sys.exit(1)\n')
    FaultRunner().run(tool, [], keep=[str(keep)], names=['x.pth'])


@pytest.mark.parametrize('body,why', [
    ('raise ValueError("boom")\n', 'traceback'),
    ("print('error: a'); print('error: b'); sys.exit(1)\n", 'error: lines'),
    ("print('error: a')\n", 'exit 0'),
    ("print('error: other'); sys.exit(1)\n", 'not named'),
    ("open(sys.argv[1], 'ab').write(b'x'); print('error: x.pth');"
     ' sys.exit(1)\n', 'modified'),
])
def test_harness_rejects(tmp_path, body, why):
    keep = tmp_path / 'input.bin'
    keep.write_bytes(b'abc')
    tool = _script(tmp_path, body)
    with pytest.raises(AssertionError, match=why):
        FaultRunner().run(
            tool, [str(keep)], keep=[str(keep)], names=['x.pth'])
