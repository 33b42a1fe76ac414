# Error mix measured from the sandbox SimpleBaseline-R18 estimator on training images (posefix-bench profile) instead
# of the paper table (issue 10). The other single-type mixes (jitter-only, miss-heavy, no-inversion, no-swap) are
# in the standard profile.
_base_ = ['../_base_/quick_100it.py']
data = dict(mix='measured:sb-simplebaseline-r18')
bench = dict(tags=['mix'])
