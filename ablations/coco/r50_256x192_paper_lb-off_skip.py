# Head variant 'skip' (issue 11) at full scale.
_base_ = ['../_base_/refiner.py']
model = dict(head='skip')
bench = dict(tags=['head'])
