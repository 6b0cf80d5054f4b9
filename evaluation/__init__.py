"""The EAT NER pipeline (translate, tag, align, snap), metrics, and checkpoint benchmarks."""
