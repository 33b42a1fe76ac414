# HRNet-W48 (Sun et al., CVPR 2019), heatmap head, 384x288 input, exactly as mmpose trains and publishes it;
# checkpoint and published accuracy: the mmpose wheel's metafile entry for this config (hrnet_coco.yml).
# (ViTPose needs mmpretrain, which the environment does not install.)
_base_ = ['mmpose::body_2d_keypoint/topdown_heatmap/coco/td-hm_hrnet-w48_8xb32-210e_coco-384x288.py']

card = dict(name='hrnet-w48-384x288', family='HRNet', trained_on='COCO train2017',
            description='HRNet-W48, heatmap head, 384x288 (mmpose model zoo)')
