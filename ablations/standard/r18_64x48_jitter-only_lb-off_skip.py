# Error mix 'jitter-only' (posefix_bench.synthesis.mixes) instead of the paper table.
_base_ = ['../_base_/quick.py']
data = dict(mix='jitter-only')
bench = dict(tags=['mix'])
