"""Data shared by training, the baselines and evaluation: corpus ingestion, Hebrew text helpers, training and
evaluation examples, and the on-disk translation cache."""
