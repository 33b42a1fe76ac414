"""What each cached bench step's key covers besides its inputs: the code it runs, and the ``--smoke`` sizes.

A step's cache key (:mod:`posefix_bench.bench.cache`) holds a fingerprint of the package folders and files listed
here for it, so a change of that code reruns the step and nothing else; :data:`ANALYSIS_VERSION` marks a change of
what an analysis record holds.
"""

__all__ = ["TRAIN_CODE", "REFINE_CODE", "METHOD_CODE", "PRIOR_CODE", "SOURCE_CODE", "EVAL_CODE", "CALIBRATE_CODE",
           "CHECKS_CODE", "FPS_CODE", "ANALYSIS_VERSION", "SMOKE"]

# the code each step runs: a change there invalidates that step's cache
TRAIN_CODE = ("models", "registry", "engine/train.py", "engine/train_config.py", "engine/hooks.py", "engine/data.py",
              "engine/distributed.py", "synthesis", "codecs", "structures")
REFINE_CODE = ("models", "registry", "engine/refine.py", "codecs", "structures")
METHOD_CODE = ("methods", "models", "registry", "engine/refine.py", "engine/gate.py", "sources", "synthesis", "codecs",
               "structures")  # a method's own files (a command's script, a callable's module) join its key too
PRIOR_CODE = ("methods/pose_prior.py", "engine/data.py", "engine/train.py", "engine/train_config.py", "synthesis",
              "structures")  # the pose prior's training
SOURCE_CODE = ("sources", "registry", "synthesis", "codecs", "structures")
EVAL_CODE = ("evaluation", "codecs", "structures")
CALIBRATE_CODE = ("models", "engine/calibrate.py", "engine/gate.py", "engine/refine.py", "engine/data.py",
                  "engine/train.py", "synthesis", "evaluation", "codecs", "structures")
CHECKS_CODE = ("structures",)
FPS_CODE = ("models", "registry", "engine/throughput.py", "engine/fps.py", "engine/precision.py", "codecs")
ANALYSIS_VERSION = 3  # 2: the analysis also picks the crop panel's persons; 3: the paired bootstrap
# ``--smoke``: every step of a profile at the smallest size that still runs its real code (issue 20): a few
# validation images, two training iterations on 8 persons through torchrun's two CPU (gloo) processes, fp32
# (no precision probe), batch-1 FPS
SMOKE = {"val_images": 4, "max_samples": 8, "nproc_per_node": 2,
         "train": {"max_iters": 2, "batch_size": 4, "checkpoint_interval": 1, "log_interval": 1, "num_workers": 0,
                   "amp": "fp32", "threads": 1},
         "refine": {"batch_size": 4, "precision": "fp32"},
         "calibrate": {"mixes": ["paper", "none"], "draws": 1},
         "fps": {"batches": [1], "precisions": ["fp32"], "threads": 1}}

