# Head variant 'prior+skip' (issue 11), paper error mix, no lower-body augmentation.
_base_ = ['../_base_/quick_100it.py']
model = dict(head='prior+skip')
train = dict(max_keep_ckpts=4)  # the learning curve's points: iterations 25, 50, 75, 100
bench = dict(tags=['head'])
