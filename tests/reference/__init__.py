"""Independent NumPy float64 reference implementations of optimizers and test problems."""
