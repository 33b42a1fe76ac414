"""posefix-bench: a benchmark and ablation suite for PoseFix-style human pose refinement.

PoseFix (Moon, Chang, Lee; "PoseFix: Model-agnostic General Human Pose Refinement Network", CVPR 2019) refines
the keypoints of any upstream estimator from an image crop plus the estimator's pose. This package measures
whether, where and at what cost such a refiner helps, with the error taxonomy of Ronchi & Perona
("Benchmarking and Error Diagnosis in Multi-Instance Pose Estimation", ICCV 2017).

Layers (a module imports only from layers below it):
  1. ``structures``  keypoint schemas, results files, COCO access, the top-down crop transform
  2. ``codecs``, ``synthesis``  OKS/KS math, heatmap rendering/decoding, input-pose synthesis
  3. ``models``      the refiner behind ``build_refiner``
  4. ``evaluation``  COCO AP, error diagnosis, error profiles (never imports models)
  5. ``sources``, ``engine``  upstream estimators, training, refinement, throughput, sandbox data
  6. ``reporting``, ``bench``, ``cli``  plots, reports, the bench runner and the command line
"""

__version__ = "0.1.0"
