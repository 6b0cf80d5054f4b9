"""`eat demo`: the whole mine -> train -> evaluate workflow on embedded data (or real models), in minutes.

It sits above the stages (it drives wiki_data, training and evaluation), so it is a package of its own rather
than part of the shared ground in `eat/`:
- `demo.workflow`: the command and the orchestration;
- `demo.data`: the sample zh/ja dumps, SQL tables and test sentences it mines and scores;
- `demo.report`: the report it writes.
"""
