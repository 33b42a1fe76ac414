# SimpleBaseline (Xiao et al., ECCV 2018): ResNet-50 + three deconvolutions + heatmap head, 256x192 input,
# exactly as mmpose trains and publishes it (no override of the official config).
_base_ = ['mmpose::body_2d_keypoint/topdown_heatmap/coco/td-hm_res50_8xb64-210e_coco-256x192.py']

card = dict(
    name='simplebaseline-r50-256x192',
    family='SimpleBaseline',
    description='SimpleBaseline ResNet-50, heatmap head, 256x192 (mmpose model zoo)',
    checkpoint='https://download.openmmlab.com/mmpose/v1/body_2d_keypoint/topdown_heatmap/coco/'
    'td-hm_res50_8xb64-210e_coco-256x192-04af38ce_20220923.pth',
    trained_on='COCO train2017',
    published=dict(
        AP=0.718, AP50=0.898, AP75=0.796, AR=0.774, AR50=0.934,
        dataset='COCO val2017',
        detector='person detector with human AP 56.4 on COCO val2017 (COCO_val2017_detections_AP_H_56_person.json)',
        source='https://github.com/open-mmlab/mmpose/blob/main/configs/body_2d_keypoint/topdown_heatmap/coco/'
        'resnet_coco.md',
    ),
)
