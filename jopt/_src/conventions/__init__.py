"""Other frameworks' optimizers and schedules as jopt transforms: `jopt.torch`, `jopt.keras`."""
