# Backbone depth: ResNet-50 body, everything else as the default (ResNet-18) refiner.
_base_ = ['../_base_/quick_100it.py']
model = dict(backbone='resnet50')
bench = dict(tags=['backbone'])
