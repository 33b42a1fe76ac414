# A short real run on coco-mini train (the real COCO 2017 slice the tests use): ResNet-18 at 64x48 with the identity
# prior and the stride-4 skip (../shared/notes/refiner-feasibility.md: what a refiner learns in minutes on 2 cores).
# 300 iterations of 16 crops: about 3 minutes on the 2 shared cores (30 samples/s with one thread).
# Data root: $POSEFIX_COCO_MINI, else ../shared/data/coco-mini beside the repository.
_base_ = ['../_base_/refiner.py']

model = dict(backbone='resnet18', head='prior+skip', input_size=(48, 64))

data = dict(
    root='{{$POSEFIX_COCO_MINI:{{ fileDirname }}/../../../shared/data/coco-mini}}',
    cache_images=True,
)

train = dict(
    max_iters=300,
    batch_size=16,
    num_workers=0,
    checkpoint_interval=100,
    log_interval=10,
)
