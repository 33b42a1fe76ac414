# Input size: the default ResNet-18 refiner on 128x96 crops (4x the pixels of 64x48; the input-pose heatmap sigma
# scales with the width, models/config.default_sigma).
_base_ = ['../_base_/quick.py']
model = dict(input_size=(96, 128))
bench = dict(tags=['backbone'])
