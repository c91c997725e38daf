"""Training, checkpoints, evaluation and run directories."""
