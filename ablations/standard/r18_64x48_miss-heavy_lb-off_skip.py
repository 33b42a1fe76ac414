# Error mix 'miss-heavy' (posefix_bench.synthesis.mixes) instead of the paper table.
_base_ = ['../_base_/quick.py']
data = dict(mix='miss-heavy')
bench = dict(tags=['mix'])
