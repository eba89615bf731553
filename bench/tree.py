"""Run the gateway from another source tree: ``python -m bench.tree DIR [gateway flags]``.

For before/after measurements: extract an older commit's ``gateway/`` into
DIR (``git archive REV gateway | tar -x -C DIR``) and pass ``--gateway-tree DIR``
to ``python -m bench``; the servers then run that code on the same machine,
with the same load, minutes apart from the current tree.
"""

from __future__ import annotations

import sys


def use(tree: str) -> None:
    """Make ``import gateway`` (not yet imported) load the package found in ``tree``."""
    # An editable install finds ``gateway`` before sys.path is searched: drop it.
    sys.meta_path[:] = [f for f in sys.meta_path if "editable" not in repr(f).lower()]
    sys.path.insert(0, tree)


def main() -> None:
    tree, *arguments = sys.argv[1:]
    use(tree)
    from gateway.cli import main as gateway_main

    sys.argv = ["gateway", *arguments]
    raise SystemExit(gateway_main())


if __name__ == "__main__":
    main()
