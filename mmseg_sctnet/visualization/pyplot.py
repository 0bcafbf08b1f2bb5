"""The charts' one entry to matplotlib."""


def pyplot():
    """``matplotlib.pyplot`` on the file-only Agg backend.

    matplotlib is imported here, on first use: the charts are the only
    code that needs it, and a tool that draws none does not load it."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    return plt
