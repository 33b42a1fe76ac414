# The published PoseFix recipe (Moon et al., CVPR 2019, Sec. 5.1 "Implementation details"), the full default:
# ResNet-50 at 256x192, input poses synthesised with the paper's error statistics (Sec. 4), scale 0.3 / rotation 40
# degree / flip augmentation, Adam at 5e-4 divided by 10 at epochs 90 and 120 of 140, batch 32.
# Ablations inherit this file (plus a dataset) and change a few lines; see posefix_bench/engine/train.py for the
# schema of every key.
_base_ = ['./datasets/coco.py']

model = dict(
    backbone='resnet50',
    head='posefix',              # posefix | prior | skip | prior+skip
    input_size=(192, 256),       # (W, H) of the crop
    sigma=None,                  # input-pose heatmap sigma in crop pixels; None: 7 at 256x192, scaled with the width
    pretrained=None,             # path/URL of backbone weights; None: random init (nothing is downloadable here)
)

data = dict(
    mix='paper',                 # synthesis error mix: a name, a dict or an error-profile JSON
    lower_body=dict(p=0.0, factor=0.8, cutout=True),  # lower-body augmentation (off in the published recipe)
    scale_factor=0.3,            # scale ~ clip(N(1, 0.3), 0.7, 1.3)
    rotation_factor=40,          # rotation ~ clip(N(0, 40), -80, 80) degrees ...
    rotation_prob=0.6,           # ... applied to 60% of the samples (SimpleBaseline / PoseFix)
    flip=True,                   # horizontal flip with probability 0.5
    padding=1.25,                # box enlargement around the person (structures.transforms.DEFAULT_PADDING)
    min_keypoints=1,             # persons with fewer labelled keypoints are not trained on
    max_samples=None,            # keep only the first N persons (tiny runs and overfitting checks)
    cache_images=False,          # keep decoded images in memory (per data-loader process)
)

train = dict(
    epochs=140,
    max_iters=None,              # when set, overrides epochs; milestones then scale to the same fractions of training
    batch_size=32,               # global batch (split across torchrun processes)
    lr=5e-4,
    milestones=(90, 120),        # epochs
    gamma=0.1,
    weight_decay=0.0,
    amp='auto',                  # 'auto': a short probe picks the fastest precision this device runs natively
                                 # (fp32 / bf16, fp16 + loss scaling on CUDA); 'fp32' / 'bf16' / 'fp16': as set
    seed=0,
    device=None,                 # None: cuda when available (the torchrun process's local GPU), else cpu
    threads=None,                # torch CPU threads per process; None: cores / processes
    num_workers=2,               # data-loader worker processes per training process
    checkpoint_interval=5000,    # iterations between checkpoints (the last iteration always saves one)
    max_keep_ckpts=2,            # iteration checkpoints kept (latest.pth and final.pth are always kept)
    log_interval=50,             # iterations between train_log.jsonl / TensorBoard entries
)
