# COCO 2017 person keypoints as the refiner's training / validation data.
#
# A COCO root is laid out as ROOT/annotations/person_keypoints_<split>.json with images in ROOT/<split>/
# (posefix_bench.structures.coco.coco_split_paths). The root has no default: give it with
#   posefix-bench train --config CONFIG --cfg-options data.root=/path/to/coco
data = dict(
    root=None,
    train_split='train2017',
    val_split='val2017',
)
