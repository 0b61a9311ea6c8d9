"""Golden fixtures made by the real torch.optim and Keras, and the scripts that make them."""
