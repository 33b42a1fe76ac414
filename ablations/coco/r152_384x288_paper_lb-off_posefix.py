# The paper's largest setting: ResNet-152 at 384x288 (input heatmap sigma 9).
_base_ = ['../_base_/refiner.py']
model = dict(backbone='resnet152', input_size=(288, 384))
bench = dict(tags=['backbone'])
