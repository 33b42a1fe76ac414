# The standard profile's default refiner (200 iterations), trained on the generated sandbox scenes (the same run as
# standard/r18_64x48_paper_lb-off_skip.py seed 0, reused from the cache), applied to real COCO images:
# how far the sandbox transfers to real people.
_base_ = ['../_base_/quick.py']

bench = dict(tags=['train-data'], trains_on='sandbox')  # on purpose: the sandbox-trained default on real images
