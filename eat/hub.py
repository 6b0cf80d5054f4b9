"""The Hugging Face Hub: card metadata written with `huggingface_hub`'s card classes, and folder uploads.

Datasets (`eat wiki sft --push-to-hub`), merged models (`eat train merge --push-to-hub`) and training runs
(the recipe's `training.trainer_args.push_to_hub`) go through `push_folder`, which checks first that the
Hub can be reached at all: an offline machine fails at once, in one line, instead of after minutes of
retries at the end of a long job.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from eat.errors import UserError

CARD_TAGS = ["eat-ner", "entity-aligned-translation", "cross-lingual-ner"]


def front_matter(kind: str, **fields: Any) -> str:
    """The YAML block (between `---` lines) of a model or dataset card, from `ModelCardData`/`DatasetCardData`
    (which quote and validate what an f-string would not: `base_model: org/name:rev`, lists, licences)."""
    from huggingface_hub import DatasetCardData, ModelCardData

    data_cls = ModelCardData if kind == "model" else DatasetCardData
    fields = {k: v for k, v in fields.items() if v not in (None, [], "")}
    return f"---\n{data_cls(**fields).to_yaml()}\n---\n"


def hub_reachable() -> bool:
    """Whether the Hub's host name resolves here (and offline mode is off)."""
    from eat.models import _hub_resolves

    return os.environ.get("HF_HUB_OFFLINE") != "1" and _hub_resolves()


def check_repo_id(repo_id: str) -> str:
    parts = repo_id.split("/")
    if len(parts) != 2 or not all(parts) or any(c.isspace() for c in repo_id):
        raise UserError(f"--push-to-hub {repo_id!r}: expected ORG/NAME (or USER/NAME)")
    return repo_id


def push_folder(
    folder: str | Path, repo_id: str, repo_type: str, private: bool = False, message: str = "", api=None
) -> str:
    """Create the repo (if needed) and upload `folder` to it; returns the repo URL. `api` is an HfApi (tests
    pass a stand-in)."""
    check_repo_id(repo_id)
    folder = Path(folder)
    if api is None:
        if not hub_reachable():
            raise UserError(
                f"cannot push to {repo_id}: the Hugging Face Hub is not reachable from this machine (offline, or "
                "HF_HUB_OFFLINE=1); the output is kept locally",
                path=folder,
            )
        from huggingface_hub import HfApi

        api = HfApi()
    try:
        url = api.create_repo(repo_id, repo_type=repo_type, private=private, exist_ok=True)
        api.upload_folder(
            folder_path=str(folder),
            repo_id=repo_id,
            repo_type=repo_type,
            commit_message=message or f"Upload {folder.name} with eat-ner",
            ignore_patterns=[".eat*", "*.lock", "checkpoint-*/**"],
        )
    except Exception as exc:  # HTTP errors, auth: one line naming the repo, the output stays on disk
        if type(exc).__name__ in ("HfHubHTTPError", "RepositoryNotFoundError", "GatedRepoError", "LocalTokenNotFoundError", "HTTPError", "ConnectionError"):  # fmt: skip
            reason = " ".join(str(exc).split())[:200]
            raise UserError(
                f"push to {repo_id} failed ({reason}); the output is kept locally", path=folder
            ) from None
        raise
    return str(url)
