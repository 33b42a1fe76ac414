# Backbone depth: ResNet-34 body, everything else as the default (ResNet-18) refiner.
_base_ = ['../_base_/quick.py']
model = dict(backbone='resnet34')
bench = dict(tags=['backbone'])
