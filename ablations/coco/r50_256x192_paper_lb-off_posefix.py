# The published recipe (PoseFix, CVPR 2019): ResNet-50 at 256x192, paper error mix, published head.
_base_ = ['../_base_/refiner.py']
bench = dict(tags=['head', 'backbone', 'lb', 'mix'])
