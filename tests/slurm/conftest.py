"""The tests here need the real test Slurm cluster (the `slurm_cluster` fixture lives in tests/conftest.py,
shared with the real-vLLM tests that also run on it)."""
