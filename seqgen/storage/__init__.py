"""Storage: checkpoints (schema, load, save), atomic writes, the shipped models."""
