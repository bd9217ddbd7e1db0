"""The GRU latent predictor: model, training, rollouts and their metrics."""
