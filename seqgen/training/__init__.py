"""Training: the loop, optimisers, clipping and the data windows it reads."""
