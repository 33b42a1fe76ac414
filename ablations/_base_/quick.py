# The quick profile's refiner recipe: what trains in about two minutes per run on one CPU core.
# Deviations from the published recipe (_base_/refiner.py), each measured on the sandbox (see reports/quick/):
# - ResNet-18 at 64x48 with 128-channel deconvolutions (published: ResNet-50 or larger at 256x192, 256 channels);
#   the narrower head trains 1.3x faster and reached a higher AP in the same time (0.710 vs 0.695 after 300
#   iterations, one seed);
# - 200 iterations of batch 32 with Adam at 2e-3, divided by 10 after 85% of training (published: 140 epochs, 5e-4,
#   milestones 90/120): most of the gain arrives with the learning-rate drop;
# - precision 'auto' (posefix_bench.engine.precision): a short probe of this network on this machine picks bf16
#   where the CPU runs it natively and faster (1.5x on the AVX-512 machine with fast bf16 the recipe was tuned on, same
#   AP as fp32: 0.707 vs 0.710 after 250 iterations) and fp32 where bf16 is emulated (a batch-32 step 1.7x slower on
#   an AVX-512 Xeon without avx512_bf16, 33x on an AVX2 EPYC; issue 21);
# - one torch thread per training: the bench runs two trainings side by side on a 2-core machine;
# - the 'skip' head (stride-4 skip, no identity prior), chosen from the head-variant ablation (issue 11): on the
#   synthetic paper-mix source it gained +0.089 AP [0.085..0.093, 2 seeds] against +0.071 [0.070..0.073] for
#   prior+skip, -0.003 for prior and -0.437 for the published posefix head, and tied with prior+skip on the two mmpose
#   estimators (reports/quick/index.md, "Head variants").
# - 200 of the 2000 training images held out of training (data.holdout, seed 0, the same for every training seed):
#   the persons the refinement gate is calibrated on after training (`posefix-bench calibrate`, issue 17).
# Data: the generated sandbox scenes (posefix_bench.engine.sandbox), generated on first use.
_base_ = ['./refiner.py']

model = dict(backbone='resnet18', head='skip', input_size=(48, 64), deconv_channels=128)

data = dict(
    root=None,
    sandbox=dict(seed=0, train=2000, val=300),
    train_split='train',
    val_split='val',
    cache_images=True,
    holdout=200,
)

train = dict(
    max_iters=200,
    batch_size=32,
    lr=2e-3,
    milestones=(119, ),           # epochs of the 140-epoch schedule: 85% of max_iters
    amp='auto',
    threads=1,
    num_workers=0,
    checkpoint_interval=50,
    log_interval=25,
)
