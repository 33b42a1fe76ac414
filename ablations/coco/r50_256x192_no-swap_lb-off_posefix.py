# Error mix 'no-swap' instead of the paper table.
_base_ = ['../_base_/refiner.py']
data = dict(mix='no-swap')
bench = dict(tags=['mix'])
