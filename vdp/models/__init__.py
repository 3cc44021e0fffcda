"""Model implementations whose state-dict names match the official checkpoints."""
