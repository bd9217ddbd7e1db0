"""The beta-VAE: model, training, evaluation (ELBO, IWAE) and encoding to latents."""
