"""The Hub: what `--push-to-hub` would upload (against a stand-in HfApi), card metadata that the Hub's own
card classes read back, and one line on a machine that cannot reach the Hub."""

from __future__ import annotations

import fnmatch
from pathlib import Path

import pytest

from eat.errors import UserError


class FakeHub:
    """Records what would be created and uploaded (the files the real upload_folder would send)."""

    def __init__(self):
        self.repos: list[dict] = []
        self.uploads: list[dict] = []

    def create_repo(self, repo_id, repo_type=None, private=False, exist_ok=False):
        self.repos.append({"repo_id": repo_id, "repo_type": repo_type, "private": private})
        return f"https://huggingface.co/{'datasets/' if repo_type == 'dataset' else ''}{repo_id}"

    def upload_folder(self, folder_path, repo_id, repo_type=None, commit_message="", ignore_patterns=()):
        root = Path(folder_path)
        files = sorted(
            str(p.relative_to(root))
            for p in root.rglob("*")
            if p.is_file()
            and not any(fnmatch.fnmatch(str(p.relative_to(root)), pat) for pat in ignore_patterns)
        )
        self.uploads.append(
            {"repo_id": repo_id, "repo_type": repo_type, "files": files, "message": commit_message}
        )


@pytest.fixture
def hub(monkeypatch):
    import huggingface_hub

    import eat.hub

    fake = FakeHub()
    monkeypatch.setattr(huggingface_hub, "HfApi", lambda *a, **k: fake)
    monkeypatch.setattr(eat.hub, "hub_reachable", lambda: True)
    return fake


def test_push_folder_creates_the_repo_and_uploads_the_folder_without_locks_or_checkpoints(hub, tmp_path):
    from eat.hub import push_folder

    (tmp_path / "run" / "checkpoint-2").mkdir(parents=True)
    (tmp_path / "run" / "checkpoint-2" / "optimizer.pt").write_text("x")
    for name in ("adapter_model.safetensors", "README.md", ".eat-output.json", ".eat.lock"):
        (tmp_path / "run" / name).write_text("x")
    url = push_folder(tmp_path / "run", "org/eat-adapter", "model", private=True, message="eat train")
    assert url == "https://huggingface.co/org/eat-adapter"
    assert hub.repos == [{"repo_id": "org/eat-adapter", "repo_type": "model", "private": True}]
    assert hub.uploads[0]["files"] == ["README.md", "adapter_model.safetensors"]


def test_offline_or_bad_repo_ids_are_one_line(monkeypatch, tmp_path):
    import eat.hub
    from eat.hub import push_folder

    monkeypatch.setattr(eat.hub, "hub_reachable", lambda: False)
    with pytest.raises(UserError, match=r"cannot push to org/x: the Hugging Face Hub is not reachable"):
        push_folder(tmp_path, "org/x", "dataset")
    with pytest.raises(UserError, match=r"expected ORG/NAME"):
        push_folder(tmp_path, "no-org", "dataset")


def test_sft_pushes_the_dataset_with_a_card_the_hub_reads(hub, tmp_path):
    from huggingface_hub import DatasetCard

    from tests.wiki_data.helpers.pairs import write_city_pairs
    from wiki_data.sft import SFTDatasetConfig, build_sft
    from wiki_data.sft_cli import sft

    pairs = write_city_pairs(tmp_path / "pairs", 8)
    from click.testing import CliRunner

    out = tmp_path / "sft"
    result = CliRunner().invoke(
        sft,
        [
            "--pairs",
            str(pairs),
            "--out",
            str(out),
            "--tasks",
            "align",
            "--push-to-hub",
            "org/eat-ja",
            "--private",
        ],
    )
    assert result.exit_code == 0, result.output
    assert hub.repos == [{"repo_id": "org/eat-ja", "repo_type": "dataset", "private": True}]
    files = hub.uploads[0]["files"]
    assert "README.md" in files and "dataset_dict.json" in files and "train.jsonl" in files
    assert not any(f.startswith(".eat") for f in files)
    card = DatasetCard.load(out / "README.md")
    assert card.data.language == ["ja"] and "eat-ner" in card.data.tags
    assert "# Entity-alignment instruction dataset" in card.text
    assert (
        SFTDatasetConfig.model_fields["push_to_hub"].default is None and build_sft
    )  # the library call is unchanged


def test_training_pushes_the_finished_run_with_its_model_card(hub, tiny_lm, tmp_path):
    from huggingface_hub import ModelCard

    from tests.training.conftest import make_recipe, write_sft_dataset
    from training.sft import run_sft

    data = write_sft_dataset(tmp_path / "data")
    out = tmp_path / "run"
    recipe = make_recipe(
        tiny_lm, data, out, "training.max_steps=2", "training.save_steps=1",
        "training.trainer_args.push_to_hub=true", "training.trainer_args.hub_model_id=org/eat-lora",
        "training.trainer_args.hub_private_repo=true",
    )  # fmt: skip
    run_sft(recipe)
    assert hub.repos == [
        {"repo_id": "org/eat-lora", "repo_type": "model", "private": True}
    ]  # once, at the end
    (upload,) = hub.uploads
    assert "adapter_model.safetensors" in upload["files"] and "README.md" in upload["files"]
    assert not any(f.startswith("checkpoint-") for f in upload["files"])
    card = ModelCard.load(out / "README.md")
    assert card.data.base_model == str(tiny_lm) and card.data.library_name == "peft"
    assert "eat-ner" in card.data.tags and "sft" in card.data.tags


def test_training_that_would_push_from_an_offline_machine_stops_before_training(
    monkeypatch, tiny_lm, tmp_path
):
    import eat.hub
    from tests.training.conftest import make_recipe, write_sft_dataset
    from training.sft import run_sft

    monkeypatch.setattr(eat.hub, "hub_reachable", lambda: False)
    data = write_sft_dataset(tmp_path / "data")
    recipe = make_recipe(tiny_lm, data, tmp_path / "run", "training.trainer_args.push_to_hub=true")
    with pytest.raises(UserError, match=r"push_to_hub needs training.trainer_args.hub_model_id=ORG/NAME"):
        run_sft(recipe)
    recipe = make_recipe(
        tiny_lm, data, tmp_path / "run", "training.trainer_args.push_to_hub=true",
        "training.trainer_args.hub_model_id=org/eat-lora",
    )  # fmt: skip
    with pytest.raises(
        UserError, match=r"push_to_hub: the Hugging Face Hub is not reachable from here \(for org"
    ):
        run_sft(recipe)
    assert not (tmp_path / "run" / "checkpoint-1").exists()
