"""The building blocks: each an init/update pair returned as an `optax.GradientTransformation`."""
