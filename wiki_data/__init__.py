"""Wikipedia dumps -> entity pairs -> instruction datasets for entity-alignment fine-tuning."""
