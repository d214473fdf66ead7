"""What drives the work over many inputs: batches of sources on the local process pool."""
