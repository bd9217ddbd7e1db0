"""What every trainer shares: the epoch loop, checkpoints and resume, devices, torchrun/DDP."""
