"""``python -m bokeh.pretrained ship|show``: the same command as ``python -m bokeh.release``.

Kept so that earlier instructions keep working. The release tool is not part of this package: it
scores a model with the evaluation and the renderer, which import this package, so it lives above
them (:mod:`bokeh.release`); it is run here by name, not imported.
"""

import runpy

if __name__ == "__main__":
    runpy.run_module("bokeh.release", run_name="__main__", alter_sys=True)
