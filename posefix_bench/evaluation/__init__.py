"""Layer 4: COCO keypoint AP, error diagnosis and error profiles. Never imports models."""
