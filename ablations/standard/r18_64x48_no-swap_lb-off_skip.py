# Error mix 'no-swap' (posefix_bench.synthesis.mixes) instead of the paper table.
_base_ = ['../_base_/quick.py']
data = dict(mix='no-swap')
bench = dict(tags=['mix'])
