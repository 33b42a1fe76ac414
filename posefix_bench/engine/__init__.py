"""Layer 5: training, refinement, throughput harness, sandbox data generator, video mode."""
