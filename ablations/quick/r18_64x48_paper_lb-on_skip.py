# Lower-body augmentation (the PyTorch re-implementation's addition): on half of the samples the input hip->knee and
# knee->ankle segments shrink to 80% and the lower body of the crop is cut out.
_base_ = ['../_base_/quick_100it.py']
data = dict(lower_body=dict(p=0.5, factor=0.8, cutout=True))
bench = dict(tags=['lb'])
