# Error mix 'miss-heavy' instead of the paper table.
_base_ = ['../_base_/refiner.py']
data = dict(mix='miss-heavy')
bench = dict(tags=['mix'])
