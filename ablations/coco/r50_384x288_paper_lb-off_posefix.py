# Input size 384x288 with ResNet-50.
_base_ = ['../_base_/refiner.py']
model = dict(input_size=(288, 384))
bench = dict(tags=['backbone'])
