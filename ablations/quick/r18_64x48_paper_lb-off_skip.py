# The default refiner: head 'skip' (stride-4 skip, no identity prior), paper error mix, no lower-body augmentation;
# the baseline of every comparison.
_base_ = ['../_base_/quick_100it.py']
model = dict(head='skip')
train = dict(max_keep_ckpts=4)  # the learning curve's points: iterations 25, 50, 75, 100
bench = dict(tags=['head', 'lb', 'mix', 'backbone'])
