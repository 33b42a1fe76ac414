# The default refiner: head 'skip' (stride-4 skip, no identity prior), paper error mix, no lower-body augmentation;
# the baseline of every comparison. Two seeds (the only quick ablation with two): the gated default's gain on each
# source is shown with its seed spread (issue 17), and every comparison's baseline is a seed mean.
_base_ = ['../_base_/quick_100it.py']
model = dict(head='skip')
train = dict(max_keep_ckpts=4)  # the learning curve's points: iterations 25, 50, 75, 100
bench = dict(seeds=[0, 1], tags=['head', 'lb', 'mix', 'backbone'])
