# RTMPose-m (Jiang et al., arXiv 2303.07399): CSPNeXt-m backbone + RTMCC (SimCC) head, 256x192 input, exactly as
# mmpose trains and publishes it; checkpoint and published accuracy: the mmpose wheel's metafile entry for this
# config (rtmpose_coco.yml).
_base_ = ['mmpose::body_2d_keypoint/rtmpose/coco/rtmpose-m_8xb256-420e_coco-256x192.py']

card = dict(name='rtmpose-m-256x192', family='RTMPose', trained_on='COCO train2017 (backbone pre-trained on AIC+COCO)',
            description='RTMPose-m, CSPNeXt backbone, SimCC head, 256x192 (mmpose model zoo)')
