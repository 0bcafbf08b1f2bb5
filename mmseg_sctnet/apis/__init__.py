"""What the command-line tools call: one function per tool, plus the
pieces they share (config handling, checkpoint reading, inference).

A tool in ``tools/`` is argparse plus one call into this package.
"""
