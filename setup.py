"""mmseg_sctnet: SCTNet (AAAI 2024) as an MMSegmentation 1.x plugin."""
import os.path as osp

from setuptools import find_packages, setup


def _version():
    ns = {}
    with open(osp.join('mmseg_sctnet', 'version.py')) as f:
        exec(f.read(), ns)
    return ns['__version__']


def _requirements():
    out = []
    with open('requirements.txt') as f:
        for line in f:
            line = line.split('#')[0].strip()
            if line and line != 'pytest':
                out.append(line)
    return out


setup(
    name='mmseg_sctnet',
    version=_version(),
    description='SCTNet: Single-Branch CNN with Transformer Semantic '
    'Information for Real-Time Segmentation, for MMSegmentation 1.x',
    long_description=open('README.md', encoding='utf-8').read()
    if osp.isfile('README.md') else '',
    long_description_content_type='text/markdown',
    packages=find_packages(include=['mmseg_sctnet', 'mmseg_sctnet.*']),
    python_requires='>=3.9',
    install_requires=_requirements(),
    license='Apache-2.0',
    zip_safe=False,
)
