# HRNet-W48 (Sun et al., CVPR 2019), heatmap head, 384x288 input, exactly as mmpose trains and publishes it.
# (ViTPose needs mmpretrain, which the environment does not install.)
_base_ = ['mmpose::body_2d_keypoint/topdown_heatmap/coco/td-hm_hrnet-w48_8xb32-210e_coco-384x288.py']

card = dict(
    name='hrnet-w48-384x288',
    family='HRNet',
    description='HRNet-W48, heatmap head, 384x288 (mmpose model zoo)',
    checkpoint='https://download.openmmlab.com/mmpose/v1/body_2d_keypoint/topdown_heatmap/coco/'
    'td-hm_hrnet-w48_8xb32-210e_coco-384x288-c161b7de_20220915.pth',
    trained_on='COCO train2017',
    published=dict(
        # the README table; the wheel's metafile (hrnet_coco.yml) lists AP 0.767, AP50 0.910, AP75 0.831
        AP=0.767, AP50=0.911, AP75=0.832, AR=0.817, AR50=0.947,
        dataset='COCO val2017',
        detector='person detector with human AP 56.4 on COCO val2017 (COCO_val2017_detections_AP_H_56_person.json)',
        source='https://github.com/open-mmlab/mmpose/blob/main/configs/body_2d_keypoint/topdown_heatmap/coco/'
        'hrnet_coco.md',
    ),
)
