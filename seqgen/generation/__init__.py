"""Generation: the batched sampler, beam search, and turning ids into samples."""
