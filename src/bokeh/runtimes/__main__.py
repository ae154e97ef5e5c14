"""``python -m bokeh.runtimes gpu``: which adapter LiteRT's GPU accelerator selects on this machine.

Prints the adapter and exits 0; exits 1 with the reason and the way to get one when there is none
(``.ci/vulkan-adapter`` runs this to decide whether to install Mesa's software Vulkan driver).
"""

from __future__ import annotations

import sys

USAGE = "usage: python -m bokeh.runtimes gpu"


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv != ["gpu"]:
        print(USAGE, file=sys.stderr)
        return 2
    from bokeh.cli import interruptible
    from bokeh.runtimes import RuntimeUnavailable, gpu_adapter

    try:
        with interruptible("bokeh.runtimes", lambda: "no adapter was found yet"):  # LiteRT may wait up to minutes
            adapter = gpu_adapter()
    except RuntimeUnavailable as error:
        print(f"bokeh.runtimes: {error}", file=sys.stderr)
        return 1
    print(f"LiteRT GPU accelerator adapter: {adapter}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
