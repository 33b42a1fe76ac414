# The quick recipe trained on coco-mini's 143 real training persons (../shared/data/coco-mini or $POSEFIX_COCO_MINI):
# the real-image path check. Far too little data to generalise; the report says what that can and cannot show.
_base_ = ['../_base_/quick.py']

data = dict(
    root='{{$POSEFIX_COCO_MINI:{{ fileDirname }}/../../../shared/data/coco-mini}}',
    sandbox=None,
    train_split='train2017',
    val_split='val2017',
    holdout=0,  # no gate-calibration hold-out: 143 training persons are already too few to train on
)
bench = dict(tags=['train-data'])
