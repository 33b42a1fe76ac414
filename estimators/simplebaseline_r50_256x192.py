# SimpleBaseline (Xiao et al., ECCV 2018): ResNet-50 + three deconvolutions + heatmap head, 256x192 input, exactly
# as mmpose trains and publishes it (no override of the official config); checkpoint and published accuracy: the
# mmpose wheel's metafile entry for this config (resnet_coco.yml).
_base_ = ['mmpose::body_2d_keypoint/topdown_heatmap/coco/td-hm_res50_8xb64-210e_coco-256x192.py']

card = dict(name='simplebaseline-r50-256x192', family='SimpleBaseline', trained_on='COCO train2017',
            description='SimpleBaseline ResNet-50, heatmap head, 256x192 (mmpose model zoo)')
