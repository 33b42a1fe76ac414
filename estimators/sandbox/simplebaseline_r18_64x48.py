# SimpleBaseline (Xiao et al., ECCV 2018) made small enough to train from scratch on the sandbox in ~90 s on 2 CPU
# cores with mmpose's own training. Overrides of the official config:
# - input 64x48, heatmap 16x12 (sigma 1 with DARK encoding/decoding, see the codec);
# - the first three stages of ResNet-18 (output stride 16, 256 channels; no ImageNet init: unavailable offline)
#   followed by two deconvolutions instead of three (stride 16 -> 4): at 64x48 the fourth stage would work on a
#   2x2 map, and dropping it makes training 1.7x faster;
# - milder augmentation for a schedule of a few thousand samples: flip, scale 0.75-1.25, rotation +-30 degrees
#   (the official: scale 0.65-1.35, rotation +-40, half-body crops);
# - a short iteration-based schedule (Adam 2e-3, linear warm-up, cosine decay), batch 32, one data process;
# - no validation during training (the suite evaluates afterwards).
_base_ = ['mmpose::body_2d_keypoint/topdown_heatmap/coco/td-hm_res50_8xb64-210e_coco-256x192.py']

max_iters = 300
warmup_iters = 30

# 16x12 heatmaps are coarse: a narrower Gaussian (sigma 1 heatmap pixel, the official 2 is for 64x48 heatmaps) and
# DARK's unbiased encoding / distribution-aware decoding (Zhang et al., CVPR 2020; mmpose's *_dark configs) with
# the blur kernel scaled to the heatmap (3 instead of 11)
codec = dict(type='MSRAHeatmap', input_size=(48, 64), heatmap_size=(12, 16), sigma=1, unbiased=True,
             blur_kernel_size=3)

model = dict(
    backbone=dict(depth=18, num_stages=3, strides=(1, 2, 2), dilations=(1, 1, 1), out_indices=(2, ), init_cfg=None),
    head=dict(in_channels=256, deconv_out_channels=(256, 256), deconv_kernel_sizes=(4, 4), decoder=codec),
)

train_pipeline = [
    dict(type='LoadImage'),
    dict(type='GetBBoxCenterScale'),
    dict(type='RandomFlip', direction='horizontal'),
    dict(type='RandomBBoxTransform', scale_factor=[0.75, 1.25], rotate_factor=30),
    dict(type='TopdownAffine', input_size=codec['input_size']),
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
val_dataloader = dict(dataset=dict(bbox_file=None, pipeline=val_pipeline))
test_dataloader = val_dataloader

train_cfg = dict(_delete_=True, by_epoch=False, max_iters=max_iters, val_interval=max_iters + 1)
optim_wrapper = dict(optimizer=dict(type='Adam', lr=2e-3))
param_scheduler = [
    dict(type='LinearLR', begin=0, end=warmup_iters, start_factor=0.01, by_epoch=False),
    dict(type='CosineAnnealingLR', begin=warmup_iters, end=max_iters, T_max=max_iters - warmup_iters,
         eta_min=1e-5, by_epoch=False),
]
log_processor = dict(by_epoch=False)

card = dict(
    name='sandbox-simplebaseline-r18-64x48',
    family='SimpleBaseline',
    description='SimpleBaseline, ResNet-18 stages 1-3 + two deconvolutions, 64x48, trained on the sandbox here',
    trained_on='the procedural sandbox (posefix_bench.sources.mmpose_train)',
    ladder=(100, 200, 300),  # weights saved along the run: the quick profile's (low) input-strength ladder
)
