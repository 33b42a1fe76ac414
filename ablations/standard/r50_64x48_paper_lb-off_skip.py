# Backbone depth: ResNet-50 body (bottleneck blocks, 2048-channel last stage), everything else as the default.
_base_ = ['../_base_/quick.py']
model = dict(backbone='resnet50')
bench = dict(tags=['backbone'])
