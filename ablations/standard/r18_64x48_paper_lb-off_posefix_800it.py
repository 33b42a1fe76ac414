# The published head (deconvolutions + soft-argmax) at 4x the quick budget: does its deficit close with training?
_base_ = ['../_base_/quick.py']
model = dict(head='posefix')
train = dict(max_iters=800, checkpoint_interval=200, max_keep_ckpts=4)
bench = dict(seeds=[0], tags=['budget'])
