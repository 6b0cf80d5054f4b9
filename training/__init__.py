"""LoRA/QLoRA/full fine-tuning of the alignment LLM and of the English NER tagger."""
