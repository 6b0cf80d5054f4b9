"""`python -m training RECIPE.yaml [key=value ...]`: the per-process entry point of multi-process runs.

Used by `accelerate launch --config_file recipes/accelerate/ddp.yaml -m training RECIPE.yaml` and by torchrun
(`eat train --launch ...`). User errors print one line (prefixed with the rank when there are several
processes) and exit 2, like `eat train`.
"""

from __future__ import annotations

import os
import sys


def main(argv: list[str] | None = None) -> int:
    from eat.errors import UserError

    args = sys.argv[1:] if argv is None else argv
    if not args or args[0] in ("-h", "--help"):
        print(__doc__.strip())
        return 0 if args else 2
    try:
        from training.cli import run_recipe

        run_recipe(args[0], args[1:])
    except UserError as exc:
        rank = os.environ.get("RANK")
        world = int(os.environ.get("WORLD_SIZE", "1"))
        prefix = f"[rank {rank}] " if rank is not None and world > 1 else ""
        print(f"error: {prefix}{exc}", file=sys.stderr)
        return UserError.exit_code
    return 0


if __name__ == "__main__":
    sys.exit(main())
