# Head variant 'posefix' (issue 11), paper error mix, no lower-body augmentation; two seeds.
_base_ = ['../_base_/quick.py']
model = dict(head='posefix')
train = dict(max_keep_ckpts=4)  # the learning curve's points: iterations 50, 100, 150, 200
bench = dict(seeds=[0, 1], tags=['head'])
