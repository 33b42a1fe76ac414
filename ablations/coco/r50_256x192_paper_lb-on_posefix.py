# Lower-body augmentation: half of the samples get 80% hip-knee / knee-ankle input segments and a lower-body cutout.
_base_ = ['../_base_/refiner.py']
data = dict(lower_body=dict(p=0.5, factor=0.8, cutout=True))
bench = dict(tags=['lb'])
