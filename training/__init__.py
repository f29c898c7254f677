"""Training: SFT data cleaning, SFT and GRPO stages, rewards, checkpoint sweeps."""
