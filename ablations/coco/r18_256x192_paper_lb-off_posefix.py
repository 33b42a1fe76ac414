# Backbone ResNet-18.
_base_ = ['../_base_/refiner.py']
model = dict(backbone='resnet18')
bench = dict(tags=['backbone'])
