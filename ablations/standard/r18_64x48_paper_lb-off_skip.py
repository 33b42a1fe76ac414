# The quick profile's default refiner, unchanged (its training is shared with quick through the step cache).
_base_ = ['../_base_/quick.py']
model = dict(head='skip')
bench = dict(seeds=[0], tags=[])
