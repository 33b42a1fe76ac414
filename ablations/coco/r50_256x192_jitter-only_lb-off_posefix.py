# Error mix 'jitter-only' instead of the paper table.
_base_ = ['../_base_/refiner.py']
data = dict(mix='jitter-only')
bench = dict(tags=['mix'])
