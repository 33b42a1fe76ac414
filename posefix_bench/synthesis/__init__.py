"""Layer 2: input-pose synthesis (PoseFix Sec. 4), error mixes, measured error profiles, lower-body augmentation."""
