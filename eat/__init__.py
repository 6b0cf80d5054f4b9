"""eat-ner shell: the `eat` command line and the few types every package shares.

Data flows one way: `wiki_data` -> datasets on disk -> `training` -> checkpoints -> `evaluation`.
This package sits beside that flow: `eat.errors`, `eat.config`, `eat.console` and `eat.prompts` are
small shared types any package may import; only `eat.cli` imports the packages (lazily).
"""

__version__ = "0.1.0"
