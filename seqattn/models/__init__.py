"""Model definitions (one file per task) and the shipped models (one folder each)."""
