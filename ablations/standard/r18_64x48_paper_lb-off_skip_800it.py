# The default head at 4x the quick budget: 800 iterations, the learning-rate drop at 85% as in quick.
_base_ = ['../_base_/quick.py']
model = dict(head='skip')
train = dict(max_iters=800, checkpoint_interval=200, max_keep_ckpts=4)
bench = dict(seeds=[0], tags=['budget'])
