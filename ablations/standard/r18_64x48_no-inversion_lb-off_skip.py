# Error mix 'no-inversion' (posefix_bench.synthesis.mixes) instead of the paper table.
_base_ = ['../_base_/quick.py']
data = dict(mix='no-inversion')
bench = dict(tags=['mix'])
