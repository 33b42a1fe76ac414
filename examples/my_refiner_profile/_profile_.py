# A tiny bench profile that puts examples/my_refiner.py beside posefix (README.md, "Benchmark your own refiner"):
# six generated validation images, one synthetic source, one refiner trained for 4 iterations, and five refinement
# methods compared on the same source through the same analysis: posefix, identity (the control), your refiner as
# a program and as a Python callable (run with examples/ on PYTHONPATH), and the image-free pose prior.
profile = dict(
    name='my-refiner',
    description='examples/my_refiner.py beside posefix on a tiny generated dataset (a plumbing check: too small to '
                'measure anything)',
    data=dict(kind='sandbox', params=dict(seed=3, train=10, val=6)),
    sources=[dict(name='synthetic-paper', type='synthetic', mix='paper', seed=5)],
    seeds=[0],
    refine=dict(batch_size=16),
    fps=dict(batches=[2], precisions=['fp32'], threads=1),
    default_ablation='r18_64x48_paper_lb-off_skip',
    methods=[
        dict(name='posefix', type='posefix'),
        dict(name='identity', type='identity'),
        dict(name='my-refiner', type='command', command='{python} examples/my_refiner.py {input} {output}'),
        dict(name='my-refiner-py', type='python', callable='my_refiner:refine'),
        dict(name='pose-prior', type='pose-prior'),
    ],
)
