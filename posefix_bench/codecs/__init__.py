"""Layer 2: pure functions on arrays/tensors: OKS/KS math and the heatmap codec."""
