# Standard profile: the parts of the quick questions that need more compute than `make bench`'s 20 minutes, on the
# same sandbox data (about 45 minutes on 2 cores from a cold cache; quick's trainings are reused where identical).
# - Input strength at realistic levels: one SimpleBaseline run at 128x96 with its weights saved at 600, 1200, 1800
#   and 2400 iterations (estimators/sandbox/simplebaseline_r18_128x96.py: AP 0.31 / 0.50 / 0.61 / 0.63 on the
#   sandbox val in the card's measurements), the strongest above the quick ladder's by about 0.4 AP;
# - free baselines (flip test, DARK) of every rung and of RTMPose-t;
# - the training budget: the default head and the published head at 4x quick's 200 iterations (learning curves).
_base_ = ['../_base_/quick.py']

profile = dict(
    name='standard',
    description=('Generated sandbox scenes (as quick), upstream estimators at realistic strengths: a SimpleBaseline '
                 'ladder (checkpoints of one 2400-iteration run at 128x96), RTMPose-t, the synthetic source at two '
                 'error rates; ResNet-18 refiners at 64x48, 200 and 800 iterations.'),
    data=dict(kind='sandbox', params={{_base_.data.sandbox}}),
    sources=[
        dict(name='synthetic-paper', type='synthetic', mix='paper', seed=1000),
        dict(name='synthetic-paper-x0.5', type='synthetic', seed=1000,
             mix=dict(base='paper', scale=dict(jitter=0.5, inversion=0.5, swap=0.5, miss=0.5))),
        dict(name='sb128-600it', type='mmpose-trained', card='sandbox-simplebaseline-r18-128x96', iteration=600,
             train_seed=0),
        dict(name='sb128-1200it', type='mmpose-trained', card='sandbox-simplebaseline-r18-128x96', iteration=1200,
             train_seed=0),
        dict(name='sb128-2400it', type='mmpose-trained', card='sandbox-simplebaseline-r18-128x96', iteration=2400,
             train_seed=0),
        dict(name='sb-rtmpose-t', type='mmpose-trained', card='sandbox-rtmpose-t-64x48', train_seed=0),
    ],
    seeds=[0],
    profile_train_images=600,
    refine=dict(batch_size=64, precision='auto'),
    fps=dict(batches=[1, 32], precisions='auto', threads=2),
    free_baselines=dict(methods=['flip-test', 'dark']),
    default_ablation='r18_64x48_paper_lb-off_skip',
    comparisons=[
        dict(name='Training budget', tag='budget',
             question='Does the published head catch up with the skip head when it trains four times longer?'),
    ],
    learning_curve=dict(tags=['budget']),
)
