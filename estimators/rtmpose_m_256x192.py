# RTMPose-m (Jiang et al., arXiv 2303.07399): CSPNeXt-m backbone + RTMCC (SimCC) head, 256x192 input,
# exactly as mmpose trains and publishes it.
_base_ = ['mmpose::body_2d_keypoint/rtmpose/coco/rtmpose-m_8xb256-420e_coco-256x192.py']

card = dict(
    name='rtmpose-m-256x192',
    family='RTMPose',
    description='RTMPose-m, CSPNeXt backbone, SimCC head, 256x192 (mmpose model zoo)',
    checkpoint='https://download.openmmlab.com/mmpose/v1/projects/rtmposev1/'
    'rtmpose-m_simcc-coco_pt-aic-coco_420e-256x192-d8dd5ca4_20230127.pth',
    trained_on='COCO train2017 (backbone pre-trained on AIC+COCO)',
    published=dict(
        AP=0.746, AP50=0.899, AP75=0.817, AR=0.795, AR50=0.935,
        dataset='COCO val2017',
        detector='person detector with human AP 56.4 on COCO val2017 (COCO_val2017_detections_AP_H_56_person.json)',
        source='https://github.com/open-mmlab/mmpose/blob/main/configs/body_2d_keypoint/rtmpose/coco/'
        'rtmpose_coco.md',
    ),
)
