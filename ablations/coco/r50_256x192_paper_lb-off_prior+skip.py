# Head variant 'prior+skip' (issue 11) at full scale.
_base_ = ['../_base_/refiner.py']
model = dict(head='prior+skip')
bench = dict(tags=['head'])
