# Error mix 'no-inversion' instead of the paper table.
_base_ = ['../_base_/refiner.py']
data = dict(mix='no-inversion')
bench = dict(tags=['mix'])
