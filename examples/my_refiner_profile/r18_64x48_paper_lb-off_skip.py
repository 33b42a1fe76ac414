# The refiner the example profile trains: the quick recipe at 4 iterations on the profile's tiny sandbox.
_base_ = ['../../ablations/_base_/quick.py']
data = dict(sandbox=dict(seed=3, train=10, val=6), holdout=2)
train = dict(max_iters=4, batch_size=8, checkpoint_interval=2, log_interval=2)
