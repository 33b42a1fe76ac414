# Head variant 'skip' (issue 11), paper error mix, no lower-body augmentation; two seeds. The profile's default.
_base_ = ['../_base_/quick.py']
model = dict(head='skip')
bench = dict(seeds=[0, 1], tags=['head', 'lb', 'mix'])  # also the baseline of the lb and mix comparisons
