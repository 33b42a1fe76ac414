# HRNet-W32 (Sun et al., CVPR 2019), heatmap head, 256x192 input, exactly as mmpose trains and publishes it.
_base_ = ['mmpose::body_2d_keypoint/topdown_heatmap/coco/td-hm_hrnet-w32_8xb64-210e_coco-256x192.py']

card = dict(
    name='hrnet-w32-256x192',
    family='HRNet',
    description='HRNet-W32, heatmap head, 256x192 (mmpose model zoo)',
    checkpoint='https://download.openmmlab.com/mmpose/v1/body_2d_keypoint/topdown_heatmap/coco/'
    'td-hm_hrnet-w32_8xb64-210e_coco-256x192-81c58e40_20220909.pth',
    trained_on='COCO train2017',
    published=dict(
        # the README table; the wheel's metafile (hrnet_coco.yml) lists AP 0.746 for the same checkpoint
        AP=0.749, AP50=0.906, AP75=0.821, AR=0.804, AR50=0.945,
        dataset='COCO val2017',
        detector='person detector with human AP 56.4 on COCO val2017 (COCO_val2017_detections_AP_H_56_person.json)',
        source='https://github.com/open-mmlab/mmpose/blob/main/configs/body_2d_keypoint/topdown_heatmap/coco/'
        'hrnet_coco.md',
    ),
)
