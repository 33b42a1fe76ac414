# The quick profile's recipe: _base_/quick.py at half its iterations (100 of batch 32, the learning-rate drop at 85%
# as there, checkpoints every 25 for the learning curves). Why: on the 2-core Xeon of 2026-12-01 (AVX-512 without
# bf16, fp32 matmul peak 308 GFLOP/s) one 200-iteration ResNet-18 training took 214 s beside a second one, and the
# full grid at 200 iterations (the standard profile: 18 trainings, 3 backbones / 2 input sizes) trains for over 40
# minutes: every quick axis fits 20 minutes only at this length. The standard profile keeps 200 iterations (and two
# seeds where the spread matters); compare quick and standard to see which conclusions survive the longer budget.
_base_ = ['./quick.py']

train = dict(max_iters=100, checkpoint_interval=25)
