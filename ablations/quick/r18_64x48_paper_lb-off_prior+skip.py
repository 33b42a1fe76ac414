# Head variant 'prior+skip' (issue 11), paper error mix, no lower-body augmentation; two seeds.
_base_ = ['../_base_/quick.py']
model = dict(head='prior+skip')
bench = dict(seeds=[0, 1], tags=['head'])
