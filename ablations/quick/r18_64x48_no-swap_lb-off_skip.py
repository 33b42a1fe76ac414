# Error mix 'no-swap' (posefix_bench.synthesis.mixes) instead of the paper table.
_base_ = ['../_base_/quick_100it.py']
data = dict(mix='no-swap')
bench = dict(tags=['mix'])
