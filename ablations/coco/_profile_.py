# coco profile: a full COCO 2017 root (make bench PROFILE=coco COCO_ROOT=/data/coco), the published schedule on GPUs,
# every training launched with torchrun (one process per GPU, NCCL). Sources: the mmpose model-zoo estimators of
# estimators/ (their checkpoints download through mmengine's cache; offline, place them there first), mediapipe and
# the synthetic paper-mix source.
profile = dict(
    name='coco',
    description='COCO 2017 train/val, published PoseFix schedule (140 epochs), ResNet backbones at 256x192 / 384x288.',
    data=dict(kind='coco', train_split='train2017', val_split='val2017'),
    sources=[
        dict(name='simplebaseline-r50-256x192', type='mmpose', card='simplebaseline-r50-256x192'),
        dict(name='hrnet-w32-256x192', type='mmpose', card='hrnet-w32-256x192'),
        dict(name='rtmpose-m-256x192', type='mmpose', card='rtmpose-m-256x192'),
        dict(name='hrnet-w48-384x288', type='mmpose', card='hrnet-w48-384x288'),
        dict(name='mediapipe', type='mediapipe'),
        dict(name='synthetic-paper', type='synthetic', mix='paper', seed=1000),
    ],
    seeds=[0],
    train_launcher=dict(nproc_per_node=8),
    # Slurm resources per job kind for `bench --executor slurm` (posefix_bench/bench/executors.py): a training is one
    # job of 8 GPUs running torchrun with one process per GPU. Every value can be overridden on the command line
    # (--slurm-partition P, --slurm train.gpus=4, --slurm mem_gb=64); no partition here: the cluster's default.
    slurm=dict(
        train=dict(gpus=8, cpus_per_task=64, mem_gb=480, timeout_min=72 * 60),
        predict=dict(gpus=1, cpus_per_task=8, mem_gb=64, timeout_min=4 * 60),
        evaluate=dict(gpus=1, cpus_per_task=8, mem_gb=64, timeout_min=4 * 60),
    ),
    refine=dict(batch_size=64, precision='auto'),
    fps=dict(batches=[1, 64], precisions='auto', threads=8),
    default_ablation='r50_256x192_paper_lb-off_posefix',
    comparisons=[
        dict(name='Head variants', tag='head', question='Does the identity prior or the skip help at full scale?'),
        dict(name='Backbone and input size', tag='backbone', question='What do depth and resolution buy, at what FPS?'),
        dict(name='Lower-body augmentation', tag='lb', question='Does it help low-confidence lower-body keypoints?'),
        dict(name='Error-type mix', tag='mix', question='Which synthesised error types matter?'),
    ],
)
