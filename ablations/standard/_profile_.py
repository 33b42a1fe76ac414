# Standard profile (`make bench PROFILE=standard`): the quick questions at the fidelity quick cannot afford in 20
# minutes, on the same sandbox data: 200 training iterations, two seeds for the head variants and the lower-body
# augmentation, the whole error-mix grid (paper, jitter-only, miss-heavy, no-inversion, no-swap, measured), ResNet-18/
# 34/50 and 64x48/128x96, and upstream estimators at realistic strengths: one SimpleBaseline run at 128x96 with its
# weights saved at 600, 1200 and 2400 iterations (estimators/sandbox/simplebaseline_r18_128x96.py), RTMPose-t, the
# 64x48 SimpleBaseline the measured mix comes from, and the synthetic source at two error scales (the paper mix, and
# the same mix with every error type's rate halved: the error level changes, not the error types); the head variants'
# learning curves on the synthetic source.
_base_ = ['../quick/_profile_.py']

profile = dict(
    name='standard',
    description=('Generated sandbox scenes (as quick), ResNet refiners trained for 200 iterations on one CPU core each; '
                 'upstream estimators from AP 0.15 to 0.63 (a SimpleBaseline ladder: checkpoints of one 2400-iteration '
                 'run at 128x96), RTMPose-t and the synthetic source at two error scales.'),
    sources=[
        dict(name='synthetic-paper', type='synthetic', mix='paper', seed=1000),
        dict(name='synthetic-paper-x0.5', type='synthetic', seed=1000,
             mix=dict(base='paper', scale=dict(jitter=0.5, inversion=0.5, swap=0.5, miss=0.5))),
        dict(name='sb-simplebaseline-r18', type='mmpose-trained', card='sandbox-simplebaseline-r18-64x48',
             iteration=300, train_seed=0),
        dict(name='sb128-600it', type='mmpose-trained', card='sandbox-simplebaseline-r18-128x96', iteration=600,
             train_seed=0),
        dict(name='sb128-1200it', type='mmpose-trained', card='sandbox-simplebaseline-r18-128x96', iteration=1200,
             train_seed=0),
        dict(name='sb128-2400it', type='mmpose-trained', card='sandbox-simplebaseline-r18-128x96', iteration=2400,
             train_seed=0),
        dict(name='sb-rtmpose-t', type='mmpose-trained', card='sandbox-rtmpose-t-64x48', train_seed=0),
    ],
    budget=dict(minutes=60, reference_gflops=185),
    # the head variants' learning curves (seed 0; checkpoints at 50, 100, 150 and 200 iterations) on the synthetic
    # source only, where the published head's deficit is largest: each source costs a refinement per head and
    # checkpoint (measured 18 s each on one core for the 685 val poses); three sources (adding the weakest and the
    # strongest estimator) took 5.5 more minutes and every source about 10, past the profile's 60
    learning_curve=dict(tags=['head'], seeds=[0], sources=['synthetic-paper']),
    free_baselines=dict(methods=['flip-test', 'dark'], timing=dict(persons=32, rounds=2)),
    fps=dict(batches=[1, 32], precisions='auto', threads=2),
    # issue 27: the lower-body question needs more occluded people than the 300 validation images hold (133): a
    # dedicated validation split of sandbox scenes in which every person stands behind a lower-body occluder (700
    # images: 1,653 persons, 1,642 of them tagged occluded; generated in 20 s on 2 workers), refined by the ablations
    # of the lower-body comparison for these sources; their occluded subset, its intervals and the confidence-bin
    # breakdown of that comparison come from it
    occluded_split=dict(images=700, seed=1, sources=['synthetic-paper', 'sb128-2400it']),
    # everything else (seeds, refinement, default, bootstrap) as quick's
)
