# Quick profile: the whole suite offline on a 2-core machine in about 14 minutes from a cold cache (`make bench`).
# Data: generated sandbox shop scenes; upstream sources: the synthetic paper-mix source and two small mmpose
# estimators of different families trained here on the sandbox with mmpose's own training.
_base_ = ['../_base_/quick.py']

profile = dict(
    name='quick',
    description=('Generated sandbox scenes (COCO format, lower-body occluders), ResNet-18 refiners at 64x48 trained '
                 'for 200 iterations each on one CPU core, two trainings at a time.'),
    data=dict(kind='sandbox', params={{_base_.data.sandbox}}),
    sources=[
        dict(name='synthetic-paper', type='synthetic', mix='paper', seed=1000),
        # an input-strength ladder at low fidelity: one SimpleBaseline run, its weights after 100, 200 and 300
        # iterations (the realistic ladder, up to AP 0.6, is the standard profile's)
        dict(name='sb-r18-100it', type='mmpose-trained', card='sandbox-simplebaseline-r18-64x48', iteration=100,
             train_seed=0),
        dict(name='sb-r18-200it', type='mmpose-trained', card='sandbox-simplebaseline-r18-64x48', iteration=200,
             train_seed=0),
        dict(name='sb-simplebaseline-r18', type='mmpose-trained', card='sandbox-simplebaseline-r18-64x48',
             iteration=300, train_seed=0),
        dict(name='sb-rtmpose-t', type='mmpose-trained', card='sandbox-rtmpose-t-64x48', train_seed=0),
    ],
    seeds=[0],
    # issue 21: 20 minutes from a cold cache on a machine with a 185 GFLOP/s fp32 matmul peak (2 threads); a slower
    # machine's allowance grows with its measured peak (the index states both)
    budget=dict(minutes=20, reference_gflops=185),
    # error profiles for "measured:<source>" mixes come from the source's poses on the first N training images
    profile_train_images=600,
    refine=dict(batch_size=64, precision='auto'),
    fps=dict(batches=[1, 32], precisions='auto', threads=2),
    default_ablation='r18_64x48_paper_lb-off_skip',
    comparisons=[
        dict(name='Head variants', tag='head',
             question='Which head change carries the gain: the identity prior, the stride-4 skip, or both?'),
        dict(name='Lower-body augmentation', tag='lb', subset='occluded',
             question='Does shrinking the input legs and cutting out the lower body help occluded people?'),
        dict(name='Error-type mix', tag='mix',
             question='Which synthesised error types matter, and does a measured profile beat the paper table?'),
        dict(name='Backbone and input size', tag='backbone', speed=True,
             question='What do a deeper body and a larger crop buy, and at what training and inference cost?'),
    ],
    # each mmpose source also with mmpose's flip test and (heatmap heads) DARK decoding, beside the refiner
    free_baselines=dict(methods=['flip-test', 'dark']),
    # AP at every kept checkpoint of these ablations' seed-0 training runs (the same runs, no extra training)
    learning_curve=dict(tags=['head'], seeds=[0]),
)
