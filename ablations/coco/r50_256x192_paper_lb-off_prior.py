# Head variant 'prior' (issue 11) at full scale.
_base_ = ['../_base_/refiner.py']
model = dict(head='prior')
bench = dict(tags=['head'])
