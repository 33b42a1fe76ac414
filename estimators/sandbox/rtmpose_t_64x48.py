# RTMPose-t (Jiang et al., arXiv 2303.07399) made small enough to train from scratch on the sandbox in ~90 s on 2 CPU
# cores with mmpose's own training. Overrides of the official config:
# - input 64x48 (SimCC bins 96 x 128); the backbone is CSPNeXt-t's stem and first two stages (output stride 8,
#   96 channels): at 64x48 the full backbone's stride-32 map is 2x2, which leaves the RTMCC head 4 values per
#   keypoint to locate it from; stride 8 gives it 8x6 = 48 values, as the official 256x192 model has;
# - no pretrained init (unavailable offline), plain BN (one process);
# - milder augmentation for a schedule of a few thousand samples: flip, scale 0.75-1.25, rotation +-30 degrees,
#   HSV jitter; no Albumentation step (albumentations is not installed), no half-body crops, no stage-2 switch;
# - a short iteration-based schedule (AdamW 4e-3, linear warm-up, cosine decay), batch 32, one data process;
# - no validation during training (the suite evaluates afterwards).
_base_ = ['mmpose::body_2d_keypoint/rtmpose/coco/rtmpose-t_8xb256-420e_coco-256x192.py']

max_iters = 480
warmup_iters = 30
base_lr = 4e-3

codec = dict(type='SimCCLabel', input_size=(48, 64), sigma=(4.9, 5.66), simcc_split_ratio=2.0, normalize=False,
             use_dark=False)

model = dict(
    backbone=dict(arch_ovewrite=[[64, 128, 3, True, False], [128, 256, 9, True, False]], out_indices=(2, ),
                  norm_cfg=dict(type='BN'), init_cfg=None),
    head=dict(in_channels=96, input_size=codec['input_size'], in_featuremap_size=(6, 8), decoder=codec),
)

train_pipeline = [
    dict(type='LoadImage'),
    dict(type='GetBBoxCenterScale'),
    dict(type='RandomFlip', direction='horizontal'),
    dict(type='RandomBBoxTransform', scale_factor=[0.75, 1.25], rotate_factor=30),
    dict(type='TopdownAffine', input_size=codec['input_size']),
    dict(type='mmdet.YOLOXHSVRandomAug'),
    dict(type='GenerateTarget', encoder=codec),
    dict(type='PackPoseInputs'),
]
val_pipeline = [
    dict(type='LoadImage'),
    dict(type='GetBBoxCenterScale'),
    dict(type='TopdownAffine', input_size=codec['input_size']),
    dict(type='PackPoseInputs'),
]

# one data process and no validation loop: set at training time (posefix_bench.sources.mmpose_train)
train_dataloader = dict(batch_size=32, dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=val_pipeline))
test_dataloader = val_dataloader

train_cfg = dict(_delete_=True, by_epoch=False, max_iters=max_iters, val_interval=max_iters + 1)
optim_wrapper = dict(optimizer=dict(lr=base_lr))
param_scheduler = [
    dict(type='LinearLR', begin=0, end=warmup_iters, start_factor=0.01, by_epoch=False),
    dict(type='CosineAnnealingLR', begin=warmup_iters, end=max_iters, T_max=max_iters - warmup_iters,
         eta_min=base_lr * 0.05, by_epoch=False),
]
custom_hooks = []
log_processor = dict(by_epoch=False)

card = dict(
    name='sandbox-rtmpose-t-64x48',
    family='RTMPose',
    description='RTMPose-t (CSPNeXt-t stem + 2 stages, RTMCC SimCC head), 64x48, trained on the sandbox here',
    trained_on='the procedural sandbox (posefix_bench.sources.mmpose_train)',
)
