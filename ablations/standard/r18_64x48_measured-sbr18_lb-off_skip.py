# Error mix measured from the sandbox SimpleBaseline-R18 estimator on training images (posefix-bench profile),
# instead of the paper table (issue 10): the refiner learns the errors of the estimator it will post-process.
_base_ = ['../_base_/quick.py']
data = dict(mix='measured:sb-simplebaseline-r18')
bench = dict(tags=['mix'])
