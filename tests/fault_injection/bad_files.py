"""Small bad (and good) files for the fault-injection tables.

Every writer takes a path, writes a file of a few bytes to kilobytes and
returns the path as ``str``.
"""
import os
import os.path as osp
import signal
import threading
import time

import torch


def empty(path):
    open(path, 'wb').close()
    return str(path)


def text(path, body='model = dict(type="EncoderDecoder")\n'):
    with open(path, 'w') as f:
        f.write(body)
    return str(path)


def html(path):
    return text(path, '<!DOCTYPE html><html><body>404 Not Found</body>'
                '</html>\n')


def truncated(path, obj=None):
    """A real torch checkpoint cut in half (an interrupted download)."""
    obj = obj if obj is not None else {
        'state_dict': {
            'backbone.w': torch.arange(4096.)
        }
    }
    tmp = str(path) + '.full'
    torch.save(obj, tmp)
    with open(tmp, 'rb') as f:
        data = f.read()
    os.unlink(tmp)
    with open(path, 'wb') as f:
        f.write(data[:len(data) // 2])
    return str(path)


def pickled_list(path):
    torch.save([1, 2, 3], str(path))
    return str(path)


class _Payload:

    def __reduce__(self):
        return (os.system, ('echo pwned',))


def malicious(path):
    """A checkpoint whose ``meta`` would run ``os.system`` when unpickled
    without ``weights_only``."""
    torch.save(
        dict(
            state_dict=torch.nn.Conv2d(1, 1, 1).state_dict(),
            meta=dict(payload=_Payload())), str(path))
    return str(path)


def save(path, state, **top):
    """``torch.save(dict(state_dict=state, **top))``."""
    torch.save(dict(state_dict=state, **top), str(path))
    return str(path)


def kill_when(folder,
              name='',
              sig=signal.SIGKILL,
              suffix='.sctnet-tmp',
              timeout=120):
    """Start a thread that waits for the temporary file of an atomic write
    of ``name`` (``.<name>.<pid>.<token>.sctnet-tmp``; any name if empty)
    to appear under ``folder`` and sends ``sig`` to the writing process
    (``kill -9`` by default; ``SIGINT`` is Ctrl-C). Use with
    ``SCTNET_TEST_SLOW_SAVE=<name>:60`` so the writer waits there. Returns
    the thread; ``thread.killed`` lists the temporary file seen."""

    def run():
        end = time.time() + timeout
        while time.time() < end:
            for d, _, files in os.walk(folder):
                for f in files:
                    if f.endswith(suffix) and f.startswith('.' + name):
                        pid = int(f[:-len(suffix)].split('.')[-2])
                        th.killed.append(osp.join(d, f))
                        os.kill(pid, sig)
                        return
            time.sleep(0.05)

    th = threading.Thread(target=run, daemon=True)
    th.killed = []
    th.start()
    return th
